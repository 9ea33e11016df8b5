//! The local backend: runs jobs as processes on this machine.
//!
//! The machine is one node, named [`NODE_NAME`], with a CPU and memory budget
//! ([`LocalConfig::cores_milli`], [`LocalConfig::memory_mib`]). A run reserves its job's whole
//! demand ([`Demand::total`]) for as long as it lives, and the backend refuses to start a run it
//! has no room for. A Spark job runs as `spark-submit --master local[N]` (one JVM), yet reserves
//! its driver and every executor, so that a job admitted here would also fit a cluster of that
//! size.
//!
//! Every run lives in `data_dir/runs/<job id>/<attempt>/`:
//! - `meta.json`: job id, attempt, demand, argv and start time; its presence marks the attempt as
//!   started (a repeated submit of the same attempt starts nothing);
//! - `pid`: the pid of the run's process, which leads its own process group;
//! - `output.log`: stdout and stderr, appended to by the process itself (files, not pipes, so
//!   the run outlives the server);
//! - `exit_code`: written by a small `sh` wrapper around the command when it ends, even if sluice
//!   is not running then;
//! - `killed_by`: the signal that killed the wrapper itself, written by sluice when it sees that;
//! - `eventlog/`: Spark's event log of a Spark run (`spark.eventLog.dir`), read when it ends;
//! - `rusage.json`: the process tree's peak RSS and CPU time, written when sluice reaps it.
//!
//! The wrapper's command line carries the run directory, which is how a restarted server
//! recognises the runs still alive ([`LocalBackend::new`] re-attaches them) and tells them apart
//! from unrelated processes that reuse a pid.

mod config;
mod os;
mod process;
mod rundir;
mod rusage;
mod state;
#[cfg(test)]
mod tests;
mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sluice_core::job::Resources;
use sluice_core::{NodeCapacity, Snapshot};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use self::config::venv_python;
pub use self::config::{
    DEFAULT_IMAGE_SPARK_HOME, DEFAULT_KILL_GRACE, LocalConfig, NODE_NAME, RunAs,
    budget_after_reserve, detect_budget, find_spark_home,
};
pub use self::os::exit_message;
pub(crate) use self::process::Launch;
pub(crate) use self::rundir::EVENT_LOG;
use self::rundir::{LOG, META, read_pid, utf8_keep};
pub use self::state::LocalBackend;
use self::state::Shared;
use crate::fsutil::{io_err, valid_job_id};
pub use crate::spark_submit::{map_local_path, spark_submit_argv};
use crate::{
    Backend, BackendError, CapacityReport, LogChunk, LogEnd, RunRef, RunStatus, SubmitRequest,
    Submitted,
};

impl LocalBackend {
    /// Opens the backend on `cfg.data_dir` (created if missing) and re-attaches the runs of an
    /// earlier server that are still alive: they count against the budget and are tracked
    /// until they end.
    ///
    /// Fails with [`BackendError::Config`] when `cfg.spark_home` is given but holds no
    /// `bin/spark-submit`. Without an explicit Spark home and none found, the backend still
    /// runs command jobs and refuses Spark jobs with a hint.
    pub async fn new(cfg: LocalConfig) -> Result<Self, BackendError> {
        let spark_home = match &cfg.spark_home {
            Some(dir) => Some(find_spark_home(Some(dir)).ok_or_else(|| {
                BackendError::Config(format!(
                    "spark_home {} has no bin/spark-submit (nor is it a venv with pyspark); run \
                     scripts/ensure-pyspark.sh or fix [backend] spark_home",
                    dir.display()
                ))
            })?),
            None => find_spark_home(None),
        };
        let python = cfg
            .python
            .clone()
            .or_else(|| spark_home.as_deref().and_then(venv_python));
        match &spark_home {
            Some(h) => tracing::info!(spark_home = %h.display(), "local backend: Spark found"),
            None => tracing::warn!(
                "local backend: spark-submit not found; Spark jobs will be refused until \
                 scripts/ensure-pyspark.sh is run or [backend] spark_home is set"
            ),
        }
        let runs = cfg.data_dir.join("runs");
        tokio::fs::create_dir_all(&runs)
            .await
            .map_err(io_err(format!("creating {}", runs.display())))?;
        // Absolute, so that the run directory in a process's command line is the same whatever
        // the server's current directory.
        let runs_dir = tokio::fs::canonicalize(&runs)
            .await
            .map_err(io_err(format!("resolving {}", runs.display())))?;
        let budget = Resources::new(cfg.cores_milli, cfg.memory_mib);
        let shared = Arc::new(Shared {
            cfg,
            runs_dir,
            spark_home,
            python,
            budget,
            live: Mutex::new(BTreeMap::new()),
            submit_lock: tokio::sync::Mutex::new(()),
        });
        let backend = LocalBackend { shared };
        backend.reattach().await?;
        Ok(backend)
    }

    async fn read_log(
        &self,
        job_id: &str,
        attempt: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let dir = self.existing_run_dir(job_id, attempt).await?;
        // Whether the run has ended is decided before reading, so that its last output is in.
        let ended = !matches!(
            self.status_of(job_id, attempt).await?,
            RunStatus::Running | RunStatus::Pending
        );
        let path = dir.join(LOG);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(LogChunk {
                    data: String::new(),
                    next_offset: offset,
                    complete: ended,
                });
            }
            Err(e) => return Err(io_err(format!("opening {}", path.display()))(e)),
        };
        let len = file
            .metadata()
            .await
            .map_err(io_err(format!("reading {}", path.display())))?
            .len();
        if offset >= len {
            return Ok(LogChunk {
                data: String::new(),
                next_offset: offset,
                complete: ended,
            });
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        let mut buf = Vec::with_capacity(max_bytes.min(1 << 20));
        file.take(max_bytes as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        let read_to = offset + buf.len() as u64;
        if read_to < len {
            // Do not split a UTF-8 character across chunks.
            let keep = utf8_keep(&buf);
            if keep > 0 {
                buf.truncate(keep);
            }
        }
        let next_offset = offset + buf.len() as u64;
        Ok(LogChunk {
            data: String::from_utf8_lossy(&buf).into_owned(),
            next_offset,
            complete: ended && next_offset >= len,
        })
    }
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        self.shared.prune();
        let live = self.shared.live();
        let used = live
            .values()
            .fold(Resources::default(), |acc, r| acc.plus(&r.demand.total()));
        let budget = self.shared.budget;
        let free = budget.minus(&used);
        let visible: BTreeSet<String> = live.keys().map(|(job, _)| job.clone()).collect();
        Ok(CapacityReport {
            snapshot: Snapshot {
                available: true,
                nodes: vec![NodeCapacity::new(
                    NODE_NAME,
                    free.cpu_milli,
                    free.mem_mib,
                    None,
                )],
                allocatable: vec![NodeCapacity::new(
                    NODE_NAME,
                    budget.cpu_milli,
                    budget.mem_mib,
                    None,
                )],
            },
            visible,
        })
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        self.submit_with(req, |dir| self.command_for(req, dir))
            .await
    }

    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        self.status_of(&run.job_id, run.attempt).await
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        self.cancel_run(&run.job_id, run.attempt, self.shared.cfg.kill_grace)
            .await
    }

    async fn cancel_within(
        &self,
        run: &RunRef,
        grace: std::time::Duration,
    ) -> Result<(), BackendError> {
        self.cancel_run(&run.job_id, run.attempt, grace).await
    }

    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        self.read_log(&run.job_id, run.attempt, offset, max_bytes)
            .await
    }

    /// Only the end of the file is read.
    async fn log_end(&self, run: &RunRef, max_bytes: usize) -> Result<LogEnd, BackendError> {
        let dir = self.existing_run_dir(&run.job_id, run.attempt).await?;
        let len = match tokio::fs::metadata(dir.join(LOG)).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(format!("reading {}", dir.join(LOG).display()))(e)),
        };
        let start = len.saturating_sub(max_bytes as u64);
        let c = self
            .read_log(&run.job_id, run.attempt, start, max_bytes)
            .await?;
        // A start inside a UTF-8 character reads as a replacement character: the caller drops
        // the cut first line anyway.
        Ok(LogEnd {
            data: c.data,
            cut: start > 0,
            next_offset: c.next_offset,
            complete: c.complete,
        })
    }

    async fn result(
        &self,
        run: &RunRef,
    ) -> Result<Option<sluice_core::run_result::RunResult>, BackendError> {
        let dir = self.existing_run_dir(&run.job_id, run.attempt).await?;
        crate::kinds::read_result(&dir).await
    }

    async fn usage(
        &self,
        run: &RunRef,
        end_ms: i64,
    ) -> Result<Option<sluice_core::cost::Measured>, BackendError> {
        self.run_usage(&run.job_id, run.attempt, end_ms).await
    }
}

impl LocalBackend {
    /// [`Backend::submit`] with the command built by `launch` (given the run directory, called
    /// after the room check). The Spark standalone backend starts its client-mode drivers
    /// through this, so that they get the same run directories, process groups, budget and
    /// re-attachment as local runs.
    pub(crate) async fn submit_with(
        &self,
        req: &SubmitRequest,
        launch: impl FnOnce(&Path) -> Result<Launch, BackendError> + Send,
    ) -> Result<Submitted, BackendError> {
        if !valid_job_id(&req.job_id) {
            return Err(BackendError::Rejected(format!(
                "job id {:?} cannot name a run directory",
                req.job_id
            )));
        }
        let dir = self.run_dir(&req.job_id, req.attempt);
        let _guard = self.shared.submit_lock.lock().await;
        if tokio::fs::try_exists(dir.join(META)).await.unwrap_or(false) {
            let backend_ref = read_pid(&dir).await.map(|p| p.to_string());
            return Ok(Submitted {
                backend_ref: backend_ref.unwrap_or_default(),
                already_existed: true,
            });
        }
        self.shared.prune();
        let need = req.demand.total();
        let (used, budget) = {
            let live = self.shared.live();
            let used = live
                .values()
                .fold(Resources::default(), |acc, r| acc.plus(&r.demand.total()));
            (used, self.shared.budget)
        };
        let free = budget.minus(&used);
        if !free.covers(&need) {
            let what = if budget.covers(&need) {
                format!("{free} free now")
            } else {
                format!("it can never fit the local budget of {budget}")
            };
            return Err(BackendError::NoRoom(format!(
                "job {} attempt {} needs {need}; {what}",
                req.job_id, req.attempt
            )));
        }
        let launch = launch(&dir)?;
        let pid = self.start(req, &dir, launch).await?;
        tracing::info!(
            job_id = %req.job_id, attempt = req.attempt, pid,
            "local backend: started"
        );
        Ok(Submitted {
            backend_ref: pid.to_string(),
            already_existed: false,
        })
    }
}
