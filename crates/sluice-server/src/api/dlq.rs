//! The dead-letter queue (DLQ) endpoints, requeue and purge; the logic is in
//! [`crate::orchestration`].

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;
use sluice_store::{JobSet, OrchJob, RequeuePlace, SetFilter};
use utoipa::{IntoParams, OpenApi};

use super::error::{ApiError, ErrorBody};
use super::views::{orch_view_of, view};
use crate::auth::{Caller, audit};
use crate::orchestration;
use crate::state::AppState;
use crate::time::{parse_duration, rfc3339};
pub use sluice_api::orch::{DeadLetterView, PurgeView, RequeueView};
use sluice_core::access::AccessRole;

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
            let age = parse_duration("older_than", age)?;
            let ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            f.before_ms = Some(now.saturating_sub(ms));
        }
        Ok(f)
    }

    /// The filter of `set`, narrowed to the namespaces where `caller` has `role`; a namespace
    /// named in the query where it has not is refused (403).
    fn scoped(
        &self,
        caller: &Caller,
        role: AccessRole,
        set: JobSet,
        now: i64,
    ) -> Result<SetFilter, ApiError> {
        let mut f = self.filter(set, now)?;
        if let Some(ns) = &f.namespace {
            caller.require(ns, role)?;
        }
        f.namespace_in = caller.namespace_in(role);
        Ok(f)
    }

    /// The filter in words, for the audit log.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("id", &self.id),
            ("namespace", &self.namespace),
            ("schedule", &self.schedule),
            ("label", &self.label),
            ("level", &self.level),
            ("older_than", &self.older_than),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        if self.all == Some(true) {
            parts.push("all".into());
        }
        parts.join(" ")
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

fn dead_letter_view(
    j: OrchJob,
    timeline: Option<Vec<sluice_core::job::JobEvent>>,
    now: i64,
) -> Result<DeadLetterView, ApiError> {
    let orchestration = orch_view_of(&j.job, &j.orch, now)?;
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
    caller: Caller,
    Query(q): Query<SelectQuery>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let mut f = q.filter(JobSet::DeadLetters, st.now_ms())?;
    f.namespace_in = caller.namespace_in(AccessRole::Viewer);
    let jobs = st.store.select_jobs(&f, q.limit()?).await?;
    Ok(Json(
        jobs.into_iter()
            .map(|j| dead_letter_view(j, None, st.now_ms()))
            .collect::<Result<_, _>>()?,
    ))
}

/// One dead-lettered job with its whole history (every attempt).
#[utoipa::path(get, path = "/v1/dlq/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = DeadLetterView), (status = 404, body = ErrorBody)))]
pub async fn get_dlq(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    let mut f = SetFilter::all(JobSet::DeadLetters);
    f.ids = vec![id.clone()];
    f.namespace_in = caller.namespace_in(AccessRole::Viewer);
    let Some(j) = st.store.select_jobs(&f, 1).await?.pop() else {
        return Err(match st.store.get_job(&id).await? {
            Some(j) if caller.sees(&j.namespace) => {
                ApiError::NotFound(format!("job {id:?} is not in the dead-letter queue"))
            }
            _ => ApiError::NotFound(format!("no job with id {id:?}")),
        });
    };
    let events = st.store.events(&id).await?;
    Ok(Json(dead_letter_view(j, Some(events), st.now_ms())?))
}

/// Requeue dead-lettered jobs (by id or filter) to the tail of their level, or the front with
/// `front=true`, keeping their history; each begins a new round of retries. Refuses without a
/// filter unless `all=true`.
#[utoipa::path(post, path = "/v1/dlq/requeue", params(SelectQuery),
    responses((status = 200, body = RequeueView), (status = 400, body = ErrorBody)))]
pub async fn requeue(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<SelectQuery>,
) -> Result<Json<RequeueView>, ApiError> {
    let now = st.now_ms();
    let f = q.scoped(&caller, AccessRole::Operator, JobSet::DeadLetters, now)?;
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
    for r in &done {
        audit(
            &st,
            &caller,
            "dlq.requeue",
            Some(&r.namespace),
            Some(&r.id),
            Some(q.describe()),
        )
        .await;
    }
    Ok(Json(RequeueView {
        requeued: done.into_iter().map(|r| view(r, None, None)).collect(),
    }))
}

async fn purge_set(
    st: &AppState,
    caller: &Caller,
    q: &SelectQuery,
    set: JobSet,
) -> Result<PurgeView, ApiError> {
    let f = q.scoped(caller, AccessRole::Operator, set, st.now_ms())?;
    let dry_run = q.dry_run.unwrap_or(false);
    let p = orchestration::purge(st, &f, q.all.unwrap_or(false), dry_run).await?;
    if !dry_run {
        let action = match set {
            JobSet::DeadLetters => "dlq.purge",
            JobSet::Queued => "queue.purge",
        };
        for j in p.jobs.iter().filter(|j| p.deleted.contains(&j.job.id)) {
            audit(
                st,
                caller,
                action,
                Some(&j.job.namespace),
                Some(&j.job.id),
                Some(q.describe()),
            )
            .await;
        }
    }
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
    caller: Caller,
    Query(q): Query<SelectQuery>,
) -> Result<Json<PurgeView>, ApiError> {
    Ok(Json(
        purge_set(&st, &caller, &q, JobSet::DeadLetters).await?,
    ))
}

/// Delete queued jobs (by id or filter) with their history; `dry_run=true` lists them.
/// Refuses without a filter unless `all=true`.
#[utoipa::path(post, path = "/v1/queues/purge", params(SelectQuery),
    responses((status = 200, body = PurgeView), (status = 400, body = ErrorBody)))]
pub async fn purge_queued(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<SelectQuery>,
) -> Result<Json<PurgeView>, ApiError> {
    let out = purge_set(&st, &caller, &q, JobSet::Queued).await?;
    st.wake.notify_one();
    Ok(Json(out))
}

/// The OpenAPI paths and schemas of the DLQ and purge endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(list_dlq, get_dlq, requeue, purge_dlq, purge_queued),
    components(schemas(DeadLetterView, RequeueView, PurgeView))
)]
pub struct DlqApiDoc;

/// The routes of the DLQ and purge endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/dlq", get(list_dlq))
        .route("/v1/dlq/requeue", post(requeue))
        .route("/v1/dlq/purge", post(purge_dlq))
        .route("/v1/dlq/{id}", get(get_dlq))
        .route("/v1/queues/purge", post(purge_queued))
}
