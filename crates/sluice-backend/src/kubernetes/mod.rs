//! Kubernetes with the Spark Operator: jobs run as `SparkApplication` resources
//! (`sparkoperator.k8s.io/v1beta2`), admitted only when the cluster can hold the driver and
//! every executor.
//!
//! - [`app`]: the SparkApplication of a job attempt (deterministic name, labels), and the
//!   mapping of the operator's `applicationState` to a [`RunStatus`].
//! - [`objects`]: Kubernetes objects to and from the plain structs of [`sluice_core::pods`];
//!   dry-run and placeholder pods.
//! - [`render`]: the objects sluice would create for a job, as YAML, offline; and the Role and
//!   RoleBinding each managed namespace needs (`sluice render rbac`), from [`PERMISSIONS`].
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
mod calls;
pub mod events;
pub mod objects;
mod placeholders;
pub mod render;
mod settings;
mod state;
mod usage;
mod watch;
mod watchdog;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, LogParams};
use serde_json::Value;
use sluice_core::capacity::{Eligible, Fitter, NodeCapacity, Snapshot};
use sluice_core::cycle::Constraints;
use sluice_core::job::{Demand, Role};
use sluice_core::pods::{
    NodeInfo, Quota, ScopedNeed, add_scoped_needs, never_placed, node_free, quota_check,
    quota_hard_check,
};
use sluice_core::record::JobRecord;
use sluice_core::spec::Job;

use self::app::{AppState, JOB_ID_LABEL, app_name, build_app, map_state};
use self::calls::{api_code, call_error};
use self::objects::{
    bound_pods_by_role, label, node_info, placement_of, pod_role, pod_terminal, pod_usage,
    remaining, scoped_need,
};
pub use self::settings::{
    CapacityMode, Credentials, KubeSettings, PERMISSIONS, client_for, client_from_config,
    install_crypto_provider, spark_application_resource,
};
pub use self::state::KubeBackend;
use self::state::{View, app_demand, created_pods_by_role};
use crate::fsutil::lock;
use crate::{
    Backend, BackendError, CapacityReport, Held, LogChunk, RunNote, RunRef, RunStatus,
    SubmitRequest, Submitted,
};

/// The job id [`Backend::never_runs`] builds a job's application with (only its placement and
/// pods are read).
const NEVER_RUNS_ID: &str = "00000000000000000000000000";

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

    async fn placements(
        &self,
    ) -> std::collections::BTreeMap<String, Vec<(String, sluice_core::job::Resources)>> {
        let mut out: std::collections::BTreeMap<
            String,
            Vec<(String, sluice_core::job::Resources)>,
        > = std::collections::BTreeMap::new();
        for p in self.pods.state() {
            let Some(id) = label(&p.metadata, JOB_ID_LABEL) else {
                continue;
            };
            let usage = pod_usage(&p);
            if let (Some(node), false) = (usage.node, usage.terminal) {
                out.entry(id.to_string())
                    .or_default()
                    .push((node, usage.request));
            }
        }
        out
    }

    fn has_constraints(&self) -> bool {
        true
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
        let result = self.submit_app(req).await;
        if let Err(BackendError::NoRoom(why)) = &result {
            // The server sends the job back to its queue.
            self.events.on_app(
                &req.job.namespace,
                &app_name(&req.job.name, &req.job_id, req.attempt),
                None,
                events::Reason::Requeued,
                format!(
                    "sluice sent job {} (attempt {}) back to its queue: the cluster turned it \
                     away for want of room: {why}",
                    req.job_id, req.attempt
                ),
            );
        }
        result
    }

    fn notes_waiting(&self) -> bool {
        true
    }

    async fn note_waiting(&self, held: &[Held]) {
        for h in held {
            // sluice may write events only where it manages applications.
            if !self.managed(&h.namespace) {
                continue;
            }
            let app = app_name(&h.name, &h.job_id, h.attempt);
            if let Err(e) = self
                .events
                .waiting(&h.namespace, &app, &waiting_note(h))
                .await
            {
                tracing::debug!(job = %h.job_id, "Waiting event on SparkApplication {}/{app} not written: {e}", h.namespace);
            }
        }
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
                    self.delete_run(run, Some((events::Reason::DeadlockWatchdog, &reason)))
                        .await?;
                    return Ok(RunStatus::Requeue { message: reason });
                }
            }
            _ => {}
        }
        Ok(status)
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        let note = format!(
            "sluice deleted the application of job {} (attempt {}): cancelled or past its maxRuntime",
            run.job_id, run.attempt
        );
        self.delete_run(run, Some((events::Reason::Cancelled, &note)))
            .await
    }

    /// Preemption: the application is deleted as by [`Backend::cancel`], with a `Preempted`
    /// event (its pods get their own termination grace; `grace` is not used).
    async fn cancel_within(
        &self,
        run: &RunRef,
        _grace: std::time::Duration,
    ) -> Result<(), BackendError> {
        let note = format!(
            "sluice deleted the application of job {} (attempt {}) to make room for a job of \
             higher priority (preempted); the job goes back to its queue",
            run.job_id, run.attempt
        );
        self.delete_run(run, Some((events::Reason::Preempted, &note)))
            .await
    }

    /// From the shared event-log directory (`event_log_dir`), by the application id the
    /// operator reports (`status.sparkApplicationId`); nothing without that setting.
    async fn usage(
        &self,
        run: &RunRef,
        end_ms: i64,
    ) -> Result<Option<sluice_core::cost::Measured>, BackendError> {
        self.run_usage(run, end_ms).await
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

impl KubeBackend {
    /// [`Backend::submit`], but for the `Requeued` event of a refusal for want of room.
    async fn submit_app(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
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
            Ok(sub) => {
                self.track(req, &app);
                if !sub.already_existed {
                    self.events.on_app(
                        &ns,
                        &name,
                        None,
                        events::Reason::Admitted,
                        admitted_note(req, self.settings.mode),
                    );
                }
            }
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
            let why = match &result {
                Ok(_) => "the application was created and holds the room now".to_string(),
                Err(e) => format!("released: the application could not be created: {e}"),
            };
            self.events.on_app(
                &ns,
                &name,
                None,
                events::Reason::PlaceholdersRemoved,
                format!(
                    "sluice deleted the {} placeholder pod(s) of job {} (attempt {}): {why}",
                    pods.len(),
                    req.job_id,
                    req.attempt
                ),
            );
        }
        result
    }
}

/// The message of a held job's `Waiting` event: why it waits, as `describe` says, and where.
fn waiting_note(h: &Held) -> String {
    format!(
        "held by sluice: {}; position {} in the queue of namespace {} (job {}, attempt {})",
        h.reason, h.position, h.namespace, h.job_id, h.attempt
    )
}

/// The message of the `Admitted` event: the job, its attempt and what was fitted.
fn admitted_note(req: &SubmitRequest, mode: CapacityMode) -> String {
    let total = req.demand.total();
    let executors: u32 = req
        .demand
        .pods
        .iter()
        .filter(|p| p.role == Role::Executor)
        .map(|p| p.count)
        .sum();
    let check = match mode {
        CapacityMode::Snapshot => "the cluster's free room per node",
        CapacityMode::DryRun => "free room per node and a dry-run create of its pods",
        CapacityMode::Placeholders => "placeholder pods holding its room until now",
    };
    format!(
        "sluice admitted job {} (attempt {}): its driver and all {executors} executor(s) fit \
         ({} cores, {} MiB in all; checked against {check})",
        req.job_id,
        req.attempt,
        total.cpu_milli as f64 / 1000.0,
        total.mem_mib,
    )
}
