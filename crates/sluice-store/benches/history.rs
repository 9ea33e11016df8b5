//! `Store::history` over 1,000,000 finished jobs: a 30-day query with a 1-hour step.
//!
//! Run with `cargo bench -p sluice-store --bench history`. The set-up bulk-inserts the jobs in
//! one SQL statement per database (a generated series, deterministic), into a SQLite file in a
//! temporary directory and, if reachable, a fresh PostgreSQL database
//! (`SLUICE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; dropped
//! afterwards). The jobs span 90 days before 2026-11-01 in 10 namespaces and 2 levels, one every
//! 7.8 s: waits of 0-10 minutes, runs of 0.5-30.5 minutes, 90% succeeded, 8% failed, 2%
//! cancelled while queued. Before timing, the answer is checked against plain counts.
//!
//! Per database: the queries computed live (nothing rolled up: `history_DB_live/...`), then the
//! time to roll up the 90 days (`Store::roll_up_history` called until done, printed), then the
//! same queries through the rollups (`history_DB/...`), whose answer must equal the live one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_store::{HistoryQuery, HistorySeries, Store};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor, Row};

const JOBS: i64 = 1_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01T00:00:00Z.
const END: i64 = 1_793_491_200_000;
const SPAN: i64 = 90 * DAY;

/// The INSERT ... SELECT of the generated jobs, over `source` (a relation with one column `i`
/// numbering 0..JOBS) and `id` (the SQL of the id from `i`).
fn seed_sql(with: &str, source: &str, id: &str) -> String {
    let start = END - SPAN;
    format!(
        "{with} INSERT INTO jobs (id, namespace, name, level, state, attempt, labels, spec, demand, \
         created_at, enqueued_at, updated_at, admitted_at, dequeued_at, started_at, finished_at, \
         cpu_milli, mem_mib) \
         SELECT {id}, 'ns' || (i % 10), 'job', \
           CASE WHEN i % 3 = 0 THEN 'high' ELSE 'normal' END, \
           CASE WHEN i % 50 = 0 THEN 'cancelled' WHEN i % 50 < 5 THEN 'failed' ELSE 'succeeded' END, \
           1, '{{}}', '{{}}', '{{\"pods\":[]}}', c, c, \
           CASE WHEN i % 50 = 0 THEN c + w ELSE c + w + 1000 + r END, \
           CASE WHEN i % 50 = 0 THEN NULL ELSE c + w END, \
           c + w, \
           CASE WHEN i % 50 = 0 THEN NULL ELSE c + w + 1000 END, \
           CASE WHEN i % 50 = 0 THEN c + w ELSE c + w + 1000 + r END, \
           1000 * (1 + i % 8), 1024 * (1 + i % 16) \
         FROM (SELECT i, {start} + i * {SPAN} / {JOBS} AS c, \
                 ((i * 2654435761) % 4294967296) % 600000 AS w, \
                 30000 + ((i * 48271) % 2147483647) % 1800000 AS r \
               FROM {source}) x"
    )
}

async fn seed(url: &str, postgres: bool) {
    let mut conn = AnyConnection::connect(url)
        .await
        .expect("connect for seeding");
    let sql = if postgres {
        seed_sql(
            "",
            &format!("generate_series(0::BIGINT, {}) AS s(i)", JOBS - 1),
            "'j' || lpad(i::text, 9, '0')",
        )
    } else {
        seed_sql(
            &format!(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {})",
                JOBS - 1
            ),
            "s",
            "printf('j%09d', i)",
        )
    };
    let t = Instant::now();
    conn.execute(AssertSqlSafe(sql)).await.expect("seed jobs");
    if postgres {
        // What autovacuum does after such a load (statistics, and the visibility map that
        // lets the history queries read their covering indexes alone).
        conn.execute("VACUUM ANALYZE jobs")
            .await
            .expect("vacuum analyze");
    }
    eprintln!(
        "seeded {JOBS} finished jobs into {} in {:.1} s",
        if postgres { "PostgreSQL" } else { "SQLite" },
        t.elapsed().as_secs_f64()
    );
    let _ = conn.close().await;
}

fn query(days: i64, namespace: Option<&str>) -> HistoryQuery {
    HistoryQuery {
        from_ms: END - days * DAY,
        to_ms: END,
        step_ms: HOUR,
        namespace: namespace.map(String::from),
        level: None,
    }
}

/// The history agrees with plain counts over the same range; returns it.
async fn check(store: &Arc<dyn Store>, url: &str) -> Vec<HistorySeries> {
    let q = query(30, None);
    let series = store.history(&q).await.expect("history");
    assert_eq!(series.len(), 20, "10 namespaces x 2 levels");
    let finished: u64 = series
        .iter()
        .flat_map(|s| &s.points)
        .flat_map(|p| p.finished.values())
        .sum();
    let admitted: u64 = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.admitted)
        .sum();
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    let count = |column: &str| {
        format!(
            "SELECT COUNT(*) AS n FROM jobs WHERE {column} >= {} AND {column} < {}",
            q.from_ms, q.to_ms
        )
    };
    let want_finished: i64 = sqlx::query(AssertSqlSafe(count("finished_at")))
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get("n");
    let want_admitted: i64 = sqlx::query(AssertSqlSafe(count("admitted_at")))
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get("n");
    assert_eq!(finished as i64, want_finished);
    assert_eq!(admitted as i64, want_admitted);
    assert!(want_finished > 300_000, "{want_finished}");
    let _ = conn.close().await;
    eprintln!(
        "check: {} series x {} buckets; {want_finished} jobs finished and {want_admitted} admitted \
         in the 30 days",
        series.len(),
        series[0].points.len()
    );
    series
}

/// Rolls up every closed hour (as the server's periodic calls would, back to back); prints the
/// time it took.
async fn roll_up(store: &Arc<dyn Store>, url: &str, postgres: bool) {
    // A day after the last job: every hour of the 90 days is closed.
    let now = END + DAY;
    let t = Instant::now();
    let (mut calls, mut rows, mut slowest) = (0, 0, Duration::ZERO);
    loop {
        let call = Instant::now();
        let r = store.roll_up_history(now).await.expect("roll up");
        slowest = slowest.max(call.elapsed());
        calls += 1;
        rows += r.rows;
        if r.done {
            break;
        }
    }
    let took = t.elapsed();
    if postgres {
        // What autovacuum does after so many new rows.
        let mut conn = AnyConnection::connect(url).await.expect("connect");
        conn.execute("VACUUM ANALYZE history_hours")
            .await
            .expect("vacuum analyze");
        let _ = conn.close().await;
    }
    eprintln!(
        "rolled up the 90 days in {:.2} s: {calls} calls, {rows} rows, slowest call {:.0} ms",
        took.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}

fn queries(c: &mut Criterion, rt: &tokio::runtime::Runtime, store: &Arc<dyn Store>, group: &str) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (label, q) in [
        ("30d_1h_all", query(30, None)),
        ("30d_1h_one_namespace", query(30, Some("ns3"))),
        ("90d_1h_all", query(90, None)),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| rt.block_on(store.history(black_box(&q))).expect("history"))
        });
    }
    g.finish();
}

fn run(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, url: &str, postgres: bool) {
    let store = rt.block_on(sluice_store::open(url)).expect("open store");
    let live = rt.block_on(check(&store, url));
    queries(c, rt, &store, &format!("history_{name}_live"));
    rt.block_on(roll_up(&store, url, postgres));
    let rolled = rt.block_on(check(&store, url));
    assert!(
        rolled == live,
        "the answer through rollups differs from the live one"
    );
    queries(c, rt, &store, &format!("history_{name}"));
    rt.block_on(store.close());
}

fn bench(c: &mut Criterion) {
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("history.db").display());
    // Open once to create the schema, then seed behind the store's back.
    rt.block_on(async {
        let store = sluice_store::open(&url).await.expect("open sqlite");
        store.close().await;
        seed(&url, false).await;
    });
    run(c, &rt, "sqlite", &url, false);

    let admin_url = std::env::var("SLUICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let database = format!("sluice_bench_{}", std::process::id());
    let admin = rt.block_on(AnyConnection::connect(&admin_url));
    let mut admin = match admin {
        Ok(a) => a,
        Err(e) => {
            eprintln!("PostgreSQL unreachable ({e}): PostgreSQL benchmark skipped");
            return;
        }
    };
    rt.block_on(admin.execute(AssertSqlSafe(format!("CREATE DATABASE {database}"))))
        .expect("create database");
    let pg_url = match admin_url.rfind('/') {
        Some(slash) if slash > admin_url.find("://").map_or(0, |i| i + 2) => {
            format!("{}/{database}", &admin_url[..slash])
        }
        _ => format!("{admin_url}/{database}"),
    };
    rt.block_on(async {
        let store = sluice_store::open(&pg_url).await.expect("open postgres");
        store.close().await;
        seed(&pg_url, true).await;
    });
    run(c, &rt, "postgres", &pg_url, true);
    rt.block_on(admin.execute(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    ))))
    .expect("drop database");
}

criterion_group!(benches, bench);
criterion_main!(benches);
