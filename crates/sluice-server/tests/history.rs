//! The history API and the UI assets through the real router (`app(state)` with `oneshot`),
//! over a real SQLite store and the real local backend running real command jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use common::app;
use common::{call, raw};
use serde_json::Value;
use sluice_server::AppState;
use sluice_server::tick::tick;

struct Env {
    state: AppState,
    router: Router,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let state = common::local_state(dir.path(), 4000, 8192, common::commands_allowed()).await;
    Env {
        router: app(state.clone()),
        state,
        _dir: dir,
    }
}

fn job(name: &str, ns: &str, argv: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: {argv}\n  cpu: \"1\"\n  memory: 256m\n"
    )
}

/// Ticks until every job has ended (at most 30 s).
async fn run_to_end(e: &Env, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tick(&e.state).await.unwrap();
        let mut done = true;
        for id in ids {
            let (_, v) = call(&e.router, "GET", &format!("/v1/jobs/{id}"), "").await;
            done &= matches!(
                v["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            );
        }
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "jobs did not end in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sum(v: &Value) -> f64 {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(0.0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_the_jobs_of_a_run() {
    let e = env().await;
    let mut ids = Vec::new();
    for (name, ns, argv) in [
        ("ok-1", "etl", "[\"true\"]"),
        ("ok-2", "etl", "[\"true\"]"),
        ("boom", "etl", "[\"false\"]"),
        ("other", "ml", "[sh, -c, \"sleep 0.3\"]"),
    ] {
        let (status, v) = call(&e.router, "POST", "/v1/jobs", &job(name, ns, argv)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // One more, cancelled while it waits.
    let (_, v) = call(
        &e.router,
        "POST",
        "/v1/jobs?priority=high",
        &job("late", "ml", "[\"true\"]"),
    )
    .await;
    let late = v["id"].as_str().unwrap().to_string();
    let (status, _) = call(&e.router, "POST", &format!("/v1/jobs/{late}/cancel"), "").await;
    assert_eq!(status, StatusCode::OK);
    run_to_end(&e, &ids).await;

    let (status, h) = call(&e.router, "GET", "/v1/history?step=1m", "").await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["step_seconds"], 60.0);
    let buckets = h["buckets"].as_array().unwrap().len();
    assert!((1440..=1441).contains(&buckets), "{buckets}");
    let series = h["series"].as_array().unwrap();
    let keys: Vec<(&str, &str)> = series
        .iter()
        .map(|s| {
            (
                s["namespace"].as_str().unwrap(),
                s["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("etl", "normal"), ("ml", "high"), ("ml", "normal")],
        "{h}"
    );
    let etl = &series[0];
    for list in ["queued", "admitted", "wait_p50_seconds", "active_avg"] {
        assert_eq!(etl[list].as_array().unwrap().len(), buckets, "{list}");
    }
    assert_eq!(sum(&etl["enqueued"]), 3.0);
    assert_eq!(sum(&etl["admitted"]), 3.0);
    assert_eq!(sum(&etl["finished"]["succeeded"]), 2.0);
    assert_eq!(sum(&etl["finished"]["failed"]), 1.0);
    assert_eq!(sum(&etl["finished"]["cancelled"]), 0.0);
    // Nothing waits or runs at the end; each job held 1 core for a while.
    assert_eq!(etl["queued"].as_array().unwrap().last().unwrap(), 0);
    assert_eq!(etl["active"].as_array().unwrap().last().unwrap(), 0);
    assert!(sum(&etl["cpu_requested_avg_cores"]) > 0.0);
    let waits: Vec<f64> = etl["wait_max_seconds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!(
        !waits.is_empty() && waits.iter().all(|w| *w >= 0.0 && *w < 30.0),
        "{waits:?}"
    );
    let ml_high = &series[1];
    assert_eq!(sum(&ml_high["finished"]["cancelled"]), 1.0);
    assert_eq!(sum(&ml_high["admitted"]), 0.0);

    // Filters.
    let (_, h) = call(&e.router, "GET", "/v1/history?step=1h&namespace=ml", "").await;
    let keys: Vec<&str> = h["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["level"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["high", "normal"]);
    let (_, h) = call(
        &e.router,
        "GET",
        "/v1/history?step=1h&namespace=ml&level=normal",
        "",
    )
    .await;
    assert_eq!(h["series"].as_array().unwrap().len(), 1);
    assert_eq!(sum(&h["series"][0]["finished"]["succeeded"]), 1.0);
    // A range before the run is empty.
    let (_, h) = call(
        &e.router,
        "GET",
        "/v1/history?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z&step=1h",
        "",
    )
    .await;
    assert_eq!(h["buckets"].as_array().unwrap().len(), 24);
    assert_eq!(h["series"], serde_json::json!([]));
}

#[tokio::test]
async fn history_refuses_bad_parameters_by_name() {
    let e = env().await;
    for (query, field) in [
        ("from=yesterday", "`from`"),
        ("to=2026-02-30T00:00:00Z", "`to`"),
        ("step=often", "`step`"),
        ("step=5ms", "`step`"),
        (
            "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            "range must end after it starts",
        ),
        (
            "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&step=1h",
            "buckets",
        ),
    ] {
        let (status, v) = call(&e.router, "GET", &format!("/v1/history?{query}"), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(field), "{query}: {msg}");
    }
}

#[tokio::test]
async fn ui_is_served_from_the_binary() {
    let e = env().await;
    let (status, ctype, html) = raw(&e.router, "GET", "/", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(
        html.contains("<script type=\"module\" src=\"/ui/js/main.js\">"),
        "{html}"
    );
    let (status, ctype, main) = raw(&e.router, "GET", "/ui/js/main.js", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/javascript"), "{ctype}");
    // Every module main.js imports (and they import) is served, and together they use the API.
    let mut js = String::new();
    let mut todo = vec![("main.js".to_string(), main)];
    let mut seen = vec!["main.js".to_string()];
    while let Some((name, text)) = todo.pop() {
        for line in text.lines().filter(|l| l.starts_with("import ")) {
            let file = line.split("\"./").nth(1).unwrap().trim_end_matches("\";");
            if seen.iter().any(|s| s == file) {
                continue;
            }
            let (status, _, body) = raw(&e.router, "GET", &format!("/ui/js/{file}"), "").await;
            assert_eq!(status, StatusCode::OK, "{file}, imported by {name}");
            seen.push(file.to_string());
            todo.push((file.to_string(), body));
        }
        js.push_str(&text);
    }
    assert!(seen.len() >= 10, "{seen:?}");
    for endpoint in [
        "/v1/history",
        "/v1/cluster",
        "/v1/dlq/requeue",
        "/v1/schedules",
        "/v1/choices",
        "/v1/cost/runs",
        "/v1/advice",
    ] {
        assert!(js.contains(endpoint), "the UI does not use {endpoint}");
    }
    let (status, ctype, _) = raw(&e.router, "GET", "/ui/style.css", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/css"), "{ctype}");
    for nope in ["/ui/nope.js", "/ui/js/nope.js", "/ui/js/..%2Fstyle.css"] {
        let (status, _, _) = raw(&e.router, "GET", nope, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{nope}");
    }
    // The history API is in the OpenAPI document.
    let (_, doc) = call(&e.router, "GET", "/openapi.json", "").await;
    assert!(doc["paths"]["/v1/history"]["get"].is_object(), "{doc}");
    assert!(doc["components"]["schemas"]["HistoryView"].is_object());
}

/// The scheduler's tick rolls up the history of closed hours (`Store::roll_up_history`): jobs
/// written into past hours (through the store, as a backfill would) are rolled up by one tick,
/// and their history reads the same before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_rolls_up_closed_hours() {
    use sluice_core::job::{Demand, JobState, PodDemand, Role};
    use sluice_core::record::NewJob;
    use sluice_store::{HistoryQuery, Transition};

    let e = env().await;
    let store = &e.state.store;
    const HOUR: i64 = 3_600_000;
    let start = (sluice_server::time::now_ms() / HOUR - 5) * HOUR;
    for (id, end) in [("old-1", JobState::Cancelled), ("old-2", JobState::Failed)] {
        let job = NewJob {
            id: id.into(),
            namespace: "past".into(),
            name: id.into(),
            level: "normal".into(),
            labels: Default::default(),
            stored: sluice_core::stored::StoredJob::rebuilt(
                serde_json::from_value(serde_json::json!({
                    "name": id, "namespace": "past", "level": "normal", "labels": {},
                    "kind": {"type": "command", "argv": ["true"]}
                }))
                .unwrap(),
                Default::default(),
            )
            .unwrap(),
            demand: Demand {
                pods: vec![PodDemand {
                    role: Role::Task,
                    count: 1,
                    cpu_milli: 500,
                    mem_mib: 256,
                }],
            },
            created_at_ms: start + 10 * 60_000,
        };
        store.insert_job(&job).await.unwrap();
        let mut from = JobState::Queued;
        let mut at = start + HOUR;
        for to in [JobState::Admitted, end]
            .into_iter()
            .skip(usize::from(id == "old-1"))
        {
            store
                .transition(&Transition::new(id, from, to, at, "backfilled"))
                .await
                .unwrap();
            (from, at) = (to, at + 2 * HOUR);
        }
    }
    let q = HistoryQuery {
        from_ms: start,
        to_ms: start + 5 * HOUR,
        step_ms: HOUR,
        namespace: None,
        level: None,
    };
    let before = store.history(&q).await.unwrap();
    assert_eq!(before.len(), 1, "{before:?}");

    tick(&e.state).await.unwrap();
    // Nothing left to roll up: the tick did it.
    let r = store
        .roll_up_history(sluice_server::time::now_ms())
        .await
        .unwrap();
    assert!(r.done && r.rows == 0, "{r:?}");
    assert!(r.rolled_until_hour >= Some(start / HOUR + 4), "{r:?}");
    assert_eq!(store.history(&q).await.unwrap(), before);
}

#[tokio::test]
async fn choices_offer_the_configured_levels_and_the_known_namespaces() {
    let e = env().await;
    let (status, v) = call(&e.router, "GET", "/v1/choices", "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["levels"], serde_json::json!(["high", "normal"]), "{v}");
    assert_eq!(v["default_level"], "normal", "{v}");
    assert_eq!(
        v["states"],
        serde_json::json!([
            "queued",
            "admitted",
            "submitted",
            "running",
            "succeeded",
            "failed",
            "cancelled"
        ]),
        "{v}"
    );
    assert!(
        !v["namespaces"].as_array().unwrap().contains(&"etl".into()),
        "{v}"
    );
    // A job that ran and ended: its namespace is still offered (from the history).
    let (status, j) = call(
        &e.router,
        "POST",
        "/v1/jobs",
        &job("once", "etl", "[\"true\"]"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{j}");
    let id = j["id"].as_str().unwrap().to_string();
    run_to_end(&e, &[id]).await;
    let (_, q) = call(&e.router, "GET", "/v1/queues", "").await;
    assert_eq!(q, serde_json::json!([]), "nothing is queued: {q}");
    let (_, v) = call(&e.router, "GET", "/v1/choices", "").await;
    assert!(
        v["namespaces"].as_array().unwrap().contains(&"etl".into()),
        "{v}"
    );
}
