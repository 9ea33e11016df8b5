//! The Kubernetes backend against an in-process fake API server (`kube_fake`, real API JSON
//! shapes over HTTP on 127.0.0.1), every generated SparkApplication checked against the real
//! CRD schema, and an opt-in run against a real cluster when `KUBECONFIG` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_fake;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube_fake::{FakeApi, node, pod};
use serde_json::{Value, json};
use sluice_backend::kubernetes::app::{
    self, ATTEMPT_LABEL, JOB_ID_LABEL, PLACEHOLDER_LABEL, app_name, build_app, is_label_key,
    is_label_value,
};
use sluice_backend::kubernetes::render::{render_job, to_yaml};
use sluice_backend::kubernetes::{CapacityMode, KubeBackend, KubeSettings};
use sluice_backend::{Backend, BackendError, Held, RunRef, RunStatus, SubmitRequest};
use sluice_core::capacity::NodeCapacity;
use sluice_core::cycle::{Candidate, CycleInput, NamespacePolicy, WaitReason, schedule};
use sluice_core::document::parse_job;
use sluice_core::job::{Demand, JobState};
use sluice_core::record::JobRecord;
use sluice_core::sizing::job_demand;
use sluice_core::spec::{Job, Levels, ParseOptions};

const NS: &str = "spark";

fn repo_file(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn shared_file(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spark-operator")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(text: &str) -> (Job, Demand) {
    let levels = Levels::default();
    let job = parse_job(
        text,
        ParseOptions {
            priority: None,
            levels: &levels,
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let demand = job_demand(&job).unwrap();
    (job, demand)
}

/// A sluice-spec Spark job in namespace `spark`.
fn spark_job(name: &str, spark: &str) -> String {
    format!("name: {name}\nnamespace: {NS}\nspark:\n{spark}")
}

const PI: &str = "  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py
  driver: {cores: 1, memory: 512m}
  executor: {cores: 1, instances: 2, memory: 512m}
";

fn request(job_id: &str, text: &str) -> SubmitRequest {
    let (job, demand) = parse(text);
    SubmitRequest {
        job_id: job_id.into(),
        attempt: 1,
        job,
        demand,
    }
}

fn record(req: &SubmitRequest) -> JobRecord {
    JobRecord {
        id: req.job_id.clone(),
        namespace: req.job.namespace.clone(),
        name: req.job.name.clone(),
        level: req.job.level.clone(),
        state: JobState::Queued,
        attempt: req.attempt,
        labels: BTreeMap::new(),
        stored: Ok(
            sluice_core::stored::StoredJob::rebuilt(req.job.clone(), Default::default()).unwrap(),
        ),
        demand: req.demand.clone(),
        created_at_ms: 0,
        enqueued_at_ms: 0,
        updated_at_ms: 0,
        started_at_ms: None,
        finished_at_ms: None,
        backend_ref: None,
        exit_code: None,
        message: None,
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn backend(fake: &FakeApi, tweak: impl FnOnce(&mut KubeSettings)) -> KubeBackend {
    let mut s = KubeSettings {
        namespaces: vec![NS.into()],
        watchdog: None,
        ..KubeSettings::default()
    };
    tweak(&mut s);
    let b = KubeBackend::with_client(fake.client(), s).await.unwrap();
    b.wait_ready(Duration::from_secs(10)).await.unwrap();
    b
}

/// A node of pool "gpu" (8 cores, 32 GiB) with the NoSchedule taint `nvidia.com/gpu=present`.
fn gpu_node() -> Value {
    node(
        "gpu",
        "8",
        "32Gi",
        110,
        json!({"pool": "gpu"}),
        json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]),
    )
}

fn no_labels() -> Value {
    json!({})
}

/// Runs one pure scheduling cycle over the backend's snapshot and constraints.
async fn cycle(
    b: &KubeBackend,
    reqs: &[&SubmitRequest],
) -> (Vec<String>, Vec<(String, WaitReason)>) {
    let report = b.capacity().await.unwrap();
    let candidates: Vec<Candidate> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| Candidate {
            id: r.job_id.clone(),
            namespace: r.job.namespace.clone(),
            level: 0,
            enqueued_at_ms: i as i64,
            demand: r.demand.clone(),
            constraints: b.constraints(&record(r), &report.snapshot.nodes),
        })
        .collect();
    let held = BTreeMap::new();
    let namespaces: BTreeMap<String, NamespacePolicy> = [(
        NS.to_string(),
        NamespacePolicy {
            weight: 1,
            policy: sluice_core::cycle::HeadPolicy::BestEffort,
        },
    )]
    .into();
    let out = schedule(&CycleInput {
        candidates: &candidates,
        snapshot: &report.snapshot,
        held: &held,
        namespaces: &namespaces,
        default_policy: NamespacePolicy::default(),
    });
    (
        out.admitted
            .iter()
            .map(|a| candidates[a.index].id.clone())
            .collect(),
        out.waiting
            .into_iter()
            .map(|w| (candidates[w.index].id.clone(), w.reason))
            .collect(),
    )
}

// ---------------------------------------------------------------- CRD schema

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

// ---------------------------------------------------------------- snapshot capacity

fn spark_labels(app: &Value, role: &str) -> Value {
    let mut l = app["spec"][role]["labels"].clone();
    l["spark-role"] = json!(role);
    l["sparkoperator.k8s.io/app-name"] = app["metadata"]["name"].clone();
    l
}

/// Plays the operator and Spark: the driver or an executor pod of `app`.
fn spark_pod(fake: &FakeApi, app: &Value, role: &str, i: u32, node: Option<&str>, phase: &str) {
    let name = app["metadata"]["name"].as_str().unwrap();
    let demand = app::demand_of(app).unwrap();
    let r = if role == "driver" {
        sluice_core::job::Role::Driver
    } else {
        sluice_core::job::Role::Executor
    };
    let each = demand.role(r).unwrap().each();
    let pod_name = if role == "driver" {
        format!("{name}-driver")
    } else {
        format!("{name}-exec-{i}")
    };
    fake.put(
        "pods",
        NS,
        pod(
            &pod_name,
            node,
            phase,
            &format!("{}m", each.cpu_milli),
            &format!("{}Mi", each.mem_mib),
            spark_labels(app, role),
        ),
    );
}

fn set_state(fake: &FakeApi, name: &str, state: &str, message: &str) {
    assert!(fake.update("sparkapplications", NS, name, |a| {
        a["status"] = json!({"applicationState": {"state": state, "errorMessage": message}});
    }));
}

#[tokio::test]
async fn fragmentation_enough_in_total_but_no_node_holds_the_driver() {
    let fake = FakeApi::start().await;
    for n in ["a", "b", "c"] {
        fake.put(
            "nodes",
            "",
            node(n, "2", "8Gi", 110, no_labels(), json!([])),
        );
    }
    // Each node has 1.5 cores free: 4.5 cores in all.
    for n in ["a", "b", "c"] {
        fake.put(
            "pods",
            "other",
            pod(
                &format!("busy-{n}"),
                Some(n),
                "Running",
                "500m",
                "1Gi",
                no_labels(),
            ),
        );
    }
    let b = backend(&fake, |_| {}).await;
    let big_driver = request(
        "j1",
        &spark_job(
            "big",
            "  mainApplicationFile: local:///a.py\n  driver: {cores: 2, memory: 1g}\n  executor: {instances: 1, cores: 1, memory: 512m}\n",
        ),
    );
    let (admitted, waiting) = cycle(&b, &[&big_driver]).await;
    assert!(admitted.is_empty());
    let WaitReason::NoRoom(no_fit) = &waiting[0].1 else {
        panic!("{waiting:?}")
    };
    assert_eq!(no_fit.unplaced, sluice_core::job::Role::Driver);
    let text = waiting[0].1.to_string();
    assert!(text.contains("largest free slot 1.5 cores"), "{text}");
    assert!(text.contains("4.5 cores / 21 GiB free in all"), "{text}");
    // The same job with a 1.5-core driver fits.
    let fits = request(
        "j2",
        &spark_job(
            "fits",
            "  mainApplicationFile: local:///a.py\n  driver: {cores: 2, coreRequest: 1500m, memory: 1g}\n  executor: {instances: 1, cores: 1, memory: 512m}\n",
        ),
    );
    let (admitted, _) = cycle(&b, &[&fits]).await;
    assert_eq!(admitted, vec!["j2"]);
}

#[tokio::test]
async fn taints_and_selectors_restrict_the_nodes() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node(
            "control",
            "8",
            "32Gi",
            110,
            json!({"node-role.kubernetes.io/control-plane": ""}),
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        ),
    );
    fake.put(
        "nodes",
        "",
        node("cpu", "2", "8Gi", 110, json!({"pool": "cpu"}), json!([])),
    );
    fake.put("nodes", "", gpu_node());
    let b = backend(&fake, |_| {}).await;
    // 3 pods of 1 core: with the tainted nodes out, only "cpu" (2 cores) is left.
    let plain = request("plain", &spark_job("plain", PI));
    let (admitted, waiting) = cycle(&b, &[&plain]).await;
    assert!(admitted.is_empty(), "{waiting:?}");
    assert!(
        waiting[0]
            .1
            .to_string()
            .contains("largest free slot 2 cores"),
        "{}",
        waiting[0].1
    );
    // A SparkApplication that selects the gpu pool and tolerates its taint fits there.
    let gpu_app = "apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: gpu, namespace: spark}
spec:
  type: Python
  sparkVersion: 4.0.4
  mainApplicationFile: local:///a.py
  nodeSelector: {pool: gpu}
  driver:
    cores: 1
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  executor:
    cores: 1
    instances: 4
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
";
    let gpu = request("gpu", gpu_app);
    let (admitted, _) = cycle(&b, &[&gpu]).await;
    assert_eq!(admitted, vec!["gpu"]);
    // Without the toleration, no node accepts it: held back with the reason.
    let untolerated = request(
        "untol",
        &gpu_app.replace(
            "    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n",
            "",
        ),
    );
    assert!(
        matches!(&untolerated.job.kind, sluice_core::spec::JobKind::Spark { application: Some(a), .. } if a["spec"]["driver"].get("tolerations").is_none())
    );
    let (admitted, waiting) = cycle(&b, &[&untolerated]).await;
    assert!(admitted.is_empty());
    let why = waiting[0].1.to_string();
    assert!(why.contains("no node accepts the driver"), "{why}");
    assert!(
        why.contains("taint nvidia.com/gpu=present:NoSchedule"),
        "{why}"
    );
    assert!(why.contains("node cpu lacks label pool=gpu"), "{why}");
}

#[tokio::test]
async fn terminating_pods_still_count_and_finished_pods_do_not() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "16Gi", 3, no_labels(), json!([])),
    );
    let mut terminating = pod("old", Some("a"), "Running", "3", "1Gi", no_labels());
    terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    fake.put("pods", "other", terminating);
    fake.put(
        "pods",
        "other",
        pod("done", Some("a"), "Succeeded", "4", "16Gi", no_labels()),
    );
    fake.put(
        "pods",
        "other",
        pod("failed", Some("a"), "Failed", "4", "16Gi", no_labels()),
    );
    fake.put(
        "pods",
        "other",
        pod("pending", None, "Pending", "4", "16Gi", no_labels()),
    );
    let b = backend(&fake, |_| {}).await;
    let report = b.capacity().await.unwrap();
    assert_eq!(
        report.snapshot.nodes,
        vec![NodeCapacity::new("a", 1000, 15 * 1024, Some(2))]
    );
    assert_eq!(
        report.snapshot.allocatable,
        vec![NodeCapacity::new("a", 4000, 16 * 1024, Some(3))]
    );
    // Once it is gone, its room is free again (seen through the watch).
    fake.remove("pods", "other", "old");
    eventually("the deleted pod's room is free", || async {
        b.capacity().await.unwrap().snapshot.nodes[0].cpu_milli == 4000
    })
    .await;
    // A cordoned or NotReady node offers nothing.
    assert!(
        fake.update("nodes", "", "a", |n| n["spec"]["unschedulable"] =
            json!(true))
    );
    eventually("the cordoned node is left out", || async {
        b.capacity().await.unwrap().snapshot.nodes.is_empty()
    })
    .await;
}

#[tokio::test]
async fn namespace_quota_holds_jobs_back() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "16", "64Gi", 110, no_labels(), json!([])),
    );
    fake.put(
        "resourcequotas",
        NS,
        json!({
            "metadata": {"name": "team"},
            "spec": {"hard": {"requests.cpu": "4", "requests.memory": "16Gi", "pods": "10"}},
            "status": {"hard": {"requests.cpu": "4", "requests.memory": "16Gi", "pods": "10"},
                       "used": {"requests.cpu": "1500m", "requests.memory": "1Gi", "pods": "1"}}
        }),
    );
    let b = backend(&fake, |_| {}).await;
    // 3 cores: fits the 2.5 cores left in the quota? No.
    let job = request("q1", &spark_job("q", PI));
    let (admitted, waiting) = cycle(&b, &[&job]).await;
    assert!(admitted.is_empty());
    assert_eq!(waiting[0].1.kind(), "constrained");
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("ResourceQuota team requests.cpu: needs 3 cores, 1.5 cores of 4 cores used"),
        "{why}"
    );
    // A job of 1.5 cores fits the 2.5 cores left...
    let small = |id: &str| {
        request(
            id,
            &spark_job(
                id,
                "  mainApplicationFile: local:///a.py\n  driver: {cores: 2, coreRequest: 1500m}\n  executor: {instances: 0}\n",
            ),
        )
    };
    let (s1, s2) = (small("s1"), small("s2"));
    let (admitted, _) = cycle(&b, &[&s1]).await;
    assert_eq!(admitted, vec!["s1"]);
    b.submit(&s1).await.unwrap();
    // ...but once it is submitted (its pods not created, so not in the quota's `used` yet), a
    // second one no longer does.
    let (admitted, waiting) = cycle(&b, &[&s2]).await;
    assert!(admitted.is_empty(), "{waiting:?}");
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("needs 1.5 cores, 3 cores of 4 cores used"),
        "{why}"
    );
    // Its driver pod exists and the quota counts it: still held back, by the same amount.
    let app = fake.list("sparkapplications", NS).pop().unwrap();
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Running");
    assert!(fake.update("resourcequotas", NS, "team", |q| {
        q["status"]["used"]["requests.cpu"] = json!("3");
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, waiting) = cycle(&b, &[&s2]).await;
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("needs 1.5 cores, 3 cores of 4 cores used"),
        "{why}"
    );
}

#[tokio::test]
async fn executors_stay_reserved_until_they_exist() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "16Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    let req = request("r1", &spark_job("pi", PI));
    let per_pod = req.demand.pods[0].each();
    let sub = b.submit(&req).await.unwrap();
    assert!(!sub.already_existed);
    let report = b.capacity().await.unwrap();
    assert!(report.visible.contains("r1"));
    let held = per_pod.times(3);
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    eventually("the application is watched", || async {
        b.capacity().await.unwrap().visible.contains("r1")
            && fake.get("sparkapplications", NS, &name).is_some()
    })
    .await;
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    // The driver starts: still the same room held (driver as a pod, executors reserved).
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Running");
    set_state(&fake, &name, "RUNNING", "");
    eventually("driver seen", || async {
        b.status(&RunRef {
            job_id: "r1".into(),
            attempt: 1,
            backend_ref: Some(sub.backend_ref.clone()),
        })
        .await
        .unwrap()
            == RunStatus::Running
    })
    .await;
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    // One executor pending (not bound): still reserved; then both bound.
    spark_pod(&fake, &app, "executor", 1, None, "Pending");
    spark_pod(&fake, &app, "executor", 2, Some("a"), "Running");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    spark_pod(&fake, &app, "executor", 1, Some("a"), "Running");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        free(&b).await,
        sluice_core::Resources::new(4000, 16 * 1024).minus(&held)
    );
    // Finished: pods Succeeded, application COMPLETED: the room is back.
    for (role, i) in [("driver", 0), ("executor", 1), ("executor", 2)] {
        spark_pod(&fake, &app, role, i, Some("a"), "Succeeded");
    }
    set_state(&fake, &name, "COMPLETED", "");
    eventually("room freed", || async {
        free(&b).await == sluice_core::Resources::new(4000, 16 * 1024)
    })
    .await;
}

// ---------------------------------------------------------------- submit, status, cancel

#[tokio::test]
async fn submit_is_idempotent_through_409() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    let req = request("01jz8m3v9q7x2kd4h6n8p0r2s4", &spark_job("pi", PI));
    let first = b.submit(&req).await.unwrap();
    assert_eq!(first.backend_ref, "spark/pi-h6n8p0r2s4-1");
    assert!(!first.already_existed);
    // A crash after the create: the same attempt again finds it and creates nothing.
    let again = b.submit(&req).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.backend_ref, first.backend_ref);
    assert_eq!(fake.list("sparkapplications", NS).len(), 1);

    // The create itself meeting 409 (the read before it missed it) is "already submitted".
    let b2 = backend(&fake, |_| {}).await;
    let req2 = request("01jz8m3v9q7x2kd4h6n8p0zzzz", &spark_job("pi", PI));
    let other_job = build_app(
        &req2.job,
        &req2.job_id,
        1,
        &req2.demand,
        &Default::default(),
    )
    .unwrap();
    let other_name = other_job["metadata"]["name"].as_str().unwrap().to_string();
    // Another job's application already holds the name: refused, never taken over.
    let mut squatter = other_job.clone();
    squatter["metadata"]["labels"][JOB_ID_LABEL] = json!("someone-else");
    fake.put("sparkapplications", NS, squatter);
    match b2.submit(&req2).await {
        Err(BackendError::Rejected(m)) => assert!(m.contains("belongs to another job"), "{m}"),
        other => panic!("{other:?}"),
    }
    fake.remove("sparkapplications", NS, &other_name);
    // 409 on the create: a hook answers 409 while the object is created behind the read.
    let fake_ref = Arc::new(std::sync::Mutex::new(None::<Value>));
    let slot = fake_ref.clone();
    fake.on_create(Box::new(move |kind, obj, _| {
        if kind == "sparkapplications" {
            *slot.lock().unwrap() = Some(obj.clone());
            return Some((
                409,
                "AlreadyExists".into(),
                "sparkapplications \"x\" already exists".into(),
            ));
        }
        None
    }));
    // The hook refuses; then the read shows nothing: the backend says "try again later".
    match b2.submit(&req2).await {
        Err(BackendError::Unavailable(_)) => {}
        other => panic!("{other:?}"),
    }
    let created = fake_ref.lock().unwrap().clone().unwrap();
    fake.put("sparkapplications", NS, created);
    let s = b2.submit(&req2).await.unwrap();
    assert!(s.already_existed);
}

#[tokio::test]
async fn status_follows_the_operator_and_cancel_deletes() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    let req = request("st1", &spark_job("pi", PI));
    let sub = b.submit(&req).await.unwrap();
    let run = RunRef {
        job_id: "st1".into(),
        attempt: 1,
        backend_ref: Some(sub.backend_ref.clone()),
    };
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    assert_eq!(b.status(&run).await.unwrap(), RunStatus::Pending);
    for (state, want) in [
        ("SUBMITTED", RunStatus::Pending),
        ("RUNNING", RunStatus::Running),
        ("SUCCEEDING", RunStatus::Running),
        ("PENDING_RERUN", RunStatus::Pending),
    ] {
        set_state(&fake, &name, state, "");
        eventually(state, || async { b.status(&run).await.unwrap() == want }).await;
    }
    set_state(
        &fake,
        &name,
        "FAILED",
        "driver container failed with ExitCode: 1, Reason: Error",
    );
    eventually("failed", || async {
        b.status(&run).await.unwrap() == RunStatus::Failed {
            exit_code: Some(1),
            message:
                "SparkApplication FAILED: driver container failed with ExitCode: 1, Reason: Error"
                    .into(),
        }
    })
    .await;
    // Logs of the driver pod.
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Failed");
    fake.set_log(NS, &format!("{name}-driver"), "Pi is roughly 3.14\nbye\n");
    let chunk = b.logs(&run, 3, 5).await.unwrap();
    assert_eq!(chunk.data, "is ro");
    assert_eq!(chunk.next_offset, 8);
    assert!(!chunk.complete);
    let chunk = b.logs(&run, 8, 1000).await.unwrap();
    assert!(chunk.complete && chunk.data.ends_with("bye\n"));
    // Cancel deletes the application; a second cancel is fine; status then: not found.
    b.cancel(&run).await.unwrap();
    assert!(fake.get("sparkapplications", NS, &name).is_none());
    b.cancel(&run).await.unwrap();
    eventually("gone", || async {
        matches!(b.status(&run).await, Err(BackendError::NotFound { .. }))
    })
    .await;
    // Jobs outside the managed namespaces, and command jobs, are refused.
    let mut elsewhere = request("x", &spark_job("pi", PI));
    elsewhere.job.namespace = "other".into();
    assert!(
        matches!(b.submit(&elsewhere).await, Err(BackendError::Rejected(m)) if m.contains("not managed"))
    );
    let cmd = request(
        "c",
        "name: c\nnamespace: spark\ncommand: {argv: [\"true\"]}\n",
    );
    assert!(
        matches!(b.submit(&cmd).await, Err(BackendError::Rejected(m)) if m.contains("Spark applications only"))
    );
}

#[tokio::test]
async fn watch_restarts_after_410_gone() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "4", "16Gi", 110, no_labels(), json!([])),
    );
    fake.put(
        "pods",
        "other",
        pod("hog", Some("a"), "Running", "3", "1Gi", no_labels()),
    );
    let b = backend(&fake, |_| {}).await;
    assert_eq!(
        b.capacity().await.unwrap().snapshot.nodes[0].cpu_milli,
        1000
    );
    let lists_before = b.watch_lists()["pods"];
    // The pod goes away while the history is compacted: no DELETED event ever reaches the
    // watch; resuming it gets 410 Gone; only a new list shows the room.
    fake.remove_during_compaction("pods", "other", "hog");
    eventually("relisted after 410", || async {
        b.watch_lists()["pods"] > lists_before
            && b.capacity()
                .await
                .map(|r| r.snapshot.available && r.snapshot.nodes[0].cpu_milli == 4000)
                .unwrap_or(false)
    })
    .await;
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods?") && !r.contains("watch=true")),
        "listed again"
    );
    // The watch works again afterwards.
    fake.put(
        "pods",
        "other",
        pod("new", Some("a"), "Running", "2", "1Gi", no_labels()),
    );
    eventually("new pod seen", || async {
        b.capacity().await.unwrap().snapshot.nodes[0].cpu_milli == 2000
    })
    .await;
}

#[tokio::test]
async fn unreachable_api_is_unavailable_not_an_error() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    drop(fake);
    let b = KubeBackend::with_client(
        client,
        KubeSettings {
            namespaces: vec![NS.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let report = b.capacity().await.unwrap();
    assert!(!report.snapshot.available);
}

// ---------------------------------------------------------------- dry-run

#[tokio::test]
async fn dry_run_quota_refusal_waits_and_invalid_spec_is_rejected() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |s| s.mode = CapacityMode::DryRun).await;
    let answer = Arc::new(std::sync::Mutex::new(None::<(u16, String, String)>));
    let a = answer.clone();
    fake.on_create(Box::new(move |kind, _obj, dry_run| {
        if kind == "pods" && dry_run {
            return a.lock().unwrap().clone();
        }
        None
    }));
    let req = request("d1", &spark_job("pi", PI));
    *answer.lock().unwrap() = Some((
        403,
        "Forbidden".into(),
        "pods \"pi-driver\" is forbidden: exceeded quota: team, requested: requests.cpu=1, used: requests.cpu=4, limited: requests.cpu=4".into(),
    ));
    match b.submit(&req).await {
        Err(BackendError::NoRoom(m)) => assert!(m.contains("exceeded quota: team"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(fake.list("sparkapplications", NS).is_empty());
    assert!(fake.list("pods", NS).is_empty(), "dry runs create nothing");
    *answer.lock().unwrap() = Some((
        422,
        "Invalid".into(),
        "Pod \"pi-driver\" is invalid: spec.containers[0].resources.limits: Invalid value: \"1\": must be greater than or equal to cpu request".into(),
    ));
    match b.submit(&req).await {
        Err(BackendError::Rejected(m)) => assert!(
            m.contains("must be greater than or equal to cpu request"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    *answer.lock().unwrap() = None;
    let s = b.submit(&req).await.unwrap();
    assert!(!s.already_existed);
    let dry: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("dryRun=All"))
        .collect();
    // Refused at the driver twice, then the driver and one executor (executors are alike).
    assert_eq!(dry.len(), 1 + 1 + 2, "{dry:?}");
}

// ---------------------------------------------------------------- placeholders

fn bind_all_placeholders(fake: &FakeApi, node: &str) {
    for p in fake.list("pods", NS) {
        if p["metadata"]["labels"][PLACEHOLDER_LABEL] == "true" {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            fake.update("pods", NS, &name, |p| {
                p["spec"]["nodeName"] = json!(node);
                p["status"]["phase"] = json!("Running");
            });
        }
    }
}

/// Placeholder pods of sluice jobs (by label).
fn placeholders(fake: &FakeApi) -> Vec<Value> {
    fake.list("pods", NS)
        .into_iter()
        .filter(|p| {
            p["metadata"]["labels"][PLACEHOLDER_LABEL] == "true"
                && p["metadata"]["labels"].get(JOB_ID_LABEL).is_some()
        })
        .collect()
}

#[tokio::test]
async fn placeholders_submit_when_all_are_scheduled() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |s| {
        s.mode = CapacityMode::Placeholders;
        s.placeholder_priority_class = Some("sluice-placeholder".into());
    })
    .await;
    let req = request("p1", &spark_job("pi", PI));
    assert!(matches!(b.submit(&req).await, Err(BackendError::NotYet(_))));
    let ph = placeholders(&fake);
    assert_eq!(ph.len(), 3);
    assert!(
        ph.iter()
            .all(|p| p["spec"]["priorityClassName"] == "sluice-placeholder")
    );
    assert!(
        ph.iter()
            .all(|p| p["metadata"]["labels"][JOB_ID_LABEL] == "p1")
    );
    // While they wait, the job is visible and its room held once (not twice).
    let report = b.capacity().await.unwrap();
    assert!(report.visible.contains("p1"));
    assert!(
        matches!(b.submit(&req).await, Err(BackendError::NotYet(m)) if m.contains("0 of 3 scheduled"))
    );
    assert!(fake.list("sparkapplications", NS).is_empty());
    bind_all_placeholders(&fake, "a");
    let names: Vec<String> = placeholders(&fake)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let before = fake.requests().len();
    let s = b.submit(&req).await.unwrap();
    assert!(!s.already_existed);
    // kubectl users see the placeholders come and go on the application.
    let app = s.backend_ref.split('/').nth(1).unwrap().to_string();
    let on_app = |reason: &str| -> Vec<Value> {
        fake.list("events", NS)
            .into_iter()
            .filter(|e| e["regarding"]["name"] == app.as_str() && e["reason"] == reason)
            .collect()
    };
    eventually("placeholder events written", || async {
        !on_app("PlaceholdersCreated").is_empty() && !on_app("PlaceholdersRemoved").is_empty()
    })
    .await;
    let created = on_app("PlaceholdersCreated");
    assert_eq!(created.len(), 1, "created once: {created:?}");
    assert_eq!(created[0]["type"], "Normal");
    let note = created[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with("sluice created 3 placeholder pod(s) for job p1 (attempt 1)"),
        "{note}"
    );
    let removed = &on_app("PlaceholdersRemoved")[0];
    assert_eq!(
        removed["note"],
        "sluice deleted the 3 placeholder pod(s) of job p1 (attempt 1): the application was \
         created and holds the room now"
    );
    assert!(
        placeholders(&fake).is_empty(),
        "deleted once the application is submitted"
    );
    assert_eq!(fake.list("sparkapplications", NS).len(), 1);
    // The application was created while the placeholders still held the room: no placeholder
    // was deleted before the create, every one after it.
    let reqs = fake.requests()[before..].to_vec();
    let create = reqs
        .iter()
        .position(|r| {
            r.starts_with(&format!(
                "POST /apis/sparkoperator.k8s.io/v1beta2/namespaces/{NS}/sparkapplications"
            ))
        })
        .unwrap_or_else(|| panic!("{reqs:#?}"));
    for n in &names {
        let del = reqs
            .iter()
            .position(|r| r.starts_with(&format!("DELETE /api/v1/namespaces/{NS}/pods/{n}")))
            .unwrap_or_else(|| panic!("{n} not deleted: {reqs:#?}"));
        assert!(del > create, "{n} deleted before the create: {reqs:#?}");
    }
    // A job cancelled while its placeholders wait (still admitted, no run yet): they go.
    let p2 = request("p2", &spark_job("pi2", PI));
    assert!(matches!(b.submit(&p2).await, Err(BackendError::NotYet(_))));
    assert_eq!(placeholders(&fake).len(), 3);
    b.cancel(&RunRef {
        job_id: "p2".into(),
        attempt: 1,
        backend_ref: None,
    })
    .await
    .unwrap();
    assert!(placeholders(&fake).is_empty());
    eventually("nothing held for the cancelled job", || async {
        !b.capacity().await.unwrap().visible.contains("p2")
    })
    .await;
}

#[tokio::test]
async fn placeholder_timeout_releases_and_orphans_are_removed() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    // Left by a crashed sluice, of a job no longer being submitted.
    let orphan = |name: &str| {
        pod(
            name,
            Some("a"),
            "Running",
            "1",
            "1Gi",
            json!({"app.kubernetes.io/managed-by": "sluice", "sluice.io/placeholder": "true",
                   "sluice.io/job-id": "gone", "sluice.io/attempt": "1"}),
        )
    };
    fake.put("pods", NS, orphan("old-ph-driver-1"));
    fake.put(
        "pods",
        NS,
        pod(
            "not-ours",
            Some("a"),
            "Running",
            "1",
            "1Gi",
            json!({"sluice.io/placeholder": "true"}),
        ),
    );
    // In the modes that make no placeholders, every one is an orphan: removed at start-up.
    drop(backend(&fake, |_| {}).await);
    assert!(fake.get("pods", NS, "old-ph-driver-1").is_none());
    assert!(
        fake.get("pods", NS, "not-ours").is_some(),
        "only sluice's placeholders go"
    );
    // In placeholders mode, one that no resubmit adopts goes once older than the timeout.
    fake.put("pods", NS, orphan("old-ph-driver-2"));
    let b = backend(&fake, |s| {
        s.mode = CapacityMode::Placeholders;
        s.placeholder_timeout = Duration::from_millis(300);
    })
    .await;
    eventually("the orphan swept", || async {
        fake.get("pods", NS, "old-ph-driver-2").is_none()
    })
    .await;
    assert!(fake.get("pods", NS, "not-ours").is_some());
    let req = request("t1", &spark_job("pi", PI));
    assert!(matches!(b.submit(&req).await, Err(BackendError::NotYet(_))));
    // Only the driver's placeholder gets scheduled.
    let first = placeholders(&fake)
        .into_iter()
        .find(|p| p["metadata"]["labels"]["sluice.io/role"] == "driver")
        .unwrap();
    fake.update(
        "pods",
        NS,
        first["metadata"]["name"].as_str().unwrap(),
        |p| {
            p["spec"]["nodeName"] = json!("a");
        },
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    match b.submit(&req).await {
        Err(BackendError::NoRoom(m)) => assert!(m.contains("2 of 3 pods not scheduled"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(placeholders(&fake).is_empty(), "released");
    assert!(fake.list("sparkapplications", NS).is_empty());
    // The server sends the job back to its queue: a warning on the application it would have
    // been says why.
    let app = app_name("pi", "t1", 1);
    let requeued = || {
        fake.list("events", NS)
            .into_iter()
            .find(|e| e["reason"] == "Requeued" && e["regarding"]["name"] == app.as_str())
    };
    eventually("Requeued event written", || async { requeued().is_some() }).await;
    let e = requeued().unwrap();
    assert_eq!(e["type"], "Warning");
    let note = e["note"].as_str().unwrap();
    assert!(
        note.starts_with("sluice sent job t1 (attempt 1) back to its queue"),
        "{note}"
    );
    assert!(note.contains("2 of 3 pods not scheduled"), "{note}");
    eventually("nothing held for the requeued job", || async {
        !b.capacity().await.unwrap().visible.contains("t1")
    })
    .await;
}

// ---------------------------------------------------------------- watchdog

#[tokio::test]
async fn watchdog_kills_and_requeues_a_driver_without_executors() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |s| s.watchdog = Some(Duration::from_millis(300))).await;
    let req = request("w1", &spark_job("pi", PI));
    let sub = b.submit(&req).await.unwrap();
    let name = sub.backend_ref.split('/').nth(1).unwrap().to_string();
    let run = RunRef {
        job_id: "w1".into(),
        attempt: 1,
        backend_ref: Some(sub.backend_ref.clone()),
    };
    let app = fake.get("sparkapplications", NS, &name).unwrap();
    // RUNNING alone (the operator's word) with executors running: no deadlock.
    set_state(&fake, &name, "RUNNING", "");
    spark_pod(&fake, &app, "driver", 0, Some("a"), "Running");
    spark_pod(&fake, &app, "executor", 1, Some("a"), "Running");
    spark_pod(&fake, &app, "executor", 2, None, "Pending");
    eventually("running", || async {
        b.status(&run).await.unwrap() == RunStatus::Running
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.status(&run).await.unwrap(), RunStatus::Running);
    // The running executor is lost; the other stays Pending: after the timeout, requeue.
    spark_pod(&fake, &app, "executor", 1, None, "Pending");
    let got = Arc::new(std::sync::Mutex::new(None));
    eventually("watchdog fired", || {
        let (b, run, got) = (&b, &run, got.clone());
        async move {
            match b.status(run).await {
                Ok(RunStatus::Requeue { message }) => {
                    *got.lock().unwrap() = Some(message);
                    true
                }
                _ => false,
            }
        }
    })
    .await;
    let message = got.lock().unwrap().clone().unwrap();
    assert!(message.contains("deadlock watchdog"), "{message}");
    assert!(
        message.contains("none of its 2 executors running (2 pending"),
        "{message}"
    );
    assert!(fake.get("sparkapplications", NS, &name).is_none(), "killed");
    // kubectl users see sluice's part on the application: admitted, then killed by the watchdog.
    eventually("events written", || async {
        let evs = fake.list("events", NS);
        let reasons: Vec<&str> = evs
            .iter()
            .filter(|e| e["regarding"]["name"] == name.as_str())
            .filter_map(|e| e["reason"].as_str())
            .collect();
        reasons.contains(&"Admitted") && reasons.contains(&"DeadlockWatchdog")
    })
    .await;
    let evs = fake.list("events", NS);
    let admitted = evs.iter().find(|e| e["reason"] == "Admitted").unwrap();
    assert_eq!(admitted["regarding"]["kind"], "SparkApplication");
    assert_eq!(admitted["reportingController"], "sluice");
    assert_eq!(admitted["type"], "Normal");
    let note = admitted["note"].as_str().unwrap();
    assert!(note.contains("job w1 (attempt 1)"), "{note}");
    assert!(note.contains("all 2 executor(s) fit"), "{note}");
    let killed = evs
        .iter()
        .find(|e| e["reason"] == "DeadlockWatchdog")
        .unwrap();
    assert_eq!(killed["type"], "Warning");
    assert!(
        killed["note"]
            .as_str()
            .unwrap()
            .contains("deadlock watchdog"),
        "{killed}"
    );
    // The watchdog's deletion is not also reported as a cancel.
    assert!(!evs.iter().any(|e| e["reason"] == "Cancelled"), "{evs:?}");
}

/// Long before any test runs: what a restarted sluice finds from its earlier life.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// A placeholder pod of job `job` attempt 1, as sluice creates them, created at `created`.
fn placeholder_pod(name: &str, job: &str, role: &str, node: Option<&str>, created: &str) -> Value {
    let mut p = pod(
        name,
        node,
        "Pending",
        "1",
        "896Mi",
        json!({"app.kubernetes.io/managed-by": "sluice", "sluice.io/placeholder": "true",
               "sluice.io/job-id": job, "sluice.io/attempt": "1", "sluice.io/role": role}),
    );
    p["metadata"]["creationTimestamp"] = json!(created);
    p
}

#[tokio::test]
async fn placeholder_timeout_counts_from_their_creation_across_restarts() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    // Left by the sluice that ran before this one: the placeholders of two jobs still admitted
    // (the server submits them again after a restart). Those of r1 were created long ago and
    // two of them never got a node; those of r2 were created just now.
    for (name, role, node) in [
        ("r1-ph-driver", "driver", Some("a")),
        ("r1-ph-executor-1", "executor", None),
        ("r1-ph-executor-2", "executor", None),
    ] {
        fake.put(
            "pods",
            NS,
            placeholder_pod(name, "r1", role, node, LONG_AGO),
        );
    }
    let now = kube_fake::rfc3339_now();
    for (name, role, node) in [
        ("r2-ph-driver", "driver", Some("a")),
        ("r2-ph-executor-1", "executor", Some("a")),
        ("r2-ph-executor-2", "executor", None),
    ] {
        fake.put("pods", NS, placeholder_pod(name, "r2", role, node, &now));
    }
    // A fresh backend, as after a restart, with a timeout of a minute.
    let b = backend(&fake, |s| {
        s.mode = CapacityMode::Placeholders;
        s.placeholder_timeout = Duration::from_secs(60);
    })
    .await;
    let r1 = request("r1", &spark_job("pi", PI));
    match b.submit(&r1).await {
        Err(BackendError::NoRoom(m)) => {
            assert!(m.contains("2 of 3 pods not scheduled after 60 s"), "{m}")
        }
        other => panic!("released on the first try, not {other:?}"),
    }
    assert!(
        placeholders(&fake)
            .iter()
            .all(|p| p["metadata"]["labels"][JOB_ID_LABEL] != "r1"),
        "released"
    );
    // r2's are adopted (not created again) and still within their time.
    let r2 = request("r2", &spark_job("pi2", PI));
    match b.submit(&r2).await {
        Err(BackendError::NotYet(m)) => assert!(m.contains("2 of 3 scheduled"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut names: Vec<String> = placeholders(&fake)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["r2-ph-driver", "r2-ph-executor-1", "r2-ph-executor-2"]
    );
    // The API cannot be reached for the create: the placeholders stay for the next try.
    let fail = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let f = fail.clone();
    fake.on_create(Box::new(move |kind, _, _| {
        if kind != "sparkapplications" {
            return None;
        }
        match f.load(std::sync::atomic::Ordering::SeqCst) {
            // 503 is what kube-rs would retry for minutes inside the call: sluice's client
            // does not, it answers Unavailable and the next tick tries again.
            1 => Some((503, "ServiceUnavailable".into(), "etcd is away".into())),
            2 => Some((
                403,
                "Forbidden".into(),
                "exceeded quota: team, requested: requests.cpu=3".into(),
            )),
            _ => None,
        }
    }));
    bind_all_placeholders(&fake, "a");
    assert!(matches!(
        b.submit(&r2).await,
        Err(BackendError::Unavailable(_))
    ));
    assert_eq!(
        placeholders(&fake).len(),
        3,
        "kept while the job stays admitted"
    );
    assert!(b.capacity().await.unwrap().visible.contains("r2"));
    // A quota refusal sends the job back to its queue: the placeholders go.
    fail.store(2, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(b.submit(&r2).await, Err(BackendError::NoRoom(_))));
    assert!(placeholders(&fake).is_empty());
    assert!(fake.list("sparkapplications", NS).is_empty());
}

// ---------------------------------------------------------------- watchdog, after a restart

/// `pod` with a creation time and, when running, its Spark container's start.
fn timed(mut p: Value, created: &str, started: Option<&str>) -> Value {
    p["metadata"]["creationTimestamp"] = json!(created);
    if let Some(t) = started {
        let container = if p["metadata"]["labels"]["spark-role"] == "driver" {
            "spark-kubernetes-driver"
        } else {
            "spark-kubernetes-executor"
        };
        p["status"]["startTime"] = json!(created);
        p["status"]["containerStatuses"] = json!([{
            "name": container, "image": "spark", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": t}}
        }]);
    }
    p
}

/// Plays the operator before a restart of sluice: the RUNNING application of `req`, its driver
/// running since `driver_started` and its two executors pending since `pending_since`.
fn running_app(
    fake: &FakeApi,
    req: &SubmitRequest,
    driver_started: &str,
    pending_since: &str,
) -> RunRef {
    let mut app = build_app(&req.job, &req.job_id, 1, &req.demand, &Default::default()).unwrap();
    app["status"] = json!({"applicationState": {"state": "RUNNING"}});
    let name = app["metadata"]["name"].as_str().unwrap().to_string();
    fake.put("sparkapplications", NS, app.clone());
    fake.put(
        "pods",
        NS,
        timed(
            pod(
                &format!("{name}-driver"),
                Some("a"),
                "Running",
                "1",
                "896Mi",
                spark_labels(&app, "driver"),
            ),
            driver_started,
            Some(driver_started),
        ),
    );
    for i in 1..=2 {
        fake.put(
            "pods",
            NS,
            timed(
                pod(
                    &format!("{name}-exec-{i}"),
                    None,
                    "Pending",
                    "1",
                    "896Mi",
                    spark_labels(&app, "executor"),
                ),
                pending_since,
                None,
            ),
        );
    }
    RunRef {
        job_id: req.job_id.clone(),
        attempt: 1,
        backend_ref: Some(format!("{NS}/{name}")),
    }
}

#[tokio::test]
async fn watchdog_counts_from_the_cluster_after_a_restart() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let now = kube_fake::rfc3339_now();
    // Driver running and executors pending since long before this sluice started.
    let stuck = running_app(
        &fake,
        &request("w2", &spark_job("stuck", PI)),
        LONG_AGO,
        LONG_AGO,
    );
    // Driver running for long, but its executors were created (after losing the first ones)
    // just now: the clock starts at the later of the two.
    let fresh = running_app(
        &fake,
        &request("w3", &spark_job("fresh", PI)),
        LONG_AGO,
        &now,
    );
    // The driver itself started just now (executors older: pending since before it ran).
    let young = running_app(
        &fake,
        &request("w4", &spark_job("young", PI)),
        &now,
        LONG_AGO,
    );
    let b = backend(&fake, |s| s.watchdog = Some(Duration::from_secs(600))).await;
    match b.status(&stuck).await.unwrap() {
        RunStatus::Requeue { message } => {
            assert!(message.contains("more than 600 s"), "{message}");
            assert!(message.contains("(2 pending, 0 not created)"), "{message}");
        }
        other => panic!("killed on the first look, not {other:?}"),
    }
    let name = stuck
        .backend_ref
        .as_deref()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap();
    assert!(fake.get("sparkapplications", NS, name).is_none(), "killed");
    assert_eq!(b.status(&fresh).await.unwrap(), RunStatus::Running);
    assert_eq!(b.status(&young).await.unwrap(), RunStatus::Running);
}

// ---------------------------------------------------------------- jobs that can never run

fn job_of(text: &str) -> (Job, Demand) {
    parse(text)
}

#[tokio::test]
async fn never_runs_names_what_no_node_or_quota_allows() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("cpu", "4", "16Gi", 110, json!({"pool": "cpu"}), json!([])),
    );
    fake.put("nodes", "", gpu_node());
    // The only ssd node is cordoned and not Ready (with the taints that come with that):
    // temporary, so a job for it waits rather than being refused.
    let mut down = node(
        "ssd",
        "4",
        "16Gi",
        110,
        json!({"pool": "ssd"}),
        json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
               {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
    );
    down["spec"]["unschedulable"] = json!(true);
    down["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    fake.put("nodes", "", down);
    fake.put(
        "resourcequotas",
        NS,
        json!({
            "metadata": {"name": "team"},
            "spec": {"hard": {"requests.cpu": "8"}},
            "status": {"hard": {"requests.cpu": "8"}, "used": {"requests.cpu": "7500m"}}
        }),
    );
    // A quota for best-effort pods only: Spark's pods request resources, it never counts them.
    fake.put(
        "resourcequotas",
        NS,
        json!({
            "metadata": {"name": "best-effort"},
            "spec": {"hard": {"pods": "0"}, "scopes": ["BestEffort"]},
            "status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}
        }),
    );
    let b = backend(&fake, |_| {}).await;

    // Fits: nothing to say (the quota's `used` is for the cycle, not for this).
    let (job, demand) = job_of(&spark_job("pi", PI));
    assert_eq!(b.never_runs(&job, &demand), None);

    // A selector no node's labels match.
    let selected = |pool: &str| {
        format!(
            "apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {{name: sel, namespace: {NS}}}
spec:
  type: Python
  sparkVersion: 4.0.4
  mainApplicationFile: local:///a.py
  nodeSelector: {{pool: {pool}}}
  driver: {{cores: 1}}
  executor: {{cores: 1, instances: 2}}
"
        )
    };
    let (job, demand) = job_of(&selected("tpu"));
    let why = b.never_runs(&job, &demand).expect("refused");
    assert!(why.starts_with("no node accepts the driver: "), "{why}");
    assert!(why.contains("node cpu lacks label pool=tpu"), "{why}");

    // The gpu pool without the toleration of its taint.
    let (job, demand) = job_of(&selected("gpu"));
    let why = b.never_runs(&job, &demand).expect("refused");
    assert!(
        why.contains("node gpu has taint nvidia.com/gpu=present:NoSchedule"),
        "{why}"
    );

    // Cordoned and not Ready is temporary: not refused, but the cycle says why it waits.
    let (job, demand) = job_of(&selected("ssd"));
    assert_eq!(b.never_runs(&job, &demand), None);
    let req = request("ssd", &selected("ssd"));
    let (admitted, waiting) = cycle(&b, &[&req]).await;
    assert!(admitted.is_empty());
    assert!(
        waiting[0]
            .1
            .to_string()
            .contains("no node accepts the driver"),
        "{}",
        waiting[0].1
    );

    // An executor bigger than every node that accepts it (the gpu node is big enough, but
    // tainted).
    let (job, demand) = job_of(&spark_job(
        "big",
        "  mainApplicationFile: local:///a.py\n  executor: {cores: 6, instances: 1}\n",
    ));
    let why = b.never_runs(&job, &demand).expect("refused");
    assert!(why.starts_with("one executor pod needs 6 cores"), "{why}");
    assert!(why.contains("node cpu has 4 cores"), "{why}");

    // More than the quota's hard limit, each pod fitting a node.
    let (job, demand) = job_of(&spark_job(
        "wide",
        "  mainApplicationFile: local:///a.py\n  executor: {cores: 3, instances: 3}\n",
    ));
    assert_eq!(demand.total().cpu_milli, 10_000);
    let why = b.never_runs(&job, &demand).expect("refused");
    assert_eq!(
        why,
        "namespace quota: ResourceQuota team requests.cpu: the job needs 10 cores, more than its hard limit of 8 cores"
    );

    // A backend that knows no node yet refuses nothing.
    let empty = FakeApi::start().await;
    let b2 = backend(&empty, |_| {}).await;
    let (job, demand) = job_of(&selected("tpu"));
    assert_eq!(b2.never_runs(&job, &demand), None);

    // A namespace sluice does not manage is configuration: refused even before any sync.
    let (job, demand) = job_of(&format!("name: pi\nnamespace: elsewhere\nspark:\n{PI}"));
    let why = b2.never_runs(&job, &demand).expect("refused");
    assert!(
        why.starts_with("namespace elsewhere is not managed by sluice"),
        "{why}"
    );
}

#[tokio::test]
async fn scoped_quotas_hold_back_only_the_pods_they_match() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "16", "64Gi", 110, no_labels(), json!([])),
    );
    let quota = |name: &str, scopes: Value, selector: Value| {
        json!({
            "metadata": {"name": name},
            "spec": {"hard": {"requests.cpu": "1"}, "scopes": scopes, "scopeSelector": selector},
            "status": {"hard": {"requests.cpu": "1"}, "used": {"requests.cpu": "0"}}
        })
    };
    // A tight quota for best-effort pods: Spark's pods request resources, it does not apply.
    fake.put(
        "resourcequotas",
        NS,
        quota("be", json!(["BestEffort"]), Value::Null),
    );
    // A tight quota for pods of priority class "high".
    fake.put(
        "resourcequotas",
        NS,
        quota(
            "high",
            Value::Null,
            json!({"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}),
        ),
    );
    let b = backend(&fake, |_| {}).await;
    let job = request("s1", &spark_job("pi", PI));
    let (admitted, waiting) = cycle(&b, &[&job]).await;
    assert_eq!(admitted, vec!["s1"], "{waiting:?}");
    let (j, d) = job_of(&spark_job("pi", PI));
    assert_eq!(b.never_runs(&j, &d), None);

    // A driver of class "high" is counted by the second quota.
    let high = format!(
        "apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {{name: hi, namespace: {NS}}}
spec:
  type: Python
  sparkVersion: 4.0.4
  mainApplicationFile: local:///a.py
  driver: {{cores: 2, priorityClassName: high}}
  executor: {{cores: 1, instances: 2}}
"
    );
    let hi = request("s2", &high);
    let (admitted, waiting) = cycle(&b, &[&hi]).await;
    assert!(admitted.is_empty());
    let why = waiting[0].1.to_string();
    assert!(
        why.contains("ResourceQuota high requests.cpu: needs 2 cores"),
        "{why}"
    );
    assert!(
        b.never_runs(&hi.job, &hi.demand)
            .unwrap()
            .contains("ResourceQuota high requests.cpu: the job needs 2 cores"),
    );

    // A tight quota for every pod that is not best effort: now the plain job waits too.
    fake.put(
        "resourcequotas",
        NS,
        quota("nbe", json!(["NotBestEffort"]), Value::Null),
    );
    eventually("the new quota seen", || async {
        let (admitted, waiting) = cycle(&b, &[&job]).await;
        admitted.is_empty()
            && waiting[0]
                .1
                .to_string()
                .contains("ResourceQuota nbe requests.cpu: needs 3 cores")
    })
    .await;
}

// ---------------------------------------------------------------- deploy files

/// `kubectl kustomize DIR` of the repository: the manifests an overlay applies.
fn kustomize(dir: &str) -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(root.join(dir))
        .output()
        .unwrap_or_else(|e| panic!("kubectl kustomize {dir}: {e} (kubectl must be installed)"));
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// What an overlay grants sluice: (group, resource, verb, cluster-wide, namespace).
fn granted(docs: &[Value]) -> Vec<(String, String, String, bool, String)> {
    let mut granted = Vec::new();
    for d in docs {
        let cluster = match d["kind"].as_str().unwrap() {
            "ClusterRole" => true,
            "Role" => false,
            _ => continue,
        };
        let ns = d["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for rule in d["rules"].as_array().unwrap() {
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        let v = v.as_str().unwrap();
                        assert_ne!(v, "*", "no wildcard verbs");
                        granted.push((
                            g.as_str().unwrap().into(),
                            r.as_str().unwrap().into(),
                            v.into(),
                            cluster,
                            ns.clone(),
                        ));
                    }
                }
            }
        }
    }
    granted
}

/// Both overlays render with `kubectl kustomize` (what `kubectl apply -k` applies), and what
/// they grant is what the backend uses, in every namespace the configuration manages, bound to
/// sluice's service account, and no more.
#[test]
fn deploy_overlays_render_and_grant_what_the_backend_uses_and_no_more() {
    use sluice_backend::kubernetes::PERMISSIONS;
    for overlay in ["deploy/overlays/sqlite", "deploy/overlays/postgres"] {
        let docs = kustomize(overlay);
        assert!(
            docs.iter()
                .all(|d| d["apiVersion"].is_string() && d["kind"].is_string()),
            "{overlay}"
        );
        // The namespaces the configuration manages.
        let config = find(&docs, "ConfigMap", "sluice-config")["data"]["sluice.toml"]
            .as_str()
            .unwrap()
            .to_string();
        let config: toml_probe::Config = toml_probe::parse(&config);
        assert!(!config.namespaces.is_empty(), "{overlay}");
        let granted = granted(&docs);
        for ns in &config.namespaces {
            for (g, r, v, cluster) in PERMISSIONS {
                assert!(
                    granted.iter().any(|x| x.0 == *g
                        && x.1 == *r
                        && x.2 == *v
                        && (x.3 || (!cluster && x.4 == *ns))),
                    "{overlay} lacks {v} {g}/{r} (cluster-wide: {cluster}) in {ns}"
                );
            }
        }
        for (g, r, v, cluster, ns) in &granted {
            // `get` comes with list for nodes and pods (kubectl-style reads); nothing else extra.
            let needed = PERMISSIONS
                .iter()
                .any(|p| p.0 == g && p.1 == r && (p.2 == v || v == "get"));
            assert!(
                needed,
                "{overlay} grants {v} {g}/{r} that sluice does not use"
            );
            if *cluster {
                assert!(
                    ["get", "list", "watch"].contains(&v.as_str()),
                    "cluster-wide writes: {v} {r}"
                );
            } else {
                assert!(
                    config.namespaces.contains(ns),
                    "{overlay}: a Role in {ns}, which sluice does not manage"
                );
            }
        }
        // Every binding binds sluice's service account, which the Deployment runs as.
        let deployment = find(&docs, "Deployment", "sluice");
        let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap();
        find(&docs, "ServiceAccount", sa);
        for d in docs
            .iter()
            .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
        {
            let subjects = d["subjects"].as_array().unwrap();
            assert_eq!(subjects.len(), 1, "{d}");
            assert_eq!(subjects[0]["name"], sa, "{d}");
            assert_eq!(subjects[0]["namespace"], "sluice-system", "{d}");
            let role = &d["roleRef"];
            find(
                &docs,
                role["kind"].as_str().unwrap(),
                role["name"].as_str().unwrap(),
            );
        }
        // The image is set in one place (deploy/base/kustomization.yaml).
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "sluice:dev", "{overlay}");
        let volumes = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap();
        let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
        if overlay.ends_with("sqlite") {
            // One writer of the SQLite file: one replica, never two pods at once.
            assert_eq!(deployment["spec"]["replicas"], 1);
            assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
            assert_eq!(data["persistentVolumeClaim"]["claimName"], "sluice-data");
            assert!(data.get("emptyDir").is_none(), "{data}");
            find(&docs, "PersistentVolumeClaim", "sluice-data");
        } else {
            let env = container["env"].as_array().unwrap();
            let url = env
                .iter()
                .find(|e| e["name"] == "SLUICE_STORE__URL")
                .unwrap();
            assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "sluice-store");
            assert!(
                !docs.iter().any(|d| d["kind"] == "PersistentVolumeClaim"),
                "{overlay}"
            );
        }
    }
}

/// Reads the managed namespaces of the `sluice.toml` in the ConfigMap, without the server crate.
mod toml_probe {
    pub struct Config {
        pub namespaces: Vec<String>,
    }

    /// The `namespaces = [...]` line of `[backend]`.
    pub fn parse(text: &str) -> Config {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("namespaces"))
            .expect("backend.namespaces in the ConfigMap");
        let list = line.split('#').next().unwrap();
        let inner = list.split_once('[').unwrap().1.split_once(']').unwrap().0;
        Config {
            namespaces: inner
                .split(',')
                .map(|n| n.trim().trim_matches('"').to_string())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }
}

// ---------------------------------------------------------------- a real cluster, opt-in

/// Runs only when `KUBECONFIG` is set: when the Spark Operator's CRD is installed (else it says
/// "skipped: CRD not installed"), connects, reads the capacity and creates a small job's
/// SparkApplication and a placeholder pod with `dryRun=All` in `SLUICE_TEST_NAMESPACE` (default
/// "default"): the API server validates them against the real schema and admission, and
/// nothing is left behind.
#[tokio::test]
async fn real_cluster_when_kubeconfig_is_set() {
    let Ok(path) = std::env::var("KUBECONFIG") else {
        eprintln!("skipped: KUBECONFIG is not set, no real cluster to test against");
        return;
    };
    let ns = std::env::var("SLUICE_TEST_NAMESPACE").unwrap_or_else(|_| "default".into());
    let creds = sluice_backend::kubernetes::Credentials::Kubeconfig {
        path: path.into(),
        context: None,
    };
    cluster_checks(&creds, &ns).await;
}

/// The opt-in test's checks, run here against the fake (through a kubeconfig file, as with a
/// real cluster), with and without the operator's CRD.
#[tokio::test]
async fn opt_in_cluster_checks_run_against_the_fake() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: nobody}}\nusers:\n- name: nobody\n  user: {{}}\n",
            fake.url
        ),
    )
    .unwrap();
    let creds = sluice_backend::kubernetes::Credentials::Kubeconfig {
        path: kubeconfig,
        context: None,
    };
    assert!(cluster_checks(&creds, NS).await, "dry runs made");
    let dry: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("dryRun=All"))
        .collect();
    assert_eq!(dry.len(), 2, "{dry:?}");
    assert!(dry[0].contains("/sparkapplications?"), "{dry:?}");
    assert!(dry[1].contains("/pods?"), "{dry:?}");
    assert!(
        fake.list("sparkapplications", NS).is_empty(),
        "nothing created"
    );
    assert!(fake.list("pods", NS).is_empty(), "nothing created");
    fake.uninstall_crd();
    assert!(!cluster_checks(&creds, NS).await, "skipped without the CRD");
}

/// Connects, reads the capacity and, when the operator's CRD is served, dry-runs a small job's
/// SparkApplication and a placeholder pod in `ns`. Returns whether the dry runs were made.
async fn cluster_checks(creds: &sluice_backend::kubernetes::Credentials, ns: &str) -> bool {
    use kube::api::{Api, DynamicObject, PostParams};
    use sluice_backend::kubernetes::objects::{PodKind, role_pod};
    use sluice_backend::kubernetes::{client_for, spark_application_resource};

    let ns = ns.to_string();
    // The backend watches SparkApplications: without the CRD it never gets ready.
    let client = client_for(creds).await.unwrap();
    let served = match client
        .list_api_group_resources("sparkoperator.k8s.io/v1beta2")
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == "sparkapplications"),
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => {
            eprintln!("discovery of sparkoperator.k8s.io/v1beta2: {e}");
            false
        }
    };
    if !served {
        eprintln!(
            "skipped: CRD not installed (sparkapplications.sparkoperator.k8s.io/v1beta2; \
             the backend needs the Spark Operator)"
        );
        return false;
    }
    let settings = KubeSettings {
        namespaces: vec![ns.clone()],
        ..Default::default()
    };
    let b = KubeBackend::connect(creds, settings.clone()).await.unwrap();
    b.wait_ready(Duration::from_secs(60)).await.unwrap();
    let report = b.capacity().await.unwrap();
    assert!(report.snapshot.available);
    assert!(
        !report.snapshot.allocatable.is_empty(),
        "a cluster with nodes"
    );
    eprintln!(
        "real cluster: {} schedulable nodes",
        report.snapshot.allocatable.len()
    );
    let text = format!(
        "name: sluice-dry-run\nnamespace: {ns}\nspark:\n  mainApplicationFile: local:///opt/spark/examples/src/main/python/pi.py\n  driver: {{cores: 1, memory: 512m}}\n  executor: {{cores: 1, instances: 1, memory: 512m}}\n"
    );
    let (job, demand) = parse(&text);
    assert_eq!(b.never_runs(&job, &demand), None, "a small job can run");
    let app = build_app(
        &job,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        1,
        &demand,
        &settings.app,
    )
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        field_manager: Some("sluice".into()),
    };
    let obj: DynamicObject = serde_json::from_value(app.clone()).unwrap();
    let created =
        Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &spark_application_resource())
            .create(&dry, &obj)
            .await
            .unwrap_or_else(|e| panic!("dry-run create of the SparkApplication in {ns}: {e}"));
    eprintln!(
        "real cluster: SparkApplication {:?} accepted (dry run)",
        created.metadata.name
    );
    let driver = demand.role(sluice_core::job::Role::Driver).unwrap().each();
    let ph = role_pod(
        &app,
        sluice_core::job::Role::Driver,
        driver,
        "01jz8m3v9q7x2kd4h6n8p0r2s4",
        1,
        PodKind::Placeholder {
            image: &settings.placeholder_image,
            priority_class: None,
        },
    );
    let pod = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client, &ns)
        .create(&dry, &ph)
        .await
        .unwrap_or_else(|e| panic!("dry-run create of a placeholder pod in {ns}: {e}"));
    eprintln!(
        "real cluster: placeholder pod {:?} accepted (dry run)",
        pod.metadata.name
    );
    true
}

async fn free(b: &KubeBackend) -> sluice_core::Resources {
    b.capacity().await.unwrap().snapshot.nodes[0].room()
}

/// A held job's `Waiting` event regards the SparkApplication it will become (no uid: it does
/// not exist yet), in the job's namespace; none is written where sluice manages nothing.
#[tokio::test]
async fn note_waiting_writes_a_waiting_event_per_held_job_in_managed_namespaces() {
    let fake = FakeApi::start().await;
    fake.put(
        "nodes",
        "",
        node("a", "8", "32Gi", 110, no_labels(), json!([])),
    );
    let b = backend(&fake, |_| {}).await;
    assert!(b.notes_waiting());
    let held = |id: &str, ns: &str| Held {
        job_id: id.into(),
        attempt: 2,
        namespace: ns.into(),
        name: "nightly.etl".into(),
        reason: "needs 3 cores, 2048 MiB in 3 pods".into(),
        position: 4,
    };
    b.note_waiting(&[held("h1", NS), held("h2", "elsewhere")])
        .await;
    let evs = fake.list("events", NS);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let e = &evs[0];
    assert_eq!(e["reason"], "Waiting");
    assert_eq!(e["type"], "Normal");
    assert_eq!(
        e["regarding"],
        json!({"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
               "namespace": NS, "name": app_name("nightly.etl", "h1", 2)})
    );
    assert_eq!(
        e["note"],
        "held by sluice: needs 3 cores, 2048 MiB in 3 pods; position 4 in the queue of \
         namespace spark (job h1, attempt 2)"
    );
    assert!(e["eventTime"].is_string(), "{e}");
    assert!(fake.list("events", "elsewhere").is_empty());
}
