//! The pure core of sluice.
//!
//! Everything here is deterministic: no clock, no randomness, no I/O. Callers pass `now` in.
//! - [`duration`]: the one duration grammar ("90", "90s", "1h 30m", "500ms", "2d").
//! - [`quantity`]: CPU and memory quantities as Spark and Kubernetes write them.
//! - [`secretref`]: references to secrets (a file, an environment variable, a Kubernetes Secret).
//! - [`spec`]: the job model and the checks of its fields.
//! - [`safety`]: what a job may never ask of the host (loader variables, `..`, options smuggled
//!   into `spark-submit`).
//! - [`document`]: the job document parser (sluice's own spec or a `SparkApplication`).
//! - [`sizing`]: the pod-level demand of a job, by Spark's own rules.
//! - [`job`]: job states, demand and transition history, shared by the store and the server.
//! - [`capacity`]: capacity snapshots and the per-node, all-or-nothing fit check.
//! - [`cycle`]: one scheduling cycle over the queues.
//! - [`schedule`]: cron schedules in time zones, concurrency and missed-run policies.
//! - [`retry`]: failure classes, retry policies, backoff with deterministic jitter, OOM raises.
//! - [`stored`]: the stored job (job, policy, the user's document), encoded and decoded once.
//! - [`record`]: the job record the store hands out, its stored job decoded once.
//! - [`run_result`]: what a run produced beyond its exit code (a dbt run's nodes).
//! - [`usage`]: what a Spark run used, read from Spark's own event log (streaming, pure).
//! - [`cost`]: requested vs used per run, efficiency, cost and right-sizing advice.
//! - [`pods`]: Kubernetes scheduling rules (pod requests, taints, selectors, node room, quotas).
//! - [`workflow`]: workflow documents (steps of any job kind with dependsOn, triggers,
//!   parameters), the DAG and its state machine.
//! - [`access`]: roles (viewer < submitter < operator < admin) bound to namespaces or `*`.

pub mod access;
pub mod capacity;
pub mod cost;
pub mod cycle;
pub mod document;
pub mod duration;
pub mod job;
pub mod pods;
pub mod quantity;
pub mod queue;
pub mod record;
pub mod retry;
pub mod run_result;
pub mod safety;
pub mod schedule;
pub mod secretref;
pub mod sizing;
pub mod spec;
pub mod stored;
pub mod usage;
pub mod workflow;

pub use capacity::{NodeCapacity, Snapshot};
pub use job::{Demand, JobState, PodDemand, Resources, Role};
