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
use sluice_core::cycle::{BackfillSettings, HeadPolicy, NamespacePolicy};
use sluice_core::sizing::DeployMode;
use sluice_core::spec::Levels;

mod auth;
mod backend;
mod cost;
mod duration;
mod ha;
mod preemption;

pub use self::auth::{AuthConfig, OidcConfig, TOKEN_FILE};
pub use self::cost::{CostConfig, PriceOverride};
pub use self::ha::HaConfig;
pub use self::preemption::PreemptionConfig;
mod security;

pub use self::backend::{
    BackendConfig, BackendKeyError, KubeBackendSettings, KubeCapacityMode, KubeCredentials,
    KubeSettings, KubernetesConfig, LocalConfig as LocalBackendConfig,
    StandaloneConfig as StandaloneBackendConfig,
};
pub use self::security::{
    CommandJobsConfig, LimitsConfig, SecretsConfig, SecurityConfig, TlsConfig,
};

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

impl From<BackendKeyError> for ConfigError {
    fn from(e: BackendKeyError) -> Self {
        match e {
            BackendKeyError::Invalid {
                key,
                value,
                message,
            } => ConfigError::Invalid {
                key,
                value,
                message,
            },
            BackendKeyError::Quantity(m) => ConfigError::Load(m),
        }
    }
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
    /// `[backend]`: a tagged enum on `kind` (default "local"). Not serialized: the figment
    /// defaults give only `backend.kind`, so that the keys of one kind never reach another.
    #[serde(skip_serializing)]
    pub backend: BackendConfig,
    /// `[scheduler]`.
    pub scheduler: SchedulerConfig,
    /// `[namespaces.NAME]`: per-namespace weight, head-of-line policy and default level.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// `[api]`.
    pub api: ApiConfig,
    /// `[auth]`: authentication, allowed hosts, audit retention.
    pub auth: AuthConfig,
    /// `[security]`: command jobs (refused unless allowed).
    pub security: SecurityConfig,
    /// `[limits]`: connections, timeouts, rate limit, open files.
    pub limits: LimitsConfig,
    /// `[tls]`: HTTPS with a certificate and key (PEM files), reloaded on change.
    pub tls: TlsConfig,
    /// `[ha]`: leader election among replicas on PostgreSQL.
    pub ha: HaConfig,
    /// `[cost]`: prices and right-sizing advice.
    pub cost: CostConfig,
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
            auth: AuthConfig::default(),
            security: SecurityConfig::default(),
            limits: LimitsConfig::default(),
            tls: TlsConfig::default(),
            ha: HaConfig::default(),
            cost: CostConfig::default(),
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

/// `[scheduler]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Priority levels, highest first.
    pub levels: Vec<String>,
    /// Level for jobs that name none, in namespaces without their own default.
    pub default_level: String,
    /// Milliseconds between scheduling cycles (a submit or cancel also wakes the cycle), or a
    /// duration text like "500ms" (see [`duration`]).
    #[serde(deserialize_with = "duration::ms")]
    pub interval_ms: u64,
    /// Head-of-line policy for namespaces without their own: "strict", "best-effort" or
    /// "backfill".
    pub default_policy: HeadPolicy,
    /// Weight for namespaces without their own.
    pub default_weight: u32,
    /// Backfill: expected run time of a job without `maxRuntime`, ms or a duration text.
    #[serde(deserialize_with = "duration::ms")]
    pub default_runtime_ms: u64,
    /// Backfill: a running job past its expected end is taken to end this long from now.
    #[serde(deserialize_with = "duration::ms")]
    pub backfill_margin_ms: u64,
    /// Backfill: a head that has waited this long is passed no more and its reservation binds
    /// every start; 0: no bound.
    #[serde(deserialize_with = "duration::ms")]
    pub backfill_max_wait_ms: u64,
    /// Aging: level name to the wait after which a job of that level sorts one level higher
    /// (ms or duration texts, `[scheduler.aging_ms] normal = "2h"`).
    #[serde(deserialize_with = "duration::ms_map")]
    pub aging_ms: BTreeMap<String, u64>,
    /// Expected run times from history: the 90th percentile of the last this many successful
    /// runs of jobs with the same namespace and name; 0: no history (`maxRuntime`, else
    /// `default_runtime_ms`).
    pub runtime_history_runs: u32,
    /// `[scheduler.preemption]`: off unless `enabled_levels` names a level.
    pub preemption: PreemptionConfig,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            levels: vec!["high".into(), "normal".into()],
            default_level: "normal".into(),
            interval_ms: 500,
            default_policy: HeadPolicy::Strict,
            default_weight: 1,
            default_runtime_ms: 3_600_000,
            backfill_margin_ms: 300_000,
            backfill_max_wait_ms: 7_200_000,
            aging_ms: BTreeMap::new(),
            runtime_history_runs: 20,
            preemption: PreemptionConfig::default(),
        }
    }
}

/// `[namespaces.NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceConfig {
    /// Fair-share weight (>= 1); default `scheduler.default_weight`.
    pub weight: Option<u32>,
    /// "strict", "best-effort" or "backfill"; default `scheduler.default_policy`.
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
    "auth",
    "security",
    "limits",
    "tls",
    "ha",
];

impl Config {
    /// Loads defaults, then the TOML file if given, then `SLUICE_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env_prefix(path, "SLUICE_")
    }

    /// As [`Config::load`], with environment variables named `{prefix}KEY`.
    pub fn load_with_env_prefix(path: Option<&Path>, prefix: &str) -> Result<Config, ConfigError> {
        // `[backend]` is not serialized with the defaults: only its kind is, so that the keys
        // of the default kind never reach another kind (which would refuse them).
        let mut fig = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::default("backend.kind", "local"));
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
        let fig = fig.merge(env);
        let cfg: Config = fig
            .extract()
            .map_err(|e| match backend::explain(&e, &fig) {
                Some(b) => ConfigError::from(b),
                None => ConfigError::Load(e.to_string()),
            })?;
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
        self.backend.validate()?;
        let ha = &self.ha;
        if ha.lease_ttl_ms < 500 {
            return Err(invalid(
                "ha.lease_ttl_ms",
                ha.lease_ttl_ms,
                "must be at least 500 ms",
            ));
        }
        if ha.renew_interval_ms == 0 || ha.renew_interval_ms.saturating_mul(3) > ha.lease_ttl_ms {
            return Err(invalid(
                "ha.renew_interval_ms",
                ha.renew_interval_ms,
                "must be more than 0 and at most a third of ha.lease_ttl_ms",
            ));
        }
        for (key, value) in [
            ("ha.identity", &ha.identity),
            ("ha.advertise_url", &ha.advertise_url),
        ] {
            if value.chars().any(char::is_whitespace) {
                return Err(invalid(key, value, "must not contain spaces"));
            }
        }
        let url = &ha.advertise_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "ha.advertise_url",
                &ha.advertise_url,
                "must start with http:// or https://",
            ));
        }
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
        if s.runtime_history_runs > 1000 {
            return Err(invalid(
                "scheduler.runtime_history_runs",
                s.runtime_history_runs,
                "must be at most 1000",
            ));
        }
        for (level, bound) in &s.aging_ms {
            if !s.levels.contains(level) {
                return Err(invalid(
                    format!("scheduler.aging_ms.{level}"),
                    level,
                    format!("is not one of scheduler.levels ({})", s.levels.join(", ")),
                ));
            }
            if *bound == 0 {
                return Err(invalid(
                    format!("scheduler.aging_ms.{level}"),
                    0,
                    "must be greater than zero",
                ));
            }
        }
        s.preemption.validate(&s.levels)?;
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
        self.auth
            .check(&self.listen)
            .map_err(|(key, value, message)| invalid(key, value, message))?;
        if self.api.max_body_bytes == 0 {
            return Err(invalid(
                "api.max_body_bytes",
                0,
                "must be greater than zero",
            ));
        }
        self.security.validate()?;
        self.limits.validate()?;
        self.tls.validate()?;
        self.cost.validate()?;
        Ok(())
    }

    /// The Kubernetes backend's credentials and settings: from `[backend]` with kind =
    /// "kubernetes", else the defaults (for `sluice render`).
    pub fn kube_settings(&self) -> Result<KubeBackendSettings, ConfigError> {
        let k = match &self.backend {
            BackendConfig::Kubernetes(k) => k.settings()?,
            _ => KubernetesConfig::default().settings()?,
        };
        Ok(k)
    }

    /// `backend.deploy_mode` of a Spark standalone backend: client (the default) or cluster.
    pub fn deploy_mode(&self) -> Result<DeployMode, ConfigError> {
        match &self.backend {
            BackendConfig::SparkStandalone(s) => Ok(s.deploy_mode()?),
            _ => Ok(DeployMode::Client),
        }
    }

    /// The budget from `backend.cores` / `backend.memory`, each None when not set.
    pub fn budget(&self) -> Result<(Option<u64>, Option<u64>), ConfigError> {
        Ok(self.backend.budget()?)
    }

    /// The store URL: configured, else a SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        match &self.store.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("sluice.db").display()),
        }
    }

    /// The URL the other replicas reach this one at: `ha.advertise_url`, else this server's
    /// `listen` address when it is a specific one; none otherwise.
    pub fn advertise_url(&self) -> Option<String> {
        if !self.ha.advertise_url.is_empty() {
            return Some(self.ha.advertise_url.trim_end_matches('/').to_string());
        }
        let addr: std::net::SocketAddr = self.listen.parse().ok()?;
        if addr.ip().is_unspecified() {
            return None;
        }
        let scheme = if self.tls.files().is_some() {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{addr}"))
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

    /// Backfill's settings for the scheduling cycle.
    pub fn backfill(&self) -> BackfillSettings {
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let s = &self.scheduler;
        BackfillSettings {
            default_runtime_ms: ms(s.default_runtime_ms),
            overrun_margin_ms: ms(s.backfill_margin_ms),
            max_head_wait_ms: (s.backfill_max_wait_ms > 0).then(|| ms(s.backfill_max_wait_ms)),
        }
    }

    /// Aging bounds by level index, for the scheduling cycle (empty: no aging).
    pub fn aging(&self) -> Vec<Option<i64>> {
        if self.scheduler.aging_ms.is_empty() {
            return Vec::new();
        }
        self.scheduler
            .levels
            .iter()
            .map(|l| {
                self.scheduler
                    .aging_ms
                    .get(l)
                    .map(|v| i64::try_from(*v).unwrap_or(i64::MAX))
            })
            .collect()
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
default_policy = "backfill"
default_runtime_ms = "30m"
backfill_margin_ms = 60000
backfill_max_wait_ms = 0
[scheduler.aging_ms]
normal = "2h"
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
        assert_eq!(c.default_policy().policy, HeadPolicy::Backfill);
        let b = c.backfill();
        assert_eq!(b.default_runtime_ms, 30 * 60_000);
        assert_eq!(b.overrun_margin_ms, 60_000);
        assert_eq!(b.max_head_wait_ms, None, "0: no bound");
        assert_eq!(c.aging(), vec![None, None, Some(2 * 3_600_000)]);
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
            (
                "[scheduler.aging_ms]\nurgent = \"2h\"",
                "scheduler.aging_ms.urgent",
            ),
            ("[scheduler.aging_ms]\nnormal = \"2q\"", "2q"),
            (
                "[scheduler]\nruntime_history_runs = 5000",
                "scheduler.runtime_history_runs",
            ),
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
        assert!(!c.scheduler.preemption.enabled());
        assert_eq!(c.scheduler.preemption.grace_ms, 30_000);
        assert_eq!(c.cost.prices("analytics").core_hour, 0.03);
        assert_eq!(c.cost.prices("other").gib_hour, 0.005);
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
        assert_eq!(c.backend.kind(), "spark-standalone");
        assert_eq!(c.deploy_mode().unwrap(), DeployMode::Client);
    }

    #[test]
    fn the_kubernetes_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubernetes.toml");
        let c = Config::load_with_env_prefix(Some(&p), "SLUICE_FILE_ONLY_TEST_").unwrap();
        assert_eq!(c.backend.kind(), "kubernetes");
        let k = c.kube_settings().unwrap();
        assert_eq!(k.credentials, KubeCredentials::Infer);
        assert_eq!(k.settings.mode, KubeCapacityMode::Snapshot);
        let share = k.settings.app.event_log.as_ref().unwrap();
        assert_eq!(share.dir, "file:///spark-events");
        assert_eq!(share.mount, Path::new("/mnt/spark-events"));
        // The configuration deploy/ puts in the cluster is valid too.
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base/configmap.yaml");
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
