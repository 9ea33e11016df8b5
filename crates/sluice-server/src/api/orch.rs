//! HTTP handlers for schedules, the dead-letter queue (DLQ), requeue and purge; the logic is in
//! [`crate::orchestration`].

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sluice_core::job::JobRecord;
use sluice_core::schedule::ScheduleRecord;
use sluice_core::spec::parse_duration_secs;
use sluice_core::stored::decode_policy;
use sluice_store::{JobSet, OrchJob, RequeuePlace, SetFilter, StoreError};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{ApiError, ErrorBody, JobView, rfc3339, view};
use crate::orchestration::{self, OrchError};
use crate::state::{AppState, now_ms};

/// How many upcoming run times `GET /v1/schedules/{namespace}/{name}` shows.
pub const NEXT_RUNS: usize = 5;

impl From<OrchError> for ApiError {
    fn from(e: OrchError) -> Self {
        match e {
            OrchError::Spec(e) => ApiError::BadRequest(e.to_string()),
            OrchError::NoFilter(m) => ApiError::BadRequest(m),
            OrchError::NeverFits(m) => ApiError::Unprocessable(m),
            OrchError::Store(e) => store_error(e),
            OrchError::Backend(e) => ApiError::from(e),
            OrchError::Encode(e) => ApiError::Internal(format!("encoding: {e}")),
        }
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        e @ (StoreError::NoSchedule { .. } | StoreError::NotFound(_)) => {
            ApiError::NotFound(e.to_string())
        }
        e @ (StoreError::DuplicateSchedule { .. }
        | StoreError::NotDeadLettered(_)
        | StoreError::Stale(_)
        | StoreError::Conflict { .. }) => ApiError::Conflict(e.to_string()),
        e => ApiError::Internal(format!("store: {e}")),
    }
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
}

fn orch_view_of(rec: &JobRecord, o: &sluice_store::JobOrch) -> Result<OrchView, ApiError> {
    let policy = decode_policy(&rec.spec)
        .map_err(|e| store_error(StoreError::Corrupt(format!("job {}: {e}", rec.id))))?;
    let waiting = rec.state == sluice_core::job::JobState::Queued
        && o.retry_at_ms.is_some_and(|t| t > now_ms());
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
    })
}

/// The orchestration view of a job (for `GET /v1/jobs/{id}`).
pub async fn orch_view(st: &AppState, rec: &JobRecord) -> Result<Option<OrchView>, ApiError> {
    let o = st.store.job_orch(&rec.id).await.map_err(store_error)?;
    o.map(|o| orch_view_of(rec, &o)).transpose()
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ScheduleView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The expression (cron with 5 or 6 fields, @hourly, @every 10m, ...).
    pub schedule: String,
    /// IANA time zone the expression is read in.
    pub time_zone: String,
    /// Allow, Forbid or Replace.
    pub concurrency_policy: String,
    /// Skip or RunOnce.
    pub missed_run_policy: String,
    /// How old a missed run may be and still be caught up (RunOnce), in seconds.
    pub catch_up_window_seconds: u64,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Priority level of its runs.
    pub level: String,
    /// The next fire time (RFC 3339, UTC).
    pub next_run_at: Option<String>,
    /// The next fire times in the schedule's time zone (RFC 3339 with offset); on
    /// `GET /v1/schedules/{namespace}/{name}` the next five.
    pub next_runs: Vec<String>,
    /// When a run was last started (RFC 3339).
    pub last_run_at: Option<String>,
    /// The last run started.
    pub last_job_id: Option<String>,
    /// What the last check did.
    pub last_message: Option<String>,
    /// Runs still active (queued, admitted, submitted, running); on GET of one schedule.
    pub active_runs: Vec<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// The job every run is made from (its stored form).
    #[schema(value_type = Object)]
    pub template: serde_json::Value,
}

fn schedule_view(s: ScheduleRecord, next_runs: usize, active: Vec<String>) -> ScheduleView {
    let runs = match (s.next_fire_at_ms, s.cadence()) {
        (Some(next), Ok(c)) if next_runs > 0 => {
            let mut v = vec![next];
            v.extend(c.upcoming(next, next_runs - 1));
            v.into_iter().map(|t| c.format(t)).collect()
        }
        _ => Vec::new(),
    };
    ScheduleView {
        schedule: s.cron,
        time_zone: s.time_zone,
        concurrency_policy: s.concurrency.to_string(),
        missed_run_policy: s.missed_runs.to_string(),
        catch_up_window_seconds: s.catch_up_window_secs,
        suspended: s.suspended,
        level: s.level,
        next_run_at: s.next_fire_at_ms.map(rfc3339),
        next_runs: runs,
        last_run_at: s.last_fire_at_ms.map(rfc3339),
        last_job_id: s.last_job_id,
        last_message: s.last_message,
        active_runs: active,
        created_at: rfc3339(s.created_at_ms),
        template: s.template,
        namespace: s.namespace,
        name: s.name,
    }
}

/// Create a schedule from sluice's schedule document or a Spark Operator
/// `ScheduledSparkApplication` (YAML or JSON).
#[utoipa::path(post, path = "/v1/schedules",
    request_body(content = String, description = "sluice schedule or ScheduledSparkApplication, YAML or JSON", content_type = "application/yaml"),
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_schedule(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(st.config.api.max_body_bytes)
        } else {
            ApiError::BadRequest(format!("request body: {e}"))
        }
    })?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not UTF-8 text: {e}")))?;
    let rec = orchestration::create_schedule(&st, text, now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(schedule_view(rec, NEXT_RUNS, Vec::new())),
    ))
}

/// Query of `GET /v1/schedules`.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct ScheduleListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
}

/// List schedules, by namespace then name.
#[utoipa::path(get, path = "/v1/schedules", params(ScheduleListQuery),
    responses((status = 200, body = [ScheduleView])))]
pub async fn list_schedules(
    State(st): State<AppState>,
    Query(q): Query<ScheduleListQuery>,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let all = st
        .store
        .list_schedules(q.namespace.as_deref())
        .await
        .map_err(store_error)?;
    Ok(Json(
        all.into_iter()
            .map(|s| schedule_view(s, 1, Vec::new()))
            .collect(),
    ))
}

async fn load_schedule(st: &AppState, ns: &str, name: &str) -> Result<ScheduleRecord, ApiError> {
    st.store
        .get_schedule(ns, name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            store_error(StoreError::NoSchedule {
                namespace: ns.into(),
                name: name.into(),
            })
        })
}

async fn active_ids(st: &AppState, s: &ScheduleRecord) -> Result<Vec<String>, ApiError> {
    let mut f = SetFilter::all(JobSet::Queued);
    f.namespace = Some(s.namespace.clone());
    f.schedule = Some(s.name.clone());
    let mut ids: Vec<String> = st
        .store
        .select_jobs(&f, 1000)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|j| j.job.id)
        .collect();
    let active = st
        .store
        .jobs_in_states(&[
            sluice_core::job::JobState::Admitted,
            sluice_core::job::JobState::Submitted,
            sluice_core::job::JobState::Running,
        ])
        .await
        .map_err(store_error)?;
    for j in active {
        if j.namespace == s.namespace
            && j.labels
                .get(sluice_core::schedule::SCHEDULE_LABEL)
                .is_some_and(|n| *n == s.name)
        {
            ids.push(j.id);
        }
    }
    Ok(ids)
}

/// One schedule, with its next five run times and its active runs.
#[utoipa::path(get, path = "/v1/schedules/{namespace}/{name}",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn get_schedule(
    State(st): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    let s = load_schedule(&st, &ns, &name).await?;
    let active = active_ids(&st, &s).await?;
    Ok(Json(schedule_view(s, NEXT_RUNS, active)))
}

/// Delete a schedule (its runs are kept).
#[utoipa::path(delete, path = "/v1/schedules/{namespace}/{name}",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn delete_schedule(
    State(st): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    let s = load_schedule(&st, &ns, &name).await?;
    if !st
        .store
        .delete_schedule(&ns, &name)
        .await
        .map_err(store_error)?
    {
        return Err(store_error(StoreError::NoSchedule {
            namespace: ns,
            name,
        }));
    }
    Ok(Json(schedule_view(s, 0, Vec::new())))
}

/// Suspend a schedule: no run starts until it is resumed.
#[utoipa::path(post, path = "/v1/schedules/{namespace}/{name}/suspend",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn suspend(
    State(st): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    let s = orchestration::set_suspended(&st, &ns, &name, true, now_ms()).await?;
    Ok(Json(schedule_view(s, NEXT_RUNS, Vec::new())))
}

/// Resume a schedule: the next run is the next fire time from now (fire times passed while
/// suspended are not run).
#[utoipa::path(post, path = "/v1/schedules/{namespace}/{name}/resume",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(st): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    let s = orchestration::set_suspended(&st, &ns, &name, false, now_ms()).await?;
    Ok(Json(schedule_view(s, NEXT_RUNS, Vec::new())))
}

/// Run a schedule now (whatever its suspension, next fire time or concurrency policy).
#[utoipa::path(post, path = "/v1/schedules/{namespace}/{name}/trigger",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 201, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn trigger(
    State(st): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let rec = orchestration::trigger(&st, &ns, &name, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(view(rec, None, None))))
}

/// Which dead-lettered or queued jobs a DLQ or purge request selects. Without any filter,
/// requeue and purge refuse unless `all=true`.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct SelectQuery {
    /// Job ids, comma-separated.
    pub id: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only runs of this schedule.
    pub schedule: Option<String>,
    /// Only jobs with all these labels, comma-separated `key=value` pairs.
    pub label: Option<String>,
    /// Only this priority level.
    pub level: Option<String>,
    /// Only jobs that entered the DLQ (or their queue) longer ago than this, like `1h`, `30m`.
    pub older_than: Option<String>,
    /// Requeue or purge every job of the set (needed when no other filter is given).
    pub all: Option<bool>,
    /// Requeue to the front of its level instead of the tail.
    pub front: Option<bool>,
    /// Purge: only list what would be deleted.
    pub dry_run: Option<bool>,
    /// Most jobs listed, 1-10000 (default 1000).
    pub limit: Option<u32>,
}

impl SelectQuery {
    fn filter(&self, set: JobSet, now: i64) -> Result<SetFilter, ApiError> {
        let mut f = SetFilter::all(set);
        if let Some(ids) = &self.id {
            f.ids = ids
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        f.namespace = self.namespace.clone().filter(|s| !s.is_empty());
        f.schedule = self.schedule.clone().filter(|s| !s.is_empty());
        f.level = self.level.clone().filter(|s| !s.is_empty());
        if let Some(labels) = &self.label {
            for pair in labels.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "query parameter `label` = {pair:?} is not key=value"
                    ))
                })?;
                f.labels.push((k.to_string(), v.to_string()));
            }
        }
        if let Some(age) = &self.older_than {
            let secs = parse_duration_secs("older_than", age)
                .map_err(|e| ApiError::BadRequest(format!("query parameter {e}")))?;
            let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            f.before_ms = Some(now.saturating_sub(ms));
        }
        Ok(f)
    }

    fn limit(&self) -> Result<u32, ApiError> {
        let limit = self.limit.unwrap_or(1000);
        if !(1..=orchestration::BULK_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "query parameter `limit` = {limit} must be between 1 and {}",
                orchestration::BULK_LIMIT
            )));
        }
        Ok(limit)
    }
}

/// A dead-lettered job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DeadLetterView {
    /// The job (its message is the last error).
    pub job: JobView,
    /// When it entered the DLQ (RFC 3339).
    pub dead_lettered_at: String,
    /// Why: the attempt limit, a class that is not retried, or "expired in queue".
    pub reason: String,
    /// The failure class of the last attempt (or `expired`).
    pub failure_class: String,
    /// The schedule that started it, if any.
    pub schedule: Option<String>,
}

fn dead_letter_view(
    j: OrchJob,
    timeline: Option<Vec<sluice_core::job::JobEvent>>,
) -> Result<DeadLetterView, ApiError> {
    let orchestration = orch_view_of(&j.job, &j.orch)?;
    let mut job = view(j.job, None, timeline);
    job.orchestration = Some(orchestration);
    Ok(DeadLetterView {
        job,
        dead_lettered_at: j.orch.dlq_at_ms.map(rfc3339).unwrap_or_default(),
        reason: j.orch.dlq_reason.unwrap_or_default(),
        failure_class: j.orch.failure_class.unwrap_or_default(),
        schedule: j.orch.schedule,
    })
}

/// List dead-lettered jobs, newest first.
#[utoipa::path(get, path = "/v1/dlq", params(SelectQuery),
    responses((status = 200, body = [DeadLetterView]), (status = 400, body = ErrorBody)))]
pub async fn list_dlq(
    State(st): State<AppState>,
    Query(q): Query<SelectQuery>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let f = q.filter(JobSet::DeadLetters, now_ms())?;
    let jobs = st
        .store
        .select_jobs(&f, q.limit()?)
        .await
        .map_err(store_error)?;
    Ok(Json(
        jobs.into_iter()
            .map(|j| dead_letter_view(j, None))
            .collect::<Result<_, _>>()?,
    ))
}

/// One dead-lettered job with its whole history (every attempt).
#[utoipa::path(get, path = "/v1/dlq/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = DeadLetterView), (status = 404, body = ErrorBody)))]
pub async fn get_dlq(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    let mut f = SetFilter::all(JobSet::DeadLetters);
    f.ids = vec![id.clone()];
    let Some(j) = st
        .store
        .select_jobs(&f, 1)
        .await
        .map_err(store_error)?
        .pop()
    else {
        return Err(match st.store.get_job(&id).await.map_err(store_error)? {
            Some(_) => ApiError::NotFound(format!("job {id:?} is not in the dead-letter queue")),
            None => ApiError::NotFound(format!("no job with id {id:?}")),
        });
    };
    let events = st.store.events(&id).await.map_err(store_error)?;
    Ok(Json(dead_letter_view(j, Some(events))?))
}

/// What a requeue did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RequeueView {
    /// The jobs put back in their queues, in the order they were requeued.
    pub requeued: Vec<JobView>,
}

/// Requeue dead-lettered jobs (by id or filter) to the tail of their level, or the front with
/// `front=true`, keeping their history; each begins a new round of retries. Refuses without a
/// filter unless `all=true`.
#[utoipa::path(post, path = "/v1/dlq/requeue", params(SelectQuery),
    responses((status = 200, body = RequeueView), (status = 400, body = ErrorBody)))]
pub async fn requeue(
    State(st): State<AppState>,
    Query(q): Query<SelectQuery>,
) -> Result<Json<RequeueView>, ApiError> {
    let now = now_ms();
    let f = q.filter(JobSet::DeadLetters, now)?;
    let place = if q.front.unwrap_or(false) {
        RequeuePlace::Front
    } else {
        RequeuePlace::Tail
    };
    let done = orchestration::requeue(&st, &f, q.all.unwrap_or(false), place, now).await?;
    if done.is_empty() && !f.ids.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no dead-lettered job with id {}",
            f.ids.join(", ")
        )));
    }
    Ok(Json(RequeueView {
        requeued: done.into_iter().map(|r| view(r, None, None)).collect(),
    }))
}

/// What a purge removed, or would remove.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct PurgeView {
    /// True when nothing was deleted (a dry run).
    pub dry_run: bool,
    /// The jobs the filter selected.
    pub selected: Vec<JobView>,
    /// The ids deleted (empty on a dry run).
    pub purged: Vec<String>,
}

async fn purge_set(st: &AppState, q: &SelectQuery, set: JobSet) -> Result<PurgeView, ApiError> {
    let f = q.filter(set, now_ms())?;
    let dry_run = q.dry_run.unwrap_or(false);
    let p = orchestration::purge(st, &f, q.all.unwrap_or(false), dry_run).await?;
    Ok(PurgeView {
        dry_run,
        selected: p
            .jobs
            .into_iter()
            .map(|j| view(j.job, None, None))
            .collect(),
        purged: p.deleted.into_iter().collect(),
    })
}

/// Delete dead-lettered jobs (by id or filter) with their history; `dry_run=true` lists them.
/// Refuses without a filter unless `all=true`.
#[utoipa::path(post, path = "/v1/dlq/purge", params(SelectQuery),
    responses((status = 200, body = PurgeView), (status = 400, body = ErrorBody)))]
pub async fn purge_dlq(
    State(st): State<AppState>,
    Query(q): Query<SelectQuery>,
) -> Result<Json<PurgeView>, ApiError> {
    Ok(Json(purge_set(&st, &q, JobSet::DeadLetters).await?))
}

/// Delete queued jobs (by id or filter) with their history; `dry_run=true` lists them.
/// Refuses without a filter unless `all=true`.
#[utoipa::path(post, path = "/v1/queues/purge", params(SelectQuery),
    responses((status = 200, body = PurgeView), (status = 400, body = ErrorBody)))]
pub async fn purge_queued(
    State(st): State<AppState>,
    Query(q): Query<SelectQuery>,
) -> Result<Json<PurgeView>, ApiError> {
    let out = purge_set(&st, &q, JobSet::Queued).await?;
    st.wake.notify_one();
    Ok(Json(out))
}

/// The OpenAPI paths and schemas of this module (merged into [`super::ApiDoc`]'s document).
#[derive(OpenApi)]
#[openapi(
    paths(
        create_schedule,
        list_schedules,
        get_schedule,
        delete_schedule,
        suspend,
        resume,
        trigger,
        list_dlq,
        get_dlq,
        requeue,
        purge_dlq,
        purge_queued
    ),
    components(schemas(ScheduleView, OrchView, DeadLetterView, RequeueView, PurgeView))
)]
pub struct OrchApiDoc;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/schedules", post(create_schedule).get(list_schedules))
        .route(
            "/v1/schedules/{namespace}/{name}",
            get(get_schedule).delete(delete_schedule),
        )
        .route("/v1/schedules/{namespace}/{name}/suspend", post(suspend))
        .route("/v1/schedules/{namespace}/{name}/resume", post(resume))
        .route("/v1/schedules/{namespace}/{name}/trigger", post(trigger))
        .route("/v1/dlq", get(list_dlq))
        .route("/v1/dlq/requeue", post(requeue))
        .route("/v1/dlq/purge", post(purge_dlq))
        .route("/v1/dlq/{id}", get(get_dlq))
        .route("/v1/queues/purge", post(purge_queued))
}
