//! The schedule endpoints: create, list, get, delete, suspend, resume and trigger; the logic
//! is in [`crate::orchestration`].

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sluice_core::schedule::ScheduleRecord;
use sluice_store::{JobSet, SetFilter, StoreError};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody, body_text};
use super::views::{JobView, view};
use crate::auth::{Caller, audit};
use crate::orchestration;
use crate::state::AppState;
use crate::time::rfc3339;
pub use sluice_api::ScheduleView;
use sluice_core::access::AccessRole;

/// How many upcoming run times `GET /v1/schedules/{namespace}/{name}` shows.
pub const NEXT_RUNS: usize = 5;

fn schedule_view(s: ScheduleRecord, next_runs: usize, active: Vec<String>) -> ScheduleView {
    let runs = match (s.next_fire_at_ms, s.cadence()) {
        (Some(next), Ok(c)) if next_runs > 0 => {
            let mut v = vec![next];
            v.extend(c.upcoming(next, next_runs - 1));
            v.into_iter().map(|t| c.format(t)).collect()
        }
        _ => Vec::new(),
    };
    // Secret values of the template are never shown; the stored schedule keeps them.
    let mut template = s.template;
    crate::redact::redact_spec(&mut template);
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
        template,
        namespace: s.namespace,
        name: s.name,
    }
}

/// The caller must be a submitter in the namespace the schedule document names. The namespace
/// is in the document, so it is read first; a document that does not parse is refused by the
/// create or apply that follows, with nothing stored.
fn require_submitter_on(st: &AppState, caller: &Caller, text: &str) -> Result<(), ApiError> {
    let opts = sluice_core::spec::ParseOptions {
        priority: None,
        levels: &st.levels,
    };
    if let Ok(s) = sluice_core::schedule::parse_schedule(text, opts, st.now_ms()) {
        caller.require(&s.namespace, AccessRole::Submitter)?;
    }
    Ok(())
}

/// Create a schedule from sluice's schedule document or a Spark Operator
/// `ScheduledSparkApplication` (YAML or JSON).
#[utoipa::path(post, path = "/v1/schedules",
    request_body(content = String, description = "sluice schedule or ScheduledSparkApplication, YAML or JSON", content_type = "application/yaml"),
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_schedule(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let text = body_text(&body, st.config.api.max_body_bytes)?;
    require_submitter_on(&st, &caller, text)?;
    let rec = orchestration::create_schedule(&st, text, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "schedule.create",
        Some(&rec.namespace),
        Some(&rec.name),
        Some(format!("schedule {:?}", rec.cron)),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(schedule_view(rec, NEXT_RUNS, Vec::new())),
    ))
}

/// The answer of `PUT /v1/schedules` (apply).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ApplyView {
    /// What was done: `created`, `configured` or `unchanged`.
    pub result: String,
    /// The schedule as it is now.
    pub schedule: ScheduleView,
}

/// Apply a schedule document (as `kubectl apply`): create the schedule it names, or replace
/// the definition of the one that exists (its runs, last run and creation time stay), or
/// nothing when it already is so. Idempotent by namespace and name.
#[utoipa::path(put, path = "/v1/schedules",
    request_body(content = String, description = "sluice schedule or ScheduledSparkApplication, YAML or JSON", content_type = "application/yaml"),
    responses((status = 201, body = ApplyView), (status = 200, body = ApplyView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply_schedule(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ApplyView>), ApiError> {
    let text = body_text(&body, st.config.api.max_body_bytes)?;
    require_submitter_on(&st, &caller, text)?;
    let (applied, rec) = orchestration::apply_schedule(&st, text, st.now_ms()).await?;
    if applied != orchestration::Applied::Unchanged {
        audit(
            &st,
            &caller,
            "schedule.apply",
            Some(&rec.namespace),
            Some(&rec.name),
            Some(format!("{}; schedule {:?}", applied.as_str(), rec.cron)),
        )
        .await;
    }
    let status = if applied == orchestration::Applied::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ApplyView {
            result: applied.as_str().to_string(),
            schedule: schedule_view(rec, NEXT_RUNS, Vec::new()),
        }),
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
    caller: Caller,
    Query(q): Query<ScheduleListQuery>,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let all = st.store.list_schedules(q.namespace.as_deref()).await?;
    Ok(Json(
        all.into_iter()
            .filter(|s| caller.sees(&s.namespace))
            .map(|s| schedule_view(s, 1, Vec::new()))
            .collect(),
    ))
}

/// Refuses a schedule of a namespace the caller cannot see as missing (404), and one it may
/// see but not change (403) when `role` is above viewer.
fn check_schedule(caller: &Caller, ns: &str, name: &str, role: AccessRole) -> Result<(), ApiError> {
    caller.visible(ns, || {
        ApiError::from(StoreError::NoSchedule {
            namespace: ns.into(),
            name: name.into(),
        })
    })?;
    caller.require(ns, role)
}

async fn load_schedule(st: &AppState, ns: &str, name: &str) -> Result<ScheduleRecord, ApiError> {
    st.store.get_schedule(ns, name).await?.ok_or_else(|| {
        ApiError::from(StoreError::NoSchedule {
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
        .await?
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
        .await?;
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
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&caller, &ns, &name, AccessRole::Viewer)?;
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
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&caller, &ns, &name, AccessRole::Submitter)?;
    let s = load_schedule(&st, &ns, &name).await?;
    if !st.store.delete_schedule(&ns, &name).await? {
        return Err(StoreError::NoSchedule {
            namespace: ns,
            name,
        }
        .into());
    }
    audit(
        &st,
        &caller,
        "schedule.delete",
        Some(&ns),
        Some(&name),
        None,
    )
    .await;
    Ok(Json(schedule_view(s, 0, Vec::new())))
}

/// Suspend a schedule: no run starts until it is resumed.
#[utoipa::path(post, path = "/v1/schedules/{namespace}/{name}/suspend",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn suspend(
    State(st): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&caller, &ns, &name, AccessRole::Submitter)?;
    let s = orchestration::set_suspended(&st, &ns, &name, true, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "schedule.suspend",
        Some(&ns),
        Some(&name),
        None,
    )
    .await;
    Ok(Json(schedule_view(s, NEXT_RUNS, Vec::new())))
}

/// Resume a schedule: the next run is the next fire time from now (fire times passed while
/// suspended are not run).
#[utoipa::path(post, path = "/v1/schedules/{namespace}/{name}/resume",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(st): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&caller, &ns, &name, AccessRole::Submitter)?;
    let s = orchestration::set_suspended(&st, &ns, &name, false, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "schedule.resume",
        Some(&ns),
        Some(&name),
        None,
    )
    .await;
    Ok(Json(schedule_view(s, NEXT_RUNS, Vec::new())))
}

/// Run a schedule now (whatever its suspension, next fire time or concurrency policy).
#[utoipa::path(post, path = "/v1/schedules/{namespace}/{name}/trigger",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "schedule name")),
    responses((status = 201, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn trigger(
    State(st): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    check_schedule(&caller, &ns, &name, AccessRole::Submitter)?;
    let rec = orchestration::trigger(&st, &ns, &name, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "schedule.trigger",
        Some(&ns),
        Some(&name),
        Some(format!("run {}", rec.id)),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(rec, None, None))))
}

/// The OpenAPI paths and schemas of the schedule endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(
        create_schedule,
        apply_schedule,
        list_schedules,
        get_schedule,
        delete_schedule,
        suspend,
        resume,
        trigger
    ),
    components(schemas(ScheduleView, ApplyView))
)]
pub struct SchedulesApiDoc;

/// The routes of the schedule endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/schedules",
            post(create_schedule)
                .put(apply_schedule)
                .get(list_schedules),
        )
        .route(
            "/v1/schedules/{namespace}/{name}",
            get(get_schedule).delete(delete_schedule),
        )
        .route("/v1/schedules/{namespace}/{name}/suspend", post(suspend))
        .route("/v1/schedules/{namespace}/{name}/resume", post(resume))
        .route("/v1/schedules/{namespace}/{name}/trigger", post(trigger))
}
