//! The stored job: the validated [`Job`], its [`JobPolicy`] and the user's own document, as the
//! store keeps them in one JSON value and hands them out decoded once.
//!
//! The stored JSON is the [`Job`]'s fields, plus its policy under [`POLICY_KEY`] when one is
//! set, plus the document text under [`DOCUMENT_KEY`]. Rows written before the document was kept
//! have no [`DOCUMENT_KEY`]: [`StoredJob::decode`] rebuilds one from the job ([`rebuild_document`]),
//! which [`crate::document::parse_job`] accepts and which gives the same job back. A policy or job
//! that does not decode is an error naming what failed, never a silent default: a corrupt row
//! must not change how a job is retried.

use serde_json::{Map, Value};

use crate::retry::{JobPolicy, POLICY_KEY, RetryPolicy};
use crate::spec::{BackoffSpec, Job, JobKind, RetrySpec, Text};

/// Key of the user's original document in a stored job's JSON.
pub const DOCUMENT_KEY: &str = "document";

/// Why a stored job could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredJobError {
    /// The stored value is not a JSON object.
    #[error("the stored job is not a JSON object (got {0})")]
    NotAnObject(String),
    /// The job's fields do not decode.
    #[error("the stored job does not decode: {0}")]
    Job(String),
    /// The policy under [`POLICY_KEY`] does not decode.
    #[error("the stored retry/queue policy does not decode: {0}")]
    Policy(String),
    /// The document under [`DOCUMENT_KEY`] is not a string.
    #[error("the stored document is not a string (got {0})")]
    Document(String),
    /// The job or policy could not be written as JSON.
    #[error("the job does not encode as JSON: {0}")]
    Encode(String),
}

/// A job as the store keeps it: the validated job, its policy and the user's document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    /// The validated job.
    pub job: Job,
    /// Its retry and queue policy (the default when the document sets none).
    pub policy: JobPolicy,
    /// The document as the user submitted it (YAML or JSON), or, for rows written before it
    /// was kept, one rebuilt from the job ([`rebuild_document`]).
    pub document: String,
}

impl StoredJob {
    /// A stored job for a job that has no submitted text of its own (a run of a schedule, a
    /// row written before documents were kept): the document is rebuilt from the job.
    pub fn rebuilt(job: Job, policy: JobPolicy) -> Result<StoredJob, StoredJobError> {
        let document = rebuild_document(&job, &policy)?;
        Ok(StoredJob {
            job,
            policy,
            document,
        })
    }

    /// The stored JSON: the job's fields, the policy under [`POLICY_KEY`] (when set) and the
    /// document under [`DOCUMENT_KEY`].
    pub fn encode(&self) -> Result<Value, StoredJobError> {
        let mut v = encode_job(&self.job, &self.policy)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(DOCUMENT_KEY.into(), Value::String(self.document.clone()));
        }
        Ok(v)
    }

    /// Decodes the stored JSON. A missing policy is the default policy (none was set); a
    /// policy or job that is there but does not decode is an error.
    pub fn decode(value: &Value) -> Result<StoredJob, StoredJobError> {
        if !value.is_object() {
            return Err(StoredJobError::NotAnObject(kind_of(value).into()));
        }
        let job: Job = serde_json::from_value(value.clone())
            .map_err(|e| StoredJobError::Job(e.to_string()))?;
        let policy = decode_policy(value)?;
        let document = match value.get(DOCUMENT_KEY) {
            None | Some(Value::Null) => rebuild_document(&job, &policy)?,
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(StoredJobError::Document(kind_of(other).into())),
        };
        Ok(StoredJob {
            job,
            policy,
            document,
        })
    }
}

/// The stored JSON of a job and its policy without a document (the format of rows written
/// before documents were kept).
fn encode_job(job: &Job, policy: &JobPolicy) -> Result<Value, StoredJobError> {
    let enc = |e: serde_json::Error| StoredJobError::Encode(e.to_string());
    let mut v = serde_json::to_value(job).map_err(enc)?;
    if !policy.is_empty()
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert(
            POLICY_KEY.into(),
            serde_json::to_value(policy).map_err(enc)?,
        );
    }
    Ok(v)
}

/// The policy of a stored job: the default when [`POLICY_KEY`] is absent (none was set), an
/// error when it is there and does not decode.
fn decode_policy(stored: &Value) -> Result<JobPolicy, StoredJobError> {
    match stored.get(POLICY_KEY) {
        None | Some(Value::Null) => Ok(JobPolicy::default()),
        Some(p) => {
            serde_json::from_value(p.clone()).map_err(|e| StoredJobError::Policy(e.to_string()))
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A document for a job that has no submitted text: the `SparkApplication` text or value it came
/// with, else sluice's own spec written as JSON (which is YAML, so `sluice submit` and
/// [`crate::document::parse_job`] accept it) with the job's level as `priority`, its limits and
/// its policy as `retry` and `maxQueueWait`. Parsing it gives the same job and policy back.
pub fn rebuild_document(job: &Job, policy: &JobPolicy) -> Result<String, StoredJobError> {
    let enc = |e: serde_json::Error| StoredJobError::Encode(e.to_string());
    let spec = match &job.kind {
        JobKind::Spark {
            source: Some(text), ..
        } => return Ok(text.clone()),
        JobKind::Spark {
            application: Some(app),
            ..
        } => return serde_json::to_string_pretty(app).map_err(enc),
        JobKind::Spark { spec, .. } => ("spark", serde_json::to_value(spec).map_err(enc)?),
        JobKind::Command(c) => ("command", serde_json::to_value(c).map_err(enc)?),
        JobKind::SparkSql(q) => ("sparkSql", serde_json::to_value(q).map_err(enc)?),
        JobKind::Python(p) => ("python", serde_json::to_value(p).map_err(enc)?),
        JobKind::Dbt(d) => ("dbt", serde_json::to_value(d).map_err(enc)?),
    };
    let mut doc = Map::new();
    doc.insert("name".into(), job.name.clone().into());
    doc.insert("namespace".into(), job.namespace.clone().into());
    doc.insert("priority".into(), job.level.clone().into());
    if !job.labels.is_empty() {
        doc.insert(
            "labels".into(),
            serde_json::to_value(&job.labels).map_err(enc)?,
        );
    }
    if let Some(secs) = job.max_runtime_secs {
        doc.insert("maxRuntime".into(), format!("{secs}s").into());
    }
    doc.insert(spec.0.into(), spec.1);
    if let Some(r) = &policy.retry {
        doc.insert(
            "retry".into(),
            serde_json::to_value(retry_spec(r)).map_err(enc)?,
        );
    }
    if let Some(secs) = policy.max_queue_wait_secs {
        doc.insert("maxQueueWait".into(), format!("{secs}s").into());
    }
    serde_json::to_string_pretty(&Value::Object(doc)).map_err(enc)
}

/// The `retry` section that resolves to `r`.
fn retry_spec(r: &RetryPolicy) -> RetrySpec {
    RetrySpec {
        max_attempts: Some(i64::from(r.max_attempts)),
        backoff: Some(BackoffSpec {
            initial: Some(format!("{}ms", r.backoff_initial_ms)),
            max: Some(format!("{}ms", r.backoff_max_ms)),
            factor: Some(Text(r.backoff_factor.to_string())),
        }),
        jitter: Some(Text(r.jitter.to_string())),
        retry_on: Some(r.retry_on.iter().map(|c| c.as_str().to_string()).collect()),
        oom_memory_factor: r.oom_memory_factor.map(|f| Text(f.to_string())),
        oom_memory_cap: r.oom_memory_cap_mib.map(|m| Text(format!("{m}m"))),
    }
}

#[cfg(test)]
mod tests;
