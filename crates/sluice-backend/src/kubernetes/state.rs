//! What the Kubernetes backend holds: the watch caches, the submissions under way, the shapes
//! of queued jobs and the last capacity view; and reads of them (no API calls).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::Store;
use serde_json::Value;
use sluice_core::job::{Demand, Role};
use sluice_core::pods::{NodeInfo, PodPlacement, Quota, ScopedNeed};
use sluice_core::record::JobRecord;

use super::app::{ATTEMPT_LABEL, AppState, JOB_ID_LABEL, build_app, demand_of};
use super::objects::{label, placement_of, pod_role, pod_terminal, quota_info, scoped_need};
use super::settings::{KubeSettings, spark_application_resource};
use crate::fsutil::lock;
use crate::{RunNote, RunRef, SubmitRequest};

/// Health of the watches: per watch, `None` when its last event was good, else the error.
#[derive(Debug, Default)]
pub(super) struct Health {
    pub(super) watches: Mutex<BTreeMap<String, WatchHealth>>,
}

#[derive(Debug, Default, Clone)]
pub(super) struct WatchHealth {
    pub(super) listed: bool,
    pub(super) error: Option<String>,
    pub(super) lists: u64,
}

impl Health {
    pub(super) fn update(&self, name: &str, f: impl FnOnce(&mut WatchHealth)) {
        let mut w = lock(&self.watches);
        f(w.entry(name.to_string()).or_default());
    }

    /// `Err` names the first watch that has not listed yet or whose last event was an error.
    pub(super) fn check(&self) -> Result<(), String> {
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

/// A job this backend submitted (or is submitting), until its application shows up in the
/// watch or the run ends.
#[derive(Debug, Clone)]
pub(super) struct Inflight {
    pub(super) namespace: String,
    pub(super) attempt: u32,
    pub(super) demand: Demand,
    /// The application it was (or is being) submitted as, for the scopes of its pods.
    pub(super) app: Arc<Value>,
}

/// Jobs being submitted or submitted, by job id (shared with the placeholder sweep).
pub(super) type InflightMap = Arc<Mutex<HashMap<String, Inflight>>>;

/// Where the spec of a job known to the backend comes from.
pub(super) enum AppSource {
    /// The watch cache of SparkApplications.
    Cached(Arc<DynamicObject>),
    /// A submission of this process whose application is not in the cache (yet).
    Inflight(Arc<Value>),
}

impl AppSource {
    /// The object, as far as `spec` goes.
    pub(super) fn value(&self) -> &Value {
        match self {
            AppSource::Cached(a) => &a.data,
            AppSource::Inflight(v) => v,
        }
    }
}

/// A job the backend knows: its namespace, demand, whether it still holds room, and its
/// application.
pub(super) struct Known {
    pub(super) namespace: String,
    pub(super) demand: Demand,
    pub(super) holds: bool,
    pub(super) app: AppSource,
}

/// What one job asks of the cluster, computed once per job attempt for [`Backend::constraints`].
#[derive(Debug, Clone)]
pub(super) struct Shape {
    pub(super) namespace: String,
    pub(super) placements: Vec<(Role, PodPlacement)>,
    pub(super) need: ScopedNeed,
}

/// A cached [`Shape`], `None` for a job that is not a Spark job (or no longer decodes).
pub(super) type ShapeEntry = Option<Arc<Shape>>;

/// What the last capacity call saw, for [`Backend::constraints`].
#[derive(Debug, Clone, Default)]
pub(super) struct View {
    pub(super) nodes: BTreeMap<String, NodeInfo>,
    pub(super) quotas: BTreeMap<String, Vec<Quota>>,
    /// Per namespace: quota use of pods of admitted jobs that do not exist yet.
    pub(super) reserved: BTreeMap<String, ScopedNeed>,
}

/// The Kubernetes backend.
pub struct KubeBackend {
    pub(super) client: Client,
    pub(super) settings: KubeSettings,
    pub(super) nodes: Store<Node>,
    pub(super) pods: Store<Pod>,
    pub(super) quotas: Vec<Store<ResourceQuota>>,
    pub(super) apps: Vec<Store<DynamicObject>>,
    pub(super) health: Arc<Health>,
    pub(super) inflight: InflightMap,
    pub(super) shapes: Mutex<HashMap<(String, u32), ShapeEntry>>,
    pub(super) view: Mutex<View>,
    pub(super) tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The operator's state and message last seen per job, to note each change once.
    pub(super) operator_seen: Mutex<HashMap<String, String>>,
    /// Notes for the jobs' timelines, until `take_notes` hands them over.
    pub(super) notes: Mutex<Vec<RunNote>>,
    /// Kubernetes Events about the applications sluice creates and deletes.
    pub(super) events: super::events::Events,
}

impl Drop for KubeBackend {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Milliseconds from `since` to `now` (0 when `since` is later: clocks differ).
pub(super) fn elapsed_ms(since: Timestamp, now: Timestamp) -> u128 {
    u128::try_from(now.as_millisecond().saturating_sub(since.as_millisecond())).unwrap_or(0)
}

pub(super) fn split_ref(r: &str) -> Option<(&str, &str)> {
    r.split_once('/')
}

pub(super) fn labels_selector(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl KubeBackend {
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

    pub(super) fn managed(&self, ns: &str) -> bool {
        self.settings.namespaces.iter().any(|n| n == ns)
    }

    pub(super) fn apps_api(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &spark_application_resource())
    }

    pub(super) fn pods_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Every SparkApplication of sluice in the watch caches.
    pub(super) fn cached_apps(&self) -> Vec<Arc<DynamicObject>> {
        self.apps.iter().flat_map(|s| s.state()).collect()
    }

    pub(super) fn cached_app(&self, ns: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.cached_apps().into_iter().find(|a| {
            a.metadata.namespace.as_deref() == Some(ns) && a.metadata.name.as_deref() == Some(name)
        })
    }

    /// Pods of one job (any attempt), from the watch cache.
    pub(super) fn job_pods_cached(&self, job_id: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| label(&p.metadata, JOB_ID_LABEL) == Some(job_id))
            .collect()
    }

    /// The jobs the backend knows, with their demand and whether they still hold room.
    pub(super) fn known_jobs(&self) -> BTreeMap<String, Known> {
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
    pub(super) fn quotas_of(&self, ns: &str) -> Vec<Quota> {
        self.quotas
            .iter()
            .flat_map(|s| s.state())
            .filter(|rq| rq.metadata.namespace.as_deref() == Some(ns))
            .filter_map(|rq| quota_info(&rq))
            .collect()
    }

    pub(super) fn track(&self, req: &SubmitRequest, app: &Value) {
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

    pub(super) fn shape(&self, rec: &JobRecord) -> Option<Arc<Shape>> {
        let key = (rec.id.clone(), rec.attempt);
        if let Some(s) = lock(&self.shapes).get(&key) {
            return s.clone();
        }
        let shape = (|| {
            let job = rec.job().ok()?;
            let app = build_app(job, &rec.id, rec.attempt, &rec.demand, &self.settings.app).ok()?;
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

    pub(super) fn forget(&self, job_id: &str) {
        lock(&self.inflight).remove(job_id);
    }

    /// Resolves a run to (namespace, application name).
    pub(super) fn locate(&self, run: &RunRef) -> Option<(String, String)> {
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

    /// Keeps the operator's state and message in the job's timeline: one note per change.
    pub(super) fn note_operator_state(&self, run: &RunRef, st: &AppState, last: bool) {
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

pub(super) fn app_demand(a: &DynamicObject) -> Option<Demand> {
    let annotations = serde_json::json!({
        "metadata": {"annotations": a.metadata.annotations.clone().unwrap_or_default()}
    });
    demand_of(&annotations)
}

/// Pods of a job that exist (bound or not) and have not ended, by role: what quota counts.
pub(super) fn created_pods_by_role<'a>(
    pods: impl Iterator<Item = &'a Arc<Pod>>,
) -> BTreeMap<Role, u32> {
    let mut out = BTreeMap::new();
    for p in pods.filter(|p| !pod_terminal(p)) {
        if let Some(r) = pod_role(p) {
            *out.entry(r).or_insert(0) += 1;
        }
    }
    out
}
