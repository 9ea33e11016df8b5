//! The synthetic trace generator. Its distributions, all drawn from one seeded
//! [`SplitMix64`](crate::rng::SplitMix64) (same settings and seed, same trace):
//!
//! - **Arrivals**: a Poisson process: gaps between submits are exponential with mean
//!   `mean_gap_ms`. [`GenConfig::for_load`] picks the mean so that the offered load (expected
//!   CPU-time submitted per unit of time over the cluster's CPU) is `load`.
//! - **Job sizes**: three classes. *small* (60%): driver 1 core / 2 GiB, 1-4 executors of
//!   1 core / 4 GiB; *medium* (30%): driver 2 cores / 4 GiB, 4-16 executors of 2 cores / 8 GiB;
//!   *large* (10%): driver 4 cores / 8 GiB, 16-48 executors of 4 cores / 16 GiB. Executor counts
//!   are uniform in their range.
//! - **Durations**: log-normal per class: small median 3 min, sigma 0.6; medium median 10 min,
//!   sigma 0.6; large median 30 min, sigma 0.5 (rounded to whole seconds, at least 1 s).
//! - **Levels**: the first level (`high`) with probability `high_share` (default 0.15), else
//!   the second (`normal`).
//! - **Namespaces**: drawn by weight from `namespaces` (default etl 40%, ml 30%, adhoc 20%,
//!   reports 10%).
//! - **Outcomes**: failed 3%, oom 1%, else succeeded.
//!
//! With a [`Rhythm`] ([`nightly`]) the arrivals follow a day: a quiet day and a nightly batch
//! window above the cluster's capacity, with jobs close to the cluster's size.

mod nightly;

pub use nightly::{HUGE_MAX, HUGE_MIN, Loads, Rhythm};

use sluice_core::job::Resources;

use crate::cluster::Cluster;
use crate::error::SimError;
use crate::rng::SplitMix64;
use crate::trace::{Outcome, TraceJob};

/// One size class of the generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeClass {
    /// Name (used in job names).
    pub name: &'static str,
    /// Probability of a job being of this class.
    pub probability: f64,
    /// The driver pod.
    pub driver: Resources,
    /// Each executor pod.
    pub executor: Resources,
    /// Fewest executors.
    pub min_executors: u32,
    /// Most executors.
    pub max_executors: u32,
    /// Median duration, ms.
    pub median_ms: f64,
    /// Spread of the log-normal duration.
    pub sigma: f64,
}

/// The three size classes.
pub const CLASSES: [SizeClass; 3] = [
    SizeClass {
        name: "small",
        probability: 0.6,
        driver: Resources::new(1000, 2048),
        executor: Resources::new(1000, 4096),
        min_executors: 1,
        max_executors: 4,
        median_ms: 180_000.0,
        sigma: 0.6,
    },
    SizeClass {
        name: "medium",
        probability: 0.3,
        driver: Resources::new(2000, 4096),
        executor: Resources::new(2000, 8192),
        min_executors: 4,
        max_executors: 16,
        median_ms: 600_000.0,
        sigma: 0.6,
    },
    SizeClass {
        name: "large",
        probability: 0.1,
        driver: Resources::new(4000, 8192),
        executor: Resources::new(4000, 16384),
        min_executors: 16,
        max_executors: 48,
        median_ms: 1_800_000.0,
        sigma: 0.5,
    },
];

/// Generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Jobs to generate.
    pub jobs: usize,
    /// Seed.
    pub seed: u64,
    /// Mean gap between submits, ms.
    pub mean_gap_ms: f64,
    /// Probability of the high level.
    pub high_share: f64,
    /// Level names: (high, normal).
    pub levels: (String, String),
    /// Namespaces and their probabilities.
    pub namespaces: Vec<(String, f64)>,
    /// A daily rhythm (nightly batch window); `None`: one Poisson stream at `mean_gap_ms`.
    pub rhythm: Option<Rhythm>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            jobs: 1000,
            seed: 1,
            mean_gap_ms: 10_000.0,
            high_share: 0.15,
            levels: ("high".into(), "normal".into()),
            namespaces: vec![
                ("etl".into(), 0.4),
                ("ml".into(), 0.3),
                ("adhoc".into(), 0.2),
                ("reports".into(), 0.1),
            ],
            rhythm: None,
        }
    }
}

/// Expected CPU-time of one job of the class, in millicore-milliseconds.
fn class_cpu_ms(c: &SizeClass) -> f64 {
    let execs = f64::from(c.min_executors + c.max_executors) / 2.0;
    let cpu = c.driver.cpu_milli as f64 + execs * c.executor.cpu_milli as f64;
    let mean_ms = c.median_ms * (c.sigma * c.sigma / 2.0).exp();
    cpu * mean_ms
}

/// Expected CPU-time of one generated job, in millicore-milliseconds.
pub fn expected_cpu_ms_per_job() -> f64 {
    CLASSES
        .iter()
        .map(|c| c.probability * class_cpu_ms(c))
        .sum()
}

impl GenConfig {
    /// Sets the mean gap so that the offered CPU load on the cluster is `load` (1.0: the
    /// cluster's whole CPU, on average), and takes the level names from the cluster's first two.
    pub fn for_load(mut self, cluster: &Cluster, load: f64) -> Result<Self, SimError> {
        if !load.is_finite() || load <= 0.0 || load > 10.0 {
            return Err(bad("load", load, "must be above 0 and at most 10"));
        }
        let cpu = cluster.total().cpu_milli as f64;
        self.mean_gap_ms = expected_cpu_ms_per_job() / (load * cpu.max(1.0));
        let names = &cluster.levels.names;
        if let [first, second, ..] = names.as_slice() {
            self.levels = (first.clone(), second.clone());
        } else if let [only] = names.as_slice() {
            self.levels = (only.clone(), only.clone());
        }
        Ok(self)
    }

    fn check(&self) -> Result<(), SimError> {
        if self.jobs == 0 || self.jobs > 10_000_000 {
            return Err(bad("jobs", self.jobs, "must be from 1 to 10,000,000"));
        }
        if !(0.0..=1.0).contains(&self.high_share) {
            return Err(bad("high_share", self.high_share, "must be from 0 to 1"));
        }
        if !self.mean_gap_ms.is_finite() || self.mean_gap_ms < 0.0 {
            return Err(bad(
                "mean_gap_ms",
                self.mean_gap_ms,
                "must be a non-negative number",
            ));
        }
        if self.namespaces.is_empty()
            || self
                .namespaces
                .iter()
                .any(|(n, p)| n.is_empty() || *p < 0.0)
        {
            return Err(bad(
                "namespaces",
                self.namespaces.len(),
                "need at least one namespace, each named, with a non-negative probability",
            ));
        }
        Ok(())
    }
}

fn bad(key: &str, value: impl ToString, message: &str) -> SimError {
    SimError::Generator {
        key: key.into(),
        value: value.to_string(),
        message: message.into(),
    }
}

/// Generates a trace.
pub fn generate(cfg: &GenConfig) -> Result<Vec<TraceJob>, SimError> {
    cfg.check()?;
    if let Some(r) = &cfg.rhythm {
        return nightly::generate(cfg, r);
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let class_p: Vec<f64> = CLASSES.iter().map(|c| c.probability).collect();
    let ns_p: Vec<f64> = cfg.namespaces.iter().map(|(_, p)| *p).collect();
    let mut t = 0.0f64;
    let mut jobs = Vec::with_capacity(cfg.jobs);
    for i in 0..cfg.jobs {
        if i > 0 {
            t += rng.next_exp(cfg.mean_gap_ms);
        }
        let c = &CLASSES[rng.pick(&class_p)];
        jobs.push(job(
            cfg,
            &mut rng,
            i,
            t,
            c,
            Namespace::Drawn(&ns_p),
            cfg.high_share,
        ));
    }
    Ok(jobs)
}

/// A job's namespace: drawn from the configured ones by these probabilities, or given.
enum Namespace<'a> {
    Drawn(&'a [f64]),
    Given(&'a str),
}

/// The `i`th job of the trace, submitted at `t` ms, of class `c`, at the first level with
/// probability `high_share`: its executor count, duration, namespace, level and outcome are
/// drawn here, in that order (the order of the draws is what keeps a seed's trace the same).
fn job(
    cfg: &GenConfig,
    rng: &mut SplitMix64,
    i: usize,
    t: f64,
    c: &SizeClass,
    ns: Namespace<'_>,
    high_share: f64,
) -> TraceJob {
    let executors = rng.range(u64::from(c.min_executors), u64::from(c.max_executors));
    let secs = (rng.next_lognormal(c.median_ms, c.sigma) / 1000.0)
        .round()
        .max(1.0);
    let ns = match ns {
        Namespace::Drawn(p) => cfg.namespaces[rng.pick(p)].0.as_str(),
        Namespace::Given(ns) => ns,
    };
    let level = if rng.next_open01() < high_share {
        &cfg.levels.0
    } else {
        &cfg.levels.1
    };
    let o = rng.next_open01();
    let outcome = if o < 0.03 {
        Outcome::Failed
    } else if o < 0.04 {
        Outcome::Oom
    } else {
        Outcome::Succeeded
    };
    TraceJob {
        line: i as u64 + 2,
        submit_ms: t.round() as i64,
        namespace: ns.to_string(),
        level: Some(level.clone()),
        name: format!("{}-{}-{i}", ns, c.name),
        driver: c.driver,
        executor: c.executor,
        executors: u32::try_from(executors).unwrap_or(c.max_executors),
        duration_ms: secs as i64 * 1000,
        outcome,
        max_runtime_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace;

    #[test]
    fn same_seed_same_trace_and_it_parses_back() {
        let cfg = GenConfig {
            jobs: 300,
            seed: 9,
            ..GenConfig::default()
        };
        let a = generate(&cfg).unwrap();
        assert_eq!(a, generate(&cfg).unwrap());
        assert_ne!(
            a,
            generate(&GenConfig {
                seed: 10,
                ..cfg.clone()
            })
            .unwrap()
        );
        assert_eq!(trace::parse(&trace::write_csv(&a)).unwrap(), a);
        assert!(a.windows(2).all(|p| p[0].submit_ms <= p[1].submit_ms));
    }

    #[test]
    fn the_mix_follows_its_documented_distributions() {
        let cfg = GenConfig {
            jobs: 20_000,
            seed: 3,
            mean_gap_ms: 1000.0,
            ..GenConfig::default()
        };
        let jobs = generate(&cfg).unwrap();
        let n = jobs.len() as f64;
        let share = |f: &dyn Fn(&TraceJob) -> bool| jobs.iter().filter(|j| f(j)).count() as f64 / n;
        let near = |x: f64, want: f64| (x - want).abs() < 0.02;
        assert!(near(
            share(&|j| j.name.ends_with(&format!("-small-{}", j.line - 2))),
            0.6
        ));
        assert!(near(
            share(&|j| j.executors >= 16 && j.executor.cpu_milli == 4000),
            0.1
        ));
        assert!(near(share(&|j| j.level.as_deref() == Some("high")), 0.15));
        assert!(near(share(&|j| j.namespace == "etl"), 0.4));
        let gap = jobs.last().unwrap().submit_ms as f64 / (n - 1.0);
        assert!((950.0..1050.0).contains(&gap), "{gap}");
        let mut small: Vec<i64> = jobs
            .iter()
            .filter(|j| j.executor.cpu_milli == 1000)
            .map(|j| j.duration_ms)
            .collect();
        small.sort_unstable();
        let median = small[small.len() / 2];
        assert!((170_000..190_000).contains(&median), "{median}");
    }

    #[test]
    fn bad_settings_are_named() {
        let err = generate(&GenConfig {
            jobs: 0,
            ..GenConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("`jobs` = \"0\""), "{err}");
        let c = Cluster::of_nodes(vec![sluice_core::NodeCapacity::new("n", 1000, 1024, None)]);
        let err = GenConfig::default().for_load(&c, 0.0).unwrap_err();
        assert!(err.to_string().contains("`load`"), "{err}");
    }

    #[test]
    fn the_nightly_rhythm_puts_the_batch_and_the_huge_jobs_in_the_window() {
        let cluster = Cluster::parse(
            "nodes = [{ prefix = \"n\", count = 24, cpu = \"16\", memory = \"64g\" }]\n",
        )
        .unwrap();
        let window = crate::window::BatchWindow::NIGHTLY;
        let rhythm = Rhythm::nightly(&cluster, window, Loads::default()).unwrap();
        let cfg = GenConfig {
            jobs: 4000,
            seed: 5,
            rhythm: Some(rhythm.clone()),
            ..GenConfig::default()
        };
        let jobs = generate(&cfg).unwrap();
        assert_eq!(jobs.len(), 4000);
        assert!(jobs.windows(2).all(|p| p[0].submit_ms <= p[1].submit_ms));
        let huge: Vec<&TraceJob> = jobs
            .iter()
            .filter(|j| j.name.contains("-nightly-"))
            .collect();
        assert!(!huge.is_empty());
        let cpu = cluster.total().cpu_milli as f64;
        for j in &huge {
            assert!(window.contains(j.submit_ms), "{}", j.name);
            assert_eq!(j.namespace, "etl");
            let share = f64::from(j.executors) * j.executor.cpu_milli as f64 / cpu;
            assert!(
                (HUGE_MIN - 0.02..=HUGE_MAX + 0.02).contains(&share),
                "{share}"
            );
        }
        // Offered CPU-time per hour: the window's is above the cluster, the day's below it.
        let work = |j: &TraceJob| {
            (j.driver.cpu_milli + u64::from(j.executors) * j.executor.cpu_milli) as f64
                * j.duration_ms as f64
        };
        let inside: f64 = jobs
            .iter()
            .filter(|j| window.contains(j.submit_ms))
            .map(work)
            .sum();
        let all: f64 = jobs.iter().map(work).sum();
        let span = jobs.last().unwrap().submit_ms;
        let open = window.overlap(0, span) as f64;
        let (load_in, load_out) = (
            inside / open / cpu,
            (all - inside) / (span as f64 - open) / cpu,
        );
        assert!(load_in > 1.0 && load_out < 0.8, "{load_in} vs {load_out}");
        let err = Rhythm::nightly(
            &cluster,
            window,
            Loads {
                batch: 0.0,
                ..Loads::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`batch_load`"), "{err}");
    }
}
