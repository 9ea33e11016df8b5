//! Where sluice runs jobs.
//!
//! One [`Backend`] trait, implemented by the local machine ([`local`]), a Spark standalone
//! cluster ([`standalone`]), Kubernetes with the Spark Operator and a simulated cluster
//! ([`simulated`]). A backend reports a capacity
//! [`Snapshot`] (nodes with free cpu, memory and slots, and whether it is reachable), submits a
//! job attempt idempotently, reports its status, cancels it and returns its logs.
//!
//! Idempotency: a run is named by `(job id, attempt)`. Submitting the same attempt twice (after a
//! crash between "submitted" and the store write, say) must not start a second run: the backend
//! answers with the existing run's reference.

use std::collections::BTreeSet;

use sluice_core::Snapshot;
use sluice_core::job::Demand;
use sluice_core::spec::Job;

pub mod clock;
pub mod eventlog;
mod fsutil;
pub mod kinds;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod local;
mod secrets;
pub mod simulated;
pub mod spark_submit;
pub mod standalone;

/// Installs ring as rustls' process-wide crypto provider (once; later calls do nothing). Every
/// HTTPS client of sluice (reqwest, kube) takes it from there: call this before building one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Errors from a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot be reached or is not ready; try again later.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend refused the job for want of room right now; requeue it.
    #[error("no room in the backend: {0}")]
    NoRoom(String),
    /// The backend refused the job as invalid; retrying will not help.
    #[error("job refused by the backend: {0}")]
    Rejected(String),
    /// The backend has no run for this job attempt.
    #[error("no run for job {job_id} attempt {attempt}")]
    NotFound {
        /// The job.
        job_id: String,
        /// The attempt.
        attempt: u32,
    },
    /// Local I/O failed (files, processes).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The backend is misconfigured.
    #[error("backend configuration: {0}")]
    Config(String),
    /// The submission is under way but not done (placeholder pods waiting to be scheduled, say):
    /// keep the job admitted and call submit again later.
    #[error("submission under way: {0}")]
    NotYet(String),
    /// What the run used could not be measured; says why (its event log is missing, say).
    #[error("not measured: {0}")]
    Unmeasured(String),
}

/// What the backend sees now.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityReport {
    /// Free and allocatable room per node, and reachability.
    pub snapshot: Snapshot,
    /// Ids of the jobs whose resources the backend already counts as used in `snapshot`.
    /// Jobs admitted by sluice but not in this set are held as reservations by the server.
    pub visible: BTreeSet<String>,
}

/// One run of a job: what [`Backend::submit`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitRequest {
    /// The job id.
    pub job_id: String,
    /// The attempt number (from 1).
    pub attempt: u32,
    /// The validated job.
    pub job: Job,
    /// The demand sluice admitted it with; the backend must not let it take more.
    pub demand: Demand,
}

/// A handle on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    /// The job id.
    pub job_id: String,
    /// The attempt.
    pub attempt: u32,
    /// The backend's reference, as returned by submit (a pid, an app id, a resource name).
    pub backend_ref: Option<String>,
}

/// What [`Backend::submit`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The backend's reference for the run.
    pub backend_ref: String,
    /// True when the run already existed (a repeated submit of the same attempt).
    pub already_existed: bool,
}

/// The state of a run as the backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// Accepted, not yet running (waiting for pods, for a worker...).
    Pending,
    /// Running.
    Running,
    /// Finished with success.
    Succeeded,
    /// Finished with failure.
    Failed {
        /// Exit code, where there is one.
        exit_code: Option<i32>,
        /// What went wrong, for people.
        message: String,
    },
    /// The backend has no trace of the run (lost while sluice was down, say).
    Lost {
        /// What is known.
        message: String,
    },
    /// The backend stopped the run because it cannot make progress (the deadlock watchdog:
    /// driver running, executors never scheduled); the job should go back to its queue for a
    /// new attempt.
    Requeue {
        /// Why, for people (it goes into the job's history).
        message: String,
    },
}

/// Something a backend saw happen to a run, for the job's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNote {
    /// The job.
    pub job_id: String,
    /// The attempt the note is about.
    pub attempt: u32,
    /// What happened, for people.
    pub message: String,
}

/// A job sluice holds back, as the last scheduling cycle left it: what
/// [`Backend::note_waiting`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The job.
    pub job_id: String,
    /// The attempt it will run as.
    pub attempt: u32,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Why it waits, as `describe` shows it.
    pub reason: String,
    /// Its 1-based position among the waiting jobs of its namespace.
    pub position: u32,
}

impl RunStatus {
    /// True for the states a run does not leave (succeeded, failed, lost).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed { .. } | RunStatus::Lost { .. }
        )
    }
}

/// A piece of a run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// Bytes from `offset` (lossy UTF-8).
    pub data: String,
    /// Offset to ask for next.
    pub next_offset: u64,
    /// True when the run has ended and `next_offset` is the end of the log.
    pub complete: bool,
}

/// The end of a run's log (for `logs?tail=N`): at most the last `max_bytes` of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEnd {
    /// The last bytes of the log (lossy UTF-8; the first line may be cut when `cut`).
    pub data: String,
    /// True when the log holds more before `data`.
    pub cut: bool,
    /// Offset to ask [`Backend::logs`] for next (what is written after `data`).
    pub next_offset: u64,
    /// True when the run has ended and `next_offset` is the end of the log.
    pub complete: bool,
}

/// How many chunks [`Backend::log_end`]'s default reads at most (of 1 MiB each).
const LOG_END_MAX_CHUNKS: usize = 4096;

/// Where jobs run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and metrics ("local", "spark-standalone", "kubernetes").
    fn kind(&self) -> &'static str;
    /// The capacity snapshot now. An unreachable backend returns a snapshot with
    /// `available = false` (and its last known allocatable room), not an error.
    async fn capacity(&self) -> Result<CapacityReport, BackendError>;
    /// What the job needs from this backend, checked at submit (against the empty cluster) and
    /// stored with the job for every later fit check. Default: the Kubernetes pod demand
    /// ([`sluice_core::sizing::job_demand`]). A backend that places work by other rules (Spark
    /// standalone: executor heap only, no driver in client mode) overrides it, and refuses here
    /// ([`BackendError::Rejected`]) a job it can never run, with the reason.
    fn demand(&self, job: &Job) -> Result<Demand, BackendError> {
        sluice_core::sizing::job_demand(job).map_err(|e| BackendError::Rejected(e.to_string()))
    }
    /// Why the job can never run on this backend as it is now configured, beyond room
    /// (`fits_empty` checks that): on Kubernetes, a driver or executor `nodeSelector`, affinity
    /// or untolerated taint that rules out every node, a pod bigger than every node that accepts
    /// it, or a ResourceQuota whose hard limit the job exceeds outright. Called at submit (the
    /// API answers 422 with the reason) and when a schedule is created; temporary conditions
    /// (nodes not Ready, cordoned, quota in use) never count, and a backend that does not know
    /// its cluster yet answers `None`. Must be cheap and do no I/O. Default: `None`.
    fn never_runs(&self, _job: &Job, _demand: &Demand) -> Option<String> {
        None
    }
    /// Starts a run of the job attempt; idempotent per (job id, attempt).
    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError>;
    /// The state of a run.
    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError>;
    /// Stops a run (a run already ended is not an error).
    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError>;
    /// Stops a run, giving it `grace` to end on its own before it is killed (preemption: the
    /// local backend sends SIGTERM, then SIGKILL after `grace` instead of its configured kill
    /// grace). Default: [`Backend::cancel`] (the simulated run ends at once; Kubernetes deletes
    /// the SparkApplication and its pods get their own termination grace).
    async fn cancel_within(
        &self,
        run: &RunRef,
        grace: std::time::Duration,
    ) -> Result<(), BackendError> {
        let _ = grace;
        self.cancel(run).await
    }
    /// The Spark application id of a run, once the backend knows it (a Spark master assigns it
    /// when the driver registers, after submit). The server records it as the job's
    /// `backend_ref` when the job starts running. Default: none.
    async fn app_id(&self, _run: &RunRef) -> Option<String> {
        None
    }
    /// Whether [`Backend::constraints`] may answer anything but none (the server then reads
    /// queued jobs' full records for the cycle). Default: false.
    fn has_constraints(&self) -> bool {
        false
    }
    /// What the backend adds to a queued job's fit beyond free room per node: which nodes each
    /// role may use (node selectors, taints) and whether something else holds it back (a
    /// namespace quota). `nodes` is the snapshot's node list of this cycle. Called for every
    /// queued job in every cycle, so it must be cheap and do no I/O. Default: no constraints.
    fn constraints(
        &self,
        _job: &sluice_core::record::JobRecord,
        _nodes: &[sluice_core::NodeCapacity],
    ) -> Option<sluice_core::cycle::Constraints> {
        None
    }
    /// Where the pods of the runs holding room are, for preemption (which must know what
    /// stopping a run frees on each node): job id to (node name, as in the capacity
    /// snapshot, and the pod's request) per pod placed. A job missing here has its placement
    /// estimated by the server. Must be cheap and do no I/O. Default: none.
    async fn placements(
        &self,
    ) -> std::collections::BTreeMap<String, Vec<(String, sluice_core::job::Resources)>> {
        std::collections::BTreeMap::new()
    }
    /// Whether [`Backend::note_waiting`] does anything (the server then tells it, off the
    /// tick, which jobs wait and why). Default: false.
    fn notes_waiting(&self) -> bool {
        false
    }
    /// Shows the users of the backend's own tools why sluice holds these jobs back (on
    /// Kubernetes: a `Waiting` Event each, for `kubectl get events`). The server calls it from
    /// a task of its own, never the tick, with only the jobs that started waiting or whose
    /// reason changed, a bounded number per call. Best effort: failures are the backend's to
    /// log. Default: nothing.
    async fn note_waiting(&self, _held: &[Held]) {}
    /// What the backend saw happen to runs since the last call (a worker lost under a running
    /// application, say), for the jobs' timelines; each note is returned once. Default: none.
    async fn take_notes(&self) -> Vec<RunNote> {
        Vec::new()
    }
    /// What an ended run used, measured where this backend can (the run's Spark event log, its
    /// process tree's resource usage); `end_ms` stands for the end of what the log leaves
    /// open. Called once the run has ended, off the scheduling loop; reading a large log takes
    /// a while, so implementations parse on a blocking thread. `Ok(None)`: nothing measured.
    /// Default: nothing.
    async fn usage(
        &self,
        _run: &RunRef,
        _end_ms: i64,
    ) -> Result<Option<sluice_core::cost::Measured>, BackendError> {
        Ok(None)
    }
    /// What the run produced beyond its exit code (a dbt run's nodes, from its
    /// `run_results.json`), read once the run has ended. `Ok(None)`: no result. Default: none.
    async fn result(
        &self,
        _run: &RunRef,
    ) -> Result<Option<sluice_core::run_result::RunResult>, BackendError> {
        Ok(None)
    }
    /// Up to `max_bytes` of the run's log from `offset`.
    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError>;
    /// The end of the run's log: its last `max_bytes` at most. The default reads the log
    /// forward through [`Backend::logs`] keeping only the end (offsets are the backend's own,
    /// not always byte counts); a backend that can seek in its log reads only the end.
    async fn log_end(&self, run: &RunRef, max_bytes: usize) -> Result<LogEnd, BackendError> {
        let mut offset = 0u64;
        let mut data = String::new();
        let mut cut = false;
        let mut complete = false;
        for _ in 0..LOG_END_MAX_CHUNKS {
            let c = self.logs(run, offset, 1 << 20).await?;
            let moved = c.next_offset != offset;
            data.push_str(&c.data);
            if data.len() > max_bytes {
                let mut from = data.len() - max_bytes;
                while !data.is_char_boundary(from) {
                    from += 1;
                }
                data.drain(..from);
                cut = true;
            }
            offset = c.next_offset;
            complete = c.complete;
            if c.complete || !moved {
                break;
            }
        }
        Ok(LogEnd {
            data,
            cut,
            next_offset: offset,
            complete,
        })
    }
}
