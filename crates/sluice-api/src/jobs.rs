//! A job as the API shows it (`GET /v1/jobs`, `GET /v1/jobs/{id}`, its logs): its record,
//! demand, timeline, wait and orchestration state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The demand of one role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PodDemandView {
    /// "driver", "executor" or "task".
    pub role: String,
    /// How many pods of this role.
    pub count: u32,
    /// CPU request of one pod, in millicores.
    pub cpu_milli: u64,
    /// Memory request of one pod (heap plus overhead), in MiB.
    pub memory_mib: u64,
}

/// The demand sluice computed for a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DemandView {
    /// Per role.
    pub pods: Vec<PodDemandView>,
    /// Sum of CPU over all pods, in millicores.
    pub total_cpu_milli: u64,
    /// Sum of memory over all pods, in MiB.
    pub total_memory_mib: u64,
}

/// One timeline entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct EventView {
    /// When (RFC 3339).
    pub at: String,
    /// State before, if any.
    pub from: Option<String>,
    /// State after.
    pub to: String,
    /// What happened.
    pub message: String,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Priority level.
    pub level: String,
    /// State: queued, admitted, submitted, running, succeeded, failed, cancelled.
    pub state: String,
    /// Attempt number.
    pub attempt: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Entered its queue (RFC 3339).
    pub enqueued_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Started running (RFC 3339).
    pub started_at: Option<String>,
    /// Finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Backend reference of the run.
    pub backend_ref: Option<String>,
    /// Exit code of the run.
    pub exit_code: Option<i32>,
    /// Last message.
    pub message: Option<String>,
    /// What the job requests.
    pub demand: DemandView,
    /// The stored job as the store keeps it: the resolved job's fields (a SparkApplication
    /// keeps every field under kind.application), its policy under `policy` and the user's
    /// document under `document`. Null for a row whose stored job does not decode.
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub spec: serde_json::Value,
    /// For a queued job: its position and why it waits (from the last scheduling cycle).
    pub wait: Option<WaitInfo>,
    /// Timeline, oldest first (only on GET /v1/jobs/{id}).
    pub timeline: Option<Vec<EventView>>,
    /// Schedule, retries and dead-letter state (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<OrchView>,
    /// Set when the scheduler has set the job aside (a write or the backend failed on it): why,
    /// and when it tries again (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<SetAside>,
    /// What its runs produced, by attempt: a dbt run's nodes (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<RunResultView>>,
}

/// What one run (attempt) of a job produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RunResultView {
    /// The attempt.
    pub attempt: u32,
    /// Its result.
    pub result: sluice_core::run_result::RunResult,
}

/// A job's schedule, retries and dead-letter state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct OrchView {
    /// The schedule that started it (in its namespace).
    pub schedule: Option<String>,
    /// The fire time the run stands for (RFC 3339; none for a manual trigger).
    pub scheduled_for: Option<String>,
    /// Attempts made in the current round (a requeue from the DLQ begins a new round).
    pub attempt_in_round: u32,
    /// Attempts a round may make (`retry.maxAttempts`; 1 without a retry policy).
    pub max_attempts: u32,
    /// When a retry waiting on backoff becomes eligible (RFC 3339), while it waits.
    pub retry_at: Option<String>,
    /// How the last failure was settled: submission, application, oom, watchdog, timeout,
    /// expired (queue TTL) or unclassified.
    pub failure_class: Option<String>,
    /// When it entered the dead-letter queue (RFC 3339), while it is there.
    pub dead_lettered_at: Option<String>,
    /// Why it was dead-lettered.
    pub dead_letter_reason: Option<String>,
    /// Its `maxQueueWait`, in seconds.
    pub max_queue_wait_seconds: Option<u64>,
    /// How many times it was preempted (stopped and sent back to its queue to make room for
    /// a job of higher priority; a preempted run uses no retry).
    #[serde(default)]
    pub preemptions: u32,
}

/// Why a queued job waits, as the last cycle found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WaitInfo {
    /// The reason, for people.
    pub reason: String,
    /// The kind of reason: "no-room", "blocked" or "backend-unavailable".
    pub reason_kind: String,
    /// 1-based position among the waiting jobs of its namespace (all levels, in queue order).
    pub position: u32,
    /// 1-based position within its (namespace, level) queue.
    pub level_position: u32,
    /// When it is expected to start (RFC 3339): the scheduling cycle run forward from now with
    /// every job's expected run time (see [`crate::eta`]); none when there is no estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_start: Option<String>,
}

/// Why and until when a job is set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SetAside {
    /// What failed, for people.
    pub reason: String,
    /// When it was (last) set aside, in epoch milliseconds.
    pub at_ms: i64,
    /// When the tick tries it again, in epoch milliseconds.
    pub retry_at_ms: i64,
    /// How many times in a row it was set aside.
    pub times: u32,
}

/// A page of jobs.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct JobList {
    /// Jobs, newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A piece of a log.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct LogsView {
    /// The text.
    pub data: String,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// True when the job has ended and the whole log was read.
    pub complete: bool,
    /// The job's state.
    pub state: String,
    /// The attempt whose log this is.
    #[serde(default)]
    pub attempt: u32,
    /// With `since`: whether the log's lines had times to select by (false: none did, and
    /// the log is returned whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_applied: Option<bool>,
}
