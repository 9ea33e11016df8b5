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

use std::time::Duration;

use sluice_backend::{BackendError, RunStatus};
use sluice_core::job::JobState;

use crate::state::AppState;
use crate::time::now_ms;

pub mod admit;
pub mod error;
pub mod orchestrate;
pub mod reconcile;
pub mod submit;
pub mod write;

pub use error::TickError;
use write::run_ref;

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

/// One cycle plus reconciliation.
pub async fn tick(state: &AppState) -> Result<(), TickError> {
    let _guard = state.cycle_lock.lock().await;
    // Reconcile first, so that room freed by jobs that ended is used in this same cycle.
    reconcile::reconcile(state).await?;
    // Schedules, retries and the dead-letter queue, queue TTLs (see `orchestration`).
    orchestrate::run(state, now_ms()).await?;
    admit::admit(state).await?;
    submit::submit_admitted(state).await?;
    // Hourly rollups of the history (one bounded step; cheap when there is nothing to do).
    if let Err(e) = state.store.roll_up_history(now_ms()).await {
        tracing::warn!("rolling up the history: {e}");
    }
    Ok(())
}

/// On start-up, write in each running job's timeline whether its run was found again.
pub async fn startup_notes(state: &AppState) -> Result<(), TickError> {
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
