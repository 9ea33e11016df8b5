//! `sluice get ID -o yaml` gives back a document that `sluice submit` takes unchanged (the
//! user's own fields intact), and a stored policy that does not decode is an error naming the
//! job, never the default policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, local_state};
use serde_json::{Value, json};
use sluice_core::stored::StoredJob;
use sluice_server::api::JobView;
use sluice_server::api::views::resubmittable;

const OWN: &str = r#"# a comment the user wrote
name: nightly-report
namespace: analytics
priority: high
labels:
  team: finance
  note: "on"
maxRuntime: 1h30m
maxQueueWait: 2h
retry:
  maxAttempts: 3
  backoff: {initial: 10s, max: 10m, factor: 2}
  retryOn: [oom, application]
  oomMemoryFactor: 1.5
command:
  argv: ["sh", "-c", "echo report; exit 0"]
  env:
    REPORT_DATE: "2026-12-01"
  cpu: 500m
  memory: 256m
  workingDir: /tmp
"#;

const SPARK_APP: &str = include_str!("../../../examples/spark-pi-python.yaml");

async fn get(r: &axum::Router, id: &str) -> JobView {
    let (st, v) = call(r, "GET", &format!("/v1/jobs/{id}"), "").await;
    assert_eq!(st, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

/// Submits `text`, prints it as `get -o yaml` does, submits that, and checks both jobs are the
/// same job.
async fn round_trip(r: &axum::Router, text: &str, query: &str) {
    let (st, v) = call(r, "POST", &format!("/v1/jobs{query}"), text).await;
    assert_eq!(st, 201, "{v}");
    let first = get(r, v["id"].as_str().unwrap()).await;
    let printed = serde_saphyr::to_string(&resubmittable(&first).unwrap()).unwrap();
    assert!(printed.contains("state: queued"), "{printed}");
    assert!(printed.contains("demand:"), "{printed}");
    let (st, v) = call(r, "POST", "/v1/jobs", &printed).await;
    assert_eq!(st, 201, "resubmitting:\n{printed}\n{v}");
    let second = get(r, v["id"].as_str().unwrap()).await;
    assert_ne!(first.id, second.id);
    assert_eq!(
        (&first.namespace, &first.name, &first.level, &first.labels),
        (
            &second.namespace,
            &second.name,
            &second.level,
            &second.labels
        )
    );
    assert_eq!(first.demand, second.demand);
    let (a, b) = (
        StoredJob::decode(&first.spec).unwrap(),
        StoredJob::decode(&second.spec).unwrap(),
    );
    // A SparkApplication also keeps the text it was read from: that is the printed document
    // the second time; everything read from it is the same.
    assert_eq!(
        without_source(&a.job),
        without_source(&b.job),
        "printed:\n{printed}"
    );
    assert_eq!(a.policy, b.policy, "printed:\n{printed}");
    // The user's document is kept as submitted, comments included.
    assert_eq!(a.document, text);
}

fn without_source(job: &sluice_core::spec::Job) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("source");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(job).unwrap();
    strip(&mut v);
    v
}

#[tokio::test]
async fn get_yaml_resubmits_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let state = local_state(dir.path(), 8000, 16384, common::commands_allowed()).await;
    let r = common::app(state);
    round_trip(&r, OWN, "").await;
    round_trip(&r, SPARK_APP, "").await;
    // The sluice.io/priority label of the SparkApplication gives its level.
    let (_, list) = call(&r, "GET", "/v1/jobs?name=spark-pi-python", "").await;
    for j in list["jobs"].as_array().unwrap() {
        assert_eq!(j["level"], "high", "{j}");
    }
}

#[tokio::test]
async fn a_status_section_is_ignored_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = local_state(dir.path(), 8000, 16384, common::commands_allowed()).await;
    let r = common::app(state);
    let text = format!("{OWN}status:\n  state: succeeded\n  anything: [1, 2]\n");
    let (st, v) = call(&r, "POST", "/v1/jobs", &text).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["state"], "queued");
    // Other unknown top-level fields are still refused by name.
    let (st, v) = call(&r, "POST", "/v1/jobs", &format!("{OWN}statuz: 1\n")).await;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("statuz"), "{v}");
}

#[tokio::test]
async fn a_corrupt_stored_policy_is_an_error_naming_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let state = local_state(dir.path(), 8000, 16384, common::commands_allowed()).await;
    let r = common::app(state.clone());
    let (st, v) = call(&r, "POST", "/v1/jobs", OWN).await;
    assert_eq!(st, 201, "{v}");
    let good = get(&r, v["id"].as_str().unwrap()).await;
    assert!(good.orchestration.is_some());
    // A row whose policy no longer decodes (damaged behind sluice's back).
    let mut spec = good.spec.clone();
    spec["policy"]["retry"] = json!("many");
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET spec = $1 WHERE id = $2")
        .bind(spec.to_string())
        .bind(good.id.as_str())
        .execute(&mut conn)
        .await
        .unwrap();
    // The store still hands the row out; the job itself is an error naming it.
    let rec = state.store.get_job(&good.id).await.unwrap().unwrap();
    let err = rec.decoded().unwrap_err();
    assert_eq!(err.id, good.id);
    assert!(err.to_string().contains("policy"), "{err}");
    let (st, v) = call(&r, "GET", &format!("/v1/jobs/{}", rec.id), "").await;
    assert_eq!(st, 500, "{v}");
    let text = v.to_string();
    assert!(text.contains(&good.id), "{text}");
    assert!(text.contains("policy"), "{text}");
    // It is not silently shown with the default policy (one attempt).
    assert!(!text.contains("max_attempts"), "{text}");
    let _: Value = v;
}
