//! `sluice cost` and `sluice advise`: what runs held and used, their cost, and right-sizing
//! advice (see docs/cost.md).

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use sluice_api::AppliedView;
use sluice_api::cost::{AdviceView, CostView, RunCostView};
use sluice_core::cost::advice::{AdviceStatus, spark_mem};

use crate::{Client, Output, print_as};

/// What `sluice cost` sums by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// Namespace and job name.
    Job,
    /// Namespace and schedule.
    Schedule,
    /// Namespace.
    Namespace,
    /// Namespace and day (UTC).
    Day,
    /// Each run.
    Run,
}

/// The runs looked at.
#[derive(Args, Clone)]
pub struct Window {
    /// Only this namespace.
    #[arg(short, long)]
    namespace: Option<String>,
    /// Only jobs of this name.
    #[arg(long)]
    name: Option<String>,
    /// Only runs of this schedule.
    #[arg(long)]
    schedule: Option<String>,
    /// Runs that ended at or after this time (RFC 3339); default the server's window
    /// (`cost.window_days`) before `--to`.
    #[arg(long)]
    from: Option<String>,
    /// Runs that ended before this time (RFC 3339); default now.
    #[arg(long)]
    to: Option<String>,
}

impl Window {
    fn query(&self, by: &str) -> Vec<(&'static str, String)> {
        let mut q = vec![("by", by.to_string())];
        for (k, v) in [
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("schedule", &self.schedule),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        q
    }
}

/// `sluice cost`.
#[derive(Args)]
pub struct CostArgs {
    /// Sum by job (default), schedule, namespace or day; `run` lists each run.
    #[arg(long, value_enum, default_value = "job")]
    by: By,
    #[command(flatten)]
    window: Window,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

/// `sluice advise`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AdviseArgs {
    #[command(subcommand)]
    cmd: Option<AdviseCmd>,
    /// Advise per job name (default) or per schedule.
    #[arg(long, default_value = "job", value_parser = ["job", "schedule"])]
    by: String,
    #[command(flatten)]
    window: Window,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

/// `sluice advise apply`.
#[derive(Subcommand)]
pub enum AdviseCmd {
    /// Applies a schedule's advice to it (its next runs ask for the advised driver and executor
    /// memory and executor cores); nothing is changed otherwise.
    Apply {
        /// The schedule's namespace.
        namespace: String,
        /// The schedule.
        schedule: String,
        /// Runs that ended at or after this time (RFC 3339); default the server's window.
        #[arg(long)]
        from: Option<String>,
        /// Runs that ended before this time (RFC 3339); default now.
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

/// Runs `sluice cost`.
pub async fn cost(c: &Client, a: CostArgs) -> Result<i32> {
    if a.by == By::Run {
        let runs: Vec<RunCostView> = c.get("/v1/cost/runs", &a.window.query("job")).await?;
        if a.output != Output::Table {
            print_as(&runs, a.output)?;
            return Ok(0);
        }
        println!(
            "{:<28}  {:<14}  {:<20}  {:<9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>5}  {:>9}",
            "RUN", "NAMESPACE", "NAME", "OUTCOME", "CORE-H", "USED", "GIB-H", "USED", "CPU", "COST"
        );
        for r in &runs {
            let e = &r.efficiency;
            let measured = r.run.measured.is_some();
            let used = |v: f64| {
                if measured {
                    format!("{v:.4}")
                } else {
                    "-".into()
                }
            };
            println!(
                "{:<28}  {:<14}  {:<20}  {:<9}  {:>9.4}  {:>9}  {:>9.4}  {:>9}  {:>5}  {:>9.4}",
                format!("{}/{}", r.run.job_id, r.run.attempt),
                r.run.namespace,
                r.run.name,
                r.run.outcome.as_str(),
                e.held_core_hours,
                used(e.used_core_hours),
                e.held_gib_hours,
                used(e.used_gib_hours),
                pct(e.cpu_utilisation),
                e.cost
            );
        }
        return Ok(0);
    }
    let by = match a.by {
        By::Job => "job",
        By::Schedule => "schedule",
        By::Namespace => "namespace",
        By::Day | By::Run => "day",
    };
    let v: CostView = c.get("/v1/cost", &a.window.query(by)).await?;
    if a.output != Output::Table {
        print_as(&v, a.output)?;
        return Ok(0);
    }
    println!(
        "Runs that ended from {} to {} ({})",
        v.from, v.to, v.currency
    );
    println!(
        "{:<14}  {:<24}  {:>5}  {:>10}  {:>10}  {:>5}  {:>10}  {:>10}  {:>5}  {:>10}  {:>10}",
        "NAMESPACE",
        by.to_uppercase(),
        "RUNS",
        "CORE-H",
        "USED",
        "CPU",
        "GIB-H",
        "USED",
        "MEM",
        "COST",
        "WASTE"
    );
    for g in &v.groups {
        println!(
            "{:<14}  {:<24}  {:>5}  {:>10.4}  {:>10.4}  {:>5}  {:>10.4}  {:>10.4}  {:>5}  {:>10.4}  {:>10.4}",
            g.namespace,
            g.key,
            g.runs,
            g.held_core_hours,
            g.used_core_hours,
            pct(g.cpu_utilisation),
            g.held_gib_hours,
            g.used_gib_hours,
            pct(g.memory_utilisation),
            g.cost,
            g.waste
        );
    }
    Ok(0)
}

/// Runs `sluice advise`.
pub async fn advise(c: &Client, a: AdviseArgs) -> Result<i32> {
    if let Some(AdviseCmd::Apply {
        namespace,
        schedule,
        from,
        to,
        output,
    }) = a.cmd
    {
        let mut q = Vec::new();
        for (k, v) in [("from", from), ("to", to)] {
            if let Some(v) = v {
                q.push((k, v));
            }
        }
        let path = format!(
            "/v1/advice/{}/{}/apply",
            urlencoding(&namespace),
            urlencoding(&schedule)
        );
        let v: AppliedView = c.post(&path, &q, String::new()).await?;
        if output != Output::Table {
            print_as(&v, output)?;
        } else if v.changed.is_empty() {
            println!("schedule {namespace}/{schedule} already has the advice");
        } else {
            println!("schedule {namespace}/{schedule}: {}", v.changed.join(", "));
        }
        return Ok(0);
    }
    let v: AdviceView = c.get("/v1/advice", &a.window.query(&a.by)).await?;
    if a.output != Output::Table {
        print_as(&v, a.output)?;
        return Ok(0);
    }
    println!(
        "{:<14}  {:<24}  {:>4}  {:<14}  {:<14}  {:<10}  {:>9}  {:>11}  {:<10}",
        "NAMESPACE",
        a.by.to_uppercase(),
        "RUNS",
        "DRIVER",
        "EXECUTOR",
        "CORES",
        "PEAK",
        "SAVING/MO",
        "CONFIDENCE"
    );
    for x in &v.advice {
        let arrow = |cur: u64, rec: Option<u64>| match rec {
            Some(r) if r != cur => format!("{}->{}", spark_mem(cur), spark_mem(r)),
            _ => spark_mem(cur),
        };
        let (driver, executor, cores) = match (&x.current, &x.recommended) {
            (Some(c), r) => (
                arrow(c.driver_heap_mib, r.map(|r| r.driver_heap_mib)),
                arrow(c.executor_heap_mib, r.map(|r| r.executor_heap_mib)),
                match r {
                    Some(r) if r.executor_cores != c.executor_cores => {
                        format!("{}->{}", c.executor_cores, r.executor_cores)
                    }
                    _ => c.executor_cores.to_string(),
                },
            ),
            (None, _) => ("-".into(), "-".into(), "-".into()),
        };
        let saving = match x.status {
            AdviceStatus::Advised => format!("{:.2} {}", x.monthly_saving.cost, v.currency),
            AdviceStatus::NotEnoughRuns => "too few runs".into(),
            AdviceStatus::NotSpark => "not Spark".into(),
        };
        println!(
            "{:<14}  {:<24}  {:>4}  {:<14}  {:<14}  {:<10}  {:>8}m  {:>11}  {:<10}",
            x.namespace,
            x.key,
            x.based_on.len(),
            driver,
            executor,
            cores,
            x.executor_peak_mib,
            saving,
            format!("{:?}", x.confidence).to_lowercase()
        );
        for w in &x.warnings {
            println!("    ! {w}");
        }
    }
    Ok(0)
}

/// A path segment with every byte but unreserved ones percent-encoded.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
