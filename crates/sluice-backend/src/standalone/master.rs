//! The master's `/json/` (its web UI's model of workers, applications and drivers), the answers
//! of its REST submission server and of a worker's `/log/` page: parsing and reading them (no
//! I/O).

use serde::Deserialize;
use sluice_core::{NodeCapacity, Snapshot};

use super::config::APP_ID_MARKER;
use crate::RunStatus;

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
