//! `sluice schedule ...`, `sluice dlq ...` and `sluice purge`: schedules, the dead-letter queue
//! and purging queued jobs, over the API's `/v1/schedules`, `/v1/dlq` and `/v1/queues/purge`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use sluice_server::api::JobView;
use sluice_server::api::{DeadLetterView, OrchView, PurgeView, RequeueView, ScheduleView};

use crate::{Client, Output, print_as, print_table};

/// `sluice schedule ...`.
#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// Creates a schedule from a file: sluice's schedule YAML or a ScheduledSparkApplication
    /// (`-` reads standard input).
    Create {
        /// The schedule file.
        file: PathBuf,
    },
    /// Lists schedules with their next run.
    List {
        /// Only this namespace.
        #[arg(short, long)]
        namespace: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Shows a schedule: its policies, last run, active runs and next 5 run times.
    Get {
        /// Schedule name.
        name: String,
        /// Namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Suspends a schedule: no run starts until it is resumed.
    Suspend {
        /// Schedule name.
        name: String,
        /// Namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Resumes a schedule from its next fire time (times passed while suspended do not run).
    Resume {
        /// Schedule name.
        name: String,
        /// Namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Starts a run now and prints its job id.
    Trigger {
        /// Schedule name.
        name: String,
        /// Namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Deletes a schedule (its runs are kept).
    Delete {
        /// Schedule name.
        name: String,
        /// Namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

/// Which jobs a DLQ or purge command selects.
#[derive(Args, Default)]
pub struct FilterArgs {
    /// Only this namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Only runs of this schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Only jobs with these labels (key=value, comma-separated).
    #[arg(short = 'l', long)]
    pub label: Option<String>,
    /// Only this priority level.
    #[arg(long)]
    pub level: Option<String>,
    /// Only jobs that entered the DLQ (or their queue) longer ago than this, like 1h or 30m.
    #[arg(long)]
    pub older_than: Option<String>,
}

impl FilterArgs {
    fn query(&self, id: Option<&str>) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let pairs = [
            ("id", id.map(str::to_string)),
            ("namespace", self.namespace.clone()),
            ("schedule", self.schedule.clone()),
            ("label", self.label.clone()),
            ("level", self.level.clone()),
            ("older_than", self.older_than.clone()),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                q.push((k, v));
            }
        }
        q
    }
}

/// `sluice dlq ...`.
#[derive(Subcommand)]
pub enum DlqCmd {
    /// Lists dead-lettered jobs, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Shows a dead-lettered job: why, its last error and every attempt in its timeline.
    Show {
        /// Job id.
        id: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Puts dead-lettered jobs (one id, or a filter) back in their queues, at the tail of their
    /// level (or the front), keeping their history; each begins a new round of retries.
    Requeue {
        /// Job id (or use the filter options).
        id: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Requeue every dead-lettered job (needed when no filter is given).
        #[arg(long)]
        all: bool,
        /// Put them at the front of their level instead of the tail.
        #[arg(long)]
        front: bool,
    },
    /// Deletes dead-lettered jobs (one id, or a filter) with their history. Refuses without a
    /// filter unless --all.
    Purge {
        /// Job id (or use the filter options).
        id: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Purge every dead-lettered job (needed when no filter is given).
        #[arg(long)]
        all: bool,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `sluice purge`: deletes queued jobs.
#[derive(Args)]
pub struct PurgeArgs {
    /// Job id (or use the filter options).
    pub id: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Purge every queued job (needed when no filter is given).
    #[arg(long)]
    pub all: bool,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

impl Client {
    async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self
            .http
            .delete(self.url(path))
            .send()
            .await
            .map_err(|e| crate::access::unreachable(&self.base, e))?;
        self.decode(resp).await
    }
}

fn read_file(file: &PathBuf) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn schedule_path(namespace: &str, name: &str, action: &str) -> String {
    format!("/v1/schedules/{namespace}/{name}{action}")
}

fn print_schedule(s: &ScheduleView) {
    println!("Schedule:     {}/{}", s.namespace, s.name);
    println!("Expression:   {} ({})", s.schedule, s.time_zone);
    println!(
        "Policies:     concurrency {}, missed runs {} (catch-up window {} s)",
        s.concurrency_policy, s.missed_run_policy, s.catch_up_window_seconds
    );
    println!(
        "State:        {}",
        if s.suspended { "suspended" } else { "active" }
    );
    println!("Level:        {}", s.level);
    match (&s.last_run_at, &s.last_job_id) {
        (Some(t), Some(id)) => println!("Last run:     {t} (job {id})"),
        _ => println!("Last run:     none yet"),
    }
    if let Some(m) = &s.last_message {
        println!("Last check:   {m}");
    }
    if !s.active_runs.is_empty() {
        println!("Active runs:  {}", s.active_runs.join(", "));
    }
    if s.next_runs.is_empty() {
        println!("Next runs:    none (suspended)");
    } else {
        println!("Next runs:");
        for t in &s.next_runs {
            println!("  {t}");
        }
    }
}

/// Runs `sluice schedule ...`.
pub async fn schedule(c: &Client, cmd: ScheduleCmd) -> Result<i32> {
    match cmd {
        ScheduleCmd::Create { file } => {
            let s: ScheduleView = c.post("/v1/schedules", &[], read_file(&file)?).await?;
            println!("{}/{}", s.namespace, s.name);
            match s.next_runs.first() {
                Some(t) => eprintln!("next run at {t}"),
                None => eprintln!("suspended"),
            }
        }
        ScheduleCmd::List { namespace, output } => {
            let mut q = Vec::new();
            if let Some(n) = namespace {
                q.push(("namespace", n));
            }
            let all: Vec<ScheduleView> = c.get("/v1/schedules", &q).await?;
            if output == Output::Table {
                println!(
                    "{:<16}  {:<24}  {:<18}  {:<8}  {:<9}  {:<25}  LAST RUN",
                    "NAMESPACE", "NAME", "SCHEDULE", "POLICY", "STATE", "NEXT RUN"
                );
                for s in &all {
                    println!(
                        "{:<16}  {:<24}  {:<18}  {:<8}  {:<9}  {:<25}  {}",
                        s.namespace,
                        s.name,
                        s.schedule,
                        s.concurrency_policy,
                        if s.suspended { "suspended" } else { "active" },
                        s.next_runs.first().map(String::as_str).unwrap_or("-"),
                        s.last_job_id.as_deref().unwrap_or("-")
                    );
                }
            } else {
                print_as(&all, output)?;
            }
        }
        ScheduleCmd::Get {
            name,
            namespace,
            output,
        } => {
            let s: ScheduleView = c.get(&schedule_path(&namespace, &name, ""), &[]).await?;
            if output == Output::Table {
                print_schedule(&s);
            } else {
                print_as(&s, output)?;
            }
        }
        ScheduleCmd::Suspend { name, namespace } => {
            let s: ScheduleView = c
                .post(
                    &schedule_path(&namespace, &name, "/suspend"),
                    &[],
                    String::new(),
                )
                .await?;
            println!("{}/{} suspended", s.namespace, s.name);
        }
        ScheduleCmd::Resume { name, namespace } => {
            let s: ScheduleView = c
                .post(
                    &schedule_path(&namespace, &name, "/resume"),
                    &[],
                    String::new(),
                )
                .await?;
            println!(
                "{}/{} resumed; next run at {}",
                s.namespace,
                s.name,
                s.next_runs.first().map(String::as_str).unwrap_or("-")
            );
        }
        ScheduleCmd::Trigger { name, namespace } => {
            let j: JobView = c
                .post(
                    &schedule_path(&namespace, &name, "/trigger"),
                    &[],
                    String::new(),
                )
                .await?;
            println!("{}", j.id);
        }
        ScheduleCmd::Delete { name, namespace } => {
            let s: ScheduleView = c.delete(&schedule_path(&namespace, &name, "")).await?;
            println!("{}/{} deleted", s.namespace, s.name);
        }
    }
    Ok(0)
}

fn print_dead_letters(all: &[DeadLetterView]) {
    println!(
        "{:<26}  {:<16}  {:<20}  {:>7}  {:<11}  {:<24}  REASON",
        "ID", "NAMESPACE", "NAME", "ATTEMPT", "CLASS", "DEAD-LETTERED"
    );
    for d in all {
        println!(
            "{:<26}  {:<16}  {:<20}  {:>7}  {:<11}  {:<24}  {}",
            d.job.id,
            d.job.namespace,
            d.job.name,
            d.job.attempt,
            d.failure_class,
            d.dead_lettered_at,
            d.reason
        );
    }
}

/// Prints a purge's outcome; returns the exit code.
fn print_purge(p: &PurgeView, what: &str) -> i32 {
    if p.dry_run {
        println!("would purge {} {what}:", p.selected.len());
    } else {
        println!("purged {} {what}:", p.purged.len());
    }
    let shown: Vec<JobView> = if p.dry_run {
        p.selected.clone()
    } else {
        p.selected
            .iter()
            .filter(|j| p.purged.contains(&j.id))
            .cloned()
            .collect()
    };
    if !shown.is_empty() {
        print_table(&shown);
    }
    0
}

/// Runs `sluice dlq ...`.
pub async fn dlq(c: &Client, cmd: DlqCmd) -> Result<i32> {
    match cmd {
        DlqCmd::List {
            filter,
            limit,
            output,
        } => {
            let mut q = filter.query(None);
            q.push(("limit", limit.to_string()));
            let all: Vec<DeadLetterView> = c.get("/v1/dlq", &q).await?;
            if output == Output::Table {
                print_dead_letters(&all);
            } else {
                print_as(&all, output)?;
            }
            Ok(0)
        }
        DlqCmd::Show { id, output } => {
            let d: DeadLetterView = c.get(&format!("/v1/dlq/{id}"), &[]).await?;
            if output == Output::Table {
                println!(
                    "Dead-lettered: {} ({})",
                    d.dead_lettered_at, d.failure_class
                );
                println!("Reason:        {}", d.reason);
                crate::describe(&d.job);
            } else {
                print_as(&d, output)?;
            }
            Ok(0)
        }
        DlqCmd::Requeue {
            id,
            filter,
            all,
            front,
        } => {
            let mut q = filter.query(id.as_deref());
            if all {
                q.push(("all", "true".into()));
            }
            if front {
                q.push(("front", "true".into()));
            }
            let r: RequeueView = c.post("/v1/dlq/requeue", &q, String::new()).await?;
            println!("requeued {} job(s)", r.requeued.len());
            for j in &r.requeued {
                println!("{} attempt {}", j.id, j.attempt);
            }
            Ok(0)
        }
        DlqCmd::Purge {
            id,
            filter,
            all,
            dry_run,
        } => {
            let mut q = filter.query(id.as_deref());
            if all {
                q.push(("all", "true".into()));
            }
            if dry_run {
                q.push(("dry_run", "true".into()));
            }
            let p: PurgeView = c.post("/v1/dlq/purge", &q, String::new()).await?;
            Ok(print_purge(&p, "dead-lettered job(s)"))
        }
    }
}

/// Runs `sluice purge`.
pub async fn purge(c: &Client, a: PurgeArgs) -> Result<i32> {
    let mut q = a.filter.query(a.id.as_deref());
    if a.all {
        q.push(("all", "true".into()));
    }
    if a.dry_run {
        q.push(("dry_run", "true".into()));
    }
    let p: PurgeView = c.post("/v1/queues/purge", &q, String::new()).await?;
    Ok(print_purge(&p, "queued job(s)"))
}

/// The orchestration lines of `sluice describe`.
pub fn describe_orch(o: &OrchView) {
    if let Some(s) = &o.schedule {
        match &o.scheduled_for {
            Some(t) => println!("Schedule:   {s} (run for {t})"),
            None => println!("Schedule:   {s} (triggered)"),
        }
    }
    if o.max_attempts > 1 || o.attempt_in_round > 1 {
        println!(
            "Retries:    attempt {} of {} in this round",
            o.attempt_in_round, o.max_attempts
        );
    }
    if let Some(t) = &o.retry_at {
        println!("Backoff:    waiting; eligible to run again at {t}");
    }
    if o.preemptions > 0 {
        println!(
            "Preempted:  {} time(s) for jobs of higher priority (no retry used)",
            o.preemptions
        );
    }
    if let Some(t) = &o.dead_lettered_at {
        println!(
            "DLQ:        dead-lettered at {t} ({}): {}",
            o.failure_class.as_deref().unwrap_or("?"),
            o.dead_letter_reason.as_deref().unwrap_or("")
        );
    }
}
