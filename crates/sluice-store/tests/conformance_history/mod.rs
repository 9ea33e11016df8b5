//! Conformance checks of `Store::history` computed live from the jobs: series, hourly steps,
//! percentiles, bad queries and the backfill of the history columns. Included by
//! `conformance.rs`, whose `conformance!` macro runs each against SQLite and PostgreSQL.

use super::*;

/// Inserts a job created at `created` and moves it through `steps` (state, at).
pub(super) async fn life(
    store: &Arc<dyn Store>,
    id: &str,
    ns: &str,
    level: &str,
    created: i64,
    steps: &[(JobState, i64)],
) {
    store
        .insert_job(&job(id, ns, level, created))
        .await
        .unwrap();
    let mut current = Queued;
    for &(next, at) in steps {
        store
            .transition(&tr(id, current, next, at))
            .await
            .unwrap_or_else(|e| panic!("{id} {current} -> {next}: {e}"));
        current = next;
    }
}

/// A few jobs with known lives around the range [1000, 1500) (see check_history_series), every
/// time multiplied by `x`.
pub(super) async fn history_fixture(store: &Arc<dyn Store>, x: i64) {
    // a/high: waited from before the range, admitted at 1050, succeeded at 1250.
    let steps = [
        (Admitted, 1050 * x),
        (Submitted, 1055 * x),
        (Running, 1060 * x),
        (Succeeded, 1250 * x),
    ];
    life(store, "j1", "a", "high", 900 * x, &steps).await;
    // a/high: cancelled while waiting.
    life(store, "j2", "a", "high", 1020 * x, &[(Cancelled, 1120 * x)]).await;
    // a/high: admitted at 1210, failed at submit at 1230.
    let steps = [(Admitted, 1210 * x), (Failed, 1230 * x)];
    life(store, "j3", "a", "high", 1110 * x, &steps).await;
    // a/high: still waiting since before the range.
    life(store, "j4", "a", "high", 950 * x, &[]).await;
    // b/low: running since before the range.
    let steps = [
        (Admitted, 600 * x),
        (Submitted, 610 * x),
        (Running, 620 * x),
    ];
    life(store, "j5", "b", "low", 500 * x, &steps).await;
    // a/high: all over before the range.
    let steps = [(Admitted, 200 * x), (Failed, 300 * x)];
    life(store, "j6", "a", "high", 100 * x, &steps).await;
    // a/low: admitted, sent back to the queue by the backend, admitted again.
    let steps = [
        (Admitted, 1320 * x),
        (Queued, 1330 * x),
        (Admitted, 1350 * x),
    ];
    life(store, "j7", "a", "low", 1300 * x, &steps).await;
    // c/high: after the range.
    life(store, "j8", "c", "high", 1600 * x, &[]).await;
    // d/high: admitted, sent back, then cancelled while waiting: never held.
    let steps = [
        (Admitted, 1010 * x),
        (Queued, 1020 * x),
        (Cancelled, 1030 * x),
    ];
    life(store, "j9", "d", "high", 1000 * x, &steps).await;
}

pub(super) fn pluck<T>(s: &HistorySeries, f: impl Fn(&HistoryPoint) -> T) -> Vec<T> {
    s.points.iter().map(f).collect()
}

pub(super) fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

/// Buckets of 100 ms from 1000 (with every time multiplied by `x`): `x = 1` takes the general
/// path (buckets not on whole hours), `x = 36_000` the hourly one (buckets of one hour from
/// 10:00): the answers must be the same, waits scaled.
pub(super) async fn check_history_series(store: Arc<dyn Store>, x: i64) {
    let range = |from: i64, to: i64, step: i64| hq(from * x, to * x, step * x);
    assert!(
        store
            .history(&range(1000, 1500, 100))
            .await
            .unwrap()
            .is_empty()
    );
    history_fixture(&store, x).await;
    let all = store.history(&range(1000, 1500, 100)).await.unwrap();
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.namespace.as_str(), s.level.as_str()))
        .collect();
    assert_eq!(
        keys,
        [("a", "high"), ("a", "low"), ("b", "low"), ("d", "high")]
    );
    for s in &all {
        assert_eq!(s.points.len(), 5, "{s:?}");
    }
    let ms = |v: i64| Some(v * x);

    let a = &all[0];
    // Waiting: j1 [900,1050), j2 [1020,1120), j3 [1110,1210), j4 [950,-).
    assert_eq!(pluck(a, |p| p.queued), [2, 2, 1, 1, 1]);
    assert!(
        close(&pluck(a, |p| p.queued_avg), &[2.3, 2.1, 1.1, 1.0, 1.0]),
        "{:?}",
        pluck(a, |p| p.queued_avg)
    );
    assert_eq!(pluck(a, |p| p.enqueued), [1, 1, 0, 0, 0]);
    assert_eq!(pluck(a, |p| p.admitted), [1, 0, 1, 0, 0]);
    assert_eq!(
        pluck(a, |p| p.wait_p50_ms),
        [ms(150), None, ms(100), None, None]
    );
    assert_eq!(
        pluck(a, |p| p.wait_p99_ms),
        [ms(150), None, ms(100), None, None]
    );
    assert_eq!(pluck(a, |p| p.wait_max_ms)[0], ms(150));
    assert_eq!(pluck(a, |p| p.wait_mean_ms)[2], Some(100.0 * x as f64));
    // Holding: j1 [1050,1250), j3 [1210,1230).
    assert_eq!(pluck(a, |p| p.active), [1, 1, 0, 0, 0]);
    assert!(
        close(&pluck(a, |p| p.active_avg), &[0.5, 1.0, 0.7, 0.0, 0.0]),
        "{:?}",
        pluck(a, |p| p.active_avg)
    );
    assert_eq!(pluck(a, |p| p.cpu_milli), [CPU, CPU, 0, 0, 0]);
    assert_eq!(pluck(a, |p| p.mem_mib), [MEM, MEM, 0, 0, 0]);
    let c = CPU as f64;
    assert!(
        close(
            &pluck(a, |p| p.cpu_milli_avg),
            &[c * 0.5, c, c * 0.7, 0.0, 0.0]
        ),
        "{:?}",
        pluck(a, |p| p.cpu_milli_avg)
    );
    let m = MEM as f64;
    assert!(close(
        &pluck(a, |p| p.mem_mib_avg)[..3],
        &[m * 0.5, m, m * 0.7]
    ));
    let finished = pluck(a, |p| p.finished.clone());
    assert_eq!(finished[0], BTreeMap::new());
    assert_eq!(finished[1], BTreeMap::from([(Cancelled, 1)]));
    assert_eq!(finished[2], BTreeMap::from([(Failed, 1), (Succeeded, 1)]));

    // a/low: j7 waited [1300,1350) (its first admission undone by the requeue), holds from 1350.
    let low = &all[1];
    assert_eq!(pluck(low, |p| p.queued), [0, 0, 0, 0, 0]);
    assert!(close(
        &pluck(low, |p| p.queued_avg),
        &[0.0, 0.0, 0.0, 0.5, 0.0]
    ));
    assert_eq!(pluck(low, |p| p.enqueued), [0, 0, 0, 1, 0]);
    assert_eq!(pluck(low, |p| p.wait_p50_ms)[3], ms(50));
    assert_eq!(pluck(low, |p| p.active), [0, 0, 0, 1, 1]);
    assert!(close(
        &pluck(low, |p| p.active_avg),
        &[0.0, 0.0, 0.0, 0.5, 1.0]
    ));

    // b/low: j5 holds all along, from before the range.
    let b = &all[2];
    assert_eq!(pluck(b, |p| p.active), [1; 5]);
    assert!(close(&pluck(b, |p| p.active_avg), &[1.0; 5]));
    assert_eq!(pluck(b, |p| p.cpu_milli), [CPU; 5]);
    assert_eq!(pluck(b, |p| p.queued), [0; 5]);
    assert_eq!(pluck(b, |p| p.admitted), [0; 5]);

    // d/high: j9 waited [1000,1030), its admission undone, then cancelled.
    let d = &all[3];
    assert!(close(
        &pluck(d, |p| p.queued_avg),
        &[0.3, 0.0, 0.0, 0.0, 0.0]
    ));
    assert_eq!(pluck(d, |p| p.queued), [0; 5]);
    assert_eq!(pluck(d, |p| p.admitted), [0; 5]);
    assert_eq!(pluck(d, |p| p.active_avg), [0.0; 5]);
    assert_eq!(d.points[0].finished, BTreeMap::from([(Cancelled, 1)]));

    // Filters.
    let only = |ns: Option<&str>, level: Option<&str>| HistoryQuery {
        namespace: ns.map(String::from),
        level: level.map(String::from),
        ..range(1000, 1500, 100)
    };
    let keys = |v: Vec<HistorySeries>| -> Vec<(String, String)> {
        v.into_iter().map(|s| (s.namespace, s.level)).collect()
    };
    let got = store.history(&only(Some("a"), None)).await.unwrap();
    assert_eq!(got[0], all[0]);
    assert_eq!(
        keys(got),
        [("a".into(), "high".into()), ("a".into(), "low".into())]
    );
    assert_eq!(
        keys(store.history(&only(None, Some("low"))).await.unwrap()),
        [("a".into(), "low".into()), ("b".into(), "low".into())]
    );
    assert_eq!(
        keys(store.history(&only(Some("a"), Some("low"))).await.unwrap()),
        [("a".into(), "low".into())]
    );
    assert!(
        store
            .history(&only(Some("zzz"), None))
            .await
            .unwrap()
            .is_empty()
    );

    // A range that does not end on a bucket boundary is rounded up to one: 1000..1450 in steps
    // of 100 is five buckets, the same as above.
    assert_eq!(store.history(&range(1000, 1450, 100)).await.unwrap(), all);
    // One bucket over everything: the sums agree with the fine buckets.
    let one = store.history(&range(1000, 1500, 500)).await.unwrap();
    assert_eq!(one[0].points.len(), 1);
    assert_eq!(one[0].points[0].admitted, 2);
    assert_eq!(one[0].points[0].queued, 1);
    let fine_avg: f64 = pluck(a, |p| p.queued_avg).iter().sum::<f64>() / 5.0;
    assert!((one[0].points[0].queued_avg - fine_avg).abs() < 1e-9);
    assert_eq!(one[0].points[0].wait_p50_ms, ms(100));
    assert_eq!(one[0].points[0].wait_p90_ms, ms(150));
    // A range that starts inside the fixture's lives: at 1100, j2 (since 1020) and j4 (since
    // 950) wait and j1 holds; j3 arrives at 1110 and j2 leaves at 1120.
    let later = store.history(&range(1100, 1200, 100)).await.unwrap();
    assert_eq!(later[0].points[0].queued, 2);
    assert!(close(&[later[0].points[0].queued_avg], &[2.1]));
    assert!(close(&[later[0].points[0].active_avg], &[1.0]));
}

pub(super) async fn history_series(store: Arc<dyn Store>) {
    check_history_series(store, 1).await;
}

pub(super) async fn history_series_hourly(store: Arc<dyn Store>) {
    check_history_series(store, 36_000).await;
}

pub(super) async fn history_percentiles(store: Arc<dyn Store>) {
    // 100 jobs admitted at 20,000 after waits of 10, 20, ..., 1000 ms; one more admitted in the
    // next bucket after 7 ms.
    for i in 1..=100i64 {
        life(
            &store,
            &format!("p{i:03}"),
            "p",
            "normal",
            20_000 - 10 * i,
            &[(Admitted, 20_000)],
        )
        .await;
    }
    life(&store, "q", "p", "normal", 21_000, &[(Admitted, 21_007)]).await;
    let s = store.history(&hq(20_000, 22_000, 1000)).await.unwrap();
    assert_eq!(s.len(), 1);
    let p = &s[0].points;
    assert_eq!(p[0].admitted, 100);
    // Nearest rank: the 50th, 90th and 99th smallest.
    assert_eq!(p[0].wait_p50_ms, Some(500));
    assert_eq!(p[0].wait_p90_ms, Some(900));
    assert_eq!(p[0].wait_p99_ms, Some(990));
    assert_eq!(p[0].wait_max_ms, Some(1000));
    assert_eq!(p[0].wait_mean_ms, Some(505.0));
    assert_eq!(p[0].active, 100);
    assert_eq!(p[0].cpu_milli, 100 * CPU);
    assert_eq!(p[0].enqueued, 0);
    // Every one of them waited from before the range.
    assert_eq!(p[0].queued, 0);
    assert_eq!(p[1].admitted, 1);
    assert_eq!(p[1].wait_p50_ms, Some(7));
    assert_eq!(p[1].wait_p99_ms, Some(7));
    assert_eq!(p[1].active, 101);
    assert_eq!(p[1].enqueued, 1);
    // The range before shows them waiting.
    let before = store.history(&hq(19_000, 20_000, 1000)).await.unwrap();
    assert_eq!(before[0].points[0].queued, 100);
    assert_eq!(before[0].points[0].admitted, 0);
}

pub(super) async fn history_bad_queries(store: Arc<dyn Store>) {
    for q in [
        hq(0, 100, 0),
        hq(0, 100, -5),
        hq(100, 100, 10),
        hq(200, 100, 10),
        hq(0, sluice_store::MAX_BUCKETS + 1, 1),
    ] {
        let err = store.history(&q).await.unwrap_err();
        assert!(matches!(err, StoreError::BadQuery(_)), "{q:?}: {err:?}");
    }
    // The largest allowed number of buckets is fine.
    store
        .history(&hq(0, sluice_store::MAX_BUCKETS, 1))
        .await
        .unwrap();
}

/// The statements of a migration file between its `-- Backfill` comment and its first
/// `CREATE INDEX`, split on `;`.
pub(super) fn backfill_statements(migration: &str) -> Vec<String> {
    let start = migration
        .find("-- Backfill")
        .expect("a -- Backfill section");
    let end = migration
        .find("CREATE INDEX")
        .expect("CREATE INDEX after it");
    let code: Vec<&str> = migration[start..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .filter(|s| !s.trim().is_empty())
        .map(String::from)
        .collect()
}

/// The history migration fills its columns for jobs stored before it, from their demand and
/// timeline: clear them behind the store's back, run the migration's backfill again, and get
/// the same history.
pub(super) async fn history_backfill(store: Arc<dyn Store>, url: String) {
    history_fixture(&store, 1).await;
    let want = store.history(&hq(1000, 1500, 100)).await.unwrap();
    raw_sql(
        &url,
        "UPDATE jobs SET admitted_at = NULL, dequeued_at = NULL, cpu_milli = 0, mem_mib = 0",
    )
    .await;
    assert_ne!(store.history(&hq(1000, 1500, 100)).await.unwrap(), want);
    let migration = if url.starts_with("sqlite:") {
        include_str!("../../migrations/sqlite/0003_history.sql")
    } else {
        include_str!("../../migrations/postgres/0003_history.sql")
    };
    let statements = backfill_statements(migration);
    assert!(statements.len() >= 2, "{statements:?}");
    for sql in statements {
        raw_sql(&url, &sql).await;
    }
    assert_eq!(store.history(&hq(1000, 1500, 100)).await.unwrap(), want);
}
