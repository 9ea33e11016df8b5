//! The reservations of blocked backfill heads (their *shadows*) and the placement that respects
//! them: a job must fit now and, on the same nodes, the room left at every reserved start it
//! may outlast.

use super::Outcome;
use crate::capacity::{Eligible, Fitter, Placement};
use crate::cycle::Candidate;

/// The reservation of a blocked backfill head.
pub(super) struct Shadow {
    /// Sorted position of the head.
    pub(super) head: usize,
    pub(super) start_ms: i64,
    /// Free room at `start_ms` once the head is placed; `None` when no start could be found
    /// any more (nothing may pass the head then).
    pub(super) room: Option<Fitter>,
    /// The head is overdue: every job, not only those passing a blocked head, must fit beside
    /// this reservation, whenever it is expected to end, unless its `maxRuntime` ends it
    /// before `start_ms`.
    pub(super) hard: bool,
}

/// Places a job: it must fit now and, on the same nodes, the room left at every reserved start
/// it may outlast: every reservation for a job that passes a blocked backfill head, only the
/// hard ones (`hard_only`) for the others. `ends` is when it is expected to end and when it
/// certainly ends (`maxRuntime`); a soft reservation is outlasted past the expected end, a
/// hard one past the certain end (always, without one). On success the room is taken from
/// `fitter` and from those shadows.
pub(super) fn backfill_place(
    fitter: &mut Fitter,
    shadows: &mut [Shadow],
    job: &Candidate,
    eligible: Option<&Eligible>,
    (end_ms, certain_end_ms): (i64, Option<i64>),
    hard_only: bool,
) -> Result<Placement, Outcome> {
    let demand = &job.demand;
    let first = fitter
        .try_place_on(demand, eligible)
        .map_err(Outcome::NoRoom)?;
    if shadows.is_empty() {
        return Ok(first);
    }
    let outlasted: Vec<usize> = (0..shadows.len())
        .filter(|&k| !hard_only || shadows[k].hard)
        // A hard reservation does not trust estimates: a job must fit beside it unless its
        // maxRuntime ends it before the reserved start.
        .filter(|&k| match &shadows[k] {
            sh if sh.hard => sh.room.is_none() || certain_end_ms.is_none_or(|c| c > sh.start_ms),
            sh => sh.room.is_none() || end_ms > sh.start_ms,
        })
        .collect();
    if outlasted.is_empty() {
        return Ok(first);
    }
    // A head with no start any more: nothing that outlasts "now" may pass it.
    if let Some(&k) = outlasted.iter().find(|&&k| shadows[k].room.is_none()) {
        fitter.unplace(demand, &first);
        return Err(Outcome::WouldDelay(k));
    }
    // Quick: a shadow without the room in all cannot take the job on any nodes.
    let need = demand.total();
    if let Some(&k) = outlasted.iter().find(|&&k| {
        shadows[k]
            .room
            .as_ref()
            .is_some_and(|room| !room.total_free().covers(&need))
    }) {
        fitter.unplace(demand, &first);
        return Err(Outcome::WouldDelay(k));
    }
    let fits_all = |p: &Placement, shadows: &mut [Shadow]| -> Option<usize> {
        for (n, &k) in outlasted.iter().enumerate() {
            let ok = shadows[k]
                .room
                .as_mut()
                .is_some_and(|room| room.place_at(demand, p));
            if !ok {
                for &done in &outlasted[..n] {
                    if let Some(room) = shadows[done].room.as_mut() {
                        room.unplace(demand, p);
                    }
                }
                return Some(k);
            }
        }
        None
    };
    let Some(blocking) = fits_all(&first, shadows) else {
        return Ok(first);
    };
    // Not on the nodes first fit chose: look for nodes with room both now and in every
    // outlasted shadow.
    fitter.unplace(demand, &first);
    let mut meet = fitter.clone();
    for &k in &outlasted {
        if let Some(room) = &shadows[k].room {
            meet = meet.meet(room);
        }
    }
    let Ok(p) = meet.try_place_on(demand, eligible) else {
        return Err(Outcome::WouldDelay(blocking));
    };
    if !fitter.place_at(demand, &p) {
        return Err(Outcome::WouldDelay(blocking));
    }
    match fits_all(&p, shadows) {
        None => Ok(p),
        Some(k) => {
            fitter.unplace(demand, &p);
            Err(Outcome::WouldDelay(k))
        }
    }
}
