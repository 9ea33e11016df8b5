//! The HTTP API (axum). `app(state)` builds the router; the OpenAPI document is served at
//! `/openapi.json`.
//!
//! | method and path | what |
//! | --- | --- |
//! | `POST /v1/jobs?priority=LEVEL` | submit a job (body: sluice job YAML/JSON or a SparkApplication) |
//! | `GET /v1/jobs` | list jobs, newest first, with filters and a cursor |
//! | `GET /v1/jobs/{id}` | one job: state, demand, timeline, queue position and wait reason |
//! | `POST /v1/jobs/{id}/cancel` | cancel a job |
//! | `GET /v1/jobs/{id}/logs?offset=N&attempt=N` | a piece of the job's log (current or given attempt) |
//! | `GET /v1/queues` | per namespace and level: queued jobs and the oldest wait |
//! | `GET /v1/cluster` | capacity, allocation per namespace, reservations, backend availability |
//! | `POST /v1/schedules`, `GET /v1/schedules` | create (schedule YAML or a ScheduledSparkApplication), list schedules |
//! | `GET`/`DELETE /v1/schedules/{namespace}/{name}` | one schedule with its next 5 run times; delete it |
//! | `POST /v1/schedules/{namespace}/{name}/{suspend,resume,trigger}` | suspend, resume, run now |
//! | `GET /v1/dlq`, `GET /v1/dlq/{id}` | dead-lettered jobs (filters: id, namespace, schedule, label, level, older_than) |
//! | `POST /v1/dlq/requeue`, `POST /v1/dlq/purge` | requeue (tail or front) or delete dead letters by filter |
//! | `POST /v1/queues/purge` | delete queued jobs by filter (`dry_run=true` lists them) |
//! | `GET /v1/history?from=&to=&step=&namespace=&level=` | time series from the store (see [`crate::history`]) |
//! | `GET /`, `/ui/*` | the web UI (see [`crate::ui`]) |
//! | `GET /healthz` | liveness, backend availability |
//! | `GET /metrics` | Prometheus metrics (text format 0.0.4; see `docs/metrics.md`) |

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sluice_backend::{BackendError, RunRef};
use sluice_core::capacity::fits_empty;
use sluice_core::document::parse_job_with_policy;
use sluice_core::job::{JobEvent, JobRecord, JobState, NewJob};
use sluice_core::sizing::job_demand;
use sluice_core::spec::ParseOptions;
use sluice_store::{JobFilter, StoreError, Transition};
use utoipa::{OpenApi, ToSchema};

use crate::metrics::{ClusterView, NamespaceUsage};
use crate::state::{AppState, WaitInfo, now_ms};

/// Schedules, the dead-letter queue, requeue and purge.
pub mod orch;

/// An API error: a status and a message that names the field and value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a field is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The job can never run on this backend (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No such job (404).
    #[error("{0}")]
    NotFound(String),
    /// The job is in a state that does not allow this (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is over `api.max_body_bytes` (413).
    #[error("request body is larger than the limit api.max_body_bytes = {0} bytes")]
    TooLarge(usize),
    /// The store or backend failed (500 / 503).
    #[error("{0}")]
    Internal(String),
    /// The backend is not reachable (503).
    #[error("{0}")]
    Unavailable(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("no job with id {id:?}")),
            e => ApiError::Internal(format!("store: {e}")),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Unavailable(m) => {
                ApiError::Unavailable(format!("backend unavailable: {m}"))
            }
            e => ApiError::Internal(format!("backend: {e}")),
        }
    }
}

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
    /// The resolved job spec (a SparkApplication keeps every field under kind.application).
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// For a queued job: its position and why it waits (from the last scheduling cycle).
    pub wait: Option<WaitInfo>,
    /// Timeline, oldest first (only on GET /v1/jobs/{id}).
    pub timeline: Option<Vec<EventView>>,
    /// Schedule, retries and dead-letter state (only on GET /v1/jobs/{id}).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<orch::OrchView>,
}

/// Formats epoch milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

fn view(rec: JobRecord, wait: Option<WaitInfo>, timeline: Option<Vec<JobEvent>>) -> JobView {
    let total = rec.demand.total();
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
        spec: rec.spec,
    }
}

/// Query of `POST /v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SubmitQuery {
    /// Priority level; wins over the document's.
    pub priority: Option<String>,
}

/// Submit a job.
#[utoipa::path(post, path = "/v1/jobs", params(SubmitQuery),
    request_body(content = String, description = "sluice job spec or SparkApplication, YAML or JSON", content_type = "application/yaml"),
    responses((status = 201, body = JobView), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit(
    State(st): State<AppState>,
    Query(q): Query<SubmitQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(st.config.api.max_body_bytes)
        } else {
            ApiError::BadRequest(format!("request body: {e}"))
        }
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not UTF-8 text: {e}")))?;
    let (job, policy) = parse_job_with_policy(
        text,
        ParseOptions {
            priority: q.priority.as_deref(),
            levels: &st.levels,
        },
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // Spark's sizing rules validate the spec's quantities (400 on a bad one); the backend then
    // says what the job needs from it (its own placement rules), or why it can never run (422).
    job_demand(&job).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let demand = st.backend.demand(&job).map_err(|e| match e {
        BackendError::Rejected(m) => ApiError::Unprocessable(format!(
            "job {}/{} can never run on the {} backend: {m}",
            job.namespace,
            job.name,
            st.backend.kind()
        )),
        other => ApiError::from(other),
    })?;
    // A job that cannot fit even the empty cluster would wait forever: refuse it now.
    let report = st.backend.capacity().await?;
    if !report.snapshot.allocatable.is_empty()
        && let Err(nofit) = fits_empty(&demand, &report.snapshot.allocatable)
    {
        return Err(ApiError::Unprocessable(format!(
            "job {}/{} can never run on the {} backend: {nofit}",
            job.namespace,
            job.name,
            st.backend.kind()
        )));
    }
    // Nor one that no node or quota of the backend could ever take (selectors, taints, quota
    // hard limits); temporary conditions leave it waiting instead.
    if let Some(why) = st.backend.never_runs(&job, &demand) {
        return Err(ApiError::Unprocessable(format!(
            "job {}/{} can never run on the {} backend: {why}",
            job.namespace,
            job.name,
            st.backend.kind()
        )));
    }
    // The job and its retry policy / queue TTL (see sluice_core::retry::stored_spec).
    let spec = sluice_core::retry::stored_spec(&job, &policy)
        .map_err(|e| ApiError::Internal(format!("encoding the job: {e}")))?;
    let new = NewJob {
        id: st.new_id(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        level: job.level.clone(),
        labels: job.labels.clone(),
        spec,
        demand,
        created_at_ms: now_ms(),
    };
    let rec = st.store.insert_job(&new).await?;
    st.metrics.job_submitted(&rec.namespace, &rec.level);
    st.wake.notify_one();
    Ok((StatusCode::CREATED, Json(view(rec, None, None))))
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams, Default)]
pub struct ListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only these states, comma-separated (e.g. `queued,running`).
    pub state: Option<String>,
    /// Only jobs with all these labels, comma-separated `key=value` pairs.
    pub label: Option<String>,
    /// Only jobs with this name.
    pub name: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<String>,
    /// Created before (RFC 3339).
    pub until: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// Jobs, newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Parses an RFC 3339 query parameter into epoch milliseconds, naming it on error.
pub(crate) fn parse_time(field: &str, v: &str) -> Result<i64, ApiError> {
    let t = humantime::parse_rfc3339_weak(v).map_err(|e| {
        ApiError::BadRequest(format!(
            "query parameter `{field}` = {v:?} is not an RFC 3339 time like 2026-11-27T05:00:00Z: {e}"
        ))
    })?;
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// List jobs.
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let mut filter = JobFilter {
        namespace: q.namespace.clone(),
        name: q.name.clone(),
        ..Default::default()
    };
    if let Some(states) = &q.state {
        for s in states.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let st: JobState = s
                .parse()
                .map_err(|e| ApiError::BadRequest(format!("query parameter `state`: {e}")))?;
            filter.states.push(st);
        }
    }
    if let Some(labels) = &q.label {
        for pair in labels.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "query parameter `label` = {pair:?} is not key=value"
                ))
            })?;
            filter.labels.push((k.to_string(), v.to_string()));
        }
    }
    filter.created_from_ms = q
        .since
        .as_deref()
        .map(|v| parse_time("since", v))
        .transpose()?;
    filter.created_to_ms = q
        .until
        .as_deref()
        .map(|v| parse_time("until", v))
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `limit` = {limit} must be between 1 and 1000"
        )));
    }
    let page = st
        .store
        .list_jobs(&filter, limit, q.cursor.as_deref())
        .await
        .map_err(|e| match e {
            StoreError::BadCursor(_) => {
                ApiError::BadRequest(format!("query parameter `cursor`: {e}"))
            }
            other => ApiError::from(other),
        })?;
    let waits = st.view.read().await;
    let jobs = page
        .jobs
        .into_iter()
        .map(|r| {
            let w = waits.waiting.get(&r.id).cloned();
            view(r, w, None)
        })
        .collect();
    Ok(Json(JobList {
        jobs,
        next_cursor: page.next_cursor,
    }))
}

async fn load(st: &AppState, id: &str) -> Result<JobRecord, ApiError> {
    st.store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job with id {id:?}")))
}

/// One job with its timeline and, when queued, its position and wait reason.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let rec = load(&st, &id).await?;
    let events = st.store.events(&id).await?;
    let wait = st.view.read().await.waiting.get(&id).cloned();
    let orchestration = orch::orch_view(&st, &rec).await?;
    let mut v = view(rec, wait, Some(events));
    v.orchestration = orchestration;
    Ok(Json(v))
}

/// Cancel a job: a queued job leaves its queue; a running one is stopped.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    // Hold the cycle lock so that the reconciler does not record the killed run as failed
    // between our stopping it and our recording the cancel.
    let _cycle = st.cycle_lock.lock().await;
    for _ in 0..5 {
        let rec = load(&st, &id).await?;
        if rec.state.is_terminal() {
            return Err(ApiError::Conflict(format!(
                "job {id} has already ended ({})",
                rec.state
            )));
        }
        if matches!(rec.state, JobState::Submitted | JobState::Running) {
            st.backend
                .cancel(&RunRef {
                    job_id: rec.id.clone(),
                    attempt: rec.attempt,
                    backend_ref: rec.backend_ref.clone(),
                })
                .await?;
        } else if rec.state == JobState::Admitted {
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
        let t = Transition {
            id: id.clone(),
            from: rec.state,
            to: JobState::Cancelled,
            at_ms: now_ms(),
            message: format!("cancelled by a user while {}", rec.state),
            backend_ref: None,
            exit_code: None,
        };
        match st.store.transition(&t).await {
            Ok(rec) => {
                st.metrics.transitioned(t.from, &rec);
                st.wake.notify_one();
                let events = st.store.events(&id).await?;
                return Ok(Json(view(rec, None, Some(events))));
            }
            // The job moved meanwhile (admitted, started): look again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict(format!(
        "job {id} kept changing state; try again"
    )))
}

/// Query of the logs endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogsQuery {
    /// Byte offset to start from (default 0).
    pub offset: Option<u64>,
    /// Most bytes to return (default 65536, at most 1048576).
    pub max_bytes: Option<usize>,
    /// Which attempt's log (default: the current one); an earlier attempt of a retried or
    /// requeued job keeps its own log.
    pub attempt: Option<u32>,
}

/// A piece of a log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogsView {
    /// The text.
    pub data: String,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// True when the job has ended and the whole log was read.
    pub complete: bool,
    /// The job's state.
    pub state: String,
    /// The attempt whose log this is.
    #[serde(default)]
    pub attempt: u32,
}

/// Read a job's log (stdout and stderr of the run), of its current attempt or of an earlier one.
#[utoipa::path(get, path = "/v1/jobs/{id}/logs", params(("id" = String, Path, description = "job id"), LogsQuery),
    responses((status = 200, body = LogsView), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<LogsView>, ApiError> {
    let rec = load(&st, &id).await?;
    let offset = q.offset.unwrap_or(0);
    let max = q.max_bytes.unwrap_or(65536).clamp(1, 1 << 20);
    let attempt = q.attempt.unwrap_or(rec.attempt);
    if attempt == 0 || attempt > rec.attempt {
        return Err(ApiError::BadRequest(format!(
            "attempt = {attempt}: job {id} has had attempts 1 to {}",
            rec.attempt
        )));
    }
    // An earlier attempt has ended; its run is found by (job, attempt), not by the current
    // run's reference.
    let current = attempt == rec.attempt;
    let ended = !current || rec.state.is_terminal();
    let empty = || LogsView {
        data: String::new(),
        next_offset: offset,
        complete: ended,
        state: rec.state.to_string(),
        attempt,
    };
    let never_ran = current
        && (matches!(rec.state, JobState::Queued | JobState::Admitted)
            || (rec.state.is_terminal() && rec.backend_ref.is_none()));
    if never_ran {
        return Ok(Json(empty()));
    }
    let run = RunRef {
        job_id: rec.id.clone(),
        attempt,
        backend_ref: if current {
            rec.backend_ref.clone()
        } else {
            None
        },
    };
    match st.backend.logs(&run, offset, max).await {
        Ok(chunk) => Ok(Json(LogsView {
            data: chunk.data,
            next_offset: chunk.next_offset,
            // The store's state is the authority on whether the run has ended: a log the
            // backend has finished is not complete until the store has recorded the end, so
            // that a client following it (`sluice logs -f`) then sees the job's final state.
            complete: ended && (chunk.complete || chunk.next_offset == offset),
            state: rec.state.to_string(),
            attempt,
        })),
        Err(BackendError::NotFound { .. }) => Ok(Json(empty())),
        Err(e) => Err(e.into()),
    }
}

/// One queue: a namespace and a level.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct QueueView {
    /// Namespace.
    pub namespace: String,
    /// Priority level.
    pub level: String,
    /// Jobs waiting.
    pub queued: u64,
    /// When the oldest waiting job entered the queue (RFC 3339).
    pub oldest_enqueued_at: String,
    /// How long the oldest has waited, in seconds.
    pub oldest_wait_seconds: f64,
}

/// Queues by namespace and level.
#[utoipa::path(get, path = "/v1/queues", responses((status = 200, body = [QueueView])))]
pub async fn queues(State(st): State<AppState>) -> Result<Json<Vec<QueueView>>, ApiError> {
    let now = now_ms();
    let mut stats = st.store.queue_stats().await?;
    let rank = |l: &str| st.levels.rank(l).unwrap_or(usize::MAX);
    stats.sort_by(|a, b| {
        (a.namespace.as_str(), rank(&a.level)).cmp(&(b.namespace.as_str(), rank(&b.level)))
    });
    Ok(Json(
        stats
            .into_iter()
            .map(|s| QueueView {
                oldest_enqueued_at: rfc3339(s.oldest_enqueued_at_ms),
                oldest_wait_seconds: (now - s.oldest_enqueued_at_ms).max(0) as f64 / 1000.0,
                namespace: s.namespace,
                level: s.level,
                queued: s.queued,
            })
            .collect(),
    ))
}

/// Health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// "ok".
    pub status: String,
    /// Backend kind.
    pub backend: String,
    /// Whether the backend answered its last capacity check.
    pub backend_available: bool,
}

/// Liveness and backend availability.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn health(State(st): State<AppState>) -> Json<Health> {
    let available = match st.backend.capacity().await {
        Ok(r) => r.snapshot.available,
        Err(_) => false,
    };
    Json(Health {
        status: "ok".into(),
        backend: st.backend.kind().into(),
        backend_available: available,
    })
}

/// The cluster now: capacity, what is allocated (overall and per namespace), reservations.
#[utoipa::path(get, path = "/v1/cluster", responses((status = 200, body = ClusterView), (status = 500, body = ErrorBody)))]
pub async fn cluster(State(st): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(crate::metrics::cluster_view(&st).await?))
}

/// Prometheus metrics in the text format (version 0.0.4).
pub async fn metrics(State(st): State<AppState>) -> Response {
    match crate::metrics::render(&st).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::Internal(format!("encoding metrics: {e}")).into_response(),
    }
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sluice",
        description = "Capacity-aware job orchestrator for Apache Spark"
    ),
    paths(submit, list, get_job, cancel, logs, queues, cluster, health),
    components(schemas(
        JobView,
        JobList,
        DemandView,
        PodDemandView,
        EventView,
        WaitInfo,
        LogsView,
        QueueView,
        ClusterView,
        NamespaceUsage,
        Health,
        ErrorBody
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(
        ApiDoc::openapi()
            .merge_from(orch::OrchApiDoc::openapi())
            .merge_from(crate::history::HistoryApiDoc::openapi()),
    )
}

/// Builds the router.
pub fn app(state: AppState) -> Router {
    let limit = state.config.api.max_body_bytes;
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/jobs/{id}/logs", get(logs))
        .route("/v1/queues", get(queues))
        .route("/v1/cluster", get(cluster))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(orch::routes())
        .merge(crate::history::routes())
        .merge(crate::ui::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
