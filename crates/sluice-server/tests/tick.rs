//! The tick with a driven clock and test doubles (an in-memory backend, a store that fails
//! chosen writes): no process is spawned. One job that cannot be written is set aside and the
//! others go on; the database being unavailable ends the tick; a dead scheduler task stops the
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use common::app;
use common::call;
use sluice_backend::clock::ManualClock;
use sluice_core::job::JobState;
use sluice_server::aside::FIRST_BACKOFF_MS;
use sluice_server::config::Config;
use sluice_server::tick::tick;
use sluice_server::time::rfc3339;
use sluice_server::{AppState, ServerError};
use support::{FakeBackend, Fault, FaultyStore};

const T0: i64 = 1_800_000_000_000;

struct Env {
    state: AppState,
    store: Arc<FaultyStore>,
    backend: Arc<FakeBackend>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..common::commands_allowed()
    };
    config.validate().unwrap();
    let inner = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let store = Arc::new(FaultyStore::new(inner));
    let backend = Arc::new(FakeBackend::new(4000, 8192));
    let clock = ManualClock::new(T0);
    let state = AppState::with_clock(
        store.clone(),
        backend.clone(),
        config,
        Arc::new(clock.clone()),
    );
    common::bootstrap(&state).await;
    Env {
        state,
        store,
        backend,
        clock,
        _dir: dir,
    }
}

fn job(name: &str) -> String {
    format!("name: {name}\ncommand:\n  argv: [\"true\"]\n  cpu: 100m\n  memory: 32m\n")
}

async fn submit(e: &Env, name: &str) -> String {
    let (status, v) = call(&app(e.state.clone()), "POST", "/v1/jobs", &job(name)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn state_of(e: &Env, id: &str) -> JobState {
    e.state.store.get_job(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn time_comes_from_the_states_clock() {
    let e = env().await;
    let id = submit(&e, "a").await;
    e.clock.advance(90_000);
    tick(&e.state).await.unwrap();
    let (_, v) = call(&app(e.state.clone()), "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(v["created_at"], rfc3339(T0));
    let timeline = v["timeline"].as_array().unwrap();
    let admitted = timeline.iter().find(|ev| ev["to"] == "admitted").unwrap();
    assert_eq!(admitted["at"], rfc3339(T0 + 90_000));
    assert_eq!(v["state"], "submitted");
    assert_eq!(e.state.cycles.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_job_that_cannot_be_written_is_set_aside_and_the_others_go_on() {
    let e = env().await;
    let bad = submit(&e, "bad").await;
    let good = submit(&e, "good").await;
    e.store.fail(&bad, Fault::Broken);
    tick(&e.state).await.unwrap();
    // The other job was admitted and submitted in the same tick.
    assert_eq!(state_of(&e, &good).await, JobState::Submitted);
    assert!(e.backend.submitted().contains(&good));
    // The bad one is still queued, set aside with the reason, shown by GET.
    assert_eq!(state_of(&e, &bad).await, JobState::Queued);
    let (_, v) = call(&app(e.state.clone()), "GET", &format!("/v1/jobs/{bad}"), "").await;
    let aside = &v["set_aside"];
    assert!(
        aside["reason"]
            .as_str()
            .unwrap()
            .contains("recording the admission"),
        "{v}"
    );
    assert_eq!(aside["retry_at_ms"], T0 + FIRST_BACKOFF_MS);
    assert_eq!(e.store.tries.load(Ordering::SeqCst), 1);
    let metrics = e.state.metrics.encode(None).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "sluice_jobs_set_aside_total 1"),
        "{metrics}"
    );
    // Not tried again on every tick: only after its back-off.
    tick(&e.state).await.unwrap();
    tick(&e.state).await.unwrap();
    assert_eq!(e.store.tries.load(Ordering::SeqCst), 1);
    e.clock.advance(FIRST_BACKOFF_MS);
    tick(&e.state).await.unwrap();
    assert_eq!(e.store.tries.load(Ordering::SeqCst), 2);
    assert_eq!(e.state.aside.get(&bad).unwrap().times, 2);
    // Once its writes work again, it runs like any other, and is no longer set aside.
    e.store.fail(&bad, Fault::None);
    e.clock.advance(2 * FIRST_BACKOFF_MS);
    tick(&e.state).await.unwrap();
    assert_eq!(state_of(&e, &bad).await, JobState::Submitted);
    assert!(e.state.aside.get(&bad).is_none());
    let (_, v) = call(&app(e.state.clone()), "GET", &format!("/v1/jobs/{bad}"), "").await;
    assert!(v.get("set_aside").is_none(), "{v}");
}

/// Overwrites a job's stored spec behind the store's back (a damaged row).
async fn damage(e: &Env, id: &str, spec: &str) {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", e._dir.path().join("s.db").display());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET spec = $1 WHERE id = $2")
        .bind(spec)
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_job_whose_stored_spec_does_not_decode_fails_by_name_and_the_others_go_on() {
    let e = env().await;
    let bad = submit(&e, "bad").await;
    let good = submit(&e, "good").await;
    damage(&e, &bad, r#"{"kind": {"type": "teleport"}}"#).await;
    // Lists still read (one damaged row does not stop a reader of many).
    let (status, v) = call(&app(e.state.clone()), "GET", "/v1/jobs", "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    tick(&e.state).await.unwrap();
    assert_eq!(state_of(&e, &good).await, JobState::Submitted);
    assert!(e.backend.submitted().contains(&good));
    // The damaged one is never run; it fails with a message naming it and what failed.
    assert!(!e.backend.submitted().contains(&bad));
    let rec = e.state.store.get_job(&bad).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Failed);
    let message = rec.message.unwrap();
    assert!(message.contains(&bad), "{message}");
    assert!(message.contains("teleport"), "{message}");
    assert!(message.contains("cannot submit"), "{message}");
    // Settling the failure needs its retry policy, which does not decode either: the job is
    // set aside with that reason (shown by GET) instead of retried with a default policy.
    tick(&e.state).await.unwrap();
    let aside = e.state.aside.get(&bad).expect("set aside");
    assert!(aside.reason.contains(&bad), "{}", aside.reason);
    assert_eq!(
        e.state.store.get_job(&bad).await.unwrap().unwrap().state,
        JobState::Failed
    );
}

#[tokio::test]
async fn a_running_job_that_cannot_be_written_does_not_stop_the_others() {
    let e = env().await;
    let bad = submit(&e, "bad").await;
    tick(&e.state).await.unwrap();
    assert_eq!(state_of(&e, &bad).await, JobState::Submitted);
    // Its move to running cannot be written; a job submitted after it is still admitted.
    e.store.fail(&bad, Fault::Broken);
    let good = submit(&e, "good").await;
    tick(&e.state).await.unwrap();
    assert_eq!(state_of(&e, &bad).await, JobState::Submitted);
    assert!(e.state.aside.get(&bad).is_some());
    assert_eq!(state_of(&e, &good).await, JobState::Submitted);
}

#[tokio::test]
async fn an_unavailable_store_ends_the_tick_and_the_next_one_retries() {
    let e = env().await;
    let first = submit(&e, "first").await;
    e.store.fail(&first, Fault::Unavailable);
    let err = tick(&e.state).await.unwrap_err();
    assert!(err.to_string().contains("store"), "{err}");
    assert!(
        e.state.aside.is_empty(),
        "unavailability sets nothing aside"
    );
    assert_eq!(state_of(&e, &first).await, JobState::Queued);
    // The database is back: the very next tick admits it (no back-off).
    e.store.fail(&first, Fault::None);
    tick(&e.state).await.unwrap();
    assert_eq!(state_of(&e, &first).await, JobState::Submitted);
}

#[tokio::test]
async fn a_dead_scheduler_task_stops_the_server_with_an_error() {
    let e = env().await;
    e.backend.panic_on_capacity.store(true, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = tokio::time::timeout(
        Duration::from_secs(20),
        sluice_server::run_supervised(e.state.clone(), listener, std::future::pending()),
    )
    .await
    .expect("the server must stop when its scheduler task dies");
    match served {
        Err(ServerError::SchedulerDied(why)) => {
            assert!(why.contains("panicked"), "{why}");
            assert!(why.contains("told to panic in capacity"), "{why}");
        }
        other => panic!("expected SchedulerDied, got {other:?}"),
    }
}

#[tokio::test]
async fn one_admission_gate_in_one_wording() {
    use sluice_core::document::parse_job_with_policy;
    use sluice_core::spec::ParseOptions;
    use sluice_server::admission::{Refusal, check};
    let levels = Config::default().levels();
    let parse = |text: &str| {
        parse_job_with_policy(
            text,
            ParseOptions {
                priority: None,
                levels: &levels,
            },
        )
        .unwrap()
        .0
    };
    // The fake backend: 4 cores, 8 GiB.
    let e = env().await;
    let ok = check(&e.state, &parse(&job("fits"))).await.unwrap();
    assert_eq!(ok.total().cpu_milli, 100);
    let big = parse("name: big\ncommand:\n  argv: [\"true\"]\n  cpu: \"8\"\n  memory: 32m\n");
    let refusal = check(&e.state, &big).await.unwrap_err();
    assert!(matches!(refusal, Refusal::Never { .. }), "{refusal:?}");
    assert!(
        refusal
            .to_string()
            .starts_with("can never run on the fake backend: "),
        "{refusal}"
    );
    // The API and schedules say it the same way, naming the job or the schedule.
    let r = app(e.state.clone());
    let (status, v) = call(
        &r,
        "POST",
        "/v1/jobs",
        "name: big\ncommand:\n  argv: [\"true\"]\n  cpu: \"8\"\n  memory: 32m\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], format!("job default/big {refusal}"));
    let (status, v) = call(
        &r,
        "POST",
        "/v1/schedules",
        "name: wide\nschedule: \"@hourly\"\ntemplate:\n  command:\n    argv: [\"true\"]\n    cpu: \"8\"\n    memory: 32m\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["error"],
        format!("the runs of schedule default/wide {refusal}")
    );
}
