//! Backfill with a reservation for the head (EASY backfill) and aging: the parts of the cycle
//! that look at time. Pure: `now` and the expected end of every running job are inputs.
//!
//! When the head of a `backfill` namespace does not fit, [`earliest_start`] replays the
//! expected ends of the running jobs (and of the jobs admitted earlier in the same cycle) on a
//! copy of the free room, node by node, until the head fits: that time is its reserved start,
//! and the room left at that time once the head is placed is the *shadow*. A later job may pass
//! the head only if it fits now and either ends (by its expected run time) before the reserved
//! start or also fits the shadow on the same nodes, so that it cannot delay the head's start
//! when the estimates hold.

use serde::{Deserialize, Serialize};

use crate::capacity::{Eligible, Fitter, NodeCapacity, Placement};
use crate::job::{Demand, Resources};

/// A job that holds room now (running, or admitted and not yet running), as backfill sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunningJob {
    /// When it is expected to end, ms (its start plus its expected run time).
    pub end_ms: i64,
    /// Its namespace, when known (the start-time estimate gives its room back to it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Its pods: (index of its node in [`crate::capacity::Snapshot::nodes`], the pod's request).
    pub pods: Vec<(usize, Resources)>,
}

impl RunningJob {
    /// The pods of `demand` where `placement` put them.
    pub fn placed(end_ms: i64, demand: &Demand, placement: &Placement) -> Self {
        RunningJob {
            end_ms,
            namespace: String::new(),
            pods: placement
                .pods
                .iter()
                .map(|&(role, node)| {
                    (
                        node,
                        demand.role(role).map(|p| p.each()).unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }
}

/// How backfill estimates run times and bounds the damage of wrong estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillSettings {
    /// Expected run time of a job without an estimate of its own, ms.
    pub default_runtime_ms: i64,
    /// A running job past its expected end is taken to end this long after `now`, ms.
    pub overrun_margin_ms: i64,
    /// A head that has waited (since it was enqueued) at least this long is overdue: it goes
    /// first, and its reservation is hard: every later start, its own namespace's included,
    /// must fit beside it unless its `maxRuntime` ends it before the reserved start (no
    /// estimate counts). `None`: no bound.
    pub max_head_wait_ms: Option<i64>,
}

/// One hour, in ms.
const HOUR_MS: i64 = 3_600_000;

impl Default for BackfillSettings {
    fn default() -> Self {
        BackfillSettings {
            default_runtime_ms: HOUR_MS,
            overrun_margin_ms: 5 * 60_000,
            max_head_wait_ms: Some(2 * HOUR_MS),
        }
    }
}

/// The expected end of a job that holds room, with overruns pushed to `now + margin`.
pub fn expected_end(end_ms: i64, now_ms: i64, margin_ms: i64) -> i64 {
    if end_ms > now_ms {
        end_ms
    } else {
        now_ms.saturating_add(margin_ms.max(0))
    }
}

/// The earliest time at which `demand` fits, if the jobs of `running` end as expected (an
/// overrun one at `now + margin`), starting from the free room `free`: the time and the room
/// left then once `demand` is placed (the shadow). `None` when it does not fit even once every
/// job has ended (its room is held by something not in `running`).
pub fn earliest_start(
    free: &Fitter,
    running: &[&RunningJob],
    now_ms: i64,
    margin_ms: i64,
    demand: &Demand,
    eligible: Option<&Eligible>,
) -> Option<(i64, Fitter)> {
    let mut at = free.clone();
    if at.try_place_on(demand, eligible).is_ok() {
        return Some((now_ms, at));
    }
    let mut ends: Vec<(i64, usize)> = running
        .iter()
        .enumerate()
        .map(|(k, r)| (expected_end(r.end_ms, now_ms, margin_ms), k))
        .collect();
    ends.sort_unstable();
    let need = demand.total();
    let mut total = at.total_free();
    let mut pending: Vec<(usize, Resources)> = Vec::new();
    let mut k = 0;
    while k < ends.len() {
        let t = ends[k].0;
        while k < ends.len() && ends[k].0 == t {
            for &(node, pod) in &running[ends[k].1].pods {
                total = total.plus(&pod);
                pending.push((node, pod));
            }
            k += 1;
        }
        if !total.covers(&need) {
            continue;
        }
        at.release_all(&pending);
        pending.clear();
        if at.try_place_on(demand, eligible).is_ok() {
            return Some((t, at));
        }
    }
    None
}

/// Where running jobs most likely hold their room, for a caller that knows what each holds but
/// not on which nodes (Kubernetes places the pods): each job's pods go first fit into the room
/// held on each node (`allocatable` less `free`, node by node), and the job ends at its
/// expected end (the second field). A job whose pods do not fit the held room is left out: its
/// room is not expected back, which makes reservations later, never earlier. Lists of different
/// lengths give nothing.
pub fn place_running(
    allocatable: &[NodeCapacity],
    free: &[NodeCapacity],
    jobs: &[(Demand, i64)],
) -> Vec<RunningJob> {
    if allocatable.len() != free.len() {
        return Vec::new();
    }
    let held: Vec<NodeCapacity> = allocatable
        .iter()
        .zip(free)
        .map(|(a, f)| NodeCapacity {
            name: String::new(),
            cpu_milli: a.cpu_milli.saturating_sub(f.cpu_milli),
            mem_mib: a.mem_mib.saturating_sub(f.mem_mib),
            pods: match (a.pods, f.pods) {
                (Some(x), Some(y)) => Some(x.saturating_sub(y)),
                _ => None,
            },
        })
        .collect();
    let mut fitter = Fitter::new(&held);
    jobs.iter()
        .filter_map(|(demand, end_ms)| {
            let p = fitter.try_place(demand).ok()?;
            Some(RunningJob::placed(*end_ms, demand, &p))
        })
        .collect()
}

/// The level a job waits at after `waited_ms`: while the bound of its current level is set
/// (`aging[level]`, ms) and the time left covers it, it rises one level (towards 0) and the
/// bound is taken off the time left. Level 0 does not rise.
pub fn aged_level(level: usize, waited_ms: i64, aging: &[Option<i64>]) -> usize {
    let mut level = level;
    let mut left = waited_ms;
    while level > 0 {
        match aging.get(level).copied().flatten() {
            Some(bound) if bound > 0 && left >= bound => {
                left -= bound;
                level -= 1;
            }
            _ => break,
        }
    }
    level
}

#[cfg(test)]
mod tests;
