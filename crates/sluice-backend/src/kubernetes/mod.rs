//! Kubernetes with the Spark Operator: jobs run as `SparkApplication` resources
//! (`sparkoperator.k8s.io/v1beta2`), admitted only when the cluster can hold the driver and
//! every executor.
//!
//! - [`app`]: the SparkApplication of a job attempt (deterministic name, labels), and the
//!   mapping of the operator's `applicationState` to a [`RunStatus`].
//! - [`objects`]: Kubernetes objects to and from the plain structs of [`sluice_core::pods`];
//!   dry-run and placeholder pods.
//! - [`render`]: the objects sluice would create for a job, as YAML, offline.
//!
//! Capacity comes from kube-runtime reflectors (watches) on nodes and pods (cluster-wide: every
//! pod takes node room) and on ResourceQuotas and sluice's SparkApplications in the managed
//! namespaces. Free room per node follows [`sluice_core::pods::node_free`]. Jobs sluice
//! submitted whose pods do not all exist yet (the driver creates its executors later) keep the
//! missing pods reserved here, so the server sees them as `visible`.
//!
//! ResourceQuotas count only the pods their scopes match
//! ([`sluice_core::pods::Quota::applies_to`]).
//!
//! Three capacity-check modes ([`CapacityMode`]): `snapshot` (the above), `dry-run` (also create
//! the driver and an executor pod with `dryRun=All` so that admission answers) and
//! `placeholders` (hold the room with low-priority pause pods first; when all are scheduled,
//! create the SparkApplication, then delete them). A deadlock watchdog kills and requeues a job
//! whose driver runs while none of its executors does for longer than the configured time.
//! Both clocks are read from the cluster (the driver's running `startedAt`, the
//! `creationTimestamp` of pending executors and of placeholders), so a restart of sluice does
//! not reset them; placeholders of jobs still admitted survive a restart, the others are swept
//! once older than the placeholder timeout.
//!
//! [`Backend::never_runs`] refuses at submit a job no node could ever take (selectors,
//! affinity, taints other than the temporary `node.kubernetes.io/*` ones, allocatable) or that
//! exceeds a quota's hard limit; temporary conditions leave it waiting with the reason.

pub mod app;
pub mod objects;
pub mod render;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams,
    PostParams,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_core::capacity::{Eligible, Fitter, NodeCapacity, Snapshot};
use sluice_core::cycle::Constraints;
use sluice_core::job::{Demand, JobRecord, Role};
use sluice_core::pods::{
    NodeInfo, PodPlacement, Quota, ScopedNeed, add_scoped_needs, never_placed, node_free,
    quota_check, quota_hard_check,
};
use sluice_core::spec::Job;

use self::app::{
    ATTEMPT_LABEL, AppDefaults, AppState, JOB_ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL,
    PLACEHOLDER_LABEL, build_app, demand_of, map_state,
};
use self::objects::{
    PodKind, bound_pods_by_role, created_at, job_pods, label, node_info, placement_of, pod_node,
    pod_phase, pod_role, pod_terminal, pod_usage, quota_info, remaining, running_since,
    scoped_need,
};
use crate::{
    Backend, BackendError, CapacityReport, LogChunk, RunNote, RunRef, RunStatus, SubmitRequest,
    Submitted,
};

/// The job id [`Backend::never_runs`] builds a job's application with (only its placement and
/// pods are read).
const NEVER_RUNS_ID: &str = "00000000000000000000000000";

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
/// `deploy/rbac.yaml` grants exactly these (a test checks it).
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
];

/// The `SparkApplication` resource.
pub fn spark_application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("sparkoperator.k8s.io", "v1beta2", "SparkApplication"),
        "sparkapplications",
    )
}

/// Installs ring as rustls' process-wide crypto provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
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

/// Health of the watches: per watch, `None` when its last event was good, else the error.
#[derive(Debug, Default)]
struct Health {
    watches: Mutex<BTreeMap<String, WatchHealth>>,
}

#[derive(Debug, Default, Clone)]
struct WatchHealth {
    listed: bool,
    error: Option<String>,
    lists: u64,
}

impl Health {
    fn update(&self, name: &str, f: impl FnOnce(&mut WatchHealth)) {
        let mut w = lock(&self.watches);
        f(w.entry(name.to_string()).or_default());
    }

    /// `Err` names the first watch that has not listed yet or whose last event was an error.
    fn check(&self) -> Result<(), String> {
        let w = lock(&self.watches);
        for (name, h) in w.iter() {
            if !h.listed {
                return Err(format!("watch on {name} has not listed yet"));
            }
            if let Some(e) = &h.error {
                return Err(format!("watch on {name}: {e}"));
            }
        }
        Ok(())
    }
}

/// Locks a mutex, taking the data even if a panic poisoned it (the maps here stay consistent:
/// every update is a single insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A job this backend submitted (or is submitting), until its application shows up in the
/// watch or the run ends.
#[derive(Debug, Clone)]
struct Inflight {
    namespace: String,
    attempt: u32,
    demand: Demand,
    /// The application it was (or is being) submitted as, for the scopes of its pods.
    app: Arc<Value>,
}

/// Jobs being submitted or submitted, by job id (shared with the placeholder sweep).
type InflightMap = Arc<Mutex<HashMap<String, Inflight>>>;

/// Where the spec of a job known to the backend comes from.
enum AppSource {
    /// The watch cache of SparkApplications.
    Cached(Arc<DynamicObject>),
    /// A submission of this process whose application is not in the cache (yet).
    Inflight(Arc<Value>),
}

impl AppSource {
    /// The object, as far as `spec` goes.
    fn value(&self) -> &Value {
        match self {
            AppSource::Cached(a) => &a.data,
            AppSource::Inflight(v) => v,
        }
    }
}

/// A job the backend knows: its namespace, demand, whether it still holds room, and its
/// application.
struct Known {
    namespace: String,
    demand: Demand,
    holds: bool,
    app: AppSource,
}

/// What one job asks of the cluster, computed once per job attempt for [`Backend::constraints`].
#[derive(Debug, Clone)]
struct Shape {
    namespace: String,
    placements: Vec<(Role, PodPlacement)>,
    need: ScopedNeed,
}

/// A cached [`Shape`], `None` for a job that is not a Spark job (or no longer decodes).
type ShapeEntry = Option<Arc<Shape>>;

/// What the last capacity call saw, for [`Backend::constraints`].
#[derive(Debug, Clone, Default)]
struct View {
    nodes: BTreeMap<String, NodeInfo>,
    quotas: BTreeMap<String, Vec<Quota>>,
    /// Per namespace: quota use of pods of admitted jobs that do not exist yet.
    reserved: BTreeMap<String, ScopedNeed>,
}

/// The Kubernetes backend.
pub struct KubeBackend {
    client: Client,
    settings: KubeSettings,
    nodes: Store<Node>,
    pods: Store<Pod>,
    quotas: Vec<Store<ResourceQuota>>,
    apps: Vec<Store<DynamicObject>>,
    health: Arc<Health>,
    inflight: InflightMap,
    shapes: Mutex<HashMap<(String, u32), ShapeEntry>>,
    view: Mutex<View>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The operator's state and message last seen per job, to note each change once.
    operator_seen: Mutex<HashMap<String, String>>,
    /// Notes for the jobs' timelines, until `take_notes` hands them over.
    notes: Mutex<Vec<RunNote>>,
}

impl Drop for KubeBackend {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    name: String,
    health: Arc<Health>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    health.update(&name, |_| {});
    tokio::spawn(async move {
        let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) => health.update(&name, |h| {
                    h.listed = true;
                    h.error = None;
                    h.lists += 1;
                }),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => health.update(&name, |h| h.error = None),
                Err(e) => {
                    tracing::debug!(watch = %name, "watch error: {e}");
                    health.update(&name, |h| h.error = Some(e.to_string()));
                }
            }
        }
    })
}

/// Strips what sluice never reads from pods kept in the watch cache. The driver pods of
/// sluice's jobs keep their `Ready` condition and container states: the watchdog reads since
/// when the driver runs from them.
fn slim_pod(p: &mut Pod) {
    p.metadata.managed_fields = None;
    p.metadata.annotations = None;
    let sluice_driver =
        pod_role(p) == Some(Role::Driver) && label(&p.metadata, JOB_ID_LABEL).is_some();
    if let Some(st) = p.status.as_mut() {
        if sluice_driver {
            if let Some(c) = st.conditions.as_mut() {
                c.retain(|c| c.type_ == "Ready");
            }
            for cs in st.container_statuses.iter_mut().flatten() {
                cs.last_state = None;
                cs.volume_mounts = None;
                cs.allocated_resources = None;
                cs.resources = None;
            }
        } else {
            st.conditions = None;
            st.container_statuses = None;
        }
        st.init_container_statuses = None;
    }
}

/// Milliseconds from `since` to `now` (0 when `since` is later: clocks differ).
fn elapsed_ms(since: Timestamp, now: Timestamp) -> u128 {
    u128::try_from(now.as_millisecond().saturating_sub(since.as_millisecond())).unwrap_or(0)
}

/// Deletes the placeholder pods in `namespaces` that belong to no submission under way in
/// `inflight` (same job and attempt) and, with `min_age`, were created longer ago than that.
/// Returns how many were deleted; failures are logged.
async fn sweep_placeholders(
    client: &Client,
    namespaces: &[String],
    inflight: &InflightMap,
    min_age: Option<Duration>,
) -> usize {
    let mut removed = 0;
    let now = Timestamp::now();
    for ns in namespaces {
        let api = Api::<Pod>::namespaced(client.clone(), ns);
        let lp = ListParams::default().labels(&labels_selector(&[
            (MANAGED_BY_LABEL, MANAGED_BY),
            (PLACEHOLDER_LABEL, "true"),
        ]));
        let list = match api.list(&lp).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(namespace = %ns, "listing orphan placeholders: {e}");
                continue;
            }
        };
        for p in list.items {
            let Some(name) = p.metadata.name.as_deref() else {
                continue;
            };
            let claimed = {
                let f = lock(inflight);
                label(&p.metadata, JOB_ID_LABEL)
                    .and_then(|id| f.get(id))
                    .is_some_and(|f| {
                        label(&p.metadata, ATTEMPT_LABEL) == Some(f.attempt.to_string().as_str())
                    })
            };
            let young = min_age.is_some_and(|age| {
                created_at(&p.metadata).is_none_or(|t| elapsed_ms(t, now) < age.as_millis())
            });
            if claimed || young {
                continue;
            }
            match api
                .delete(name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => {
                    removed += 1;
                    tracing::info!(namespace = %ns, pod = %name, "removed orphan placeholder");
                }
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => {
                    tracing::warn!(namespace = %ns, pod = %name, "removing orphan placeholder: {e}")
                }
            }
        }
    }
    removed
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            if s.message.is_empty() {
                format!("{} ({})", s.reason, s.code)
            } else {
                s.message.clone()
            }
        }
        other => other.to_string(),
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// A failed API call as a backend error: server errors and transport failures are
/// "unavailable" (try again), the rest are rejections with the API's message.
fn call_error(what: &str, e: &kube::Error) -> BackendError {
    match api_code(e) {
        Some(code) if code >= 500 || code == 429 => {
            BackendError::Unavailable(format!("{what}: {}", api_message(e)))
        }
        Some(_) => BackendError::Rejected(format!("{what}: {}", api_message(e))),
        None => BackendError::Unavailable(format!("{what}: {e}")),
    }
}

fn is_quota_refusal(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("exceeded quota"))
}

fn split_ref(r: &str) -> Option<(&str, &str)> {
    r.split_once('/')
}

fn labels_selector(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl KubeBackend {
    /// Connects with the given credentials and starts the watches.
    pub async fn connect(
        creds: &Credentials,
        settings: KubeSettings,
    ) -> Result<Self, BackendError> {
        let client = client_for(creds).await?;
        Self::with_client(client, settings).await
    }

    /// Starts the watches on an existing client and removes placeholder pods left by an earlier
    /// run (they belong to no submission any more). Does not wait for the first lists: until
    /// they arrive, [`Backend::capacity`] reports the backend unavailable.
    pub async fn with_client(client: Client, settings: KubeSettings) -> Result<Self, BackendError> {
        install_crypto_provider();
        if settings.namespaces.is_empty() {
            return Err(BackendError::Config(
                "the kubernetes backend needs at least one managed namespace".into(),
            ));
        }
        let health = Arc::new(Health::default());
        let mut tasks = Vec::new();

        let (nodes, w) = reflector::store::<Node>();
        tasks.push(spawn_watch(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            w,
            "nodes".into(),
            health.clone(),
        ));

        let (pods, w) = reflector::store::<Pod>();
        {
            let api = Api::<Pod>::all(client.clone());
            let h = health.clone();
            health.update("pods", |_| {});
            tasks.push(tokio::spawn(async move {
                let stream = reflector::reflector(
                    w,
                    watcher(api, watcher::Config::default()).modify(slim_pod),
                )
                .default_backoff();
                futures::pin_mut!(stream);
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(watcher::Event::InitDone) => h.update("pods", |x| {
                            x.listed = true;
                            x.error = None;
                            x.lists += 1;
                        }),
                        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                        Ok(_) => h.update("pods", |x| x.error = None),
                        Err(e) => h.update("pods", |x| x.error = Some(e.to_string())),
                    }
                }
            }));
        }

        let ar = spark_application_resource();
        let mut quotas = Vec::new();
        let mut apps = Vec::new();
        for ns in &settings.namespaces {
            let (q, w) = reflector::store::<ResourceQuota>();
            tasks.push(spawn_watch(
                Api::<ResourceQuota>::namespaced(client.clone(), ns),
                watcher::Config::default(),
                w,
                format!("resourcequotas in {ns}"),
                health.clone(),
            ));
            quotas.push(q);
            let w = reflector::store::Writer::<DynamicObject>::new(ar.clone());
            let r = w.as_reader();
            tasks.push(spawn_watch(
                Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
                watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
                w,
                format!("sparkapplications in {ns}"),
                health.clone(),
            ));
            apps.push(r);
        }

        let inflight: InflightMap = Arc::new(Mutex::new(HashMap::new()));
        if settings.mode == CapacityMode::Placeholders {
            // Placeholders of jobs still admitted survive a restart (their resubmit adopts them,
            // and their timeout counts from their creation); the others are removed once older
            // than the timeout, by a sweep every `placeholder_timeout`.
            let (client, namespaces, inflight, timeout) = (
                client.clone(),
                settings.namespaces.clone(),
                inflight.clone(),
                settings.placeholder_timeout,
            );
            tasks.push(tokio::spawn(async move {
                let every = timeout.max(Duration::from_millis(100));
                loop {
                    tokio::time::sleep(every).await;
                    sweep_placeholders(&client, &namespaces, &inflight, Some(timeout)).await;
                }
            }));
        }
        let backend = KubeBackend {
            client,
            settings,
            nodes,
            pods,
            quotas,
            apps,
            health,
            inflight,
            shapes: Mutex::new(HashMap::new()),
            view: Mutex::new(View::default()),
            tasks,
            operator_seen: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
        };
        if backend.settings.mode != CapacityMode::Placeholders {
            backend.remove_orphan_placeholders().await;
        }
        Ok(backend)
    }

    /// The settings.
    pub fn settings(&self) -> &KubeSettings {
        &self.settings
    }

    /// How many times each watch has (re)listed, by watch name; a watch restarted after
    /// `410 Gone` lists again.
    pub fn watch_lists(&self) -> BTreeMap<String, u64> {
        lock(&self.health.watches)
            .iter()
            .map(|(k, v)| (k.clone(), v.lists))
            .collect()
    }

    /// Waits until every watch has listed once, up to `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), BackendError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.health.check() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(BackendError::Unavailable(e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Deletes the placeholder pods in the managed namespaces that belong to no submission under
    /// way (left by an earlier run). In `placeholders` mode only those created longer than
    /// `placeholder_timeout` ago go (a resubmit of a job still admitted adopts younger ones);
    /// the backend runs this every `placeholder_timeout`. In the other modes it runs at
    /// start-up and removes every one. Failures are logged, not fatal.
    pub async fn remove_orphan_placeholders(&self) -> usize {
        let min_age = (self.settings.mode == CapacityMode::Placeholders)
            .then_some(self.settings.placeholder_timeout);
        sweep_placeholders(
            &self.client,
            &self.settings.namespaces,
            &self.inflight,
            min_age,
        )
        .await
    }

    fn managed(&self, ns: &str) -> bool {
        self.settings.namespaces.iter().any(|n| n == ns)
    }

    fn apps_api(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &spark_application_resource())
    }

    fn pods_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Every SparkApplication of sluice in the watch caches.
    fn cached_apps(&self) -> Vec<Arc<DynamicObject>> {
        self.apps.iter().flat_map(|s| s.state()).collect()
    }

    fn cached_app(&self, ns: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.cached_apps().into_iter().find(|a| {
            a.metadata.namespace.as_deref() == Some(ns) && a.metadata.name.as_deref() == Some(name)
        })
    }

    /// Pods of one job (any attempt), from the watch cache.
    fn job_pods_cached(&self, job_id: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| label(&p.metadata, JOB_ID_LABEL) == Some(job_id))
            .collect()
    }

    /// The jobs the backend knows, with their demand and whether they still hold room.
    fn known_jobs(&self) -> BTreeMap<String, Known> {
        let mut out = BTreeMap::new();
        for a in self.cached_apps() {
            let Some(id) = label(&a.metadata, JOB_ID_LABEL) else {
                continue;
            };
            let Some(demand) = app_demand(&a) else {
                continue;
            };
            let ended = AppState::of(&a.data).is_terminal();
            let namespace = a.metadata.namespace.clone().unwrap_or_default();
            out.insert(
                id.to_string(),
                Known {
                    namespace,
                    demand,
                    holds: !ended,
                    app: AppSource::Cached(a.clone()),
                },
            );
        }
        for (id, f) in lock(&self.inflight).iter() {
            out.entry(id.clone()).or_insert_with(|| Known {
                namespace: f.namespace.clone(),
                demand: f.demand.clone(),
                holds: true,
                app: AppSource::Inflight(f.app.clone()),
            });
        }
        out
    }

    /// The ResourceQuotas of a namespace, from the watch cache.
    fn quotas_of(&self, ns: &str) -> Vec<Quota> {
        self.quotas
            .iter()
            .flat_map(|s| s.state())
            .filter(|rq| rq.metadata.namespace.as_deref() == Some(ns))
            .filter_map(|rq| quota_info(&rq))
            .collect()
    }

    fn track(&self, req: &SubmitRequest, app: &Value) {
        lock(&self.inflight).insert(
            req.job_id.clone(),
            Inflight {
                namespace: req.job.namespace.clone(),
                attempt: req.attempt,
                demand: req.demand.clone(),
                app: Arc::new(app.clone()),
            },
        );
    }

    fn shape(&self, rec: &JobRecord) -> Option<Arc<Shape>> {
        let key = (rec.id.clone(), rec.attempt);
        if let Some(s) = lock(&self.shapes).get(&key) {
            return s.clone();
        }
        let shape = (|| {
            let job: Job = serde_json::from_value(rec.spec.clone()).ok()?;
            let app =
                build_app(&job, &rec.id, rec.attempt, &rec.demand, &self.settings.app).ok()?;
            let placements = rec
                .demand
                .pods
                .iter()
                .filter(|p| p.count > 0)
                .map(|p| (p.role, placement_of(&app, p.role)))
                .collect();
            Some(Arc::new(Shape {
                namespace: job.namespace.clone(),
                placements,
                need: scoped_need(&app, &rec.demand),
            }))
        })();
        let mut shapes = lock(&self.shapes);
        if shapes.len() > 50_000 {
            shapes.clear();
        }
        shapes.insert(key, shape.clone());
        shape
    }

    async fn get_app(&self, ns: &str, name: &str) -> Result<Option<DynamicObject>, BackendError> {
        self.apps_api(ns)
            .get_opt(name)
            .await
            .map_err(|e| call_error(&format!("reading SparkApplication {ns}/{name}"), &e))
    }

    /// Creates the SparkApplication `app` (named `name` in `ns`) of job `job_id`. A 409 for an
    /// application of the same job is the same run (created by a call whose answer was lost); a
    /// quota refusal is `NoRoom`.
    async fn create_app(
        &self,
        app: &Value,
        ns: &str,
        name: &str,
        job_id: &str,
    ) -> Result<Submitted, BackendError> {
        let backend_ref = format!("{ns}/{name}");
        let obj: DynamicObject = serde_json::from_value(app.clone())
            .map_err(|e| BackendError::Config(format!("building the SparkApplication: {e}")))?;
        let pp = PostParams {
            dry_run: false,
            field_manager: Some("sluice".into()),
        };
        match self.apps_api(ns).create(&pp, &obj).await {
            Ok(_) => Ok(Submitted {
                backend_ref,
                already_existed: false,
            }),
            Err(e) if api_code(&e) == Some(409) => match self.get_app(ns, name).await? {
                Some(o) if label(&o.metadata, JOB_ID_LABEL) == Some(job_id) => Ok(Submitted {
                    backend_ref,
                    already_existed: true,
                }),
                Some(_) => Err(BackendError::Rejected(format!(
                    "a SparkApplication {backend_ref} exists and belongs to another job"
                ))),
                None => Err(BackendError::Unavailable(format!(
                    "SparkApplication {backend_ref}: create said it exists, read says it does not"
                ))),
            },
            Err(e) if is_quota_refusal(&e) => Err(BackendError::NoRoom(api_message(&e))),
            Err(e) => Err(call_error(
                &format!("creating SparkApplication {backend_ref}"),
                &e,
            )),
        }
    }

    /// Dry-run creates of the driver and one executor pod: admission (quota, LimitRange,
    /// policy webhooks) answers without anything being created.
    async fn dry_run(&self, app: &Value, req: &SubmitRequest) -> Result<(), BackendError> {
        let ns = &req.job.namespace;
        let api = self.pods_api(ns);
        let pp = PostParams {
            dry_run: true,
            field_manager: Some("sluice".into()),
        };
        for group in req.demand.pods.iter().filter(|g| g.count > 0) {
            let pod = objects::role_pod(
                app,
                group.role,
                group.each(),
                &req.job_id,
                req.attempt,
                PodKind::DryRun,
            );
            if let Err(e) = api.create(&pp, &pod).await {
                let what = format!("dry run of the {} pod", group.role);
                if is_quota_refusal(&e) {
                    return Err(BackendError::NoRoom(format!("{what}: {}", api_message(&e))));
                }
                return Err(call_error(&what, &e));
            }
        }
        Ok(())
    }

    /// The placeholder step: `Ok` with the placeholders when every one is scheduled (the caller
    /// creates the application, then deletes them); `NotYet` while they wait; `NoRoom` when
    /// they timed out (released). The timeout counts from the oldest placeholder's
    /// `creationTimestamp`, so it holds across restarts of sluice (placeholders of the same job
    /// attempt left by an earlier run are adopted).
    async fn placeholders(
        &self,
        app: &Value,
        req: &SubmitRequest,
    ) -> Result<Vec<Pod>, BackendError> {
        let ns = &req.job.namespace;
        let api = self.pods_api(ns);
        let attempt = req.attempt.to_string();
        let lp = ListParams::default().labels(&labels_selector(&[
            (JOB_ID_LABEL, &req.job_id),
            (ATTEMPT_LABEL, &attempt),
            (PLACEHOLDER_LABEL, "true"),
        ]));
        let existing = api
            .list(&lp)
            .await
            .map_err(|e| call_error("listing placeholder pods", &e))?
            .items;
        let existing: Vec<Pod> = existing
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let want = usize::try_from(req.demand.pod_count()).unwrap_or(usize::MAX);
        if existing.len() != want {
            self.delete_pods(&api, &existing).await;
            let pods = job_pods(
                app,
                &req.demand,
                &req.job_id,
                req.attempt,
                PodKind::Placeholder {
                    image: &self.settings.placeholder_image,
                    priority_class: self.settings.placeholder_priority_class.as_deref(),
                },
            );
            for p in &pods {
                api.create(&PostParams::default(), p).await.map_err(|e| {
                    if is_quota_refusal(&e) {
                        BackendError::NoRoom(format!("placeholder pod: {}", api_message(&e)))
                    } else {
                        call_error("creating a placeholder pod", &e)
                    }
                })?;
            }
            return Err(BackendError::NotYet(format!(
                "{want} placeholder pods created; waiting for them to be scheduled"
            )));
        }
        let scheduled = existing.iter().filter(|p| pod_node(p).is_some()).count();
        if scheduled == want {
            return Ok(existing);
        }
        let oldest = existing
            .iter()
            .filter_map(|p| created_at(&p.metadata))
            .min();
        let timeout = self.settings.placeholder_timeout;
        if oldest.is_some_and(|t| elapsed_ms(t, Timestamp::now()) >= timeout.as_millis()) {
            self.delete_pods(&api, &existing).await;
            return Err(BackendError::NoRoom(format!(
                "placeholders: {} of {want} pods not scheduled after {} s; released",
                want - scheduled,
                timeout.as_secs()
            )));
        }
        Err(BackendError::NotYet(format!(
            "waiting for placeholders: {scheduled} of {want} scheduled"
        )))
    }

    async fn delete_pods(&self, api: &Api<Pod>, pods: &[Pod]) {
        for p in pods {
            if let Some(name) = p.metadata.name.as_deref()
                && let Err(e) = api
                    .delete(name, &DeleteParams::default().grace_period(0))
                    .await
                && api_code(&e) != Some(404)
            {
                tracing::warn!(pod = %name, "deleting placeholder: {e}");
            }
        }
    }

    async fn delete_placeholders_of(&self, ns: &str, job_id: &str) {
        let api = self.pods_api(ns);
        let lp = ListParams::default().labels(&labels_selector(&[
            (JOB_ID_LABEL, job_id),
            (PLACEHOLDER_LABEL, "true"),
        ]));
        if let Ok(list) = api.list(&lp).await {
            self.delete_pods(&api, &list.items).await;
        }
    }

    /// The deadlock watchdog: `Some(reason)` when the job's driver has been running while none
    /// of its executors did for longer than the configured time. "Since when" comes from the
    /// cluster, so that a restarted sluice keeps counting: the later of the time the driver
    /// started running ([`running_since`]) and the creation of the oldest executor pod still
    /// pending (if any).
    fn watchdog(&self, run: &RunRef, demand: &Demand) -> Option<String> {
        let limit = self.settings.watchdog?;
        let expected = demand.role(Role::Executor).map(|p| p.count).unwrap_or(0);
        let attempt = run.attempt.to_string();
        let pods: Vec<Arc<Pod>> = self
            .job_pods_cached(&run.job_id)
            .into_iter()
            .filter(|p| label(&p.metadata, ATTEMPT_LABEL) == Some(attempt.as_str()))
            .filter(|p| label(&p.metadata, PLACEHOLDER_LABEL).is_none())
            .collect();
        let driver = pods
            .iter()
            .find(|p| pod_role(p) == Some(Role::Driver) && pod_phase(p) == "Running")?;
        let executors: Vec<&Arc<Pod>> = pods
            .iter()
            .filter(|p| pod_role(p) == Some(Role::Executor) && !pod_terminal(p))
            .collect();
        let running = executors
            .iter()
            .filter(|p| pod_phase(p) == "Running")
            .count();
        if expected == 0 || running > 0 {
            return None;
        }
        let driver_since = running_since(driver)?;
        let pending_since = executors
            .iter()
            .filter_map(|p| created_at(&p.metadata))
            .min();
        let since = pending_since.map_or(driver_since, |p| p.max(driver_since));
        if elapsed_ms(since, Timestamp::now()) < limit.as_millis() {
            return None;
        }
        let pending = executors.len() - running;
        Some(format!(
            "deadlock watchdog: the driver ran for more than {} s with none of its {expected} \
             executors running ({pending} pending, {} not created); killed and requeued",
            limit.as_secs(),
            (expected as usize).saturating_sub(executors.len())
        ))
    }

    fn forget(&self, job_id: &str) {
        lock(&self.inflight).remove(job_id);
    }

    /// Resolves a run to (namespace, application name).
    fn locate(&self, run: &RunRef) -> Option<(String, String)> {
        if let Some((ns, name)) = run.backend_ref.as_deref().and_then(split_ref) {
            return Some((ns.to_string(), name.to_string()));
        }
        let attempt = run.attempt.to_string();
        self.cached_apps().into_iter().find_map(|a| {
            (label(&a.metadata, JOB_ID_LABEL) == Some(run.job_id.as_str())
                && label(&a.metadata, ATTEMPT_LABEL) == Some(attempt.as_str()))
            .then(|| {
                (
                    a.metadata.namespace.clone().unwrap_or_default(),
                    a.metadata.name.clone().unwrap_or_default(),
                )
            })
        })
    }
}

fn app_demand(a: &DynamicObject) -> Option<Demand> {
    let annotations = serde_json::json!({
        "metadata": {"annotations": a.metadata.annotations.clone().unwrap_or_default()}
    });
    demand_of(&annotations)
}

/// Pods of a job that exist (bound or not) and have not ended, by role: what quota counts.
fn created_pods_by_role<'a>(pods: impl Iterator<Item = &'a Arc<Pod>>) -> BTreeMap<Role, u32> {
    let mut out = BTreeMap::new();
    for p in pods.filter(|p| !pod_terminal(p)) {
        if let Some(r) = pod_role(p) {
            *out.entry(r).or_insert(0) += 1;
        }
    }
    out
}

impl KubeBackend {
    /// Keeps the operator's state and message in the job's timeline: one note per change.
    fn note_operator_state(&self, run: &RunRef, st: &AppState, last: bool) {
        let now = st.describe();
        let mut seen = lock(&self.operator_seen);
        let changed = seen.get(&run.job_id) != Some(&now);
        if last {
            seen.remove(&run.job_id);
        } else {
            seen.insert(run.job_id.clone(), now.clone());
        }
        drop(seen);
        if changed {
            lock(&self.notes).push(RunNote {
                job_id: run.job_id.clone(),
                attempt: run.attempt,
                message: format!("operator: {now}"),
            });
        }
    }
}

#[async_trait::async_trait]
impl Backend for KubeBackend {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn take_notes(&self) -> Vec<RunNote> {
        std::mem::take(&mut *lock(&self.notes))
    }

    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        if let Err(e) = self.health.check() {
            tracing::debug!("kubernetes backend not available: {e}");
            let last = lock(&self.view).nodes.clone();
            let allocatable = last
                .values()
                .filter(|n| n.schedulable())
                .map(|n| {
                    NodeCapacity::new(
                        n.name.clone(),
                        n.allocatable.cpu_milli,
                        n.allocatable.mem_mib,
                        n.max_pods,
                    )
                })
                .collect();
            return Ok(CapacityReport {
                snapshot: Snapshot {
                    available: false,
                    nodes: Vec::new(),
                    allocatable,
                },
                visible: BTreeSet::new(),
            });
        }
        let mut nodes: Vec<NodeInfo> = self.nodes.state().iter().map(|n| node_info(n)).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let pods = self.pods.state();
        let usages: Vec<_> = pods.iter().map(|p| pod_usage(p)).collect();
        let (free, allocatable) = node_free(&nodes, &usages);
        let mut by_job: HashMap<&str, Vec<&Arc<Pod>>> = HashMap::new();
        for p in &pods {
            if let Some(id) = label(&p.metadata, JOB_ID_LABEL) {
                by_job.entry(id).or_default().push(p);
            }
        }
        let mut fitter = Fitter::new(&free);
        let mut visible = BTreeSet::new();
        let mut reserved: BTreeMap<String, ScopedNeed> = BTreeMap::new();
        for (id, known) in self.known_jobs() {
            let job_pods = by_job.get(id.as_str()).cloned().unwrap_or_default();
            let driver_ended = job_pods
                .iter()
                .any(|p| pod_role(p) == Some(Role::Driver) && pod_terminal(p));
            if known.holds && !driver_ended {
                let demand = &known.demand;
                let missing =
                    remaining(demand, &bound_pods_by_role(job_pods.iter().map(|p| &***p)));
                fitter.reserve(&missing);
                let uncreated = remaining(demand, &created_pods_by_role(job_pods.iter().copied()));
                let e = reserved.entry(known.namespace).or_default();
                *e = add_scoped_needs(e, &scoped_need(known.app.value(), &uncreated));
            }
            visible.insert(id);
        }
        let quotas: BTreeMap<String, Vec<Quota>> = self
            .settings
            .namespaces
            .iter()
            .map(|ns| (ns.clone(), self.quotas_of(ns)))
            .filter(|(_, q)| !q.is_empty())
            .collect();
        *lock(&self.view) = View {
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            quotas,
            reserved,
        };
        Ok(CapacityReport {
            snapshot: Snapshot {
                available: true,
                nodes: fitter.nodes().to_vec(),
                allocatable,
            },
            visible,
        })
    }

    fn constraints(&self, job: &JobRecord, nodes: &[NodeCapacity]) -> Option<Constraints> {
        if !self.managed(&job.namespace) {
            return Some(Constraints {
                eligible: Eligible::new(),
                blocked: Some(format!(
                    "namespace {} is not managed by sluice (backend.namespaces = [{}])",
                    job.namespace,
                    self.settings.namespaces.join(", ")
                )),
            });
        }
        let shape = self.shape(job)?;
        let view = lock(&self.view);
        let mut eligible = Eligible::new();
        for (role, placement) in &shape.placements {
            let mut why = Vec::new();
            let flags: Vec<bool> = nodes
                .iter()
                .map(|n| match view.nodes.get(&n.name) {
                    Some(info) => match placement.allows(info) {
                        Ok(()) => true,
                        Err(e) => {
                            why.push(e);
                            false
                        }
                    },
                    None => false,
                })
                .collect();
            if !nodes.is_empty() && !flags.iter().any(|f| *f) {
                why.truncate(3);
                return Some(Constraints {
                    eligible: Eligible::new(),
                    blocked: Some(format!("no node accepts the {role}: {}", why.join("; "))),
                });
            }
            if flags.iter().any(|f| !f) {
                eligible.insert(*role, flags);
            }
        }
        let none = ScopedNeed::new();
        if let Some(qs) = view.quotas.get(&shape.namespace)
            && let Err(why) = quota_check(
                qs,
                view.reserved.get(&shape.namespace).unwrap_or(&none),
                &shape.need,
            )
        {
            return Some(Constraints {
                eligible,
                blocked: Some(format!("namespace quota: {why}")),
            });
        }
        (!eligible.is_empty()).then_some(Constraints {
            eligible,
            blocked: None,
        })
    }

    fn never_runs(&self, job: &Job, demand: &Demand) -> Option<String> {
        // Configuration, known without the cluster: a namespace sluice does not manage.
        if !self.managed(&job.namespace) {
            return Some(format!(
                "namespace {} is not managed by sluice (backend.namespaces = [{}])",
                job.namespace,
                self.settings.namespaces.join(", ")
            ));
        }
        // Not synced yet (or a watch failing): nothing is known, nothing is refused.
        if self.health.check().is_err() {
            return None;
        }
        let nodes: Vec<NodeInfo> = self.nodes.state().iter().map(|n| node_info(n)).collect();
        if nodes.is_empty() {
            return None;
        }
        let app = build_app(job, NEVER_RUNS_ID, 1, demand, &self.settings.app).ok()?;
        for group in demand.pods.iter().filter(|g| g.count > 0) {
            let placement = placement_of(&app, group.role);
            if let Err(why) =
                never_placed(&group.role.to_string(), &placement, group.each(), &nodes)
            {
                return Some(why);
            }
        }
        quota_hard_check(&self.quotas_of(&job.namespace), &scoped_need(&app, demand))
            .err()
            .map(|why| format!("namespace quota: {why}"))
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        let ns = req.job.namespace.clone();
        if !self.managed(&ns) {
            return Err(BackendError::Rejected(format!(
                "namespace {ns} is not managed by sluice (backend.namespaces = [{}])",
                self.settings.namespaces.join(", ")
            )));
        }
        let app = build_app(
            &req.job,
            &req.job_id,
            req.attempt,
            &req.demand,
            &self.settings.app,
        )?;
        let name = app
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let backend_ref = format!("{ns}/{name}");
        let ours =
            |o: &DynamicObject| label(&o.metadata, JOB_ID_LABEL) == Some(req.job_id.as_str());
        // Already there (a crash after the create): never a second run, nor placeholders for it;
        // those a crash left between the create and their deletion go now.
        if let Some(existing) = self.get_app(&ns, &name).await? {
            if !ours(&existing) {
                return Err(BackendError::Rejected(format!(
                    "a SparkApplication {backend_ref} exists and belongs to another job"
                )));
            }
            if self.settings.mode == CapacityMode::Placeholders {
                self.delete_placeholders_of(&ns, &req.job_id).await;
            }
            return Ok(Submitted {
                backend_ref,
                already_existed: true,
            });
        }
        let placeholders = match self.settings.mode {
            CapacityMode::Snapshot => None,
            CapacityMode::DryRun => {
                self.dry_run(&app, req).await?;
                None
            }
            CapacityMode::Placeholders => {
                self.track(req, &app);
                match self.placeholders(&app, req).await {
                    Ok(pods) => Some(pods),
                    Err(e) => {
                        if !matches!(e, BackendError::NotYet(_)) {
                            lock(&self.inflight).remove(&req.job_id);
                        }
                        return Err(e);
                    }
                }
            }
        };
        // With placeholders, the application is created while they still hold the room; they
        // are deleted after, so that nothing can take the room in between (the driver, of
        // higher priority, may preempt them meanwhile).
        let result = self.create_app(&app, &ns, &name, &req.job_id).await;
        match &result {
            Ok(_) => self.track(req, &app),
            // The job stays admitted and submit is called again: placeholders are kept for it.
            Err(BackendError::Unavailable(_)) if placeholders.is_some() => {}
            Err(_) => {
                lock(&self.inflight).remove(&req.job_id);
            }
        }
        if let Some(pods) = placeholders
            && !matches!(result, Err(BackendError::Unavailable(_)))
        {
            self.delete_pods(&self.pods_api(&ns), &pods).await;
        }
        result
    }

    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        let not_found = || BackendError::NotFound {
            job_id: run.job_id.clone(),
            attempt: run.attempt,
        };
        let Some((ns, name)) = self.locate(run) else {
            self.forget(&run.job_id);
            return Err(not_found());
        };
        let app = match self.cached_app(&ns, &name) {
            Some(a) => (*a).clone(),
            None => match self.get_app(&ns, &name).await? {
                Some(a) => a,
                None => {
                    self.forget(&run.job_id);
                    return Err(not_found());
                }
            },
        };
        let st = AppState::of(&app.data);
        let status = map_state(&st);
        self.note_operator_state(run, &st, status.is_final());
        match &status {
            RunStatus::Succeeded | RunStatus::Failed { .. } => self.forget(&run.job_id),
            RunStatus::Running => {
                if let Some(demand) = app_demand(&app)
                    && let Some(reason) = self.watchdog(run, &demand)
                {
                    self.cancel(run).await?;
                    return Ok(RunStatus::Requeue { message: reason });
                }
            }
            _ => {}
        }
        Ok(status)
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        let located = self.locate(run);
        let ns = located.as_ref().map(|(ns, _)| ns.clone()).or_else(|| {
            lock(&self.inflight)
                .get(&run.job_id)
                .map(|f| f.namespace.clone())
        });
        if let Some((ns, name)) = &located {
            match self
                .apps_api(ns)
                .delete(name, &DeleteParams::background())
                .await
            {
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => {}
                Err(e) => {
                    return Err(call_error(
                        &format!("deleting SparkApplication {ns}/{name}"),
                        &e,
                    ));
                }
            }
        }
        if let Some(ns) = ns {
            self.delete_placeholders_of(&ns, &run.job_id).await;
        }
        self.forget(&run.job_id);
        Ok(())
    }

    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let Some((ns, name)) = self.locate(run) else {
            return Err(BackendError::NotFound {
                job_id: run.job_id.clone(),
                attempt: run.attempt,
            });
        };
        let app = self.get_app(&ns, &name).await?;
        let ended = app
            .as_ref()
            .is_none_or(|a| AppState::of(&a.data).is_terminal());
        let driver = app
            .as_ref()
            .and_then(|a| a.data.pointer("/status/driverInfo/podName"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("{name}-driver"));
        // One byte more than asked for tells whether the log goes on.
        let limit = offset.saturating_add(max_bytes as u64).saturating_add(1);
        let lp = LogParams {
            limit_bytes: Some(i64::try_from(limit).unwrap_or(i64::MAX)),
            ..Default::default()
        };
        let text = match self.pods_api(&ns).logs(&driver, &lp).await {
            Ok(t) => t,
            Err(e) if matches!(api_code(&e), Some(404 | 400)) => String::new(),
            Err(e) => return Err(call_error(&format!("reading the log of {ns}/{driver}"), &e)),
        };
        let bytes = text.as_bytes();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start.saturating_add(max_bytes).min(bytes.len());
        Ok(LogChunk {
            data: String::from_utf8_lossy(&bytes[start..end]).into_owned(),
            next_offset: end as u64,
            complete: ended && end == bytes.len(),
        })
    }
}
