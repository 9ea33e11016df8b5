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
    // The pods reach the backend through its watch, in their own time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let placed = loop {
        let placed = state.backend.placements().await;
        if placed.get(&victim).is_some_and(|p| p.len() == 3) {
            break placed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pods not seen: {placed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

/// The Waiting events in namespace "spark", oldest first (as the fake stores them: by name,
/// which ends with the time in hex; sorted by eventTime to be sure).
fn waiting_events(fake: &FakeApi) -> Vec<Value> {
    let mut evs: Vec<Value> = fake
        .list("events", "spark")
        .into_iter()
        .filter(|e| e["reason"] == "Waiting")
        .collect();
    evs.sort_by(|a, b| {
        a["eventTime"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["eventTime"].as_str().unwrap_or_default())
    });
    evs
}

/// Ticks until job `id`'s wait reason is of `kind` (the backend's watches are asynchronous).
async fn tick_until_waiting(state: &AppState, r: &axum::Router, id: &str, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tick(state).await.unwrap();
        let (_, v) = call(r, "GET", &format!("/v1/jobs/{id}"), "").await;
        if v["wait"]["reason_kind"] == kind {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not waiting ({kind}): {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A job sluice holds back has no SparkApplication: kubectl users see why in a `Waiting` event
/// regarding the application it will become. One per job when it starts waiting, none while
/// its reason stays the same (even as the free room it names moves), a new one when the reason
/// changes; the application finally created has the name the events gave.
#[tokio::test]
async fn held_jobs_get_a_waiting_event_when_their_reason_changes() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "32Gi", 110, json!({}), json!([])),
    );
    // Something else runs there: 2 of the 4 cores are taken, each job needs 3.
    fake.put(
        "pods",
        "other",
        pod("web", Some("a"), "Running", "2", "1Gi", json!({})),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = server(&fake, &dir, None).await;
    let r = app(state.clone());
    let (st, v) = call(&r, "POST", "/v1/jobs", JOB).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let first = v["id"].as_str().unwrap().to_string();
    let (st, v) = call(
        &r,
        "POST",
        "/v1/jobs",
        &JOB.replace("name: pi", "name: etl"),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = v["id"].as_str().unwrap().to_string();

    let v1 = tick_until_waiting(&state, &r, &first, "no-room").await;
    let v2 = tick_until_waiting(&state, &r, &second, "blocked").await;
    state.held.settled().await;
    let evs = waiting_events(&fake);
    assert_eq!(evs.len(), 2, "one per held job: {evs:?}");
    let app_of = |name: &str, id: &str| sluice_backend::kubernetes::app::app_name(name, id, 1);
    let of = |app: &str| -> Vec<Value> {
        evs.iter()
            .filter(|e| e["regarding"]["name"] == app)
            .cloned()
            .collect()
    };
    let e1 = of(&app_of("pi", &first));
    assert_eq!(e1.len(), 1, "{evs:?}");
    let e1 = &e1[0];
    assert_eq!(e1["type"], "Normal");
    assert_eq!(e1["action"], "Hold");
    assert_eq!(e1["reportingController"], "sluice");
    assert_eq!(e1["metadata"]["namespace"], "spark");
    assert_eq!(e1["regarding"]["kind"], "SparkApplication");
    assert_eq!(
        e1["regarding"]["apiVersion"],
        "sparkoperator.k8s.io/v1beta2"
    );
    assert_eq!(e1["regarding"]["namespace"], "spark");
    assert!(
        e1["regarding"].get("uid").is_none(),
        "not created yet: {e1}"
    );
    let note = e1["note"].as_str().unwrap();
    let reason = v1["wait"]["reason"].as_str().unwrap();
    assert_eq!(
        note,
        format!(
            "held by sluice: {reason}; position 1 in the queue of namespace spark (job {first}, attempt 1)"
        )
    );
    let e2 = of(&app_of("etl", &second));
    assert_eq!(e2.len(), 1, "{evs:?}");
    let note = e2[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!(
            "held by sluice: {}; position 2",
            v2["wait"]["reason"].as_str().unwrap()
        )),
        "{note}"
    );
    assert!(note.contains(&format!("behind job {first}")), "{note}");

    // The free room moves (so the cycle runs again and the reasons' text changes), but not
    // why they wait: no new event over several ticks.
    fake.put(
        "pods",
        "other",
        pod("cron", Some("a"), "Running", "500m", "256Mi", json!({})),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tick(&state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{first}"), "").await;
        let now = v["wait"]["reason"].as_str().unwrap_or_default().to_string();
        if now != reason {
            assert_eq!(v["wait"]["reason_kind"], "no-room", "{v}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room unchanged: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        tick(&state).await.unwrap();
    }
    state.held.settled().await;
    assert_eq!(
        waiting_events(&fake).len(),
        2,
        "{:?}",
        waiting_events(&fake)
    );
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST /apis/events.k8s.io/v1/namespaces/spark/events"))
        .count();
    assert_eq!(posts, 2, "no event written but the two");

    // The first is cancelled: the second is now the head, held for room, not behind a job.
    let (st, v) = call(&r, "POST", &format!("/v1/jobs/{first}/cancel"), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v2 = tick_until_waiting(&state, &r, &second, "no-room").await;
    state.held.settled().await;
    let evs = waiting_events(&fake);
    assert_eq!(evs.len(), 3, "{evs:?}");
    let last = evs
        .iter()
        .filter(|e| e["regarding"]["name"] == app_of("etl", &second).as_str())
        .find(|e| !e["note"].as_str().unwrap().contains("behind job"))
        .unwrap_or_else(|| panic!("no new Waiting event: {evs:?}"));
    assert_eq!(
        last["note"].as_str().unwrap(),
        format!(
            "held by sluice: {}; position 1 in the queue of namespace spark (job {second}, attempt 1)",
            v2["wait"]["reason"].as_str().unwrap()
        )
    );

    // The room frees: the job is submitted as the application its events named.
    fake.remove("pods", "other", "web");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        tick(&state).await.unwrap();
        let (_, v) = call(&r, "GET", &format!("/v1/jobs/{second}"), "").await;
        if v["state"] == "submitted" {
            assert_eq!(
                v["backend_ref"],
                format!("spark/{}", app_of("etl", &second)),
                "{v}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not submitted: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    state.held.settled().await;
    assert_eq!(waiting_events(&fake).len(), 3, "nothing waits any more");
}
