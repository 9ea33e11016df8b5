//! Conformance checks of one job's life in the store: insert and get, duplicate ids, every
//! legal transition and no illegal one, compare-and-set conflicts, timestamps, requeue, events,
//! notes, reopening, two stores on one database and corrupt rows. Included by `conformance.rs`,
//! whose `conformance!` macro runs each against SQLite and PostgreSQL.

use super::*;

pub(super) async fn insert_get_round_trip(store: Arc<dyn Store>) {
    let mut new = labelled(
        job("01J0ROUNDTRIP", "team-a", "high", 1_700_000_000_123),
        &[
            ("team", "data"),
            ("quote", "it's \"quoted\""),
            ("unicode", "żółw 🐢"),
        ],
    );
    new.name = "nightly etl".to_string();
    // The stored job comes back exactly: job, policy and the document as submitted.
    new.stored = stored_doc(json!({
        "name": "nightly-etl",
        "namespace": "team-a",
        "labels": { "on": "yes", "ünï": "cödé" },
        "retry": { "maxAttempts": 3 },
        "maxQueueWait": "1h",
        "command": {
            "argv": ["spark-like", "--date", "2026-11-27", "{\"nested\": [1, 2.5, null]}"],
            "env": { "MODE": "full" },
            "memory": "2g"
        }
    }));
    let inserted = store.insert_job(&new).await.unwrap();
    let expected = JobRecord {
        id: new.id.clone(),
        namespace: "team-a".into(),
        name: "nightly etl".into(),
        level: "high".into(),
        state: Queued,
        attempt: 1,
        labels: new.labels.clone(),
        stored: Ok(new.stored.clone()),
        demand: demand(),
        created_at_ms: 1_700_000_000_123,
        enqueued_at_ms: 1_700_000_000_123,
        updated_at_ms: 1_700_000_000_123,
        started_at_ms: None,
        finished_at_ms: None,
        backend_ref: None,
        exit_code: None,
        message: None,
    };
    assert_eq!(inserted, expected);
    assert_eq!(store.get_job(&new.id).await.unwrap(), Some(expected));
    assert_eq!(
        store.events(&new.id).await.unwrap(),
        vec![JobEvent {
            job_id: new.id.clone(),
            at_ms: 1_700_000_000_123,
            from: None,
            to: Queued,
            message: "queued".into(),
        }]
    );

    // No labels, empty demand.
    let mut bare = job("bare", "ns", "low", 5);
    bare.demand = Demand::default();
    let rec = store.insert_job(&bare).await.unwrap();
    assert_eq!(store.get_job("bare").await.unwrap(), Some(rec));

    assert_eq!(store.get_job("no-such-job").await.unwrap(), None);
}

pub(super) async fn duplicate_id(store: Arc<dyn Store>) {
    let first = store
        .insert_job(&labelled(job("dup", "a", "high", 1), &[("k", "v")]))
        .await
        .unwrap();
    let err = store
        .insert_job(&labelled(job("dup", "b", "low", 2), &[("k", "w")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Duplicate(id) if id == "dup"),
        "{err:?}"
    );
    assert!(err.to_string().contains("dup"), "{err}");
    // Nothing of the second insert was kept.
    assert_eq!(store.get_job("dup").await.unwrap(), Some(first));
    assert_eq!(store.events("dup").await.unwrap().len(), 1);
    let by_label = JobFilter {
        labels: vec![("k".into(), "w".into())],
        ..Default::default()
    };
    assert!(list_ids(&store, &by_label).await.is_empty());
    // The store still works after the failed transaction.
    store
        .insert_job(&job("dup2", "a", "high", 3))
        .await
        .unwrap();
}

pub(super) async fn every_legal_transition(store: Arc<dyn Store>) {
    let mut n = 0;
    for from in JobState::ALL {
        for to in JobState::ALL {
            if !from.can_move_to(to) {
                continue;
            }
            n += 1;
            let id = format!("legal-{from}-{to}");
            store.insert_job(&job(&id, "ns", "high", 10)).await.unwrap();
            drive(&store, &id, from, 100).await;
            let t = tr(&id, from, to, 1000)
                .with_backend_ref(format!("ref-{id}"))
                .with_exit_code(3);
            let rec = store
                .transition(&t)
                .await
                .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
            assert_eq!(rec.state, to);
            assert_eq!(rec.updated_at_ms, 1000);
            assert_eq!(rec.message.as_deref(), Some(t.message.as_str()));
            assert_eq!(rec.backend_ref, Some(format!("ref-{id}")));
            assert_eq!(rec.exit_code, Some(3));
            // Back to the queue after a run: a new attempt.
            let attempt = if to == Queued && matches!(from, Submitted | Running) {
                2
            } else {
                1
            };
            assert_eq!(rec.attempt, attempt);
            assert_eq!(store.get_job(&id).await.unwrap(), Some(rec));
            let last = store.events(&id).await.unwrap().pop().unwrap();
            assert_eq!((last.from, last.to, last.at_ms), (Some(from), to, 1000));
        }
    }
    assert!(n > 0);
}

pub(super) async fn illegal_transitions_change_nothing(store: Arc<dyn Store>) {
    for from in JobState::ALL {
        let id = format!("illegal-{from}");
        store.insert_job(&job(&id, "ns", "high", 10)).await.unwrap();
        let before = drive(&store, &id, from, 100).await;
        let events_before = store.events(&id).await.unwrap();
        for to in JobState::ALL {
            if from.can_move_to(to) {
                continue;
            }
            let err = store
                .transition(&tr(&id, from, to, 5000))
                .await
                .unwrap_err();
            match &err {
                StoreError::InvalidTransition {
                    id: eid,
                    from: f,
                    to: t,
                } => assert_eq!((eid.as_str(), *f, *t), (id.as_str(), from, to)),
                other => panic!("{from} -> {to}: expected InvalidTransition, got {other:?}"),
            }
            assert!(err.to_string().contains(from.as_str()), "{err}");
        }
        assert_eq!(store.get_job(&id).await.unwrap(), Some(before));
        assert_eq!(store.events(&id).await.unwrap(), events_before);
    }
}

pub(super) async fn transition_of_missing_job(store: Arc<dyn Store>) {
    let err = store
        .transition(&tr("ghost", Queued, Admitted, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(id) if id == "ghost"),
        "{err:?}"
    );
    let err = store.events("ghost").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub(super) async fn cas_conflict(store: Arc<dyn Store>) {
    store
        .insert_job(&job("cas", "ns", "high", 1))
        .await
        .unwrap();
    let won = store
        .transition(&tr("cas", Queued, Admitted, 2))
        .await
        .unwrap();
    let err = store
        .transition(&tr("cas", Queued, Cancelled, 3))
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict {
            id,
            expected,
            actual,
        } => assert_eq!((id.as_str(), *expected, *actual), ("cas", Queued, Admitted)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get_job("cas").await.unwrap(), Some(won));
    assert_eq!(store.events("cas").await.unwrap().len(), 2);
}

pub(super) async fn cas_conflict_concurrent(store: Arc<dyn Store>) {
    for i in 0..20 {
        let id = format!("race-{i}");
        store.insert_job(&job(&id, "ns", "high", i)).await.unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (t1, t2) = (
            tr(&id, Queued, Admitted, 100),
            tr(&id, Queued, Cancelled, 100),
        );
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { s1.transition(&t1).await }),
            tokio::spawn(async move { s2.transition(&t2).await }),
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let (winner, loser) = match (r1, r2) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            (Ok(_), Ok(_)) => panic!("{id}: both transitions won"),
            (Err(a), Err(b)) => panic!("{id}: both transitions lost: {a}; {b}"),
        };
        match loser {
            StoreError::Conflict {
                expected, actual, ..
            } => {
                assert_eq!(expected, Queued);
                assert_eq!(actual, winner.state);
            }
            other => panic!("{id}: expected Conflict, got {other:?}"),
        }
        assert_eq!(store.get_job(&id).await.unwrap(), Some(winner.clone()));
        let events = store.events(&id).await.unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].to, winner.state);
    }
}

pub(super) async fn timestamps(store: Arc<dyn Store>) {
    store
        .insert_job(&job("t", "ns", "high", 1000))
        .await
        .unwrap();
    let r = store
        .transition(&tr("t", Queued, Admitted, 2000))
        .await
        .unwrap();
    assert_eq!(
        (r.updated_at_ms, r.started_at_ms, r.finished_at_ms),
        (2000, None, None)
    );
    let r = store
        .transition(&tr("t", Admitted, Submitted, 3000).with_backend_ref("spark-app-1"))
        .await
        .unwrap();
    assert_eq!(r.backend_ref.as_deref(), Some("spark-app-1"));
    assert_eq!((r.started_at_ms, r.finished_at_ms), (None, None));
    let r = store
        .transition(&tr("t", Submitted, Running, 4000))
        .await
        .unwrap();
    assert_eq!((r.started_at_ms, r.finished_at_ms), (Some(4000), None));
    assert_eq!(
        r.backend_ref.as_deref(),
        Some("spark-app-1"),
        "kept when not given"
    );
    let r = store
        .transition(&Transition::new("t", Running, Succeeded, 5000, "exited 0").with_exit_code(0))
        .await
        .unwrap();
    assert_eq!(
        (r.started_at_ms, r.finished_at_ms, r.updated_at_ms),
        (Some(4000), Some(5000), 5000)
    );
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.message.as_deref(), Some("exited 0"));
    assert_eq!((r.created_at_ms, r.enqueued_at_ms), (1000, 1000));
    assert_eq!(store.get_job("t").await.unwrap(), Some(r));

    // Cancelled while queued: finished, never started.
    store
        .insert_job(&job("c", "ns", "high", 1000))
        .await
        .unwrap();
    let r = store
        .transition(&Transition::new(
            "c",
            Queued,
            Cancelled,
            1500,
            "cancelled by alice",
        ))
        .await
        .unwrap();
    assert_eq!((r.started_at_ms, r.finished_at_ms), (None, Some(1500)));
    assert_eq!(r.message.as_deref(), Some("cancelled by alice"));

    // Failed after submission without ever running.
    store
        .insert_job(&job("f", "ns", "high", 1000))
        .await
        .unwrap();
    drive(&store, "f", Submitted, 1100).await;
    let r = store
        .transition(&tr("f", Submitted, Failed, 1900).with_exit_code(-9))
        .await
        .unwrap();
    assert_eq!((r.started_at_ms, r.finished_at_ms), (None, Some(1900)));
    assert_eq!(r.exit_code, Some(-9));
}

pub(super) async fn requeue_keeps_place(store: Arc<dyn Store>) {
    store
        .insert_job(&job("rq", "ns", "high", 1000))
        .await
        .unwrap();
    store
        .transition(&tr("rq", Queued, Admitted, 2000))
        .await
        .unwrap();
    let r = store
        .transition(&Transition::new(
            "rq",
            Admitted,
            Queued,
            3000,
            "no room after all",
        ))
        .await
        .unwrap();
    assert_eq!(r.state, Queued);
    assert_eq!(r.enqueued_at_ms, 1000);
    assert_eq!(r.updated_at_ms, 3000);
    assert_eq!(r.attempt, 1);
    assert_eq!(r.message.as_deref(), Some("no room after all"));
}

/// A run the backend stopped (the deadlock watchdog) goes back to its queue as a new attempt,
/// keeping its place and its history.
pub(super) async fn requeue_after_run_is_a_new_attempt(store: Arc<dyn Store>) {
    store
        .insert_job(&job("wd", "ns", "high", 1000))
        .await
        .unwrap();
    store
        .transition(&tr("wd", Queued, Admitted, 2000))
        .await
        .unwrap();
    store
        .transition(&tr("wd", Admitted, Submitted, 2001).with_backend_ref("ns/app-1"))
        .await
        .unwrap();
    let running = store
        .transition(&tr("wd", Submitted, Running, 2002))
        .await
        .unwrap();
    assert_eq!(running.started_at_ms, Some(2002));
    let r = store
        .transition(&Transition::new(
            "wd",
            Running,
            Queued,
            3000,
            "requeued: deadlock watchdog",
        ))
        .await
        .unwrap();
    assert_eq!(r.state, Queued);
    assert_eq!(r.attempt, 2);
    assert_eq!(r.backend_ref, None);
    assert_eq!(r.started_at_ms, None);
    assert_eq!(r.finished_at_ms, None);
    assert_eq!(r.enqueued_at_ms, 1000, "keeps its place");
    assert_eq!(r.message.as_deref(), Some("requeued: deadlock watchdog"));
    let events = store.events("wd").await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.message.as_str()),
        (Some(Running), Queued, "requeued: deadlock watchdog")
    );
    // The second attempt runs like the first.
    store
        .transition(&tr("wd", Queued, Admitted, 4000))
        .await
        .unwrap();
    let s = store
        .transition(&tr("wd", Admitted, Submitted, 4001).with_backend_ref("ns/app-2"))
        .await
        .unwrap();
    assert_eq!((s.attempt, s.backend_ref.as_deref()), (2, Some("ns/app-2")));
    // Submitted (never seen running) goes back too.
    let r = store
        .transition(&tr("wd", Submitted, Queued, 5000))
        .await
        .unwrap();
    assert_eq!(r.attempt, 3);
}

pub(super) async fn events_history(store: Arc<dyn Store>) {
    store.insert_job(&job("h", "ns", "high", 10)).await.unwrap();
    let steps = [
        (Queued, Admitted, 20, "admitted: fits on node-1"),
        (Admitted, Queued, 30, "backend full, back to queue"),
        (Queued, Admitted, 40, "admitted again"),
        (Admitted, Submitted, 50, "submitted"),
        (Submitted, Running, 60, "driver running"),
        (Running, Failed, 70, "executor lost"),
    ];
    for (from, to, at, msg) in steps {
        store
            .transition(&Transition::new("h", from, to, at, msg))
            .await
            .unwrap();
    }
    let mut expected = vec![JobEvent {
        job_id: "h".into(),
        at_ms: 10,
        from: None,
        to: Queued,
        message: "queued".into(),
    }];
    expected.extend(steps.iter().map(|&(from, to, at, msg)| JobEvent {
        job_id: "h".into(),
        at_ms: at,
        from: Some(from),
        to,
        message: msg.into(),
    }));
    assert_eq!(store.events("h").await.unwrap(), expected);

    // Another job's events are not mixed in; equal timestamps keep insertion order.
    store
        .insert_job(&job("other", "ns", "high", 10))
        .await
        .unwrap();
    store.add_note("other", 10, "first").await.unwrap();
    store.add_note("other", 10, "second").await.unwrap();
    let msgs: Vec<String> = store
        .events("other")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(msgs, ["queued", "first", "second"]);
    assert_eq!(store.events("h").await.unwrap(), expected);
}

pub(super) async fn notes(store: Arc<dyn Store>) {
    store.insert_job(&job("n", "ns", "high", 10)).await.unwrap();
    let before = drive(&store, "n", Running, 20).await;
    store
        .add_note("n", 100, "re-attached after restart")
        .await
        .unwrap();
    assert_eq!(
        store.get_job("n").await.unwrap(),
        Some(before),
        "a note changes no field of the job"
    );
    let last = store.events("n").await.unwrap().pop().unwrap();
    assert_eq!(
        last,
        JobEvent {
            job_id: "n".into(),
            at_ms: 100,
            from: Some(Running),
            to: Running,
            message: "re-attached after restart".into(),
        }
    );
    let err = store.add_note("ghost", 1, "hello").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(id) if id == "ghost"),
        "{err:?}"
    );
}

pub(super) async fn survives_reopen(store: Arc<dyn Store>, url: String) {
    store
        .insert_job(&labelled(job("keep", "ns", "high", 10), &[("k", "v")]))
        .await
        .unwrap();
    drive(&store, "keep", Running, 20).await;
    store.add_note("keep", 30, "noted").await.unwrap();
    store
        .insert_job(&job("other", "ns", "low", 15))
        .await
        .unwrap();
    let record = store.get_job("keep").await.unwrap().unwrap();
    let events = store.events("keep").await.unwrap();
    let listed = store
        .list_jobs(&JobFilter::default(), 10, None)
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let store = open(&url).await.expect("reopen");
    assert_eq!(store.get_job("keep").await.unwrap(), Some(record));
    assert_eq!(store.events("keep").await.unwrap(), events);
    assert_eq!(
        store
            .list_jobs(&JobFilter::default(), 10, None)
            .await
            .unwrap(),
        listed
    );
    let by_label = JobFilter {
        labels: vec![("k".into(), "v".into())],
        ..Default::default()
    };
    assert_eq!(list_ids(&store, &by_label).await, ["keep"]);
    // Still writable, and the duplicate check still holds.
    store
        .transition(&tr("keep", Running, Succeeded, 40))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_job(&job("other", "ns", "low", 15)).await,
        Err(StoreError::Duplicate(_))
    ));
    store.close().await;
}

pub(super) async fn two_stores_one_database(store: Arc<dyn Store>, url: String) {
    // Two stores on one database (as two server processes would be): writes from both interleave
    // without busy errors, and compare-and-set holds across them.
    let other = open(&url).await.expect("open a second store");
    let mut tasks = Vec::new();
    for (n, s) in [store.clone(), other.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let id = format!("s{n}-{i}");
                s.insert_job(&job(&id, "ns", "high", i)).await.unwrap();
                s.transition(&tr(&id, Queued, Admitted, i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.jobs_in_states(&[Admitted]).await.unwrap().len(), 200);
    assert_eq!(other.jobs_in_states(&[Admitted]).await.unwrap().len(), 200);
    for i in 0..20 {
        let id = format!("s0-{i}");
        let (a, b) = (store.clone(), other.clone());
        let (t1, t2) = (
            tr(&id, Admitted, Submitted, 500),
            tr(&id, Admitted, Cancelled, 500),
        );
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { a.transition(&t1).await }),
            tokio::spawn(async move { b.transition(&t2).await }),
        );
        let wins = [r1.unwrap(), r2.unwrap()];
        assert_eq!(
            wins.iter().filter(|r| r.is_ok()).count(),
            1,
            "{id}: {wins:?}"
        );
        assert!(
            wins.iter()
                .any(|r| matches!(r, Err(StoreError::Conflict { .. }))),
            "{id}: {wins:?}"
        );
    }
    other.close().await;
}

pub(super) async fn raw_sql(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool: AnyPool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("raw connection to {url}: {e}"));
    pool.execute(AssertSqlSafe(sql.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pool.close().await;
}

pub(super) async fn corrupt_rows_are_reported(store: Arc<dyn Store>, url: String) {
    store
        .insert_job(&job("bad", "ns", "high", 10))
        .await
        .unwrap();
    store
        .insert_job(&job("good", "ns", "high", 5))
        .await
        .unwrap();
    raw_sql(&url, "UPDATE jobs SET state = 'bogus' WHERE id = 'bad'").await;

    let err = store.get_job("bad").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(
        msg.contains("jobs.state") && msg.contains("bogus") && msg.contains("bad"),
        "{msg}"
    );
    let err = store
        .list_jobs(&JobFilter::default(), 10, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let err = store
        .transition(&tr("bad", Queued, Admitted, 20))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    // Other rows still read.
    assert!(store.get_job("good").await.unwrap().is_some());

    raw_sql(&url, "UPDATE jobs SET spec = '{not json' WHERE id = 'good'").await;
    // A stored job that does not decode is still a record (a reader of many rows is not
    // stopped); whoever needs the job gets an error naming it.
    let rec = store.get_job("good").await.unwrap().unwrap();
    let err = rec.decoded().unwrap_err();
    assert_eq!(err.id, "good");
    assert!(err.to_string().contains("jobs.spec"), "{err}");
    let err = StoreError::from(rec.job().unwrap_err());
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("spec") && m.contains("good")),
        "{err:?}"
    );

    raw_sql(
        &url,
        "UPDATE job_events SET to_state = 'weird' WHERE job_id = 'good'",
    )
    .await;
    let err = store.events("good").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("job_events.to_state") && m.contains("weird")),
        "{err:?}"
    );
}
