//! Authentication and authorisation through the real router (`app(state)` with `oneshot`):
//! the route table walked whole (every route guarded, a route without a rule refused), a token
//! of namespace A against everything of namespace B on every route, the roles within one
//! namespace, expired and revoked tokens, secrets never stored, authentication off only on
//! loopback, foreign hosts and cross-site requests, the audit log and the bootstrap token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "auth/tokens.rs"]
mod tokens;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_core::access::{AccessRole, Binding};
use sluice_core::job::JobState;
use sluice_server::auth::routes::{Access, ROUTES};
use sluice_server::auth::token::{bootstrap, create_token};
use sluice_server::config::Config;
use sluice_server::tick::tick;
use sluice_server::{AppState, app};
use sluice_store::{DeadLetter, Transition};
use tower::ServiceExt;

struct Env {
    state: AppState,
    router: Router,
    admin: String,
    dir: tempfile::TempDir,
}

async fn env_with(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::commands_allowed();
    tweak(&mut config);
    let state = common::local_state(dir.path(), 8000, 16384, config).await;
    // With authentication off there is no token file (and none is needed).
    let admin = if state.config.auth.enabled {
        common::admin_token(&state)
    } else {
        String::new()
    };
    Env {
        // The real router, no token added: each request says which token it carries.
        router: app(state.clone()),
        state,
        admin,
        dir,
    }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

/// One request with `token` (none: no Authorization header) and extra headers.
async fn send(
    r: &Router,
    method: &str,
    uri: &str,
    body: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, String) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/yaml");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = r
        .clone()
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let www = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        www,
    )
}

async fn as_(r: &Router, token: &str, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let (s, v, _) = send(r, method, uri, body, Some(token), &[]).await;
    (s, v)
}

/// A token made through the API by the admin.
async fn token(e: &Env, bindings: &[&str], expires: Option<&str>) -> (String, String) {
    let body =
        json!({"subject": format!("test {bindings:?}"), "bindings": bindings, "expires": expires});
    let (s, v) = as_(&e.router, &e.admin, "POST", "/v1/tokens", &body.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["token"].as_str().unwrap().to_string(),
        v["info"]["id"].as_str().unwrap().to_string(),
    )
}

fn job(name: &str, ns: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [sleep, \"30\"]\n  cpu: 100m\n  memory: 32m\n"
    )
}

fn schedule(name: &str, ns: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\nschedule: \"@every 1h\"\ntemplate:\n  command:\n    argv: [\"true\"]\n    cpu: 100m\n    memory: 32m\n"
    )
}

/// A workflow of one command step.
fn workflow(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  steps:\n    - name: only\n      job: {{command: {{argv: [\"true\"], cpu: 100m, memory: 32m}}}}\n"
    )
}

/// Submits as admin; returns the id.
async fn submit(e: &Env, name: &str, ns: &str) -> String {
    let (s, v) = as_(&e.router, &e.admin, "POST", "/v1/jobs", &job(name, ns)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A job of `ns` moved into the dead-letter queue through the store.
async fn dead_letter(e: &Env, name: &str, ns: &str) -> String {
    let id = submit(e, name, ns).await;
    let st = &e.state.store;
    let now = e.state.now_ms();
    st.transition(&Transition::new(
        &id,
        JobState::Queued,
        JobState::Admitted,
        now,
        "t",
    ))
    .await
    .unwrap();
    st.transition(&Transition::new(
        &id,
        JobState::Admitted,
        JobState::Failed,
        now,
        "t",
    ))
    .await
    .unwrap();
    st.dead_letter(&DeadLetter {
        id: id.clone(),
        attempt: 1,
        at_ms: now,
        failure_class: "app".into(),
        reason: "test".into(),
    })
    .await
    .unwrap();
    id
}

/// A concrete URI for a route path (`{id}` and friends filled in).
fn concrete(path: &str) -> String {
    path.replace("{id}", "nope")
        .replace("{namespace}", "default")
        .replace("{name}", "nope")
        .replace("{file}", "main.js")
}

#[tokio::test]
async fn every_route_is_in_the_table_and_guarded() {
    let e = env().await;
    // Every operation of the OpenAPI document has a rule.
    let doc = serde_json::to_value(sluice_server::api::openapi()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_ascii_uppercase();
            assert!(
                ROUTES.iter().any(|r| r.path == path && r.method == m),
                "{m} {path} is in the OpenAPI document but has no rule in auth::routes::ROUTES"
            );
        }
    }
    for rule in ROUTES {
        let uri = concrete(rule.path);
        let (status, body, www) = send(&e.router, rule.method, &uri, "", None, &[]).await;
        match rule.access {
            Access::Public => assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {} is public: {body}",
                rule.method,
                rule.path
            ),
            _ => {
                // 401 without a token proves both that the router serves the route (an unknown
                // route is a bare 404) and that the guard is in front of it.
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{} {} answered without a token: {body}",
                    rule.method,
                    rule.path
                );
                assert!(www.starts_with("Bearer"), "{www}");
            }
        }
        // The admin reaches the handler: never the router's bare 404 or 405.
        let (status, body, _) = send(&e.router, rule.method, &uri, "", Some(&e.admin), &[]).await;
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED
                && !(status == StatusCode::NOT_FOUND && body == Value::String(String::new())),
            "{} {} is in the table but not served: {status} {body}",
            rule.method,
            rule.path
        );
        assert_ne!(
            status,
            StatusCode::FORBIDDEN,
            "{} {}: {body}",
            rule.method,
            rule.path
        );
    }
}

#[tokio::test]
async fn a_route_without_a_rule_is_refused_even_to_the_admin() {
    let e = env().await;
    let routes = sluice_server::api::routes().route(
        "/v1/forgotten",
        axum::routing::get(|| async { "should not be served" }),
    );
    let r = sluice_server::auth::middleware::guarded(routes, &e.state).with_state(e.state.clone());
    let (s, v) = as_(&r, &e.admin, "GET", "/v1/forgotten", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no access rule"),
        "{v}"
    );
    // The other routes of the same router still work.
    let (s, _) = as_(&r, &e.admin, "GET", "/v1/jobs", "").await;
    assert_eq!(s, StatusCode::OK);
}

/// A run of namespace `ns` that ended a minute before `now`, as the reconciler records it.
fn usage_in(ns: &str, now: i64) -> sluice_core::cost::UsageRecord {
    sluice_core::cost::UsageRecord {
        job_id: format!("usage-{ns}"),
        attempt: 1,
        namespace: ns.into(),
        name: format!("etl-{ns}"),
        schedule: None,
        started_at_ms: now - 120_000,
        ended_at_ms: now - 60_000,
        outcome: sluice_core::cost::Outcome::Succeeded,
        requested: sluice_core::cost::Requested {
            cpu_milli: 1000,
            mem_mib: 1024,
            spark: None,
        },
        measured: None,
        note: None,
    }
}

fn has_ns(list: &Value, key: &str, ns: &str) -> bool {
    list.as_array()
        .unwrap()
        .iter()
        .any(|x| x.pointer(key).and_then(Value::as_str) == Some(ns))
}

/// For every route of the table, a token that is admin of namespace A only cannot read, list,
/// cancel, submit into, purge, requeue or see the logs of namespace B. A route added to the table
/// without a case here fails this test.
#[tokio::test]
async fn a_namespace_a_token_cannot_reach_namespace_b_on_any_route() {
    let e = env().await;
    let r = &e.router;
    let (a, _) = token(&e, &["a=admin"], None).await;
    // What B has: a job admitted and running, one queued, a dead letter, a schedule.
    let running_b = submit(&e, "run-b", "b").await;
    tick(&e.state).await.unwrap();
    let queued_b = submit(&e, "queued-b", "b").await;
    let dead_b = dead_letter(&e, "dead-b", "b").await;
    let (s, v) = as_(
        r,
        &e.admin,
        "POST",
        "/v1/schedules",
        &schedule("nightly", "b"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = as_(r, &e.admin, "PUT", "/v1/workflows", &workflow("pipe", "b")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = as_(r, &e.admin, "POST", "/v1/workflows/b/pipe/runs", "").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let run_b = v["id"].as_str().unwrap().to_string();
    let own_a = submit(&e, "own-a", "a").await;
    for ns in ["a", "b"] {
        let u = usage_in(ns, e.state.now_ms());
        e.state.store.put_usage(&u).await.unwrap();
    }
    let jobs_of = |ns: &'static str| {
        let st = e.state.clone();
        async move {
            st.store
                .list_jobs(
                    &sluice_store::JobFilter {
                        namespace: Some(ns.into()),
                        ..Default::default()
                    },
                    100,
                    None,
                )
                .await
                .unwrap()
                .jobs
        }
    };
    let b_before = jobs_of("b").await.len();
    let not_found = |s: StatusCode, v: &Value, what: &str| {
        assert_eq!(s, StatusCode::NOT_FOUND, "{what}: {v}");
    };

    for rule in ROUTES {
        let what = format!("{} {}", rule.method, rule.path);
        match (rule.method, rule.path) {
            ("POST", "/v1/jobs") => {
                let (s, v) = as_(r, &a, "POST", "/v1/jobs", &job("sneak", "b")).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
                let (s, v) = as_(r, &a, "POST", "/v1/jobs", &job("fine", "a")).await;
                assert_eq!(s, StatusCode::CREATED, "{what}: {v}");
            }
            ("GET", "/v1/jobs") => {
                for uri in ["/v1/jobs", "/v1/jobs?namespace=b", "/v1/jobs?state=queued"] {
                    let (s, v) = as_(r, &a, "GET", uri, "").await;
                    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
                    assert!(!has_ns(&v["jobs"], "/namespace", "b"), "{uri}: {v}");
                }
                let (_, v) = as_(r, &a, "GET", "/v1/jobs", "").await;
                assert!(has_ns(&v["jobs"], "/namespace", "a"), "{v}");
            }
            ("GET", "/v1/jobs/{id}") => {
                let (s, v) = as_(r, &a, "GET", &format!("/v1/jobs/{queued_b}"), "").await;
                not_found(s, &v, &what);
                let (s, _) = as_(r, &a, "GET", &format!("/v1/jobs/{own_a}"), "").await;
                assert_eq!(s, StatusCode::OK);
            }
            ("POST", "/v1/jobs/{id}/cancel") => {
                for id in [&queued_b, &running_b] {
                    let (s, v) = as_(r, &a, "POST", &format!("/v1/jobs/{id}/cancel"), "").await;
                    not_found(s, &v, &what);
                }
            }
            ("GET", "/v1/jobs/{id}/logs") => {
                let (s, v) = as_(r, &a, "GET", &format!("/v1/jobs/{running_b}/logs"), "").await;
                not_found(s, &v, &what);
            }
            ("GET", "/v1/queues") => {
                let (s, v) = as_(r, &a, "GET", "/v1/queues", "").await;
                assert_eq!(s, StatusCode::OK);
                assert!(!has_ns(&v, "/namespace", "b"), "{v}");
                let (_, v) = as_(r, &e.admin, "GET", "/v1/queues", "").await;
                assert!(has_ns(&v, "/namespace", "b"), "the admin sees b: {v}");
            }
            ("GET", "/v1/cluster") => {
                let (s, v) = as_(r, &a, "GET", "/v1/cluster", "").await;
                assert_eq!(s, StatusCode::OK);
                assert!(!has_ns(&v["namespaces"], "/namespace", "b"), "{v}");
                let (_, v) = as_(r, &e.admin, "GET", "/v1/cluster", "").await;
                assert!(has_ns(&v["namespaces"], "/namespace", "b"), "{v}");
            }
            ("GET", "/metrics") => {
                // Metrics cover every namespace: viewer on * only.
                let (s, v) = as_(r, &a, "GET", "/metrics", "").await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            }
            ("GET", "/livez" | "/readyz") => {
                // Probes: public, and they name no job (ready or not, 200 or 503).
                assert_eq!(rule.access, Access::Public);
                let (s, v) = as_(r, &a, "GET", rule.path, "").await;
                assert!(
                    s == StatusCode::OK || s == StatusCode::SERVICE_UNAVAILABLE,
                    "{what}: {s} {v}"
                );
                assert!(
                    !v.to_string().contains(&queued_b),
                    "{what} shows a job of b"
                );
            }
            ("GET", "/healthz" | "/openapi.json" | "/" | "/ui/js/{file}" | "/ui/style.css") => {
                assert_eq!(rule.access, Access::Public);
                let (s, v) = as_(r, &a, "GET", &concrete(rule.path), "").await;
                assert_eq!(s, StatusCode::OK);
                assert!(
                    !v.to_string().contains(&queued_b),
                    "{what} shows a job of b"
                );
            }
            ("POST" | "PUT", "/v1/schedules") => {
                let (s, v) =
                    as_(r, &a, rule.method, "/v1/schedules", &schedule("sneak", "b")).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
                // Nor over one of b that exists.
                let (s, v) = as_(
                    r,
                    &a,
                    rule.method,
                    "/v1/schedules",
                    &schedule("nightly", "b"),
                )
                .await;
                assert!(s == StatusCode::FORBIDDEN, "{what}: {s} {v}");
            }
            ("GET", "/v1/schedules") => {
                for uri in ["/v1/schedules", "/v1/schedules?namespace=b"] {
                    let (s, v) = as_(r, &a, "GET", uri, "").await;
                    assert_eq!(s, StatusCode::OK);
                    assert!(!has_ns(&v, "/namespace", "b"), "{uri}: {v}");
                }
            }
            ("GET" | "DELETE", "/v1/schedules/{namespace}/{name}") => {
                let (s, v) = as_(r, &a, rule.method, "/v1/schedules/b/nightly", "").await;
                not_found(s, &v, &what);
            }
            (
                "POST",
                "/v1/schedules/{namespace}/{name}/suspend"
                | "/v1/schedules/{namespace}/{name}/resume"
                | "/v1/schedules/{namespace}/{name}/trigger",
            ) => {
                let uri = rule.path.replace("{namespace}/{name}", "b/nightly");
                let (s, v) = as_(r, &a, "POST", &uri, "").await;
                not_found(s, &v, &what);
            }
            ("PUT", "/v1/workflows") => {
                for doc in [workflow("sneak", "b"), workflow("pipe", "b")] {
                    let (s, v) = as_(r, &a, "PUT", "/v1/workflows", &doc).await;
                    assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
                }
            }
            ("GET", "/v1/workflows" | "/v1/workflow-runs") => {
                for uri in [rule.path.to_string(), format!("{}?namespace=b", rule.path)] {
                    let (s, v) = as_(r, &a, "GET", &uri, "").await;
                    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
                    assert!(!has_ns(&v, "/namespace", "b"), "{uri}: {v}");
                }
                let (_, v) = as_(r, &e.admin, "GET", rule.path, "").await;
                assert!(has_ns(&v, "/namespace", "b"), "the admin sees b: {v}");
            }
            ("GET", "/v1/workflows/{namespace}/{name}")
            | ("POST", "/v1/workflows/{namespace}/{name}/runs") => {
                let uri = rule.path.replace("{namespace}/{name}", "b/pipe");
                let (s, v) = as_(r, &a, rule.method, &uri, "").await;
                not_found(s, &v, &what);
            }
            (
                "GET" | "POST",
                "/v1/workflow-runs/{id}"
                | "/v1/workflow-runs/{id}/cancel"
                | "/v1/workflow-runs/{id}/rerun",
            ) => {
                let uri = rule.path.replace("{id}", &run_b);
                let (s, v) = as_(r, &a, rule.method, &uri, "").await;
                not_found(s, &v, &what);
                let (s, v) = as_(
                    r,
                    &e.admin,
                    "GET",
                    &format!("/v1/workflow-runs/{run_b}"),
                    "",
                )
                .await;
                assert_eq!(
                    (s, v["state"].as_str()),
                    (StatusCode::OK, Some("running")),
                    "{v}"
                );
            }
            ("GET", "/v1/dlq") => {
                for uri in [
                    "/v1/dlq",
                    "/v1/dlq?namespace=b",
                    &format!("/v1/dlq?id={dead_b}"),
                ] {
                    let (s, v) = as_(r, &a, "GET", uri, "").await;
                    assert_eq!(s, StatusCode::OK);
                    assert!(!has_ns(&v, "/job/namespace", "b"), "{uri}: {v}");
                }
            }
            ("GET", "/v1/dlq/{id}") => {
                let (s, v) = as_(r, &a, "GET", &format!("/v1/dlq/{dead_b}"), "").await;
                not_found(s, &v, &what);
            }
            ("POST", "/v1/dlq/requeue") => {
                let (s, v) = as_(r, &a, "POST", "/v1/dlq/requeue?all=true", "").await;
                assert_eq!(s, StatusCode::OK, "{v}");
                assert!(v["requeued"].as_array().unwrap().is_empty(), "{v}");
                let (s, v) = as_(r, &a, "POST", &format!("/v1/dlq/requeue?id={dead_b}"), "").await;
                not_found(s, &v, &what);
                let (s, v) = as_(r, &a, "POST", "/v1/dlq/requeue?namespace=b", "").await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
            }
            ("POST", "/v1/dlq/purge" | "/v1/queues/purge") => {
                let (s, v) = as_(r, &a, "POST", &format!("{}?all=true", rule.path), "").await;
                assert_eq!(s, StatusCode::OK, "{v}");
                assert!(!has_ns(&v["selected"], "/namespace", "b"), "{what}: {v}");
                let (s, v) = as_(r, &a, "POST", &format!("{}?namespace=b", rule.path), "").await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
                let (s, v) = as_(
                    r,
                    &a,
                    "POST",
                    &format!("{}?id={dead_b},{queued_b}", rule.path),
                    "",
                )
                .await;
                assert_eq!(s, StatusCode::OK, "{v}");
                assert!(v["purged"].as_array().unwrap().is_empty(), "{what}: {v}");
            }
            ("GET", "/v1/history") => {
                let (s, v) = as_(r, &a, "GET", "/v1/history", "").await;
                assert_eq!(s, StatusCode::OK, "{v}");
                assert!(!has_ns(&v["series"], "/namespace", "b"), "{v}");
                let (_, v) = as_(r, &e.admin, "GET", "/v1/history", "").await;
                assert!(has_ns(&v["series"], "/namespace", "b"), "{v}");
            }
            ("GET", "/v1/cost" | "/v1/cost/runs" | "/v1/advice") => {
                let (list, key): (fn(&Value) -> &Value, &str) = match rule.path {
                    "/v1/cost" => (|v| &v["groups"], "/namespace"),
                    "/v1/cost/runs" => (|v| v, "/run/namespace"),
                    _ => (|v| &v["advice"], "/namespace"),
                };
                for uri in [rule.path.to_string(), format!("{}?namespace=b", rule.path)] {
                    let (s, v) = as_(r, &a, "GET", &uri, "").await;
                    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
                    assert!(!has_ns(list(&v), key, "b"), "{uri}: {v}");
                }
                let (_, v) = as_(r, &a, "GET", rule.path, "").await;
                assert!(has_ns(list(&v), key, "a"), "{what}: {v}");
                let (_, v) = as_(r, &e.admin, "GET", rule.path, "").await;
                assert!(has_ns(list(&v), key, "b"), "the admin sees b: {v}");
            }
            ("POST", "/v1/advice/{namespace}/{schedule}/apply") => {
                let (s, v) = as_(r, &a, "POST", "/v1/advice/b/nightly/apply", "").await;
                not_found(s, &v, &what);
                // A's own (missing) schedule: 404 too, not a 403.
                let (s, v) = as_(r, &a, "POST", "/v1/advice/a/nightly/apply", "").await;
                not_found(s, &v, &what);
            }
            ("GET", "/v1/choices") => {
                // B has a queue, a schedule and history: the admin is offered it, A is not
                // (A is offered its own namespace, which its token names).
                let (s, v) = as_(r, &a, "GET", "/v1/choices", "").await;
                assert_eq!(s, StatusCode::OK, "{v}");
                assert_eq!(v["namespaces"], json!(["a"]), "{v}");
                assert!(!has_ns(&v["schedules"], "/namespace", "b"), "{v}");
                let (_, v) = as_(r, &e.admin, "GET", "/v1/choices", "").await;
                assert!(
                    v["namespaces"].as_array().unwrap().contains(&json!("b")),
                    "{v}"
                );
                assert!(has_ns(&v["schedules"], "/namespace", "b"), "{v}");
            }
            ("GET", "/v1/whoami") => {
                let (s, v) = as_(r, &a, "GET", "/v1/whoami", "").await;
                assert_eq!(s, StatusCode::OK);
                assert_eq!(v["bindings"], json!(["a=admin"]));
                assert_eq!(v["admin"], false);
            }
            ("POST" | "GET", "/v1/tokens") | ("GET", "/v1/audit") => {
                let body = json!({"subject": "x", "bindings": ["b=admin"]}).to_string();
                let (s, v) = as_(r, &a, rule.method, rule.path, &body).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
            }
            ("POST", "/v1/tokens/{id}/revoke") => {
                let (s, v) = as_(r, &a, "POST", "/v1/tokens/tok_x/revoke", "").await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
            }
            _ => panic!(
                "{what} has no case in this test: write what a namespace-A token must not do \
                 with namespace B there"
            ),
        }
    }
    // Nothing of B changed.
    let b_after = jobs_of("b").await;
    assert_eq!(b_after.len(), b_before, "no job of b was added or purged");
    for j in &b_after {
        assert_ne!(j.state, JobState::Cancelled, "{}", j.id);
    }
    let dead = e.state.store.job_orch(&dead_b).await.unwrap().unwrap();
    assert!(dead.dlq_at_ms.is_some(), "the dead letter of b stays");
    let s = e
        .state
        .store
        .get_schedule("b", "nightly")
        .await
        .unwrap()
        .unwrap();
    assert!(!s.suspended);
}

#[tokio::test]
async fn roles_within_a_namespace() {
    let e = env().await;
    let r = &e.router;
    let (viewer, _) = token(&e, &["b=viewer"], None).await;
    let (submitter, _) = token(&e, &["b=submitter"], None).await;
    let (operator, _) = token(&e, &["b=operator"], None).await;
    let id = submit(&e, "j", "b").await;
    let dead = dead_letter(&e, "d", "b").await;
    // The viewer reads but may not act.
    let (s, _) = as_(r, &viewer, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = as_(r, &viewer, "GET", &format!("/v1/jobs/{id}/logs"), "").await;
    assert_eq!(s, StatusCode::OK);
    for (m, uri, body) in [
        ("POST", "/v1/jobs".to_string(), job("x", "b")),
        ("POST", format!("/v1/jobs/{id}/cancel"), String::new()),
        ("POST", "/v1/schedules".to_string(), schedule("s", "b")),
        ("POST", format!("/v1/dlq/requeue?id={dead}"), String::new()),
    ] {
        let (s, v) = as_(r, &viewer, m, &uri, &body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "viewer {m} {uri}: {v}");
    }
    // The submitter submits and cancels, manages schedules, but does not requeue or purge.
    let (s, v) = as_(r, &submitter, "POST", "/v1/schedules", &schedule("s", "b")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = as_(r, &submitter, "POST", "/v1/schedules/b/s/suspend", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = as_(r, &submitter, "POST", &format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for uri in [
        format!("/v1/dlq/requeue?id={dead}"),
        format!("/v1/dlq/purge?id={dead}"),
        "/v1/queues/purge?all=true".to_string(),
    ] {
        let (s, v) = as_(r, &submitter, "POST", &uri, "").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "submitter {uri}: {v}");
    }
    // The operator requeues; none of them manages tokens or reads the audit log.
    let (s, v) = as_(
        r,
        &operator,
        "POST",
        &format!("/v1/dlq/requeue?id={dead}"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["requeued"][0]["id"], dead.as_str());
    for t in [&viewer, &submitter, &operator] {
        let (s, _) = as_(r, t, "GET", "/v1/tokens", "").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = as_(r, t, "GET", "/v1/audit", "").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    // Viewer on *: reads every namespace and the metrics.
    let (all, _) = token(&e, &["*=viewer"], None).await;
    let (s, _) = as_(r, &all, "GET", "/metrics", "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = as_(r, &all, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(s, StatusCode::OK);
}
