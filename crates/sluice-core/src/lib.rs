//! The pure core of sluice.
//!
//! Everything here is deterministic: no clock, no randomness, no I/O. Callers pass `now` in.
//! - [`duration`]: the one duration grammar ("90", "90s", "1h 30m", "500ms", "2d").
//! - [`quantity`]: CPU and memory quantities as Spark and Kubernetes write them.
//! - [`spec`]: the job model and the checks of its fields.
//! - [`document`]: the job document parser (sluice's own spec or a `SparkApplication`).
//! - [`sizing`]: the pod-level demand of a job, by Spark's own rules.
//! - [`job`]: job states, records and transition history, shared by the store and the server.
//! - [`capacity`]: capacity snapshots and the per-node, all-or-nothing fit check.
//! - [`cycle`]: one scheduling cycle over the queues.
//! - [`schedule`]: cron schedules in time zones, concurrency and missed-run policies.
//! - [`retry`]: failure classes, retry policies, backoff with deterministic jitter, OOM raises.
//! - [`stored`]: the stored job (job, policy, the user's document), encoded and decoded once.
//! - [`pods`]: Kubernetes scheduling rules (pod requests, taints, selectors, node room, quotas).

pub mod capacity;
pub mod cycle;
pub mod document;
pub mod duration;
pub mod job;
pub mod pods;
pub mod quantity;
pub mod queue;
pub mod retry;
pub mod schedule;
pub mod sizing;
pub mod spec;
pub mod stored;

pub use capacity::{NodeCapacity, Snapshot};
pub use job::{Demand, JobState, PodDemand, Resources, Role};
