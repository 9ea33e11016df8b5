//! HTTP API tests: the real router (`app(state)`) driven with `oneshot`, over a real SQLite store
//! and the real local backend (command jobs only; no Spark here).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::app;
use common::call;
use serde_json::Value;
use sluice_core::job::JobState;
use sluice_server::AppState;
use sluice_server::config::{Config, NamespaceConfig};
use sluice_server::tick::tick;

struct Env {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn env_with(cores_milli: u64, memory_mib: u64, tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::commands_allowed();
    tweak(&mut config);
    Env {
        state: common::local_state(dir.path(), cores_milli, memory_mib, config).await,
        _dir: dir,
    }
}

async fn env() -> Env {
    env_with(4000, 8192, |_| {}).await
}

/// Admitted and handed to the backend (the next tick's reconcile would see it running).
fn started(v: &Value) -> bool {
    matches!(v["state"].as_str(), Some("submitted" | "running"))
}

fn cmd_job(name: &str, ns: &str, extra: &str, cpu: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\n{extra}command:\n  argv: [sleep, \"30\"]\n  cpu: \"{cpu}\"\n  memory: 256m\n"
    )
}

#[tokio::test]
async fn submit_get_and_demand() {
    let e = env().await;
    let r = app(e.state.clone());
    let spark = r#"
name: pi
namespace: analytics
labels: {team: data}
spark:
  type: Python
  mainApplicationFile: /nowhere/pi.py
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 2, memory: 1g}
"#;
    let (st, v) = call(&r, "POST", "/v1/jobs", spark).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "queued");
    assert_eq!(v["level"], "normal");
    let (st, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(st, StatusCode::OK);
    // Python: overhead max(0.4 x 512, 384) = 384 for the driver, 0.4 x 1024 = 409 per executor.
    let pods = v["demand"]["pods"].as_array().unwrap();
    assert_eq!(pods[0]["role"], "driver");
    assert_eq!(pods[0]["count"], 1);
    assert_eq!(pods[0]["cpu_milli"], 1000);
    assert_eq!(pods[0]["memory_mib"], 512 + 384);
    assert_eq!(pods[1]["role"], "executor");
    assert_eq!(pods[1]["count"], 2);
    assert_eq!(pods[1]["memory_mib"], 1024 + 409);
    assert_eq!(v["demand"]["total_cpu_milli"], 3000);
    assert_eq!(v["timeline"][0]["to"], "queued");
    assert_eq!(v["labels"]["team"], "data");
}

#[tokio::test]
async fn spark_application_passes_through_and_priority_flag_wins() {
    let e = env().await;
    let r = app(e.state.clone());
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/spark-operator/spark-pi-python.yaml"
    ))
    .unwrap();
    let (st, v) = call(&r, "POST", "/v1/jobs?priority=high", &text).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["level"], "high");
    let app_spec = &v["spec"]["kind"]["application"]["spec"];
    assert_eq!(app_spec["image"], "docker.io/apache/spark:4.0.4");
    assert_eq!(app_spec["driver"]["securityContext"]["runAsUser"], 185);
    let (st, v) = call(&r, "POST", "/v1/jobs?priority=urgent", &text).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("urgent"), "{v}");
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_field_and_value() {
    let e = env_with(4000, 8192, |c| c.api.max_body_bytes = 4096).await;
    let r = app(e.state.clone());
    let cases: Vec<(String, StatusCode, Vec<&str>)> = vec![
        (
            "name: [oops".into(),
            StatusCode::BAD_REQUEST,
            vec!["malformed"],
        ),
        (
            "name: a\ncommand: {argv: [ls]}\nprioritty: high".into(),
            StatusCode::BAD_REQUEST,
            vec!["prioritty"],
        ),
        (
            "name: a\npriority: urgent\ncommand: {argv: [ls]}".into(),
            StatusCode::BAD_REQUEST,
            vec!["priority", "urgent"],
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, executor: {cores: 0}}".into(),
            StatusCode::BAD_REQUEST,
            vec!["spark.executor.cores", "0"],
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {cores: -1}}".into(),
            StatusCode::BAD_REQUEST,
            vec!["spark.driver.cores", "-1"],
        ),
        (
            "name: a\nspark: {mainApplicationFile: a.py, driver: {memory: 12qb}}".into(),
            StatusCode::BAD_REQUEST,
            vec!["spark.driver.memory", "12qb"],
        ),
        (
            "namespace: x\ncommand: {argv: [ls]}".into(),
            StatusCode::BAD_REQUEST,
            vec!["name"],
        ),
        (
            format!("name: a\ncommand: {{argv: [ls]}}\n# {}", "x".repeat(5000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["max_body_bytes", "4096"],
        ),
        (
            // Bigger than the whole budget: refused now rather than waiting forever.
            "name: big\ncommand: {argv: [ls], cpu: \"8\"}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["can never run", "8 cores"],
        ),
    ];
    for (body, want_status, want_words) in cases {
        let (st, v) = call(&r, "POST", "/v1/jobs", &body).await;
        assert_eq!(st, want_status, "{body:.60}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        for w in want_words {
            assert!(msg.contains(w), "{body:.60}: {msg:?} lacks {w:?}");
        }
    }
    // Nothing was stored by any of them.
    let (_, v) = call(&r, "GET", "/v1/jobs", "").await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 0);
    let (st, v) = call(&r, "GET", "/v1/jobs?state=done", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("done"));
    let (st, _) = call(&r, "GET", "/v1/jobs/nope", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let e = env().await;
    let r = app(e.state.clone());
    for i in 0..7 {
        let ns = if i % 2 == 0 { "a" } else { "b" };
        let body = format!(
            "name: j{i}\nnamespace: {ns}\nlabels: {{k: v{}}}\ncommand: {{argv: [ls], cpu: 100m, memory: 64m}}",
            i % 3
        );
        let (st, v) = call(&r, "POST", "/v1/jobs", &body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (_, v) = call(&r, "GET", "/v1/jobs?namespace=a", "").await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 4);
    let (_, v) = call(&r, "GET", "/v1/jobs?label=k=v0", "").await;
    let names: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["j6", "j3", "j0"]);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/v1/jobs?limit=3&cursor={c}"),
            None => "/v1/jobs?limit=3".to_string(),
        };
        let (st, v) = call(&r, "GET", &uri, "").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        for j in v["jobs"].as_array().unwrap() {
            seen.push(j["name"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, vec!["j6", "j5", "j4", "j3", "j2", "j1", "j0"]);
    let (st, v) = call(&r, "GET", "/v1/jobs?since=yesterday", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("since"));
}

#[tokio::test]
async fn cycle_admits_by_priority_and_explains_waits() {
    // 2 cores: each job takes 2 cores, so one runs at a time.
    let e = env_with(2000, 4096, |_| {}).await;
    let r = app(e.state.clone());
    let (_, first) = call(
        &r,
        "POST",
        "/v1/jobs",
        &cmd_job("first", "default", "", "2"),
    )
    .await;
    tick(&e.state).await.unwrap();
    let (_, second) = call(
        &r,
        "POST",
        "/v1/jobs",
        &cmd_job("second", "default", "", "2"),
    )
    .await;
    let (_, urgent) = call(
        &r,
        "POST",
        "/v1/jobs",
        &cmd_job("urgent", "default", "priority: high\n", "2"),
    )
    .await;
    tick(&e.state).await.unwrap();
    let get = |id: &Value| format!("/v1/jobs/{}", id["id"].as_str().unwrap());
    let (_, v) = call(&r, "GET", &get(&first), "").await;
    assert!(started(&v), "{v}");
    let (_, v) = call(&r, "GET", &get(&urgent), "").await;
    assert_eq!(v["state"], "queued");
    assert_eq!(v["wait"]["position"], 1, "{v}");
    let reason = v["wait"]["reason"].as_str().unwrap();
    assert!(reason.contains("needs 2 cores"), "{reason}");
    assert!(reason.contains("largest free slot 0 cores"), "{reason}");
    let (_, v) = call(&r, "GET", &get(&second), "").await;
    assert_eq!(v["wait"]["position"], 2, "{v}");
    assert_eq!(v["wait"]["reason_kind"], "blocked");
    // Queues: one namespace, both levels.
    let (_, q) = call(&r, "GET", "/v1/queues", "").await;
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0]["level"], "high");
    assert_eq!(q[1]["level"], "normal");
    // Cancel the running job: the high one goes next, not the older normal one.
    let (st, v) = call(&r, "POST", &format!("{}/cancel", get(&first)), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled");
    tick(&e.state).await.unwrap();
    let (_, v) = call(&r, "GET", &get(&urgent), "").await;
    assert!(started(&v), "{v}");
    let (_, v) = call(&r, "GET", &get(&second), "").await;
    assert_eq!(v["state"], "queued");
    // Cancelling twice is a conflict; clean up the rest.
    let (st, _) = call(&r, "POST", &format!("{}/cancel", get(&first)), "").await;
    assert_eq!(st, StatusCode::CONFLICT);
    for j in [&urgent, &second] {
        let (st, _) = call(&r, "POST", &format!("{}/cancel", get(j)), "").await;
        assert_eq!(st, StatusCode::OK);
    }
}

#[tokio::test]
async fn fair_share_between_namespaces() {
    // Namespace "flood" queues five 1-core jobs first; "quiet" queues one later. With 2 cores,
    // the second slot goes to "quiet", not to the older jobs of "flood".
    let e = env_with(2000, 4096, |c| {
        c.namespaces
            .insert("flood".into(), NamespaceConfig::default());
    })
    .await;
    let r = app(e.state.clone());
    for i in 0..5 {
        call(
            &r,
            "POST",
            "/v1/jobs",
            &cmd_job(&format!("f{i}"), "flood", "", "1"),
        )
        .await;
    }
    let (_, quiet) = call(&r, "POST", "/v1/jobs", &cmd_job("q", "quiet", "", "1")).await;
    tick(&e.state).await.unwrap();
    let (_, v) = call(
        &r,
        "GET",
        &format!("/v1/jobs/{}", quiet["id"].as_str().unwrap()),
        "",
    )
    .await;
    assert!(started(&v), "{v}");
    let (_, v) = call(
        &r,
        "GET",
        "/v1/jobs?namespace=flood&state=submitted,running",
        "",
    )
    .await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1);
    let (_, all) = call(&r, "GET", "/v1/jobs?state=submitted,running,queued", "").await;
    for j in all["jobs"].as_array().unwrap() {
        call(
            &r,
            "POST",
            &format!("/v1/jobs/{}/cancel", j["id"].as_str().unwrap()),
            "",
        )
        .await;
    }
}

#[tokio::test]
async fn command_job_runs_to_success_with_logs() {
    let e = env().await;
    let r = app(e.state.clone());
    let body = "name: hello\ncommand: {argv: [sh, -c, \"echo hello from sluice; exit 0\"], cpu: 100m, memory: 64m}";
    let (_, v) = call(&r, "POST", "/v1/jobs", body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let mut state = String::new();
    for _ in 0..100 {
        tick(&e.state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
        state = v["state"].as_str().unwrap().to_string();
        if state == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "succeeded");
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}/logs"), "").await;
    assert!(
        v["data"].as_str().unwrap().contains("hello from sluice"),
        "{v}"
    );
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
    let tl: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        tl,
        vec!["queued", "admitted", "submitted", "running", "succeeded"]
    );
    assert_eq!(v["exit_code"], 0);
}

/// A followed log is complete only once the store has recorded the job's end, not as soon as
/// the process has exited: `sluice logs -f` then stops on the job's final state.
#[tokio::test]
async fn log_is_complete_when_the_store_records_the_end() {
    let e = env().await;
    let r = app(e.state.clone());
    let body =
        "name: quick\ncommand: {argv: [sh, -c, \"echo quick; exit 0\"], cpu: 100m, memory: 64m}";
    let (_, v) = call(&r, "POST", "/v1/jobs", body).await;
    let id = v["id"].as_str().unwrap().to_string();
    // Submitted by one tick; the process then ends with no tick to record it.
    tick(&e.state).await.unwrap();
    let rec = e.state.store.get_job(&id).await.unwrap().unwrap();
    assert!(
        matches!(rec.state, JobState::Submitted | JobState::Running),
        "{rec:?}"
    );
    let run = sluice_backend::RunRef {
        job_id: id.clone(),
        attempt: rec.attempt,
        backend_ref: rec.backend_ref.clone(),
    };
    let mut ended = false;
    for _ in 0..100 {
        if e.state.backend.status(&run).await.unwrap() == sluice_backend::RunStatus::Succeeded {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended, "the process never ended");
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}/logs"), "").await;
    assert_eq!(v["data"], "quick\n", "{v}");
    assert_eq!(
        v["complete"], false,
        "the store has not seen the end yet: {v}"
    );
    tick(&e.state).await.unwrap();
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}/logs?offset=6"), "").await;
    assert_eq!(
        (v["complete"].as_bool(), v["state"].as_str()),
        (Some(true), Some("succeeded")),
        "{v}"
    );
}

#[tokio::test]
async fn health_and_openapi() {
    let e = env().await;
    let r = app(e.state.clone());
    let (st, v) = call(&r, "GET", "/healthz", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["backend"], "local");
    assert_eq!(v["backend_available"], true);
    let (st, v) = call(&r, "GET", "/livez", "").await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    // Ready once the store answers and, as the leader (the only server, on SQLite), once the
    // loop has finished a tick.
    let (st, v) = call(&r, "GET", "/readyz", "").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["role"], "leader");
    assert_eq!(v["store"], "ok");
    assert!(v["reason"].as_str().unwrap().contains("no tick"), "{v}");
    sluice_server::tick::tick(&e.state).await.unwrap();
    let (st, v) = call(&r, "GET", "/readyz", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["ready"].as_bool(), v["epoch"].as_i64()),
        (Some(true), None)
    );
    assert!(v["last_tick_age_seconds"].as_f64().unwrap() < 60.0, "{v}");
    // A closed store is not ready.
    e.state.store.close().await;
    let (st, v) = call(&r, "GET", "/readyz", "").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_ne!(v["store"], "ok", "{v}");
    let (st, _) = call(&r, "GET", "/livez", "").await;
    assert_eq!(st, StatusCode::OK, "liveness does not depend on the store");
    let (st, v) = call(&r, "GET", "/openapi.json", "").await;
    assert_eq!(st, StatusCode::OK);
    for p in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/logs",
        "/v1/queues",
        "/healthz",
        "/livez",
        "/readyz",
    ] {
        assert!(v["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    assert!(v["components"]["schemas"].get("JobView").is_some());
}
