//! Placeholder pods: low-priority pods that hold a job's room until all are scheduled, and the
//! sweep of those that belong to no submission any more.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::Value;

use super::app::{ATTEMPT_LABEL, JOB_ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PLACEHOLDER_LABEL};
use super::calls::{api_code, api_message, call_error, is_quota_refusal};
use super::events::Reason;
use super::objects::{PodKind, created_at, job_pods, label, pod_node};
use super::settings::CapacityMode;
use super::state::{InflightMap, KubeBackend, elapsed_ms, labels_selector};
use crate::fsutil::lock;
use crate::{BackendError, SubmitRequest};

/// Deletes the placeholder pods in `namespaces` that belong to no submission under way in
/// `inflight` (same job and attempt) and, with `min_age`, were created longer ago than that.
/// Returns how many were deleted; failures are logged.
pub(super) async fn sweep_placeholders(
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

impl KubeBackend {
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

    /// The placeholder step: `Ok` with the placeholders when every one is scheduled (the caller
    /// creates the application, then deletes them); `NotYet` while they wait; `NoRoom` when
    /// they timed out (released). The timeout counts from the oldest placeholder's
    /// `creationTimestamp`, so it holds across restarts of sluice (placeholders of the same job
    /// attempt left by an earlier run are adopted).
    pub(super) async fn placeholders(
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
            self.events.on_app(
                ns,
                app.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                None,
                Reason::PlaceholdersCreated,
                format!(
                    "sluice created {want} placeholder pod(s) for job {} (attempt {}) to hold its \
                     room; the application is created once all are scheduled (within {} s)",
                    req.job_id,
                    req.attempt,
                    self.settings.placeholder_timeout.as_secs()
                ),
            );
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

    pub(super) async fn delete_pods(&self, api: &Api<Pod>, pods: &[Pod]) {
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

    pub(super) async fn delete_placeholders_of(&self, ns: &str, job_id: &str) {
        let api = self.pods_api(ns);
        let lp = ListParams::default().labels(&labels_selector(&[
            (JOB_ID_LABEL, job_id),
            (PLACEHOLDER_LABEL, "true"),
        ]));
        if let Ok(list) = api.list(&lp).await {
            self.delete_pods(&api, &list.items).await;
        }
    }
}
