//! What the API shows of a job: its record, demand, timeline and orchestration state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_core::job::{JobEvent, JobState};
use sluice_core::record::JobRecord;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::aside::SetAside;
use crate::state::{AppState, WaitInfo};
use crate::time::rfc3339;

/// The demand of one role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct PodDemandView {
    /// "driver", "executor" or "task".
    pub role: String,
    /// How many pods of this role.
    pub count: u32,
    /// CPU request of one pod, in millicores.
    pub cpu_milli: u64,
    /// Memory request of one pod (heap plus overhead), in MiB.
    pub memory_mib: u64,
}

/// The demand sluice computed for a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DemandView {
    /// Per role.
    pub pods: Vec<PodDemandView>,
    /// Sum of CPU over all pods, in millicores.
    pub total_cpu_milli: u64,
    /// Sum of memory over all pods, in MiB.
    pub total_memory_mib: u64,
}

/// One timeline entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EventView {
    /// When (RFC 3339).
    pub at: String,
    /// State before, if any.
    pub from: Option<String>,
    /// State after.
    pub to: String,
    /// What happened.
    pub message: String,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Priority level.
    pub level: String,
    /// State: queued, admitted, submitted, running, succeeded, failed, cancelled.
    pub state: String,
    /// Attempt number.
    pub attempt: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Entered its queue (RFC 3339).
    pub enqueued_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Started running (RFC 3339).
    pub started_at: Option<String>,
    /// Finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Backend reference of the run.
    pub backend_ref: Option<String>,
    /// Exit code of the run.
    pub exit_code: Option<i32>,
    /// Last message.
    pub message: Option<String>,
    /// What the job requests.
    pub demand: DemandView,
    /// The stored job as the store keeps it: the resolved job's fields (a SparkApplication
    /// keeps every field under kind.application), its policy under `policy` and the user's
    /// document under `document`. Null for a row whose stored job does not decode.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// For a queued job: its position and why it waits (from the last scheduling cycle).
    pub wait: Option<WaitInfo>,
    /// Timeline, oldest first (only on GET /v1/jobs/{id}).
    pub timeline: Option<Vec<EventView>>,
    /// Schedule, retries and dead-letter state (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<OrchView>,
    /// Set when the scheduler has set the job aside (a write or the backend failed on it): why,
    /// and when it tries again (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<SetAside>,
    /// What its runs produced, by attempt: a dbt run's nodes (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<RunResultView>>,
}

/// What one run (attempt) of a job produced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RunResultView {
    /// The attempt.
    pub attempt: u32,
    /// Its result.
    pub result: sluice_core::run_result::RunResult,
}

/// A job's schedule, retries and dead-letter state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OrchView {
    /// The schedule that started it (in its namespace).
    pub schedule: Option<String>,
    /// The fire time the run stands for (RFC 3339; none for a manual trigger).
    pub scheduled_for: Option<String>,
    /// Attempts made in the current round (a requeue from the DLQ begins a new round).
    pub attempt_in_round: u32,
    /// Attempts a round may make (`retry.maxAttempts`; 1 without a retry policy).
    pub max_attempts: u32,
    /// When a retry waiting on backoff becomes eligible (RFC 3339), while it waits.
    pub retry_at: Option<String>,
    /// How the last failure was settled: submission, application, oom, watchdog, timeout,
    /// expired (queue TTL) or unclassified.
    pub failure_class: Option<String>,
    /// When it entered the dead-letter queue (RFC 3339), while it is there.
    pub dead_lettered_at: Option<String>,
    /// Why it was dead-lettered.
    pub dead_letter_reason: Option<String>,
    /// Its `maxQueueWait`, in seconds.
    pub max_queue_wait_seconds: Option<u64>,
    /// How many times it was preempted (stopped and sent back to its queue to make room for
    /// a job of higher priority; a preempted run uses no retry).
    #[serde(default)]
    pub preemptions: u32,
}

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

/// Why a job's document could not be given back.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The stored job does not decode (a corrupt row); names the job.
    #[error("job {id}: {source}")]
    Stored {
        /// The job.
        id: String,
        /// What failed.
        #[source]
        source: sluice_core::stored::StoredJobError,
    },
    /// The stored document is not a YAML or JSON mapping.
    #[error("job {id}: the stored document does not parse: {message}")]
    Parse {
        /// The job.
        id: String,
        /// The parser's message.
        message: String,
    },
}

/// What `sluice get ID -o yaml` prints, in the way of `kubectl get -o yaml`: the user's own
/// document as submitted (every field of theirs intact; a row written before documents were
/// kept gets one rebuilt from the job), with the job as sluice sees it (state, demand, timeline,
/// ...) under a top-level `status`, which the parser ignores. Submitted again unchanged, it
/// queues the same job.
pub fn resubmittable(view: &JobView) -> Result<serde_json::Value, DocumentError> {
    let stored = sluice_core::stored::StoredJob::decode(&view.spec).map_err(|source| {
        DocumentError::Stored {
            id: view.id.clone(),
            source,
        }
    })?;
    let mut doc: serde_json::Value =
        serde_saphyr::from_str(&stored.document).map_err(|e| DocumentError::Parse {
            id: view.id.clone(),
            message: e.to_string(),
        })?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(DocumentError::Parse {
            id: view.id.clone(),
            message: "not a mapping".into(),
        });
    };
    let mut status = serde_json::to_value(view).unwrap_or(serde_json::Value::Null);
    if let Some(s) = status.as_object_mut() {
        // The document itself is the rest of the output.
        s.remove("spec");
    }
    obj.remove(sluice_core::document::STATUS_KEY);
    obj.insert(sluice_core::document::STATUS_KEY.into(), status);
    Ok(doc)
}
