//! Schedules, retries, the dead-letter queue and purge through the server: a real SQLite store,
//! the real local backend (command jobs) and the real router. Schedule times are injected (the
//! `now` of `orchestration::*`): no test waits for a fire time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::app;
use common::call;
use sluice_core::job::JobState;
use sluice_server::AppState;
use sluice_server::orchestration;
use sluice_server::tick::orchestrate;
use sluice_server::tick::tick;
use sluice_server::time::now_ms;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

struct Env {
    state: AppState,
    dir: tempfile::TempDir,
}

async fn state_in(dir: &std::path::Path) -> AppState {
    common::local_state(dir, 4000, 8192, common::commands_allowed()).await
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    Env {
        state: state_in(dir.path()).await,
        dir,
    }
}

fn schedule_doc(name: &str, expr: &str, extra: &str, argv: &str) -> String {
    format!(
        "name: {name}\nschedule: \"{expr}\"\ntimeZone: Europe/Berlin\n{extra}template:\n  command:\n    argv: {argv}\n    cpu: 100m\n    memory: 32m\n"
    )
}

async fn job_state(st: &AppState, id: &str) -> JobState {
    st.store.get_job(id).await.unwrap().unwrap().state
}

/// Ticks (with the real clock) until the job is in `want`, at most 30 s.
async fn tick_until(st: &AppState, id: &str, want: JobState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tick(st).await.unwrap();
        let s = job_state(st, id).await;
        if s == want {
            return;
        }
        assert!(Instant::now() < deadline, "job {id} is {s}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn runs_of(st: &AppState, ns: &str, name: &str) -> Vec<sluice_core::record::JobRecord> {
    let page = st
        .store
        .list_jobs(
            &sluice_store::JobFilter {
                namespace: Some(ns.into()),
                labels: vec![("sluice.io/schedule".into(), name.into())],
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .unwrap();
    let mut jobs = page.jobs;
    jobs.reverse();
    jobs
}

#[tokio::test]
async fn fires_on_time_and_follows_the_missed_run_policy_after_downtime() {
    let e = env().await;
    let st = &e.state;
    // 2025-03-30 00:10 Europe/Berlin (23:10 UTC the day before); the DST change is at 02:00.
    let t0 = 1_743_289_800_000;
    let hourly = |name: &str, policy: &str| {
        schedule_doc(
            name,
            "0 * * * *",
            &format!("missedRunPolicy: {policy}\ncatchUpWindow: 2h\n"),
            "[\"true\"]",
        )
    };
    orchestration::create_schedule(st, &hourly("once", "RunOnce"), t0)
        .await
        .unwrap();
    orchestration::create_schedule(st, &hourly("skip", "Skip"), t0)
        .await
        .unwrap();
    let first = st
        .store
        .get_schedule("default", "once")
        .await
        .unwrap()
        .unwrap()
        .next_fire_at_ms
        .unwrap();
    assert_eq!(first, t0 + 50 * MIN, "01:00 Berlin");
    // Not due yet.
    orchestrate::fire_schedules(st, first - 1).await.unwrap();
    assert!(runs_of(st, "default", "once").await.is_empty());
    // On time: one run each, for 01:00.
    orchestrate::fire_schedules(st, first + 5_000)
        .await
        .unwrap();
    for name in ["once", "skip"] {
        let runs = runs_of(st, "default", name).await;
        assert_eq!(runs.len(), 1, "{name}");
        let orch = st.store.job_orch(&runs[0].id).await.unwrap().unwrap();
        assert_eq!(orch.scheduled_for_ms, Some(first));
        assert_eq!(runs[0].state, JobState::Queued);
    }
    // The same check again starts nothing more (the next fire time moved).
    orchestrate::fire_schedules(st, first + 6_000)
        .await
        .unwrap();
    assert_eq!(runs_of(st, "default", "once").await.len(), 1);
    let s = st
        .store
        .get_schedule("default", "once")
        .await
        .unwrap()
        .unwrap();
    // 02:00 does not exist that night: the next hourly run is 03:00 CEST, one real hour later.
    assert_eq!(s.next_fire_at_ms, Some(first + HOUR));
    // Down for three hours and a bit: 03:00, 04:00 and 05:00 CEST were missed.
    let back = first + 3 * HOUR + 20 * MIN;
    orchestrate::fire_schedules(st, back).await.unwrap();
    let once = runs_of(st, "default", "once").await;
    assert_eq!(once.len(), 2, "RunOnce: one catch-up run");
    let orch = st.store.job_orch(&once[1].id).await.unwrap().unwrap();
    assert_eq!(
        orch.scheduled_for_ms,
        Some(first + 3 * HOUR),
        "for the latest"
    );
    let s = st
        .store
        .get_schedule("default", "once")
        .await
        .unwrap()
        .unwrap();
    let msg = s.last_message.unwrap();
    assert!(
        msg.contains("catch-up") && msg.contains("skipped 2"),
        "{msg}"
    );
    assert_eq!(s.next_fire_at_ms, Some(first + 4 * HOUR));
    assert_eq!(runs_of(st, "default", "skip").await.len(), 1, "Skip: none");
    let s = st
        .store
        .get_schedule("default", "skip")
        .await
        .unwrap()
        .unwrap();
    let msg = s.last_message.unwrap();
    assert!(
        msg.contains("skipped 3") && msg.contains("missedRunPolicy Skip"),
        "{msg}"
    );
    assert_eq!(s.next_fire_at_ms, Some(first + 4 * HOUR));
    // A restart (new state on the same store) keeps the next fire time.
    let again = state_in(e.dir.path()).await;
    let s = again
        .store
        .get_schedule("default", "once")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.next_fire_at_ms, Some(first + 4 * HOUR));
}

#[tokio::test]
async fn forbid_skips_and_replace_cancels_a_still_running_run() {
    let e = env().await;
    let st = &e.state;
    // Created 90 minutes ago with @every 1h: the first fire time is 30 minutes ago, the next in
    // 30 minutes, so that the real-clock ticks below fire nothing themselves.
    let created = now_ms() - 90 * MIN;
    for (name, policy) in [("forbid", "Forbid"), ("replace", "Replace")] {
        orchestration::create_schedule(
            st,
            &schedule_doc(
                name,
                "@every 1h",
                &format!("concurrencyPolicy: {policy}\n"),
                "[\"sleep\", \"30\"]",
            ),
            created,
        )
        .await
        .unwrap();
    }
    let first = created + HOUR;
    orchestrate::fire_schedules(st, first + 1_000)
        .await
        .unwrap();
    let f1 = runs_of(st, "default", "forbid").await.remove(0);
    let r1 = runs_of(st, "default", "replace").await.remove(0);
    tick_until(st, &f1.id, JobState::Running).await;
    tick_until(st, &r1.id, JobState::Running).await;
    // The next fire time (injected: 30 minutes from now) comes while both still run.
    orchestrate::fire_schedules(st, first + HOUR + 1_000)
        .await
        .unwrap();
    // Forbid: no new run; the running one goes on and its timeline says why.
    let forbid = runs_of(st, "default", "forbid").await;
    assert_eq!(forbid.len(), 1);
    assert_eq!(job_state(st, &f1.id).await, JobState::Running);
    let s = st
        .store
        .get_schedule("default", "forbid")
        .await
        .unwrap()
        .unwrap();
    let msg = s.last_message.unwrap();
    assert!(msg.contains("Forbid") && msg.contains(&f1.id), "{msg}");
    assert_eq!(s.next_fire_at_ms, Some(first + 2 * HOUR));
    let ev = st.store.events(&f1.id).await.unwrap();
    assert!(
        ev.iter().any(|e| e.message.contains("still active")),
        "{ev:?}"
    );
    // Replace: the running run is cancelled (its process stopped), a new run starts.
    let replace = runs_of(st, "default", "replace").await;
    assert_eq!(replace.len(), 2);
    let r1_now = st.store.get_job(&r1.id).await.unwrap().unwrap();
    assert_eq!(r1_now.state, JobState::Cancelled);
    assert!(
        r1_now.message.as_deref().unwrap().contains("Replace"),
        "{r1_now:?}"
    );
    let r1_pid: i32 = r1_now
        .backend_ref
        .as_deref()
        .and_then(|p| p.parse().ok())
        .expect("pid");
    assert!(
        nix_gone(r1_pid),
        "the replaced run's process {r1_pid} is still there"
    );
    assert_eq!(replace[1].state, JobState::Queued);
    // Stop the Forbid run.
    let router = app(st.clone());
    let (status, _) = call(&router, "POST", &format!("/v1/jobs/{}/cancel", f1.id), "").await;
    assert_eq!(status, StatusCode::OK);
    // Both stopped runs, the replaced one and the user's cancel, are recorded as cancelled
    // (off the tick and the request, shortly after), each with what its process used.
    let runs = usage_when(st, "usage of the cancelled runs", |runs| {
        let ids: Vec<&str> = runs.iter().map(|r| r.job_id.as_str()).collect();
        ids.contains(&r1.id.as_str()) && ids.contains(&f1.id.as_str())
    })
    .await;
    for r in &runs {
        assert_eq!(r.outcome, sluice_core::cost::Outcome::Cancelled, "{r:?}");
        assert!(r.ended_at_ms > r.started_at_ms, "{r:?}");
        assert!(
            r.measured.as_ref().is_some_and(|m| m.process.is_some()),
            "{r:?}"
        );
    }
    assert_eq!(runs.len(), 2, "{runs:?}");
}

/// The usage records in the store once `done` holds of them (polled, at most 30 s).
async fn usage_when(
    st: &AppState,
    what: &str,
    done: impl Fn(&[sluice_core::cost::UsageRecord]) -> bool,
) -> Vec<sluice_core::cost::UsageRecord> {
    let all = sluice_store::UsageFilter {
        from_ms: 0,
        to_ms: i64::MAX,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = st.store.usage(&all, 100).await.unwrap();
        if done(&runs) {
            return runs;
        }
        assert!(Instant::now() < deadline, "{what}: {runs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn nix_gone(pid: i32) -> bool {
    // No such process, or only a zombie left.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty() || stat.contains(") Z ")
}

#[tokio::test]
async fn retry_waits_for_its_backoff_and_survives_a_restart() {
    let e = env().await;
    let st = &e.state;
    let router = app(st.clone());
    let (status, j) = call(
        &router,
        "POST",
        "/v1/jobs",
        "name: flaky\nretry: {maxAttempts: 3, backoff: {initial: 10m}, jitter: 0}\ncommand: {argv: [sh, -c, \"exit 3\"], cpu: 100m, memory: 32m}\n",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{j}");
    let id = j["id"].as_str().unwrap().to_string();
    // Attempt 1 runs and fails; the same tick sends it back to its queue for attempt 2.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rec = loop {
        tick(st).await.unwrap();
        let rec = st.store.get_job(&id).await.unwrap().unwrap();
        if rec.attempt == 2 {
            break rec;
        }
        assert!(Instant::now() < deadline, "{rec:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rec.state, JobState::Queued);
    let wait = rec.enqueued_at_ms - now_ms();
    assert!(wait > 9 * MIN, "eligible in 10 minutes, not {wait} ms");
    let msg = rec.message.clone().unwrap();
    assert!(
        msg.contains("attempt 1 of 3 failed (application") && msg.contains("exit code 3"),
        "{msg}"
    );
    // Ticks do not admit it before its time.
    for _ in 0..3 {
        tick(st).await.unwrap();
    }
    assert_eq!(job_state(st, &id).await, JobState::Queued);
    let (_, v) = call(&router, "GET", &format!("/v1/jobs/{id}"), "").await;
    let o = &v["orchestration"];
    assert_eq!(o["attempt_in_round"], 2);
    assert_eq!(o["max_attempts"], 3);
    assert!(o["retry_at"].is_string(), "{v}");
    // The timeline keeps attempt 1.
    let tl: Vec<String> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} -> {}", e["from"], e["to"]))
        .collect();
    assert!(
        tl.contains(&"\"running\" -> \"failed\"".to_string()),
        "{tl:?}"
    );
    assert!(
        tl.contains(&"\"failed\" -> \"queued\"".to_string()),
        "{tl:?}"
    );
    // A restart keeps the absolute retry time.
    let again = state_in(e.dir.path()).await;
    tick(&again).await.unwrap();
    let after = again.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (after.state, after.attempt, after.enqueued_at_ms),
        (JobState::Queued, 2, rec.enqueued_at_ms)
    );
}

#[tokio::test]
async fn oom_in_the_log_is_retried_with_more_memory_then_dead_lettered() {
    let e = env().await;
    let st = &e.state;
    let router = app(st.clone());
    let (status, j) = call(
        &router,
        "POST",
        "/v1/jobs",
        "name: heap\nretry: {maxAttempts: 2, backoff: {initial: 1ms}, oomMemoryFactor: 2, oomMemoryCap: 100m, retryOn: [oom]}\ncommand: {argv: [sh, -c, \"echo run $SLUICE_ATTEMPT; echo 'Exception in thread main java.lang.OutOfMemoryError: Java heap space'; exit 1\"], cpu: 100m, memory: 64m}\n",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{j}");
    let id = j["id"].as_str().unwrap().to_string();
    assert_eq!(j["demand"]["total_memory_mib"], 64);
    // Two attempts; then the DLQ.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tick(st).await.unwrap();
        if st.store.count_dead_letters().await.unwrap() == 1 {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rec = st.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.attempt), (JobState::Failed, 2));
    assert_eq!(rec.demand.total().mem_mib, 100, "raised x2, capped at 100m");
    let ev = st.store.events(&id).await.unwrap();
    let retry = ev
        .iter()
        .find(|e| e.message.starts_with("retry:"))
        .expect("a retry event");
    assert!(
        retry.message.contains("(oom:") && retry.message.contains("64 MiB -> 100 MiB"),
        "{}",
        retry.message
    );
    // Each attempt keeps its own log: the current one by default, an earlier one on request.
    for (query, want) in [("", 2), ("?attempt=2", 2), ("?attempt=1", 1)] {
        let (status, l) = call(&router, "GET", &format!("/v1/jobs/{id}/logs{query}"), "").await;
        assert_eq!(status, StatusCode::OK, "{l}");
        assert_eq!(l["attempt"], want, "{l}");
        assert!(l["complete"].as_bool().unwrap(), "{l}");
        assert!(
            l["data"]
                .as_str()
                .unwrap()
                .starts_with(&format!("run {want}\n")),
            "{l}"
        );
    }
    for bad in [0, 3] {
        let (status, l) = call(
            &router,
            "GET",
            &format!("/v1/jobs/{id}/logs?attempt={bad}"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{l}");
        assert!(
            l["error"].as_str().unwrap().contains(&format!(
                "attempt = {bad}: job {id} has had attempts 1 to 2"
            )),
            "{l}"
        );
    }
    let (status, d) = call(&router, "GET", &format!("/v1/dlq/{id}"), "").await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["failure_class"], "oom");
    assert!(
        d["reason"].as_str().unwrap().contains("2 of 2"),
        "{}",
        d["reason"]
    );
}

#[tokio::test]
async fn queue_ttl_dead_letters_and_requeue_brings_it_back() {
    let e = env().await;
    let st = &e.state;
    let router = app(st.clone());
    let (_, j) = call(
        &router,
        "POST",
        "/v1/jobs",
        "name: stale\nmaxQueueWait: 30s\nlabels: {team: a}\ncommand: {argv: [\"true\"], cpu: 100m, memory: 32m}\n",
    )
    .await;
    let id = j["id"].as_str().unwrap().to_string();
    let created = st.store.get_job(&id).await.unwrap().unwrap().created_at_ms;
    orchestrate::expire_queued(st, created + 29_000)
        .await
        .unwrap();
    assert_eq!(job_state(st, &id).await, JobState::Queued);
    orchestrate::expire_queued(st, created + 31_000)
        .await
        .unwrap();
    let rec = st.store.get_job(&id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Failed);
    assert!(
        rec.message
            .as_deref()
            .unwrap()
            .starts_with("expired in queue"),
        "{rec:?}"
    );
    let (_, list) = call(&router, "GET", "/v1/dlq?label=team=a", "").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["failure_class"], "expired");
    // Requeue with no filter: refused; by id: back in its queue, history kept.
    let (status, err) = call(&router, "POST", "/v1/dlq/requeue", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("filter"), "{err}");
    let (status, r) = call(&router, "POST", &format!("/v1/dlq/requeue?id={id}"), "").await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["requeued"][0]["attempt"], 2);
    assert_eq!(r["requeued"][0]["state"], "queued");
    let (status, _) = call(&router, "POST", &format!("/v1/dlq/requeue?id={id}"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer dead-lettered");
    // The TTL clock restarted: it does not expire again at once.
    orchestrate::expire_queued(st, now_ms() + 1_000)
        .await
        .unwrap();
    assert_eq!(job_state(st, &id).await, JobState::Queued);
    tick_until(st, &id, JobState::Succeeded).await;
    let (_, v) = call(&router, "GET", &format!("/v1/jobs/{id}"), "").await;
    let states: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"queued"));
    assert!(states.contains(&"failed"), "{states:?}");
    assert_eq!(states.last(), Some(&"succeeded"));
}

#[tokio::test]
async fn schedule_api() {
    let e = env().await;
    let router = app(e.state.clone());
    let doc = schedule_doc(
        "nightly",
        "30 2 * * *",
        "concurrencyPolicy: Forbid\n",
        "[\"true\"]",
    );
    let (status, s) = call(&router, "POST", "/v1/schedules", &doc).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(s["concurrency_policy"], "Forbid");
    let (status, _) = call(&router, "POST", "/v1/schedules", &doc).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Bad documents name the field and the value.
    for (bad, want) in [
        (doc.replace("30 2 * * *", "30 25 * * *"), "schedule"),
        (doc.replace("Europe/Berlin", "Mars/Base"), "Mars/Base"),
        (
            doc.replace("memory: 32m", "memory: 12qb"),
            "template.command.memory",
        ),
        (doc.replace("cpu: 100m", "cpu: \"64\""), "can never run"),
    ] {
        let (status, err) = call(
            &router,
            "POST",
            "/v1/schedules",
            &bad.replace("nightly", "other"),
        )
        .await;
        assert!(status.is_client_error(), "{bad}: {status}");
        assert!(err["error"].as_str().unwrap().contains(want), "{err}");
    }
    let (status, g) = call(&router, "GET", "/v1/schedules/default/nightly", "").await;
    assert_eq!(status, StatusCode::OK);
    let next: Vec<&str> = g["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(next.len(), 5, "{g}");
    assert!(
        next.iter()
            .all(|t| t.contains("T02:30:00+0") || t.contains("T03:00:00+02:00")),
        "{next:?}"
    );
    let (_, s) = call(&router, "POST", "/v1/schedules/default/nightly/suspend", "").await;
    assert_eq!(s["suspended"], true);
    assert!(s["next_runs"].as_array().unwrap().is_empty());
    let (status, j) = call(&router, "POST", "/v1/schedules/default/nightly/trigger", "").await;
    assert_eq!(status, StatusCode::CREATED, "{j}");
    assert_eq!(j["labels"]["sluice.io/schedule"], "nightly");
    let (_, v) = call(
        &router,
        "GET",
        &format!("/v1/jobs/{}", j["id"].as_str().unwrap()),
        "",
    )
    .await;
    assert_eq!(v["orchestration"]["schedule"], "nightly");
    let (_, s) = call(&router, "POST", "/v1/schedules/default/nightly/resume", "").await;
    assert_eq!(s["suspended"], false);
    assert_eq!(s["next_runs"].as_array().unwrap().len(), 5);
    let (_, list) = call(&router, "GET", "/v1/schedules?namespace=default", "").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // An unchanged ScheduledSparkApplication is a schedule too.
    let ssa = std::fs::read_to_string(format!(
        "{}/../../examples/schedules/spark-pi-scheduled.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (status, s) = call(&router, "POST", "/v1/schedules", &ssa).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(s["suspended"], true);
    assert_eq!(
        s["template"]["kind"]["application"]["kind"],
        "SparkApplication"
    );
    let (status, _) = call(&router, "DELETE", "/v1/schedules/default/nightly", "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&router, "GET", "/v1/schedules/default/nightly", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&router, "POST", "/v1/schedules/default/nightly/trigger", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The OpenAPI document has the new paths.
    let (_, doc) = call(&router, "GET", "/openapi.json", "").await;
    for p in ["/v1/schedules", "/v1/dlq", "/v1/queues/purge", "/v1/jobs"] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing");
    }
}

#[tokio::test]
async fn purge_needs_a_filter_and_removes_exactly_what_it_selects() {
    let e = env().await;
    let st = &e.state;
    let router = app(st.clone());
    let mut ids = Vec::new();
    for (name, team) in [("p1", "a"), ("p2", "b"), ("p3", "a")] {
        let (_, j) = call(
            &router,
            "POST",
            "/v1/jobs",
            &format!("name: {name}\nlabels: {{team: {team}}}\ncommand: {{argv: [\"true\"]}}\n"),
        )
        .await;
        ids.push(j["id"].as_str().unwrap().to_string());
    }
    let (status, err) = call(&router, "POST", "/v1/queues/purge", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"].as_str().unwrap().contains("explicit filter"),
        "{err}"
    );
    let (_, dry) = call(
        &router,
        "POST",
        "/v1/queues/purge?label=team=a&dry_run=true",
        "",
    )
    .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["selected"].as_array().unwrap().len(), 2);
    assert!(dry["purged"].as_array().unwrap().is_empty());
    assert_eq!(
        st.store
            .jobs_in_states(&[JobState::Queued])
            .await
            .unwrap()
            .len(),
        3
    );
    let (_, done) = call(&router, "POST", "/v1/queues/purge?label=team=a", "").await;
    let mut purged: Vec<String> = done["purged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    purged.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(purged, want);
    let left: Vec<String> = st
        .store
        .jobs_in_states(&[JobState::Queued])
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [ids[1].clone()]);
    let (status, _) = call(&router, "POST", "/v1/dlq/purge", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&router, "POST", "/v1/queues/purge?older_than=soon", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Runs past their `maxRuntime` are killed (SIGKILL after the grace period when they ignore
/// SIGTERM) and their jobs fail with "timeout", class `timeout`, several in the same tick.
#[tokio::test]
async fn runs_past_max_runtime_are_killed_and_fail_with_timeout() {
    let e = env().await;
    let st = &e.state;
    let router = app(st.clone());
    let mut ids = Vec::new();
    for name in ["slow-a", "slow-b"] {
        let (status, j) = call(
            &router,
            "POST",
            "/v1/jobs",
            &format!(
                "name: {name}\nmaxRuntime: 1s\ncommand: {{argv: [sh, -c, \"trap '' TERM; echo started; sleep 60\"], cpu: 100m, memory: 32m}}\n"
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{j}");
        ids.push(j["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        tick_until(st, id, JobState::Running).await;
    }
    let pids: Vec<i32> = futures::future::join_all(ids.iter().map(|id| st.store.get_job(id)))
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().backend_ref.unwrap().parse().unwrap())
        .collect();
    // Past the limit, one tick kills both and fails them.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while job_state(st, &ids[0]).await != JobState::Failed
        || job_state(st, &ids[1]).await != JobState::Failed
    {
        tick(st).await.unwrap();
        assert!(Instant::now() < deadline, "not failed: {ids:?}");
    }
    eprintln!("both timed out {:?} after their start", started.elapsed());
    for (id, pid) in ids.iter().zip(pids) {
        let rec = st.store.get_job(id).await.unwrap().unwrap();
        assert_eq!(
            rec.message.as_deref(),
            Some("timeout: ran longer than maxRuntime (1 s); killed"),
            "{rec:?}"
        );
        let o = st.store.job_orch(id).await.unwrap().unwrap();
        assert_eq!(o.failure_class.as_deref(), Some("timeout"), "{o:?}");
        // The run's process (which ignored SIGTERM) is gone.
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of {id} still exists"
        );
    }
    // What each stopped run held and used is recorded too (off the tick, shortly after).
    let runs = usage_when(st, "usage of the stopped runs", |runs| runs.len() == 2).await;
    for r in &runs {
        assert!(ids.contains(&r.job_id), "{r:?}");
        assert_eq!(r.outcome, sluice_core::cost::Outcome::Failed, "{r:?}");
        assert!(r.ended_at_ms > r.started_at_ms, "{r:?}");
    }
}
