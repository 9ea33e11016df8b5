//! The job statements that run inside a write transaction: insert, compare-and-set transition,
//! timeline note. Shared by the [`crate::Store`] methods and by the orchestration queries
//! (a schedule firing inserts its run).

use sluice_core::job::JobState;
use sluice_core::record::{JobRecord, NewJob};
use sqlx::AnyConnection;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::rows::{DynQuery, JOB_COLUMNS, decode_job, is_unique_violation, parse_state};
use crate::error::StoreError;
use crate::orchestration::queue_ttl_ms;
use crate::store::Transition;
use crate::text::{exact, exact_labels, sanitize};

/// A new job's row, checked and encoded: what an `INSERT INTO jobs` binds. Built before any
/// statement runs, so bad input fails the job alone and touches no transaction.
pub(super) struct JobRow<'a> {
    pub(super) job: &'a NewJob,
    pub(super) labels: String,
    pub(super) spec: String,
    pub(super) demand: String,
    pub(super) cpu_milli: i64,
    pub(super) mem_mib: i64,
    pub(super) ttl_ms: Option<i64>,
    pub(super) deadline: Option<i64>,
}

impl<'a> JobRow<'a> {
    /// Checks `job`'s identifiers and labels and encodes its labels, spec and demand.
    pub(super) fn new(job: &'a NewJob) -> Result<Self, StoreError> {
        exact("id", &job.id)?;
        exact("namespace", &job.namespace)?;
        exact("name", &job.name)?;
        exact("level", &job.level)?;
        exact_labels(&job.labels)?;
        let labels = serde_json::to_string(&job.labels).map_err(|e| {
            StoreError::Corrupt(format!("labels of job {:?} do not encode: {e}", job.id))
        })?;
        let spec = job
            .stored
            .encode()
            .and_then(|v| {
                serde_json::to_string(&v)
                    .map_err(|e| sluice_core::stored::StoredJobError::Encode(e.to_string()))
            })
            .map_err(|e| StoreError::Corrupt(format!("spec of job {:?}: {e}", job.id)))?;
        let demand = serde_json::to_string(&job.demand).map_err(|e| {
            StoreError::Corrupt(format!("demand of job {:?} does not encode: {e}", job.id))
        })?;
        let total = job.demand.total();
        // Queue TTL (migration 0005): the clock starts now.
        let ttl_ms = queue_ttl_ms(&job.stored.policy);
        Ok(JobRow {
            job,
            labels,
            spec,
            demand,
            cpu_milli: i64::try_from(total.cpu_milli).unwrap_or(i64::MAX),
            mem_mib: i64::try_from(total.mem_mib).unwrap_or(i64::MAX),
            ttl_ms,
            deadline: ttl_ms.map(|ttl| job.created_at_ms.saturating_add(ttl)),
        })
    }

    /// The record the row stands for once inserted: queued, attempt 1, nothing run yet.
    pub(super) fn record(&self) -> JobRecord {
        let job = self.job;
        JobRecord {
            id: job.id.clone(),
            namespace: job.namespace.clone(),
            name: job.name.clone(),
            level: job.level.clone(),
            state: JobState::Queued,
            attempt: 1,
            labels: job.labels.clone(),
            stored: Ok(job.stored.clone()),
            demand: job.demand.clone(),
            created_at_ms: job.created_at_ms,
            enqueued_at_ms: job.created_at_ms,
            updated_at_ms: job.created_at_ms,
            started_at_ms: None,
            finished_at_ms: None,
            backend_ref: None,
            exit_code: None,
            message: None,
        }
    }
}

/// The columns of `INSERT INTO jobs` and one row's values, `$1`-based (`$9`, the creation
/// time, also stands for `enqueued_at` and `updated_at`). [`super::bulk`] repeats the row.
pub(super) const JOB_INSERT_COLUMNS: &str = "id, namespace, name, level, state, attempt, labels, \
     spec, demand, created_at, enqueued_at, updated_at, cpu_milli, mem_mib, queue_ttl_ms, \
     queue_deadline";
pub(super) const JOB_INSERT_ROW: &str =
    "($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $9, $9, $10, $11, $12, $13)";
/// The binds of [`JOB_INSERT_ROW`].
pub(super) const JOB_INSERT_BINDS: usize = 13;

/// Binds a job row's [`JOB_INSERT_ROW`] values.
pub(super) fn bind_job<'q>(
    q: Query<'q, sqlx::Any, AnyArguments>,
    row: &'q JobRow<'_>,
) -> Query<'q, sqlx::Any, AnyArguments> {
    let job = row.job;
    q.bind(job.id.as_str())
        .bind(job.namespace.as_str())
        .bind(job.name.as_str())
        .bind(job.level.as_str())
        .bind(JobState::Queued.as_str())
        .bind(row.labels.as_str())
        .bind(row.spec.as_str())
        .bind(row.demand.as_str())
        .bind(job.created_at_ms)
        .bind(row.cpu_milli)
        .bind(row.mem_mib)
        .bind(row.ttl_ms)
        .bind(row.deadline)
}

pub(super) async fn insert_job_in(
    conn: &mut AnyConnection,
    job: &NewJob,
) -> Result<JobRecord, StoreError> {
    let row = JobRow::new(job)?;
    let queued = JobState::Queued.as_str();
    let sql = format!("INSERT INTO jobs ({JOB_INSERT_COLUMNS}) VALUES {JOB_INSERT_ROW}");
    let inserted = bind_job(sqlx::query(sqlx::AssertSqlSafe(sql)), &row)
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
    Ok(row.record())
}

/// The `SET` list of `t`'s compare-and-set update, its values bound in `q`; `message` is the SQL
/// of the new message (a placeholder, or a column of the batch's values).
pub(super) fn transition_sets(q: &mut DynQuery, t: &Transition, message: &str) -> String {
    let to = q.text(t.to.as_str());
    let at = q.int(t.at_ms);
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
    sets
}

/// Moves job `t.id` from `t.from` to `t.to` if it is in `t.from` (compare and set), and adds
/// the timeline event.
pub(super) async fn transition_in(
    conn: &mut AnyConnection,
    t: &Transition,
) -> Result<JobRecord, StoreError> {
    exact("id", &t.id)?;
    if let Some(backend_ref) = &t.backend_ref {
        exact("backend_ref", backend_ref)?;
    }
    let message = sanitize(&t.message);
    let mut q = DynQuery::default();
    let id = q.text(t.id.as_str());
    let from = q.text(t.from.as_str());
    let message_p = q.text(message.as_ref());
    let sets = transition_sets(&mut q, t, &message_p);
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
    .bind(message.as_ref())
    .execute(&mut *conn)
    .await?;
    Ok(record)
}

pub(super) async fn add_note_in(
    conn: &mut AnyConnection,
    id: &str,
    at_ms: i64,
    message: &str,
) -> Result<(), StoreError> {
    exact("id", id)?;
    let message = sanitize(message);
    let done = sqlx::query(
        "INSERT INTO job_events (job_id, at, from_state, to_state, message) \
         SELECT id, $2, state, state, $3 FROM jobs WHERE id = $1",
    )
    .bind(id)
    .bind(at_ms)
    .bind(message.as_ref())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(id.to_string()));
    }
    Ok(())
}
