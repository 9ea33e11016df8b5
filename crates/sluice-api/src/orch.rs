//! Schedules and the dead-letter queue (`/v1/schedules`, `/v1/dlq`, `/v1/queues/purge`).

use serde::{Deserialize, Serialize};

use crate::jobs::JobView;

/// A schedule as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ScheduleView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The expression (cron with 5 or 6 fields, @hourly, @every 10m, ...).
    pub schedule: String,
    /// IANA time zone the expression is read in.
    pub time_zone: String,
    /// Allow, Forbid or Replace.
    pub concurrency_policy: String,
    /// Skip or RunOnce.
    pub missed_run_policy: String,
    /// How old a missed run may be and still be caught up (RunOnce), in seconds.
    pub catch_up_window_seconds: u64,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Priority level of its runs.
    pub level: String,
    /// The next fire time (RFC 3339, UTC).
    pub next_run_at: Option<String>,
    /// The next fire times in the schedule's time zone (RFC 3339 with offset); on
    /// `GET /v1/schedules/{namespace}/{name}` the next five.
    pub next_runs: Vec<String>,
    /// When a run was last started (RFC 3339).
    pub last_run_at: Option<String>,
    /// The last run started.
    pub last_job_id: Option<String>,
    /// What the last check did.
    pub last_message: Option<String>,
    /// Runs still active (queued, admitted, submitted, running); on GET of one schedule.
    pub active_runs: Vec<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// The job every run is made from (its stored form).
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub template: serde_json::Value,
}

/// A dead-lettered job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DeadLetterView {
    /// The job (its message is the last error).
    pub job: JobView,
    /// When it entered the DLQ (RFC 3339).
    pub dead_lettered_at: String,
    /// Why: the attempt limit, a class that is not retried, or "expired in queue".
    pub reason: String,
    /// The failure class of the last attempt (or `expired`).
    pub failure_class: String,
    /// The schedule that started it, if any.
    pub schedule: Option<String>,
}

/// What a requeue did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RequeueView {
    /// The jobs put back in their queues, in the order they were requeued.
    pub requeued: Vec<JobView>,
}

/// What a purge removed, or would remove.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PurgeView {
    /// True when nothing was deleted (a dry run).
    pub dry_run: bool,
    /// The jobs the filter selected.
    pub selected: Vec<JobView>,
    /// The ids deleted (empty on a dry run).
    pub purged: Vec<String>,
}
