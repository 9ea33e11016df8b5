//! Conformance checks of the history rollups ([`Store::roll_up_history`]): the history read
//! through rollups is the one computed from the jobs alone, whether the rollups cover the whole
//! range or part of it, after writes into hours already rolled up (a backfill, a run sent back
//! to its queue, a requeue, a purge, a retry), and when two stores roll up at once. Included by
//! `conformance.rs`, whose `conformance!` macro runs each against SQLite and PostgreSQL.
//!
//! "Live" answers are computed by the same store with its rollups switched off behind its back
//! (`history_rollup.next_hour` set to NULL for the one query), so both answers come from the
//! same jobs.

use std::sync::Arc;

use sluice_core::job::{Demand, JobState, PodDemand, Role};
use sluice_store::{
    HistoryQuery, HistorySeries, JobSet, Requeue, RequeuePlace, RetryJob, RollUp, Store,
    Transition, open,
};
use sqlx::{AnyConnection, Connection, Executor};

use super::{hq, job, raw_sql};
use JobState::*;

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// 2026-03-01T00:00:00Z, an hour (and a 5-hour) boundary.
const BASE: i64 = 1_772_323_200_000;
/// The seeded jobs are created in the 72 hours from BASE (some run on, a few are admitted up to
/// two hours before they were created).
const SPAN: i64 = 72 * H;
/// "Now" for the complete roll-ups: 80 hours after BASE.
const END: i64 = BASE + 80 * H;

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x % n as u64) as i64
    }
}

/// Jobs of the seed that later writes act on.
#[derive(Debug, Default)]
struct Seeded {
    /// Still running: (id, admitted at).
    running: Vec<(String, i64)>,
    /// Expired while queued, so dead-lettered: (id, created at).
    dead: Vec<(String, i64)>,
    /// Still queued.
    queued: Vec<String>,
    /// Failed after admission, not yet handled: (id, created at).
    failed: Vec<(String, i64)>,
}

async fn step(store: &Arc<dyn Store>, id: &str, from: JobState, to: JobState, at: i64) {
    store
        .transition(&Transition::new(
            id,
            from,
            to,
            at,
            format!("{from} -> {to}"),
        ))
        .await
        .unwrap_or_else(|e| panic!("{id} {from} -> {to} at {at}: {e}"));
}

/// Moves a queued job through `states`, one at each time of `at`.
async fn walk(store: &Arc<dyn Store>, id: &str, path: &[(JobState, i64)]) {
    let mut current = Queued;
    for &(next, at) in path {
        step(store, id, current, next, at).await;
        current = next;
    }
}

/// `n` jobs with random lives in 3 namespaces and 2 levels, created over 72 hours: waits up to
/// 3 hours and runs up to 6, so that lives cross hours and buckets; some still queued or
/// running, cancelled, failed, sent back to the queue and admitted again, expired, and some
/// with times out of order (admitted before created, cancelled before created, ended before
/// admitted), as callers' clocks can make them.
async fn seed(store: &Arc<dyn Store>, n: usize) -> Seeded {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut s = Seeded::default();
    for i in 0..n {
        let id = format!("r{i:04}");
        let ns = ["a", "b", "c"][rng.below(3) as usize];
        let level = ["high", "normal"][rng.below(2) as usize];
        let created = BASE + rng.below(SPAN);
        let wait = rng.below(3 * H);
        let run = 1 + rng.below(6 * H);
        let mut new = job(&id, ns, level, created);
        new.demand = Demand {
            pods: vec![PodDemand {
                role: Role::Driver,
                count: 1 + rng.below(4) as u32,
                cpu_milli: 250 * (1 + rng.below(8) as u64),
                mem_mib: 512 * (1 + rng.below(8) as u64),
            }],
        };
        store.insert_job(&new).await.unwrap();
        let adm = created + wait;
        match rng.below(11) {
            0 => s.queued.push(id),
            // Cancelled while queued; before it was created when the wait is under an hour.
            1 => step(store, &id, Queued, Cancelled, adm - H).await,
            2 => {
                walk(store, &id, &[(Admitted, adm), (Failed, adm + run)]).await;
                s.failed.push((id, created));
            }
            3..=5 => {
                let path = [
                    (Admitted, adm),
                    (Submitted, adm + 1000),
                    (Running, adm + 2000),
                    (Succeeded, adm + 2000 + run),
                ];
                walk(store, &id, &path).await;
            }
            6 => {
                let path = [
                    (Admitted, adm),
                    (Submitted, adm + 1000),
                    (Running, adm + 2000),
                ];
                walk(store, &id, &path).await;
                s.running.push((id, adm));
            }
            7 => {
                // Turned away by the backend, admitted again later.
                let path = [
                    (Admitted, adm),
                    (Queued, adm + run / 2),
                    (Admitted, adm + run),
                    (Submitted, adm + run + 1000),
                    (Running, adm + run + 2000),
                    (Succeeded, adm + 2 * run),
                ];
                walk(store, &id, &path).await;
            }
            8 => {
                store
                    .expire_queued(&id, adm, "waited too long")
                    .await
                    .unwrap();
                s.dead.push((id, created));
            }
            9 => {
                // Admitted by a clock up to two hours behind the one that created it.
                let early = created - rng.below(2 * H);
                let path = [
                    (Admitted, early),
                    (Submitted, early + 1000),
                    (Running, early + 2000),
                    (Succeeded, created + run),
                ];
                walk(store, &id, &path).await;
            }
            _ => {
                // Ended by a clock up to three hours behind the one that admitted it.
                let path = [(Admitted, adm), (Failed, adm - 1 - rng.below(3 * H))];
                walk(store, &id, &path).await;
            }
        }
    }
    s
}

fn only(namespace: Option<&str>, level: Option<&str>, q: HistoryQuery) -> HistoryQuery {
    HistoryQuery {
        namespace: namespace.map(String::from),
        level: level.map(String::from),
        ..q
    }
}

/// Ranges aligned on hours and not, steps of whole hours and not (buckets that cut hours),
/// ranges reaching before and after the jobs, and filters.
fn queries() -> Vec<HistoryQuery> {
    vec![
        hq(BASE, END, H),
        hq(BASE - 10 * H, BASE + 100 * H, 5 * H),
        hq(BASE + 17 * MIN, BASE + 79 * H, H),
        hq(BASE + 2 * H, BASE + 74 * H, 3 * H),
        hq(BASE + 30 * MIN, BASE + 70 * H, 90 * MIN),
        hq(BASE + 5 * H + 7 * MIN, BASE + 9 * H, 7 * MIN),
        hq(BASE + 24 * H, BASE + 48 * H, 24 * H),
        hq(BASE + 10 * H + 1, BASE + 77 * H, 25 * H),
        hq(BASE + 50 * H, BASE + 51 * H, MIN),
        hq(BASE + 38 * H, BASE + 42 * H, 20 * MIN),
        hq(BASE - 30 * H, BASE - 2 * H, H),
        only(Some("a"), None, hq(BASE, END, H)),
        only(
            None,
            Some("high"),
            hq(BASE + 17 * MIN, BASE + 79 * H, 2 * H),
        ),
        only(
            Some("b"),
            Some("normal"),
            hq(BASE + 3 * H, BASE + 60 * H, H),
        ),
        only(Some("zzz"), None, hq(BASE, END, H)),
    ]
}

/// The history computed from the jobs alone: rollups switched off for the one query.
async fn live_history(store: &Arc<dyn Store>, url: &str, q: &HistoryQuery) -> Vec<HistorySeries> {
    let mut conn = AnyConnection::connect(url).await.expect("raw connection");
    let next: Option<i64> = sqlx::query_scalar("SELECT next_hour FROM history_rollup")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.execute("UPDATE history_rollup SET next_hour = NULL")
        .await
        .unwrap();
    let live = store.history(q).await;
    sqlx::query("UPDATE history_rollup SET next_hour = $1")
        .bind(next)
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    live.unwrap_or_else(|e| panic!("live {q:?}: {e}"))
}

/// Every query of [`queries`] answers as computed live.
async fn check_live(store: &Arc<dyn Store>, url: &str, when: &str) {
    for q in queries() {
        let live = live_history(store, url, &q).await;
        let got = store.history(&q).await.unwrap();
        assert_eq!(got, live, "{when}: {q:?}");
    }
}

/// Calls `roll_up_history(now)` until it is done; returns the rows written and the last report.
async fn roll_all(store: &Arc<dyn Store>, now: i64) -> (u64, RollUp) {
    let mut rows = 0;
    for _ in 0..1000 {
        let r = store.roll_up_history(now).await.unwrap();
        rows += r.rows;
        if r.done {
            return (rows, r);
        }
    }
    panic!("roll_up_history({now}) still not done after 1000 calls");
}

/// One number from the database, behind the store's back.
async fn scalar(url: &str, sql: &str) -> i64 {
    let mut conn = AnyConnection::connect(url).await.expect("raw connection");
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
    n
}

async fn count_rows(url: &str) -> i64 {
    scalar(url, "SELECT COUNT(*) FROM history_hours").await
}

/// Rolled up in part (the first 39 hours), then wholly: the same answers as before any roll-up.
pub(crate) async fn history_rollups_match_live(store: Arc<dyn Store>, url: String) {
    seed(&store, 160).await;
    let mut want = Vec::new();
    for q in queries() {
        want.push(store.history(&q).await.unwrap());
    }
    assert!(
        want[0].len() == 6,
        "3 namespaces x 2 levels: {}",
        want[0].len()
    );

    // 40 hours after BASE, minus the margin: the 39 hours before BASE + 39 h and the ones
    // before BASE (jobs admitted before they were created) are rolled up; the rest is live.
    let (rows, r) = roll_all(&store, BASE + 40 * H).await;
    assert_eq!(r.rolled_until_hour, Some(BASE / H + 39));
    assert!(rows > 0);
    assert_eq!(count_rows(&url).await, rows as i64);
    for (q, w) in queries().iter().zip(&want) {
        assert_eq!(
            &store.history(q).await.unwrap(),
            w,
            "partly rolled up: {q:?}"
        );
    }

    let (more, r) = roll_all(&store, END).await;
    assert_eq!(r.rolled_until_hour, Some(END / H - 1));
    assert!(more > 0);
    for (q, w) in queries().iter().zip(&want) {
        assert_eq!(&store.history(q).await.unwrap(), w, "rolled up: {q:?}");
    }
    // Nothing more to do until time passes.
    let again = store.roll_up_history(END).await.unwrap();
    assert_eq!((again.rows, again.done), (0, true));
    assert_eq!(again.invalidated_from_hour, None);

    // The answers do come from the rollups: drop the first hour's rows behind the store's back
    // and they change; mark that hour stale and they are right again, and rolled up again.
    let q = hq(BASE - 10 * H, BASE + 100 * H, 5 * H);
    let first: i64 = scalar(&url, "SELECT MIN(hour) FROM history_hours").await;
    raw_sql(
        &url,
        &format!("DELETE FROM history_hours WHERE hour = {first}"),
    )
    .await;
    assert_ne!(store.history(&q).await.unwrap(), want[1]);
    raw_sql(
        &url,
        &format!("INSERT INTO history_stale (hour) VALUES ({first})"),
    )
    .await;
    assert_eq!(store.history(&q).await.unwrap(), want[1]);
    let r = store.roll_up_history(END).await.unwrap();
    assert_eq!(r.invalidated_from_hour, Some(first));
    roll_all(&store, END).await;
    assert_eq!(store.history(&q).await.unwrap(), want[1]);
    assert_eq!(count_rows(&url).await, (rows + more) as i64);
}

/// Writes with times inside rolled-up hours make those hours stale at once (the answers stay
/// those computed live) and the next roll-up rolls them up again; writes at the present do not.
pub(crate) async fn history_rollups_follow_old_writes(store: Arc<dyn Store>, url: String) {
    let seeded = seed(&store, 120).await;
    roll_all(&store, END).await;
    check_live(&store, &url, "rolled up").await;
    let first_stale = |r: &RollUp| r.invalidated_from_hour;

    // A job backfilled 70 hours into the past.
    let created = BASE + 10 * H + 7 * MIN;
    store
        .insert_job(&job("late", "a", "high", created))
        .await
        .unwrap();
    check_live(&store, &url, "backfilled insert").await;
    walk(
        &store,
        "late",
        &[(Admitted, created + 20 * MIN), (Failed, created + 3 * H)],
    )
    .await;
    check_live(&store, &url, "backfilled life").await;
    let r = store.roll_up_history(END).await.unwrap();
    assert_eq!(first_stale(&r), Some(created.div_euclid(H)));
    roll_all(&store, END).await;
    check_live(&store, &url, "backfill rolled up again").await;

    // A run sent back to its queue long after it was admitted: its admission leaves the history.
    let (id, admitted) = seeded.running.first().expect("a running job").clone();
    step(&store, &id, Running, Queued, END - 30 * MIN).await;
    check_live(&store, &url, "run sent back").await;
    let r = store.roll_up_history(END).await.unwrap();
    assert_eq!(first_stale(&r), Some(admitted.div_euclid(H)));
    roll_all(&store, END).await;
    check_live(&store, &url, "run sent back, rolled up again").await;

    // A dead letter requeued (its first pass leaves the history) and another purged.
    let (requeued, c1) = seeded.dead[0].clone();
    let (purged, c2) = seeded.dead[1].clone();
    store
        .requeue_dead_letter(&Requeue {
            id: requeued,
            at_ms: END - 20 * MIN,
            place: RequeuePlace::Tail,
            message: "again".into(),
        })
        .await
        .unwrap();
    let deleted = store
        .delete_jobs(JobSet::DeadLetters, std::slice::from_ref(&purged))
        .await
        .unwrap();
    assert_eq!(deleted, [purged]);
    check_live(&store, &url, "requeue and purge").await;
    let r = store.roll_up_history(END).await.unwrap();
    assert_eq!(first_stale(&r), Some(c1.min(c2).div_euclid(H)));
    roll_all(&store, END).await;
    check_live(&store, &url, "requeue and purge, rolled up again").await;

    // A failed job retried: its failed pass leaves the history.
    let (retried, c3) = seeded.failed[0].clone();
    store
        .retry_job(&RetryJob {
            id: retried,
            attempt: 1,
            at_ms: END - 10 * MIN,
            eligible_at_ms: END - 5 * MIN,
            message: "retry".into(),
            stored: None,
            demand: None,
        })
        .await
        .unwrap();
    check_live(&store, &url, "retry").await;
    let r = store.roll_up_history(END).await.unwrap();
    assert_eq!(first_stale(&r), Some(c3.div_euclid(H)));
    roll_all(&store, END).await;

    // Writes at the present (in the hour not yet rolled up) leave the rollups alone, even for a
    // job that has waited since a rolled-up hour.
    step(&store, &seeded.queued[0], Queued, Admitted, END - MIN).await;
    store
        .insert_job(&job("now", "b", "normal", END - 2 * MIN))
        .await
        .unwrap();
    let r = store.roll_up_history(END).await.unwrap();
    assert_eq!((first_stale(&r), r.rows), (None, 0));
    check_live(&store, &url, "writes at the present").await;
}

/// Two stores on one database (two servers) rolling up at the same time write each hour once.
pub(crate) async fn history_rollups_two_stores(store: Arc<dyn Store>, url: String) {
    seed(&store, 80).await;
    let other = open(&url).await.expect("open a second store");
    let mut tasks = Vec::new();
    for s in [store.clone(), other.clone()] {
        tasks.push(tokio::spawn(async move { roll_all(&s, END).await.0 }));
    }
    let mut rows = 0;
    for t in tasks {
        rows += t.await.unwrap();
    }
    assert_eq!(count_rows(&url).await, rows as i64);
    check_live(&store, &url, "rolled up by two stores").await;
    other.close().await;
}
