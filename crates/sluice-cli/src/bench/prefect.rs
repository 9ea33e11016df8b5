//! `--prefect SCRIPT`: the same workload on sluice and on Prefect in one run, and the ratio.
//!
//! The workload is the one `../shared/bench/prefect/run.sh` runs on Prefect: N runs, 20% of them
//! `high` and the rest `normal`, randomly interleaved, created by 16 concurrent clients and
//! left waiting; then handed out. On Prefect "handed out" is a worker-like loop claiming the
//! scheduled runs (Pending, then Running; no process started). On sluice the runs wait behind a
//! blocker (a 64-core `high` job that cannot start while the cluster holds its fillers) and
//! are handed out when the blocker is cancelled: admissions, then submits to the simulated
//! backend. Measured on both: creates/s, hand-outs/s (all N, from release to the last one),
//! whether every high run was handed out no later than every normal one, and the server's RSS
//! with the N runs waiting.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::load::{get_json, submit_many, submit_one};
use super::server::{Server, StoreKind};
use super::{Event, fill_cluster, rfc_ms, wait_drained};

/// One system's figures on the workload.
#[derive(Debug, Clone)]
pub struct Same {
    /// "sluice (SQLite)", "Prefect 3.9.1", ...
    pub system: String,
    /// Runs created.
    pub n: usize,
    /// Runs created per second.
    pub submit_per_s: f64,
    /// Runs handed out per second.
    pub dispatch_per_s: f64,
    /// Every high run handed out no later than every normal one.
    pub priority_ok: bool,
    /// Server RSS with the runs waiting, MiB.
    pub rss_mib: f64,
}

/// Whether run `i` of the workload is `high` (20%, interleaved by a fixed hash).
fn is_high(i: usize) -> bool {
    (i as u64).wrapping_mul(2_654_435_761) % 100 < 20
}

/// The workload on a fresh sluice server on `kind`.
pub async fn sluice(
    exe: &Path,
    dir: &Path,
    kind: StoreKind,
    db_url: Option<&str>,
    nodes: u32,
    interval_ms: u64,
    n: usize,
) -> Result<Same> {
    let mut server = Server::start(exe, dir, db_url, nodes, interval_ms).await?;
    let r = sluice_on(&server, nodes, n).await;
    let rss = server.rss_mib().0;
    server.stop().await;
    let mut same = r?;
    if same.rss_mib == 0.0 {
        same.rss_mib = rss;
    }
    same.system = format!("sluice ({})", kind.name());
    Ok(same)
}

async fn sluice_on(server: &Server, nodes: u32, n: usize) -> Result<Same> {
    let base = server.base.as_str();
    let http = server.client()?;
    fill_cluster(&http, base, &server.token, nodes).await?;
    let ns = "same";
    let blocker = submit_one(
        &http,
        base,
        super::load::job("blocker", ns, "high", "64", "1g", "10h"),
    )
    .await?;
    let created = submit_many(
        base,
        &server.token,
        n,
        16,
        n,
        Arc::new(move |i| {
            let level = if is_high(i) { "high" } else { "normal" };
            super::load::job(&format!("run-{i}"), ns, level, "250m", "256m", "1h")
        }),
    )
    .await?;
    if created.failed > 0 {
        bail!(
            "{} of {n} runs refused: {}",
            created.failed,
            created.first_error.unwrap_or_default()
        );
    }
    let rss_mib = server.rss_mib().0;
    let released = Instant::now();
    let cancel = http
        .post(format!("{base}/v1/jobs/{blocker}/cancel"))
        .send()
        .await?;
    if !cancel.status().is_success() {
        bail!("cancelling the blocker: HTTP {}", cancel.status());
    }
    let Some(_) = wait_drained(&http, base, ns, Duration::from_secs(300)).await? else {
        bail!("the {n} runs were not all admitted within 300 s");
    };
    let dispatched = released.elapsed();
    // Priority: each run's level and "admitted" time, read back from its timeline.
    let mut high_last = i64::MIN;
    let mut normal_first = i64::MAX;
    for id in &created.ids {
        let rec: Run = get_json(&http, base, &format!("/v1/jobs/{id}")).await?;
        let at = rec
            .timeline
            .unwrap_or_default()
            .iter()
            .find(|e| e.to == "admitted")
            .and_then(|e| rfc_ms(&e.at))
            .with_context(|| format!("run {id} has no admitted time"))?;
        if rec.level == "high" {
            high_last = high_last.max(at);
        } else {
            normal_first = normal_first.min(at);
        }
    }
    Ok(Same {
        system: String::new(),
        n,
        submit_per_s: created.rate(),
        dispatch_per_s: n as f64 / dispatched.as_secs_f64().max(1e-9),
        priority_ok: high_last <= normal_first,
        rss_mib,
    })
}

#[derive(Deserialize)]
struct Run {
    level: String,
    timeline: Option<Vec<Event>>,
}

#[derive(Deserialize)]
struct PrefectLine {
    n: usize,
    submit_per_s: f64,
    dispatch_per_s: f64,
    priority_ok: bool,
    server_rss_mb: f64,
    prefect_version: Option<String>,
    errors: Option<serde_json::Value>,
}

/// The workload on Prefect: `bash SCRIPT N --concurrency 16` (it installs Prefect into a cache
/// on first use, starts and stops its own server) and its JSON line.
pub async fn prefect(script: &Path, n: usize) -> Result<Same> {
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg(n.to_string())
        .arg("--concurrency")
        .arg("16")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The script's exit trap stops its Prefect server and waits for it, so the script exits
    // with the server's 143 (SIGTERM) even when it measured: the JSON line is what counts.
    let Some(line) = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
    else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        bail!(
            "{} printed no figures ({}):\n{}",
            script.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    };
    let p: PrefectLine = serde_json::from_str(line)
        .with_context(|| format!("reading the JSON line of {}: {line}", script.display()))?;
    if let Some(e) = &p.errors {
        eprintln!("bench [Prefect]: errors reported: {e}");
    }
    Ok(Same {
        system: format!("Prefect {}", p.prefect_version.as_deref().unwrap_or("?")),
        n: p.n,
        submit_per_s: p.submit_per_s,
        dispatch_per_s: p.dispatch_per_s,
        priority_ok: p.priority_ok,
        rss_mib: p.server_rss_mb,
    })
}

/// The table of every system, and each sluice row's ratio to Prefect's.
pub fn print(rows: &[Same], prefect: Option<&Same>) {
    let Some(first) = rows.first().or(prefect) else {
        return;
    };
    println!();
    println!(
        "### The same workload on sluice and Prefect ({} runs, 20% high, 16 clients)",
        first.n
    );
    println!();
    println!(
        "| system | creates/s | hand-outs/s | priority kept | server RSS MiB (runs waiting) |"
    );
    println!("|---|---|---|---|---|");
    for r in rows.iter().chain(prefect) {
        println!(
            "| {} | {:.1} | {:.1} | {} | {:.0} |",
            r.system,
            r.submit_per_s,
            r.dispatch_per_s,
            if r.priority_ok { "yes" } else { "no" },
            r.rss_mib
        );
    }
    let Some(p) = prefect else {
        return;
    };
    println!();
    println!("| ratio | creates/s | hand-outs/s | RSS (Prefect / sluice) |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} / {} | x{:.0} | x{:.0} | x{:.1} |",
            r.system,
            p.system,
            r.submit_per_s / p.submit_per_s.max(1e-9),
            r.dispatch_per_s / p.dispatch_per_s.max(1e-9),
            p.rss_mib / r.rss_mib.max(1e-9),
        );
    }
}
