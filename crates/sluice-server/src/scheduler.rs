//! The submitter loop: one task that, every `scheduler.interval_ms` or when woken by a submit or
//! a cancel, runs a scheduling cycle, submits what it admitted, and reconciles running jobs
//! with the backend.
//!
//! One cycle:
//! 1. ask the backend for the state of every submitted or running job and record changes;
//! 2. ask the backend for its capacity snapshot;
//! 3. load queued and active jobs from the store;
//! 4. hold the demand of active jobs the backend does not show yet as reservations;
//! 5. run the pure [`sluice_core::cycle::schedule`];
//! 6. move each admitted job queued -> admitted (one transaction each) and remember, for every
//!    job left, its queue position and the reason it waits;
//! 7. submit each admitted job to the backend and move it admitted -> submitted; a backend that
//!    turns it away for want of room puts it back in its queue (keeping its place).
//!
//! Because "admitted" is written before the submit and submits are idempotent per attempt, a
//! crash at any point neither loses a job nor starts it twice: on restart, admitted jobs are
//! submitted again (the backend answers "already there") and running jobs are re-attached.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sluice_backend::{BackendError, RunRef, RunStatus, SubmitRequest};
use sluice_core::capacity::{Fitter, Snapshot};
use sluice_core::cycle::{Candidate, CycleInput, schedule};
use sluice_core::job::{JobRecord, JobState, Resources};
use sluice_core::spec::Job;
use sluice_store::{StoreError, Transition};

use crate::state::{AppState, WaitInfo, now_ms};

/// What the last cycle saw, for `describe`, `queues` and the UI.
#[derive(Debug, Clone, Default)]
pub struct CycleView {
    /// When the cycle ran.
    pub at_ms: i64,
    /// The backend's snapshot after reservations.
    pub snapshot: Option<Snapshot>,
    /// Why each queued job waits, by job id.
    pub waiting: HashMap<String, WaitInfo>,
}

/// Runs cycles until the process ends.
pub async fn run_loop(state: AppState) {
    let interval = Duration::from_millis(state.config.scheduler.interval_ms);
    if let Err(e) = startup_notes(&state).await {
        tracing::warn!("startup reconciliation: {e}");
    }
    loop {
        let started = std::time::Instant::now();
        if let Err(e) = tick(&state).await {
            tracing::warn!("scheduling cycle failed: {e}");
        }
        state.metrics.cycle_finished(started.elapsed());
        tokio::select! {
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Errors of one tick; logged, the loop goes on.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
}

/// One cycle plus reconciliation.
pub async fn tick(state: &AppState) -> Result<(), TickError> {
    let _guard = state.cycle_lock.lock().await;
    // Reconcile first, so that room freed by jobs that ended is used in this same cycle.
    reconcile(state).await?;
    // Schedules, retries and the dead-letter queue, queue TTLs (see `orchestration`).
    crate::orchestration::run(state, now_ms()).await?;
    cycle(state).await?;
    submit_admitted(state).await?;
    // Hourly rollups of the history (one bounded step; cheap when there is nothing to do).
    if let Err(e) = state.store.roll_up_history(now_ms()).await {
        tracing::warn!("rolling up the history: {e}");
    }
    Ok(())
}

fn job_of(rec: &JobRecord) -> Option<Job> {
    serde_json::from_value(rec.spec.clone()).ok()
}

async fn cycle(state: &AppState) -> Result<(), TickError> {
    let report = state.backend.capacity().await?;
    let jobs = state
        .store
        .jobs_in_states(&[
            JobState::Queued,
            JobState::Admitted,
            JobState::Submitted,
            JobState::Running,
        ])
        .await?;
    let levels = state.config.levels();
    let mut fitter = Fitter::new(&report.snapshot.nodes);
    let mut held: BTreeMap<String, Resources> = BTreeMap::new();
    let mut candidates = Vec::new();
    let started_at = now_ms();
    for j in &jobs {
        // A retry waiting on its backoff joins its queue at `enqueued_at`, in the future.
        if j.state == JobState::Queued && j.enqueued_at_ms > started_at {
            continue;
        }
        if j.state == JobState::Queued {
            candidates.push(Candidate {
                id: j.id.clone(),
                namespace: j.namespace.clone(),
                // A level removed from the configuration sorts last.
                level: levels.rank(&j.level).unwrap_or(levels.names.len()),
                enqueued_at_ms: j.enqueued_at_ms,
                demand: j.demand.clone(),
                constraints: state.backend.constraints(j, &report.snapshot.nodes),
            });
        } else {
            let h = held.entry(j.namespace.clone()).or_default();
            *h = h.plus(&j.demand.total());
            if !report.visible.contains(&j.id) {
                // Admitted but not yet visible in the backend: hold its room.
                fitter.reserve(&j.demand);
            }
        }
    }
    let snapshot = Snapshot {
        available: report.snapshot.available,
        nodes: fitter.nodes().to_vec(),
        allocatable: report.snapshot.allocatable.clone(),
    };
    let namespaces = state.config.namespace_policies();
    let out = schedule(&CycleInput {
        candidates: &candidates,
        snapshot: &snapshot,
        held: &held,
        namespaces: &namespaces,
        default_policy: state.config.default_policy(),
    });
    let now = now_ms();
    for adm in &out.admitted {
        let c = &candidates[adm.index];
        let nodes: Vec<String> = adm
            .placement
            .pods
            .iter()
            .map(|(role, n)| {
                let node = snapshot
                    .nodes
                    .get(*n)
                    .map(|x| x.name.as_str())
                    .unwrap_or("?");
                format!("{role}@{node}")
            })
            .collect();
        let t = Transition {
            id: c.id.clone(),
            from: JobState::Queued,
            to: JobState::Admitted,
            at_ms: now,
            message: format!("admitted: {} placed as {}", c.demand, nodes.join(", ")),
            backend_ref: None,
            exit_code: None,
        };
        match state.store.transition(&t).await {
            Ok(rec) => state.metrics.transitioned(t.from, &rec),
            // Cancelled meanwhile: nothing to do.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut waiting = HashMap::with_capacity(out.waiting.len());
    for w in out.waiting {
        let c = &candidates[w.index];
        waiting.insert(
            c.id.clone(),
            WaitInfo {
                reason: w.reason.to_string(),
                reason_kind: w.reason.kind().to_string(),
                position: w.position,
                level_position: w.level_position,
            },
        );
    }
    let mut view = state.view.write().await;
    *view = CycleView {
        at_ms: now,
        snapshot: Some(snapshot),
        waiting,
    };
    Ok(())
}

async fn submit_admitted(state: &AppState) -> Result<(), TickError> {
    let admitted = state.store.jobs_in_states(&[JobState::Admitted]).await?;
    for rec in admitted {
        let Some(job) = job_of(&rec) else {
            fail(
                state,
                &rec,
                "the stored spec no longer decodes; cannot submit",
            )
            .await?;
            continue;
        };
        let req = SubmitRequest {
            job_id: rec.id.clone(),
            attempt: rec.attempt,
            job,
            demand: rec.demand.clone(),
        };
        let now = now_ms();
        match state.backend.submit(&req).await {
            Ok(sub) => {
                let message = if sub.already_existed {
                    format!("already submitted (run {}); re-attached", sub.backend_ref)
                } else {
                    format!(
                        "submitted to the {} backend (run {})",
                        state.backend.kind(),
                        sub.backend_ref
                    )
                };
                let t = Transition {
                    id: rec.id.clone(),
                    from: JobState::Admitted,
                    to: JobState::Submitted,
                    at_ms: now,
                    message,
                    backend_ref: Some(sub.backend_ref.clone()),
                    exit_code: None,
                };
                match state.store.transition(&t).await {
                    Ok(_) => {}
                    Err(StoreError::Conflict { .. }) => {
                        // Cancelled while we were submitting: stop the run we just started.
                        let run = RunRef {
                            job_id: rec.id.clone(),
                            attempt: rec.attempt,
                            backend_ref: Some(sub.backend_ref),
                        };
                        if let Err(e) = state.backend.cancel(&run).await {
                            tracing::warn!(job = %rec.id, "cancel after a racing cancel: {e}");
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(BackendError::NoRoom(msg)) => {
                let t = Transition {
                    id: rec.id.clone(),
                    from: JobState::Admitted,
                    to: JobState::Queued,
                    at_ms: now,
                    message: format!("back to the queue, the backend had no room: {msg}"),
                    backend_ref: None,
                    exit_code: None,
                };
                apply(state, &t).await?;
            }
            Err(BackendError::Unavailable(msg)) => {
                tracing::info!(job = %rec.id, "backend unavailable, will submit later: {msg}");
            }
            Err(BackendError::NotYet(msg)) => {
                // Still admitted (its room held); the backend finishes the submission later.
                tracing::debug!(job = %rec.id, "submission under way: {msg}");
            }
            Err(e) => {
                fail(state, &rec, &format!("submission failed: {e}")).await?;
            }
        }
    }
    Ok(())
}

/// Writes a state change, records it in the metrics, and ignores a conflict (the job moved
/// meanwhile, e.g. a user cancelled it).
async fn apply(state: &AppState, t: &Transition) -> Result<(), StoreError> {
    let r = state.store.transition(t).await;
    if let Ok(rec) = &r {
        state.metrics.transitioned(t.from, rec);
    }
    ignore_conflict(r)
}

fn ignore_conflict(r: Result<JobRecord, StoreError>) -> Result<(), StoreError> {
    match r {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn fail(state: &AppState, rec: &JobRecord, message: &str) -> Result<(), StoreError> {
    let t = Transition {
        id: rec.id.clone(),
        from: rec.state,
        to: JobState::Failed,
        at_ms: now_ms(),
        message: message.to_string(),
        backend_ref: None,
        exit_code: None,
    };
    apply(state, &t).await
}

fn run_ref(rec: &JobRecord) -> RunRef {
    RunRef {
        job_id: rec.id.clone(),
        attempt: rec.attempt,
        backend_ref: rec.backend_ref.clone(),
    }
}

async fn reconcile(state: &AppState) -> Result<(), TickError> {
    record_backend_notes(state).await?;
    let active = state
        .store
        .jobs_in_states(&[JobState::Submitted, JobState::Running])
        .await?;
    // Runs past their maxRuntime: cancelled together after the loop, so that N of them hold
    // the tick for one kill grace period, not N.
    let mut timed_out = Vec::new();
    for rec in active {
        let run = run_ref(&rec);
        let status = match state.backend.status(&run).await {
            Ok(s) => s,
            Err(BackendError::Unavailable(msg)) => {
                tracing::debug!(job = %rec.id, "status unavailable: {msg}");
                continue;
            }
            Err(BackendError::NotFound { .. }) => RunStatus::Lost {
                message: "the backend has no run for this job".into(),
            },
            Err(e) => {
                tracing::warn!(job = %rec.id, "status: {e}");
                continue;
            }
        };
        let now = now_ms();
        // The Spark application id, recorded as the job's backend_ref when it starts running.
        let mut app_ref = None;
        // The run started and ended between two looks (as opposed to lost or requeued).
        let ended = matches!(status, RunStatus::Succeeded | RunStatus::Failed { .. });
        let (to, message, exit_code) = match status {
            RunStatus::Pending => continue,
            RunStatus::Running => {
                if rec.state == JobState::Running {
                    if let Some(limit) = runtime_exceeded(&rec, now) {
                        timed_out.push((rec, limit));
                    }
                    continue;
                } else {
                    let (note, app) = running_note(state, &run).await;
                    app_ref = app;
                    (JobState::Running, note, None)
                }
            }
            RunStatus::Succeeded => (JobState::Succeeded, "succeeded".to_string(), Some(0)),
            RunStatus::Failed { exit_code, message } => {
                (JobState::Failed, format!("failed: {message}"), exit_code)
            }
            RunStatus::Lost { message } => (JobState::Failed, format!("lost: {message}"), None),
            // The backend stopped the run (deadlock watchdog): back to the queue, next attempt.
            RunStatus::Requeue { message } => {
                (JobState::Queued, format!("requeued: {message}"), None)
            }
        };
        if rec.state == JobState::Submitted && ended {
            // Record that it ran, so the timeline shows a start even for very short runs.
            let (note, app) = running_note(state, &run).await;
            let t = Transition {
                id: rec.id.clone(),
                from: JobState::Submitted,
                to: JobState::Running,
                at_ms: now,
                message: note,
                backend_ref: app,
                exit_code: None,
            };
            apply(state, &t).await?;
            let t = Transition {
                id: rec.id.clone(),
                from: JobState::Running,
                to,
                at_ms: now,
                message,
                backend_ref: None,
                exit_code,
            };
            apply(state, &t).await?;
            continue;
        }
        let t = Transition {
            id: rec.id.clone(),
            from: rec.state,
            to,
            at_ms: now,
            message,
            backend_ref: app_ref,
            exit_code,
        };
        apply(state, &t).await?;
    }
    cancel_timed_out(state, timed_out).await?;
    // What the status calls just saw (the operator's state, say) goes in now.
    record_backend_notes(state).await?;
    Ok(())
}

/// Cancels the runs that exceeded their maxRuntime, all at once, and fails each job whose run
/// was stopped with "timeout" (a failed cancel is tried again on the next tick).
async fn cancel_timed_out(
    state: &AppState,
    timed_out: Vec<(JobRecord, u64)>,
) -> Result<(), TickError> {
    let mut cancels = tokio::task::JoinSet::new();
    for (rec, limit) in timed_out {
        let backend = state.backend.clone();
        cancels.spawn(async move {
            let result = backend.cancel(&run_ref(&rec)).await;
            (rec, limit, result)
        });
    }
    while let Some(joined) = cancels.join_next().await {
        let (rec, limit, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!("timeout cancel task: {e}");
                continue;
            }
        };
        if let Err(e) = result {
            tracing::warn!(job = %rec.id, "timeout cancel: {e}");
            continue;
        }
        let t = Transition {
            id: rec.id.clone(),
            from: JobState::Running,
            to: JobState::Failed,
            at_ms: now_ms(),
            message: format!("timeout: ran longer than maxRuntime ({limit} s); killed"),
            backend_ref: None,
            exit_code: None,
        };
        apply(state, &t).await?;
    }
    Ok(())
}

/// The message of a job's "running" transition and its new backend reference: the Spark
/// application id when the backend knows it (it replaces the submit-time reference, a pid or a
/// driver id, which stays in the timeline).
async fn running_note(state: &AppState, run: &RunRef) -> (String, Option<String>) {
    match state.backend.app_id(run).await {
        Some(id) => (format!("running (Spark application {id})"), Some(id)),
        None => ("running".to_string(), None),
    }
}

/// Writes what the backend saw happen to runs (a worker lost, say) into the jobs' timelines.
async fn record_backend_notes(state: &AppState) -> Result<(), TickError> {
    let now = now_ms();
    for note in state.backend.take_notes().await {
        match state.store.add_note(&note.job_id, now, &note.message).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn runtime_exceeded(rec: &JobRecord, now: i64) -> Option<u64> {
    let job = job_of(rec)?;
    let limit = job.max_runtime_secs?;
    let started = rec.started_at_ms?;
    let limit_ms = i64::try_from(limit.saturating_mul(1000)).unwrap_or(i64::MAX);
    (now.saturating_sub(started) > limit_ms).then_some(limit)
}

/// On start-up, write in each running job's timeline whether its run was found again.
async fn startup_notes(state: &AppState) -> Result<(), TickError> {
    let active = state
        .store
        .jobs_in_states(&[JobState::Admitted, JobState::Submitted, JobState::Running])
        .await?;
    let now = now_ms();
    for rec in active {
        let note = match rec.state {
            JobState::Admitted => {
                "sluice restarted; the admitted job will be submitted (idempotently)".to_string()
            }
            _ => match state.backend.status(&run_ref(&rec)).await {
                Ok(RunStatus::Running | RunStatus::Pending) => format!(
                    "sluice restarted; run {} re-attached",
                    rec.backend_ref.as_deref().unwrap_or("?")
                ),
                Ok(_) | Err(BackendError::NotFound { .. }) => {
                    "sluice restarted; the run ended while sluice was down".to_string()
                }
                Err(e) => format!("sluice restarted; run state unknown for now: {e}"),
            },
        };
        state.store.add_note(&rec.id, now, &note).await?;
    }
    Ok(())
}
