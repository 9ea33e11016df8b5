//! What the standalone backend holds: its run records (in memory and in `standalone.json`), the
//! last read of the master, and the client-mode drivers' local backend.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sluice_core::NodeCapacity;
use sluice_core::sizing::DeployMode;

use super::config::{ENDED, RECORD, StandaloneConfig};
use super::master::MasterState;
use crate::fsutil::{io_err, lock, valid_job_id, write_atomic};
use crate::local::{LocalBackend, LocalConfig};
use crate::{BackendError, RunNote};

// ---------------------------------------------------------------------------------------------
// Run records.
// ---------------------------------------------------------------------------------------------

/// What sluice keeps about a run, in `standalone.json` in its run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RunRecord {
    pub(super) job_id: String,
    pub(super) attempt: u32,
    /// "client" or "cluster".
    pub(super) mode: String,
    /// When the submit began (epoch ms).
    pub(super) submitted_ms: u64,
    /// `spark.cores.max`: the cores the application is admitted for.
    pub(super) cores_max: u64,
    /// The main class (cluster mode; to adopt a driver after a crash).
    #[serde(default)]
    pub(super) main_class: Option<String>,
    /// The REST submission id (cluster mode), once the master answered.
    #[serde(default)]
    pub(super) driver_id: Option<String>,
    /// The Spark application id, once learnt.
    #[serde(default)]
    pub(super) app_id: Option<String>,
}

impl RunRecord {
    pub(super) fn is_cluster(&self) -> bool {
        self.mode == DeployMode::Cluster.as_str()
    }
}

pub(super) type RunKey = (String, u32);

// ---------------------------------------------------------------------------------------------
// The backend.
// ---------------------------------------------------------------------------------------------

/// Runs Spark applications on a Spark standalone cluster. See the [module documentation](self).
pub struct StandaloneBackend {
    pub(super) cfg: StandaloneConfig,
    pub(super) http: reqwest::Client,
    /// Runs client-mode drivers on this host (memory budget = `driver_memory_mib`).
    pub(super) drivers: LocalBackend,
    pub(super) runs_dir: PathBuf,
    /// Records of runs not yet seen ended.
    pub(super) live: Mutex<BTreeMap<RunKey, RunRecord>>,
    /// The last read of `/json/`: when, and what it gave (`None`: it failed).
    pub(super) state: Mutex<Option<(Instant, Option<Arc<MasterState>>)>>,
    /// The allocatable room last seen, reported while the master cannot be reached.
    pub(super) last_allocatable: Mutex<Vec<NodeCapacity>>,
    /// Whether the last read of the master succeeded (to log changes once).
    pub(super) reachable: AtomicBool,
    /// Memory (MiB) a client-mode driver was refused for; while this host has less free for
    /// drivers, the snapshot shows no free room, so that jobs wait instead of being admitted
    /// and sent back again.
    pub(super) driver_short: Mutex<Option<u64>>,
    /// Serialises cluster-mode submits.
    pub(super) submit_lock: tokio::sync::Mutex<()>,
    /// What was seen happen to running applications, until `take_notes` hands it over.
    pub(super) notes: Mutex<Vec<RunNote>>,
}

impl std::fmt::Debug for StandaloneBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneBackend")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl StandaloneBackend {
    /// Opens the backend: checks the URLs, opens the run directories under `cfg.data_dir`
    /// (re-attaching client-mode drivers still alive) and loads the records of cluster-mode
    /// runs not yet ended. The master need not be reachable yet.
    pub async fn new(cfg: StandaloneConfig) -> Result<Self, BackendError> {
        check_url("master_url", &cfg.master_url, &["spark://"])?;
        check_url("web_url", &cfg.web_url, &["http://"])?;
        match &cfg.rest_url {
            Some(u) => check_url("rest_url", u, &["http://"])?,
            None if cfg.deploy_mode == DeployMode::Cluster => {
                return Err(BackendError::Config(
                    "deploy_mode = \"cluster\" needs rest_url (the master's REST submission \
                     server, http://host:6066, enabled with spark.master.rest.enabled=true)"
                        .into(),
                ));
            }
            None => {}
        }
        let drivers = LocalBackend::new(LocalConfig {
            // CPU is not counted for drivers on this host; memory is.
            cores_milli: 0,
            memory_mib: cfg.driver_memory_mib,
            data_dir: cfg.data_dir.clone(),
            spark_home: cfg.spark_home.clone(),
            python: cfg.python.clone(),
            dbt: None,
            image_spark_home: cfg.image_spark_home.clone(),
            kill_grace: cfg.kill_grace,
            run_as: None,
        })
        .await?;
        let runs = cfg.data_dir.join("runs");
        let runs_dir = tokio::fs::canonicalize(&runs)
            .await
            .map_err(io_err(format!("resolving {}", runs.display())))?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .build()
            .map_err(|e| BackendError::Config(format!("building the HTTP client: {e}")))?;
        let backend = StandaloneBackend {
            cfg,
            http,
            drivers,
            runs_dir,
            live: Mutex::new(BTreeMap::new()),
            state: Mutex::new(None),
            last_allocatable: Mutex::new(Vec::new()),
            reachable: AtomicBool::new(true),
            driver_short: Mutex::new(None),
            submit_lock: tokio::sync::Mutex::new(()),
            notes: Mutex::new(Vec::new()),
        };
        backend.load_records().await;
        Ok(backend)
    }

    /// The configuration.
    pub fn config(&self) -> &StandaloneConfig {
        &self.cfg
    }

    /// The directory of a run (whether or not it exists).
    pub fn run_dir(&self, job_id: &str, attempt: u32) -> PathBuf {
        self.runs_dir.join(job_id).join(attempt.to_string())
    }

    /// Loads the records of runs that may still be live: client-mode runs whose driver the
    /// local part re-attached, cluster-mode runs not marked ended.
    pub(super) async fn load_records(&self) {
        let alive: BTreeSet<RunKey> = self.drivers.live_runs().into_iter().collect();
        let Ok(mut jobs) = tokio::fs::read_dir(&self.runs_dir).await else {
            return;
        };
        while let Ok(Some(job)) = jobs.next_entry().await {
            let Ok(mut attempts) = tokio::fs::read_dir(job.path()).await else {
                continue;
            };
            while let Ok(Some(att)) = attempts.next_entry().await {
                let dir = att.path();
                let Some(rec) = read_record(&dir).await else {
                    continue;
                };
                let key = (rec.job_id.clone(), rec.attempt);
                let keep = if rec.is_cluster() {
                    !tokio::fs::try_exists(dir.join(ENDED)).await.unwrap_or(true)
                } else {
                    alive.contains(&key)
                };
                if keep {
                    lock(&self.live).insert(key, rec);
                }
            }
        }
    }

    pub(super) async fn record(&self, job_id: &str, attempt: u32) -> Option<RunRecord> {
        let key = (job_id.to_string(), attempt);
        if let Some(r) = lock(&self.live).get(&key) {
            return Some(r.clone());
        }
        if !valid_job_id(job_id) {
            return None;
        }
        read_record(&self.run_dir(job_id, attempt)).await
    }

    pub(super) async fn save_record(&self, rec: &RunRecord) -> Result<(), BackendError> {
        let dir = self.run_dir(&rec.job_id, rec.attempt);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err(format!("creating {}", dir.display())))?;
        let text = serde_json::to_vec_pretty(rec).map_err(|e| BackendError::Io {
            context: format!("encoding {RECORD}"),
            source: e.into(),
        })?;
        write_atomic(&dir.join(RECORD), &text).await
    }

    /// Marks a run ended: forgets it, and for cluster mode leaves a marker.
    pub(super) async fn ended(&self, rec: &RunRecord) {
        lock(&self.live).remove(&(rec.job_id.clone(), rec.attempt));
        if rec.is_cluster() {
            let path = self.run_dir(&rec.job_id, rec.attempt).join(ENDED);
            if let Err(e) = tokio::fs::write(&path, b"").await {
                tracing::warn!(path = %path.display(), "spark-standalone: {e}");
            }
        }
    }
}

pub(super) fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), BackendError> {
    let ok = schemes.iter().any(|s| {
        value
            .strip_prefix(s)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    });
    if ok {
        Ok(())
    } else {
        Err(BackendError::Config(format!(
            "{key} = {value:?} is not a URL like {}host:port",
            schemes.join(" or ")
        )))
    }
}

pub(super) async fn read_record(dir: &Path) -> Option<RunRecord> {
    let bytes = tokio::fs::read(dir.join(RECORD)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}
