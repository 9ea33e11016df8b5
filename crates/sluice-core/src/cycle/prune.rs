//! What a cycle can be spared: in a `strict` namespace, every job behind the first one that
//! cannot be admitted waits "blocked behind" it, so the cycle decides nothing about them that
//! it needs to see them for. [`strict_cut`] finds, before the cycle, a job that cannot be
//! admitted whatever the cycle does; the server hands the cycle a strict queue only up to it,
//! so a deep queue behind a blocked head costs a tick nothing (`sluice-server`'s admit step),
//! and says why the jobs left out wait from the cut job's reason.

use crate::capacity::Fitter;
use crate::job::{Demand, Resources};

/// The index, in queue order, of the first of a namespace's jobs that cannot be admitted in a
/// cycle over `fitter`'s room even if every job before it were: it fails the fitter's quick
/// bounds ([`Fitter::could_fit`]), or it and the jobs before it need more than the free room
/// in all. None when no job is ruled out that way.
///
/// Why it is exact for a namespace under `strict` without aging: a cycle's room only shrinks
/// as it admits, and both tests hold for less room, so the job at the cut is left waiting; in
/// a strict queue every job after it is then blocked (behind it, or behind an earlier job that
/// was not admitted either). Not for `best-effort` or `backfill` queues (they look past a
/// blocked head), with aging (it reorders a queue) or with preemption (the room can grow in
/// the cycle).
pub fn strict_cut<'d>(
    fitter: &Fitter,
    demands: impl IntoIterator<Item = &'d Demand>,
) -> Option<usize> {
    let mut cut = StrictCut::new(fitter);
    demands.into_iter().position(|d| cut.cuts(d))
}

/// [`strict_cut`] one job at a time, for a walk over a queue that stops at the cut (the server
/// walks a strict namespace's queue no further than it: its cost then grows with the jobs
/// before the cut, not with the queue's length).
#[derive(Debug, Clone)]
pub struct StrictCut<'f> {
    fitter: &'f Fitter,
    free: Resources,
    sum: Resources,
}

impl<'f> StrictCut<'f> {
    /// A cut over `fitter`'s room, before the first job.
    pub fn new(fitter: &'f Fitter) -> Self {
        Self {
            fitter,
            free: fitter.total_free(),
            sum: Resources::default(),
        }
    }

    /// Whether the next job in queue order, needing `demand`, is the cut (the jobs before it
    /// having been passed to this call in order).
    pub fn cuts(&mut self, demand: &Demand) -> bool {
        self.sum = self.sum.plus(&demand.total());
        !self.fitter.could_fit(demand) || !self.free.covers(&self.sum)
    }
}

#[cfg(test)]
mod tests;
