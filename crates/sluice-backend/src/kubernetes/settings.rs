//! The Kubernetes backend's settings, credentials and API client.

use std::path::PathBuf;
use std::time::Duration;

use kube::Client;
use kube::api::{ApiResource, GroupVersionKind};

use super::app::AppDefaults;
use crate::BackendError;

/// How the backend checks capacity before submitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapacityMode {
    /// The watched snapshot only (default).
    #[default]
    Snapshot,
    /// The snapshot, then the driver and an executor pod created with `dryRun=All`.
    DryRun,
    /// The snapshot, then placeholder pods that must all be scheduled before the submit.
    Placeholders,
}

impl CapacityMode {
    /// The configuration name: "snapshot", "dry-run" or "placeholders".
    pub fn as_str(&self) -> &'static str {
        match self {
            CapacityMode::Snapshot => "snapshot",
            CapacityMode::DryRun => "dry-run",
            CapacityMode::Placeholders => "placeholders",
        }
    }

    /// Parses a configuration name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "snapshot" => Some(CapacityMode::Snapshot),
            "dry-run" => Some(CapacityMode::DryRun),
            "placeholders" => Some(CapacityMode::Placeholders),
            _ => None,
        }
    }
}

/// Where the backend's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// `KUBECONFIG` or `~/.kube/config`, else the in-cluster service account.
    #[default]
    Infer,
    /// The pod's service account (`/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
    /// A kubeconfig file, with an optional context.
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The context; default the file's current context.
        context: Option<String>,
    },
}

/// Settings of the Kubernetes backend.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeSettings {
    /// Namespaces sluice manages (where it creates SparkApplications); at least one.
    pub namespaces: Vec<String>,
    /// Capacity-check mode.
    pub mode: CapacityMode,
    /// Kill and requeue a job whose driver runs while no executor does for this long; `None`
    /// turns the watchdog off.
    pub watchdog: Option<Duration>,
    /// How long placeholders may wait to be scheduled before they are released and the job
    /// requeued.
    pub placeholder_timeout: Duration,
    /// Image of placeholder pods.
    pub placeholder_image: String,
    /// PriorityClass of placeholder pods (a low one, so that real pods preempt them).
    pub placeholder_priority_class: Option<String>,
    /// What sluice-spec jobs get that the spec does not say (image, Spark version, service
    /// account).
    pub app: AppDefaults,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            namespaces: vec!["default".into()],
            mode: CapacityMode::Snapshot,
            watchdog: Some(Duration::from_secs(600)),
            placeholder_timeout: Duration::from_secs(120),
            placeholder_image: "registry.k8s.io/pause:3.10".into(),
            placeholder_priority_class: None,
            app: AppDefaults::default(),
        }
    }
}

/// Every API permission the backend uses: (API group, resource, verb, cluster-wide). The
/// cluster-wide ones are reads; the rest are needed in each managed namespace only.
/// `deploy/base/rbac.yaml` grants exactly these (a test renders the overlays and checks it).
pub const PERMISSIONS: &[(&str, &str, &str, bool)] = &[
    ("", "nodes", "list", true),
    ("", "nodes", "watch", true),
    ("", "pods", "list", true),
    ("", "pods", "watch", true),
    ("", "pods", "create", false),
    ("", "pods", "delete", false),
    ("", "pods/log", "get", false),
    ("", "resourcequotas", "list", false),
    ("", "resourcequotas", "watch", false),
    ("sparkoperator.k8s.io", "sparkapplications", "get", false),
    ("sparkoperator.k8s.io", "sparkapplications", "list", false),
    ("sparkoperator.k8s.io", "sparkapplications", "watch", false),
    ("sparkoperator.k8s.io", "sparkapplications", "create", false),
    ("sparkoperator.k8s.io", "sparkapplications", "delete", false),
    // Events on the applications (kube-runtime's Recorder creates, then patches a series).
    ("events.k8s.io", "events", "create", false),
    ("events.k8s.io", "events", "patch", false),
];

/// The `SparkApplication` resource.
pub fn spark_application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("sparkoperator.k8s.io", "v1beta2", "SparkApplication"),
        "sparkapplications",
    )
}

/// Installs ring as rustls' process-wide crypto provider (see [`crate::install_crypto_provider`]).
pub fn install_crypto_provider() {
    crate::install_crypto_provider();
}

/// Builds a client from the credentials.
pub async fn client_for(creds: &Credentials) -> Result<Client, BackendError> {
    install_crypto_provider();
    let config = match creds {
        Credentials::Infer => kube::Config::infer()
            .await
            .map_err(|e| BackendError::Config(format!("kubernetes credentials: {e}")))?,
        Credentials::InCluster => kube::Config::incluster()
            .map_err(|e| BackendError::Config(format!("in-cluster credentials: {e}")))?,
        Credentials::Kubeconfig { path, context } => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| BackendError::Config(format!("kubeconfig {}: {e}", path.display())))?;
            let opts = kube::config::KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| BackendError::Config(format!("kubeconfig {}: {e}", path.display())))?
        }
    };
    client_from_config(config)
}

/// Builds a client from a kube-rs `Config`, with kube-rs's own retrying of 429/503/504 turned
/// off: it backs off up to 15 times inside one call, which would hold a scheduling tick for
/// minutes. sluice retries on its next tick instead (submits are idempotent per attempt), and the
/// watches keep their own backoff.
pub fn client_from_config(mut config: kube::Config) -> Result<Client, BackendError> {
    config.default_retry = false;
    Client::try_from(config).map_err(|e| BackendError::Config(format!("kubernetes client: {e}")))
}
