//! Calls to the Kubernetes API: reading and creating SparkApplications, dry runs, and what a
//! failed call means for the scheduler.

use kube::api::{DeleteParams, DynamicObject, PostParams};
use serde_json::Value;

use super::app::JOB_ID_LABEL;
use super::events::Reason;
use super::objects::{self, PodKind, label};
use super::state::KubeBackend;
use crate::fsutil::lock;
use crate::{BackendError, RunRef, SubmitRequest, Submitted};

pub(super) fn api_message(e: &kube::Error) -> String {
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

pub(super) fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// A failed API call as a backend error: server errors and transport failures are
/// "unavailable" (try again), the rest are rejections with the API's message.
pub(super) fn call_error(what: &str, e: &kube::Error) -> BackendError {
    match api_code(e) {
        Some(code) if code >= 500 || code == 429 => {
            BackendError::Unavailable(format!("{what}: {}", api_message(e)))
        }
        Some(_) => BackendError::Rejected(format!("{what}: {}", api_message(e))),
        None => BackendError::Unavailable(format!("{what}: {e}")),
    }
}

pub(super) fn is_quota_refusal(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("exceeded quota"))
}

impl KubeBackend {
    /// Deletes a run's SparkApplication and its placeholders and forgets it; `event` is the
    /// event to write on the application (why sluice deleted it).
    pub(super) async fn delete_run(
        &self,
        run: &RunRef,
        event: Option<(Reason, &str)>,
    ) -> Result<(), BackendError> {
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
                Ok(_) => {
                    if let Some((reason, note)) = event {
                        self.events.on_app(ns, name, None, reason, note.to_string());
                    }
                }
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

    pub(super) async fn get_app(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<DynamicObject>, BackendError> {
        self.apps_api(ns)
            .get_opt(name)
            .await
            .map_err(|e| call_error(&format!("reading SparkApplication {ns}/{name}"), &e))
    }

    /// Creates the SparkApplication `app` (named `name` in `ns`) of job `job_id`. A 409 for an
    /// application of the same job is the same run (created by a call whose answer was lost); a
    /// quota refusal is `NoRoom`.
    pub(super) async fn create_app(
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
    pub(super) async fn dry_run(
        &self,
        app: &Value,
        req: &SubmitRequest,
    ) -> Result<(), BackendError> {
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
}
