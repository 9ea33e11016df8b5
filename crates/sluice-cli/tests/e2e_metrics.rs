//! Metrics end to end: the real `sluice` server runs real local jobs (one waits, one fails)
//! while a real Prometheus (Debian package `prometheus`) scrapes its /metrics every second.
//! Every PromQL query of the shipped Grafana dashboard (`deploy/grafana/sluice-dashboard.json`)
//! must return data through Prometheus's HTTP API, and `promtool check metrics` must be clean
//! on sluice's /metrics. Also: `sluice top --once` and `sluice submit --wait` output.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_port};
use serde_json::Value;

fn cmd(name: &str, ns: &str, cpu: &str, script: &str) -> String {
    format!(
        "name: {name}\nnamespace: {ns}\ncommand:\n  argv: [sh, -c, {script:?}]\n  cpu: \"{cpu}\"\n  memory: 64m\n"
    )
}

/// One GET: the status and body, or the transport error.
fn http_try(url: &str, query: &[(&str, &str)]) -> Result<(u16, String), String> {
    http_try_as(url, query, None)
}

/// One GET with a bearer token.
fn http_try_as(
    url: &str,
    query: &[(&str, &str)],
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // reqwest's TLS takes rustls' process-wide provider (ring).
    sluice_backend::install_crypto_provider();
    rt.block_on(async {
        let mut req = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
            .get(url)
            .query(query);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        Ok((status, body))
    })
}

/// One GET that must answer 2xx; its body.
fn http_get(url: &str, query: &[(&str, &str)]) -> String {
    let (status, body) = http_try(url, query).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (200..300).contains(&status),
        "GET {url} {query:?}: {status}\n{body}"
    );
    body
}

fn find_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: apt-get install prometheus (scripts/test.sh does)")
        })
}

/// A real Prometheus scraping one target every second, on a free loopback port, with its data in
/// a temp dir. Killed by PID when dropped.
struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes with the bearer token in `token_file`, as a Prometheus in front of a sluice with
    /// authentication does (`authorization.credentials_file`).
    fn start(target_port: u16, token_file: &std::path::Path) -> Prometheus {
        let bin = find_tool("prometheus");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: sluice\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n\
                 \x20   authorization:\n      credentials_file: {}\n\
                 \x20   static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
                token_file.display()
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if matches!(http_try(&p.url("/-/ready"), &[]), Ok((200, _))) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 60 s; log:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query.
    fn query(&self, expr: &str) -> Vec<Value> {
        let body = http_get(&self.url("/api/v1/query"), &[("query", expr)]);
        let v: Value = serde_json::from_str(&body).expect("prometheus json");
        assert_eq!(v["status"], "success", "{expr}: {body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.wait();
        }
    }
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

fn dashboard_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/sluice-dashboard.json")
}

/// Every `expr` of every target of every panel (rows' nested panels included).
fn dashboard_exprs(d: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            if let Some(inner) = p["panels"].as_array() {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        d["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        &mut out,
    );
    out
}

/// Grafana's variables as this test sets them: every namespace and level ("All" is `.*`),
/// a rate window wide enough to hold the whole run.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("${namespace}", ".*")
        .replace("$namespace", ".*")
        .replace("${level}", ".*")
        .replace("$level", ".*")
}

fn check_dashboard_shape(d: &Value) {
    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for want in ["DS_PROMETHEUS", "namespace", "level"] {
        assert!(vars.contains(&want), "variable {want} missing: {vars:?}");
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut titles = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        assert!(p["gridPos"]["w"].as_u64().is_some(), "{p}");
        titles.push(p["title"].as_str().unwrap_or_default().to_lowercase());
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
            for t in p["targets"].as_array().expect("targets") {
                assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
            }
        }
    }
    // The panels the issue asks for.
    for want in [
        "queue length",
        "queue wait p",
        "jobs per minute",
        "utilisation by namespace",
        "dead-letter",
        "backend",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel about {want:?}: {titles:?}"
        );
    }
}

fn promtool_check(metrics: &str) {
    let promtool = find_tool("promtool");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "promtool check metrics is not clean:\n{text}"
    );
}

#[test]
fn prometheus_answers_every_dashboard_query() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(dashboard_path()).expect("read the dashboard"),
    )
    .expect("dashboard is JSON");
    check_dashboard_shape(&dashboard);
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 20, "only {} queries", exprs.len());

    let server = Server::start(
        "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"2g\"\n[scheduler]\ninterval_ms = 200\n\
         [namespaces.analytics]\nweight = 2\n[security.command_jobs]\nnamespaces = [\"*\"]\n",
    );
    let prom = Prometheus::start(server.port, &server.token_path());
    // Prometheus sees sluice before the jobs start, so every counter's rise is in its data.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = prom.query(r#"up{job="sluice"}"#);
        if up.first().map(value_of) == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus does not scrape sluice: {up:?}\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // One job takes the whole budget; the others wait behind it; one of them fails twice (one
    // retry), then lands in the dead-letter queue.
    let big = server.submit(
        &server.write("big.yaml", &cmd("big", "analytics", "2", "sleep 3")),
        &[],
    );
    server.wait_for(&big, &["running"], 30);
    let urgent = server.submit(
        &server.write("urgent.yaml", &cmd("urgent", "analytics", "1", "sleep 1")),
        &["--priority", "high"],
    );
    let failing = server.submit(
        &server.write(
            "failing.yaml",
            &format!(
                "{}retry: {{maxAttempts: 2, backoff: {{initial: 250ms}}}}\n",
                cmd("failing", "default", "1", "exit 3")
            ),
        ),
        &[],
    );
    let small = server.submit(
        &server.write("small.yaml", &cmd("small", "default", "1", "sleep 1")),
        &[],
    );
    // While they wait, Prometheus sees the queues.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = prom.query(r#"sum(sluice_queue_length{namespace="default"})"#);
        if q.first().map(value_of).is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never saw a queued job: {q:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for id in [&big, &urgent, &small] {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed"], 60),
            "succeeded"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.job(&failing)["attempt"] != 2 || server.state(&failing) != "failed" {
        assert!(
            Instant::now() < deadline,
            "the failing job was not retried and failed again:\n{}",
            server.ok(&["describe", &failing])
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // promtool is clean on what sluice serves.
    let (code, metrics) = http_try_as(
        &format!("{}/metrics", server.url()),
        &[],
        Some(&server.token()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{metrics}");
    // Without a token: 401.
    let (code, _) = http_try(&format!("{}/metrics", server.url()), &[]).unwrap();
    assert_eq!(code, 401);
    assert!(
        metrics.contains(
            "sluice_jobs_finished_total{namespace=\"default\",level=\"normal\",outcome=\"failed\"} 2"
        ),
        "{metrics}"
    );
    promtool_check(&metrics);

    // Prometheus has scraped the end of the run: five finished attempts (three successes, two
    // failures of the same job), one retry, one job in the dead-letter queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = [
            "sum(sluice_jobs_finished_total)",
            "sum(sluice_job_retries_total)",
            "sum(sluice_dlq_jobs)",
        ]
        .map(|q| prom.query(q).first().map(value_of));
        if seen == [Some(5.0), Some(1.0), Some(1.0)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never saw the end of the run (finished, retries, DLQ): {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Every dashboard query returns data with at least one number (not only NaN). Bounded:
    // 60 s for all of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<(String, String)> = exprs.clone();
    let mut last: Vec<(String, String, Vec<Value>)> = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        last.clear();
        pending.retain(|(title, expr)| {
            let q = substitute(expr);
            let r = prom.query(&q);
            let ok = r.iter().any(|s| value_of(s).is_finite());
            if !ok {
                last.push((title.clone(), q, r));
            }
            !ok
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    assert!(
        pending.is_empty(),
        "dashboard queries without data:\n{}",
        last.iter()
            .map(|(t, q, r)| format!("  [{t}] {q}\n    -> {r:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The numbers are the run's: finished jobs by outcome, and the queues it saw.
    let finished = |outcome: &str| {
        prom.query(&format!(
            "sum(sluice_jobs_finished_total{{outcome=\"{outcome}\"}})"
        ))
        .first()
        .map(value_of)
    };
    assert_eq!(finished("succeeded"), Some(3.0));
    assert_eq!(finished("failed"), Some(2.0));
    let waited = prom.query(
        r#"sum(increase(sluice_queue_wait_seconds_count{namespace="analytics",level="high"}[5m]))"#,
    );
    assert!(
        waited.first().map(value_of).is_some_and(|v| v > 0.5),
        "{waited:?}"
    );
    // The template variables' own queries (label_values) list the run's namespaces.
    let body = http_get(
        &prom.url("/api/v1/label/namespace/values"),
        &[("match[]", "sluice_queue_length")],
    );
    let v: Value = serde_json::from_str(&body).expect("json");
    let names: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"analytics") && names.contains(&"default"),
        "{names:?}"
    );
}

#[test]
fn top_once_and_submit_wait_show_queues_progress_and_outcome() {
    let server = Server::start(
        "[backend]\nkind = \"local\"\ncores = 1\nmemory = \"1g\"\n[scheduler]\ninterval_ms = 200\n[security.command_jobs]\nnamespaces = [\"*\"]\n",
    );
    let blocker = server.submit(
        &server.write("blocker.yaml", &cmd("blocker", "default", "1", "sleep 4")),
        &[],
    );
    server.wait_for(&blocker, &["running"], 30);

    // `submit --wait` follows a job that has to wait for the blocker.
    let file = server.write("follow.yaml", &cmd("follow-me", "default", "1", "echo hi"));
    let follower = Command::new(common::BIN)
        .args(["submit", &file, "--wait"])
        .env("SLUICE_SERVER", server.url())
        .env("SLUICE_TOKEN", server.token())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice submit --wait");

    // Meanwhile `top --once` shows the running blocker and the waiting job with its reason.
    // One frame is four concurrent requests (queues, cluster, active and queued jobs): the
    // queues may be read just before the submit lands and the job list just after, so wait
    // for a frame in which both have it.
    let in_queues = |f: &str| {
        f.lines()
            .skip_while(|l| *l != "QUEUES")
            .skip(2)
            .take_while(|l| !l.is_empty())
            .any(|l| l.starts_with("default") && l.contains("normal"))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let frame = loop {
        let f = server.ok(&["top", "--once"]);
        if f.contains("follow-me") && f.contains("needs") && in_queues(&f) {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "top never showed the waiting job:\n{f}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(frame.contains("backend local: up"), "{frame}");
    assert!(frame.contains("RUNNING (1)"), "{frame}");
    let running = frame
        .lines()
        .find(|l| l.starts_with(&blocker))
        .unwrap_or_else(|| panic!("no line for the blocker:\n{frame}"));
    assert!(
        running.contains("blocker") && running.contains("running"),
        "{frame}"
    );
    let waiting = frame
        .lines()
        .find(|l| l.contains("follow-me"))
        .expect("waiting line");
    assert!(waiting.trim_start().starts_with("1 "), "{frame}");
    assert!(frame.contains("WAITING (1)"), "{frame}");
    assert!(
        !frame.contains("\x1b["),
        "--once must not draw escape codes"
    );

    let out = follower.wait_with_output().expect("follower");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let id = stdout.trim();
    assert_eq!(id.len(), 26, "stdout is the id only: {stdout:?}");
    // Progress: state changes in order with the time since submission, the queue position and
    // reason while it waited, and a closing line with the times.
    let mut at = 0;
    for want in [
        "] queued",
        "] waiting    position 1 in namespace default (1 in level normal): needs",
        "] admitted",
        "] submitted",
        "] succeeded",
    ] {
        let pos = stderr[at..]
            .find(want)
            .unwrap_or_else(|| panic!("{want:?} missing (after byte {at}):\n{stderr}"));
        at += pos + want.len();
    }
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("{id} succeeded after ")) && last.contains("queued "),
        "{stderr}"
    );

    // A failing job with one retry: both attempts are followed (the retry sends it back to
    // the queue), then exit status 1 and the closing line names the attempt, the failure and the
    // dead-letter queue.
    let file = server.write(
        "fail.yaml",
        &format!(
            "{}retry: {{maxAttempts: 2, backoff: {{initial: 250ms}}}}\n",
            cmd("fails", "default", "1", "exit 3")
        ),
    );
    let out = server.cli(&["submit", &file, "--wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("] running").count(), 2, "{stderr}");
    assert_eq!(stderr.matches("] queued").count(), 2, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    for want in [
        " failed after ",
        " on attempt 2 ",
        "exit code 3",
        "dead-lettered",
    ] {
        assert!(last.contains(want), "{want:?} missing:\n{stderr}");
    }
}
