//! The tick's side of workflows: scheduled workflows fire their runs, and every running run
//! advances. Called by [`super::orchestrate::run`] after failures were settled (so a step whose
//! job failed for good this tick is seen at once) and before the cycle (so a step started now
//! is considered for admission in this same tick). The store is the truth: each run is read
//! whole, [`sluice_core::workflow::advance`] decides, and the decision (with the jobs of the
//! steps it starts) is one compare-and-set write; a restart simply decides again.

use std::collections::BTreeMap;

use sluice_backend::RunRef;
use sluice_core::job::JobState;
use sluice_core::record::NewJob;
use sluice_core::schedule::{ConcurrencyPolicy, MissedRunPolicy, plan_fire};
use sluice_core::sizing::job_demand;
use sluice_core::stored::StoredJob;
use sluice_core::workflow::{
    RunOutcome, RunState, StepPhase, StepStatus, Workflow, advance, logical_date,
};
use sluice_store::{
    RunFilter, RunUpdate, StepChange, StoreError, Transition, WorkflowAdvance, WorkflowFire,
    WorkflowRecord, WorkflowRunRecord,
};

use super::error::TickError;
use crate::fault::{store_detail, store_unavailable};
use crate::orchestration::OrchError;
use crate::state::AppState;
use crate::workflows::{decode, new_run, observe};

/// Most running runs advanced per tick.
pub const RUNS_PER_TICK: u32 = 10_000;

/// Fires due workflow schedules, then advances every running run.
pub async fn run(state: &AppState, now_ms: i64) -> Result<(), TickError> {
    for w in state.store.due_workflows(now_ms).await? {
        if let Err(e) = fire_one(state, &w, now_ms).await {
            match e {
                OrchError::Store(StoreError::Stale(_) | StoreError::NoWorkflow { .. }) => {}
                OrchError::Store(e) if store_unavailable(&e) => return Err(e.into()),
                other => tracing::warn!(
                    workflow = %format!("{}/{}", w.namespace, w.name),
                    "firing: {other}"
                ),
            }
        }
    }
    let filter = RunFilter {
        states: vec![RunState::Running],
        ..RunFilter::default()
    };
    let runs = state
        .store
        .list_workflow_runs(&filter, RUNS_PER_TICK)
        .await?;
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    for r in &runs {
        match advance_one(state, r, now_ms).await {
            Ok(still) => {
                if still {
                    *running.entry(r.namespace.clone()).or_default() += 1;
                }
            }
            Err(OrchError::Store(e)) if store_unavailable(&e) => return Err(e.into()),
            Err(OrchError::Store(StoreError::Stale(_))) => {
                *running.entry(r.namespace.clone()).or_default() += 1;
            }
            Err(e) => {
                *running.entry(r.namespace.clone()).or_default() += 1;
                let detail = match &e {
                    OrchError::Store(s) => store_detail(s),
                    other => other.to_string(),
                };
                tracing::warn!(run = %r.id, "advancing the workflow run: {detail}");
            }
        }
    }
    state.metrics.set_workflows_running(&running);
    Ok(())
}

async fn fire_one(state: &AppState, w: &WorkflowRecord, now_ms: i64) -> Result<(), OrchError> {
    let (Some(next), Some(cron), Some(tz)) = (w.next_fire_at_ms, &w.cron, &w.time_zone) else {
        return Ok(());
    };
    let what = format!("workflow {}/{}", w.namespace, w.name);
    let wf: Workflow = decode(&what, &w.definition)?;
    let cadence = sluice_core::schedule::Cadence::new(cron, tz, w.created_at_ms, "")?;
    let plan = plan_fire(
        &cadence,
        MissedRunPolicy::Skip,
        0,
        next,
        now_ms,
        crate::orchestration::on_time_ms(state),
    );
    let mut run = None;
    let mut message = String::from("no run");
    if let Some(for_ms) = plan.fire_for {
        let forbid = wf
            .schedule
            .as_ref()
            .is_some_and(|s| s.concurrency == ConcurrencyPolicy::Forbid);
        let active = if forbid {
            let f = RunFilter {
                namespace: Some(w.namespace.clone()),
                workflow: Some(w.name.clone()),
                states: vec![RunState::Running],
                ..RunFilter::default()
            };
            state.store.list_workflow_runs(&f, 1).await?
        } else {
            Vec::new()
        };
        if let Some(a) = active.first() {
            message = format!(
                "skipped the run for {}: run {} is still running (concurrencyPolicy Forbid)",
                cadence.format(for_ms),
                a.id
            );
        } else {
            let r = new_run(state, &wf, &BTreeMap::new(), for_ms, "schedule", now_ms).await?;
            message = format!(
                "started run {} for {} (logicalDate {})",
                r.id,
                cadence.format(for_ms),
                logical_date(for_ms)
            );
            run = Some(r);
        }
    } else if plan.skipped > 0 {
        message = format!("skipped {} missed fire time(s)", plan.skipped);
    }
    state
        .store
        .fire_workflow(&WorkflowFire {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            at_ms: now_ms,
            advance: Some(WorkflowAdvance {
                expected_next_fire_at_ms: next,
                next_fire_at_ms: plan.next_fire_at,
            }),
            run,
            message,
        })
        .await?;
    Ok(())
}

/// The job of a step, from its template: a new id, the backend's demand.
fn step_job(
    state: &AppState,
    template: &serde_json::Value,
    now_ms: i64,
) -> Result<NewJob, OrchError> {
    let stored = StoredJob::decode(template)
        .map_err(|e| StoreError::Corrupt(format!("a step's template: {e}")))?;
    job_demand(&stored.job)?;
    let demand = state.backend.demand(&stored.job)?;
    Ok(NewJob {
        id: state.new_id(),
        namespace: stored.job.namespace.clone(),
        name: stored.job.name.clone(),
        level: stored.job.level.clone(),
        labels: stored.job.labels.clone(),
        stored,
        demand,
        created_at_ms: now_ms,
    })
}

/// Cancels a step's job from inside the tick (the cycle lock is held).
async fn cancel_in_tick(state: &AppState, job: &sluice_core::record::JobRecord, now_ms: i64) {
    if matches!(job.state, JobState::Submitted | JobState::Running) {
        let run = RunRef {
            job_id: job.id.clone(),
            attempt: job.attempt,
            backend_ref: job.backend_ref.clone(),
        };
        if let Err(e) = state.backend.cancel(&run).await {
            tracing::warn!(job = %job.id, "cancel of a workflow step: {e}");
        }
    }
    if job.state.is_terminal() {
        return;
    }
    let t = Transition::new(
        job.id.clone(),
        job.state,
        JobState::Cancelled,
        now_ms,
        "cancelled: its workflow run was cancelled",
    );
    match state.store.transition(&t).await {
        Ok(after) => state.metrics.transitioned(t.from, &after),
        Err(e) => tracing::info!(job = %job.id, "step not cancelled: {e}"),
    }
}

/// Advances one run; returns whether it is still running.
async fn advance_one(
    state: &AppState,
    run: &WorkflowRunRecord,
    now_ms: i64,
) -> Result<bool, OrchError> {
    let wf = decode(&format!("workflow run {}", run.id), &run.definition)?;
    let dag = wf.dag().map_err(|e| {
        StoreError::Corrupt(format!("the definition of workflow run {}: {e}", run.id))
    })?;
    let observed = observe(state, run).await?;
    if run.cancel_requested {
        // Steps started after the cancel was asked (or whose cancel did not go through).
        for (status, job) in &observed {
            if *status == StepStatus::Active
                && let Some(job) = job
            {
                cancel_in_tick(state, job, now_ms).await;
            }
        }
    }
    let statuses: Vec<StepStatus> = observed.iter().map(|(s, _)| *s).collect();
    let decision = advance(&dag, &statuses, run.cancel_requested);
    if decision.is_empty() {
        return Ok(true);
    }
    let mut changes = Vec::new();
    for &i in &decision.start {
        let step = &run.steps[i];
        match step_job(state, &step.template, now_ms) {
            Ok(job) => changes.push(StepChange {
                step: step.name.clone(),
                phase: StepPhase::Started,
                job: Some(job),
                message: None,
                reset: false,
            }),
            Err(OrchError::Store(e)) if store_unavailable(&e) => return Err(e.into()),
            Err(e) => changes.push(StepChange {
                step: step.name.clone(),
                phase: StepPhase::Failed,
                job: None,
                message: Some(format!("no job could be made for this step: {e}")),
                reset: false,
            }),
        }
    }
    for (i, why) in &decision.skip {
        changes.push(StepChange {
            step: run.steps[*i].name.clone(),
            phase: StepPhase::Skipped,
            job: None,
            message: Some(format!("skipped: {why}")),
            reset: false,
        });
    }
    for &i in &decision.cancel {
        changes.push(StepChange {
            step: run.steps[i].name.clone(),
            phase: StepPhase::Cancelled,
            job: None,
            message: Some("cancelled before it started: the run was cancelled".into()),
            reset: false,
        });
    }
    let message = decision.outcome.map(|o| match o {
        RunOutcome::Succeeded => "succeeded: every step ended and none failed".to_string(),
        RunOutcome::Cancelled => "cancelled by a user".to_string(),
        RunOutcome::Failed => {
            let failed: Vec<&str> = run
                .steps
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| matches!(s, StepStatus::Failed | StepStatus::Cancelled))
                .map(|(s, _)| s.name.as_str())
                .collect();
            format!(
                "failed: step {} did not succeed (`sluice workflow rerun {}` runs it again)",
                failed.join(", "),
                run.id
            )
        }
    });
    let u = RunUpdate {
        id: run.id.clone(),
        expected_version: run.version,
        at_ms: now_ms,
        steps: changes,
        state: decision.outcome.map(RunState::from),
        cancel_requested: None,
        rerun: false,
        message,
    };
    let (after, jobs) = state.store.update_workflow_run(&u).await?;
    for j in &jobs {
        state.metrics.job_submitted(&j.namespace, &j.level);
    }
    if let Some(o) = decision.outcome {
        state.metrics.workflow_finished(&run.namespace, o.as_str());
    }
    Ok(after.state == RunState::Running)
}
