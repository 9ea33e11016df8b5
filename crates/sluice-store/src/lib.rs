//! Durable job state for sluice: one [`Store`] trait and its SQL implementation for SQLite and
//! PostgreSQL ([`SqlStore`]).
//!
//! The store persists exactly the types of [`sluice_core`]: [`JobRecord`](sluice_core::record::JobRecord)s, their
//! stored job decoded once where the row is read, and their
//! [`JobEvent`](sluice_core::job::JobEvent) timelines. Every state change is one transaction that compares the current state
//! with the one the caller expects (compare-and-set) and appends a timeline event, so concurrent
//! actors (the scheduler, the reconciler, a user cancelling) cannot both win.
//!
//! Open a store with [`open`]: `sqlite://PATH`, `sqlite::memory:` or `postgres://...`. The schema
//! is created or brought up to date on open (migrations are compiled into the binary).
//!
//! Times are integer milliseconds since the Unix epoch, passed in by the caller.
//!
//! Layout, each file importing only the ones below it: `dialect` (SQLite or PostgreSQL) and
//! `error` ([`StoreError`]) at the bottom; `orchestration` (its types) and `text` (what may be
//! stored as text); `history` (its types, range scans, rollups); `auth` (token and audit types); `usage` (usage record queries); `lease` (leader leases and the change feed); `store` (the [`Store`] trait and
//! its job types); `sql` (the [`SqlStore`] implementation: pool, row codecs, job statements,
//! orchestration queries); and this file, which re-exports them and opens a store.

#![warn(missing_docs)]

use std::sync::Arc;

mod auth;
mod dialect;
mod error;
mod history;
mod lease;
mod orchestration;
mod sql;
mod store;
mod text;
mod usage;
mod workflow;

pub use auth::{AuditEntry, AuditFilter, NewToken, TokenRecord};
pub use dialect::Dialect;
pub use error::{StoreError, redact_url};
pub use history::{
    HistoryPoint, HistoryQuery, HistorySeries, MAX_BUCKETS, ROLL_UP_HOURS, ROLL_UP_MARGIN_MS,
    RollUp,
};
pub use lease::{Lease, StoreChange};
pub use orchestration::{
    Advance, DeadLetter, Fire, JobOrch, JobSet, OrchJob, Preempted, Requeue, RequeuePlace,
    RetryJob, ScheduledRun, SetFilter,
};
pub use sql::SqlStore;
pub use store::{JobFilter, JobPage, QueueStat, Store, Transition};
pub use usage::UsageFilter;
pub use workflow::{
    NewStep, NewWorkflow, NewWorkflowRun, RunFilter, RunUpdate, StepChange, StepRecord,
    WorkflowAdvance, WorkflowApplied, WorkflowFire, WorkflowRecord, WorkflowRunRecord,
};

/// Opens a store from a URL and brings its schema up to date.
///
/// - `sqlite://PATH` (`sqlite:///abs/path` or `sqlite://relative/path`): the file is created if
///   missing; WAL journal, `synchronous=NORMAL`, 5 s busy timeout, foreign keys on; writes on
///   one connection of their own, reads on a pool of four.
/// - `sqlite::memory:`: a private in-memory database (one connection), for tests.
/// - `postgres://...` or `postgresql://...`: plain (no TLS) connections. Every call is bounded
///   in time and connections that stop answering are replaced (failover in seconds after the
///   database host reboots; see docs/configuration.md, "PostgreSQL failover").
///
/// Anything else fails with [`StoreError::BadUrl`]; an unreachable database with
/// [`StoreError::Connect`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(SqlStore::connect(url).await?.into_shared())
}
