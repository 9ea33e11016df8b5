//! The Spark standalone backend: runs Spark applications on a standalone cluster (a master and
//! its workers), admitted against the free room the master reports.
//!
//! **Capacity.** [`Backend::capacity`] reads the master's `/json/` (its web UI): one node per
//! ALIVE worker, with the worker's `coresfree` and `memoryfree` (MiB), and no pod slots. A master
//! that cannot be reached, or is not the ALIVE leader (STANDBY, RECOVERING), makes the snapshot
//! `available = false` with the last known allocatable room: nothing new is admitted, queued
//! jobs stay queued, and running jobs are not failed for it (their status is
//! [`BackendError::Unavailable`] in cluster mode, and comes from the driver process in client
//! mode). Everything recovers by itself when the master answers again.
//!
//! **Demand.** Executors need `spark.executor.cores` and `spark.executor.memory` (the heap, no
//! overhead) on one worker; in cluster deploy mode the driver too. See
//! [`sluice_core::sizing::standalone_demand`] for the rules and where Spark states them.
//! [`Backend::demand`] refuses what can never run here: command jobs, Python and R applications
//! in cluster mode (Spark's `spark-submit` refuses them too), a cluster-mode job without a main
//! class, and in client mode a driver larger than the sluice host's driver budget.
//!
//! **Submit.** Every run is capped at what it was admitted for: `spark.executor.cores`,
//! `spark.executor.memory` and `spark.cores.max` = executors x cores come from the admitted
//! demand and override the job's own values.
//! - client mode: a real `spark-submit --master spark://... --deploy-mode client` on this host,
//!   run like a local run (run directory, own process group, output file, re-attached after a
//!   restart; see [`crate::local`]). The driver's memory (heap and overhead, as on Kubernetes)
//!   counts against a budget for drivers on this host (`driver_memory_mib`); CPU is not
//!   counted (a driver mostly waits on its executors).
//! - cluster mode: the master's REST submission API (`POST /v1/submissions/create`), JVM
//!   applications only. The submission id (`driver-...`) is written in the run directory, so a
//!   repeated submit of the same attempt answers with it; a crash between the request and that
//!   write is resolved by adopting the driver the master lists for the same main class since
//!   the attempt began.
//!
//! **Which application is the job's.** A Spark application may rename itself (`pi.py` calls
//! itself "PythonPi"), so names cannot be trusted. The driver logs the id the master gave it
//! ("Connected to Spark cluster with app ID app-..."; Spark's `StandaloneSchedulerBackend`, at
//! INFO): sluice reads it from the driver's output (client mode: the run's `output.log`;
//! cluster mode: the driver's stderr through its worker's web UI, `/log/?driverId=...`), keeps
//! it in the run directory and reports it through [`Backend::app_id`]. A run counts as
//! *visible* (its room is in the master's numbers) once its application is RUNNING with all the
//! cores it was admitted for (`cores` of an active app is the cores granted); until then the
//! server holds its whole demand as a reservation, so that room promised to it is not given to
//! another job. If a driver logs above INFO the id is never learnt and the run stays reserved
//! for its whole life (safe, but its room is counted twice).
//!
//! **Status.** Client mode: the driver process (its exit code once it ends). Cluster mode: the
//! REST status of the driver (`FINISHED` is success; `FAILED`, `KILLED` and `ERROR` are
//! failures; a driver the master does not know is lost, which is what a master restarted
//! without `spark.deploy.recoveryMode` leaves). While the driver runs, the run is "pending"
//! until its application is registered and not WAITING, then "running". **Cancel**: the
//! driver's process group (client) or `POST /v1/submissions/kill/<driver>` (cluster).

mod client;
mod cluster;
mod config;
mod demand;
mod master;
mod rest;
mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use sluice_core::Snapshot;
use sluice_core::job::Demand;
use sluice_core::sizing::DeployMode;
use sluice_core::spec::Job;

pub use self::client::client_argv;
pub use self::cluster::create_request;
pub use self::config::{KIND, StandaloneConfig};
use self::demand::{local_driver_mib, standalone_job_demand};
pub use self::master::{
    AppInfo, DriverInfo, MasterState, RestResponse, WorkerInfo, WorkerLogPiece, app_id_in_log,
    driver_status, parse_worker_log,
};
pub use self::state::StandaloneBackend;
use crate::fsutil::lock;
use crate::{
    Backend, BackendError, CapacityReport, LogChunk, RunNote, RunRef, RunStatus, SubmitRequest,
    Submitted,
};

#[async_trait::async_trait]
impl Backend for StandaloneBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn take_notes(&self) -> Vec<RunNote> {
        std::mem::take(&mut *lock(&self.notes))
    }

    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        let state = match self.fetch_state().await {
            Ok(s) if s.is_alive() => s,
            other => {
                let why = match other {
                    Ok(s) => format!("the master's status is {:?}, not ALIVE", s.status),
                    Err(e) => e.to_string(),
                };
                self.note_reachable(false, &why);
                return Ok(CapacityReport {
                    snapshot: Snapshot {
                        available: false,
                        nodes: Vec::new(),
                        allocatable: lock(&self.last_allocatable).clone(),
                    },
                    visible: BTreeSet::new(),
                });
            }
        };
        self.note_reachable(true, "");
        let mut snapshot = state.snapshot();
        *lock(&self.last_allocatable) = snapshot.allocatable.clone();
        let visible = self.visible(&state).await;
        if self.cfg.deploy_mode == DeployMode::Client {
            let short = *lock(&self.driver_short);
            if let Some(need) = short {
                if self.driver_room().await >= need {
                    *lock(&self.driver_short) = None;
                } else {
                    // No job can start before a client-mode driver ends: show no free room.
                    for n in &mut snapshot.nodes {
                        n.cpu_milli = 0;
                        n.mem_mib = 0;
                    }
                }
            }
        }
        Ok(CapacityReport { snapshot, visible })
    }

    fn demand(&self, job: &Job) -> Result<Demand, BackendError> {
        let demand = standalone_job_demand(job, self.cfg.deploy_mode)?;
        if self.cfg.deploy_mode == DeployMode::Client {
            let driver = local_driver_mib(job)?;
            if driver > self.cfg.driver_memory_mib {
                return Err(BackendError::Rejected(format!(
                    "its driver needs {driver} MiB (heap and overhead) on the sluice host in \
                     client deploy mode, more than the {} MiB for drivers there ([backend] \
                     memory)",
                    self.cfg.driver_memory_mib
                )));
            }
        }
        Ok(demand)
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        standalone_job_demand(&req.job, self.cfg.deploy_mode)?;
        match self.cfg.deploy_mode {
            DeployMode::Client => self.submit_client(req).await,
            DeployMode::Cluster => self.submit_cluster(req).await,
        }
    }

    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        let rec =
            self.record(&run.job_id, run.attempt)
                .await
                .ok_or_else(|| BackendError::NotFound {
                    job_id: run.job_id.clone(),
                    attempt: run.attempt,
                })?;
        if rec.is_cluster() {
            self.status_cluster(&rec).await
        } else {
            self.status_client(&rec, run).await
        }
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        let Some(rec) = self.record(&run.job_id, run.attempt).await else {
            return Ok(());
        };
        if rec.is_cluster() {
            self.cancel_cluster(&rec).await
        } else {
            self.drivers.cancel(run).await?;
            self.ended(&rec).await;
            Ok(())
        }
    }

    async fn app_id(&self, run: &RunRef) -> Option<String> {
        let rec = self.record(&run.job_id, run.attempt).await?;
        if rec.app_id.is_some() {
            return rec.app_id;
        }
        let state = if rec.is_cluster() {
            self.recent_state().await
        } else {
            None
        };
        self.discover_app_id(&rec, state.as_deref()).await
    }

    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let rec =
            self.record(&run.job_id, run.attempt)
                .await
                .ok_or_else(|| BackendError::NotFound {
                    job_id: run.job_id.clone(),
                    attempt: run.attempt,
                })?;
        if rec.is_cluster() {
            self.logs_cluster(&rec, offset, max_bytes).await
        } else {
            self.drivers.logs(run, offset, max_bytes).await
        }
    }

    /// Client mode: the driver ran here, with its event log in its run directory. Cluster
    /// mode: the driver ran on a worker and logged into the shared event-log directory
    /// (`event_log_dir`), read by the application id the master gave it; without that
    /// setting, nothing measured.
    async fn usage(
        &self,
        run: &RunRef,
        end_ms: i64,
    ) -> Result<Option<sluice_core::cost::Measured>, BackendError> {
        let Some(rec) = self.record(&run.job_id, run.attempt).await else {
            return Ok(None);
        };
        if !rec.is_cluster() {
            return self.drivers.usage(run, end_ms).await;
        }
        let Some(share) = &self.cfg.event_log else {
            return Ok(None);
        };
        let app_id = match rec.app_id.clone() {
            Some(id) => Some(id),
            None => {
                let state = self.recent_state().await;
                self.discover_app_id(&rec, state.as_deref()).await
            }
        };
        let Some(app_id) = app_id else {
            return Err(BackendError::Unmeasured(format!(
                "the application id of job {} (attempt {}) is not known (its driver never \
                 registered an application, or logs above INFO)",
                run.job_id, run.attempt
            )));
        };
        share.measure_async(&app_id, end_ms).await.map(Some)
    }
}
