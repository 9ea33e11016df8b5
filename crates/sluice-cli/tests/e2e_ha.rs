//! High availability on PostgreSQL, end to end with the real binary: three servers on one
//! database and one simulated cluster (a ledger file they share, which records every
//! submission, refusal and cancel), a steady submit load spread over all three, the leader
//! killed with SIGKILL five times at random moments (and started again), then paused with
//! SIGSTOP past its lease and resumed. Checks: after each kill a new leader admits within
//! TTL + 2 s; at the end every acknowledged submission exists once and succeeded, no job was
//! admitted twice (its timeline) or submitted twice (the cluster's ledger), no submit found its
//! room taken (an over-committed admission), and the paused leader wrote nothing to the
//! cluster after it lost the lease. Prints failover times and submit->admit latency through the
//! leader and through a follower (recorded in BENCHMARKS.md).
//!
//! Bounded: about a minute, loopback only; every server is stopped by PID and the database
//! dropped.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;
use sluice_backend::simulated::{Entry, read_ledger};
use sqlx::{AnyConnection, Connection, Executor, Row};

const TTL_MS: u64 = 2_000;
const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn job_yaml(name: &str) -> String {
    // Probes (latency and failover) go first in their namespace: they measure admission, not
    // the backlog a failover leaves.
    let level = if name.starts_with("load-") {
        "normal"
    } else {
        "high"
    };
    format!(
        "name: {name}\npriority: {level}\nlabels:\n  sluice.io/sim-duration: \"1s\"\nspark:\n  type: Scala\n  \
         mainClass: Main\n  mainApplicationFile: /a.jar\n  driver:\n    cores: 1\n    memory: 512m\n  \
         executor:\n    cores: 1\n    instances: 1\n    memory: 512m\n"
    )
}

struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    token: String,
}

impl Http {
    async fn call(
        client: &reqwest::Client,
        token: &str,
        method: &str,
        url: &str,
        body: Option<String>,
    ) -> Result<(u16, Value), String> {
        let mut req = match method {
            "POST" => client.post(url),
            _ => client.get(url),
        }
        .bearer_auth(token)
        .timeout(Duration::from_secs(5));
        if let Some(b) = body {
            req = req.header("content-type", "application/yaml").body(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((code, v))
    }

    fn post(&self, url: &str, body: Option<String>) -> Result<(u16, Value), String> {
        self.rt
            .block_on(Self::call(&self.client, &self.token, "POST", url, body))
    }

    fn get(&self, url: &str) -> Result<(u16, Value), String> {
        self.rt
            .block_on(Self::call(&self.client, &self.token, "GET", url, None))
    }

    fn submit(&self, base: &str, name: &str) -> Result<String, String> {
        let (code, v) = self.rt.block_on(Self::call(
            &self.client,
            &self.token,
            "POST",
            &format!("{base}/v1/jobs"),
            Some(job_yaml(name)),
        ))?;
        match (code, v["id"].as_str()) {
            (201, Some(id)) => Ok(id.to_string()),
            _ => Err(format!("{code} {v}")),
        }
    }

    fn state(&self, base: &str, id: &str) -> Option<String> {
        let (code, v) = self.get(&format!("{base}/v1/jobs/{id}")).ok()?;
        (code == 200).then(|| v["state"].as_str().unwrap_or_default().to_string())
    }
}

/// A fresh database on the local PostgreSQL, dropped with this.
struct Database {
    name: String,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Database {
    fn new(rt: Arc<tokio::runtime::Runtime>) -> Database {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "sluice_ha_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::any::install_default_drivers();
        rt.block_on(async {
            let mut admin = AnyConnection::connect(ADMIN_URL).await.expect(
                "PostgreSQL at 127.0.0.1:5432 (scripts/test.sh starts it): connect as postgres",
            );
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create database");
            admin.close().await.ok();
        });
        Database { name, rt }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    fn rows(&self, sql: &str) -> Vec<(String, i64)> {
        let url = self.url();
        let sql = sql.to_string();
        self.rt.block_on(async move {
            let mut c = AnyConnection::connect(&url).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut c)
                .await
                .unwrap();
            rows.iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect()
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        self.rt.block_on(async move {
            if let Ok(mut admin) = AnyConnection::connect(ADMIN_URL).await {
                let _ = admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            }
        });
    }
}

/// Who leads now: (server index, epoch), from the servers' `/readyz`.
fn leader(http: &Http, servers: &[Server]) -> Option<(usize, i64)> {
    servers.iter().enumerate().find_map(|(i, s)| {
        let (_, v) = http.get(&format!("{}/readyz", s.url())).ok()?;
        (v["role"] == "leader").then(|| (i, v["epoch"].as_i64().unwrap_or(0)))
    })
}

fn wait_leader(http: &Http, servers: &[Server], above: i64, secs: u64) -> (usize, i64) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((i, e)) = leader(http, servers)
            && e > above
        {
            return (i, e);
        }
        assert!(
            Instant::now() < until,
            "no leader above epoch {above} within {secs} s; logs:\n{}",
            servers
                .iter()
                .map(|s| s.log())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Submits a job through `base` and waits until it leaves the queue: the time it took.
fn probe(http: &Http, base: &str, name: &str, secs: u64) -> Duration {
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    // A submit may fail while the servers are under load: try again until the deadline.
    let id = loop {
        match http.submit(base, name) {
            Ok(id) => break id,
            Err(e) => {
                assert!(Instant::now() < until, "probe {name} not accepted: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    loop {
        if let Some(s) = http.state(base, &id)
            && s != "queued"
        {
            return started.elapsed();
        }
        assert!(
            Instant::now() < until,
            "probe {id} not admitted within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last lines of every server's log, for failure messages.
fn tails(servers: &[Server]) -> String {
    servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let log = s.log();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(40);
            format!("--- server {i}:\n{}", lines[from..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn three_replicas_survive_leader_kills_and_a_pause_with_nothing_lost_or_doubled() {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let db = Database::new(rt.clone());
    let shared = tempfile::tempdir().unwrap();
    let ledger: PathBuf = shared.path().join("cluster.jsonl");
    let config = format!(
        "[store]\nurl = \"{}\"\n\
         [backend]\nkind = \"simulated\"\nledger = \"{}\"\nstart_delay = \"0s\"\n\
         nodes = [{{ prefix = \"n\", count = 8, cpu = \"8\", memory = \"32g\" }}]\n\
         [scheduler]\ninterval_ms = 200\n\
         [ha]\nlease_ttl_ms = {TTL_MS}\nrenew_interval_ms = 500\n",
        db.url(),
        ledger.display()
    );
    // The first server makes the admin token; the others share its database.
    let first = Server::start(&config);
    let token = first.token();
    let mut servers = vec![first, Server::start(&config), Server::start(&config)];
    // reqwest's TLS takes rustls' process-wide provider (ring): before any client is built.
    sluice_backend::install_crypto_provider();
    let http = Http {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        client: reqwest::Client::new(),
        token: token.clone(),
    };
    let (lead, mut epoch) = wait_leader(&http, &servers, 0, 20);

    // Submit -> admit latency through the leader and through a follower.
    let follower = (lead + 1) % servers.len();
    let mut via_leader = Vec::new();
    let mut via_follower = Vec::new();
    for i in 0..10 {
        via_leader.push(probe(
            &http,
            &servers[lead].url(),
            &format!("lat-l-{i}"),
            20,
        ));
        via_follower.push(probe(
            &http,
            &servers[follower].url(),
            &format!("lat-f-{i}"),
            20,
        ));
    }

    // A steady load over all three servers.
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for (k, url) in urls.iter().enumerate() {
        let (url, token, stop, acked, errors) = (
            url.clone(),
            token.clone(),
            stop.clone(),
            acked.clone(),
            errors.clone(),
        );
        load.push(rt.spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = Some(job_yaml(&format!("load-{k}-{n}")));
                match Http::call(&client, &token, "POST", &format!("{url}/v1/jobs"), body).await {
                    Ok((201, v)) => acked
                        .lock()
                        .unwrap()
                        .push(v["id"].as_str().unwrap().to_string()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }));
    }

    // Five kills of the leader at random moments; each time a new leader must admit within
    // TTL + 2 s.
    let mut seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    let mut failovers = Vec::new();
    let mut probes = 0;
    for round in 0..5 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(800 + (seed >> 33) % 1_500));
        let (lead, e) = wait_leader(&http, &servers, epoch - 1, 20);
        epoch = e;
        servers[lead].kill9();
        let killed = Instant::now();
        let other = (lead + 1) % servers.len();
        probes += 1;
        let took = probe(
            &http,
            &servers[other].url(),
            &format!("failover-{round}"),
            30,
        );
        let (new_lead, new_epoch) = wait_leader(&http, &servers, epoch, 10);
        assert_ne!(new_lead, lead);
        epoch = new_epoch;
        let failover = killed.elapsed().min(took);
        assert!(
            failover <= Duration::from_millis(TTL_MS + 2_000),
            "round {round}: the new leader admitted {failover:?} after the kill; logs:\n{}",
            tails(&servers)
        );
        failovers.push(failover);
        servers[lead].spawn();
    }

    // A paused leader (SIGSTOP past its lease, then SIGCONT) writes nothing after losing it.
    let (paused, old_epoch) = wait_leader(&http, &servers, epoch - 1, 20);
    let paused_pid = servers[paused].pid().unwrap() as u32;
    servers[paused].signal(nix::sys::signal::Signal::SIGSTOP);
    let (_, new_epoch) = {
        let others: Vec<&Server> = servers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != paused)
            .map(|(_, s)| s)
            .collect();
        let until = Instant::now() + Duration::from_millis(TTL_MS + 10_000);
        loop {
            let found = others.iter().find_map(|s| {
                let (_, v) = http.get(&format!("{}/readyz", s.url())).ok()?;
                let e = v["epoch"].as_i64().unwrap_or(0);
                (v["role"] == "leader" && e > old_epoch).then_some(((), e))
            });
            if let Some(f) = found {
                break f;
            }
            assert!(
                Instant::now() < until,
                "nobody took over from the paused leader"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let taken_over_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::thread::sleep(Duration::from_millis(1_000));
    servers[paused].signal(nix::sys::signal::Signal::SIGCONT);
    std::thread::sleep(Duration::from_millis(2_500));
    let (_, v) = http
        .get(&format!("{}/readyz", servers[paused].url()))
        .unwrap();
    assert_eq!(v["role"], "follower", "the resumed replica follows: {v}");
    assert!(new_epoch > old_epoch);

    // A cancel made on a follower stops a running job: the leader stops the run.
    let (lead, _) = wait_leader(&http, &servers, 0, 20);
    let follower = (lead + 1) % servers.len();
    let base = servers[follower].url();
    let (code, v) = http
        .post(
            &format!("{base}/v1/jobs"),
            Some(job_yaml("long").replace("\"1s\"", "\"10m\"")),
        )
        .unwrap();
    assert_eq!(code, 201, "{v}");
    let long = v["id"].as_str().unwrap().to_string();
    let until = Instant::now() + Duration::from_secs(20);
    while http.state(&base, &long).as_deref() != Some("running") {
        assert!(Instant::now() < until, "the long job never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A follower says why a queued job waits, as the leader's cycle found: a job of another
    // namespace that fits the empty cluster but not beside the long one.
    let big = "name: big\nnamespace: other\nlabels:\n  sluice.io/sim-duration: \"1s\"\nspark:\n  \
               type: Scala\n  mainClass: Main\n  mainApplicationFile: /a.jar\n  driver:\n    \
               cores: 1\n    memory: 512m\n  executor:\n    cores: 4\n    instances: 15\n    \
               memory: 512m\n";
    let (code, v) = http
        .post(&format!("{base}/v1/jobs"), Some(big.to_string()))
        .unwrap();
    assert_eq!(code, 201, "{v}");
    let big = v["id"].as_str().unwrap().to_string();
    let until = Instant::now() + Duration::from_secs(20);
    let wait = loop {
        let (_, v) = http.get(&format!("{base}/v1/jobs/{big}")).unwrap();
        assert_eq!(v["state"], "queued", "{v}");
        if !v["wait"].is_null() {
            break v["wait"].clone();
        }
        assert!(
            Instant::now() < until,
            "the follower never said why {big} waits: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(wait["reason_kind"], "no-room", "{wait}");
    assert_eq!(wait["position"], 1, "{wait}");
    let (code, v) = http
        .post(&format!("{base}/v1/jobs/{big}/cancel"), None)
        .unwrap();
    assert_eq!((code, v["state"].as_str()), (200, Some("cancelled")), "{v}");

    let (code, v) = http
        .post(&format!("{base}/v1/jobs/{long}/cancel"), None)
        .unwrap();
    assert_eq!((code, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    let cancels: Vec<String> = read_ledger(&ledger)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Entry::Cancel { job, .. } => Some(job),
            _ => None,
        })
        .collect();
    assert_eq!(
        cancels,
        vec![long.clone()],
        "the run was stopped in the cluster"
    );

    // Drain: stop the load, wait for every acknowledged job to finish.
    stop.store(true, Ordering::Relaxed);
    for t in load {
        rt.block_on(t).unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let errors = errors.load(Ordering::Relaxed);
    assert!(
        acked.len() >= 40,
        "only {} submits acknowledged",
        acked.len()
    );
    let until = Instant::now() + Duration::from_secs(90);
    let states = loop {
        let states: BTreeMap<String, i64> = db
            .rows("SELECT id, CASE WHEN state = 'succeeded' THEN 1 ELSE 0 END FROM jobs")
            .into_iter()
            .collect();
        if acked.iter().all(|id| states.get(id) == Some(&1)) {
            break states;
        }
        assert!(
            Instant::now() < until,
            "acknowledged jobs not all succeeded: {:?}",
            acked
                .iter()
                .filter(|id| states.get(*id) != Some(&1))
                .take(10)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Every acknowledged submission exists once; nothing else but probes and submits whose
    // answer was lost in a kill.
    // (Less the cancelled long and big jobs.)
    let extra = states.len() as i64 - acked.len() as i64 - 20 - probes - 2;
    assert!(
        (0..=errors as i64).contains(&extra),
        "{} jobs stored for {} acknowledged, 20 + {probes} probes, {errors} failed submits",
        states.len(),
        acked.len()
    );
    // No job admitted twice.
    let twice = db.rows(
        "SELECT job_id, COUNT(*) FROM job_events WHERE from_state = 'queued' \
         AND to_state = 'admitted' GROUP BY job_id HAVING COUNT(*) > 1",
    );
    if let Some((id, _)) = twice.first() {
        let timeline = db.rows(&format!(
            "SELECT COALESCE(from_state, '-') || ' -> ' || to_state || ' at ' || at || ': ' || message, seq \
             FROM job_events WHERE job_id = '{id}' ORDER BY seq"
        ));
        panic!(
            "admitted twice: {twice:?}; timeline of {id}: {timeline:#?}; ledger: {:?}",
            read_ledger(&ledger)
                .unwrap()
                .iter()
                .filter(|e| format!("{e:?}").contains(id.as_str()))
                .collect::<Vec<_>>()
        );
    }
    // The cluster's own record: one submission per job, no refusal (an admission onto room that
    // was taken), nothing submitted by the paused replica after the takeover.
    let entries = read_ledger(&ledger).unwrap();
    let mut submitted: BTreeMap<String, u32> = BTreeMap::new();
    let mut refused = Vec::new();
    let mut by_paused_late = Vec::new();
    for e in &entries {
        match e {
            Entry::Submit { job, by, run, .. } => {
                *submitted.entry(job.clone()).or_default() += 1;
                if *by == paused_pid && run.submitted_ms > taken_over_ms {
                    by_paused_late.push(job.clone());
                }
            }
            Entry::Refuse { job, reason, .. } => refused.push(format!("{job}: {reason}")),
            Entry::Cancel { .. } => {}
        }
    }
    let doubled: Vec<_> = submitted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "submitted twice: {doubled:?}");
    assert!(refused.is_empty(), "over-committed admissions: {refused:?}");
    assert!(
        by_paused_late.is_empty(),
        "the paused leader submitted after losing its lease: {by_paused_late:?}"
    );
    let ids: BTreeSet<&String> = acked.iter().collect();
    assert!(ids.iter().all(|id| submitted.contains_key(*id)));

    let fo = failovers.clone();
    eprintln!(
        "HA figures: failover (kill -> first admission by the new leader) median {:.0} ms, \
         max {:.0} ms over {} kills (lease TTL {TTL_MS} ms); submit->admitted p50 via the \
         leader {:.0} ms, via a follower {:.0} ms; {} jobs acknowledged, {errors} submits failed \
         during kills",
        ms(median(fo.clone())),
        ms(*fo.iter().max().unwrap()),
        fo.len(),
        ms(median(via_leader)),
        ms(median(via_follower)),
        acked.len()
    );
    drop(servers);
}

/// SQLite serves one server: a second server on the same database file refuses to start and
/// says why, and the first goes on serving.
#[test]
fn a_second_server_on_one_sqlite_file_refuses_to_start() {
    let first = Server::start("");
    let port = common::free_port();
    let text = std::fs::read_to_string(&first.config).unwrap().replace(
        &format!("127.0.0.1:{}", first.port),
        &format!("127.0.0.1:{port}"),
    );
    let second = first.dir.path().join("second.toml");
    std::fs::write(&second, text).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["server", "--config"])
        .arg(&second)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another sluice server already uses the SQLite database")
            && err.contains("PostgreSQL"),
        "{err}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", first.port)).is_ok());
}
