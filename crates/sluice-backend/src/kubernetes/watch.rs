//! The watches (kube-runtime reflectors) on nodes, pods, ResourceQuotas and SparkApplications,
//! and connecting the backend.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use sluice_core::job::Role;

use super::app::{JOB_ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use super::objects::{label, pod_role};
use super::placeholders::sweep_placeholders;
use super::settings::{
    CapacityMode, Credentials, KubeSettings, client_for, install_crypto_provider,
    spark_application_resource,
};
use super::state::{Health, InflightMap, KubeBackend, View};
use crate::BackendError;

pub(super) fn spawn_watch<K>(
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
pub(super) fn slim_pod(p: &mut Pod) {
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
            events: super::events::Events::new(client.clone()),
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
}
