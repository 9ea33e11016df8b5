//! The Spark standalone backend against a master that is not there and against a stand-in
//! master that serves answers captured from a real Spark 4.0.1 master (tests/fixtures/standalone).
//! The real master and worker are exercised end to end in crates/sluice-cli/tests/e2e_standalone.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_backend::standalone::{StandaloneBackend, StandaloneConfig};
use sluice_backend::{Backend, BackendError, RunRef, RunStatus, SubmitRequest};
use sluice_core::NodeCapacity;
use sluice_core::document::parse_job;
use sluice_core::sizing::DeployMode;
use sluice_core::spec::{Job, Levels, ParseOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/standalone")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn job(text: &str) -> Job {
    let levels = Levels::default();
    parse_job(
        text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .expect("valid job")
}

const JVM_JOB: &str = "name: jpi\nspark:\n  type: Java\n  mainApplicationFile: /apps/pi.jar\n  \
                       mainClass: SluicePi\n  driver: {cores: 1, memory: 512m}\n  \
                       executor: {cores: 1, instances: 1, memory: 512m}\n";

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn config(dir: &Path, web: u16, rest: u16, mode: DeployMode) -> StandaloneConfig {
    let mut c = StandaloneConfig::new(
        "spark://127.0.0.1:7077",
        format!("http://127.0.0.1:{web}"),
        dir,
    );
    c.rest_url = Some(format!("http://127.0.0.1:{rest}"));
    c.deploy_mode = mode;
    c.driver_memory_mib = 2048;
    c.request_timeout = Duration::from_secs(2);
    c
}

/// A stand-in for the master's web UI and REST server: serves `/json/` and the REST endpoints
/// with the answers of a real master, counts create requests, and can be switched off.
#[derive(Default)]
struct FakeState {
    up: bool,
    json: String,
    creates: Vec<serde_json::Value>,
    kills: Vec<String>,
}

async fn fake_master() -> (u16, Arc<Mutex<FakeState>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let state = Arc::new(Mutex::new(FakeState {
        up: true,
        json: fixture("master-busy.json"),
        ..Default::default()
    }));
    let st = Arc::clone(&state);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let st = Arc::clone(&st);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and, if there is one, the body (Content-Length).
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                let line = head.lines().next().unwrap_or("");
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let (status, answer) = {
                    let mut s = st.lock().expect("fake lock");
                    if !s.up {
                        (503, String::from("{}"))
                    } else if path == "/json/" {
                        (200, s.json.clone())
                    } else if path == "/v1/submissions/create" {
                        s.creates
                            .push(serde_json::from_str(body).unwrap_or(serde_json::Value::Null));
                        (200, fixture("rest-create-ok.json"))
                    } else if let Some(id) = path.strip_prefix("/v1/submissions/status/") {
                        let mut v: serde_json::Value =
                            serde_json::from_str(&fixture("rest-status-finished.json"))
                                .expect("fixture");
                        v["submissionId"] = id.into();
                        (200, v.to_string())
                    } else if let Some(id) = path.strip_prefix("/v1/submissions/kill/") {
                        s.kills.push(id.to_string());
                        (200, fixture("rest-kill-unknown.json"))
                    } else {
                        (404, String::from("{}"))
                    }
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, state)
}

#[tokio::test]
async fn an_unreachable_master_is_unavailable_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let b = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Cluster))
        .await
        .unwrap();
    let report = b.capacity().await.expect("capacity is not an error");
    assert!(!report.snapshot.available);
    assert!(report.snapshot.nodes.is_empty());
    assert!(report.visible.is_empty());
    // A submit cannot reach the master: unavailable (the job stays admitted and is retried),
    // and nothing is recorded, so the retry really submits.
    let j = job(JVM_JOB);
    let demand = b.demand(&j).unwrap();
    let req = SubmitRequest {
        job_id: "j1".into(),
        attempt: 1,
        job: j,
        demand,
    };
    assert!(matches!(
        b.submit(&req).await,
        Err(BackendError::Unavailable(_))
    ));
    assert!(!b.run_dir("j1", 1).join("standalone.json").exists());
    // A run the backend never had.
    let run = RunRef {
        job_id: "nope".into(),
        attempt: 1,
        backend_ref: None,
    };
    assert!(matches!(
        b.status(&run).await,
        Err(BackendError::NotFound { .. })
    ));
}

#[tokio::test]
async fn capacity_from_the_master_and_back_after_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let (port, fake) = fake_master().await;
    let b = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Client))
        .await
        .unwrap();
    let r = b.capacity().await.unwrap();
    assert!(r.snapshot.available);
    assert_eq!(
        r.snapshot.nodes,
        vec![NodeCapacity::new("127.0.0.1:41131", 0, 1024, None)]
    );
    let allocatable = vec![NodeCapacity::new("127.0.0.1:41131", 2000, 2048, None)];
    assert_eq!(r.snapshot.allocatable, allocatable);
    // The master goes away: unavailable, with the last known allocatable room (so that a
    // submit can still be checked against the empty cluster).
    fake.lock().unwrap().up = false;
    let r = b.capacity().await.unwrap();
    assert!(!r.snapshot.available);
    assert!(r.snapshot.nodes.is_empty());
    assert_eq!(r.snapshot.allocatable, allocatable);
    // It comes back, idle now: available again with the free room.
    {
        let mut f = fake.lock().unwrap();
        f.up = true;
        f.json = fixture("master-after.json");
    }
    let r = b.capacity().await.unwrap();
    assert!(r.snapshot.available);
    assert_eq!(
        r.snapshot.nodes,
        vec![NodeCapacity::new("127.0.0.1:41131", 2000, 2048, None)]
    );
    // A standby master (another master leads) admits nothing either.
    fake.lock().unwrap().json =
        fixture("master-after.json").replace("\"status\" : \"ALIVE\"", "\"status\" : \"STANDBY\"");
    assert!(!b.capacity().await.unwrap().snapshot.available);
}

#[tokio::test]
async fn cluster_submit_is_idempotent_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (port, fake) = fake_master().await;
    let b = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Cluster))
        .await
        .unwrap();
    let j = job(JVM_JOB);
    let demand = b.demand(&j).unwrap();
    let req = SubmitRequest {
        job_id: "j1".into(),
        attempt: 1,
        job: j,
        demand,
    };
    let first = b.submit(&req).await.unwrap();
    assert!(!first.already_existed);
    assert_eq!(first.backend_ref, "driver-20261127053309-0000");
    let again = b.submit(&req).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.backend_ref, first.backend_ref);
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.creates.len(), 1, "one create request only");
        let props = &f.creates[0]["sparkProperties"];
        assert_eq!(props["spark.cores.max"], "1");
        assert_eq!(props["spark.executor.memory"], "512m");
        assert_eq!(f.creates[0]["mainClass"], "SluicePi");
    }
    // A fresh backend on the same directory (a restarted sluice) knows the run too.
    drop(b);
    let b = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Cluster))
        .await
        .unwrap();
    let again = b.submit(&req).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(fake.lock().unwrap().creates.len(), 1);
    let run = RunRef {
        job_id: "j1".into(),
        attempt: 1,
        backend_ref: Some(first.backend_ref.clone()),
    };
    assert_eq!(b.status(&run).await.unwrap(), RunStatus::Succeeded);
    b.cancel(&run).await.unwrap();
    assert_eq!(
        fake.lock().unwrap().kills,
        vec!["driver-20261127053309-0000".to_string()]
    );
}

#[tokio::test]
async fn an_interrupted_cluster_submit_adopts_the_driver_the_master_has() {
    let dir = tempfile::tempdir().unwrap();
    let (port, fake) = fake_master().await;
    let b = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Cluster))
        .await
        .unwrap();
    // sluice sent a create for attempt 1 and died before writing the answer: the record says
    // when, for which main class, and has no driver id. The master's /json/ (master-busy.json)
    // lists driver-20261127053732-0001 (SluicePi, started 1795757852638) as running.
    let run_dir = b.run_dir("j2", 1);
    std::fs::create_dir_all(&run_dir).unwrap();
    let record = serde_json::json!({
        "job_id": "j2", "attempt": 1, "mode": "cluster", "submitted_ms": 1795757852000u64,
        "cores_max": 1, "main_class": "SluicePi", "driver_id": null, "app_id": null,
    });
    std::fs::write(run_dir.join("standalone.json"), record.to_string()).unwrap();
    let j = job(JVM_JOB);
    let demand = b.demand(&j).unwrap();
    let req = SubmitRequest {
        job_id: "j2".into(),
        attempt: 1,
        job: j,
        demand,
    };
    let sub = b.submit(&req).await.unwrap();
    assert!(sub.already_existed);
    assert_eq!(sub.backend_ref, "driver-20261127053732-0001");
    assert!(fake.lock().unwrap().creates.is_empty(), "no second driver");
}

#[tokio::test]
async fn demands_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let client = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Client))
        .await
        .unwrap();
    // Client mode: executors only, heap only.
    let py = job(
        "name: pi\nspark:\n  type: Python\n  mainApplicationFile: /a/pi.py\n  \
         driver: {memory: 512m}\n  executor: {cores: 2, instances: 3, memory: 1g}\n",
    );
    let d = client.demand(&py).unwrap();
    assert_eq!(d.total(), sluice_core::job::Resources::new(6000, 3072));
    assert!(d.role(sluice_core::Role::Driver).is_none());
    // A driver bigger than this host's driver budget (2 GiB here) can never start.
    let big_driver = job(
        "name: big\nspark:\n  type: Python\n  mainApplicationFile: /a/pi.py\n  \
         driver: {memory: 4g}\n  executor: {instances: 1}\n",
    );
    let e = client.demand(&big_driver).unwrap_err().to_string();
    assert!(e.contains("driver") && e.contains("2048 MiB"), "{e}");
    let cmd = job("name: c\ncommand:\n  argv: [\"true\"]\n");
    assert!(matches!(
        client.demand(&cmd),
        Err(BackendError::Rejected(_))
    ));
    drop(client);
    let cluster = StandaloneBackend::new(config(dir.path(), port, port, DeployMode::Cluster))
        .await
        .unwrap();
    let e = cluster.demand(&py).unwrap_err().to_string();
    assert!(e.contains("cluster deploy mode"), "{e}");
    let d = cluster.demand(&job(JVM_JOB)).unwrap();
    assert_eq!(d.total(), sluice_core::job::Resources::new(2000, 1024));
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, 1, DeployMode::Cluster);
    c.rest_url = None;
    let e = StandaloneBackend::new(c).await.unwrap_err().to_string();
    assert!(e.contains("rest_url"), "{e}");
    let mut c = config(dir.path(), 1, 1, DeployMode::Client);
    c.master_url = "127.0.0.1:7077".into();
    let e = StandaloneBackend::new(c).await.unwrap_err().to_string();
    assert!(e.contains("master_url"), "{e}");
}

/// Cluster mode with a shared event-log directory: the create request carries the event-log
/// conf, and a run's usage is read from `<mount>/<application id>` (a real Spark 4 log, the
/// rolling zstd fixture, placed under the id the master gave the run's application).
#[tokio::test]
async fn cluster_mode_usage_comes_from_the_shared_event_log_directory() {
    use sluice_backend::eventlog::{SharedEventLog, read};
    let dir = tempfile::tempdir().unwrap();
    let events = tempfile::tempdir().unwrap();
    let (port, fake) = fake_master().await;
    let mut c = config(dir.path(), port, port, DeployMode::Cluster);
    c.event_log =
        Some(SharedEventLog::new("file:///shared/spark-events", Some(events.path())).unwrap());
    let b = StandaloneBackend::new(c).await.unwrap();
    let j = job(JVM_JOB);
    let demand = b.demand(&j).unwrap();
    let req = SubmitRequest {
        job_id: "j1".into(),
        attempt: 1,
        job: j,
        demand,
    };
    b.submit(&req).await.unwrap();
    {
        let f = fake.lock().unwrap();
        let props = &f.creates[0]["sparkProperties"];
        assert_eq!(props["spark.eventLog.enabled"], "true");
        assert_eq!(props["spark.eventLog.dir"], "file:///shared/spark-events");
        assert_eq!(props["spark.executor.processTreeMetrics.enabled"], "true");
    }
    // A run whose application id the master reported, with its log in the directory.
    let app_id = "app-20261127053732-0000";
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eventlog/eventlog_v2_local-1796308632235");
    let dst = events.path().join(format!("eventlog_v2_{app_id}"));
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let end_ms = 1_796_308_700_000;
    let expected = sluice_core::cost::Measured::from_event_log(&read(&src).unwrap(), end_ms);
    for (job_id, id) in [("j3", app_id), ("j4", "app-20261127053732-0009")] {
        let run_dir = b.run_dir(job_id, 1);
        std::fs::create_dir_all(&run_dir).unwrap();
        let record = serde_json::json!({
            "job_id": job_id, "attempt": 1, "mode": "cluster", "submitted_ms": 1795757852000u64,
            "cores_max": 1, "main_class": "SluicePi", "driver_id": "driver-20261127053732-0001",
            "app_id": id,
        });
        std::fs::write(run_dir.join("standalone.json"), record.to_string()).unwrap();
    }
    let run = |id: &str| RunRef {
        job_id: id.into(),
        attempt: 1,
        backend_ref: None,
    };
    let measured = b
        .usage(&run("j3"), end_ms)
        .await
        .unwrap()
        .expect("measured");
    assert_eq!(measured, expected);
    assert!(measured.complete && measured.task_cpu_seconds > 0.0);
    // Its log is not there: not measured, and why.
    match b.usage(&run("j4"), end_ms).await {
        Err(BackendError::Unmeasured(why)) => {
            assert!(why.contains("app-20261127053732-0009"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}
