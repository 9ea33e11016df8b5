//! Step 4 of the tick: submit. Each admitted job goes to the backend and moves admitted ->
//! submitted; a backend without room sends it back to its queue (keeping its place).

use sluice_backend::{BackendError, RunRef, SubmitRequest};
use sluice_core::job::JobState;
use sluice_store::{StoreError, Transition};

use super::error::TickError;
use super::write::{apply, fail, held, isolate};
use crate::state::AppState;

/// Submits every admitted job.
pub async fn submit_admitted(state: &AppState) -> Result<(), TickError> {
    let admitted = state.store.jobs_in_states(&[JobState::Admitted]).await?;
    for rec in admitted {
        if held(state, &rec.id) {
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
        let now = state.now_ms();
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
                    Ok(_) => state.aside.clear(&rec.id),
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
                    Err(e) => isolate(state, &rec.id, "recording the submission", e)?,
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
                if let Err(e) = apply(state, &t).await {
                    isolate(state, &rec.id, "sending the job back to its queue", e)?;
                }
            }
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
    Ok(())
}
