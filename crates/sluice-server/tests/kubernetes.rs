//! The submitter loop with the Kubernetes backend against the fake API server of
//! sluice-backend's tests: a job is submitted as a SparkApplication, and the deadlock watchdog
//! kills it and sends it back to its queue as a new attempt, with its history saying why; a job
//! no node or quota could ever take is refused at submit; a high job preempts a normal one
//! (its SparkApplication deleted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../sluice-backend/tests/kube_fake/mod.rs"]
mod kube_fake;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::app;
use http_body_util::BodyExt;
use kube_fake::{FakeApi, node, pod};
use serde_json::{Value, json};
use sluice_backend::kubernetes::{KubeBackend, KubeSettings};
use sluice_server::AppState;
use sluice_server::config::Config;
use sluice_server::tick::tick;
use tower::ServiceExt;

async fn call(router: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/yaml")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const JOB: &str = "name: pi
namespace: spark
spark:
  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 2, memory: 512m}
";

/// A server state on a SQLite store in `dir` and a Kubernetes backend on the fake API, managing
/// namespace "spark"; `watchdog` replaces the default watchdog time when given.
async fn server(fake: &FakeApi, dir: &tempfile::TempDir, watchdog: Option<Duration>) -> AppState {
    let mut settings = KubeSettings {
        namespaces: vec!["spark".into()],
        ..KubeSettings::default()
    };
    if watchdog.is_some() {
        settings.watchdog = watchdog;
    }
    let backend = KubeBackend::with_client(fake.client(), settings)
        .await
        .unwrap();
    backend.wait_ready(Duration::from_secs(10)).await.unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let store = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(backend), config);
    common::bootstrap(&state).await;
    state
}

#[tokio::test]
async fn watchdog_requeues_through_the_reconciler() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, json!({}), json!([])),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = server(&fake, &dir, Some(Duration::from_millis(300))).await;
    let r = app(state.clone());
    let (st, v) = call(&r, "POST", "/v1/jobs", JOB).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    tick(&state).await.unwrap();
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(v["state"], "submitted", "{v}");
    let apps = fake.list("sparkapplications", "spark");
    assert_eq!(apps.len(), 1);
    let app1 = apps[0].clone();
    let name1 = app1["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name1.ends_with("-1"), "{name1}");
    assert_eq!(v["backend_ref"], format!("spark/{name1}"));

    // The operator runs the driver and its executors: the job runs.
    fake.update("sparkapplications", "spark", &name1, |a| {
        a["status"] = json!({"applicationState": {"state": "RUNNING"}});
    });
    let labels = |role: &str| {
        let mut l = app1["spec"][role]["labels"].clone();
        l["spark-role"] = json!(role);
        l
    };
    fake.put(
        "pods",
        "spark",
        pod(
            &format!("{name1}-driver"),
            Some("a"),
            "Running",
            "1",
            "896Mi",
            labels("driver"),
        ),
    );
    let executors = |node: Option<&str>, phase: &str| {
        for i in 1..=2 {
            fake.put(
                "pods",
                "spark",
                pod(
                    &format!("{name1}-exec-{i}"),
                    node,
                    phase,
                    "1",
                    "896Mi",
                    labels("executor"),
                ),
            );
        }
    };
    executors(Some("a"), "Running");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tick(&state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
        if v["state"] == "running" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not running: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The executors are lost and their replacements never get a node.
    executors(None, "Pending");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let v = loop {
        tick(&state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
        if v["attempt"] == 2 {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "no requeue: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Killed, back in the queue, and (room being there) submitted again as attempt 2.
    assert!(
        fake.get("sparkapplications", "spark", &name1).is_none(),
        "attempt 1 deleted"
    );
    let timeline: Vec<(String, String)> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["to"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let requeue = timeline
        .iter()
        .find(|(to, m)| to == "queued" && m.starts_with("requeued: deadlock watchdog"))
        .unwrap_or_else(|| panic!("{timeline:#?}"));
    assert!(
        requeue.1.contains("none of its 2 executors running"),
        "{}",
        requeue.1
    );
    assert!(
        timeline.iter().any(|(to, _)| to == "running"),
        "{timeline:#?}"
    );
    // The operator's state is kept in the timeline, once per change.
    let operator: Vec<&str> = timeline
        .iter()
        .filter(|(_, m)| m.starts_with("operator: "))
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(
        operator
            .iter()
            .filter(|m| **m == "operator: SparkApplication RUNNING")
            .count(),
        1,
        "{timeline:#?}"
    );
    let apps = fake.list("sparkapplications", "spark");
    assert_eq!(apps.len(), 1, "attempt 2 submitted");
    let name2 = apps[0]["metadata"]["name"].as_str().unwrap();
    assert!(name2.ends_with("-2"), "{name2}");
    assert_eq!(apps[0]["metadata"]["labels"]["sluice.io/attempt"], "2");
}

#[tokio::test]
async fn jobs_that_can_never_run_are_refused_at_submit() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "32", "128Gi", 110, json!({"pool": "cpu"}), json!([])),
    );
    fake.put(
        "resourcequotas",
        "spark",
        json!({
            "metadata": {"name": "team"},
            "spec": {"hard": {"requests.cpu": "8"}},
            "status": {"hard": {"requests.cpu": "8"}, "used": {"requests.cpu": "0"}}
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = server(&fake, &dir, None).await;
    let r = app(state.clone());
    // A node selector no node matches.
    let selected = "apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: sel, namespace: spark}
spec:
  type: Python
  sparkVersion: 4.0.4
  mainApplicationFile: local:///a.py
  nodeSelector: {pool: tpu}
  driver: {cores: 1}
  executor: {cores: 1, instances: 2}
";
    let (st, v) = call(&r, "POST", "/v1/jobs", selected).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v.to_string();
    assert!(
        msg.contains("job spark/sel can never run on the kubernetes backend: no node accepts the driver: node a lacks label pool=tpu"),
        "{msg}"
    );
    // More than the namespace quota's hard limit (10 cores of 8), though the node holds it.
    let wide = JOB.replace(
        "executor: {cores: 1, instances: 2, memory: 512m}",
        "executor: {cores: 3, instances: 3, memory: 512m}",
    );
    let (st, v) = call(&r, "POST", "/v1/jobs", &wide).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v.to_string()
            .contains("can never run on the kubernetes backend: namespace quota: ResourceQuota team requests.cpu"),
        "{v}"
    );
    // A schedule whose runs could never run is refused the same way.
    let template: String = wide
        .lines()
        .filter(|l| !l.starts_with("name:") && !l.starts_with("namespace:"))
        .map(|l| format!("  {l}\n"))
        .collect();
    let sched =
        format!("name: wide\nnamespace: spark\nschedule: \"0 2 * * *\"\ntemplate:\n{template}");
    let (st, v) = call(&r, "POST", "/v1/schedules", &sched).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v.to_string().contains(
            "the runs of schedule spark/wide can never run on the kubernetes backend: namespace quota"
        ),
        "{v}"
    );
    // What fits is accepted.
    let (st, v) = call(&r, "POST", "/v1/jobs", JOB).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// Preemption on Kubernetes: a high job that does not fit deletes the SparkApplication of the
/// normal job running there, which goes back to its queue as preempted; once the operator has
/// removed its pods, the high job is submitted.
#[tokio::test]
async fn preemption_deletes_the_victims_application() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "32Gi", 110, json!({}), json!([])),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut settings = KubeSettings {
        namespaces: vec!["spark".into()],
        ..KubeSettings::default()
    };
    settings.watchdog = None;
    let backend = KubeBackend::with_client(fake.client(), settings)
        .await
        .unwrap();
    backend.wait_ready(Duration::from_secs(10)).await.unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.scheduler.preemption = sluice_server::config::PreemptionConfig {
        enabled_levels: vec!["high".into()],
        grace_ms: 1_000,
        ..Default::default()
    };
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(backend), config);
    common::bootstrap(&state).await;
    let r = app(state.clone());

    let normal = JOB.replace("name: pi", "name: etl\npriority: normal");
    let (st, v) = call(&r, "POST", "/v1/jobs", &normal).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let victim = v["id"].as_str().unwrap().to_string();
    tick(&state).await.unwrap();
    let apps = fake.list("sparkapplications", "spark");
    assert_eq!(apps.len(), 1);
    let app1 = apps[0].clone();
    let name1 = app1["metadata"]["name"].as_str().unwrap().to_string();
    // The operator runs it: driver and two executors on node a (3 of its 4 cores).
    fake.update("sparkapplications", "spark", &name1, |a| {
        a["status"] = json!({"applicationState": {"state": "RUNNING"}});
    });
    let pods: Vec<(String, &str)> = vec![
        (format!("{name1}-driver"), "driver"),
        (format!("{name1}-exec-1"), "executor"),
        (format!("{name1}-exec-2"), "executor"),
    ];
    for (name, role) in &pods {
        let mut l = app1["spec"][*role]["labels"].clone();
        l["spark-role"] = json!(role);
        fake.put(
            "pods",
            "spark",
            pod(name, Some("a"), "Running", "1", "896Mi", l),
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tick(&state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{victim}"), "").await;
        if v["state"] == "running" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not running: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The backend says where the victim's pods are (preemption frees room on those nodes).
    let placed = state.backend.placements().await;
    let nodes: Vec<&str> = placed[&victim].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nodes, vec!["a"; 3], "{placed:?}");
    // The high job needs 3 cores: only 1 is free.
    let urgent = JOB.replace("name: pi", "name: urgent\npriority: high");
    let (st, v) = call(&r, "POST", "/v1/jobs", &urgent).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let high = v["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let v = loop {
        tick(&state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{victim}"), "").await;
        if v["state"] == "queued" {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "not preempted: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        v["message"], "preempted by spark/urgent (high) to make room",
        "{v}"
    );
    assert_eq!(v["orchestration"]["preemptions"], 1, "{v}");
    assert!(
        fake.get("sparkapplications", "spark", &name1).is_none(),
        "the victim's SparkApplication is deleted"
    );
    // The cluster's events say why (recorded by a task: wait for it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let evs = fake.list("events", "spark");
        if let Some(e) = evs.iter().find(|e| e["reason"] == "Preempted") {
            assert!(
                e["note"].as_str().unwrap_or_default().contains("preempted"),
                "{e}"
            );
            assert!(!evs.iter().any(|e| e["reason"] == "Cancelled"), "{evs:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no event: {evs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its pods still hold the room: the high job waits, nothing else is preempted.
    tick(&state).await.unwrap();
    let (_, h) = call(&r, "GET", &format!("/v1/jobs/{high}"), "").await;
    assert_eq!(h["state"], "queued", "{h}");
    assert!(fake.list("sparkapplications", "spark").is_empty());
    // The operator removes them: the high job is submitted.
    for (name, _) in &pods {
        fake.remove("pods", "spark", name);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tick(&state).await.unwrap();
        let (_, h) = call(&r, "GET", &format!("/v1/jobs/{high}"), "").await;
        if h["state"] == "submitted" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not submitted: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let apps = fake.list("sparkapplications", "spark");
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert!(
        apps[0].to_string().contains(&high),
        "the high job's: {apps:?}"
    );
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{victim}"), "").await;
    assert_eq!(v["state"], "queued", "{v}");
}
