//! Row codecs and statement helpers shared by the queries of [`super::SqlStore`]: the job
//! columns, [`decode_job`] (the one place a job row becomes a [`JobRecord`]), timeline events,
//! page cursors, and statements built at run time ([`DynQuery`]).

use std::collections::BTreeMap;

use sluice_core::job::{JobEvent, JobState};
use sluice_core::record::JobRecord;
use sluice_core::stored::{StoredJob, StoredJobError};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row};

use crate::error::StoreError;

/// The columns of `jobs` that [`decode_job`] reads.
pub(super) const JOB_COLUMNS: &str = "id, namespace, name, level, state, attempt, labels, spec, demand, \
     created_at, enqueued_at, updated_at, started_at, finished_at, backend_ref, exit_code, message";

/// [`JOB_COLUMNS`] qualified with the alias `j`, for queries that join `job_labels`.
pub(super) const J_JOB_COLUMNS: &str = "j.id, j.namespace, j.name, j.level, j.state, j.attempt, j.labels, \
     j.spec, j.demand, j.created_at, j.enqueued_at, j.updated_at, j.started_at, j.finished_at, \
     j.backend_ref, j.exit_code, j.message";

/// A bind value of a dynamically built statement.
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

/// A statement built at run time, with `$N` placeholders numbered as values are added.
#[derive(Default)]
pub(super) struct DynQuery {
    pub(super) sql: String,
    pub(super) args: Vec<Arg>,
}

impl DynQuery {
    /// Adds a bind value; returns its placeholder.
    pub(super) fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub(super) fn text(&mut self, s: impl Into<String>) -> String {
        self.arg(Arg::Text(s.into()))
    }

    pub(super) fn int(&mut self, i: i64) -> String {
        self.arg(Arg::Int(i))
    }

    pub(super) fn build(self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
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

pub(super) fn corrupt_json(column: &str, id: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "jobs.{column} of job {id:?} is not valid JSON for its type: {e}"
    ))
}

pub(super) fn parse_state(table_column: &str, id: &str, s: &str) -> Result<JobState, StoreError> {
    s.parse::<JobState>().map_err(|_| {
        StoreError::Corrupt(format!(
            "{table_column} of job {id:?} is {s:?}, which is not a job state \
             (expected one of queued, admitted, submitted, running, succeeded, failed, cancelled)"
        ))
    })
}

pub(super) fn decode_job(row: &AnyRow) -> Result<JobRecord, StoreError> {
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
    // A stored job that does not decode stays readable as a record: whoever needs the job gets
    // the error naming it (`JobRecord::decoded`), and a reader of many rows is not stopped.
    let stored = serde_json::from_str::<serde_json::Value>(&spec)
        .map_err(|e| StoredJobError::Job(format!("jobs.spec is not JSON: {e}")))
        .and_then(|v| StoredJob::decode(&v));
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
        stored,
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

pub(super) fn decode_event(row: &AnyRow) -> Result<JobEvent, StoreError> {
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

pub(super) fn encode_cursor(job: &JobRecord) -> String {
    format!("{}:{}", job.created_at_ms, job.id)
}

pub(super) fn decode_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::BadCursor(cursor.to_string());
    let (ms, id) = cursor.split_once(':').ok_or_else(bad)?;
    let ms = ms.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() || id.contains('\0') {
        return Err(bad());
    }
    Ok((ms, id.to_string()))
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
