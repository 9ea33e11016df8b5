//! Workflows end to end: the real `sluice` binary as a server (local backend) and as the CLI,
//! real command steps. A diamond runs in dependency order with its parallel steps admitted one
//! at a time (the backend has room for one step); a failing step skips its dependants and a
//! rerun resumes from it; a cycle is refused naming the steps; a schedule fires a workflow;
//! cancel cancels queued and running steps. Nothing asserts how long anything took.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

/// Room for exactly one step at a time: every step asks for the whole core.
const CONFIG: &str = "[backend]\nkind = \"local\"\ncores = 1\nmemory = \"1g\"\n[scheduler]\ninterval_ms = 100\n[security.command_jobs]\nnamespaces = [\"*\"]\n";

/// A command step that appends `start NAME` and `end NAME` to the file given as parameter
/// `log`, around `body`.
fn step(name: &str, deps: &[&str], trigger: &str, body: &str) -> String {
    format!(
        "    - name: {name}\n      dependsOn: [{}]\n      trigger: {trigger}\n      job:\n        command:\n          argv: [sh, -c, 'echo start {name} >> \"$0\"; {body}; r=$?; echo end {name} >> \"$0\"; exit $r', \"{{{{ params.log }}}}\"]\n          cpu: 1\n          memory: 128m\n",
        deps.join(", ")
    )
}

fn workflow(name: &str, extra_spec: &str, steps: &[String]) -> String {
    format!(
        "apiVersion: sluice.io/v1\nkind: Workflow\nmetadata: {{name: {name}, namespace: etl}}\nspec:\n  priority: normal\n  parameters: {{log: /nonexistent/log}}\n{extra_spec}  steps:\n{}",
        steps.concat()
    )
}

fn run_json(server: &Server, id: &str) -> Value {
    serde_json::from_str(&server.ok(&["workflow", "get", id, "-o", "json"])).expect("run json")
}

/// Polls until the run is in `want`, at most `secs`.
fn wait_run(server: &Server, id: &str, want: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = run_json(server, id);
        if r["state"] == want {
            return r;
        }
        if Instant::now() > deadline {
            panic!(
                "run {id} is {}, wanted {want} within {secs}s\n{}\nserver log:\n{}",
                r["state"],
                server.ok(&["workflow", "describe", id]),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn steps_by_name(run: &Value) -> std::collections::BTreeMap<String, Value> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn pos(log: &[String], line: &str) -> usize {
    log.iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} not in {log:?}"))
}

#[test]
fn a_diamond_runs_in_order_one_step_at_a_time_and_a_failure_reruns_from_its_step() {
    let server = Server::start(CONFIG);
    let dir = server.dir.path().to_path_buf();

    // 1. A diamond: a -> (b, c) -> d; b and c could run together but the backend has room for
    //    one, so they are admitted one after the other.
    let log = dir.join("diamond.log");
    let doc = workflow(
        "diamond",
        "",
        &[
            step("a", &[], "allSucceeded", "sleep 0.2"),
            step("b", &["a"], "allSucceeded", "sleep 0.5"),
            step("c", &["a"], "allSucceeded", "sleep 0.5"),
            step("d", &["b", "c"], "allSucceeded", "true"),
        ],
    );
    let file = server.write("diamond.yaml", &doc);
    let out = server.ok(&["apply", "-f", &file]);
    assert_eq!(out.trim(), "workflow/etl/diamond created");
    assert_eq!(
        server.ok(&["apply", "-f", &file]).trim(),
        "workflow/etl/diamond unchanged"
    );
    let param = format!("log={}", log.display());
    let id = server
        .ok(&["workflow", "run", "diamond", "-n", "etl", "--param", &param])
        .trim()
        .to_string();
    let run = wait_run(&server, &id, "succeeded", 60);
    let steps = steps_by_name(&run);
    for s in ["a", "b", "c", "d"] {
        assert_eq!(steps[s]["status"], "succeeded", "{s}: {run}");
        assert_eq!(steps[s]["jobState"], "succeeded");
    }
    let l = lines(&log);
    assert_eq!(l.len(), 8, "{l:?}");
    // Dependency order.
    for (before, after) in [
        ("end a", "start b"),
        ("end a", "start c"),
        ("end b", "start d"),
        ("end c", "start d"),
    ] {
        assert!(
            pos(&l, before) < pos(&l, after),
            "{before} / {after}: {l:?}"
        );
    }
    // b and c did not overlap: one ended before the other started.
    let (sb, eb, sc, ec) = (
        pos(&l, "start b"),
        pos(&l, "end b"),
        pos(&l, "start c"),
        pos(&l, "end c"),
    );
    assert!(eb < sc || ec < sb, "b and c overlapped: {l:?}");
    // The step jobs are normal jobs of the workflow's namespace and level, labelled.
    let job = server.job(steps["b"]["jobId"].as_str().unwrap());
    assert_eq!(job["namespace"], "etl");
    assert_eq!(job["level"], "normal");
    assert_eq!(job["labels"]["sluice.io/workflow-run"], id.as_str());
    let described = server.ok(&["workflow", "describe", &id]);
    assert!(
        described.contains("└─▶ [ok] d succeeded  after b, c"),
        "{described}"
    );

    // 2. A failing step skips its dependants; a rerun resumes from it.
    let flog = dir.join("fail.log");
    let marker = dir.join("fixed");
    let doc = workflow(
        "flaky",
        "",
        &[
            step("extract", &[], "allSucceeded", "true"),
            step(
                "transform",
                &["extract"],
                "allSucceeded",
                &format!("test -e {}", marker.display()),
            ),
            step("load", &["transform"], "allSucceeded", "true"),
            step("alert", &["transform"], "anyFailed", "true"),
        ],
    );
    let file = server.write("flaky.yaml", &doc);
    let param = format!("log={}", flog.display());
    let id = server
        .ok(&["workflow", "run", &file, "--param", &param])
        .trim()
        .to_string();
    let run = wait_run(&server, &id, "failed", 60);
    let steps = steps_by_name(&run);
    assert_eq!(steps["extract"]["status"], "succeeded");
    assert_eq!(steps["transform"]["status"], "failed");
    assert_eq!(steps["load"]["status"], "skipped");
    assert!(
        steps["load"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream step transform failed"),
        "{run}"
    );
    assert_eq!(steps["alert"]["status"], "succeeded", "{run}");
    let extract_job = steps["extract"]["jobId"].clone();
    let alert_job = steps["alert"]["jobId"].clone();
    let failed_job = steps["transform"]["jobId"].clone();
    std::fs::write(&marker, "").unwrap();
    let out = server.ok(&["workflow", "rerun", &id]);
    assert!(out.contains("attempt 2"), "{out}");
    let run = wait_run(&server, &id, "succeeded", 60);
    let steps = steps_by_name(&run);
    // extract kept its job and did not run again; transform got a new one.
    assert_eq!(steps["extract"]["jobId"], extract_job);
    assert_eq!(steps["transform"]["previousJobs"][0], failed_job);
    assert_ne!(steps["transform"]["jobId"], failed_job);
    assert_eq!(steps["load"]["status"], "succeeded");
    // alert (anyFailed) succeeded the first time: it keeps its result and is not run again.
    assert_eq!(steps["alert"]["status"], "succeeded");
    assert_eq!(steps["alert"]["jobId"], alert_job);
    let l = lines(&flog);
    assert_eq!(
        l.iter().filter(|x| *x == "start extract").count(),
        1,
        "{l:?}"
    );
    assert_eq!(
        l.iter().filter(|x| *x == "start transform").count(),
        2,
        "{l:?}"
    );

    // 3. A cycle is refused, naming the steps.
    let doc = workflow(
        "loop",
        "",
        &[
            step("one", &["three"], "allSucceeded", "true"),
            step("two", &["one"], "allSucceeded", "true"),
            step("three", &["two"], "allSucceeded", "true"),
        ],
    );
    let file = server.write("loop.yaml", &doc);
    let out = server.cli(&["workflow", "run", &file]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("one -> three -> two -> one") && err.contains("cycle"),
        "{err}"
    );
    assert!(err.contains("HTTP 400"), "{err}");
    // Listing shows the runs.
    let table = server.ok(&["workflow", "get", "-n", "etl"]);
    assert!(
        table.contains("diamond") && table.contains("flaky"),
        "{table}"
    );
}

#[test]
fn a_schedule_fires_a_workflow_and_cancel_stops_its_steps() {
    let server = Server::start(CONFIG);
    let dir = server.dir.path().to_path_buf();

    // 4. A schedule fires the workflow; its logical date reaches the step.
    let slog = dir.join("sched.log");
    let doc = workflow(
        "ticker",
        "  schedule: {cron: \"@every 2s\", concurrencyPolicy: Forbid}\n",
        &[step(
            "stamp",
            &[],
            "allSucceeded",
            "echo \"date {{ logicalDate }}\" >> \"$0\"",
        )],
    )
    .replace("/nonexistent/log", &slog.display().to_string());
    let file = server.write("ticker.yaml", &doc);
    server.ok(&["apply", "-f", &file]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let fired = loop {
        let runs: Value = serde_json::from_str(&server.ok(&[
            "workflow",
            "get",
            "--workflow",
            "ticker",
            "--state",
            "succeeded",
            "-o",
            "json",
        ]))
        .unwrap();
        let runs = match runs {
            Value::Array(a) => a,
            one => vec![one],
        };
        if let Some(r) = runs.into_iter().find(|r| r["trigger"] == "schedule") {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled run:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let date = fired["logicalDate"].as_str().unwrap().to_string();
    let l = lines(&slog);
    assert!(l.contains(&format!("date {date}")), "{date} not in {l:?}");

    // 5. Cancel: a running step and a queued one (no room) are cancelled, a waiting one
    //    never starts.
    let clog = dir.join("cancel.log");
    let doc = workflow(
        "long",
        "",
        &[
            step("slow", &[], "allSucceeded", "sleep 60"),
            step("other", &[], "allSucceeded", "sleep 60"),
            step("after", &["slow"], "allSucceeded", "true"),
        ],
    );
    let file = server.write("long.yaml", &doc);
    let param = format!("log={}", clog.display());
    let id = server
        .ok(&["workflow", "run", &file, "--param", &param])
        .trim()
        .to_string();
    // Wait until one step runs and the other waits in the queue for room.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = run_json(&server, &id);
        let states: Vec<String> = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["jobState"].as_str().unwrap_or("-").to_string())
            .collect();
        if states.contains(&"running".to_string()) && states.contains(&"queued".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "{run}");
        std::thread::sleep(Duration::from_millis(200));
    }
    server.ok(&["workflow", "cancel", &id]);
    let run = wait_run(&server, &id, "cancelled", 60);
    let steps = steps_by_name(&run);
    for s in ["slow", "other"] {
        assert_eq!(steps[s]["status"], "cancelled", "{s}: {run}");
        assert_eq!(steps[s]["jobState"], "cancelled", "{s}: {run}");
    }
    assert_eq!(steps["after"]["status"], "cancelled");
    assert!(steps["after"]["jobId"].is_null(), "{run}");
    // A finished run cannot be cancelled again.
    let out = server.cli(&["workflow", "cancel", &id]);
    assert!(!out.status.success());
}
