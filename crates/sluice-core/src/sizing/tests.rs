use super::*;
use crate::spec::{AppType, DynamicAllocation};

/// One row: a spec tweak and the expected (driver cpu, driver MiB, executor count, executor cpu, executor MiB).
struct Row {
    name: &'static str,
    spec: SparkSpec,
    want: (u64, u64, u32, u64, u64),
}

fn t(s: &str) -> Option<Text> {
    Some(Text(s.into()))
}

fn base(app: AppType) -> SparkSpec {
    SparkSpec {
        app_type: Some(app),
        main_application_file: Some("app".into()),
        ..Default::default()
    }
}

fn with_conf(mut s: SparkSpec, kv: &[(&str, &str)]) -> SparkSpec {
    for (k, v) in kv {
        s.spark_conf.insert((*k).into(), Text((*v).into()));
    }
    s
}

#[test]
fn sizing_table() {
    let mut rows = vec![
        Row {
            name: "defaults, JVM: 1g heap + 384 min overhead, 2 executors",
            spec: base(AppType::Scala),
            want: (1000, 1024 + 384, 2, 1000, 1024 + 384),
        },
        Row {
            name: "defaults, Python: factor 0.4 -> 409",
            spec: base(AppType::Python),
            want: (1000, 1024 + 409, 2, 1000, 1024 + 409),
        },
        Row {
            name: "R uses 0.4 too",
            spec: base(AppType::R),
            want: (1000, 1433, 2, 1000, 1433),
        },
        Row {
            name: "Java is JVM (0.1), not Python",
            spec: {
                let mut s = base(AppType::Java);
                s.driver.memory = t("8g");
                s
            },
            want: (1000, 8192 + 819, 2, 1000, 1408),
        },
    ];
    // "512m" is 512 MiB (not 512 bytes, not 512 x 10^6): overhead is the 384 minimum.
    let mut s = base(AppType::Scala);
    s.driver.memory = t("512m");
    s.executor.memory = t("512m");
    s.executor.instances = Some(1);
    rows.push(Row {
        name: "512m is MiB",
        spec: s,
        want: (1000, 896, 1, 1000, 896),
    });
    // Bare numbers are MiB.
    let s = with_conf(
        base(AppType::Scala),
        &[
            ("spark.driver.memory", "2048"),
            ("spark.executor.memory", "4096"),
        ],
    );
    rows.push(Row {
        name: "bare number is MiB",
        spec: s,
        want: (1000, 2048 + 384, 2, 1000, 4096 + 409),
    });
    // Explicit overhead wins over any factor.
    let mut s = with_conf(
        base(AppType::Python),
        &[("spark.driver.memoryOverheadFactor", "0.5")],
    );
    s.driver.memory_overhead = t("100m");
    s.executor.instances = Some(1);
    rows.push(Row {
        name: "explicit overhead",
        spec: s,
        want: (1000, 1124, 1, 1000, 1433),
    });
    // Overhead from conf.
    let s = with_conf(
        base(AppType::Scala),
        &[("spark.executor.memoryOverhead", "1g")],
    );
    rows.push(Row {
        name: "overhead from conf",
        spec: s,
        want: (1000, 1408, 2, 1000, 2048),
    });
    // Role factor beats kubernetes factor beats spec factor beats default.
    let mut s = with_conf(
        base(AppType::Scala),
        &[
            ("spark.driver.memoryOverheadFactor", "0.5"),
            ("spark.kubernetes.memoryOverheadFactor", "0.25"),
        ],
    );
    s.memory_overhead_factor = t("0.75");
    s.driver.memory = t("4g");
    s.executor.memory = t("4g");
    rows.push(Row {
        name: "factor precedence",
        spec: s,
        want: (1000, 4096 + 2048, 2, 1000, 4096 + 1024),
    });
    let mut s = base(AppType::Python);
    s.memory_overhead_factor = t("0.2");
    s.executor.memory = t("4g");
    rows.push(Row {
        name: "spec factor beats the Python default",
        spec: s,
        want: (1000, 1024 + 384, 2, 1000, 4096 + 819),
    });
    // Truncation, not rounding: 0.1 x 5000 = 500 exactly; 0.15 x 4000 = 600; 0.1 x 3999 = 399.9 -> 399.
    let mut s = base(AppType::Scala);
    s.driver.memory = t("3999m");
    rows.push(Row {
        name: "truncates",
        spec: s,
        want: (1000, 3999 + 399, 2, 1000, 1408),
    });
    // Spark 4's minMemoryOverhead.
    let s = with_conf(
        base(AppType::Scala),
        &[("spark.executor.minMemoryOverhead", "512m")],
    );
    rows.push(Row {
        name: "min overhead",
        spec: s,
        want: (1000, 1408, 2, 1000, 1536),
    });
    // CPU: coreRequest beats cores; cores from conf.
    let mut s = with_conf(base(AppType::Scala), &[("spark.executor.cores", "4")]);
    s.driver.cores = Some(2);
    s.driver.core_request = t("500m");
    rows.push(Row {
        name: "coreRequest beats cores",
        spec: s,
        want: (500, 1408, 2, 4000, 1408),
    });
    let s = with_conf(
        base(AppType::Scala),
        &[
            ("spark.kubernetes.executor.request.cores", "0.25"),
            ("spark.executor.cores", "2"),
        ],
    );
    rows.push(Row {
        name: "request.cores conf",
        spec: s,
        want: (1000, 1408, 2, 250, 1408),
    });
    // Dynamic allocation: max(instances, initial, min).
    let mut s = base(AppType::Scala);
    s.dynamic_allocation = Some(DynamicAllocation {
        enabled: true,
        initial_executors: Some(3),
        min_executors: Some(5),
        max_executors: Some(10),
        ..Default::default()
    });
    s.executor.instances = Some(4);
    rows.push(Row {
        name: "DA: min wins",
        spec: s,
        want: (1000, 1408, 5, 1000, 1408),
    });
    let s = with_conf(
        base(AppType::Scala),
        &[
            ("spark.dynamicAllocation.enabled", "true"),
            ("spark.dynamicAllocation.initialExecutors", "6"),
            ("spark.dynamicAllocation.minExecutors", "1"),
        ],
    );
    rows.push(Row {
        name: "DA from conf: initial wins",
        spec: s,
        want: (1000, 1408, 6, 1000, 1408),
    });
    let mut s = base(AppType::Scala);
    s.dynamic_allocation = Some(DynamicAllocation {
        enabled: true,
        ..Default::default()
    });
    rows.push(Row {
        name: "DA with nothing set: driver only",
        spec: s,
        want: (1000, 1408, 0, 1000, 1408),
    });
    // Executor extras: pyspark memory (Python only) and off-heap.
    let s = with_conf(
        base(AppType::Python),
        &[
            ("spark.executor.pyspark.memory", "512m"),
            ("spark.executor.instances", "1"),
        ],
    );
    rows.push(Row {
        name: "pyspark memory",
        spec: s,
        want: (1000, 1433, 1, 1000, 1433 + 512),
    });
    let s = with_conf(
        base(AppType::Scala),
        &[
            ("spark.memory.offHeap.enabled", "true"),
            ("spark.memory.offHeap.size", "1073741824"),
        ],
    );
    rows.push(Row {
        name: "off-heap in bytes",
        spec: s,
        want: (1000, 1408, 2, 1000, 1408 + 1024),
    });
    let s = with_conf(
        base(AppType::Scala),
        &[
            ("spark.memory.offHeap.enabled", "false"),
            ("spark.memory.offHeap.size", "1g"),
        ],
    );
    rows.push(Row {
        name: "off-heap disabled",
        spec: s,
        want: (1000, 1408, 2, 1000, 1408),
    });

    for row in rows {
        let d = spark_demand(&row.spec, "spark").unwrap_or_else(|e| panic!("{}: {e}", row.name));
        let driver = d.role(Role::Driver).expect("driver");
        let (dc, dm, n, ec, em) = row.want;
        assert_eq!(
            (driver.count, driver.cpu_milli, driver.mem_mib),
            (1, dc, dm),
            "{} (driver)",
            row.name
        );
        match d.role(Role::Executor) {
            Some(e) => assert_eq!(
                (e.count, e.cpu_milli, e.mem_mib),
                (n, ec, em),
                "{} (executor)",
                row.name
            ),
            None => assert_eq!(n, 0, "{} (no executors)", row.name),
        }
    }
}

#[test]
fn errors_name_the_field() {
    let s = with_conf(base(AppType::Scala), &[("spark.executor.memory", "12qb")]);
    let e = spark_demand(&s, "spec").unwrap_err().to_string();
    assert!(
        e.contains("spec.sparkConf[spark.executor.memory]") && e.contains("12qb"),
        "{e}"
    );
    let s = with_conf(
        base(AppType::Scala),
        &[("spark.kubernetes.memoryOverheadFactor", "-1")],
    );
    let e = spark_demand(&s, "spark").unwrap_err().to_string();
    assert!(
        e.contains("memoryOverheadFactor") && e.contains("-1"),
        "{e}"
    );
    let mut s = base(AppType::Scala);
    s.executor.instances = Some(-1);
    assert!(
        spark_demand(&s, "spark")
            .unwrap_err()
            .to_string()
            .contains("executor.instances")
    );
}

#[test]
fn local_threads_are_executors_times_cores() {
    let mut s = base(AppType::Python);
    s.executor.instances = Some(2);
    s.executor.cores = Some(3);
    assert_eq!(local_threads(&s).unwrap(), 6);
    s.executor.instances = Some(0);
    assert_eq!(local_threads(&s).unwrap(), 1);
}

#[test]
fn standalone_counts_heap_only_and_no_driver_in_client_mode() {
    // Python: overhead 0.4 and pyspark memory would count on Kubernetes, not on standalone.
    let mut s = with_conf(
        base(AppType::Python),
        &[
            ("spark.executor.pyspark.memory", "512m"),
            ("spark.executor.memoryOverhead", "1g"),
        ],
    );
    s.executor.instances = Some(2);
    s.executor.cores = Some(1);
    s.executor.memory = t("1g");
    s.executor.core_request = t("250m");
    s.driver.memory = t("2g");
    let d = standalone_demand(&s, "spark", DeployMode::Client).unwrap();
    assert_eq!(d.role(Role::Driver), None);
    let e = d.role(Role::Executor).unwrap();
    assert_eq!((e.count, e.cpu_milli, e.mem_mib), (2, 1000, 1024));
    // Cluster mode: the driver too, heap only, spark.driver.cores.
    let mut s = with_conf(
        base(AppType::Scala),
        &[("spark.driver.cores", "2"), ("spark.executor.memory", "3g")],
    );
    s.executor.instances = Some(1);
    let d = standalone_demand(&s, "spark", DeployMode::Cluster).unwrap();
    let dr = d.role(Role::Driver).unwrap();
    assert_eq!((dr.count, dr.cpu_milli, dr.mem_mib), (1, 2000, 1024));
    let e = d.role(Role::Executor).unwrap();
    assert_eq!((e.count, e.cpu_milli, e.mem_mib), (1, 1000, 3072));
    // Defaults: 2 executors of 1 core and 1g.
    let d = standalone_demand(&base(AppType::Java), "spec", DeployMode::Client).unwrap();
    assert_eq!(d.total(), crate::job::Resources::new(2000, 2048));
    // Dynamic allocation: the initial executors.
    let mut s = base(AppType::Scala);
    s.dynamic_allocation = Some(DynamicAllocation {
        enabled: true,
        initial_executors: Some(3),
        ..Default::default()
    });
    let d = standalone_demand(&s, "spark", DeployMode::Client).unwrap();
    assert_eq!(d.role(Role::Executor).unwrap().count, 3);
}

#[test]
fn standalone_needs_an_executor_and_names_bad_fields() {
    let mut s = base(AppType::Scala);
    s.executor.instances = Some(0);
    let e = standalone_demand(&s, "spark", DeployMode::Client)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spark.executor.instances") && e.contains("at least one executor"),
        "{e}"
    );
    let s = with_conf(base(AppType::Scala), &[("spark.driver.memory", "lots")]);
    let e = standalone_demand(&s, "spec", DeployMode::Cluster)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spec.sparkConf[spark.driver.memory]") && e.contains("lots"),
        "{e}"
    );
    let mut s = base(AppType::Scala);
    s.executor.cores = Some(0);
    let e = standalone_demand(&s, "spark", DeployMode::Client)
        .unwrap_err()
        .to_string();
    assert!(e.contains("spark.executor.cores"), "{e}");
}

#[test]
fn command_defaults() {
    let c = CommandSpec {
        argv: vec![Text("ls".into())],
        ..Default::default()
    };
    let d = command_demand(&c).unwrap();
    assert_eq!(d.total(), crate::job::Resources::new(1000, 1024));
    let c = CommandSpec {
        cpu: t("250m"),
        memory: t("64m"),
        ..c
    };
    assert_eq!(
        command_demand(&c).unwrap().total(),
        crate::job::Resources::new(250, 64)
    );
}
