//! What every step of the tick uses to write a job's state change.

use sluice_backend::RunRef;
use sluice_core::job::{JobRecord, JobState};
use sluice_core::spec::Job;
use sluice_store::{StoreError, Transition};

use crate::state::AppState;
use crate::time::now_ms;

/// The job spec stored with a record, if it decodes.
pub fn job_of(rec: &JobRecord) -> Option<Job> {
    serde_json::from_value(rec.spec.clone()).ok()
}

/// Writes a state change, records it in the metrics, and ignores a conflict (the job moved
/// meanwhile, e.g. a user cancelled it).
pub async fn apply(state: &AppState, t: &Transition) -> Result<(), StoreError> {
    let r = state.store.transition(t).await;
    if let Ok(rec) = &r {
        state.metrics.transitioned(t.from, rec);
    }
    ignore_conflict(r)
}

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
        at_ms: now_ms(),
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
