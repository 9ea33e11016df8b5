//! Preemption, opt-in per level and namespace: a queued job that does not fit may stop running
//! jobs of strictly lower priority so that it fits. Pure: the caller says where each running
//! job holds its room and how often it was preempted already; the caller stops the victims
//! (with a grace period) and sends them back to their queues.
//!
//! [`schedule_preempting`] wraps one cycle ([`schedule_at`]):
//!
//! 1. **Pending preemptors first.** A job that preempted earlier and whose victims' room may be
//!    free now ([`PreemptionInput::pending`]) is placed before the cycle's fair-share order, so
//!    the room its victims gave back goes to it and not to someone else. One that does not fit
//!    yet (the victims still stopping) goes through the cycle as usual and is never planned
//!    again while it is pending.
//! 2. **The cycle**, over the rest, on the room left.
//! 3. **Plans.** For each job left waiting for room ([`WaitReason::NoRoom`]) whose level may
//!    preempt and whose namespace takes part, best level first, then oldest: the candidates are
//!    the running jobs of a namespace that takes part, of a strictly lower level, preempted
//!    fewer than [`PreemptionSettings::max_per_job`] times and not already a victim, ordered
//!    lowest priority first, then most recently started first (the least work lost), then id.
//!    They are added one by one, each giving back its pods on their nodes, until the job fits
//!    per node ([`Fitter::try_place_on`]); if it never fits, nobody is preempted for it. Then
//!    victims are taken out again, last added first, while the job still fits without them,
//!    until none can be taken out: removing any single victim left makes the job not fit. The
//!    room of the victims is given to the job in the working copy of the free room, so later
//!    plans in the same cycle cannot count it twice; a job that fits in room an earlier plan
//!    frees and leaves over takes it there without victims of its own.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Admission, CycleInput, CycleOutput, RunningJob, Timing, WaitReason, schedule_at};
use crate::capacity::{Fitter, Placement, Snapshot};
use crate::job::Resources;

/// Who may preempt whom.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PreemptionSettings {
    /// Per level index (0 the highest): whether a queued job of that level may preempt.
    /// Missing: it may not. All false: preemption is off.
    pub levels: Vec<bool>,
    /// The namespaces that take part (their jobs may preempt and be preempted); `None`: every
    /// namespace.
    pub namespaces: Option<BTreeSet<String>>,
    /// A job preempted this many times is not preempted any more.
    pub max_per_job: u32,
}

impl PreemptionSettings {
    /// True when some level may preempt.
    pub fn enabled(&self) -> bool {
        self.levels.iter().any(|&on| on)
    }

    /// True when the namespace takes part.
    pub fn takes_part(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
    }

    /// True when a queued job of `level` in `namespace` may preempt.
    pub fn may_preempt(&self, namespace: &str, level: usize) -> bool {
        self.levels.get(level).copied().unwrap_or(false) && self.takes_part(namespace)
    }
}

/// A running job, as preemption sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Preemptible {
    /// Job id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Its own priority level index (0 the highest).
    pub level: usize,
    /// When it started (or was admitted), ms: the most recent goes first.
    pub started_at_ms: i64,
    /// Its pods: (index of its node in [`Snapshot::nodes`], the pod's request).
    pub pods: Vec<(usize, Resources)>,
    /// How many times it was preempted already.
    pub preemptions: u32,
}

/// What preemption needs beyond the cycle's input.
#[derive(Debug, Clone, Copy)]
pub struct PreemptionInput<'a> {
    /// Who may preempt whom.
    pub settings: &'a PreemptionSettings,
    /// The running jobs that could be preempted (jobs being stopped already left out).
    pub running: &'a [Preemptible],
    /// Candidates (indices into [`CycleInput::candidates`]) that preempted earlier and wait
    /// for their victims' room: placed first when they fit, never planned again.
    pub pending: &'a [usize],
}

/// A decision to preempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preemption {
    /// The job that needs the room: index into [`CycleInput::candidates`].
    pub index: usize,
    /// Its victims: indices into [`PreemptionInput::running`], in the order they were chosen.
    pub victims: Vec<usize>,
    /// Where the job is expected to go once they are gone.
    pub placement: Placement,
}

/// One cycle with preemption: the cycle's decisions (pending preemptors that fit now count as
/// admitted, first) and the preemptions to make.
pub fn schedule_preempting(
    input: &CycleInput<'_>,
    timing: &Timing<'_>,
    preemption: &PreemptionInput<'_>,
) -> (CycleOutput, Vec<Preemption>) {
    let cands = input.candidates;
    let mut fitter = Fitter::new(&input.snapshot.nodes);
    let mut first: Vec<Admission> = Vec::new();
    let mut held = input.held.clone();
    if input.snapshot.available {
        let mut pending: Vec<usize> = preemption
            .pending
            .iter()
            .copied()
            .filter(|&i| i < cands.len())
            .collect::<BTreeSet<usize>>()
            .into_iter()
            .collect();
        pending.sort_by(|&a, &b| {
            let (x, y) = (&cands[a], &cands[b]);
            (x.level, x.enqueued_at_ms, &x.id).cmp(&(y.level, y.enqueued_at_ms, &y.id))
        });
        for index in pending {
            let job = &cands[index];
            let constraints = job.constraints.as_ref();
            if constraints.is_some_and(|c| c.blocked.is_some()) {
                continue;
            }
            if let Ok(placement) =
                fitter.try_place_on(&job.demand, constraints.map(|c| &c.eligible))
            {
                let h = held.entry(job.namespace.clone()).or_default();
                *h = h.plus(&job.demand.total());
                first.push(Admission { index, placement });
            }
        }
    }
    // The cycle over everything else, on the room left.
    let placed: BTreeSet<usize> = first.iter().map(|a| a.index).collect();
    let map: Vec<usize> = (0..cands.len()).filter(|i| !placed.contains(i)).collect();
    let rest: Vec<_> = map.iter().map(|&i| cands[i].clone()).collect();
    let expected: Vec<Option<i64>> = map
        .iter()
        .map(|&i| timing.expected_ms.get(i).copied().flatten())
        .collect();
    let max_runtime: Vec<Option<i64>> = map
        .iter()
        .map(|&i| timing.max_runtime_ms.get(i).copied().flatten())
        .collect();
    let snapshot = Snapshot {
        available: input.snapshot.available,
        nodes: fitter.nodes().to_vec(),
        allocatable: input.snapshot.allocatable.clone(),
    };
    let mut running: Vec<RunningJob> = timing.running.to_vec();
    for a in &first {
        let end = timing.now_ms.saturating_add(
            timing
                .expected_ms
                .get(a.index)
                .copied()
                .flatten()
                .unwrap_or(timing.backfill.default_runtime_ms),
        );
        running.push(RunningJob::placed(
            end,
            &cands[a.index].demand,
            &a.placement,
        ));
    }
    let sub = schedule_at(
        &CycleInput {
            candidates: &rest,
            snapshot: &snapshot,
            held: &held,
            namespaces: input.namespaces,
            default_policy: input.default_policy,
        },
        &Timing {
            expected_ms: &expected,
            max_runtime_ms: &max_runtime,
            running: &running,
            ..*timing
        },
    );
    let mut out = CycleOutput {
        admitted: first,
        ..CycleOutput::default()
    };
    for mut a in sub.admitted {
        fitter.place_at(&rest[a.index].demand, &a.placement);
        a.index = map[a.index];
        out.admitted.push(a);
    }
    out.waiting = sub
        .waiting
        .into_iter()
        .map(|mut w| {
            w.index = map[w.index];
            w
        })
        .collect();
    out.reservations = sub
        .reservations
        .into_iter()
        .map(|mut r| {
            r.index = map[r.index];
            r
        })
        .collect();
    out.aged = sub
        .aged
        .into_iter()
        .map(|mut a| {
            a.index = map[a.index];
            a
        })
        .collect();
    if !input.snapshot.available || !preemption.settings.enabled() {
        return (out, Vec::new());
    }
    let plans = plan(input, &out, &mut fitter, preemption);
    (out, plans)
}

/// Step 3: the preemptions for the jobs left waiting for room, on `fitter` (the room left
/// after every admission of the cycle).
fn plan(
    input: &CycleInput<'_>,
    out: &CycleOutput,
    fitter: &mut Fitter,
    preemption: &PreemptionInput<'_>,
) -> Vec<Preemption> {
    let cands = input.candidates;
    let settings = preemption.settings;
    let pending: BTreeSet<usize> = preemption.pending.iter().copied().collect();
    let mut wanting: Vec<usize> = out
        .waiting
        .iter()
        .filter(|w| matches!(w.reason, WaitReason::NoRoom(_)))
        .map(|w| w.index)
        .filter(|&i| !pending.contains(&i))
        .filter(|&i| settings.may_preempt(&cands[i].namespace, cands[i].level))
        .collect();
    wanting.sort_by(|&a, &b| {
        let (x, y) = (&cands[a], &cands[b]);
        (x.level, x.enqueued_at_ms, &x.id).cmp(&(y.level, y.enqueued_at_ms, &y.id))
    });
    let running = preemption.running;
    // Lowest priority first, then most recently started, then id.
    let mut order: Vec<usize> = (0..running.len())
        .filter(|&k| {
            let r = &running[k];
            settings.takes_part(&r.namespace) && r.preemptions < settings.max_per_job
        })
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&running[a], &running[b]);
        y.level
            .cmp(&x.level)
            .then(y.started_at_ms.cmp(&x.started_at_ms))
            .then(x.id.cmp(&y.id))
    });
    let mut used = vec![false; running.len()];
    let mut plans = Vec::new();
    for index in wanting {
        let job = &cands[index];
        let eligible = job.constraints.as_ref().map(|c| &c.eligible);
        if job
            .constraints
            .as_ref()
            .is_some_and(|c| c.blocked.is_some())
        {
            continue;
        }
        let pool: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&k| !used[k] && running[k].level > job.level)
            .collect();
        let fits = |victims: &[usize]| -> Option<Placement> {
            let mut f = fitter.clone();
            for &k in victims {
                f.release_all(&running[k].pods);
            }
            f.try_place_on(&job.demand, eligible).ok()
        };
        // It fits in room that earlier plans of this cycle free and leave over: it needs no
        // victim of its own (it starts once theirs are gone); later plans may not count it.
        if let Some(placement) = fits(&[]) {
            fitter.place_at(&job.demand, &placement);
            continue;
        }
        // Add victims until the job fits.
        let mut chosen: Vec<usize> = Vec::new();
        let mut fitted = false;
        for &k in &pool {
            chosen.push(k);
            if fits(&chosen).is_some() {
                fitted = true;
                break;
            }
        }
        if !fitted {
            continue;
        }
        // Take out every victim not needed, last added first, until none can be.
        loop {
            let mut dropped = false;
            for n in (0..chosen.len()).rev() {
                let mut without = chosen.clone();
                without.remove(n);
                if fits(&without).is_some() {
                    chosen = without;
                    dropped = true;
                    break;
                }
            }
            if !dropped {
                break;
            }
        }
        let Some(placement) = fits(&chosen) else {
            continue;
        };
        for &k in &chosen {
            fitter.release_all(&running[k].pods);
            used[k] = true;
        }
        fitter.place_at(&job.demand, &placement);
        plans.push(Preemption {
            index,
            victims: chosen,
            placement,
        });
    }
    plans
}

/// The victims' ids of a plan, with the preemptor's candidate index: for callers that report.
pub fn victim_ids<'a>(plan: &Preemption, running: &'a [Preemptible]) -> Vec<&'a str> {
    plan.victims
        .iter()
        .filter_map(|&k| running.get(k).map(|r| r.id.as_str()))
        .collect()
}

#[cfg(test)]
mod tests;
