//! The aging bound, checked on a replay.
//!
//! **The bound.** A job of level `l` rises one level each time it has waited the bound of its
//! current level (`[scheduler.aging_ms]`), so it reaches the top level after
//! `A = aging[l] + aging[l-1] + ... + aging[1]` of waiting (no bound for a job of the top level,
//! or when a level on the way has no bound). From then on it sorts with the top level by its
//! queue time, and once it is the first job of its namespace the cycle treats it as overdue
//! (`sluice_core::cycle::schedule_at`): it goes first, and if it does not fit it holds a hard
//! reservation that no later start may touch, so it waits only for the room held at that moment
//! to free. Its bound is `A + L`, `L` being the longest run in the trace. Like backfill's bound
//! it is a design bound, not a theorem for every trace (jobs of the top level queued before it
//! go first, and each holds its namespace while it waits); the report counts the jobs past it.

use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::model::{Run, Workload};

/// How the aged jobs of a replay fared against their bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgingCheck {
    /// Jobs that waited long enough to reach the top level.
    pub aged: usize,
    /// Of those, the jobs that waited longer than their bound (or never ran).
    pub over_bound: usize,
    /// Longest wait of an aged job past the time it reached the top level, ms.
    pub max_after_aging_ms: i64,
    /// The longest run in the trace (`L`), ms.
    pub longest_run_ms: i64,
    /// The job with the longest wait past reaching the top level.
    pub worst_job: String,
}

/// The time a job of `level` needs to wait to reach the top level, ms; none if it cannot.
pub fn time_to_top(level: usize, aging: &[Option<i64>]) -> Option<i64> {
    if level == 0 {
        return None;
    }
    (1..=level).try_fold(0i64, |acc, l| {
        let b = aging.get(l).copied().flatten().filter(|b| *b > 0)?;
        Some(acc.saturating_add(b))
    })
}

/// Checks every job of a replay with aging against its bound; none when the cluster has no
/// aging bounds. `end_ms`: the end of the replay, for a job that never ran.
pub fn check(w: &Workload, cluster: &Cluster, run: &Run, end_ms: i64) -> Option<AgingCheck> {
    if cluster.aging.iter().all(Option::is_none) {
        return None;
    }
    let longest = w.jobs.iter().map(|j| j.duration_ms).max().unwrap_or(0);
    let mut c = AgingCheck {
        aged: 0,
        over_bound: 0,
        max_after_aging_ms: 0,
        longest_run_ms: longest,
        worst_job: String::new(),
    };
    for (job, r) in w.jobs.iter().zip(&run.jobs) {
        if r.refused || !job.fits_empty {
            continue;
        }
        let Some(a) = time_to_top(job.level, &cluster.aging) else {
            continue;
        };
        let wait = r.start_ms.unwrap_or(end_ms) - job.submit_ms;
        if wait < a {
            continue;
        }
        c.aged += 1;
        let after = wait - a;
        if after > longest || r.start_ms.is_none() {
            c.over_bound += 1;
        }
        if after > c.max_after_aging_ms {
            c.max_after_aging_ms = after;
            c.worst_job = format!("{} ({})", job.id, job.name);
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_the_top_level_adds_the_bounds_on_the_way() {
        let aging = [None, Some(60), Some(30)];
        assert_eq!(time_to_top(0, &aging), None, "the top level does not age");
        assert_eq!(time_to_top(1, &aging), Some(60));
        assert_eq!(time_to_top(2, &aging), Some(90));
        assert_eq!(
            time_to_top(2, &[None, None, Some(30)]),
            None,
            "stuck at level 1"
        );
        assert_eq!(time_to_top(3, &aging), None, "no bound for level 3");
    }
}
