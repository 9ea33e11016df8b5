//! `sluice simulate`: replays a trace on a cluster under each policy (the engine is the
//! `sluice-sim` crate; this file reads files, prints and writes the report), and
//! `sluice simulate generate`, which prints a synthetic trace.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use sluice_sim::generate::{GenConfig, Loads, Rhythm, generate};
use sluice_sim::window::BatchWindow;
use sluice_sim::{BaselineConfig, Cluster, Compare, Policy, Workload, report, trace};

/// `sluice simulate`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimulateArgs {
    #[command(subcommand)]
    cmd: Option<SimCmd>,
    /// The trace: CSV with a header, or JSON lines (docs/scheduling.md).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// The cluster file: node groups and the server's [scheduler] / [namespaces] sections (a
    /// server configuration for the simulated backend works as it is).
    #[arg(long)]
    cluster: Option<PathBuf>,
    /// A policy to replay (repeatable): no-admission, strict, best-effort, backfill,
    /// strict+aging, backfill+aging (aging by the cluster file's [scheduler.aging_ms]),
    /// strict+preemption (the cluster file's [scheduler.preemption], else the highest level
    /// preempting), configured.
    /// Default: no-admission, strict, best-effort.
    #[arg(long = "policy")]
    policies: Vec<String>,
    /// Write report.html, report.txt and summary.json into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
    /// No-admission baseline: how long a driver waits for all its executors before it gives
    /// up (duration grammar).
    #[arg(long, default_value = "10m")]
    hang_timeout: String,
    /// Backfill's run-time estimates: each job is expected to run its trace duration times
    /// this (1: exact; 0.5: jobs run twice as long as expected; 2: half as long).
    #[arg(long, default_value_t = 1.0)]
    estimate_factor: f64,
    /// Estimate the start of every job left waiting at its submit (the cycle run forward with
    /// the expected run times, as `describe` would) and report the estimates' accuracy.
    #[arg(long)]
    eta: bool,
    /// No-admission baseline: how many times a job that gave up is submitted again.
    #[arg(long, default_value_t = 3)]
    restarts: u32,
    /// Also report utilisation over this daily batch window, FROM-TO in times of day from
    /// the trace's time 0 (e.g. 0h-6h, 22h-6h).
    #[arg(long)]
    window: Option<String>,
}

#[derive(Subcommand)]
enum SimCmd {
    /// Prints a synthetic trace (CSV) to standard output; its distributions are documented in
    /// docs/scheduling.md.
    Generate {
        /// How many jobs.
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Seed: the same seed and settings give the same trace.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Size the arrival rate for this cluster file (and take its level names).
        #[arg(long)]
        cluster: Option<PathBuf>,
        /// Offered CPU load on the cluster (with --cluster): 0.9 submits, on average, 90% of
        /// its CPU-time.
        #[arg(long, default_value_t = 0.9)]
        load: f64,
        /// Mean gap between submits in seconds (without --cluster).
        #[arg(long, default_value_t = 10.0)]
        mean_gap: f64,
        /// Share of jobs at the first (highest) level.
        #[arg(long, default_value_t = 0.15)]
        high_share: f64,
        /// A daily rhythm (needs --cluster): a quiet day and a nightly batch window above the
        /// cluster's capacity, with jobs close to its size (docs/scheduling.md); --load is then
        /// not used, --day-load, --night-load and --batch-load are.
        #[arg(long)]
        nightly: bool,
        /// With --nightly: the batch window, FROM-TO in times of day.
        #[arg(long, default_value = "0h-6h")]
        window: String,
        /// With --nightly: offered load of the background outside the window.
        #[arg(long, default_value_t = 0.5)]
        day_load: f64,
        /// With --nightly: offered load of the background inside the window.
        #[arg(long, default_value_t = 0.1)]
        night_load: f64,
        /// With --nightly: offered load of the batch inside the window.
        #[arg(long, default_value_t = 1.3)]
        batch_load: f64,
    },
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn load_cluster(path: &Path) -> Result<Cluster> {
    Cluster::parse(&read(path, "cluster file")?).with_context(|| path.display().to_string())
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: SimulateArgs) -> Result<i32> {
    if let Some(SimCmd::Generate {
        jobs,
        seed,
        cluster,
        load,
        mean_gap,
        high_share,
        nightly,
        window,
        day_load,
        night_load,
        batch_load,
    }) = args.cmd
    {
        let mut cfg = GenConfig {
            jobs,
            seed,
            mean_gap_ms: mean_gap * 1000.0,
            high_share,
            ..GenConfig::default()
        };
        match (cluster, nightly) {
            (Some(c), nightly) => {
                let c = load_cluster(&c)?;
                cfg = cfg.for_load(&c, load)?;
                if nightly {
                    let loads = Loads {
                        day: day_load,
                        night: night_load,
                        batch: batch_load,
                    };
                    cfg.rhythm = Some(Rhythm::nightly(&c, BatchWindow::parse(&window)?, loads)?);
                }
            }
            (None, true) => bail!("--nightly needs --cluster FILE (huge jobs are sized on it)"),
            (None, false) => {}
        }
        print!("{}", trace::write_csv(&generate(&cfg)?));
        return Ok(0);
    }
    let (Some(trace_path), Some(cluster_path)) = (&args.trace, &args.cluster) else {
        bail!("simulate needs --trace FILE and --cluster FILE (or the `generate` subcommand)");
    };
    let policies: Vec<Policy> = if args.policies.is_empty() {
        Policy::DEFAULT.to_vec()
    } else {
        args.policies
            .iter()
            .map(|p| p.parse::<Policy>())
            .collect::<Result<_, _>>()?
    };
    let cluster = load_cluster(cluster_path)?;
    let jobs = trace::parse(&read(trace_path, "trace")?)
        .with_context(|| trace_path.display().to_string())?;
    let workload =
        Workload::new(&jobs, &cluster).with_context(|| trace_path.display().to_string())?;
    let hang = sluice_core::duration::parse_positive("--hang-timeout", &args.hang_timeout)?;
    let baseline = BaselineConfig {
        hang_timeout_ms: i64::try_from(hang.as_millis()).context("--hang-timeout is too large")?,
        restarts: args.restarts,
    };
    let started = std::time::Instant::now();
    if !(args.estimate_factor.is_finite() && args.estimate_factor > 0.0) {
        bail!(
            "--estimate-factor must be a positive number, not {}",
            args.estimate_factor
        );
    }
    let window = args.window.as_deref().map(BatchWindow::parse).transpose()?;
    let summaries = sluice_sim::compare_with(
        &workload,
        &cluster,
        &policies,
        &Compare {
            baseline,
            estimate_factor: args.estimate_factor,
            eta: args.eta,
            window,
        },
    );
    let elapsed = started.elapsed();
    let text = report::text(&summaries);
    print!("{text}");
    eprintln!(
        "replayed {} jobs on {} nodes under {} policies in {:.2} s",
        workload.jobs.len(),
        cluster.nodes.len(),
        policies.len(),
        elapsed.as_secs_f64()
    );
    if let Some(dir) = args.report {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let title = format!(
            "sluice simulation: {} on {}",
            trace_path.display(),
            cluster_path.display()
        );
        let write = |name: &str, body: &str| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))
        };
        write("report.html", &report::html(&title, &summaries))?;
        write("report.txt", &text)?;
        write("summary.json", &serde_json::to_string_pretty(&summaries)?)?;
        eprintln!("report written to {}", dir.join("report.html").display());
    }
    Ok(0)
}
