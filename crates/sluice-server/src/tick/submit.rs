//! Step 4 of the tick: submit. The admitted jobs go to the backend concurrently (at most
//! [`SUBMIT_CONCURRENCY`] calls at a time); then every outcome is written in one transaction:
//! admitted -> submitted, or back to the queue (keeping its place) when the backend had no room.

use std::sync::Arc;

use sluice_backend::{BackendError, RunRef, SubmitRequest, Submitted};
use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_store::{StoreError, Transition};

use super::error::TickError;
use super::write::{fail, held, isolate};
use crate::state::AppState;

/// Most backend submits in flight at once.
pub const SUBMIT_CONCURRENCY: usize = 16;

/// Submits every admitted job.
pub async fn submit_admitted(state: &AppState) -> Result<(), TickError> {
    let admitted = super::active_jobs(state, &[JobState::Admitted]).await?;
    let leader = state.leader.clone();
    let limit = Arc::new(tokio::sync::Semaphore::new(SUBMIT_CONCURRENCY));
    let mut calls = tokio::task::JoinSet::new();
    for rec in admitted {
        if held(state, &rec.id) || state.is_stopping(&rec.id) {
            continue;
        }
        let job = match rec.job() {
            Ok(job) => job.clone(),
            Err(corrupt) => {
                let message = format!("{corrupt}; cannot submit");
                if let Err(e) = fail(state, &rec, &message).await {
                    isolate(
                        state,
                        &rec.id,
                        "failing a job whose spec does not decode",
                        e,
                    )?;
                }
                continue;
            }
        };
        let req = SubmitRequest {
            job_id: rec.id.clone(),
            attempt: rec.attempt,
            job,
            demand: rec.demand.clone(),
        };
        let backend = state.backend.clone();
        let limit = limit.clone();
        let leader = leader.clone();
        calls.spawn(async move {
            let _permit = limit.acquire_owned().await;
            // A replica that lost the lead (paused past its lease, say) submits nothing more:
            // the new leader submits the admitted jobs.
            if !leader.holds() {
                return (
                    rec,
                    Err(BackendError::NotYet(
                        "this replica is no longer the leader".into(),
                    )),
                );
            }
            let result = backend.submit(&req).await;
            (rec, result)
        });
    }
    let mut outcomes: Vec<(Arc<JobRecord>, Result<Submitted, BackendError>)> = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(done) => outcomes.push(done),
            Err(e) => tracing::warn!("a submit task failed: {e}"),
        }
    }
    // The submits ran concurrently; write in admission order.
    outcomes.sort_by(|a, b| {
        a.0.enqueued_at_ms
            .cmp(&b.0.enqueued_at_ms)
            .then(a.0.id.cmp(&b.0.id))
    });
    let now = state.now_ms();
    // Each write, with the run it started (to stop, should the job have been cancelled meanwhile).
    let mut writes: Vec<(Transition, Option<RunRef>)> = Vec::new();
    for (rec, result) in outcomes {
        match result {
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
                writes.push((
                    Transition {
                        id: rec.id.clone(),
                        from: JobState::Admitted,
                        to: JobState::Submitted,
                        at_ms: now,
                        message,
                        backend_ref: Some(sub.backend_ref.clone()),
                        exit_code: None,
                    },
                    Some(RunRef {
                        job_id: rec.id.clone(),
                        attempt: rec.attempt,
                        backend_ref: Some(sub.backend_ref),
                    }),
                ));
            }
            Err(BackendError::NoRoom(msg)) => writes.push((
                Transition {
                    id: rec.id.clone(),
                    from: JobState::Admitted,
                    to: JobState::Queued,
                    at_ms: now,
                    message: format!("back to the queue, the backend had no room: {msg}"),
                    backend_ref: None,
                    exit_code: None,
                },
                None,
            )),
            Err(BackendError::Unavailable(msg)) => {
                tracing::info!(job = %rec.id, "backend unavailable, will submit later: {msg}");
            }
            Err(BackendError::NotYet(msg)) => {
                // Still admitted (its room held); the backend finishes the submission later.
                tracing::debug!(job = %rec.id, "submission under way: {msg}");
            }
            Err(e) => {
                if let Err(se) = fail(state, &rec, &format!("submission failed: {e}")).await {
                    isolate(state, &rec.id, "recording a failed submission", se)?;
                }
            }
        }
    }
    let ts: Vec<Transition> = writes.iter().map(|(t, _)| t.clone()).collect();
    let results = state.store.transitions(&ts).await;
    for ((t, run), r) in writes.into_iter().zip(results) {
        match r {
            Ok(after) => {
                state.metrics.transitioned(t.from, &after);
                state.aside.clear(&t.id);
            }
            Err(StoreError::Conflict { .. }) => {
                if let Some(run) = run {
                    // Cancelled while we were submitting: stop the run we just started, in a
                    // task of its own (a kill may take the backend's grace period).
                    let backend = state.backend.clone();
                    tokio::spawn(async move {
                        if let Err(e) = backend.cancel(&run).await {
                            tracing::warn!(job = %run.job_id, "cancel after a racing cancel: {e}");
                        }
                    });
                }
            }
            Err(e) => {
                let what = if t.to == JobState::Queued {
                    "sending the job back to its queue"
                } else {
                    "recording the submission"
                };
                isolate(state, &t.id, what, e)?;
            }
        }
    }
    Ok(())
}
