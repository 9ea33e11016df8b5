//! The job document parser: sluice's own job spec or a Spark Operator `SparkApplication`, read
//! into a validated [`Job`] and its [`JobPolicy`].
//!
//! A document whose `apiVersion` starts with `sparkoperator.k8s.io/` and whose `kind` is
//! `SparkApplication` is read as the operator's resource: sluice interprets the fields it needs
//! for sizing and running the job and keeps the whole document (as parsed JSON and as the
//! original text) so that nothing is dropped. Anything else is sluice's own spec, in which an
//! unknown field is an error naming its path.
//!
//! This module sits above [`crate::spec`] (the model and its field checks), [`crate::sizing`]
//! (every quantity is checked by computing the demand) and [`crate::retry`] (the policy).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::retry::{JobPolicy, from_restart_policy};
use crate::safety;
use crate::sizing::{command_demand, job_kind_demand, spark_demand};
use crate::spec::{
    CommandSpec, Controls, DbtSpec, Job, JobKind, JobSpec, MAX_QUEUE_WAIT_KEY, MAX_RUNTIME_KEY,
    PRIORITY_LABEL, ParseOptions, PythonSpec, SparkSpec, SparkSqlSpec, SpecError, Text,
    check_document_text, check_labels, check_text, decode, namespace_of, parse_duration_secs,
    required_name, validate_command, validate_dbt, validate_python, validate_spark,
    validate_spark_sql,
};
use crate::stored::StoredJob;

/// The top-level key of a job's state in `sluice get ID -o yaml`, ignored when a document is
/// parsed.
pub const STATUS_KEY: &str = "status";

/// Parses and validates a job document (YAML or JSON).
pub fn parse_job(text: &str, opts: ParseOptions<'_>) -> Result<Job, SpecError> {
    parse_job_with_policy(text, opts).map(|(job, _)| job)
}

/// Parses and validates a job document into the [`StoredJob`] the store keeps: the job, its
/// policy and the text exactly as given (so that it can be handed back unchanged).
pub fn parse_stored(text: &str, opts: ParseOptions<'_>) -> Result<StoredJob, SpecError> {
    let (job, policy) = parse_job_with_policy(text, opts)?;
    Ok(StoredJob {
        job,
        policy,
        document: text.to_string(),
    })
}

/// Parses and validates a job document and its orchestration policy: `retry` and
/// `maxQueueWait` in sluice's own spec; for a `SparkApplication`, `spec.restartPolicy` (as the
/// operator reads it) and the annotation `sluice.io/max-queue-wait`.
pub fn parse_job_with_policy(
    text: &str,
    opts: ParseOptions<'_>,
) -> Result<(Job, JobPolicy), SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Malformed("the document is empty".into()));
    }
    let mut value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| SpecError::Malformed(e.to_string()))?;
    // A top-level `status` (what `sluice get ID -o yaml` adds, as kubectl does) is not the
    // user's to set: it is ignored, so that output can be submitted again unchanged.
    if let Some(obj) = value.as_object_mut() {
        obj.remove(STATUS_KEY);
    }
    // NUL and other control characters are refused anywhere, naming the path.
    check_document_text(&value, "")?;
    let obj = value.as_object().ok_or_else(|| {
        SpecError::Malformed(format!(
            "expected a mapping at the top level, got {}",
            kind_of(&value)
        ))
    })?;
    let is_spark_app = obj
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.starts_with("sparkoperator.k8s.io/"))
        && obj.get("kind").and_then(|v| v.as_str()) == Some("SparkApplication");
    if is_spark_app {
        let policy = spark_application_policy(&value)?;
        parse_spark_application(text, value, opts).map(|job| (job, policy))
    } else if obj.contains_key("apiVersion") && obj.contains_key("kind") {
        let api = obj
            .get("apiVersion")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let kind = obj.get("kind").map(|v| v.to_string()).unwrap_or_default();
        Err(SpecError::bad(
            "kind",
            format!("{api}/{kind}"),
            "is not supported (expected sluice's own job spec or sparkoperator.k8s.io/v1beta2 SparkApplication)",
        ))
    } else {
        parse_own(value, opts)
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// The policy of a `SparkApplication` document: its `spec.restartPolicy` and the
/// `sluice.io/max-queue-wait` annotation (or label).
pub(crate) fn spark_application_policy(value: &serde_json::Value) -> Result<JobPolicy, SpecError> {
    let retry = match value.pointer("/spec/restartPolicy") {
        None | Some(serde_json::Value::Null) => None,
        Some(rp) => {
            let rp: BTreeMap<String, serde_json::Value> = decode(rp, "spec.restartPolicy", None)?;
            from_restart_policy(&rp, "spec.restartPolicy")?
        }
    };
    let mut max_queue_wait_secs = None;
    for place in ["annotations", "labels"] {
        if let Some(v) = value
            .get("metadata")
            .and_then(|m| m.get(place))
            .and_then(|m| m.get(MAX_QUEUE_WAIT_KEY))
        {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            max_queue_wait_secs = Some(parse_duration_secs(
                &format!("metadata.{place}.{MAX_QUEUE_WAIT_KEY}"),
                &text,
            )?);
            break;
        }
    }
    Ok(JobPolicy {
        retry,
        max_queue_wait_secs,
    })
}

pub(crate) fn parse_own(
    value: serde_json::Value,
    opts: ParseOptions<'_>,
) -> Result<(Job, JobPolicy), SpecError> {
    let mut unknown = Vec::new();
    let spec: JobSpec = decode(&value, "", Some(&mut unknown))?;
    if let Some(field) = unknown.into_iter().next() {
        return Err(SpecError::UnknownField { field });
    }
    let policy = JobPolicy {
        retry: spec
            .retry
            .as_ref()
            .map(|r| r.resolve("retry"))
            .transpose()?,
        max_queue_wait_secs: spec
            .max_queue_wait
            .as_deref()
            .map(|t| parse_duration_secs("maxQueueWait", t))
            .transpose()?,
    };
    let name = required_name(spec.name.as_deref(), "name")?;
    let namespace = namespace_of(spec.namespace.as_deref(), "namespace")?;
    let level = match (opts.priority, spec.priority.as_deref()) {
        (Some(p), _) => opts.levels.check("priority", p)?,
        (None, Some(p)) => opts.levels.check("priority", p)?,
        (None, None) => opts.levels.default_for(&namespace).to_string(),
    };
    let labels = check_labels(
        spec.labels.into_iter().map(|(k, v)| (k, v.0)).collect(),
        "labels",
    )?;
    let max_runtime_secs = spec
        .max_runtime
        .as_deref()
        .map(|t| parse_duration_secs("maxRuntime", t))
        .transpose()?;
    let kind = own_kind(
        spec.spark,
        spec.spark_sql,
        spec.python,
        spec.dbt,
        spec.command,
    )?;
    Ok((
        Job {
            namespace,
            name,
            level,
            labels,
            max_runtime_secs,
            kind,
        },
        policy,
    ))
}

/// The one kind section of sluice's own spec, validated, checked for safety and sized.
fn own_kind(
    spark: Option<SparkSpec>,
    spark_sql: Option<SparkSqlSpec>,
    python: Option<PythonSpec>,
    dbt: Option<DbtSpec>,
    command: Option<CommandSpec>,
) -> Result<JobKind, SpecError> {
    let given: Vec<&str> = [
        ("spark", spark.is_some()),
        ("sparkSql", spark_sql.is_some()),
        ("python", python.is_some()),
        ("dbt", dbt.is_some()),
        ("command", command.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| *name)
    .collect();
    if given.len() > 1 {
        return Err(SpecError::bad(
            given.join("/"),
            "all given",
            "give exactly one of `spark`, `sparkSql`, `python`, `dbt` and `command`",
        ));
    }
    if let Some(s) = spark {
        validate_spark(&s, "spark")?;
        safety::check_spark(&s, "spark")?;
        // Sizing checks every quantity and names the field on error.
        spark_demand(&s, "spark")?;
        return Ok(JobKind::Spark {
            spec: Box::new(s),
            application: None,
            source: None,
        });
    }
    if let Some(q) = spark_sql {
        validate_spark_sql(&q)?;
        safety::check_spark(&q.to_spark(), "sparkSql")?;
        let kind = JobKind::SparkSql(Box::new(q));
        job_kind_demand(&kind)?;
        return Ok(kind);
    }
    if let Some(p) = python {
        validate_python(&p)?;
        safety::check_python(&p)?;
        let kind = JobKind::Python(Box::new(p));
        job_kind_demand(&kind)?;
        return Ok(kind);
    }
    if let Some(d) = dbt {
        validate_dbt(&d)?;
        safety::check_process("dbt", &d.env, &d.secret_env, None)?;
        let kind = JobKind::Dbt(Box::new(d));
        job_kind_demand(&kind)?;
        return Ok(kind);
    }
    match command {
        Some(c) => {
            validate_command(&c)?;
            safety::check_command(&c)?;
            command_demand(&c)?;
            Ok(JobKind::Command(c))
        }
        None => Err(SpecError::Missing {
            field: "spark".into(),
            hint: "a job needs one kind section: `spark` (a Spark application), `sparkSql`, \
                   `python`, `dbt` or `command`"
                .into(),
        }),
    }
}

#[derive(Deserialize, Default)]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, Text>,
    #[serde(default)]
    annotations: BTreeMap<String, Text>,
}

pub(crate) fn parse_spark_application(
    text: &str,
    value: serde_json::Value,
    opts: ParseOptions<'_>,
) -> Result<Job, SpecError> {
    let meta: Metadata = match value.get("metadata") {
        Some(m) => decode(m, "metadata", None)?,
        None => {
            return Err(SpecError::Missing {
                field: "metadata.name".into(),
                hint: "a SparkApplication needs metadata.name".into(),
            });
        }
    };
    let name = required_name(meta.name.as_deref(), "metadata.name")?;
    let namespace = namespace_of(meta.namespace.as_deref(), "metadata.namespace")?;
    let labels: BTreeMap<String, String> = meta.labels.into_iter().map(|(k, v)| (k, v.0)).collect();
    let level = match (opts.priority, labels.get(PRIORITY_LABEL)) {
        (Some(p), _) => opts.levels.check("priority", p)?,
        (None, Some(p)) => opts
            .levels
            .check(&format!("metadata.labels.{PRIORITY_LABEL}"), p)?,
        (None, None) => opts.levels.default_for(&namespace).to_string(),
    };
    let labels = check_labels(labels, "metadata.labels")?;
    let max_runtime_secs = meta
        .annotations
        .get(MAX_RUNTIME_KEY)
        .map(|t| {
            parse_duration_secs(
                &format!("metadata.annotations.{MAX_RUNTIME_KEY}"),
                t.as_str(),
            )
        })
        .transpose()?;
    let spec_value = value.get("spec").ok_or_else(|| SpecError::Missing {
        field: "spec".into(),
        hint: "a SparkApplication needs a spec".into(),
    })?;
    let spec: SparkSpec = decode(spec_value, "spec", None)?;
    if spec.app_type.is_none() {
        return Err(SpecError::Missing {
            field: "spec.type".into(),
            hint: "one of Scala, Java, Python, R".into(),
        });
    }
    for role in ["", "driver.", "executor."] {
        let pointer = format!("/spec/{}image", role.replace('.', "/"));
        if let Some(image) = value.pointer(&pointer).and_then(|v| v.as_str()) {
            check_text(&format!("spec.{role}image"), image, Controls::None)?;
        }
    }
    validate_spark(&spec, "spec")?;
    safety::check_spark(&spec, "spec")?;
    spark_demand(&spec, "spec")?;
    Ok(Job {
        namespace,
        name,
        level,
        labels,
        max_runtime_secs,
        kind: JobKind::Spark {
            spec: Box::new(spec),
            application: Some(value),
            source: Some(text.to_string()),
        },
    })
}

#[cfg(test)]
mod tests;
