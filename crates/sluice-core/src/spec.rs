//! The job model, parsed from sluice's own job spec or from a Spark Operator `SparkApplication`.
//!
//! A document whose `apiVersion` starts with `sparkoperator.k8s.io/` and whose `kind` is
//! `SparkApplication` is read as the operator's resource: sluice interprets the fields it needs
//! for sizing and running the job and keeps the whole document (as parsed JSON and as the
//! original text) so that nothing is dropped. Anything else is sluice's own spec, in which an
//! unknown field is an error naming its path.
//!
//! YAML is read with serde-saphyr into an untyped value first, then decoded with
//! `serde_path_to_error` (so a type error names the field) and `serde_ignored` (so an unknown
//! field in sluice's own spec is refused by path). Scalars in string maps and lists (Spark conf,
//! labels, arguments, env) may be written as numbers or booleans; they are kept as text.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::{self, DurationError};
use crate::quantity::{self, QuantityError};

mod command;
mod kinds;
mod spark;
mod sql;

pub use command::CommandSpec;
pub(crate) use command::validate_command;
pub use kinds::{
    DBT_TARGET_DIR, DbtCommand, DbtSpec, PythonSpec, SQL_RUNNER_FILE, SQL_STATEMENTS_FILE,
    SparkSqlSpec,
};
pub(crate) use kinds::{validate_dbt, validate_python, validate_spark_sql};
pub(crate) use spark::validate_spark;
pub use spark::{AppType, Deps, DriverSpec, DynamicAllocation, ExecutorSpec, SparkSpec};
pub use sql::{SqlSplitError, split_statements};

/// The label (on a `SparkApplication`) that names sluice's priority level.
pub const PRIORITY_LABEL: &str = "sluice.io/priority";
/// The annotation or label (on a `SparkApplication`) that sets a maximum run time, like "30m".
pub const MAX_RUNTIME_KEY: &str = "sluice.io/max-runtime";
/// Namespace used when a spec names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Why a job spec was refused. Every message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The document is not valid YAML or JSON.
    #[error("malformed job document: {0}")]
    Malformed(String),
    /// A field has the wrong type or shape.
    #[error("field `{field}`: {message}")]
    BadType {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// sluice's own spec has a field sluice does not know.
    #[error("unknown field `{field}` in job spec (check the spelling; see docs/job-spec.md)")]
    UnknownField {
        /// Dotted path of the field.
        field: String,
    },
    /// A required field is missing.
    #[error("missing field `{field}`: {hint}")]
    Missing {
        /// Dotted path of the field.
        field: String,
        /// What to put there.
        hint: String,
    },
    /// A field has a value that is not allowed.
    #[error("field `{field}` = {value:?} {message}")]
    BadValue {
        /// Dotted path of the field.
        field: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        message: String,
    },
}

impl SpecError {
    /// A [`SpecError::BadValue`].
    pub(crate) fn bad(
        field: impl Into<String>,
        value: impl fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        SpecError::BadValue {
            field: field.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }

    fn quantity(field: &str, value: &str, e: QuantityError) -> Self {
        SpecError::bad(field, value, e.to_string())
    }
}

/// A scalar kept as text: YAML `10`, `true` and `"10"` all read as a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// sluice's own job spec, as a user writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct JobSpec {
    /// Job name (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace; default "default".
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(default = "default"))]
    pub namespace: Option<String>,
    /// Priority level; default the namespace's default level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Text>,
    /// Longest the job may run, like "30m", "2h", "90s".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runtime: Option<String>,
    /// A Spark application (exactly one of `spark`, `sparkSql`, `python`, `dbt` and `command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkSpec>,
    /// Spark SQL statements, run by Spark (exactly one kind section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark_sql: Option<SparkSqlSpec>,
    /// A Python entry point, with or without Spark (exactly one kind section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonSpec>,
    /// A dbt command over a project (exactly one kind section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbt: Option<DbtSpec>,
    /// A command (exactly one kind section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// How failed attempts are retried (resolved by `crate::retry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Longest wait in the queue, like "1h": a job that waited longer is dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queue_wait: Option<String>,
}

/// `retry` as written in a job spec (every field optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RetrySpec {
    /// Attempts in all, the first included (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(default = 3, minimum = 1, maximum = 100))]
    pub max_attempts: Option<i64>,
    /// Backoff between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    /// Jitter as a fraction of the delay, 0 to 1 (default 0.1): the delay is spread over
    /// `delay x (1 +- jitter)`, deterministically per job and attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<f64>, default = 0.1, minimum = 0, maximum = 1))]
    pub jitter: Option<Text>,
    /// Failure classes to retry (default all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<Vec<FailureClassName>>))]
    pub retry_on: Option<Vec<String>>,
    /// On an OOM failure, multiply the job's memory by this factor (> 1) for the next attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_memory_factor: Option<Text>,
    /// The most memory an OOM raise may reach (per process: command, driver, executor), like 8g.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_memory_cap: Option<Text>,
}

/// `retry.backoff` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct BackoffSpec {
    /// Delay before the first retry (default 10s). `250ms`, `10s`, `1m`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(default = "10s"))]
    pub initial: Option<String>,
    /// Longest delay (default 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(default = "10m"))]
    pub max: Option<String>,
    /// Growth factor per retry, at least 1 (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<f64>, default = 2, minimum = 1))]
    pub factor: Option<Text>,
}

/// What kind of work a job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JobKind {
    /// A Spark application.
    Spark {
        /// The interpreted spec (boxed: it is much larger than a command).
        spec: Box<SparkSpec>,
        /// The whole `SparkApplication` when the job came as one (kept for pass-through).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        application: Option<serde_json::Value>,
        /// The original document text when the job came as a `SparkApplication`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// A plain command.
    Command(CommandSpec),
    /// Spark SQL statements, run by sluice's runner as a Spark application.
    #[serde(rename = "sparkSql")]
    SparkSql(Box<SparkSqlSpec>),
    /// A Python entry point, with or without Spark.
    Python(Box<PythonSpec>),
    /// A dbt command over a project.
    Dbt(Box<DbtSpec>),
}

impl JobKind {
    /// The kind's section name in sluice's own spec (and the prefix of its fields in messages):
    /// `spec` for a kept `SparkApplication`, else `spark`, `command`, `sparkSql`, `python` or
    /// `dbt`.
    pub fn section(&self) -> &'static str {
        match self {
            JobKind::Spark {
                application: Some(_),
                ..
            } => "spec",
            JobKind::Spark { .. } => "spark",
            JobKind::Command(_) => "command",
            JobKind::SparkSql(_) => "sparkSql",
            JobKind::Python(_) => "python",
            JobKind::Dbt(_) => "dbt",
        }
    }

    /// The Spark application the job runs as: a Spark job's own spec, a `sparkSql` job's
    /// runner ([`SparkSqlSpec::to_spark`]), a `python` job's with `spark: true`
    /// ([`PythonSpec::to_spark`]); `None` for a job that is not run by Spark.
    pub fn spark_spec(&self) -> Option<std::borrow::Cow<'_, SparkSpec>> {
        use std::borrow::Cow;
        match self {
            JobKind::Spark { spec, .. } => Some(Cow::Borrowed(spec.as_ref())),
            JobKind::SparkSql(s) => Some(Cow::Owned(s.to_spark())),
            JobKind::Python(p) => p.to_spark().map(Cow::Owned),
            JobKind::Command(_) | JobKind::Dbt(_) => None,
        }
    }

    /// True for the kinds that run a user's program on the backend's host as a process of
    /// its own (command, python, dbt): what `[security.command_jobs]` allows.
    pub fn runs_host_code(&self) -> bool {
        matches!(
            self,
            JobKind::Command(_) | JobKind::Python(_) | JobKind::Dbt(_)
        )
    }
}

/// A validated job: what the store keeps and the backends run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Priority level (one of the configured levels).
    pub level: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Longest run time in seconds, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runtime_secs: Option<u64>,
    /// The work.
    pub kind: JobKind,
}

/// The configured priority levels, highest first, and default levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    /// Level names, highest priority first.
    pub names: Vec<String>,
    /// Default level for namespaces without their own.
    pub default_level: String,
    /// Per-namespace default levels.
    #[serde(default)]
    pub namespace_defaults: BTreeMap<String, String>,
}

impl Default for Levels {
    fn default() -> Self {
        Levels {
            names: vec!["high".into(), "normal".into()],
            default_level: "normal".into(),
            namespace_defaults: BTreeMap::new(),
        }
    }
}

impl Levels {
    /// Rank of a level: 0 is the highest. None if unknown.
    pub fn rank(&self, level: &str) -> Option<usize> {
        self.names.iter().position(|l| l == level)
    }

    /// The default level of a namespace.
    pub fn default_for(&self, namespace: &str) -> &str {
        self.namespace_defaults
            .get(namespace)
            .map(String::as_str)
            .unwrap_or(&self.default_level)
    }

    /// The level if it is one of the configured levels, else an error naming `field`.
    pub(crate) fn check(&self, field: &str, level: &str) -> Result<String, SpecError> {
        if self.rank(level).is_some() {
            Ok(level.to_string())
        } else {
            Err(SpecError::bad(
                field,
                level,
                format!(
                    "is not a priority level (levels: {})",
                    self.names.join(", ")
                ),
            ))
        }
    }
}

/// Options for [`parse_job`].
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions<'a> {
    /// Level given on the command line (`submit --priority`); wins over the document.
    pub priority: Option<&'a str>,
    /// The configured levels.
    pub levels: &'a Levels,
}

/// The annotation or label (on a `SparkApplication`) that sets a maximum queue wait, like "1h".
pub const MAX_QUEUE_WAIT_KEY: &str = "sluice.io/max-queue-wait";

/// Decodes `value` into `T`, naming the field of any type error; collects unknown fields.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    prefix: &str,
    unknown: Option<&mut Vec<String>>,
) -> Result<T, SpecError> {
    let join = |path: String| -> String {
        match (prefix.is_empty(), path == "." || path.is_empty()) {
            (true, _) => path,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}.{path}"),
        }
    };
    let mut ignored = Vec::new();
    let result: Result<T, _> = {
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(value, &mut track);
        let r = serde_ignored::deserialize(de, |path| ignored.push(path.to_string()));
        r.map_err(|e| SpecError::BadType {
            field: join(track.path().to_string()),
            message: e.to_string(),
        })
    };
    let v = result?;
    if let Some(out) = unknown {
        // serde_ignored writes `?` for a step through an Option: drop it.
        out.extend(ignored.into_iter().map(|p| {
            let clean: Vec<&str> = p.split('.').filter(|s| *s != "?").collect();
            join(clean.join("."))
        }));
    }
    Ok(v)
}

pub(crate) fn required_name(name: Option<&str>, field: &str) -> Result<String, SpecError> {
    let name = name.map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Err(SpecError::Missing {
            field: field.into(),
            hint: "every job needs a name".into(),
        });
    }
    check_dns_label(field, name, 253)?;
    Ok(name.to_string())
}

pub(crate) fn namespace_of(ns: Option<&str>, field: &str) -> Result<String, SpecError> {
    match ns {
        None => Ok(DEFAULT_NAMESPACE.to_string()),
        Some(ns) => {
            check_dns_label(field, ns, 63)?;
            Ok(ns.to_string())
        }
    }
}

/// Names and namespaces follow Kubernetes' rules (lowercase letters, digits, '-' and '.'),
/// so that a job can become a Kubernetes object unchanged.
fn check_dns_label(field: &str, v: &str, max: usize) -> Result<(), SpecError> {
    let ok_chars = v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ok_ends = v
        .bytes()
        .next()
        .zip(v.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if v.is_empty() || v.len() > max || !ok_chars || !ok_ends {
        return Err(SpecError::bad(
            field,
            v,
            format!(
                "must be 1-{max} lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Checks label keys and values (`field` is the path of the label map).
pub(crate) fn check_labels(
    labels: BTreeMap<String, String>,
    field: &str,
) -> Result<BTreeMap<String, String>, SpecError> {
    for (k, v) in &labels {
        if k.is_empty() || k.len() > 317 || k.contains(char::is_whitespace) || k.contains('=') {
            return Err(SpecError::bad(
                format!("{field}.{k}"),
                k,
                "is not a valid label key",
            ));
        }
        check_text(&format!("{field}.{k}"), k, Controls::None)?;
        check_text(&format!("{field}.{k}"), v, Controls::None)?;
        // Characters, not bytes: a value of multi-byte characters is measured and cut on
        // character boundaries.
        if v.chars().count() > 1024 {
            let head: String = v.chars().take(32).collect();
            return Err(SpecError::bad(
                format!("{field}.{k}"),
                format!("{head}..."),
                "is longer than 1024 characters",
            ));
        }
    }
    Ok(labels)
}

/// Which control characters [`check_text`] lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controls {
    /// None at all: names, keys, labels, paths, classes, images.
    None,
    /// Tab, line feed and carriage return only: free text such as arguments, environment and
    /// Spark conf values (a `sh -c` script written as a YAML block is several lines).
    Whitespace,
}

/// Refuses a text with a control character (C0, DEL, C1; NUL included), naming `field` and
/// showing the value escaped. Such a character cannot be stored by every database (PostgreSQL
/// refuses NUL) and would corrupt logs and terminals.
pub(crate) fn check_text(field: &str, v: &str, allowed: Controls) -> Result<(), SpecError> {
    let bad = v.chars().find(|c| {
        c.is_control() && !(allowed == Controls::Whitespace && matches!(c, '\t' | '\n' | '\r'))
    });
    match bad {
        None => Ok(()),
        Some(c) => Err(SpecError::bad(
            field,
            v,
            format!(
                "contains the control character U+{:04X}; {}",
                u32::from(c),
                match allowed {
                    Controls::None => "no control characters are allowed here",
                    Controls::Whitespace => "only tab and line breaks are allowed here",
                }
            ),
        )),
    }
}

/// Refuses a control character other than tab and line breaks anywhere in a parsed document,
/// keys included, naming the path (`prefix` is the path of `value`).
pub(crate) fn check_document_text(
    value: &serde_json::Value,
    prefix: &str,
) -> Result<(), SpecError> {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        serde_json::Value::String(s) => check_text(prefix, s, Controls::Whitespace),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_document_text(v, &format!("{prefix}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_text(&join(k), k, Controls::None)?;
            check_document_text(v, &join(k))
        }),
        _ => Ok(()),
    }
}

/// Parses a duration in whole seconds, greater than zero, in the grammar of [`crate::duration`]
/// ("90", "90s", "30m", "1h30m", "1h 30m", "2d"; "1500ms" is refused: not whole seconds).
pub fn parse_duration_secs(field: &str, text: &str) -> Result<u64, SpecError> {
    let d = duration::parse_positive(field, text)?;
    if d.subsec_nanos() != 0 {
        return Err(SpecError::bad(
            field,
            text,
            "is not a whole number of seconds",
        ));
    }
    Ok(d.as_secs())
}

impl From<DurationError> for SpecError {
    fn from(e: DurationError) -> Self {
        SpecError::BadValue {
            field: e.field().to_string(),
            value: e.value().to_string(),
            message: e.problem(),
        }
    }
}

/// Parses a memory quantity in a named field (used by sizing and config).
pub fn mem_field(field: &str, text: &str) -> Result<u64, SpecError> {
    quantity::parse_mem_mib(text).map_err(|e| SpecError::quantity(field, text, e))
}

/// Parses a CPU quantity in a named field.
pub fn cpu_field(field: &str, text: &str) -> Result<u64, SpecError> {
    quantity::parse_cpu_milli(text).map_err(|e| SpecError::quantity(field, text, e))
}

/// Parses a factor (a positive decimal number) in a named field.
pub fn factor_field(field: &str, text: &str) -> Result<f64, SpecError> {
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(SpecError::bad(
            field,
            text,
            "is not a positive number (like 0.1)",
        )),
    }
}

#[cfg(feature = "schema")]
mod schema;
#[cfg(feature = "schema")]
pub use schema::FailureClassName;

#[cfg(test)]
mod tests;
