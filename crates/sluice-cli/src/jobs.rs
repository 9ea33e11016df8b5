//! The job commands' output: `sluice get` (table, wide, json, yaml, name; `-w` to watch),
//! `sluice describe` and `sluice logs` (`--tail`, `--since`, `-f`).

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use sluice_api::{JobList, JobView, LogsView, OrchView};

use crate::output::{Output, Table, print_as};
use crate::{Client, age, fmt_cpu, fmt_mem};

/// A job argument as the user may give it: `ID`, or what `-o name` prints (`job/NS/ID`,
/// `job/ID`): the id.
pub fn job_id(arg: &str) -> &str {
    match arg.split_once('/') {
        Some(("job" | "jobs", rest)) => rest.rsplit('/').next().unwrap_or(rest),
        _ => arg,
    }
}

/// `job/NAMESPACE/ID`: a job's line in `-o name` (job names are not unique; ids are).
pub fn job_name(j: &JobView) -> String {
    format!("job/{}/{}", j.namespace, j.id)
}

/// The columns of a job table.
pub fn job_table(wide: bool) -> Table {
    if wide {
        Table::new(&[
            "ID",
            "NAMESPACE",
            "NAME",
            "LEVEL",
            "STATE",
            ">AGE",
            ">ATTEMPT",
            ">CPU",
            ">MEMORY",
            ">POSITION",
            "RUN",
            "REASON",
        ])
    } else {
        Table::new(&["ID", "NAMESPACE", "NAME", "LEVEL", "STATE", ">AGE"])
    }
}

/// A job's row in [`job_table`].
pub fn job_row(j: &JobView, wide: bool) -> Vec<String> {
    let mut r = vec![
        j.id.clone(),
        j.namespace.clone(),
        j.name.clone(),
        j.level.clone(),
        j.state.clone(),
        age(&j.created_at),
    ];
    if wide {
        let reason = match &j.wait {
            Some(w) => w.reason.clone(),
            None => j.message.clone().unwrap_or_default(),
        };
        r.extend([
            j.attempt.to_string(),
            fmt_cpu(j.demand.total_cpu_milli),
            fmt_mem(j.demand.total_memory_mib),
            j.wait
                .as_ref()
                .map(|w| w.position.to_string())
                .unwrap_or_else(|| "-".into()),
            j.backend_ref.clone().unwrap_or_else(|| "-".into()),
            if reason.is_empty() {
                "-".into()
            } else {
                reason
            },
        ]);
    }
    r
}

/// Prints jobs in `output` (a list; `get ID -o yaml` is the caller's).
pub fn print_jobs(jobs: &[JobView], output: Output) -> Result<()> {
    match output {
        Output::Table | Output::Wide => {
            let wide = output == Output::Wide;
            let mut t = job_table(wide);
            for j in jobs {
                t.row(job_row(j, wide));
            }
            t.print();
        }
        Output::Name => {
            for j in jobs {
                println!("{}", job_name(j));
            }
        }
        Output::Json | Output::Yaml => print_as(&jobs, output)?,
    }
    Ok(())
}

/// Prints one job in `output`: `-o yaml` is the user's document with the job's state under
/// `status`, which `sluice submit` takes back unchanged (as `kubectl get -o yaml` output).
pub fn print_job(j: &JobView, output: Output) -> Result<()> {
    match output {
        Output::Yaml => {
            let doc = sluice_api::resubmittable(j)?;
            print!("{}", serde_saphyr::to_string(&doc)?);
        }
        Output::Json => print_as(j, output)?,
        _ => print_jobs(std::slice::from_ref(j), output)?,
    }
    Ok(())
}

/// What `get -w` compares to tell that a job changed (its age alone is not a change).
fn change_key(j: &JobView) -> (String, u32, String, Option<u32>, Option<String>) {
    (
        j.state.clone(),
        j.attempt,
        j.updated_at.clone(),
        j.wait.as_ref().map(|w| w.position),
        j.wait.as_ref().map(|w| w.reason.clone()),
    )
}

/// Options of `get -w`.
pub struct WatchOpts {
    /// Time between two looks at the server.
    pub interval: Duration,
    /// Stop after this long (default: until ctrl-c).
    pub timeout: Option<Duration>,
}

/// `sluice get [ID] -w`: prints the jobs as `get` does, then one line (or object) per job
/// that appears or changes, polling `path` every `interval`, until ctrl-c or `timeout`.
pub async fn watch(
    c: &Client,
    id: Option<&str>,
    query: &[(&str, String)],
    output: Output,
    opts: WatchOpts,
) -> Result<()> {
    let fetch = || async {
        match id {
            Some(id) => Ok::<_, anyhow::Error>(vec![
                c.get::<JobView>(&format!("/v1/jobs/{id}"), &[]).await?,
            ]),
            None => Ok(c.get::<JobList>("/v1/jobs", query).await?.jobs),
        }
    };
    let first = fetch().await?;
    let wide = output == Output::Wide;
    let mut table = job_table(wide);
    for j in &first {
        table.row(job_row(j, wide));
    }
    match output {
        Output::Table | Output::Wide => table.print(),
        _ => print_each(&first, output)?,
    }
    std::io::stdout().flush()?;
    let mut seen: HashMap<String, _> = first
        .iter()
        .map(|j| (j.id.clone(), change_key(j)))
        .collect();
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    loop {
        let nap = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                left.min(opts.interval)
            }
            None => opts.interval,
        };
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let now = fetch().await?;
        // Oldest first, so that lines come in the order things happened.
        let mut changed: Vec<&JobView> = now
            .iter()
            .filter(|j| seen.get(&j.id) != Some(&change_key(j)))
            .collect();
        changed.reverse();
        for j in changed {
            seen.insert(j.id.clone(), change_key(j));
            match output {
                Output::Table | Output::Wide => {
                    let row = job_row(j, wide);
                    println!("{}", table.line_for(row.clone()));
                    table.row(row);
                }
                _ => print_each(std::slice::from_ref(j), output)?,
            }
        }
        std::io::stdout().flush()?;
    }
}

/// One object per job: a name line, a JSON object per line, or a YAML document each.
fn print_each(jobs: &[JobView], output: Output) -> Result<()> {
    for j in jobs {
        match output {
            Output::Name => println!("{}", job_name(j)),
            Output::Json => println!("{}", serde_json::to_string(j)?),
            Output::Yaml => print!("---\n{}", serde_saphyr::to_string(j)?),
            Output::Table | Output::Wide => {}
        }
    }
    Ok(())
}

/// `sluice describe`.
pub fn describe(j: &JobView) {
    println!("Job:        {}", j.id);
    println!("Name:       {}/{}", j.namespace, j.name);
    println!("Level:      {}", j.level);
    println!("State:      {}", j.state);
    println!("Attempt:    {}", j.attempt);
    if let Some(o) = &j.orchestration {
        describe_orch(o);
    }
    if let Some(a) = &j.set_aside {
        println!(
            "Set aside:  {} (time {}; tried again after {})",
            a.reason,
            a.times,
            sluice_api::time::rfc3339(a.retry_at_ms)
        );
    }
    if !j.labels.is_empty() {
        let l: Vec<String> = j.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("Labels:     {}", l.join(", "));
    }
    let pods: Vec<String> = j
        .demand
        .pods
        .iter()
        .map(|p| {
            format!(
                "{} x {} ({} cpu, {})",
                p.count,
                p.role,
                fmt_cpu(p.cpu_milli),
                fmt_mem(p.memory_mib)
            )
        })
        .collect();
    println!(
        "Demand:     {} cpu, {} in all: {}",
        fmt_cpu(j.demand.total_cpu_milli),
        fmt_mem(j.demand.total_memory_mib),
        pods.join(" + ")
    );
    if let Some(w) = &j.wait {
        println!(
            "Queue:      position {} in namespace {} ({} in level {})",
            w.position, j.namespace, w.level_position, j.level
        );
        println!("Waiting:    {}", w.reason);
        if let Some(t) = &w.estimated_start {
            println!("Expected:   to start at {}", expected_start(t));
        }
    } else if j.state == "queued" {
        println!("Queue:      not yet considered by a scheduling cycle");
    }
    if let Some(r) = &j.backend_ref {
        println!("Run:        {r}");
    }
    if let Some(c) = j.exit_code {
        println!("Exit code:  {c}");
    }
    if let Some(m) = &j.message {
        println!("Message:    {m}");
    }
    println!("Created:    {}", j.created_at);
    if let Some(t) = &j.started_at {
        println!("Started:    {t}");
    }
    if let Some(t) = &j.finished_at {
        println!("Finished:   {t}");
    }
    if let Some(results) = &j.results {
        describe_results(results);
    }
    if let Some(tl) = &j.timeline {
        println!("Timeline:");
        for e in tl {
            println!(
                "  {}  {:>9} -> {:<9}  {}",
                e.at,
                e.from.as_deref().unwrap_or("-"),
                e.to,
                e.message
            );
        }
    }
}

/// The results of a job's runs in `sluice describe`: a dbt run's nodes, one line each.
pub fn describe_results(results: &[sluice_api::RunResultView]) {
    use sluice_core::run_result::RunResult;
    for r in results {
        match &r.result {
            RunResult::Dbt(d) => {
                let failed = d.nodes.iter().filter(|n| n.failed()).count();
                println!(
                    "Result:     attempt {}: dbt, {} nodes, {} failed{}",
                    r.attempt,
                    d.nodes.len(),
                    failed,
                    d.elapsed_secs
                        .map(|s| format!(", {s:.1}s"))
                        .unwrap_or_default()
                );
                for n in &d.nodes {
                    let rows = n
                        .rows_affected
                        .map(|r| format!(" rows={r}"))
                        .unwrap_or_default();
                    let message = n.message.as_deref().map(one_line).unwrap_or_default();
                    println!(
                        "  {:<8} {:<50} {:>6.2}s{rows}  {message}",
                        n.status, n.unique_id, n.execution_secs
                    );
                }
            }
        }
    }
}

/// A message on one line, at most 120 characters.
fn one_line(m: &str) -> String {
    let joined = m.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 120 {
        format!("{}...", joined.chars().take(120).collect::<String>())
    } else {
        joined
    }
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

/// Options of `sluice logs`.
pub struct LogOpts {
    /// Keep printing until the job ends.
    pub follow: bool,
    /// The log of this attempt.
    pub attempt: Option<u32>,
    /// Only the last N lines.
    pub tail: Option<u32>,
    /// Only lines newer than this (`5m`, `1h`).
    pub since: Option<String>,
}

/// `sluice logs`: the log from the start, or its end (`--tail`, `--since`: the server reads
/// the file from its end and answers only that), then with `-f` what is new until the job
/// ends.
pub async fn logs(c: &Client, id: &str, o: LogOpts) -> Result<()> {
    if let Some(s) = &o.since {
        // Checked here too, for an error before any request.
        if let Err(e) = sluice_core::duration::parse("--since", s) {
            bail!("{e}");
        }
    }
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    let mut first = true;
    loop {
        // The first request asks for the end of the log when --tail or --since is given;
        // the next ones go on from where the last answer ended.
        let mut query = Vec::new();
        match (first, o.tail, &o.since) {
            (true, tail, since) if tail.is_some() || since.is_some() => {
                if let Some(t) = tail {
                    query.push(("tail", t.to_string()));
                }
                if let Some(s) = since {
                    query.push(("since", s.trim().to_string()));
                }
            }
            _ => query.push(("offset", offset.to_string())),
        }
        if let Some(a) = o.attempt {
            query.push(("attempt", a.to_string()));
        }
        let chunk: LogsView = c.get(&format!("/v1/jobs/{id}/logs"), &query).await?;
        if first && o.since.is_some() && chunk.since_applied == Some(false) {
            eprintln!("sluice: this log's lines carry no time: --since shows all of it");
        }
        first = false;
        out.write_all(chunk.data.as_bytes())?;
        out.flush()?;
        let moved = chunk.next_offset != offset;
        offset = chunk.next_offset;
        if chunk.complete || (!o.follow && !moved) {
            return Ok(());
        }
        if !o.follow && (o.tail.is_some() || o.since.is_some()) {
            // The end of the log is what was asked for: no further pages.
            return Ok(());
        }
        if !moved {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// "2026-12-03T20:15:00.000Z (in 25m)" for an estimated start; the text alone if it does not
/// parse.
fn expected_start(t: &str) -> String {
    match sluice_api::time::parse_time("estimated_start", t) {
        Ok(at) => {
            let now = crate::now_ms();
            format!(
                "{t} (in {}; if jobs run as long as expected)",
                sluice_core::cycle::short_ms(at.saturating_sub(now))
            )
        }
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_named_as_get_o_name_prints_it() {
        assert_eq!(job_id("01ABC"), "01ABC");
        assert_eq!(job_id("job/01ABC"), "01ABC");
        assert_eq!(job_id("job/team-a/01ABC"), "01ABC");
        assert_eq!(job_id("jobs/team-a/01ABC"), "01ABC");
        // Not a job kind: left as it is (the server says no such job).
        assert_eq!(job_id("schedule/a/b"), "schedule/a/b");
    }
}
