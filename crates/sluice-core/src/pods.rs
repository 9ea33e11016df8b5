//! Kubernetes scheduling rules as pure functions over plain structs.
//!
//! The Kubernetes backend converts API objects (nodes, pods, resource quotas) into these structs
//! and asks the functions here what the scheduler would conclude:
//! - [`parse_quantity`]: a Kubernetes `resource.Quantity` ("500m", "1Gi", "129e6", "1.5") as
//!   millicores or MiB, rounded the safe way (requests up, allocatable down).
//! - [`pod_request`]: the effective request of a pod, as the kube-scheduler computes it
//!   (`PodRequests` in k8s.io/component-helpers): the sum of the containers, then the maximum
//!   with each init container (plus the sidecars started before it), sidecar init containers
//!   (`restartPolicy: Always`) added to the sum, and the pod overhead added last.
//! - [`tolerates`], [`NodeSelectorTerm::matches`], [`PodPlacement::allows`]: taints against
//!   tolerations (`NoSchedule` and `NoExecute` must be tolerated, `PreferNoSchedule` need not),
//!   `nodeSelector` and required node affinity.
//! - [`node_free`]: free room per node: Ready and schedulable nodes only; allocatable minus the
//!   requests of every non-terminal pod bound to the node (a pod being deleted still holds its
//!   room until it is gone); pod slots from `allocatable.pods`.
//! - [`quota_check`]: whether a namespace's ResourceQuotas hold a job's pods; a quota with
//!   scopes ([`Quota::applies_to`]: `BestEffort`, `NotBestEffort`, `Terminating`,
//!   `NotTerminating`, `PriorityClass`, `CrossNamespacePodAffinity`, as `spec.scopes` or
//!   `spec.scopeSelector`) counts only the pods it matches ([`PodScope`]).
//! - [`never_placed`] and [`quota_hard_check`]: whether a pod can never be placed on any node
//!   (selector, affinity, permanent taints, allocatable) and whether a job exceeds a quota's hard
//!   limit outright: such a job would wait forever.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::capacity::NodeCapacity;
use crate::job::Resources;

/// Why a Kubernetes quantity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Kubernetes quantity (like 500m, 2, 1.5, 512Mi, 1G, 129e6)")]
pub struct BadQuantity(pub String);

/// The unit to convert a quantity to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Millicores (CPU): the value times 1000.
    Milli,
    /// MiB (memory): the value divided by 2^20.
    Mebi,
    /// The plain value (counts such as pods).
    One,
}

/// How to round a value that is not a whole number of the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Round up (requests: never under-count what a pod takes).
    Up,
    /// Round down (allocatable and quota room: never over-count what is free).
    Down,
}

/// Parses a Kubernetes quantity (`<number><suffix>`: binary `Ki Mi Gi Ti Pi Ei`, decimal
/// `n u m k M G T P E`, or an exponent `e3`/`E3`) into `unit`, rounded as asked. Negative
/// quantities are refused; values beyond `u64` saturate.
pub fn parse_quantity(text: &str, unit: Unit, round: Round) -> Result<u64, BadQuantity> {
    let bad = || BadQuantity(text.to_string());
    let t = text.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(bad());
    }
    // value = mantissa * 10^exp10 * 2^exp2
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return Err(bad());
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    let mut exp10: i64 = -(frac_part.len() as i64);
    let mut exp2: i64 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 += 10,
        "Mi" => exp2 += 20,
        "Gi" => exp2 += 30,
        "Ti" => exp2 += 40,
        "Pi" => exp2 += 50,
        "Ei" => exp2 += 60,
        s if s.starts_with(['e', 'E']) => {
            let e: i64 = s[1..].parse().map_err(|_| bad())?;
            if !(-64..=64).contains(&e) {
                return Err(bad());
            }
            exp10 += e;
        }
        _ => return Err(bad()),
    }
    match unit {
        Unit::Milli => exp10 += 3,
        Unit::Mebi => exp2 -= 20,
        Unit::One => {}
    }
    if mantissa == 0 {
        return Ok(0);
    }
    // numerator / denominator, exactly, in u128; saturate on overflow.
    let mut num: u128 = mantissa;
    let mut den: u128 = 1;
    let mul = |x: u128, f: u128, times: i64| -> Option<u128> {
        let mut x = x;
        for _ in 0..times {
            x = x.checked_mul(f)?;
        }
        Some(x)
    };
    let saturate = |_| u64::MAX;
    if exp10 >= 0 {
        match mul(num, 10, exp10) {
            Some(v) => num = v,
            None => return Ok(saturate(())),
        }
    } else {
        match mul(den, 10, -exp10) {
            Some(v) => den = v,
            None => return Ok(if round == Round::Up { 1 } else { 0 }),
        }
    }
    if exp2 >= 0 {
        match mul(num, 2, exp2) {
            Some(v) => num = v,
            None => return Ok(saturate(())),
        }
    } else {
        match mul(den, 2, -exp2) {
            Some(v) => den = v,
            None => return Ok(if round == Round::Up { 1 } else { 0 }),
        }
    }
    let q = num / den;
    let q = if round == Round::Up && !num.is_multiple_of(den) {
        q + 1
    } else {
        q
    };
    Ok(u64::try_from(q).unwrap_or(u64::MAX))
}

/// Parses a request: CPU in millicores and memory in MiB, rounded up.
pub fn request_of(cpu: Option<&str>, memory: Option<&str>) -> Result<Resources, BadQuantity> {
    Ok(Resources::new(
        cpu.map(|c| parse_quantity(c, Unit::Milli, Round::Up))
            .transpose()?
            .unwrap_or(0),
        memory
            .map(|m| parse_quantity(m, Unit::Mebi, Round::Up))
            .transpose()?
            .unwrap_or(0),
    ))
}

/// One init container: its requests and whether it is a sidecar (`restartPolicy: Always`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InitContainer {
    /// Its requests.
    pub request: Resources,
    /// True for a sidecar (an init container with `restartPolicy: Always`), which keeps running
    /// beside the regular containers.
    pub sidecar: bool,
}

/// The containers of a pod, as far as its request goes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodResources {
    /// Requests of the regular containers.
    pub containers: Vec<Resources>,
    /// Init containers, in order.
    pub init_containers: Vec<InitContainer>,
    /// `spec.overhead` (RuntimeClass overhead), added once.
    pub overhead: Resources,
}

fn max_each(a: Resources, b: Resources) -> Resources {
    Resources::new(a.cpu_milli.max(b.cpu_milli), a.mem_mib.max(b.mem_mib))
}

/// The effective request of a pod, as the kube-scheduler computes it (`PodRequests`):
/// - the regular containers are summed;
/// - init containers run one at a time, each beside the sidecars started before it: the pod
///   needs the maximum of those;
/// - sidecars keep running, so each is also added to the sum of the regular containers;
/// - per resource, the larger of the two, plus the pod overhead.
pub fn pod_request(p: &PodResources) -> Resources {
    let mut reqs = p
        .containers
        .iter()
        .fold(Resources::default(), |acc, c| acc.plus(c));
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for ic in &p.init_containers {
        let during = if ic.sidecar {
            reqs = reqs.plus(&ic.request);
            sidecars = sidecars.plus(&ic.request);
            sidecars
        } else {
            ic.request.plus(&sidecars)
        };
        init_max = max_each(init_max, during);
    }
    max_each(reqs, init_max).plus(&p.overhead)
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Toleration {
    /// Key; empty with operator `Exists` tolerates every taint.
    pub key: String,
    /// `Equal` (the default when empty) or `Exists`.
    pub operator: String,
    /// Value, for `Equal`.
    pub value: String,
    /// Effect; empty tolerates every effect.
    pub effect: String,
}

/// Whether one toleration tolerates one taint (Kubernetes' `Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if !t.effect.is_empty() && t.effect != taint.effect {
        return false;
    }
    if t.key.is_empty() {
        // An empty key is only valid with Exists, and then matches every key.
        return t.operator == "Exists";
    }
    if t.key != taint.key {
        return false;
    }
    match t.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => t.value == taint.value,
        _ => false,
    }
}

/// The first taint (with effect `NoSchedule` or `NoExecute`) that no toleration tolerates.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// One `matchExpressions` entry of a node selector term.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MatchExpression {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`.
    pub operator: String,
    /// Values.
    pub values: Vec<String>,
}

impl MatchExpression {
    /// Whether a node with these labels satisfies the expression.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.operator.as_str() {
            "In" => v.is_some_and(|v| self.values.contains(v)),
            "NotIn" => v.is_none_or(|v| !self.values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            "Gt" | "Lt" => {
                let (Some(v), Some(bound)) = (v, self.values.first()) else {
                    return false;
                };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(b)) if self.operator == "Gt" => v > b,
                    (Ok(v), Ok(b)) => v < b,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// One term of `requiredDuringSchedulingIgnoredDuringExecution`: its expressions are ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeSelectorTerm {
    /// Expressions over node labels.
    pub match_expressions: Vec<MatchExpression>,
    /// Expressions over node fields (only `metadata.name` exists).
    pub match_fields: Vec<MatchExpression>,
}

impl NodeSelectorTerm {
    /// Whether the node matches every expression of the term. A term with no expressions
    /// matches nothing, as in Kubernetes.
    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        let fields: BTreeMap<String, String> =
            [("metadata.name".to_string(), node_name.to_string())].into();
        self.match_expressions.iter().all(|e| e.matches(labels))
            && self.match_fields.iter().all(|e| e.matches(&fields))
    }
}

/// Where a pod may go: its `nodeSelector`, tolerations and required node affinity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodPlacement {
    /// `nodeSelector`: every label must be on the node with this value.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Required node affinity terms (ORed); empty means no affinity.
    pub affinity: Vec<NodeSelectorTerm>,
}

impl PodPlacement {
    /// Whether the pod may be scheduled on `node` (selector, affinity, taints); `Err` says why
    /// not, for people.
    pub fn allows(&self, node: &NodeInfo) -> Result<(), String> {
        self.allows_with(node, |_| true)
    }

    /// Whether the pod could ever be scheduled on `node`: as [`PodPlacement::allows`], but the
    /// node's temporary condition taints (`node.kubernetes.io/*`: not-ready, unreachable,
    /// unschedulable, memory-pressure...) are left out; readiness and cordoning are not looked
    /// at either.
    pub fn allows_ever(&self, node: &NodeInfo) -> Result<(), String> {
        self.allows_with(node, |t| !is_condition_taint(t))
    }

    fn allows_with(&self, node: &NodeInfo, counts: impl Fn(&Taint) -> bool) -> Result<(), String> {
        if let Some((k, v)) = self
            .node_selector
            .iter()
            .find(|(k, v)| node.labels.get(*k) != Some(*v))
        {
            return Err(format!("node {} lacks label {k}={v}", node.name));
        }
        if !self.affinity.is_empty()
            && !self
                .affinity
                .iter()
                .any(|t| t.matches(&node.name, &node.labels))
        {
            return Err(format!(
                "node {} does not match the required node affinity",
                node.name
            ));
        }
        let taints: Vec<Taint> = node.taints.iter().filter(|t| counts(t)).cloned().collect();
        if let Some(t) = untolerated(&taints, &self.tolerations) {
            return Err(format!(
                "node {} has taint {}={}:{} that the pod does not tolerate",
                node.name, t.key, t.value, t.effect
            ));
        }
        Ok(())
    }
}

/// A taint the node controller adds and removes with the node's conditions
/// (`node.kubernetes.io/not-ready`, `.../unschedulable`, `.../memory-pressure`...): it says
/// nothing about where a pod can run in the long run.
pub fn is_condition_taint(t: &Taint) -> bool {
    t.key.starts_with("node.kubernetes.io/")
}

/// Why a pod of `role` requesting `each` can never run on any of `nodes`, whatever their
/// temporary state: no node accepts it ([`PodPlacement::allows_ever`]: selector, affinity,
/// permanent taints), or it is bigger than the allocatable room of every node that does (or
/// those take no pods). `Ok` when some node could hold it once empty; with no nodes at all
/// nothing is known, so `Ok` too.
pub fn never_placed(
    role: &str,
    placement: &PodPlacement,
    each: Resources,
    nodes: &[NodeInfo],
) -> Result<(), String> {
    if nodes.is_empty() {
        return Ok(());
    }
    let mut why = Vec::new();
    let accepting: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| match placement.allows_ever(n) {
            Ok(()) => true,
            Err(e) => {
                why.push(e);
                false
            }
        })
        .collect();
    if accepting.is_empty() {
        let more = why.len().saturating_sub(3);
        why.truncate(3);
        let mut msg = format!("no node accepts the {role}: {}", why.join("; "));
        if more > 0 {
            msg.push_str(&format!(" (and {more} more nodes)"));
        }
        return Err(msg);
    }
    let holds = |n: &&NodeInfo| {
        n.allocatable.cpu_milli >= each.cpu_milli
            && n.allocatable.mem_mib >= each.mem_mib
            && n.max_pods != Some(0)
    };
    if accepting.iter().any(holds) {
        return Ok(());
    }
    let mut sizes: Vec<String> = accepting
        .iter()
        .take(3)
        .map(|n| format!("node {} has {}", n.name, n.allocatable))
        .collect();
    if accepting.len() > 3 {
        sizes.push(format!("{} more nodes", accepting.len() - 3));
    }
    Err(format!(
        "one {role} pod needs {each}, more than the allocatable room of every node that accepts \
         it ({})",
        sizes.join("; ")
    ))
}

/// A node, as far as scheduling goes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<Taint>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `status.allocatable` cpu and memory (rounded down).
    pub allocatable: Resources,
    /// `status.allocatable.pods`, if given.
    pub max_pods: Option<u32>,
}

impl NodeInfo {
    /// Ready and not cordoned.
    pub fn schedulable(&self) -> bool {
        self.ready && !self.unschedulable
    }
}

/// A pod, as far as node room goes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodUsage {
    /// `spec.nodeName`; `None` for a pod not yet bound.
    pub node: Option<String>,
    /// Phase `Succeeded` or `Failed`: it holds nothing any more.
    pub terminal: bool,
    /// The effective request ([`pod_request`]).
    pub request: Resources,
}

/// Free and allocatable room of the schedulable nodes, in the order given.
///
/// Free = allocatable minus the requests of every non-terminal pod bound to the node (pods
/// being deleted included: they hold their room until they are gone); pod slots likewise.
/// Nodes that are not Ready or are cordoned are left out of both lists.
pub fn node_free(nodes: &[NodeInfo], pods: &[PodUsage]) -> (Vec<NodeCapacity>, Vec<NodeCapacity>) {
    let mut used: BTreeMap<&str, (Resources, u32)> = BTreeMap::new();
    for p in pods.iter().filter(|p| !p.terminal) {
        if let Some(n) = &p.node {
            let e = used.entry(n.as_str()).or_default();
            e.0 = e.0.plus(&p.request);
            e.1 = e.1.saturating_add(1);
        }
    }
    let mut free = Vec::new();
    let mut alloc = Vec::new();
    for n in nodes.iter().filter(|n| n.schedulable()) {
        let (u, count) = used.get(n.name.as_str()).copied().unwrap_or_default();
        let room = n.allocatable.minus(&u);
        free.push(NodeCapacity::new(
            n.name.clone(),
            room.cpu_milli,
            room.mem_mib,
            n.max_pods.map(|m| m.saturating_sub(count)),
        ));
        alloc.push(NodeCapacity::new(
            n.name.clone(),
            n.allocatable.cpu_milli,
            n.allocatable.mem_mib,
            n.max_pods,
        ));
    }
    (free, alloc)
}

/// A resource a ResourceQuota limits, in the units sluice counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaResource {
    /// `requests.cpu` or `cpu`, in millicores.
    RequestsCpu,
    /// `requests.memory` or `memory`, in MiB.
    RequestsMemory,
    /// `limits.cpu`, in millicores.
    LimitsCpu,
    /// `limits.memory`, in MiB.
    LimitsMemory,
    /// `pods` or `count/pods`.
    Pods,
}

impl QuotaResource {
    /// The resource a quota key names, if sluice checks it.
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "requests.cpu" | "cpu" => Some(Self::RequestsCpu),
            "requests.memory" | "memory" => Some(Self::RequestsMemory),
            "limits.cpu" => Some(Self::LimitsCpu),
            "limits.memory" => Some(Self::LimitsMemory),
            "pods" | "count/pods" => Some(Self::Pods),
            _ => None,
        }
    }

    /// The unit its quantities are read in.
    pub fn unit(&self) -> Unit {
        match self {
            Self::RequestsCpu | Self::LimitsCpu => Unit::Milli,
            Self::RequestsMemory | Self::LimitsMemory => Unit::Mebi,
            Self::Pods => Unit::One,
        }
    }

    fn format(&self, v: u64) -> String {
        match self {
            Self::RequestsCpu | Self::LimitsCpu => crate::quantity::format_cpu(v),
            Self::RequestsMemory | Self::LimitsMemory => crate::quantity::format_mem(v),
            Self::Pods => format!("{v} pods"),
        }
    }
}

impl fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RequestsCpu => "requests.cpu",
            Self::RequestsMemory => "requests.memory",
            Self::LimitsCpu => "limits.cpu",
            Self::LimitsMemory => "limits.memory",
            Self::Pods => "pods",
        })
    }
}

/// One ResourceQuota of a namespace: hard limits and current use, per resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Quota {
    /// Its name.
    pub name: String,
    /// `status.hard` (or `spec.hard`), rounded down.
    pub hard: BTreeMap<QuotaResource, u64>,
    /// `status.used`, rounded up.
    pub used: BTreeMap<QuotaResource, u64>,
    /// Its scopes: each of `spec.scopes` (as operator `Exists`), then
    /// `spec.scopeSelector.matchExpressions`. The quota counts only the pods that match every
    /// one; none: every pod.
    #[serde(default)]
    pub scopes: Vec<ScopeRequirement>,
}

impl Quota {
    /// Whether the quota counts a pod like `pod` (it matches every scope requirement).
    pub fn applies_to(&self, pod: &PodScope) -> bool {
        self.scopes.iter().all(|s| s.matches(pod))
    }
}

/// What a ResourceQuota's scopes look at in a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct PodScope {
    /// QoS class `BestEffort`: no container requests or limits any cpu or memory.
    pub best_effort: bool,
    /// `spec.activeDeadlineSeconds` is set (`Terminating`).
    pub terminating: bool,
    /// `spec.priorityClassName`, if set.
    pub priority_class: Option<String>,
    /// Pod (anti-)affinity terms name other namespaces (`namespaces` or `namespaceSelector`).
    pub cross_namespace_affinity: bool,
}

/// One scope of a ResourceQuota (`ScopedResourceSelectorRequirement`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopeRequirement {
    /// `scopeName`: `BestEffort`, `NotBestEffort`, `Terminating`, `NotTerminating`,
    /// `PriorityClass`, `CrossNamespacePodAffinity` (others, such as `VolumeAttributesClass`,
    /// match no pod).
    pub scope: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist` (only `Exists` is valid for the scopes other
    /// than `PriorityClass`, which ignore it).
    pub operator: String,
    /// Values, for `In` and `NotIn`.
    pub values: Vec<String>,
}

impl ScopeRequirement {
    /// Whether a pod like `pod` matches, as the API server's quota evaluator decides
    /// (`podMatchesScopeFunc`): `PriorityClass` is a label selector over the single label
    /// `PriorityClass=<name>`, absent when the pod names no priority class (so `NotIn` and
    /// `DoesNotExist` match such a pod, `In` and `Exists` do not).
    pub fn matches(&self, pod: &PodScope) -> bool {
        match self.scope.as_str() {
            "BestEffort" => pod.best_effort,
            "NotBestEffort" => !pod.best_effort,
            "Terminating" => pod.terminating,
            "NotTerminating" => !pod.terminating,
            "CrossNamespacePodAffinity" => pod.cross_namespace_affinity,
            "PriorityClass" => {
                let pc = pod.priority_class.as_deref().filter(|p| !p.is_empty());
                match self.operator.as_str() {
                    "Exists" => pc.is_some(),
                    "DoesNotExist" => pc.is_none(),
                    "In" => pc.is_some_and(|p| self.values.iter().any(|v| v == p)),
                    "NotIn" => pc.is_none_or(|p| !self.values.iter().any(|v| v == p)),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// What a job (or several) would add to a namespace's quota use.
pub type QuotaNeed = BTreeMap<QuotaResource, u64>;

/// Quota use split by the kind of pod that makes it, so that each quota counts only the pods
/// its scopes match.
pub type ScopedNeed = BTreeMap<PodScope, QuotaNeed>;

/// Adds `need` for pods like `pod` to `into`.
pub fn add_scoped(into: &mut ScopedNeed, pod: &PodScope, need: &QuotaNeed) {
    let e = into.entry(pod.clone()).or_default();
    *e = add_need(e, need);
}

/// Adds two scoped needs.
pub fn add_scoped_needs(a: &ScopedNeed, b: &ScopedNeed) -> ScopedNeed {
    let mut out = a.clone();
    for (pod, need) in b {
        add_scoped(&mut out, pod, need);
    }
    out
}

/// The part of `scoped` that `quota` counts: the needs of the pods its scopes match.
pub fn need_for(quota: &Quota, scoped: &ScopedNeed) -> QuotaNeed {
    scoped
        .iter()
        .filter(|(pod, _)| quota.applies_to(pod))
        .fold(QuotaNeed::new(), |acc, (_, n)| add_need(&acc, n))
}

/// The quota use of a set of pods: requests, limits (taken equal to the requests where the pod
/// sets none, as Spark sets memory limit = request) and the pod count.
pub fn quota_need(request: Resources, limits: Resources, pods: u64) -> QuotaNeed {
    [
        (QuotaResource::RequestsCpu, request.cpu_milli),
        (QuotaResource::RequestsMemory, request.mem_mib),
        (QuotaResource::LimitsCpu, limits.cpu_milli),
        (QuotaResource::LimitsMemory, limits.mem_mib),
        (QuotaResource::Pods, pods),
    ]
    .into()
}

/// Adds two needs.
pub fn add_need(a: &QuotaNeed, b: &QuotaNeed) -> QuotaNeed {
    let mut out = a.clone();
    for (k, v) in b {
        let e = out.entry(*k).or_default();
        *e = e.saturating_add(*v);
    }
    out
}

/// Checks that every quota still has room for `reserved` (held by jobs admitted but not yet
/// counted in `used`) plus `need`, each quota counting only the pods its scopes match. `Err`
/// names the quota, the resource and the numbers.
pub fn quota_check(
    quotas: &[Quota],
    reserved: &ScopedNeed,
    need: &ScopedNeed,
) -> Result<(), String> {
    for q in quotas {
        let need = need_for(q, need);
        let reserved = need_for(q, reserved);
        for (res, &hard) in &q.hard {
            let want = need.get(res).copied().unwrap_or(0);
            if want == 0 {
                continue;
            }
            let used = q
                .used
                .get(res)
                .copied()
                .unwrap_or(0)
                .saturating_add(reserved.get(res).copied().unwrap_or(0));
            if used.saturating_add(want) > hard {
                return Err(format!(
                    "ResourceQuota {} {res}: needs {}, {} of {} used",
                    q.name,
                    res.format(want),
                    res.format(used),
                    res.format(hard)
                ));
            }
        }
    }
    Ok(())
}

/// Checks that no quota's hard limit is below `need` alone (whatever is used): a job that
/// exceeds one outright can never run in the namespace. Each quota counts only the pods its
/// scopes match. `Err` names the quota, the resource and the numbers.
pub fn quota_hard_check(quotas: &[Quota], need: &ScopedNeed) -> Result<(), String> {
    for q in quotas {
        let need = need_for(q, need);
        for (res, &hard) in &q.hard {
            let want = need.get(res).copied().unwrap_or(0);
            if want > hard {
                return Err(format!(
                    "ResourceQuota {} {res}: the job needs {}, more than its hard limit of {}",
                    q.name,
                    res.format(want),
                    res.format(hard)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
