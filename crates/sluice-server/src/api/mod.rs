//! The HTTP API (axum). `app(state)` builds the router; the OpenAPI document is served at
//! `/openapi.json`.
//!
//! | method and path | what |
//! | --- | --- |
//! | `POST /v1/jobs?priority=LEVEL` | submit a job (body: sluice job YAML/JSON or a SparkApplication) |
//! | `GET /v1/jobs` | list jobs, newest first, with filters and a cursor |
//! | `GET /v1/jobs/{id}` | one job: state, demand, timeline, queue position, wait reason and estimated start |
//! | `POST /v1/jobs/{id}/cancel` | cancel a job |
//! | `GET /v1/jobs/{id}/logs?offset=N&attempt=N` | a piece of the job's log (current or given attempt); `tail=N`, `since=D`: its end (see [`logtail`]) |
//! | `GET /v1/queues` | per namespace and level: queued jobs and the oldest wait |
//! | `GET /v1/cluster` | capacity, allocation per namespace, reservations, backend availability |
//! | `POST /v1/schedules`, `GET /v1/schedules` | create (schedule YAML or a ScheduledSparkApplication), list schedules |
//! | `PUT /v1/schedules` | apply: create or update the schedule the document names (`created`, `configured`, `unchanged`) |
//! | `GET`/`DELETE /v1/schedules/{namespace}/{name}` | one schedule with its next 5 run times; delete it |
//! | `POST /v1/schedules/{namespace}/{name}/{suspend,resume,trigger}` | suspend, resume, run now |
//! | `GET /v1/dlq`, `GET /v1/dlq/{id}` | dead-lettered jobs (filters: id, namespace, schedule, label, level, older_than) |
//! | `POST /v1/dlq/requeue`, `POST /v1/dlq/purge` | requeue (tail or front) or delete dead letters by filter |
//! | `POST /v1/queues/purge` | delete queued jobs by filter (`dry_run=true` lists them) |
//! | `GET /v1/history?from=&to=&step=&namespace=&level=` | time series from the store (see [`history`]) |
//! | `GET /v1/cost`, `/v1/cost/runs`, `/v1/advice`; `POST /v1/advice/{namespace}/{schedule}/apply` | requested vs used, cost, right-sizing advice, applied to a schedule on request (see [`cost`]) |
//! | `GET /v1/choices` | what pick-lists offer: levels, states, and the caller's namespaces and schedules (see [`choices`]) |
//! | `PUT /v1/workflows`, `GET /v1/workflows`, `GET /v1/workflows/{namespace}/{name}` | apply (a Workflow document), list, get workflows |
//! | `POST /v1/workflows/{namespace}/{name}/runs` | start a run (parameter overrides) |
//! | `GET /v1/workflow-runs`, `GET /v1/workflow-runs/{id}` | workflow runs with their steps' states and jobs |
//! | `POST /v1/workflow-runs/{id}/{cancel,rerun}` | cancel a run; rerun a failed one from its failed steps |
//! | `GET /`, `/ui/*` | the web UI (see [`crate::ui`]) |
//! | `GET /healthz` | liveness, backend availability |
//! | `GET /livez` | liveness (the process answers) |
//! | `GET /readyz` | readiness: store reachable; on the leader, a recent tick; role and epoch |
//! | `GET /metrics` | Prometheus metrics (text format 0.0.4; see `docs/metrics.md`) |
//! | `GET /v1/whoami`, `/v1/tokens`, `/v1/audit` | the caller; API tokens and the audit log (see [`tokens`]) |
//!
//! Every route is guarded ([`crate::auth::middleware::guard`]) by its rule in
//! [`crate::auth::routes::ROUTES`]; handlers check the namespace of what they touch.

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa::OpenApi;

use crate::aside::SetAside;
use crate::state::{AppState, WaitInfo};

pub mod advice;
pub mod choices;
pub mod cluster;
pub mod cost;
pub mod dlq;
pub mod error;
pub mod forward;
pub mod history;
pub mod jobs;
pub mod logtail;
pub mod schedules;
pub mod tokens;
pub mod views;
pub mod waits;
pub mod workflows;

pub use cluster::{Health, QueueView};
pub use dlq::{DeadLetterView, PurgeView, RequeueView};
pub use error::{ApiError, ErrorBody};
pub use jobs::{JobList, LogsView};
pub use schedules::ScheduleView;
pub use views::{DemandView, EventView, JobView, OrchView, PodDemandView, RunResultView};

/// The OpenAPI document of this API (the shared schemas; each module adds its paths).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sluice",
        description = "Capacity-aware job orchestrator for Apache Spark"
    ),
    components(schemas(
        JobView,
        DemandView,
        PodDemandView,
        EventView,
        OrchView,
        SetAside,
        WaitInfo,
        ErrorBody,
        // sluice's job spec as a user writes it (`sluice explain` reads it from here).
        sluice_core::spec::JobSpec
    ))
)]
pub struct ApiDoc;

/// The whole OpenAPI document, served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
        .merge_from(jobs::JobsApiDoc::openapi())
        .merge_from(cluster::ClusterApiDoc::openapi())
        .merge_from(schedules::SchedulesApiDoc::openapi())
        .merge_from(dlq::DlqApiDoc::openapi())
        .merge_from(history::HistoryApiDoc::openapi())
        .merge_from(cost::CostApiDoc::openapi())
        .merge_from(advice::AdviceApiDoc::openapi())
        .merge_from(choices::ChoicesApiDoc::openapi())
        .merge_from(tokens::TokensApiDoc::openapi())
        .merge_from(workflows::WorkflowsApiDoc::openapi())
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// Every route, not yet guarded.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(jobs::routes())
        .merge(cluster::routes())
        .route("/openapi.json", get(openapi_json))
        .merge(schedules::routes())
        .merge(dlq::routes())
        .merge(history::routes())
        .merge(cost::routes())
        .merge(advice::routes())
        .merge(choices::routes())
        .merge(tokens::routes())
        .merge(workflows::routes())
        .merge(crate::ui::routes())
}

/// Builds the router: every route behind the guard (authentication, the route's rule, same
/// site and host), all of it behind the transport limits of [`crate::guard`].
pub fn app(state: AppState) -> Router {
    let limit = state.config.api.max_body_bytes;
    let config = state.config.clone();
    let router = crate::auth::middleware::guarded(routes(), &state)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    // Outermost: the transport limits (body size and type, rate, timeout, security headers),
    // before any authentication work.
    crate::guard::layers(router, &config)
}
