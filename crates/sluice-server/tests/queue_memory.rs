//! The in-memory queue: kept current by the server's own writes (submit, admission, cancel,
//! purge, a requeue after no room, retries on a backoff), it equals the queue a restarted
//! server loads from the store. Simulated backend, driven clock, real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::app;
use common::call;
use sluice_backend::clock::ManualClock;
use sluice_backend::simulated::{NodeGroup, SimulatedBackend, SimulatedConfig};
use sluice_core::job::JobState;
use sluice_core::spec::Text;
use sluice_server::AppState;
use sluice_server::config::Config;
use sluice_server::tick::tick;

const T0: i64 = 1_800_000_000_000;

async fn state(dir: &std::path::Path, clock: &ManualClock) -> AppState {
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..common::commands_allowed()
    };
    config.validate().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap();
    let sim = SimulatedConfig {
        nodes: vec![NodeGroup {
            prefix: "n".into(),
            count: 2,
            cpu: Text("4".into()),
            memory: Text("16g".into()),
            pods: None,
        }],
        start_delay: Text("0s".into()),
        ..SimulatedConfig::default()
    };
    let backend = SimulatedBackend::new(&sim, Arc::new(clock.clone())).unwrap();
    let state = AppState::with_clock(store, Arc::new(backend), config, Arc::new(clock.clone()));
    common::bootstrap(&state).await;
    state
}

/// The waiting jobs in queue order, as the in-memory queue holds them.
fn snapshot(st: &AppState) -> Vec<(String, String, String, i64)> {
    let q = st.queue.lock();
    assert!(q.loaded());
    let mut v: Vec<_> = q
        .queue()
        .iter()
        .map(|e| {
            (
                e.namespace.to_string(),
                e.id.to_string(),
                e.level.to_string(),
                e.enqueued_at_ms,
            )
        })
        .collect();
    v.sort();
    v
}

fn job(name: &str, ns: &str, level: &str, cpu: &str, extra: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\npriority: {level}\n{extra}command:\n  argv: [\"true\"]\n  cpu: \"{cpu}\"\n  memory: 256m\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_queue_equals_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let st = state(dir.path(), &clock).await;
    let r = app(st.clone());
    let mut ids = Vec::new();
    // A blocker at the head of "a" (4 cores fit a node, not while the small ones run) and
    // jobs of two levels in three namespaces.
    for (i, (ns, level, cpu)) in [
        ("a", "normal", "3"),
        ("a", "normal", "4"),
        ("a", "high", "1"),
        ("b", "normal", "1"),
        ("b", "normal", "1"),
        ("c", "high", "2"),
        ("c", "normal", "1"),
        ("a", "normal", "1"),
    ]
    .into_iter()
    .enumerate()
    {
        let labels = "labels: {sluice.io/sim-duration: 1h}\n";
        let (status, v) = call(
            &r,
            "POST",
            "/v1/jobs",
            &job(&format!("j{i}"), ns, level, cpu, labels),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
        clock.advance(10);
    }
    tick(&st).await.unwrap();
    clock.advance(1000);
    // More submits after the first load; a cancel of a queued job; a purge of another.
    for i in 0..5 {
        let (status, v) = call(
            &r,
            "POST",
            "/v1/jobs",
            &job(&format!("k{i}"), "b", "normal", "2", ""),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
        clock.advance(10);
    }
    let queued_before: Vec<String> = st
        .store
        .jobs_in_states(&[JobState::Queued])
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert!(queued_before.len() >= 3, "{queued_before:?}");
    let (status, _) = call(
        &r,
        "POST",
        &format!("/v1/jobs/{}/cancel", queued_before[0]),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = call(
        &r,
        "POST",
        &format!("/v1/queues/purge?id={}", queued_before[1]),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for _ in 0..3 {
        tick(&st).await.unwrap();
        clock.advance(500);
    }
    let in_memory = snapshot(&st);
    let in_store: Vec<String> = {
        let mut v: Vec<String> = st
            .store
            .jobs_in_states(&[JobState::Queued])
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        v.sort();
        v
    };
    let mut mem_ids: Vec<String> = in_memory.iter().map(|j| j.1.clone()).collect();
    mem_ids.sort();
    assert_eq!(mem_ids, in_store, "the memory queue follows the store");
    assert!(!in_memory.is_empty());
    // The queue statistics (/v1/queues, /metrics) come from memory and equal the store's.
    let from_memory = st.queue.stats().expect("loaded");
    assert_eq!(st.store.queue_stats().await.unwrap(), from_memory);
    let direct = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    assert_eq!(direct.queue_stats().await.unwrap(), from_memory);
    assert!(from_memory.len() >= 2, "{from_memory:?}");
    // The jobs holding room come from memory too (the tick reads them in every step), and
    // equal the store's, in the store's order.
    let ids = |v: Vec<sluice_core::record::JobRecord>| {
        v.into_iter()
            .map(|j| (j.id, j.state, j.attempt))
            .collect::<Vec<_>>()
    };
    for states in [
        &JobState::ACTIVE[..],
        &[JobState::Submitted, JobState::Running][..],
        &[JobState::Admitted][..],
    ] {
        let mem = st.queue.active_in(direct.as_ref(), states).await;
        let mem = ids(mem.expect("the queue is loaded").unwrap());
        assert_eq!(ids(st.store.jobs_in_states(states).await.unwrap()), mem);
        assert_eq!(ids(direct.jobs_in_states(states).await.unwrap()), mem);
    }
    assert!(
        !st.store
            .jobs_in_states(&JobState::ACTIVE)
            .await
            .unwrap()
            .is_empty()
    );
    direct.close().await;

    // A restart: a new server over the same database loads the same queue.
    st.store.close().await;
    drop(r);
    let st2 = state(dir.path(), &clock).await;
    st2.queue.ensure_loaded(st2.store.as_ref()).await.unwrap();
    assert_eq!(snapshot(&st2), in_memory);
    // And the restarted server schedules from it.
    tick(&st2).await.unwrap();
    let still: Vec<String> = st2
        .store
        .jobs_in_states(&[JobState::Queued])
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    let mut mem: Vec<String> = snapshot(&st2).into_iter().map(|j| j.1).collect();
    mem.sort();
    let mut still = still;
    still.sort();
    assert_eq!(mem, still);
}
