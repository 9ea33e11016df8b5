//! Cancelling a job: a queued job leaves its queue, an admitted one's submission is dropped, a
//! running one is stopped. One function for the API and for the leader acting on a stop that
//! another replica asked for ([`sluice_store::Store::request_stop`]).
//!
//! A run is stopped by the replica that runs the scheduler loop (it marks the job as being
//! stopped between two ticks, so no tick records the killed run's end as a failure). On a
//! replica that does not lead, the stop is asked of the leader through the store's change
//! feed, and the cancel waits (at most [`FORWARD_WAIT`]) for the job to end.
//!
//! A stopped run's usage (what it held until it was killed, what it used) is recorded by the
//! replica that stopped it, off the request ([`crate::tick::usage`]).

use std::time::Duration;

use sluice_backend::{BackendError, RunRef};
use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_store::{StoreError, Transition};

use crate::state::AppState;
use crate::tick::usage::{Ended, record_in_background};

/// How long a cancel made on a follower waits for the leader to stop the run.
pub const FORWARD_WAIT: Duration = Duration::from_secs(15);

/// Why a job was not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// There is no such job.
    #[error("no job with id {0:?}")]
    NotFound(String),
    /// The job had ended already.
    #[error("job {id} has already ended ({state})")]
    Ended {
        /// The job.
        id: String,
        /// Its final state.
        state: JobState,
    },
    /// Its run is being stopped already.
    #[error("job {0} is being stopped already")]
    Stopping(String),
    /// It kept changing state under the cancel.
    #[error("job {0} kept changing state; try again")]
    KeptChanging(String),
    /// This replica does not lead, and the leader did not stop the run in time (or there is
    /// no leader now).
    #[error(
        "job {0}'s run is stopped by the replica that leads, which did not do it within {secs} s; try again",
        secs = FORWARD_WAIT.as_secs()
    )]
    NoLeader(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A job marked as being stopped ([`AppState::start_stopping`]) until this is dropped.
struct Stopping<'a>(&'a AppState, &'a str);

impl Drop for Stopping<'_> {
    fn drop(&mut self) {
        self.0.done_stopping(self.1);
    }
}

async fn load(st: &AppState, id: &str) -> Result<JobRecord, CancelError> {
    st.store
        .get_job(id)
        .await?
        .ok_or_else(|| CancelError::NotFound(id.to_string()))
}

/// Cancels job `id` on behalf of `who` ("a user"): returns the state it was cancelled from and
/// the job as cancelled.
pub async fn cancel_job(
    st: &AppState,
    id: &str,
    who: &str,
) -> Result<(JobState, JobRecord), CancelError> {
    for _ in 0..5 {
        let rec = load(st, id).await?;
        if rec.state.is_terminal() {
            return Err(CancelError::Ended {
                id: id.to_string(),
                state: rec.state,
            });
        }
        let running = matches!(rec.state, JobState::Submitted | JobState::Running);
        if running && !st.leader.holds() && st.store.request_stop(id).await? {
            return forwarded(st, id, rec.state).await;
        }
        // Held while an admitted job's submission is dropped (short), never while a run is
        // killed: a kill may take the backend's grace period, and ticks go on meanwhile.
        let mut cycle = None;
        let mut stopping = None;
        if running {
            // Mark the job as being stopped between two ticks, so that no tick records the
            // killed run's end as a failure; then stop it without holding up the ticks.
            {
                let _cycle = st.cycle_lock.lock().await;
                if !st.start_stopping(id) {
                    return Err(CancelError::Stopping(id.to_string()));
                }
            }
            stopping = Some(Stopping(st, id));
            st.backend
                .cancel(&RunRef {
                    job_id: rec.id.clone(),
                    attempt: rec.attempt,
                    backend_ref: rec.backend_ref.clone(),
                })
                .await?;
        } else if rec.state == JobState::Admitted {
            cycle = Some(st.cycle_lock.lock().await);
            // A submission may be under way (Kubernetes placeholders): let the backend drop it.
            // There is usually no run yet, so an error here is only logged.
            let run = RunRef {
                job_id: rec.id.clone(),
                attempt: rec.attempt,
                backend_ref: None,
            };
            if let Err(e) = st.backend.cancel(&run).await {
                tracing::debug!(job = %rec.id, "cancel of an admitted job: {e}");
            }
        }
        let t = Transition::new(
            id,
            rec.state,
            JobState::Cancelled,
            st.now_ms(),
            format!("cancelled by {who} while {}", rec.state),
        );
        let written = st.store.transition(&t).await;
        drop(stopping);
        drop(cycle);
        match written {
            Ok(after) => {
                st.metrics.transitioned(t.from, &after);
                // The killed run held its room until now: what it held and used is recorded
                // like any ended run's, as cancelled.
                if running {
                    let ended = Ended::cancelled(rec, t.at_ms, t.message.clone());
                    record_in_background(st, vec![ended]);
                }
                st.wake.notify_one();
                return Ok((t.from, after));
            }
            // The job moved meanwhile (admitted, started): look again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CancelError::KeptChanging(id.to_string()))
}

/// Waits for the leader to stop the run that was asked of it.
async fn forwarded(
    st: &AppState,
    id: &str,
    from: JobState,
) -> Result<(JobState, JobRecord), CancelError> {
    let until = tokio::time::Instant::now() + FORWARD_WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rec = load(st, id).await?;
        if rec.state.is_terminal() {
            return Ok((from, rec));
        }
        if tokio::time::Instant::now() >= until {
            return Err(CancelError::NoLeader(id.to_string()));
        }
    }
}
