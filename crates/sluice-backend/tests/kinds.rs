//! The job kinds `sparkSql`, `python` and `dbt` on the local backend: real Spark (pyspark in
//! .venv), a real virtual environment with a small requirement from the package index, and real
//! dbt with DuckDB (scripts/ensure-dbt.sh). Every process group a test starts is killed when the
//! test ends. A test whose tool is missing says SKIPPED and returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reaper;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reaper::Reaper;
use sluice_backend::local::{LocalBackend, LocalConfig, find_spark_home};
use sluice_backend::{Backend, RunRef, RunStatus, SubmitRequest};
use sluice_core::document::parse_job;
use sluice_core::run_result::RunResult;
use sluice_core::sizing::job_demand;
use sluice_core::spec::{Levels, ParseOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spark_home() -> Option<PathBuf> {
    let candidate = match std::env::var_os("SLUICE_SPARK_HOME") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv"),
    };
    find_spark_home(Some(&candidate))
}

fn dbt() -> Option<PathBuf> {
    let p = match std::env::var_os("SLUICE_DBT") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv-dbt/bin/dbt"),
    };
    p.is_file().then_some(p)
}

fn python() -> Option<PathBuf> {
    let p = root().join(".venv/bin/python");
    p.is_file().then_some(p)
}

async fn backend(dir: &Path) -> LocalBackend {
    LocalBackend::new(LocalConfig {
        cores_milli: 4000,
        memory_mib: 8192,
        data_dir: dir.to_path_buf(),
        spark_home: spark_home(),
        python: python(),
        dbt: dbt(),
        image_spark_home: "/opt/spark".into(),
        kill_grace: Duration::from_secs(2),
        run_as: None,
    })
    .await
    .unwrap()
}

fn request(id: &str, doc: &str) -> SubmitRequest {
    let levels = Levels::default();
    let job = parse_job(
        doc,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap();
    SubmitRequest {
        job_id: id.into(),
        attempt: 1,
        demand: job_demand(&job).unwrap(),
        job,
    }
}

fn run(id: &str) -> RunRef {
    RunRef {
        job_id: id.into(),
        attempt: 1,
        backend_ref: None,
    }
}

/// Submits, waits for the end (at most `limit`) and returns the status and the whole log.
async fn run_to_end(
    b: &LocalBackend,
    reaper: &mut Reaper,
    req: &SubmitRequest,
    limit: Duration,
) -> (RunStatus, String) {
    let s = b.submit(req).await.unwrap();
    reaper.hold(&s.backend_ref);
    let r = run(&req.job_id);
    let deadline = Instant::now() + limit;
    let status = loop {
        let s = b.status(&r).await.unwrap();
        if !matches!(s, RunStatus::Running | RunStatus::Pending) {
            break s;
        }
        assert!(Instant::now() < deadline, "{} still {s:?}", req.job_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut log = String::new();
    let mut offset = 0;
    loop {
        let c = b.logs(&r, offset, 1 << 20).await.unwrap();
        log.push_str(&c.data);
        if c.next_offset == offset {
            break;
        }
        offset = c.next_offset;
    }
    (status, log)
}

#[tokio::test]
async fn spark_sql_runs_every_statement_and_names_a_failing_one() {
    if spark_home().is_none() {
        eprintln!("SKIPPED: no spark-submit (run scripts/ensure-pyspark.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    let mut reaper = Reaper::new(tmp.path());
    let ok = request(
        "sql-ok",
        "name: report\n\
         sparkSql:\n\
         \x20 sql: |\n\
         \x20   -- a view; then a query on it\n\
         \x20   CREATE TEMPORARY VIEW nums AS SELECT id, id % 2 AS odd FROM range(10);\n\
         \x20   SELECT odd, count(*) AS n, ';' AS semi FROM nums GROUP BY odd;\n\
         \x20   SELECT * FROM nums WHERE id < 3\n\
         \x20 driver: {memory: 512m}\n\
         \x20 executor: {instances: 1, cores: 1, memory: 512m}\n",
    );
    let (status, log) = run_to_end(&b, &mut reaper, &ok, Duration::from_secs(180)).await;
    assert_eq!(status, RunStatus::Succeeded, "{log}");
    for want in [
        "sluice-sql: statement 1/3: 0 rows",
        "sluice-sql: statement 2/3: 2 rows",
        "sluice-sql: statement 3/3: 3 rows",
        "sluice-sql: 3 statements succeeded",
    ] {
        assert!(log.contains(want), "{want:?} not in\n{log}");
    }
    // The runner and the statements are in the run's directory; Spark wrote its event log.
    let dir = b.run_dir("sql-ok", 1);
    let stmts: Vec<String> =
        serde_json::from_slice(&std::fs::read(dir.join("sluice_statements.json")).unwrap())
            .unwrap();
    assert_eq!(stmts.len(), 3);
    assert!(
        std::fs::read_dir(dir.join("eventlog"))
            .unwrap()
            .next()
            .is_some()
    );

    // A .sql file whose second statement fails: the run fails and the log names statement 2.
    let sql = tmp.path().join("bad.sql");
    std::fs::write(
        &sql,
        "SELECT 1 AS one;\nSELECT * FROM no_such_table;\nSELECT 3;\n",
    )
    .unwrap();
    let bad = request(
        "sql-bad",
        &format!(
            "name: bad\nsparkSql:\n  file: {}\n  driver: {{memory: 512m}}\n  \
             executor: {{instances: 1, cores: 1, memory: 512m}}\n",
            sql.display()
        ),
    );
    let (status, log) = run_to_end(&b, &mut reaper, &bad, Duration::from_secs(180)).await;
    assert!(
        matches!(
            status,
            RunStatus::Failed {
                exit_code: Some(1),
                ..
            }
        ),
        "{status:?}\n{log}"
    );
    assert!(log.contains("sluice-sql: statement 1/3: 1 rows"), "{log}");
    assert!(log.contains("sluice-sql: statement 2/3 failed:"), "{log}");
    assert!(log.contains("no_such_table"), "{log}");
    assert!(!log.contains("statement 3/3"), "{log}");
}

#[tokio::test]
async fn python_requirements_go_into_one_cached_virtual_env() {
    let Some(_) = python() else {
        eprintln!("SKIPPED: no .venv/bin/python (run scripts/ensure-pyspark.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    let mut reaper = Reaper::new(tmp.path());
    let script = tmp.path().join("hello.py");
    std::fs::write(
        &script,
        "import os, sys, six\n\
         print('six', six.__version__, 'from', six.__file__)\n\
         print('prefix', sys.prefix)\n\
         print('args', sys.argv[1:], os.environ['GREETING'])\n",
    )
    .unwrap();
    let doc = format!(
        "name: hello\npython:\n  file: {}\n  args: [a, 'b c']\n  requirements: [six==1.17.0]\n  \
         env: {{GREETING: hej}}\n  cpu: 500m\n  memory: 256m\n",
        script.display()
    );
    let (status, log) = run_to_end(
        &b,
        &mut reaper,
        &request("py-1", &doc),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(status, RunStatus::Succeeded, "{log}");
    assert!(
        log.contains("sluice: making the virtual environment"),
        "{log}"
    );
    assert!(log.contains("six 1.17.0 from"), "{log}");
    assert!(log.contains("args ['a', 'b c'] hej"), "{log}");
    let venvs: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("venvs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        venvs.len(),
        1,
        "one environment, no temporary left: {venvs:?}"
    );
    let venv = venvs[0].to_string_lossy().into_owned();
    assert!(log.contains(&format!("prefix {venv}")), "{log}");

    // The same requirements again: the environment is reused, not made again.
    let (status, log) = run_to_end(
        &b,
        &mut reaper,
        &request("py-2", &doc),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(status, RunStatus::Succeeded, "{log}");
    assert!(
        log.contains(&format!("sluice: using the virtual environment {venv}")),
        "{log}"
    );
    assert!(!log.contains("making the virtual environment"), "{log}");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("venvs")).unwrap().count(),
        1
    );

    // A failing script fails the job with its exit code.
    std::fs::write(&script, "import sys\nsys.exit(3)\n").unwrap();
    let (status, _) = run_to_end(
        &b,
        &mut reaper,
        &request("py-3", &doc),
        Duration::from_secs(120),
    )
    .await;
    assert!(matches!(
        status,
        RunStatus::Failed {
            exit_code: Some(3),
            ..
        }
    ));
}

#[tokio::test]
async fn python_with_spark_runs_through_spark_submit() {
    if spark_home().is_none() {
        eprintln!("SKIPPED: no spark-submit (run scripts/ensure-pyspark.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    let mut reaper = Reaper::new(tmp.path());
    let script = tmp.path().join("count.py");
    std::fs::write(
        &script,
        "import sys\nfrom pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.getOrCreate()\n\
         print('counted', spark.range(int(sys.argv[1])).count())\nspark.stop()\n",
    )
    .unwrap();
    let doc = format!(
        "name: count\npython:\n  file: {}\n  args: [42]\n  spark: true\n  \
         driver: {{memory: 512m}}\n  executor: {{instances: 1, cores: 1, memory: 512m}}\n",
        script.display()
    );
    let (status, log) = run_to_end(
        &b,
        &mut reaper,
        &request("pys", &doc),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(status, RunStatus::Succeeded, "{log}");
    assert!(log.contains("counted 42"), "{log}");
}

/// Copies examples/dbt/shop into `to`.
fn copy_project(to: &Path) {
    let from = root().join("examples/dbt/shop");
    for entry in walk(&from) {
        let rel = entry.strip_prefix(&from).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        if first == "logs" || first == "target" {
            continue;
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn dbt_build_results_are_read_and_a_failing_model_is_named() {
    if dbt().is_none() {
        eprintln!("SKIPPED: no dbt (run scripts/ensure-dbt.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(&tmp.path().join("data")).await;
    let mut reaper = Reaper::new(tmp.path());
    let project = tmp.path().join("shop");
    copy_project(&project);
    let doc = format!(
        "name: shop\ndbt:\n  projectDir: {}\n  command: build\n  vars: {{large_order: 60}}\n",
        project.display()
    );
    let (status, log) = run_to_end(
        &b,
        &mut reaper,
        &request("dbt-ok", &doc),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(status, RunStatus::Succeeded, "{log}");
    let Some(RunResult::Dbt(r)) = b.result(&run("dbt-ok")).await.unwrap() else {
        panic!("no dbt result")
    };
    let ids: Vec<&str> = r.nodes.iter().map(|n| n.unique_id.as_str()).collect();
    for want in [
        "seed.shop.raw_orders",
        "model.shop.orders",
        "model.shop.customer_totals",
    ] {
        assert!(ids.contains(&want), "{want} not in {ids:?}");
    }
    assert_eq!(ids.iter().filter(|i| i.starts_with("test.")).count(), 4);
    assert!(
        r.nodes
            .iter()
            .all(|n| n.status == "success" || n.status == "pass"),
        "{r:?}"
    );
    let seed = r
        .nodes
        .iter()
        .find(|n| n.unique_id == "seed.shop.raw_orders")
        .unwrap();
    assert_eq!(seed.rows_affected, Some(5), "{seed:?}");
    // dbt wrote into the run's directory, not the project.
    assert!(!project.join("target").exists() && !project.join("logs").exists());

    // A model that selects from a table that does not exist: the job fails naming it.
    std::fs::write(
        project.join("models/broken.sql"),
        "select * from no_such_table_anywhere\n",
    )
    .unwrap();
    let doc = format!(
        "name: shop\ndbt:\n  projectDir: {}\n  command: run\n  select: [broken, orders]\n",
        project.display()
    );
    let (status, log) = run_to_end(
        &b,
        &mut reaper,
        &request("dbt-bad", &doc),
        Duration::from_secs(300),
    )
    .await;
    let RunStatus::Failed { message, .. } = &status else {
        panic!("{status:?}\n{log}")
    };
    assert!(
        message.contains("dbt: model.shop.broken error:"),
        "{message}"
    );
    let Some(RunResult::Dbt(r)) = b.result(&run("dbt-bad")).await.unwrap() else {
        panic!("no dbt result")
    };
    let broken = r
        .nodes
        .iter()
        .find(|n| n.unique_id == "model.shop.broken")
        .unwrap();
    assert_eq!(broken.status, "error");
    assert!(
        broken
            .message
            .as_deref()
            .unwrap_or("")
            .contains("no_such_table_anywhere"),
        "{broken:?}"
    );
    // `select` ran only the two models. Each run has its own database (in its run directory),
    // so `orders` fails too: its seed was not loaded in this run.
    assert_eq!(r.nodes.len(), 2, "{r:?}");
}
