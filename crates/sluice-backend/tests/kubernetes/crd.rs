//! Rendering: every generated SparkApplication checked against the Spark Operator's real CRD schema; users' SparkApplications kept whole.

use super::*;

/// The CRD's openAPIV3Schema, made strict as the API server's `fieldValidation=Strict` (what
/// kubectl uses by default): an unknown field anywhere is an error, except where the schema
/// preserves unknown fields.
fn crd_validator() -> jsonschema::Validator {
    let text = shared_file("sparkoperator.k8s.io_sparkapplications.yaml");
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let versions = crd["spec"]["versions"].as_array().unwrap();
    let v1beta2 = versions.iter().find(|v| v["name"] == "v1beta2").unwrap();
    let mut schema = v1beta2["schema"]["openAPIV3Schema"].clone();
    fn strict(v: &mut Value) {
        match v {
            Value::Object(m) => {
                let preserve = m
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if m.contains_key("properties")
                    && !m.contains_key("additionalProperties")
                    && !preserve
                {
                    m.insert("additionalProperties".into(), Value::Bool(false));
                }
                for (_, c) in m.iter_mut() {
                    strict(c);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(strict),
            _ => {}
        }
    }
    strict(&mut schema);
    jsonschema::draft4::new(&schema).unwrap()
}

fn check_against_crd(v: &jsonschema::Validator, name: &str, app: &Value) {
    let errors: Vec<String> = v
        .iter_errors(app)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{app:#}");
    // What the API server checks in metadata.
    let meta = &app["metadata"];
    let n = meta["name"].as_str().unwrap();
    assert!(
        n.len() <= app::MAX_APP_NAME && is_label_value(n),
        "{name}: name {n}"
    );
    for place in ["labels"] {
        for (k, val) in meta[place].as_object().unwrap() {
            assert!(is_label_key(k), "{name}: label key {k}");
            assert!(
                is_label_value(val.as_str().unwrap()),
                "{name}: label {k}={val}"
            );
        }
    }
    for role in ["driver", "executor"] {
        for (k, val) in app["spec"][role]["labels"].as_object().unwrap() {
            assert!(
                is_label_key(k) && is_label_value(val.as_str().unwrap()),
                "{name}: {role} label {k}"
            );
        }
    }
}

#[test]
fn spark_sql_and_python_render_as_spark_applications_and_other_kinds_are_refused() {
    let (sql, demand) = parse(&format!(
        "name: report\nnamespace: {NS}\nsparkSql:\n  sql: \"SELECT 1;\\nSELECT 'a;b'\"\n"
    ));
    let app = build_app(
        &sql,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        1,
        &demand,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(app["spec"]["type"], "Python");
    assert_eq!(
        app["spec"]["mainApplicationFile"],
        "local:///opt/sluice/sluice_sql_runner.py"
    );
    assert_eq!(app["spec"]["arguments"][0], "--statements-json");
    let statements: Vec<String> =
        serde_json::from_str(app["spec"]["arguments"][1].as_str().unwrap()).unwrap();
    assert_eq!(statements, ["SELECT 1", "SELECT 'a;b'"]);
    let (py, demand) = parse(&format!(
        "name: etl\nnamespace: {NS}\npython:\n  file: local:///opt/app/etl.py\n  spark: true\n"
    ));
    let app = build_app(
        &py,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        1,
        &demand,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(
        app["spec"]["mainApplicationFile"],
        "local:///opt/app/etl.py"
    );
    let refused = [
        (
            format!("name: d\nnamespace: {NS}\ndbt: {{projectDir: /srv/shop}}\n"),
            "a `dbt` job is one process on a host",
        ),
        (
            format!("name: p\nnamespace: {NS}\npython: {{file: /a.py}}\n"),
            "a `python` job is one process on a host",
        ),
        (
            format!(
                "name: p\nnamespace: {NS}\npython: {{file: /a.py, spark: true, requirements: [six]}}\n"
            ),
            "python.requirements",
        ),
        (
            format!("name: q\nnamespace: {NS}\nsparkSql: {{file: /srv/q.sql}}\n"),
            "sparkSql.file \"/srv/q.sql\"",
        ),
    ];
    for (doc, want) in refused {
        let (job, demand) = parse(&doc);
        let e = build_app(
            &job,
            "01jz8m3v9q7x2kd4h6n8p0r2s4",
            1,
            &demand,
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(want), "{doc}: {e}");
    }
}

#[test]
fn generated_spark_applications_validate_against_the_crd() {
    let v = crd_validator();
    let mut jobs: Vec<(String, String)> = vec![
        ("shared spark-pi.yaml".into(), shared_file("spark-pi.yaml")),
        (
            "shared spark-pi-python.yaml".into(),
            shared_file("spark-pi-python.yaml"),
        ),
        ("examples/pi.yaml".into(), repo_file("examples/pi.yaml")),
        (
            "examples/spark-pi-python.yaml".into(),
            repo_file("examples/spark-pi-python.yaml"),
        ),
    ];
    let specs = [
        ("python pi", PI.to_string()),
        (
            "scala with main class, conf, deps, overhead factor",
            "  type: Scala
  mainClass: org.apache.spark.examples.SparkPi
  mainApplicationFile: local:///opt/spark/examples/jars/spark-examples.jar
  arguments: [\"1000\", 2, true]
  sparkConf: {spark.sql.shuffle.partitions: 8, spark.eventLog.enabled: true}
  memoryOverheadFactor: \"0.2\"
  sparkVersion: 3.5.3
  driver: {cores: 2, coreRequest: 1500m, memory: 2g, memoryOverhead: 512m}
  executor: {cores: 2, coreRequest: \"1\", memory: 4g, instances: 3}
  deps: {jars: [local:///opt/jars/a.jar], packages: [org.apache.spark:spark-avro_2.12:3.5.3]}
"
            .to_string(),
        ),
        (
            "dynamic allocation",
            "  mainApplicationFile: local:///opt/app/job.py
  dynamicAllocation: {enabled: true, initialExecutors: 2, minExecutors: 1, maxExecutors: 8, shuffleTrackingEnabled: true}
"
            .to_string(),
        ),
        (
            "zero executors",
            "  type: Java
  mainApplicationFile: local:///opt/app/app.jar
  executor: {instances: 0}
"
            .to_string(),
        ),
        (
            "R",
            "  mainApplicationFile: local:///opt/app/job.R\n  driver: {memory: 1g}\n".to_string(),
        ),
        (
            "secrets as secretKeyRef",
            "  mainApplicationFile: local:///opt/app/job.py
  secretEnv:
    DB_PASSWORD: {secretKeyRef: {name: db-creds, key: password}}
    API_TOKEN: {secretKeyRef: {name: api, key: token.v1}}
"
            .to_string(),
        ),
    ];
    for (name, spec) in specs {
        jobs.push((name.into(), spark_job("job.with-dots", &spec)));
    }
    jobs.push((
        "labels, some not valid in Kubernetes".into(),
        format!(
            "name: labelled\nnamespace: {NS}\nlabels: {{team: data, \"odd:key\": x, ok: \"{}\"}}\nspark:\n{PI}",
            "v".repeat(80)
        ),
    ));
    // The job kinds Spark runs: sparkSql (the runner in the image, the statements as its
    // argument) and python with spark: true.
    jobs.push((
        "sparkSql".into(),
        format!(
            "name: report\nnamespace: {NS}\nsparkSql:\n  sql: \"SELECT 1; SELECT ';' AS semi\"\n  \
             sparkConf: {{spark.sql.shuffle.partitions: 4}}\n  executor: {{instances: 2, memory: 1g}}\n"
        ),
    ));
    jobs.push((
        "python with spark".into(),
        format!(
            "name: etl\nnamespace: {NS}\npython:\n  file: local:///opt/app/etl.py\n  args: [x]\n  \
             spark: true\n  driver: {{memory: 1g}}\n"
        ),
    ));
    for (name, text) in &jobs {
        let (job, demand) = parse(text);
        for attempt in [1, 12] {
            let app = build_app(
                &job,
                "01jz8m3v9q7x2kd4h6n8p0r2s4",
                attempt,
                &demand,
                &Default::default(),
            )
            .unwrap();
            check_against_crd(&v, name, &app);
        }
    }
    // With a shared event-log location every application logs there (unless its sparkConf says
    // otherwise), and still validates.
    let logged = app::AppDefaults {
        event_log: Some(
            sluice_backend::eventlog::SharedEventLog::new(
                "s3a://bucket/spark-events",
                Some(std::path::Path::new("/mnt/events")),
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    for (name, text) in &jobs {
        let (job, demand) = parse(text);
        let app = build_app(&job, "01jz8m3v9q7x2kd4h6n8p0r2s4", 1, &demand, &logged).unwrap();
        check_against_crd(&v, &format!("{name}, event log"), &app);
        let conf = &app["spec"]["sparkConf"];
        assert_eq!(conf["spark.eventLog.enabled"], "true", "{name}: {conf}");
        assert_eq!(
            conf["spark.eventLog.dir"], "s3a://bucket/spark-events",
            "{name}"
        );
        assert_eq!(
            conf["spark.executor.processTreeMetrics.enabled"], "true",
            "{name}"
        );
        assert_eq!(
            conf["spark.eventLog.logStageExecutorMetrics"], "true",
            "{name}"
        );
        assert_eq!(
            conf["spark.executor.metrics.pollingInterval"], "500ms",
            "{name}"
        );
    }
    // A secret is a reference in the driver's and executors' env, never a value; a file or an
    // environment variable of the server cannot be used here.
    let (job, demand) = parse(&spark_job(
        "sec",
        "  mainApplicationFile: local:///opt/app/job.py\n  secretEnv: {DB_PASSWORD: {secretKeyRef: {name: db-creds, key: password}}}\n",
    ));
    let app = build_app(&job, "x", 1, &demand, &Default::default()).unwrap();
    for role in ["driver", "executor"] {
        assert_eq!(
            app["spec"][role]["env"],
            json!([{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}]),
            "{app}"
        );
    }
    let (job, demand) = parse(&spark_job(
        "sec",
        "  mainApplicationFile: local:///opt/app/job.py\n  secretEnv: {DB_PASSWORD: {file: /run/secrets/db}}\n",
    ));
    let err = build_app(&job, "x", 1, &demand, &Default::default()).unwrap_err();
    assert!(
        err.to_string().contains("spark.secretEnv.DB_PASSWORD"),
        "{err}"
    );
    // The validator does catch what the API server would refuse.
    let (job, demand) = parse(&spark_job("pi", PI));
    let mut app = build_app(&job, "x", 1, &demand, &Default::default()).unwrap();
    app["spec"]["executor"]["instances"] = json!(0);
    app["spec"]["driver"]["memroy"] = json!("1g");
    app["spec"]["type"] = json!("Perl");
    let errors: Vec<String> = v.iter_errors(&app).map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn a_users_spark_application_keeps_every_field() {
    let text = shared_file("spark-pi.yaml");
    let original: Value = serde_saphyr::from_str(&text).unwrap();
    let (job, demand) = parse(&text);
    let app = build_app(
        &job,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        2,
        &demand,
        &Default::default(),
    )
    .unwrap();
    // Every leaf of the original is still there with its value, except the name.
    fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, c)| leaves(c, format!("{path}/{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, c)| leaves(c, format!("{path}/{i}"), out)),
            other => out.push((path, other.clone())),
        }
    }
    let mut all = Vec::new();
    leaves(&original, String::new(), &mut all);
    assert!(all.len() > 30);
    for (path, value) in all {
        if path == "/metadata/name" {
            continue;
        }
        assert_eq!(app.pointer(&path), Some(&value), "{path}");
    }
    assert_eq!(app["metadata"]["name"], "spark-pi-h6n8p0r2s4-2");
    assert_eq!(
        app["metadata"]["annotations"][app::ORIGINAL_NAME_ANNOTATION],
        "spark-pi"
    );
    assert_eq!(
        app["metadata"]["labels"][JOB_ID_LABEL],
        "01jz8m3v9q7x2kd4h6n8p0r2s4"
    );
    assert_eq!(app["spec"]["driver"]["labels"][ATTEMPT_LABEL], "2");
    assert_eq!(app["spec"]["executor"]["labels"]["version"], "4.0.0");
    assert_eq!(app::demand_of(&app), Some(demand));
}

/// A restart policy in a user's SparkApplication is sluice's retry policy for the job: the
/// application sluice creates says `Never` (the operator must not retry sluice's attempts as
/// well) and keeps the original in an annotation.
#[test]
fn a_users_restart_policy_becomes_sluices_retries_not_the_operators() {
    let text = shared_file("spark-pi.yaml").replace(
        "spec:\n",
        "spec:\n  restartPolicy: {type: OnFailure, onFailureRetries: 2, onFailureRetryInterval: 10}\n",
    );
    assert!(text.contains("OnFailure"), "{text}");
    let levels = Levels::default();
    let (job, policy) = sluice_core::document::parse_job_with_policy(
        &text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap();
    assert!(policy.retry.is_some(), "sluice retries it: {policy:?}");
    let build = |job: &Job, demand: &Demand| {
        build_app(
            job,
            "01jz8m3v9q7x2kd4h6n8p0r2s4",
            1,
            demand,
            &Default::default(),
        )
        .unwrap()
    };
    let app = build(&job, &job_demand(&job).unwrap());
    assert_eq!(app["spec"]["restartPolicy"], json!({"type": "Never"}));
    let kept: Value = serde_json::from_str(
        app["metadata"]["annotations"][app::RESTART_POLICY_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        kept,
        json!({"type": "OnFailure", "onFailureRetries": 2, "onFailureRetryInterval": 10})
    );
    check_against_crd(&crd_validator(), "restart policy", &app);
    // `Never` stays as it is, with no annotation.
    let never = text.replace(
        "{type: OnFailure, onFailureRetries: 2, onFailureRetryInterval: 10}",
        "{type: Never}",
    );
    let (job, demand) = parse(&never);
    let app = build(&job, &demand);
    assert_eq!(app["spec"]["restartPolicy"], json!({"type": "Never"}));
    assert!(
        app["metadata"]["annotations"]
            .get(app::RESTART_POLICY_ANNOTATION)
            .is_none()
    );
}

#[test]
fn render_prints_the_objects_as_yaml() {
    let (job, demand) = parse(&spark_job("pi", PI));
    let objects = render_job(&job, "render", 1, &demand, &KubeSettings::default()).unwrap();
    assert_eq!(objects.len(), 1);
    let yaml = to_yaml(&objects).unwrap();
    assert!(yaml.contains("kind: SparkApplication"), "{yaml}");
    let back: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back, objects[0], "YAML reads back to the same object");

    let settings = KubeSettings {
        mode: CapacityMode::Placeholders,
        placeholder_priority_class: Some("sluice-placeholder".into()),
        ..KubeSettings::default()
    };
    let objects = render_job(&job, "render", 1, &demand, &settings).unwrap();
    assert_eq!(objects.len(), 4, "driver, two executors, the application");
    assert_eq!(objects[0]["kind"], "Pod");
    assert_eq!(
        objects[0]["spec"]["priorityClassName"],
        "sluice-placeholder"
    );
    assert_eq!(objects[3]["kind"], "SparkApplication");
    let yaml = to_yaml(&objects).unwrap();
    assert_eq!(yaml.matches("\n---\n").count(), 3, "{yaml}");
}
