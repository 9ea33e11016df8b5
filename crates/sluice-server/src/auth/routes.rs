//! The one table of routes and who may call them. The router's guard
//! ([`super::middleware::guard`]) looks every request up here by method and matched path, and
//! refuses a route that is not in it (even to an admin): a route added without a rule fails
//! closed, and the test that walks this table (`tests/auth.rs`) fails until the rule and a
//! namespace case are written.
//!
//! The rule is the least a caller must hold to reach the handler; handlers then check the
//! namespace of what they touch (see [`super::Caller`]).

use axum::http::Method;
use sluice_core::access::AccessRole;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the UI's static files, the OpenAPI document, liveness.
    Public,
    /// Any valid token (`/v1/whoami`).
    Authenticated,
    /// A token with at least this role in some namespace; the handler narrows to namespaces.
    Role(AccessRole),
    /// A token with `admin` on `*`: tokens, the audit log.
    Admin,
    /// `/metrics`: `viewer` on `*`, or anyone with `auth.metrics_public = true`.
    Metrics,
}

/// One route and its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    /// The method (`GET` also covers `HEAD`).
    pub method: &'static str,
    /// The path as the router declares it (`{id}` for parameters).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn rule(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
    }
}

use Access::{Admin, Authenticated, Metrics, Public, Role};
use AccessRole::{Operator, Submitter, Viewer};

/// Every route of the API and the UI, with its rule.
pub const ROUTES: &[RouteRule] = &[
    // Jobs.
    rule("POST", "/v1/jobs", Role(Submitter)),
    rule("GET", "/v1/jobs", Role(Viewer)),
    rule("GET", "/v1/jobs/{id}", Role(Viewer)),
    rule("POST", "/v1/jobs/{id}/cancel", Role(Submitter)),
    rule("GET", "/v1/jobs/{id}/logs", Role(Viewer)),
    // Cluster and service.
    rule("GET", "/v1/queues", Role(Viewer)),
    rule("GET", "/v1/cluster", Role(Viewer)),
    rule("GET", "/healthz", Public),
    rule("GET", "/livez", Public),
    rule("GET", "/readyz", Public),
    rule("GET", "/metrics", Metrics),
    rule("GET", "/openapi.json", Public),
    // Workflows.
    rule("PUT", "/v1/workflows", Role(Submitter)),
    rule("GET", "/v1/workflows", Role(Viewer)),
    rule("GET", "/v1/workflows/{namespace}/{name}", Role(Viewer)),
    rule(
        "POST",
        "/v1/workflows/{namespace}/{name}/runs",
        Role(Submitter),
    ),
    rule("GET", "/v1/workflow-runs", Role(Viewer)),
    rule("GET", "/v1/workflow-runs/{id}", Role(Viewer)),
    rule("POST", "/v1/workflow-runs/{id}/cancel", Role(Submitter)),
    rule("POST", "/v1/workflow-runs/{id}/rerun", Role(Submitter)),
    // Schedules.
    rule("POST", "/v1/schedules", Role(Submitter)),
    rule("PUT", "/v1/schedules", Role(Submitter)),
    rule("GET", "/v1/schedules", Role(Viewer)),
    rule("GET", "/v1/schedules/{namespace}/{name}", Role(Viewer)),
    rule(
        "DELETE",
        "/v1/schedules/{namespace}/{name}",
        Role(Submitter),
    ),
    rule(
        "POST",
        "/v1/schedules/{namespace}/{name}/suspend",
        Role(Submitter),
    ),
    rule(
        "POST",
        "/v1/schedules/{namespace}/{name}/resume",
        Role(Submitter),
    ),
    rule(
        "POST",
        "/v1/schedules/{namespace}/{name}/trigger",
        Role(Submitter),
    ),
    // Dead letters and purges.
    rule("GET", "/v1/dlq", Role(Viewer)),
    rule("GET", "/v1/dlq/{id}", Role(Viewer)),
    rule("POST", "/v1/dlq/requeue", Role(Operator)),
    rule("POST", "/v1/dlq/purge", Role(Operator)),
    rule("POST", "/v1/queues/purge", Role(Operator)),
    // History.
    rule("GET", "/v1/history", Role(Viewer)),
    // Cost intelligence (each handler reads only the caller's namespaces).
    rule("GET", "/v1/cost", Role(Viewer)),
    rule("GET", "/v1/cost/runs", Role(Viewer)),
    rule("GET", "/v1/advice", Role(Viewer)),
    rule(
        "POST",
        "/v1/advice/{namespace}/{schedule}/apply",
        Role(Submitter),
    ),
    // What the pick-lists offer (narrowed to the caller's namespaces).
    rule("GET", "/v1/choices", Role(Viewer)),
    // The web UI's files (its data comes from the API above, with the user's token).
    rule("GET", "/", Public),
    rule("GET", "/ui/js/{file}", Public),
    rule("GET", "/ui/style.css", Public),
    // Who am I; tokens; the audit log.
    rule("GET", "/v1/whoami", Authenticated),
    rule("POST", "/v1/tokens", Admin),
    rule("GET", "/v1/tokens", Admin),
    rule("POST", "/v1/tokens/{id}/revoke", Admin),
    rule("GET", "/v1/audit", Admin),
];

/// The rule of a request, by method (`HEAD` as `GET`) and matched path.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static RouteRule> {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES.iter().find(|r| r.method == m && r.path == path)
}
