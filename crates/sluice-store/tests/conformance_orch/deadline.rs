//! Conformance checks of queue deadlines (migration 0005: Store::queued_past_deadline and
//! JobOrch::queue_deadline_ms) and of preemption's requeue. Part of the orchestration checks
//! (`mod.rs`).

use super::*;

/// `j` with a `maxQueueWait` of `secs` in its stored policy, as the API writes it.
fn with_ttl(mut j: NewJob, secs: u64) -> NewJob {
    j.stored.policy.max_queue_wait_secs = Some(secs);
    j
}

async fn deadline(store: &Arc<dyn Store>, id: &str) -> Option<i64> {
    store.job_orch(id).await.unwrap().unwrap().queue_deadline_ms
}

async fn past_deadline(store: &Arc<dyn Store>, now_ms: i64, limit: u32) -> Vec<String> {
    store
        .queued_past_deadline(now_ms, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job.id)
        .collect()
}

/// The deadline is set when a job enters its queue (insert, back to queued, retry, requeue) and
/// cleared when it leaves; only queued jobs past it are selected.
pub async fn queue_deadline_follows_the_queue(store: Arc<dyn Store>) {
    store
        .insert_job(&with_ttl(new_job("ttl", "ns", "normal", 1_000, &[]), 30))
        .await
        .unwrap();
    store
        .insert_job(&new_job("plain", "ns", "normal", 1_000, &[]))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "ttl").await, Some(31_000));
    assert_eq!(deadline(&store, "plain").await, None, "no maxQueueWait");
    // Expired once the time is past the deadline (waited longer than maxQueueWait).
    assert!(past_deadline(&store, 31_000, 10).await.is_empty());
    assert_eq!(past_deadline(&store, 31_001, 10).await, ["ttl"]);
    let got = store.queued_past_deadline(99_000, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].orch.queue_deadline_ms, Some(31_000));
    assert_eq!(got[0].job.policy().unwrap().max_queue_wait_secs, Some(30));

    // Admitted: out of the queue, not selected; back in it: the same deadline (the clock did
    // not restart).
    store
        .transition(&Transition::new("ttl", Queued, Admitted, 2_000, "admitted"))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "ttl").await, None);
    assert!(past_deadline(&store, 99_000, 10).await.is_empty());
    store
        .transition(&Transition::new("ttl", Admitted, Queued, 3_000, "no room"))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "ttl").await, Some(31_000));
    assert_eq!(past_deadline(&store, 99_000, 10).await, ["ttl"]);

    // Cancelled while queued: gone from the selection.
    store
        .insert_job(&with_ttl(new_job("gone", "ns", "normal", 1_000, &[]), 1))
        .await
        .unwrap();
    assert_eq!(past_deadline(&store, 99_000, 10).await, ["gone", "ttl"]);
    store
        .transition(&Transition::new(
            "gone",
            Queued,
            Cancelled,
            4_000,
            "cancelled",
        ))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "gone").await, None);
    assert_eq!(past_deadline(&store, 99_000, 10).await, ["ttl"]);

    // Expired: in the DLQ, no deadline. Requeued at 50 s: the clock restarts.
    store.expire_queued("ttl", 40_000, "expired").await.unwrap();
    assert_eq!(deadline(&store, "ttl").await, None);
    assert!(past_deadline(&store, 99_000, 10).await.is_empty());
    let req = |place| Requeue {
        id: "ttl".into(),
        at_ms: 50_000,
        place,
        message: "requeued".into(),
    };
    store
        .requeue_dead_letter(&req(RequeuePlace::Front))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "ttl").await, Some(80_000));
    assert!(past_deadline(&store, 80_000, 10).await.is_empty());
    assert_eq!(past_deadline(&store, 80_001, 10).await, ["ttl"]);

    // Run and failed: no deadline; retried, eligible at 100 s: the clock starts then.
    fail_run(&store, "ttl", 60_000).await;
    assert_eq!(deadline(&store, "ttl").await, None);
    let rec = store
        .retry_job(&retry("ttl", 2, 60_100, 100_000))
        .await
        .unwrap();
    assert_eq!(rec.state, Queued);
    assert_eq!(deadline(&store, "ttl").await, Some(130_000));
    assert!(past_deadline(&store, 130_000, 10).await.is_empty());
    assert_eq!(past_deadline(&store, 130_001, 10).await, ["ttl"]);
    // A retry with a new spec takes that spec's TTL (here 10 s), or none.
    fail_run(&store, "ttl", 140_000).await;
    let mut r = retry("ttl", 3, 140_100, 150_000);
    r.stored = Some(with_ttl(new_job("ttl", "ns", "normal", 0, &[]), 10).stored);
    r.demand = Some(demand(128));
    store.retry_job(&r).await.unwrap();
    assert_eq!(deadline(&store, "ttl").await, Some(160_000));
    fail_run(&store, "ttl", 170_000).await;
    let mut r = retry("ttl", 4, 170_100, 180_000);
    r.stored = Some(new_job("ttl", "ns", "normal", 0, &[]).stored);
    r.demand = Some(demand(256));
    store.retry_job(&r).await.unwrap();
    assert_eq!(deadline(&store, "ttl").await, None);
    assert!(past_deadline(&store, i64::MAX, 10).await.is_empty());
    // A job without a TTL never has a deadline, through retries and requeues.
    fail_run(&store, "plain", 200_000).await;
    store
        .retry_job(&retry("plain", 1, 200_100, 210_000))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "plain").await, None);
    assert!(past_deadline(&store, i64::MAX, 10).await.is_empty());
}

/// Earliest deadline first, then id; at most `limit` (0 taken as 1); a huge `maxQueueWait` is
/// capped rather than overflowing; scheduled runs get a deadline too.
pub async fn queue_deadline_order_and_limit(store: Arc<dyn Store>) {
    for (id, at, secs) in [
        ("late", 1_000, 5),  // deadline 6 000
        ("tie-b", 3_000, 1), // 4 000
        ("tie-a", 2_000, 2), // 4 000
        ("early", 1_500, 1), // 2 500
        ("never", 0, u64::MAX),
    ] {
        store
            .insert_job(&with_ttl(new_job(id, "ns", "normal", at, &[]), secs))
            .await
            .unwrap();
    }
    store
        .insert_job(&new_job("none", "ns", "normal", 0, &[]))
        .await
        .unwrap();
    assert_eq!(
        past_deadline(&store, 10_000, 10).await,
        ["early", "tie-a", "tie-b", "late"]
    );
    assert_eq!(past_deadline(&store, 10_000, 2).await, ["early", "tie-a"]);
    assert_eq!(past_deadline(&store, 10_000, 0).await, ["early"]);
    assert_eq!(
        past_deadline(&store, 4_001, 10).await,
        ["early", "tie-a", "tie-b"]
    );
    assert_eq!(past_deadline(&store, 4_000, 10).await, ["early"]);
    assert_eq!(deadline(&store, "never").await, Some(i64::MAX / 4));
    let never = "never".to_string();
    assert!(
        !past_deadline(&store, i64::MAX / 4, 10)
            .await
            .contains(&never)
    );
    assert!(
        past_deadline(&store, i64::MAX / 4 + 1, 10)
            .await
            .contains(&never)
    );
    // A run of a schedule is inserted like any job.
    store
        .create_schedule(&schedule("ns", "hourly", Some(5_000), false))
        .await
        .unwrap();
    store
        .fire_schedule(&Fire {
            namespace: "ns".into(),
            name: "hourly".into(),
            at_ms: 5_000,
            advance: None,
            run: Some(ScheduledRun {
                job: with_ttl(new_job("run", "ns", "normal", 5_000, &[]), 1),
                scheduled_for_ms: None,
            }),
            message: "manual".into(),
        })
        .await
        .unwrap();
    assert_eq!(deadline(&store, "run").await, Some(6_000));
    assert_eq!(
        past_deadline(&store, 10_000, 10).await,
        ["early", "tie-a", "tie-b", "late", "run"]
    );
}

/// Migration 0005 fills the deadline of jobs stored before it from their spec's policy: clear
/// the columns behind the store's back, run the migration's backfill again, and get the same
/// deadlines (and TTLs, which a later requeue uses).
pub async fn queue_deadline_backfill(store: Arc<dyn Store>, url: String) {
    let ttl = |id: &str, at: i64, secs: u64| with_ttl(new_job(id, "ns", "normal", at, &[]), secs);
    store.insert_job(&ttl("queued", 1_000, 30)).await.unwrap();
    store
        .insert_job(&ttl("huge", 1_000, u64::MAX))
        .await
        .unwrap();
    // Rows as an older sluice wrote them, whose JSON the backfill reads: one that mentions the
    // key, but not in a policy (no TTL), one with only a retry policy.
    let raw_spec = |id: &'static str, key: &'static str, value: serde_json::Value| {
        let url = url.clone();
        let mut spec = new_job(id, "ns", "normal", 1_000, &[])
            .stored
            .encode()
            .unwrap();
        spec[key] = value;
        async move {
            let text = spec.to_string().replace('\'', "''");
            crate::raw_sql(
                &url,
                &format!("UPDATE jobs SET spec = '{text}' WHERE id = '{id}'"),
            )
            .await;
        }
    };
    store
        .insert_job(&new_job("none", "ns", "normal", 1_000, &[]))
        .await
        .unwrap();
    raw_spec("none", "note", json!({"maxQueueWaitSecs": 5})).await;
    store
        .insert_job(&new_job("retry-only", "ns", "normal", 1_000, &[]))
        .await
        .unwrap();
    raw_spec(
        "retry-only",
        POLICY_KEY,
        json!({"retry": {"maxAttempts": 2}}),
    )
    .await;
    store.insert_job(&ttl("admitted", 1_000, 30)).await.unwrap();
    store
        .transition(&Transition::new(
            "admitted", Queued, Admitted, 2_000, "admitted",
        ))
        .await
        .unwrap();
    store.insert_job(&ttl("retried", 1_000, 20)).await.unwrap();
    fail_run(&store, "retried", 2_000).await;
    store
        .retry_job(&retry("retried", 1, 2_100, 9_000))
        .await
        .unwrap();
    store.insert_job(&ttl("dead", 1_000, 7)).await.unwrap();
    store.expire_queued("dead", 9_000, "expired").await.unwrap();
    let ids = [
        "queued",
        "huge",
        "none",
        "retry-only",
        "admitted",
        "retried",
        "dead",
    ];
    let mut want = Vec::new();
    for id in ids {
        want.push(store.job_orch(id).await.unwrap().unwrap());
    }
    let want_past = past_deadline(&store, 100_000, 10).await;
    assert_eq!(want_past, ["retried", "queued"]);
    crate::raw_sql(
        &url,
        "UPDATE jobs SET queue_ttl_ms = NULL, queue_deadline = NULL",
    )
    .await;
    assert!(past_deadline(&store, 100_000, 10).await.is_empty());
    let migration = if url.starts_with("sqlite:") {
        include_str!("../../migrations/sqlite/0005_queue_deadline.sql")
    } else {
        include_str!("../../migrations/postgres/0005_queue_deadline.sql")
    };
    let statements = crate::history::backfill_statements(migration);
    assert_eq!(statements.len(), 2, "{statements:?}");
    for sql in statements {
        crate::raw_sql(&url, &sql).await;
    }
    for (id, want) in ids.iter().zip(&want) {
        assert_eq!(&store.job_orch(id).await.unwrap().unwrap(), want, "{id}");
    }
    assert_eq!(past_deadline(&store, 100_000, 10).await, want_past);
    // The TTL of the dead letter was filled too: a requeue restarts its clock with it.
    store
        .requeue_dead_letter(&Requeue {
            id: "dead".into(),
            at_ms: 20_000,
            place: RequeuePlace::Tail,
            message: "requeued".into(),
        })
        .await
        .unwrap();
    assert_eq!(deadline(&store, "dead").await, Some(27_000));
    // And the admitted job gets its deadline back with its place in the queue.
    store
        .transition(&Transition::new(
            "admitted", Admitted, Queued, 3_000, "no room",
        ))
        .await
        .unwrap();
    assert_eq!(deadline(&store, "admitted").await, Some(31_000));
}

/// A preempted run goes back to its queue as the next run, keeping its place, without a
/// failure and without using a retry; the count of preemptions goes up.
pub async fn preemption_requeues_without_using_a_retry(store: Arc<dyn Store>) {
    store
        .insert_job(&new_job("p", "ns", "normal", 100, &[]))
        .await
        .unwrap();
    // Attempt 1 fails and is retried: attempt 2 is the second of its round.
    fail_run(&store, "p", 200).await;
    store.retry_job(&retry("p", 1, 300, 300)).await.unwrap();
    let before = store.job_orch("p").await.unwrap().unwrap();
    assert_eq!(before.preemptions, 0);
    assert_eq!(before.attempt_in_round(2), 2);
    for (from, to) in [
        (Queued, Admitted),
        (Admitted, Submitted),
        (Submitted, Running),
    ] {
        let mut t = Transition::new("p", from, to, 400, format!("{from} -> {to}"));
        if to == Submitted {
            t = t.with_backend_ref("4243");
        }
        store.transition(&t).await.unwrap();
    }
    let why = "preempted by ns/urgent (high) to make room";
    let rec = store
        .preempt_job(&Preempted {
            id: "p".into(),
            from: Running,
            at_ms: 500,
            message: why.into(),
        })
        .await
        .unwrap();
    assert_eq!(rec.state, Queued);
    assert_eq!(rec.attempt, 3, "the next run is a run of its own");
    assert_eq!(rec.enqueued_at_ms, 300, "keeps its place in its queue");
    assert_eq!((rec.started_at_ms, rec.backend_ref.clone()), (None, None));
    assert_eq!(rec.message.as_deref(), Some(why));
    let orch = store.job_orch("p").await.unwrap().unwrap();
    assert_eq!(orch.preemptions, 1);
    assert_eq!(
        orch.attempt_in_round(rec.attempt),
        2,
        "the preempted run does not use a retry"
    );
    assert_eq!(orch.failure_class, None);
    assert!(store.unsettled_failures().await.unwrap().is_empty());
    let ev = store.events("p").await.unwrap();
    let last = ev.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.at_ms, last.message.as_str()),
        (Some(Running), Queued, 500, why)
    );
    // Not running any more: a conflict, nothing written.
    assert!(matches!(
        store
            .preempt_job(&Preempted {
                id: "p".into(),
                from: Running,
                at_ms: 600,
                message: why.into(),
            })
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .preempt_job(&Preempted {
                id: "p".into(),
                from: Queued,
                at_ms: 600,
                message: why.into(),
            })
            .await,
        Err(StoreError::InvalidTransition { .. })
    ));
    assert!(matches!(
        store
            .preempt_job(&Preempted {
                id: "nope".into(),
                from: Submitted,
                at_ms: 600,
                message: why.into(),
            })
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.job_orch("p").await.unwrap().unwrap().preemptions, 1);
    // A submitted run (not seen running yet) is preempted the same way.
    for (from, to) in [(Queued, Admitted), (Admitted, Submitted)] {
        store
            .transition(&Transition::new("p", from, to, 700, "again"))
            .await
            .unwrap();
    }
    let rec = store
        .preempt_job(&Preempted {
            id: "p".into(),
            from: Submitted,
            at_ms: 800,
            message: why.into(),
        })
        .await
        .unwrap();
    assert_eq!(rec.attempt, 4);
    let orch = store.job_orch("p").await.unwrap().unwrap();
    assert_eq!(orch.preemptions, 2);
    assert_eq!(orch.attempt_in_round(rec.attempt), 2);
}
