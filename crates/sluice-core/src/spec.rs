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

use crate::quantity::{self, QuantityError};

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
    fn bad(field: impl Into<String>, value: impl fmt::Display, message: impl Into<String>) -> Self {
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

/// The language of a Spark application, as the operator's `spec.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppType {
    /// A Scala application (JVM).
    Scala,
    /// A Java application (JVM).
    Java,
    /// A PySpark application.
    Python,
    /// A SparkR application.
    R,
}

impl AppType {
    /// True for Scala and Java.
    pub fn is_jvm(&self) -> bool {
        matches!(self, AppType::Scala | AppType::Java)
    }
}

/// Driver settings (a subset of the operator's `DriverSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DriverSpec {
    /// Whole cores for the driver (`spark.driver.cores`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<i64>,
    /// Kubernetes CPU request for the driver pod, like "500m"; defaults to `cores`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_request: Option<Text>,
    /// Driver JVM memory, like "512m" or "2g" (`spark.driver.memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Text>,
    /// Non-heap memory added to the driver pod (`spark.driver.memoryOverhead`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead: Option<Text>,
}

/// Executor settings (a subset of the operator's `ExecutorSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorSpec {
    /// Whole cores per executor (`spark.executor.cores`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<i64>,
    /// Kubernetes CPU request per executor pod, like "500m"; defaults to `cores`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_request: Option<Text>,
    /// Executor JVM memory (`spark.executor.memory`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Text>,
    /// Non-heap memory added to each executor pod (`spark.executor.memoryOverhead`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead: Option<Text>,
    /// Number of executors (`spark.executor.instances`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
}

/// Dynamic allocation settings (the operator's `DynamicAllocation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DynamicAllocation {
    /// Whether dynamic allocation is on.
    #[serde(default)]
    pub enabled: bool,
    /// `spark.dynamicAllocation.initialExecutors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_executors: Option<i64>,
    /// `spark.dynamicAllocation.minExecutors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_executors: Option<i64>,
    /// `spark.dynamicAllocation.maxExecutors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_executors: Option<i64>,
    /// `spark.dynamicAllocation.shuffleTracking.enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shuffle_tracking_enabled: Option<bool>,
    /// `spark.dynamicAllocation.shuffleTracking.timeout` in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shuffle_tracking_timeout: Option<i64>,
}

/// Dependencies (the operator's `Dependencies`), passed to spark-submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Deps {
    /// `--jars`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    /// `--files`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// `--py-files`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    /// `--packages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// `--exclude-packages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_packages: Vec<String>,
    /// `--repositories`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// `--archives`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<String>,
}

/// A Spark application: the fields of the operator's `SparkApplicationSpec` that sluice uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SparkSpec {
    /// Scala, Java, Python or R. In sluice's own spec it may be left out: a `.py` file means
    /// Python, `.R` means R, anything else Scala.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub app_type: Option<AppType>,
    /// The application: a jar, a .py or .R file (`local://` paths are allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_application_file: Option<String>,
    /// Main class, for JVM applications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_class: Option<String>,
    /// Application arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<Text>,
    /// Spark configuration (`--conf key=value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, Text>,
    /// Overhead factor for both roles (the operator's `memoryOverheadFactor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_overhead_factor: Option<Text>,
    /// Driver settings.
    #[serde(default)]
    pub driver: DriverSpec,
    /// Executor settings.
    #[serde(default)]
    pub executor: ExecutorSpec,
    /// Dynamic allocation settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_allocation: Option<DynamicAllocation>,
    /// Dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deps: Option<Deps>,
    /// Spark version (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark_version: Option<String>,
}

impl SparkSpec {
    /// The application type, given or inferred from the file name.
    pub fn app_type(&self) -> AppType {
        if let Some(t) = self.app_type {
            return t;
        }
        let file = self
            .main_application_file
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        if file.ends_with(".py") {
            AppType::Python
        } else if file.ends_with(".r") {
            AppType::R
        } else {
            AppType::Scala
        }
    }

    /// A Spark conf value.
    pub fn conf(&self, key: &str) -> Option<&str> {
        self.spark_conf.get(key).map(Text::as_str)
    }
}

/// A plain command job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CommandSpec {
    /// Program and arguments; no shell is involved.
    #[serde(default)]
    pub argv: Vec<Text>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Text>,
    /// CPU to reserve: cores ("2", "0.5") or millicores ("500m"); default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Text>,
    /// Memory to reserve, like "512m"; default 1g.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Text>,
    /// Working directory; default the backend's run directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// sluice's own job spec, as a user writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Job name (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace; default "default".
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// A Spark application (exactly one of `spark` and `command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkSpec>,
    /// A command (exactly one of `spark` and `command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// How failed attempts are retried (see [`crate::retry`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<crate::retry::RetrySpec>,
    /// Longest wait in the queue, like "1h": a job that waited longer is dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queue_wait: Option<String>,
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

    fn check(&self, field: &str, level: &str) -> Result<String, SpecError> {
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

/// Parses and validates a job document (YAML or JSON).
pub fn parse_job(text: &str, opts: ParseOptions<'_>) -> Result<Job, SpecError> {
    parse_job_with_policy(text, opts).map(|(job, _)| job)
}

/// Parses and validates a job document and its orchestration policy: `retry` and
/// `maxQueueWait` in sluice's own spec; for a `SparkApplication`, `spec.restartPolicy` (as the
/// operator reads it) and the annotation `sluice.io/max-queue-wait`.
pub fn parse_job_with_policy(
    text: &str,
    opts: ParseOptions<'_>,
) -> Result<(Job, crate::retry::JobPolicy), SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Malformed("the document is empty".into()));
    }
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| SpecError::Malformed(e.to_string()))?;
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

/// The policy of a `SparkApplication` document: its `spec.restartPolicy` and the
/// `sluice.io/max-queue-wait` annotation (or label).
pub(crate) fn spark_application_policy(
    value: &serde_json::Value,
) -> Result<crate::retry::JobPolicy, SpecError> {
    let retry = match value.pointer("/spec/restartPolicy") {
        None | Some(serde_json::Value::Null) => None,
        Some(rp) => {
            let rp: BTreeMap<String, serde_json::Value> = decode(rp, "spec.restartPolicy", None)?;
            crate::retry::from_restart_policy(&rp, "spec.restartPolicy")?
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
    Ok(crate::retry::JobPolicy {
        retry,
        max_queue_wait_secs,
    })
}

pub(crate) fn parse_own(
    value: serde_json::Value,
    opts: ParseOptions<'_>,
) -> Result<(Job, crate::retry::JobPolicy), SpecError> {
    let mut unknown = Vec::new();
    let spec: JobSpec = decode(&value, "", Some(&mut unknown))?;
    if let Some(field) = unknown.into_iter().next() {
        return Err(SpecError::UnknownField { field });
    }
    let policy = crate::retry::JobPolicy {
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
    let kind = match (spec.spark, spec.command) {
        (Some(_), Some(_)) => {
            return Err(SpecError::bad(
                "spark/command",
                "both",
                "give exactly one of `spark` and `command`",
            ));
        }
        (None, None) => {
            return Err(SpecError::Missing {
                field: "spark".into(),
                hint: "a job needs a `spark` section (a Spark application) or a `command` section"
                    .into(),
            });
        }
        (Some(s), None) => {
            validate_spark(&s, "spark")?;
            JobKind::Spark {
                spec: Box::new(s),
                application: None,
                source: None,
            }
        }
        (None, Some(c)) => {
            validate_command(&c)?;
            JobKind::Command(c)
        }
    };
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
    validate_spark(&spec, "spec")?;
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

fn check_labels(
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
        if v.len() > 1024 {
            return Err(SpecError::bad(
                format!("{field}.{k}"),
                format!("{}...", &v[..32.min(v.len())]),
                "is longer than 1024 characters",
            ));
        }
    }
    Ok(labels)
}

fn positive(field: &str, v: Option<i64>) -> Result<(), SpecError> {
    match v {
        Some(n) if n <= 0 => Err(SpecError::bad(field, n, "must be greater than zero")),
        _ => Ok(()),
    }
}

fn non_negative(field: &str, v: Option<i64>) -> Result<(), SpecError> {
    match v {
        Some(n) if n < 0 => Err(SpecError::bad(field, n, "must not be negative")),
        _ => Ok(()),
    }
}

fn validate_spark(s: &SparkSpec, p: &str) -> Result<(), SpecError> {
    match s.main_application_file.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(SpecError::Missing {
                field: format!("{p}.mainApplicationFile"),
                hint: "the jar, .py or .R file to run".into(),
            });
        }
        _ => {}
    }
    if s.app_type().is_jvm()
        && s.main_class.as_deref().is_none_or(|c| c.trim().is_empty())
        && !s
            .main_application_file
            .as_deref()
            .unwrap_or("")
            .ends_with(".jar")
    {
        return Err(SpecError::Missing {
            field: format!("{p}.mainClass"),
            hint: "a JVM application needs a main class or a jar with one".into(),
        });
    }
    positive(&format!("{p}.driver.cores"), s.driver.cores)?;
    positive(&format!("{p}.executor.cores"), s.executor.cores)?;
    non_negative(&format!("{p}.executor.instances"), s.executor.instances)?;
    if let Some(da) = &s.dynamic_allocation {
        non_negative(
            &format!("{p}.dynamicAllocation.initialExecutors"),
            da.initial_executors,
        )?;
        non_negative(
            &format!("{p}.dynamicAllocation.minExecutors"),
            da.min_executors,
        )?;
        non_negative(
            &format!("{p}.dynamicAllocation.maxExecutors"),
            da.max_executors,
        )?;
        if let (Some(min), Some(max)) = (da.min_executors, da.max_executors)
            && min > max
        {
            return Err(SpecError::bad(
                format!("{p}.dynamicAllocation.minExecutors"),
                min,
                format!("is greater than maxExecutors ({max})"),
            ));
        }
    }
    // Sizing checks every quantity and names the field on error.
    crate::sizing::spark_demand(s, p).map(|_| ())
}

fn validate_command(c: &CommandSpec) -> Result<(), SpecError> {
    if c.argv.is_empty() || c.argv[0].as_str().trim().is_empty() {
        return Err(SpecError::Missing {
            field: "command.argv".into(),
            hint: "the program to run and its arguments, like [\"python3\", \"job.py\"]".into(),
        });
    }
    crate::sizing::command_demand(c).map(|_| ())
}

/// Parses a duration like "90s", "30m", "2h", "1d", "1h30m" or a bare number of seconds.
pub fn parse_duration_secs(field: &str, text: &str) -> Result<u64, SpecError> {
    let t = text.trim();
    let err = || {
        SpecError::bad(
            field,
            text,
            "is not a duration (like 90s, 30m, 2h, 1h30m, 1d)",
        )
    };
    if t.is_empty() {
        return Err(err());
    }
    if let Ok(n) = t.parse::<u64>() {
        return if n == 0 {
            Err(SpecError::bad(field, text, "must be greater than zero"))
        } else {
            Ok(n)
        };
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| err())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    if !num.is_empty() {
        return Err(err());
    }
    if total == 0 {
        return Err(SpecError::bad(field, text, "must be greater than zero"));
    }
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Levels {
        let mut l = Levels::default();
        l.namespace_defaults.insert("etl".into(), "high".into());
        l
    }

    fn parse(text: &str) -> Result<Job, SpecError> {
        parse_job(
            text,
            ParseOptions {
                priority: None,
                levels: &levels(),
            },
        )
    }

    const OWN: &str = r#"
name: pi
namespace: analytics
priority: high
labels: {team: data, tier: 1}
maxRuntime: 30m
spark:
  mainApplicationFile: /opt/pi.py
  arguments: [10, "x"]
  sparkConf:
    spark.ui.enabled: false
    spark.sql.shuffle.partitions: 8
  driver: {cores: 1, memory: 512m}
  executor: {cores: 2, instances: 3, memory: 1g}
"#;

    #[test]
    fn own_spec_parses() {
        let job = parse(OWN).unwrap();
        assert_eq!(job.name, "pi");
        assert_eq!(job.namespace, "analytics");
        assert_eq!(job.level, "high");
        assert_eq!(job.labels.get("tier").map(String::as_str), Some("1"));
        assert_eq!(job.max_runtime_secs, Some(1800));
        let JobKind::Spark {
            spec, application, ..
        } = &job.kind
        else {
            panic!("not spark")
        };
        assert!(application.is_none());
        assert_eq!(spec.app_type(), AppType::Python);
        assert_eq!(spec.arguments, vec![Text("10".into()), Text("x".into())]);
        assert_eq!(spec.conf("spark.ui.enabled"), Some("false"));
        assert_eq!(spec.conf("spark.sql.shuffle.partitions"), Some("8"));
        // The resolved job survives a JSON round trip (that is how the store keeps it).
        let back: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn bad_input_names_field_and_value() {
        let cases: &[(&str, &str, &str)] = &[
            ("name: [", "malformed", ""),
            ("- a\n- b", "mapping", ""),
            ("namespace: x\ncommand: {argv: [true]}", "`name`", ""),
            (
                "name: a\ncomand: {argv: [ls]}",
                "unknown field `comand`",
                "",
            ),
            (
                "name: a\nspark: {mainApplicationFile: a.py, driver: {memroy: 1g}}",
                "unknown field `spark.driver.memroy`",
                "",
            ),
            (
                "name: a\npriority: urgent\ncommand: {argv: [ls]}",
                "`priority`",
                "urgent",
            ),
            (
                "name: a\nspark: {mainApplicationFile: a.py, executor: {cores: 0}}",
                "`spark.executor.cores`",
                "0",
            ),
            (
                "name: a\nspark: {mainApplicationFile: a.py, driver: {cores: -2}}",
                "`spark.driver.cores`",
                "-2",
            ),
            (
                "name: a\nspark: {mainApplicationFile: a.py, executor: {memory: 12qb}}",
                "`spark.executor.memory`",
                "12qb",
            ),
            (
                "name: a\nspark: {mainApplicationFile: a.py, driver: {cores: two}}",
                "`spark.driver.cores`",
                "",
            ),
            (
                "name: a\ncommand: {argv: [ls], memory: 12qb}",
                "`command.memory`",
                "12qb",
            ),
            (
                "name: a\ncommand: {argv: [ls], cpu: 0}",
                "`command.cpu`",
                "\"0\"",
            ),
            ("name: a\ncommand: {argv: []}", "`command.argv`", ""),
            (
                "name: Bad_Name\ncommand: {argv: [ls]}",
                "`name`",
                "Bad_Name",
            ),
            (
                "name: a\nmaxRuntime: soon\ncommand: {argv: [ls]}",
                "`maxRuntime`",
                "soon",
            ),
            ("name: a", "`spark`", ""),
            ("name: a\nspark: {}", "`spark.mainApplicationFile`", ""),
            (
                "name: a\nspark: {type: Scala, mainApplicationFile: x.txt}",
                "`spark.mainClass`",
                "",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata: {name: a}",
                "`kind`",
                "Pod",
            ),
        ];
        for (text, want_field, want_value) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(want_field), "{text:?}: {err}");
            assert!(err.contains(want_value), "{text:?}: {err}");
        }
    }

    fn shared(name: &str) -> String {
        let path = format!(
            "{}/../../../shared/spark-operator/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn spark_application_keeps_every_field() {
        let text = shared("spark-pi-python.yaml");
        let job = parse(&text).unwrap();
        assert_eq!(job.name, "spark-pi-python");
        assert_eq!(job.namespace, "default");
        assert_eq!(job.level, "normal");
        let JobKind::Spark {
            spec,
            application,
            source,
        } = &job.kind
        else {
            panic!("not spark")
        };
        assert_eq!(spec.app_type(), AppType::Python);
        assert_eq!(spec.executor.instances, Some(1));
        let app = application.as_ref().unwrap();
        // Fields sluice does not interpret are still there.
        assert_eq!(app["spec"]["image"], "docker.io/apache/spark:4.0.4");
        assert_eq!(
            app["spec"]["driver"]["securityContext"]["runAsUser"],
            serde_json::json!(185)
        );
        assert_eq!(
            app["spec"]["driver"]["serviceAccount"],
            "spark-operator-spark"
        );
        assert_eq!(source.as_deref(), Some(text.as_str()));
        let scala = parse(&shared("spark-pi.yaml")).unwrap();
        let JobKind::Spark { spec, .. } = &scala.kind else {
            panic!("not spark")
        };
        assert_eq!(
            spec.main_class.as_deref(),
            Some("org.apache.spark.examples.SparkPi")
        );
        assert_eq!(spec.arguments, vec![Text("5000".into())]);
    }

    #[test]
    fn spark_application_priority_order() {
        let base = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: a\n  namespace: NS\n  labels: {LABEL}\nspec: {type: Python, mainApplicationFile: a.py}\n";
        let doc = |ns: &str, label: &str| base.replace("NS", ns).replace("LABEL", label);
        let l = levels();
        let with = |p: Option<&str>, text: &str| {
            parse_job(
                text,
                ParseOptions {
                    priority: p,
                    levels: &l,
                },
            )
            .map(|j| j.level)
        };
        // Flag beats label beats namespace default.
        let labelled = doc("default", "sluice.io/priority: high");
        assert_eq!(with(Some("normal"), &labelled).unwrap(), "normal");
        assert_eq!(with(None, &labelled).unwrap(), "high");
        assert_eq!(with(None, &doc("default", "x: y")).unwrap(), "normal");
        assert_eq!(with(None, &doc("etl", "x: y")).unwrap(), "high");
        let err = with(None, &doc("default", "sluice.io/priority: urgent")).unwrap_err();
        assert!(err.to_string().contains("sluice.io/priority"), "{err}");
        assert!(err.to_string().contains("urgent"), "{err}");
        assert!(with(Some("bogus"), &labelled).is_err());
        // Unknown fields in a SparkApplication are kept, not refused.
        let extra = doc("default", "x: y").replace("spec: {", "spec: {futureField: 1, ");
        assert!(with(None, &extra).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("f", "90s"), Ok(90));
        assert_eq!(parse_duration_secs("f", "1h30m"), Ok(5400));
        assert_eq!(parse_duration_secs("f", "2d"), Ok(172_800));
        assert_eq!(parse_duration_secs("f", "45"), Ok(45));
        assert!(parse_duration_secs("f", "0s").is_err());
        assert!(parse_duration_secs("f", "5 minutes").is_err());
        assert!(parse_duration_secs("f", "m").is_err());
    }

    #[test]
    fn shipped_examples_parse() {
        let dir = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let job = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            crate::sizing::job_demand(&job).unwrap();
            n += 1;
        }
        assert!(n >= 3, "expected the example jobs in {dir}");
    }
}
