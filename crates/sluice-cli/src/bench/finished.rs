//! `--finished N`: API latency over a store holding N finished jobs (issue 12: "list/get/history
//! API latency with 1 M jobs in the store").
//!
//! Submitting a million jobs over HTTP would take the bench most of an hour, so the jobs are
//! written straight into the server's database in one `INSERT ... SELECT` over a generated
//! series (as `crates/sluice-store/benches/history.rs` does), each a copy of a *template* job
//! submitted over HTTP first (so its spec, labels and demand are exactly what the server
//! stores). The server is stopped for the load (which includes rolling up the history's hours,
//! as a server running over those days would have done) and started again on the same
//! database, then timed: the first page of the job list, the list narrowed to a namespace and state, a get of
//! a seeded job, and the history of the last 24 hours and 30 days.
//!
//! The seeded jobs span the 30 days before the load, one every 30 days / N, in 10 namespaces
//! (`done-0..9`) and 1,000 names, 95% succeeded and 5% failed; waits of 0-10 minutes and runs of
//! 0.5-30.5 minutes, deterministic. They have no label rows (`job_labels`) and no timeline
//! events, so label-filtered listings and `describe` timelines do not see them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::{Connection, Executor};

use super::load::{get_text, percentile, submit_one, time_gets, wall_ms};
use super::server::{Server, StoreKind};

const DAY_MS: i64 = 86_400_000;
const SPAN_MS: i64 = 30 * DAY_MS;

/// What was measured over the seeded store.
pub struct FinishedRow {
    /// Jobs in the store.
    pub jobs: u64,
    /// Seconds the load took.
    pub load_s: f64,
    /// Server RSS after the restart and the reads, MiB.
    pub rss_mib: f64,
    /// p50/p99 ms of each read.
    pub list: (f64, f64),
    pub list_filtered: (f64, f64),
    pub get: (f64, f64),
    pub history_24h: (f64, f64),
    pub history_30d: (f64, f64),
}

/// The `INSERT ... SELECT` of `n` copies of the template (the first bound parameter) ending at
/// `end_ms`, for SQLite (`postgres` false) or PostgreSQL.
fn seed_sql(postgres: bool, n: u64, end_ms: i64) -> String {
    let start = end_ms - SPAN_MS;
    let last = n.saturating_sub(1);
    let (with, source, id, param) = if postgres {
        (
            String::new(),
            format!("generate_series(0::BIGINT, {last}) AS s(i)"),
            "'00seed' || lpad(i::text, 20, '0')",
            "$1",
        )
    } else {
        (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last})"
            ),
            "s".to_string(),
            "printf('00seed%020d', i)",
            "?",
        )
    };
    format!(
        "{with} INSERT INTO jobs (id, namespace, name, level, state, attempt, labels, spec, demand, \
         created_at, enqueued_at, updated_at, admitted_at, dequeued_at, started_at, finished_at, \
         cpu_milli, mem_mib, exit_code, message) \
         SELECT {id}, 'done-' || (i % 10), 'done-' || (i % 1000), t.level, \
           CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'succeeded' END, 1, t.labels, t.spec, t.demand, \
           c, c, c + w + 1000 + r, c + w, c + w, c + w + 1000, c + w + 1000 + r, \
           t.cpu_milli, t.mem_mib, CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END, 'seeded by sluice bench' \
         FROM (SELECT i, {start} + i * {SPAN_MS} / {n} AS c, \
                 ((i * 2654435761) % 4294967296) % 600000 AS w, \
                 30000 + ((i * 48271) % 2147483647) % 1800000 AS r \
               FROM {source}) x, jobs t WHERE t.id = {param}",
        n = n.max(1)
    )
}

/// Writes `n` finished copies of job `template` into the database at `url`; the time it took.
async fn seed(url: &str, postgres: bool, template: &str, n: u64) -> Result<Duration> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url} to seed finished jobs"))?;
    let t = Instant::now();
    let sql = seed_sql(postgres, n, wall_ms());
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(template)
        .execute(&mut conn)
        .await
        .context("seeding the finished jobs")?;
    if done.rows_affected() != n {
        bail!(
            "seeding wrote {} jobs, not {n} (template {template})",
            done.rows_affected()
        );
    }
    if postgres {
        // What autovacuum does after such a load (planner statistics, the visibility map).
        conn.execute("VACUUM ANALYZE jobs")
            .await
            .context("VACUUM ANALYZE jobs")?;
    } else {
        conn.execute("ANALYZE").await.context("ANALYZE")?;
    }
    let _ = conn.close().await;
    // The history's hourly rollups, as a server that had been running over those 30 days
    // would have them (it rolls up each hour a few minutes after it ends).
    let store = sluice_store::open(url)
        .await
        .with_context(|| format!("opening the store at {url}"))?;
    loop {
        let r = store
            .roll_up_history(wall_ms())
            .await
            .context("rolling up the seeded history")?;
        if r.done {
            break;
        }
    }
    store.close().await;
    Ok(t.elapsed())
}

/// The store's URL as the bench's server uses it.
fn store_url(kind: StoreKind, dir: &Path, db_url: Option<&str>) -> String {
    match (kind, db_url) {
        (StoreKind::Postgres, Some(u)) => u.to_string(),
        _ => format!("sqlite://{}", dir.join("data").join("sluice.db").display()),
    }
}

/// Starts a server, submits the template, stops it, seeds `n` finished jobs, starts it again
/// and times the reads (`samples` of each).
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    exe: &Path,
    dir: &Path,
    kind: StoreKind,
    db_url: Option<&str>,
    nodes: u32,
    interval_ms: u64,
    n: u64,
    samples: usize,
) -> Result<FinishedRow> {
    let name = kind.name();
    let mut server = Server::start(exe, dir, db_url, nodes, interval_ms).await?;
    let http = server.client()?;
    let template = submit_one(
        &http,
        &server.base,
        super::load::job("template", "done-0", "normal", "2", "4g", "1m"),
    )
    .await;
    server.stop().await;
    let template = template?;
    eprintln!("bench [{name}]: seeding {n} finished jobs");
    let took = seed(
        &store_url(kind, dir, db_url),
        kind == StoreKind::Postgres,
        &template,
        n,
    )
    .await?;
    eprintln!(
        "bench [{name}]: seeded {n} finished jobs in {:.1} s",
        took.as_secs_f64()
    );
    let mut server = Server::start(exe, dir, db_url, nodes, interval_ms).await?;
    let r = reads(&server, n, samples).await;
    let rss = server.rss_mib().0;
    server.stop().await;
    let mut row = r?;
    row.load_s = took.as_secs_f64();
    row.rss_mib = rss;
    Ok(row)
}

async fn reads(server: &Server, n: u64, samples: usize) -> Result<FinishedRow> {
    let http = server.client()?;
    let base = server.base.as_str();
    let p50_99 = |v: Vec<f64>| (percentile(&v, 50.0), percentile(&v, 99.0));
    // One untimed read of each first (the restarted server's caches and the database's pages).
    get_text(&http, base, "/v1/jobs?limit=100").await?;
    let list = p50_99(time_gets(&http, base, samples, |_| "/v1/jobs?limit=100".into()).await?);
    let list_filtered = p50_99(
        time_gets(&http, base, samples, |i| {
            format!("/v1/jobs?namespace=done-{}&state=failed&limit=100", i % 10)
        })
        .await?,
    );
    let id = |i: usize| format!("00seed{:020}", (i as u64 * 7919) % n.max(1));
    let got = get_text(&http, base, &format!("/v1/jobs/{}", id(1))).await?;
    if !got.contains("succeeded") && !got.contains("failed") {
        bail!("a seeded job does not read back as finished: {got}");
    }
    let get = p50_99(time_gets(&http, base, samples, |i| format!("/v1/jobs/{}", id(i))).await?);
    let to = wall_ms();
    let range = |days: i64| {
        format!(
            "/v1/history?from={}&to={}",
            sluice_server::time::rfc3339(to - days * DAY_MS),
            sluice_server::time::rfc3339(to)
        )
    };
    let (r24, r30) = (range(1), range(30));
    let history_24h = p50_99(time_gets(&http, base, samples, |_| r24.clone()).await?);
    let history_30d = p50_99(time_gets(&http, base, samples, |_| r30.clone()).await?);
    Ok(FinishedRow {
        jobs: n + 1,
        load_s: 0.0,
        rss_mib: 0.0,
        list,
        list_filtered,
        get,
        history_24h,
        history_30d,
    })
}

/// Prints the table of one store's row.
pub fn print(kind: StoreKind, r: &FinishedRow) {
    println!();
    println!(
        "### {}: API latency with {} jobs in the store",
        kind.name(),
        r.jobs
    );
    println!();
    println!(
        "| jobs | load s | RSS MiB | list p50/p99 ms | list filtered p50/p99 ms | get p50/p99 ms | history 24h p50/p99 ms | history 30d p50/p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.1} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
        r.jobs,
        r.load_s,
        r.rss_mib,
        r.list.0,
        r.list.1,
        r.list_filtered.0,
        r.list_filtered.1,
        r.get.0,
        r.get.1,
        r.history_24h.0,
        r.history_24h.1,
        r.history_30d.0,
        r.history_30d.1,
    );
}
