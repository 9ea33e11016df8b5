//! Start-time estimates of queued jobs on `GET /v1/jobs/{id}` and `GET /v1/jobs`, on the
//! simulated backend with a driven clock: the expected run time comes from `maxRuntime`, then
//! from the job name's history of successful runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::http::StatusCode;
use common::{app, call};
use serde_json::Value;
use sluice_backend::clock::ManualClock;
use sluice_server::AppState;
use sluice_server::tick::tick;
use sluice_server::time::parse_time;

const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

struct Env {
    state: AppState,
    clock: ManualClock,
    router: Router,
    _dir: tempfile::TempDir,
}

/// One node of 2 cores and 8 GiB.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let config = common::commands_allowed();
    let (state, clock) = common::simulated_state(dir.path(), config, ("n", 1, "2", "8g"), T0).await;
    Env {
        router: app(state.clone()),
        state,
        clock,
        _dir: dir,
    }
}

/// A command job of 2 cores (the whole node) that runs `runs` on the simulated cluster.
fn job(name: &str, extra: &str, runs: &str) -> String {
    format!(
        "name: {name}\nnamespace: t\n{extra}labels: {{sluice.io/sim-duration: {runs}}}\ncommand:\n  argv: [\"true\"]\n  cpu: \"2\"\n  memory: 64m\n"
    )
}

async fn submit(e: &Env, yaml: &str) -> String {
    let (st, v) = call(&e.router, "POST", "/v1/jobs", yaml).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn get(e: &Env, id: &str) -> Value {
    let (st, v) = call(&e.router, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

fn ms(v: &Value, field: &str) -> i64 {
    parse_time(
        field,
        v.as_str().unwrap_or_else(|| panic!("{field} missing")),
    )
    .unwrap()
}

#[tokio::test]
async fn a_job_queued_behind_a_running_one_is_expected_to_start_when_that_one_ends() {
    let e = env().await;
    let first = submit(&e, &job("first", "maxRuntime: 30m\n", "20m")).await;
    tick(&e.state).await.unwrap();
    tick(&e.state).await.unwrap();
    let v = get(&e, &first).await;
    assert_eq!(v["state"], "running", "{v}");
    let started = ms(&v["started_at"], "started_at");

    e.clock.advance(MIN);
    let second = submit(&e, &job("second", "maxRuntime: 10m\n", "5m")).await;
    let third = submit(&e, &job("third", "", "5m")).await;
    tick(&e.state).await.unwrap();
    let v = get(&e, &second).await;
    assert_eq!(v["state"], "queued", "{v}");
    // first's expected end: its start plus its maxRuntime (no history yet). The estimate is of
    // the last cycle, computed at the time of the request, in whole seconds.
    let eta = ms(&v["wait"]["estimated_start"], "estimated_start");
    assert!(
        (eta - (started + 30 * MIN)).abs() <= 1_000,
        "second is expected at {eta}, first ends at {}: {v}",
        started + 30 * MIN
    );
    // third waits behind second, which is expected to run its maxRuntime.
    let v3 = get(&e, &third).await;
    let eta3 = ms(&v3["wait"]["estimated_start"], "estimated_start");
    assert!(
        (eta3 - (eta + 10 * MIN)).abs() <= 1_000,
        "{eta3} vs {eta}: {v3}"
    );

    // The list shows the same estimates for the waiting jobs, and none for the running one.
    let (st, list) = call(&e.router, "GET", "/v1/jobs?namespace=t", "").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    for j in list["jobs"].as_array().unwrap() {
        let id = j["id"].as_str().unwrap();
        let want = if id == second {
            Some(eta)
        } else if id == third {
            Some(eta3)
        } else {
            None
        };
        let got = j["wait"]["estimated_start"]
            .as_str()
            .map(|s| parse_time("estimated_start", s).unwrap());
        assert_eq!(got, want, "{j}");
    }
}

#[tokio::test]
async fn the_expected_run_time_comes_from_the_history_of_the_same_name() {
    let e = env().await;
    // Three runs of "etl" of 4 minutes each, without maxRuntime: its history says 4 minutes.
    for _ in 0..3 {
        let id = submit(&e, &job("etl", "", "4m")).await;
        tick(&e.state).await.unwrap();
        tick(&e.state).await.unwrap();
        e.clock.advance(4 * MIN + 1_000);
        tick(&e.state).await.unwrap();
        let v = get(&e, &id).await;
        assert_eq!(v["state"], "succeeded", "{v}");
    }
    // The tick reads a history again once it is 5 minutes old.
    e.clock.advance(6 * MIN);
    let running = submit(&e, &job("etl", "", "4m")).await;
    tick(&e.state).await.unwrap();
    tick(&e.state).await.unwrap();
    let v = get(&e, &running).await;
    assert_eq!(v["state"], "running", "{v}");
    let started = ms(&v["started_at"], "started_at");
    let waiting = submit(&e, &job("other", "", "1m")).await;
    tick(&e.state).await.unwrap();
    let v = get(&e, &waiting).await;
    let eta = ms(&v["wait"]["estimated_start"], "estimated_start");
    // Without the history the default (1 hour) would be taken.
    let want = started + 4 * MIN;
    assert!((eta - want).abs() <= 2_000, "{eta} vs {want}: {v}");
}
