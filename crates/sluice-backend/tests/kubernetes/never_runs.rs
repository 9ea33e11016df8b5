//! Jobs that can never run: what no node or quota allows, and quotas scoped to some pods.

use super::*;

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
