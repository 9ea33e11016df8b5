//! [`SqlStore`] itself: opening a pool for a URL, bringing the schema up to date (the
//! migrations under `migrations/{sqlite,postgres}/`), and write transactions ([`WriteTx`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, SqlSafeStr, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::liveness::{self, Liveness};
use crate::dialect::Dialect;
use crate::error::{StoreError, redact_url};
use crate::lease::Lease;

/// Schema versions: (version, description, SQLite DDL, PostgreSQL DDL). Append only; never edit
/// an entry that has shipped (sqlx checks the checksums of applied migrations).
pub(super) const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "orchestration",
        include_str!("../../migrations/sqlite/0002_orchestration.sql"),
        include_str!("../../migrations/postgres/0002_orchestration.sql"),
    ),
    (
        3,
        "history",
        include_str!("../../migrations/sqlite/0003_history.sql"),
        include_str!("../../migrations/postgres/0003_history.sql"),
    ),
    (
        4,
        "history rollups",
        include_str!("../../migrations/sqlite/0004_history_rollups.sql"),
        include_str!("../../migrations/postgres/0004_history_rollups.sql"),
    ),
    (
        5,
        "queue deadline",
        include_str!("../../migrations/sqlite/0005_queue_deadline.sql"),
        include_str!("../../migrations/postgres/0005_queue_deadline.sql"),
    ),
    (
        6,
        "auth",
        include_str!("../../migrations/sqlite/0006_auth.sql"),
        include_str!("../../migrations/postgres/0006_auth.sql"),
    ),
    (
        7,
        "leases",
        include_str!("../../migrations/sqlite/0007_leases.sql"),
        include_str!("../../migrations/postgres/0007_leases.sql"),
    ),
    (
        8,
        "preemption",
        include_str!("../../migrations/sqlite/0008_preemption.sql"),
        include_str!("../../migrations/postgres/0008_preemption.sql"),
    ),
    (
        9,
        "usage",
        include_str!("../../migrations/sqlite/0009_usage.sql"),
        include_str!("../../migrations/postgres/0009_usage.sql"),
    ),
    (
        10,
        "run results",
        include_str!("../../migrations/sqlite/0010_run_results.sql"),
        include_str!("../../migrations/postgres/0010_run_results.sql"),
    ),
    (
        11,
        "workflows",
        include_str!("../../migrations/sqlite/0011_workflows.sql"),
        include_str!("../../migrations/postgres/0011_workflows.sql"),
    ),
    (
        12,
        "list namespace state",
        include_str!("../../migrations/sqlite/0012_list_namespace_state.sql"),
        include_str!("../../migrations/postgres/0012_list_namespace_state.sql"),
    ),
    (
        13,
        "history partial",
        include_str!("../../migrations/sqlite/0013_history_partial.sql"),
        include_str!("../../migrations/postgres/0013_history_partial.sql"),
    ),
];

/// Connections kept to a SQLite file (one writer at a time, readers in parallel under WAL).
pub(super) const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections kept to PostgreSQL.
pub(super) const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long an operation waits for a free pool connection (SQLite; PostgreSQL: see
/// [`liveness::ACQUIRE_TIMEOUT`]).
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The [`Store`] over a SQLite or PostgreSQL connection pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    /// Where write transactions run. On a SQLite file, a pool of one connection kept open,
    /// used for nothing else: under WAL a connection drops its whole page cache whenever
    /// another connection has written, so writes taking turns over the readers' connections
    /// each started cold (every B-tree page of the jobs table and its indexes read again; at
    /// 100,000 queued, 64 clients: 3,709-3,788 submits/s against 3,580, BENCHMARKS.md). On
    /// PostgreSQL and an in-memory SQLite database, the same pool as `pool`.
    pub(super) writer: AnyPool,
    pub(super) dialect: Dialect,
    /// Serialises this process's write transactions on SQLite (unused for PostgreSQL); shared
    /// with the fenced views of the store.
    pub(super) write_lock: Arc<Mutex<()>>,
    /// Set on a fenced view ([`crate::Store::fenced`]): every write transaction first checks
    /// that this lease still has this holder and epoch.
    pub(super) fence: Option<Arc<Lease>>,
    /// Names this store object in the change notifications it sends, so that its own writes
    /// are not reported back to it.
    pub(super) origin: Arc<str>,
    /// The URL, for the change feed's own connection (PostgreSQL only).
    pub(super) url: Option<ListenUrl>,
    /// Which pool connections are suspect after a timeout (PostgreSQL; see [`liveness`]).
    pub(super) liveness: Arc<Liveness>,
}

/// A database URL kept for the change feed; its Debug hides it (it may hold a password).
#[derive(Clone)]
pub(super) struct ListenUrl(pub(super) String);

impl std::fmt::Debug for ListenUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The channel of change notifications on PostgreSQL.
pub(super) const CHANNEL: &str = "sluice_changes";
/// Longest payload of one notification (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7000;

/// A name for this store object, unique enough among the processes sharing a database.
fn new_origin() -> Arc<str> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(nanos);
    Arc::from(format!("{:016x}", h.finish()))
}

/// The notification payloads announcing that `ids` were written by `origin`: `j|ORIGIN|ID,ID`,
/// split to stay under PostgreSQL's size limit.
pub(super) fn job_payloads(origin: &str, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let head = format!("j|{origin}|");
    let mut cur = head.clone();
    for id in ids {
        if cur.len() > head.len() && cur.len() + id.len() + 1 > MAX_PAYLOAD {
            out.push(std::mem::replace(&mut cur, head.clone()));
        }
        if cur.len() > head.len() {
            cur.push(',');
        }
        cur.push_str(id);
    }
    if cur.len() > head.len() {
        out.push(cur);
    }
    out
}

/// What [`SqlStore::connect`] made of a URL.
pub(super) struct Target {
    pub(super) dialect: Dialect,
    /// The URL handed to sqlx.
    pub(super) url: String,
    pub(super) memory: bool,
}

pub(super) fn parse_url(url: &str) -> Result<Target, StoreError> {
    let bad = || StoreError::BadUrl(redact_url(url));
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Target {
            dialect: Dialect::Sqlite,
            url: "sqlite::memory:".to_string(),
            memory: true,
        });
    }
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(bad());
        }
        // Create the file if missing, unless the caller chose a mode.
        let url = if rest.contains("mode=") {
            url.to_string()
        } else if rest.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        return Ok(Target {
            dialect: Dialect::Sqlite,
            url,
            memory: false,
        });
    }
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        if rest.is_empty() {
            return Err(bad());
        }
        return Ok(Target {
            dialect: Dialect::Postgres,
            url: url.to_string(),
            memory: false,
        });
    }
    Err(bad())
}

/// Opens one connection, within the acquire timeout (a database that accepts the TCP
/// connection but never answers must not hang the start).
async fn bounded_connect(url: &str) -> Result<AnyConnection, sqlx::Error> {
    match tokio::time::timeout(liveness::ACQUIRE_TIMEOUT, AnyConnection::connect(url)).await {
        Ok(result) => result,
        Err(_) => Err(liveness::timed_out("connecting", liveness::ACQUIRE_TIMEOUT)),
    }
}

/// Brings the schema up to date. On PostgreSQL the migrations run without the connection's
/// `statement_timeout`: a migration may rewrite a large table, and replicas starting together
/// wait on sqlx's migration lock while one of them migrates.
async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), StoreError> {
    let migrator = migrator(dialect);
    match dialect {
        Dialect::Sqlite => migrator.run(pool).await?,
        Dialect::Postgres => {
            let mut conn = pool.acquire().await?;
            conn.execute("SET statement_timeout = 0").await?;
            // `run` on a `&mut` connection makes the future's Send proof fail ("Acquire is not
            // general enough"); `run_direct` is what `run` calls, and sqlx's own workaround.
            migrator.run_direct(None, &mut *conn, false).await?;
            // Back to the value the connection started with.
            conn.execute("RESET statement_timeout").await?;
        }
    }
    Ok(())
}

pub(super) fn migrator(dialect: Dialect) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match dialect {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
            };
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// The writer connection's own settings. A checkpoint copies the pages written since the
/// last one into the database file and syncs it; the one who commits past the limit runs it,
/// on the write path. Every submit batch rewrites the same few pages (the right edges of the
/// jobs table, its indexes, labels, events and audit log), so a checkpoint every 10,000 WAL
/// frames (40 MB) instead of SQLite's 1,000 copies each such page once where it copied it
/// ten times, and syncs a tenth as often.
const WRITER_PRAGMAS: &[&str] = &["PRAGMA wal_autocheckpoint = 10000"];

/// Pool options for a SQLite database; `pragmas` are run on each connection after the common
/// ones.
fn sqlite_options(pragmas: &'static [&'static str]) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A connection to a local file does not go away as a server's can: sqlx's ping before
        // each acquire was a round trip to the connection's thread per query (~2% of a
        // submit's CPU).
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA busy_timeout = 5000",
                    "PRAGMA foreign_keys = ON",
                    // Statement journals (an insert that fires the jobs trigger, a multi-row
                    // insert) in memory, not spilled to a temp file on the write path.
                    "PRAGMA temp_store = MEMORY",
                ]
                .into_iter()
                .chain(pragmas.iter().copied())
                {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
}

/// A write transaction; on SQLite it also holds the process-wide write lock. Fields drop in
/// order: the transaction (rolled back if not committed) before the lock.
pub(super) struct WriteTx<'a> {
    pub(super) tx: Transaction<'static, Any>,
    /// Jobs written; on PostgreSQL their ids are announced on commit (see [`CHANNEL`]).
    touched: Vec<String>,
    /// `Some(origin)` where changes are announced (PostgreSQL).
    announce: Option<Arc<str>>,
    pub(super) _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    /// Notes that job `id` was written, for the change feed of other processes.
    pub(super) fn touch(&mut self, id: &str) {
        if self.announce.is_some() {
            self.touched.push(id.to_string());
        }
    }

    /// Commits if `result` is Ok, rolls back otherwise; returns `result` (or the commit error).
    /// The jobs touched are announced in the same transaction, so the notification goes out
    /// exactly when the write becomes visible.
    pub(super) async fn finish<T>(
        mut self,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(v) => {
                if let Some(origin) = &self.announce {
                    for payload in job_payloads(origin, &self.touched) {
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(CHANNEL)
                            .bind(payload)
                            .execute(&mut *self.tx)
                            .await?;
                    }
                }
                self.tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                if let Err(rollback) = self.tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed after: {e}");
                }
                Err(e)
            }
        }
    }
}

impl SqlStore {
    /// Connects to the database at `url` (see [`crate::open`] for the accepted forms) and brings
    /// its schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let mut target = parse_url(url)?;
        let liveness = Liveness::new();
        let options = match target.dialect {
            Dialect::Sqlite => {
                let options = sqlite_options(&[]);
                if target.memory {
                    // Every new connection to sqlite::memory: would be a new, empty database:
                    // keep exactly one, forever.
                    options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    options.max_connections(SQLITE_MAX_CONNECTIONS)
                }
            }
            Dialect::Postgres => {
                target.url = liveness::with_server_settings(&target.url);
                liveness::postgres_pool_options(&liveness, POSTGRES_MAX_CONNECTIONS)
            }
        };
        let connect_error = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        if !target.memory {
            // The pool retries failed connections until its acquire timeout and then reports only
            // "timed out"; one direct attempt first surfaces the real cause (refused, unknown
            // database, bad password, unwritable path) at once.
            let probe = bounded_connect(&target.url).await.map_err(connect_error)?;
            probe.close().await.map_err(connect_error)?;
        }
        let pool = options.connect(&target.url).await.map_err(connect_error)?;
        migrate(&pool, target.dialect).await?;
        let writer = if target.dialect == Dialect::Sqlite && !target.memory {
            sqlite_options(WRITER_PRAGMAS)
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(&target.url)
                .await
                .map_err(connect_error)?
        } else {
            pool.clone()
        };
        tracing::debug!(url = %redact_url(url), dialect = target.dialect.as_str(), "store open");
        Ok(SqlStore {
            pool,
            writer,
            dialect: target.dialect,
            write_lock: Arc::new(Mutex::new(())),
            fence: None,
            origin: new_origin(),
            url: (target.dialect == Dialect::Postgres).then(|| ListenUrl(target.url.clone())),
            liveness,
        })
    }

    /// The database this store talks to.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Begins a write transaction; on a fenced view, first checks the fence inside it (on
    /// PostgreSQL this also locks the lease row until the transaction ends, so no other
    /// replica can take the lease while the write is under way).
    pub(super) async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        let mut w = match self.dialect {
            Dialect::Sqlite => {
                let guard = self.write_lock.lock().await;
                let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
                WriteTx {
                    tx,
                    touched: Vec::new(),
                    announce: None,
                    _guard: Some(guard),
                }
            }
            Dialect::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                touched: Vec::new(),
                announce: Some(self.origin.clone()),
                _guard: None,
            },
        };
        if let Some(lease) = &self.fence {
            // On PostgreSQL, FOR SHARE holds off a takeover (an UPDATE of the row) until this
            // transaction ends; SQLite's BEGIN IMMEDIATE holds the whole database already.
            let sql = match self.dialect {
                Dialect::Sqlite => {
                    "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3"
                }
                Dialect::Postgres => {
                    "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3 \
                     FOR SHARE"
                }
            };
            let held = sqlx::query(sql)
                .bind(&lease.name)
                .bind(&lease.holder)
                .bind(lease.epoch)
                .fetch_optional(&mut *w.tx)
                .await?;
            if held.is_none() {
                let fenced = StoreError::Fenced {
                    name: lease.name.clone(),
                    holder: lease.holder.clone(),
                    epoch: lease.epoch,
                };
                if let Err(rollback) = w.tx.rollback().await {
                    tracing::debug!(error = %rollback, "rolling back a fenced write");
                }
                return Err(fenced);
            }
        }
        Ok(w)
    }
}
