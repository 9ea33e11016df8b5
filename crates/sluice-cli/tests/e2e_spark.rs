//! End to end with real Spark: the `sluice` server with SQLite and a local budget of 2 cores,
//! three runs of pyspark's bundled pi.py, each taking the whole budget (driver 1 core + one
//! executor of 1 core). A normal job runs; a second normal job and then a high job wait; the
//! high job runs before the older normal one; all succeed and print "Pi is roughly".

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, pyspark};

fn pi_job(name: &str, spark_home: &std::path::Path, priority: Option<&str>) -> String {
    let prio = priority
        .map(|p| format!("priority: {p}\n"))
        .unwrap_or_default();
    format!(
        r#"name: {name}
namespace: analytics
{prio}labels: {{example: pi}}
spark:
  type: Python
  mainApplicationFile: {}/examples/src/main/python/pi.py
  arguments: ["4"]
  driver: {{cores: 1, memory: 512m}}
  executor: {{cores: 1, instances: 1, memory: 512m}}
"#,
        spark_home.display()
    )
}

#[test]
fn high_priority_pi_overtakes_waiting_normal_pi() {
    let (home, python) = pyspark();
    let server = Server::start(&format!(
        "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"4g\"\nspark_home = \"{}\"\npython = \"{}\"\n[scheduler]\ninterval_ms = 200\n",
        home.display(),
        python.display()
    ));
    let a = server.submit(&server.write("a.yaml", &pi_job("pi-a", &home, None)), &[]);
    server.wait_for(&a, &["running", "succeeded"], 60);
    let b = server.submit(&server.write("b.yaml", &pi_job("pi-b", &home, None)), &[]);
    let c = server.submit(
        &server.write("c.yaml", &pi_job("pi-c", &home, None)),
        &["--priority", "high"],
    );
    // While A runs, C (high) is first in line and B second; describe says why they wait.
    let mut saw_wait = false;
    for _ in 0..50 {
        if server.state(&a) != "running" {
            break;
        }
        let dc = server.ok(&["describe", &c]);
        if dc.contains("Waiting:") {
            assert!(dc.contains("position 1 in namespace analytics"), "{dc}");
            assert!(dc.contains("needs 2 cores"), "{dc}");
            assert!(dc.contains("largest free slot 0 cores"), "{dc}");
            let db = server.ok(&["describe", &b]);
            assert!(db.contains("position 2 in namespace analytics"), "{db}");
            saw_wait = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(saw_wait, "never saw C waiting while A ran");
    // get -o json carries the computed demand: 1 driver + 1 executor, 1 core / 896 MiB each.
    let jc = server.job(&c);
    let pods = jc["demand"]["pods"].as_array().expect("pods");
    assert_eq!(pods.len(), 2);
    for p in pods {
        assert_eq!(p["count"], 1);
        assert_eq!(p["cpu_milli"], 1000);
        assert_eq!(p["memory_mib"], 512 + 384);
    }
    for id in [&a, &b, &c] {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed", "cancelled"], 180),
            "succeeded"
        );
        let log = server.ok(&["logs", id]);
        assert!(log.contains("Pi is roughly"), "log of {id}:\n{log}");
    }
    let started = |id: &str| {
        server.job(id)["started_at"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        started(&c) < started(&b),
        "high job C started {} but normal job B started earlier, {}",
        started(&c),
        started(&b)
    );
    // Queues are empty again; the history lists all three.
    let listed = server.ok(&["get", "-n", "analytics", "-l", "example=pi"]);
    for id in [&a, &b, &c] {
        assert!(listed.contains(id.as_str()), "{listed}");
    }
}
