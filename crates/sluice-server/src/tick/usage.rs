//! After a run ends: what it produced (a dbt run's nodes, [`sluice_backend::Backend::result`])
//! and what it held and used are recorded, one [`UsageRecord`] per run (see `docs/cost.md`):
//! runs that ended by themselves, runs stopped for their `maxRuntime`, and runs stopped by a
//! cancel (a user's, or a schedule's `Replace`). Off the tick: whoever wrote the end hands
//! each ended run to a task of its own,
//! which asks the backend ([`sluice_backend::Backend::usage`]: the run's Spark event log,
//! parsed on a blocking thread, and its process's usage) and writes the record; at most
//! [`PARALLEL`] such tasks read at once, so a burst of ended runs never floods the host.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::cost::{Outcome, Requested, UsageRecord, efficiency};
use sluice_core::record::JobRecord;
use sluice_core::retry::{FailureClass, FailureFacts, classify};
use sluice_core::sizing::spark_shape;
use tokio::sync::Semaphore;

use super::oomlog::log_has_oom;
use super::write::run_ref;
use crate::state::AppState;

/// Runs whose usage is read at once.
pub const PARALLEL: usize = 2;
/// The longest one run's usage is read for (a huge log): then the record has none.
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);

fn slots() -> Arc<Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(PARALLEL)))
        .clone()
}

/// How a run ended, as the reconciler saw it.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The job as it was before the end was written (its attempt, times, demand).
    pub rec: JobRecord,
    /// When the end was seen.
    pub at_ms: i64,
    /// True for a success.
    pub succeeded: bool,
    /// True for a run stopped by a cancel (a user's, or a schedule's `Replace`): it held its
    /// room until it was killed, and used what its process and event log show up to then.
    pub cancelled: bool,
    /// The message of the failure.
    pub message: String,
    /// Its exit code.
    pub exit_code: Option<i32>,
}

impl Ended {
    /// A run of `rec` stopped by a cancel whose end was written at `at_ms` with `message`.
    pub fn cancelled(rec: JobRecord, at_ms: i64, message: String) -> Ended {
        Ended {
            rec,
            at_ms,
            succeeded: false,
            cancelled: true,
            message,
            exit_code: None,
        }
    }
}

/// Records each ended run's usage in a task of its own; returns the tasks (tests wait on them).
pub fn record_in_background(
    state: &AppState,
    ended: Vec<Ended>,
) -> Vec<tokio::task::JoinHandle<()>> {
    ended
        .into_iter()
        .map(|e| {
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(_slot) = slots().acquire_owned().await else {
                    return;
                };
                record_result(&state, &e).await;
                let r = usage_record(&state, &e).await;
                let e2 = efficiency(&r, &state.config.cost.prices(&r.namespace));
                state
                    .metrics
                    .run_usage(&r.namespace, &e2, r.measured.is_some());
                if let Err(err) = state.store.put_usage(&r).await {
                    tracing::warn!(job = %r.job_id, attempt = r.attempt, "recording usage: {err}");
                }
            })
        })
        .collect()
}

/// Records what an ended run produced (a dbt run's nodes), if it left anything.
async fn record_result(state: &AppState, e: &Ended) {
    let run = run_ref(&e.rec);
    match tokio::time::timeout(READ_TIMEOUT, state.backend.result(&run)).await {
        Ok(Ok(Some(result))) => {
            if let Err(err) = state
                .store
                .put_run_result(&e.rec.id, e.rec.attempt, e.at_ms, &result)
                .await
            {
                tracing::warn!(job = %e.rec.id, attempt = e.rec.attempt, "recording the run's result: {err}");
            }
        }
        Ok(Ok(None)) => {}
        Ok(Err(err)) => {
            tracing::warn!(job = %e.rec.id, attempt = e.rec.attempt, "reading the run's result: {err}");
        }
        Err(_) => {
            tracing::warn!(job = %e.rec.id, attempt = e.rec.attempt, "the run's result was not read in time");
        }
    }
}

/// The record of one ended run.
pub async fn usage_record(state: &AppState, e: &Ended) -> UsageRecord {
    let rec = &e.rec;
    let run = run_ref(rec);
    let mut note = None;
    let measured =
        match tokio::time::timeout(READ_TIMEOUT, state.backend.usage(&run, e.at_ms)).await {
            Ok(Ok(m)) => m,
            // The backend says why nothing was measured (no event log for the run, say).
            Ok(Err(sluice_backend::BackendError::Unmeasured(why))) => {
                note = Some(why);
                None
            }
            Ok(Err(err)) => {
                note = Some(format!("usage not read: {err}"));
                None
            }
            Err(_) => {
                note = Some(format!(
                    "usage not read within {} s",
                    READ_TIMEOUT.as_secs()
                ));
                None
            }
        };
    if measured.is_none() && note.is_none() {
        note = Some(format!(
            "the {} backend measured nothing for this run",
            state.backend.kind()
        ));
    }
    let outcome = if e.succeeded {
        Outcome::Succeeded
    } else if e.cancelled {
        Outcome::Cancelled
    } else {
        let facts = FailureFacts {
            message: &e.message,
            exit_code: e.exit_code,
            log_tail: "",
        };
        if classify(&facts) == FailureClass::Oom || log_has_oom(state, rec).await {
            Outcome::Oom
        } else {
            Outcome::Failed
        }
    };
    let schedule = match state.store.job_orch(&rec.id).await {
        Ok(o) => o.and_then(|o| o.schedule),
        Err(err) => {
            tracing::debug!(job = %rec.id, "usage: the job's schedule: {err}");
            None
        }
    };
    let spark = rec.job().ok().and_then(|j| {
        j.kind
            .spark_spec()
            .and_then(|spec| spark_shape(&spec, j.kind.section()).ok())
    });
    UsageRecord {
        job_id: rec.id.clone(),
        attempt: rec.attempt,
        namespace: rec.namespace.clone(),
        name: rec.name.clone(),
        schedule,
        // A run seen start and end in one look started when it was submitted.
        started_at_ms: rec.started_at_ms.unwrap_or(rec.updated_at_ms).min(e.at_ms),
        ended_at_ms: e.at_ms,
        outcome,
        requested: Requested::new(&rec.demand, spark),
        measured,
        note,
    }
}
