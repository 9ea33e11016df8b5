//! End to end on a real Spark standalone cluster: a master (with the REST submission server)
//! and one worker of 2 cores / 2 GiB started from pip's pyspark with `spark-class`, on
//! 127.0.0.1 with free ports and temporary directories, and the `sluice` binary in front of it.
//!
//! One test, in phases that share the cluster (starting Spark JVMs dominates the time):
//! 1. client mode: a job whose executors need more memory than any worker has is refused at
//!    submit; three jobs that each need the whole worker (examples/standalone-pi.yaml) are
//!    submitted at once: each starts only after the one before has finished, no application
//!    ever sits WAITING in the master (a watcher polls `/json/` every 100 ms), all succeed, and
//!    the Spark application id is stored on each job;
//! 2. meanwhile the master is killed while the second job runs and the third is queued: the
//!    queued job waits with "backend unavailable", nothing fails, the running one finishes
//!    without the master; the master is started again, the worker re-registers and the queue
//!    drains;
//! 3. cluster mode (REST API): a Python job is refused at submit; a JVM job (a small SparkPi
//!    compiled here with javac against pyspark's jars, since pip's pyspark ships no examples
//!    jar) runs on the worker and succeeds, its output read back through the worker, and its
//!    usage is read from the event log its driver wrote into the shared `event_log_dir`;
//!    another is cancelled through the REST kill endpoint, and its usage recorded as cancelled;
//! 4. client mode again: the worker is killed while an application runs: the loss shows in
//!    the job's timeline, a new worker joins, and Spark finishes the job.
//!
//! Every process started here (master, worker, sluice servers, drivers) is killed by PID or
//! process group when the test ends, pass or fail.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, free_port, pyspark};
use serde_json::Value;

/// GET a URL, `None` on any failure (a master that is down, say).
fn http_get(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    // reqwest's TLS takes rustls' process-wide provider (ring).
    sluice_backend::install_crypto_provider();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let resp = client.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.text().await.ok()
    })
}

/// A Spark standalone master and one worker on 127.0.0.1, stopped when dropped.
struct SparkCluster {
    home: PathBuf,
    dir: tempfile::TempDir,
    master_port: u16,
    web_port: u16,
    rest_port: u16,
    worker_web_port: u16,
    master: Option<Child>,
    worker: Option<Child>,
}

impl SparkCluster {
    fn start(home: &Path) -> SparkCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["conf", "logs", "work", "local"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let mut c = SparkCluster {
            home: home.to_path_buf(),
            dir,
            master_port: free_port(),
            web_port: free_port(),
            rest_port: free_port(),
            worker_web_port: free_port(),
            master: None,
            worker: None,
        };
        c.start_master();
        c.start_worker();
        c.wait_workers(1, 90);
        c
    }

    fn command(&self, log: &str) -> Command {
        let mut cmd = Command::new(self.home.join("bin/spark-class"));
        let out = std::fs::File::create(self.dir.path().join(log)).expect("log file");
        let err = out.try_clone().expect("clone log");
        cmd.env("SPARK_HOME", &self.home)
            .env("SPARK_CONF_DIR", self.dir.path().join("conf"))
            .env("SPARK_LOG_DIR", self.dir.path().join("logs"))
            .env("SPARK_LOCAL_DIRS", self.dir.path().join("local"))
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("SPARK_DAEMON_MEMORY", "512m")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        cmd
    }

    fn start_master(&mut self) {
        let mut cmd = self.command("master.log");
        cmd.env(
            "SPARK_MASTER_OPTS",
            format!(
                "-Dspark.master.rest.enabled=true -Dspark.master.rest.port={}",
                self.rest_port
            ),
        )
        .args([
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            &self.master_port.to_string(),
            "--webui-port",
            &self.web_port.to_string(),
        ]);
        self.master = Some(cmd.spawn().expect("start the Spark master"));
    }

    fn start_worker(&mut self) {
        let mut cmd = self.command("worker.log");
        cmd.env("SPARK_WORKER_DIR", self.dir.path().join("work"))
            .args([
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "2g",
                "--webui-port",
                &self.worker_web_port.to_string(),
                &self.master_url(),
            ]);
        self.worker = Some(cmd.spawn().expect("start the Spark worker"));
    }

    /// SIGKILL the worker's process group (the worker and its executors) and reap it.
    fn kill_worker(&mut self) {
        if let Some(mut c) = self.worker.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.wait();
        }
    }

    /// SIGKILL the master's process group and reap it.
    fn kill_master(&mut self) {
        if let Some(mut c) = self.master.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.wait();
        }
    }

    fn master_url(&self) -> String {
        format!("spark://127.0.0.1:{}", self.master_port)
    }

    fn web_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }

    fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&http_get(&format!("{}/json/", self.web_url()))?).ok()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits until the master is up and lists `n` ALIVE workers.
    fn wait_workers(&self, n: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(j) = self.json()
                && j["status"] == "ALIVE"
                && j["aliveworkers"].as_u64() == Some(n)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Spark cluster did not come up with {n} worker(s) in {secs}s\nmaster:\n{}\nworker:\n{}",
                self.log("master.log"),
                self.log("worker.log")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// sluice's `[backend]` section for this cluster.
    fn backend_config(&self, python: &Path, deploy_mode: &str) -> String {
        format!(
            "[backend]\nkind = \"spark-standalone\"\nmaster_url = \"{}\"\nweb_url = \"{}\"\n\
             rest_url = \"{}\"\ndeploy_mode = \"{deploy_mode}\"\ndriver_host = \"127.0.0.1\"\n\
             memory = \"4g\"\nspark_home = \"{}\"\npython = \"{}\"\nkill_grace_secs = 5\n\
             [scheduler]\ninterval_ms = 200\n",
            self.master_url(),
            self.web_url(),
            self.rest_url(),
            self.home.display(),
            python.display()
        )
    }
}

impl Drop for SparkCluster {
    fn drop(&mut self) {
        for child in [self.worker.take(), self.master.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
        }
        // Executors and cluster-mode drivers are children of the worker, in its process
        // group; anything that escaped it is found by its working directory under ours.
        let ours = self.dir.path().to_path_buf();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|c| c.starts_with(&ours))
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// Polls the master's `/json/` every 100 ms and remembers every application state it saw.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(web_url: String) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>> = Arc::default();
        let (s, m) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(j) = http_get(&format!("{web_url}/json/"))
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                {
                    for app in j["activeapps"].as_array().into_iter().flatten() {
                        if let (Some(id), Some(st)) = (app["id"].as_str(), app["state"].as_str()) {
                            m.lock()
                                .expect("watcher lock")
                                .entry(id.to_string())
                                .or_default()
                                .insert(st.to_string());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Watcher {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> BTreeMap<String, BTreeSet<String>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.lock().expect("watcher lock").clone()
    }
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

fn time_of(job: &Value, field: &str) -> String {
    job[field].as_str().unwrap_or_default().to_string()
}

fn assert_succeeded_with_pi(server: &Server, id: &str, secs: u64) {
    let state = server.wait_for(id, &["succeeded", "failed", "cancelled"], secs);
    assert_eq!(
        state,
        "succeeded",
        "{}\nlog:\n{}",
        server.ok(&["describe", id]),
        server.ok(&["logs", id])
    );
    let log = server.ok(&["logs", id]);
    assert!(log.contains("Pi is roughly"), "log of {id}:\n{log}");
}

/// Compiles a small Java SparkPi against pyspark's jars into `dir/sluice-pi.jar`.
fn build_pi_jar(home: &Path, dir: &Path) -> PathBuf {
    let src = dir.join("SluicePi.java");
    std::fs::write(
        &src,
        r#"import java.util.ArrayList;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

public final class SluicePi {
  public static void main(String[] args) throws Exception {
    int slices = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    long sleepMs = args.length > 1 ? Long.parseLong(args[1]) : 0;
    long taskMs = args.length > 2 ? Long.parseLong(args[2]) : 0;
    int n = 100000 * slices;
    JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("SluicePi"));
    List<Integer> l = new ArrayList<>(n);
    for (int i = 0; i < n; i++) l.add(i);
    long count = sc.parallelize(l, slices).mapPartitions(it -> {
      Thread.sleep(taskMs);
      return it;
    }).filter(i -> {
      double x = Math.random() * 2 - 1, y = Math.random() * 2 - 1;
      return x * x + y * y <= 1;
    }).count();
    System.out.println("Pi is roughly " + 4.0 * count / n);
    Thread.sleep(sleepMs);
    sc.stop();
  }
}
"#,
    )
    .expect("write SluicePi.java");
    let classes = dir.join("classes");
    let out = Command::new("javac")
        .arg("-cp")
        .arg(format!("{}/jars/*", home.display()))
        .arg("-d")
        .arg(&classes)
        .arg(&src)
        .output()
        .expect("javac (a JDK 17) is needed for the cluster-mode test");
    assert!(
        out.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jar = dir.join("sluice-pi.jar");
    let out = Command::new("jar")
        .arg("cf")
        .arg(&jar)
        .arg("-C")
        .arg(&classes)
        .arg(".")
        .output()
        .expect("jar (from the JDK)");
    assert!(
        out.status.success(),
        "jar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    jar
}

/// The usage record of job `id`'s run (`sluice cost --by run -o json`), once written.
fn wait_usage(server: &Server, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = server.ok(&["cost", "--by", "run", "-o", "json"]);
        let runs: Vec<Value> = serde_json::from_str(&out).expect("cost -o json");
        if let Some(r) = runs.into_iter().find(|r| r["run"]["job_id"] == id) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no usage recorded for {id}: {out}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A cluster-mode run's usage is measured from the event log its driver wrote on the worker
/// into the shared directory `events`, under its application id `app`; what sluice stored is
/// what that log says.
fn assert_cluster_run_measured(server: &Server, id: &str, app: &str, events: &Path) {
    let r = wait_usage(server, id, 60);
    let m = &r["run"]["measured"];
    assert!(!m.is_null(), "not measured: {r}");
    assert_eq!(m["source"], "eventlog", "{r}");
    assert_eq!(m["complete"], true, "{r}");
    assert_eq!(r["run"]["outcome"], "succeeded", "{r}");
    let log = std::fs::read_dir(events)
        .expect("the events directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(app) || n == format!("eventlog_v2_{app}"))
        })
        .unwrap_or_else(|| {
            let names: Vec<_> = std::fs::read_dir(events)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            panic!("no event log of {app} in {}: {names:?}", events.display())
        });
    let u = sluice_backend::eventlog::read(&log).expect("parse the event log");
    assert!(u.complete, "{}: not complete", log.display());
    assert_eq!(u.app_id.as_deref(), Some(app));
    // One executor of the worker, which ran the job's 4 tasks.
    let workers: Vec<_> = u.workers().collect();
    assert_eq!(workers.len(), 1, "{:?}", u.executors.keys());
    let (_, x) = workers[0];
    assert_eq!(x.tasks, 4, "{x:?}");
    assert!(x.run_time_ms > 0 && x.cpu_time_ns > 0, "{x:?}");
    assert!(
        x.peaks.jvm_heap > 0,
        "executor heap peak: {x:?}\nstored: {r}"
    );
    assert_eq!(m["executors_used"], 1, "{r}");
    assert!(m["executor_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert!(m["task_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert!(m["task_cpu_seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(m["executor"]["heap"], x.peaks.jvm_heap, "{r}");
    let driver = u.executors.get("driver").map_or(0, |d| d.peaks.jvm_heap);
    assert_eq!(m["driver"]["heap"].as_u64().unwrap_or(0), driver, "{r}");
    let e = &r["efficiency"];
    let util = e["cpu_utilisation"].as_f64().unwrap();
    assert!(util > 0.0 && util <= 1.0, "{r}");
    let headroom = e["executor_headroom"].as_f64().unwrap();
    assert!(headroom > 0.0 && headroom < 1.0, "{r}");
    assert!(e["cost"].as_f64().unwrap() > 0.0, "{r}");
}

fn jvm_job(name: &str, jar: &Path, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"name: {name}
namespace: analytics
spark:
  type: Java
  mainApplicationFile: {}
  mainClass: SluicePi
  arguments: [{}]
  sparkConf: {{spark.ui.enabled: "false"}}
  driver: {{cores: 1, memory: 512m}}
  executor: {{cores: 1, instances: 1, memory: 512m}}
"#,
        jar.display(),
        args.join(", ")
    )
}

#[test]
fn standalone_cluster_end_to_end() {
    let t0 = Instant::now();
    let (home, python) = pyspark();
    let mut cluster = SparkCluster::start(&home);
    eprintln!("[{:?}] cluster up", t0.elapsed());

    // ---- 1. client mode: refusal, then two whole-worker jobs one after the other ----
    let server = Server::start(&cluster.backend_config(&python, "client"));
    let too_big = server.write(
        "big.yaml",
        &format!(
            "name: too-big\nspark:\n  type: Python\n  mainApplicationFile: {}/examples/src/main/python/pi.py\n  executor: {{cores: 1, instances: 1, memory: 3g}}\n",
            home.display()
        ),
    );
    let out = server.cli(&["submit", &too_big]);
    assert!(!out.status.success(), "a 3 GiB executor was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("can never run on the spark-standalone backend")
            && err.contains("3 GiB")
            && err.contains("2 GiB"),
        "{err}"
    );

    let watcher = Watcher::start(cluster.web_url());
    let a = server.submit(&example("standalone-pi.yaml"), &[]);
    let b = server.submit(&example("standalone-pi.yaml"), &[]);
    let c = server.submit(&example("standalone-pi.yaml"), &[]);
    // The demand is the standalone one: 2 executors of 1 core / 512 MiB, no driver on the cluster.
    let ja = server.job(&a);
    let pods = ja["demand"]["pods"].as_array().expect("pods");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["role"], "executor");
    assert_eq!(pods[0]["count"], 2);
    assert_eq!(pods[0]["cpu_milli"], 1000);
    assert_eq!(pods[0]["memory_mib"], 512);
    // While A holds the worker, B and C wait for room.
    server.wait_for(&a, &["running"], 120);
    let mut saw_b_wait = false;
    while server.state(&a) == "running" {
        if server.state(&b) == "queued" {
            let d = server.ok(&["describe", &b]);
            if d.contains("Waiting:") {
                assert!(d.contains("needs 2 cores"), "{d}");
                saw_b_wait = true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(saw_b_wait, "B was never seen waiting while A ran");
    assert_succeeded_with_pi(&server, &a, 120);
    eprintln!("[{:?}] A done", t0.elapsed());

    // ---- 2. the master goes away while B runs and C waits ----
    server.wait_for(&b, &["running"], 120);
    assert_eq!(server.state(&c), "queued");
    cluster.kill_master();
    // sluice notices, keeps C queued (reason: backend unavailable) and fails nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let desc = server.ok(&["describe", &c]);
        if desc.contains("backend unavailable") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "C never waited for the backend:\n{desc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // B's executors keep running on the worker; its driver finishes without the master.
    assert_succeeded_with_pi(&server, &b, 120);
    // Several cycles later C is still queued and nothing failed.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.state(&c), "queued");
    let failed = server.ok(&["get", "--state", "failed"]);
    assert!(!failed.contains(&c) && !failed.contains(&b), "{failed}");
    let health = http_get(&format!("{}/healthz", server.url())).unwrap_or_default();
    assert!(health.contains("\"backend_available\":false"), "{health}");
    eprintln!("[{:?}] master down; healthz: {health}", t0.elapsed());
    cluster.start_master();
    cluster.wait_workers(1, 120);
    eprintln!("[{:?}] master back", t0.elapsed());
    assert_succeeded_with_pi(&server, &c, 150);
    let seen = watcher.finish();

    let (ja, jb, jc) = (server.job(&a), server.job(&b), server.job(&c));
    for (first, then) in [(&ja, &jb), (&jb, &jc)] {
        assert!(
            time_of(then, "started_at") >= time_of(first, "finished_at"),
            "{} started at {} before {} finished at {}",
            then["id"],
            time_of(then, "started_at"),
            first["id"],
            time_of(first, "finished_at")
        );
    }
    // The Spark application ids are stored on the jobs, and they are the apps the master ran.
    let apps: Vec<String> = [&ja, &jb, &jc]
        .iter()
        .map(|j| j["backend_ref"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        apps.iter().all(|a| a.starts_with("app-")) && apps[0] != apps[1] && apps[1] != apps[2],
        "{apps:?}"
    );
    for app in &apps {
        let states = seen.get(app.as_str()).cloned().unwrap_or_default();
        assert!(
            states.contains("RUNNING"),
            "the watcher never saw {app} running: {seen:?}"
        );
    }
    for (app, states) in &seen {
        assert!(
            !states.contains("WAITING"),
            "application {app} sat WAITING for executors: {seen:?}"
        );
    }
    let described = server.ok(&["describe", &a]);
    assert!(
        described.contains(&format!("Spark application {}", apps[0])),
        "{described}"
    );
    let timeline = server.ok(&["describe", &c]);
    assert!(!timeline.contains("failed"), "{timeline}");
    drop(server);
    eprintln!("[{:?}] phases 1 and 2 done", t0.elapsed());

    // ---- 3. cluster mode through the REST API ----
    // With a shared event-log directory (here the worker is on this host, so a local one),
    // which the drivers on the worker write and sluice reads by application id.
    let events = cluster.dir.path().join("events");
    std::fs::create_dir_all(&events).expect("mkdir events");
    let server = Server::start(&cluster.backend_config(&python, "cluster").replacen(
        "[backend]\n",
        &format!("[backend]\nevent_log_dir = \"{}\"\n", events.display()),
        1,
    ));
    let py = server.write(
        "py.yaml",
        &format!(
            "name: py-in-cluster\nspark:\n  type: Python\n  mainApplicationFile: {}/examples/src/main/python/pi.py\n  executor: {{instances: 1}}\n",
            home.display()
        ),
    );
    let out = server.cli(&["submit", &py]);
    assert!(
        !out.status.success(),
        "a Python job was accepted in cluster mode"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("can never run")
            && err.contains("cluster deploy mode")
            && err.contains("deploy_mode"),
        "{err}"
    );
    let jar = build_pi_jar(&home, server.dir.path());
    // Each task lasts 0.7 s, so that the executor's memory is sampled during it (every
    // 500 ms, the polling interval sluice sets) and its peaks are in the task ends.
    let e = server.submit(
        &server.write("e.yaml", &jvm_job("jpi", &jar, &["4", "0", "700"])),
        &[],
    );
    assert_succeeded_with_pi(&server, &e, 150);
    let je = server.job(&e);
    assert!(
        je["backend_ref"]
            .as_str()
            .unwrap_or_default()
            .starts_with("app-"),
        "{je}"
    );
    let desc = server.ok(&["describe", &e]);
    assert!(
        desc.contains("driver-"),
        "the driver id is in the timeline:\n{desc}"
    );
    assert_cluster_run_measured(&server, &e, je["backend_ref"].as_str().unwrap(), &events);
    // A long one is cancelled through the REST kill endpoint; the master reports it killed.
    let f = server.submit(
        &server.write("f.yaml", &jvm_job("jpi-long", &jar, &["2", "600000"])),
        &[],
    );
    server.wait_for(&f, &["running"], 120);
    let driver = server.job(&f)["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|ev| {
            let m = ev["message"].as_str()?;
            let at = m.find("driver-")?;
            Some(
                m[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>(),
            )
        })
        .expect("driver id in the timeline");
    server.ok(&["cancel", &f]);
    assert_eq!(server.state(&f), "cancelled");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let killed = cluster.json().is_some_and(|j| {
            j["completeddrivers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|dr| dr["id"] == driver.as_str() && dr["state"] == "KILLED")
        });
        if killed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "driver {driver} was not killed: {:?}",
            cluster.json()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The cancelled run is recorded too, with what it held until it was killed.
    let rf = wait_usage(&server, &f, 60);
    assert_eq!(rf["run"]["outcome"], "cancelled", "{rf}");
    assert!(
        rf["efficiency"]["held_core_hours"].as_f64().unwrap() > 0.0,
        "{rf}"
    );
    drop(server);
    eprintln!("[{:?}] phase 3 done", t0.elapsed());

    // ---- 4. a worker is lost while an application runs (client mode) ----
    // The final state comes from Spark (here it gets executors on a new worker and succeeds);
    // what sluice saw is in the job's timeline.
    let server = Server::start(&cluster.backend_config(&python, "client"));
    let long = server.write(
        "long.yaml",
        &format!(
            "name: pi-long\nspark:\n  type: Python\n  mainApplicationFile: {}/examples/src/main/python/pi.py\n  arguments: [\"400\"]\n  driver: {{memory: 512m}}\n  executor: {{cores: 1, instances: 2, memory: 512m}}\n",
            home.display()
        ),
    );
    let g = server.submit(&long, &[]);
    server.wait_for(&g, &["running"], 120);
    // Wait until its application holds the worker's cores, then take the worker away.
    let app = server.job(&g)["backend_ref"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.json().is_some_and(|j| {
        j["activeapps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["id"] == app.as_str() && a["cores"].as_u64() == Some(2))
    }) {
        assert!(Instant::now() < deadline, "{app} never held 2 cores");
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.kill_worker();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = server.ok(&["describe", &g]);
        if d.contains("lost while application") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker loss never reached the timeline:\n{d}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    cluster.start_worker();
    assert_eq!(
        server.wait_for(&g, &["succeeded", "failed"], 240),
        "succeeded"
    );
    eprintln!("[{:?}] phase 4 done", t0.elapsed());
}
