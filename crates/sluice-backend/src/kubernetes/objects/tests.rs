use super::*;
use serde_json::json;

/// A demand of one driver (cpu milli, MiB) and `n` executors (n, cpu milli, MiB).
fn driver_and_executors(driver: (u64, u64), executors: (u32, u64, u64)) -> Demand {
    Demand {
        pods: vec![
            PodDemand {
                role: Role::Driver,
                count: 1,
                cpu_milli: driver.0,
                mem_mib: driver.1,
            },
            PodDemand {
                role: Role::Executor,
                count: executors.0,
                cpu_milli: executors.1,
                mem_mib: executors.2,
            },
        ],
    }
}

fn pod(v: Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

#[test]
fn pod_usage_from_api_json() {
    let p = pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "x", "namespace": "ns", "deletionTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"spark-role": "executor"}},
        "spec": {
            "nodeName": "n1",
            "overhead": {"cpu": "100m", "memory": "64Mi"},
            "initContainers": [
                {"name": "init", "image": "busybox", "resources": {"requests": {"cpu": "2", "memory": "100Mi"}}},
                {"name": "side", "image": "envoy", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}}
            ],
            "containers": [
                {"name": "main", "image": "spark", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "nothing", "image": "x"}
            ]
        },
        "status": {"phase": "Running"}
    }));
    let u = pod_usage(&p);
    assert_eq!(u.node.as_deref(), Some("n1"));
    assert!(!u.terminal, "a pod being deleted still holds its room");
    // max(1000+250, 2000) + 100 = 2100; max(1024+128, 100) + 64 = 1216
    assert_eq!(u.request, Resources::new(2100, 1216));
    assert_eq!(pod_role(&p), Some(Role::Executor));
    let done = pod(
        json!({"metadata": {"name": "d"}, "spec": {"containers": []},
                         "status": {"phase": "Succeeded"}}),
    );
    assert!(pod_usage(&done).terminal);
    assert_eq!(pod_phase(&done), "Succeeded");
}

#[test]
fn node_and_quota_from_api_json() {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1", "labels": {"zone": "a"}},
        "spec": {"taints": [{"key": "dedicated", "value": "spark", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "3920m", "memory": "16318420Ki", "pods": "110"},
            "conditions": [{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True"}]
        }
    }))
    .unwrap();
    let info = node_info(&n);
    assert!(info.schedulable());
    assert_eq!(
        info.allocatable,
        Resources::new(3920, 15935),
        "rounded down"
    );
    assert_eq!(info.max_pods, Some(110));
    assert_eq!(info.taints[0].effect, "NoSchedule");
    let rq: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "team"},
        "spec": {"hard": {"requests.cpu": "4", "cpu": "3", "memory": "8Gi", "services": "5"}},
        "status": {"hard": {"requests.cpu": "4", "cpu": "3", "memory": "8Gi", "services": "5"},
                   "used": {"requests.cpu": "500m", "cpu": "500m", "memory": "1Gi", "services": "1"}}
    }))
    .unwrap();
    let qi = quota_info(&rq).unwrap();
    assert_eq!(qi.hard.get(&QuotaResource::RequestsCpu), Some(&3000));
    assert_eq!(qi.hard.get(&QuotaResource::RequestsMemory), Some(&8192));
    assert_eq!(qi.used.get(&QuotaResource::RequestsCpu), Some(&500));
    assert_eq!(qi.hard.len(), 2);
    assert!(qi.scopes.is_empty());
    let scoped: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"hard": {"pods": "1"}, "scopes": ["NotTerminating"],
                 "scopeSelector": {"matchExpressions": [
                     {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}
    }))
    .unwrap();
    let qi = quota_info(&scoped).unwrap();
    assert_eq!(
        qi.scopes,
        vec![
            ScopeRequirement {
                scope: "NotTerminating".into(),
                operator: "Exists".into(),
                values: vec![]
            },
            ScopeRequirement {
                scope: "PriorityClass".into(),
                operator: "In".into(),
                values: vec!["high".into()]
            },
        ]
    );
    assert_eq!(qi.hard.get(&QuotaResource::Pods), Some(&1));
}

#[test]
fn placement_and_pods_of_an_application() {
    let app = json!({
        "metadata": {"name": "pi-1", "namespace": "ns"},
        "spec": {
            "image": "spark:4",
            "nodeSelector": {"pool": "spark"},
            "driver": {"nodeSelector": {"zone": "a"}, "serviceAccount": "sa", "coreLimit": "2",
                       "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "spark", "effect": "NoSchedule"}],
                       "labels": {"version": "4"}},
            "executor": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}}
        }
    });
    let d = placement_of(&app, Role::Driver);
    assert_eq!(d.node_selector.len(), 2);
    assert_eq!(d.tolerations[0].value, "spark");
    let e = placement_of(&app, Role::Executor);
    assert_eq!(
        e.node_selector.get("pool").map(String::as_str),
        Some("spark")
    );
    assert_eq!(e.affinity[0].match_expressions[0].values, vec!["ssd"]);

    let demand = driver_and_executors((1000, 1408), (2, 500, 896));
    let pods = job_pods(&app, &demand, "job1", 2, PodKind::DryRun);
    assert_eq!(pods.len(), 3);
    let driver = &pods[0];
    assert_eq!(driver.metadata.name.as_deref(), Some("pi-1-driver"));
    let spec = driver.spec.as_ref().unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("sa"));
    assert_eq!(pod_usage(driver).request, Resources::new(1000, 1408));
    let c = &spec.containers[0];
    assert_eq!(c.image.as_deref(), Some("spark:4"));
    assert_eq!(
        c.resources.as_ref().unwrap().limits.as_ref().unwrap()["cpu"].0,
        "2"
    );
    assert_eq!(label(&driver.metadata, "version"), Some("4"));
    let ph = job_pods(
        &app,
        &demand,
        "job1",
        2,
        PodKind::Placeholder {
            image: "pause:3.10",
            priority_class: Some("sluice-placeholder"),
        },
    );
    let e = &ph[2];
    assert_eq!(
        e.metadata.generate_name.as_deref(),
        Some("pi-1-ph-executor-")
    );
    assert_eq!(label(&e.metadata, PLACEHOLDER_LABEL), Some("true"));
    assert_eq!(pod_role(e), Some(Role::Executor));
    let es = e.spec.as_ref().unwrap();
    assert_eq!(
        es.priority_class_name.as_deref(),
        Some("sluice-placeholder")
    );
    assert!(es.affinity.is_some());
    assert_eq!(pod_usage(e).request, Resources::new(500, 896));
}

#[test]
fn remaining_demand() {
    let demand = driver_and_executors((1000, 1000), (3, 500, 500));
    let seen = [(Role::Driver, 1), (Role::Executor, 1)].into();
    let left = remaining(&demand, &seen);
    assert_eq!(left.pods.len(), 1);
    assert_eq!(left.pods[0].count, 2);
    assert_eq!(remaining(&demand, &BTreeMap::new()), demand);
}

#[test]
fn pod_scopes_and_scoped_need_of_an_application() {
    let app = json!({
        "metadata": {"name": "pi-1", "namespace": "ns"},
        "spec": {
            "driver": {"priorityClassName": "high"},
            "executor": {"template": {"spec": {"activeDeadlineSeconds": 600}},
                         "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                             {"weight": 1, "podAffinityTerm": {"topologyKey": "zone",
                              "namespaceSelector": {}}}]}}}
        }
    });
    let d = pod_scope(&app, Role::Driver, Resources::new(1000, 1408));
    assert_eq!(
        d,
        PodScope {
            priority_class: Some("high".into()),
            ..PodScope::default()
        }
    );
    let e = pod_scope(&app, Role::Executor, Resources::new(500, 896));
    assert!(e.terminating && e.cross_namespace_affinity && e.priority_class.is_none());
    assert!(pod_scope(&app, Role::Executor, Resources::new(0, 0)).best_effort);
    let plain = json!({"spec": {"driver": {}, "executor": {}}});
    assert_eq!(
        pod_scope(&plain, Role::Driver, Resources::new(1, 1)),
        PodScope::default()
    );
    let demand = driver_and_executors((1000, 1408), (2, 500, 896));
    let need = scoped_need(&app, &demand);
    assert_eq!(need.len(), 2);
    assert_eq!(need[&d].get(&QuotaResource::RequestsCpu), Some(&1000));
    assert_eq!(need[&e].get(&QuotaResource::RequestsMemory), Some(&1792));
    assert_eq!(need[&e].get(&QuotaResource::Pods), Some(&2));
    // Without scopes apart, both roles add up under one key.
    let need = scoped_need(&plain, &demand);
    assert_eq!(need.len(), 1);
    assert_eq!(
        need[&PodScope::default()].get(&QuotaResource::LimitsCpu),
        Some(&2000)
    );
}

#[test]
fn running_since_from_api_json() {
    let ts = |s: &str| s.parse::<Timestamp>().unwrap();
    let p = pod(json!({
        "metadata": {"name": "d", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": []},
        "status": {
            "phase": "Running",
            "startTime": "2026-01-01T00:00:05Z",
            "conditions": [{"type": "Ready", "status": "True",
                            "lastTransitionTime": "2026-01-01T00:00:30Z"}],
            "containerStatuses": [
                {"name": "sidecar", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                 "state": {"running": {"startedAt": "2026-01-01T00:00:10Z"}}},
                {"name": "spark-kubernetes-driver", "image": "spark", "imageID": "", "ready": true,
                 "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:20Z"}}}
            ]
        }
    }));
    assert_eq!(running_since(&p), Some(ts("2026-01-01T00:00:20Z")));
    let mut q = p.clone();
    q.status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()
        .remove(1);
    assert_eq!(
        running_since(&q),
        Some(ts("2026-01-01T00:00:10Z")),
        "first running"
    );
    q.status.as_mut().unwrap().container_statuses = None;
    assert_eq!(running_since(&q), Some(ts("2026-01-01T00:00:30Z")), "Ready");
    q.status.as_mut().unwrap().conditions = None;
    assert_eq!(
        running_since(&q),
        Some(ts("2026-01-01T00:00:05Z")),
        "start time"
    );
    q.status = None;
    assert_eq!(
        running_since(&q),
        Some(ts("2026-01-01T00:00:00Z")),
        "creation"
    );
    assert_eq!(created_at(&q.metadata), Some(ts("2026-01-01T00:00:00Z")));
}
