//! The deadlock watchdog: a driver running while none of its executors does.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use sluice_core::job::{Demand, Role};

use super::app::{ATTEMPT_LABEL, PLACEHOLDER_LABEL};
use super::objects::{created_at, label, pod_phase, pod_role, pod_terminal, running_since};
use super::state::{KubeBackend, elapsed_ms};
use crate::RunRef;

impl KubeBackend {
    /// The deadlock watchdog: `Some(reason)` when the job's driver has been running while none
    /// of its executors did for longer than the configured time. "Since when" comes from the
    /// cluster, so that a restarted sluice keeps counting: the later of the time the driver
    /// started running ([`running_since`]) and the creation of the oldest executor pod still
    /// pending (if any).
    pub(super) fn watchdog(&self, run: &RunRef, demand: &Demand) -> Option<String> {
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
}
