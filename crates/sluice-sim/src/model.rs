//! What a replay works on (the trace's jobs checked against the cluster) and what it gives back
//! (one [`JobRun`] per job and the cluster's usage over time), shared by every policy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sluice_core::capacity::fits_empty;
use sluice_core::cycle::HeadPolicy;
use sluice_core::job::{Demand, Resources, Role};

use crate::cluster::Cluster;
use crate::error::{SimError, trace_err};
use crate::trace::{Outcome, TraceJob};

/// A policy the simulator can replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// No admission control: what the plain Spark Operator does (a baseline, not sluice).
    NoAdmission,
    /// sluice with every namespace strict FIFO.
    Strict,
    /// sluice with every namespace best-effort FIFO.
    BestEffort,
    /// sluice with each namespace's policy from the cluster file.
    Configured,
    /// sluice with every namespace backfilling behind a reservation for its head.
    Backfill,
    /// `strict` with the cluster file's aging bounds.
    #[serde(rename = "strict+aging")]
    StrictAging,
    /// `backfill` with the cluster file's aging bounds.
    #[serde(rename = "backfill+aging")]
    BackfillAging,
    /// `strict` with preemption: the cluster file's `[scheduler.preemption]`, or, when it
    /// enables no level, the highest level preempting the others.
    #[serde(rename = "strict+preemption")]
    StrictPreemption,
}

impl Policy {
    /// The policies replayed when none is named.
    pub const DEFAULT: [Policy; 3] = [Policy::NoAdmission, Policy::Strict, Policy::BestEffort];

    /// Every policy, in the order the help lists them.
    pub const ALL: [Policy; 8] = [
        Policy::NoAdmission,
        Policy::Strict,
        Policy::BestEffort,
        Policy::Backfill,
        Policy::StrictAging,
        Policy::BackfillAging,
        Policy::StrictPreemption,
        Policy::Configured,
    ];

    /// The name on the command line and in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Policy::NoAdmission => "no-admission",
            Policy::Strict => "strict",
            Policy::BestEffort => "best-effort",
            Policy::Configured => "configured",
            Policy::Backfill => "backfill",
            Policy::StrictAging => "strict+aging",
            Policy::BackfillAging => "backfill+aging",
            Policy::StrictPreemption => "strict+preemption",
        }
    }

    /// Whether running jobs may be preempted: forced on for `strict+preemption`; for
    /// `configured`, as the cluster file's `[scheduler.preemption]` says.
    pub fn preemption(&self, cluster: &Cluster) -> bool {
        match self {
            Policy::StrictPreemption => true,
            Policy::Configured => cluster.preemption_configured,
            _ => false,
        }
    }

    /// Whether jobs age: `Some` forces it on or off, `None` keeps the cluster file's
    /// `[scheduler.aging_ms]` (the `configured` policy).
    pub fn aging(&self) -> Option<bool> {
        match self {
            Policy::StrictAging | Policy::BackfillAging => Some(true),
            Policy::Configured => None,
            _ => Some(false),
        }
    }

    /// The head-of-line policy forced on every namespace (`None`: the cluster file's, or, for
    /// the baseline, none at all).
    pub fn head(&self) -> Option<HeadPolicy> {
        match self {
            Policy::Strict => Some(HeadPolicy::Strict),
            Policy::BestEffort => Some(HeadPolicy::BestEffort),
            Policy::Backfill | Policy::BackfillAging => Some(HeadPolicy::Backfill),
            Policy::StrictAging | Policy::StrictPreemption => Some(HeadPolicy::Strict),
            Policy::NoAdmission | Policy::Configured => None,
        }
    }

    /// True for the policies that run sluice's cycle (all but the baseline).
    pub fn is_sluice(&self) -> bool {
        *self != Policy::NoAdmission
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| SimError::UnknownPolicy(s.to_string()))
    }
}

/// One job, checked against the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimJob {
    /// Unique id: the job's index in the trace, zero-padded (so ids sort in trace order).
    pub id: String,
    /// Index in the trace (the order of [`SimJob::id`]).
    pub seq: usize,
    /// Trace line (0 if built in code).
    pub line: u64,
    /// Name, for people.
    pub name: String,
    /// Index into [`Workload::namespaces`].
    pub ns: usize,
    /// Level rank (0 is the highest), an index into [`Workload::levels`].
    pub level: usize,
    /// Submit time, ms.
    pub submit_ms: i64,
    /// Run time once all pods run, ms: the trace's, cut to its `maxRuntime` (the watchdog stops
    /// the run there).
    pub duration_ms: i64,
    /// Its `maxRuntime`, ms (`None`: no bound).
    pub max_runtime_ms: Option<i64>,
    /// Pods needed at once.
    pub demand: Demand,
    /// How the run ends.
    pub outcome: Outcome,
    /// The job fits the empty cluster (else sluice refuses it at submit, as the server does).
    pub fits_empty: bool,
}

/// A trace checked against a cluster, ordered by submit time (ties: trace order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The jobs.
    pub jobs: Vec<SimJob>,
    /// Namespace names, sorted.
    pub namespaces: Vec<String>,
    /// Level names, highest first.
    pub levels: Vec<String>,
}

impl Workload {
    /// Resolves levels (a job without one takes its namespace's default), computes demands and
    /// whether each job fits the empty cluster. An unknown level names the line and field.
    pub fn new(trace: &[TraceJob], cluster: &Cluster) -> Result<Self, SimError> {
        let mut namespaces: Vec<String> = trace.iter().map(|j| j.namespace.clone()).collect();
        namespaces.sort();
        namespaces.dedup();
        let width = trace.len().to_string().len().max(6);
        let mut jobs = Vec::with_capacity(trace.len());
        for (i, t) in trace.iter().enumerate() {
            let level_name = t
                .level
                .clone()
                .unwrap_or_else(|| cluster.levels.default_for(&t.namespace).to_string());
            let level = cluster.levels.rank(&level_name).ok_or_else(|| {
                trace_err(
                    t.line,
                    "level",
                    &level_name,
                    format!(
                        "is not one of the cluster's scheduler.levels ({})",
                        cluster.levels.names.join(", ")
                    ),
                )
            })?;
            let demand = t.demand();
            if demand.checked_total().is_none() {
                return Err(trace_err(
                    t.line,
                    "executors",
                    t.executors,
                    "demand too large",
                ));
            }
            let fits = fits_empty(&demand, &cluster.nodes).is_ok();
            jobs.push(SimJob {
                id: format!("{i:0width$}"),
                seq: i,
                line: t.line,
                name: t.name.clone(),
                ns: namespaces.binary_search(&t.namespace).unwrap_or(0),
                level,
                submit_ms: t.submit_ms,
                duration_ms: t
                    .max_runtime_ms
                    .map_or(t.duration_ms, |max| t.duration_ms.min(max)),
                max_runtime_ms: t.max_runtime_ms,
                demand,
                outcome: t.outcome,
                fits_empty: fits,
            });
        }
        jobs.sort_by_key(|j| j.submit_ms);
        Ok(Workload {
            jobs,
            namespaces,
            levels: cluster.levels.names.clone(),
        })
    }
}

/// What happened to one job in a replay.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobRun {
    /// Refused at submit: it can never fit the cluster.
    pub refused: bool,
    /// When its first pod started (its driver), if ever.
    pub first_pod_ms: Option<i64>,
    /// When every pod ran, so the job started running, if ever.
    pub start_ms: Option<i64>,
    /// When it ended.
    pub end_ms: Option<i64>,
    /// It held some of its pods while others could not be placed, for some time.
    pub half_started: bool,
    /// CPU held by its pods while it was half-started, in millicore-milliseconds.
    pub idle_held_cpu: u128,
    /// Where its pods ran (driver first): (role, node index) of its last, complete, start.
    pub placement: Vec<(Role, usize)>,
    /// Times it was killed half-started and submitted again (baseline only).
    pub restarts: u32,
    /// It was killed half-started and not submitted again: it never ran (baseline only).
    pub gave_up: bool,
    /// The start estimated when it was submitted and left waiting (with `eta` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<i64>,
    /// Times it was preempted (stopped and sent back to its queue for a job of higher
    /// priority); its wait then runs to its last start.
    #[serde(default)]
    pub preempted: u32,
}

/// The cluster at one moment, from then until the next point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsagePoint {
    /// When.
    pub at_ms: i64,
    /// Room held by pods (running jobs and half-started ones).
    pub held: Resources,
    /// Room held by jobs whose every pod runs (doing work).
    pub busy: Resources,
    /// Jobs submitted and not yet running.
    pub waiting: u32,
}

/// The result of replaying one policy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Run {
    /// Per job, in [`Workload::jobs`] order.
    pub jobs: Vec<JobRun>,
    /// Usage over time, one point per moment something changed.
    pub usage: Vec<UsagePoint>,
    /// Per namespace, the integral over contended time (some job waiting) of its dominant share
    /// of the cluster, in share-milliseconds.
    pub contended_share_ms: Vec<f64>,
    /// Milliseconds during which some job was waiting.
    pub contended_ms: i64,
    /// Scheduling cycles (or, for the baseline, scheduling passes) run.
    pub cycles: u64,
}

/// Keeps the usage series and the contended-share integrals while a replay runs.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    total: Resources,
    last: Option<UsagePoint>,
    cursor_ms: i64,
    last_ns: Vec<Resources>,
    pub(crate) run: Run,
}

impl Recorder {
    pub(crate) fn new(total: Resources, namespaces: usize, jobs: usize) -> Self {
        Recorder {
            total,
            last: None,
            cursor_ms: 0,
            last_ns: vec![Resources::default(); namespaces],
            run: Run {
                jobs: vec![JobRun::default(); jobs],
                usage: Vec::new(),
                contended_share_ms: vec![0.0; namespaces],
                contended_ms: 0,
                cycles: 0,
            },
        }
    }

    /// Records the state from `point.at_ms` on; `ns_held` is what each namespace holds.
    pub(crate) fn record(&mut self, point: UsagePoint, ns_held: &[Resources]) {
        if let Some(last) = self.last {
            let dt = point.at_ms - self.cursor_ms;
            if dt > 0 && last.waiting > 0 {
                self.run.contended_ms += dt;
                for (acc, h) in self.run.contended_share_ms.iter_mut().zip(&self.last_ns) {
                    *acc += dominant(h, &self.total) * dt as f64;
                }
            }
        }
        self.cursor_ms = point.at_ms;
        self.last_ns.copy_from_slice(ns_held);
        if let Some(last) = self.last {
            if (last.held, last.busy, last.waiting) == (point.held, point.busy, point.waiting) {
                return;
            }
            if last.at_ms == point.at_ms {
                self.run.usage.pop();
            }
        }
        self.run.usage.push(point);
        self.last = Some(point);
    }
}

/// The larger of the CPU and memory shares of `held` in `total`.
pub fn dominant(held: &Resources, total: &Resources) -> f64 {
    let part = |h: u64, t: u64| if t == 0 { 0.0 } else { h as f64 / t as f64 };
    part(held.cpu_milli, total.cpu_milli).max(part(held.mem_mib, total.mem_mib))
}
