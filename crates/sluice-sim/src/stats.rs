//! What a replay shows: waits by level and namespace, utilisation over time, share against
//! weight, half-started jobs, starvation and makespan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::model::{Policy, Run, Workload, dominant};
use crate::window::BatchWindow;

/// Wait times of a set of jobs (submit to start), by nearest rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Waits {
    /// Jobs that started.
    pub count: usize,
    /// Median wait, ms.
    pub p50_ms: i64,
    /// 95th percentile, ms.
    pub p95_ms: i64,
    /// Longest wait, ms.
    pub max_ms: i64,
}

impl Waits {
    /// Nearest-rank percentiles of the given waits (sorted here).
    pub fn of(mut waits: Vec<i64>) -> Self {
        waits.sort_unstable();
        let rank = |p: f64| -> i64 {
            if waits.is_empty() {
                return 0;
            }
            let r = ((p * waits.len() as f64).ceil() as usize).clamp(1, waits.len());
            waits[r - 1]
        };
        Waits {
            count: waits.len(),
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            max_ms: waits.last().copied().unwrap_or(0),
        }
    }
}

/// A namespace's share of the cluster against its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The namespace.
    pub namespace: String,
    /// Its fair-share weight.
    pub weight: u32,
    /// Its weight over the sum of the weights of the trace's namespaces.
    pub weight_share: f64,
    /// Its mean dominant share of the cluster while some job waited, over the sum of those
    /// means of all namespaces (what it got of what was handed out under contention).
    pub contended_share: f64,
}

/// One bucket of the utilisation chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket, ms from the first submit.
    pub at_ms: i64,
    /// Mean dominant share of the cluster held by running jobs (doing work), 0 to 1.
    pub busy: f64,
    /// Mean dominant share held by any pod (running jobs and half-started ones).
    pub held: f64,
    /// Mean number of jobs waiting.
    pub waiting: f64,
}

/// Everything the report shows of one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The policy.
    pub policy: Policy,
    /// Jobs in the trace.
    pub jobs: usize,
    /// Refused at submit: they can never fit the cluster.
    pub refused: usize,
    /// Jobs that ran.
    pub ran: usize,
    /// Jobs that fit the cluster and never ran.
    pub never_ran: usize,
    /// Jobs that held some pods while others waited.
    pub half_started: usize,
    /// Times a half-started job was killed and submitted again.
    pub restarts: u64,
    /// Times a running job was preempted (sent back to its queue for a higher level).
    #[serde(default)]
    pub preempted: u64,
    /// Core-hours held by pods of half-started jobs, doing nothing.
    pub idle_core_hours: f64,
    /// Waits of every job that ran.
    pub waits: Waits,
    /// Waits per level, highest first.
    pub by_level: Vec<(String, Waits)>,
    /// Waits per namespace.
    pub by_namespace: Vec<(String, Waits)>,
    /// Longest wait of a job that fit the empty cluster (to the end of the replay for one that
    /// never ran), ms.
    pub starvation_ms: i64,
    /// From the first submit to the last finish, ms.
    pub makespan_ms: i64,
    /// Mean dominant share of the cluster doing work over the makespan, 0 to 1.
    pub utilisation: f64,
    /// Mean dominant share held by pods (including half-started ones), 0 to 1.
    pub held_utilisation: f64,
    /// Mean dominant share of the cluster doing work over the time some job was waiting, 0 to
    /// 1: how much of the room a backlog leaves idle.
    #[serde(default)]
    pub contended_utilisation: f64,
    /// Mean dominant share of the cluster doing work over the batch window's hours between the
    /// first submit and the makespan's end, 0 to 1, when a window was given
    /// ([`window_utilisation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_utilisation: Option<f64>,
    /// Share against weight per namespace.
    pub shares: Vec<Share>,
    /// Runs by outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Utilisation and queue over time.
    pub series: Vec<Bucket>,
    /// Cycles run.
    pub cycles: u64,
    /// Waits against the `strict` replay of the same trace, when it was replayed too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_strict: Option<Versus>,
    /// Accuracy of the start-time estimates made at submit, when they were made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<EtaAccuracy>,
    /// The aged jobs against their bound ([`crate::aging`]), for a policy with aging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aging: Option<crate::aging::AgingCheck>,
}

/// How close the start-time estimates made at submit came to the real starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtaAccuracy {
    /// Jobs that were estimated (left waiting at submit) and started.
    pub jobs: usize,
    /// Mean absolute error of the estimated start, ms.
    pub mean_abs_error_ms: i64,
    /// Share of them whose real wait was within 20% of the estimated wait (0 to 1).
    pub within_20pct: f64,
    /// Jobs left waiting at submit that got no estimate (they did not start in the forward run).
    pub unestimated: usize,
}

/// The accuracy of the estimates in a run, if any job was left waiting at submit.
pub fn eta_accuracy(w: &Workload, run: &Run) -> Option<EtaAccuracy> {
    let (mut n, mut err, mut within, mut none) = (0usize, 0i128, 0usize, 0usize);
    for (job, r) in w.jobs.iter().zip(&run.jobs) {
        let Some(start) = r.start_ms else { continue };
        if start == job.submit_ms {
            continue;
        }
        let Some(eta) = r.eta_ms else {
            none += 1;
            continue;
        };
        n += 1;
        err += i128::from((start - eta).abs());
        let (est, real) = ((eta - job.submit_ms) as f64, (start - job.submit_ms) as f64);
        if (real - est).abs() <= 0.2 * est {
            within += 1;
        }
    }
    (n > 0).then(|| EtaAccuracy {
        jobs: n,
        mean_abs_error_ms: i64::try_from(err / n as i128).unwrap_or(i64::MAX),
        within_20pct: within as f64 / n as f64,
        unestimated: none,
    })
}

/// One replay's waits against another's (job by job, the jobs that ran in both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versus {
    /// The longest a job waited beyond its wait in the other replay, ms (0 if none waited
    /// longer).
    pub max_extra_wait_ms: i64,
    /// Name of that job (trace order id if unnamed).
    pub max_extra_job: String,
    /// Jobs that waited longer than in the other replay.
    pub longer: usize,
    /// Jobs that waited less.
    pub shorter: usize,
}

/// Compares the waits of `run` with those of `other`, job by job.
pub fn versus(w: &Workload, run: &Run, other: &Run) -> Versus {
    let mut v = Versus {
        max_extra_wait_ms: 0,
        max_extra_job: String::new(),
        longer: 0,
        shorter: 0,
    };
    for ((job, a), b) in w.jobs.iter().zip(&run.jobs).zip(&other.jobs) {
        let (Some(sa), Some(sb)) = (a.start_ms, b.start_ms) else {
            continue;
        };
        let extra = sa - sb;
        if extra > 0 {
            v.longer += 1;
        } else if extra < 0 {
            v.shorter += 1;
        }
        if extra > v.max_extra_wait_ms {
            v.max_extra_wait_ms = extra;
            v.max_extra_job = format!("{} ({})", job.id, job.name);
        }
    }
    v
}

/// Buckets in the time series.
pub const BUCKETS: usize = 120;

/// Summarises one replay.
pub fn summarise(policy: Policy, w: &Workload, cluster: &Cluster, run: &Run) -> Summary {
    let t0 = w.jobs.first().map_or(0, |j| j.submit_ms);
    let t_end = run
        .jobs
        .iter()
        .filter_map(|r| r.end_ms)
        .max()
        .unwrap_or(t0)
        .max(run.usage.last().map_or(t0, |u| u.at_ms));
    let mut all = Vec::new();
    let mut by_level: Vec<Vec<i64>> = vec![Vec::new(); w.levels.len()];
    let mut by_ns: Vec<Vec<i64>> = vec![Vec::new(); w.namespaces.len()];
    let mut outcomes = BTreeMap::new();
    let (mut refused, mut never_ran, mut half, mut restarts) = (0, 0, 0, 0u64);
    let mut preempted = 0u64;
    let mut idle: u128 = 0;
    let mut starvation = 0;
    for (job, r) in w.jobs.iter().zip(&run.jobs) {
        refused += usize::from(r.refused);
        half += usize::from(r.half_started);
        restarts += u64::from(r.restarts);
        preempted += u64::from(r.preempted);
        idle += r.idle_held_cpu;
        match r.start_ms {
            Some(s) => {
                let wait = s - job.submit_ms;
                all.push(wait);
                by_level[job.level].push(wait);
                by_ns[job.ns].push(wait);
                if job.fits_empty {
                    starvation = starvation.max(wait);
                }
                *outcomes
                    .entry(job.outcome.as_str().to_string())
                    .or_insert(0) += 1;
            }
            None if job.fits_empty => {
                never_ran += 1;
                starvation = starvation.max(t_end - job.submit_ms);
            }
            None => {}
        }
    }
    let total = cluster.total();
    let series = buckets(run, &total, t0, t_end);
    let span = (t_end - t0).max(1) as f64;
    let mean = |f: &dyn Fn(&crate::model::UsagePoint) -> f64| -> f64 {
        let mut acc = 0.0;
        for (i, u) in run.usage.iter().enumerate() {
            let next = run.usage.get(i + 1).map_or(t_end, |n| n.at_ms);
            acc += f(u) * (next - u.at_ms).max(0) as f64;
        }
        acc / span
    };
    let (mut busy_waiting, mut waiting_ms) = (0.0, 0i64);
    for (i, u) in run.usage.iter().enumerate() {
        let next = run.usage.get(i + 1).map_or(t_end, |n| n.at_ms);
        if u.waiting > 0 {
            let dt = (next - u.at_ms).max(0);
            busy_waiting += dominant(&u.busy, &total) * dt as f64;
            waiting_ms += dt;
        }
    }
    let weights: Vec<u32> = w
        .namespaces
        .iter()
        .map(|ns| cluster.policy_of(ns).weight.max(1))
        .collect();
    let wsum: f64 = weights.iter().map(|&x| f64::from(x)).sum();
    let ssum: f64 = run.contended_share_ms.iter().sum();
    let shares = w
        .namespaces
        .iter()
        .enumerate()
        .map(|(i, ns)| Share {
            namespace: ns.clone(),
            weight: weights[i],
            weight_share: f64::from(weights[i]) / wsum.max(1.0),
            contended_share: if ssum > 0.0 {
                run.contended_share_ms[i] / ssum
            } else {
                0.0
            },
        })
        .collect();
    Summary {
        policy,
        jobs: w.jobs.len(),
        refused,
        ran: all.len(),
        never_ran,
        half_started: half,
        restarts,
        preempted,
        idle_core_hours: idle as f64 / 1000.0 / 3_600_000.0,
        waits: Waits::of(all),
        by_level: w
            .levels
            .iter()
            .cloned()
            .zip(by_level.into_iter().map(Waits::of))
            .collect(),
        by_namespace: w
            .namespaces
            .iter()
            .cloned()
            .zip(by_ns.into_iter().map(Waits::of))
            .collect(),
        starvation_ms: starvation,
        makespan_ms: t_end - t0,
        utilisation: mean(&|u| dominant(&u.busy, &total)),
        held_utilisation: mean(&|u| dominant(&u.held, &total)),
        contended_utilisation: if waiting_ms > 0 {
            busy_waiting / waiting_ms as f64
        } else {
            0.0
        },
        window_utilisation: None,
        shares,
        outcomes,
        series,
        cycles: run.cycles,
        vs_strict: None,
        eta: eta_accuracy(w, run),
        aging: None,
    }
}

/// Mean dominant share of the cluster doing work over the hours of `window` (trace time 0 is
/// the start of day 0) from the first submit to the makespan's end; `None` if that span has
/// none of the window's hours.
pub fn window_utilisation(
    w: &Workload,
    cluster: &Cluster,
    run: &Run,
    window: &BatchWindow,
    makespan_ms: i64,
) -> Option<f64> {
    let t0 = w.jobs.first().map_or(0, |j| j.submit_ms);
    let t_end = t0.saturating_add(makespan_ms);
    let total = cluster.total();
    let (mut busy, mut inside) = (0.0, 0i64);
    for (i, u) in run.usage.iter().enumerate() {
        let next = run.usage.get(i + 1).map_or(t_end, |n| n.at_ms).min(t_end);
        let dt = window.overlap(u.at_ms.max(t0), next);
        busy += dominant(&u.busy, &total) * dt as f64;
        inside += dt;
    }
    (inside > 0).then(|| busy / inside as f64)
}

/// Time-weighted means over [`BUCKETS`] equal buckets from `t0` to `t_end`.
fn buckets(run: &Run, total: &sluice_core::job::Resources, t0: i64, t_end: i64) -> Vec<Bucket> {
    let span = (t_end - t0).max(1);
    let width = (span as f64 / BUCKETS as f64).max(1.0);
    let mut acc = vec![(0.0, 0.0, 0.0); BUCKETS];
    for (i, u) in run.usage.iter().enumerate() {
        let end = run.usage.get(i + 1).map_or(t_end, |n| n.at_ms);
        let (busy, held, waiting) = (
            dominant(&u.busy, total),
            dominant(&u.held, total),
            f64::from(u.waiting),
        );
        let mut a = (u.at_ms - t0) as f64;
        let b = (end - t0) as f64;
        while a < b {
            let k = ((a / width) as usize).min(BUCKETS - 1);
            let edge = if k == BUCKETS - 1 {
                b
            } else {
                ((k + 1) as f64 * width).min(b)
            };
            let dt = (edge - a).max(0.0);
            acc[k].0 += busy * dt;
            acc[k].1 += held * dt;
            acc[k].2 += waiting * dt;
            if edge <= a {
                break;
            }
            a = edge;
        }
    }
    acc.into_iter()
        .enumerate()
        .map(|(k, (b, h, q))| Bucket {
            at_ms: (k as f64 * width) as i64,
            busy: b / width,
            held: h / width,
            waiting: q / width,
        })
        .collect()
}
