//! The cost API: what runs held and used, their cost, and right-sizing advice (see
//! `docs/cost.md`).
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /v1/cost?by=job\|schedule\|namespace\|day&namespace=&name=&schedule=&from=&to=` | sums per group: held and used core- and GiB-hours, utilisation, cost, waste |
//! | `GET /v1/cost/runs?namespace=&name=&schedule=&from=&to=&limit=` | each run: what it held and used, its efficiency and cost |
//! | `GET /v1/advice?by=job\|schedule&namespace=&name=&schedule=&from=&to=` | right-sizing advice per job or schedule |
//! | `POST /v1/advice/{namespace}/{schedule}/apply?from=&to=` | the schedule's advice applied to its template (`advice.rs`) |
//!
//! Only the caller's namespaces (any role) are read. The window defaults to the last
//! `cost.window_days` days.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sluice_core::access::AccessRole;
use sluice_core::cost::advice::advise;
use sluice_core::cost::{GroupBy, UsageRecord, aggregate, efficiency};
use sluice_store::UsageFilter;
use utoipa::{IntoParams, OpenApi};

use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::state::AppState;
use crate::time::{parse_time, rfc3339};
pub use sluice_api::cost::{AdviceView, CostView, RunCostView};

/// The most runs one answer reads.
pub const MAX_RUNS: u32 = 100_000;

/// Query of the cost API.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct CostParams {
    /// `job` (default), `schedule`, `namespace` or `day` (`/v1/advice`: `job` or `schedule`).
    pub by: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only jobs of this name.
    pub name: Option<String>,
    /// Only runs of this schedule.
    pub schedule: Option<String>,
    /// Runs that ended at or after this time (RFC 3339); default `cost.window_days` before `to`.
    pub from: Option<String>,
    /// Runs that ended before this time (RFC 3339); default now.
    pub to: Option<String>,
    /// `/v1/cost/runs`: at most this many runs (default 1000), the newest.
    pub limit: Option<u32>,
}

fn group_by(v: Option<&str>, allowed: &[GroupBy]) -> Result<GroupBy, ApiError> {
    let by = match v.unwrap_or("job") {
        "job" => GroupBy::Job,
        "schedule" => GroupBy::Schedule,
        "namespace" => GroupBy::Namespace,
        "day" => GroupBy::Day,
        other => {
            return Err(ApiError::BadRequest(format!(
                "query parameter `by` = {other:?}: expected job, schedule, namespace or day"
            )));
        }
    };
    if !allowed.contains(&by) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `by` = {:?} is not allowed here",
            v.unwrap_or_default()
        )));
    }
    Ok(by)
}

/// The store filter of the query for `caller`: its window, or a 400 naming the parameter.
pub(crate) fn filter(
    st: &AppState,
    caller: &Caller,
    p: &CostParams,
) -> Result<UsageFilter, ApiError> {
    let now = st.now_ms();
    let to = p.to.as_deref().map(|v| parse_time("to", v)).transpose()?;
    let to = to.unwrap_or(now.saturating_add(1));
    let from = p
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?;
    let from = from.unwrap_or(to.saturating_sub(st.config.cost.window_ms()));
    if to <= from {
        return Err(ApiError::BadRequest(format!(
            "query parameters `from` = {} and `to` = {}: the range must end after it starts",
            rfc3339(from),
            rfc3339(to)
        )));
    }
    let some = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    Ok(UsageFilter {
        from_ms: from,
        to_ms: to,
        namespace: some(&p.namespace),
        namespace_in: caller.namespace_in(AccessRole::Viewer),
        name: some(&p.name),
        schedule: some(&p.schedule),
    })
}

/// Cost and efficiency summed per job, schedule, namespace or day.
#[utoipa::path(get, path = "/v1/cost", params(CostParams),
    responses((status = 200, body = CostView), (status = 400, body = ErrorBody)))]
pub async fn cost(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<CostParams>,
) -> Result<Json<CostView>, ApiError> {
    let by = group_by(
        p.by.as_deref(),
        &[
            GroupBy::Job,
            GroupBy::Schedule,
            GroupBy::Namespace,
            GroupBy::Day,
        ],
    )?;
    let f = filter(&st, &caller, &p)?;
    let runs = st.store.usage(&f, MAX_RUNS).await?;
    let cfg = &st.config.cost;
    let groups = aggregate(&runs, by, &|ns| cfg.prices(ns));
    Ok(Json(CostView {
        currency: cfg.currency.clone(),
        from: rfc3339(f.from_ms),
        to: rfc3339(f.to_ms),
        by: p.by.unwrap_or_else(|| "job".into()),
        groups,
    }))
}

/// Each run: what it held and used, its efficiency and cost, newest last.
#[utoipa::path(get, path = "/v1/cost/runs", params(CostParams),
    responses((status = 200, body = [RunCostView]), (status = 400, body = ErrorBody)))]
pub async fn runs(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<CostParams>,
) -> Result<Json<Vec<RunCostView>>, ApiError> {
    let f = filter(&st, &caller, &p)?;
    let limit = p.limit.unwrap_or(1000).clamp(1, MAX_RUNS) as usize;
    let mut all = st.store.usage(&f, MAX_RUNS).await?;
    let skip = all.len().saturating_sub(limit);
    let cfg = &st.config.cost;
    Ok(Json(
        all.drain(skip..)
            .map(|r| RunCostView {
                efficiency: efficiency(&r, &cfg.prices(&r.namespace)),
                run: r,
            })
            .collect(),
    ))
}

/// Right-sizing advice per job or schedule, from the runs of the window.
#[utoipa::path(get, path = "/v1/advice", params(CostParams),
    responses((status = 200, body = AdviceView), (status = 400, body = ErrorBody)))]
pub async fn advice(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<CostParams>,
) -> Result<Json<AdviceView>, ApiError> {
    let by = group_by(p.by.as_deref(), &[GroupBy::Job, GroupBy::Schedule])?;
    let f = filter(&st, &caller, &p)?;
    let runs = st.store.usage(&f, MAX_RUNS).await?;
    let mut groups: BTreeMap<(String, String), Vec<UsageRecord>> = BTreeMap::new();
    for r in runs {
        if let Some(key) = by.key(&r) {
            groups
                .entry((r.namespace.clone(), key))
                .or_default()
                .push(r);
        }
    }
    let cfg = &st.config.cost;
    let window = f.to_ms.saturating_sub(f.from_ms);
    let advice = groups
        .into_iter()
        .map(|((ns, key), rs)| advise(&ns, &key, by, &rs, &cfg.advice(), &cfg.prices(&ns), window))
        .collect();
    Ok(Json(AdviceView {
        currency: cfg.currency.clone(),
        min_runs: cfg.advice_min_runs,
        safety_factor: cfg.safety_factor,
        advice,
    }))
}

/// The OpenAPI document of the cost API (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(cost, runs, advice),
    components(schemas(CostView, RunCostView, AdviceView))
)]
pub struct CostApiDoc;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/cost", get(cost))
        .route("/v1/cost/runs", get(runs))
        .route("/v1/advice", get(advice))
}
