//! The Kubernetes backend against an in-process fake API server (`kube_fake`, real API JSON
//! shapes over HTTP on 127.0.0.1), every generated SparkApplication checked against the real
//! CRD schema, and an opt-in run against a real cluster when `KUBECONFIG` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_fake;
mod kustomize;

#[path = "kubernetes/capacity.rs"]
mod capacity;
#[path = "kubernetes/cluster.rs"]
mod cluster;
#[path = "kubernetes/crd.rs"]
mod crd;
#[path = "kubernetes/deploy.rs"]
mod deploy;
#[path = "kubernetes/never_runs.rs"]
mod never_runs;
#[path = "kubernetes/placeholders.rs"]
mod placeholders;

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

async fn free(b: &KubeBackend) -> sluice_core::Resources {
    b.capacity().await.unwrap().snapshot.nodes[0].room()
}
