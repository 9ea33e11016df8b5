//! Hostile input through the real router (`app(state)` with `oneshot`), each case on SQLite and
//! on PostgreSQL: NUL characters in a job, over-long multi-byte labels, absurd Spark numbers, NUL
//! in list filters, and a failure message with a NUL that must not wedge the tick. The backend is
//! the simulated one on a driven clock (no process is spawned).
//!
//! PostgreSQL: `SLUICE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is
//! used to create a fresh database per test, dropped afterwards; the tests fail (never skip) if
//! it is unreachable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use common::app;
use common::{call, raw};
use serde_json::Value;
use sluice_backend::clock::ManualClock;
use sluice_backend::simulated::{SimulatedBackend, SimulatedConfig};
use sluice_backend::{
    Backend, BackendError, CapacityReport, LogChunk, RunRef, RunStatus, SubmitRequest, Submitted,
};
use sluice_core::job::{Demand, JobState};
use sluice_core::spec::Job;
use sluice_server::AppState;
use sluice_server::config::Config;
use sluice_server::tick::tick;
use sluice_store::Store;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};

const T0: i64 = 1_800_000_000_000;
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The simulated backend, except that a failed run's message carries a NUL character (as a
/// misbehaving backend or a process's output might).
#[derive(Debug)]
struct NulMessages(SimulatedBackend);

#[async_trait::async_trait]
impl Backend for NulMessages {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        self.0.capacity().await
    }
    fn demand(&self, job: &Job) -> Result<Demand, BackendError> {
        self.0.demand(job)
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        self.0.submit(req).await
    }
    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        Ok(match self.0.status(run).await? {
            RunStatus::Failed { exit_code, message } => RunStatus::Failed {
                exit_code,
                message: format!("{message}; stderr: bad\0byte"),
            },
            other => other,
        })
    }
    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        self.0.cancel(run).await
    }
    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        self.0.logs(run, offset, max_bytes).await
    }
}

struct Env {
    state: AppState,
    clock: ManualClock,
}

async fn env_on(store: Arc<dyn Store>, dir: &std::path::Path) -> Env {
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..common::commands_allowed()
    };
    config.validate().unwrap();
    let clock = ManualClock::new(T0);
    let sim = SimulatedBackend::new(&SimulatedConfig::default(), Arc::new(clock.clone())).unwrap();
    let state = AppState::with_clock(
        store,
        Arc::new(NulMessages(sim)),
        config,
        Arc::new(clock.clone()),
    );
    common::bootstrap(&state).await;
    Env { state, clock }
}

/// Runs `test` on a fresh SQLite file.
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = sluice_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    test(env_on(store, dir.path()).await).await;
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

/// Runs `test` on a fresh PostgreSQL database, dropped afterwards (also when the test panics).
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
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
                "PostgreSQL is unreachable at {} ({e}); set SLUICE_TEST_POSTGRES_URL",
                sluice_store::redact_url(&admin_url)
            )
        });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let database = format!(
        "sluice_h_{}_{}_{}",
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
        let dir = tempfile::tempdir().unwrap();
        let store = sluice_store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        test(env_on(store.clone(), dir.path()).await).await;
        store.close().await;
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

/// `sqlite::NAME` and `postgres::NAME` tests for each case.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::on_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::on_postgres(super::$name).await;
                }
            )*
        }
    };
}

on_both!(
    nul_in_a_command_is_refused_naming_the_field,
    long_multibyte_labels_are_refused_and_short_ones_kept,
    absurd_spark_cores_are_refused_naming_the_field,
    nul_in_list_filters_is_a_bad_request,
    a_nul_in_a_failure_message_does_not_wedge_the_tick,
);

fn error_of(v: &Value) -> String {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {v}"))
        .to_string()
}

/// How many jobs the store lists (all namespaces).
async fn stored(e: &Env) -> usize {
    let (st, v) = call(&app(e.state.clone()), "GET", "/v1/jobs", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["jobs"].as_array().unwrap().len()
}

async fn nul_in_a_command_is_refused_naming_the_field(e: Env) {
    let r = app(e.state.clone());
    // YAML's "\0" escape is a NUL character.
    let cases = [
        (
            "name: a\ncommand:\n  argv: [\"echo\", \"x\\0y\"]\n  cpu: 100m\n  memory: 32m\n",
            "command.argv",
        ),
        (
            "name: b\ncommand:\n  argv: [\"true\"]\n  workingDir: \"/tmp/\\0x\"\n  cpu: 100m\n  memory: 32m\n",
            "command.workingDir",
        ),
    ];
    for (body, field) in cases {
        let (st, v) = call(&r, "POST", "/v1/jobs", body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        let msg = error_of(&v);
        assert!(msg.contains(field), "{msg:?} does not name {field}");
        assert!(!msg.contains('\0'), "the message echoes the NUL: {msg:?}");
    }
    assert_eq!(stored(&e).await, 0, "nothing is stored");
}

async fn long_multibyte_labels_are_refused_and_short_ones_kept(e: Env) {
    let r = app(e.state.clone());
    let job = |name: &str, value: &str| {
        format!(
            "name: {name}\nlabels: {{team: \"{value}\"}}\ncommand:\n  argv: [\"true\"]\n  cpu: 100m\n  memory: 32m\n"
        )
    };
    // 1025 characters of three bytes each: over the limit, cut on no byte boundary.
    let long = "日".repeat(1025);
    let (st, v) = call(&r, "POST", "/v1/jobs", &job("long", &long)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let msg = error_of(&v);
    assert!(msg.contains("labels.team"), "{msg:?}");
    assert_eq!(stored(&e).await, 0);
    // 1024 of them (3072 bytes) is within the limit, and comes back as it went in.
    let ok = "日".repeat(1024);
    let (st, v) = call(&r, "POST", "/v1/jobs", &job("ok", &ok)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    let (_, v) = call(&r, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(v["labels"]["team"], ok.as_str());
    // And it can be filtered on.
    let (st, v) = call(
        &r,
        "GET",
        &format!("/v1/jobs?label=team%3D{}", "%E6%97%A5".repeat(1024)),
        "",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1, "{v}");
}

async fn absurd_spark_cores_are_refused_naming_the_field(e: Env) {
    let r = app(e.state.clone());
    let spark = |driver: &str, conf: &str| {
        format!(
            "name: pi\nspark:\n  type: Python\n  mainApplicationFile: /nowhere/pi.py\n{conf}  driver: {{{driver}memory: 512m}}\n  executor: {{cores: 1, instances: 1, memory: 512m}}\n"
        )
    };
    let cases = [
        (spark("cores: 18446744073709552, ", ""), "driver.cores"),
        (
            spark(
                "",
                "  sparkConf: {spark.driver.cores: \"18446744073709552\"}\n",
            ),
            "spark.driver.cores",
        ),
    ];
    for (body, field) in &cases {
        let (st, v) = call(&r, "POST", "/v1/jobs", body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        let msg = error_of(&v);
        assert!(msg.contains(field), "{msg:?} does not name {field}");
    }
    assert_eq!(stored(&e).await, 0, "nothing is stored");
    tick(&e.state).await.unwrap();
    assert_eq!(stored(&e).await, 0, "nothing is admitted");
}

async fn nul_in_list_filters_is_a_bad_request(e: Env) {
    let r = app(e.state.clone());
    let (st, _) = call(
        &r,
        "POST",
        "/v1/jobs",
        "name: a\nlabels: {team: data}\ncommand:\n  argv: [\"true\"]\n  cpu: 100m\n  memory: 32m\n",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    for (query, field) in [
        ("label=team%3Dda%00ta", "label"),
        ("label=te%00am%3Ddata", "label"),
        ("name=a%00", "name"),
        ("namespace=default%00", "namespace"),
    ] {
        let (st, ctype, body) = raw(&r, "GET", &format!("/v1/jobs?{query}"), "").await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(ctype.contains("json"), "{query}: {ctype}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let msg = error_of(&v);
        assert!(
            msg.contains(field),
            "{query}: {msg:?} does not name {field}"
        );
        for db in [
            "sqlx",
            "sqlite",
            "postgres",
            "SQLSTATE",
            "22021",
            "invalid byte sequence",
        ] {
            assert!(
                !body.to_lowercase().contains(&db.to_lowercase()),
                "{query}: database text {db:?} in {body}"
            );
        }
    }
    // The filters still work without the NUL.
    let (st, v) = call(&r, "GET", "/v1/jobs?label=team%3Ddata&name=a", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1, "{v}");
}

async fn a_nul_in_a_failure_message_does_not_wedge_the_tick(e: Env) {
    let r = app(e.state.clone());
    let submit = |name: &str, extra: &str| {
        format!("name: {name}\n{extra}command:\n  argv: [\"true\"]\n  cpu: 100m\n  memory: 32m\n")
    };
    let (st, v) = call(
        &r,
        "POST",
        "/v1/jobs",
        &submit(
            "bad",
            "labels: {sluice.io/sim-outcome: fail, sluice.io/sim-duration: 1m}\n",
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let bad = v["id"].as_str().unwrap().to_string();
    tick(&e.state).await.unwrap();
    assert_eq!(
        e.state.store.get_job(&bad).await.unwrap().unwrap().state,
        JobState::Submitted
    );
    // It fails with a message that carries a NUL; another job waits to be admitted.
    let (st, v) = call(&r, "POST", "/v1/jobs", &submit("next", "")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let next = v["id"].as_str().unwrap().to_string();
    e.clock.advance(61_000);
    tick(&e.state).await.unwrap();
    let rec = e.state.store.get_job(&next).await.unwrap().unwrap();
    assert!(
        matches!(rec.state, JobState::Submitted | JobState::Running),
        "the next job was not admitted: {:?}",
        rec.state
    );
    // The failure itself is recorded, its message without the NUL.
    let rec = e.state.store.get_job(&bad).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Failed);
    let message = rec.message.unwrap_or_default();
    assert!(message.contains("exit code 1"), "{message:?}");
    assert!(!message.contains('\0'), "{message:?}");
    assert!(message.contains("bad\u{FFFD}byte"), "{message:?}");
    assert!(e.state.aside.is_empty());
    // And the ticks go on.
    e.clock.advance(1_000);
    tick(&e.state).await.unwrap();
    let (st, v) = call(&r, "GET", &format!("/v1/jobs/{bad}"), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "failed");
}
