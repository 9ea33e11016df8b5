//! The types of the workflow part of the [`Store`](crate::Store): definitions (by namespace and
//! name, applied idempotently), runs and their steps (step -> job id). The model and the state
//! machine are in [`sluice_core::workflow`].

use std::collections::BTreeMap;

use sluice_core::record::NewJob;
use sluice_core::workflow::{RunState, StepPhase};

/// A workflow definition to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkflow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The JSON of the validated [`sluice_core::workflow::Workflow`].
    pub definition: serde_json::Value,
    /// The document as applied.
    pub source: String,
    /// The schedule's expression, if it has one.
    pub cron: Option<String>,
    /// The schedule's zone.
    pub time_zone: Option<String>,
    /// Whether the schedule is suspended.
    pub suspended: bool,
    /// The next fire time if the workflow is created now (or its schedule changed).
    pub next_fire_at_ms: Option<i64>,
    /// When.
    pub at_ms: i64,
}

/// A stored workflow definition.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The JSON of the validated workflow.
    pub definition: serde_json::Value,
    /// The document as applied.
    pub source: String,
    /// The schedule's expression, if it has one.
    pub cron: Option<String>,
    /// The schedule's zone.
    pub time_zone: Option<String>,
    /// Whether the schedule is suspended.
    pub suspended: bool,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed by an apply.
    pub updated_at_ms: i64,
    /// The next fire time (absolute; none without a schedule or while suspended).
    pub next_fire_at_ms: Option<i64>,
    /// When a fire last started a run.
    pub last_fire_at_ms: Option<i64>,
    /// The run it started.
    pub last_run_id: Option<String>,
    /// What the last fire did.
    pub last_message: Option<String>,
}

/// What [`Store::apply_workflow`](crate::Store::apply_workflow) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowApplied {
    /// There was none: created.
    Created,
    /// Its document differed: replaced.
    Configured,
    /// The same document: nothing written.
    Unchanged,
}

impl WorkflowApplied {
    /// `created`, `configured` or `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowApplied::Created => "created",
            WorkflowApplied::Configured => "configured",
            WorkflowApplied::Unchanged => "unchanged",
        }
    }
}

/// One step of a new run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    /// The step's name.
    pub name: String,
    /// The stored job its job is made from (parameters substituted).
    pub template: serde_json::Value,
}

/// A run to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkflowRun {
    /// Its id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// The workflow's name.
    pub workflow: String,
    /// The parameters (defaults with overrides).
    pub parameters: BTreeMap<String, String>,
    /// The logical date (`{{ logicalDate }}`).
    pub logical_date_ms: i64,
    /// `user` or `schedule`.
    pub trigger: String,
    /// The workflow's JSON at the start.
    pub definition: serde_json::Value,
    /// The steps, in document order.
    pub steps: Vec<NewStep>,
    /// When.
    pub created_at_ms: i64,
}

/// The compare-and-set of a scheduled fire: the next fire time moves only if it still is the
/// expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowAdvance {
    /// The next fire time the caller read.
    pub expected_next_fire_at_ms: i64,
    /// The next fire time to write.
    pub next_fire_at_ms: Option<i64>,
}

/// One start of a run ([`Store::fire_workflow`](crate::Store::fire_workflow)): by a user, or a
/// schedule's fire (which may start none).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowFire {
    /// Namespace.
    pub namespace: String,
    /// The workflow.
    pub name: String,
    /// When.
    pub at_ms: i64,
    /// A scheduled fire: moves the next fire time.
    pub advance: Option<WorkflowAdvance>,
    /// The run to insert, if any.
    pub run: Option<NewWorkflowRun>,
    /// Recorded as the workflow's last message.
    pub message: String,
}

/// A step of a stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The step's name.
    pub name: String,
    /// Its place in the document.
    pub position: u32,
    /// What the store recorded (the job's state tells the rest once started).
    pub phase: StepPhase,
    /// Its current job.
    pub job_id: Option<String>,
    /// Its jobs from before reruns, oldest first.
    pub previous_jobs: Vec<String>,
    /// The stored job its job is made from.
    pub template: serde_json::Value,
    /// Why it was skipped, cancelled or failed without a job.
    pub message: Option<String>,
    /// Last changed.
    pub updated_at_ms: i64,
}

/// A stored run with its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRunRecord {
    /// Its id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// The workflow's name.
    pub workflow: String,
    /// Its state.
    pub state: RunState,
    /// A user asked to cancel it.
    pub cancel_requested: bool,
    /// The parameters.
    pub parameters: BTreeMap<String, String>,
    /// The logical date.
    pub logical_date_ms: i64,
    /// `user` or `schedule`.
    pub trigger: String,
    /// The workflow's JSON at the start.
    pub definition: serde_json::Value,
    /// 1, then one more per rerun.
    pub attempt: u32,
    /// Grows by one on every write (the compare-and-set of [`RunUpdate`]).
    pub version: i64,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
    /// When it ended (none while running).
    pub finished_at_ms: Option<i64>,
    /// What happened last.
    pub message: Option<String>,
    /// The steps, in document order.
    pub steps: Vec<StepRecord>,
}

/// A change of one step in a [`RunUpdate`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepChange {
    /// The step.
    pub step: String,
    /// Its new phase.
    pub phase: StepPhase,
    /// For a start: its job, inserted queued in the same transaction.
    pub job: Option<NewJob>,
    /// Why (skipped, cancelled, failed without a job; a rerun's note).
    pub message: Option<String>,
    /// A rerun: the current job moves to the previous jobs and the step has none.
    pub reset: bool,
}

/// One compare-and-set write of a run ([`Store::update_workflow_run`](crate::Store::update_workflow_run)).
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    /// The run.
    pub id: String,
    /// The version the caller read.
    pub expected_version: i64,
    /// When.
    pub at_ms: i64,
    /// Step changes.
    pub steps: Vec<StepChange>,
    /// A new state (a terminal one sets `finished_at`; running clears it).
    pub state: Option<RunState>,
    /// Sets or clears the cancel request.
    pub cancel_requested: Option<bool>,
    /// A rerun: attempt + 1.
    pub rerun: bool,
    /// The run's message, if it changes.
    pub message: Option<String>,
}

/// Which runs [`Store::list_workflow_runs`](crate::Store::list_workflow_runs) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only these namespaces (`Some(empty)`: none).
    pub namespace_in: Option<Vec<String>>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in these states (empty: any).
    pub states: Vec<RunState>,
}
