//! Store failover on PostgreSQL: after the database host "reboots" (every open connection goes
//! silent, new connections work) the store recovers within seconds, and a call caught on a
//! silent connection fails as unavailable instead of hanging.
//!
//! A TCP proxy written here (127.0.0.1, free port) stands between the store and PostgreSQL
//! (`SLUICE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`, whose user
//! may CREATE DATABASE; a fresh database per test, dropped afterwards). `Proxy::silence` makes
//! every connection open at that moment stop forwarding both ways while keeping its sockets
//! open; connections made afterwards are forwarded as usual.
//!
//! Prints the measured recovery times (`--nocapture`); see BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_core::document::parse_stored;
use sluice_core::job::{Demand, JobState, PodDemand, Role};
use sluice_core::record::NewJob;
use sluice_core::spec::{Levels, ParseOptions};
use sluice_store::{Store, StoreError, Transition, open};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Longer than any wait the store may take: a call still running after this is a hang.
const HANG: Duration = Duration::from_secs(20);
/// The store's PostgreSQL pool size (docs/configuration.md).
const POOL: usize = 10;

// ---------------------------------------------------------------------------------------------
// The proxy

/// A TCP proxy to `upstream` whose open connections can be made silent.
struct Proxy {
    port: u16,
    /// Connections numbered below this value are silent.
    silence: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (silence, _) = watch::channel(0u64);
        let watch = silence.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                // This connection is silenced by the next `silence()`.
                let generation = *watch.borrow();
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(
                    client_read,
                    server_write,
                    generation,
                    watch.subscribe(),
                ));
                tokio::spawn(pump(
                    server_read,
                    client_write,
                    generation,
                    watch.subscribe(),
                ));
            }
        });
        Proxy {
            port,
            silence,
            accept,
        }
    }

    /// Every connection open now stops forwarding, both ways, and keeps its sockets open.
    fn silence(&self) {
        self.silence.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to` until either ends, or until the connection (numbered `generation`) is
/// silenced: then holds both sockets open, forwarding nothing, until the runtime ends.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    generation: u64,
    mut silence: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = silence.wait_for(|g| *g > generation) => break,
        };
        if *silence.borrow() > generation {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _open = (from, to);
    std::future::pending::<()>().await;
}

// ---------------------------------------------------------------------------------------------
// Harness

fn admin_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// `url` with its database replaced by `database` and, if given, its host:port by `authority`
/// (the user part is kept).
fn rewrite(url: &str, database: &str, authority: Option<&str>) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let mut head = base[..end].to_string();
    if let Some(authority) = authority {
        let host_start = head[start..].rfind('@').map_or(start, |i| start + i + 1);
        head.replace_range(host_start.., authority);
    }
    format!("{head}/{database}{query}")
}

/// host:port of a PostgreSQL URL (5432 if no port).
fn upstream_of(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

fn job(id: &str) -> NewJob {
    let levels = Levels::default();
    let stored = parse_stored(
        &json!({"name": "etl", "namespace": "ns", "command": {"argv": ["true"]}}).to_string(),
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap();
    NewJob {
        id: id.to_string(),
        namespace: "ns".to_string(),
        name: "etl".to_string(),
        level: "default".to_string(),
        labels: BTreeMap::new(),
        stored,
        demand: Demand {
            pods: vec![PodDemand {
                role: Role::Driver,
                count: 1,
                cpu_milli: 1000,
                mem_mib: 1024,
            }],
        },
        created_at_ms: 1_000,
    }
}

/// A store call, failing the test if it outlives [`HANG`].
async fn within<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} still running after {HANG:?}: the store hangs"))
}

/// Calls `get_job` every 50 ms until one succeeds; returns how long that took and the errors
/// seen meanwhile (each must be "unavailable").
async fn until_recovered(store: &Arc<dyn Store>, id: &str) -> Duration {
    let start = Instant::now();
    loop {
        match within("get_job", store.get_job(id)).await {
            Ok(found) => {
                assert!(found.is_some(), "job {id} lost");
                return start.elapsed();
            }
            Err(e) => assert!(e.is_unavailable(), "not an unavailable error: {e:?}"),
        }
        assert!(start.elapsed() < HANG, "no recovery within {HANG:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_recovers_when_its_connections_go_silent() {
    let db = FreshDatabase::create().await;
    let proxy = Proxy::start(upstream_of(&db.admin_url)).await;
    let direct_url = rewrite(&db.admin_url, &db.database, None);
    let proxied_url = rewrite(
        &db.admin_url,
        &db.database,
        Some(&format!("127.0.0.1:{}", proxy.port)),
    );
    scenario(proxy, proxied_url, direct_url).await;
}

/// After a failover the old primary may come back as a standby, and connections still open to
/// it refuse every write (SQLSTATE 25006): such a write is "unavailable", and the store replaces
/// its connections at once instead of failing on each of them in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_as_read_only_replaces_the_connections() {
    let db = FreshDatabase::create().await;
    let url = rewrite(&db.admin_url, &db.database, None);
    let store = open(&url).await.unwrap();
    store.insert_job(&job("before")).await.unwrap();

    // The store's connections become read-only ones: new sessions of the database are read only,
    // and its current sessions end (the pool replaces them).
    let mut admin = AnyConnection::connect(&url).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            db.database
        )))
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    let mut refused = None;
    for i in 0..5 {
        match within("a write", store.insert_job(&job(&format!("ro{i}")))).await {
            Ok(record) => panic!("a write succeeded on a read-only database: {record:?}"),
            Err(e) if e.detail().contains("read-only transaction") => {
                refused = Some(e);
                break;
            }
            // The first call may meet a connection that was just ended.
            Err(e) => assert!(e.is_unavailable(), "{e:?}"),
        }
    }
    let refused = refused.expect("a write refused as read only");
    assert!(refused.is_unavailable(), "{refused:?}");

    // The database is writable again (the new primary): the next writes succeed, on new
    // connections, not on the read-only one the pool still holds.
    admin
        .execute(AssertSqlSafe(format!(
            "ALTER DATABASE {} RESET default_transaction_read_only",
            db.database
        )))
        .await
        .unwrap();
    // (The read-only connection is given back to the pool after a ping or two: let it settle,
    // so that without the replacement the next writes would meet it.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..3 {
        within("a write", store.insert_job(&job(&format!("after{i}"))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = admin.close().await;
    within("close", store.close()).await;
}

/// A database made for one test (on the server of `SLUICE_TEST_POSTGRES_URL`), dropped when
/// the test ends, passed or not.
struct FreshDatabase {
    admin_url: String,
    database: String,
}

impl FreshDatabase {
    async fn create() -> FreshDatabase {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        sqlx::any::install_default_drivers();
        let admin_url = admin_url();
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is unreachable at {} ({e}): start one, or set \
                     SLUICE_TEST_POSTGRES_URL",
                    sluice_store::redact_url(&admin_url)
                )
            });
        let database = format!(
            "sluice_failover_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .await
            .unwrap();
        let _ = admin.close().await;
        FreshDatabase {
            admin_url,
            database,
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (url, database) = (self.admin_url.clone(), self.database.clone());
        // Own thread and runtime: this may run while the test's runtime unwinds.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = AnyConnection::connect(&url).await?;
                    admin
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                        )))
                        .await?;
                    admin.close().await
                })
        })
        .join();
        if !std::thread::panicking() {
            dropped.unwrap().unwrap();
        }
    }
}

async fn scenario(proxy: Proxy, proxied_url: String, direct_url: String) {
    let store = open(&proxied_url).await.unwrap();

    // Work through several pool connections at once, so the pool holds several when they die.
    let inserts = (0..POOL).map(|i| {
        let store = store.clone();
        async move { store.insert_job(&job(&format!("j{i}"))).await }
    });
    for result in futures_join_all(inserts).await {
        result.unwrap();
    }
    store.insert_job(&job("locked")).await.unwrap();

    // A call in flight when the connections go silent: a transition waiting on a row lock held
    // by a direct connection (not through the proxy).
    let mut locker = AnyConnection::connect(&direct_url).await.unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("SELECT id FROM jobs WHERE id = 'locked' FOR UPDATE")
        .await
        .unwrap();
    let in_flight = {
        let store = store.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let result = store
                .transition(&Transition::new(
                    "locked",
                    JobState::Queued,
                    JobState::Cancelled,
                    2_000,
                    "cancelled",
                ))
                .await;
            (result, start.elapsed())
        })
    };
    // (Another connection: pg_stat_activity is a snapshot per transaction.)
    let mut watcher = AnyConnection::connect(&direct_url).await.unwrap();
    wait_for_lock_waits(&mut watcher, 1).await;
    let _ = watcher.close().await;

    proxy.silence();
    // The database answers the waiting statement now, but the answer never arrives.
    locker.execute("COMMIT").await.unwrap();

    // New calls recover: the first one meets a dead idle connection, whose ping times out.
    let first = until_recovered(&store, "j0").await;
    // Then calls work, in parallel too (no pool slot is left stuck on a dead connection).
    let parallel = (0..24).map(|i| {
        let store = store.clone();
        async move { store.get_job(&format!("j{}", i % 8)).await }
    });
    let start = Instant::now();
    for result in within("parallel reads", futures_join_all(parallel)).await {
        assert!(result.unwrap().is_some());
    }
    let parallel_took = start.elapsed();
    within("a write", store.insert_job(&job("after")))
        .await
        .unwrap();

    // The call caught on a silent connection fails as unavailable, and does not hang.
    let (result, took) = within("the in-flight transition", in_flight).await.unwrap();
    let err: StoreError = match result {
        Ok(record) => {
            panic!("the in-flight transition succeeded through a silent connection: {record:?}")
        }
        Err(e) => e,
    };
    assert!(err.is_unavailable(), "{err:?}");

    // A second outage, on connections all opened after the first one was over; caught in it,
    // a call its caller gives up on (sooner than the store would): its connection must not stay
    // stuck in the pool.
    let reopen = (0..24).map(|i| {
        let store = store.clone();
        async move { store.get_job(&format!("j{}", i % 8)).await }
    });
    for result in within("parallel reads", futures_join_all(reopen)).await {
        assert!(result.unwrap().is_some());
    }
    // Let the connections of these calls settle back in the pool (see docs/configuration.md:
    // an outage that begins during sqlx's own ping of a returning connection holds that slot
    // until the peer answers or resets; this proxy never does).
    tokio::time::sleep(Duration::from_secs(1)).await;
    store.insert_job(&job("locked2")).await.unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("SELECT id FROM jobs WHERE id = 'locked2' FOR UPDATE")
        .await
        .unwrap();
    let (give_up, gave_up) = tokio::sync::oneshot::channel::<()>();
    let abandoned = {
        let store = store.clone();
        tokio::spawn(async move {
            let t = Transition::new(
                "locked2",
                JobState::Queued,
                JobState::Cancelled,
                2_000,
                "cancelled",
            );
            let start = Instant::now();
            tokio::select! {
                _ = store.transition(&t) => None,
                _ = gave_up => Some(start.elapsed()),
            }
        })
    };
    let mut watcher = AnyConnection::connect(&direct_url).await.unwrap();
    wait_for_lock_waits(&mut watcher, 1).await;
    let _ = watcher.close().await;
    proxy.silence();
    locker.execute("COMMIT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    give_up.send(()).unwrap();
    let abandoned_after = abandoned
        .await
        .unwrap()
        .expect("the transition ended through a silent connection");
    let second = until_recovered(&store, "after").await;
    within("a write", store.insert_job(&job("after-second")))
        .await
        .unwrap();

    // Every pool connection is usable again, none held by a dead socket: POOL transitions at
    // once, each waiting on a locked row, so each holding a connection.
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("SELECT id FROM jobs WHERE id LIKE 'j%' FOR UPDATE")
        .await
        .unwrap();
    let cancels: Vec<_> = (0..POOL)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let t = Transition::new(
                    format!("j{i}"),
                    JobState::Queued,
                    JobState::Cancelled,
                    3_000,
                    "cancelled",
                );
                store.transition(&t).await
            })
        })
        .collect();
    let mut watcher = AnyConnection::connect(&direct_url).await.unwrap();
    wait_for_lock_waits(&mut watcher, i64::try_from(POOL).unwrap()).await;
    let _ = watcher.close().await;
    locker.execute("COMMIT").await.unwrap();
    for cancel in cancels {
        let record = within("a transition", cancel).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Cancelled);
    }

    let _ = locker.close().await;
    let start = Instant::now();
    within("close", store.close()).await;
    eprintln!(
        "failover: first call after the outage answered in {:.2} s; 24 parallel reads then \
         took {:.3} s; the call caught on a silent connection failed (unavailable) after \
         {:.2} s; second outage: first call answered in {:.2} s (the call abandoned in it had run {:.2} s: \
         from 2 s on, abandoning it replaces the pool at once); close took {:.2} s",
        first.as_secs_f64(),
        parallel_took.as_secs_f64(),
        took.as_secs_f64(),
        second.as_secs_f64(),
        abandoned_after.as_secs_f64(),
        start.elapsed().as_secs_f64(),
    );
}

/// Waits until `n` sessions of the database wait for a lock (transitions blocked).
async fn wait_for_lock_waits(conn: &mut AnyConnection, n: i64) {
    let start = Instant::now();
    loop {
        let row = sqlx::query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        if row.get::<i64, _>("n") >= n {
            return;
        }
        if start.elapsed() >= HANG {
            // What the sessions do, to tell a stuck pool slot from a slow machine.
            let rows = sqlx::query(
                "SELECT state, coalesce(wait_event_type, '-') AS w, coalesce(wait_event, '-') AS e, \
                 left(query, 60) AS q FROM pg_stat_activity WHERE datname = current_database()",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            for r in rows {
                eprintln!(
                    "{} {} {} {}",
                    r.get::<String, _>("state"),
                    r.get::<String, _>("w"),
                    r.get::<String, _>("e"),
                    r.get::<String, _>("q")
                );
            }
            panic!("fewer than {n} transitions waited on the locks");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The change feed's own connection goes silent (no error, notifications just stop): its
/// heartbeat notices, it connects again, reports a resync (changes may have been missed), and
/// then reports other processes' writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_change_feed_connects_again_and_asks_for_a_resync() {
    use sluice_store::StoreChange;
    let db = FreshDatabase::create().await;
    let proxy = Proxy::start(upstream_of(&db.admin_url)).await;
    let direct_url = rewrite(&db.admin_url, &db.database, None);
    let proxied_url = rewrite(
        &db.admin_url,
        &db.database,
        Some(&format!("127.0.0.1:{}", proxy.port)),
    );
    let follower = sluice_store::open(&proxied_url).await.unwrap();
    let writer = sluice_store::open(&direct_url).await.unwrap();
    let mut feed = follower
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL has a feed");
    writer.insert_job(&job("before")).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, StoreChange::Jobs(vec!["before".into()]));

    proxy.silence();
    writer.insert_job(&job("during")).await.unwrap();
    // Within the heartbeat's bound (20 s without hearing) plus a reconnect: a resync, then the
    // writes made afterwards.
    let started = Instant::now();
    let mut resynced = false;
    writer.insert_job(&job("kick")).await.unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), feed.recv())
            .await
            .expect("the feed comes back within 60 s")
            .expect("the feed stays open");
        eprintln!("{:?}: {next:?}", started.elapsed());
        match next {
            StoreChange::Resync => {
                resynced = true;
                writer.insert_job(&job("after")).await.unwrap();
            }
            StoreChange::Jobs(ids) if resynced && ids == vec!["after".to_string()] => break,
            other => assert!(
                !matches!(other, StoreChange::Jobs(ref ids) if ids.contains(&"during".to_string())),
                "a notification sent while silent cannot arrive: {other:?}"
            ),
        }
    }
    eprintln!("change feed back after {:?}", started.elapsed());
    follower.close().await;
    writer.close().await;
}
