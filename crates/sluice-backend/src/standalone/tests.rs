use std::path::Path;

use sluice_core::NodeCapacity;
use sluice_core::sizing::DeployMode;
use sluice_core::spec::Job;

use super::client::client_argv;
use super::cluster::create_request;
use super::config::StandaloneConfig;
use super::demand::standalone_job_demand;
use super::master::*;
use super::state::check_url;
use crate::RunStatus;
use sluice_core::document::parse_job;
use sluice_core::spec::{Levels, ParseOptions};

#[test]
fn worker_loss_under_a_running_app_is_noted() {
    let busy = fixture("master-busy.json");
    let before = MasterState::parse(&busy).unwrap();
    // The same master a moment later: the worker died and the app lost its core.
    let mut v: serde_json::Value = serde_json::from_str(&busy).unwrap();
    v["workers"][0]["state"] = "DEAD".into();
    v["activeapps"][0]["cores"] = 0.into();
    let after = MasterState::parse(&v.to_string()).unwrap();
    let app = "app-20261127053742-0003";
    let notes = after.losses_since(&before, &[app, "app-not-ours"]);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, app);
    let msg = &notes[0].1;
    assert!(msg.contains("worker 127.0.0.1:41131 (DEAD) lost"), "{msg}");
    assert!(msg.contains("now holds 0 cores (had 1)"), "{msg}");
    // Nothing changed: nothing to note.
    assert!(before.losses_since(&before, &[app]).is_empty());
    // A worker gone from the list entirely counts as lost too.
    v["workers"] = serde_json::json!([]);
    v["activeapps"][0]["cores"] = 1.into();
    let gone = MasterState::parse(&v.to_string()).unwrap();
    let notes = gone.losses_since(&before, &[app]);
    assert!(notes[0].1.contains("gone from the master"), "{notes:?}");
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/standalone")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(text: &str) -> Job {
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

fn cfg(mode: DeployMode) -> StandaloneConfig {
    let mut c = StandaloneConfig::new("spark://10.0.0.1:7077", "http://10.0.0.1:8080", "/d");
    c.deploy_mode = mode;
    c.rest_url = Some("http://10.0.0.1:6066".into());
    c
}

fn pairs(argv: &[String], flag: &str) -> Vec<String> {
    argv.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

/// `/json/` of a real Spark 4.0.1 master (pip's pyspark, `spark-class ... Master`) with one
/// worker of 2 cores / 2 GiB running a cluster-mode driver (1 core, 512 MiB) and its
/// application (1 executor of 1 core, 512 MiB), and a client-mode application WAITING for
/// a 3 GiB executor no worker can hold.
#[test]
fn parses_a_real_busy_master() {
    let s = MasterState::parse(&fixture("master-busy.json")).unwrap();
    assert!(s.is_alive());
    assert_eq!(s.url, "spark://127.0.0.1:17077");
    let snap = s.snapshot();
    assert!(snap.available);
    assert_eq!(
        snap.nodes,
        vec![NodeCapacity::new("127.0.0.1:41131", 0, 1024, None)]
    );
    assert_eq!(
        snap.allocatable,
        vec![NodeCapacity::new("127.0.0.1:41131", 2000, 2048, None)]
    );
    // The running application holds its 1 core; the waiting one holds nothing.
    assert!(s.app_holds("app-20261127053742-0003", 1));
    assert!(!s.app_holds("app-20261127053742-0003", 2));
    let waiting = s.active_app("app-20261127053736-0002").unwrap();
    assert_eq!(
        (
            waiting.state.as_str(),
            waiting.cores,
            waiting.executor_memory_mib()
        ),
        ("WAITING", 0, Some(3072))
    );
    assert!(!s.app_holds("app-20261127053736-0002", 1));
    // Finished applications are not active.
    assert!(s.active_app("app-20261127053209-0000").is_none());
    let d = s.driver("driver-20261127053732-0001").unwrap();
    assert_eq!(d.state, "RUNNING");
    assert_eq!(d.mainclass, "SluicePi");
    assert_eq!(d.start_ms(), Some(1795757852638));
    let w = s.worker(d.worker.as_deref().unwrap()).unwrap();
    assert_eq!(w.webuiaddress, "http://127.0.0.1:18081");
    assert_eq!(
        s.driver("driver-20261127053309-0000").unwrap().state,
        "FINISHED"
    );
}

/// A worker killed and another started: the master lists the dead one (with its full,
/// meaningless free room) until it forgets it; only the ALIVE one is a node.
#[test]
fn dead_workers_are_not_nodes() {
    let s = MasterState::parse(&fixture("master-dead-worker.json")).unwrap();
    assert_eq!(s.workers.len(), 2);
    let snap = s.snapshot();
    assert_eq!(snap.nodes.len(), 1);
    assert_eq!(snap.nodes[0].name, "127.0.0.1:37759");
    assert_eq!(snap.allocatable.len(), 1);
    let idle = MasterState::parse(&fixture("master-after.json")).unwrap();
    assert!(idle.activeapps.is_empty());
    assert_eq!(idle.completedapps.len(), 4);
    assert_eq!(
        idle.snapshot().nodes,
        vec![NodeCapacity::new("127.0.0.1:41131", 2000, 2048, None)]
    );
}

#[test]
fn standby_and_old_masters() {
    // A standby master is not available.
    let s =
        MasterState::parse(r#"{"url":"spark://h:7077","workers":[],"status":"STANDBY"}"#).unwrap();
    assert!(!s.snapshot().available);
    // Spark 2.x wrote no coresfree/memoryfree.
    let s = MasterState::parse(
        r#"{"status":"ALIVE","workers":[{"id":"w","host":"h","port":1,"cores":8,
           "coresused":3,"memory":4096,"memoryused":1024,"state":"ALIVE"}]}"#,
    )
    .unwrap();
    assert_eq!(
        s.snapshot().nodes,
        vec![NodeCapacity::new("h:1", 5000, 3072, None)]
    );
    assert!(MasterState::parse("<html>").is_err());
}

#[test]
fn rest_answers_of_a_real_master() {
    let r: RestResponse = serde_json::from_str(&fixture("rest-status-finished.json")).unwrap();
    assert_eq!(
        driver_status(&r, "driver-20261127053732-0001"),
        RunStatus::Succeeded
    );
    let r: RestResponse = serde_json::from_str(&fixture("rest-status-failed.json")).unwrap();
    match driver_status(&r, "driver-20261127053801-0002") {
        RunStatus::Failed { message, .. } => {
            assert!(message.contains("driver-20261127053801-0002"), "{message}");
            assert!(message.contains("worker-20261127053157"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let r: RestResponse = serde_json::from_str(&fixture("rest-status-unknown.json")).unwrap();
    assert!(matches!(
        driver_status(&r, "driver-20990101000000-0042"),
        RunStatus::Lost { message } if message.contains("recoveryMode")
    ));
    let r: RestResponse = serde_json::from_str(&fixture("rest-kill-unknown.json")).unwrap();
    assert_eq!(r.success, Some(false));
    assert!(
        r.short_message()
            .contains("already finished or does not exist")
    );
    let r: RestResponse = serde_json::from_str(&fixture("rest-create-invalid.json")).unwrap();
    assert_eq!(r.action, "ErrorResponse");
    assert!(
        r.short_message().starts_with("Malformed request") && !r.short_message().contains('\n'),
        "{}",
        r.short_message()
    );
    for (state, want) in [
        ("RUNNING", RunStatus::Running),
        ("SUBMITTED", RunStatus::Pending),
        ("RELAUNCHING", RunStatus::Pending),
    ] {
        let r = RestResponse {
            success: Some(true),
            driver_state: Some(state.into()),
            ..Default::default()
        };
        assert_eq!(driver_status(&r, "d"), want, "{state}");
    }
}

#[test]
fn app_id_and_worker_logs() {
    let piece = parse_worker_log(&fixture("worker-log-stderr.txt")).unwrap();
    assert_eq!((piece.start, piece.end, piece.total), (0, 12005, 12005));
    assert_eq!(
        app_id_in_log(&piece.data).as_deref(),
        Some("app-20261127053742-0003")
    );
    let out = parse_worker_log(&fixture("worker-log-stdout.txt")).unwrap();
    assert_eq!(out.data, "Pi is roughly 3.14351\n");
    assert_eq!(out.total, 22);
    assert_eq!(app_id_in_log("nothing here"), None);
    assert_eq!(
        app_id_in_log("x INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-1-0002\ny")
            .as_deref(),
        Some("app-1-0002")
    );
    assert_eq!(parse_worker_log("<html>"), None);
}

#[test]
fn client_argv_caps_the_application() {
    let job = parse(
        r#"name: pi
spark:
  type: Python
  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
  arguments: ["4"]
  sparkConf: {spark.cores.max: "64", spark.ui.enabled: "false", spark.executor.memory: 8g}
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 2, memory: 768m}
"#,
    );
    let mut c = cfg(DeployMode::Client);
    c.driver_host = Some("127.0.0.1".into());
    let b = standalone_job_demand(&job, DeployMode::Client).unwrap();
    let argv = client_argv(&c, Path::new("/sh"), &job, &b).unwrap();
    assert_eq!(argv[0], "/sh/bin/spark-submit");
    assert_eq!(pairs(&argv, "--master"), ["spark://10.0.0.1:7077"]);
    assert_eq!(pairs(&argv, "--name"), ["pi"]);
    let confs = pairs(&argv, "--conf");
    for want in [
        "spark.submit.deployMode=client",
        "spark.driver.memory=512m",
        "spark.executor.cores=1",
        "spark.executor.memory=768m",
        "spark.cores.max=2",
        "spark.ui.enabled=false",
        "spark.driver.host=127.0.0.1",
        "spark.driver.bindAddress=127.0.0.1",
    ] {
        assert!(confs.contains(&want.to_string()), "{want}: {confs:?}");
    }
    // The job's own cap and executor memory are replaced by the admitted ones.
    assert!(!confs.contains(&"spark.cores.max=64".to_string()));
    assert!(!confs.contains(&"spark.executor.memory=8g".to_string()));
    assert_eq!(
        &argv[argv.len() - 2..],
        ["/sh/examples/src/main/python/pi.py", "4"]
    );
    // Demand: executors only (the driver runs on this host), heap only.
    assert_eq!(b.pods.len(), 1);
    assert_eq!(b.total(), sluice_core::job::Resources::new(2000, 1536));
}

#[test]
fn cluster_request_and_refusals() {
    let job = parse(
        r#"name: jpi
spark:
  type: Java
  mainApplicationFile: /apps/pi.jar
  mainClass: SluicePi
  arguments: ["4"]
  sparkConf: {spark.executor.cores: "7", spark.eventLog.enabled: "false"}
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 1, memory: 512m}
  deps: {jars: ["local:///opt/spark/jars/extra.jar"], packages: ["g:a:1"]}
"#,
    );
    let c = cfg(DeployMode::Cluster);
    let d = standalone_job_demand(&job, DeployMode::Cluster).unwrap();
    assert_eq!(d.total(), sluice_core::job::Resources::new(2000, 1024));
    let body = create_request(&c, Some(Path::new("/sh")), &job, &d).unwrap();
    assert_eq!(body["action"], "CreateSubmissionRequest");
    assert_eq!(body["appResource"], "file:/apps/pi.jar");
    assert_eq!(body["mainClass"], "SluicePi");
    assert_eq!(body["appArgs"], serde_json::json!(["4"]));
    let p = &body["sparkProperties"];
    assert_eq!(p["spark.master"], "spark://10.0.0.1:7077");
    assert_eq!(p["spark.submit.deployMode"], "cluster");
    assert_eq!(p["spark.driver.memory"], "512m");
    assert_eq!(p["spark.driver.cores"], "1");
    assert_eq!(p["spark.executor.cores"], "1");
    assert_eq!(p["spark.executor.memory"], "512m");
    assert_eq!(p["spark.cores.max"], "1");
    assert_eq!(p["spark.app.name"], "jpi");
    assert_eq!(p["spark.eventLog.enabled"], "false");
    assert_eq!(p["spark.jars"], "file:/apps/pi.jar,file:/sh/jars/extra.jar");
    assert_eq!(p["spark.jars.packages"], "g:a:1");
    // Python cannot run in cluster mode; the message says why and what to do.
    let py =
        parse("name: py\nspark:\n  mainApplicationFile: /a/pi.py\n  executor: {instances: 1}\n");
    let e = standalone_job_demand(&py, DeployMode::Cluster)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cluster deploy mode") && e.contains("deploy_mode = \"client\""),
        "{e}"
    );
    assert!(standalone_job_demand(&py, DeployMode::Client).is_ok());
    let no_class = parse("name: j\nspark:\n  type: Scala\n  mainApplicationFile: /a/x.jar\n");
    let e = standalone_job_demand(&no_class, DeployMode::Cluster)
        .unwrap_err()
        .to_string();
    assert!(e.contains("spark.mainClass"), "{e}");
    let cmd = parse("name: c\ncommand:\n  argv: [true]\n");
    let e = standalone_job_demand(&cmd, DeployMode::Client)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Spark applications only"), "{e}");
}

#[test]
fn urls_are_checked() {
    assert!(check_url("master_url", "spark://h:7077", &["spark://"]).is_ok());
    for bad in ["h:7077", "spark://", "http://h:7077", "spark:///x"] {
        let e = check_url("master_url", bad, &["spark://"]).unwrap_err();
        assert!(e.to_string().contains("master_url"), "{e}");
    }
}
