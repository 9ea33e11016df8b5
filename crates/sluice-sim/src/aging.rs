//! The aging bound, checked on a replay.
//!
//! **Reaching the top.** A job of level `l` rises one level each time it has waited the bound
//! of its current level (`[scheduler.aging_ms]`), so it reaches the top level after
//! `A = aging[l] + aging[l-1] + ... + aging[1]` of waiting, at `t_top = submit + A` (no bound
//! for a job of the top level, or when a level on the way has no bound). From then on it sorts
//! with the top level by its queue time, and once it is the first job of its namespace the
//! cycle treats it as overdue (`sluice_core::cycle::schedule_at`): it goes first, and if it
//! does not fit it holds a hard reservation that no later start may touch unless its
//! `maxRuntime` ends it before, so it waits only for the room held at that moment to free.
//!
//! **The bound, per job.** Reaching the top does not make a job the first of its namespace:
//! the jobs of its namespace sorted before it at `t_top` (queue order: level after aging,
//! queue time, id) that had not started by then go first, and each of them is overdue in turn.
//! So the bound is
//!
//! `start <= max(t_top, the last start of those jobs ahead of it) + L`,
//!
//! `L` being the longest run in the trace: once the last job ahead of it has started, it is
//! the first of its namespace and waits at most for the room held then to free. A job that
//! never ran, or whose jobs ahead never ran, is past it.
//!
//! **Why not `A + L`.** The first form of the bound, `start <= t_top + L`, ignores the jobs
//! ahead. On a trace with a nightly batch window (`examples/sim/nightly.csv`) the top-level
//! work queued in a namespace ahead of an aged job is more than the cluster runs in `L`, and
//! most aged jobs miss it. The check still counts the jobs past `A + L`
//! ([`AgingCheck::over_a_plus_l`]) beside those past the per-job bound.
//!
//! Both are design bounds, checked rather than proved: aged heads go before the heads overdue
//! only by backfill's wait bound, but among themselves in fair-share order, so another
//! namespace's aged head may go first, and a hard reservation
//! can slip when the jobs holding its room overrun their estimates. The report counts the jobs
//! past each.

use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::model::{Run, Workload};
use sluice_core::cycle::aged_level;

/// How the aged jobs of a replay fared against their bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgingCheck {
    /// Jobs that waited long enough to reach the top level.
    pub aged: usize,
    /// Of those, the jobs that started later than their per-job bound (the last start of the
    /// jobs of their namespace ahead of them when they reached the top, or that time, plus
    /// `L`), or never ran.
    pub over_bound: usize,
    /// Of those, the jobs that waited longer than `A + L` (the time to reach the top level
    /// plus the longest run), or never ran.
    pub over_a_plus_l: usize,
    /// Longest wait of an aged job past the time it reached the top level, ms.
    pub max_after_aging_ms: i64,
    /// The job with the longest wait past reaching the top level.
    pub worst_job: String,
    /// The most a job started past its per-job bound, ms (0: none did).
    pub max_past_bound_ms: i64,
    /// The job that started the most past its per-job bound (empty: none did).
    pub worst_past_bound: String,
    /// The longest run in the trace (`L`), ms.
    pub longest_run_ms: i64,
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

/// When the last of the jobs ahead of job `k` at `t_top` started: the jobs of its namespace
/// queued by then, not started by then, that sort before it at `t_top` (level after aging,
/// queue time, id). `t_top` when there are none; `end_ms` for one that never ran.
fn last_start_ahead(
    w: &Workload,
    run: &Run,
    aging: &[Option<i64>],
    k: usize,
    t_top: i64,
    end_ms: i64,
) -> i64 {
    let job = &w.jobs[k];
    let key = |i: usize| {
        let j = &w.jobs[i];
        (
            aged_level(j.level, t_top - j.submit_ms, aging),
            j.submit_ms,
            &j.id,
        )
    };
    let mine = key(k);
    w.jobs
        .iter()
        .zip(&run.jobs)
        .enumerate()
        .filter(|&(i, (j, r))| {
            i != k
                && j.ns == job.ns
                && !r.refused
                && j.submit_ms <= t_top
                && r.start_ms.is_none_or(|s| s > t_top)
                && key(i) < mine
        })
        .map(|(_, (_, r))| r.start_ms.unwrap_or(end_ms))
        .fold(t_top, i64::max)
}

/// Checks every job of a replay with aging against its bounds; none when the cluster has no
/// aging bounds. `end_ms`: the end of the replay, for a job that never ran.
pub fn check(w: &Workload, cluster: &Cluster, run: &Run, end_ms: i64) -> Option<AgingCheck> {
    if cluster.aging.iter().all(Option::is_none) {
        return None;
    }
    let longest = w.jobs.iter().map(|j| j.duration_ms).max().unwrap_or(0);
    let mut c = AgingCheck {
        aged: 0,
        over_bound: 0,
        over_a_plus_l: 0,
        max_after_aging_ms: 0,
        worst_job: String::new(),
        max_past_bound_ms: 0,
        worst_past_bound: String::new(),
        longest_run_ms: longest,
    };
    for (k, (job, r)) in w.jobs.iter().zip(&run.jobs).enumerate() {
        if r.refused || !job.fits_empty {
            continue;
        }
        let Some(a) = time_to_top(job.level, &cluster.aging) else {
            continue;
        };
        let start = r.start_ms.unwrap_or(end_ms);
        let wait = start - job.submit_ms;
        if wait < a {
            continue;
        }
        c.aged += 1;
        let t_top = job.submit_ms + a;
        let after = wait - a;
        if after > longest || r.start_ms.is_none() {
            c.over_a_plus_l += 1;
        }
        let bound = last_start_ahead(w, run, &cluster.aging, k, t_top, end_ms) + longest;
        if start > bound || r.start_ms.is_none() {
            c.over_bound += 1;
            if start - bound > c.max_past_bound_ms {
                c.max_past_bound_ms = start - bound;
                c.worst_past_bound = format!("{} ({})", job.id, job.name);
            }
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
