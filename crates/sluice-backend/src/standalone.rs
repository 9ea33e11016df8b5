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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sluice_core::job::{Demand, PodDemand, Role};
use sluice_core::sizing::{DeployMode, driver_heap_mib, job_demand, standalone_demand};
use sluice_core::spec::{Job, JobKind};
use sluice_core::{NodeCapacity, Snapshot};

use crate::local::{
    Launch, LocalBackend, LocalConfig, SubmitArgs, map_local_path, spark_spec, spark_submit_command,
};
use crate::{
    Backend, BackendError, CapacityReport, LogChunk, RunNote, RunRef, RunStatus, SubmitRequest,
    Submitted,
};

/// The backend's name in configuration and logs.
pub const KIND: &str = "spark-standalone";
/// Sent as `clientSparkVersion` in REST requests; the master only checks that it is set.
const CLIENT_SPARK_VERSION: &str = "4.0.1";
/// What Spark's `StandaloneSchedulerBackend` logs (INFO) once the master registered the app.
const APP_ID_MARKER: &str = "Connected to Spark cluster with app ID ";
/// How much of a client-mode driver's log (a local file) is searched for [`APP_ID_MARKER`].
const APP_ID_SCAN_BYTES: u64 = 16 << 20;
/// How much of a cluster-mode driver's stderr (fetched from its worker) is searched.
const APP_ID_SCAN_REMOTE_BYTES: u64 = 1 << 20;
/// A client-mode driver whose application id is still unknown after this long is reported
/// running anyway (its log level may hide the line), so that `maxRuntime` applies to it.
const APP_ID_GRACE: Duration = Duration::from_secs(120);
/// How old a cached `/json/` may be for [`Backend::status`] (capacity always reads it afresh).
const STATE_MAX_AGE: Duration = Duration::from_secs(2);
/// The run record, in the run directory.
const RECORD: &str = "standalone.json";
/// Written in a cluster-mode run directory once its driver has ended.
const ENDED: &str = "standalone-ended";
/// Conf keys sluice sets itself; the job's values for them are not passed on.
const OWN_CONF: [&str; 7] = [
    "spark.master",
    "spark.submit.deployMode",
    "spark.driver.memory",
    "spark.driver.cores",
    "spark.executor.cores",
    "spark.executor.memory",
    "spark.cores.max",
];

/// Configuration of the Spark standalone backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandaloneConfig {
    /// The master, `spark://host:port` (what `spark-submit --master` takes).
    pub master_url: String,
    /// The master's web UI, `http://host:port` (its `/json/` is the capacity source).
    pub web_url: String,
    /// The master's REST submission server, `http://host:6066`; needed in cluster mode.
    pub rest_url: Option<String>,
    /// Where drivers run.
    pub deploy_mode: DeployMode,
    /// `spark.driver.host` and `spark.driver.bindAddress` (and `SPARK_LOCAL_IP`) for client-mode
    /// drivers, unless the job sets them: the address executors use to reach the driver.
    pub driver_host: Option<String>,
    /// Memory on this host for client-mode drivers, in MiB (each counts heap plus overhead).
    pub driver_memory_mib: u64,
    /// Runs live under `data_dir/runs/<job id>/<attempt>/`.
    pub data_dir: PathBuf,
    /// Spark's home on this host (for `spark-submit`); `None`: found as the local backend does.
    pub spark_home: Option<PathBuf>,
    /// `PYSPARK_PYTHON` for Python applications; `None`: the venv's python next to Spark.
    pub python: Option<PathBuf>,
    /// Spark's home inside Spark images: application paths under it are mapped to `spark_home`.
    pub image_spark_home: String,
    /// A cancelled client-mode driver gets SIGTERM, then SIGKILL after this long.
    pub kill_grace: Duration,
    /// Timeout of one HTTP request to the master or a worker.
    pub request_timeout: Duration,
}

impl StandaloneConfig {
    /// Client deploy mode, no REST URL, the detected memory budget for drivers and defaults for
    /// the rest.
    pub fn new(
        master_url: impl Into<String>,
        web_url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        let local = LocalConfig::new(data_dir);
        StandaloneConfig {
            master_url: master_url.into(),
            web_url: web_url.into(),
            rest_url: None,
            deploy_mode: DeployMode::Client,
            driver_host: None,
            driver_memory_mib: local.memory_mib,
            data_dir: local.data_dir,
            spark_home: None,
            python: None,
            image_spark_home: local.image_spark_home,
            kill_grace: local.kill_grace,
            request_timeout: Duration::from_secs(5),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The master's /json/ and REST answers.
// ---------------------------------------------------------------------------------------------

/// The master's state as its web UI serves it at `/json/` (the fields sluice reads; others are
/// ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct MasterState {
    /// `spark://host:port`.
    #[serde(default)]
    pub url: String,
    /// Every worker the master knows, dead ones included.
    #[serde(default)]
    pub workers: Vec<WorkerInfo>,
    /// Applications registered and not finished (RUNNING, or WAITING for executors).
    #[serde(default)]
    pub activeapps: Vec<AppInfo>,
    /// Finished applications (the last `spark.deploy.retainedApplications`).
    #[serde(default)]
    pub completedapps: Vec<AppInfo>,
    /// Cluster-mode drivers not finished.
    #[serde(default)]
    pub activedrivers: Vec<DriverInfo>,
    /// Finished cluster-mode drivers.
    #[serde(default)]
    pub completeddrivers: Vec<DriverInfo>,
    /// "ALIVE" for the leader; "STANDBY", "RECOVERING" or "COMPLETING_RECOVERY" otherwise.
    #[serde(default)]
    pub status: String,
}

/// A worker in `/json/`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct WorkerInfo {
    /// `worker-<date>-<host>-<port>`.
    #[serde(default)]
    pub id: String,
    /// Host.
    #[serde(default)]
    pub host: String,
    /// RPC port.
    #[serde(default)]
    pub port: u32,
    /// The worker's web UI (serves drivers' logs).
    #[serde(default)]
    pub webuiaddress: String,
    /// Cores offered.
    #[serde(default)]
    pub cores: u64,
    /// Cores in use by executors and drivers.
    #[serde(default)]
    pub coresused: u64,
    /// Free cores (Spark 3 and later; else cores - coresused).
    #[serde(default)]
    pub coresfree: Option<u64>,
    /// Memory offered, MiB.
    #[serde(default)]
    pub memory: u64,
    /// Memory in use, MiB.
    #[serde(default)]
    pub memoryused: u64,
    /// Free memory, MiB (Spark 3 and later; else memory - memoryused).
    #[serde(default)]
    pub memoryfree: Option<u64>,
    /// "ALIVE", "DEAD", "DECOMMISSIONED" or "UNKNOWN".
    #[serde(default)]
    pub state: String,
}

impl WorkerInfo {
    /// Free cores.
    pub fn free_cores(&self) -> u64 {
        self.coresfree
            .unwrap_or_else(|| self.cores.saturating_sub(self.coresused))
    }

    /// Free memory in MiB.
    pub fn free_memory_mib(&self) -> u64 {
        self.memoryfree
            .unwrap_or_else(|| self.memory.saturating_sub(self.memoryused))
    }

    /// The node name sluice shows: `host:port`.
    pub fn node_name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An application in `/json/`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct AppInfo {
    /// `app-<date>-<n>`.
    #[serde(default)]
    pub id: String,
    /// The name the application gave itself.
    #[serde(default)]
    pub name: String,
    /// Cores granted now (not the maximum).
    #[serde(default)]
    pub cores: u64,
    /// Memory per executor, MiB (Spark 3 and later).
    #[serde(default)]
    pub memoryperexecutor: Option<u64>,
    /// The same, under its older name (still written next to the new one).
    #[serde(default)]
    pub memoryperslave: Option<u64>,
    /// "WAITING" (registered, no executor yet), "RUNNING", "FINISHED", "FAILED", "KILLED"...
    #[serde(default)]
    pub state: String,
}

/// A cluster-mode driver in `/json/`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct DriverInfo {
    /// `driver-<date>-<n>`: the REST submission id.
    #[serde(default)]
    pub id: String,
    /// "SUBMITTED", "RUNNING", "FINISHED", "FAILED", "KILLED", "ERROR", "RELAUNCHING"...
    #[serde(default)]
    pub state: String,
    /// Cores of the driver.
    #[serde(default)]
    pub cores: u64,
    /// Memory of the driver, MiB.
    #[serde(default)]
    pub memory: u64,
    /// The worker it runs on (an id), once placed.
    #[serde(default)]
    pub worker: Option<String>,
    /// The main class.
    #[serde(default)]
    pub mainclass: String,
    /// Start time in epoch milliseconds; Spark writes it as a string for drivers.
    #[serde(default)]
    pub starttime: serde_json::Value,
}

impl AppInfo {
    /// Memory per executor in MiB, under either name.
    pub fn executor_memory_mib(&self) -> Option<u64> {
        self.memoryperexecutor.or(self.memoryperslave)
    }
}

impl DriverInfo {
    /// The start time in epoch milliseconds, whether written as a number or a string.
    pub fn start_ms(&self) -> Option<i64> {
        match &self.starttime {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl MasterState {
    /// Parses the text of `/json/`.
    pub fn parse(text: &str) -> Result<MasterState, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// True when this master is the leader and schedules (status ALIVE).
    pub fn is_alive(&self) -> bool {
        self.status == "ALIVE"
    }

    /// What changed under running applications between `before` and `self`: workers that were
    /// ALIVE and now are not (or are gone), and active applications that now hold fewer cores.
    /// One message per application id in `apps`, in the order of `apps`.
    pub fn losses_since(&self, before: &MasterState, apps: &[&str]) -> Vec<(String, String)> {
        let lost: Vec<String> = before
            .alive_workers()
            .filter_map(|w| {
                let now = self.workers.iter().find(|n| n.id == w.id);
                match now {
                    Some(n) if n.state == "ALIVE" => None,
                    Some(n) => Some(format!("{} ({})", w.node_name(), n.state)),
                    None => Some(format!("{} (gone from the master)", w.node_name())),
                }
            })
            .collect();
        let mut out = Vec::new();
        for app in apps {
            let (Some(was), Some(is)) = (before.active_app(app), self.active_app(app)) else {
                continue;
            };
            let mut parts = Vec::new();
            if !lost.is_empty() {
                parts.push(format!(
                    "worker {} lost while application {app} ran",
                    lost.join(", ")
                ));
            }
            if is.cores < was.cores {
                parts.push(format!(
                    "application {app} now holds {} cores (had {})",
                    is.cores, was.cores
                ));
            }
            if !parts.is_empty() {
                out.push((
                    (*app).to_string(),
                    format!(
                        "{}; Spark reschedules its executors and decides the job's outcome",
                        parts.join("; ")
                    ),
                ));
            }
        }
        out
    }

    /// The ALIVE workers.
    pub fn alive_workers(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.iter().filter(|w| w.state == "ALIVE")
    }

    /// The capacity snapshot: one node per ALIVE worker (free and allocatable room), no pod
    /// slots; `available` when the master is ALIVE.
    pub fn snapshot(&self) -> Snapshot {
        let nodes = self
            .alive_workers()
            .map(|w| {
                NodeCapacity::new(
                    w.node_name(),
                    w.free_cores().saturating_mul(1000),
                    w.free_memory_mib(),
                    None,
                )
            })
            .collect();
        let allocatable = self
            .alive_workers()
            .map(|w| NodeCapacity::new(w.node_name(), w.cores.saturating_mul(1000), w.memory, None))
            .collect();
        Snapshot {
            available: self.is_alive(),
            nodes,
            allocatable,
        }
    }

    /// An active application by id.
    pub fn active_app(&self, id: &str) -> Option<&AppInfo> {
        self.activeapps.iter().find(|a| a.id == id)
    }

    /// A driver (active or completed) by id.
    pub fn driver(&self, id: &str) -> Option<&DriverInfo> {
        self.activedrivers
            .iter()
            .chain(&self.completeddrivers)
            .find(|d| d.id == id)
    }

    /// A worker by id.
    pub fn worker(&self, id: &str) -> Option<&WorkerInfo> {
        self.workers.iter().find(|w| w.id == id)
    }

    /// True when the application `app_id` is RUNNING with at least `cores` cores granted: its
    /// room is then in the workers' free numbers.
    pub fn app_holds(&self, app_id: &str, cores: u64) -> bool {
        self.active_app(app_id)
            .is_some_and(|a| a.state == "RUNNING" && a.cores >= cores)
    }
}

/// An answer of the REST submission server (create, status, kill and error responses).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestResponse {
    /// "CreateSubmissionResponse", "SubmissionStatusResponse", "KillSubmissionResponse" or
    /// "ErrorResponse".
    #[serde(default)]
    pub action: String,
    /// Whether the request succeeded (absent in error responses).
    #[serde(default)]
    pub success: Option<bool>,
    /// What happened, for people (error responses carry a stack trace after the first line).
    #[serde(default)]
    pub message: Option<String>,
    /// The driver id (create, status, kill).
    #[serde(default)]
    pub submission_id: Option<String>,
    /// The driver's state (status).
    #[serde(default)]
    pub driver_state: Option<String>,
    /// The worker running the driver (status).
    #[serde(default)]
    pub worker_id: Option<String>,
}

impl RestResponse {
    /// The first line of the message (error responses append a stack trace).
    pub fn short_message(&self) -> String {
        self.message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

/// The run status a REST status answer means for driver `driver_id`.
pub fn driver_status(resp: &RestResponse, driver_id: &str) -> RunStatus {
    if resp.success != Some(true) {
        return RunStatus::Lost {
            message: format!(
                "the Spark master does not know driver {driver_id} (a master restarted without \
                 spark.deploy.recoveryMode forgets its drivers){}",
                match resp.short_message() {
                    m if m.is_empty() => String::new(),
                    m => format!(": {m}"),
                }
            ),
        };
    }
    let on = resp
        .worker_id
        .as_deref()
        .map(|w| format!(" on worker {w}"))
        .unwrap_or_default();
    match resp.driver_state.as_deref().unwrap_or("UNKNOWN") {
        "RUNNING" => RunStatus::Running,
        "FINISHED" => RunStatus::Succeeded,
        "FAILED" => RunStatus::Failed {
            exit_code: None,
            message: format!(
                "driver {driver_id} exited with a failure{on} (its stderr: sluice logs)"
            ),
        },
        "KILLED" => RunStatus::Failed {
            exit_code: None,
            message: format!("driver {driver_id} was killed{on}"),
        },
        "ERROR" => RunStatus::Failed {
            exit_code: None,
            message: format!(
                "driver {driver_id} could not be run{on}: {}",
                resp.short_message()
            ),
        },
        // SUBMITTED, RELAUNCHING, UNKNOWN: not running yet.
        _ => RunStatus::Pending,
    }
}

/// The application id a driver's log names (Spark's "Connected to Spark cluster with app ID").
pub fn app_id_in_log(text: &str) -> Option<String> {
    let at = text.find(APP_ID_MARKER)? + APP_ID_MARKER.len();
    let id: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// A piece of a log served by a worker's `/log/`: its header
/// `==== Bytes START-END of TOTAL of PATH ====` and the bytes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLogPiece {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset after the last byte.
    pub end: u64,
    /// Length of the whole file.
    pub total: u64,
    /// The bytes.
    pub data: String,
}

/// Parses an answer of a worker's `/log/` page.
pub fn parse_worker_log(text: &str) -> Option<WorkerLogPiece> {
    let (header, data) = text.split_once('\n').unwrap_or((text, ""));
    let rest = header.strip_prefix("==== Bytes ")?;
    let (range, rest) = rest.split_once(" of ")?;
    let (total, _) = rest.split_once(" of ")?;
    let (start, end) = range.split_once('-')?;
    Some(WorkerLogPiece {
        start: start.trim().parse().ok()?,
        end: end.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        data: data.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Run records.
// ---------------------------------------------------------------------------------------------

/// What sluice keeps about a run, in `standalone.json` in its run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RunRecord {
    job_id: String,
    attempt: u32,
    /// "client" or "cluster".
    mode: String,
    /// When the submit began (epoch ms).
    submitted_ms: u64,
    /// `spark.cores.max`: the cores the application is admitted for.
    cores_max: u64,
    /// The main class (cluster mode; to adopt a driver after a crash).
    #[serde(default)]
    main_class: Option<String>,
    /// The REST submission id (cluster mode), once the master answered.
    #[serde(default)]
    driver_id: Option<String>,
    /// The Spark application id, once learnt.
    #[serde(default)]
    app_id: Option<String>,
}

impl RunRecord {
    fn is_cluster(&self) -> bool {
        self.mode == DeployMode::Cluster.as_str()
    }
}

type RunKey = (String, u32);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single read or write of the map or value: a panic cannot
    // leave it inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackendError {
    let context = context.into();
    move |source| BackendError::Io { context, source }
}

/// A job id usable as a directory name (as the local backend requires).
fn valid_job_id(job_id: &str) -> bool {
    !job_id.is_empty() && job_id != "." && job_id != ".." && !job_id.contains(['/', '\0'])
}

async fn write_atomic(path: &Path, data: &[u8]) -> Result<(), BackendError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tokio::fs::write(&tmp, data)
        .await
        .map_err(io_err(format!("writing {}", path.display())))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io_err(format!("writing {}", path.display())))
}

// ---------------------------------------------------------------------------------------------
// Pure builders.
// ---------------------------------------------------------------------------------------------

/// The executor part of an admitted demand: (count, cores each, heap MiB each).
fn executors_of(demand: &Demand) -> Result<(u64, u64, u64), BackendError> {
    let e = demand
        .role(Role::Executor)
        .filter(|e| e.count > 0)
        .ok_or_else(|| {
            BackendError::Rejected(
                "the admitted demand has no executors; a Spark standalone job needs at least one"
                    .into(),
            )
        })?;
    let cores = e.cpu_milli.div_ceil(1000).max(1);
    Ok((u64::from(e.count), cores, e.mem_mib))
}

/// Where a job's fields are named in messages: `spec` for a SparkApplication, else `spark`.
fn prefix(job: &Job) -> &'static str {
    match &job.kind {
        JobKind::Spark {
            application: Some(_),
            ..
        } => "spec",
        _ => "spark",
    }
}

/// The memory a client-mode driver takes on this host: heap and overhead, as Spark sizes a
/// driver pod ([`job_demand`]).
fn local_driver_mib(job: &Job) -> Result<u64, BackendError> {
    let d = job_demand(job).map_err(|e| BackendError::Rejected(e.to_string()))?;
    Ok(d.role(Role::Driver).map(|p| p.mem_mib).unwrap_or(0))
}

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
    let (count, cores, heap) = executors_of(demand)?;
    let driver_heap = driver_heap_mib(spec).map_err(|e| BackendError::Rejected(e.to_string()))?;
    let mut defaults = Vec::new();
    if let Some(h) = &cfg.driver_host {
        defaults.push(("spark.driver.host".to_string(), h.clone()));
        defaults.push(("spark.driver.bindAddress".to_string(), h.clone()));
    }
    spark_submit_command(
        spark_home,
        &cfg.image_spark_home,
        job,
        &SubmitArgs {
            master: cfg.master_url.clone(),
            set_conf: vec![
                ("spark.submit.deployMode".into(), "client".into()),
                ("spark.driver.memory".into(), format!("{driver_heap}m")),
                ("spark.executor.cores".into(), cores.to_string()),
                ("spark.executor.memory".into(), format!("{heap}m")),
                (
                    "spark.cores.max".into(),
                    count.saturating_mul(cores).to_string(),
                ),
            ],
            own_conf: &OWN_CONF,
            defaults,
        },
    )
}

/// An application or dependency path as a URI the workers can fetch: `local://` and the image's
/// Spark home are mapped as for local runs; an absolute path becomes `file:PATH`.
fn as_uri(path: &str, spark_home: Option<&Path>, image_spark_home: &str) -> String {
    let mapped = match spark_home {
        Some(h) => map_local_path(path, h, image_spark_home),
        None => path.strip_prefix("local://").unwrap_or(path).to_string(),
    };
    if mapped.starts_with('/') {
        format!("file:{mapped}")
    } else {
        mapped
    }
}

/// The body of `POST /v1/submissions/create` for a cluster-mode run (no I/O).
pub fn create_request(
    cfg: &StandaloneConfig,
    spark_home: Option<&Path>,
    job: &Job,
    demand: &Demand,
) -> Result<serde_json::Value, BackendError> {
    let spec = spark_spec(job)?;
    let (count, cores, heap) = executors_of(demand)?;
    let driver = demand.role(Role::Driver).ok_or_else(|| {
        BackendError::Rejected("the admitted demand has no driver (cluster deploy mode)".into())
    })?;
    let main_class = spec
        .main_class
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            BackendError::Rejected(format!(
                "job {} has no mainClass; cluster deploy mode needs one",
                job.name
            ))
        })?;
    let file = spec
        .main_application_file
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| {
            BackendError::Rejected(format!("job {} has no mainApplicationFile", job.name))
        })?;
    let uri = |p: &str| as_uri(p, spark_home, &cfg.image_spark_home);
    let resource = uri(file);
    let mut props: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &spec.spark_conf {
        if !OWN_CONF.contains(&k.as_str()) {
            props.insert(k.clone(), v.0.clone());
        }
    }
    let mut jars = vec![resource.clone()];
    if let Some(deps) = &spec.deps {
        jars.extend(deps.jars.iter().map(|j| uri(j)));
        let lists: [(&str, &[String], bool); 5] = [
            ("spark.files", &deps.files, true),
            ("spark.archives", &deps.archives, true),
            ("spark.jars.packages", &deps.packages, false),
            ("spark.jars.excludes", &deps.exclude_packages, false),
            ("spark.jars.repositories", &deps.repositories, false),
        ];
        for (key, items, paths) in lists {
            if !items.is_empty() {
                let joined: Vec<String> = items
                    .iter()
                    .map(|i| if paths { uri(i) } else { i.clone() })
                    .collect();
                props.insert(key.into(), joined.join(","));
            }
        }
    }
    props
        .entry("spark.app.name".into())
        .or_insert(job.name.clone());
    props.insert("spark.jars".into(), jars.join(","));
    props.insert("spark.master".into(), cfg.master_url.clone());
    props.insert("spark.submit.deployMode".into(), "cluster".into());
    props.insert("spark.driver.memory".into(), format!("{}m", driver.mem_mib));
    props.insert(
        "spark.driver.cores".into(),
        driver.cpu_milli.div_ceil(1000).max(1).to_string(),
    );
    props.insert("spark.executor.cores".into(), cores.to_string());
    props.insert("spark.executor.memory".into(), format!("{heap}m"));
    props.insert(
        "spark.cores.max".into(),
        count.saturating_mul(cores).to_string(),
    );
    props
        .entry("spark.driver.supervise".into())
        .or_insert("false".into());
    Ok(serde_json::json!({
        "action": "CreateSubmissionRequest",
        "clientSparkVersion": CLIENT_SPARK_VERSION,
        "appResource": resource,
        "mainClass": main_class,
        "appArgs": spec.arguments.iter().map(|a| a.0.clone()).collect::<Vec<_>>(),
        "sparkProperties": props,
        "environmentVariables": {},
    }))
}

/// Checks that the job can run in `mode` and returns its standalone demand.
fn standalone_job_demand(job: &Job, mode: DeployMode) -> Result<Demand, BackendError> {
    let spec = match &job.kind {
        JobKind::Spark { spec, .. } => spec.as_ref(),
        JobKind::Command(_) => {
            return Err(BackendError::Rejected(
                "it is a command job; the spark-standalone backend runs Spark applications only"
                    .into(),
            ));
        }
    };
    if mode == DeployMode::Cluster {
        let t = spec.app_type();
        if !t.is_jvm() {
            return Err(BackendError::Rejected(format!(
                "it is a {t:?} application, and Spark cannot run Python or R applications in \
                 cluster deploy mode on a standalone cluster (spark-submit refuses it too); run \
                 it with [backend] deploy_mode = \"client\""
            )));
        }
        if spec
            .main_class
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err(BackendError::Rejected(format!(
                "it has no {}.mainClass, which cluster deploy mode needs",
                prefix(job)
            )));
        }
    }
    standalone_demand(spec, prefix(job), mode).map_err(|e| BackendError::Rejected(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// The backend.
// ---------------------------------------------------------------------------------------------

/// Runs Spark applications on a Spark standalone cluster. See the [module documentation](self).
pub struct StandaloneBackend {
    cfg: StandaloneConfig,
    http: reqwest::Client,
    /// Runs client-mode drivers on this host (memory budget = `driver_memory_mib`).
    drivers: LocalBackend,
    runs_dir: PathBuf,
    /// Records of runs not yet seen ended.
    live: Mutex<BTreeMap<RunKey, RunRecord>>,
    /// The last read of `/json/`: when, and what it gave (`None`: it failed).
    state: Mutex<Option<(Instant, Option<Arc<MasterState>>)>>,
    /// The allocatable room last seen, reported while the master cannot be reached.
    last_allocatable: Mutex<Vec<NodeCapacity>>,
    /// Whether the last read of the master succeeded (to log changes once).
    reachable: AtomicBool,
    /// Memory (MiB) a client-mode driver was refused for; while this host has less free for
    /// drivers, the snapshot shows no free room, so that jobs wait instead of being admitted
    /// and sent back again.
    driver_short: Mutex<Option<u64>>,
    /// Serialises cluster-mode submits.
    submit_lock: tokio::sync::Mutex<()>,
    /// What was seen happen to running applications, until `take_notes` hands it over.
    notes: Mutex<Vec<RunNote>>,
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
            image_spark_home: cfg.image_spark_home.clone(),
            kill_grace: cfg.kill_grace,
        })
        .await?;
        let runs = cfg.data_dir.join("runs");
        let runs_dir = tokio::fs::canonicalize(&runs)
            .await
            .map_err(io_err(format!("resolving {}", runs.display())))?;
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
    async fn load_records(&self) {
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

    async fn record(&self, job_id: &str, attempt: u32) -> Option<RunRecord> {
        let key = (job_id.to_string(), attempt);
        if let Some(r) = lock(&self.live).get(&key) {
            return Some(r.clone());
        }
        if !valid_job_id(job_id) {
            return None;
        }
        read_record(&self.run_dir(job_id, attempt)).await
    }

    async fn save_record(&self, rec: &RunRecord) -> Result<(), BackendError> {
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
    async fn ended(&self, rec: &RunRecord) {
        lock(&self.live).remove(&(rec.job_id.clone(), rec.attempt));
        if rec.is_cluster() {
            let path = self.run_dir(&rec.job_id, rec.attempt).join(ENDED);
            if let Err(e) = tokio::fs::write(&path, b"").await {
                tracing::warn!(path = %path.display(), "spark-standalone: {e}");
            }
        }
    }

    // ---- HTTP ----

    fn web(&self, path: &str) -> String {
        format!("{}{}", self.cfg.web_url.trim_end_matches('/'), path)
    }

    fn rest(&self, path: &str) -> Result<String, BackendError> {
        let base = self.cfg.rest_url.as_deref().ok_or_else(|| {
            BackendError::Config(
                "rest_url is not configured (the master's REST submission server)".into(),
            )
        })?;
        Ok(format!("{}{}", base.trim_end_matches('/'), path))
    }

    /// Reads `/json/` afresh and caches the outcome.
    async fn fetch_state(&self) -> Result<Arc<MasterState>, BackendError> {
        let r = self.read_state().await;
        let before = lock(&self.state)
            .replace((Instant::now(), r.as_ref().ok().cloned()))
            .and_then(|(_, s)| s);
        if let (Some(before), Ok(now)) = (before, &r) {
            self.note_losses(&before, now);
        }
        r
    }

    /// Records, for the timelines of running jobs, workers lost and cores taken from their
    /// applications between two reads of the master.
    fn note_losses(&self, before: &MasterState, now: &MasterState) {
        let runs: Vec<(String, u32, String)> = lock(&self.live)
            .values()
            .filter_map(|r| Some((r.job_id.clone(), r.attempt, r.app_id.clone()?)))
            .collect();
        if runs.is_empty() {
            return;
        }
        let apps: Vec<&str> = runs.iter().map(|(_, _, a)| a.as_str()).collect();
        let found = now.losses_since(before, &apps);
        let mut notes = lock(&self.notes);
        for (app, message) in found {
            for (job_id, attempt, _) in runs.iter().filter(|(_, _, a)| *a == app) {
                tracing::warn!(job = %job_id, "spark-standalone: {message}");
                notes.push(RunNote {
                    job_id: job_id.clone(),
                    attempt: *attempt,
                    message: message.clone(),
                });
            }
        }
    }

    async fn read_state(&self) -> Result<Arc<MasterState>, BackendError> {
        let url = self.web("/json/");
        let text = async {
            let resp = self.http.get(&url).send().await?.error_for_status()?;
            resp.text().await
        }
        .await
        .map_err(|e| BackendError::Unavailable(format!("Spark master at {url}: {e}")))?;
        let state = MasterState::parse(&text).map_err(|e| {
            BackendError::Unavailable(format!("Spark master at {url}: unreadable /json/: {e}"))
        })?;
        Ok(Arc::new(state))
    }

    /// The cached `/json/` if recent, else a fresh one; `None` when the master cannot be read
    /// (a recent failure is not retried, so that a master that does not answer slows a cycle
    /// down once, not once per job).
    async fn recent_state(&self) -> Option<Arc<MasterState>> {
        if let Some((at, s)) = lock(&self.state).as_ref()
            && at.elapsed() < STATE_MAX_AGE
        {
            return s.clone();
        }
        self.fetch_state().await.ok()
    }

    /// True when the last read of the master, a moment ago, failed.
    fn master_recently_down(&self) -> bool {
        matches!(lock(&self.state).as_ref(), Some((at, None)) if at.elapsed() < STATE_MAX_AGE)
    }

    fn note_reachable(&self, ok: bool, why: &str) {
        let was = self.reachable.swap(ok, Ordering::Relaxed);
        match (was, ok) {
            (true, false) => tracing::warn!(
                "spark-standalone: master unavailable, admitting nothing until it is back: {why}"
            ),
            (false, true) => tracing::info!("spark-standalone: master available again"),
            _ => {}
        }
    }

    async fn rest_call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<RestResponse, BackendError> {
        let resp = req
            .send()
            .await
            .map_err(|e| BackendError::Unavailable(format!("{what}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| BackendError::Unavailable(format!("{what}: {e}")))?;
        let parsed: Option<RestResponse> = serde_json::from_str(&text).ok();
        match parsed {
            Some(r) if status.is_success() => Ok(r),
            other => {
                let why = other
                    .map(|r| r.short_message())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
                let msg = format!("{what}: {status}: {why}");
                Err(if status.is_server_error() || status.is_success() {
                    BackendError::Unavailable(msg)
                } else {
                    BackendError::Rejected(msg)
                })
            }
        }
    }

    // ---- application ids ----

    /// The run's application id: recorded, or found now in the driver's log (and recorded).
    async fn discover_app_id(
        &self,
        rec: &RunRecord,
        state: Option<&MasterState>,
    ) -> Option<String> {
        if let Some(id) = &rec.app_id {
            return Some(id.clone());
        }
        let found = if rec.is_cluster() {
            let driver_id = rec.driver_id.as_deref()?;
            let state = state?;
            let worker = state.driver(driver_id)?.worker.as_deref()?;
            let webui = state.worker(worker)?.webuiaddress.clone();
            let piece = self
                .worker_log(&webui, driver_id, "stderr", 0, APP_ID_SCAN_REMOTE_BYTES)
                .await
                .ok()?;
            app_id_in_log(&piece.data)
        } else {
            let log = self.run_dir(&rec.job_id, rec.attempt).join("output.log");
            let bytes = read_head(&log, APP_ID_SCAN_BYTES).await?;
            app_id_in_log(&String::from_utf8_lossy(&bytes))
        }?;
        let mut updated = rec.clone();
        updated.app_id = Some(found.clone());
        if let Err(e) = self.save_record(&updated).await {
            tracing::warn!(job = %rec.job_id, "spark-standalone: recording the app id: {e}");
        }
        let key = (rec.job_id.clone(), rec.attempt);
        if let Some(r) = lock(&self.live).get_mut(&key) {
            r.app_id = Some(found.clone());
        }
        tracing::info!(job = %rec.job_id, attempt = rec.attempt, app_id = %found,
            "spark-standalone: application registered");
        Some(found)
    }

    async fn worker_log(
        &self,
        webui: &str,
        driver_id: &str,
        log_type: &str,
        offset: u64,
        len: u64,
    ) -> Result<WorkerLogPiece, BackendError> {
        let url = format!("{}/log/", webui.trim_end_matches('/'));
        let text = async {
            self.http
                .get(&url)
                .query(&[
                    ("driverId", driver_id),
                    ("logType", log_type),
                    ("offset", &offset.to_string()),
                    ("byteLength", &len.to_string()),
                ])
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        }
        .await
        .map_err(|e| BackendError::Unavailable(format!("worker log at {url}: {e}")))?;
        parse_worker_log(&text).ok_or_else(|| {
            BackendError::Unavailable(format!(
                "worker log at {url}: unexpected answer {:?}",
                text.lines().next().unwrap_or("")
            ))
        })
    }

    /// Job ids of live runs whose application holds all the room it was admitted for.
    async fn visible(&self, state: &MasterState) -> BTreeSet<String> {
        let records: Vec<RunRecord> = lock(&self.live).values().cloned().collect();
        let mut visible = BTreeSet::new();
        for rec in records {
            if rec.is_cluster() {
                let driver_running = rec
                    .driver_id
                    .as_deref()
                    .and_then(|d| state.driver(d))
                    .is_some_and(|d| d.state == "RUNNING");
                if !driver_running {
                    continue;
                }
            }
            if let Some(app) = self.discover_app_id(&rec, Some(state)).await
                && state.app_holds(&app, rec.cores_max)
            {
                visible.insert(rec.job_id.clone());
            }
        }
        visible
    }

    // ---- client mode ----

    async fn submit_client(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        let home = self.drivers.spark_home().ok_or_else(|| {
            BackendError::Config(
                "spark-submit not found: run scripts/ensure-pyspark.sh (it installs pyspark into \
                 .venv) or set [backend] spark_home (or $SPARK_HOME)"
                    .into(),
            )
        })?;
        let argv = client_argv(&self.cfg, home, &req.job, &req.demand)?;
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
        let result = self
            .drivers
            .submit_with(&local_req, |dir| {
                Ok(Launch {
                    argv,
                    env,
                    cwd: dir.to_path_buf(),
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

    async fn status_client(
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

    /// The status of a run whose driver is alive: running once its application is registered
    /// and not WAITING for executors; pending before that (for at most [`APP_ID_GRACE`] after
    /// the submit, in case the driver's log never names its application).
    async fn running_or_pending(&self, rec: &RunRecord) -> RunStatus {
        let state = self.recent_state().await;
        match self.discover_app_id(rec, state.as_deref()).await {
            Some(app) => match state.as_deref().and_then(|s| s.active_app(&app)) {
                Some(a) if a.state == "WAITING" => RunStatus::Pending,
                _ => RunStatus::Running,
            },
            None => {
                let age = now_ms().saturating_sub(rec.submitted_ms);
                if u128::from(age) < APP_ID_GRACE.as_millis() {
                    RunStatus::Pending
                } else {
                    RunStatus::Running
                }
            }
        }
    }

    /// Free memory for client-mode drivers on this host, in MiB.
    async fn driver_room(&self) -> u64 {
        match self.drivers.capacity().await {
            Ok(r) => r.snapshot.nodes.first().map(|n| n.mem_mib).unwrap_or(0),
            Err(_) => 0,
        }
    }

    // ---- cluster mode ----

    async fn submit_cluster(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        if !valid_job_id(&req.job_id) {
            return Err(BackendError::Rejected(format!(
                "job id {:?} cannot name a run directory",
                req.job_id
            )));
        }
        let body = create_request(&self.cfg, self.drivers.spark_home(), &req.job, &req.demand)?;
        let (count, cores, _) = executors_of(&req.demand)?;
        let main_class = body["mainClass"].as_str().map(str::to_string);
        let _guard = self.submit_lock.lock().await;
        let key = (req.job_id.clone(), req.attempt);
        if let Some(rec) = self.record(&req.job_id, req.attempt).await {
            if let Some(d) = &rec.driver_id {
                return Ok(Submitted {
                    backend_ref: d.clone(),
                    already_existed: true,
                });
            }
            // A create was sent and sluice stopped before it wrote the answer: adopt the
            // driver the master lists for this main class since then, if there is one.
            let state = self.fetch_state().await?;
            let claimed: BTreeSet<String> = lock(&self.live)
                .values()
                .filter_map(|r| r.driver_id.clone())
                .collect();
            let since = i64::try_from(rec.submitted_ms).unwrap_or(i64::MAX) - 1000;
            let adopt = state
                .activedrivers
                .iter()
                .chain(&state.completeddrivers)
                .filter(|d| Some(&d.mainclass) == rec.main_class.as_ref())
                .filter(|d| d.start_ms().is_some_and(|t| t >= since))
                .filter(|d| !claimed.contains(&d.id))
                .min_by_key(|d| d.start_ms());
            if let Some(d) = adopt {
                let mut rec = rec.clone();
                rec.driver_id = Some(d.id.clone());
                self.save_record(&rec).await?;
                lock(&self.live).insert(key, rec);
                tracing::info!(job = %req.job_id, driver = %d.id,
                    "spark-standalone: adopted the driver of an interrupted submit");
                return Ok(Submitted {
                    backend_ref: d.id.clone(),
                    already_existed: true,
                });
            }
        }
        let mut rec = RunRecord {
            job_id: req.job_id.clone(),
            attempt: req.attempt,
            mode: DeployMode::Cluster.as_str().into(),
            submitted_ms: now_ms(),
            cores_max: count.saturating_mul(cores),
            main_class,
            driver_id: None,
            app_id: None,
        };
        self.save_record(&rec).await?;
        let url = self.rest("/v1/submissions/create")?;
        let sent = self.http.post(&url).json(&body).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if e.is_connect() {
                    // Nothing reached the master: the attempt may be submitted afresh.
                    let _ =
                        tokio::fs::remove_file(self.run_dir(&req.job_id, req.attempt).join(RECORD))
                            .await;
                }
                return Err(BackendError::Unavailable(format!("{url}: {e}")));
            }
        };
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| BackendError::Unavailable(format!("{url}: {e}")))?;
        let answer: RestResponse = serde_json::from_str(&text).unwrap_or_default();
        let Some(driver_id) = answer
            .submission_id
            .clone()
            .filter(|_| answer.success == Some(true))
        else {
            let _ =
                tokio::fs::remove_file(self.run_dir(&req.job_id, req.attempt).join(RECORD)).await;
            let why = match answer.short_message() {
                m if m.is_empty() => format!("{status}: {}", text.lines().next().unwrap_or("")),
                m => m,
            };
            return Err(if status.is_server_error() || why.contains("ALIVE state") {
                BackendError::Unavailable(format!("the Spark master refused the driver: {why}"))
            } else {
                BackendError::Rejected(format!("the Spark master refused the driver: {why}"))
            });
        };
        rec.driver_id = Some(driver_id.clone());
        self.save_record(&rec).await?;
        lock(&self.live).insert(key, rec);
        tracing::info!(job = %req.job_id, attempt = req.attempt, driver = %driver_id,
            "spark-standalone: driver submitted");
        Ok(Submitted {
            backend_ref: driver_id,
            already_existed: false,
        })
    }

    async fn status_cluster(&self, rec: &RunRecord) -> Result<RunStatus, BackendError> {
        let Some(driver_id) = rec.driver_id.as_deref() else {
            return Ok(RunStatus::Lost {
                message: "no driver was recorded for this run (sluice stopped while submitting \
                          it, and the master lists no matching driver)"
                    .into(),
            });
        };
        if self.master_recently_down() {
            return Err(BackendError::Unavailable(
                "the Spark master did not answer a moment ago".into(),
            ));
        }
        let url = self.rest(&format!("/v1/submissions/status/{driver_id}"))?;
        let resp = self
            .rest_call(self.http.get(&url), "Spark master REST status")
            .await?;
        match driver_status(&resp, driver_id) {
            RunStatus::Running => Ok(self.running_or_pending(rec).await),
            RunStatus::Pending => Ok(RunStatus::Pending),
            ended => {
                self.ended(rec).await;
                Ok(ended)
            }
        }
    }

    async fn cancel_cluster(&self, rec: &RunRecord) -> Result<(), BackendError> {
        let Some(driver_id) = rec.driver_id.as_deref() else {
            return Ok(());
        };
        let url = self.rest(&format!("/v1/submissions/kill/{driver_id}"))?;
        let resp = self
            .rest_call(self.http.post(&url), "Spark master REST kill")
            .await?;
        if resp.success == Some(true) {
            tracing::info!(job = %rec.job_id, driver = %driver_id, "spark-standalone: kill sent");
        } else {
            let why = resp.short_message();
            if why.contains("ALIVE state") {
                return Err(BackendError::Unavailable(format!(
                    "the Spark master cannot kill {driver_id} now: {why}"
                )));
            }
            // Otherwise "has already finished or does not exist".
        }
        self.ended(rec).await;
        Ok(())
    }

    /// Cluster-mode logs: the driver's stdout and stderr from its worker's web UI. The offset
    /// packs both positions (stdout in the high 32 bits, stderr in the low 32 bits); each call
    /// returns what is new in stdout, then what is new in stderr.
    async fn logs_cluster(
        &self,
        rec: &RunRecord,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let (out_off, err_off) = (offset >> 32, offset & 0xFFFF_FFFF);
        let Some(driver_id) = rec.driver_id.as_deref() else {
            return Ok(LogChunk {
                data: String::new(),
                next_offset: offset,
                complete: true,
            });
        };
        let state = self.fetch_state().await?;
        let driver = state.driver(driver_id);
        let ended = driver.is_some_and(|d| !matches!(d.state.as_str(), "RUNNING" | "SUBMITTED"));
        let Some(webui) = driver
            .and_then(|d| d.worker.as_deref())
            .and_then(|w| state.worker(w))
            .map(|w| w.webuiaddress.clone())
        else {
            return Ok(LogChunk {
                data: String::new(),
                next_offset: offset,
                complete: driver.is_none() || ended,
            });
        };
        let half = (max_bytes as u64 / 2).max(1);
        let out = self
            .worker_log(&webui, driver_id, "stdout", out_off, half)
            .await?;
        let err = self
            .worker_log(&webui, driver_id, "stderr", err_off, half)
            .await?;
        let next_out = out.end.max(out_off).min(0xFFFF_FFFF);
        let next_err = err.end.max(err_off).min(0xFFFF_FFFF);
        let mut data = out.data;
        data.push_str(&err.data);
        Ok(LogChunk {
            data,
            next_offset: (next_out << 32) | next_err,
            complete: ended && next_out >= out.total && next_err >= err.total,
        })
    }
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), BackendError> {
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

async fn read_record(dir: &Path) -> Option<RunRecord> {
    let bytes = tokio::fs::read(dir.join(RECORD)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

async fn read_head(path: &Path, max: u64) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).await.ok()?;
    Some(buf)
}

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::document::parse_job;
    use sluice_core::spec::{Levels, ParseOptions};

    #[test]
    fn worker_loss_under_a_running_app_is_noted() {
        let busy = fixture("master-busy.json");
        let before = MasterState::parse(&busy).unwrap();
        // The same master a moment later: the worker died and the app lost its core.
        let mut v: serde_json::Value = serde_json::from_str(&busy).unwrap();
        v["workers"][0]["state"] = "DEAD".into();
        v["activeapps"][0]["cores"] = 0.into();
        let after = MasterState::parse(&v.to_string()).unwrap();
        let app = "app-20261127053742-0003";
        let notes = after.losses_since(&before, &[app, "app-not-ours"]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, app);
        let msg = &notes[0].1;
        assert!(msg.contains("worker 127.0.0.1:41131 (DEAD) lost"), "{msg}");
        assert!(msg.contains("now holds 0 cores (had 1)"), "{msg}");
        // Nothing changed: nothing to note.
        assert!(before.losses_since(&before, &[app]).is_empty());
        // A worker gone from the list entirely counts as lost too.
        v["workers"] = serde_json::json!([]);
        v["activeapps"][0]["cores"] = 1.into();
        let gone = MasterState::parse(&v.to_string()).unwrap();
        let notes = gone.losses_since(&before, &[app]);
        assert!(notes[0].1.contains("gone from the master"), "{notes:?}");
    }

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/standalone")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn parse(text: &str) -> Job {
        let levels = Levels::default();
        parse_job(
            text,
            ParseOptions {
                priority: None,
                levels: &levels,
            },
        )
        .expect("valid job")
    }

    fn cfg(mode: DeployMode) -> StandaloneConfig {
        let mut c = StandaloneConfig::new("spark://10.0.0.1:7077", "http://10.0.0.1:8080", "/d");
        c.deploy_mode = mode;
        c.rest_url = Some("http://10.0.0.1:6066".into());
        c
    }

    fn pairs(argv: &[String], flag: &str) -> Vec<String> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    /// `/json/` of a real Spark 4.0.1 master (pip's pyspark, `spark-class ... Master`) with one
    /// worker of 2 cores / 2 GiB running a cluster-mode driver (1 core, 512 MiB) and its
    /// application (1 executor of 1 core, 512 MiB), and a client-mode application WAITING for
    /// a 3 GiB executor no worker can hold.
    #[test]
    fn parses_a_real_busy_master() {
        let s = MasterState::parse(&fixture("master-busy.json")).unwrap();
        assert!(s.is_alive());
        assert_eq!(s.url, "spark://127.0.0.1:17077");
        let snap = s.snapshot();
        assert!(snap.available);
        assert_eq!(
            snap.nodes,
            vec![NodeCapacity::new("127.0.0.1:41131", 0, 1024, None)]
        );
        assert_eq!(
            snap.allocatable,
            vec![NodeCapacity::new("127.0.0.1:41131", 2000, 2048, None)]
        );
        // The running application holds its 1 core; the waiting one holds nothing.
        assert!(s.app_holds("app-20261127053742-0003", 1));
        assert!(!s.app_holds("app-20261127053742-0003", 2));
        let waiting = s.active_app("app-20261127053736-0002").unwrap();
        assert_eq!(
            (
                waiting.state.as_str(),
                waiting.cores,
                waiting.executor_memory_mib()
            ),
            ("WAITING", 0, Some(3072))
        );
        assert!(!s.app_holds("app-20261127053736-0002", 1));
        // Finished applications are not active.
        assert!(s.active_app("app-20261127053209-0000").is_none());
        let d = s.driver("driver-20261127053732-0001").unwrap();
        assert_eq!(d.state, "RUNNING");
        assert_eq!(d.mainclass, "SluicePi");
        assert_eq!(d.start_ms(), Some(1795757852638));
        let w = s.worker(d.worker.as_deref().unwrap()).unwrap();
        assert_eq!(w.webuiaddress, "http://127.0.0.1:18081");
        assert_eq!(
            s.driver("driver-20261127053309-0000").unwrap().state,
            "FINISHED"
        );
    }

    /// A worker killed and another started: the master lists the dead one (with its full,
    /// meaningless free room) until it forgets it; only the ALIVE one is a node.
    #[test]
    fn dead_workers_are_not_nodes() {
        let s = MasterState::parse(&fixture("master-dead-worker.json")).unwrap();
        assert_eq!(s.workers.len(), 2);
        let snap = s.snapshot();
        assert_eq!(snap.nodes.len(), 1);
        assert_eq!(snap.nodes[0].name, "127.0.0.1:37759");
        assert_eq!(snap.allocatable.len(), 1);
        let idle = MasterState::parse(&fixture("master-after.json")).unwrap();
        assert!(idle.activeapps.is_empty());
        assert_eq!(idle.completedapps.len(), 4);
        assert_eq!(
            idle.snapshot().nodes,
            vec![NodeCapacity::new("127.0.0.1:41131", 2000, 2048, None)]
        );
    }

    #[test]
    fn standby_and_old_masters() {
        // A standby master is not available.
        let s = MasterState::parse(r#"{"url":"spark://h:7077","workers":[],"status":"STANDBY"}"#)
            .unwrap();
        assert!(!s.snapshot().available);
        // Spark 2.x wrote no coresfree/memoryfree.
        let s = MasterState::parse(
            r#"{"status":"ALIVE","workers":[{"id":"w","host":"h","port":1,"cores":8,
               "coresused":3,"memory":4096,"memoryused":1024,"state":"ALIVE"}]}"#,
        )
        .unwrap();
        assert_eq!(
            s.snapshot().nodes,
            vec![NodeCapacity::new("h:1", 5000, 3072, None)]
        );
        assert!(MasterState::parse("<html>").is_err());
    }

    #[test]
    fn rest_answers_of_a_real_master() {
        let r: RestResponse = serde_json::from_str(&fixture("rest-status-finished.json")).unwrap();
        assert_eq!(
            driver_status(&r, "driver-20261127053732-0001"),
            RunStatus::Succeeded
        );
        let r: RestResponse = serde_json::from_str(&fixture("rest-status-failed.json")).unwrap();
        match driver_status(&r, "driver-20261127053801-0002") {
            RunStatus::Failed { message, .. } => {
                assert!(message.contains("driver-20261127053801-0002"), "{message}");
                assert!(message.contains("worker-20261127053157"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let r: RestResponse = serde_json::from_str(&fixture("rest-status-unknown.json")).unwrap();
        assert!(matches!(
            driver_status(&r, "driver-20990101000000-0042"),
            RunStatus::Lost { message } if message.contains("recoveryMode")
        ));
        let r: RestResponse = serde_json::from_str(&fixture("rest-kill-unknown.json")).unwrap();
        assert_eq!(r.success, Some(false));
        assert!(
            r.short_message()
                .contains("already finished or does not exist")
        );
        let r: RestResponse = serde_json::from_str(&fixture("rest-create-invalid.json")).unwrap();
        assert_eq!(r.action, "ErrorResponse");
        assert!(
            r.short_message().starts_with("Malformed request") && !r.short_message().contains('\n'),
            "{}",
            r.short_message()
        );
        for (state, want) in [
            ("RUNNING", RunStatus::Running),
            ("SUBMITTED", RunStatus::Pending),
            ("RELAUNCHING", RunStatus::Pending),
        ] {
            let r = RestResponse {
                success: Some(true),
                driver_state: Some(state.into()),
                ..Default::default()
            };
            assert_eq!(driver_status(&r, "d"), want, "{state}");
        }
    }

    #[test]
    fn app_id_and_worker_logs() {
        let piece = parse_worker_log(&fixture("worker-log-stderr.txt")).unwrap();
        assert_eq!((piece.start, piece.end, piece.total), (0, 12005, 12005));
        assert_eq!(
            app_id_in_log(&piece.data).as_deref(),
            Some("app-20261127053742-0003")
        );
        let out = parse_worker_log(&fixture("worker-log-stdout.txt")).unwrap();
        assert_eq!(out.data, "Pi is roughly 3.14351\n");
        assert_eq!(out.total, 22);
        assert_eq!(app_id_in_log("nothing here"), None);
        assert_eq!(
            app_id_in_log("x INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-1-0002\ny")
                .as_deref(),
            Some("app-1-0002")
        );
        assert_eq!(parse_worker_log("<html>"), None);
    }

    #[test]
    fn client_argv_caps_the_application() {
        let job = parse(
            r#"name: pi
spark:
  type: Python
  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
  arguments: ["4"]
  sparkConf: {spark.cores.max: "64", spark.ui.enabled: "false", spark.executor.memory: 8g}
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 2, memory: 768m}
"#,
        );
        let mut c = cfg(DeployMode::Client);
        c.driver_host = Some("127.0.0.1".into());
        let b = standalone_job_demand(&job, DeployMode::Client).unwrap();
        let argv = client_argv(&c, Path::new("/sh"), &job, &b).unwrap();
        assert_eq!(argv[0], "/sh/bin/spark-submit");
        assert_eq!(pairs(&argv, "--master"), ["spark://10.0.0.1:7077"]);
        assert_eq!(pairs(&argv, "--name"), ["pi"]);
        let confs = pairs(&argv, "--conf");
        for want in [
            "spark.submit.deployMode=client",
            "spark.driver.memory=512m",
            "spark.executor.cores=1",
            "spark.executor.memory=768m",
            "spark.cores.max=2",
            "spark.ui.enabled=false",
            "spark.driver.host=127.0.0.1",
            "spark.driver.bindAddress=127.0.0.1",
        ] {
            assert!(confs.contains(&want.to_string()), "{want}: {confs:?}");
        }
        // The job's own cap and executor memory are replaced by the admitted ones.
        assert!(!confs.contains(&"spark.cores.max=64".to_string()));
        assert!(!confs.contains(&"spark.executor.memory=8g".to_string()));
        assert_eq!(
            &argv[argv.len() - 2..],
            ["/sh/examples/src/main/python/pi.py", "4"]
        );
        // Demand: executors only (the driver runs on this host), heap only.
        assert_eq!(b.pods.len(), 1);
        assert_eq!(b.total(), sluice_core::job::Resources::new(2000, 1536));
    }

    #[test]
    fn cluster_request_and_refusals() {
        let job = parse(
            r#"name: jpi
spark:
  type: Java
  mainApplicationFile: /apps/pi.jar
  mainClass: SluicePi
  arguments: ["4"]
  sparkConf: {spark.executor.cores: "7", spark.eventLog.enabled: "false"}
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 1, memory: 512m}
  deps: {jars: ["local:///opt/spark/jars/extra.jar"], packages: ["g:a:1"]}
"#,
        );
        let c = cfg(DeployMode::Cluster);
        let d = standalone_job_demand(&job, DeployMode::Cluster).unwrap();
        assert_eq!(d.total(), sluice_core::job::Resources::new(2000, 1024));
        let body = create_request(&c, Some(Path::new("/sh")), &job, &d).unwrap();
        assert_eq!(body["action"], "CreateSubmissionRequest");
        assert_eq!(body["appResource"], "file:/apps/pi.jar");
        assert_eq!(body["mainClass"], "SluicePi");
        assert_eq!(body["appArgs"], serde_json::json!(["4"]));
        let p = &body["sparkProperties"];
        assert_eq!(p["spark.master"], "spark://10.0.0.1:7077");
        assert_eq!(p["spark.submit.deployMode"], "cluster");
        assert_eq!(p["spark.driver.memory"], "512m");
        assert_eq!(p["spark.driver.cores"], "1");
        assert_eq!(p["spark.executor.cores"], "1");
        assert_eq!(p["spark.executor.memory"], "512m");
        assert_eq!(p["spark.cores.max"], "1");
        assert_eq!(p["spark.app.name"], "jpi");
        assert_eq!(p["spark.eventLog.enabled"], "false");
        assert_eq!(p["spark.jars"], "file:/apps/pi.jar,file:/sh/jars/extra.jar");
        assert_eq!(p["spark.jars.packages"], "g:a:1");
        // Python cannot run in cluster mode; the message says why and what to do.
        let py = parse(
            "name: py\nspark:\n  mainApplicationFile: /a/pi.py\n  executor: {instances: 1}\n",
        );
        let e = standalone_job_demand(&py, DeployMode::Cluster)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cluster deploy mode") && e.contains("deploy_mode = \"client\""),
            "{e}"
        );
        assert!(standalone_job_demand(&py, DeployMode::Client).is_ok());
        let no_class = parse("name: j\nspark:\n  type: Scala\n  mainApplicationFile: /a/x.jar\n");
        let e = standalone_job_demand(&no_class, DeployMode::Cluster)
            .unwrap_err()
            .to_string();
        assert!(e.contains("spark.mainClass"), "{e}");
        let cmd = parse("name: c\ncommand:\n  argv: [true]\n");
        let e = standalone_job_demand(&cmd, DeployMode::Client)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Spark applications only"), "{e}");
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("master_url", "spark://h:7077", &["spark://"]).is_ok());
        for bad in ["h:7077", "spark://", "http://h:7077", "spark:///x"] {
            let e = check_url("master_url", bad, &["spark://"]).unwrap_err();
            assert!(e.to_string().contains("master_url"), "{e}");
        }
    }
}
