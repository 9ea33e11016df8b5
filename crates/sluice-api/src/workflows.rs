//! Workflows and their runs (`/v1/workflows`, `/v1/workflow-runs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A workflow as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Priority level of steps that set none (none: the namespace's default).
    pub priority: Option<String>,
    /// Parameters and their defaults.
    pub parameters: BTreeMap<String, String>,
    /// The steps, in document order, with what they depend on.
    pub steps: Vec<StepDefView>,
    /// The schedule's expression, if any.
    pub schedule: Option<String>,
    /// The schedule's time zone.
    pub time_zone: Option<String>,
    /// Whether the schedule is suspended.
    pub suspended: bool,
    /// The next fire time (RFC 3339).
    pub next_run_at: Option<String>,
    /// The last run a fire or a user started.
    pub last_run_id: Option<String>,
    /// What the last fire did.
    pub last_message: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last applied with changes (RFC 3339).
    pub updated_at: String,
}

/// A step of a workflow's definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepDefView {
    /// Name.
    pub name: String,
    /// The steps it waits for.
    pub depends_on: Vec<String>,
    /// allSucceeded, anyFailed or always.
    pub trigger: String,
}

/// A step of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// Name.
    pub name: String,
    /// The steps it waits for.
    pub depends_on: Vec<String>,
    /// allSucceeded, anyFailed or always.
    pub trigger: String,
    /// waiting, active, succeeded, failed, cancelled or skipped.
    pub status: String,
    /// Its current job.
    pub job_id: Option<String>,
    /// Its job's state (queued, admitted, submitted, running, succeeded, failed, cancelled).
    pub job_state: Option<String>,
    /// Its job's attempt.
    pub job_attempt: Option<u32>,
    /// Its jobs from before reruns, oldest first.
    pub previous_jobs: Vec<String>,
    /// Why it waits, was skipped or cancelled; or its job's last message.
    pub message: Option<String>,
}

/// A workflow run as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Run id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// The workflow.
    pub workflow: String,
    /// running, succeeded, failed or cancelled.
    pub state: String,
    /// A user asked to cancel it (steps are being cancelled).
    pub cancel_requested: bool,
    /// 1, then one more per rerun.
    pub attempt: u32,
    /// `user` or `schedule`.
    pub trigger: String,
    /// The parameters of this run.
    pub parameters: BTreeMap<String, String>,
    /// The logical date (RFC 3339, as `{{ logicalDate }}` writes it): the schedule's fire
    /// time or the run's creation.
    pub logical_date: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Ended (RFC 3339).
    pub finished_at: Option<String>,
    /// What happened last.
    pub message: Option<String>,
    /// The steps, in document order.
    pub steps: Vec<StepView>,
}

/// The answer of `PUT /v1/workflows`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WorkflowApplyView {
    /// `created`, `configured` or `unchanged`.
    pub result: String,
    /// The workflow as it is now.
    pub workflow: WorkflowView,
}
