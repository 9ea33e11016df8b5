//! One conformance suite for every [`Store`] backend.
//!
//! Each check is written once, as `async fn check(store: Arc<dyn Store>)` (or, for the few that
//! must reach the database behind the store's back, `async fn check(store, url)`), and the
//! `conformance!` macro turns it into `sqlite::check` and `postgres::check` tests.
//!
//! SQLite: a fresh file in a temporary directory per test.
//! PostgreSQL: `SLUICE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is
//! used to create a fresh database per test (`sluice_t_...`), dropped afterwards, so tests run in
//! parallel. If PostgreSQL is unreachable the postgres tests fail (they are never skipped).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use sluice_core::document::parse_stored;
use sluice_core::job::{Demand, JobEvent, JobState, PodDemand, Role};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::spec::{Levels, ParseOptions};
use sluice_core::stored::StoredJob;
use sluice_store::{
    HistoryPoint, HistoryQuery, HistorySeries, JobFilter, QueueStat, Store, StoreError, Transition,
    open,
};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor};

use JobState::*;

// ---------------------------------------------------------------------------------------------
// Harness

/// The stored job of a document given as JSON (which is YAML), parsed as the API parses a submit.
pub(crate) fn stored_doc(doc: serde_json::Value) -> StoredJob {
    let levels = Levels::default();
    parse_stored(
        &doc.to_string(),
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap()
}

/// The stored job of a command job running `argv`.
pub(crate) fn stored_command(argv: &[&str]) -> StoredJob {
    stored_doc(json!({"name": "etl", "namespace": "ns", "command": {"argv": argv}}))
}

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs `test` against a store on a fresh SQLite file.
async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("sluice.db").display());
    let store = open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    test(store, url).await;
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// Runs `test` against a store on a fresh PostgreSQL database, dropped afterwards (also when
/// the test panics).
async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin_url =
        std::env::var("SLUICE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    sqlx::any::install_default_drivers();
    let mut admin = AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {} ({e}). The postgres conformance tests need a \
                 running PostgreSQL: start one, or set SLUICE_TEST_POSTGRES_URL to the URL of a \
                 database whose user may CREATE DATABASE.",
                sluice_store::redact_url(&admin_url)
            )
        });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let database = format!(
        "sluice_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    (&mut admin)
        .execute(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {database}: {e}"));
    let url = with_database(&admin_url, &database);
    let outcome = tokio::spawn(async move {
        let store = open(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        test(store, url).await;
    })
    .await;
    let dropped = (&mut admin)
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )))
        .await;
    let _ = admin.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
    if let Err(e) = dropped {
        panic!("DROP DATABASE {database}: {e}");
    }
}

/// Generates `sqlite::NAME` and `postgres::NAME` tests for each check.
macro_rules! conformance {
    (store: [$($name:ident),* $(,)?], store_and_url: [$($uname:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::run_sqlite(|store, _url| super::$name(store)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $uname() {
                    crate::run_sqlite(super::$uname).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::run_postgres(|store, _url| super::$name(store)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $uname() {
                    crate::run_postgres(super::$uname).await;
                }
            )*
        }
    };
}

conformance! {
    store: [
        insert_get_round_trip,
        duplicate_id,
        every_legal_transition,
        illegal_transitions_change_nothing,
        transition_of_missing_job,
        cas_conflict,
        cas_conflict_concurrent,
        timestamps,
        requeue_keeps_place,
        requeue_after_run_is_a_new_attempt,
        events_history,
        notes,
        list_filters,
        pagination_with_ties,
        jobs_in_states_order,
        queue_stats,
        many_jobs_paged,
        history_series,
        history_series_hourly,
        history_percentiles,
        history_bad_queries,
        schedules_crud,
        update_schedule_keeps_its_history,
        fire_schedule_compare_and_set,
        retry_then_dead_letter,
        expire_and_requeue,
        select_and_purge,
        queue_deadline_follows_the_queue,
        queue_deadline_order_and_limit,
        preemption_requeues_without_using_a_retry,
        nul_in_messages_is_stored_sanitized,
        nul_in_values_is_invalid_input,
        closed_store_is_unavailable,
        tokens_round_trip_and_revoke,
        lists_and_selections_keep_to_the_namespaces_given,
        audit_log_filters_and_retention,
        audit_batch,
        insert_jobs_batch,
        insert_jobs_audited_batch,
        insert_jobs_concurrent_batches,
        transitions_batch,
        transitions_batch_same_shape,
        lease_is_held_by_one_holder_at_a_time,
        expired_lease_goes_to_another_holder,
        concurrent_acquisitions_have_one_winner,
        fenced_store_writes_nothing_after_a_takeover,
        usage_records_round_trip_and_filter,
        run_results_round_trip_and_go_with_their_job,
        schedule_template_is_replaced_on_request,
        workflows_apply_idempotently,
        workflow_runs_and_steps,
        workflow_fire_compare_and_set,
    ],
    store_and_url: [
        change_feed_reports_other_writers,
        survives_reopen,
        two_stores_one_database,
        corrupt_rows_are_reported,
        history_backfill,
        orchestration_survives_reopen,
        history_rollups_match_live,
        history_rollups_follow_old_writes,
        history_rollups_two_stores,
        queue_deadline_backfill,
        tokens_are_stored_as_given_hashes,
    ],
}

// Listing: filters, pagination, order, queue statistics.
#[path = "conformance_list/mod.rs"]
mod list;
use list::{
    jobs_in_states_order, list_filters, many_jobs_paged, pagination_with_ties, queue_stats,
};

// The history computed live from the jobs.
#[path = "conformance_history/mod.rs"]
mod history;
use history::{
    history_backfill, history_bad_queries, history_percentiles, history_series,
    history_series_hourly,
};

// Run results (job kinds: a dbt run's nodes).
#[path = "conformance_results/mod.rs"]
mod results;
use results::run_results_round_trip_and_go_with_their_job;

// Usage records (cost intelligence).
#[path = "conformance_usage/mod.rs"]
mod usage;
use usage::{schedule_template_is_replaced_on_request, usage_records_round_trip_and_filter};

// Workflows: definitions, runs and steps.
#[path = "conformance_workflow/mod.rs"]
mod workflow;
use workflow::{
    workflow_fire_compare_and_set, workflow_runs_and_steps, workflows_apply_idempotently,
};

// Orchestration checks (schedules, retries, dead-letter queue, purge) live in their own file.
#[path = "conformance_orch/mod.rs"]
mod orch;
use orch::{
    expire_and_requeue, fire_schedule_compare_and_set, orchestration_survives_reopen,
    preemption_requeues_without_using_a_retry, queue_deadline_backfill,
    queue_deadline_follows_the_queue, queue_deadline_order_and_limit, retry_then_dead_letter,
    schedules_crud, select_and_purge,
};

// Store::update_schedule (sluice apply -f).
#[path = "conformance_update/mod.rs"]
mod update;
use update::update_schedule_keeps_its_history;

// Batched writes (group commit): Store::insert_jobs and Store::transitions.
#[path = "conformance_batch/mod.rs"]
mod batch;
use batch::{
    insert_jobs_audited_batch, insert_jobs_batch, insert_jobs_concurrent_batches,
    transitions_batch, transitions_batch_same_shape,
};

// History rollups (Store::roll_up_history) checked against the history computed live.
#[path = "conformance_rollup/mod.rs"]
mod rollup;
use rollup::{
    history_rollups_follow_old_writes, history_rollups_match_live, history_rollups_two_stores,
};

// The store's rules for text (NUL and control characters) and unavailability.
#[path = "conformance_text/mod.rs"]
mod text;
use text::{
    closed_store_is_unavailable, nul_in_messages_is_stored_sanitized,
    nul_in_values_is_invalid_input,
};

// API tokens, namespace scopes and the audit log.
#[path = "conformance_auth/mod.rs"]
mod auth;
use auth::{
    audit_batch, audit_log_filters_and_retention,
    lists_and_selections_keep_to_the_namespaces_given, tokens_are_stored_as_given_hashes,
    tokens_round_trip_and_revoke,
};

// Replicas: the leader's lease, fenced writes and the change feed.
#[path = "conformance_lease/mod.rs"]
mod lease;
use lease::{
    change_feed_reports_other_writers, concurrent_acquisitions_have_one_winner,
    expired_lease_goes_to_another_holder, fenced_store_writes_nothing_after_a_takeover,
    lease_is_held_by_one_holder_at_a_time,
};

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let err = match open("postgres://postgres@127.0.0.1:1/nope").await {
        Err(e) => e,
        Ok(_) => panic!("opened a store on port 1"),
    };
    assert!(err.is_unavailable(), "{err:?}");
}

/// SQLite busy past the busy timeout (another process holds the write lock) is unavailability.
#[tokio::test]
async fn sqlite_busy_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("busy.db").display());
    let store = open(&url).await.unwrap();
    let mut other = AnyConnection::connect(&url).await.unwrap();
    other.execute("BEGIN EXCLUSIVE").await.unwrap();
    let started = std::time::Instant::now();
    let err = store
        .insert_job(&job("b", "ns", "high", 1))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    // Classified by SQLite's own code (SQLITE_BUSY), not by a pool timeout.
    assert!(
        matches!(&err, StoreError::Unavailable(sqlx::Error::Database(_))),
        "{err:?}"
    );
    assert!(started.elapsed().as_secs() >= 4, "{:?}", started.elapsed());
    other.execute("ROLLBACK").await.unwrap();
    // Once the lock is released, the store works again.
    store.insert_job(&job("b", "ns", "high", 1)).await.unwrap();
    other.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn open_rejects_unknown_urls() {
    for url in ["mysql://u:secret@h/db", "/tmp/x.db", "sqlite://", ""] {
        match open(url).await {
            Err(e @ StoreError::BadUrl(_)) => {
                let msg = e.to_string();
                assert!(msg.contains("sqlite://PATH"), "{msg}");
                assert!(!msg.contains("secret"), "password leaked: {msg}");
            }
            Err(e) => panic!("{url:?}: expected BadUrl, got {e}"),
            Ok(_) => panic!("{url:?}: expected BadUrl, got a store"),
        }
    }
}

#[tokio::test]
async fn open_memory_sqlite() {
    let store = open("sqlite::memory:").await.expect("open sqlite::memory:");
    store.insert_job(&job("m1", "ns", "high", 1)).await.unwrap();
    assert!(store.get_job("m1").await.unwrap().is_some());
}

#[tokio::test]
async fn open_reports_unreachable_databases() {
    let started = std::time::Instant::now();
    let err = match open("postgres://postgres:secret@127.0.0.1:1/nope").await {
        Err(e) => e,
        Ok(_) => panic!("opened a store on port 1"),
    };
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("secret"),
        "{msg}"
    );
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing-dir/x.db", dir.path().display());
    assert!(matches!(open(&url).await, Err(StoreError::Connect { .. })));
}

#[tokio::test]
async fn sqlite_file_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wal.db").display());
    let store = open(&url).await.unwrap();
    store.insert_job(&job("w", "ns", "high", 1)).await.unwrap();
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
    store.close().await;
}

#[test]
fn database_urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn demand() -> Demand {
    Demand {
        pods: vec![
            PodDemand {
                role: Role::Driver,
                count: 1,
                cpu_milli: 1000,
                mem_mib: 1408,
            },
            PodDemand {
                role: Role::Executor,
                count: 3,
                cpu_milli: 2000,
                mem_mib: 2432,
            },
        ],
    }
}

pub(crate) fn job(id: &str, namespace: &str, level: &str, created_at_ms: i64) -> NewJob {
    NewJob {
        id: id.to_string(),
        namespace: namespace.to_string(),
        name: "etl".to_string(),
        level: level.to_string(),
        labels: BTreeMap::new(),
        stored: stored_command(&["true"]),
        demand: demand(),
        created_at_ms,
    }
}

fn labelled(mut j: NewJob, labels: &[(&str, &str)]) -> NewJob {
    j.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    j
}

fn tr(id: &str, from: JobState, to: JobState, at_ms: i64) -> Transition {
    Transition::new(id, from, to, at_ms, format!("{from} -> {to}"))
}

/// The states a fresh job passes through to reach `state`, if it can.
fn path_to(state: JobState) -> &'static [JobState] {
    match state {
        Queued => &[],
        Admitted => &[Admitted],
        Submitted => &[Admitted, Submitted],
        Running => &[Admitted, Submitted, Running],
        Succeeded => &[Admitted, Submitted, Running, Succeeded],
        Failed => &[Admitted, Failed],
        Cancelled => &[Cancelled],
    }
}

/// Moves a queued job along `path_to(state)`, one millisecond apart from `at_ms` on.
async fn drive(store: &Arc<dyn Store>, id: &str, state: JobState, at_ms: i64) -> JobRecord {
    let mut current = Queued;
    let mut rec = None;
    for (i, &next) in path_to(state).iter().enumerate() {
        rec = Some(
            store
                .transition(&tr(id, current, next, at_ms + i as i64))
                .await
                .unwrap_or_else(|e| panic!("drive {id} {current} -> {next}: {e}")),
        );
        current = next;
    }
    match rec {
        Some(r) => r,
        None => store.get_job(id).await.unwrap().unwrap(),
    }
}

fn ids(jobs: &[JobRecord]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

async fn list_ids(store: &Arc<dyn Store>, filter: &JobFilter) -> Vec<String> {
    let page = store.list_jobs(filter, 1000, None).await.unwrap();
    assert!(page.next_cursor.is_none());
    page.jobs.into_iter().map(|j| j.id).collect()
}

// One job's life: insert, transitions, compare-and-set, requeue, events, reopening.
#[path = "conformance_jobs/mod.rs"]
mod jobs;
use jobs::{
    cas_conflict, cas_conflict_concurrent, corrupt_rows_are_reported, duplicate_id, events_history,
    every_legal_transition, illegal_transitions_change_nothing, insert_get_round_trip, notes,
    raw_sql, requeue_after_run_is_a_new_attempt, requeue_keeps_place, survives_reopen, timestamps,
    transition_of_missing_job, two_stores_one_database,
};

// ---------------------------------------------------------------------------------------------
// History (Store::history)

/// The total demand of [`demand`]: one 1000m / 1408 MiB driver and three 2000m / 2432 MiB
/// executors.
const CPU: u64 = 7000;
const MEM: u64 = 8704;

fn hq(from_ms: i64, to_ms: i64, step_ms: i64) -> HistoryQuery {
    HistoryQuery {
        from_ms,
        to_ms,
        step_ms,
        namespace: None,
        level: None,
    }
}
