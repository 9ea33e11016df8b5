//! `sluice bench`: starts a real server (this binary, `sluice server`) with the simulated
//! backend on a free loopback port and a temporary directory, on SQLite and on a fresh
//! PostgreSQL database, drives it over HTTP and prints what it measured (see BENCHMARKS.md).
//!
//! The cluster: `--nodes` nodes of 64 cores / 256 GiB. One "filler" job of 33 cores per node
//! (namespace `filler`) leaves 31 cores on each, so that a *blocker* (a 64-core job at level
//! `high`) can never start now but could on an empty cluster: it stays at the head of its
//! namespace and, under the default `strict` policy, holds every job behind it. The deep queue
//! is 1-core jobs in namespaces `deep-0..` behind their blockers; *probes* (namespace `probe`,
//! 250m) and *bursts* (namespace `burst-N`) fit at once. Measured at each depth:
//!
//! - submits/s with each `--clients` count (`--submits` jobs each, into the deep queue);
//! - the server's RSS (`/proc/PID/status`);
//! - the idle tick (mean of `sluice_scheduling_cycle_seconds` over a few seconds with nothing
//!   submitted);
//! - submit -> admitted of probes sent open loop at `--probe-rate`/s: the probe's "admitted"
//!   timeline event minus the time the client sent it (same machine, same clock);
//! - admissions/s: `--burst` jobs queued behind a blocker; the blocker is cancelled and the time
//!   until the last of them leaves the queue is taken;
//! - list, get and history latency (sequential requests).
//!
//! Two more parts, each on a fresh store: `--finished N` (list, get and history latency over N
//! finished jobs written straight into the store: [`finished`]) and `--prefect SCRIPT` (the
//! workload of Prefect's bench script on sluice and on Prefect, with the ratios: [`prefect`]).
//!
//! Every process it starts is stopped by its PID; `--max-minutes` bounds the whole run (depths
//! not reached in time are reported as such).

mod finished;
mod load;
mod prefect;
mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;
use sluice_server::api::QueueView;

use self::load::{
    cpu_us, cycle_sum_count, get_json, get_rate, get_text, group_commit_sums, job, percentile,
    step_sums, submit_many, submit_one, time_gets, wall_ms,
};
use self::server::{Database, Server, StoreKind};

/// Options of `sluice bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Stores to measure, comma-separated: sqlite, postgres.
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    pub stores: Vec<String>,
    /// Queue depths to measure at, comma-separated, increasing (`--depths` alone: none, for a
    /// run of `--finished` only).
    #[arg(long, default_value = "1000,10000,100000", value_delimiter = ',', num_args = 0..)]
    pub depths: Vec<usize>,
    /// Concurrent clients for the submit rates, comma-separated.
    #[arg(long, default_value = "16,64", value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Submits per submit-rate measurement.
    #[arg(long, default_value_t = 2000)]
    pub submits: usize,
    /// Probes (jobs that fit) per latency measurement.
    #[arg(long, default_value_t = 50)]
    pub probes: usize,
    /// Probes sent per second (open loop).
    #[arg(long, default_value_t = 20.0)]
    pub probe_rate: f64,
    /// Jobs released at once for the admissions/s measurement.
    #[arg(long, default_value_t = 1000)]
    pub burst: usize,
    /// Requests per API latency measurement.
    #[arg(long, default_value_t = 50)]
    pub api_samples: usize,
    /// Simulated nodes (64 cores, 256 GiB each).
    #[arg(long, default_value_t = 200)]
    pub nodes: u32,
    /// Namespaces of the deep queue.
    #[arg(long, default_value_t = 10)]
    pub namespaces: usize,
    /// The server's `scheduler.interval_ms`.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
    /// PostgreSQL server (a user that may CREATE DATABASE); a fresh database is made per run
    /// and dropped after it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// The `sluice` binary whose server is measured (default: this one), e.g. an older build
    /// for a before/after comparison driven by the same bench.
    #[arg(long)]
    pub server_bin: Option<std::path::PathBuf>,
    /// Finished jobs written straight into a fresh store (copies of one submitted job) before
    /// the list, get and history latency is measured over it (0: skip that part).
    #[arg(long, default_value_t = 0)]
    pub finished: u64,
    /// Prefect's bench script (`../shared/bench/prefect/run.sh`): the same workload is run on
    /// a fresh sluice server per store and on Prefect, and a ratio table printed.
    #[arg(long)]
    pub prefect: Option<std::path::PathBuf>,
    /// Runs in the workload compared with Prefect.
    #[arg(long, default_value_t = 1000)]
    pub prefect_runs: usize,
    /// The whole run stops after this many minutes (what was measured is printed).
    #[arg(long, default_value_t = 30.0)]
    pub max_minutes: f64,
}

/// What was measured at one depth.
#[derive(Debug, Default, Clone)]
struct Row {
    depth: usize,
    submit_rates: Vec<(usize, f64, usize)>,
    /// CPU per created job during each submit run, µs: (clients, server, this bench process).
    submit_cpu: Vec<(usize, f64, f64)>,
    /// The submit group commit during each submit run: (clients, jobs a batch, writer µs a
    /// job, from `sluice_group_commit_*{writer="submit"}`).
    submit_writer: Vec<(usize, f64, f64)>,
    rss_mib: f64,
    hwm_mib: f64,
    idle_tick_ms: Option<f64>,
    /// The idle tick's steps: mean ms of each over the same window.
    idle_steps: Vec<(String, f64)>,
    probe_p50: f64,
    probe_p99: f64,
    probe_missing: usize,
    probes: usize,
    admissions_per_s: Option<f64>,
    list_ms: (f64, f64),
    list_filtered_ms: (f64, f64),
    get_ms: (f64, f64),
    history_ms: (f64, f64),
    /// Requests/s of `GET /livez` (no authentication, no store) and `GET /v1/whoami` (the
    /// token looked up in the store) with the most clients: the HTTP ceiling (first row only).
    ceiling: Option<(usize, f64, f64)>,
}

/// Runs the bench; prints progress on stderr and the tables on stdout.
pub async fn run(args: BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: warning: this is a debug build; use `cargo run --release -p sluice -- bench`"
        );
    }
    let exe = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding this binary")?,
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_minutes.max(0.1) * 60.0);
    let exe_path = exe.as_path();
    let (nodes, interval_ms) = (args.nodes, args.interval_ms);
    for kind in kinds(&args)? {
        if !args.depths.is_empty() {
            let rows = run_store(&args, &exe, kind, deadline).await?;
            print_rows(&args, kind, &rows.0, &rows.1);
        }
        if args.finished > 0 {
            if Instant::now() > deadline {
                println!(
                    "\n{}: stopped by --max-minutes before --finished",
                    kind.name()
                );
                continue;
            }
            let (n, samples) = (args.finished, args.api_samples);
            let row = in_fresh_store(&args, kind, |dir, db| async move {
                finished::measure(
                    exe_path,
                    &dir,
                    kind,
                    db.as_deref(),
                    nodes,
                    interval_ms,
                    n,
                    samples,
                )
                .await
            })
            .await?;
            finished::print(kind, &row);
        }
    }
    if let Some(script) = &args.prefect {
        let mut rows = Vec::new();
        for kind in kinds(&args)? {
            let runs = args.prefect_runs;
            let same = in_fresh_store(&args, kind, |dir, db| async move {
                prefect::sluice(
                    exe_path,
                    &dir,
                    kind,
                    db.as_deref(),
                    nodes,
                    interval_ms,
                    runs,
                )
                .await
            })
            .await?;
            rows.push(same);
        }
        eprintln!(
            "bench [Prefect]: {} {} (installs Prefect on first use)",
            script.display(),
            args.prefect_runs
        );
        let p = prefect::prefect(script, args.prefect_runs).await?;
        prefect::print(&rows, Some(&p));
    }
    Ok(())
}

/// The stores of `--stores`.
fn kinds(args: &BenchArgs) -> Result<Vec<StoreKind>> {
    args.stores
        .iter()
        .map(|s| match s.trim() {
            "sqlite" => Ok(StoreKind::Sqlite),
            "postgres" | "postgresql" => Ok(StoreKind::Postgres),
            other => bail!("--stores: {other:?} is not sqlite or postgres"),
        })
        .collect()
}

/// Runs `f` with a fresh temporary directory and, on PostgreSQL, a fresh database (its URL),
/// dropped afterwards.
async fn in_fresh_store<T, F, Fut>(args: &BenchArgs, kind: StoreKind, f: F) -> Result<T>
where
    F: FnOnce(std::path::PathBuf, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let dir = tempfile::Builder::new()
        .prefix("sluice-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let db = match kind {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => Some(Database::create(&args.postgres_url).await?),
    };
    let r = f(dir.path().to_path_buf(), db.as_ref().map(|d| d.url.clone())).await;
    if let Some(db) = db
        && let Err(e) = db.drop_now().await
    {
        eprintln!("bench: {e:#}");
    }
    r
}

async fn run_store(
    args: &BenchArgs,
    exe: &std::path::Path,
    kind: StoreKind,
    deadline: Instant,
) -> Result<(Vec<Row>, Option<String>)> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let db = match kind {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => Some(Database::create(&args.postgres_url).await?),
    };
    eprintln!("bench [{}]: starting the server", kind.name());
    let started = Server::start(
        exe,
        dir.path(),
        db.as_ref().map(|d| d.url.as_str()),
        args.nodes,
        args.interval_ms,
    )
    .await;
    let result = match started {
        Ok(mut server) => {
            eprintln!(
                "bench [{}]: server pid {} at {}",
                kind.name(),
                server.pid(),
                server.base
            );
            let r = drive(args, &server, kind, deadline).await;
            server.stop().await;
            if r.is_err() {
                eprintln!("bench: the server's log: {}", server.log.display());
                let tail = std::fs::read_to_string(&server.log).unwrap_or_default();
                let lines: Vec<&str> = tail.lines().rev().take(20).collect();
                for l in lines.into_iter().rev() {
                    eprintln!("  {l}");
                }
            }
            r
        }
        Err(e) => Err(e),
    };
    if let Some(db) = db
        && let Err(e) = db.drop_now().await
    {
        eprintln!("bench: {e:#}");
    }
    result
}

/// Length of each queue, by namespace.
async fn queued_by_ns(http: &reqwest::Client, base: &str) -> Result<Vec<(String, u64)>> {
    let qs: Vec<QueueView> = get_json(http, base, "/v1/queues").await?;
    let mut out: Vec<(String, u64)> = Vec::new();
    for q in qs {
        match out.iter_mut().find(|(n, _)| *n == q.namespace) {
            Some(e) => e.1 += q.queued,
            None => out.push((q.namespace, q.queued)),
        }
    }
    Ok(out)
}

/// Waits until namespace `ns` has no queued job; the time it took, or `None` after `limit`.
async fn wait_drained(
    http: &reqwest::Client,
    base: &str,
    ns: &str,
    limit: Duration,
) -> Result<Option<Duration>> {
    let t = Instant::now();
    loop {
        let q = queued_by_ns(http, base).await?;
        if !q.iter().any(|(n, c)| n == ns && *c > 0) {
            return Ok(Some(t.elapsed()));
        }
        if t.elapsed() > limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to `limit`) until no job of `namespaces` is admitted, submitted or running: the
/// probes and the burst of a depth run 20 s, and with fast submits the next depth's idle
/// window came while they ended (its reconcile writing their ends), which is no idle tick.
/// False if some were still active at the limit.
async fn wait_quiet(
    http: &reqwest::Client,
    base: &str,
    namespaces: &[String],
    limit: Duration,
) -> Result<bool> {
    let t = Instant::now();
    loop {
        let mut active = false;
        for ns in namespaces {
            let page: sluice_api::jobs::JobList = get_json(
                http,
                base,
                &format!("/v1/jobs?namespace={ns}&state=admitted,submitted,running&limit=1"),
            )
            .await?;
            active |= !page.jobs.is_empty();
        }
        if !active {
            return Ok(true);
        }
        if t.elapsed() > limit {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One row of a job's timeline as the API returns it.
#[derive(Deserialize)]
struct Event {
    at: String,
    to: String,
}

#[derive(Deserialize)]
struct Timeline {
    timeline: Option<Vec<Event>>,
}

fn rfc_ms(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Probes: `n` jobs that fit, sent open loop at `rate`/s; submit -> admitted latencies in ms,
/// and how many were not admitted within 60 s.
async fn probe(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    rate: f64,
    tag: &str,
) -> Result<(Vec<f64>, usize)> {
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..n {
        let at = start + gap.mul_f64(i as f64);
        let http = http.clone();
        let base = base.to_string();
        let body = job(
            &format!("probe-{tag}-{i}"),
            "probe",
            "high",
            "250m",
            "256m",
            "20s",
        );
        tasks.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let sent = wall_ms();
            let id = submit_one(&http, &base, body).await?;
            anyhow::Ok((id, sent))
        });
    }
    let mut sent = Vec::new();
    while let Some(j) = tasks.join_next().await {
        sent.push(j??);
    }
    let _ = wait_drained(http, base, "probe", Duration::from_secs(60)).await?;
    let mut lat = Vec::new();
    let mut missing = 0;
    for (id, t0) in sent {
        let tl: Timeline = get_json(http, base, &format!("/v1/jobs/{id}")).await?;
        let admitted = tl
            .timeline
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.to == "admitted")
            .and_then(|e| rfc_ms(&e.at));
        match admitted {
            Some(at) => lat.push((at - t0).max(0) as f64),
            None => missing += 1,
        }
    }
    Ok((lat, missing))
}

/// Mean tick duration over a quiet window of at least 3 s (and at least 3 ticks, up to 30 s),
/// and the mean of each of its steps over the same window (by step, in the tick's order).
async fn idle_tick(
    http: &reqwest::Client,
    base: &str,
    interval_ms: u64,
) -> Result<(Option<f64>, Vec<(String, f64)>)> {
    tokio::time::sleep(Duration::from_millis(interval_ms.max(500) * 2)).await;
    let first = get_text(http, base, "/metrics").await?;
    let (s0, c0) = cycle_sum_count(&first);
    let steps0 = step_sums(&first);
    let t = Instant::now();
    let window = Duration::from_millis((interval_ms * 6).max(3000));
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let last = get_text(http, base, "/metrics").await?;
        let (s1, c1) = cycle_sum_count(&last);
        if (t.elapsed() >= window && c1 - c0 >= 3.0) || t.elapsed() > Duration::from_secs(30) {
            if c1 - c0 < 1.0 {
                return Ok((None, Vec::new()));
            }
            let mut steps = Vec::new();
            for (name, (sum, count)) in step_sums(&last) {
                let (sum0, count0) = steps0.get(&name).copied().unwrap_or_default();
                if count - count0 >= 1.0 {
                    steps.push((name, (sum - sum0) / (count - count0) * 1000.0));
                }
            }
            let order = |n: &str| {
                sluice_server::metrics::TICK_STEPS
                    .iter()
                    .position(|s| *s == n)
                    .unwrap_or(usize::MAX)
            };
            steps.sort_by_key(|(n, _)| order(n));
            return Ok((Some((s1 - s0) / (c1 - c0) * 1000.0), steps));
        }
    }
}

fn p50_99(xs: &[f64]) -> (f64, f64) {
    (percentile(xs, 50.0), percentile(xs, 99.0))
}

/// The cluster the bench measures on: one 33-core filler job per node (namespace `filler`,
/// running for 10 h), so that a 64-core blocker cannot start now; waits until all are admitted.
async fn fill_cluster(http: &reqwest::Client, base: &str, token: &str, nodes: u32) -> Result<()> {
    let filler = submit_many(
        base,
        token,
        nodes as usize,
        16,
        0,
        Arc::new(|i| job(&format!("filler-{i}"), "filler", "high", "33", "16g", "10h")),
    )
    .await?;
    if filler.failed > 0 {
        bail!(
            "filler jobs refused: {}",
            filler.first_error.unwrap_or_default()
        );
    }
    if wait_drained(http, base, "filler", Duration::from_secs(120))
        .await?
        .is_none()
    {
        bail!("the filler jobs were not all admitted within 120 s");
    }
    Ok(())
}

async fn drive(
    args: &BenchArgs,
    server: &Server,
    kind: StoreKind,
    deadline: Instant,
) -> Result<(Vec<Row>, Option<String>)> {
    let base = server.base.as_str();
    let token = server.token.as_str();
    let http = server.client()?;
    let name = kind.name();
    fill_cluster(&http, base, token, args.nodes).await?;
    // One blocker at the head of each deep namespace.
    let nss = args.namespaces.max(1);
    for i in 0..nss {
        submit_one(
            &http,
            base,
            job("blocker", &format!("deep-{i}"), "high", "64", "1g", "10h"),
        )
        .await?;
    }
    let mut queued = nss;
    let mut rows = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut stopped = None;
    let deep = move |i: usize| -> String {
        job(
            &format!("deep-{i}"),
            &format!("deep-{}", i % nss),
            "normal",
            "1",
            "1g",
            "10h",
        )
    };
    let deep: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(deep);
    // Depth 0: latency with free capacity and nothing queued but the blockers.
    let mut depths = vec![0usize];
    depths.extend(args.depths.iter().copied());
    for (step, &depth) in depths.iter().enumerate() {
        if Instant::now() > deadline {
            stopped = Some(format!("stopped by --max-minutes before depth {depth}"));
            break;
        }
        if depth > queued {
            eprintln!("bench [{name}]: filling the queue to {depth}");
            let fill = submit_many(base, token, depth - queued, 64, 200, deep.clone()).await?;
            queued += fill.ok;
            eprintln!(
                "bench [{name}]: filled {} in {:.1} s ({:.0}/s, {} failed)",
                fill.ok,
                fill.elapsed.as_secs_f64(),
                fill.rate(),
                fill.failed
            );
            ids.extend(fill.ids);
        }
        let mut row = Row {
            depth: queued,
            ..Row::default()
        };
        if depth == 0 {
            let c = args.clients.iter().copied().max().unwrap_or(64);
            let span = Duration::from_secs(3);
            let livez = get_rate(base, token, "/livez", c, span).await?;
            let whoami = get_rate(base, token, "/v1/whoami", c, span).await?;
            eprintln!(
                "bench [{name}]: ceiling with {c} clients: GET /livez {livez:.0}/s, GET /v1/whoami {whoami:.0}/s"
            );
            row.ceiling = Some((c, livez, whoami));
        }
        if depth > 0 {
            for &c in &args.clients {
                let pid = server.pid().to_string();
                let writer0 =
                    group_commit_sums(&get_text(&http, base, "/metrics").await?, "submit");
                let before = (cpu_us(&pid), cpu_us("self"));
                let s = submit_many(base, token, args.submits, c, 50, deep.clone()).await?;
                let after = (cpu_us(&pid), cpu_us("self"));
                let writer1 =
                    group_commit_sums(&get_text(&http, base, "/metrics").await?, "submit");
                let (jobs, batches, secs) = (
                    writer1.0 - writer0.0,
                    writer1.1 - writer0.1,
                    writer1.2 - writer0.2,
                );
                if jobs >= 1.0 && batches >= 1.0 {
                    row.submit_writer
                        .push((c, jobs / batches, secs * 1e6 / jobs));
                }
                if let ((Some(s0), Some(b0)), (Some(s1), Some(b1))) = (before, after)
                    && s.ok > 0
                {
                    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / s.ok as f64;
                    let (server_us, bench_us) = (per(s0, s1), per(b0, b1));
                    eprintln!(
                        "bench [{name}]: depth {depth}: {c} clients: CPU per submit: server {server_us:.0} µs, bench {bench_us:.0} µs"
                    );
                    row.submit_cpu.push((c, server_us, bench_us));
                }
                queued += s.ok;
                eprintln!(
                    "bench [{name}]: depth {depth}: {c} clients: {:.0} submits/s ({} failed{})",
                    s.rate(),
                    s.failed,
                    s.first_error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
                row.submit_rates.push((c, s.rate(), s.failed));
                ids.extend(s.ids);
            }
        }
        // The probes and bursts of the depths before end first (bounded: the run goes on).
        let mut earlier = vec!["probe".to_string()];
        earlier.extend((0..step).map(|s| format!("burst-{s}")));
        if !wait_quiet(&http, base, &earlier, Duration::from_secs(60)).await? {
            eprintln!(
                "bench [{name}]: depth {}: earlier probes or bursts still running after 60 s",
                row.depth
            );
        }
        (row.idle_tick_ms, row.idle_steps) = idle_tick(&http, base, args.interval_ms).await?;
        (row.rss_mib, row.hwm_mib) = server.rss_mib();
        eprintln!(
            "bench [{name}]: depth {}: idle tick {:?} ms, RSS {:.0} MiB",
            row.depth, row.idle_tick_ms, row.rss_mib
        );
        let (lat, missing) =
            probe(&http, base, args.probes, args.probe_rate, &step.to_string()).await?;
        (row.probe_p50, row.probe_p99) = p50_99(&lat);
        row.probe_missing = missing;
        row.probes = args.probes;
        eprintln!(
            "bench [{name}]: depth {}: probe submit->admitted p50 {:.0} ms p99 {:.0} ms ({missing} not admitted in 60 s)",
            row.depth, row.probe_p50, row.probe_p99
        );
        // Admissions/s: a burst held by a blocker, released by cancelling it.
        let ns = format!("burst-{step}");
        let blocker =
            submit_one(&http, base, job("blocker", &ns, "high", "64", "1g", "10h")).await?;
        let b = submit_many(
            base,
            token,
            args.burst,
            64,
            0,
            Arc::new({
                let ns = ns.clone();
                move |i| job(&format!("burst-{i}"), &ns, "normal", "250m", "256m", "20s")
            }),
        )
        .await?;
        let cancel = http
            .post(format!("{base}/v1/jobs/{blocker}/cancel"))
            .send()
            .await?;
        if !cancel.status().is_success() {
            bail!("cancelling the burst's blocker: HTTP {}", cancel.status());
        }
        let drained = wait_drained(&http, base, &ns, Duration::from_secs(120)).await?;
        row.admissions_per_s = drained.map(|d| b.ok as f64 / d.as_secs_f64().max(1e-9));
        eprintln!(
            "bench [{name}]: depth {}: {} admitted in {:?}",
            row.depth, b.ok, drained
        );
        // API latency.
        let n = args.api_samples;
        row.list_ms = p50_99(&time_gets(&http, base, n, |_| "/v1/jobs?limit=100".into()).await?);
        row.list_filtered_ms = p50_99(
            &time_gets(&http, base, n, |i| {
                format!("/v1/jobs?namespace=deep-{}&state=queued&limit=100", i % nss)
            })
            .await?,
        );
        if !ids.is_empty() {
            let ids = &ids;
            row.get_ms = p50_99(
                &time_gets(&http, base, n, |i| {
                    format!("/v1/jobs/{}", ids[i % ids.len()])
                })
                .await?,
            );
        }
        let to = wall_ms();
        let range = format!(
            "/v1/history?from={}&to={}",
            sluice_server::time::rfc3339(to - 86_400_000),
            sluice_server::time::rfc3339(to)
        );
        row.history_ms = p50_99(&time_gets(&http, base, n, |_| range.clone()).await?);
        rows.push(row);
    }
    Ok((rows, stopped))
}

/// CPU per submit, and the submit rate CPU alone allows when the server and this bench share
/// the machine's cores (the ceiling no server change below that CPU cost can pass).
fn print_steps(rows: &[Row]) {
    let Some(first) = rows.iter().find(|r| !r.idle_steps.is_empty()) else {
        return;
    };
    let names: Vec<&str> = first.idle_steps.iter().map(|(n, _)| n.as_str()).collect();
    println!();
    println!("The idle tick by step (mean ms over the same window, `sluice_tick_step_seconds`):");
    println!();
    println!("| queued | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for r in rows.iter().filter(|r| !r.idle_steps.is_empty()) {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                r.idle_steps
                    .iter()
                    .find(|(m, _)| m == n)
                    .map_or("-".to_string(), |(_, v)| format!("{v:.2}"))
            })
            .collect();
        println!("| {} | {} |", r.depth, cells.join(" | "));
    }
}

fn print_cpu(rows: &[Row]) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut lines = Vec::new();
    for r in rows {
        for &(c, server_us, bench_us) in &r.submit_cpu {
            let total = server_us + bench_us;
            let ceiling = if total > 0.0 {
                format!("{:.0}", cores * 1e6 / total)
            } else {
                "-".to_string()
            };
            let (batch, writer) = r
                .submit_writer
                .iter()
                .find(|w| w.0 == c)
                .map_or(("-".to_string(), "-".to_string()), |&(_, b, us)| {
                    (format!("{b:.1}"), format!("{us:.0}"))
                });
            lines.push(format!(
                "| {} | {c} | {server_us:.0} | {bench_us:.0} | {ceiling} | {batch} | {writer} |",
                r.depth
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    println!();
    println!(
        "CPU per submit (user + system from /proc/PID/stat, 10 ms resolution; PostgreSQL's own \
         processes not counted) and the submits/s that {cores:.0} cores allow at that cost; the \
         submit group commit's batches and its writer's time per job (`sluice_group_commit_*`; on \
         SQLite one writer, so 1,000,000 / writer µs is the rate it allows):"
    );
    println!();
    println!(
        "| queued | clients | server µs/submit | bench µs/submit | CPU-bound ceiling submits/s | \
         jobs a submit batch | writer µs/job |"
    );
    println!("|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
}

fn print_rows(args: &BenchArgs, kind: StoreKind, rows: &[Row], stopped: &Option<String>) {
    let clients: Vec<String> = args
        .clients
        .iter()
        .map(|c| format!("submits/s ({c} clients)"))
        .collect();
    println!();
    println!(
        "### {} ({} nodes, interval {} ms)",
        kind.name(),
        args.nodes,
        args.interval_ms
    );
    println!();
    println!(
        "| queued | {} | RSS MiB (peak) | idle tick ms | probe submit->admitted p50 / p99 ms | admissions/s | list p50/p99 ms | list filtered p50/p99 ms | get p50/p99 ms | history 24h p50/p99 ms |",
        clients.join(" | ")
    );
    println!(
        "|---|{}---|---|---|---|---|---|---|---|",
        "---|".repeat(clients.len())
    );
    for r in rows {
        let rates: Vec<String> = args
            .clients
            .iter()
            .map(|c| {
                r.submit_rates
                    .iter()
                    .find(|(k, _, _)| k == c)
                    .map(|(_, v, f)| {
                        if *f > 0 {
                            format!("{v:.0} ({f} failed)")
                        } else {
                            format!("{v:.0}")
                        }
                    })
                    .unwrap_or_else(|| "-".into())
            })
            .collect();
        let missing = if r.probe_missing > 0 {
            format!(" ({} of {} not admitted)", r.probe_missing, r.probes)
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {:.0} ({:.0}) | {} | {:.0} / {:.0}{missing} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
            r.depth,
            rates.join(" | "),
            r.rss_mib,
            r.hwm_mib,
            r.idle_tick_ms
                .map_or("-".to_string(), |v| format!("{v:.1}")),
            r.probe_p50,
            r.probe_p99,
            r.admissions_per_s
                .map_or("-".to_string(), |v| format!("{v:.0}")),
            r.list_ms.0,
            r.list_ms.1,
            r.list_filtered_ms.0,
            r.list_filtered_ms.1,
            r.get_ms.0,
            r.get_ms.1,
            r.history_ms.0,
            r.history_ms.1,
        );
    }
    print_cpu(rows);
    print_steps(rows);
    for (c, livez, whoami) in rows.iter().filter_map(|r| r.ceiling) {
        println!();
        println!(
            "HTTP ceiling on this machine ({c} clients, server and bench on the same cores): \
             GET /livez {livez:.0}/s (no authentication, no store), GET /v1/whoami {whoami:.0}/s \
             (token looked up in the store)."
        );
    }
    if let Some(s) = stopped {
        println!();
        println!("{s}");
    }
}
