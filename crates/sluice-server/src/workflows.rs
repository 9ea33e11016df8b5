//! The operations on workflows that the API and the tick share: apply a workflow document,
//! start a run (parameters rendered into every step's job, each checked as a submitted job
//! would be), cancel and rerun a run, and read each step's status from its job. The tick's side
//! (advancing runs, firing scheduled workflows) is in [`crate::tick::workflows`]; the DAG and
//! its state machine are pure, in [`sluice_core::workflow`].

use std::collections::BTreeMap;

use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_core::schedule::Cadence;
use sluice_core::spec::ParseOptions;
use sluice_core::stored::StoredJob;
use sluice_core::workflow::{RunState, StepPhase, StepStatus, Workflow, parse_workflow};
use sluice_store::{
    NewStep, NewWorkflow, NewWorkflowRun, RunUpdate, StepChange, StoreError, WorkflowApplied,
    WorkflowFire, WorkflowRecord, WorkflowRunRecord,
};

use crate::admission::{self, Refusal};
use crate::cancel::{CancelError, cancel_job};
use crate::guard::command::{ConfigOnly, check_job};
use crate::orchestration::OrchError;
use crate::state::AppState;

/// How many times a write of a run is tried again when it lost its compare-and-set.
const CAS_TRIES: usize = 5;

fn opts(state: &AppState) -> ParseOptions<'_> {
    ParseOptions {
        priority: None,
        levels: &state.levels,
    }
}

/// Parses and validates a workflow document.
pub fn parse(state: &AppState, text: &str) -> Result<Workflow, OrchError> {
    Ok(parse_workflow(text, opts(state))?)
}

/// The workflow a stored definition holds.
pub fn decode(what: &str, definition: &serde_json::Value) -> Result<Workflow, OrchError> {
    serde_json::from_value(definition.clone()).map_err(|e| {
        OrchError::Store(StoreError::Corrupt(format!(
            "the definition of {what} does not decode: {e}"
        )))
    })
}

/// Every step's job must be allowed (command jobs) and able to run on this backend.
async fn check_steps(state: &AppState, wf: &Workflow, jobs: &[StoredJob]) -> Result<(), OrchError> {
    for (step, job) in wf.steps.iter().zip(jobs) {
        let what = format!(
            "step {} of workflow {}/{}",
            step.name, wf.namespace, wf.name
        );
        check_job(&state.config.security, &job.job, &ConfigOnly, &what)?;
        admission::check(state, &job.job)
            .await
            .map_err(|r| match r {
                Refusal::Invalid(e) => OrchError::Spec(e),
                Refusal::Backend(e) => OrchError::Backend(e),
                never @ Refusal::Never { .. } => OrchError::NeverFits(format!("{what} {never}")),
            })?;
    }
    Ok(())
}

/// `sluice apply -f` of a workflow: creates it, replaces its definition, or leaves it as it is
/// (idempotent by namespace and name). Every step is checked as a run with the default
/// parameters would make it.
pub async fn apply(
    state: &AppState,
    text: &str,
    now_ms: i64,
) -> Result<(WorkflowApplied, WorkflowRecord), OrchError> {
    let wf = parse(state, text)?;
    let jobs = wf.render_all(&wf.parameters, now_ms, None, opts(state))?;
    check_steps(state, &wf, &jobs).await?;
    let (cron, time_zone, suspended, next) = match &wf.schedule {
        Some(s) => {
            let next = if s.suspend {
                None
            } else {
                Cadence::new(&s.cron, &s.time_zone, now_ms, "spec.schedule")?.next_after(now_ms)
            };
            (
                Some(s.cron.clone()),
                Some(s.time_zone.clone()),
                s.suspend,
                next,
            )
        }
        None => (None, None, false, None),
    };
    let new = NewWorkflow {
        namespace: wf.namespace.clone(),
        name: wf.name.clone(),
        definition: serde_json::to_value(&wf)?,
        source: text.to_string(),
        cron,
        time_zone,
        suspended,
        next_fire_at_ms: next,
        at_ms: now_ms,
    };
    let out = state.store.apply_workflow(&new).await?;
    state.wake.notify_one();
    Ok(out)
}

/// A new run of `wf`: parameters (defaults with `overrides`), every step's job rendered and
/// checked.
pub async fn new_run(
    state: &AppState,
    wf: &Workflow,
    overrides: &BTreeMap<String, String>,
    logical_date_ms: i64,
    trigger: &str,
    now_ms: i64,
) -> Result<NewWorkflowRun, OrchError> {
    let id = state.new_id();
    let parameters = wf.parameters_with(overrides)?;
    let jobs = wf.render_all(&parameters, logical_date_ms, Some(&id), opts(state))?;
    check_steps(state, wf, &jobs).await?;
    let mut steps = Vec::with_capacity(jobs.len());
    for (step, job) in wf.steps.iter().zip(jobs) {
        let template = job
            .encode()
            .map_err(|e| StoreError::Corrupt(format!("step {} does not encode: {e}", step.name)))?;
        steps.push(NewStep {
            name: step.name.clone(),
            template,
        });
    }
    Ok(NewWorkflowRun {
        id,
        namespace: wf.namespace.clone(),
        workflow: wf.name.clone(),
        parameters,
        logical_date_ms,
        trigger: trigger.to_string(),
        definition: serde_json::to_value(wf)?,
        steps,
        created_at_ms: now_ms,
    })
}

/// Starts a run of workflow `namespace/name` now, by a user, with these parameter overrides.
pub async fn start(
    state: &AppState,
    namespace: &str,
    name: &str,
    overrides: &BTreeMap<String, String>,
    now_ms: i64,
) -> Result<WorkflowRunRecord, OrchError> {
    let rec = state
        .store
        .get_workflow(namespace, name)
        .await?
        .ok_or_else(|| StoreError::NoWorkflow {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let wf = decode(&format!("workflow {namespace}/{name}"), &rec.definition)?;
    let run = new_run(state, &wf, overrides, now_ms, "user", now_ms).await?;
    let id = run.id.clone();
    let out = state
        .store
        .fire_workflow(&WorkflowFire {
            namespace: namespace.into(),
            name: name.into(),
            at_ms: now_ms,
            advance: None,
            run: Some(run),
            message: format!("started run {id} (by a user)"),
        })
        .await?
        .ok_or(StoreError::NoWorkflowRun(id))?;
    state.wake.notify_one();
    Ok(out)
}

/// Each step's status (and job, once it has one), as the state machine sees it. A failed job
/// counts as failed only once its failure is settled (no retry to come); a job that is gone
/// (purged) counts as failed.
pub async fn observe(
    state: &AppState,
    run: &WorkflowRunRecord,
) -> Result<Vec<(StepStatus, Option<JobRecord>)>, StoreError> {
    let mut out = Vec::with_capacity(run.steps.len());
    for s in &run.steps {
        let status = match s.phase {
            StepPhase::Waiting => (StepStatus::Waiting, None),
            StepPhase::Skipped => (StepStatus::Skipped, None),
            StepPhase::Cancelled => (StepStatus::Cancelled, None),
            StepPhase::Failed => (StepStatus::Failed, None),
            StepPhase::Started => match &s.job_id {
                None => (StepStatus::Failed, None),
                Some(id) => match state.store.get_job(id).await? {
                    None => (StepStatus::Failed, None),
                    Some(job) => {
                        let st = match job.state {
                            JobState::Succeeded => StepStatus::Succeeded,
                            JobState::Cancelled => StepStatus::Cancelled,
                            JobState::Failed => {
                                let settled = state
                                    .store
                                    .job_orch(id)
                                    .await?
                                    .is_some_and(|o| o.failure_class.is_some());
                                if settled {
                                    StepStatus::Failed
                                } else {
                                    StepStatus::Active
                                }
                            }
                            _ => StepStatus::Active,
                        };
                        (st, Some(job))
                    }
                },
            },
        };
        out.push(status);
    }
    Ok(out)
}

async fn load_run(state: &AppState, id: &str) -> Result<WorkflowRunRecord, OrchError> {
    Ok(state
        .store
        .get_workflow_run(id)
        .await?
        .ok_or_else(|| StoreError::NoWorkflowRun(id.into()))?)
}

/// Cancels a run: no step starts any more, waiting steps are cancelled (by the next tick),
/// and the jobs of its queued and running steps are cancelled now.
pub async fn cancel(
    state: &AppState,
    id: &str,
    now_ms: i64,
) -> Result<WorkflowRunRecord, OrchError> {
    let mut tries = 0;
    let run = loop {
        let run = load_run(state, id).await?;
        if run.state.is_terminal() {
            return Err(OrchError::Conflict(format!(
                "workflow run {id} has already ended ({})",
                run.state
            )));
        }
        if run.cancel_requested {
            break run;
        }
        let u = RunUpdate {
            id: id.into(),
            expected_version: run.version,
            at_ms: now_ms,
            steps: Vec::new(),
            state: None,
            cancel_requested: Some(true),
            rerun: false,
            message: Some("cancelling (by a user)".into()),
        };
        match state.store.update_workflow_run(&u).await {
            Ok((after, _)) => break after,
            Err(StoreError::Stale(_)) if tries < CAS_TRIES => tries += 1,
            Err(e) => return Err(e.into()),
        }
    };
    for (status, job) in observe(state, &run).await? {
        if status != StepStatus::Active {
            continue;
        }
        let Some(job) = job else { continue };
        match cancel_job(state, &job.id, "a user (workflow run cancelled)").await {
            Ok(_) | Err(CancelError::Ended { .. } | CancelError::NotFound(_)) => {}
            Err(CancelError::Store(e)) => return Err(e.into()),
            Err(CancelError::Backend(e)) => return Err(e.into()),
            Err(e) => tracing::warn!(job = %job.id, run = %id, "cancel of a step: {e}"),
        }
    }
    state.wake.notify_one();
    load_run(state, id).await
}

/// Reruns a failed or cancelled run from where it failed: new jobs for its failed, skipped
/// and cancelled steps only (their earlier jobs are kept as previous jobs); succeeded steps
/// keep their results.
pub async fn rerun(
    state: &AppState,
    id: &str,
    now_ms: i64,
) -> Result<WorkflowRunRecord, OrchError> {
    for _ in 0..CAS_TRIES {
        let run = load_run(state, id).await?;
        if !matches!(run.state, RunState::Failed | RunState::Cancelled) {
            return Err(OrchError::Conflict(format!(
                "workflow run {id} is {}: only a failed or cancelled run is rerun",
                run.state
            )));
        }
        let statuses = observe(state, &run).await?;
        let again: Vec<&str> = run
            .steps
            .iter()
            .zip(&statuses)
            .filter(|(_, (s, _))| {
                matches!(
                    s,
                    StepStatus::Failed | StepStatus::Skipped | StepStatus::Cancelled
                )
            })
            .map(|(step, _)| step.name.as_str())
            .collect();
        if again.is_empty() {
            return Err(OrchError::Conflict(format!(
                "workflow run {id} has no failed, skipped or cancelled step to run again"
            )));
        }
        let u = RunUpdate {
            id: id.into(),
            expected_version: run.version,
            at_ms: now_ms,
            steps: again
                .iter()
                .map(|s| StepChange {
                    step: (*s).to_string(),
                    phase: StepPhase::Waiting,
                    job: None,
                    message: None,
                    reset: true,
                })
                .collect(),
            state: Some(RunState::Running),
            cancel_requested: Some(false),
            rerun: true,
            message: Some(format!(
                "rerun {} (by a user): runs again {}",
                run.attempt + 1,
                again.join(", ")
            )),
        };
        match state.store.update_workflow_run(&u).await {
            Ok((after, _)) => {
                state.wake.notify_one();
                return Ok(after);
            }
            Err(StoreError::Stale(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OrchError::Conflict(format!(
        "workflow run {id} kept changing; try again"
    )))
}
