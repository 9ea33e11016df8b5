use crate::document::parse_job_with_policy;
use crate::job::Role;
use crate::retry::raise_memory;
use crate::sizing::job_demand;
use crate::spec::{DbtCommand, Job, JobKind, Levels, ParseOptions, SpecError};
use crate::stored::rebuild_document;

fn parse(text: &str) -> Result<Job, SpecError> {
    let levels = Levels::default();
    parse_job_with_policy(
        text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .map(|(j, _)| j)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(j) => panic!("accepted: {j:?}"),
        Err(e) => e.to_string(),
    }
}

const SQL: &str = r#"
name: report
sparkSql:
  sql: |
    CREATE TEMP VIEW t AS SELECT 1 AS x; -- a comment; with a semicolon
    SELECT 'a;b' AS y FROM t;
  sparkConf: {spark.sql.shuffle.partitions: 4}
  driver: {memory: 512m}
  executor: {instances: 1, cores: 1, memory: 512m}
"#;

#[test]
fn spark_sql_parses_and_is_sized_as_a_python_spark_application() {
    let job = parse(SQL).unwrap();
    let JobKind::SparkSql(q) = &job.kind else {
        panic!("{:?}", job.kind)
    };
    assert_eq!(
        q.statements().unwrap().unwrap(),
        [
            "CREATE TEMP VIEW t AS SELECT 1 AS x",
            "-- a comment; with a semicolon\nSELECT 'a;b' AS y FROM t"
        ]
    );
    let d = job_demand(&job).unwrap();
    // 512 MiB heap + max(0.4 x 512, 384) = 512 + 384 for the driver (Python's factor).
    assert_eq!(d.role(Role::Driver).unwrap().mem_mib, 896);
    let e = d.role(Role::Executor).unwrap();
    assert_eq!((e.count, e.cpu_milli, e.mem_mib), (1, 1000, 896));
    let spark = job.kind.spark_spec().unwrap();
    assert_eq!(
        spark.main_application_file.as_deref(),
        Some(crate::spec::SQL_RUNNER_FILE)
    );
}

#[test]
fn spark_sql_field_errors_name_the_field_and_value() {
    let cases = [
        (
            "name: r\nsparkSql: {driver: {memory: 1g}}",
            "missing field `sparkSql.sql`",
        ),
        (
            "name: r\nsparkSql: {sql: 'select 1', file: /x.sql}",
            "field `sparkSql.sql/file` = \"both\"",
        ),
        (
            "name: r\nsparkSql: {sql: '-- only a comment;'}",
            "has no statement",
        ),
        (
            "name: r\nsparkSql: {sql: \"select 'oops\"}",
            "a string opened on line 1 is never closed",
        ),
        (
            "name: r\nsparkSql: {file: reports/x.sql}",
            "field `sparkSql.file` = \"reports/x.sql\" must be an absolute path",
        ),
        (
            "name: r\nsparkSql: {file: /r/x.txt}",
            "field `sparkSql.file` = \"/r/x.txt\" is not a .sql file",
        ),
        (
            "name: r\nsparkSql: {sql: 'select 1', executor: {memory: lots}}",
            "sparkSql.executor.memory",
        ),
        (
            "name: r\nsparkSql: {sql: 'select 1', sparkConf: {'-x=y': 1}}",
            "sparkSql.sparkConf",
        ),
        (
            "name: r\nsparkSql: {sql: 'select 1', mainClass: x}",
            "unknown field `sparkSql.mainClass`",
        ),
    ];
    for (doc, want) in cases {
        let e = err(doc);
        assert!(e.contains(want), "{doc}: {e}");
    }
}

#[test]
fn python_without_spark_is_one_process_sized_by_cpu_and_memory() {
    let job = parse(
        "name: py\npython:\n  file: /opt/jobs/report.py\n  args: [--day, 2026-01-01]\n  \
         requirements: [tabulate==0.9.0]\n  cpu: 500m\n  memory: 256m\n",
    )
    .unwrap();
    let JobKind::Python(p) = &job.kind else {
        panic!()
    };
    assert!(!p.spark && job.kind.spark_spec().is_none());
    assert_eq!(p.requirements, ["tabulate==0.9.0"]);
    let d = job_demand(&job).unwrap();
    let t = d.role(Role::Task).unwrap();
    assert_eq!((t.count, t.cpu_milli, t.mem_mib), (1, 500, 256));
    assert!(job.kind.runs_host_code());
}

#[test]
fn python_with_spark_is_sized_as_spark() {
    let job = parse(
        "name: py\npython:\n  file: /opt/jobs/etl.py\n  spark: true\n  \
         executor: {instances: 3, cores: 2, memory: 2g}\n",
    )
    .unwrap();
    let d = job_demand(&job).unwrap();
    let e = d.role(Role::Executor).unwrap();
    // 2 GiB + 0.4 x 2048 = 2867 MiB (Python's overhead factor).
    assert_eq!((e.count, e.cpu_milli, e.mem_mib), (3, 2000, 2048 + 819));
    let s = job.kind.spark_spec().unwrap();
    assert_eq!(s.main_application_file.as_deref(), Some("/opt/jobs/etl.py"));
}

#[test]
fn python_field_errors_name_the_field_and_value() {
    let cases = [
        (
            "name: p\npython: {args: [x]}",
            "missing field `python.file`",
        ),
        (
            "name: p\npython: {file: /a.py, executor: {instances: 1}}",
            "field `python.executor` = \"set\" needs `spark: true`",
        ),
        (
            "name: p\npython: {file: /a.py, spark: true, memory: 1g}",
            "field `python.memory` = \"set\" is for a job without Spark",
        ),
        (
            "name: p\npython: {file: /a.py, requirements: ['--index-url=http://x']}",
            "field `python.requirements[0]` = \"--index-url=http://x\" may not begin with '-'",
        ),
        (
            "name: p\npython: {file: /a.py, requirements: ['a b']}",
            "field `python.requirements[0]` = \"a b\" holds white space",
        ),
        (
            "name: p\npython: {file: /a.py, interpreter: python3}",
            "field `python.interpreter` = \"python3\" must be an absolute path",
        ),
        (
            "name: p\npython: {file: /a.py, env: {LD_PRELOAD: x}}",
            "field `python.env.LD_PRELOAD`",
        ),
        (
            "name: p\npython: {file: ../a.py}",
            "field `python.file` = \"../a.py\" may not contain `..`",
        ),
        (
            "name: p\npython: {file: /a.py, memory: 12q}",
            "field `python.memory` = \"12q\"",
        ),
        (
            "name: p\npython: {file: /a.py, spark: maybe}",
            "field `python.spark`",
        ),
    ];
    for (doc, want) in cases {
        let e = err(doc);
        assert!(e.contains(want), "{doc}: {e}");
    }
}

#[test]
fn dbt_parses_with_defaults_and_builds_its_arguments() {
    let job = parse(
        "name: d\ndbt:\n  projectDir: /srv/shop\n  select: [orders+, 'tag:daily']\n  \
         exclude: [legacy]\n  target: dev\n  vars: {day: 2026-01-02, n: 3}\n  memory: 2g\n",
    )
    .unwrap();
    let JobKind::Dbt(d) = &job.kind else { panic!() };
    assert_eq!(d.command, DbtCommand::Build);
    assert_eq!(
        d.args("/run/dbt-target"),
        [
            "build",
            "--project-dir",
            "/srv/shop",
            "--profiles-dir",
            "/srv/shop",
            "--target-path",
            "/run/dbt-target",
            "--target",
            "dev",
            "--select",
            "orders+",
            "tag:daily",
            "--exclude",
            "legacy",
            "--vars",
            r#"{"day":"2026-01-02","n":"3"}"#,
        ]
    );
    let t = job_demand(&job).unwrap().role(Role::Task).cloned().unwrap();
    assert_eq!((t.cpu_milli, t.mem_mib), (1000, 2048));
}

#[test]
fn dbt_field_errors_name_the_field_and_value() {
    let cases = [
        (
            "name: d\ndbt: {command: run}",
            "missing field `dbt.projectDir`",
        ),
        (
            "name: d\ndbt: {projectDir: shop}",
            "field `dbt.projectDir` = \"shop\" must be an absolute path",
        ),
        (
            "name: d\ndbt: {projectDir: /shop, command: compile}",
            "field `dbt.command`",
        ),
        (
            "name: d\ndbt: {projectDir: /shop, select: ['--full-refresh']}",
            "field `dbt.select[0]` = \"--full-refresh\" may not begin with '-'",
        ),
        (
            "name: d\ndbt: {projectDir: /shop, target: ''}",
            "field `dbt.target` = \"\" is empty",
        ),
        (
            "name: d\ndbt: {projectDir: /shop, cpu: lots}",
            "field `dbt.cpu` = \"lots\"",
        ),
        (
            "name: d\ndbt: {projectDir: /shop}\ncommand: {argv: [x]}",
            "give exactly one of `spark`, `sparkSql`, `python`, `dbt` and `command`",
        ),
    ];
    for (doc, want) in cases {
        let e = err(doc);
        assert!(e.contains(want), "{doc}: {e}");
    }
}

#[test]
fn an_oom_raise_grows_each_kind_memory() {
    let sql = parse(SQL).unwrap();
    let r = raise_memory(&sql, 2.0, None).unwrap().unwrap();
    assert_eq!(
        r.change,
        "driver memory 512 MiB -> 1 GiB, executor memory 512 MiB -> 1 GiB"
    );
    assert_eq!(r.demand.role(Role::Driver).unwrap().mem_mib, 1024 + 409);
    let dbt = parse("name: d\ndbt: {projectDir: /shop, memory: 1g}").unwrap();
    let r = raise_memory(&dbt, 1.5, None).unwrap().unwrap();
    assert_eq!(r.demand.role(Role::Task).unwrap().mem_mib, 1536);
    let py = parse("name: p\npython: {file: /a.py, spark: true}").unwrap();
    let r = raise_memory(&py, 2.0, Some(1536)).unwrap().unwrap();
    assert!(
        r.change.starts_with("driver memory 1 GiB -> "),
        "{}",
        r.change
    );
    assert_eq!(r.demand.role(Role::Executor).unwrap().mem_mib, 1536 + 614);
}

#[test]
fn a_rebuilt_document_parses_to_the_same_job_for_every_kind() {
    for doc in [
        SQL,
        "name: p\npython: {file: /a.py, requirements: [six], env: {A: b}}",
        "name: p\npython: {file: /a.py, spark: true, driver: {memory: 1g}}",
        "name: d\ndbt: {projectDir: /shop, command: test, select: [x], vars: {a: 1}}",
    ] {
        let job = parse(doc).unwrap();
        let text = rebuild_document(&job, &Default::default()).unwrap();
        assert_eq!(parse(&text).unwrap(), job, "{text}");
    }
}
