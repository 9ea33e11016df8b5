//! `sluice schedule ...`, `sluice dlq ...` and `sluice purge`: schedules, the dead-letter queue
//! and purging queued jobs, over the API's `/v1/schedules`, `/v1/dlq` and `/v1/queues/purge`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use sluice_api::JobView;
use sluice_api::{DeadLetterView, PurgeView, RequeueView, ScheduleView};

use crate::Client;
use crate::input::read_file;
use crate::output::{Output, Table, print_as};

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

impl Client {
    pub(crate) async fn put<T: DeserializeOwned>(&self, path: &str, body: String) -> Result<T> {
        let resp = self
            .http
            .put(self.url(path))
            .header("content-type", "application/yaml")
            .body(body)
            .send()
            .await
            .map_err(|e| crate::access::unreachable(&self.base, e))?;
        self.decode(resp).await
    }
}

/// The answer of `PUT /v1/schedules`.
#[derive(serde::Deserialize)]
struct Applied {
    result: String,
    schedule: ScheduleView,
}

/// The documents of a YAML stream (`---` lines between them), empty ones left out.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(d) = docs.last_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Why a document is not something `apply` takes, if it is not: a job (jobs have no name
/// that identifies them: `sluice submit` queues a new one each time).
fn not_appliable(doc: &str) -> Option<String> {
    let v: serde_json::Value = serde_saphyr::from_str(doc).ok()?;
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind == "ScheduledSparkApplication"
        || kind == "Workflow"
        || (kind.is_empty() && v.get("schedule").is_some())
    {
        return None;
    }
    let what = if kind.is_empty() { "a job" } else { kind };
    Some(format!(
        "{what} {:?} is not a schedule or a workflow: apply takes schedules (sluice's schedule \
         document or a ScheduledSparkApplication) and workflows; queue a job with `sluice submit`",
        v.pointer("/metadata/name")
            .or_else(|| v.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("")
    ))
}

fn is_workflow(doc: &str) -> bool {
    serde_saphyr::from_str::<serde_json::Value>(doc)
        .ok()
        .is_some_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some("Workflow"))
}

/// `sluice apply -f FILE...`: each schedule (or workflow) of each file created, updated or left as it is,
/// by namespace and name; a line per schedule as kubectl prints them. Every document is
/// applied even when one fails; the exit code is 1 then.
pub async fn apply(c: &Client, files: &[PathBuf]) -> Result<i32> {
    let mut failed = 0;
    for file in files {
        let text = read_file(file)?;
        let docs = documents(&text);
        if docs.is_empty() {
            anyhow::bail!("{}: no document in it", file.display());
        }
        for (i, doc) in docs.iter().enumerate() {
            let whence = if docs.len() > 1 {
                format!("{} (document {})", file.display(), i + 1)
            } else {
                file.display().to_string()
            };
            if let Some(why) = not_appliable(doc) {
                eprintln!("sluice: {whence}: {why}");
                failed += 1;
                continue;
            }
            if is_workflow(doc) {
                match crate::workflow::apply_doc(c, doc.clone()).await {
                    Ok(a) => println!(
                        "workflow/{}/{} {}",
                        a.workflow.namespace, a.workflow.name, a.result
                    ),
                    Err(e) => {
                        eprintln!("sluice: {whence}: {e:#}");
                        failed += 1;
                    }
                }
                continue;
            }
            match c.put::<Applied>("/v1/schedules", doc.clone()).await {
                Ok(a) => println!("{} {}", schedule_name(&a.schedule), a.result),
                Err(e) => {
                    eprintln!("sluice: {whence}: {e:#}");
                    failed += 1;
                }
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// `schedule/NAMESPACE/NAME`: a schedule's line in `-o name`.
pub fn schedule_name(s: &ScheduleView) -> String {
    format!("schedule/{}/{}", s.namespace, s.name)
}

/// Schedules as a table; `wide` adds the time zone, level, missed-run policy and last run time.
fn schedule_table(all: &[ScheduleView], wide: bool) -> Table {
    let mut head = vec![
        "NAMESPACE",
        "NAME",
        "SCHEDULE",
        "POLICY",
        "STATE",
        "NEXT RUN",
        "LAST RUN",
    ];
    if wide {
        head.extend(["TIME ZONE", "LEVEL", "MISSED RUNS", "LAST RUN AT"]);
    }
    let mut t = Table::new(&head);
    for s in all {
        let mut r = vec![
            s.namespace.clone(),
            s.name.clone(),
            s.schedule.clone(),
            s.concurrency_policy.clone(),
            if s.suspended { "suspended" } else { "active" }.to_string(),
            s.next_runs.first().cloned().unwrap_or_else(|| "-".into()),
            s.last_job_id.clone().unwrap_or_else(|| "-".into()),
        ];
        if wide {
            r.extend([
                s.time_zone.clone(),
                s.level.clone(),
                s.missed_run_policy.clone(),
                s.last_run_at.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        t.row(r);
    }
    t
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
            if output.is_table() {
                schedule_table(&all, output == Output::Wide).print();
            } else if output == Output::Name {
                for s in &all {
                    println!("{}", schedule_name(s));
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
            } else if output == Output::Wide {
                schedule_table(std::slice::from_ref(&s), true).print();
            } else if output == Output::Name {
                println!("{}", schedule_name(&s));
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

fn print_dead_letters(all: &[DeadLetterView], wide: bool) {
    let mut head = vec![
        "ID",
        "NAMESPACE",
        "NAME",
        ">ATTEMPT",
        "CLASS",
        "DEAD-LETTERED",
        "REASON",
    ];
    if wide {
        head.extend(["LEVEL", "SCHEDULE", "MESSAGE"]);
    }
    let mut t = Table::new(&head);
    for d in all {
        let mut r = vec![
            d.job.id.clone(),
            d.job.namespace.clone(),
            d.job.name.clone(),
            d.job.attempt.to_string(),
            d.failure_class.clone(),
            d.dead_lettered_at.clone(),
            d.reason.clone(),
        ];
        if wide {
            r.extend([
                d.job.level.clone(),
                d.job
                    .orchestration
                    .as_ref()
                    .and_then(|o| o.schedule.clone())
                    .unwrap_or_else(|| "-".into()),
                d.job.message.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        t.row(r);
    }
    t.print();
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
        let mut t = crate::jobs::job_table(false);
        for j in &shown {
            t.row(crate::jobs::job_row(j, false));
        }
        t.print();
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
            if output.is_table() {
                print_dead_letters(&all, output == Output::Wide);
            } else if output == Output::Name {
                for d in &all {
                    println!("{}", crate::jobs::job_name(&d.job));
                }
            } else {
                print_as(&all, output)?;
            }
            Ok(0)
        }
        DlqCmd::Show { id, output } => {
            let d: DeadLetterView = c.get(&format!("/v1/dlq/{id}"), &[]).await?;
            if output.is_table() {
                println!(
                    "Dead-lettered: {} ({})",
                    d.dead_lettered_at, d.failure_class
                );
                println!("Reason:        {}", d.reason);
                crate::jobs::describe(&d.job);
            } else if output == Output::Name {
                println!("{}", crate::jobs::job_name(&d.job));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_split_into_its_documents() {
        let text = "# header\n---\nname: a\nschedule: '@hourly'\n---\n---\n# only a comment\n---\nname: b\n";
        let docs = documents(text);
        assert_eq!(docs, vec!["name: a\nschedule: '@hourly'\n", "name: b\n"]);
    }

    #[test]
    fn apply_takes_schedules_not_jobs() {
        assert_eq!(not_appliable("name: a\nschedule: '@hourly'\n"), None);
        assert_eq!(
            not_appliable(
                "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: ScheduledSparkApplication\n"
            ),
            None
        );
        assert_eq!(
            not_appliable("apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {name: w}\n"),
            None
        );
        let e = not_appliable("name: pi\nspark: {}\n").unwrap();
        assert!(
            e.contains("a job \"pi\"") && e.contains("sluice submit"),
            "{e}"
        );
        let e = not_appliable("kind: SparkApplication\nmetadata: {name: pi}\n").unwrap();
        assert!(e.contains("SparkApplication \"pi\""), "{e}");
    }
}
