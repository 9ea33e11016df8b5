//! Step 1 of the tick: reconcile. The backend's state of every submitted or running job
//! becomes the job's state in the store (running, succeeded, failed, lost, requeued); runs past
//! their `maxRuntime` are cancelled; the backend's notes go into the timelines.

use sluice_backend::{BackendError, RunRef, RunStatus};
use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_store::{Preempted, StoreError, Transition};

use super::error::TickError;
use super::usage::{Ended, record_in_background};
use super::write::{apply, apply_all, backend_aside, held, isolate, run_ref};
use crate::state::{AppState, StopEnd};

/// Reconciles every submitted or running job with the backend.
pub async fn reconcile(state: &AppState) -> Result<(), TickError> {
    // Runs stopped since the last tick by their stop tasks.
    write_stopped(state).await?;
    record_backend_notes(state).await?;
    let active = super::active_jobs(state, &[JobState::Submitted, JobState::Running]).await?;
    // Runs past their maxRuntime: cancelled together after the loop, so that N of them hold
    // the tick for one kill grace period, not N.
    let mut timed_out = Vec::new();
    // Every change this step finds, written together in one transaction at the end (with
    // what was being recorded, for the log of a write that fails).
    let mut writes: Vec<(Transition, String)> = Vec::new();
    // Runs that ended: their usage is recorded off the tick once their end is written.
    let mut ended_runs: Vec<Ended> = Vec::new();
    for rec in active {
        // A job being stopped by a task of its own (a user's cancel, a timeout) is left to
        // that task.
        if held(state, &rec.id) || state.is_stopping(&rec.id) {
            continue;
        }
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
                backend_aside(state, &rec.id, "reading the run's status", &e);
                continue;
            }
        };
        let now = state.now_ms();
        if status.is_final() {
            let (succeeded, message, exit_code) = match &status {
                RunStatus::Failed { exit_code, message } => (false, message.clone(), *exit_code),
                RunStatus::Lost { message } => (false, format!("lost: {message}"), None),
                _ => (true, String::new(), Some(0)),
            };
            ended_runs.push(Ended {
                rec: JobRecord::clone(&rec),
                at_ms: now,
                succeeded,
                cancelled: false,
                message,
                exit_code,
            });
        }
        // The Spark application id, recorded as the job's backend_ref when it starts running.
        let mut app_ref = None;
        // The run started and ended between two looks (as opposed to lost or requeued).
        let ended = matches!(status, RunStatus::Succeeded | RunStatus::Failed { .. });
        let (to, message, exit_code) = match status {
            // Nothing to write: a job set aside for a failed status read is fine again.
            RunStatus::Pending => {
                state.aside.clear(&rec.id);
                continue;
            }
            RunStatus::Running => {
                if rec.state == JobState::Running {
                    state.aside.clear(&rec.id);
                    if let Some(limit) = runtime_exceeded(&rec, now) {
                        timed_out.push((JobRecord::clone(&rec), limit));
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
            writes.push((t, "recording the run's start".into()));
            // Written after the start in the same transaction; if the start fails, this
            // finds the job not running and is dropped as a lost race.
            let t = Transition {
                id: rec.id.clone(),
                from: JobState::Running,
                to,
                at_ms: now,
                message,
                backend_ref: None,
                exit_code,
            };
            writes.push((t, "recording the run's end".into()));
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
        writes.push((t, format!("recording the move to {to}")));
    }
    apply_all(state, writes).await?;
    record_in_background(state, ended_runs);
    cancel_timed_out(state, timed_out).await?;
    // What the status calls just saw (the operator's state, say) goes in now.
    record_backend_notes(state).await?;
    Ok(())
}

/// Cancels the runs that exceeded their maxRuntime, each in a task of its own, and fails each
/// job whose run was stopped with "timeout" (a failed cancel is tried again on a later tick).
/// The tick waits for the stops at most [`QUICK_STOP`]: a run that ignores SIGTERM holds its
/// own task for the backend's kill grace, never the tick; its job is failed by the first tick
/// after the kill ([`write_stopped`]).
async fn cancel_timed_out(
    state: &AppState,
    timed_out: Vec<(JobRecord, u64)>,
) -> Result<(), TickError> {
    let mut tasks = Vec::new();
    for (rec, limit) in timed_out {
        let message = format!("timeout: ran longer than maxRuntime ({limit} s); killed");
        if let Some(task) = stop_in_background(state, rec, StopEnd::Failed(message), None) {
            tasks.push(task);
        }
    }
    if !tasks.is_empty() {
        let _ = tokio::time::timeout(QUICK_STOP, join_all(tasks)).await;
    }
    write_stopped(state).await
}

/// How long a tick waits for the stops it started before going on without them.
pub const QUICK_STOP: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest a stop task waits for the backend's cancel.
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

async fn join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Stops a running job's run in a task of its own (bounded by [`STOP_TIMEOUT`]), within
/// `grace` if given (else the backend's own kill grace); the job ends as `end` says (failed, or
/// back to its queue when preempted) by the tick that finds the stop done ([`write_stopped`]),
/// and the reconciler leaves it alone meanwhile. None if a stop of this job is already under
/// way.
pub fn stop_in_background(
    state: &AppState,
    rec: JobRecord,
    end: StopEnd,
    grace: Option<std::time::Duration>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !state.start_stopping(&rec.id) {
        return None;
    }
    let state = state.clone();
    Some(tokio::spawn(async move {
        let run = run_ref(&rec);
        let what = match &end {
            StopEnd::Failed(_) => "timeout cancel",
            StopEnd::Preempted(_) => "preemption",
        };
        let cancel = async {
            match grace {
                Some(g) => state.backend.cancel_within(&run, g).await,
                None => state.backend.cancel(&run).await,
            }
        };
        let stopped = tokio::time::timeout(STOP_TIMEOUT, cancel).await;
        match stopped {
            Ok(Ok(())) => {
                // A run that succeeded before it could be stopped is left to the reconciler.
                let succeeded = matches!(&end, StopEnd::Preempted(_))
                    && matches!(state.backend.status(&run).await, Ok(RunStatus::Succeeded));
                if succeeded {
                    state.done_stopping(&rec.id);
                } else {
                    state.push_stopped(rec, end);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(job = %rec.id, "{what}: {e}");
                state.done_stopping(&rec.id);
            }
            Err(_) => {
                tracing::warn!(
                    job = %rec.id,
                    "{what}: the backend did not stop the run within {} s",
                    STOP_TIMEOUT.as_secs()
                );
                state.done_stopping(&rec.id);
            }
        }
        state.wake.notify_one();
    }))
}

/// Ends each job whose run a stop task has stopped: failed with the task's message (a
/// timeout), or back to its queue without a failure (preempted).
pub async fn write_stopped(state: &AppState) -> Result<(), TickError> {
    for (rec, end) in state.take_stopped() {
        let (written, what, ended) = match end {
            StopEnd::Failed(message) => {
                let t = Transition {
                    id: rec.id.clone(),
                    from: JobState::Running,
                    to: JobState::Failed,
                    at_ms: state.now_ms(),
                    message,
                    backend_ref: None,
                    exit_code: None,
                };
                let ended = Ended {
                    at_ms: t.at_ms,
                    succeeded: false,
                    cancelled: false,
                    message: t.message.clone(),
                    exit_code: None,
                    rec: rec.clone(),
                };
                (
                    apply(state, &t).await.map(|_| ()),
                    "recording the timeout",
                    Some(ended),
                )
            }
            StopEnd::Preempted(message) => {
                let p = Preempted {
                    id: rec.id.clone(),
                    from: rec.state,
                    at_ms: state.now_ms(),
                    message,
                };
                let written = match state.store.preempt_job(&p).await {
                    Ok(after) => {
                        state.metrics.job_preempted(&after);
                        state.aside.clear(&after.id);
                        Ok(())
                    }
                    // Ended or moved meanwhile: nothing to send back.
                    Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => Ok(()),
                    Err(e) => Err(e),
                };
                (written, "recording the preemption", None)
            }
        };
        state.done_stopping(&rec.id);
        match written {
            // What a run stopped for its maxRuntime held and used is recorded like any ended
            // run's.
            Ok(()) => {
                if let Some(e) = ended {
                    record_in_background(state, vec![e]);
                }
            }
            Err(e) => isolate(state, &rec.id, what, e)?,
        }
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
    let now = state.now_ms();
    for note in state.backend.take_notes().await {
        match state.store.add_note(&note.job_id, now, &note.message).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => isolate(state, &note.job_id, "writing a note of the backend", e)?,
        }
    }
    Ok(())
}

fn runtime_exceeded(rec: &JobRecord, now: i64) -> Option<u64> {
    let job = rec.job().ok()?;
    let limit = job.max_runtime_secs?;
    let started = rec.started_at_ms?;
    let limit_ms = i64::try_from(limit.saturating_mul(1000)).unwrap_or(i64::MAX);
    (now.saturating_sub(started) > limit_ms).then_some(limit)
}
