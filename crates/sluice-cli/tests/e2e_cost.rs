//! End to end with real Spark: cost intelligence. The `sluice` server (SQLite, local backend)
//! runs pyspark's pi.py twice with 2g executors it hardly uses; Spark writes each run's event
//! log into the run's directory, sluice reads it when the run ends, and after the two runs
//! (`cost.advice_min_runs = 2`) `sluice advise` recommends an executor heap below the 2g asked
//! for and above the peak measured, with a saving. The event logs Spark wrote here are parsed
//! again by the test itself (the parser on real, fresh logs).

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Server, pyspark};
use serde_json::Value;

fn pi_job(spark_home: &std::path::Path) -> String {
    format!(
        r#"name: pi-cost
namespace: analytics
spark:
  type: Python
  mainApplicationFile: {}/examples/src/main/python/pi.py
  arguments: ["4"]
  driver: {{cores: 1, memory: 512m}}
  executor: {{cores: 1, instances: 1, memory: 2g}}
"#,
        spark_home.display()
    )
}

/// The one event log Spark wrote for run `id` attempt 1.
fn event_log(server: &Server, id: &str) -> PathBuf {
    let dir = server.dir.path().join(format!("data/runs/{id}/1/eventlog"));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap()
}

#[test]
fn an_over_provisioned_spark_job_is_advised_down_with_a_saving() {
    let (home, python) = pyspark();
    let server = Server::start(&format!(
        "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"8g\"\nspark_home = \"{}\"\npython = \"{}\"\n\
         [scheduler]\ninterval_ms = 200\n[cost]\nadvice_min_runs = 2\ncore_hour_price = 0.05\n\
         gib_hour_price = 0.01\ncurrency = \"EUR\"\n",
        home.display(),
        python.display()
    ));
    let file = server.write("pi.yaml", &pi_job(&home));
    let ids = [server.submit(&file, &[]), server.submit(&file, &[])];
    for id in &ids {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed", "cancelled"], 300),
            "succeeded",
            "log: {}",
            server.ok(&["logs", id])
        );
    }

    // The usage of both runs is recorded shortly after they end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs: Vec<Value> = loop {
        let out = server.ok(&["cost", "--by", "run", "-o", "json"]);
        let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
        if runs.len() == 2 && runs.iter().all(|r| !r["run"]["measured"].is_null()) {
            break runs;
        }
        assert!(Instant::now() < deadline, "usage not recorded: {out}");
        std::thread::sleep(Duration::from_millis(500));
    };

    // The parser on the logs Spark just wrote: whole, one app, the 4 tasks of pi.py 4 in the
    // driver (local mode), peaks measured (process-tree metrics are turned on by sluice).
    let mut peak_mib = 0;
    for id in &ids {
        let path = event_log(&server, id);
        let u = sluice_backend::eventlog::read(&path).unwrap();
        assert!(u.complete, "{}: not complete", path.display());
        assert_eq!(u.bad_lines, 0);
        assert!(
            u.app_id.as_deref().is_some_and(|a| a.starts_with("local-")),
            "{:?}",
            u.app_id
        );
        assert_eq!(u.executors.len(), 1, "local mode: the driver only");
        let d = &u.executors["driver"];
        assert_eq!(d.tasks, 4);
        assert!(d.run_time_ms > 0 && d.cpu_time_ns > 0, "{d:?}");
        assert!(d.peaks.jvm_heap > 0, "{d:?}");
        assert!(d.peaks.jvm_rss > 0, "process-tree RSS: {d:?}");
        assert!(u.end_ms > u.start_ms);
        // What the server stored is what the log says.
        let stored = runs
            .iter()
            .find(|r| r["run"]["job_id"] == id.as_str())
            .unwrap();
        let m = &stored["run"]["measured"];
        assert_eq!(m["source"], "eventlog+process", "{m}");
        assert_eq!(m["driver"]["heap"], d.peaks.jvm_heap, "{m}");
        assert_eq!(m["executor"]["heap"], d.peaks.jvm_heap, "local mode: {m}");
        assert!(m["process"]["peak_rss_bytes"].as_u64().unwrap() > 0, "{m}");
        assert!(m["process"]["cpu_seconds"].as_f64().unwrap() > 0.0, "{m}");
        let need = d.peaks.jvm_heap.max(d.peaks.on_heap_execution);
        peak_mib = peak_mib.max(need.div_ceil(1 << 20));
        // Held: 1 + 1 cores, 512m + 384m and 2g + 0.4 x 2g (Python's overhead factor).
        assert_eq!(stored["run"]["requested"]["cpu_milli"], 2000);
        assert_eq!(stored["run"]["requested"]["mem_mib"], 896 + 2048 + 819);
        let e = &stored["efficiency"];
        assert!(e["held_core_hours"].as_f64().unwrap() > 0.0, "{e}");
        assert!(e["cost"].as_f64().unwrap() > 0.0, "{e}");
        let util = e["cpu_utilisation"].as_f64().unwrap();
        assert!(util > 0.0 && util <= 1.0, "{e}");
        let headroom = e["executor_headroom"].as_f64().unwrap();
        assert!(
            headroom > 0.0 && headroom < 0.5,
            "uses a fraction of 2g: {e}"
        );
    }

    // The advice: below the 2g asked for, above the peak, with a saving.
    let v: Value = serde_json::from_str(&server.ok(&["advise", "-o", "json"])).unwrap();
    assert_eq!(v["currency"], "EUR");
    let advice = v["advice"].as_array().unwrap();
    assert_eq!(advice.len(), 1, "{v}");
    let a = &advice[0];
    assert_eq!(a["namespace"], "analytics");
    assert_eq!(a["key"], "pi-cost");
    assert_eq!(a["status"], "advised", "{a}");
    assert_eq!(a["based_on"].as_array().unwrap().len(), 2);
    assert_eq!(a["executor_peak_mib"], peak_mib);
    assert_eq!(a["current"]["executor_heap_mib"], 2048);
    let rec = a["recommended"]["executor_heap_mib"].as_u64().unwrap();
    assert!(
        rec < 2048,
        "advised {rec} MiB, not below the 2g asked for: {a}"
    );
    assert!(
        rec > peak_mib,
        "advised {rec} MiB, not above the peak {peak_mib}: {a}"
    );
    let saving = &a["monthly_saving"];
    assert!(saving["gib_hours"].as_f64().unwrap() > 0.0, "{a}");
    assert!(saving["cost"].as_f64().unwrap() > 0.0, "{a}");

    // The tables.
    let table = server.ok(&["advise"]);
    assert!(table.contains("pi-cost"), "{table}");
    assert!(table.contains("2g->"), "{table}");
    assert!(table.contains("EUR"), "{table}");
    let table = server.ok(&["cost", "-n", "analytics"]);
    assert!(table.contains("pi-cost"), "{table}");
    let v: Value =
        serde_json::from_str(&server.ok(&["cost", "--by", "namespace", "-o", "json"])).unwrap();
    assert_eq!(v["groups"][0]["namespace"], "analytics", "{v}");
    assert_eq!(v["groups"][0]["runs"], 2, "{v}");
    // Advice is applied to schedules only, on request: a schedule that does not exist is named.
    let out = server.cli(&["advise", "apply", "analytics", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains("404"), "{err}");
}
