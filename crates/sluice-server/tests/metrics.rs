//! `GET /metrics` and `GET /v1/cluster` through the real router (`app(state)` with `oneshot`),
//! over a real SQLite store and the real local backend running command jobs. The end-to-end test
//! with a real Prometheus is `crates/sluice-cli/tests/e2e_metrics.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use common::app;
use common::raw as call;
use serde_json::Value;
use sluice_server::AppState;
use sluice_server::config::NamespaceConfig;
use sluice_server::tick::tick;

struct Env {
    state: AppState,
    router: Router,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::commands_allowed();
    config
        .namespaces
        .insert("analytics".into(), NamespaceConfig::default());
    let state = common::local_state(dir.path(), 2000, 2048, config).await;
    Env {
        router: app(state.clone()),
        state,
        _dir: dir,
    }
}

async fn submit(r: &Router, yaml: &str) -> String {
    let (st, _, body) = call(r, "POST", "/v1/jobs", yaml).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn job_state(r: &Router, id: &str) -> String {
    let (_, _, body) = call(r, "GET", &format!("/v1/jobs/{id}"), "").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    v["state"].as_str().unwrap().to_string()
}

fn cmd(name: &str, ns: &str, cpu: &str, script: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [sh, -c, {script:?}]\n  cpu: \"{cpu}\"\n  memory: 256m\n"
    )
}

/// The value of the sample whose name and labels are exactly `series` (as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics(r: &Router) -> String {
    let (st, ctype, body) = call(r, "GET", "/metrics", "").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    body
}

#[tokio::test]
async fn series_exist_at_zero_before_any_job() {
    let e = env().await;
    let m = metrics(&e.router).await;
    for series in [
        r#"sluice_queue_length{namespace="analytics",level="high"}"#,
        r#"sluice_queue_length{namespace="default",level="normal"}"#,
        r#"sluice_jobs_submitted_total{namespace="analytics",level="normal"}"#,
        r#"sluice_jobs_finished_total{namespace="default",level="high",outcome="failed"}"#,
        r#"sluice_job_retries_total{namespace="default",level="normal"}"#,
        r#"sluice_queue_wait_seconds_count{namespace="analytics",level="high"}"#,
        r#"sluice_active_jobs{namespace="analytics",state="running"}"#,
        "sluice_dlq_jobs",
        "sluice_reservations",
        r#"sluice_watchdog_requeues_total{namespace="analytics",level="high"}"#,
        r#"sluice_tick_errors_total{source="store"}"#,
        r#"sluice_tick_errors_total{source="backend"}"#,
        "sluice_jobs_set_aside_total",
        r#"sluice_group_commit_batch_size_count{writer="submit"}"#,
    ] {
        assert_eq!(sample(&m, series), Some(0.0), "{series} in\n{m}");
    }
    assert_eq!(
        sample(&m, r#"sluice_backend_up{backend="local"}"#),
        Some(1.0),
        "{m}"
    );
    assert_eq!(sample(&m, "sluice_cluster_capacity_cpu_cores"), Some(2.0));
    assert_eq!(
        sample(&m, "sluice_cluster_capacity_memory_bytes"),
        Some(2048.0 * 1024.0 * 1024.0)
    );
    // Every metric has HELP and TYPE lines.
    assert!(
        m.contains("# TYPE sluice_queue_wait_seconds histogram"),
        "{m}"
    );
    assert!(
        m.contains("# TYPE sluice_jobs_finished_total counter"),
        "{m}"
    );
    assert!(m.contains("# HELP sluice_scheduling_cycle_seconds "), "{m}");
    let build = format!(
        r#"sluice_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&m, &build), Some(1.0), "{m}");
}

#[tokio::test]
async fn jobs_move_the_counters_gauges_and_histograms() {
    let e = env().await;
    let r = &e.router;
    // A job taking the whole CPU budget, one waiting behind it, one that fails.
    let long = submit(r, &cmd("long", "analytics", "2", "sleep 2")).await;
    tick(&e.state).await.unwrap();
    let waiting = submit(r, &cmd("waiting", "analytics", "1", "true")).await;
    let failing = submit(r, &cmd("failing", "default", "1", "exit 3")).await;
    tick(&e.state).await.unwrap();
    assert_ne!(job_state(r, &long).await, "queued");
    assert_eq!(job_state(r, &waiting).await, "queued");

    let m = metrics(r).await;
    assert_eq!(
        sample(
            &m,
            r#"sluice_jobs_submitted_total{namespace="analytics",level="normal"}"#
        ),
        Some(2.0),
        "{m}"
    );
    // The three submits went through the group commit, in one to three batches.
    assert_eq!(
        sample(&m, r#"sluice_group_commit_batch_size_sum{writer="submit"}"#),
        Some(3.0),
        "{m}"
    );
    let batches = sample(&m, r#"sluice_group_commit_seconds_count{writer="submit"}"#).unwrap();
    assert!((1.0..=3.0).contains(&batches), "{m}");
    assert_eq!(
        sample(
            &m,
            r#"sluice_queue_length{namespace="analytics",level="normal"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"sluice_queue_length{namespace="default",level="normal"}"#
        ),
        Some(1.0),
        "{m}"
    );
    let oldest = sample(
        &m,
        r#"sluice_queue_oldest_wait_seconds{namespace="analytics",level="normal"}"#,
    )
    .unwrap();
    assert!(oldest >= 0.0, "{m}");
    assert_eq!(
        sample(
            &m,
            r#"sluice_namespace_allocated_cpu_cores{namespace="analytics"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(sample(&m, "sluice_cluster_allocated_cpu_cores"), Some(2.0));
    assert_eq!(
        sample(
            &m,
            r#"sluice_jobs_admitted_total{namespace="analytics",level="normal"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"sluice_queue_wait_seconds_count{namespace="analytics",level="normal"}"#
        ),
        Some(1.0),
        "{m}"
    );

    // The cluster view says the same.
    let (st, _, body) = call(r, "GET", "/v1/cluster", "").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(c["capacity_cpu_milli"], 2000);
    assert_eq!(c["allocated_cpu_milli"], 2000);
    assert_eq!(c["backend_available"], true);
    assert_eq!(c["namespaces"][0]["namespace"], "analytics");
    assert_eq!(c["namespaces"][0]["cpu_milli"], 2000);

    // Run everything to the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tick(&e.state).await.unwrap();
        let mut done = true;
        for id in [&long, &waiting, &failing] {
            let s = job_state(r, id).await;
            done &= matches!(s.as_str(), "succeeded" | "failed" | "cancelled");
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job_state(r, &failing).await, "failed");

    let m = metrics(r).await;
    assert_eq!(
        sample(
            &m,
            r#"sluice_jobs_finished_total{namespace="analytics",level="normal",outcome="succeeded"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"sluice_jobs_finished_total{namespace="default",level="normal",outcome="failed"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"sluice_job_run_seconds_count{namespace="analytics",level="normal",outcome="succeeded"}"#
        ),
        Some(2.0),
        "{m}"
    );
    // The waiting job waited at least until the long one ended.
    let wait_sum = sample(
        &m,
        r#"sluice_queue_wait_seconds_sum{namespace="analytics",level="normal"}"#,
    )
    .unwrap();
    assert!(wait_sum >= 1.0, "{m}");
    assert_eq!(
        sample(
            &m,
            r#"sluice_queue_length{namespace="analytics",level="normal"}"#
        ),
        Some(0.0),
        "{m}"
    );
    assert_eq!(sample(&m, "sluice_cluster_allocated_cpu_cores"), Some(0.0));
    // Labels come from bounded sets: no job id anywhere.
    for id in [&long, &waiting, &failing] {
        assert!(!m.contains(id.as_str()), "{id} in\n{m}");
    }
}

#[tokio::test]
async fn cancel_counts_as_cancelled_and_retries_have_an_api() {
    let e = env().await;
    let r = &e.router;
    let id = submit(r, &cmd("c", "analytics", "1", "sleep 30")).await;
    let (st, _, body) = call(r, "POST", &format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    e.state.metrics.job_retried("analytics", "normal");
    let m = metrics(r).await;
    assert_eq!(
        sample(
            &m,
            r#"sluice_jobs_finished_total{namespace="analytics",level="normal",outcome="cancelled"}"#
        ),
        Some(1.0),
        "{m}"
    );
    // Cancelled while queued: it never ran, so no run time.
    assert_eq!(
        sample(
            &m,
            r#"sluice_job_run_seconds_count{namespace="analytics",level="normal",outcome="cancelled"}"#
        ),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"sluice_job_retries_total{namespace="analytics",level="normal"}"#
        ),
        Some(1.0),
        "{m}"
    );
}
