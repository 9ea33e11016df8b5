//! Server settings: a TOML file (`--config PATH`) with `SLUICE_`-prefixed environment overrides.
//!
//! Nested keys use a double underscore in the environment: `SLUICE_STORE__URL`,
//! `SLUICE_BACKEND__CORES`, `SLUICE_SCHEDULER__INTERVAL_MS`. Every key is documented in
//! `docs/configuration.md`; `examples/sluice.toml` sets each one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sluice_core::cycle::{HeadPolicy, NamespacePolicy};
use sluice_core::sizing::DeployMode;
use sluice_core::spec::{Levels, Text, cpu_field, mem_field};

pub use sluice_backend::kubernetes::{
    CapacityMode as KubeCapacityMode, Credentials as KubeCredentials, KubeSettings,
};

/// The Kubernetes backend's configuration, from [`Config::kube_settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct KubeBackendSettings {
    /// Where the credentials come from.
    pub credentials: KubeCredentials,
    /// Namespaces, capacity-check mode, watchdog, placeholders, defaults for applications.
    pub settings: KubeSettings,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7467";

/// Errors in the configuration. Each names the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or has a wrong key or type.
    #[error("configuration: {0}")]
    Load(String),
    /// A key has a value that is not allowed.
    #[error("configuration key `{key}` = {value:?}: {message}")]
    Invalid {
        /// The key, dotted.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(
    key: impl Into<String>,
    value: impl ToString,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (`listen`), default 127.0.0.1:7467.
    pub listen: String,
    /// Directory for the SQLite database and local runs (`data_dir`), default `.sluice`.
    pub data_dir: PathBuf,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[backend]`.
    pub backend: BackendConfig,
    /// `[scheduler]`.
    pub scheduler: SchedulerConfig,
    /// `[namespaces.NAME]`: per-namespace weight, head-of-line policy and default level.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// `[api]`.
    pub api: ApiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.into(),
            data_dir: PathBuf::from(".sluice"),
            store: StoreConfig::default(),
            backend: BackendConfig::default(),
            scheduler: SchedulerConfig::default(),
            namespaces: BTreeMap::new(),
            api: ApiConfig::default(),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// "sqlite://PATH" or "postgres://USER@HOST:PORT/DB"; default `sqlite://<data_dir>/sluice.db`.
    pub url: Option<String>,
}

/// `[backend]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Which backend: "local" or "spark-standalone".
    pub kind: String,
    /// Local budget: cores ("4", "2.5", "500m"); default every detected core.
    pub cores: Option<Text>,
    /// Local budget: memory ("8g"); default detected memory minus a reserve. For
    /// "spark-standalone" in client deploy mode: the memory on this host for drivers.
    pub memory: Option<Text>,
    /// spark-standalone: the master, `spark://host:7077`.
    pub master_url: Option<String>,
    /// spark-standalone: the master's web UI, `http://host:8080` (its `/json/` gives capacity).
    pub web_url: Option<String>,
    /// spark-standalone: the master's REST submission server, `http://host:6066` (cluster mode).
    pub rest_url: Option<String>,
    /// spark-standalone: where drivers run, "client" (default; on this host) or "cluster" (on a
    /// worker, through the REST API; JVM applications only).
    pub deploy_mode: Option<String>,
    /// spark-standalone, client mode: `spark.driver.host` / `spark.driver.bindAddress` for the
    /// drivers started here (the address executors reach them at), unless a job sets them.
    pub driver_host: Option<String>,
    /// kubernetes: the kubeconfig file; default `KUBECONFIG` or `~/.kube/config`, else the
    /// in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// kubernetes: the kubeconfig context; default its current context.
    pub kube_context: Option<String>,
    /// kubernetes: use the pod's service account (sluice deployed in the cluster).
    pub in_cluster: Option<bool>,
    /// kubernetes: the namespaces sluice manages (creates SparkApplications in); default
    /// ["default"].
    pub namespaces: Option<Vec<String>>,
    /// kubernetes: capacity check before submitting: "snapshot" (default), "dry-run" or
    /// "placeholders".
    pub capacity_check: Option<String>,
    /// kubernetes: seconds a driver may run with none of its executors running before the job
    /// is killed and requeued; 0 turns the watchdog off. Default 600.
    pub watchdog_secs: Option<u64>,
    /// kubernetes, placeholders: seconds placeholders may wait to be scheduled. Default 120.
    pub placeholder_timeout_secs: Option<u64>,
    /// kubernetes, placeholders: image of placeholder pods. Default registry.k8s.io/pause:3.10.
    pub placeholder_image: Option<String>,
    /// kubernetes, placeholders: PriorityClass of placeholder pods (a low one).
    pub placeholder_priority_class: Option<String>,
    /// kubernetes: Spark image for jobs in sluice's own spec. Default docker.io/apache/spark:4.0.4.
    pub spark_image: Option<String>,
    /// kubernetes: `spec.sparkVersion` for jobs that give none. Default 4.0.4.
    pub spark_version: Option<String>,
    /// kubernetes: the driver's service account for jobs in sluice's own spec. Default
    /// spark-operator-spark (the Spark Operator chart's).
    pub spark_service_account: Option<String>,
    /// Where pyspark's Spark lives (the directory with bin/spark-submit); default: found.
    pub spark_home: Option<PathBuf>,
    /// Python for PySpark jobs (PYSPARK_PYTHON); default: the venv's python next to spark-submit.
    pub python: Option<PathBuf>,
    /// The SPARK_HOME inside Spark images, mapped to `spark_home` for `local://` paths.
    pub image_spark_home: String,
    /// Seconds between SIGTERM and SIGKILL when cancelling.
    pub kill_grace_secs: u64,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            kind: "local".into(),
            cores: None,
            memory: None,
            master_url: None,
            web_url: None,
            rest_url: None,
            deploy_mode: None,
            driver_host: None,
            kubeconfig: None,
            kube_context: None,
            in_cluster: None,
            namespaces: None,
            capacity_check: None,
            watchdog_secs: None,
            placeholder_timeout_secs: None,
            placeholder_image: None,
            placeholder_priority_class: None,
            spark_image: None,
            spark_version: None,
            spark_service_account: None,
            spark_home: None,
            python: None,
            image_spark_home: "/opt/spark".into(),
            kill_grace_secs: 10,
        }
    }
}

/// `[scheduler]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Priority levels, highest first.
    pub levels: Vec<String>,
    /// Level for jobs that name none, in namespaces without their own default.
    pub default_level: String,
    /// Milliseconds between scheduling cycles (a submit or cancel also wakes the cycle).
    pub interval_ms: u64,
    /// Head-of-line policy for namespaces without their own: "strict" or "best-effort".
    pub default_policy: HeadPolicy,
    /// Weight for namespaces without their own.
    pub default_weight: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            levels: vec!["high".into(), "normal".into()],
            default_level: "normal".into(),
            interval_ms: 500,
            default_policy: HeadPolicy::Strict,
            default_weight: 1,
        }
    }
}

/// `[namespaces.NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceConfig {
    /// Fair-share weight (>= 1); default `scheduler.default_weight`.
    pub weight: Option<u32>,
    /// "strict" or "best-effort"; default `scheduler.default_policy`.
    pub policy: Option<HeadPolicy>,
    /// Default level of the namespace; default `scheduler.default_level`.
    pub default_level: Option<String>,
}

/// `[api]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1 << 20,
        }
    }
}

/// True for `scheme` followed by a host (`spark://host:7077`, `http://host:8080/`).
fn url_like(v: &str, scheme: &str) -> bool {
    v.strip_prefix(scheme)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/') && !rest.contains(' '))
}

/// Keys the environment may set (top level, lowercase); other `SLUICE_*` variables (such as the
/// CLI's `SLUICE_SERVER`) are not configuration.
const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "store",
    "backend",
    "scheduler",
    "namespaces",
    "api",
];

impl Config {
    /// Loads defaults, then the TOML file if given, then `SLUICE_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env_prefix(path, "SLUICE_")
    }

    /// As [`Config::load`], with environment variables named `{prefix}KEY`.
    pub fn load_with_env_prefix(path: Option<&Path>, prefix: &str) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    p.display()
                )));
            }
            fig = fig.merge(Toml::file_exact(p));
        }
        let env = Env::prefixed(prefix).split("__").filter(|k| {
            let top = k.as_str().split('.').next().unwrap_or("");
            ENV_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
        });
        let cfg: Config = fig
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let _: std::net::SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                &self.listen,
                "is not an address like 127.0.0.1:7467",
            )
        })?;
        match self.backend.kind.as_str() {
            "local" => self.validate_not_standalone()?,
            "spark-standalone" => self.validate_standalone()?,
            "kubernetes" => {
                self.validate_not_standalone()?;
                self.kube_settings()?;
            }
            other => {
                return Err(invalid(
                    "backend.kind",
                    other,
                    "is not a backend this build has (available: local, spark-standalone, \
                     kubernetes)",
                ));
            }
        }
        if self.backend.kind != "kubernetes" {
            self.validate_not_kubernetes()?;
        }
        self.budget()?;
        let s = &self.scheduler;
        if s.levels.is_empty() {
            return Err(invalid(
                "scheduler.levels",
                "[]",
                "needs at least one level",
            ));
        }
        for (i, l) in s.levels.iter().enumerate() {
            if l.is_empty() || s.levels[..i].contains(l) {
                return Err(invalid(
                    "scheduler.levels",
                    l,
                    "levels must be non-empty and distinct",
                ));
            }
        }
        if !s.levels.contains(&s.default_level) {
            return Err(invalid(
                "scheduler.default_level",
                &s.default_level,
                format!("is not one of scheduler.levels ({})", s.levels.join(", ")),
            ));
        }
        if s.interval_ms == 0 {
            return Err(invalid(
                "scheduler.interval_ms",
                0,
                "must be greater than zero",
            ));
        }
        if s.default_weight == 0 {
            return Err(invalid("scheduler.default_weight", 0, "must be at least 1"));
        }
        for (ns, c) in &self.namespaces {
            if c.weight == Some(0) {
                return Err(invalid(
                    format!("namespaces.{ns}.weight"),
                    0,
                    "must be at least 1",
                ));
            }
            if let Some(l) = &c.default_level
                && !s.levels.contains(l)
            {
                return Err(invalid(
                    format!("namespaces.{ns}.default_level"),
                    l,
                    format!("is not one of scheduler.levels ({})", s.levels.join(", ")),
                ));
            }
        }
        if self.api.max_body_bytes == 0 {
            return Err(invalid(
                "api.max_body_bytes",
                0,
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The `backend.*` keys of a Spark standalone cluster.
    fn validate_standalone(&self) -> Result<(), ConfigError> {
        let b = &self.backend;
        let url = |key: &str, v: &Option<String>, scheme: &str, example: &str| match v {
            None => Err(invalid(
                format!("backend.{key}"),
                "",
                format!("is required for kind = \"spark-standalone\" (like {example})"),
            )),
            Some(u) if !url_like(u, scheme) => Err(invalid(
                format!("backend.{key}"),
                u,
                format!("is not a URL like {example}"),
            )),
            Some(_) => Ok(()),
        };
        url("master_url", &b.master_url, "spark://", "spark://host:7077")?;
        url("web_url", &b.web_url, "http://", "http://host:8080")?;
        let mode = self.deploy_mode()?;
        if mode == DeployMode::Cluster && b.rest_url.is_none() {
            return Err(invalid(
                "backend.rest_url",
                "",
                "is required for deploy_mode = \"cluster\": the master's REST submission server, \
                 like http://host:6066 (enabled by spark.master.rest.enabled=true)",
            ));
        }
        if let Some(u) = &b.rest_url
            && !url_like(u, "http://")
        {
            return Err(invalid(
                "backend.rest_url",
                u,
                "is not a URL like http://host:6066",
            ));
        }
        if let Some(h) = &b.driver_host
            && (h.trim().is_empty() || h.contains(char::is_whitespace))
        {
            return Err(invalid(
                "backend.driver_host",
                h,
                "is not a host name or address",
            ));
        }
        Ok(())
    }

    /// Standalone keys set with another backend are an error, not silently ignored.
    fn validate_not_standalone(&self) -> Result<(), ConfigError> {
        let b = &self.backend;
        for (key, v) in [
            ("master_url", &b.master_url),
            ("web_url", &b.web_url),
            ("rest_url", &b.rest_url),
            ("deploy_mode", &b.deploy_mode),
            ("driver_host", &b.driver_host),
        ] {
            if let Some(v) = v {
                return Err(invalid(
                    format!("backend.{key}"),
                    v,
                    format!(
                        "is a key of kind = \"spark-standalone\", but backend.kind is {:?}",
                        b.kind
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Kubernetes keys set with another backend are an error, not silently ignored.
    fn validate_not_kubernetes(&self) -> Result<(), ConfigError> {
        let b = &self.backend;
        let set = [
            ("kubeconfig", b.kubeconfig.is_some()),
            ("kube_context", b.kube_context.is_some()),
            ("in_cluster", b.in_cluster.is_some()),
            ("namespaces", b.namespaces.is_some()),
            ("capacity_check", b.capacity_check.is_some()),
            ("watchdog_secs", b.watchdog_secs.is_some()),
            (
                "placeholder_timeout_secs",
                b.placeholder_timeout_secs.is_some(),
            ),
            ("placeholder_image", b.placeholder_image.is_some()),
            (
                "placeholder_priority_class",
                b.placeholder_priority_class.is_some(),
            ),
            ("spark_image", b.spark_image.is_some()),
            ("spark_version", b.spark_version.is_some()),
            ("spark_service_account", b.spark_service_account.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, on)| *on) {
            return Err(invalid(
                format!("backend.{key}"),
                "(set)",
                format!(
                    "is a key of kind = \"kubernetes\", but backend.kind is {:?}",
                    b.kind
                ),
            ));
        }
        Ok(())
    }

    /// The Kubernetes backend's credentials and settings from the `backend.*` keys.
    pub fn kube_settings(&self) -> Result<KubeBackendSettings, ConfigError> {
        let b = &self.backend;
        let credentials = match (b.in_cluster.unwrap_or(false), &b.kubeconfig) {
            (true, Some(p)) => {
                return Err(invalid(
                    "backend.kubeconfig",
                    p.display(),
                    "cannot be set together with in_cluster = true",
                ));
            }
            (true, None) => KubeCredentials::InCluster,
            (false, Some(p)) => KubeCredentials::Kubeconfig {
                path: p.clone(),
                context: b.kube_context.clone(),
            },
            (false, None) => KubeCredentials::Infer,
        };
        let namespaces = b
            .namespaces
            .clone()
            .unwrap_or_else(|| vec!["default".to_string()]);
        if namespaces.is_empty() {
            return Err(invalid(
                "backend.namespaces",
                "[]",
                "needs at least one namespace",
            ));
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
                    "backend.namespaces",
                    ns,
                    "must be distinct Kubernetes namespace names (lowercase letters, digits, '-')",
                ));
            }
        }
        let mode_text = b.capacity_check.as_deref().unwrap_or("snapshot");
        let mode = KubeCapacityMode::parse(mode_text).ok_or_else(|| {
            invalid(
                "backend.capacity_check",
                mode_text,
                "must be \"snapshot\", \"dry-run\" or \"placeholders\"",
            )
        })?;
        let placeholder_timeout = b.placeholder_timeout_secs.unwrap_or(120);
        if placeholder_timeout == 0 {
            return Err(invalid(
                "backend.placeholder_timeout_secs",
                0,
                "must be at least 1",
            ));
        }
        let defaults = KubeSettings::default();
        let mut app = defaults.app.clone();
        if let Some(i) = &b.spark_image {
            app.image = i.clone();
        }
        if let Some(v) = &b.spark_version {
            app.spark_version = v.clone();
        }
        if let Some(sa) = &b.spark_service_account {
            app.service_account = (!sa.is_empty()).then(|| sa.clone());
        }
        Ok(KubeBackendSettings {
            credentials,
            settings: KubeSettings {
                namespaces,
                mode,
                watchdog: match b.watchdog_secs.unwrap_or(600) {
                    0 => None,
                    s => Some(std::time::Duration::from_secs(s)),
                },
                placeholder_timeout: std::time::Duration::from_secs(placeholder_timeout),
                placeholder_image: b
                    .placeholder_image
                    .clone()
                    .unwrap_or(defaults.placeholder_image),
                placeholder_priority_class: b.placeholder_priority_class.clone(),
                app,
            },
        })
    }

    /// `backend.deploy_mode`: client (the default) or cluster.
    pub fn deploy_mode(&self) -> Result<DeployMode, ConfigError> {
        match self.backend.deploy_mode.as_deref() {
            None | Some("client") => Ok(DeployMode::Client),
            Some("cluster") => Ok(DeployMode::Cluster),
            Some(other) => Err(invalid(
                "backend.deploy_mode",
                other,
                "must be \"client\" (drivers run on the sluice host) or \"cluster\" (drivers \
                 run on a worker; JVM applications only)",
            )),
        }
    }

    /// The local budget from `backend.cores` / `backend.memory`, each None when not set.
    pub fn budget(&self) -> Result<(Option<u64>, Option<u64>), ConfigError> {
        let cores = self
            .backend
            .cores
            .as_ref()
            .map(|t| cpu_field("backend.cores", t.as_str()))
            .transpose()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let mem = self
            .backend
            .memory
            .as_ref()
            .map(|t| mem_field("backend.memory", t.as_str()))
            .transpose()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Ok((cores, mem))
    }

    /// The store URL: configured, else a SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        match &self.store.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("sluice.db").display()),
        }
    }

    /// The priority levels and default levels.
    pub fn levels(&self) -> Levels {
        Levels {
            names: self.scheduler.levels.clone(),
            default_level: self.scheduler.default_level.clone(),
            namespace_defaults: self
                .namespaces
                .iter()
                .filter_map(|(ns, c)| c.default_level.clone().map(|l| (ns.clone(), l)))
                .collect(),
        }
    }

    /// Per-namespace policies for the scheduling cycle.
    pub fn namespace_policies(&self) -> BTreeMap<String, NamespacePolicy> {
        self.namespaces
            .iter()
            .map(|(ns, c)| {
                (
                    ns.clone(),
                    NamespacePolicy {
                        weight: c.weight.unwrap_or(self.scheduler.default_weight),
                        policy: c.policy.unwrap_or(self.scheduler.default_policy),
                    },
                )
            })
            .collect()
    }

    /// The policy for namespaces not configured.
    pub fn default_policy(&self) -> NamespacePolicy {
        NamespacePolicy {
            weight: self.scheduler.default_weight,
            policy: self.scheduler.default_policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        // A prefix no test sets: these tests must not see the environment test's variables.
        Config::load_with_env_prefix(Some(&p), "SLUICE_FILE_ONLY_TEST_")
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen, "127.0.0.1:7467");
        assert_eq!(c.store_url(), "sqlite://.sluice/sluice.db");
    }

    #[test]
    fn file_values() {
        let c = load_toml(
            r#"
listen = "127.0.0.1:9000"
[store]
url = "sqlite:///tmp/x.db"
[backend]
kind = "local"
cores = 4
memory = "8g"
[scheduler]
levels = ["urgent", "high", "normal"]
default_level = "normal"
[namespaces.etl]
weight = 3
policy = "best-effort"
default_level = "high"
"#,
        )
        .unwrap();
        assert_eq!(c.budget().unwrap(), (Some(4000), Some(8192)));
        assert_eq!(c.levels().default_for("etl"), "high");
        let p = c.namespace_policies();
        assert_eq!(p["etl"].weight, 3);
        assert_eq!(p["etl"].policy, HeadPolicy::BestEffort);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("[backend]\nmemory = \"12qb\"", "backend.memory"),
            ("[backend]\ncores = 0", "backend.cores"),
            ("[backend]\nkind = \"yarn\"", "backend.kind"),
            (
                "[scheduler]\ndefault_level = \"low\"",
                "scheduler.default_level",
            ),
            ("[namespaces.a]\nweight = 0", "namespaces.a.weight"),
            ("listen = \"nowhere\"", "listen"),
            ("lisen = \"127.0.0.1:1\"", "lisen"),
            ("[scheduler]\ndefault_policy = \"lax\"", "lax"),
        ];
        for (text, want) in cases {
            let e = load_toml(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    // figment::Jail fixes the closure's error type (figment::Error), which clippy finds large.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"127.0.0.1:9000\"\n[backend]\ncores = 2\nmemory = \"1g\"",
            )?;
            jail.set_env("SLUICE_LISTEN", "127.0.0.1:9100");
            jail.set_env("SLUICE_BACKEND__MEMORY", "3g");
            jail.set_env(
                "SLUICE_STORE__URL",
                "postgres://postgres@127.0.0.1:5432/test",
            );
            jail.set_env("SLUICE_SCHEDULER__INTERVAL_MS", "250");
            // The CLI's variable is not configuration and must not break the server.
            jail.set_env("SLUICE_SERVER", "http://127.0.0.1:1");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:9100");
            assert_eq!(
                c.budget().map_err(|e| e.to_string())?,
                (Some(2000), Some(3072))
            );
            assert_eq!(c.store_url(), "postgres://postgres@127.0.0.1:5432/test");
            assert_eq!(c.scheduler.interval_ms, 250);
            jail.set_env("SLUICE_BACKEND__CORES", "lots");
            let e = Config::load(Some(Path::new("c.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("backend.cores") && e.contains("lots"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_example_config_sets_valid_values() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sluice.toml");
        let c = Config::load_with_env_prefix(Some(&p), "SLUICE_FILE_ONLY_TEST_").unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.namespace_policies()["analytics"].weight, 2);
    }

    #[test]
    fn kubernetes_keys() {
        let c = load_toml(
            r#"
[backend]
kind = "kubernetes"
kubeconfig = "/etc/sluice/kubeconfig"
kube_context = "prod"
namespaces = ["spark-a", "spark-b"]
capacity_check = "placeholders"
watchdog_secs = 0
placeholder_timeout_secs = 30
placeholder_image = "registry.example/pause:3.10"
placeholder_priority_class = "sluice-placeholder"
spark_image = "registry.example/spark:4.0.4"
spark_version = "4.0.4"
spark_service_account = ""
"#,
        )
        .unwrap();
        let k = c.kube_settings().unwrap();
        assert_eq!(
            k.credentials,
            KubeCredentials::Kubeconfig {
                path: "/etc/sluice/kubeconfig".into(),
                context: Some("prod".into())
            }
        );
        let s = &k.settings;
        assert_eq!(s.namespaces, vec!["spark-a", "spark-b"]);
        assert_eq!(s.mode, KubeCapacityMode::Placeholders);
        assert_eq!(s.watchdog, None, "0 turns the watchdog off");
        assert_eq!(s.placeholder_timeout.as_secs(), 30);
        assert_eq!(
            s.placeholder_priority_class.as_deref(),
            Some("sluice-placeholder")
        );
        assert_eq!(s.app.image, "registry.example/spark:4.0.4");
        assert_eq!(s.app.service_account, None);
        // Defaults.
        let d = load_toml("[backend]\nkind = \"kubernetes\"\nin_cluster = true").unwrap();
        let k = d.kube_settings().unwrap();
        assert_eq!(k.credentials, KubeCredentials::InCluster);
        assert_eq!(k.settings.namespaces, vec!["default"]);
        assert_eq!(k.settings.mode, KubeCapacityMode::Snapshot);
        assert_eq!(k.settings.watchdog.map(|w| w.as_secs()), Some(600));
        let base = "[backend]\nkind = \"kubernetes\"\n";
        let cases = [
            (
                "capacity_check = \"guess\"",
                "backend.capacity_check",
                "dry-run",
            ),
            ("namespaces = []", "backend.namespaces", "at least one"),
            ("namespaces = [\"Bad_NS\"]", "backend.namespaces", "Bad_NS"),
            (
                "namespaces = [\"a\", \"a\"]",
                "backend.namespaces",
                "distinct",
            ),
            (
                "placeholder_timeout_secs = 0",
                "backend.placeholder_timeout_secs",
                "at least 1",
            ),
            (
                "in_cluster = true\nkubeconfig = \"/k\"",
                "backend.kubeconfig",
                "in_cluster",
            ),
            (
                "master_url = \"spark://h:7077\"",
                "backend.master_url",
                "spark-standalone",
            ),
        ];
        for (extra, key, words) in cases {
            let e = load_toml(&format!("{base}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains(words), "{extra}: {e}");
        }
        // Kubernetes keys with another backend are refused, not ignored.
        let e = load_toml("[backend]\ncapacity_check = \"dry-run\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backend.capacity_check") && e.contains("kubernetes"),
            "{e}"
        );
    }

    #[test]
    fn spark_standalone_keys() {
        let ok = load_toml(
            r#"
[backend]
kind = "spark-standalone"
master_url = "spark://10.0.0.1:7077"
web_url = "http://10.0.0.1:8080"
rest_url = "http://10.0.0.1:6066"
deploy_mode = "cluster"
"#,
        )
        .unwrap();
        assert_eq!(ok.deploy_mode().unwrap(), DeployMode::Cluster);
        let client = load_toml(
            "[backend]\nkind = \"spark-standalone\"\nmaster_url = \"spark://h:7077\"\n\
             web_url = \"http://h:8080\"\ndriver_host = \"10.0.0.5\"\nmemory = \"4g\"",
        )
        .unwrap();
        assert_eq!(client.deploy_mode().unwrap(), DeployMode::Client);
        assert_eq!(client.budget().unwrap(), (None, Some(4096)));
        let base = "[backend]\nkind = \"spark-standalone\"\n";
        let cases = [
            // (extra lines, key named, words the message must contain)
            (
                "web_url = \"http://h:8080\"",
                "backend.master_url",
                "required",
            ),
            (
                "master_url = \"h:7077\"\nweb_url = \"http://h:8080\"",
                "backend.master_url",
                "spark://host:7077",
            ),
            (
                "master_url = \"spark://h:7077\"",
                "backend.web_url",
                "required",
            ),
            (
                "master_url = \"spark://h:7077\"\nweb_url = \"h:8080\"",
                "backend.web_url",
                "http://host:8080",
            ),
            (
                "master_url = \"spark://h:7077\"\nweb_url = \"http://h:8080\"\n\
                 deploy_mode = \"cluster\"",
                "backend.rest_url",
                "spark.master.rest.enabled",
            ),
            (
                "master_url = \"spark://h:7077\"\nweb_url = \"http://h:8080\"\n\
                 deploy_mode = \"remote\"",
                "backend.deploy_mode",
                "remote",
            ),
            (
                "master_url = \"spark://h:7077\"\nweb_url = \"http://h:8080\"\n\
                 rest_url = \"6066\"",
                "backend.rest_url",
                "http://host:6066",
            ),
        ];
        for (extra, key, words) in cases {
            let e = load_toml(&format!("{base}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains(words), "{extra}: {e}");
        }
        // Standalone keys with the local backend are refused, not ignored.
        let e = load_toml("[backend]\nmaster_url = \"spark://h:7077\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backend.master_url") && e.contains("spark-standalone"),
            "{e}"
        );
    }

    #[test]
    fn the_standalone_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/standalone.toml");
        let c = Config::load_with_env_prefix(Some(&p), "SLUICE_FILE_ONLY_TEST_").unwrap();
        assert_eq!(c.backend.kind, "spark-standalone");
        assert_eq!(c.deploy_mode().unwrap(), DeployMode::Client);
    }

    #[test]
    fn the_kubernetes_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubernetes.toml");
        let c = Config::load_with_env_prefix(Some(&p), "SLUICE_FILE_ONLY_TEST_").unwrap();
        assert_eq!(c.backend.kind, "kubernetes");
        let k = c.kube_settings().unwrap();
        assert_eq!(k.credentials, KubeCredentials::Infer);
        assert_eq!(k.settings.mode, KubeCapacityMode::Snapshot);
        // The configuration deploy/ puts in the cluster is valid too.
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/configmap.yaml");
        let cm: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let c = load_toml(cm["data"]["sluice.toml"].as_str().unwrap()).unwrap();
        let k = c.kube_settings().unwrap();
        assert_eq!(k.credentials, KubeCredentials::InCluster);
        assert_eq!(k.settings.namespaces, vec!["spark-jobs"]);
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = Config::load_with_env_prefix(
            Some(Path::new("/nonexistent/sluice.toml")),
            "SLUICE_FILE_ONLY_TEST_",
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/sluice.toml"));
    }
}
