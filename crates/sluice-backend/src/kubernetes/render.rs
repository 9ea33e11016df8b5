//! `sluice render`: the Kubernetes objects sluice would create for a job, as YAML, without
//! contacting a cluster (like `kubectl create --dry-run=client -o yaml`).

use serde_json::Value;
use sluice_core::job::Demand;
use sluice_core::spec::Job;

use super::app::build_app;
use super::objects::{PodKind, job_pods};
use super::{CapacityMode, KubeSettings};
use crate::BackendError;

/// The job id [`render_job`] uses when none is given: the objects of a real submission carry
/// the job's id (a ULID) instead.
pub const RENDER_JOB_ID: &str = "render";

/// The objects sluice creates for one attempt of `job`, in creation order: in `placeholders`
/// mode the placeholder pods (driver first), then the SparkApplication. In `dry-run` mode the
/// driver and executor pods are only sent with `dryRun=All` (never created), so they are not
/// listed.
pub fn render_job(
    job: &Job,
    job_id: &str,
    attempt: u32,
    demand: &Demand,
    settings: &KubeSettings,
) -> Result<Vec<Value>, BackendError> {
    let app = build_app(job, job_id, attempt, demand, &settings.app)?;
    let mut out = Vec::new();
    if settings.mode == CapacityMode::Placeholders {
        for p in job_pods(
            &app,
            demand,
            job_id,
            attempt,
            PodKind::Placeholder {
                image: &settings.placeholder_image,
                priority_class: settings.placeholder_priority_class.as_deref(),
            },
        ) {
            let mut v = serde_json::to_value(&p)
                .map_err(|e| BackendError::Config(format!("encoding a pod: {e}")))?;
            if let Some(m) = v.as_object_mut() {
                m.insert("apiVersion".into(), Value::String("v1".into()));
                m.insert("kind".into(), Value::String("Pod".into()));
            }
            out.push(v);
        }
    }
    out.push(app);
    Ok(out)
}

/// The objects as one YAML stream (documents separated by `---`).
pub fn to_yaml(objects: &[Value]) -> Result<String, BackendError> {
    serde_saphyr::to_string_multiple(objects)
        .map_err(|e| BackendError::Config(format!("writing YAML: {e}")))
}
