//! Cost intelligence, pure: what each run held and what it used ([`UsageRecord`]), its
//! efficiency and cost ([`efficiency`]), sums per job, schedule, namespace or day
//! ([`aggregate`]), and right-sizing advice ([`advice`]). `docs/cost.md` gives every formula.
//!
//! - **Held** (what sluice reserved for the run): the job's demand (driver and every executor,
//!   overhead included) from the run's start to its end.
//! - **Used** (measured): CPU time, and for memory each JVM's (or the process's) peak kept for
//!   as long as it lived: the room a request sized to the peak would have held.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::Demand;
use crate::sizing::SparkShape;
use crate::usage::{MemoryPeaks, RunUsage};

pub mod advice;

/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;
const MS_PER_HOUR: f64 = 3_600_000.0;

/// What sluice held for a run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Requested {
    /// CPU of the whole demand (driver and executors), millicores.
    pub cpu_milli: u64,
    /// Memory of the whole demand (overhead included), MiB.
    pub mem_mib: u64,
    /// The Spark shape (heaps, executor cores and count); none for a command job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkShape>,
}

impl Requested {
    /// What a job with `demand` (and `spark`, for a Spark job) holds while it runs.
    pub fn new(demand: &Demand, spark: Option<SparkShape>) -> Requested {
        let total = demand.total();
        Requested {
            cpu_milli: total.cpu_milli,
            mem_mib: total.mem_mib,
            spark,
        }
    }
}

/// The peaks of one role's JVMs (the largest over its JVMs), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JvmPeaks {
    /// JVM heap used.
    pub heap: u64,
    /// JVM off-heap used.
    pub off_heap: u64,
    /// On-heap plus off-heap execution memory.
    pub execution: u64,
    /// The process tree's resident memory (0: not measured).
    pub rss: u64,
}

impl JvmPeaks {
    fn of(p: &MemoryPeaks) -> JvmPeaks {
        JvmPeaks {
            heap: p.jvm_heap,
            off_heap: p.jvm_off_heap,
            execution: p.on_heap_execution.saturating_add(p.off_heap_execution),
            rss: p.process_rss(),
        }
    }

    fn max(self, o: JvmPeaks) -> JvmPeaks {
        JvmPeaks {
            heap: self.heap.max(o.heap),
            off_heap: self.off_heap.max(o.off_heap),
            execution: self.execution.max(o.execution),
            rss: self.rss.max(o.rss),
        }
    }

    /// What the heap had to hold: the larger of the heap used and the on-heap execution memory.
    pub fn heap_need(&self) -> u64 {
        self.heap.max(self.execution)
    }

    /// The memory the JVM took from its host: the process tree's RSS when measured, else heap
    /// plus off-heap.
    pub fn resident(&self) -> u64 {
        if self.rss > 0 {
            self.rss
        } else {
            self.heap.saturating_add(self.off_heap)
        }
    }
}

/// What a process (a command job, or a local Spark run's whole process tree) used, from the
/// operating system.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// Peak resident memory of the largest process, bytes.
    pub peak_rss_bytes: u64,
    /// User plus system CPU time of the process and every child it waited for, seconds.
    pub cpu_seconds: f64,
}

/// What a run used, measured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Measured {
    /// Where the figures come from: `eventlog`, `process`, `eventlog+process`, `simulated`.
    pub source: String,
    /// False when the event log was truncated or still being written.
    pub complete: bool,
    /// The driver's peaks (Spark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<JvmPeaks>,
    /// The executors' peaks, the largest over all executors. In local mode Spark runs the
    /// tasks in the driver's JVM: then these are the driver's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<JvmPeaks>,
    /// Executors that were added (0 in local mode).
    pub executors_used: u32,
    /// Sum over executors of the time each was alive, seconds.
    pub executor_seconds: f64,
    /// Sum of the tasks' run time, seconds.
    pub task_seconds: f64,
    /// Sum of the tasks' CPU time, seconds.
    pub task_cpu_seconds: f64,
    /// Sum of the tasks' GC time, seconds.
    pub gc_seconds: f64,
    /// Bytes spilled from memory.
    pub memory_spilled_bytes: u64,
    /// Bytes spilled to disk.
    pub disk_spilled_bytes: u64,
    /// Tasks that failed.
    pub failed_tasks: u64,
    /// The process's own figures, where the backend owns the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessUsage>,
}

impl Measured {
    /// The figures of a parsed event log; `end_ms` stands for the end of executors still alive
    /// when the log ends (the run's end as sluice saw it).
    pub fn from_event_log(u: &RunUsage, end_ms: i64) -> Measured {
        let end = u.end_ms.unwrap_or(end_ms);
        let driver = u.executors.get("driver").map(|d| JvmPeaks::of(&d.peaks));
        let mut executor: Option<JvmPeaks> = None;
        let mut executor_ms: i64 = 0;
        let mut used = 0u32;
        for (_, e) in u.workers() {
            used = used.saturating_add(1);
            let p = JvmPeaks::of(&e.peaks);
            executor = Some(executor.map_or(p, |x| x.max(p)));
            if let Some(added) = e.added_ms {
                let gone = e.removed_ms.unwrap_or(end);
                executor_ms = executor_ms.saturating_add(gone.saturating_sub(added).max(0));
            }
        }
        let all = u.executors.values();
        let sum = |f: &dyn Fn(&crate::usage::ExecutorUsage) -> u64| {
            all.clone().map(f).fold(0u64, u64::saturating_add)
        };
        Measured {
            source: "eventlog".into(),
            complete: u.complete,
            driver,
            // Local mode: the tasks ran in the driver.
            executor: executor.or(driver),
            executors_used: used,
            executor_seconds: executor_ms as f64 / 1000.0,
            task_seconds: sum(&|e| e.run_time_ms) as f64 / 1000.0,
            task_cpu_seconds: u.cpu_seconds(),
            gc_seconds: sum(&|e| e.gc_time_ms) as f64 / 1000.0,
            memory_spilled_bytes: sum(&|e| e.memory_spilled_bytes),
            disk_spilled_bytes: sum(&|e| e.disk_spilled_bytes),
            failed_tasks: u.failed_tasks,
            process: None,
        }
    }

    /// Only the process's figures (a command job).
    pub fn from_process(p: ProcessUsage) -> Measured {
        Measured {
            source: "process".into(),
            complete: true,
            process: Some(p),
            ..Measured::default()
        }
    }

    /// These figures with the process's added (`source` gains `+process`).
    pub fn with_process(mut self, p: ProcessUsage) -> Measured {
        self.source = format!("{}+process", self.source);
        self.process = Some(p);
        self
    }

    /// CPU seconds used: the process's own when measured (all of it, not only tasks), else
    /// the tasks' CPU time.
    pub fn cpu_seconds(&self) -> f64 {
        match &self.process {
            Some(p) if p.cpu_seconds > 0.0 => p.cpu_seconds.max(self.task_cpu_seconds),
            _ => self.task_cpu_seconds,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Succeeded.
    Succeeded,
    /// Failed (the application, a signal, lost).
    Failed,
    /// Failed by running out of memory.
    Oom,
    /// Stopped by a user's cancel (or a schedule's `Replace`) while it ran: what it held and
    /// used until it was killed.
    Cancelled,
}

impl Outcome {
    /// `succeeded`, `failed`, `oom` or `cancelled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Oom => "oom",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// The outcome named `s`, if any.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::Oom,
            Outcome::Cancelled,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One run (one attempt of a job): what it held and what it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The job.
    pub job_id: String,
    /// The attempt.
    pub attempt: u32,
    /// The job's namespace.
    pub namespace: String,
    /// The job's name.
    pub name: String,
    /// The schedule that started it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When the run started (ms since the epoch).
    pub started_at_ms: i64,
    /// When it ended.
    pub ended_at_ms: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// What sluice held.
    pub requested: Requested,
    /// What it used; none when nothing could be measured (see `note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// Why something is missing (no event log found, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl UsageRecord {
    /// How long the run held its demand, hours (0 for an end before the start).
    pub fn hours(&self) -> f64 {
        self.ended_at_ms.saturating_sub(self.started_at_ms).max(0) as f64 / MS_PER_HOUR
    }
}

/// Prices of what sluice holds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Prices {
    /// Per core-hour.
    pub core_hour: f64,
    /// Per GiB-hour.
    pub gib_hour: f64,
}

impl Prices {
    /// The price of `core_hours` and `gib_hours`.
    pub fn of(&self, core_hours: f64, gib_hours: f64) -> f64 {
        core_hours * self.core_hour + gib_hours * self.gib_hour
    }
}

/// A run's efficiency and cost.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Efficiency {
    /// Cores held x hours.
    pub held_core_hours: f64,
    /// CPU time used, hours.
    pub used_core_hours: f64,
    /// GiB held x hours.
    pub held_gib_hours: f64,
    /// Peak memory x the time each JVM (or the process) lived, GiB-hours.
    pub used_gib_hours: f64,
    /// used / held core-hours (none: not measured).
    pub cpu_utilisation: Option<f64>,
    /// Driver heap peak / `spark.driver.memory`.
    pub driver_headroom: Option<f64>,
    /// Executor heap peak / `spark.executor.memory`.
    pub executor_headroom: Option<f64>,
    /// Process peak RSS / the memory held (a command job).
    pub process_headroom: Option<f64>,
    /// Price of what was held.
    pub cost: f64,
    /// Price of what was held and not used.
    pub waste: f64,
}

const GIB: f64 = (1u64 << 30) as f64;

fn ratio(used: u64, of_mib: u64) -> Option<f64> {
    (of_mib > 0).then(|| used as f64 / (of_mib.saturating_mul(MIB)) as f64)
}

/// The efficiency and cost of one run at `prices`.
pub fn efficiency(r: &UsageRecord, prices: &Prices) -> Efficiency {
    let hours = r.hours();
    let held_core_hours = r.requested.cpu_milli as f64 / 1000.0 * hours;
    let held_gib_hours = r.requested.mem_mib as f64 / 1024.0 * hours;
    let mut e = Efficiency {
        held_core_hours,
        held_gib_hours,
        cost: prices.of(held_core_hours, held_gib_hours),
        ..Efficiency::default()
    };
    let Some(m) = &r.measured else {
        return e;
    };
    e.used_core_hours = m.cpu_seconds() / 3600.0;
    let mut gib_hours = 0.0;
    if let Some(d) = &m.driver {
        gib_hours += d.resident() as f64 / GIB * hours;
    }
    if m.executors_used > 0
        && let Some(x) = &m.executor
    {
        gib_hours += x.resident() as f64 / GIB * m.executor_seconds / 3600.0;
    }
    if m.driver.is_none()
        && let Some(p) = &m.process
    {
        gib_hours += p.peak_rss_bytes as f64 / GIB * hours;
        e.process_headroom = ratio(p.peak_rss_bytes, r.requested.mem_mib);
    }
    e.used_gib_hours = gib_hours;
    e.cpu_utilisation = (held_core_hours > 0.0).then(|| e.used_core_hours / held_core_hours);
    if let Some(s) = &r.requested.spark {
        e.driver_headroom = m
            .driver
            .and_then(|d| ratio(d.heap_need(), s.driver_heap_mib));
        e.executor_headroom = m
            .executor
            .and_then(|x| ratio(x.heap_need(), s.executor_heap_mib));
    }
    let idle_core_hours = (held_core_hours - e.used_core_hours).max(0.0);
    let idle_gib_hours = (held_gib_hours - e.used_gib_hours).max(0.0);
    e.waste = prices.of(idle_core_hours, idle_gib_hours);
    e
}

/// What runs are summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Namespace and job name.
    Job,
    /// Namespace and schedule (runs not started by a schedule are left out).
    Schedule,
    /// Namespace.
    Namespace,
    /// Namespace and UTC day of the run's end (`YYYY-MM-DD`).
    Day,
}

impl GroupBy {
    /// The group of a run, none when it has none (a manual run, by schedule).
    pub fn key(&self, r: &UsageRecord) -> Option<String> {
        match self {
            GroupBy::Job => Some(r.name.clone()),
            GroupBy::Schedule => r.schedule.clone(),
            GroupBy::Namespace => Some(String::new()),
            GroupBy::Day => chrono::DateTime::from_timestamp_millis(r.ended_at_ms)
                .map(|t| t.format("%Y-%m-%d").to_string()),
        }
    }
}

/// The sums of a group of runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Aggregate {
    /// The namespace.
    pub namespace: String,
    /// The job name, schedule or day (empty when grouped by namespace).
    pub key: String,
    /// Runs in the group.
    pub runs: u64,
    /// Runs with measured usage.
    pub measured_runs: u64,
    /// Sum of held core-hours.
    pub held_core_hours: f64,
    /// Sum of used core-hours (measured runs).
    pub used_core_hours: f64,
    /// Sum of held GiB-hours.
    pub held_gib_hours: f64,
    /// Sum of used GiB-hours (measured runs).
    pub used_gib_hours: f64,
    /// Used / held core-hours over the measured runs.
    pub cpu_utilisation: Option<f64>,
    /// Used / held GiB-hours over the measured runs.
    pub memory_utilisation: Option<f64>,
    /// Sum of the runs' cost.
    pub cost: f64,
    /// Sum of the runs' waste.
    pub waste: f64,
}

/// Sums runs by `by`, each run priced by `prices` of its namespace; sorted by namespace and
/// key.
pub fn aggregate(
    runs: &[UsageRecord],
    by: GroupBy,
    prices: &dyn Fn(&str) -> Prices,
) -> Vec<Aggregate> {
    let mut groups: BTreeMap<(String, String), (Aggregate, f64, f64)> = BTreeMap::new();
    for r in runs {
        let Some(key) = by.key(r) else { continue };
        let e = efficiency(r, &prices(&r.namespace));
        let (a, held_core_m, held_gib_m) = groups
            .entry((r.namespace.clone(), key.clone()))
            .or_insert_with(|| {
                (
                    Aggregate {
                        namespace: r.namespace.clone(),
                        key,
                        ..Aggregate::default()
                    },
                    0.0,
                    0.0,
                )
            });
        a.runs += 1;
        a.held_core_hours += e.held_core_hours;
        a.held_gib_hours += e.held_gib_hours;
        a.cost += e.cost;
        a.waste += e.waste;
        if r.measured.is_some() {
            a.measured_runs += 1;
            a.used_core_hours += e.used_core_hours;
            a.used_gib_hours += e.used_gib_hours;
            *held_core_m += e.held_core_hours;
            *held_gib_m += e.held_gib_hours;
        }
    }
    groups
        .into_values()
        .map(|(mut a, core_m, gib_m)| {
            a.cpu_utilisation = (core_m > 0.0).then(|| a.used_core_hours / core_m);
            a.memory_utilisation = (gib_m > 0.0).then(|| a.used_gib_hours / gib_m);
            a
        })
        .collect()
}

#[cfg(test)]
mod tests;
