//! What the API shows of a job: its record, demand, timeline and orchestration state (the
//! types are `sluice_api`'s; made here from the store's records).

use sluice_core::job::{JobEvent, JobState};
use sluice_core::record::JobRecord;

use super::error::ApiError;
use crate::state::{AppState, WaitInfo};
use crate::time::rfc3339;
pub use sluice_api::jobs::{
    DemandView, EventView, JobView, OrchView, PodDemandView, RunResultView,
};
pub use sluice_api::resubmit::{DocumentError, resubmittable};

/// The orchestration view of a job from its record and its orchestration state, at `now`.
///
/// A stored policy that does not decode is an error naming the job, never the default.
pub fn orch_view_of(
    rec: &JobRecord,
    o: &sluice_store::JobOrch,
    now: i64,
) -> Result<OrchView, ApiError> {
    let policy = rec.policy().map_err(|e| {
        // Named for the client (job and what failed), in detail only in the log.
        tracing::error!(job = %rec.id, "{e}");
        ApiError::Internal(format!(
            "job {}: its stored job (retry/queue policy) does not decode (the server log has \
             the details)",
            rec.id
        ))
    })?;
    let waiting =
        rec.state == sluice_core::job::JobState::Queued && o.retry_at_ms.is_some_and(|t| t > now);
    Ok(OrchView {
        schedule: o.schedule.clone(),
        scheduled_for: o.scheduled_for_ms.map(rfc3339),
        attempt_in_round: o.attempt_in_round(rec.attempt),
        max_attempts: policy.max_attempts(),
        retry_at: if waiting {
            o.retry_at_ms.map(rfc3339)
        } else {
            None
        },
        failure_class: o.failure_class.clone(),
        dead_lettered_at: o.dlq_at_ms.map(rfc3339),
        dead_letter_reason: o.dlq_reason.clone(),
        max_queue_wait_seconds: policy.max_queue_wait_secs,
        preemptions: o.preemptions,
    })
}

/// The orchestration view of a job (for `GET /v1/jobs/{id}`).
pub async fn orch_view(st: &AppState, rec: &JobRecord) -> Result<Option<OrchView>, ApiError> {
    let o = st.store.job_orch(&rec.id).await?;
    let now = st.now_ms();
    o.map(|o| orch_view_of(rec, &o, now)).transpose()
}

/// A job as the API shows it, with its wait (kept only while queued) and timeline, and its
/// secret values hidden ([`crate::redact`]).
pub fn view(rec: JobRecord, wait: Option<WaitInfo>, timeline: Option<Vec<JobEvent>>) -> JobView {
    let mut spec = match rec.decoded().map(|stored| stored.encode()) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!(job = %rec.id, "the stored job does not encode: {e}");
            serde_json::Value::Null
        }
        Err(e) => {
            tracing::error!(job = %rec.id, "{e}");
            serde_json::Value::Null
        }
    };
    let total = rec.demand.total();
    // Secret values (env, Spark conf) are never shown; the stored job keeps them.
    crate::redact::redact_spec(&mut spec);
    JobView {
        demand: DemandView {
            pods: rec
                .demand
                .pods
                .iter()
                .map(|p| PodDemandView {
                    role: p.role.to_string(),
                    count: p.count,
                    cpu_milli: p.cpu_milli,
                    memory_mib: p.mem_mib,
                })
                .collect(),
            total_cpu_milli: total.cpu_milli,
            total_memory_mib: total.mem_mib,
        },
        wait: if rec.state == JobState::Queued {
            wait
        } else {
            None
        },
        timeline: timeline.map(|evs| {
            evs.into_iter()
                .map(|e| EventView {
                    at: rfc3339(e.at_ms),
                    from: e.from.map(|s| s.to_string()),
                    to: e.to.to_string(),
                    message: e.message,
                })
                .collect()
        }),
        orchestration: None,
        set_aside: None,
        results: None,
        id: rec.id,
        namespace: rec.namespace,
        name: rec.name,
        level: rec.level,
        state: rec.state.to_string(),
        attempt: rec.attempt,
        labels: rec.labels,
        created_at: rfc3339(rec.created_at_ms),
        enqueued_at: rfc3339(rec.enqueued_at_ms),
        updated_at: rfc3339(rec.updated_at_ms),
        started_at: rec.started_at_ms.map(rfc3339),
        finished_at: rec.finished_at_ms.map(rfc3339),
        backend_ref: rec.backend_ref,
        exit_code: rec.exit_code,
        message: rec.message,
        spec,
    }
}
