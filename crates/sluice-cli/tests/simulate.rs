//! `sluice simulate` and `sluice simulate generate`, through the binary: no server, no Spark.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

const CLUSTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/sim/cluster.toml"
);

#[test]
fn generate_then_simulate_writes_the_table_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice()
        .args(["simulate", "generate", "--jobs", "200", "--seed", "5"])
        .args(["--cluster", CLUSTER, "--load", "0.9"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = dir.path().join("trace.csv");
    std::fs::write(&trace, &out.stdout).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 201);

    let report = dir.path().join("report");
    let out = sluice()
        .args(["simulate", "--trace"])
        .arg(&trace)
        .args([
            "--cluster",
            CLUSTER,
            "--policy",
            "strict",
            "--policy",
            "no-admission",
        ])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("policy"), "{stdout}");
    assert!(
        stdout.contains("\nstrict ") && stdout.contains("\nno-admission "),
        "{stdout}"
    );
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(json[0]["policy"], "strict");
    assert_eq!(json[0]["half_started"], 0);

    // Backfill with aging, wrong estimates and start-time estimates, against strict.
    let out = sluice()
        .args(["simulate", "--trace"])
        .arg(&trace)
        .args(["--cluster", CLUSTER, "--policy", "strict", "--policy"])
        .args(["backfill+aging", "--estimate-factor", "0.5", "--eta"])
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\nbackfill+aging "), "{stdout}");
    assert!(stdout.contains("extra wait vs strict") && stdout.contains("ETA error (mean)"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(json[1]["policy"], "backfill+aging");
    assert_eq!(json[1]["half_started"], 0);
    assert!(
        json[1]["vs_strict"]["max_extra_wait_ms"].is_i64(),
        "{}",
        json[1]
    );
    assert!(json[1]["eta"]["jobs"].is_u64(), "{}", json[1]);

    for bad in [["--policy", "lifo"], ["--estimate-factor", "0"]] {
        let out = sluice()
            .args(["simulate", "--trace"])
            .arg(&trace)
            .args(["--cluster", CLUSTER])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(bad[1]), "{bad:?}: {err}");
    }
}

#[test]
fn a_bad_trace_line_is_named_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bad.csv");
    std::fs::write(
        &trace,
        "submit,namespace,level,name,driver_cpu,driver_memory,executor_cpu,executor_memory,executors,duration\n\
         0,etl,,a,1,2g,1,4g,2,60\n\
         5,etl,urgent,b,1,2g,1,4g,2,60\n",
    )
    .unwrap();
    let out = sluice()
        .args(["simulate", "--trace"])
        .arg(&trace)
        .args(["--cluster", CLUSTER])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trace line 3: field `level` = \"urgent\""),
        "{err}"
    );
    let out = sluice()
        .args(["simulate", "--trace"])
        .arg(&trace)
        .args(["--cluster", CLUSTER, "--policy", "fastest"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown policy \"fastest\""));
}
