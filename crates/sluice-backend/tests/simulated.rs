//! The simulated backend, driven by a manual clock: no process is started and no time passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sluice_backend::clock::ManualClock;
use sluice_backend::simulated::{
    DURATION_LABEL, DurationConfig, NodeGroup, OUTCOME_LABEL, SimulatedBackend, SimulatedConfig,
    USED_LABEL,
};
use sluice_backend::{Backend, BackendError, RunRef, RunStatus, SubmitRequest};
use sluice_core::document::parse_job;
use sluice_core::spec::{Job, Levels, ParseOptions, Text};

const T0: i64 = 1_800_000_000_000;

/// A Spark job of a driver and `executors` executors of 1 core each; labels as given.
fn spark_job(name: &str, executors: u32, labels: &[(&str, &str)]) -> Job {
    let mut text = format!(
        "name: {name}\nspark:\n  type: Scala\n  mainClass: Main\n  mainApplicationFile: /a.jar\n  \
         driver:\n    cores: 1\n    memory: 512m\n  executor:\n    cores: 1\n    instances: \
         {executors}\n    memory: 512m\n"
    );
    if !labels.is_empty() {
        text.push_str("labels:\n");
        for (k, v) in labels {
            text.push_str(&format!("  {k}: \"{v}\"\n"));
        }
    }
    let levels = Levels::default();
    parse_job(
        &text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .expect("valid job")
}

fn config(nodes: u32, cpu: &str, memory: &str) -> SimulatedConfig {
    SimulatedConfig {
        nodes: vec![NodeGroup {
            prefix: "node".into(),
            count: nodes,
            cpu: Text(cpu.into()),
            memory: Text(memory.into()),
            pods: None,
        }],
        seed: 42,
        duration: DurationConfig::Fixed {
            value: Text("10m".into()),
        },
        start_delay: Text("5s".into()),
        ledger: None,
    }
}

fn backend(cfg: &SimulatedConfig) -> (SimulatedBackend, ManualClock) {
    let clock = ManualClock::new(T0);
    let b = SimulatedBackend::new(cfg, Arc::new(clock.clone())).unwrap();
    (b, clock)
}

fn request(b: &SimulatedBackend, job_id: &str, attempt: u32, job: Job) -> SubmitRequest {
    SubmitRequest {
        job_id: job_id.into(),
        attempt,
        demand: b.demand(&job).unwrap(),
        job,
    }
}

fn run(job_id: &str, attempt: u32) -> RunRef {
    RunRef {
        job_id: job_id.into(),
        attempt,
        backend_ref: None,
    }
}

#[tokio::test]
async fn a_run_goes_pending_running_succeeded_by_the_clock() {
    let (b, clock) = backend(&config(2, "4", "8g"));
    let job = spark_job("ok", 2, &[(DURATION_LABEL, "5m")]);
    let sub = b.submit(&request(&b, "j1", 1, job)).await.unwrap();
    assert!(!sub.already_existed);
    assert_eq!(sub.backend_ref, "sim/j1/1");
    assert_eq!(b.status(&run("j1", 1)).await.unwrap(), RunStatus::Pending);
    clock.advance(5_000);
    assert_eq!(b.status(&run("j1", 1)).await.unwrap(), RunStatus::Running);
    clock.advance(5 * 60_000 - 1);
    assert_eq!(b.status(&run("j1", 1)).await.unwrap(), RunStatus::Running);
    assert!(b.capacity().await.unwrap().visible.contains("j1"));
    clock.advance(1);
    assert_eq!(b.status(&run("j1", 1)).await.unwrap(), RunStatus::Succeeded);
    let cap = b.capacity().await.unwrap();
    assert!(cap.visible.is_empty());
    assert_eq!(cap.snapshot.nodes, cap.snapshot.allocatable);
    let log = b.logs(&run("j1", 1), 0, 1 << 20).await.unwrap();
    assert!(log.complete);
    assert!(
        log.data.contains("succeeded after 300000 ms"),
        "{}",
        log.data
    );
    assert!(log.data.contains("driver on node-0"), "{}", log.data);
    // Read in small pieces, the log is the same.
    let (mut off, mut all) = (0, String::new());
    loop {
        let c = b.logs(&run("j1", 1), off, 7).await.unwrap();
        all.push_str(&c.data);
        off = c.next_offset;
        if c.complete {
            break;
        }
    }
    assert_eq!(all, log.data);
    assert!(matches!(
        b.status(&run("j2", 1)).await,
        Err(BackendError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_run_told_to_fail_fails_with_exit_code_1() {
    let (b, clock) = backend(&config(1, "4", "8g"));
    let job = spark_job("bad", 1, &[(OUTCOME_LABEL, "fail"), (DURATION_LABEL, "1m")]);
    b.submit(&request(&b, "f", 1, job)).await.unwrap();
    clock.advance(65_000);
    assert_eq!(
        b.status(&run("f", 1)).await.unwrap(),
        RunStatus::Failed {
            exit_code: Some(1),
            message: "exit code 1".into()
        }
    );
}

#[tokio::test]
async fn an_oom_run_exits_137_with_the_local_backends_message() {
    let (b, clock) = backend(&config(1, "4", "8g"));
    let job = spark_job("oom", 1, &[(OUTCOME_LABEL, "oom"), (DURATION_LABEL, "2m")]);
    b.submit(&request(&b, "o", 1, job)).await.unwrap();
    clock.advance(60_000);
    assert_eq!(b.status(&run("o", 1)).await.unwrap(), RunStatus::Running);
    clock.advance(65_000);
    match b.status(&run("o", 1)).await.unwrap() {
        RunStatus::Failed { exit_code, message } => {
            assert_eq!(exit_code, Some(137));
            assert_eq!(message, sluice_backend::local::exit_message(137));
            assert!(message.contains("out of memory"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let log = b.logs(&run("o", 1), 0, 4096).await.unwrap();
    assert!(log.data.contains("OutOfMemoryError"), "{}", log.data);
}

#[tokio::test]
async fn capacity_counts_the_pods_of_running_jobs_first_fit() {
    // Two nodes of 2 cores: a driver and 3 executors of 1 core take node-0 (driver + 1) and
    // node-1 (2), first fit.
    let (b, clock) = backend(&config(3, "2", "8g"));
    let a = spark_job("a", 3, &[(DURATION_LABEL, "10m")]);
    let pod_mem = b
        .demand(&a)
        .unwrap()
        .role(sluice_core::job::Role::Driver)
        .unwrap()
        .mem_mib;
    b.submit(&request(&b, "a", 1, a)).await.unwrap();
    let cap = b.capacity().await.unwrap();
    let free: Vec<(u64, u64)> = cap
        .snapshot
        .nodes
        .iter()
        .map(|n| (n.cpu_milli, n.mem_mib))
        .collect();
    assert_eq!(
        free,
        [
            (0, 8192 - 2 * pod_mem),
            (0, 8192 - 2 * pod_mem),
            (2000, 8192)
        ]
    );
    // A job of a driver and one executor takes node-2; the last one has no room left.
    let c = spark_job("c", 1, &[(DURATION_LABEL, "20m")]);
    b.submit(&request(&b, "c", 1, c)).await.unwrap();
    let cap = b.capacity().await.unwrap();
    assert_eq!(cap.snapshot.total_free().cpu_milli, 0);
    assert_eq!(
        cap.visible.iter().map(String::as_str).collect::<Vec<_>>(),
        ["a", "c"]
    );
    // When "a" ends its room comes back, "c" still holds node-2.
    clock.advance(5_000 + 10 * 60_000);
    let cap = b.capacity().await.unwrap();
    assert_eq!(cap.snapshot.total_free().cpu_milli, 4000);
    assert_eq!(cap.snapshot.nodes[2].cpu_milli, 0);
    assert_eq!(
        cap.visible.iter().map(String::as_str).collect::<Vec<_>>(),
        ["c"]
    );
}

#[tokio::test]
async fn no_room_is_no_room() {
    let (b, _clock) = backend(&config(1, "2", "8g"));
    b.submit(&request(&b, "a", 1, spark_job("a", 1, &[])))
        .await
        .unwrap();
    let e = b
        .submit(&request(&b, "b", 1, spark_job("b", 1, &[])))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BackendError::NoRoom(m) if m.contains("job b attempt 1")),
        "{e}"
    );
    // Nothing of the refused job is held or known.
    assert!(!b.capacity().await.unwrap().visible.contains("b"));
    assert!(matches!(
        b.status(&run("b", 1)).await,
        Err(BackendError::NotFound { .. })
    ));
}

#[tokio::test]
async fn submit_is_idempotent_per_attempt() {
    let (b, clock) = backend(&config(1, "4", "8g"));
    let job = spark_job("a", 1, &[(DURATION_LABEL, "1m")]);
    let first = b.submit(&request(&b, "a", 1, job.clone())).await.unwrap();
    clock.advance(30_000);
    let again = b.submit(&request(&b, "a", 1, job.clone())).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.backend_ref, first.backend_ref);
    // Still one run's worth of room taken, and its clock was not restarted.
    let cap = b.capacity().await.unwrap();
    assert_eq!(cap.snapshot.nodes[0].cpu_milli, 2000);
    clock.advance(35_000);
    assert_eq!(b.status(&run("a", 1)).await.unwrap(), RunStatus::Succeeded);
    // The next attempt is a new run.
    let next = b.submit(&request(&b, "a", 2, job)).await.unwrap();
    assert!(!next.already_existed);
    assert_eq!(b.status(&run("a", 2)).await.unwrap(), RunStatus::Pending);
}

#[tokio::test]
async fn cancel_frees_the_room_at_once() {
    let (b, clock) = backend(&config(1, "2", "8g"));
    b.submit(&request(&b, "a", 1, spark_job("a", 1, &[])))
        .await
        .unwrap();
    clock.advance(10_000);
    assert!(matches!(
        b.submit(&request(&b, "b", 1, spark_job("b", 1, &[]))).await,
        Err(BackendError::NoRoom(_))
    ));
    b.cancel(&run("a", 1)).await.unwrap();
    assert_eq!(
        b.status(&run("a", 1)).await.unwrap(),
        RunStatus::Failed {
            exit_code: Some(143),
            message: sluice_backend::local::exit_message(143)
        }
    );
    let cap = b.capacity().await.unwrap();
    assert!(cap.visible.is_empty());
    assert_eq!(cap.snapshot.nodes, cap.snapshot.allocatable);
    b.submit(&request(&b, "b", 1, spark_job("b", 1, &[])))
        .await
        .unwrap();
    // Cancelling again, or a run that does not exist, is not an error.
    b.cancel(&run("a", 1)).await.unwrap();
    b.cancel(&run("zzz", 1)).await.unwrap();
}

#[tokio::test]
async fn sampled_durations_are_deterministic_per_seed() {
    let mut cfg = config(1, "64", "256g");
    cfg.duration = DurationConfig::Lognormal {
        median: Text("5m".into()),
        sigma: 0.8,
    };
    cfg.start_delay = Text("0".into());
    let job = spark_job("s", 1, &[]);
    let durations = |cfg: &SimulatedConfig| {
        let (b, _) = backend(cfg);
        (1..=20)
            .map(|i| b.duration_ms(&format!("job-{i}"), 1, &job).unwrap())
            .collect::<Vec<u64>>()
    };
    let first = durations(&cfg);
    assert_eq!(first, durations(&cfg), "same seed, same durations");
    assert!(
        first.windows(2).any(|w| w[0] != w[1]),
        "sampled, not fixed: {first:?}"
    );
    cfg.seed = 43;
    assert_ne!(first, durations(&cfg), "another seed, other durations");
    // The sampled duration is the one the run gets: it ends exactly then.
    let (b, clock) = backend(&cfg);
    let d = b.duration_ms("job-1", 1, &job).unwrap();
    b.submit(&request(&b, "job-1", 1, job.clone()))
        .await
        .unwrap();
    clock.advance(i64::try_from(d).unwrap() - 1);
    assert_eq!(
        b.status(&run("job-1", 1)).await.unwrap(),
        RunStatus::Running
    );
    clock.advance(1);
    assert_eq!(
        b.status(&run("job-1", 1)).await.unwrap(),
        RunStatus::Succeeded
    );
    // A label wins over the distribution.
    let labelled = spark_job("l", 1, &[(DURATION_LABEL, "1h30m")]);
    assert_eq!(b.duration_ms("x", 1, &labelled).unwrap(), 5_400_000);
}

#[tokio::test]
async fn bad_labels_and_config_are_refused_naming_them() {
    let (b, _) = backend(&config(1, "4", "8g"));
    let e = b
        .demand(&spark_job("x", 1, &[(OUTCOME_LABEL, "explode")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(OUTCOME_LABEL) && e.contains("explode"), "{e}");
    let e = b
        .demand(&spark_job("x", 1, &[(DURATION_LABEL, "soon")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(DURATION_LABEL) && e.contains("soon"), "{e}");
    let mut cfg = config(1, "4", "8g");
    cfg.nodes[0].memory = Text("lots".into());
    let e = SimulatedBackend::new(&cfg, Arc::new(ManualClock::new(0)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nodes[0].memory") && e.contains("lots"), "{e}");
    let mut cfg = config(1, "4", "8g");
    cfg.duration = DurationConfig::Uniform {
        min: Text("5m".into()),
        max: Text("1m".into()),
    };
    let e = cfg.check().unwrap_err().to_string();
    assert!(e.contains("duration.max"), "{e}");
}

/// Two backends naming one ledger file are one cluster: what one submits, the other sees (its
/// room, its status, a repeated submit), a cancel made on either holds for both, and the file
/// records every submission, refusal and cancel.
#[tokio::test]
async fn backends_sharing_a_ledger_are_one_cluster() {
    use sluice_backend::simulated::{Entry, read_ledger};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(1, "4", "8g");
    cfg.ledger = Some(dir.path().join("cluster.jsonl"));
    let clock = ManualClock::new(T0);
    let a = SimulatedBackend::new(&cfg, Arc::new(clock.clone())).unwrap();
    let b = SimulatedBackend::new(&cfg, Arc::new(clock.clone())).unwrap();
    let job = spark_job("big", 2, &[(DURATION_LABEL, "10m")]);
    let sub = a.submit(&request(&a, "j1", 1, job.clone())).await.unwrap();
    assert!(!sub.already_existed);
    // b sees the run: its room is taken, and submitting the same attempt again finds it.
    let cap = b.capacity().await.unwrap();
    assert!(cap.visible.contains("j1"), "{cap:?}");
    assert_eq!(cap.snapshot.nodes[0].cpu_milli, 1_000, "{cap:?}");
    assert!(
        b.submit(&request(&b, "j1", 1, job.clone()))
            .await
            .unwrap()
            .already_existed
    );
    // A second job of 3 cores does not fit beside it: refused, and recorded as a refusal.
    let err = b
        .submit(&request(&b, "j2", 1, job.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::NoRoom(_)), "{err:?}");
    clock.advance(5_000);
    assert_eq!(b.status(&run("j1", 1)).await.unwrap(), RunStatus::Running);
    b.cancel(&run("j1", 1)).await.unwrap();
    assert!(matches!(
        a.status(&run("j1", 1)).await.unwrap(),
        RunStatus::Failed {
            exit_code: Some(143),
            ..
        }
    ));
    assert!(a.capacity().await.unwrap().visible.is_empty());
    // A third process opening the ledger later sees the same history.
    let c = SimulatedBackend::new(&cfg, Arc::new(clock.clone())).unwrap();
    assert!(
        c.submit(&request(&c, "j1", 1, job))
            .await
            .unwrap()
            .already_existed
    );
    let entries = read_ledger(cfg.ledger.as_deref().unwrap()).unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| match e {
            Entry::Submit { .. } => "submit",
            Entry::Refuse { .. } => "refuse",
            Entry::Cancel { .. } => "cancel",
        })
        .collect();
    assert_eq!(kinds, ["submit", "refuse", "cancel"]);
}

/// `placements` says on which node each pod of a run holding room is, with the names of the
/// capacity snapshot; a cancelled run holds nothing.
#[tokio::test]
async fn placements_name_the_node_of_every_pod_of_the_runs_holding_room() {
    let (b, _clock) = backend(&config(2, "2", "8g"));
    b.submit(&request(&b, "a", 1, spark_job("a", 1, &[])))
        .await
        .unwrap();
    b.submit(&request(&b, "b", 1, spark_job("b", 1, &[])))
        .await
        .unwrap();
    let cap = b.capacity().await.unwrap();
    let names: Vec<&str> = cap.snapshot.nodes.iter().map(|n| n.name.as_str()).collect();
    let p = b.placements().await;
    assert_eq!(p.len(), 2, "{p:?}");
    // a fills the first node (driver and executor), b the second.
    let nodes_of = |id: &str| -> Vec<String> { p[id].iter().map(|(n, _)| n.clone()).collect() };
    assert_eq!(nodes_of("a"), vec![names[0].to_string(); 2]);
    assert_eq!(nodes_of("b"), vec![names[1].to_string(); 2]);
    let demand = b.demand(&spark_job("a", 1, &[])).unwrap();
    let total = p["a"]
        .iter()
        .fold(sluice_core::job::Resources::default(), |acc, (_, r)| {
            acc.plus(r)
        });
    assert_eq!(total, demand.total());
    b.cancel(&run("a", 1)).await.unwrap();
    let p = b.placements().await;
    assert!(!p.contains_key("a"), "{p:?}");
    assert!(p.contains_key("b"));
}

#[tokio::test]
async fn an_ended_run_reports_synthetic_usage_from_its_label() {
    let (b, clock) = backend(&config(1, "8", "16g"));
    let job = spark_job("light", 2, &[(USED_LABEL, "0.25"), (DURATION_LABEL, "10m")]);
    b.submit(&request(&b, "u", 1, job)).await.unwrap();
    let oom = spark_job(
        "heavy",
        1,
        &[(OUTCOME_LABEL, "oom"), (DURATION_LABEL, "10m")],
    );
    b.submit(&request(&b, "o", 1, oom)).await.unwrap();
    clock.advance(60_000);
    assert_eq!(
        b.usage(&run("u", 1), 0).await.unwrap(),
        None,
        "still running"
    );
    clock.advance(600_000);
    let m = b.usage(&run("u", 1), 0).await.unwrap().expect("measured");
    assert_eq!(m.source, "simulated");
    // 512m + 384m overhead per pod, a quarter of it.
    assert_eq!(m.executor.unwrap().heap, 224 << 20);
    assert_eq!(m.driver.unwrap().heap, 224 << 20);
    assert_eq!(m.executors_used, 2);
    assert_eq!(m.executor_seconds, 1200.0);
    // 3 cores for 600 s, a quarter busy.
    assert_eq!(m.task_cpu_seconds, 450.0);
    let o = b.usage(&run("o", 1), 0).await.unwrap().expect("measured");
    assert_eq!(
        o.executor.unwrap().heap,
        896 << 20,
        "an oom run used it all"
    );
    let bad = spark_job("bad", 1, &[(USED_LABEL, "1.5")]);
    let err = b.demand(&bad).unwrap_err().to_string();
    assert!(err.contains(USED_LABEL) && err.contains("1.5"), "{err}");
}
