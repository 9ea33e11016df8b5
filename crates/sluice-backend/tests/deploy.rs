//! The shape of the Kubernetes install (`deploy/`), rendered with `kubectl kustomize` as
//! `kubectl apply -k` would: the PostgreSQL overlay runs three replicas that survive a node
//! drain (a PodDisruptionBudget, spread over nodes, rolled one at a time), the SQLite overlay
//! exactly one (Recreate), and both probe `/livez` and `/readyz`. What the overlays grant is
//! checked in `kubernetes.rs` (`deploy_overlays_render_...`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kustomize;

use kustomize::kustomize;
use serde_json::Value;

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one Deployment `sluice`.
fn deployment(docs: &[Value]) -> &Value {
    let all = of_kind(docs, "Deployment");
    assert_eq!(all.len(), 1, "one Deployment");
    assert_eq!(all[0]["metadata"]["name"], "sluice");
    all[0]
}

/// Whether `selector` (a `matchLabels` object) selects pods labelled `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("matchLabels");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Both overlays: the probes, on the named port of the container.
fn check_probes(overlay: &str, deployment: &Value) {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "sluice");
    let ports = container["ports"].as_array().unwrap();
    for (probe, path) in [
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/livez"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{overlay}: {probe}");
        assert!(
            ports.iter().any(|p| p["name"] == get["port"]),
            "{overlay}: {probe} on port {}, which the container does not name",
            get["port"]
        );
        // No credentials: both endpoints are public.
        assert!(get.get("httpHeaders").is_none(), "{overlay}: {probe}");
    }
}

#[test]
fn postgres_overlay_runs_three_replicas_that_survive_a_drain() {
    let overlay = "deploy/overlays/postgres";
    let docs = kustomize(overlay);
    let deployment = deployment(&docs);
    let spec = &deployment["spec"];
    let replicas = spec["replicas"].as_i64().unwrap();
    assert_eq!(replicas, 3);
    let pod_labels = &spec["template"]["metadata"]["labels"];
    // Each replica tells the others where it serves (a follower asks the leader why a job
    // waits): its pod IP, from the downward API.
    let env = spec["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    assert_eq!(
        var("POD_IP").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    assert_eq!(
        var("SLUICE_HA__ADVERTISE_URL").unwrap()["value"],
        "http://$(POD_IP):7467"
    );

    // Rolled one pod at a time, never below the replica count while a new pod starts.
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    let rolling = &spec["strategy"]["rollingUpdate"];
    assert_eq!(rolling["maxUnavailable"], 0, "{rolling}");
    assert_eq!(rolling["maxSurge"], 1, "{rolling}");

    // A drain evicts one pod at a time.
    let pdbs = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdbs.len(), 1, "one PodDisruptionBudget");
    let pdb = pdbs[0];
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(
        pdb["metadata"]["namespace"],
        deployment["metadata"]["namespace"]
    );
    assert!(
        selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels),
        "the PodDisruptionBudget does not select sluice's pods: {pdb}"
    );
    let may_be_down = match (
        pdb["spec"]["maxUnavailable"].as_i64(),
        pdb["spec"]["minAvailable"].as_i64(),
    ) {
        (Some(max), None) => max,
        (None, Some(min)) => replicas - min,
        other => panic!("a PodDisruptionBudget with one whole-number bound, not {other:?}"),
    };
    assert_eq!(may_be_down, 1, "{pdb}");

    // Spread over nodes when the cluster allows (preferred, so a small cluster still runs 3).
    let anti = &spec["template"]["spec"]["affinity"]["podAntiAffinity"];
    assert!(
        anti.get("requiredDuringSchedulingIgnoredDuringExecution")
            .is_none(),
        "{anti}"
    );
    let terms = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .expect("preferred pod anti-affinity");
    assert!(
        terms.iter().any(|t| {
            let term = &t["podAffinityTerm"];
            term["topologyKey"] == "kubernetes.io/hostname"
                && selects(&term["labelSelector"]["matchLabels"], pod_labels)
                && t["weight"].as_i64().is_some_and(|w| w > 0)
        }),
        "no anti-affinity by hostname on sluice's own pods: {anti}"
    );

    check_probes(overlay, deployment);
}

#[test]
fn sqlite_overlay_runs_exactly_one_replica() {
    let overlay = "deploy/overlays/sqlite";
    let docs = kustomize(overlay);
    let deployment = deployment(&docs);
    let spec = &deployment["spec"];
    // One writer of the SQLite file: one pod, and an update stops it before starting the next.
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "Recreate");
    assert!(spec["strategy"].get("rollingUpdate").is_none());
    // A budget for one pod would only block drains.
    assert!(of_kind(&docs, "PodDisruptionBudget").is_empty());
    check_probes(overlay, deployment);
}

/// The generated component `deploy/components/namespaces` is what `sluice render rbac` prints
/// for the namespaces of the ConfigMap's `backend.namespaces`, so regenerating it is the way to
/// add a namespace, and the file cannot drift from the permissions the backend uses.
#[test]
fn namespaces_component_is_the_rendered_rbac_of_the_configured_namespaces() {
    use sluice_backend::kubernetes::render::namespace_rbac;
    let docs = kustomize("deploy/overlays/sqlite");
    let config = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "sluice-config")
        .expect("the ConfigMap sluice-config")["data"]["sluice.toml"]
        .as_str()
        .unwrap()
        .to_string();
    // `namespaces = ["a", "b"]` of [backend], without a TOML parser in this crate's tests.
    let line = config
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("namespaces"))
        .expect("backend.namespaces in the ConfigMap");
    let inner = line.split_once('[').unwrap().1.split_once(']').unwrap().0;
    let namespaces: Vec<String> = inner
        .split(',')
        .map(|n| n.trim().trim_matches('"').to_string())
        .filter(|n| !n.is_empty())
        .collect();
    assert!(!namespaces.is_empty());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file =
        std::fs::read_to_string(root.join("deploy/components/namespaces/rbac.yaml")).unwrap();
    let committed: Vec<Value> = serde_saphyr::from_multiple(&file).unwrap();
    let rendered = namespace_rbac(&namespaces, "sluice-system/sluice").unwrap();
    assert_eq!(
        committed,
        rendered,
        "deploy/components/namespaces/rbac.yaml is stale: regenerate it with \
         `sluice render rbac --namespaces {}`",
        namespaces.join(",")
    );
}
