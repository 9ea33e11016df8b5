//! The job record as the store hands it out, with its stored job decoded once where the row is
//! read ([`JobRecord::stored`]), and the job to insert ([`NewJob`]).
//!
//! A row whose stored job does not decode is still a record (its state, times and demand are
//! readable), so one corrupt row never stops a reader that walks many jobs; whoever needs the
//! job itself gets a [`CorruptRecord`] error naming the job, never a silent default.

use std::collections::BTreeMap;

use crate::job::{Demand, JobState};
use crate::retry::JobPolicy;
use crate::spec::Job;
use crate::stored::{StoredJob, StoredJobError};

/// A job as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Unique id (a ULID: sortable by creation time).
    pub id: String,
    /// Namespace the job belongs to.
    pub namespace: String,
    /// Name from the job spec.
    pub name: String,
    /// Priority level name (one of the configured levels).
    pub level: String,
    /// Current state.
    pub state: JobState,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// The stored job (job, policy, document) decoded from its row, or why it did not decode.
    pub stored: Result<StoredJob, StoredJobError>,
    /// The demand sluice computed for the job.
    pub demand: Demand,
    /// When the job was created.
    pub created_at_ms: i64,
    /// When the job last entered its queue (FIFO key within a level).
    pub enqueued_at_ms: i64,
    /// When the job last changed.
    pub updated_at_ms: i64,
    /// When the job started running, if it has.
    pub started_at_ms: Option<i64>,
    /// When the job reached a terminal state, if it has.
    pub finished_at_ms: Option<i64>,
    /// The backend's handle for the run (a process id, a Spark app id, a resource name).
    pub backend_ref: Option<String>,
    /// Exit code of the run, where the backend reports one.
    pub exit_code: Option<i32>,
    /// The last message: why it failed, who cancelled it, and so on.
    pub message: Option<String>,
}

/// A record whose stored job does not decode: the job's id and what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored job {id} is corrupt: {source}")]
pub struct CorruptRecord {
    /// The job.
    pub id: String,
    /// What failed to decode.
    pub source: StoredJobError,
}

impl JobRecord {
    /// The decoded stored job, or an error naming the job.
    pub fn decoded(&self) -> Result<&StoredJob, CorruptRecord> {
        self.stored.as_ref().map_err(|e| CorruptRecord {
            id: self.id.clone(),
            source: e.clone(),
        })
    }

    /// The validated job, or an error naming the job.
    pub fn job(&self) -> Result<&Job, CorruptRecord> {
        self.decoded().map(|s| &s.job)
    }

    /// The job's retry and queue policy, or an error naming the job.
    pub fn policy(&self) -> Result<&JobPolicy, CorruptRecord> {
        self.decoded().map(|s| &s.policy)
    }
}

/// A job to insert, queued.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Unique id, chosen by the caller.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Priority level.
    pub level: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The job, its policy and the user's document, as stored.
    pub stored: StoredJob,
    /// Computed demand.
    pub demand: Demand,
    /// Creation (and first enqueue) time.
    pub created_at_ms: i64,
}
