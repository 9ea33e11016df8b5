//! A Spark application as sluice models it: the fields of the operator's `SparkApplicationSpec`
//! that sluice uses, and their field checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Controls, SpecError, Text, check_text};
use crate::secretref::SecretRef;

/// The language of a Spark application, as the operator's `spec.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
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
    /// Environment variables of the driver and executors taken from secrets (sluice's spec).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_env: BTreeMap<String, SecretRef>,
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

pub(crate) fn positive(field: &str, v: Option<i64>) -> Result<(), SpecError> {
    match v {
        Some(n) if n <= 0 => Err(SpecError::bad(field, n, "must be greater than zero")),
        _ => Ok(()),
    }
}

pub(crate) fn non_negative(field: &str, v: Option<i64>) -> Result<(), SpecError> {
    match v {
        Some(n) if n < 0 => Err(SpecError::bad(field, n, "must not be negative")),
        _ => Ok(()),
    }
}

/// Field checks of a Spark application (`p` is its path); quantities are checked by sizing.
pub(crate) fn validate_spark(s: &SparkSpec, p: &str) -> Result<(), SpecError> {
    let strict = |field: &str, v: &str| check_text(&format!("{p}.{field}"), v, Controls::None);
    if let Some(f) = &s.main_application_file {
        strict("mainApplicationFile", f)?;
    }
    if let Some(c) = &s.main_class {
        strict("mainClass", c)?;
    }
    if let Some(v) = &s.spark_version {
        strict("sparkVersion", v)?;
    }
    for (i, a) in s.arguments.iter().enumerate() {
        check_text(
            &format!("{p}.arguments[{i}]"),
            a.as_str(),
            Controls::Whitespace,
        )?;
    }
    for (k, v) in &s.spark_conf {
        strict(&format!("sparkConf.{k}"), k)?;
        check_text(
            &format!("{p}.sparkConf.{k}"),
            v.as_str(),
            Controls::Whitespace,
        )?;
    }
    if let Some(d) = &s.deps {
        for (name, list) in [
            ("jars", &d.jars),
            ("files", &d.files),
            ("pyFiles", &d.py_files),
            ("packages", &d.packages),
            ("excludePackages", &d.exclude_packages),
            ("repositories", &d.repositories),
            ("archives", &d.archives),
        ] {
            for (i, v) in list.iter().enumerate() {
                strict(&format!("deps.{name}[{i}]"), v)?;
            }
        }
    }
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
    Ok(())
}
