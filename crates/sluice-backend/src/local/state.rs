//! What the local backend holds in memory: its live runs, shared with their waiter tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_core::job::{Demand, Resources};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::config::LocalConfig;
use super::os::is_our_run;
use super::rundir::META;
use crate::BackendError;
use crate::fsutil::{lock, valid_job_id};

pub(super) type RunKey = (String, u32);

/// A run this backend counts as live.
pub(super) struct LiveRun {
    pub(super) pid: u32,
    pub(super) demand: Demand,
    pub(super) dir: PathBuf,
    /// Set to true by the waiter task once the child has ended and its end is recorded;
    /// `None` for a run re-attached after a restart (no child handle; liveness is polled).
    pub(super) ended: Option<watch::Receiver<bool>>,
    /// The waiter task, aborted when the backend is dropped.
    pub(super) waiter: Option<AbortHandle>,
}

pub(super) struct Shared {
    pub(super) cfg: LocalConfig,
    pub(super) runs_dir: PathBuf,
    pub(super) spark_home: Option<PathBuf>,
    pub(super) python: Option<PathBuf>,
    pub(super) budget: Resources,
    pub(super) live: Mutex<BTreeMap<RunKey, LiveRun>>,
    /// Serialises submits (the room check and the start of a run are one step).
    pub(super) submit_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(super) fn live(&self) -> MutexGuard<'_, BTreeMap<RunKey, LiveRun>> {
        // A panic while holding the lock leaves the map itself consistent (single inserts and
        // removes), so a poisoned lock is still usable.
        lock(&self.live)
    }

    pub(super) fn forget(&self, key: &RunKey) {
        self.live().remove(key);
    }

    /// Forgets a run seen to have ended, unless a waiter task of ours still reaps it: that
    /// task records its usage first and forgets it then (so `usage` can wait for it).
    pub(super) fn forget_ended(&self, key: &RunKey) {
        let mut live = self.live();
        if live.get(key).is_some_and(|r| r.ended.is_none()) {
            live.remove(key);
        }
    }

    /// Drops re-attached runs whose process is gone. Runs with a child handle leave through
    /// their waiter task.
    pub(super) fn prune(&self) {
        self.live()
            .retain(|_, r| r.ended.is_some() || is_our_run(r.pid, &r.dir));
    }
}

/// Runs jobs as processes on this machine. See the [module documentation](self).
pub struct LocalBackend {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("cfg", &self.shared.cfg)
            .field("spark_home", &self.shared.spark_home)
            .finish_non_exhaustive()
    }
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        // The runs keep going (own process groups, output to files); only the tasks that wait
        // for them stop, as if the server had died.
        for run in self.shared.live().values() {
            if let Some(w) = &run.waiter {
                w.abort();
            }
        }
    }
}

impl LocalBackend {
    /// The Spark home in use, if any.
    pub fn spark_home(&self) -> Option<&Path> {
        self.shared.spark_home.as_deref()
    }

    /// `PYSPARK_PYTHON` for Python applications, if any (configured, or the venv's python).
    pub fn python(&self) -> Option<&Path> {
        self.shared.python.as_deref()
    }

    /// The budget (allocatable CPU and memory).
    pub fn budget(&self) -> Resources {
        self.shared.budget
    }

    /// The live runs as (job id, attempt), re-attached ones included.
    pub fn live_runs(&self) -> Vec<(String, u32)> {
        self.shared.prune();
        self.shared.live().keys().cloned().collect()
    }

    /// The directory of a run (whether or not it exists).
    pub fn run_dir(&self, job_id: &str, attempt: u32) -> PathBuf {
        self.shared.runs_dir.join(job_id).join(attempt.to_string())
    }

    /// The run directory of an existing run, or `NotFound`.
    pub(super) async fn existing_run_dir(
        &self,
        job_id: &str,
        attempt: u32,
    ) -> Result<PathBuf, BackendError> {
        let not_found = || BackendError::NotFound {
            job_id: job_id.to_string(),
            attempt,
        };
        if !valid_job_id(job_id) {
            return Err(not_found());
        }
        let dir = self.run_dir(job_id, attempt);
        if tokio::fs::try_exists(dir.join(META)).await.unwrap_or(false) {
            Ok(dir)
        } else {
            Err(not_found())
        }
    }
}
