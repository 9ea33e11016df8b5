//! Conformance checks of listing: filters, keyset pagination with ties, the scheduler's
//! state order, queue statistics and many jobs paged through. Included by `conformance.rs`,
//! whose `conformance!` macro runs each against SQLite and PostgreSQL.

use super::*;

pub(super) async fn list_filters(store: Arc<dyn Store>) {
    let mut specs = vec![
        labelled(
            job("a", "alpha", "high", 100),
            &[("team", "data"), ("env", "prod")],
        ),
        labelled(
            job("b", "alpha", "low", 200),
            &[("team", "data"), ("env", "dev")],
        ),
        labelled(
            job("c", "beta", "high", 300),
            &[("team", "web"), ("env", "prod")],
        ),
        job("d", "beta", "high", 400),
        labelled(
            job("e", "alpha", "high", 500),
            &[("team", "data"), ("env", "prod")],
        ),
    ];
    specs[1].name = "report".into();
    specs[4].name = "report".into();
    for s in &specs {
        store.insert_job(s).await.unwrap();
    }
    store
        .transition(&tr("d", Queued, Admitted, 600))
        .await
        .unwrap();
    store
        .transition(&tr("e", Queued, Cancelled, 600))
        .await
        .unwrap();

    let f = |build: fn(&mut JobFilter)| {
        let mut filter = JobFilter::default();
        build(&mut filter);
        filter
    };
    let cases: Vec<(JobFilter, Vec<&str>)> = vec![
        (JobFilter::default(), vec!["e", "d", "c", "b", "a"]),
        (
            f(|f| f.namespace = Some("alpha".into())),
            vec!["e", "b", "a"],
        ),
        (f(|f| f.namespace = Some("gamma".into())), vec![]),
        (f(|f| f.states = vec![Queued]), vec!["c", "b", "a"]),
        (f(|f| f.states = vec![Admitted, Cancelled]), vec!["e", "d"]),
        (f(|f| f.states = vec![Running]), vec![]),
        (
            f(|f| f.labels = vec![("team".into(), "data".into())]),
            vec!["e", "b", "a"],
        ),
        (
            f(|f| {
                f.labels = vec![
                    ("team".into(), "data".into()),
                    ("env".into(), "prod".into()),
                ]
            }),
            vec!["e", "a"],
        ),
        (
            f(|f| {
                f.labels = vec![
                    ("team".into(), "data".into()),
                    ("env".into(), "staging".into()),
                ]
            }),
            vec![],
        ),
        (
            f(|f| f.labels = vec![("env".into(), "prod".into())]),
            vec!["e", "c", "a"],
        ),
        (f(|f| f.labels = vec![("owner".into(), "x".into())]), vec![]),
        (
            f(|f| {
                f.created_from_ms = Some(200);
                f.created_to_ms = Some(400);
            }),
            vec!["c", "b"],
        ),
        (
            f(|f| f.created_from_ms = Some(200)),
            vec!["e", "d", "c", "b"],
        ),
        (f(|f| f.created_to_ms = Some(200)), vec!["a"]),
        (f(|f| f.name = Some("report".into())), vec!["e", "b"]),
        (f(|f| f.name = Some("etl".into())), vec!["d", "c", "a"]),
        (
            f(|f| {
                f.namespace = Some("alpha".into());
                f.states = vec![Queued];
                f.labels = vec![("team".into(), "data".into())];
            }),
            vec!["b", "a"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(list_ids(&store, &filter).await, expected, "{filter:?}");
    }
    // Records come back whole.
    let page = store
        .list_jobs(&f(|f| f.name = Some("report".into())), 10, None)
        .await
        .unwrap();
    assert_eq!(page.jobs[0], store.get_job("e").await.unwrap().unwrap());
}

pub(super) async fn pagination_with_ties(store: Arc<dyn Store>) {
    // Ids in mixed case and punctuation: order must be bytewise on both databases.
    let raw_ids = [
        "a", "B", "b-2", "b2", "A-1", "z", "Z", "m", "m-", "m_", "0", "9", "aa", "AA", "ab", "x.1",
        "x1", "x-1", "q", "Q", "r", "s", "t", "u", "v",
    ];
    let mut all: Vec<(i64, String)> = Vec::new();
    for (i, id) in raw_ids.iter().enumerate() {
        // Five distinct creation times, five jobs each: ties everywhere.
        let created = 1000 + (i as i64 % 5);
        let ns = if i % 2 == 0 { "even" } else { "odd" };
        store
            .insert_job(&job(id, ns, "high", created))
            .await
            .unwrap();
        all.push((created, id.to_string()));
    }
    all.sort();
    all.reverse();
    let expected: Vec<String> = all.iter().map(|(_, id)| id.clone()).collect();

    for limit in [1, 4, 5, 24, 25, 26, 1000] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store
                .list_jobs(&JobFilter::default(), limit, cursor.as_deref())
                .await
                .unwrap();
            pages += 1;
            assert!(page.jobs.len() <= limit as usize);
            assert!(!page.jobs.is_empty(), "limit {limit}: empty page");
            seen.extend(page.jobs.iter().map(|j| j.id.clone()));
            match page.next_cursor {
                Some(c) => {
                    assert_eq!(page.jobs.len(), limit as usize);
                    cursor = Some(c);
                }
                None => break,
            }
            assert!(pages <= 100, "pagination does not end");
        }
        assert_eq!(seen, expected, "limit {limit}");
        assert_eq!(
            pages,
            expected.len().div_ceil(limit as usize),
            "limit {limit}"
        );
    }

    // Paging a filtered list.
    let odd = JobFilter {
        namespace: Some("odd".into()),
        ..Default::default()
    };
    let first = store.list_jobs(&odd, 5, None).await.unwrap();
    let second = store
        .list_jobs(&odd, 100, first.next_cursor.as_deref())
        .await
        .unwrap();
    let mut got: Vec<&str> = ids(&first.jobs);
    got.extend(ids(&second.jobs));
    assert_eq!(got, list_ids(&store, &odd).await);
    assert_eq!(got.len(), 12);
    assert!(second.next_cursor.is_none());

    // Jobs created while paging do not shift later pages: a newer one stays out of them, an
    // older one comes at the very end.
    let p1 = store
        .list_jobs(&JobFilter::default(), 10, None)
        .await
        .unwrap();
    store
        .insert_job(&job("new", "even", "high", 5000))
        .await
        .unwrap();
    store
        .insert_job(&job("old", "even", "high", 999))
        .await
        .unwrap();
    let p2 = store
        .list_jobs(&JobFilter::default(), 10, p1.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(ids(&p2.jobs), expected[10..20]);
    let p3 = store
        .list_jobs(&JobFilter::default(), 10, p2.next_cursor.as_deref())
        .await
        .unwrap();
    let mut tail: Vec<&str> = expected[20..].iter().map(String::as_str).collect();
    tail.push("old");
    assert_eq!(ids(&p3.jobs), tail);
    assert!(p3.next_cursor.is_none());

    for bad in ["garbage", "12", "x:abc", "12:"] {
        let err = store
            .list_jobs(&JobFilter::default(), 10, Some(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadCursor(_)), "{bad}: {err:?}");
    }
}

pub(super) async fn jobs_in_states_order(store: Arc<dyn Store>) {
    for (id, created) in [
        ("j-a", 300),
        ("j-b", 200),
        ("j-c", 100),
        ("j-d", 200),
        ("j-e", 50),
    ] {
        store
            .insert_job(&job(id, "ns", "high", created))
            .await
            .unwrap();
    }
    let queued = store.jobs_in_states(&[Queued]).await.unwrap();
    assert_eq!(ids(&queued), ["j-e", "j-c", "j-b", "j-d", "j-a"]);

    // j-b goes out and back: it keeps its place.
    store
        .transition(&tr("j-b", Queued, Admitted, 900))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.jobs_in_states(&[Queued]).await.unwrap()),
        ["j-e", "j-c", "j-d", "j-a"]
    );
    store
        .transition(&tr("j-b", Admitted, Queued, 901))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.jobs_in_states(&[Queued]).await.unwrap()),
        ["j-e", "j-c", "j-b", "j-d", "j-a"]
    );

    drive(&store, "j-c", Running, 1000).await;
    store
        .transition(&tr("j-a", Queued, Admitted, 1000))
        .await
        .unwrap();
    store
        .transition(&tr("j-e", Queued, Cancelled, 1000))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.jobs_in_states(&JobState::ACTIVE).await.unwrap()),
        ["j-c", "j-a"]
    );
    assert_eq!(
        ids(&store.jobs_in_states(&[Queued, Running]).await.unwrap()),
        ["j-c", "j-b", "j-d"]
    );
    assert!(store.jobs_in_states(&[]).await.unwrap().is_empty());
    assert!(store.jobs_in_states(&[Succeeded]).await.unwrap().is_empty());
}

pub(super) async fn queue_stats(store: Arc<dyn Store>) {
    assert!(store.queue_stats().await.unwrap().is_empty());
    let jobs = [
        ("1", "alpha", "high", 300),
        ("2", "alpha", "high", 100),
        ("3", "alpha", "low", 200),
        ("4", "beta", "high", 50),
        ("5", "beta", "high", 400),
        ("6", "beta", "low", 10),
        ("7", "Alpha", "high", 500),
    ];
    for (id, ns, level, created) in jobs {
        store
            .insert_job(&job(id, ns, level, created))
            .await
            .unwrap();
    }
    store
        .transition(&tr("4", Queued, Admitted, 600))
        .await
        .unwrap();
    store
        .transition(&tr("6", Queued, Cancelled, 600))
        .await
        .unwrap();
    let stat = |ns: &str, level: &str, queued, oldest| QueueStat {
        namespace: ns.into(),
        level: level.into(),
        queued,
        oldest_enqueued_at_ms: oldest,
    };
    assert_eq!(
        store.queue_stats().await.unwrap(),
        vec![
            stat("Alpha", "high", 1, 500),
            stat("alpha", "high", 2, 100),
            stat("alpha", "low", 1, 200),
            stat("beta", "high", 1, 400),
        ]
    );
    // A requeued job counts again, with its original enqueue time.
    store
        .transition(&tr("4", Admitted, Queued, 700))
        .await
        .unwrap();
    assert_eq!(
        store.queue_stats().await.unwrap()[3],
        stat("beta", "high", 2, 50)
    );
}

pub(super) async fn many_jobs_paged(store: Arc<dyn Store>) {
    const N: i64 = 3000;
    const WRITERS: i64 = 8;
    // Concurrent writers: none may fail with a busy/locked database.
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < N {
                let ns = if i % 2 == 0 { "even" } else { "odd" };
                let id = format!("job-{i:05}");
                let new = labelled(job(&id, ns, "high", i / 3), &[("w", &w.to_string())]);
                store
                    .insert_job(&new)
                    .await
                    .unwrap_or_else(|e| panic!("insert {id}: {e}"));
                if i % 10 == 0 {
                    store
                        .transition(&tr(&id, Queued, Admitted, i))
                        .await
                        .unwrap_or_else(|e| panic!("admit {id}: {e}"));
                }
                i += WRITERS;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .list_jobs(&JobFilter::default(), 250, cursor.as_deref())
            .await
            .unwrap();
        seen.extend(page.jobs.into_iter().map(|j| (j.created_at_ms, j.id)));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), N as usize);
    let unique: BTreeSet<&(i64, String)> = seen.iter().collect();
    assert_eq!(unique.len(), N as usize, "pages overlap");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "not newest first");

    let odd_admitted = JobFilter {
        namespace: Some("odd".into()),
        states: vec![Admitted],
        ..Default::default()
    };
    // Admitted jobs have i % 10 == 0, so they are all even.
    assert!(list_ids(&store, &odd_admitted).await.is_empty());
    let mut n = 0;
    let mut cursor: Option<String> = None;
    let filter = JobFilter {
        namespace: Some("odd".into()),
        labels: vec![("w".into(), "3".into())],
        ..Default::default()
    };
    loop {
        let page = store
            .list_jobs(&filter, 64, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.jobs.iter().all(|j| j.labels["w"] == "3"));
        n += page.jobs.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(n, (N / WRITERS) as usize);
    assert_eq!(
        store.jobs_in_states(&[Admitted]).await.unwrap().len(),
        (N / 10) as usize
    );
    assert_eq!(
        store
            .queue_stats()
            .await
            .unwrap()
            .iter()
            .map(|s| s.queued)
            .sum::<u64>(),
        (N - N / 10) as u64
    );
}
