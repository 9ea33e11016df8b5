//! The job endpoints: submit, list, get (describe), cancel and logs.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use sluice_backend::{BackendError, RunRef};
use sluice_core::document::parse_stored;
use sluice_core::job::JobState;
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::spec::ParseOptions;
use sluice_store::JobFilter;
use utoipa::OpenApi;

use super::error::{ApiError, ErrorBody, body_text, refused};
use super::forward::leader_wait;
use super::views::{JobView, RunResultView, orch_view, view};
use super::waits::waits;
use crate::admission;
use crate::auth::{Caller, audit, audit_entry};
use crate::cancel::{CancelError, cancel_job};
use crate::guard::command::check_job;
use crate::state::{AppState, WaitInfo};
use crate::submitq::SubmitError;
use crate::time::{parse_time, rfc3339};
pub use sluice_api::jobs::{JobList, LogsView};
use sluice_core::access::AccessRole;

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
    caller: Caller,
    Query(q): Query<SubmitQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let text = body_text(&body, st.config.api.max_body_bytes)?;
    let stored = parse_stored(
        text,
        ParseOptions {
            priority: q.priority.as_deref(),
            levels: &st.levels,
        },
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let job = stored.job.clone();
    let job = &job;
    caller.require(&job.namespace, AccessRole::Submitter)?;
    let what = format!("job {}/{}", job.namespace, job.name);
    check_job(&st.config.security, job, &caller, &what)?;
    // The one admission gate: a bad quantity is a 400; a job that could never run here (the
    // backend refuses it, it could not fit even the empty cluster, no node or quota could ever
    // take it) is a 422 instead of waiting forever.
    let demand = admission::check(&st, job)
        .await
        .map_err(|r| refused(r, &what))?;
    // The job, its retry policy / queue TTL and the document as submitted (sluice_core::stored).
    let new = NewJob {
        id: st.new_id(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        level: job.level.clone(),
        labels: job.labels.clone(),
        stored,
        demand,
        created_at_ms: st.now_ms(),
    };
    let entry = audit_entry(
        &st,
        &caller,
        "job.submit",
        Some(&new.namespace),
        Some(&new.id),
        Some(format!("name {:?}, level {}", new.name, new.level)),
    );
    // Group commit: inserted with its audit entry in one transaction with the other submits
    // waiting now; answered after that commit.
    let rec = st
        .submits
        .insert(new, Some(entry))
        .await
        .map_err(|e| match e {
            SubmitError::Store(e) => ApiError::from(e),
            SubmitError::Stopped => ApiError::Unavailable(SubmitError::Stopped.to_string()),
        })?;
    st.metrics.job_submitted(&rec.namespace, &rec.level);
    st.wake_admit.notify_one();
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

/// List jobs.
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let mut filter = JobFilter {
        namespace: q.namespace.clone(),
        // Only the caller's namespaces: a list is narrowed, never refused.
        namespace_in: caller.namespace_in(AccessRole::Viewer),
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
        .await?;
    let mut waits = {
        let recs: Vec<&JobRecord> = page.jobs.iter().collect();
        waits(&st, &recs).await
    };
    if waits.iter().any(Option::is_some) {
        let starts = st.eta.estimates(st.now_ms()).await;
        for (r, w) in page.jobs.iter().zip(&mut waits) {
            if let Some(w) = w {
                estimate_into(starts.as_deref(), &r.id, w);
            }
        }
    }
    let jobs = page
        .jobs
        .into_iter()
        .zip(waits)
        .map(|(r, w)| view(r, w, None))
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

/// The job, if the caller may see its namespace: else 404, as for a job that does not exist.
async fn load_for(st: &AppState, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    let rec = load(st, id).await?;
    caller.visible(&rec.namespace, || {
        ApiError::NotFound(format!("no job with id {id:?}"))
    })?;
    Ok(rec)
}

/// One job with its timeline and, when queued, its position and wait reason.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(st): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let rec = load_for(&st, &caller, &id).await?;
    let events = st.store.events(&id).await?;
    let mut wait = waits(&st, &[&rec]).await.pop().flatten();
    if let Some(w) = &mut wait {
        let starts = st.eta.estimates(st.now_ms()).await;
        estimate_into(starts.as_deref(), &id, w);
    }
    if wait.is_none() && rec.state == JobState::Queued {
        // On a follower: the leader's cycle knows why.
        let auth = headers.get(axum::http::header::AUTHORIZATION);
        wait = leader_wait(&st, auth, &id).await;
    }
    let orchestration = orch_view(&st, &rec).await?;
    let results = st.store.run_results(&id).await?;
    let mut v = view(rec, wait, Some(events));
    v.orchestration = orchestration;
    v.set_aside = st.aside.get(&id);
    if !results.is_empty() {
        v.results = Some(
            results
                .into_iter()
                .map(|(attempt, result)| RunResultView { attempt, result })
                .collect(),
        );
    }
    Ok(Json(v))
}

/// Sets a waiting job's estimated start from the estimates, if it has one.
fn estimate_into(starts: Option<&HashMap<String, i64>>, id: &str, wait: &mut WaitInfo) {
    wait.estimated_start = starts.and_then(|s| s.get(id)).copied().map(rfc3339);
}

/// Cancel a job: a queued job leaves its queue; a running one is stopped.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let first = load_for(&st, &caller, &id).await?;
    caller.require(&first.namespace, AccessRole::Submitter)?;
    let (from, rec) = cancel_job(&st, &id, "a user").await.map_err(|e| match e {
        CancelError::NotFound(_) => ApiError::NotFound(e.to_string()),
        CancelError::Ended { .. } | CancelError::Stopping(_) | CancelError::KeptChanging(_) => {
            ApiError::Conflict(e.to_string())
        }
        CancelError::NoLeader(_) => ApiError::Unavailable(e.to_string()),
        CancelError::Store(e) => e.into(),
        CancelError::Backend(e) => e.into(),
    })?;
    audit(
        &st,
        &caller,
        "job.cancel",
        Some(&rec.namespace),
        Some(&rec.id),
        Some(format!("was {from}")),
    )
    .await;
    let events = st.store.events(&id).await?;
    Ok(Json(view(rec, None, Some(events))))
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
    /// Only the last N lines of the log (read from its end; `offset` is then ignored and
    /// `next_offset` is the end, to follow from).
    pub tail: Option<u32>,
    /// Only lines newer than this duration (`30s`, `5m`, `1h`), by the time each line begins
    /// with; with `tail`, the last N of those. At most 1 MiB is returned, the newest.
    pub since: Option<String>,
}

/// The largest window of a log's end `tail`/`since` read (the newest part wins).
const TAIL_WINDOW_MAX: usize = 16 << 20;
/// The most `tail`/`since` return.
const TAIL_ANSWER_MAX: usize = 1 << 20;

/// Read a job's log (stdout and stderr of the run), of its current attempt or of an earlier one.
#[utoipa::path(get, path = "/v1/jobs/{id}/logs", params(("id" = String, Path, description = "job id"), LogsQuery),
    responses((status = 200, body = LogsView), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<LogsView>, ApiError> {
    let rec = load_for(&st, &caller, &id).await?;
    let since_ms = match q.since.as_deref() {
        Some(text) => {
            let d = sluice_core::duration::parse("since", text)
                .map_err(|e| ApiError::BadRequest(format!("query parameter {e}")))?;
            Some(st.now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
        }
        None => None,
    };
    let cut = super::logtail::Cut {
        tail: q.tail,
        since_ms,
    };
    let tailing = cut.tail.is_some() || cut.since_ms.is_some();
    let offset = if tailing { 0 } else { q.offset.unwrap_or(0) };
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
        since_applied: None,
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
    if tailing {
        return log_end(&st, &run, &cut, ended, &rec.state.to_string(), attempt)
            .await
            .map(Json);
    }
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
            since_applied: None,
        })),
        Err(BackendError::NotFound { .. }) => Ok(Json(empty())),
        Err(e) => Err(e.into()),
    }
}

/// The end of a run's log cut to `cut`: windows of its end, each four times the last, until
/// one holds what was asked for (or [`TAIL_WINDOW_MAX`]).
async fn log_end(
    st: &AppState,
    run: &RunRef,
    cut: &super::logtail::Cut,
    ended: bool,
    state: &str,
    attempt: u32,
) -> Result<LogsView, ApiError> {
    let mut window = 256 << 10;
    loop {
        let end = match st.backend.log_end(run, window).await {
            Ok(end) => end,
            Err(BackendError::NotFound { .. }) => sluice_backend::LogEnd {
                data: String::new(),
                cut: false,
                next_offset: 0,
                complete: true,
            },
            Err(e) => return Err(e.into()),
        };
        let sel = super::logtail::select(&end.data, end.cut, cut);
        if sel.enough || !end.cut || window >= TAIL_WINDOW_MAX {
            let mut text = sel.text;
            if text.len() > TAIL_ANSWER_MAX {
                // The newest part, from a line's start.
                let from = text.len() - TAIL_ANSWER_MAX;
                let start = text[from..]
                    .find('\n')
                    .map(|i| from + i + 1)
                    .unwrap_or(text.len());
                text.drain(..start);
            }
            return Ok(LogsView {
                data: text,
                next_offset: end.next_offset,
                complete: ended && end.complete,
                state: state.to_string(),
                attempt,
                since_applied: sel.since_applied,
            });
        }
        window *= 4;
    }
}

/// The OpenAPI paths and schemas of the job endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(submit, list, get_job, cancel, logs),
    components(schemas(JobList, LogsView))
)]
pub struct JobsApiDoc;

/// The routes of the job endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/jobs/{id}/logs", get(logs))
}
