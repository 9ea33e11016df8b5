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
        insert_jobs_concurrent_batches,
        transitions_batch,
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
use batch::{insert_jobs_batch, insert_jobs_concurrent_batches, transitions_batch};

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

// ---------------------------------------------------------------------------------------------
// Checks

async fn insert_get_round_trip(store: Arc<dyn Store>) {
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

async fn duplicate_id(store: Arc<dyn Store>) {
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

async fn every_legal_transition(store: Arc<dyn Store>) {
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

async fn illegal_transitions_change_nothing(store: Arc<dyn Store>) {
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

async fn transition_of_missing_job(store: Arc<dyn Store>) {
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

async fn cas_conflict(store: Arc<dyn Store>) {
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

async fn cas_conflict_concurrent(store: Arc<dyn Store>) {
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

async fn timestamps(store: Arc<dyn Store>) {
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

async fn requeue_keeps_place(store: Arc<dyn Store>) {
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
async fn requeue_after_run_is_a_new_attempt(store: Arc<dyn Store>) {
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

async fn events_history(store: Arc<dyn Store>) {
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

async fn notes(store: Arc<dyn Store>) {
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

async fn survives_reopen(store: Arc<dyn Store>, url: String) {
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

async fn two_stores_one_database(store: Arc<dyn Store>, url: String) {
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

async fn raw_sql(url: &str, sql: &str) {
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

async fn corrupt_rows_are_reported(store: Arc<dyn Store>, url: String) {
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
