//! sluice's policy simulator: replays a job trace on a cluster in virtual time, deterministic
//! and pure (no clock, no I/O, no threads), so that the same trace, cluster and policy always
//! give the same report, and a later caller can run it forward to estimate start times.
//!
//! The sluice policies are replayed through the server's own cycle,
//! [`sluice_core::cycle::schedule`] (see [`engine`]); the "no admission control" baseline
//! models a plain Spark Operator (see [`baseline`]).
//!
//! Floors, bottom first: `error`, `rng` -> `trace`, `cluster` -> `model` -> `engine` ->
//! `baseline` -> `stats` -> `generate`, `report` -> `lib`.

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

pub use baseline::BaselineConfig;
pub use cluster::Cluster;
pub use error::SimError;
pub use model::{JobRun, Policy, Run, SimJob, Workload};
pub use stats::Summary;
pub use trace::TraceJob;

/// Replays one policy.
pub fn replay(w: &Workload, cluster: &Cluster, policy: Policy, baseline: BaselineConfig) -> Run {
    match policy {
        Policy::NoAdmission => baseline::replay(w, cluster, baseline),
        p => engine::replay(w, cluster, p.head()),
    }
}

/// Replays each policy and summarises it.
pub fn compare(
    w: &Workload,
    cluster: &Cluster,
    policies: &[Policy],
    baseline: BaselineConfig,
) -> Vec<Summary> {
    policies
        .iter()
        .map(|&p| stats::summarise(p, w, cluster, &replay(w, cluster, p, baseline)))
        .collect()
}
