//! Cost intelligence through the real tick and router on the simulated backend (driven clock):
//! every ended run's usage is recorded off the tick, priced, counted in the metrics and
//! advised on; a job with a run that ran out of memory is never advised down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{app, call, raw};
use sluice_backend::clock::ManualClock;
use sluice_server::AppState;
use sluice_server::config::Config;
use sluice_server::tick::tick;
use sluice_store::UsageFilter;

const T0: i64 = 1_800_000_000_000;

async fn env(dir: &tempfile::TempDir) -> (AppState, ManualClock) {
    let mut config = Config::default();
    config.cost.advice_min_runs = 3;
    config.cost.core_hour_price = 0.1;
    config.cost.gib_hour_price = 0.01;
    common::simulated_state(dir.path(), config, ("n", 4, "8", "32g"), T0).await
}

/// A Spark job of 2 executors of 2g that uses `used` of it and ends as `outcome`.
fn spark(name: &str, used: &str, outcome: &str) -> String {
    format!(
        "name: {name}\nnamespace: t\nlabels:\n  sluice.io/sim-used: \"{used}\"\n  \
         sluice.io/sim-outcome: {outcome}\n  sluice.io/sim-duration: 10m\nspark:\n  type: Scala\n  \
         mainClass: Main\n  mainApplicationFile: /a.jar\n  driver:\n    cores: 1\n    memory: 1g\n  \
         executor:\n    cores: 2\n    instances: 2\n    memory: 2g\n"
    )
}

async fn usage_count(state: &AppState) -> usize {
    let all = UsageFilter {
        from_ms: 0,
        to_ms: i64::MAX,
        ..UsageFilter::default()
    };
    state.store.usage(&all, 1000).await.unwrap().len()
}

#[tokio::test]
async fn runs_are_priced_and_advised_and_an_oom_job_is_never_advised_down() {
    let dir = tempfile::tempdir().unwrap();
    let (state, clock) = env(&dir).await;
    let r = app(state.clone());
    let jobs = [
        spark("light", "0.1", "succeed"),
        spark("light", "0.1", "succeed"),
        spark("light", "0.15", "succeed"),
        spark("oomy", "0.1", "succeed"),
        spark("oomy", "0.1", "succeed"),
        spark("oomy", "0.1", "oom"),
    ];
    for j in &jobs {
        let (s, v) = call(&r, "POST", "/v1/jobs", j).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    tick(&state).await.unwrap();
    clock.advance(30_000);
    tick(&state).await.unwrap();
    clock.advance(11 * 60_000);
    tick(&state).await.unwrap();
    // Recorded off the tick, shortly after.
    let mut waited = 0;
    while usage_count(&state).await < jobs.len() {
        assert!(waited < 100, "usage not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }

    let (s, v) = call(&r, "GET", "/v1/cost?by=job", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    let light = &groups[0];
    assert_eq!(
        (light["key"].as_str(), light["runs"].as_u64()),
        (Some("light"), Some(3))
    );
    // Each run held 1 + 2 x 2 = 5 cores from the tick that saw it running to the tick that
    // saw it end: 11 minutes.
    let core_hours = light["held_core_hours"].as_f64().unwrap();
    assert!(
        (core_hours - 3.0 * 5.0 * 11.0 / 60.0).abs() < 1e-6,
        "{light}"
    );
    assert!(light["cost"].as_f64().unwrap() > 0.0);
    assert!(light["waste"].as_f64().unwrap() > 0.0);

    let (s, v) = call(&r, "GET", "/v1/advice", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let advice = v["advice"].as_array().unwrap();
    let find = |k: &str| advice.iter().find(|a| a["key"] == k).unwrap();
    let light = find("light");
    assert_eq!(light["status"], "advised", "{light}");
    let rec = light["recommended"]["executor_heap_mib"].as_u64().unwrap();
    assert!(rec < 2048, "{light}");
    assert!(
        rec >= light["executor_peak_mib"].as_u64().unwrap(),
        "{light}"
    );
    assert!(
        light["monthly_saving"]["cost"].as_f64().unwrap() > 0.0,
        "{light}"
    );
    let oomy = find("oomy");
    assert_eq!(oomy["status"], "advised", "{oomy}");
    assert!(
        oomy["recommended"]["executor_heap_mib"].as_u64().unwrap() >= 2048,
        "an OOM job advised down: {oomy}"
    );
    assert!(
        oomy["recommended"]["driver_heap_mib"].as_u64().unwrap() >= 1024,
        "{oomy}"
    );
    let warnings = oomy["warnings"].to_string();
    assert!(warnings.contains("ran out of memory"), "{oomy}");
    assert!(
        oomy["monthly_saving"]["cost"].as_f64().unwrap() <= 0.0,
        "{oomy}"
    );

    // And in the history, by the bucket of each run's end.
    clock.advance(60_000);
    let (s, v) = call(&r, "GET", "/v1/history", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let series = v["cost"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{v}");
    assert_eq!(series[0]["namespace"], "t");
    let sum = |k: &str| -> f64 {
        series[0][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .sum()
    };
    assert_eq!(sum("runs"), 6.0, "{v}");
    assert!(
        (sum("held_core_hours") - 6.0 * 5.0 * 11.0 / 60.0).abs() < 1e-6,
        "{v}"
    );
    assert!(sum("cost") > 0.0 && sum("used_core_hours") > 0.0, "{v}");

    // The cost of every run is in the metrics.
    let (s, _, text) = raw(&r, "GET", "/metrics", "").await;
    assert_eq!(s, StatusCode::OK);
    let line = text
        .lines()
        .find(|l| l.starts_with("sluice_cost_total{namespace=\"t\"}"))
        .unwrap_or_else(|| panic!("no sluice_cost_total for t:\n{text}"));
    let total: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(total > 0.0, "{line}");
    assert!(
        text.contains("sluice_cpu_seconds_total{namespace=\"t\",kind=\"used\"}"),
        "{text}"
    );
}

/// A schedule of a Spark job asking for 2 executors of 2g and using a tenth of it.
fn sized_schedule() -> String {
    "name: sized\nnamespace: t\nschedule: \"@every 1h\"\nconcurrencyPolicy: Allow\ntemplate:\n  \
     labels:\n    sluice.io/sim-used: \"0.1\"\n    sluice.io/sim-duration: 10m\n  spark:\n    \
     type: Scala\n    mainClass: Main\n    mainApplicationFile: /a.jar\n    driver:\n      \
     cores: 1\n      memory: 1g\n    executor:\n      cores: 2\n      instances: 2\n      \
     memory: 2g\n"
        .to_string()
}

#[tokio::test]
async fn advice_is_applied_to_a_schedule_on_request_only() {
    let dir = tempfile::tempdir().unwrap();
    let (state, clock) = env(&dir).await;
    let r = app(state.clone());
    let (s, v) = call(&r, "POST", "/v1/schedules", &sized_schedule()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // No runs yet: nothing to apply.
    let (s, v) = call(&r, "POST", "/v1/advice/t/sized/apply", "").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("advice needs 3"),
        "{v}"
    );
    for _ in 0..3 {
        let (s, v) = call(&r, "POST", "/v1/schedules/t/sized/trigger", "").await;
        assert!(s.is_success(), "{v}");
    }
    tick(&state).await.unwrap();
    clock.advance(30_000);
    tick(&state).await.unwrap();
    clock.advance(11 * 60_000);
    tick(&state).await.unwrap();
    let mut waited = 0;
    while usage_count(&state).await < 3 {
        assert!(waited < 100, "usage not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // Advice alone changes nothing.
    let (s, v) = call(&r, "GET", "/v1/advice?by=schedule", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["advice"][0]["key"], "sized", "{v}");
    let before = state
        .store
        .get_schedule("t", "sized")
        .await
        .unwrap()
        .unwrap();
    let executor =
        |t: &serde_json::Value| sluice_core::stored::StoredJob::decode(t).unwrap().job.kind;
    let memory = |k: sluice_core::spec::JobKind| match k {
        sluice_core::spec::JobKind::Spark { spec, .. } => (
            spec.executor.memory.map(|t| t.0),
            spec.driver.memory.map(|t| t.0),
            spec.executor.cores,
        ),
        _ => panic!("not spark"),
    };
    assert_eq!(
        memory(executor(&before.template)),
        (Some("2g".into()), Some("1g".into()), Some(2))
    );

    let (s, v) = call(&r, "POST", "/v1/advice/t/sized/apply", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rec = &v["advice"]["recommended"];
    let want_exec = rec["executor_heap_mib"].as_u64().unwrap();
    assert!(want_exec < 2048, "{v}");
    assert!(!v["changed"].as_array().unwrap().is_empty(), "{v}");
    let after = state
        .store
        .get_schedule("t", "sized")
        .await
        .unwrap()
        .unwrap();
    let (exec, driver, cores) = memory(executor(&after.template));
    assert_eq!(exec, Some(sluice_core::cost::advice::spark_mem(want_exec)));
    assert_eq!(
        driver,
        Some(sluice_core::cost::advice::spark_mem(
            rec["driver_heap_mib"].as_u64().unwrap()
        ))
    );
    assert_eq!(cores, Some(rec["executor_cores"].as_i64().unwrap()));
    assert!(
        after
            .last_message
            .as_deref()
            .unwrap()
            .contains("right-sizing advice applied"),
        "{:?}",
        after.last_message
    );
    // The next run asks for less.
    let (s, j) = call(&r, "POST", "/v1/schedules/t/sized/trigger", "").await;
    assert!(s.is_success(), "{j}");
    let id = j["id"].as_str().unwrap();
    let job = state.store.get_job(id).await.unwrap().unwrap();
    let exec_pod = job
        .demand
        .pods
        .iter()
        .find(|p| p.role == sluice_core::job::Role::Executor)
        .unwrap();
    assert!(exec_pod.mem_mib < 2048, "{exec_pod:?}");
    // Applying again changes nothing more.
    let (s, v) = call(&r, "POST", "/v1/advice/t/sized/apply", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["changed"].as_array().unwrap().is_empty(), "{v}");
}
