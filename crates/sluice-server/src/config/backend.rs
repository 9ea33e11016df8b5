//! `[backend]`: which backend runs the jobs, and its keys.
//!
//! The section is a tagged enum on `kind` ([`BackendConfig`]), `local` when `kind` is not
//! given. Each kind takes its own keys and refuses any other (a key of another kind names that
//! kind in the error: see [`owner_of`]). Values that types cannot check are checked by
//! [`BackendConfig::validate`].

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Serialize};
use sluice_core::sizing::DeployMode;
use sluice_core::spec::{Text, cpu_field, mem_field};

use sluice_backend::eventlog::SharedEventLog;
pub use sluice_backend::kubernetes::{
    CapacityMode as KubeCapacityMode, Credentials as KubeCredentials, KubeSettings,
};
pub use sluice_backend::simulated::SimulatedConfig;

/// A bad `backend.*` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendKeyError {
    /// A key has a value that is not allowed.
    #[error("configuration key `{key}` = {value:?}: {message}")]
    Invalid {
        /// The key, dotted (`backend.cores`).
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A quantity that does not parse (the message names the key and the value).
    #[error("{0}")]
    Quantity(String),
}

fn invalid(key: &str, value: impl ToString, message: impl Into<String>) -> BackendKeyError {
    BackendKeyError::Invalid {
        key: format!("backend.{key}"),
        value: value.to_string(),
        message: message.into(),
    }
}

/// The Kubernetes backend's configuration, from [`KubernetesConfig::settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct KubeBackendSettings {
    /// Where the credentials come from.
    pub credentials: KubeCredentials,
    /// Namespaces, capacity-check mode, watchdog, placeholders, defaults for applications.
    pub settings: KubeSettings,
}

/// `[backend]`: one variant per `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind")]
pub enum BackendConfig {
    /// `kind = "local"` (the default): processes on this machine.
    #[serde(rename = "local")]
    Local(LocalConfig),
    /// `kind = "spark-standalone"`: a Spark standalone cluster.
    #[serde(rename = "spark-standalone")]
    SparkStandalone(StandaloneConfig),
    /// `kind = "kubernetes"`: Kubernetes with the Spark Operator.
    #[serde(rename = "kubernetes")]
    Kubernetes(KubernetesConfig),
    /// `kind = "simulated"`: a made-up cluster whose jobs run on a clock (see
    /// [`sluice_backend::simulated`]).
    #[serde(rename = "simulated")]
    Simulated(SimulatedConfig),
}

/// The kinds, as `kind` names them.
pub const KINDS: &[&str] = &["local", "spark-standalone", "kubernetes", "simulated"];

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Local(LocalConfig::default())
    }
}

fn default_image_spark_home() -> String {
    sluice_backend::local::DEFAULT_IMAGE_SPARK_HOME.into()
}

fn default_kill_grace_secs() -> u64 {
    sluice_backend::local::DEFAULT_KILL_GRACE.as_secs()
}

/// `kind = "local"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// CPU budget ("4", "2.5", "500m"); default every detected core.
    #[serde(default)]
    pub cores: Option<Text>,
    /// Memory budget ("8g"); default detected memory minus a reserve.
    #[serde(default)]
    pub memory: Option<Text>,
    /// Where Spark lives (the directory with bin/spark-submit); default: found.
    #[serde(default)]
    pub spark_home: Option<PathBuf>,
    /// Python for PySpark jobs (PYSPARK_PYTHON); default: the venv's python next to
    /// spark-submit.
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// The `dbt` executable of `dbt` jobs; default `dbt` next to `python` (or the venv's
    /// python next to spark-submit), else `dbt` on the PATH.
    #[serde(default)]
    pub dbt: Option<PathBuf>,
    /// The SPARK_HOME inside Spark images, mapped to `spark_home` for `local://` paths.
    #[serde(default = "default_image_spark_home")]
    pub image_spark_home: String,
    /// Seconds between SIGTERM and SIGKILL when cancelling.
    #[serde(
        default = "default_kill_grace_secs",
        deserialize_with = "super::duration::secs"
    )]
    pub kill_grace_secs: u64,
    /// A dedicated unprivileged user that runs run as (the server must be root); default the
    /// server's own user.
    #[serde(default)]
    pub run_as: Option<String>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            cores: None,
            memory: None,
            spark_home: None,
            python: None,
            dbt: None,
            image_spark_home: default_image_spark_home(),
            kill_grace_secs: default_kill_grace_secs(),
            run_as: None,
        }
    }
}

/// `kind = "spark-standalone"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StandaloneConfig {
    /// The master, `spark://host:7077` (required).
    #[serde(default)]
    pub master_url: Option<String>,
    /// The master's web UI, `http://host:8080`; its `/json/` gives capacity (required).
    #[serde(default)]
    pub web_url: Option<String>,
    /// The master's REST submission server, `http://host:6066` (cluster mode).
    #[serde(default)]
    pub rest_url: Option<String>,
    /// Where drivers run: "client" (default; on this host) or "cluster" (on a worker, through
    /// the REST API; JVM applications only).
    #[serde(default)]
    pub deploy_mode: Option<String>,
    /// Client mode: `spark.driver.host` / `spark.driver.bindAddress` for the drivers started
    /// here (the address executors reach them at), unless a job sets them.
    #[serde(default)]
    pub driver_host: Option<String>,
    /// Client mode: the memory on this host for drivers ("4g"); default detected memory minus a
    /// reserve.
    #[serde(default)]
    pub memory: Option<Text>,
    /// Where Spark lives on this host (for `spark-submit`); default: found.
    #[serde(default)]
    pub spark_home: Option<PathBuf>,
    /// Python for PySpark jobs (PYSPARK_PYTHON); default: the venv's python next to
    /// spark-submit.
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// The SPARK_HOME inside Spark images, mapped to `spark_home` for `local://` paths.
    #[serde(default = "default_image_spark_home")]
    pub image_spark_home: String,
    /// Seconds between SIGTERM and SIGKILL when cancelling a client-mode driver.
    #[serde(
        default = "default_kill_grace_secs",
        deserialize_with = "super::duration::secs"
    )]
    pub kill_grace_secs: u64,
    /// Cluster mode: `spark.eventLog.dir` for the drivers (a directory every worker can write,
    /// `file:///shared/spark-events`, `hdfs://...`), where sluice reads what each run used;
    /// default: cluster-mode runs are not measured.
    #[serde(default)]
    pub event_log_dir: Option<String>,
    /// Where sluice reads `event_log_dir` on its host; default the same path for a `file:`
    /// URI (required for other schemes).
    #[serde(default)]
    pub event_log_mount: Option<PathBuf>,
}

/// `kind = "kubernetes"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// The kubeconfig file; default `KUBECONFIG` or `~/.kube/config`, else the in-cluster
    /// service account.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; default its current context.
    pub kube_context: Option<String>,
    /// Use the pod's service account (sluice deployed in the cluster).
    pub in_cluster: Option<bool>,
    /// The namespaces sluice manages (creates SparkApplications in); default ["default"].
    pub namespaces: Option<Vec<String>>,
    /// Capacity check before submitting: "snapshot" (default), "dry-run" or "placeholders".
    pub capacity_check: Option<String>,
    /// Seconds a driver may run with none of its executors running before the job is killed
    /// and requeued; 0 turns the watchdog off. Default 600.
    #[serde(deserialize_with = "super::duration::opt_secs")]
    pub watchdog_secs: Option<u64>,
    /// Placeholders: seconds they may wait to be scheduled. Default 120.
    #[serde(deserialize_with = "super::duration::opt_secs")]
    pub placeholder_timeout_secs: Option<u64>,
    /// Placeholders: image of placeholder pods. Default registry.k8s.io/pause:3.10.
    pub placeholder_image: Option<String>,
    /// Placeholders: PriorityClass of placeholder pods (a low one).
    pub placeholder_priority_class: Option<String>,
    /// Spark image for jobs in sluice's own spec. Default docker.io/apache/spark:4.0.4.
    pub spark_image: Option<String>,
    /// `spec.sparkVersion` for jobs that give none. Default 4.0.4.
    pub spark_version: Option<String>,
    /// The driver's service account for jobs in sluice's own spec. Default
    /// spark-operator-spark (the Spark Operator chart's).
    pub spark_service_account: Option<String>,
    /// Where sluice's SQL runner is in the Spark image, for `sparkSql` jobs. Default
    /// local:///opt/sluice/sluice_sql_runner.py.
    pub sql_runner: Option<String>,
    /// `spark.eventLog.dir` for every application (a shared volume or object store the
    /// drivers can write, `file:///spark-events` on a PVC, `s3a://bucket/events`), where
    /// sluice reads what each run used; default: runs are not measured.
    pub event_log_dir: Option<String>,
    /// Where sluice reads `event_log_dir` (the same PVC mounted in sluice's pod, say);
    /// default the same path for a `file:` URI (required for other schemes).
    pub event_log_mount: Option<PathBuf>,
}

/// The shared event-log location from `event_log_dir` and `event_log_mount`; `None` without
/// `event_log_dir`.
pub fn shared_event_log(
    dir: &Option<String>,
    mount: &Option<PathBuf>,
) -> Result<Option<SharedEventLog>, BackendKeyError> {
    match (dir, mount) {
        (None, None) => Ok(None),
        (None, Some(m)) => Err(invalid(
            "event_log_mount",
            m.display(),
            "needs event_log_dir (the directory the drivers write their event logs to)",
        )),
        (Some(d), m) => SharedEventLog::new(d, m.as_deref())
            .map(Some)
            .map_err(|e| invalid(e.key, e.value, e.message)),
    }
}

/// True for `scheme` followed by a host (`spark://host:7077`, `http://host:8080/`).
fn url_like(v: &str, scheme: &str) -> bool {
    v.strip_prefix(scheme)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/') && !rest.contains(' '))
}

fn cpu(key: &str, t: &Option<Text>) -> Result<Option<u64>, BackendKeyError> {
    t.as_ref()
        .map(|t| cpu_field(&format!("backend.{key}"), t.as_str()))
        .transpose()
        .map_err(|e| BackendKeyError::Quantity(e.to_string()))
}

fn mem(key: &str, t: &Option<Text>) -> Result<Option<u64>, BackendKeyError> {
    t.as_ref()
        .map(|t| mem_field(&format!("backend.{key}"), t.as_str()))
        .transpose()
        .map_err(|e| BackendKeyError::Quantity(e.to_string()))
}

impl BackendConfig {
    /// The `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::Local(_) => "local",
            BackendConfig::SparkStandalone(_) => "spark-standalone",
            BackendConfig::Kubernetes(_) => "kubernetes",
            BackendConfig::Simulated(_) => "simulated",
        }
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> Result<(), BackendKeyError> {
        match self {
            BackendConfig::Local(_) => {}
            BackendConfig::SparkStandalone(s) => s.validate()?,
            BackendConfig::Kubernetes(k) => {
                k.settings()?;
            }
            BackendConfig::Simulated(s) => s.check().map_err(|e| BackendKeyError::Invalid {
                key: format!("backend.{}", e.key),
                value: e.value,
                message: e.message,
            })?,
        }
        self.budget()?;
        Ok(())
    }

    /// The budget from `cores` / `memory` (local; `memory` only for spark-standalone), each
    /// None when not set.
    pub fn budget(&self) -> Result<(Option<u64>, Option<u64>), BackendKeyError> {
        match self {
            BackendConfig::Local(l) => Ok((cpu("cores", &l.cores)?, mem("memory", &l.memory)?)),
            BackendConfig::SparkStandalone(s) => Ok((None, mem("memory", &s.memory)?)),
            BackendConfig::Kubernetes(_) | BackendConfig::Simulated(_) => Ok((None, None)),
        }
    }
}

impl StandaloneConfig {
    /// `deploy_mode`: client (the default) or cluster.
    pub fn deploy_mode(&self) -> Result<DeployMode, BackendKeyError> {
        match self.deploy_mode.as_deref() {
            None | Some("client") => Ok(DeployMode::Client),
            Some("cluster") => Ok(DeployMode::Cluster),
            Some(other) => Err(invalid(
                "deploy_mode",
                other,
                "must be \"client\" (drivers run on the sluice host) or \"cluster\" (drivers \
                 run on a worker; JVM applications only)",
            )),
        }
    }

    /// The master URL and web UI URL (required).
    pub fn urls(&self) -> Result<(&str, &str), BackendKeyError> {
        fn url<'a>(
            key: &str,
            v: &'a Option<String>,
            scheme: &str,
            example: &str,
        ) -> Result<&'a str, BackendKeyError> {
            match v {
                None => Err(invalid(
                    key,
                    "",
                    format!("is required for kind = \"spark-standalone\" (like {example})"),
                )),
                Some(u) if !url_like(u, scheme) => {
                    Err(invalid(key, u, format!("is not a URL like {example}")))
                }
                Some(u) => Ok(u.as_str()),
            }
        }
        Ok((
            url(
                "master_url",
                &self.master_url,
                "spark://",
                "spark://host:7077",
            )?,
            url("web_url", &self.web_url, "http://", "http://host:8080")?,
        ))
    }

    /// The shared event-log location of cluster-mode runs (`event_log_dir`, `event_log_mount`).
    pub fn event_log(&self) -> Result<Option<SharedEventLog>, BackendKeyError> {
        shared_event_log(&self.event_log_dir, &self.event_log_mount)
    }

    fn validate(&self) -> Result<(), BackendKeyError> {
        self.urls()?;
        let mode = self.deploy_mode()?;
        if mode == DeployMode::Cluster && self.rest_url.is_none() {
            return Err(invalid(
                "rest_url",
                "",
                "is required for deploy_mode = \"cluster\": the master's REST submission server, \
                 like http://host:6066 (enabled by spark.master.rest.enabled=true)",
            ));
        }
        if let Some(u) = &self.rest_url
            && !url_like(u, "http://")
        {
            return Err(invalid("rest_url", u, "is not a URL like http://host:6066"));
        }
        if let Some(h) = &self.driver_host
            && (h.trim().is_empty() || h.contains(char::is_whitespace))
        {
            return Err(invalid("driver_host", h, "is not a host name or address"));
        }
        self.event_log()?;
        Ok(())
    }
}

impl KubernetesConfig {
    /// The Kubernetes backend's credentials and settings from these keys.
    pub fn settings(&self) -> Result<KubeBackendSettings, BackendKeyError> {
        let credentials = match (self.in_cluster.unwrap_or(false), &self.kubeconfig) {
            (true, Some(p)) => {
                return Err(invalid(
                    "kubeconfig",
                    p.display(),
                    "cannot be set together with in_cluster = true",
                ));
            }
            (true, None) => KubeCredentials::InCluster,
            (false, Some(p)) => KubeCredentials::Kubeconfig {
                path: p.clone(),
                context: self.kube_context.clone(),
            },
            (false, None) => KubeCredentials::Infer,
        };
        let namespaces = self
            .namespaces
            .clone()
            .unwrap_or_else(|| vec!["default".to_string()]);
        if namespaces.is_empty() {
            return Err(invalid("namespaces", "[]", "needs at least one namespace"));
        }
        for (i, ns) in namespaces.iter().enumerate() {
            let ok = !ns.is_empty()
                && ns.len() <= 63
                && ns
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !ns.starts_with('-')
                && !ns.ends_with('-');
            if !ok || namespaces[..i].contains(ns) {
                return Err(invalid(
                    "namespaces",
                    ns,
                    "must be distinct Kubernetes namespace names (lowercase letters, digits, '-')",
                ));
            }
        }
        let mode_text = self.capacity_check.as_deref().unwrap_or("snapshot");
        let mode = KubeCapacityMode::parse(mode_text).ok_or_else(|| {
            invalid(
                "capacity_check",
                mode_text,
                "must be \"snapshot\", \"dry-run\" or \"placeholders\"",
            )
        })?;
        let placeholder_timeout = self.placeholder_timeout_secs.unwrap_or(120);
        if placeholder_timeout == 0 {
            return Err(invalid("placeholder_timeout_secs", 0, "must be at least 1"));
        }
        let defaults = KubeSettings::default();
        let mut app = defaults.app.clone();
        if let Some(i) = &self.spark_image {
            app.image = i.clone();
        }
        if let Some(v) = &self.spark_version {
            app.spark_version = v.clone();
        }
        if let Some(sa) = &self.spark_service_account {
            app.service_account = (!sa.is_empty()).then(|| sa.clone());
        }
        if let Some(r) = &self.sql_runner {
            if r.trim().is_empty() || r.trim_start().starts_with('-') {
                return Err(invalid(
                    "sql_runner",
                    r,
                    "must be the runner's path or URL in the Spark image",
                ));
            }
            app.sql_runner = r.clone();
        }
        app.event_log = shared_event_log(&self.event_log_dir, &self.event_log_mount)?;
        Ok(KubeBackendSettings {
            credentials,
            settings: KubeSettings {
                namespaces,
                mode,
                watchdog: match self.watchdog_secs.unwrap_or(600) {
                    0 => None,
                    s => Some(Duration::from_secs(s)),
                },
                placeholder_timeout: Duration::from_secs(placeholder_timeout),
                placeholder_image: self
                    .placeholder_image
                    .clone()
                    .unwrap_or(defaults.placeholder_image),
                placeholder_priority_class: self.placeholder_priority_class.clone(),
                app,
            },
        })
    }
}

/// The keys a kind takes (besides `kind`), as its struct names them.
pub fn keys_of(kind: &str) -> &'static [&'static str] {
    fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        let mut grab = FieldNames(&[]);
        let _ = T::deserialize(&mut grab);
        grab.0
    }
    match kind {
        "local" => fields::<LocalConfig>(),
        "spark-standalone" => fields::<StandaloneConfig>(),
        "kubernetes" => fields::<KubernetesConfig>(),
        "simulated" => fields::<SimulatedConfig>(),
        _ => &[],
    }
}

/// The kinds that take `key`, in [`KINDS`] order.
pub fn owner_of(key: &str) -> Vec<&'static str> {
    KINDS
        .iter()
        .copied()
        .filter(|k| keys_of(k).contains(&key))
        .collect()
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames(&'static [&'static str]);

impl<'de> de::Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A clearer error for a figment error about `[backend]`: a key the kind does not take (naming
/// the kind that does) or an unknown kind. `None` for other errors.
pub fn explain(err: &figment::Error, fig: &figment::Figment) -> Option<BackendKeyError> {
    err.clone().into_iter().find_map(|e| {
        if e.path.first().map(String::as_str) != Some("backend") || e.path.len() > 1 {
            return None;
        }
        match &e.kind {
            figment::error::Kind::UnknownField(key, expected) => {
                let kind = fig
                    .extract_inner::<String>("backend.kind")
                    .unwrap_or_else(|_| "local".into());
                if *expected != keys_of(&kind) {
                    // A key of a table inside `[backend]` (a node group, say): figment's own
                    // message names it and the keys that table takes.
                    return None;
                }
                let value = fig
                    .find_value(&format!("backend.{key}"))
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "(set)".into());
                let owners = owner_of(key);
                let message = if owners.is_empty() {
                    format!(
                        "is not a key of [backend] (kind = {kind:?} takes: {})",
                        keys_of(&kind).join(", ")
                    )
                } else {
                    let owners: Vec<String> =
                        owners.iter().map(|o| format!("kind = {o:?}")).collect();
                    format!(
                        "is a key of {}, but backend.kind is {kind:?}",
                        owners.join(" or ")
                    )
                };
                Some(invalid(key, value, message))
            }
            figment::error::Kind::UnknownVariant(kind, _) => Some(invalid(
                "kind",
                kind,
                format!(
                    "is not a backend this build has (available: {})",
                    KINDS.join(", ")
                ),
            )),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests;
