//! End to end, the job kinds through the server: the `sluice` binary with SQLite and the local
//! backend runs a `sparkSql` job (real Spark), a `python` job with a requirement installed into
//! its cached virtual environment, and a `dbt` build of examples/dbt/shop (real dbt-duckdb);
//! each succeeds, and the dbt job's nodes are in `describe` and in the job's JSON.

// It runs `sluice server`: built with the `server` feature only.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, copy_dir, dbt, pyspark};

#[test]
fn spark_sql_python_and_dbt_jobs_run_through_the_server() {
    let (home, python) = pyspark();
    let dbt = dbt();
    // A dbt job's project directory is held to the command privilege's working directories.
    let projects = tempfile::tempdir().unwrap();
    let server = Server::start(&format!(
        "[backend]\nkind = \"local\"\ncores = 4\nmemory = \"6g\"\nspark_home = \"{}\"\n\
         python = \"{}\"\ndbt = \"{}\"\n[scheduler]\ninterval_ms = 200\n\
         [security.command_jobs]\nnamespaces = [\"data\"]\nworking_dirs = [\"{}\"]\n",
        home.display(),
        python.display(),
        dbt.display(),
        projects.path().display()
    ));

    let sql = server.submit(
        &server.write(
            "sql.yaml",
            "name: report\nnamespace: data\nsparkSql:\n  sql: |\n    \
             CREATE TEMPORARY VIEW t AS SELECT id FROM range(5);\n    \
             SELECT count(*) AS n, ';' AS semi FROM t\n  driver: {memory: 512m}\n  \
             executor: {instances: 1, cores: 1, memory: 512m}\n",
        ),
        &[],
    );

    let script = server.write("hello.py", "import six\nprint('six is', six.__version__)\n");
    let py = server.submit(
        &server.write(
            "py.yaml",
            &format!(
                "name: hello\nnamespace: data\npython:\n  file: {script}\n  \
                 requirements: [six==1.17.0]\n  cpu: 500m\n  memory: 256m\n"
            ),
        ),
        &[],
    );

    let project = projects.path().join("shop");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dbt/shop"),
        &project,
    );
    let dbt_job = server.submit(
        &server.write(
            "dbt.yaml",
            &format!(
                "name: shop\nnamespace: data\ndbt:\n  projectDir: {}\n  command: build\n",
                project.display()
            ),
        ),
        &[],
    );

    for id in [&sql, &py, &dbt_job] {
        assert_eq!(
            server.wait_for(id, &["succeeded", "failed", "cancelled"], 300),
            "succeeded",
            "{}\n{}",
            server.ok(&["describe", id]),
            server.ok(&["logs", id])
        );
    }
    let log = server.ok(&["logs", &sql]);
    assert!(log.contains("sluice-sql: statement 1/2: 0 rows"), "{log}");
    assert!(log.contains("sluice-sql: statement 2/2: 1 rows"), "{log}");
    let log = server.ok(&["logs", &py]);
    assert!(log.contains("six is 1.17.0"), "{log}");

    // The dbt result is recorded off the tick once the run ends: poll for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = server.job(&dbt_job);
        if job["results"].is_array() {
            break job;
        }
        assert!(Instant::now() < deadline, "no results in {job}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let result = &job["results"][0];
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["result"]["kind"], "dbt");
    let nodes = result["result"]["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes
        .iter()
        .map(|n| n["uniqueId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"model.shop.customer_totals"), "{ids:?}");
    assert!(ids.contains(&"seed.shop.raw_orders"), "{ids:?}");
    let describe = server.ok(&["describe", &dbt_job]);
    assert!(
        describe.contains("Result:     attempt 1: dbt, 7 nodes, 0 failed"),
        "{describe}"
    );
    assert!(describe.contains("model.shop.orders"), "{describe}");
    // The other kinds have no result.
    assert!(server.job(&sql)["results"].is_null());
}
