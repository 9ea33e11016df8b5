//! `GET /v1/choices`: what the web UI's pick-lists offer (and any client's): the priority
//! levels from the configuration, the job states, and the namespaces and schedules the caller
//! may see.
//!
//! The namespaces are those sluice knows of and the caller sees: configured ones (`[namespaces.*]`
//! and per-namespace default levels), the ones the caller's token names, the ones with a queue or
//! a schedule now, and the ones with jobs in the last `cost.window_days` days (from the history).

use std::collections::BTreeSet;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::access::{AccessRole, Scope};
use sluice_core::job::JobState;
use sluice_store::HistoryQuery;
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::state::AppState;

/// One schedule, by namespace and name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ScheduleChoice {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The IANA time zone its expression is read in.
    pub time_zone: String,
}

/// The answer of `GET /v1/choices`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ChoicesView {
    /// The priority levels, highest first (the configuration's order).
    pub levels: Vec<String>,
    /// The level of a job that names none.
    pub default_level: String,
    /// Every job state, in lifecycle order.
    pub states: Vec<String>,
    /// The namespaces the caller may see that sluice knows of, sorted.
    pub namespaces: Vec<String>,
    /// The schedules the caller may see, by namespace then name.
    pub schedules: Vec<ScheduleChoice>,
}

/// The choices of the pick-lists: levels, states, namespaces and schedules.
#[utoipa::path(get, path = "/v1/choices",
    responses((status = 200, body = ChoicesView), (status = 500, body = ErrorBody)))]
pub async fn choices(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<ChoicesView>, ApiError> {
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    namespaces.extend(st.config.namespaces.keys().cloned());
    namespaces.extend(st.levels.namespace_defaults.keys().cloned());
    if let Scope::Only(own) = caller.grants.scope(AccessRole::Viewer) {
        namespaces.extend(own);
    }
    for q in st.store.queue_stats().await? {
        namespaces.insert(q.namespace);
    }
    let mut schedules: Vec<ScheduleChoice> = st
        .store
        .list_schedules(None)
        .await?
        .into_iter()
        .map(|s| ScheduleChoice {
            namespace: s.namespace,
            name: s.name,
            time_zone: s.time_zone,
        })
        .collect();
    namespaces.extend(schedules.iter().map(|s| s.namespace.clone()));
    let to = st.now_ms().saturating_add(1);
    let window = st.config.cost.window_ms().max(1);
    let recent = HistoryQuery {
        from_ms: to.saturating_sub(window),
        to_ms: to,
        step_ms: window,
        namespace: None,
        level: None,
    };
    for s in st.store.history(&recent).await? {
        namespaces.insert(s.namespace);
    }
    namespaces.retain(|ns| ns != "*" && caller.sees(ns));
    schedules.retain(|s| caller.sees(&s.namespace));
    schedules.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Json(ChoicesView {
        levels: st.levels.names.clone(),
        default_level: st.levels.default_level.clone(),
        states: JobState::ALL.iter().map(|s| s.to_string()).collect(),
        namespaces: namespaces.into_iter().collect(),
        schedules,
    }))
}

/// The OpenAPI document of this endpoint (merged into `/openapi.json`).
#[derive(OpenApi)]
#[openapi(paths(choices), components(schemas(ChoicesView, ScheduleChoice)))]
pub struct ChoicesApiDoc;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/choices", get(choices))
}
