//! `sluice bench` end to end at a tiny size: it starts its own server (SQLite, simulated
//! backend), authenticates with the token the server made, submits, probes, releases a burst
//! and prints its table. Catches a bench that no longer talks to the server it measures (it
//! broke silently once when authentication became the default). Figures are not checked: this
//! is a debug build on a shared machine; BENCHMARKS.md has the release figures.

// It runs `sluice bench`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn bench_runs_against_its_own_server_and_prints_a_row_per_depth() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "--stores",
            "sqlite",
            "--depths",
            "40",
            "--clients",
            "4",
            "--submits",
            "20",
            "--probes",
            "3",
            "--burst",
            "10",
            "--api-samples",
            "3",
            "--nodes",
            "4",
            "--namespaces",
            "2",
            "--interval-ms",
            "100",
            "--max-minutes",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("### SQLite"), "{stdout}");
    // One row for the free-capacity case and one for the depth asked for; each row's cells
    // after the depth are figures (submits/s, RSS, ...), not dashes only.
    let (main_table, cpu_table) = stdout.split_once("CPU per submit").unwrap_or((&stdout, ""));
    // The CPU table: one row per submit run, with a ceiling.
    assert!(
        cpu_table
            .lines()
            .any(|l| l.starts_with("| ") && l.ends_with(" |")),
        "{stdout}"
    );
    // The idle tick by step: one column per step of the tick, figures in each row.
    let (_, steps_table) = cpu_table
        .split_once("idle tick by step")
        .unwrap_or_else(|| panic!("no step table in\n{stdout}"));
    assert!(
        steps_table.contains("| queued | reconcile | orchestrate | admit | submit | roll_up |"),
        "{stdout}"
    );
    assert!(
        steps_table
            .lines()
            .any(|l| l.starts_with("| ") && !l.contains(" - ") && l.contains('.')),
        "{stdout}"
    );
    let rows: Vec<&str> = main_table
        .lines()
        .filter(|l| l.starts_with("| ") && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    let deep = rows[1];
    let cells: Vec<&str> = deep.split('|').map(str::trim).collect();
    let depth: usize = cells[1].parse().unwrap();
    assert!(depth >= 40, "{deep}");
    let rate: f64 = cells[2]
        .parse()
        .unwrap_or_else(|_| panic!("submits/s in {deep}"));
    assert!(rate > 0.0, "{deep}");
    assert!(
        !stderr.contains("failed)") || stderr.contains(", 0 failed"),
        "{stderr}"
    );
    // The HTTP ceiling: both rates are figures above 0.
    let ceiling = stdout
        .lines()
        .find(|l| l.starts_with("HTTP ceiling on this machine (4 clients"))
        .unwrap_or_else(|| panic!("no ceiling line in\n{stdout}"));
    let rates: Vec<f64> = ceiling
        .split_whitespace()
        .filter_map(|w| w.strip_suffix("/s")?.parse().ok())
        .collect();
    assert_eq!(rates.len(), 2, "{ceiling}");
    assert!(rates.iter().all(|r| *r > 0.0), "{ceiling}");
}

/// `--finished`: finished jobs written straight into a fresh store (SQLite and PostgreSQL), read
/// back through the API of a restarted server, and a latency table per store.
#[test]
fn bench_seeds_finished_jobs_and_times_the_api_over_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "--stores",
            "sqlite,postgres",
            "--depths",
            "--finished",
            "300",
            "--api-samples",
            "3",
            "--nodes",
            "2",
            "--interval-ms",
            "100",
            "--max-minutes",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for store in ["SQLite", "PostgreSQL"] {
        let head = format!("### {store}: API latency with 301 jobs in the store");
        let table = stdout
            .split(&head)
            .nth(1)
            .unwrap_or_else(|| panic!("no {head:?} in\n{stdout}"));
        let row = table
            .lines()
            .find(|l| l.starts_with("| 301 |"))
            .unwrap_or_else(|| panic!("no row for 301 jobs in\n{table}"));
        assert!(!row.contains("NaN"), "{row}");
    }
    // No depth tables were asked for.
    assert!(!stdout.contains("(2 nodes, interval"), "{stdout}");
}

/// `--prefect SCRIPT`: the same workload on a fresh sluice server, the script's JSON line read
/// (here a stand-in script printing a fixed line and exiting 143 as run.sh's exit trap makes
/// it; the real run.sh installs Prefect with pip and takes minutes, see BENCHMARKS.md), and the
/// ratio of each figure computed from both.
#[test]
fn bench_compares_the_same_workload_with_prefects_figures() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        "#!/usr/bin/env bash\n[ \"$1\" = 40 ] || exit 2\n\
         echo '{\"system\": \"prefect\", \"n\": 40, \"submit_per_s\": 2.0, \"dispatch_per_s\": 4.0, \
         \"priority_ok\": true, \"server_rss_mb\": 250.0, \"prefect_version\": \"3.9.1\"}'\nexit 143\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--stores", "sqlite", "--depths", "--prefect"])
        .arg(&script)
        .args([
            "--prefect-runs",
            "40",
            "--nodes",
            "2",
            "--interval-ms",
            "100",
            "--max-minutes",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let cells = |prefix: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{stdout}"));
        line.split('|').map(|c| c.trim().to_string()).collect()
    };
    let sluice = cells("| sluice (SQLite) | ");
    let creates: f64 = sluice[2].parse().unwrap();
    let handouts: f64 = sluice[3].parse().unwrap();
    assert!(creates > 0.0 && handouts > 0.0, "{sluice:?}");
    assert_eq!(sluice[4], "yes", "high runs are admitted first: {sluice:?}");
    assert_eq!(cells("| Prefect 3.9.1 | ")[2], "2.0");
    let ratio = cells("| sluice (SQLite) / Prefect 3.9.1 | ");
    // The ratio is computed from the unrounded figures and printed whole; the figures above are
    // printed to one decimal, so they can land on the other side of a half.
    let times = |cell: &str| -> f64 {
        cell.strip_prefix('x')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a ratio: {cell:?} in {ratio:?}"))
    };
    assert!((times(&ratio[2]) - creates / 2.0).abs() <= 0.6, "{ratio:?}");
    assert!(
        (times(&ratio[3]) - handouts / 4.0).abs() <= 0.6,
        "{ratio:?}"
    );
}
