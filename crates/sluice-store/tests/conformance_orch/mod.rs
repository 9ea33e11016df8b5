//! Conformance checks of the orchestration part of the store (schedules, retries, dead-letter
//! queue, queue TTL, requeue, purge). Included by `conformance.rs`, whose `conformance!` macro
//! runs each against SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use sluice_core::job::{Demand, JobState, PodDemand, Role};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::retry::POLICY_KEY;
use sluice_core::schedule::{ConcurrencyPolicy, MissedRunPolicy, NewSchedule};
use sluice_store::{
    Advance, DeadLetter, Fire, JobSet, Preempted, Requeue, RequeuePlace, RetryJob, ScheduledRun,
    SetFilter, Store, StoreError, Transition, open,
};

use JobState::*;

fn demand(mem_mib: u64) -> Demand {
    Demand {
        pods: vec![PodDemand {
            role: Role::Task,
            count: 1,
            cpu_milli: 500,
            mem_mib,
        }],
    }
}

fn new_job(id: &str, ns: &str, level: &str, at: i64, labels: &[(&str, &str)]) -> NewJob {
    NewJob {
        id: id.into(),
        namespace: ns.into(),
        name: "task".into(),
        level: level.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stored: crate::stored_command(&["true"]),
        demand: demand(64),
        created_at_ms: at,
    }
}

pub(crate) fn schedule(ns: &str, name: &str, next: Option<i64>, suspended: bool) -> NewSchedule {
    NewSchedule {
        namespace: ns.into(),
        name: name.into(),
        cron: "0 * * * *".into(),
        time_zone: "Europe/Berlin".into(),
        concurrency: ConcurrencyPolicy::Forbid,
        missed_runs: MissedRunPolicy::Skip,
        catch_up_window_secs: 600,
        suspended,
        level: "high".into(),
        template: json!({"name": name, "kind": {"type": "command", "argv": ["true"]}}),
        source: format!("name: {name}\n"),
        created_at_ms: 1_000,
        next_fire_at_ms: next,
    }
}

/// Runs a queued job to `failed` with exit code 1 at `at`.
async fn fail_run(store: &Arc<dyn Store>, id: &str, at: i64) -> JobRecord {
    for (from, to) in [
        (Queued, Admitted),
        (Admitted, Submitted),
        (Submitted, Running),
    ] {
        let mut t = Transition::new(id, from, to, at, format!("{from} -> {to}"));
        if to == Submitted {
            t = t.with_backend_ref("4242");
        }
        store.transition(&t).await.unwrap();
    }
    store
        .transition(
            &Transition::new(id, Running, Failed, at + 1, "failed: exit code 1").with_exit_code(1),
        )
        .await
        .unwrap()
}

fn retry(id: &str, attempt: u32, at: i64, eligible: i64) -> RetryJob {
    RetryJob {
        id: id.into(),
        attempt,
        at_ms: at,
        eligible_at_ms: eligible,
        message: format!("retry after attempt {attempt}"),
        stored: None,
        demand: None,
    }
}

fn dead(id: &str, attempt: u32, at: i64) -> DeadLetter {
    DeadLetter {
        id: id.into(),
        attempt,
        at_ms: at,
        failure_class: "application".into(),
        reason: "attempt limit reached".into(),
    }
}

pub async fn schedules_crud(store: Arc<dyn Store>) {
    let a = store
        .create_schedule(&schedule("etl", "nightly", Some(5_000), false))
        .await
        .unwrap();
    assert_eq!(a.namespace, "etl");
    assert_eq!(a.concurrency, ConcurrencyPolicy::Forbid);
    assert_eq!(a.missed_runs, MissedRunPolicy::Skip);
    assert_eq!(a.catch_up_window_secs, 600);
    assert_eq!(a.time_zone, "Europe/Berlin");
    assert_eq!(a.updated_at_ms, 1_000);
    assert_eq!(a.next_fire_at_ms, Some(5_000));
    assert_eq!(a.last_fire_at_ms, None);
    assert_eq!(a.template["name"], "nightly");
    assert!(!a.suspended);
    assert_eq!(
        store.get_schedule("etl", "nightly").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.get_schedule("etl", "other").await.unwrap(), None);
    // Same name, other namespace: fine. Same namespace and name: refused.
    store
        .create_schedule(&schedule("analytics", "nightly", Some(3_000), false))
        .await
        .unwrap();
    store
        .create_schedule(&schedule("etl", "hourly", None, true))
        .await
        .unwrap();
    match store
        .create_schedule(&schedule("etl", "nightly", None, false))
        .await
    {
        Err(e @ StoreError::DuplicateSchedule { .. }) => {
            assert!(e.to_string().contains("etl/nightly"), "{e}")
        }
        other => panic!("expected DuplicateSchedule, got {other:?}"),
    }
    let names = |v: Vec<sluice_core::schedule::ScheduleRecord>| -> Vec<String> {
        v.into_iter()
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect()
    };
    assert_eq!(
        names(store.list_schedules(None).await.unwrap()),
        ["analytics/nightly", "etl/hourly", "etl/nightly"]
    );
    assert_eq!(
        names(store.list_schedules(Some("etl")).await.unwrap()),
        ["etl/hourly", "etl/nightly"]
    );
    // Due: not suspended and next fire time reached, earliest first.
    assert_eq!(
        names(store.due_schedules(2_999).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        names(store.due_schedules(5_000).await.unwrap()),
        ["analytics/nightly", "etl/nightly"]
    );
    // Suspend and resume.
    let s = store
        .set_schedule_suspended("etl", "nightly", true, None, 6_000, "suspended")
        .await
        .unwrap();
    assert!(s.suspended);
    assert_eq!(s.next_fire_at_ms, None);
    assert_eq!(s.updated_at_ms, 6_000);
    assert_eq!(s.last_message.as_deref(), Some("suspended"));
    assert_eq!(
        names(store.due_schedules(10_000).await.unwrap()),
        ["analytics/nightly"]
    );
    let s = store
        .set_schedule_suspended("etl", "nightly", false, Some(9_000), 7_000, "resumed")
        .await
        .unwrap();
    assert!(!s.suspended);
    assert_eq!(s.next_fire_at_ms, Some(9_000));
    assert!(matches!(
        store
            .set_schedule_suspended("etl", "ghost", true, None, 1, "x")
            .await,
        Err(StoreError::NoSchedule { .. })
    ));
    // Delete.
    assert!(store.delete_schedule("etl", "hourly").await.unwrap());
    assert!(!store.delete_schedule("etl", "hourly").await.unwrap());
    assert_eq!(
        names(store.list_schedules(Some("etl")).await.unwrap()),
        ["etl/nightly"]
    );
}

pub async fn fire_schedule_compare_and_set(store: Arc<dyn Store>) {
    store
        .create_schedule(&schedule("etl", "nightly", Some(5_000), false))
        .await
        .unwrap();
    let run = |id: &str, at: i64, for_ms: Option<i64>| ScheduledRun {
        job: new_job(id, "etl", "high", at, &[("sluice.io/schedule", "nightly")]),
        scheduled_for_ms: for_ms,
    };
    let fire = |advance: Option<Advance>, run: Option<ScheduledRun>, at: i64| Fire {
        namespace: "etl".into(),
        name: "nightly".into(),
        at_ms: at,
        advance,
        run,
        message: format!("check at {at}"),
    };
    // A due fire: next fire time moves, the run is inserted and linked.
    let adv = |e: Option<i64>, n: Option<i64>| {
        Some(Advance {
            expected_next_fire_at_ms: e,
            next_fire_at_ms: n,
        })
    };
    let rec = store
        .fire_schedule(&fire(
            adv(Some(5_000), Some(8_000)),
            Some(run("r1", 5_010, Some(5_000))),
            5_010,
        ))
        .await
        .unwrap()
        .expect("a run");
    assert_eq!(rec.state, Queued);
    assert_eq!(rec.enqueued_at_ms, 5_010);
    assert_eq!(rec.level, "high");
    let orch = store.job_orch("r1").await.unwrap().unwrap();
    assert_eq!(orch.schedule.as_deref(), Some("nightly"));
    assert_eq!(orch.scheduled_for_ms, Some(5_000));
    assert_eq!(orch.retry_round, 1);
    assert_eq!(store.events("r1").await.unwrap().len(), 1);
    let s = store.get_schedule("etl", "nightly").await.unwrap().unwrap();
    assert_eq!(s.next_fire_at_ms, Some(8_000));
    assert_eq!(s.last_fire_at_ms, Some(5_010));
    assert_eq!(s.last_job_id.as_deref(), Some("r1"));
    assert_eq!(s.last_message.as_deref(), Some("check at 5010"));
    // The same fire again (another replica, a retry after a crash): stale, nothing written.
    match store
        .fire_schedule(&fire(
            adv(Some(5_000), Some(8_000)),
            Some(run("r2", 5_020, Some(5_000))),
            5_020,
        ))
        .await
    {
        Err(StoreError::Stale(m)) => assert!(m.contains("etl/nightly"), "{m}"),
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(store.get_job("r2").await.unwrap().is_none());
    // A skipped fire: next moves, no run, the last run stays.
    assert_eq!(
        store
            .fire_schedule(&fire(adv(Some(8_000), Some(9_000)), None, 8_001))
            .await
            .unwrap(),
        None
    );
    let s = store.get_schedule("etl", "nightly").await.unwrap().unwrap();
    assert_eq!(s.next_fire_at_ms, Some(9_000));
    assert_eq!(s.last_job_id.as_deref(), Some("r1"));
    assert_eq!(s.last_message.as_deref(), Some("check at 8001"));
    // A manual trigger: a run, the next fire time untouched (also while suspended).
    store
        .set_schedule_suspended("etl", "nightly", true, None, 8_500, "suspended")
        .await
        .unwrap();
    assert!(matches!(
        store
            .fire_schedule(&fire(adv(None, Some(10_000)), None, 8_600))
            .await,
        Err(StoreError::Stale(_))
    ));
    let rec = store
        .fire_schedule(&fire(None, Some(run("r3", 8_700, None)), 8_700))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.id, "r3");
    let s = store.get_schedule("etl", "nightly").await.unwrap().unwrap();
    assert_eq!(s.next_fire_at_ms, None);
    assert_eq!(s.last_job_id.as_deref(), Some("r3"));
    assert_eq!(
        store
            .job_orch("r3")
            .await
            .unwrap()
            .unwrap()
            .scheduled_for_ms,
        None
    );
    // No such schedule.
    let mut f = fire(None, None, 9_000);
    f.name = "ghost".into();
    assert!(matches!(
        store.fire_schedule(&f).await,
        Err(StoreError::NoSchedule { .. })
    ));
    // A duplicate job id rolls the whole fire back.
    let before = store.get_schedule("etl", "nightly").await.unwrap().unwrap();
    assert!(matches!(
        store
            .fire_schedule(&fire(None, Some(run("r1", 9_100, None)), 9_100))
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(
        store.get_schedule("etl", "nightly").await.unwrap().unwrap(),
        before
    );
    // Runs of the schedule are selectable by it.
    let mut filter = SetFilter::all(JobSet::Queued);
    filter.schedule = Some("nightly".into());
    let got: Vec<String> = store
        .select_jobs(&filter, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job.id)
        .collect();
    assert_eq!(got, ["r1", "r3"]);
    assert_eq!(store.job_orch("missing").await.unwrap(), None);
}

pub async fn retry_then_dead_letter(store: Arc<dyn Store>) {
    store
        .insert_job(&new_job("j", "ns", "normal", 100, &[]))
        .await
        .unwrap();
    assert!(store.unsettled_failures().await.unwrap().is_empty());
    fail_run(&store, "j", 200).await;
    let unsettled = store.unsettled_failures().await.unwrap();
    assert_eq!(unsettled.len(), 1);
    assert_eq!(unsettled[0].attempt, 1);
    // Wrong attempt: stale, nothing written.
    assert!(matches!(
        store.retry_job(&retry("j", 2, 300, 1_300)).await,
        Err(StoreError::Stale(_))
    ));
    assert!(matches!(
        store.retry_job(&retry("nope", 1, 300, 1_300)).await,
        Err(StoreError::NotFound(_))
    ));
    // Retry with more memory.
    let mut r = retry("j", 1, 300, 1_300);
    let raised = crate::stored_doc(json!({
        "name": "task", "namespace": "ns", "command": {"argv": ["true"], "memory": "128m"}
    }));
    r.stored = Some(raised.clone());
    r.demand = Some(demand(128));
    let rec = store.retry_job(&r).await.unwrap();
    assert_eq!(rec.state, Queued);
    assert_eq!(rec.attempt, 2);
    assert_eq!(
        rec.enqueued_at_ms, 1_300,
        "joins its level's tail when eligible"
    );
    assert_eq!(rec.created_at_ms, 100);
    assert_eq!(rec.updated_at_ms, 300);
    assert_eq!(
        (
            rec.started_at_ms,
            rec.finished_at_ms,
            rec.backend_ref.clone(),
            rec.exit_code
        ),
        (None, None, None, None)
    );
    assert_eq!(rec.message.as_deref(), Some("retry after attempt 1"));
    assert_eq!(rec.demand, demand(128));
    assert_eq!(rec.stored, Ok(raised));
    assert_eq!(store.get_job("j").await.unwrap().unwrap(), rec);
    let orch = store.job_orch("j").await.unwrap().unwrap();
    assert_eq!(orch.retry_at_ms, Some(1_300));
    assert_eq!(orch.queued_at_ms, Some(1_300));
    assert_eq!(orch.failure_class, None);
    assert_eq!(orch.attempt_in_round(rec.attempt), 2);
    assert!(store.unsettled_failures().await.unwrap().is_empty());
    let ev = store.events("j").await.unwrap();
    let last = ev.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.at_ms),
        (Some(Failed), Queued, 300)
    );
    // The timeline keeps attempt 1: it ran and failed.
    assert!(
        ev.iter()
            .any(|e| e.to == Failed && e.message.contains("exit code 1"))
    );
    // Attempt 2 fails too and is dead-lettered: still failed, last error kept.
    fail_run(&store, "j", 1_400).await;
    assert!(matches!(
        store.dead_letter(&dead("j", 1, 1_500)).await,
        Err(StoreError::Stale(_))
    ));
    let rec = store.dead_letter(&dead("j", 2, 1_500)).await.unwrap();
    assert_eq!(rec.state, Failed);
    assert_eq!(rec.message.as_deref(), Some("failed: exit code 1"));
    assert_eq!(rec.exit_code, Some(1));
    let orch = store.job_orch("j").await.unwrap().unwrap();
    assert_eq!(orch.dlq_at_ms, Some(1_500));
    assert_eq!(orch.dlq_reason.as_deref(), Some("attempt limit reached"));
    assert_eq!(orch.failure_class.as_deref(), Some("application"));
    let last = store.events("j").await.unwrap().pop().unwrap();
    assert_eq!((last.from, last.to), (Some(Failed), Failed));
    assert!(last.message.contains("dead-lettered"), "{}", last.message);
    assert!(store.unsettled_failures().await.unwrap().is_empty());
    assert_eq!(store.count_dead_letters().await.unwrap(), 1);
    // Settled: neither retried nor dead-lettered again.
    assert!(matches!(
        store.retry_job(&retry("j", 2, 1_600, 1_600)).await,
        Err(StoreError::Stale(_))
    ));
    assert!(matches!(
        store.dead_letter(&dead("j", 2, 1_600)).await,
        Err(StoreError::Stale(_))
    ));
    // A cancelled job is not a failure to handle.
    store
        .insert_job(&new_job("c", "ns", "normal", 100, &[]))
        .await
        .unwrap();
    store
        .transition(&Transition::new("c", Queued, Cancelled, 150, "cancelled"))
        .await
        .unwrap();
    assert!(store.unsettled_failures().await.unwrap().is_empty());
}

pub async fn expire_and_requeue(store: Arc<dyn Store>) {
    for (id, level, at) in [
        ("a", "normal", 100),
        ("b", "normal", 200),
        ("h", "high", 50),
    ] {
        store
            .insert_job(&new_job(id, "ns", level, at, &[]))
            .await
            .unwrap();
    }
    store
        .insert_job(&new_job("x", "ns", "normal", 300, &[]))
        .await
        .unwrap();
    // Expire x: failed, in the DLQ, class expired.
    let rec = store
        .expire_queued("x", 5_000, "expired in queue: waited longer than 1s")
        .await
        .unwrap();
    assert_eq!(rec.state, Failed);
    assert_eq!(rec.finished_at_ms, Some(5_000));
    assert!(
        rec.message
            .as_deref()
            .unwrap()
            .starts_with("expired in queue")
    );
    let orch = store.job_orch("x").await.unwrap().unwrap();
    assert_eq!(orch.failure_class.as_deref(), Some("expired"));
    assert_eq!(orch.dlq_at_ms, Some(5_000));
    assert!(store.unsettled_failures().await.unwrap().is_empty());
    match store.expire_queued("x", 5_001, "again").await {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (Queued, Failed)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        store.expire_queued("nope", 1, "x").await,
        Err(StoreError::NotFound(_))
    ));
    // Requeue a job that is not dead-lettered: refused.
    let req = |id: &str, at: i64, place: RequeuePlace| Requeue {
        id: id.into(),
        at_ms: at,
        place,
        message: "requeued from the dead-letter queue".into(),
    };
    assert!(matches!(
        store
            .requeue_dead_letter(&req("a", 6_000, RequeuePlace::Tail))
            .await,
        Err(StoreError::NotDeadLettered(_))
    ));
    assert!(matches!(
        store
            .requeue_dead_letter(&req("nope", 6_000, RequeuePlace::Tail))
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Front: before every job queued in its namespace and level (not the other level's).
    let rec = store
        .requeue_dead_letter(&req("x", 6_000, RequeuePlace::Front))
        .await
        .unwrap();
    assert_eq!(rec.state, Queued);
    assert_eq!(rec.attempt, 2);
    assert_eq!(rec.enqueued_at_ms, 99);
    assert_eq!(rec.finished_at_ms, None);
    let orch = store.job_orch("x").await.unwrap().unwrap();
    assert_eq!(
        orch.retry_round, 2,
        "a requeue begins a new round of retries"
    );
    assert_eq!(orch.attempt_in_round(rec.attempt), 1);
    assert_eq!(
        orch.queued_at_ms,
        Some(6_000),
        "the queue-TTL clock restarts"
    );
    assert_eq!((orch.dlq_at_ms, orch.failure_class), (None, None));
    let queued: Vec<String> = store
        .jobs_in_states(&[Queued])
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.level == "normal")
        .map(|j| j.id)
        .collect();
    assert_eq!(queued, ["x", "a", "b"]);
    // History kept: created, expired, requeued.
    let ev = store.events("x").await.unwrap();
    let path: Vec<(Option<JobState>, JobState)> = ev.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        path,
        [
            (None, Queued),
            (Some(Queued), Failed),
            (Some(Failed), Queued)
        ]
    );
    // Tail: after everything queued now.
    store.expire_queued("x", 7_000, "expired").await.unwrap();
    let rec = store
        .requeue_dead_letter(&req("x", 8_000, RequeuePlace::Tail))
        .await
        .unwrap();
    assert_eq!((rec.attempt, rec.enqueued_at_ms), (3, 8_000));
    assert_eq!(store.count_dead_letters().await.unwrap(), 0);
}

pub async fn select_and_purge(store: Arc<dyn Store>) {
    // Queued: q1 (etl, team=a), q2 (etl, team=b, high), q3 (web, team=a).
    store
        .insert_job(&new_job("q1", "etl", "normal", 100, &[("team", "a")]))
        .await
        .unwrap();
    store
        .insert_job(&new_job("q2", "etl", "high", 200, &[("team", "b")]))
        .await
        .unwrap();
    store
        .insert_job(&new_job(
            "q3",
            "web",
            "normal",
            300,
            &[("team", "a"), ("tier", "1")],
        ))
        .await
        .unwrap();
    // Dead letters: d1 (etl, team=a, at 1000), d2 (web, team=a, at 2000).
    for (id, ns, at) in [("d1", "etl", 1_000), ("d2", "web", 2_000)] {
        store
            .insert_job(&new_job(id, ns, "normal", 50, &[("team", "a")]))
            .await
            .unwrap();
        store.expire_queued(id, at, "expired").await.unwrap();
    }
    let sel = |f: SetFilter| {
        let store = store.clone();
        async move {
            store
                .select_jobs(&f, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.job.id)
                .collect::<Vec<_>>()
        }
    };
    let q = SetFilter::all(JobSet::Queued);
    let d = SetFilter::all(JobSet::DeadLetters);
    assert!(!q.narrows());
    assert_eq!(sel(q.clone()).await, ["q1", "q2", "q3"]);
    assert_eq!(
        sel(d.clone()).await,
        ["d2", "d1"],
        "newest dead letter first"
    );
    let with = |mut f: SetFilter, change: &dyn Fn(&mut SetFilter)| {
        change(&mut f);
        assert!(f.narrows());
        f
    };
    assert_eq!(
        sel(with(q.clone(), &|f| f.namespace = Some("etl".into()))).await,
        ["q1", "q2"]
    );
    assert_eq!(
        sel(with(q.clone(), &|f| f.level = Some("high".into()))).await,
        ["q2"]
    );
    assert_eq!(
        sel(with(q.clone(), &|f| f.labels = vec![("team".into(), "a".into())])).await,
        ["q1", "q3"]
    );
    assert_eq!(
        sel(with(q.clone(), &|f| {
            f.labels = vec![("team".into(), "a".into()), ("tier".into(), "1".into())]
        }))
        .await,
        ["q3"]
    );
    assert_eq!(
        sel(with(q.clone(), &|f| f.before_ms = Some(250))).await,
        ["q1", "q2"]
    );
    assert_eq!(
        sel(with(q.clone(), &|f| f.ids = vec!["q3".into(), "d1".into()])).await,
        ["q3"],
        "a dead letter is not in the queued set"
    );
    assert_eq!(
        sel(with(d.clone(), &|f| f.before_ms = Some(1_500))).await,
        ["d1"]
    );
    assert_eq!(
        sel(with(d.clone(), &|f| f.namespace = Some("web".into()))).await,
        ["d2"]
    );
    assert_eq!(
        store.select_jobs(&q, 0).await.unwrap().len(),
        1,
        "limit 0 is 1"
    );
    let dl = store.select_jobs(&d, 1).await.unwrap();
    assert_eq!(dl[0].orch.dlq_at_ms, Some(2_000));
    // Delete: only ids still in the set go.
    let deleted = store
        .delete_jobs(
            JobSet::Queued,
            &["q1".into(), "d1".into(), "ghost".into(), "q3".into()],
        )
        .await
        .unwrap();
    let mut deleted_sorted = deleted.clone();
    deleted_sorted.sort();
    assert_eq!(deleted_sorted, ["q1", "q3"]);
    assert!(store.get_job("q1").await.unwrap().is_none());
    assert!(matches!(
        store.events("q1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.get_job("d1").await.unwrap().is_some());
    // Labels went with the job.
    assert_eq!(
        sel(with(q.clone(), &|f| f.labels = vec![("team".into(), "a".into())])).await,
        Vec::<String>::new()
    );
    let page = store
        .list_jobs(
            &sluice_store::JobFilter {
                labels: vec![("team".into(), "a".into())],
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .unwrap();
    let mut left: Vec<String> = page.jobs.into_iter().map(|j| j.id).collect();
    left.sort();
    assert_eq!(left, ["d1", "d2"]);
    assert_eq!(
        store
            .delete_jobs(JobSet::DeadLetters, &["d1".into(), "q2".into()])
            .await
            .unwrap(),
        ["d1"]
    );
    assert_eq!(store.count_dead_letters().await.unwrap(), 1);
    assert!(
        store
            .delete_jobs(JobSet::Queued, &[])
            .await
            .unwrap()
            .is_empty()
    );
    // Many ids at once (chunked statements).
    let many: Vec<String> = (0..1_200).map(|i| format!("m{i:04}")).collect();
    for (i, id) in many.iter().enumerate() {
        store
            .insert_job(&new_job(id, "bulk", "normal", 10_000 + i as i64, &[]))
            .await
            .unwrap();
    }
    let gone = store.delete_jobs(JobSet::Queued, &many).await.unwrap();
    assert_eq!(gone.len(), 1_200);
}

pub async fn orchestration_survives_reopen(store: Arc<dyn Store>, url: String) {
    store
        .create_schedule(&schedule("etl", "nightly", Some(5_000), false))
        .await
        .unwrap();
    store
        .insert_job(&new_job("j", "etl", "normal", 100, &[]))
        .await
        .unwrap();
    fail_run(&store, "j", 200).await;
    store.retry_job(&retry("j", 1, 300, 9_999)).await.unwrap();
    store
        .insert_job(&new_job("d", "etl", "normal", 100, &[]))
        .await
        .unwrap();
    store.expire_queued("d", 400, "expired").await.unwrap();
    store.close().await;
    let store = open(&url).await.unwrap();
    let s = store.get_schedule("etl", "nightly").await.unwrap().unwrap();
    assert_eq!(s.next_fire_at_ms, Some(5_000));
    let j = store.get_job("j").await.unwrap().unwrap();
    assert_eq!((j.state, j.attempt, j.enqueued_at_ms), (Queued, 2, 9_999));
    assert_eq!(
        store.job_orch("j").await.unwrap().unwrap().retry_at_ms,
        Some(9_999)
    );
    assert_eq!(store.count_dead_letters().await.unwrap(), 1);
    let labels: BTreeMap<String, String> = BTreeMap::new();
    assert_eq!(j.labels, labels);
}

// Queue deadlines and preemption.
mod deadline;
pub use deadline::{
    preemption_requeues_without_using_a_retry, queue_deadline_backfill,
    queue_deadline_follows_the_queue, queue_deadline_order_and_limit,
};
