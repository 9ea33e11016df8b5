//! The simulated cluster: a real [`Backend`] whose nodes, runs and time are made up, for trying
//! sluice's scheduling at scale on a laptop, for table tests of the scheduler without processes,
//! for benchmarks and demos.
//!
//! **Nodes** come from the configuration ([`SimulatedConfig::nodes`]: groups of identical
//! nodes). A run places its driver and each executor on a node, first fit, as a cluster would
//! ([`Fitter`]); [`Backend::capacity`] reports each node's room minus the pods of the runs that
//! hold it (pending or running), and those runs' jobs as `visible`. A submit that does not fit
//! the free room is [`BackendError::NoRoom`].
//!
//! **Time** is read from the [`Clock`] given at construction (a test drives a
//! [`crate::clock::ManualClock`]). A run is pending for `start_delay`, then runs for its
//! duration, then ends as its outcome says; its room is free from then on.
//!
//! **A job's duration** is its label [`DURATION_LABEL`] (`sluice.io/sim-duration: 5m`), else a
//! sample of the configured distribution keyed by (seed, job id, attempt): the same seed gives
//! the same durations. **Its outcome** is its label [`OUTCOME_LABEL`]: `succeed` (the default),
//! `fail` (exit code 1), `oom` (exit code 137 with the local backend's message, so that the
//! retry classifier sees an out-of-memory kill) or `deadlock`: the first attempt is half-started
//! (its driver runs, its executors never do) until, at the end of its duration, the backend's
//! deadlock watchdog kills it and answers [`RunStatus::Requeue`], as the Kubernetes backend's
//! watchdog does; later attempts succeed. Both labels are checked when the job is submitted
//! ([`Backend::demand`]).
//!
//! A cancel ends the run at once (exit code 143) and frees its room; logs are a few synthetic
//! lines.

mod config;
mod ledger;
mod rng;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use sluice_core::capacity::Fitter;
use sluice_core::job::{Demand, Role};
use sluice_core::sizing::job_demand;
use sluice_core::spec::Job;
use sluice_core::{NodeCapacity, Snapshot};

pub use self::config::{DurationConfig, NodeGroup, SimConfigError, SimulatedConfig};
use self::config::{Resolved, duration_ms};
pub use self::ledger::{Entry, read_ledger};
use self::ledger::{RunMap, Runs};
pub use self::rng::Distribution;
use self::rng::SplitMix64;
use crate::clock::Clock;
use crate::fsutil::lock;
use crate::local::exit_message;
use crate::{
    Backend, BackendError, CapacityReport, LogChunk, RunRef, RunStatus, SubmitRequest, Submitted,
};

/// The backend's name in configuration and logs.
pub const KIND: &str = "simulated";
/// The label that sets how long a job runs ("90s", "5m", "1h30m").
pub const DURATION_LABEL: &str = "sluice.io/sim-duration";
/// The label that sets how a job ends: `succeed`, `fail`, `oom` or `deadlock`.
pub const OUTCOME_LABEL: &str = "sluice.io/sim-outcome";
/// The label that sets the fraction of its memory and CPU a run uses (`0.25`; default
/// [`DEFAULT_USED`]; an `oom` run uses all its memory): the synthetic usage
/// [`Backend::usage`] reports.
pub const USED_LABEL: &str = "sluice.io/sim-used";
/// The fraction of its request a simulated run uses without [`USED_LABEL`].
pub const DEFAULT_USED: f64 = 0.5;

/// The fraction of [`USED_LABEL`], checked.
fn used_fraction(job: &Job) -> Result<f64, BackendError> {
    match job.labels.get(USED_LABEL) {
        None => Ok(DEFAULT_USED),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| {
                BackendError::Rejected(format!(
                    "labels.{USED_LABEL} = {v:?}: expected a fraction from 0 to 1 (like 0.25)"
                ))
            }),
    }
}

/// How a simulated run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Exit code 0.
    Succeed,
    /// Exit code 1.
    Fail,
    /// Killed for want of memory: exit code 137.
    Oom,
    /// Half-started (the driver runs, the executors never do) until the deadlock watchdog
    /// kills it at the end of its duration and the job is requeued; only a first attempt.
    Deadlock,
}

impl Outcome {
    fn of(job: &Job) -> Result<Outcome, BackendError> {
        match job.labels.get(OUTCOME_LABEL).map(|v| v.trim()) {
            None | Some("succeed") => Ok(Outcome::Succeed),
            Some("fail") => Ok(Outcome::Fail),
            Some("oom") => Ok(Outcome::Oom),
            Some("deadlock") => Ok(Outcome::Deadlock),
            Some(other) => Err(BackendError::Rejected(format!(
                "label {OUTCOME_LABEL} = {other:?} must be \"succeed\", \"fail\", \"oom\" or \"deadlock\""
            ))),
        }
    }

    fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeed => 0,
            Outcome::Fail => 1,
            Outcome::Oom => 137,
            // The watchdog's kill (SIGTERM); a requeue, not a failure.
            Outcome::Deadlock => 143,
        }
    }
}

/// One simulated run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Run {
    /// What it holds.
    pub demand: Demand,
    /// Node index of each pod, driver first.
    pub placement: Vec<(Role, usize)>,
    /// When it was submitted.
    pub submitted_ms: i64,
    /// When it started running.
    pub start_ms: i64,
    /// When it ends (unless cancelled).
    pub end_ms: i64,
    /// How it ends.
    pub outcome: Outcome,
    /// When it was cancelled, if it was before it ended.
    pub cancelled_ms: Option<i64>,
    /// The fraction of its memory and CPU it uses ([`USED_LABEL`]).
    #[serde(default = "default_used")]
    pub used: f64,
}

fn default_used() -> f64 {
    DEFAULT_USED
}

impl Run {
    /// The synthetic usage of a run that ended: each JVM's heap peaks at `used` of its pod's
    /// memory (all of it for an OOM), the CPU is busy `used` of the time held.
    fn measured(&self) -> Option<sluice_core::cost::Measured> {
        use sluice_core::cost::{JvmPeaks, MIB, Measured};
        let end = self.over_ms();
        let secs = end.saturating_sub(self.start_ms).max(0) as f64 / 1000.0;
        let used = if self.outcome == Outcome::Oom {
            1.0
        } else {
            self.used
        };
        let peaks = |role: Role| {
            self.demand.role(role).map(|p| JvmPeaks {
                heap: (p.mem_mib as f64 * used) as u64 * MIB,
                ..JvmPeaks::default()
            })
        };
        let executors = self.demand.role(Role::Executor).map_or(0, |p| p.count);
        let cpu = self.demand.total().cpu_milli as f64 / 1000.0;
        Some(Measured {
            source: "simulated".into(),
            complete: true,
            driver: peaks(Role::Driver).or_else(|| peaks(Role::Task)),
            executor: peaks(Role::Executor),
            executors_used: executors,
            executor_seconds: f64::from(executors) * secs,
            task_cpu_seconds: cpu * secs * used,
            ..Measured::default()
        })
    }
}

impl Run {
    /// When the run stops holding room: its end, or its cancel.
    fn over_ms(&self) -> i64 {
        self.cancelled_ms
            .map_or(self.end_ms, |c| c.min(self.end_ms))
    }

    /// Whether it holds its room at `now`.
    pub fn holds_room(&self, now: i64) -> bool {
        now < self.over_ms()
    }

    fn status(&self, now: i64) -> RunStatus {
        match self.cancelled_ms {
            Some(c) if c < self.end_ms && now >= c => RunStatus::Failed {
                exit_code: Some(143),
                message: exit_message(143),
            },
            _ if now < self.start_ms => RunStatus::Pending,
            _ if now < self.end_ms => RunStatus::Running,
            _ => match self.outcome {
                Outcome::Succeed => RunStatus::Succeeded,
                Outcome::Deadlock => RunStatus::Requeue {
                    message: format!(
                        "deadlock watchdog: the driver ran {} s with none of its executors \
                         running; killed",
                        (self.end_ms.saturating_sub(self.start_ms)) / 1000
                    ),
                },
                o => RunStatus::Failed {
                    exit_code: Some(o.exit_code()),
                    message: exit_message(o.exit_code()),
                },
            },
        }
    }
}

/// A simulated cluster. See the [module documentation](self).
#[derive(Debug)]
pub struct SimulatedBackend {
    cfg: Resolved,
    clock: Arc<dyn Clock>,
    runs: Mutex<Runs>,
}

impl SimulatedBackend {
    /// A simulated cluster with the configured nodes, reading the time from `clock`. Fails with
    /// [`BackendError::Config`] naming the key of a bad value.
    pub fn new(cfg: &SimulatedConfig, clock: Arc<dyn Clock>) -> Result<Self, BackendError> {
        let cfg = cfg
            .resolve()
            .map_err(|e| BackendError::Config(e.to_string()))?;
        let runs = Runs::new(cfg.ledger.as_deref())?;
        Ok(SimulatedBackend {
            cfg,
            clock,
            runs: Mutex::new(runs),
        })
    }

    /// The nodes, empty.
    pub fn nodes(&self) -> &[NodeCapacity] {
        &self.cfg.nodes
    }

    /// How long a run of `job_id`'s attempt would run, in milliseconds: the job's
    /// [`DURATION_LABEL`], else a sample of the configured distribution for (seed, job id,
    /// attempt).
    pub fn duration_ms(&self, job_id: &str, attempt: u32, job: &Job) -> Result<u64, BackendError> {
        match job.labels.get(DURATION_LABEL) {
            Some(v) => duration_ms(&format!("labels.{DURATION_LABEL}"), v, false)
                .map_err(|e| BackendError::Rejected(e.to_string())),
            None => {
                Ok(self
                    .cfg
                    .duration
                    .sample(&mut SplitMix64::keyed(self.cfg.seed, job_id, attempt)))
            }
        }
    }

    /// Free room per node at `now`: each node minus the pods of the runs that hold room.
    fn free_at(&self, runs: &RunMap, now: i64) -> Vec<NodeCapacity> {
        let mut nodes = self.cfg.nodes.clone();
        for run in runs.values().filter(|r| r.holds_room(now)) {
            for &(role, i) in &run.placement {
                let (Some(node), Some(pod)) = (nodes.get_mut(i), run.demand.role(role)) else {
                    continue;
                };
                let each = pod.each();
                node.cpu_milli = node.cpu_milli.saturating_sub(each.cpu_milli);
                node.mem_mib = node.mem_mib.saturating_sub(each.mem_mib);
                node.pods = node.pods.map(|p| p.saturating_sub(1));
            }
        }
        nodes
    }

    fn find(&self, run: &RunRef) -> Result<Run, BackendError> {
        lock(&self.runs)
            .with(|runs| {
                let found = runs.get(&(run.job_id.clone(), run.attempt)).cloned();
                (found, Vec::new())
            })?
            .ok_or_else(|| BackendError::NotFound {
                job_id: run.job_id.clone(),
                attempt: run.attempt,
            })
    }

    fn log_text(&self, run: &RunRef, r: &Run, now: i64) -> String {
        let names = |role: Role| -> Vec<&str> {
            r.placement
                .iter()
                .filter(|(ro, _)| *ro == role)
                .filter_map(|(_, i)| self.cfg.nodes.get(*i).map(|n| n.name.as_str()))
                .collect()
        };
        let mut text = format!(
            "simulated run of job {} attempt {}: {} pods ({})\n",
            run.job_id,
            run.attempt,
            r.placement.len(),
            r.demand.total()
        );
        let drivers = names(Role::Driver);
        if !drivers.is_empty() {
            text.push_str(&format!("driver on {}\n", drivers.join(", ")));
        }
        let executors = names(Role::Executor);
        if !executors.is_empty() {
            text.push_str(&format!(
                "{} executors on {}\n",
                executors.len(),
                executors.join(", ")
            ));
        }
        if now >= r.start_ms && r.cancelled_ms.is_none_or(|c| c > r.start_ms) {
            text.push_str(&format!(
                "running after {} ms pending\n",
                r.start_ms - r.submitted_ms
            ));
        }
        match r.status(now) {
            RunStatus::Succeeded => {
                text.push_str(&format!("succeeded after {} ms\n", r.end_ms - r.start_ms))
            }
            RunStatus::Failed { message, .. } => {
                if r.outcome == Outcome::Oom && r.cancelled_ms.is_none() {
                    text.push_str("java.lang.OutOfMemoryError: Java heap space (simulated)\n");
                }
                text.push_str(&format!("failed: {message}\n"));
            }
            _ => {}
        }
        text
    }
}

#[async_trait::async_trait]
impl Backend for SimulatedBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn capacity(&self) -> Result<CapacityReport, BackendError> {
        let now = self.clock.now_ms();
        lock(&self.runs).with(|runs| {
            let visible: BTreeSet<String> = runs
                .iter()
                .filter(|(_, r)| r.holds_room(now))
                .map(|((job, _), _)| job.clone())
                .collect();
            let report = CapacityReport {
                snapshot: Snapshot {
                    available: true,
                    nodes: self.free_at(runs, now),
                    allocatable: self.cfg.nodes.clone(),
                },
                visible,
            };
            (report, Vec::new())
        })
    }

    async fn placements(
        &self,
    ) -> std::collections::BTreeMap<String, Vec<(String, sluice_core::job::Resources)>> {
        let now = self.clock.now_ms();
        let nodes = &self.cfg.nodes;
        lock(&self.runs)
            .with(|runs| {
                let out = runs
                    .iter()
                    .filter(|(_, r)| r.holds_room(now))
                    .map(|((job, _), r)| {
                        let pods = r
                            .placement
                            .iter()
                            .filter_map(|&(role, i)| {
                                Some((nodes.get(i)?.name.clone(), r.demand.role(role)?.each()))
                            })
                            .collect();
                        (job.clone(), pods)
                    })
                    .collect();
                (out, Vec::new())
            })
            .unwrap_or_default()
    }

    fn demand(&self, job: &Job) -> Result<Demand, BackendError> {
        Outcome::of(job)?;
        used_fraction(job)?;
        if let Some(v) = job.labels.get(DURATION_LABEL) {
            duration_ms(&format!("labels.{DURATION_LABEL}"), v, false)
                .map_err(|e| BackendError::Rejected(e.to_string()))?;
        }
        job_demand(job).map_err(|e| BackendError::Rejected(e.to_string()))
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, BackendError> {
        let backend_ref = format!("sim/{}/{}", req.job_id, req.attempt);
        let outcome = match Outcome::of(&req.job)? {
            // The cluster found room for the executors this time.
            Outcome::Deadlock if req.attempt > 1 => Outcome::Succeed,
            o => o,
        };
        let duration = self.duration_ms(&req.job_id, req.attempt, &req.job)?;
        let used = used_fraction(&req.job)?;
        let now = self.clock.now_ms();
        let key = (req.job_id.clone(), req.attempt);
        let by = std::process::id();
        let placed = lock(&self.runs).with(|runs| {
            if runs.contains_key(&key) {
                return (Ok(true), Vec::new());
            }
            let mut fitter = Fitter::new(&self.free_at(runs, now));
            match fitter.try_place(&req.demand) {
                Err(no_fit) => {
                    let reason = format!("job {} attempt {}: {no_fit}", req.job_id, req.attempt);
                    let entry = Entry::Refuse {
                        job: req.job_id.clone(),
                        attempt: req.attempt,
                        by,
                        reason: reason.clone(),
                    };
                    (Err(reason), vec![entry])
                }
                Ok(placement) => {
                    let start_ms = now
                        .saturating_add(i64::try_from(self.cfg.start_delay_ms).unwrap_or(i64::MAX));
                    let end_ms =
                        start_ms.saturating_add(i64::try_from(duration).unwrap_or(i64::MAX));
                    let entry = Entry::Submit {
                        job: req.job_id.clone(),
                        attempt: req.attempt,
                        by,
                        run: Run {
                            demand: req.demand.clone(),
                            placement: placement.pods,
                            submitted_ms: now,
                            start_ms,
                            end_ms,
                            outcome,
                            cancelled_ms: None,
                            used,
                        },
                    };
                    (Ok(false), vec![entry])
                }
            }
        })?;
        match placed {
            Ok(already_existed) => {
                if !already_existed {
                    tracing::debug!(job_id = %req.job_id, attempt = req.attempt,
                        duration_ms = duration, "simulated: started");
                }
                Ok(Submitted {
                    backend_ref,
                    already_existed,
                })
            }
            Err(reason) => Err(BackendError::NoRoom(reason)),
        }
    }

    async fn status(&self, run: &RunRef) -> Result<RunStatus, BackendError> {
        Ok(self.find(run)?.status(self.clock.now_ms()))
    }

    async fn usage(
        &self,
        run: &RunRef,
        _end_ms: i64,
    ) -> Result<Option<sluice_core::cost::Measured>, BackendError> {
        let r = self.find(run)?;
        Ok(r.status(self.clock.now_ms())
            .is_final()
            .then(|| r.measured())
            .flatten())
    }

    async fn cancel(&self, run: &RunRef) -> Result<(), BackendError> {
        let now = self.clock.now_ms();
        lock(&self.runs).with(|runs| {
            let live = runs
                .get(&(run.job_id.clone(), run.attempt))
                .is_some_and(|r| r.cancelled_ms.is_none() && now < r.end_ms);
            let entries = if live {
                vec![Entry::Cancel {
                    job: run.job_id.clone(),
                    attempt: run.attempt,
                    by: std::process::id(),
                    at_ms: now,
                }]
            } else {
                Vec::new()
            };
            ((), entries)
        })
    }

    async fn logs(
        &self,
        run: &RunRef,
        offset: u64,
        max_bytes: usize,
    ) -> Result<LogChunk, BackendError> {
        let r = self.find(run)?;
        let now = self.clock.now_ms();
        let text = self.log_text(run, &r, now);
        let bytes = text.as_bytes();
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let mut to = from.saturating_add(max_bytes).min(bytes.len());
        while !text.is_char_boundary(to) {
            to -= 1;
        }
        let from_ok = if text.is_char_boundary(from) {
            from
        } else {
            to
        };
        Ok(LogChunk {
            data: text[from_ok..to].to_string(),
            next_offset: to as u64,
            complete: r.status(now).is_final() && to == bytes.len(),
        })
    }
}
