//! Right-sizing advice for a job or a schedule from its measured runs (see `docs/cost.md`).
//!
//! Memory: the largest heap need of any run (heap used or on-heap execution memory, whichever
//! is larger) times the safety factor, rounded up to [`STEP_MIB`] and to at least
//! [`MIN_HEAP_MIB`]; so never below what any run used. A group with a run that ran out of
//! memory is never advised down. A cancelled run is not counted (it stopped before doing all
//! its work), but its peaks are a floor of the advice. Cores: advised down only when the busiest run used less than
//! half of the CPU it held.

use serde::{Deserialize, Serialize};

use super::{GroupBy, MIB, Outcome, Prices, UsageRecord, efficiency};
use crate::sizing::SparkShape;
use crate::spec::{SparkSpec, Text};

/// Memory is advised in steps of this many MiB.
pub const STEP_MIB: u64 = 128;
/// The smallest heap advised: Spark refuses a JVM with less than 450 MiB.
pub const MIN_HEAP_MIB: u64 = 512;
/// Cores are advised down only below this CPU utilisation of the busiest run.
pub const CORES_DOWN_BELOW: f64 = 0.5;
/// What the projected saving is scaled to: 30 days.
pub const MONTH_MS: i64 = 30 * 86_400_000;

/// Settings of the advice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdviceConfig {
    /// Measured runs needed before any advice.
    pub min_runs: usize,
    /// Peak x this = the advised memory (at least 1).
    pub safety_factor: f64,
    /// A run whose heap peak reached this fraction of its request is "near its limit".
    pub near_limit: f64,
}

impl Default for AdviceConfig {
    fn default() -> Self {
        AdviceConfig {
            min_runs: 5,
            safety_factor: 1.2,
            near_limit: 0.9,
        }
    }
}

/// How far the advice can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Too few runs, an incomplete measurement, or peaks that vary more than 2x.
    Low,
    /// Enough runs.
    Medium,
    /// At least twice the runs needed, all measured completely, peaks within 25%.
    High,
}

/// Whether there is advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdviceStatus {
    /// Advice given.
    Advised,
    /// Fewer measured runs than `min_runs`.
    NotEnoughRuns,
    /// Not a Spark job (its runs have no Spark shape).
    NotSpark,
}

/// What the advice would save, projected to a month.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Saving {
    /// Core-hours.
    pub core_hours: f64,
    /// GiB-hours.
    pub gib_hours: f64,
    /// At the namespace's prices.
    pub cost: f64,
}

/// Right-sizing advice for one job or schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    /// The namespace.
    pub namespace: String,
    /// The job name or schedule.
    pub key: String,
    /// Whether `key` is a job name or a schedule.
    pub by: GroupBy,
    /// Whether there is advice.
    pub status: AdviceStatus,
    /// The runs it is based on (`JOB_ID/ATTEMPT`), oldest first.
    pub based_on: Vec<String>,
    /// What the latest run asked for.
    pub current: Option<SparkShape>,
    /// What to ask for (when advised).
    pub recommended: Option<SparkShape>,
    /// The largest driver heap need of any run, MiB.
    pub driver_peak_mib: u64,
    /// The largest executor heap need of any run, MiB.
    pub executor_peak_mib: u64,
    /// The CPU utilisation of the busiest run.
    pub max_cpu_utilisation: Option<f64>,
    /// What the advice would have saved on the window's runs, scaled to 30 days.
    pub monthly_saving: Saving,
    /// How far to trust it.
    pub confidence: Confidence,
    /// Runs near their limit, out of memory, and the like.
    pub warnings: Vec<String>,
}

/// `mib` as Spark writes memory: `Ng` for whole GiB, else `Nm`.
pub fn spark_mem(mib: u64) -> String {
    if mib > 0 && mib.is_multiple_of(1024) {
        format!("{}g", mib / 1024)
    } else {
        format!("{mib}m")
    }
}

/// The advised heap for a largest need of `peak_mib`: x `factor`, rounded up to [`STEP_MIB`],
/// at least [`MIN_HEAP_MIB`] and at least `peak_mib`.
pub fn advised_heap_mib(peak_mib: u64, factor: f64) -> u64 {
    let scaled = (peak_mib as f64 * factor.max(1.0)).ceil();
    let scaled = if scaled.is_finite() && scaled < u64::MAX as f64 {
        scaled as u64
    } else {
        u64::MAX / 2
    };
    scaled
        .max(peak_mib)
        .div_ceil(STEP_MIB)
        .saturating_mul(STEP_MIB)
        .max(MIN_HEAP_MIB)
}

fn mib_up(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

fn run_name(r: &UsageRecord) -> String {
    format!("{}/{}", r.job_id, r.attempt)
}

/// Advice for the runs of one group (one namespace, one job name or schedule `key`), over a
/// window of `window_ms`, at `prices`.
pub fn advise(
    namespace: &str,
    key: &str,
    by: GroupBy,
    runs: &[UsageRecord],
    cfg: &AdviceConfig,
    prices: &Prices,
    window_ms: i64,
) -> Advice {
    let mut runs: Vec<&UsageRecord> = runs.iter().collect();
    runs.sort_by_key(|r| (r.ended_at_ms, r.attempt));
    let current = runs.last().and_then(|r| r.requested.spark);
    let mut a = Advice {
        namespace: namespace.to_string(),
        key: key.to_string(),
        by,
        status: AdviceStatus::NotEnoughRuns,
        based_on: Vec::new(),
        current,
        recommended: None,
        driver_peak_mib: 0,
        executor_peak_mib: 0,
        max_cpu_utilisation: None,
        monthly_saving: Saving::default(),
        confidence: Confidence::Low,
        warnings: Vec::new(),
    };
    let Some(current) = current else {
        // No runs at all is too few runs; runs without a Spark shape are not Spark.
        a.status = if runs.is_empty() {
            AdviceStatus::NotEnoughRuns
        } else {
            AdviceStatus::NotSpark
        };
        return a;
    };
    let ooms: Vec<String> = runs
        .iter()
        .filter(|r| r.outcome == Outcome::Oom)
        .map(|r| run_name(r))
        .collect();
    // A run counts when its executors' memory was measured: a log without memory peaks (a
    // run too short for Spark to sample them) must not pass for a run that used nothing.
    let mut measured: Vec<&UsageRecord> = Vec::new();
    for r in runs.iter().copied() {
        let Some(m) = &r.measured else { continue };
        if r.requested.spark.is_none() {
            continue;
        }
        // A cancelled run was stopped before it did all its work: it does not count, but what
        // it used is a floor of the advice all the same.
        if r.outcome == Outcome::Cancelled {
            let d = m.driver.map(|d| mib_up(d.heap_need())).unwrap_or(0);
            let x = m.executor.map(|x| mib_up(x.heap_need())).unwrap_or(0);
            a.driver_peak_mib = a.driver_peak_mib.max(d);
            a.executor_peak_mib = a.executor_peak_mib.max(x);
            continue;
        }
        if m.executor.is_some_and(|x| x.heap_need() > 0) {
            measured.push(r);
        } else {
            a.warnings.push(format!(
                "run {} has no memory peaks in its event log: not counted",
                run_name(r)
            ));
        }
    }
    let mut complete = true;
    let mut exec_peaks = Vec::new();
    for r in &measured {
        let (Some(m), Some(shape)) = (&r.measured, &r.requested.spark) else {
            continue;
        };
        complete &= m.complete;
        a.based_on.push(run_name(r));
        let d = m.driver.map(|d| mib_up(d.heap_need())).unwrap_or(0);
        let x = m.executor.map(|x| mib_up(x.heap_need())).unwrap_or(0);
        a.driver_peak_mib = a.driver_peak_mib.max(d);
        a.executor_peak_mib = a.executor_peak_mib.max(x);
        exec_peaks.push(x);
        let util = efficiency(r, prices).cpu_utilisation;
        if let Some(u) = util {
            a.max_cpu_utilisation = Some(a.max_cpu_utilisation.map_or(u, |m: f64| m.max(u)));
        }
        let near = |peak: u64, of: u64| of > 0 && peak as f64 >= cfg.near_limit * of as f64;
        if near(d, shape.driver_heap_mib) {
            a.warnings.push(format!(
                "run {} used {} MiB of its {} driver heap (near its limit)",
                run_name(r),
                d,
                spark_mem(shape.driver_heap_mib)
            ));
        }
        if near(x, shape.executor_heap_mib) {
            a.warnings.push(format!(
                "run {} used {} MiB of its {} executor heap (near its limit)",
                run_name(r),
                x,
                spark_mem(shape.executor_heap_mib)
            ));
        }
        if m.disk_spilled_bytes > 0 {
            a.warnings.push(format!(
                "run {} spilled {} MiB to disk: less memory would spill more",
                run_name(r),
                mib_up(m.disk_spilled_bytes)
            ));
        }
    }
    for o in &ooms {
        a.warnings.push(format!(
            "run {o} ran out of memory: memory is not advised down"
        ));
    }
    if measured.len() < cfg.min_runs {
        a.warnings.push(format!(
            "{} measured run(s); advice needs {}",
            measured.len(),
            cfg.min_runs
        ));
        return a;
    }
    let mut driver = advised_heap_mib(a.driver_peak_mib, cfg.safety_factor);
    let mut executor = advised_heap_mib(a.executor_peak_mib, cfg.safety_factor);
    if !ooms.is_empty() {
        driver = driver.max(current.driver_heap_mib);
        executor = executor.max(current.executor_heap_mib);
    }
    let cores = match a.max_cpu_utilisation {
        Some(u) if u < CORES_DOWN_BELOW => {
            let want = (current.executor_cores as f64 * u * cfg.safety_factor.max(1.0)).ceil();
            (want as u64).clamp(1, current.executor_cores.max(1))
        }
        _ => current.executor_cores,
    };
    let rec = SparkShape {
        driver_heap_mib: driver,
        executor_heap_mib: executor,
        executor_cores: cores,
        executors: current.executors,
    };
    a.recommended = Some(rec);
    a.status = AdviceStatus::Advised;
    // What each run would have held less, over its own run time.
    let mut saving = Saving::default();
    for r in &measured {
        let Some(s) = &r.requested.spark else {
            continue;
        };
        let hours = r.hours();
        let mem = (s.driver_heap_mib as f64 - rec.driver_heap_mib as f64)
            + (s.executor_heap_mib as f64 - rec.executor_heap_mib as f64) * s.executors as f64;
        let cores = (s.executor_cores as f64 - rec.executor_cores as f64) * s.executors as f64;
        saving.gib_hours += mem / 1024.0 * hours;
        saving.core_hours += cores * hours;
    }
    let scale = if window_ms > 0 {
        MONTH_MS as f64 / window_ms as f64
    } else {
        1.0
    };
    saving.core_hours *= scale;
    saving.gib_hours *= scale;
    saving.cost = prices.of(saving.core_hours, saving.gib_hours);
    a.monthly_saving = saving;
    let spread = match (exec_peaks.iter().max(), exec_peaks.iter().min()) {
        (Some(&hi), Some(&lo)) if lo > 0 => hi as f64 / lo as f64,
        _ => f64::INFINITY,
    };
    a.confidence = if !complete || spread > 2.0 {
        Confidence::Low
    } else if measured.len() >= cfg.min_runs.saturating_mul(2) && spread <= 1.25 {
        Confidence::High
    } else {
        Confidence::Medium
    };
    a
}

/// Sets the advised driver and executor memory and executor cores in `spec` (the spec's own
/// fields, which win over its `sparkConf`); returns what changed, for people (empty: nothing).
pub fn apply_to(spec: &mut SparkSpec, rec: &SparkShape) -> Vec<String> {
    let mut changed = Vec::new();
    let mem = |slot: &mut Option<Text>, mib: u64, what: &str, changed: &mut Vec<String>| {
        let want = spark_mem(mib);
        if slot.as_ref().map(|t| t.0.as_str()) != Some(want.as_str()) {
            let was = slot.as_ref().map_or("default".to_string(), |t| t.0.clone());
            changed.push(format!("{what} {was} -> {want}"));
            *slot = Some(Text(want));
        }
    };
    mem(
        &mut spec.driver.memory,
        rec.driver_heap_mib,
        "driver.memory",
        &mut changed,
    );
    mem(
        &mut spec.executor.memory,
        rec.executor_heap_mib,
        "executor.memory",
        &mut changed,
    );
    let cores = i64::try_from(rec.executor_cores).unwrap_or(i64::MAX);
    if spec.executor.cores != Some(cores) {
        let was = spec
            .executor
            .cores
            .map_or("default".to_string(), |c| c.to_string());
        changed.push(format!("executor.cores {was} -> {cores}"));
        spec.executor.cores = Some(cores);
    }
    changed
}

#[cfg(test)]
mod tests;
