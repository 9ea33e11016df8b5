//! The daily rhythm of a data platform: a quiet day of many small interactive jobs, and a nightly
//! batch window in which one team's batch arrives faster than the cluster can run it, with a
//! few jobs close to the cluster's size (the nightly loads the morning's reports depend on).
//!
//! Two streams, each a Poisson process whose rate depends on the time of day (the gaps are drawn
//! exactly for a piecewise-constant rate):
//!
//! - **Background**: the flat generator's mix (size classes, namespaces, levels), at an offered
//!   CPU load of `day_load` outside the window and `night_load` inside it.
//! - **Batch**: only inside the window, in `batch_namespace`, at an offered load of
//!   `batch_load`: a job is *huge* with probability `huge_share`, else one of the flat size
//!   classes. A huge job has a 4-core / 8 GiB driver and 4-core / 16 GiB executors, as many as
//!   make `huge_min`..`huge_max` of the cluster's CPU (uniform), and runs a log-normal time of
//!   median 45 min, sigma 0.5. A batch job is at the first level with probability
//!   `batch_high_share`.
//!
//! Every job has a `maxRuntime` of [`MAX_RUNTIME_FACTOR`] times its class's median run time
//! (small 12 min, medium 40 min, large 2 h, nightly 3 h): what a team sets once it knows its
//! jobs' typical run time. With the log-normal run times about 1% of small and medium jobs and
//! 0.3% of large and nightly ones run past it and are stopped there.

use sluice_core::job::Resources;

use super::{CLASSES, GenConfig, Namespace, SizeClass, bad, class_cpu_ms};
use crate::cluster::Cluster;
use crate::error::SimError;
use crate::rng::SplitMix64;
use crate::trace::TraceJob;
use crate::window::BatchWindow;

/// The settings of the daily rhythm.
#[derive(Debug, Clone, PartialEq)]
pub struct Rhythm {
    /// The batch window.
    pub window: BatchWindow,
    /// Mean gap of the background stream outside the window, ms.
    pub day_gap_ms: f64,
    /// Mean gap of the background stream inside the window, ms (infinite: none).
    pub night_gap_ms: f64,
    /// Mean gap of the batch stream inside the window, ms.
    pub batch_gap_ms: f64,
    /// The batch team's namespace.
    pub batch_namespace: String,
    /// Probability of a batch job being at the first level.
    pub batch_high_share: f64,
    /// Probability of a batch job being huge.
    pub huge_share: f64,
    /// The huge class (its probability is unused).
    pub huge: SizeClass,
}

/// Offered loads of the rhythm, each as a share of the cluster's CPU while it lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loads {
    /// The background outside the window (the quiet day).
    pub day: f64,
    /// The background inside the window.
    pub night: f64,
    /// The batch inside the window.
    pub batch: f64,
}

impl Default for Loads {
    /// Day 0.5, night background 0.1, batch 1.3: the window offers 1.4 times the cluster.
    fn default() -> Self {
        Loads {
            day: 0.5,
            night: 0.1,
            batch: 1.3,
        }
    }
}

/// A job's `maxRuntime` is this many times its class's median run time.
pub const MAX_RUNTIME_FACTOR: f64 = 4.0;

/// Huge jobs take from this share of the cluster's CPU...
pub const HUGE_MIN: f64 = 0.25;
/// ... to this share.
pub const HUGE_MAX: f64 = 0.75;

impl Rhythm {
    /// The rhythm for this cluster: huge jobs sized on its CPU (at most what fits it empty),
    /// gaps set so that each stream offers its load. The batch goes to `etl`, 30% of it high.
    pub fn nightly(cluster: &Cluster, window: BatchWindow, loads: Loads) -> Result<Self, SimError> {
        for (key, v) in [
            ("day_load", loads.day),
            ("night_load", loads.night),
            ("batch_load", loads.batch),
        ] {
            if !v.is_finite() || !(0.0..=10.0).contains(&v) {
                return Err(bad(key, v, "must be from 0 to 10"));
            }
        }
        if loads.batch <= 0.0 {
            return Err(bad("batch_load", loads.batch, "must be above 0"));
        }
        let cpu = cluster.total().cpu_milli as f64;
        let driver = Resources::new(4000, 8192);
        let executor = Resources::new(4000, 16384);
        // Executors the empty cluster holds beside the driver (per node, whole pods).
        let per_node = |n: &sluice_core::NodeCapacity| {
            (n.cpu_milli / executor.cpu_milli).min(n.mem_mib / executor.mem_mib)
        };
        let fit = cluster
            .nodes
            .iter()
            .map(per_node)
            .sum::<u64>()
            .saturating_sub(1);
        let execs =
            |share: f64| ((share * cpu / executor.cpu_milli as f64) as u64).clamp(1, fit.max(1));
        let huge = SizeClass {
            name: "nightly",
            probability: 0.0,
            driver,
            executor,
            min_executors: u32::try_from(execs(HUGE_MIN)).unwrap_or(u32::MAX),
            max_executors: u32::try_from(execs(HUGE_MAX)).unwrap_or(u32::MAX),
            median_ms: 45.0 * 60_000.0,
            sigma: 0.5,
        };
        let huge_share = 0.2;
        let flat = super::expected_cpu_ms_per_job();
        let batch_job = huge_share * class_cpu_ms(&huge) + (1.0 - huge_share) * flat;
        let gap = |load: f64, per_job: f64| {
            if load > 0.0 {
                per_job / (load * cpu.max(1.0))
            } else {
                f64::INFINITY
            }
        };
        Ok(Rhythm {
            window,
            day_gap_ms: gap(loads.day, flat),
            night_gap_ms: gap(loads.night, flat),
            batch_gap_ms: gap(loads.batch, batch_job),
            batch_namespace: "etl".into(),
            batch_high_share: 0.3,
            huge_share,
            huge,
        })
    }

    /// The next arrival after `t` of a stream whose mean gap is `inside` in the window and
    /// `outside` out of it (infinite: no arrivals then): an exponential amount of "unit-rate
    /// time" spent through the windows' edges.
    fn next(&self, rng: &mut SplitMix64, t: f64, inside: f64, outside: f64) -> f64 {
        let mut left = rng.next_exp(1.0);
        let mut t = t;
        // Ten years of days at most: a stream with no arrivals at all stops.
        for _ in 0..7_300 {
            let gap = if self.window.contains(t as i64) {
                inside
            } else {
                outside
            };
            let edge = self.window.next_edge(t as i64) as f64;
            let span = (edge - t).max(1.0);
            if gap.is_finite() && left * gap <= span {
                return t + left * gap;
            }
            if gap.is_finite() {
                left -= span / gap;
            }
            t = edge.max(t + 1.0);
        }
        f64::INFINITY
    }
}

/// Generates a trace with the rhythm: both streams merged in submit order.
pub(super) fn generate(cfg: &GenConfig, r: &Rhythm) -> Result<Vec<TraceJob>, SimError> {
    if !(0.0..=1.0).contains(&r.huge_share) || !(0.0..=1.0).contains(&r.batch_high_share) {
        return Err(bad(
            "huge_share",
            r.huge_share,
            "shares must be from 0 to 1",
        ));
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let class_p: Vec<f64> = CLASSES.iter().map(|c| c.probability).collect();
    let ns_p: Vec<f64> = cfg.namespaces.iter().map(|(_, p)| *p).collect();
    let mut bg = r.next(&mut rng, 0.0, r.night_gap_ms, r.day_gap_ms);
    let mut batch = r.next(&mut rng, 0.0, r.batch_gap_ms, f64::INFINITY);
    let mut jobs = Vec::with_capacity(cfg.jobs);
    for i in 0..cfg.jobs {
        let (t, c, ns, high) = if batch < bg {
            let t = batch;
            batch = r.next(&mut rng, t, r.batch_gap_ms, f64::INFINITY);
            let c = if rng.next_open01() < r.huge_share {
                &r.huge
            } else {
                &CLASSES[rng.pick(&class_p)]
            };
            (
                t,
                c,
                Namespace::Given(&r.batch_namespace),
                r.batch_high_share,
            )
        } else {
            let t = bg;
            bg = r.next(&mut rng, t, r.night_gap_ms, r.day_gap_ms);
            let c = &CLASSES[rng.pick(&class_p)];
            (t, c, Namespace::Drawn(&ns_p), cfg.high_share)
        };
        if !t.is_finite() {
            break;
        }
        let mut job = super::job(cfg, &mut rng, i, t, c, ns, high);
        job.max_runtime_ms = Some((MAX_RUNTIME_FACTOR * c.median_ms).round() as i64);
        jobs.push(job);
    }
    Ok(jobs)
}
