//! sluice's policy simulator: replays a job trace on a cluster in virtual time, deterministic
//! and pure (no clock, no I/O, no threads), so that the same trace, cluster and policy always
//! give the same report, and a later caller can run it forward to estimate start times.
//!
//! The sluice policies are replayed through the server's own cycle,
//! [`sluice_core::cycle::schedule`] (see [`engine`]); the "no admission control" baseline
//! models a plain Spark Operator (see [`baseline`]).
//!
//! Floors, bottom first: `error`, `rng`, `window` -> `trace`, `cluster` -> `model` -> `engine` ->
//! `baseline`, `aging` -> `stats` -> `generate`, `report` -> `lib`.

pub mod aging;
pub mod baseline;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod generate;
pub mod model;
pub mod report;
pub mod rng;
pub mod stats;
pub mod trace;
pub mod window;

pub use baseline::BaselineConfig;
pub use cluster::Cluster;
pub use error::SimError;
pub use model::{JobRun, Policy, Run, SimJob, Workload};
pub use stats::Summary;
pub use trace::TraceJob;

/// Replays one policy (exact run-time estimates for backfill).
pub fn replay(w: &Workload, cluster: &Cluster, policy: Policy, baseline: BaselineConfig) -> Run {
    replay_estimated(w, cluster, policy, baseline, 1.0)
}

/// Replays one policy; backfill expects each job to run its trace duration times
/// `estimate_factor`.
pub fn replay_estimated(
    w: &Workload,
    cluster: &Cluster,
    policy: Policy,
    baseline: BaselineConfig,
    estimate_factor: f64,
) -> Run {
    replay_eta(w, cluster, policy, baseline, estimate_factor, false)
}

/// As [`replay_estimated`]; with `eta`, every job left waiting at its submit gets a start-time
/// estimate ([`JobRun::eta_ms`]).
pub fn replay_eta(
    w: &Workload,
    cluster: &Cluster,
    policy: Policy,
    baseline: BaselineConfig,
    estimate_factor: f64,
    eta: bool,
) -> Run {
    match policy {
        Policy::NoAdmission => baseline::replay(w, cluster, baseline),
        p => engine::run(
            w,
            cluster,
            &engine::Options {
                eta,
                ..options(p, cluster, estimate_factor)
            },
        ),
    }
}

/// How the engine replays a sluice policy on this cluster.
pub fn options(policy: Policy, cluster: &Cluster, estimate_factor: f64) -> engine::Options {
    engine::Options {
        head: policy.head(),
        aging: policy.aging().unwrap_or(!cluster.aging.is_empty()),
        estimate_factor,
        prune: true,
        eta: false,
        preemption: policy.preemption(cluster),
    }
}

/// Replays each policy and summarises it (exact run-time estimates).
pub fn compare(
    w: &Workload,
    cluster: &Cluster,
    policies: &[Policy],
    baseline: BaselineConfig,
) -> Vec<Summary> {
    compare_estimated(w, cluster, policies, baseline, 1.0)
}

/// Replays each policy and summarises it, with backfill's estimates off by `estimate_factor`;
/// when `strict` is among the policies, each sluice policy's summary also says how much longer
/// than under strict any job waited ([`Summary::vs_strict`]).
pub fn compare_estimated(
    w: &Workload,
    cluster: &Cluster,
    policies: &[Policy],
    baseline: BaselineConfig,
    estimate_factor: f64,
) -> Vec<Summary> {
    compare_eta(w, cluster, policies, baseline, estimate_factor, false)
}

/// As [`compare_estimated`]; with `eta`, the summaries of the sluice policies also give the
/// accuracy of the start-time estimates made at submit ([`Summary::eta`]).
pub fn compare_eta(
    w: &Workload,
    cluster: &Cluster,
    policies: &[Policy],
    baseline: BaselineConfig,
    estimate_factor: f64,
    eta: bool,
) -> Vec<Summary> {
    compare_with(
        w,
        cluster,
        policies,
        &Compare {
            baseline,
            estimate_factor,
            eta,
            window: None,
        },
    )
}

/// How [`compare_with`] replays and what it measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compare {
    /// The no-admission baseline's settings.
    pub baseline: BaselineConfig,
    /// Backfill's estimates: each job expected to run its duration times this.
    pub estimate_factor: f64,
    /// Estimate start times at submit and measure their accuracy.
    pub eta: bool,
    /// Also measure utilisation over this daily batch window
    /// ([`Summary::window_utilisation`]).
    pub window: Option<window::BatchWindow>,
}

impl Default for Compare {
    fn default() -> Self {
        Compare {
            baseline: BaselineConfig::default(),
            estimate_factor: 1.0,
            eta: false,
            window: None,
        }
    }
}

/// Replays each policy and summarises it, as [`Compare`] says.
pub fn compare_with(
    w: &Workload,
    cluster: &Cluster,
    policies: &[Policy],
    how: &Compare,
) -> Vec<Summary> {
    let Compare {
        baseline,
        estimate_factor,
        eta,
        window,
    } = *how;
    let runs: Vec<Run> = policies
        .iter()
        .map(|&p| replay_eta(w, cluster, p, baseline, estimate_factor, eta))
        .collect();
    let strict = policies.iter().position(|&p| p == Policy::Strict);
    policies
        .iter()
        .zip(&runs)
        .map(|(&p, run)| {
            let mut s = stats::summarise(p, w, cluster, run);
            s.window_utilisation = window
                .and_then(|win| stats::window_utilisation(w, cluster, run, &win, s.makespan_ms));
            if let Some(k) = strict
                && p.is_sluice()
            {
                s.vs_strict = Some(stats::versus(w, run, &runs[k]));
            }
            if p.is_sluice() && options(p, cluster, estimate_factor).aging {
                s.aging = aging::check(
                    w,
                    cluster,
                    run,
                    w.jobs.first().map_or(0, |j| j.submit_ms) + s.makespan_ms,
                );
            }
            s
        })
        .collect()
}
