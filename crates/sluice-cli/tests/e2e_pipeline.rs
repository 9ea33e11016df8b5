//! Issue 16's pipeline end to end, with real kinds: the `sluice` binary as a server (SQLite, the
//! local backend) runs examples/workflows/shop-daily.yaml itself: a `sparkSql` step (real
//! Spark) -> a `python` step and a `dbt` step (real dbt-duckdb) -> a PySpark step. The steps
//! run in dependency order; the backend has room for only one of the two parallel steps, so the
//! second waits in the queue while the first runs and is admitted only once it has ended (read
//! from the jobs' timelines); each step's result is visible (the SQL step's row counts in its
//! log, the dbt nodes in `describe` and the job's JSON). A second run for a day whose landing
//! file is missing fails in its dbt step, skips the final step, and a rerun once the file is
//! there resumes from the dbt step. A cycle in the same document is refused at apply.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{Server, copy_dir, dbt, pyspark};
use serde_json::Value;

/// The example's defaults that the test points at its temporary directory.
const ROOT_DEFAULT: &str = "/opt/sluice/examples/workflows/shop-daily";
const WAREHOUSE_DEFAULT: &str = "/var/lib/sluice/warehouse";

fn run_json(server: &Server, id: &str) -> Value {
    serde_json::from_str(&server.ok(&["workflow", "get", id, "-o", "json"])).expect("run json")
}

/// Polls until the run has ended; fails unless it ended in `want`.
fn wait_run(server: &Server, id: &str, want: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = run_json(server, id);
        let state = r["state"].as_str().unwrap_or_default().to_string();
        if state == want || (state != "running" && state != "pending") {
            assert_eq!(
                state,
                want,
                "run {id}\n{}\nserver log:\n{}",
                server.ok(&["workflow", "describe", id]),
                server.log()
            );
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} is {state}, wanted {want} within {secs}s\n{}\nserver log:\n{}",
            server.ok(&["workflow", "describe", id]),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn steps_by_name(run: &Value) -> BTreeMap<String, Value> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

fn time(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn at(job: &Value, field: &str) -> SystemTime {
    time(
        job[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {job}")),
    )
}

/// When the job was admitted (its timeline's last move to `admitted`).
fn admitted(job: &Value) -> SystemTime {
    let event = job["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("no timeline in {job}"))
        .iter()
        .rfind(|e| e["to"] == "admitted")
        .unwrap_or_else(|| panic!("never admitted: {job}"));
    time(event["at"].as_str().unwrap())
}

/// The job's result (a dbt run's nodes) of `attempt`, polled for: it is recorded off the tick.
fn dbt_result(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = server.job(id);
        if let Some(r) = job["results"].as_array().and_then(|a| a.last()) {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no results in {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn node_status(result: &Value, unique_id: &str) -> String {
    result["result"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["uniqueId"] == unique_id)
        .unwrap_or_else(|| panic!("no node {unique_id} in {result}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn job_id(step: &Value) -> String {
    step["jobId"].as_str().expect("step job").to_string()
}

#[test]
fn the_shop_daily_example_runs_spark_sql_python_dbt_and_pyspark_steps_by_capacity() {
    let (home, python) = pyspark();
    let dbt = dbt();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows");
    // The example's directory and its warehouse live in a directory that the command-job
    // privilege allows (a dbt project directory is held to it).
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("shop-daily");
    copy_dir(&examples.join("shop-daily"), &root);
    let warehouse = work.path().join("warehouse");
    let landing = warehouse.join("landing/customers");
    std::fs::create_dir_all(&landing).unwrap();
    std::fs::copy(
        root.join("landing/customers.csv"),
        landing.join("day=2026-01-01.csv"),
    )
    .unwrap();

    // Room for a Spark step (a driver and an executor: 2 cores), or for one of report (1 core)
    // and model (2 cores), never both.
    let server = Server::start(&format!(
        "[backend]\nkind = \"local\"\ncores = 2\nmemory = \"6g\"\nspark_home = \"{}\"\n\
         python = \"{}\"\ndbt = \"{}\"\n[scheduler]\ninterval_ms = 200\n\
         [security.command_jobs]\nnamespaces = [\"analytics\"]\nworking_dirs = [\"{}\"]\n",
        home.display(),
        python.display(),
        dbt.display(),
        work.path().display()
    ));

    let text = std::fs::read_to_string(examples.join("shop-daily.yaml")).unwrap();
    assert!(
        text.contains(ROOT_DEFAULT) && text.contains(WAREHOUSE_DEFAULT),
        "the example's defaults changed"
    );
    let doc = text
        .replace(ROOT_DEFAULT, &root.display().to_string())
        .replace(WAREHOUSE_DEFAULT, &warehouse.display().to_string());

    // A cycle in the same pipeline is refused at apply, naming the steps.
    let cyclic = server.write(
        "cyclic.yaml",
        &doc.replace(
            "      dependsOn: [extract]\n      job:\n        dbt:",
            "      dependsOn: [extract, publish]\n      job:\n        dbt:",
        ),
    );
    let out = server.cli(&["apply", "-f", &cyclic]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cycle") && err.contains("model -> publish -> model"),
        "{err}"
    );

    let file = server.write("shop-daily.yaml", &doc);
    assert_eq!(
        server.ok(&["apply", "-f", &file]).trim(),
        "workflow/analytics/shop-daily created"
    );

    // 1. The day 2026-01-01, with its landing file: every step succeeds.
    let id = server
        .ok(&["workflow", "run", "shop-daily", "-n", "analytics"])
        .trim()
        .to_string();
    let run = wait_run(&server, &id, "succeeded", 420);
    let steps = steps_by_name(&run);
    let jobs: BTreeMap<&str, Value> = ["extract", "report", "model", "publish"]
        .into_iter()
        .map(|s| {
            assert_eq!(steps[s]["status"], "succeeded", "{s}: {run}");
            (s, server.job(&job_id(&steps[s])))
        })
        .collect();
    for (s, kind) in [
        ("extract", "sparkSql"),
        ("report", "python"),
        ("model", "dbt"),
        ("publish", "python"),
    ] {
        assert_eq!(jobs[s]["namespace"], "analytics");
        assert_eq!(jobs[s]["labels"]["sluice.io/workflow-run"], id.as_str());
        assert_eq!(
            jobs[s]["spec"]["kind"]["type"], kind,
            "{s}: {}",
            jobs[s]["spec"]
        );
    }
    // Dependency order, from the jobs' own times: a step's job is created only once the steps
    // it depends on have ended.
    for (before, after) in [
        ("extract", "report"),
        ("extract", "model"),
        ("report", "publish"),
        ("model", "publish"),
    ] {
        assert!(
            at(&jobs[before], "finished_at") <= at(&jobs[after], "created_at"),
            "{before} ended after {after} was queued:\n{}\n{}",
            jobs[before],
            jobs[after]
        );
    }
    // report and model were queued together, but the backend has room for one: the later one
    // waited in its queue while the other ran, and started only once the other had ended.
    let (first, second) = if admitted(&jobs["report"]) <= admitted(&jobs["model"]) {
        ("report", "model")
    } else {
        ("model", "report")
    };
    assert!(
        at(&jobs[second], "enqueued_at") < at(&jobs[first], "finished_at"),
        "{second} was not waiting while {first} ran:\n{}\n{}",
        jobs[first],
        jobs[second]
    );
    assert!(
        at(&jobs[first], "finished_at") <= admitted(&jobs[second]),
        "{first} and {second} overlapped:\n{}\n{}",
        jobs[first],
        jobs[second]
    );

    // Each step's result: the SQL statements' row counts, the report, the dbt nodes, the
    // published mart.
    let log = server.ok(&["logs", &job_id(&steps["extract"])]);
    assert!(log.contains("sluice-sql: statement 3/3: 3 rows"), "{log}");
    let log = server.ok(&["logs", &job_id(&steps["report"])]);
    assert!(log.contains("report: 100 orders of 3 customers"), "{log}");
    let result = dbt_result(&server, &job_id(&steps["model"]));
    assert_eq!(result["result"]["kind"], "dbt");
    for node in [
        "model.shop_daily.orders",
        "model.shop_daily.customers",
        "model.shop_daily.customer_totals",
    ] {
        assert_eq!(node_status(&result, node), "success", "{result}");
    }
    let describe = server.ok(&["describe", &job_id(&steps["model"])]);
    assert!(
        describe.contains("Result:     attempt 1: dbt, 8 nodes, 0 failed"),
        "{describe}"
    );
    assert!(
        describe.contains("model.shop_daily.customer_totals"),
        "{describe}"
    );
    let log = server.ok(&["logs", &job_id(&steps["publish"])]);
    assert!(log.contains("publish: ada (retail): 33 orders"), "{log}");
    assert!(
        log.contains("publish: 3 customers published for 2026-01-01"),
        "{log}"
    );
    let published: Vec<_> = std::fs::read_dir(warehouse.join("published/day=2026-01-01"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".csv"))
        .collect();
    let csv = std::fs::read_to_string(published[0].path()).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let described = server.ok(&["workflow", "describe", &id]);
    assert!(
        described.contains("[ok] publish succeeded  after report, model (allSucceeded)"),
        "{described}"
    );

    // 2. The day 2026-01-02 before its landing file arrived: dbt's customers model fails,
    //    publish is skipped, the run fails.
    let id = server
        .ok(&[
            "workflow",
            "run",
            "shop-daily",
            "-n",
            "analytics",
            "--param",
            "day=2026-01-02",
        ])
        .trim()
        .to_string();
    let run = wait_run(&server, &id, "failed", 420);
    let steps = steps_by_name(&run);
    assert_eq!(steps["extract"]["status"], "succeeded", "{run}");
    assert_eq!(steps["report"]["status"], "succeeded", "{run}");
    assert_eq!(steps["model"]["status"], "failed", "{run}");
    assert_eq!(steps["publish"]["status"], "skipped", "{run}");
    assert!(steps["publish"]["jobId"].is_null(), "{run}");
    assert!(
        steps["publish"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream step model failed"),
        "{run}"
    );
    let failed = job_id(&steps["model"]);
    let result = dbt_result(&server, &failed);
    assert_eq!(
        node_status(&result, "model.shop_daily.customers"),
        "error",
        "{result}"
    );
    assert_eq!(
        node_status(&result, "model.shop_daily.customer_totals"),
        "skipped",
        "{result}"
    );
    assert_eq!(node_status(&result, "model.shop_daily.orders"), "success");
    let extract = steps["extract"]["jobId"].clone();
    let report = steps["report"]["jobId"].clone();

    // 3. The file arrives; the rerun resumes from the dbt step.
    std::fs::copy(
        root.join("landing/customers.csv"),
        landing.join("day=2026-01-02.csv"),
    )
    .unwrap();
    let out = server.ok(&["workflow", "rerun", &id]);
    assert!(out.contains("attempt 2"), "{out}");
    let run = wait_run(&server, &id, "succeeded", 420);
    let steps = steps_by_name(&run);
    assert_eq!(steps["extract"]["jobId"], extract, "{run}");
    assert_eq!(steps["report"]["jobId"], report, "{run}");
    assert_eq!(steps["model"]["previousJobs"][0], failed.as_str(), "{run}");
    assert_ne!(job_id(&steps["model"]), failed);
    assert_eq!(steps["publish"]["status"], "succeeded", "{run}");
    // extract and report ran once for the day: one attempt each.
    for s in ["extract", "report"] {
        assert_eq!(server.job(&job_id(&steps[s]))["attempt"], 1, "{s}");
    }
    let log = server.ok(&["logs", &job_id(&steps["publish"])]);
    assert!(
        log.contains("publish: 3 customers published for 2026-01-02"),
        "{log}"
    );
}
