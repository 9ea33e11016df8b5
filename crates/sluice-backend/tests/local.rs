//! The local backend against real processes, in temporary directories, with bounded waits.
//! Every process group a test starts is killed when the test ends, pass or fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reaper;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reaper::Reaper;
use sluice_backend::local::{LocalBackend, LocalConfig, find_spark_home};
use sluice_backend::{Backend, BackendError, RunRef, RunStatus, SubmitRequest};
use sluice_core::document::parse_job;
use sluice_core::job::{Demand, Resources};
use sluice_core::sizing::job_demand;
use sluice_core::spec::{CommandSpec, Job, JobKind, Levels, ParseOptions, Text};

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn config(dir: &Path, cores_milli: u64, memory_mib: u64) -> LocalConfig {
    LocalConfig {
        cores_milli,
        memory_mib,
        data_dir: dir.to_path_buf(),
        spark_home: None,
        python: None,
        dbt: None,
        image_spark_home: "/opt/spark".into(),
        kill_grace: Duration::from_secs(2),
        run_as: None,
    }
}

fn command_job(name: &str, argv: &[&str], cpu: &str, memory: &str) -> Job {
    Job {
        namespace: "default".into(),
        name: name.into(),
        level: "normal".into(),
        labels: BTreeMap::new(),
        max_runtime_secs: None,
        kind: JobKind::Command(CommandSpec {
            argv: argv.iter().map(|a| Text((*a).into())).collect(),
            env: BTreeMap::from([("GREETING".into(), Text("hej".into()))]),
            cpu: Some(Text(cpu.into())),
            memory: Some(Text(memory.into())),
            working_dir: None,
            secret_env: BTreeMap::new(),
        }),
    }
}

fn request(job_id: &str, attempt: u32, job: Job) -> SubmitRequest {
    let demand = job_demand(&job).expect("demand");
    SubmitRequest {
        job_id: job_id.into(),
        attempt,
        job,
        demand,
    }
}

fn run(job_id: &str, attempt: u32) -> RunRef {
    RunRef {
        job_id: job_id.into(),
        attempt,
        backend_ref: None,
    }
}

/// Polls the status until it is no longer Pending/Running, at most `limit`.
async fn wait_end(b: &LocalBackend, r: &RunRef, limit: Duration) -> RunStatus {
    let deadline = Instant::now() + limit;
    loop {
        let s = b.status(r).await.expect("status");
        if !matches!(s, RunStatus::Running | RunStatus::Pending) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "run {r:?} still {s:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all_logs(b: &LocalBackend, r: &RunRef) -> (String, bool) {
    let mut out = String::new();
    let mut offset = 0;
    loop {
        let chunk = b.logs(r, offset, 7).await.expect("logs");
        out.push_str(&chunk.data);
        if chunk.next_offset == offset {
            return (out, chunk.complete);
        }
        offset = chunk.next_offset;
    }
}

async fn free(b: &LocalBackend) -> Resources {
    b.capacity().await.expect("capacity").snapshot.total_free()
}

#[tokio::test]
async fn command_succeeds_with_its_output_env_and_run_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let job = command_job(
        "ok",
        &[
            "sh",
            "-c",
            "echo out $GREETING; echo err >&2; pwd; echo ünïcødé",
        ],
        "1",
        "512m",
    );
    let s = b.submit(&request("j1", 1, job)).await.unwrap();
    reaper.hold(&s.backend_ref);
    assert!(!s.already_existed);
    let r = run("j1", 1);
    assert_eq!(
        wait_end(&b, &r, Duration::from_secs(10)).await,
        RunStatus::Succeeded
    );
    let (log, complete) = all_logs(&b, &r).await;
    assert!(complete);
    assert!(log.contains("out hej"), "{log}");
    assert!(log.contains("err"), "{log}");
    assert!(log.contains("ünïcødé"), "{log}");
    let run_dir = std::fs::canonicalize(b.run_dir("j1", 1)).unwrap();
    assert!(log.contains(&run_dir.display().to_string()), "{log}");
    // Past the end: nothing more, complete.
    let tail = b.logs(&r, 10_000, 100).await.unwrap();
    assert!(tail.data.is_empty() && tail.complete);
}

#[tokio::test]
async fn command_fails_with_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let s = b
        .submit(&request(
            "j3",
            1,
            command_job("bad", &["sh", "-c", "echo before; exit 3"], "1", "256m"),
        ))
        .await
        .unwrap();
    reaper.hold(&s.backend_ref);
    let r = run("j3", 1);
    match wait_end(&b, &r, Duration::from_secs(10)).await {
        RunStatus::Failed { exit_code, message } => {
            assert_eq!(exit_code, Some(3));
            assert_eq!(message, "exit code 3");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(all_logs(&b, &r).await.0.contains("before"));
    // A missing program is the shell's 127.
    let s = b
        .submit(&request(
            "j4",
            1,
            command_job("nope", &["/no/such/program"], "1", "256m"),
        ))
        .await
        .unwrap();
    reaper.hold(&s.backend_ref);
    match wait_end(&b, &run("j4", 1), Duration::from_secs(10)).await {
        RunStatus::Failed { exit_code, .. } => assert_eq!(exit_code, Some(127)),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_runs_are_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    for r in [run("nope", 1), run("../x", 1), run("", 1)] {
        assert!(matches!(
            b.status(&r).await,
            Err(BackendError::NotFound { .. })
        ));
        assert!(matches!(
            b.logs(&r, 0, 10).await,
            Err(BackendError::NotFound { .. })
        ));
    }
    let bad = request("../escape", 1, command_job("x", &["true"], "1", "256m"));
    assert!(matches!(
        b.submit(&bad).await,
        Err(BackendError::Rejected(_))
    ));
}

#[tokio::test]
async fn cancel_kills_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let job = command_job(
        "long",
        &["sh", "-c", "sleep 60 & echo child=$!; sleep 60; wait"],
        "2",
        "2g",
    );
    let s = b.submit(&request("c1", 1, job)).await.unwrap();
    reaper.hold(&s.backend_ref);
    let pid: i32 = s.backend_ref.parse().unwrap();
    let r = run("c1", 1);
    assert_eq!(b.status(&r).await.unwrap(), RunStatus::Running);
    assert_eq!(free(&b).await, Resources::new(2000, 6144));
    // The grandchild's pid, from the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    let child: i32 = loop {
        let log = all_logs(&b, &r).await.0;
        if let Some(p) = log.lines().find_map(|l| l.strip_prefix("child=")) {
            break p.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no child pid in {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(alive(pid) && alive(child));
    let started = Instant::now();
    b.cancel(&r).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(pid) || alive(child)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the run's process survived the cancel");
    assert!(!alive(child), "a child of the run survived the cancel");
    assert!(matches!(
        b.status(&r).await.unwrap(),
        RunStatus::Failed { .. }
    ));
    assert!(b.live_runs().is_empty());
    assert_eq!(free(&b).await, Resources::new(4000, 8192));
    // Cancelling an ended run is fine.
    b.cancel(&r).await.unwrap();
    let (_, complete) = all_logs(&b, &r).await;
    assert!(complete);
}

#[tokio::test]
async fn cancel_escalates_to_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 4000, 8192);
    cfg.kill_grace = Duration::from_millis(500);
    let b = LocalBackend::new(cfg).await.unwrap();
    let mut reaper = Reaper::new(tmp.path());
    // The command ignores SIGTERM (and so does the sleep it runs, which inherits that).
    let job = command_job(
        "stubborn",
        &["sh", "-c", "trap '' TERM; echo ready; sleep 60"],
        "1",
        "256m",
    );
    let s = b.submit(&request("k1", 1, job)).await.unwrap();
    reaper.hold(&s.backend_ref);
    let pid: i32 = s.backend_ref.parse().unwrap();
    let r = run("k1", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all_logs(&b, &r).await.0.contains("ready") {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.cancel(&r).await.unwrap();
    assert!(!alive(pid));
    match b.status(&r).await.unwrap() {
        RunStatus::Failed { message, .. } => assert!(message.contains("SIGKILL"), "{message}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn capacity_is_held_while_running_and_given_back() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let report = b.capacity().await.unwrap();
    assert!(report.snapshot.available);
    assert_eq!(report.snapshot.nodes.len(), 1);
    assert_eq!(report.snapshot.nodes[0].name, "local");
    assert_eq!(report.snapshot.nodes[0].pods, None);
    assert_eq!(
        report.snapshot.total_allocatable(),
        Resources::new(4000, 8192)
    );
    assert_eq!(report.snapshot.total_free(), Resources::new(4000, 8192));
    assert!(report.visible.is_empty());

    let s = b
        .submit(&request(
            "cap",
            1,
            command_job("cap", &["sleep", "1"], "1500m", "3g"),
        ))
        .await
        .unwrap();
    reaper.hold(&s.backend_ref);
    let report = b.capacity().await.unwrap();
    assert_eq!(report.snapshot.total_free(), Resources::new(2500, 5120));
    assert_eq!(
        report.snapshot.total_allocatable(),
        Resources::new(4000, 8192)
    );
    assert!(report.visible.contains("cap"));
    assert_eq!(b.live_runs(), vec![("cap".to_string(), 1)]);

    // The waiter sees the end: the room comes back without anyone asking for the status.
    let deadline = Instant::now() + Duration::from_secs(10);
    while free(&b).await != Resources::new(4000, 8192) {
        assert!(Instant::now() < deadline, "capacity not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b.capacity().await.unwrap().visible.is_empty());
    assert_eq!(
        b.status(&run("cap", 1)).await.unwrap(),
        RunStatus::Succeeded
    );
}

#[tokio::test]
async fn submitting_the_same_attempt_twice_starts_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let req = request(
        "twice",
        1,
        command_job("twice", &["sh", "-c", "echo started; sleep 1"], "1", "1g"),
    );
    let first = b.submit(&req).await.unwrap();
    reaper.hold(&first.backend_ref);
    let second = b.submit(&req).await.unwrap();
    reaper.hold(&second.backend_ref);
    assert!(!first.already_existed);
    assert!(second.already_existed);
    assert_eq!(first.backend_ref, second.backend_ref);
    assert_eq!(b.live_runs().len(), 1);
    assert_eq!(free(&b).await, Resources::new(3000, 7168));
    let r = run("twice", 1);
    assert_eq!(
        wait_end(&b, &r, Duration::from_secs(10)).await,
        RunStatus::Succeeded
    );
    let log = all_logs(&b, &r).await.0;
    assert_eq!(log.matches("started").count(), 1, "{log}");
    // Still the same run after it ended.
    let third = b.submit(&req).await.unwrap();
    assert!(third.already_existed);
    // A new attempt is a new run.
    let other = b
        .submit(&request("twice", 2, req.job.clone()))
        .await
        .unwrap();
    reaper.hold(&other.backend_ref);
    assert!(!other.already_existed);
    assert_ne!(other.backend_ref, first.backend_ref);
}

#[tokio::test]
async fn no_room_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 2000, 4096))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    // Larger than the whole budget.
    let huge = request("huge", 1, command_job("huge", &["true"], "3", "1g"));
    assert!(matches!(
        b.submit(&huge).await,
        Err(BackendError::NoRoom(_))
    ));
    assert!(!b.run_dir("huge", 1).exists(), "nothing is left behind");
    // Fits alone, but not next to a running job.
    let s = b
        .submit(&request(
            "a",
            1,
            command_job("a", &["sleep", "30"], "1500m", "1g"),
        ))
        .await
        .unwrap();
    reaper.hold(&s.backend_ref);
    let second = request("b", 1, command_job("b", &["true"], "1", "1g"));
    match b.submit(&second).await {
        Err(BackendError::NoRoom(msg)) => assert!(msg.contains("needs"), "{msg}"),
        other => panic!("expected NoRoom, got {other:?}"),
    }
    b.cancel(&run("a", 1)).await.unwrap();
    let s = b.submit(&second).await.unwrap();
    reaper.hold(&s.backend_ref);
    assert_eq!(
        wait_end(&b, &run("b", 1), Duration::from_secs(10)).await,
        RunStatus::Succeeded
    );
}

#[tokio::test]
async fn a_restarted_backend_reattaches_live_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let req = request(
        "re",
        1,
        command_job("re", &["sh", "-c", "sleep 3; echo done"], "1", "2g"),
    );
    {
        let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
            .await
            .unwrap();
        let s = b.submit(&req).await.unwrap();
        reaper.hold(&s.backend_ref);
        // The server "dies": the backend is dropped, the run keeps going.
    }
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    assert_eq!(b.live_runs(), vec![("re".to_string(), 1)]);
    let report = b.capacity().await.unwrap();
    assert_eq!(report.snapshot.total_free(), Resources::new(3000, 6144));
    assert!(report.visible.contains("re"));
    let r = run("re", 1);
    assert_eq!(b.status(&r).await.unwrap(), RunStatus::Running);
    // Submitting the attempt again (the server did not record it) starts nothing.
    assert!(b.submit(&req).await.unwrap().already_existed);
    assert_eq!(
        wait_end(&b, &r, Duration::from_secs(15)).await,
        RunStatus::Succeeded
    );
    assert!(all_logs(&b, &r).await.0.contains("done"));
    assert!(b.live_runs().is_empty());
    assert_eq!(free(&b).await, Resources::new(4000, 8192));
}

#[tokio::test]
async fn a_run_killed_while_sluice_was_down_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let req = request("gone", 1, command_job("gone", &["sleep", "60"], "1", "1g"));
    let pid: i32 = {
        let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
            .await
            .unwrap();
        let s = b.submit(&req).await.unwrap();
        reaper.hold(&s.backend_ref);
        s.backend_ref.parse().unwrap()
    };
    killpg(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A run that ended normally while sluice was down is simply finished.
    let ok = request("fine", 1, command_job("fine", &["true"], "1", "1g"));
    {
        let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
            .await
            .unwrap();
        let s = b.submit(&ok).await.unwrap();
        reaper.hold(&s.backend_ref);
        let p: i32 = s.backend_ref.parse().unwrap();
        // Drop the backend right away: its waiter never records anything.
        drop(b);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(p) {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let b = LocalBackend::new(config(tmp.path(), 4000, 8192))
        .await
        .unwrap();
    assert!(b.live_runs().is_empty());
    assert_eq!(free(&b).await, Resources::new(4000, 8192));
    match b.status(&run("gone", 1)).await.unwrap() {
        RunStatus::Lost { message } => assert!(message.contains("no exit code"), "{message}"),
        other => panic!("expected Lost, got {other:?}"),
    }
    assert_eq!(
        b.status(&run("fine", 1)).await.unwrap(),
        RunStatus::Succeeded
    );
    let (_, complete) = all_logs(&b, &run("gone", 1)).await;
    assert!(complete);
}

fn test_spark_home() -> Option<PathBuf> {
    let candidate = match std::env::var_os("SLUICE_SPARK_HOME") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
    };
    find_spark_home(Some(&candidate))
}

#[tokio::test]
async fn spark_pi_runs_in_local_mode() {
    let Some(home) = test_spark_home() else {
        eprintln!(
            "SKIPPED spark_pi_runs_in_local_mode: no spark-submit (run scripts/ensure-pyspark.sh \
             or set SLUICE_SPARK_HOME)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 4000, 8192);
    cfg.spark_home = Some(home);
    let b = LocalBackend::new(cfg).await.unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let levels = Levels::default();
    // The application path is the one of the Spark images; it is mapped to the local Spark home.
    let job = parse_job(
        "name: pi\n\
         spark:\n\
         \x20 mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py\n\
         \x20 arguments: [2]\n\
         \x20 driver: {memory: 512m}\n\
         \x20 executor: {instances: 1, cores: 1, memory: 512m}\n",
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap();
    let req = request("pi", 1, job);
    let total: Resources = Demand::total(&req.demand);
    let s = b.submit(&req).await.unwrap();
    reaper.hold(&s.backend_ref);
    assert_eq!(free(&b).await, Resources::new(4000, 8192).minus(&total));
    let r = run("pi", 1);
    let status = wait_end(&b, &r, Duration::from_secs(120)).await;
    let (log, complete) = all_logs(&b, &r).await;
    assert_eq!(status, RunStatus::Succeeded, "{log}");
    assert!(complete);
    assert!(log.contains("Pi is roughly"), "{log}");
}

/// `backend.run_as`: runs start as a dedicated unprivileged user (here `nobody`), with its
/// user and group ids only, `HOME` in their run directory, which belongs to that user. Needs
/// the tests to run as root (CI does); elsewhere it says so and checks only the lookup.
#[tokio::test]
async fn runs_start_as_the_configured_unprivileged_user() {
    use sluice_backend::local::RunAs;
    let err = RunAs::lookup("backend.run_as", "no-such-user-sluice").unwrap_err();
    assert!(
        err.to_string().contains("backend.run_as") && err.to_string().contains("no such user"),
        "{err}"
    );
    if !nix::unistd::geteuid().is_root() {
        let err = RunAs::lookup("backend.run_as", "nobody").unwrap_err();
        assert!(err.to_string().contains("not root"), "{err}");
        eprintln!("skipped the run itself: the tests do not run as root");
        return;
    }
    let nobody = RunAs::lookup("backend.run_as", "nobody").unwrap();
    assert_eq!(nobody.uid, 65534);
    let tmp = tempfile::tempdir().unwrap();
    // The run's user must be able to reach its run directory through the data directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut cfg = config(tmp.path(), 4000, 8192);
    cfg.run_as = Some(nobody.clone());
    let b = LocalBackend::new(cfg).await.unwrap();
    let mut reaper = Reaper::new(tmp.path());
    let job = command_job(
        "as-nobody",
        &[
            "sh",
            "-c",
            "echo uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME; touch \"$HOME/made\"",
        ],
        "1",
        "256m",
    );
    let s = b.submit(&request("u1", 1, job)).await.unwrap();
    reaper.hold(&s.backend_ref);
    let r = run("u1", 1);
    assert_eq!(
        wait_end(&b, &r, Duration::from_secs(10)).await,
        RunStatus::Succeeded
    );
    let (log, _) = all_logs(&b, &r).await;
    let gid = nobody.gid;
    assert!(
        log.contains(&format!("uid=65534 gid={gid} groups={gid} ")),
        "{log}"
    );
    let run_dir = b.run_dir("u1", 1);
    assert!(
        log.contains(&format!("home={}", run_dir.display())),
        "{log}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(run_dir.join("made")).unwrap().uid(),
        65534
    );
}

#[tokio::test]
async fn a_command_run_reports_its_peak_memory_and_cpu_time() {
    let tmp = tempfile::tempdir().unwrap();
    let b = LocalBackend::new(config(tmp.path(), 4000, 4096))
        .await
        .unwrap();
    let mut reaper = Reaper::new(tmp.path());
    // A child of the command (python, waited for by sh) holds 150 MiB and spins for 0.4 s of
    // CPU: the wrapper's usage includes its descendants'.
    let script = "import time\nx = bytearray(150 * 1024 * 1024)\nfor i in range(0, len(x), 4096): x[i] = 1\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n";
    let job = command_job(
        "hungry",
        &["sh", "-c", "python3 -c \"$0\"; true", script],
        "1",
        "512m",
    );
    let sub = b.submit(&request("u1", 1, job)).await.unwrap();
    reaper.hold(&sub.backend_ref);
    let r = run("u1", 1);
    assert_eq!(
        wait_end(&b, &r, Duration::from_secs(30)).await,
        RunStatus::Succeeded
    );
    let m = b.usage(&r, 0).await.unwrap().expect("measured");
    assert_eq!(m.source, "process");
    let p = m.process.expect("process usage");
    assert!(
        p.peak_rss_bytes >= 150 << 20,
        "peak RSS {} below the 150 MiB it touched",
        p.peak_rss_bytes
    );
    assert!(p.peak_rss_bytes < 512 << 20, "{}", p.peak_rss_bytes);
    assert!(p.cpu_seconds >= 0.4, "cpu {}", p.cpu_seconds);
    assert!(m.driver.is_none(), "no event log for a command");
    // A run the backend never had: not found.
    assert!(matches!(
        b.usage(&run("nope", 1), 0).await,
        Err(BackendError::NotFound { .. })
    ));
}
