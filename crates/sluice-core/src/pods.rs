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
mod tests {
    use super::*;

    fn r(cpu: u64, mem: u64) -> Resources {
        Resources::new(cpu, mem)
    }

    #[test]
    fn quantities() {
        use Round::*;
        use Unit::*;
        let cases: &[(&str, Unit, Round, Result<u64, ()>)] = &[
            ("500m", Milli, Up, Ok(500)),
            ("2", Milli, Up, Ok(2000)),
            ("1.5", Milli, Up, Ok(1500)),
            ("0.1", Milli, Up, Ok(100)),
            ("100u", Milli, Up, Ok(1)),
            ("100u", Milli, Down, Ok(0)),
            ("1k", Milli, Up, Ok(1_000_000)),
            ("1Gi", Mebi, Up, Ok(1024)),
            ("512Mi", Mebi, Up, Ok(512)),
            ("1G", Mebi, Up, Ok(954)),
            ("1G", Mebi, Down, Ok(953)),
            ("128974848", Mebi, Up, Ok(123)),
            ("129e6", Mebi, Up, Ok(124)),
            ("129e6", Mebi, Down, Ok(123)),
            ("1.5Gi", Mebi, Up, Ok(1536)),
            ("16Ti", Mebi, Up, Ok(16 << 20)),
            ("110", One, Down, Ok(110)),
            ("0", Mebi, Up, Ok(0)),
            (".5", Milli, Up, Ok(500)),
            ("+1", One, Up, Ok(1)),
            ("", Milli, Up, Err(())),
            ("-1", Milli, Up, Err(())),
            ("1.2.3", Milli, Up, Err(())),
            ("1Xi", Mebi, Up, Err(())),
            ("abc", Mebi, Up, Err(())),
            ("1e", Mebi, Up, Err(())),
        ];
        for (text, unit, round, want) in cases {
            let got = parse_quantity(text, *unit, *round).map_err(|_| ());
            assert_eq!(got, *want, "{text} {unit:?} {round:?}");
        }
        assert_eq!(
            parse_quantity("1e30", Unit::Milli, Round::Up),
            Ok(u64::MAX),
            "saturates"
        );
        assert!(
            parse_quantity("x", Unit::One, Round::Up)
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
    }

    #[test]
    fn pod_request_rule() {
        let ic = |cpu, mem, sidecar| InitContainer {
            request: r(cpu, mem),
            sidecar,
        };
        let cases: Vec<(&str, PodResources, Resources)> = vec![
            ("empty pod", PodResources::default(), r(0, 0)),
            (
                "containers are summed",
                PodResources {
                    containers: vec![r(500, 256), r(250, 128)],
                    ..Default::default()
                },
                r(750, 384),
            ),
            (
                "a large init container wins per resource",
                PodResources {
                    containers: vec![r(500, 256), r(250, 128)],
                    init_containers: vec![ic(2000, 64, false)],
                    ..Default::default()
                },
                r(2000, 384),
            ),
            (
                "init containers run one at a time: max, not sum",
                PodResources {
                    containers: vec![r(100, 100)],
                    init_containers: vec![ic(1000, 50, false), ic(50, 1000, false)],
                    ..Default::default()
                },
                r(1000, 1000),
            ),
            (
                "sidecars are added to the containers",
                PodResources {
                    containers: vec![r(1000, 1024)],
                    init_containers: vec![ic(100, 64, true)],
                    ..Default::default()
                },
                r(1100, 1088),
            ),
            (
                "an init container after a sidecar runs beside it",
                PodResources {
                    containers: vec![r(100, 100)],
                    init_containers: vec![ic(200, 200, true), ic(1000, 1000, false)],
                    ..Default::default()
                },
                r(1200, 1200),
            ),
            (
                "an init container before a sidecar does not",
                PodResources {
                    containers: vec![r(100, 100)],
                    init_containers: vec![ic(1000, 1000, false), ic(200, 200, true)],
                    ..Default::default()
                },
                r(1000, 1000),
            ),
            (
                "overhead is added last",
                PodResources {
                    containers: vec![r(1000, 1024)],
                    init_containers: vec![ic(3000, 10, false)],
                    overhead: r(250, 120),
                },
                r(3250, 1144),
            ),
        ];
        for (name, pod, want) in cases {
            assert_eq!(pod_request(&pod), want, "{name}");
        }
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: key.into(),
            operator: op.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    #[test]
    fn tolerations_table() {
        let t = taint("dedicated", "spark", "NoSchedule");
        let cases = [
            (
                "equal, same value",
                tol("dedicated", "Equal", "spark", ""),
                true,
            ),
            (
                "default operator is Equal",
                tol("dedicated", "", "spark", ""),
                true,
            ),
            ("other value", tol("dedicated", "Equal", "gpu", ""), false),
            (
                "exists on the key",
                tol("dedicated", "Exists", "", ""),
                true,
            ),
            ("other key", tol("gpu", "Exists", "", ""), false),
            (
                "empty key with Exists tolerates all",
                tol("", "Exists", "", ""),
                true,
            ),
            (
                "empty key with Equal is invalid",
                tol("", "Equal", "", ""),
                false,
            ),
            (
                "matching effect",
                tol("dedicated", "Exists", "", "NoSchedule"),
                true,
            ),
            (
                "other effect",
                tol("dedicated", "Exists", "", "NoExecute"),
                false,
            ),
            (
                "unknown operator",
                tol("dedicated", "Maybe", "spark", ""),
                false,
            ),
        ];
        for (name, tl, want) in cases {
            assert_eq!(tolerates(&tl, &t), want, "{name}");
        }
        let taints = [
            taint("soft", "", "PreferNoSchedule"),
            taint("a", "1", "NoSchedule"),
            taint("b", "", "NoExecute"),
        ];
        assert_eq!(untolerated(&taints, &[]), Some(&taints[1]));
        assert_eq!(
            untolerated(&taints, &[tol("a", "Equal", "1", "")]),
            Some(&taints[2])
        );
        assert_eq!(
            untolerated(
                &taints,
                &[tol("a", "Equal", "1", ""), tol("b", "Exists", "", "")]
            ),
            None,
            "PreferNoSchedule need not be tolerated"
        );
    }

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> MatchExpression {
        MatchExpression {
            key: key.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn selectors_and_affinity() {
        let l = labels(&[("zone", "a"), ("cores", "16")]);
        let cases = [
            (expr("zone", "In", &["a", "b"]), true),
            (expr("zone", "In", &["b"]), false),
            (expr("zone", "NotIn", &["b"]), true),
            (expr("disk", "NotIn", &["ssd"]), true),
            (expr("zone", "Exists", &[]), true),
            (expr("zone", "DoesNotExist", &[]), false),
            (expr("cores", "Gt", &["8"]), true),
            (expr("cores", "Lt", &["8"]), false),
            (expr("zone", "Gt", &["8"]), false),
            (expr("zone", "Near", &["a"]), false),
        ];
        for (e, want) in cases {
            assert_eq!(e.matches(&l), want, "{e:?}");
        }
        let term = NodeSelectorTerm {
            match_expressions: vec![expr("zone", "In", &["a"])],
            match_fields: vec![expr("metadata.name", "In", &["n1"])],
        };
        assert!(term.matches("n1", &l));
        assert!(!term.matches("n2", &l));
        assert!(!NodeSelectorTerm::default().matches("n1", &l));

        let node = NodeInfo {
            name: "n1".into(),
            labels: l.clone(),
            taints: vec![taint("dedicated", "spark", "NoSchedule")],
            ready: true,
            ..Default::default()
        };
        let mut p = PodPlacement::default();
        assert!(
            p.allows(&node)
                .unwrap_err()
                .contains("taint dedicated=spark")
        );
        p.tolerations
            .push(tol("dedicated", "Equal", "spark", "NoSchedule"));
        assert_eq!(p.allows(&node), Ok(()));
        p.node_selector = labels(&[("zone", "b")]);
        assert!(p.allows(&node).unwrap_err().contains("lacks label zone=b"));
        p.node_selector = labels(&[("zone", "a")]);
        p.affinity = vec![NodeSelectorTerm {
            match_expressions: vec![expr("zone", "In", &["c"])],
            match_fields: vec![],
        }];
        assert!(p.allows(&node).unwrap_err().contains("affinity"));
        p.affinity.push(term);
        assert_eq!(p.allows(&node), Ok(()), "terms are ORed");
    }

    #[test]
    fn free_room_per_node() {
        let node = |name: &str, ready, unschedulable| NodeInfo {
            name: name.into(),
            ready,
            unschedulable,
            allocatable: r(4000, 8192),
            max_pods: Some(10),
            ..Default::default()
        };
        let nodes = [
            node("a", true, false),
            node("notready", false, false),
            node("cordoned", true, true),
            node("b", true, false),
        ];
        let pod = |n: Option<&str>, terminal, cpu, mem| PodUsage {
            node: n.map(String::from),
            terminal,
            request: r(cpu, mem),
        };
        let pods = [
            pod(Some("a"), false, 1000, 1024),
            // Being deleted, but not gone: still counts (the caller passes it as non-terminal).
            pod(Some("a"), false, 500, 512),
            pod(Some("a"), true, 3000, 4096),
            pod(None, false, 4000, 8192),
            pod(Some("b"), false, 5000, 100),
            pod(Some("gone-node"), false, 1000, 1000),
        ];
        let (free, alloc) = node_free(&nodes, &pods);
        assert_eq!(
            free,
            vec![
                NodeCapacity::new("a", 2500, 6656, Some(8)),
                NodeCapacity::new("b", 0, 8092, Some(9)),
            ]
        );
        assert_eq!(
            alloc,
            vec![
                NodeCapacity::new("a", 4000, 8192, Some(10)),
                NodeCapacity::new("b", 4000, 8192, Some(10)),
            ]
        );
    }

    /// Needs of pods with no particular scope (NotBestEffort, NotTerminating, no priority).
    fn plain(need: QuotaNeed) -> ScopedNeed {
        [(PodScope::default(), need)].into()
    }

    #[test]
    fn quota_table() {
        let q = Quota {
            name: "team".into(),
            hard: [
                (QuotaResource::RequestsCpu, 4000),
                (QuotaResource::RequestsMemory, 8192),
                (QuotaResource::Pods, 5),
            ]
            .into(),
            used: [
                (QuotaResource::RequestsCpu, 1000),
                (QuotaResource::RequestsMemory, 1024),
                (QuotaResource::Pods, 1),
            ]
            .into(),
            scopes: vec![],
        };
        let none = ScopedNeed::new();
        let need = plain(quota_need(r(3000, 2048), r(3000, 2048), 3));
        assert_eq!(quota_check(std::slice::from_ref(&q), &none, &need), Ok(()));
        let err = quota_check(
            std::slice::from_ref(&q),
            &plain(quota_need(r(500, 0), r(0, 0), 0)),
            &need,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "ResourceQuota team requests.cpu: needs 3 cores, 1.5 cores of 4 cores used"
        );
        let err = quota_check(
            std::slice::from_ref(&q),
            &none,
            &plain(quota_need(r(0, 0), r(0, 0), 5)),
        )
        .unwrap_err();
        assert!(
            err.contains("pods: needs 5 pods, 1 pods of 5 pods used"),
            "{err}"
        );
        // Limits are not in this quota: not checked.
        assert_eq!(
            quota_check(
                std::slice::from_ref(&q),
                &none,
                &plain(quota_need(r(0, 0), r(99_000, 99_999), 0))
            ),
            Ok(())
        );
        assert_eq!(quota_check(&[], &none, &need), Ok(()));
        let n = quota_need(r(3000, 2048), r(3000, 2048), 3);
        assert_eq!(add_need(&n, &n).get(&QuotaResource::Pods), Some(&6));
        assert_eq!(
            QuotaResource::from_key("count/pods"),
            Some(QuotaResource::Pods)
        );
        assert_eq!(QuotaResource::from_key("services"), None);

        // Hard limits alone: 3 cores fit under 4 whatever is used; 5 do not.
        assert_eq!(quota_hard_check(std::slice::from_ref(&q), &need), Ok(()));
        assert_eq!(
            quota_hard_check(
                std::slice::from_ref(&q),
                &plain(quota_need(r(5000, 0), r(5000, 0), 1))
            ),
            Err(
                "ResourceQuota team requests.cpu: the job needs 5 cores, more than its hard limit of 4 cores"
                    .into()
            )
        );
    }

    fn scope(name: &str, op: &str, values: &[&str]) -> ScopeRequirement {
        ScopeRequirement {
            scope: name.into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn quota_scopes_table() {
        let spark = PodScope::default();
        let high = PodScope {
            priority_class: Some("high".into()),
            ..PodScope::default()
        };
        let best_effort = PodScope {
            best_effort: true,
            ..PodScope::default()
        };
        let terminating = PodScope {
            terminating: true,
            ..PodScope::default()
        };
        let cross = PodScope {
            cross_namespace_affinity: true,
            ..PodScope::default()
        };
        // (requirement, spark pod without priority class, with class "high", best effort,
        // terminating, cross-namespace affinity)
        let cases = [
            (
                scope("BestEffort", "Exists", &[]),
                [false, false, true, false, false],
            ),
            (
                scope("NotBestEffort", "Exists", &[]),
                [true, true, false, true, true],
            ),
            (
                scope("Terminating", "Exists", &[]),
                [false, false, false, true, false],
            ),
            (
                scope("NotTerminating", "Exists", &[]),
                [true, true, true, false, true],
            ),
            (
                scope("PriorityClass", "Exists", &[]),
                [false, true, false, false, false],
            ),
            (
                scope("PriorityClass", "DoesNotExist", &[]),
                [true, false, true, true, true],
            ),
            (
                scope("PriorityClass", "In", &["high", "mid"]),
                [false, true, false, false, false],
            ),
            (
                scope("PriorityClass", "In", &["low"]),
                [false, false, false, false, false],
            ),
            (
                scope("PriorityClass", "NotIn", &["high"]),
                [true, false, true, true, true],
            ),
            (
                scope("PriorityClass", "NotIn", &["low"]),
                [true, true, true, true, true],
            ),
            (scope("PriorityClass", "Near", &["high"]), [false; 5]),
            (
                scope("CrossNamespacePodAffinity", "Exists", &[]),
                [false, false, false, false, true],
            ),
            (scope("VolumeAttributesClass", "Exists", &[]), [false; 5]),
        ];
        let pods = [&spark, &high, &best_effort, &terminating, &cross];
        for (req, want) in cases {
            for (pod, w) in pods.iter().zip(want) {
                assert_eq!(req.matches(pod), w, "{req:?} on {pod:?}");
            }
        }
        // A quota applies when every requirement matches; none: every pod.
        let mut q = Quota {
            name: "q".into(),
            ..Quota::default()
        };
        assert!(q.applies_to(&best_effort));
        q.scopes = vec![
            scope("NotBestEffort", "Exists", &[]),
            scope("PriorityClass", "In", &["high"]),
        ];
        assert!(q.applies_to(&high));
        assert!(!q.applies_to(&spark));
        assert!(!q.applies_to(&PodScope {
            best_effort: true,
            ..high.clone()
        }));
    }

    #[test]
    fn scoped_quotas_count_only_their_pods() {
        let hard =
            |cpu| -> BTreeMap<QuotaResource, u64> { [(QuotaResource::RequestsCpu, cpu)].into() };
        let quota = |name: &str, scopes: Vec<ScopeRequirement>| Quota {
            name: name.into(),
            hard: hard(1000),
            used: hard(0),
            scopes,
        };
        let high = PodScope {
            priority_class: Some("high".into()),
            ..PodScope::default()
        };
        // A driver of 1 core with class "high", two executors of 1 core with none.
        let mut need = ScopedNeed::new();
        add_scoped(&mut need, &high, &quota_need(r(1000, 0), r(1000, 0), 1));
        add_scoped(
            &mut need,
            &PodScope::default(),
            &quota_need(r(2000, 0), r(2000, 0), 2),
        );
        let ok = |q: Quota| quota_check(&[q], &ScopedNeed::new(), &need);
        assert_eq!(
            ok(quota("be", vec![scope("BestEffort", "Exists", &[])])),
            Ok(())
        );
        assert_eq!(
            ok(quota("high", vec![scope("PriorityClass", "In", &["high"])])),
            Ok(()),
            "counts the driver only"
        );
        assert!(
            ok(quota(
                "others",
                vec![scope("PriorityClass", "NotIn", &["high"])]
            ))
            .unwrap_err()
            .contains("ResourceQuota others requests.cpu: needs 2 cores")
        );
        assert!(
            ok(quota("nbe", vec![scope("NotBestEffort", "Exists", &[])]))
                .unwrap_err()
                .contains("needs 3 cores")
        );
        // What admitted jobs reserve is scoped the same way.
        let q = quota("high", vec![scope("PriorityClass", "Exists", &[])]);
        let mut reserved = ScopedNeed::new();
        add_scoped(
            &mut reserved,
            &PodScope::default(),
            &quota_need(r(5000, 0), r(0, 0), 0),
        );
        assert_eq!(
            quota_check(std::slice::from_ref(&q), &reserved, &need),
            Ok(())
        );
        add_scoped(&mut reserved, &high, &quota_need(r(500, 0), r(0, 0), 0));
        assert!(quota_check(std::slice::from_ref(&q), &reserved, &need).is_err());
        assert_eq!(
            need_for(&q, &add_scoped_needs(&need, &reserved)).get(&QuotaResource::RequestsCpu),
            Some(&1500)
        );
        // Hard limits, scoped too.
        assert_eq!(quota_hard_check(std::slice::from_ref(&q), &need), Ok(()));
        assert!(
            quota_hard_check(
                &[quota("nbe", vec![scope("NotBestEffort", "Exists", &[])])],
                &need
            )
            .is_err()
        );
    }

    #[test]
    fn never_placed_table() {
        let node = |name: &str, labels_: &[(&str, &str)], taints: Vec<Taint>, cpu, mem| NodeInfo {
            name: name.into(),
            labels: labels(labels_),
            taints,
            ready: true,
            allocatable: r(cpu, mem),
            max_pods: Some(110),
            ..Default::default()
        };
        let nodes = vec![
            node("small", &[("pool", "cpu")], vec![], 2000, 8192),
            node(
                "gpu",
                &[("pool", "gpu")],
                vec![taint("nvidia.com/gpu", "present", "NoSchedule")],
                16000,
                65536,
            ),
        ];
        let anywhere = PodPlacement::default();
        assert_eq!(
            never_placed("driver", &anywhere, r(1000, 1024), &nodes),
            Ok(())
        );
        assert_eq!(
            never_placed("driver", &anywhere, r(1000, 1024), &[]),
            Ok(()),
            "nothing known"
        );
        // A selector that matches no node.
        let ssd = PodPlacement {
            node_selector: labels(&[("disk", "ssd")]),
            ..Default::default()
        };
        let err = never_placed("executor", &ssd, r(1000, 1024), &nodes).unwrap_err();
        assert!(err.starts_with("no node accepts the executor: "), "{err}");
        assert!(err.contains("node small lacks label disk=ssd"), "{err}");
        // Only the tainted node is big enough, and the pod does not tolerate its taint.
        let err = never_placed("driver", &anywhere, r(4000, 1024), &nodes).unwrap_err();
        assert!(err.contains("one driver pod needs 4 cores"), "{err}");
        assert!(err.contains("node small has 2 cores"), "{err}");
        let gpu = PodPlacement {
            tolerations: vec![tol("nvidia.com/gpu", "Exists", "", "")],
            ..Default::default()
        };
        assert_eq!(never_placed("driver", &gpu, r(4000, 1024), &nodes), Ok(()));
        let pool_gpu = PodPlacement {
            node_selector: labels(&[("pool", "gpu")]),
            ..Default::default()
        };
        let err = never_placed("driver", &pool_gpu, r(1000, 1024), &nodes).unwrap_err();
        assert!(
            err.contains("taint nvidia.com/gpu=present:NoSchedule"),
            "{err}"
        );
        // Temporary conditions never make a pod impossible: cordoned, not Ready, condition taints.
        let mut down = node(
            "down",
            &[("disk", "ssd")],
            vec![
                taint("node.kubernetes.io/unschedulable", "", "NoSchedule"),
                taint("node.kubernetes.io/not-ready", "", "NoExecute"),
            ],
            4000,
            8192,
        );
        down.ready = false;
        down.unschedulable = true;
        assert!(anywhere.allows(&down).is_err());
        assert_eq!(anywhere.allows_ever(&down), Ok(()));
        let mut with_down = nodes.clone();
        with_down.push(down);
        assert_eq!(
            never_placed("executor", &ssd, r(1000, 1024), &with_down),
            Ok(())
        );
        assert!(is_condition_taint(&taint(
            "node.kubernetes.io/memory-pressure",
            "",
            "NoSchedule"
        )));
        assert!(!is_condition_taint(&taint(
            "nvidia.com/gpu",
            "",
            "NoSchedule"
        )));
    }
}
