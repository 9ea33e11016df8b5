//! [`SqlStore`]: the [`Store`] over `sqlx::AnyPool`, for SQLite and PostgreSQL.
//!
//! One implementation serves both databases: the SQL is portable (`$N` placeholders, integer
//! millisecond times, text JSON, `UPDATE ... RETURNING`, row-value comparison), and the few
//! differences (DDL, how a write transaction starts, pool size) hang off [`Dialect`].
//!
//! Migrations are the files under `migrations/{sqlite,postgres}/`, compiled in with
//! `include_str!` and applied by `sqlx::migrate::Migrator` (which works over `Any`), so the
//! applied versions live in sqlx's usual `_sqlx_migrations` table.
//!
//! SQLite write path: writes from this process are serialised by an async mutex and each runs
//! in `BEGIN IMMEDIATE`, so a write transaction takes SQLite's write lock up front (waiting up to
//! the busy timeout for other processes) instead of failing with `SQLITE_BUSY` when a read
//! transaction tries to upgrade. Reads run concurrently on the other pool connections (WAL).
//!
//! Layout, from the bottom up: `pool` (the [`SqlStore`] type, opening, migrations, write
//! transactions), `rows` (row codecs and statement helpers), `jobs` (the job statements run in
//! a write transaction), `orch` (the orchestration queries), and this file, the [`Store`]
//! implementation that puts them together.

use async_trait::async_trait;
use sluice_core::job::{JobEvent, JobRecord, JobState, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use sqlx::{AssertSqlSafe, Row};

use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::history::{HistoryQuery, HistorySeries, RollUp, history, roll_up, roll_up_done};
use crate::orchestration::{
    DeadLetter, Fire, JobOrch, JobSet, OrchJob, Requeue, RetryJob, SetFilter,
};
use crate::store::{JobFilter, JobPage, QueueStat, Store, Transition};
use crate::text::{exact, exact_labels, exact_opt};

mod jobs;
mod orch;
mod pool;
mod rows;

<<<<<<< HEAD
use jobs::{add_note_in, insert_job_in, transition_in};
pub use pool::SqlStore;
use rows::{
    DynQuery, J_JOB_COLUMNS, JOB_COLUMNS, decode_cursor, decode_event, decode_job, encode_cursor,
};
=======
/// The columns of `jobs` that [`decode_job`] reads.
const JOB_COLUMNS: &str = "id, namespace, name, level, state, attempt, labels, spec, demand, \
     created_at, enqueued_at, updated_at, started_at, finished_at, backend_ref, exit_code, message";

/// [`JOB_COLUMNS`] qualified with the alias `j`, for queries that join `job_labels`.
const J_JOB_COLUMNS: &str = "j.id, j.namespace, j.name, j.level, j.state, j.attempt, j.labels, \
     j.spec, j.demand, j.created_at, j.enqueued_at, j.updated_at, j.started_at, j.finished_at, \
     j.backend_ref, j.exit_code, j.message";

/// Connections kept to a SQLite file (one writer at a time, readers in parallel under WAL).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections kept to PostgreSQL.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long an operation waits for a free pool connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The [`Store`] over a SQLite or PostgreSQL connection pool.
#[derive(Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Serialises this process's write transactions on SQLite (unused for PostgreSQL).
    write_lock: Mutex<()>,
}

/// What [`SqlStore::connect`] made of a URL.
struct Target {
    backend: Backend,
    /// The URL handed to sqlx.
    url: String,
    memory: bool,
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    let bad = || StoreError::BadUrl(redact_url(url));
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Target {
            backend: Backend::Sqlite,
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
            backend: Backend::Sqlite,
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
            backend: Backend::Postgres,
            url: url.to_string(),
            memory: false,
        });
    }
    Err(bad())
}

fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match backend {
                Backend::Sqlite => sqlite,
                Backend::Postgres => postgres,
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
struct WriteTx<'a> {
    tx: Transaction<'static, Any>,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    /// Commits if `result` is Ok, rolls back otherwise; returns `result` (or the commit error).
    async fn finish<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
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
        let target = parse_url(url)?;
        let options = match target.backend {
            Backend::Sqlite => {
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
            Backend::Postgres => AnyPoolOptions::new()
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .max_connections(POSTGRES_MAX_CONNECTIONS),
        };
        let connect_error = |source| StoreError::Connect {
            url: redact_url(url),
            source,
        };
        if !target.memory {
            // The pool retries failed connections until its acquire timeout and then reports only
            // "timed out"; one direct attempt first surfaces the real cause (refused, unknown
            // database, bad password, unwritable path) at once.
            let probe = AnyConnection::connect(&target.url)
                .await
                .map_err(connect_error)?;
            probe.close().await.map_err(connect_error)?;
        }
        let pool = options.connect(&target.url).await.map_err(connect_error)?;
        migrator(target.backend).run(&pool).await?;
        tracing::debug!(url = %redact_url(url), backend = target.backend.as_str(), "store open");
        Ok(SqlStore {
            pool,
            backend: target.backend,
            write_lock: Mutex::new(()),
        })
    }

    /// The database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                let guard = self.write_lock.lock().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _guard: Some(guard),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _guard: None,
            }),
        }
    }
}

/// A bind value of a dynamically built statement.
enum Arg {
    Int(i64),
    Text(String),
}

/// A statement built at run time, with `$N` placeholders numbered as values are added.
#[derive(Default)]
struct DynQuery {
    sql: String,
    args: Vec<Arg>,
}

impl DynQuery {
    /// Adds a bind value; returns its placeholder.
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: impl Into<String>) -> String {
        self.arg(Arg::Text(s.into()))
    }

    fn int(&mut self, i: i64) -> String {
        self.arg(Arg::Int(i))
    }

    fn build(self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.sql));
        for arg in self.args {
            q = match arg {
                Arg::Int(i) => q.bind(i),
                Arg::Text(s) => q.bind(s),
            };
        }
        q
    }
}

fn corrupt_json(column: &str, id: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "jobs.{column} of job {id:?} is not valid JSON for its type: {e}"
    ))
}

fn parse_state(table_column: &str, id: &str, s: &str) -> Result<JobState, StoreError> {
    s.parse::<JobState>().map_err(|_| {
        StoreError::Corrupt(format!(
            "{table_column} of job {id:?} is {s:?}, which is not a job state \
             (expected one of queued, admitted, submitted, running, succeeded, failed, cancelled)"
        ))
    })
}

fn decode_job(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let state = parse_state("jobs.state", &id, &state)?;
    let attempt: i64 = row.try_get("attempt")?;
    let attempt = u32::try_from(attempt).map_err(|_| {
        StoreError::Corrupt(format!(
            "jobs.attempt of job {id:?} is {attempt}, not a valid attempt number"
        ))
    })?;
    let labels: String = row.try_get("labels")?;
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&labels).map_err(|e| corrupt_json("labels", &id, e))?;
    let spec: String = row.try_get("spec")?;
    let spec = serde_json::from_str(&spec).map_err(|e| corrupt_json("spec", &id, e))?;
    let demand: String = row.try_get("demand")?;
    let demand = serde_json::from_str(&demand).map_err(|e| corrupt_json("demand", &id, e))?;
    let exit_code: Option<i64> = row.try_get("exit_code")?;
    let exit_code = exit_code
        .map(|c| {
            i32::try_from(c).map_err(|_| {
                StoreError::Corrupt(format!(
                    "jobs.exit_code of job {id:?} is {c}, out of range for an exit code"
                ))
            })
        })
        .transpose()?;
    Ok(JobRecord {
        namespace: row.try_get("namespace")?,
        name: row.try_get("name")?,
        level: row.try_get("level")?,
        state,
        attempt,
        labels,
        spec,
        demand,
        created_at_ms: row.try_get("created_at")?,
        enqueued_at_ms: row.try_get("enqueued_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        started_at_ms: row.try_get("started_at")?,
        finished_at_ms: row.try_get("finished_at")?,
        backend_ref: row.try_get("backend_ref")?,
        exit_code,
        message: row.try_get("message")?,
        id,
    })
}

fn decode_event(row: &AnyRow) -> Result<JobEvent, StoreError> {
    let job_id: String = row.try_get("job_id")?;
    let from: Option<String> = row.try_get("from_state")?;
    let from = from
        .map(|s| parse_state("job_events.from_state", &job_id, &s))
        .transpose()?;
    let to: String = row.try_get("to_state")?;
    let to = parse_state("job_events.to_state", &job_id, &to)?;
    Ok(JobEvent {
        at_ms: row.try_get("at")?,
        message: row.try_get("message")?,
        from,
        to,
        job_id,
    })
}

fn encode_cursor(job: &JobRecord) -> String {
    format!("{}:{}", job.created_at_ms, job.id)
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::BadCursor(cursor.to_string());
    let (ms, id) = cursor.split_once(':').ok_or_else(bad)?;
    let ms = ms.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((ms, id.to_string()))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

async fn insert_job_in(conn: &mut AnyConnection, job: &NewJob) -> Result<JobRecord, StoreError> {
    let labels = serde_json::to_string(&job.labels).map_err(|e| {
        StoreError::Corrupt(format!("labels of job {:?} do not encode: {e}", job.id))
    })?;
    let spec = serde_json::to_string(&job.spec).map_err(|e| {
        StoreError::Corrupt(format!("spec of job {:?} does not encode: {e}", job.id))
    })?;
    let demand = serde_json::to_string(&job.demand).map_err(|e| {
        StoreError::Corrupt(format!("demand of job {:?} does not encode: {e}", job.id))
    })?;
    let queued = JobState::Queued.as_str();
    let total = job.demand.total();
    // Queue TTL (migration 0005): the clock starts now.
    let ttl_ms = crate::orchestration::queue_ttl_ms(&job.spec)
        .map_err(|e| StoreError::Corrupt(format!("job {:?}: {e}", job.id)))?;
    let deadline = ttl_ms.map(|ttl| job.created_at_ms.saturating_add(ttl));
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, namespace, name, level, state, attempt, labels, spec, demand, \
         created_at, enqueued_at, updated_at, cpu_milli, mem_mib, queue_ttl_ms, queue_deadline) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $9, $9, $10, $11, $12, $13)",
    )
    .bind(job.id.as_str())
    .bind(job.namespace.as_str())
    .bind(job.name.as_str())
    .bind(job.level.as_str())
    .bind(queued)
    .bind(labels.as_str())
    .bind(spec.as_str())
    .bind(demand.as_str())
    .bind(job.created_at_ms)
    .bind(i64::try_from(total.cpu_milli).unwrap_or(i64::MAX))
    .bind(i64::try_from(total.mem_mib).unwrap_or(i64::MAX))
    .bind(ttl_ms)
    .bind(deadline)
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate(job.id.clone())),
        other => other?,
    };
    for (key, value) in &job.labels {
        sqlx::query(
            "INSERT INTO job_labels (job_id, key, value, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(job.id.as_str())
        .bind(key.as_str())
        .bind(value.as_str())
        .bind(job.created_at_ms)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO job_events (job_id, at, from_state, to_state, message) \
         VALUES ($1, $2, NULL, $3, $3)",
    )
    .bind(job.id.as_str())
    .bind(job.created_at_ms)
    .bind(queued)
    .execute(&mut *conn)
    .await?;
    Ok(JobRecord {
        id: job.id.clone(),
        namespace: job.namespace.clone(),
        name: job.name.clone(),
        level: job.level.clone(),
        state: JobState::Queued,
        attempt: 1,
        labels: job.labels.clone(),
        spec: job.spec.clone(),
        demand: job.demand.clone(),
        created_at_ms: job.created_at_ms,
        enqueued_at_ms: job.created_at_ms,
        updated_at_ms: job.created_at_ms,
        started_at_ms: None,
        finished_at_ms: None,
        backend_ref: None,
        exit_code: None,
        message: None,
    })
}

async fn transition_in(conn: &mut AnyConnection, t: &Transition) -> Result<JobRecord, StoreError> {
    let mut q = DynQuery::default();
    let id = q.text(t.id.as_str());
    let from = q.text(t.from.as_str());
    let to = q.text(t.to.as_str());
    let at = q.int(t.at_ms);
    let message = q.text(t.message.as_str());
    let mut sets = format!("state = {to}, updated_at = {at}, message = {message}");
    if t.to == JobState::Running {
        sets.push_str(&format!(", started_at = COALESCE(started_at, {at})"));
    }
    if t.to.is_terminal() {
        sets.push_str(&format!(", finished_at = {at}"));
    }
    // A run stopped by the backend and sent back to the queue: the next run is a new attempt.
    if t.to == JobState::Queued && matches!(t.from, JobState::Submitted | JobState::Running) {
        sets.push_str(", attempt = attempt + 1, started_at = NULL");
        if t.backend_ref.is_none() {
            sets.push_str(", backend_ref = NULL");
        }
        if t.exit_code.is_none() {
            sets.push_str(", exit_code = NULL");
        }
    }
    // History (migration 0003): the wait is [enqueued_at, dequeued_at), the hold starts at
    // admitted_at; both are open again while the job is back in its queue.
    if t.to == JobState::Queued {
        sets.push_str(", admitted_at = NULL, dequeued_at = NULL");
    } else if t.from == JobState::Queued {
        sets.push_str(&format!(", dequeued_at = {at}"));
    }
    if t.to == JobState::Admitted {
        sets.push_str(&format!(", admitted_at = {at}"));
    }
    // Queue TTL (migration 0005): back in the queue, the deadline is where it was (neither
    // enqueued_at nor queued_at changes here); out of it, there is none.
    if t.to == JobState::Queued {
        sets.push_str(", queue_deadline = COALESCE(queued_at, enqueued_at) + queue_ttl_ms");
    } else if t.from == JobState::Queued {
        sets.push_str(", queue_deadline = NULL");
    }
    if let Some(backend_ref) = &t.backend_ref {
        let p = q.text(backend_ref.as_str());
        sets.push_str(&format!(", backend_ref = {p}"));
    }
    if let Some(code) = t.exit_code {
        let p = q.int(i64::from(code));
        sets.push_str(&format!(", exit_code = {p}"));
    }
    q.sql = format!(
        "UPDATE jobs SET {sets} WHERE id = {id} AND state = {from} RETURNING {JOB_COLUMNS}"
    );
    let Some(row) = q.build().fetch_optional(&mut *conn).await? else {
        // Nothing matched: no such job, or it is in another state.
        let actual: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(t.id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        return Err(match actual {
            None => StoreError::NotFound(t.id.clone()),
            Some(actual) => StoreError::Conflict {
                id: t.id.clone(),
                expected: t.from,
                actual: parse_state("jobs.state", &t.id, &actual)?,
            },
        });
    };
    let record = decode_job(&row)?;
    sqlx::query(
        "INSERT INTO job_events (job_id, at, from_state, to_state, message) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(t.id.as_str())
    .bind(t.at_ms)
    .bind(t.from.as_str())
    .bind(t.to.as_str())
    .bind(t.message.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(record)
}

async fn add_note_in(
    conn: &mut AnyConnection,
    id: &str,
    at_ms: i64,
    message: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO job_events (job_id, at, from_state, to_state, message) \
         SELECT id, $2, state, state, $3 FROM jobs WHERE id = $1",
    )
    .bind(id)
    .bind(at_ms)
    .bind(message)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(id.to_string()));
    }
    Ok(())
}
>>>>>>> core

#[async_trait]
impl Store for SqlStore {
    async fn insert_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        let mut w = self.begin_write().await?;
        let result = insert_job_in(&mut w.tx, job).await;
        w.finish(result).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        exact("id", id)?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_job).transpose()
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        exact_opt("namespace", filter.namespace.as_ref())?;
        exact_opt("name", filter.name.as_ref())?;
        exact_labels(filter.labels.iter().map(|(k, v)| (k, v)))?;
        let limit = limit.max(1);
        let mut q = DynQuery::default();
        let mut conditions: Vec<String> = Vec::new();
        // With a label filter the query walks the first label's index entries, which carry
        // created_at, in page order and joins the jobs; without, it walks jobs by created_at.
        // Either way a page reads about `limit` matching index entries, with no sort.
        let (from, created_at, id) = match filter.labels.split_first() {
            Some(((key, value), others)) => {
                let k = q.text(key.as_str());
                let v = q.text(value.as_str());
                conditions.push(format!("l.key = {k} AND l.value = {v}"));
                for (key, value) in others {
                    let k = q.text(key.as_str());
                    let v = q.text(value.as_str());
                    conditions.push(format!(
                        "EXISTS (SELECT 1 FROM job_labels o \
                         WHERE o.job_id = j.id AND o.key = {k} AND o.value = {v})"
                    ));
                }
                (
                    "job_labels l JOIN jobs j ON j.id = l.job_id",
                    "l.created_at",
                    "l.job_id",
                )
            }
            None => ("jobs j", "j.created_at", "j.id"),
        };
        if let Some(ns) = &filter.namespace {
            conditions.push(format!("j.namespace = {}", q.text(ns.as_str())));
        }
        if let Some(name) = &filter.name {
            conditions.push(format!("j.name = {}", q.text(name.as_str())));
        }
        if !filter.states.is_empty() {
            let ps: Vec<String> = filter.states.iter().map(|s| q.text(s.as_str())).collect();
            conditions.push(format!("j.state IN ({})", ps.join(", ")));
        }
        if let Some(from) = filter.created_from_ms {
            conditions.push(format!("{created_at} >= {}", q.int(from)));
        }
        if let Some(to) = filter.created_to_ms {
            conditions.push(format!("{created_at} < {}", q.int(to)));
        }
        if let Some(cursor) = cursor {
            let (cursor_ms, cursor_id) = decode_cursor(cursor)?;
            let cursor_ms = q.int(cursor_ms);
            let cursor_id = q.text(cursor_id);
            conditions.push(format!("({created_at}, {id}) < ({cursor_ms}, {cursor_id})"));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // One row more than asked tells whether there is a next page.
        let fetch = q.int(i64::from(limit) + 1);
        q.sql = format!(
            "SELECT {J_JOB_COLUMNS} FROM {from} {where_clause} \
             ORDER BY {created_at} DESC, {id} DESC LIMIT {fetch}"
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut jobs = rows.iter().map(decode_job).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if jobs.len() > limit as usize {
            jobs.truncate(limit as usize);
            jobs.last().map(encode_cursor)
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = DynQuery::default();
        let ps: Vec<String> = states.iter().map(|s| q.text(s.as_str())).collect();
        q.sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({}) ORDER BY enqueued_at, id",
            ps.join(", ")
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(decode_job).collect()
    }

    async fn transition(&self, t: &Transition) -> Result<JobRecord, StoreError> {
        if !t.from.can_move_to(t.to) {
            return Err(StoreError::InvalidTransition {
                id: t.id.clone(),
                from: t.from,
                to: t.to,
            });
        }
        let mut w = self.begin_write().await?;
        let result = transition_in(&mut w.tx, t).await;
        w.finish(result).await
    }

    async fn add_note(&self, id: &str, at_ms: i64, message: &str) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let result = add_note_in(&mut w.tx, id, at_ms, message).await;
        w.finish(result).await
    }

    async fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        exact("id", id)?;
        let rows = sqlx::query(
            "SELECT job_id, at, from_state, to_state, message FROM job_events \
             WHERE job_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
        }
        rows.iter().map(decode_event).collect()
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        // SQLite's planner, once it has statistics, may prefer scanning a (namespace, ...) index
        // for the grouping over reading the few queued jobs by state: pin the state index.
        let from = match self.dialect {
            Dialect::Sqlite => "jobs INDEXED BY jobs_state_enqueued",
            Dialect::Postgres => "jobs",
        };
        let sql = format!(
            "SELECT namespace, level, COUNT(*) AS queued, MIN(enqueued_at) AS oldest \
             FROM {from} WHERE state = $1 GROUP BY namespace, level ORDER BY namespace, level"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(JobState::Queued.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let queued: i64 = row.try_get("queued")?;
                Ok(QueueStat {
                    namespace: row.try_get("namespace")?,
                    level: row.try_get("level")?,
                    // COUNT(*) is never negative.
                    queued: u64::try_from(queued).unwrap_or_default(),
                    oldest_enqueued_at_ms: row.try_get("oldest")?,
                })
            })
            .collect()
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError> {
        query.buckets()?;
        exact_opt("namespace", query.namespace.as_ref())?;
        exact_opt("level", query.level.as_ref())?;
        // One snapshot for every query of the history, so that the series agree.
        let begin = match self.dialect {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        };
        let mut tx = self.pool.begin_with(begin).await?;
        let result = history(&mut tx, self.dialect, query).await;
        if let Err(e) = tx.rollback().await {
            tracing::debug!(error = %e, "ending the history read transaction");
        }
        result
    }

    async fn roll_up_history(&self, now_ms: i64) -> Result<RollUp, StoreError> {
        // Most calls find nothing to do: tell without taking the write lock.
        let mut conn = self.pool.acquire().await?;
        if let Some(done) = roll_up_done(&mut conn, now_ms).await? {
            return Ok(done);
        }
        drop(conn);
        let mut w = self.begin_write().await?;
        let result = roll_up(&mut w.tx, self.dialect, now_ms).await;
        w.finish(result).await
    }

    async fn create_schedule(&self, s: &NewSchedule) -> Result<ScheduleRecord, StoreError> {
        self.orch_create_schedule(s).await
    }

    async fn get_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        self.orch_get_schedule(namespace, name).await
    }

    async fn list_schedules(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.orch_list_schedules(namespace).await
    }

    async fn due_schedules(&self, now_ms: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.orch_due_schedules(now_ms).await
    }

    async fn set_schedule_suspended(
        &self,
        namespace: &str,
        name: &str,
        suspended: bool,
        next_fire_at_ms: Option<i64>,
        at_ms: i64,
        message: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        self.orch_set_schedule_suspended(
            namespace,
            name,
            suspended,
            next_fire_at_ms,
            at_ms,
            message,
        )
        .await
    }

    async fn delete_schedule(&self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        self.orch_delete_schedule(namespace, name).await
    }

    async fn fire_schedule(&self, f: &Fire) -> Result<Option<JobRecord>, StoreError> {
        self.orch_fire_schedule(f).await
    }

    async fn job_orch(&self, id: &str) -> Result<Option<JobOrch>, StoreError> {
        self.orch_job_orch(id).await
    }

    async fn select_jobs(
        &self,
        filter: &SetFilter,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.orch_select_jobs(filter, limit).await
    }

    async fn delete_jobs(&self, set: JobSet, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.orch_delete_jobs(set, ids).await
    }

    async fn unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.orch_unsettled_failures().await
    }

    async fn retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError> {
        self.orch_retry_job(r).await
    }

    async fn dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError> {
        self.orch_dead_letter(d).await
    }

    async fn expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError> {
        self.orch_expire_queued(id, at_ms, reason).await
    }

    async fn requeue_dead_letter(&self, r: &Requeue) -> Result<JobRecord, StoreError> {
        self.orch_requeue_dead_letter(r).await
    }

    async fn queued_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.orch_queued_past_deadline(now_ms, limit).await
    }

    async fn count_dead_letters(&self) -> Result<u64, StoreError> {
        self.orch_count_dead_letters().await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests;
