use std::collections::BTreeMap;
use std::path::Path;

use sluice_core::document::parse_job;
use sluice_core::spec::{Deps, Job, JobKind, Levels, ParseOptions, SparkSpec, Text};

use super::*;
use crate::local::DEFAULT_IMAGE_SPARK_HOME;

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

fn spark_job(spec: SparkSpec) -> Job {
    Job {
        namespace: "default".into(),
        name: "app".into(),
        level: "normal".into(),
        labels: BTreeMap::new(),
        max_runtime_secs: None,
        kind: JobKind::Spark {
            spec: Box::new(spec),
            application: None,
            source: None,
        },
    }
}

fn pairs(argv: &[String], flag: &str) -> Vec<String> {
    argv.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

#[test]
fn python_spark_application_from_the_operator_example() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spark-operator/spark-pi-python.yaml");
    let text = std::fs::read_to_string(&path).expect("example present");
    let job = parse(&text);
    let home = Path::new("/home/u/.venv/lib/python3.11/site-packages/pyspark");
    let argv = spark_submit_argv(home, DEFAULT_IMAGE_SPARK_HOME, &job).expect("argv");
    assert_eq!(
        argv[0],
        "/home/u/.venv/lib/python3.11/site-packages/pyspark/bin/spark-submit"
    );
    // 1 executor x 1 core.
    assert_eq!(pairs(&argv, "--master"), ["local[1]"]);
    assert_eq!(pairs(&argv, "--name"), ["spark-pi-python"]);
    let confs = pairs(&argv, "--conf");
    assert!(confs.contains(&"spark.driver.memory=512m".to_string()));
    assert!(confs.contains(&"spark.driver.host=127.0.0.1".to_string()));
    assert!(confs.contains(&"spark.driver.bindAddress=127.0.0.1".to_string()));
    assert!(confs.contains(&"spark.ui.enabled=false".to_string()));
    assert!(pairs(&argv, "--class").is_empty());
    assert_eq!(
        argv.last().map(String::as_str),
        Some("/home/u/.venv/lib/python3.11/site-packages/pyspark/examples/src/main/python/pi.py")
    );
}

#[test]
fn local_paths_are_mapped() {
    let home = Path::new("/sh");
    let m = |p: &str| map_local_path(p, home, "/opt/spark");
    assert_eq!(
        m("local:///opt/spark/examples/jars/x.jar"),
        "/sh/examples/jars/x.jar"
    );
    assert_eq!(m("/opt/spark/examples/pi.py"), "/sh/examples/pi.py");
    assert_eq!(m("local:///data/app.py"), "/data/app.py");
    assert_eq!(m("/opt/sparkling/app.py"), "/opt/sparkling/app.py");
    assert_eq!(m("s3a://bucket/app.py"), "s3a://bucket/app.py");
    assert_eq!(m("https://h/opt/spark/a.jar"), "https://h/opt/spark/a.jar");
    assert_eq!(m("app.py"), "app.py");
    assert_eq!(
        map_local_path("/opt/spark/a.py", home, ""),
        "/opt/spark/a.py"
    );
}

#[test]
fn conf_passthrough_main_class_and_deps() {
    let mut spec = SparkSpec {
        main_application_file: Some("local:///opt/spark/examples/jars/spark-examples.jar".into()),
        main_class: Some("org.apache.spark.examples.SparkPi".into()),
        arguments: vec![Text("100".into()), Text("x y".into())],
        ..Default::default()
    };
    spec.executor.instances = Some(3);
    spec.executor.cores = Some(2);
    spec.driver.memory = Some(Text("2g".into()));
    for (k, v) in [
        ("spark.sql.shuffle.partitions", "8"),
        ("spark.ui.enabled", "true"),
        ("spark.driver.host", "localhost"),
        ("spark.master", "k8s://https://x"),
        ("spark.submit.deployMode", "cluster"),
    ] {
        spec.spark_conf.insert(k.into(), Text(v.into()));
    }
    spec.deps = Some(Deps {
        jars: vec!["local:///opt/spark/jars/a.jar".into(), "/x/b.jar".into()],
        files: vec!["/f/one".into()],
        py_files: vec!["dep.zip".into()],
        packages: vec!["g:a:1".into(), "g:b:2".into()],
        exclude_packages: vec!["g:c".into()],
        repositories: vec!["https://repo".into()],
        archives: vec!["env.tar.gz#env".into()],
    });
    let argv = spark_submit_argv(Path::new("/sh"), "/opt/spark", &spark_job(spec)).unwrap();
    assert_eq!(pairs(&argv, "--master"), ["local[6]"]);
    let confs = pairs(&argv, "--conf");
    assert!(confs.contains(&"spark.driver.memory=2048m".to_string()));
    assert!(confs.contains(&"spark.sql.shuffle.partitions=8".to_string()));
    // The user's own values are kept, and the defaults are not added next to them.
    assert!(confs.contains(&"spark.ui.enabled=true".to_string()));
    assert!(!confs.contains(&"spark.ui.enabled=false".to_string()));
    assert!(confs.contains(&"spark.driver.host=localhost".to_string()));
    assert!(!confs.contains(&"spark.driver.host=127.0.0.1".to_string()));
    assert!(confs.contains(&"spark.driver.bindAddress=127.0.0.1".to_string()));
    assert!(!confs.iter().any(|c| c.starts_with("spark.master=")));
    assert!(
        !confs
            .iter()
            .any(|c| c.starts_with("spark.submit.deployMode="))
    );
    assert_eq!(
        pairs(&argv, "--class"),
        ["org.apache.spark.examples.SparkPi"]
    );
    assert_eq!(pairs(&argv, "--jars"), ["/sh/jars/a.jar,/x/b.jar"]);
    assert_eq!(pairs(&argv, "--files"), ["/f/one"]);
    assert_eq!(pairs(&argv, "--py-files"), ["dep.zip"]);
    assert_eq!(pairs(&argv, "--packages"), ["g:a:1,g:b:2"]);
    assert_eq!(pairs(&argv, "--exclude-packages"), ["g:c"]);
    assert_eq!(pairs(&argv, "--repositories"), ["https://repo"]);
    assert_eq!(pairs(&argv, "--archives"), ["env.tar.gz#env"]);
    let tail = &argv[argv.len() - 3..];
    assert_eq!(tail, ["/sh/examples/jars/spark-examples.jar", "100", "x y"]);
}

#[test]
fn command_jobs_have_no_spark_submit_argv() {
    let job = parse("name: c\ncommand:\n  argv: [true]\n");
    assert!(matches!(
        spark_submit_argv(Path::new("/sh"), "/opt/spark", &job),
        Err(BackendError::Rejected(_))
    ));
}

#[test]
fn a_logged_run_writes_its_event_log_where_sluice_reads_it() {
    let mut spec = SparkSpec {
        main_application_file: Some("/app/pi.py".into()),
        ..SparkSpec::default()
    };
    for (k, v) in [
        ("spark.eventLog.dir", "hdfs://elsewhere/logs"),
        ("spark.eventLog.enabled", "false"),
        ("spark.executor.processTreeMetrics.enabled", "false"),
    ] {
        spec.spark_conf.insert(k.into(), Text(v.into()));
    }
    let job = spark_job(spec);
    let dir = Path::new("/data/runs/j1/1/eventlog");
    let argv = spark_submit_argv_logged(Path::new("/sh"), "/opt/spark", &job, dir).unwrap();
    let confs = pairs(&argv, "--conf");
    let has = |c: &str| confs.iter().filter(|x| x.as_str() == c).count();
    assert_eq!(has("spark.eventLog.enabled=true"), 1);
    assert_eq!(has("spark.eventLog.dir=file:///data/runs/j1/1/eventlog"), 1);
    // The job's own log settings would hide the log from sluice: dropped.
    assert_eq!(has("spark.eventLog.enabled=false"), 0);
    assert_eq!(has("spark.eventLog.dir=hdfs://elsewhere/logs"), 0);
    // Metrics the job chose are kept; the others are on.
    assert_eq!(has("spark.executor.processTreeMetrics.enabled=false"), 1);
    assert_eq!(has("spark.executor.processTreeMetrics.enabled=true"), 0);
    assert_eq!(has("spark.eventLog.logStageExecutorMetrics=true"), 1);
    assert_eq!(has("spark.executor.metrics.pollingInterval=500ms"), 1);
    // Without a log, none of it.
    let plain = spark_submit_argv(Path::new("/sh"), "/opt/spark", &job).unwrap();
    assert!(!plain.iter().any(|a| a == "spark.eventLog.enabled=true"));
}
