//! Client deploy mode: `spark-submit --deploy-mode client` on this host, run through the local
//! backend's run machinery.

use std::path::Path;

use sluice_core::job::{Demand, PodDemand, Role};
use sluice_core::sizing::DeployMode;
use sluice_core::spec::Job;

use super::config::StandaloneConfig;
use super::demand::{executors_of, local_driver_mib};
use super::state::{RunRecord, StandaloneBackend};
use crate::fsutil::{lock, now_ms, valid_job_id};
use crate::local::Launch;
use crate::spark_submit::{SubmitArgs, spark_spec, spark_submit_command};
use crate::{Backend, BackendError, RunRef, RunStatus, SubmitRequest, Submitted};

/// The `spark-submit` command line of a client-mode run (no I/O): `--master <master_url>`,
/// client deploy mode, the driver heap, and executor cores, memory and `spark.cores.max` from
/// the admitted demand (the job's own values for these are dropped).
pub fn client_argv(
    cfg: &StandaloneConfig,
    spark_home: &Path,
    job: &Job,
    demand: &Demand,
) -> Result<Vec<String>, BackendError> {
    let spec = spark_spec(job)?;
    let args = SubmitArgs::standalone_client(
        &spec,
        &cfg.master_url,
        cfg.driver_host.as_deref(),
        executors_of(demand)?,
    )?;
    spark_submit_command(spark_home, &cfg.image_spark_home, job, &args)
}

/// [`client_argv`] with the event log written into `event_log_dir` (the driver runs here, so
/// sluice reads the log when the run ends).
pub(crate) fn client_argv_logged(
    cfg: &StandaloneConfig,
    spark_home: &Path,
    job: &Job,
    demand: &Demand,
    event_log_dir: &Path,
) -> Result<Vec<String>, BackendError> {
    let spec = spark_spec(job)?;
    let args = SubmitArgs::standalone_client(
        &spec,
        &cfg.master_url,
        cfg.driver_host.as_deref(),
        executors_of(demand)?,
    )?
    .with_event_log(event_log_dir)?;
    spark_submit_command(spark_home, &cfg.image_spark_home, job, &args)
}

impl StandaloneBackend {
    pub(super) async fn submit_client(
        &self,
        req: &SubmitRequest,
    ) -> Result<Submitted, BackendError> {
        let home = self.drivers.spark_home().ok_or_else(|| {
            BackendError::Config(
                "spark-submit not found: run scripts/ensure-pyspark.sh (it installs pyspark into \
                 .venv) or set [backend] spark_home (or $SPARK_HOME)"
                    .into(),
            )
        })?;
        let event_log = self
            .drivers
            .run_dir(&req.job_id, req.attempt)
            .join(crate::local::EVENT_LOG);
        let argv = client_argv_logged(&self.cfg, home, &req.job, &req.demand, &event_log)?;
        let (count, cores, _) = executors_of(&req.demand)?;
        let driver_mib = local_driver_mib(&req.job)?;
        let key = (req.job_id.clone(), req.attempt);
        if !valid_job_id(&req.job_id) {
            return Err(BackendError::Rejected(format!(
                "job id {:?} cannot name a run directory",
                req.job_id
            )));
        }
        let rec = match self.record(&req.job_id, req.attempt).await {
            Some(r) => r,
            None => {
                let r = RunRecord {
                    job_id: req.job_id.clone(),
                    attempt: req.attempt,
                    mode: DeployMode::Client.as_str().into(),
                    submitted_ms: now_ms(),
                    cores_max: count.saturating_mul(cores),
                    main_class: None,
                    driver_id: None,
                    app_id: None,
                };
                self.save_record(&r).await?;
                r
            }
        };
        // The local part counts the driver's memory against this host's driver budget.
        let local_req = SubmitRequest {
            job_id: req.job_id.clone(),
            attempt: req.attempt,
            job: req.job.clone(),
            demand: Demand {
                pods: vec![PodDemand {
                    role: Role::Driver,
                    count: 1,
                    cpu_milli: 0,
                    mem_mib: driver_mib,
                }],
            },
        };
        let mut env = vec![(
            "SPARK_HOME".to_string(),
            home.to_string_lossy().into_owned(),
        )];
        if let Some(py) = self.drivers.python() {
            env.push((
                "PYSPARK_PYTHON".to_string(),
                py.to_string_lossy().into_owned(),
            ));
        }
        if let Some(h) = &self.cfg.driver_host {
            env.push(("SPARK_LOCAL_IP".to_string(), h.clone()));
        }
        if let Some(spec) = req.job.kind.spark_spec() {
            let field = format!("{}.secretEnv", req.job.kind.section());
            env.extend(crate::secrets::resolve_here(&field, &spec.secret_env)?);
        }
        if let sluice_core::spec::JobKind::Python(p) = &req.job.kind
            && let Some(i) = &p.interpreter
        {
            env.retain(|(k, _)| k != "PYSPARK_PYTHON");
            env.push(("PYSPARK_PYTHON".into(), i.clone()));
        }
        let files = crate::kinds::run_files(&req.job)?;
        let result = self
            .drivers
            .submit_with(&local_req, |dir| {
                Ok(Launch {
                    argv,
                    env,
                    cwd: dir.to_path_buf(),
                    event_log: Some(event_log),
                    files,
                })
            })
            .await;
        match result {
            Ok(sub) => {
                lock(&self.live).insert(key, rec);
                Ok(sub)
            }
            Err(BackendError::NoRoom(msg)) => {
                *lock(&self.driver_short) = Some(driver_mib);
                Err(BackendError::NoRoom(format!(
                    "this host has no room for another client-mode driver ({} MiB of driver \
                     memory in all, [backend] memory): {msg}",
                    self.cfg.driver_memory_mib
                )))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn status_client(
        &self,
        rec: &RunRecord,
        run: &RunRef,
    ) -> Result<RunStatus, BackendError> {
        match self.drivers.status(run).await {
            Ok(RunStatus::Running | RunStatus::Pending) => {}
            Ok(ended) => {
                self.ended(rec).await;
                return Ok(ended);
            }
            Err(e) => {
                if matches!(e, BackendError::NotFound { .. }) {
                    self.ended(rec).await;
                }
                return Err(e);
            }
        }
        Ok(self.running_or_pending(rec).await)
    }

    /// Free memory for client-mode drivers on this host, in MiB.
    pub(super) async fn driver_room(&self) -> u64 {
        match self.drivers.capacity().await {
            Ok(r) => r.snapshot.nodes.first().map(|n| n.mem_mib).unwrap_or(0),
            Err(_) => 0,
        }
    }
}
