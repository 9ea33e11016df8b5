//! A run stopped by a user's cancel gets a usage record like any ended run: what it held until
//! it was killed, and what it used until then, priced. Through the real router and tick, on the
//! real local backend with a real command job (its usage is its process tree's rusage).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{app, call};
use serde_json::Value;
use sluice_server::tick::tick;

/// Busy on the CPU for a while (a shell loop, no child processes), then leaves a mark in its
/// run directory and sleeps until it is killed.
const BURN_THEN_SLEEP: &str = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; \
                               touch burnt; exec sleep 600";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_gets_its_usage_and_cost() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::commands_allowed();
    config.cost.core_hour_price = 0.5;
    config.cost.gib_hour_price = 0.25;
    let state = common::local_state(dir.path(), 4000, 8192, config).await;
    let r = app(state.clone());
    let doc = format!(
        "name: burner\nnamespace: etl\ncommand:\n  argv: [sh, -c, {BURN_THEN_SLEEP:?}]\n  \
         cpu: \"1\"\n  memory: 256m\n"
    );
    let (s, v) = call(&r, "POST", "/v1/jobs", &doc).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    // Run it until it has burnt its CPU and sleeps.
    let mark = dir.path().join(format!("runs/{id}/1/burnt"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tick(&state).await.unwrap();
        let (_, j) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
        if j["state"] == "running" && mark.exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job never got to its sleep: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, v) = call(&r, "POST", &format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled", "{v}");

    // Recorded off the request, shortly after.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run: Value = loop {
        let (s, v) = call(&r, "GET", "/v1/cost/runs?namespace=etl", "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if let Some(run) = v
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["run"]["job_id"] == id)
        {
            break run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no usage recorded for the cancelled run {id}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rec = &run["run"];
    assert_eq!(rec["outcome"], "cancelled", "{run}");
    assert_eq!(rec["attempt"], 1, "{run}");
    // Held: its demand, from when it was seen running to the cancel.
    assert_eq!(rec["requested"]["cpu_milli"], 1000, "{run}");
    assert_eq!(rec["requested"]["mem_mib"], 256, "{run}");
    let held_ms = rec["ended_at_ms"].as_i64().unwrap() - rec["started_at_ms"].as_i64().unwrap();
    assert!(held_ms > 0, "{run}");
    // Used: the shell's CPU until it was killed, and its resident memory.
    let m = &rec["measured"];
    assert_eq!(m["source"], "process", "{run}");
    let cpu = m["process"]["cpu_seconds"].as_f64().unwrap();
    assert!(cpu > 0.05, "the busy loop's CPU time is missing: {run}");
    assert!(
        cpu * 1000.0 <= held_ms as f64 + 50.0,
        "more CPU than held: {run}"
    );
    assert!(
        m["process"]["peak_rss_bytes"].as_u64().unwrap() > 0,
        "{run}"
    );
    // Priced as any run: cost = held core-hours x 0.5 + held GiB-hours x 0.25.
    let e = &run["efficiency"];
    let hours = held_ms as f64 / 3_600_000.0;
    let want = hours * 0.5 + hours * 0.25 * 0.25;
    let cost = e["cost"].as_f64().unwrap();
    assert!(
        (cost - want).abs() < 1e-9,
        "cost {cost}, want {want}: {run}"
    );
    let used = e["used_core_hours"].as_f64().unwrap();
    assert!((used - cpu / 3600.0).abs() < 1e-9, "{run}");

    // And in the sums, as a measured run of the job.
    let (s, v) = call(&r, "GET", "/v1/cost?by=job&namespace=etl", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let g = &v["groups"][0];
    assert_eq!(
        (g["key"].as_str(), g["runs"].as_u64()),
        (Some("burner"), Some(1)),
        "{v}"
    );
    assert_eq!(g["measured_runs"], 1, "{v}");
}
