//! Conversions between Kubernetes objects (k8s-openapi types, SparkApplication JSON) and the
//! plain structs of [`sluice_core::pods`], and the pods sluice creates itself: dry-run copies of
//! the driver and executor pods, and placeholder pods. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Node, NodeAffinity, Pod, PodSpec, ResourceQuota, ResourceRequirements,
    SecurityContext, Toleration as K8sToleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use sluice_core::job::{Demand, PodDemand, Resources, Role};
use sluice_core::pods::{
    InitContainer, MatchExpression, NodeInfo, NodeSelectorTerm, PodPlacement, PodResources,
    PodScope, PodUsage, Quota, QuotaResource, Round, ScopeRequirement, ScopedNeed, Taint,
    Toleration, Unit, add_scoped, parse_quantity, pod_request, quota_need,
};

use super::app::{
    ATTEMPT_LABEL, JOB_ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PLACEHOLDER_LABEL, ROLE_LABEL,
    SPARK_ROLE_LABEL,
};

fn q(map: Option<&BTreeMap<String, Quantity>>, key: &str, unit: Unit, round: Round) -> u64 {
    map.and_then(|m| m.get(key))
        .and_then(|v| parse_quantity(&v.0, unit, round).ok())
        .unwrap_or(0)
}

fn requests(r: Option<&ResourceRequirements>) -> Resources {
    let req = r.and_then(|r| r.requests.as_ref());
    Resources::new(
        q(req, "cpu", Unit::Milli, Round::Up),
        q(req, "memory", Unit::Mebi, Round::Up),
    )
}

/// The containers of a pod spec, for [`pod_request`].
pub fn pod_resources(spec: &PodSpec) -> PodResources {
    PodResources {
        containers: spec
            .containers
            .iter()
            .map(|c| requests(c.resources.as_ref()))
            .collect(),
        init_containers: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| InitContainer {
                request: requests(c.resources.as_ref()),
                sidecar: c.restart_policy.as_deref() == Some("Always"),
            })
            .collect(),
        overhead: {
            let o = spec.overhead.as_ref();
            Resources::new(
                q(o, "cpu", Unit::Milli, Round::Up),
                q(o, "memory", Unit::Mebi, Round::Up),
            )
        },
    }
}

/// True when the pod has finished (phase Succeeded or Failed) and holds nothing.
pub fn pod_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's phase ("Pending" when unknown).
pub fn pod_phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The node a pod is bound to.
pub fn pod_node(p: &Pod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// A pod's use of its node. A pod being deleted (`deletionTimestamp` set) still counts until it
/// is gone or has ended.
pub fn pod_usage(p: &Pod) -> PodUsage {
    PodUsage {
        node: pod_node(p).map(String::from),
        terminal: pod_terminal(p),
        request: p
            .spec
            .as_ref()
            .map(|s| pod_request(&pod_resources(s)))
            .unwrap_or_default(),
    }
}

/// The label value of a pod or object.
pub fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

/// The role of a job's pod: Spark's `spark-role` label, or sluice's `sluice.io/role` on
/// placeholders.
pub fn pod_role(p: &Pod) -> Option<Role> {
    match label(&p.metadata, SPARK_ROLE_LABEL).or_else(|| label(&p.metadata, ROLE_LABEL)) {
        Some("driver") => Some(Role::Driver),
        Some("executor") => Some(Role::Executor),
        _ => None,
    }
}

/// A node as [`NodeInfo`]: Ready condition, cordon, labels, taints, allocatable (rounded down).
pub fn node_info(n: &Node) -> NodeInfo {
    let status = n.status.as_ref();
    let alloc = status.and_then(|s| s.allocatable.as_ref());
    let spec = n.spec.as_ref();
    NodeInfo {
        name: n.metadata.name.clone().unwrap_or_default(),
        labels: n.metadata.labels.clone().unwrap_or_default(),
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.clone(),
            })
            .collect(),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        allocatable: Resources::new(
            q(alloc, "cpu", Unit::Milli, Round::Down),
            q(alloc, "memory", Unit::Mebi, Round::Down),
        ),
        max_pods: alloc
            .and_then(|a| a.get("pods"))
            .and_then(|v| parse_quantity(&v.0, Unit::One, Round::Down).ok())
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
    }
}

/// A ResourceQuota as [`Quota`] (hard from the status, else the spec; used from the status;
/// `spec.scopes` and `spec.scopeSelector` as scope requirements, so that the quota counts only
/// the pods it matches).
pub fn quota_info(rq: &ResourceQuota) -> Option<Quota> {
    let spec = rq.spec.as_ref();
    let mut scopes: Vec<ScopeRequirement> = spec
        .and_then(|s| s.scopes.as_ref())
        .into_iter()
        .flatten()
        .map(|name| ScopeRequirement {
            scope: name.clone(),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    scopes.extend(
        spec.and_then(|s| s.scope_selector.as_ref())
            .and_then(|sel| sel.match_expressions.as_ref())
            .into_iter()
            .flatten()
            .map(|e| ScopeRequirement {
                scope: e.scope_name.clone(),
                operator: e.operator.clone(),
                values: e.values.clone().unwrap_or_default(),
            }),
    );
    let status = rq.status.as_ref();
    let hard = status
        .and_then(|s| s.hard.as_ref())
        .or_else(|| rq.spec.as_ref().and_then(|s| s.hard.as_ref()));
    let read = |m: Option<&BTreeMap<String, Quantity>>, round: Round| {
        let mut out = BTreeMap::new();
        for (k, v) in m.into_iter().flatten() {
            if let Some(res) = QuotaResource::from_key(k)
                && let Ok(n) = parse_quantity(&v.0, res.unit(), round)
            {
                // `cpu` and `requests.cpu` both limit requests: keep the smaller hard limit.
                let e = out.entry(res).or_insert(n);
                *e = if round == Round::Down {
                    (*e).min(n)
                } else {
                    (*e).max(n)
                };
            }
        }
        out
    };
    Some(Quota {
        name: rq.metadata.name.clone().unwrap_or_default(),
        hard: read(hard, Round::Down),
        used: read(status.and_then(|s| s.used.as_ref()), Round::Up),
        scopes,
    })
}

/// What ResourceQuota scopes see of the pods of `role` of the application `app`, each
/// requesting `each`: best effort when it requests nothing (Spark pods always request memory),
/// terminating when the role's pod template sets `activeDeadlineSeconds`, the role's
/// `priorityClassName` (else its template's), and pod (anti-)affinity naming other namespaces.
/// A PriorityClass with `globalDefault` that admission gives to pods naming none is not known
/// here.
pub fn pod_scope(app: &Value, role: Role, each: Resources) -> PodScope {
    let key = match role {
        Role::Executor => "executor",
        _ => "driver",
    };
    let r = app.get("spec").and_then(|s| s.get(key));
    let tpl = r.and_then(|r| r.pointer("/template/spec"));
    let priority_class = r
        .and_then(|r| r.get("priorityClassName"))
        .or_else(|| tpl.and_then(|t| t.get("priorityClassName")))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(String::from);
    let cross_namespace_affinity = [
        r.and_then(|r| r.get("affinity")),
        tpl.and_then(|t| t.get("affinity")),
    ]
    .into_iter()
    .flatten()
    .any(cross_namespace_terms);
    PodScope {
        best_effort: each.cpu_milli == 0 && each.mem_mib == 0,
        terminating: tpl
            .and_then(|t| t.get("activeDeadlineSeconds"))
            .is_some_and(|v| !v.is_null()),
        priority_class,
        cross_namespace_affinity,
    }
}

/// Whether pod affinity or anti-affinity terms of an `affinity` name other namespaces.
fn cross_namespace_terms(affinity: &Value) -> bool {
    let term_is_cross = |t: &Value| {
        t.get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            || t.get("namespaceSelector").is_some_and(|v| !v.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(a) = affinity.get(*kind) else {
            return false;
        };
        let required = a
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(term_is_cross);
        let preferred = a
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"))
            .any(term_is_cross);
        required || preferred
    })
}

/// The quota use of `demand`'s pods of the application `app`, by [`pod_scope`]: requests,
/// limits (memory limit = request, as Spark sets it; CPU limits taken equal to the requests)
/// and the pod count.
pub fn scoped_need(app: &Value, demand: &Demand) -> ScopedNeed {
    let mut out = ScopedNeed::new();
    for group in demand.pods.iter().filter(|g| g.count > 0) {
        let each = group.each();
        let total = Resources::new(
            each.cpu_milli.saturating_mul(u64::from(group.count)),
            each.mem_mib.saturating_mul(u64::from(group.count)),
        );
        add_scoped(
            &mut out,
            &pod_scope(app, group.role, each),
            &quota_need(total, total, u64::from(group.count)),
        );
    }
    out
}

/// When an object was created (`metadata.creationTimestamp`).
pub fn created_at(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|t| t.0)
}

/// Since when a pod has been running, by the API's timestamps: the `state.running.startedAt`
/// of its Spark container (`spark-kubernetes-driver` or `spark-kubernetes-executor`, else the
/// first running container), else when its `Ready` condition became true, else
/// `status.startTime`, else its creation.
pub fn running_since(p: &Pod) -> Option<Timestamp> {
    let st = p.status.as_ref();
    let statuses: Vec<_> = st
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let started = c.state.as_ref()?.running.as_ref()?.started_at.as_ref()?;
            Some((c.name.as_str(), started.0))
        })
        .collect();
    statuses
        .iter()
        .find(|(name, _)| name.starts_with("spark-kubernetes-"))
        .or(statuses.first())
        .map(|(_, t)| *t)
        .or_else(|| {
            st.and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "Ready" && c.status == "True")
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| st.and_then(|s| s.start_time.as_ref()).map(|t| t.0))
        .or_else(|| created_at(&p.metadata))
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tolerations_of(v: Option<&Value>) -> Vec<Toleration> {
    let list: Vec<K8sToleration> = v
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    list.into_iter()
        .map(|t| Toleration {
            key: t.key.unwrap_or_default(),
            operator: t.operator.unwrap_or_default(),
            value: t.value.unwrap_or_default(),
            effect: t.effect.unwrap_or_default(),
        })
        .collect()
}

fn affinity_of(v: Option<&Value>) -> Vec<NodeSelectorTerm> {
    let na: Option<NodeAffinity> = v
        .and_then(|v| v.pointer("/nodeAffinity"))
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let conv = |list: Option<Vec<k8s_openapi::api::core::v1::NodeSelectorRequirement>>| {
        list.unwrap_or_default()
            .into_iter()
            .map(|r| MatchExpression {
                key: r.key,
                operator: r.operator,
                values: r.values.unwrap_or_default(),
            })
            .collect()
    };
    na.and_then(|na| na.required_during_scheduling_ignored_during_execution)
        .map(|ns| {
            ns.node_selector_terms
                .into_iter()
                .map(|t| NodeSelectorTerm {
                    match_expressions: conv(t.match_expressions),
                    match_fields: conv(t.match_fields),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where the pods of one role of a SparkApplication may go: `spec.nodeSelector` merged with the
/// role's own `nodeSelector`, the role's tolerations and required node affinity (and those of
/// the role's pod `template`, which Spark merges in).
pub fn placement_of(app: &Value, role: Role) -> PodPlacement {
    let key = match role {
        Role::Executor => "executor",
        _ => "driver",
    };
    let spec = app.get("spec");
    let r = spec.and_then(|s| s.get(key));
    let tpl = r.and_then(|r| r.pointer("/template/spec"));
    let mut node_selector = str_map(tpl.and_then(|t| t.get("nodeSelector")));
    node_selector.extend(str_map(spec.and_then(|s| s.get("nodeSelector"))));
    node_selector.extend(str_map(r.and_then(|r| r.get("nodeSelector"))));
    let mut tolerations = tolerations_of(tpl.and_then(|t| t.get("tolerations")));
    tolerations.extend(tolerations_of(r.and_then(|r| r.get("tolerations"))));
    let mut affinity = affinity_of(r.and_then(|r| r.get("affinity")));
    if affinity.is_empty() {
        affinity = affinity_of(tpl.and_then(|t| t.get("affinity")));
    }
    PodPlacement {
        node_selector,
        tolerations,
        affinity,
    }
}

/// The pods of a job, by role, that hold node room now: non-terminal and bound to a node.
pub fn bound_pods_by_role<'a>(pods: impl Iterator<Item = &'a Pod>) -> BTreeMap<Role, u32> {
    let mut out = BTreeMap::new();
    for p in pods {
        if pod_terminal(p) || pod_node(p).is_none() {
            continue;
        }
        if let Some(role) = pod_role(p) {
            *out.entry(role).or_insert(0) += 1;
        }
    }
    out
}

/// The part of `demand` not yet held by the pods counted in `seen` (per role).
pub fn remaining(demand: &Demand, seen: &BTreeMap<Role, u32>) -> Demand {
    Demand {
        pods: demand
            .pods
            .iter()
            .map(|p| PodDemand {
                count: p
                    .count
                    .saturating_sub(seen.get(&p.role).copied().unwrap_or(0)),
                ..*p
            })
            .filter(|p| p.count > 0)
            .collect(),
    }
}

/// What kind of pod [`role_pod`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodKind<'a> {
    /// A copy of the pod Spark will create, for a `dryRun=All` create: the application's image,
    /// service account and security contexts.
    DryRun,
    /// A low-priority placeholder holding the room: the pause image.
    Placeholder {
        /// The pause image.
        image: &'a str,
        /// The priority class of placeholders, if configured.
        priority_class: Option<&'a str>,
    },
}

fn restricted_security_context() -> SecurityContext {
    serde_json::from_value(serde_json::json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "runAsUser": 65535,
        "seccompProfile": {"type": "RuntimeDefault"},
    }))
    .unwrap_or_default()
}

/// A pod for one pod of `role` of the application `app`, requesting what `each` says: the
/// role's placement (node selector, tolerations, affinity), labels tying it to the job, memory
/// limit equal to the request (as Spark sets it) and the role's `coreLimit` as CPU limit.
pub fn role_pod(
    app: &Value,
    role: Role,
    each: Resources,
    job_id: &str,
    attempt: u32,
    kind: PodKind<'_>,
) -> Pod {
    let key = match role {
        Role::Executor => "executor",
        _ => "driver",
    };
    let spec = app.get("spec");
    let r = spec.and_then(|s| s.get(key));
    let app_name = app
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("app");
    let namespace = app
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    let mut labels: BTreeMap<String, String> = [
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (JOB_ID_LABEL.to_string(), job_id.to_string()),
        (ATTEMPT_LABEL.to_string(), attempt.to_string()),
        (ROLE_LABEL.to_string(), key.to_string()),
    ]
    .into();
    let mut reqs = BTreeMap::new();
    reqs.insert("cpu".to_string(), Quantity(format!("{}m", each.cpu_milli)));
    reqs.insert(
        "memory".to_string(),
        Quantity(format!("{}Mi", each.mem_mib)),
    );
    let mut limits = BTreeMap::new();
    limits.insert(
        "memory".to_string(),
        Quantity(format!("{}Mi", each.mem_mib)),
    );
    if let Some(cl) = r.and_then(|r| r.get("coreLimit")).and_then(Value::as_str) {
        limits.insert("cpu".to_string(), Quantity(cl.to_string()));
    }
    let placement = placement_of(app, role);
    let mut pod_spec = PodSpec {
        node_selector: (!placement.node_selector.is_empty()).then_some(placement.node_selector),
        tolerations: r
            .and_then(|r| r.get("tolerations"))
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        affinity: r
            .and_then(|r| r.get("affinity"))
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        restart_policy: Some("Never".into()),
        ..Default::default()
    };
    let mut container = Container {
        name: format!("spark-kubernetes-{key}"),
        resources: Some(ResourceRequirements {
            requests: Some(reqs),
            limits: Some(limits),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name_suffix;
    match kind {
        PodKind::DryRun => {
            name_suffix = format!("-{key}");
            container.image = r
                .and_then(|r| r.get("image"))
                .or_else(|| spec.and_then(|s| s.get("image")))
                .and_then(Value::as_str)
                .map(String::from);
            container.security_context = r
                .and_then(|r| r.get("securityContext"))
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            pod_spec.security_context = r
                .and_then(|r| r.get("podSecurityContext"))
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            pod_spec.priority_class_name = r
                .and_then(|r| r.get("priorityClassName"))
                .and_then(Value::as_str)
                .map(String::from);
            pod_spec.scheduler_name = r
                .and_then(|r| r.get("schedulerName"))
                .and_then(Value::as_str)
                .map(String::from);
            if role == Role::Driver {
                pod_spec.service_account_name = r
                    .and_then(|r| r.get("serviceAccount"))
                    .and_then(Value::as_str)
                    .map(String::from);
            }
            labels.insert(SPARK_ROLE_LABEL.to_string(), key.to_string());
            labels.extend(str_map(r.and_then(|r| r.get("labels"))));
        }
        PodKind::Placeholder {
            image,
            priority_class,
        } => {
            name_suffix = format!("-ph-{key}-");
            labels.insert(PLACEHOLDER_LABEL.to_string(), "true".to_string());
            container.name = "placeholder".into();
            container.image = Some(image.to_string());
            container.security_context = Some(restricted_security_context());
            pod_spec.priority_class_name = priority_class.map(String::from);
            pod_spec.termination_grace_period_seconds = Some(0);
            pod_spec.automount_service_account_token = Some(false);
        }
    }
    pod_spec.containers = vec![container];
    let (name, generate_name) = match kind {
        PodKind::DryRun => (Some(format!("{app_name}{name_suffix}")), None),
        PodKind::Placeholder { .. } => (None, Some(format!("{app_name}{name_suffix}"))),
    };
    Pod {
        metadata: ObjectMeta {
            name,
            generate_name,
            namespace,
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// Every pod a job's demand asks for, one [`role_pod`] per pod (driver first).
pub fn job_pods(
    app: &Value,
    demand: &Demand,
    job_id: &str,
    attempt: u32,
    kind: PodKind<'_>,
) -> Vec<Pod> {
    let mut out = Vec::new();
    for group in &demand.pods {
        for _ in 0..group.count {
            out.push(role_pod(
                app,
                group.role,
                group.each(),
                job_id,
                attempt,
                kind,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
