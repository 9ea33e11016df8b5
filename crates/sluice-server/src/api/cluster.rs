//! The cluster and service endpoints: queues, cluster view, health and Prometheus metrics.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sluice_backend::CapacityReport;
use sluice_store::StoreError;
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::cluster::{ClusterView, NamespaceUsage, cluster_view};
use crate::metrics::{CONTENT_TYPE, StateNow};
use crate::state::AppState;
use crate::time::rfc3339;
pub use sluice_api::QueueView;

/// Queues by namespace and level.
#[utoipa::path(get, path = "/v1/queues", responses((status = 200, body = [QueueView])))]
pub async fn queues(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<QueueView>>, ApiError> {
    let now = st.now_ms();
    let mut stats = st.store.queue_stats().await?;
    stats.retain(|s| caller.sees(&s.namespace));
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

/// Liveness: the process answers. For a liveness probe (it never checks the store or the
/// backend, so a database outage does not restart every replica).
#[utoipa::path(get, path = "/livez", responses((status = 200, body = Live)))]
pub async fn livez() -> Json<Live> {
    Json(Live {
        status: "ok".into(),
    })
}

/// The answer of `GET /livez`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Live {
    /// "ok".
    pub status: String,
}

/// The answer of `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// Whether this replica can serve: the store answers, and, on the leader, the scheduler
    /// loop finished a tick recently.
    pub ready: bool,
    /// "leader" (runs the scheduler loop) or "follower" (serves the API only).
    pub role: String,
    /// This replica's name in the leader election (empty for a single server on SQLite).
    pub identity: String,
    /// The lease's epoch while this replica leads.
    pub epoch: Option<i64>,
    /// "ok", or why the store does not answer.
    pub store: String,
    /// Seconds since the loop last finished a tick, on the leader once it has.
    pub last_tick_age_seconds: Option<f64>,
    /// Why it is not ready, when it is not.
    pub reason: Option<String>,
}

/// How long the store may take to answer a readiness check.
const READY_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: 200 when this replica can serve (the store answers within 2 s; on the leader, a
/// tick finished within the last max(30 s, 10 scheduler intervals)), else 503. For a
/// readiness probe.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(st): State<AppState>) -> Response {
    let leads = st.leader.holds();
    let store = match tokio::time::timeout(
        READY_STORE_TIMEOUT,
        st.store.get_lease(crate::leader::LEASE_NAME),
    )
    .await
    {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", READY_STORE_TIMEOUT.as_secs()),
    };
    let last = st.metrics.last_tick_ms();
    let age_ms = (last > 0).then(|| st.now_ms().saturating_sub(last).max(0));
    let bound_ms = i64::try_from(st.config.scheduler.interval_ms.saturating_mul(10))
        .unwrap_or(i64::MAX)
        .max(30_000);
    let reason = if store != "ok" {
        Some(format!("the store does not answer: {store}"))
    } else if leads && age_ms.is_none_or(|a| a > bound_ms) {
        Some(match age_ms {
            None => "leading, and no tick has finished yet".to_string(),
            Some(a) => format!(
                "leading, and the last tick finished {} s ago (more than {} s)",
                a / 1000,
                bound_ms / 1000
            ),
        })
    } else {
        None
    };
    let body = Ready {
        ready: reason.is_none(),
        role: if leads { "leader" } else { "follower" }.into(),
        identity: st.leader.identity().to_string(),
        epoch: st.leader.lease().map(|l| l.epoch),
        store,
        last_tick_age_seconds: if leads {
            age_ms.map(|a| a as f64 / 1000.0)
        } else {
            None
        },
        reason,
    };
    let code = if body.ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// The cluster now: capacity, what is allocated (overall and per namespace), reservations.
#[utoipa::path(get, path = "/v1/cluster", responses((status = 200, body = ClusterView), (status = 500, body = ErrorBody)))]
pub async fn cluster(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<ClusterView>, ApiError> {
    let report = capacity(&st).await;
    let mut view = cluster_view(st.store.as_ref(), st.backend.as_ref(), report).await?;
    // The cluster's capacity and what is taken in all are for everyone; what each namespace
    // holds only for the namespaces the caller may see.
    view.namespaces.retain(|n| caller.sees(&n.namespace));
    Ok(Json(view))
}

/// The capacity the last tick read (every `scheduler.interval_ms` on the leader); the backend
/// is asked only when no tick has read it for two intervals (before the first tick, or on a
/// replica that does not lead).
async fn capacity(st: &AppState) -> Option<std::sync::Arc<CapacityReport>> {
    let within =
        std::time::Duration::from_millis(st.config.scheduler.interval_ms.saturating_mul(2));
    st.capacity_within(within).await.ok()
}

/// Prometheus metrics in the text format (version 0.0.4).
pub async fn metrics(State(st): State<AppState>) -> Response {
    match render(&st).await {
        Ok(text) => ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => ApiError::Internal(format!("encoding metrics: {e}")).into_response(),
    }
}

async fn read_state(state: &AppState) -> Result<StateNow, StoreError> {
    let queues = state.store.queue_stats().await?;
    let report = capacity(state).await;
    let cluster = cluster_view(state.store.as_ref(), state.backend.as_ref(), report).await?;
    let dlq = state.store.count_dead_letters().await?;
    Ok(StateNow {
        at_ms: state.now_ms(),
        queues,
        cluster,
        dlq,
    })
}

/// The text of `GET /metrics`: the state gauges are read from the store and the backend now.
/// If the store cannot be read, the store-derived gauges are left out of this scrape (the
/// event counters are still served) and the error is logged.
pub async fn render(state: &AppState) -> Result<String, std::fmt::Error> {
    let now = match read_state(state).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("metrics: reading the store: {e}");
            None
        }
    };
    state.metrics.encode(now.as_ref())
}

/// The OpenAPI paths and schemas of the cluster endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(queues, cluster, health, livez, readyz),
    components(schemas(QueueView, ClusterView, NamespaceUsage, Health, Live, Ready, ErrorBody))
)]
pub struct ClusterApiDoc;

/// The routes of the cluster endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/queues", get(queues))
        .route("/v1/cluster", get(cluster))
        .route("/healthz", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}
