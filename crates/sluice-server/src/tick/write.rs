//! What every step of the tick uses to write a job's state change.

use sluice_backend::{BackendError, RunRef};
use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_store::{StoreError, Transition};

use super::error::TickError;
use crate::fault::{store_detail, store_unavailable};
use crate::state::AppState;
use crate::time::rfc3339;

/// Writes a state change, records it in the metrics, and ignores a conflict (the job moved
/// meanwhile, e.g. a user cancelled it).
pub async fn apply(state: &AppState, t: &Transition) -> Result<(), StoreError> {
    let r = state.store.transition(t).await;
    if let Ok(rec) = &r {
        state.metrics.transitioned(t.from, rec);
        state.aside.clear(&rec.id);
    }
    ignore_conflict(r)
}

/// Writes `writes` in order in one transaction (a tick's reconciled runs, say); a write that
/// lost a race is dropped, one that failed otherwise sets its job aside, and the store being
/// unavailable (or this replica fenced off) ends the tick.
pub async fn apply_all(
    state: &AppState,
    writes: Vec<(Transition, String)>,
) -> Result<(), TickError> {
    if writes.is_empty() {
        return Ok(());
    }
    let ts: Vec<Transition> = writes.iter().map(|(t, _)| t.clone()).collect();
    let results = state.store.transitions(&ts).await;
    for ((t, what), r) in writes.into_iter().zip(results) {
        match r {
            Ok(rec) => {
                state.metrics.transitioned(t.from, &rec);
                state.aside.clear(&rec.id);
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => isolate(state, &t.id, &what, e)?,
        }
    }
    Ok(())
}

/// A write that lost a race (the job moved meanwhile) is not an error.
pub fn ignore_conflict(r: Result<JobRecord, StoreError>) -> Result<(), StoreError> {
    match r {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Fails a job with `message`.
pub async fn fail(state: &AppState, rec: &JobRecord, message: &str) -> Result<(), StoreError> {
    let t = Transition {
        id: rec.id.clone(),
        from: rec.state,
        to: JobState::Failed,
        at_ms: state.now_ms(),
        message: message.to_string(),
        backend_ref: None,
        exit_code: None,
    };
    apply(state, &t).await
}

/// The run of a job's current attempt.
pub fn run_ref(rec: &JobRecord) -> RunRef {
    RunRef {
        job_id: rec.id.clone(),
        attempt: rec.attempt,
        backend_ref: rec.backend_ref.clone(),
    }
}

/// Whether the tick leaves job `id` alone for now (set aside, its back-off not over).
pub fn held(state: &AppState, id: &str) -> bool {
    state.aside.is_held(id, state.now_ms())
}

/// Handles a store error on a write of one job: the database being unavailable ends the tick
/// (the error is returned; the next tick retries); a job deleted meanwhile is nothing to do;
/// anything else sets the job aside with the reason, for a back-off, and the tick goes on with
/// the other jobs.
pub fn isolate(state: &AppState, id: &str, what: &str, e: StoreError) -> Result<(), TickError> {
    if store_unavailable(&e) {
        return Err(e.into());
    }
    if matches!(e, StoreError::NotFound(_)) {
        return Ok(());
    }
    let a = state
        .aside
        .set_aside(id, format!("{what}: {e}"), state.now_ms());
    state.metrics.job_set_aside();
    tracing::warn!(
        job = %id,
        times = a.times,
        retry_at = %rfc3339(a.retry_at_ms),
        "job set aside: {what}: {}",
        store_detail(&e)
    );
    Ok(())
}

/// Sets job `id` aside after the backend failed on it (other than being unavailable), for a
/// back-off instead of every tick.
pub fn backend_aside(state: &AppState, id: &str, what: &str, e: &BackendError) {
    let a = state
        .aside
        .set_aside(id, format!("{what}: {e}"), state.now_ms());
    state.metrics.job_set_aside();
    tracing::warn!(
        job = %id,
        times = a.times,
        retry_at = %rfc3339(a.retry_at_ms),
        "job set aside: {what}: {e}"
    );
}
