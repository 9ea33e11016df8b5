//! Shared set-up of the server tests: a real SQLite store and the real local backend in a
//! temporary directory, and requests through the real router (`app(state)` with `oneshot`).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_backend::local::{LocalBackend, LocalConfig};
use sluice_server::AppState;
use sluice_server::config::Config;
use tower::ServiceExt;

/// Server state over `dir` on a driven clock starting at `t0`: `config` with
/// `data_dir = dir` (validated), a SQLite store in `dir/s.db` and the simulated backend with
/// `count` nodes named `prefix-N` of `cpu` and `memory`; bootstrapped (an admin token).
pub async fn simulated_state(
    dir: &Path,
    mut config: Config,
    (prefix, count, cpu, memory): (&str, u32, &str, &str),
    t0: i64,
) -> (AppState, sluice_backend::clock::ManualClock) {
    use sluice_backend::simulated::{NodeGroup, SimulatedBackend, SimulatedConfig};
    config.data_dir = dir.to_path_buf();
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let clock = sluice_backend::clock::ManualClock::new(t0);
    let sim = SimulatedConfig {
        nodes: vec![NodeGroup {
            prefix: prefix.into(),
            count,
            cpu: sluice_core::spec::Text(cpu.into()),
            memory: sluice_core::spec::Text(memory.into()),
            pods: None,
        }],
        ..SimulatedConfig::default()
    };
    let backend = SimulatedBackend::new(&sim, Arc::new(clock.clone())).unwrap();
    let state = AppState::with_clock(store, Arc::new(backend), config, Arc::new(clock.clone()));
    bootstrap(&state).await;
    (state, clock)
}

/// Server state over `dir`: `config` with `data_dir = dir` (validated), a SQLite store in
/// `dir/s.db` and a local backend with the given budget.
pub async fn local_state(
    dir: &Path,
    cores_milli: u64,
    memory_mib: u64,
    mut config: Config,
) -> AppState {
    config.data_dir = dir.to_path_buf();
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let backend = LocalBackend::new(LocalConfig {
        cores_milli,
        memory_mib,
        data_dir: dir.to_path_buf(),
        spark_home: None,
        python: None,
        dbt: None,
        image_spark_home: "/opt/spark".into(),
        kill_grace: Duration::from_secs(2),
        run_as: None,
    })
    .await
    .unwrap();
    let state = AppState::new(store, Arc::new(backend), config);
    bootstrap(&state).await;
    state
}

/// What a fresh server does on its first start: makes the admin token and writes it to the
/// token file in its data directory (see [`admin_token`]).
pub async fn bootstrap(state: &AppState) {
    sluice_server::auth::token::bootstrap(state)
        .await
        .expect("bootstrap the admin token");
}

/// The admin token the server wrote to its token file (as the CLI on the same host reads it).
pub fn admin_token(state: &AppState) -> String {
    let path = state.config.auth.token_path(&state.config.data_dir);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!(
                "no token file {} ({e}): call common::bootstrap(&state) first",
                path.display()
            )
        })
        .trim()
        .to_string()
}

/// The real router (`sluice_server::app`), with every request that carries no
/// `Authorization` header given the server's bootstrap admin token, as the CLI does.
pub fn app(state: AppState) -> Router {
    let token = format!("Bearer {}", admin_token(&state));
    sluice_server::app(state).layer(axum::middleware::map_request(
        move |mut req: Request<Body>| {
            let token = token.clone();
            async move {
                if !req.headers().contains_key(header::AUTHORIZATION) {
                    req.headers_mut()
                        .insert(header::AUTHORIZATION, token.parse().unwrap());
                }
                req
            }
        },
    ))
}

/// One request: status, content type and body text.
pub async fn raw(
    router: &Router,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/yaml")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
}

/// One request whose answer is JSON (a body that is not JSON comes back as a JSON string).
pub async fn call(router: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, text) = raw(router, method, uri, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The default configuration with command jobs allowed in every namespace, and absolute
/// working directories under /tmp: these tests run command jobs, which the default refuses
/// (`tests/security.rs`).
pub fn commands_allowed() -> Config {
    let mut c = Config::default();
    c.security.command_jobs = Some(sluice_server::config::CommandJobsConfig {
        namespaces: vec!["*".into()],
        executables: None,
        working_dirs: vec!["/tmp".into()],
    });
    c
}
