//! No blocking in the tick: a kill that takes the backend's whole grace period (a run that
//! ignores SIGTERM) never holds up the admission of other jobs. The real local backend with real
//! processes, a real SQLite store, requests through the real router.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::app;
use common::call;
use sluice_backend::local::{LocalBackend, LocalConfig};
use sluice_server::AppState;
use sluice_server::config::Config;
use sluice_server::tick::tick;

const GRACE: Duration = Duration::from_secs(6);

async fn state(dir: &std::path::Path) -> AppState {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..common::commands_allowed()
    };
    config.scheduler.interval_ms = 100;
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let backend = LocalBackend::new(LocalConfig {
        cores_milli: 4000,
        memory_mib: 4096,
        data_dir: dir.to_path_buf(),
        spark_home: None,
        python: None,
        dbt: None,
        image_spark_home: "/opt/spark".into(),
        kill_grace: GRACE,
        run_as: None,
    })
    .await
    .unwrap();
    let state = AppState::new(store, Arc::new(backend), config);
    common::bootstrap(&state).await;
    state
}

async fn job_state(r: &axum::Router, id: &str) -> String {
    let (_, v) = call(r, "GET", &format!("/v1/jobs/{id}"), "").await;
    v["state"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_proceeds_while_a_kill_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let r = app(st.clone());
    // A run that ignores SIGTERM: only the SIGKILL after the grace period stops it.
    let stubborn = "name: stubborn\ncommand: {argv: [sh, -c, \"trap '' TERM; while true; do sleep 0.1; done\"], cpu: 500m, memory: 128m}";
    let (status, v) = call(&r, "POST", "/v1/jobs", stubborn).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let a = v["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        tick(&st).await.unwrap();
        if job_state(&r, &a).await == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job_state(&r, &a).await, "running");
    // Give the shell time to install its trap.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The cancel waits out the grace period...
    let cancel = tokio::spawn({
        let r = r.clone();
        let a = a.clone();
        async move {
            let started = Instant::now();
            let out = call(&r, "POST", &format!("/v1/jobs/{a}/cancel"), "").await;
            (out, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cancel.is_finished(), "the kill should still be pending");

    // ...while another job is submitted, admitted and started.
    let started = Instant::now();
    let other = "name: other\ncommand: {argv: [sleep, \"30\"], cpu: 500m, memory: 128m}";
    let (status, v) = call(&r, "POST", "/v1/jobs", other).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let b = v["id"].as_str().unwrap().to_string();
    tokio::time::timeout(Duration::from_secs(2), tick(&st))
        .await
        .expect("a tick must not wait for the pending kill")
        .unwrap();
    let b_state = job_state(&r, &b).await;
    assert!(
        matches!(b_state.as_str(), "submitted" | "running"),
        "the other job is {b_state}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!cancel.is_finished(), "admitted while the kill was pending");
    // The stubborn run is still being stopped: the reconciler leaves it alone.
    tick(&st).await.unwrap();
    assert_eq!(job_state(&r, &a).await, "running");

    let ((status, v), took) = cancel.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled");
    assert!(took >= GRACE - Duration::from_millis(500), "took {took:?}");
    // Cancel the other one too (it does not ignore SIGTERM): quick.
    let t = Instant::now();
    let (status, _) = call(&r, "POST", &format!("/v1/jobs/{b}/cancel"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() < GRACE);
}
