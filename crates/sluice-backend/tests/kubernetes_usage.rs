//! What a Kubernetes run used, from a shared event-log directory: the Kubernetes backend
//! against the in-process fake API server (`kube_fake`), with an event log that real Spark
//! (pip's pyspark, `local[1]`) writes in the test into a temporary directory, found by the
//! application id the mocked SparkApplication reports in `status.sparkApplicationId`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_fake;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube_fake::{FakeApi, node};
use serde_json::{Value, json};
use sluice_backend::eventlog::{SharedEventLog, read};
use sluice_backend::kubernetes::{KubeBackend, KubeSettings};
use sluice_backend::local::find_spark_home;
use sluice_backend::{Backend, BackendError, RunRef, RunStatus, SubmitRequest};
use sluice_core::cost::Measured;
use sluice_core::document::parse_job;
use sluice_core::sizing::job_demand;
use sluice_core::spec::{Levels, ParseOptions};

const NS: &str = "spark";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs Spark's `pi.py 2` on `local[1]` with its event log on, into `dir`; returns the
/// application id and the log's path. `None` without pyspark.
fn real_spark_log(dir: &Path) -> Option<(String, PathBuf)> {
    let venv = match std::env::var_os("SLUICE_SPARK_HOME") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv"),
    };
    let home = find_spark_home(Some(&venv))?;
    let python = root().join(".venv/bin/python");
    let out = Command::new(home.join("bin/spark-submit"))
        .args([
            "--master",
            "local[1]",
            "--conf",
            "spark.eventLog.enabled=true",
            "--conf",
            &format!("spark.eventLog.dir=file://{}", dir.display()),
            "--conf",
            "spark.executor.metrics.pollingInterval=500ms",
            "--conf",
            "spark.eventLog.logStageExecutorMetrics=true",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.driver.host=127.0.0.1",
        ])
        .arg(home.join("examples/src/main/python/pi.py"))
        .arg("2")
        .env("SPARK_HOME", &home)
        .env("PYSPARK_PYTHON", &python)
        .env("PYSPARK_DRIVER_PYTHON", &python)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spark-submit failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .expect("Spark wrote an event log");
    let name = entry.file_name().to_string_lossy().to_string();
    let id = name
        .strip_prefix("eventlog_v2_")
        .unwrap_or(&name)
        .split('.')
        .next()
        .unwrap()
        .to_string();
    assert!(id.starts_with("local-"), "{name}");
    Some((id, entry.path()))
}

fn request(job_id: &str, name: &str, extra: &str) -> SubmitRequest {
    let text = format!(
        "name: {name}\nnamespace: {NS}\nspark:\n  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py\n  \
         driver: {{cores: 1, memory: 512m}}\n  executor: {{cores: 1, instances: 1, memory: 512m}}\n{extra}"
    );
    let levels = Levels::default();
    let job = parse_job(
        &text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap();
    let demand = job_demand(&job).unwrap();
    SubmitRequest {
        job_id: job_id.into(),
        attempt: 1,
        job,
        demand,
    }
}

async fn submit(fake: &FakeApi, b: &KubeBackend, req: &SubmitRequest) -> (RunRef, String, Value) {
    let sub = b.submit(req).await.unwrap();
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    let run = RunRef {
        job_id: req.job_id.clone(),
        attempt: req.attempt,
        backend_ref: Some(sub.backend_ref),
    };
    (run, name, app)
}

/// Ends the application as the operator does, with `app_id` as its Spark application id,
/// and waits until the backend sees it ended.
async fn complete(fake: &FakeApi, b: &KubeBackend, run: &RunRef, name: &str, app_id: Option<&str>) {
    assert!(fake.update("sparkapplications", NS, name, |a| {
        let mut status = json!({"applicationState": {"state": "COMPLETED", "errorMessage": ""}});
        if let Some(id) = app_id {
            status["sparkApplicationId"] = json!(id);
        }
        a["status"] = status;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while b.status(run).await.unwrap() != RunStatus::Succeeded {
        assert!(tokio::time::Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The watch cache may lag the status read by a moment: wait for the id there too.
    if let Some(id) = app_id {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            match b.usage(run, 0).await {
                Err(BackendError::Unmeasured(m)) if m.contains("sparkApplicationId") => {}
                _ => break,
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} never seen");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test]
async fn a_runs_usage_is_read_from_the_shared_event_log_directory() {
    let events = tempfile::tempdir().unwrap();
    let Some((app_id, log)) = real_spark_log(events.path()) else {
        eprintln!(
            "SKIPPED a_runs_usage_is_read_from_the_shared_event_log_directory: no spark-submit \
             (run scripts/ensure-pyspark.sh or set SLUICE_SPARK_HOME)"
        );
        return;
    };
    let end_ms = 4_102_444_800_000;
    let usage = read(&log).unwrap();
    assert!(usage.complete, "{usage:#?}");
    assert_eq!(usage.app_id.as_deref(), Some(app_id.as_str()));
    let expected = Measured::from_event_log(&usage, end_ms);

    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, json!({}), json!([])),
    );
    // The drivers write to file:///spark-events (a PVC in their pods); sluice reads the same
    // volume where it is mounted in its own pod: here, the directory Spark wrote.
    let share = SharedEventLog::new("file:///spark-events", Some(events.path())).unwrap();
    let mut settings = KubeSettings {
        namespaces: vec![NS.into()],
        watchdog: None,
        ..KubeSettings::default()
    };
    settings.app.event_log = Some(share);
    let b = KubeBackend::with_client(fake.client(), settings)
        .await
        .unwrap();
    b.wait_ready(Duration::from_secs(10)).await.unwrap();

    // The application carries the event-log conf.
    let (run, name, app) = submit(&fake, &b, &request("u1", "pi", "")).await;
    let conf = &app["spec"]["sparkConf"];
    assert_eq!(conf["spark.eventLog.enabled"], "true", "{app:#}");
    assert_eq!(conf["spark.eventLog.dir"], "file:///spark-events");
    assert_eq!(conf["spark.executor.processTreeMetrics.enabled"], "true");
    // Ended, reporting the id Spark gave the application: its figures are the log's.
    complete(&fake, &b, &run, &name, Some(&app_id)).await;
    let measured = b.usage(&run, end_ms).await.unwrap().expect("measured");
    assert_eq!(measured, expected);
    assert!(measured.complete);
    assert_eq!(measured.source, "eventlog");
    let driver = measured.driver.expect("driver peaks");
    assert!(driver.heap_need() > 0, "{measured:#?}");
    assert!(measured.task_seconds > 0.0 && measured.task_cpu_seconds > 0.0);

    // An application whose log is not there: not measured, and the note names the id and the
    // directory.
    let (run2, name2, _) = submit(&fake, &b, &request("u2", "pi2", "")).await;
    complete(&fake, &b, &run2, &name2, Some("spark-0123456789abcdef")).await;
    match b.usage(&run2, end_ms).await {
        Err(BackendError::Unmeasured(why)) => {
            assert!(why.contains("spark-0123456789abcdef"), "{why}");
            assert!(why.contains(&events.path().display().to_string()), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // No application id reported (the driver never started): not measured, saying so.
    let (run3, name3, _) = submit(&fake, &b, &request("u3", "pi3", "")).await;
    complete(&fake, &b, &run3, &name3, None).await;
    match b.usage(&run3, end_ms).await {
        Err(BackendError::Unmeasured(why)) => assert!(why.contains("sparkApplicationId"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A job that sets its own spark.eventLog.dir keeps it; sluice does not look for its log.
    let own = request(
        "u4",
        "pi4",
        "  sparkConf: {spark.eventLog.dir: \"hdfs://nn/elsewhere\"}\n",
    );
    let (run4, name4, app4) = submit(&fake, &b, &own).await;
    assert_eq!(
        app4["spec"]["sparkConf"]["spark.eventLog.dir"],
        "hdfs://nn/elsewhere"
    );
    assert_eq!(app4["spec"]["sparkConf"]["spark.eventLog.enabled"], "true");
    complete(&fake, &b, &run4, &name4, Some(&app_id)).await;
    match b.usage(&run4, end_ms).await {
        Err(BackendError::Unmeasured(why)) => assert!(why.contains("hdfs://nn/elsewhere"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn without_a_shared_directory_nothing_is_measured_and_nothing_is_set() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, json!({}), json!([])),
    );
    let settings = KubeSettings {
        namespaces: vec![NS.into()],
        watchdog: None,
        ..KubeSettings::default()
    };
    let b = KubeBackend::with_client(fake.client(), settings)
        .await
        .unwrap();
    b.wait_ready(Duration::from_secs(10)).await.unwrap();
    let (run, name, app) = submit(&fake, &b, &request("n1", "pi", "")).await;
    assert!(app["spec"].get("sparkConf").is_none(), "{app:#}");
    complete(&fake, &b, &run, &name, None).await;
    assert_eq!(b.usage(&run, 0).await.unwrap(), None);
}
