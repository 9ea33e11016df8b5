//! What the bench sends: job documents, concurrent submits, timed reads, percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Milliseconds since the Unix epoch (the server runs on the same machine and clock).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A command job for the simulated backend: `cpu` cores, `memory`, in `namespace` at `level`,
/// running for `duration` once started.
pub fn job(
    name: &str,
    namespace: &str,
    level: &str,
    cpu: &str,
    memory: &str,
    duration: &str,
) -> String {
    format!(
        "name: {name}\nnamespace: {namespace}\npriority: {level}\n\
         labels:\n  sluice.io/sim-duration: {duration}\n\
         command:\n  argv: [\"true\"]\n  cpu: \"{cpu}\"\n  memory: {memory}\n"
    )
}

/// CPU time (user + system) a process has used so far, µs, from `/proc/PID/stat` (`"self"`
/// for this process). The kernel counts it in ticks of `USER_HZ`, which Linux fixes at 100 for
/// what it reports to user space, so the resolution is 10 ms. None off Linux or for a process
/// that is gone.
pub fn cpu_us(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces: count after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system).saturating_mul(10_000))
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// The outcome of a batch of submits.
pub struct Submitted {
    /// Wall time of the whole batch.
    pub elapsed: Duration,
    /// Jobs created (HTTP 201).
    pub ok: usize,
    /// Refused or failed requests, with the first error.
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Up to `keep` ids of created jobs.
    pub ids: Vec<String>,
}

impl Submitted {
    /// Jobs created per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// An HTTP client that sends `token` as its bearer token, keeping up to `idle` connections.
pub fn client(token: &str, idle: usize) -> Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the server's token is not a header value")?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(idle)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// Posts one job; its id.
pub async fn submit_one(http: &reqwest::Client, base: &str, body: String) -> Result<String> {
    let r = http
        .post(format!("{base}/v1/jobs"))
        .header("content-type", "application/yaml")
        .body(body)
        .send()
        .await
        .context("POST /v1/jobs")?;
    let status = r.status();
    let bytes = r.bytes().await?;
    if status.as_u16() != 201 {
        bail!(
            "POST /v1/jobs: HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(serde_json::from_slice::<Created>(&bytes)?.id)
}

/// Submits `n` jobs from `clients` concurrent clients (each with its own connection), the
/// `i`-th job's document made by `doc(i)`; keeps up to `keep` ids.
pub async fn submit_many(
    base: &str,
    token: &str,
    n: usize,
    clients: usize,
    keep: usize,
    doc: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Result<Submitted> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let next = next.clone();
        let doc = doc.clone();
        let base = base.to_string();
        let http = client(token, 1)?;
        tasks.spawn(async move {
            let mut ok = 0usize;
            let mut failed = 0usize;
            let mut first_error = None;
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                match submit_one(&http, &base, doc(i)).await {
                    Ok(id) => {
                        ok += 1;
                        if ids.len() < keep {
                            ids.push(id);
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (ok, failed, first_error, ids)
        });
    }
    let mut out = Submitted {
        elapsed: Duration::ZERO,
        ok: 0,
        failed: 0,
        first_error: None,
        ids: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        let (ok, failed, first_error, ids) = joined.context("a submitting client")?;
        out.ok += ok;
        out.failed += failed;
        if out.first_error.is_none() {
            out.first_error = first_error;
        }
        let room = keep.saturating_sub(out.ids.len());
        out.ids.extend(ids.into_iter().take(room));
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

/// GETs `path` and decodes the answer.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
) -> Result<T> {
    let r = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = r.status();
    let bytes = r.bytes().await?;
    if !status.is_success() {
        bail!(
            "GET {path}: HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&bytes)
        );
    }
    serde_json::from_slice(&bytes).with_context(|| format!("decoding GET {path}"))
}

/// GETs `path` and returns the body as text.
pub async fn get_text(http: &reqwest::Client, base: &str, path: &str) -> Result<String> {
    let r = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("GET {path}: HTTP {}: {text}", status.as_u16());
    }
    Ok(text)
}

/// Times `n` sequential GETs of the paths `path(i)`: their latencies in ms.
pub async fn time_gets(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    path: impl Fn(usize) -> String,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = path(i);
        let t = Instant::now();
        get_text(http, base, &p).await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// Nearest-rank percentile `p` (0-100) of `xs`; 0 when empty.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The sum and count of the `sluice_scheduling_cycle_seconds` histogram in a `/metrics` text.
pub fn cycle_sum_count(metrics: &str) -> (f64, f64) {
    let mut sum = 0.0;
    let mut count = 0.0;
    for line in metrics.lines() {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("sluice_scheduling_cycle_seconds_sum"), Some(v)) => {
                sum = v.parse().unwrap_or(0.0);
            }
            (Some("sluice_scheduling_cycle_seconds_count"), Some(v)) => {
                count = v.parse().unwrap_or(0.0);
            }
            _ => {}
        }
    }
    (sum, count)
}

/// The sum and count of each step's `sluice_tick_step_seconds` series in a `/metrics` text, by
/// step (none from a server without that metric).
pub fn step_sums(metrics: &str) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("sluice_tick_step_seconds_") else {
            continue;
        };
        let (is_sum, rest) = if let Some(r) = rest.strip_prefix("sum{step=\"") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix("count{step=\"") {
            (false, r)
        } else {
            continue;
        };
        let Some((step, value)) = rest.split_once("\"}") else {
            continue;
        };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        let e = out.entry(step.to_string()).or_default();
        if is_sum {
            e.0 = v;
        } else {
            e.1 = v;
        }
    }
    out
}

/// One group-commit writer's totals in a `/metrics` text: (items written, batches, seconds),
/// from `sluice_group_commit_batch_size_sum` and `sluice_group_commit_seconds_{sum,count}`
/// with `writer` = `writer` (zeros from a server without those metrics).
pub fn group_commit_sums(metrics: &str, writer: &str) -> (f64, f64, f64) {
    let label = format!("{{writer=\"{writer}\"}}");
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(label.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("sluice_group_commit_batch_size_sum"),
        value("sluice_group_commit_seconds_count"),
        value("sluice_group_commit_seconds_sum"),
    )
}

/// Requests per second of `GET path` from `clients` concurrent clients (each with its own
/// connection) for `span`: what this machine's HTTP stack (server and bench clients on the same
/// cores) serves at most, the ceiling of any other rate the bench measures.
pub async fn get_rate(
    base: &str,
    token: &str,
    path: &str,
    clients: usize,
    span: Duration,
) -> Result<f64> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let http = client(token, 1)?;
        let url = format!("{base}{path}");
        tasks.spawn(async move {
            let mut ok = 0usize;
            while started.elapsed() < span {
                let r = http.get(&url).send().await?;
                if !r.status().is_success() {
                    bail!("GET {url}: HTTP {}", r.status());
                }
                r.bytes().await?;
                ok += 1;
            }
            Ok::<usize, anyhow::Error>(ok)
        });
    }
    let mut total = 0usize;
    while let Some(joined) = tasks.join_next().await {
        total += joined.context("a reading client")??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_commit_sums_read_one_writers_series() {
        let text = "\
sluice_group_commit_batch_size_sum{writer=\"submit\"} 21306.0
sluice_group_commit_batch_size_count{writer=\"submit\"} 880
sluice_group_commit_batch_size_sum{writer=\"audit\"} 1.0
sluice_group_commit_seconds_sum{writer=\"audit\"} 0.0004
sluice_group_commit_seconds_count{writer=\"audit\"} 1
sluice_group_commit_seconds_sum{writer=\"submit\"} 6.84
sluice_group_commit_seconds_count{writer=\"submit\"} 880
";
        assert_eq!(group_commit_sums(text, "submit"), (21306.0, 880.0, 6.84));
        assert_eq!(group_commit_sums(text, "audit"), (1.0, 1.0, 0.0004));
        assert_eq!(group_commit_sums("", "submit"), (0.0, 0.0, 0.0));
    }
}
