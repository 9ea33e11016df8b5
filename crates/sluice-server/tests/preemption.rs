//! Preemption through the real tick on the simulated backend, with a driven clock: a high job
//! that does not fit stops the most recently started normal job, which goes back to the front
//! of its queue without a failure or a retry used and with the reason in its timeline; the
//! preemptor takes the room as soon as it is free; `max_per_job` stops a job being preempted
//! again; and with preemption off nothing is stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use common::{app, call};
use serde_json::Value;
use sluice_backend::clock::ManualClock;
use sluice_server::AppState;
use sluice_server::config::{Config, PreemptionConfig};
use sluice_server::tick::tick;

const T0: i64 = 1_800_000_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;

struct Env {
    state: AppState,
    clock: ManualClock,
    router: Router,
    _dir: tempfile::TempDir,
}

/// One node of 2 cpu; preemption by `high` when `on`, at most once per job.
async fn env(on: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::commands_allowed();
    if on {
        config.scheduler.preemption = PreemptionConfig {
            enabled_levels: vec!["high".into()],
            namespaces: vec!["t".into()],
            grace_ms: 1_000,
            max_per_job: 1,
        };
    }
    let (state, clock) = common::simulated_state(dir.path(), config, ("g", 1, "2", "8g"), T0).await;
    let router = app(state.clone());
    Env {
        state,
        clock,
        router,
        _dir: dir,
    }
}

impl Env {
    /// Submits a 1-cpu command job in namespace `ns` running `minutes` (simulated).
    async fn submit(&self, name: &str, ns: &str, priority: &str, minutes: u32) -> String {
        let yaml = format!(
            "name: {name}\nnamespace: {ns}\npriority: {priority}\n\
             labels: {{sluice.io/sim-duration: {minutes}m}}\n\
             command:\n  argv: [\"true\"]\n  cpu: \"1\"\n  memory: 64m\n"
        );
        let (st, v) = call(&self.router, "POST", "/v1/jobs", &yaml).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn tick_after(&self, ms: i64) {
        self.clock.advance(ms);
        tick(&self.state).await.unwrap();
    }

    async fn get(&self, id: &str) -> Value {
        let (st, v) = call(&self.router, "GET", &format!("/v1/jobs/{id}"), "").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }

    async fn state_of(&self, id: &str) -> String {
        self.get(id).await["state"].as_str().unwrap().to_string()
    }
}

fn timeline_has(v: &Value, to: &str, piece: &str) -> bool {
    v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|ev| ev["to"] == to && ev["message"].as_str().unwrap_or_default().contains(piece))
}

#[tokio::test]
async fn a_high_job_preempts_the_most_recent_normal_job_which_requeues_at_the_front() {
    let e = env(true).await;
    let n1 = e.submit("n1", "t", "normal", 30).await;
    e.tick_after(0).await;
    let n2 = e.submit("n2", "t", "normal", 30).await;
    e.tick_after(10 * SEC).await;
    e.tick_after(SEC).await;
    assert_eq!(e.state_of(&n1).await, "running");
    assert_eq!(e.state_of(&n2).await, "running");
    // A normal job queued behind them, and then the high job that does not fit.
    let n3 = e.submit("n3", "t", "normal", 1).await;
    let h = e.submit("h", "t", "high", 1).await;
    let before = e.get(&n2).await["orchestration"]["attempt_in_round"].clone();
    e.tick_after(SEC).await;

    // n2 (started last) was stopped and is back in its queue; n1 runs on.
    let v2 = e.get(&n2).await;
    assert_eq!(v2["state"], "queued", "{v2}");
    let why = "preempted by t/h (high) to make room";
    assert_eq!(v2["message"], why, "{v2}");
    assert!(timeline_has(&v2, "queued", why), "{v2}");
    assert!(!timeline_has(&v2, "failed", ""), "never failed: {v2}");
    assert_eq!(v2["orchestration"]["preemptions"], 1, "{v2}");
    assert_eq!(
        v2["orchestration"]["attempt_in_round"], before,
        "no retry used: {v2}"
    );
    assert!(v2["orchestration"]["failure_class"].is_null(), "{v2}");
    assert_eq!(e.state_of(&n1).await, "running");
    let metrics = e.state.metrics.encode(None).unwrap();
    let preempted = r#"sluice_preemptions_total{namespace="t",level="normal"} 1"#;
    assert!(
        metrics.lines().any(|l| l == preempted),
        "{preempted} in\n{metrics}"
    );
    // Not a watchdog requeue (the series is absent or 0).
    let watchdog = r#"sluice_watchdog_requeues_total{namespace="t",level="normal"}"#;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with(watchdog) && !l.ends_with(" 0")),
        "{metrics}"
    );
    let vh = e.get(&h).await;
    assert_eq!(vh["state"], "queued", "{vh}");
    assert!(timeline_has(&vh, "queued", "preempting t/n2"), "{vh}");

    // The next tick gives the freed room to h; n2 waits ahead of n3 (its old place).
    e.tick_after(SEC).await;
    assert_ne!(e.state_of(&h).await, "queued");
    let (w2, w3) = (e.get(&n2).await, e.get(&n3).await);
    assert_eq!(w2["wait"]["position"], 1, "{w2}");
    assert_eq!(w3["wait"]["position"], 2, "{w3}");

    // h ends; n2 runs again as its next run (attempt 2), before n3.
    e.tick_after(MIN).await;
    e.tick_after(SEC).await;
    assert_eq!(e.state_of(&h).await, "succeeded");
    let v2 = e.get(&n2).await;
    assert_ne!(v2["state"], "queued", "{v2}");
    assert_eq!(v2["attempt"], 2, "{v2}");
    assert_eq!(e.state_of(&n3).await, "queued");

    // Another high job: n2 (started last) reached max_per_job, so n1 goes instead.
    let h2 = e.submit("h2", "t", "high", 1).await;
    e.tick_after(SEC).await;
    let v1 = e.get(&n1).await;
    assert_eq!(v1["state"], "queued", "{v1}");
    assert!(
        timeline_has(&v1, "queued", "preempted by t/h2 (high)"),
        "{v1}"
    );
    assert_ne!(e.state_of(&n2).await, "queued");
    e.tick_after(SEC).await;
    assert_ne!(e.state_of(&h2).await, "queued");

    // A third: only n2 (at its limit) and h2 run: nobody is preempted, h3 waits for room.
    let h3 = e.submit("h3", "t", "high", 1).await;
    e.tick_after(SEC).await;
    e.tick_after(SEC).await;
    let v2 = e.get(&n2).await;
    assert_eq!(v2["state"], "running", "{v2}");
    assert_eq!(v2["orchestration"]["preemptions"], 1, "{v2}");
    let v3 = e.get(&h3).await;
    assert_eq!(v3["state"], "queued", "{v3}");
    assert_eq!(v3["wait"]["reason_kind"], "no-room", "{v3}");
}

#[tokio::test]
async fn without_preemption_or_outside_its_namespaces_nothing_is_stopped() {
    // Off: the high job waits.
    let e = env(false).await;
    let n1 = e.submit("n1", "t", "normal", 30).await;
    let n2 = e.submit("n2", "t", "normal", 30).await;
    e.tick_after(0).await;
    e.tick_after(SEC).await;
    let h = e.submit("h", "t", "high", 1).await;
    e.tick_after(SEC).await;
    e.tick_after(SEC).await;
    assert_eq!(e.state_of(&n1).await, "running");
    assert_eq!(e.state_of(&n2).await, "running");
    assert_eq!(e.state_of(&h).await, "queued");

    // On, but the jobs are in a namespace that does not take part.
    let e = env(true).await;
    let n1 = e.submit("n1", "other", "normal", 30).await;
    let n2 = e.submit("n2", "other", "normal", 30).await;
    e.tick_after(0).await;
    e.tick_after(SEC).await;
    let h = e.submit("h", "t", "high", 1).await;
    let ho = e.submit("ho", "other", "high", 1).await;
    e.tick_after(SEC).await;
    e.tick_after(SEC).await;
    assert_eq!(e.state_of(&n1).await, "running");
    assert_eq!(e.state_of(&n2).await, "running");
    assert_eq!(e.state_of(&h).await, "queued");
    assert_eq!(e.state_of(&ho).await, "queued");
}

/// The local backend through the same path, with real processes: the victim ignores SIGTERM,
/// so only the SIGKILL after the preemption's grace (1 s, not the backend's 10 s) stops it; the
/// tick never waits for that kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_preemption_kills_after_the_grace_without_blocking_the_tick() {
    use std::time::{Duration, Instant};

    use sluice_backend::local::{LocalBackend, LocalConfig};

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..common::commands_allowed()
    };
    config.scheduler.preemption = PreemptionConfig {
        enabled_levels: vec!["high".into()],
        grace_ms: 1_000,
        ..PreemptionConfig::default()
    };
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let backend = LocalBackend::new(LocalConfig {
        cores_milli: 1000,
        memory_mib: 1024,
        data_dir: dir.path().to_path_buf(),
        spark_home: None,
        python: None,
        dbt: None,
        image_spark_home: "/opt/spark".into(),
        kill_grace: Duration::from_secs(10),
        run_as: None,
    })
    .await
    .unwrap();
    let st = AppState::new(store, Arc::new(backend), config);
    common::bootstrap(&st).await;
    let r = app(st.clone());
    let state_of = |id: String| {
        let r = r.clone();
        async move {
            let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
            v
        }
    };
    let stubborn = "name: stubborn\npriority: normal\ncommand: {argv: [sh, -c, \"trap '' TERM; while true; do sleep 0.1; done\"], cpu: \"1\", memory: 128m}";
    let (status, v) = call(&r, "POST", "/v1/jobs", stubborn).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let victim = v["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        tick(&st).await.unwrap();
        if state_of(victim.clone()).await["state"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state_of(victim.clone()).await["state"], "running");
    // Give the shell time to install its trap.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let urgent =
        "name: urgent\npriority: high\ncommand: {argv: [sleep, \"30\"], cpu: \"1\", memory: 128m}";
    let (status, v) = call(&r, "POST", "/v1/jobs", urgent).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let high = v["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_millis(900), tick(&st))
        .await
        .expect("the tick must not wait for the victim's kill")
        .unwrap();
    // Being stopped: the reconciler leaves it alone, and the high job waits for its room.
    assert_eq!(state_of(victim.clone()).await["state"], "running");
    assert_eq!(state_of(high.clone()).await["state"], "queued");
    let mut requeued_after = None;
    while started.elapsed() < Duration::from_secs(8) {
        tick(&st).await.unwrap();
        if state_of(victim.clone()).await["state"] == "queued" {
            requeued_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = requeued_after.expect("the victim was not requeued within 8 s");
    assert!(
        took >= Duration::from_millis(900),
        "before the grace: {took:?}"
    );
    let v = state_of(victim.clone()).await;
    assert_eq!(
        v["message"], "preempted by default/urgent (high) to make room",
        "{v}"
    );
    assert_eq!(v["orchestration"]["preemptions"], 1, "{v}");
    // While the victim was being stopped the high job was pending: planned once, nothing
    // else stopped.
    let h = state_of(high.clone()).await;
    let notes = h["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| {
            ev["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("preempting ")
        })
        .count();
    assert_eq!(notes, 1, "{h}");
    // The room is free: the high job starts.
    for _ in 0..50 {
        tick(&st).await.unwrap();
        if state_of(high.clone()).await["state"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state_of(high.clone()).await["state"], "running");
    assert_eq!(state_of(victim.clone()).await["state"], "queued");
    // Stop everything this test started (sleep ends on SIGTERM at once).
    let (status, _) = call(&r, "POST", &format!("/v1/jobs/{high}/cancel"), "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&r, "POST", &format!("/v1/jobs/{victim}/cancel"), "").await;
    assert_eq!(status, StatusCode::OK);
}
