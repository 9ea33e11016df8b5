//! What a run on Kubernetes used: its application's event log in the shared event-log
//! directory (`event_log_dir`, read at `event_log_mount`), found by the application id the
//! operator reports in `status.sparkApplicationId`.

use serde_json::Value;
use sluice_core::cost::Measured;

use super::state::KubeBackend;
use crate::{BackendError, RunRef};

/// The application id the operator reports on a SparkApplication.
pub fn spark_application_id(app: &Value) -> Option<&str> {
    app.pointer("/status/sparkApplicationId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A conf value of the application, as a string (the operator's `sparkConf` is a string map,
/// but a user's YAML may carry a boolean).
fn conf<'a>(app: &'a Value, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    match app.pointer("/spec/sparkConf")?.get(key)? {
        Value::String(s) => Some(s.as_str().into()),
        other => Some(other.to_string().into()),
    }
}

impl KubeBackend {
    /// [`crate::Backend::usage`]: `Ok(None)` without a shared event-log location; otherwise the
    /// figures of the run's log, or [`BackendError::Unmeasured`] saying why there are none.
    pub(super) async fn run_usage(
        &self,
        run: &RunRef,
        end_ms: i64,
    ) -> Result<Option<Measured>, BackendError> {
        let Some(share) = &self.settings.app.event_log else {
            return Ok(None);
        };
        let Some((ns, name)) = self.locate(run) else {
            return Err(BackendError::Unmeasured(format!(
                "the SparkApplication of job {} (attempt {}) is not known",
                run.job_id, run.attempt
            )));
        };
        let app = match self.cached_app(&ns, &name) {
            Some(a) => Some((*a).clone()),
            None => self.get_app(&ns, &name).await?,
        };
        let Some(app) = app else {
            return Err(BackendError::Unmeasured(format!(
                "SparkApplication {ns}/{name} is gone, with the id of its Spark application"
            )));
        };
        if conf(&app.data, "spark.eventLog.enabled").as_deref() == Some("false") {
            return Err(BackendError::Unmeasured(format!(
                "SparkApplication {ns}/{name} turns its event log off (spark.eventLog.enabled)"
            )));
        }
        if let Some(dir) = conf(&app.data, "spark.eventLog.dir")
            && dir.trim_end_matches('/') != share.dir.trim_end_matches('/')
        {
            return Err(BackendError::Unmeasured(format!(
                "SparkApplication {ns}/{name} writes its event log to its own \
                 spark.eventLog.dir ({dir}), not to {}",
                share.dir
            )));
        }
        let Some(app_id) = spark_application_id(&app.data) else {
            return Err(BackendError::Unmeasured(format!(
                "SparkApplication {ns}/{name} reports no status.sparkApplicationId (its driver \
                 never started)"
            )));
        };
        share.measure_async(app_id, end_ms).await.map(Some)
    }
}
