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
];

/// Connections kept to a SQLite file (one writer at a time, readers in parallel under WAL).
pub(super) const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections kept to PostgreSQL.
pub(super) const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long an operation waits for a free pool connection (SQLite; PostgreSQL: see
/// [`liveness::ACQUIRE_TIMEOUT`]).
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The [`Store`] over a SQLite or PostgreSQL connection pool.
#[derive(Debug)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    /// Serialises this process's write transactions on SQLite (unused for PostgreSQL).
    pub(super) write_lock: Mutex<()>,
    /// Which pool connections are suspect after a timeout (PostgreSQL; see [`liveness`]).
    pub(super) liveness: Arc<Liveness>,
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

/// A write transaction; on SQLite it also holds the process-wide write lock. Fields drop in
/// order: the transaction (rolled back if not committed) before the lock.
pub(super) struct WriteTx<'a> {
    pub(super) tx: Transaction<'static, Any>,
    pub(super) _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    /// Commits if `result` is Ok, rolls back otherwise; returns `result` (or the commit error).
    pub(super) async fn finish<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Ok(v) => {
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
                let options = AnyPoolOptions::new()
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = NORMAL",
                                "PRAGMA busy_timeout = 5000",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                conn.execute(pragma).await?;
                            }
                            Ok(())
                        })
                    });
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
        tracing::debug!(url = %redact_url(url), dialect = target.dialect.as_str(), "store open");
        Ok(SqlStore {
            pool,
            dialect: target.dialect,
            write_lock: Mutex::new(()),
            liveness,
        })
    }

    /// The database this store talks to.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(super) async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        match self.dialect {
            Dialect::Sqlite => {
                let guard = self.write_lock.lock().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _guard: Some(guard),
                })
            }
            Dialect::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _guard: None,
            }),
        }
    }
}
