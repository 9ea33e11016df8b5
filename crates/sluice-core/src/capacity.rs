//! Capacity snapshots and the per-node, all-or-nothing fit check.
//!
//! Free capacity in total is not enough for a Spark job: every pod (the driver, each executor)
//! must fit on one node, in CPU, in memory and in one free pod slot. Several pods of one job may
//! share a node. [`Fitter`] places pods first fit over the nodes in the order the backend
//! reported them, all or nothing, and keeps quick-reject bounds (the largest free CPU and memory
//! on any node, the total free room and pod slots) so that a job that cannot fit a full cluster
//! is turned away in O(1).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::job::{Demand, Resources, Role};

/// Free (or allocatable) room on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCapacity {
    /// Node name, as the backend reports it.
    pub name: String,
    /// CPU in millicores.
    pub cpu_milli: u64,
    /// Memory in MiB.
    pub mem_mib: u64,
    /// Free pod slots; `None` means unlimited.
    #[serde(default)]
    pub pods: Option<u32>,
}

impl NodeCapacity {
    /// Builds a node.
    pub fn new(name: impl Into<String>, cpu_milli: u64, mem_mib: u64, pods: Option<u32>) -> Self {
        Self {
            name: name.into(),
            cpu_milli,
            mem_mib,
            pods,
        }
    }

    /// CPU and memory of the node.
    pub fn room(&self) -> Resources {
        Resources::new(self.cpu_milli, self.mem_mib)
    }

    /// True unless the node has no free pod slot left.
    pub fn has_pod_slot(&self) -> bool {
        self.pods != Some(0)
    }

    /// True when one pod of size `pod` fits on this node (CPU, memory and a pod slot).
    pub fn fits(&self, pod: &Resources) -> bool {
        self.has_pod_slot() && self.cpu_milli >= pod.cpu_milli && self.mem_mib >= pod.mem_mib
    }

    /// Takes one pod off the node, saturating at zero.
    fn take(&mut self, pod: &Resources) {
        self.cpu_milli = self.cpu_milli.saturating_sub(pod.cpu_milli);
        self.mem_mib = self.mem_mib.saturating_sub(pod.mem_mib);
        self.pods = self.pods.map(|p| p.saturating_sub(1));
    }

    /// Gives back one pod that [`NodeCapacity::take`] took while it fitted.
    fn give_back(&mut self, pod: &Resources) {
        self.cpu_milli = self.cpu_milli.saturating_add(pod.cpu_milli);
        self.mem_mib = self.mem_mib.saturating_add(pod.mem_mib);
        self.pods = self.pods.map(|p| p.saturating_add(1));
    }
}

/// What a backend reports about its capacity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The backend is reachable; when false nothing may be admitted.
    pub available: bool,
    /// Free room per node now.
    pub nodes: Vec<NodeCapacity>,
    /// Total room per node (as if the cluster were empty), in the same order as `nodes`.
    pub allocatable: Vec<NodeCapacity>,
}

impl Snapshot {
    /// A snapshot of a backend that could not be reached.
    pub fn unavailable() -> Self {
        Self::default()
    }

    /// Sum of the allocatable room of every node.
    pub fn total_allocatable(&self) -> Resources {
        sum_room(&self.allocatable)
    }

    /// Sum of the free room of every node.
    pub fn total_free(&self) -> Resources {
        sum_room(&self.nodes)
    }
}

fn sum_room(nodes: &[NodeCapacity]) -> Resources {
    nodes
        .iter()
        .fold(Resources::default(), |acc, n| acc.plus(&n.room()))
}

/// Where each pod of a job went.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    /// One entry per pod, in demand order (driver first): the pod's role and the index of its
    /// node in the node list the [`Fitter`] was built from (`Snapshot::nodes`).
    pub pods: Vec<(Role, usize)>,
}

/// Why a demand does not fit.
///
/// Displays like "needs 3 cores / 4.1 GiB in 3 pods (largest pod 1 core / 1.4 GiB); largest free
/// slot 2 cores / 3 GiB, 2 cores / 3 GiB free in all". When the check was made against the empty
/// cluster ([`fits_empty`]) the text starts with "can never fit this cluster".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoFit {
    /// The whole demand.
    pub need: Resources,
    /// Number of pods in the demand.
    pub pods: u64,
    /// The largest single pod (component-wise maximum).
    pub largest_pod: Resources,
    /// The role of the first pod that could not be placed (for a quick reject on the totals
    /// alone, the last role of the demand).
    pub unplaced: Role,
    /// Room of the node with the most free CPU (ties: most memory) among the nodes with a free
    /// pod slot.
    pub largest_free: Resources,
    /// Free room summed over all nodes.
    pub total_free: Resources,
    /// Free pod slots summed over all nodes; `None` when some node has no limit.
    pub free_pod_slots: Option<u64>,
    /// The check was against the empty cluster: the demand can never fit.
    pub never: bool,
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.pods == 1 { "" } else { "s" };
        if self.never {
            write!(
                f,
                "can never fit this cluster: needs {} in {} pod{plural} (largest pod {}); the \
                 largest node has {}, {} in all when empty",
                self.need, self.pods, self.largest_pod, self.largest_free, self.total_free
            )?;
        } else {
            write!(
                f,
                "needs {} in {} pod{plural} (largest pod {}); largest free slot {}, {} free in all",
                self.need, self.pods, self.largest_pod, self.largest_free, self.total_free
            )?;
        }
        match self.free_pod_slots {
            Some(slots) if slots < self.pods => write!(f, "; only {slots} free pod slots"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for NoFit {}

/// Quick-reject bounds over the nodes, recomputed after every change.
#[derive(Debug, Clone, Copy, Default)]
struct Bounds {
    /// Largest free CPU on a node with a pod slot.
    max_cpu: u64,
    /// Largest free memory on a node with a pod slot.
    max_mem: u64,
    /// Room of the node with the most free CPU (ties: memory) among nodes with a pod slot.
    largest: Resources,
    /// Free room in all.
    total: Resources,
    /// Free pod slots in all; `u64::MAX` when some node is unlimited.
    slots: u64,
}

impl Bounds {
    fn of(nodes: &[NodeCapacity]) -> Self {
        let mut b = Bounds::default();
        for n in nodes {
            b.total = b.total.plus(&n.room());
            b.slots = match n.pods {
                None => u64::MAX,
                Some(p) => b.slots.saturating_add(u64::from(p)),
            };
            if n.has_pod_slot() {
                b.max_cpu = b.max_cpu.max(n.cpu_milli);
                b.max_mem = b.max_mem.max(n.mem_mib);
                if (n.cpu_milli, n.mem_mib) > (b.largest.cpu_milli, b.largest.mem_mib) {
                    b.largest = n.room();
                }
            }
        }
        b
    }
}

/// Which nodes the pods of a role may use: per role, one flag per node of the list the
/// [`Fitter`] was built from (`Snapshot::nodes`). A role not in the map may use every node; a
/// node past the end of a role's list may not be used by it.
pub type Eligible = std::collections::BTreeMap<Role, Vec<bool>>;

/// A working copy of the free room of every node, used during one scheduling cycle.
#[derive(Debug, Clone)]
pub struct Fitter {
    nodes: Vec<NodeCapacity>,
    bounds: Bounds,
    /// (index into `Demand::pods`, node index) of the pods placed by the attempt under way.
    scratch: Vec<(usize, usize)>,
}

impl Fitter {
    /// Starts from the given free room per node.
    pub fn new(nodes: &[NodeCapacity]) -> Self {
        Self {
            nodes: nodes.to_vec(),
            bounds: Bounds::of(nodes),
            scratch: Vec::new(),
        }
    }

    /// The free room per node as it stands.
    pub fn nodes(&self) -> &[NodeCapacity] {
        &self.nodes
    }

    /// Free room summed over all nodes.
    pub fn total_free(&self) -> Resources {
        self.bounds.total
    }

    /// False when the quick bounds already rule the demand out (a pod larger than the most
    /// free CPU or memory of any node with a pod slot, more pods than free slots, or more than
    /// the free room in all): it cannot be placed on this room, nor on less.
    pub fn could_fit(&self, demand: &Demand) -> bool {
        self.quick_reject(demand).is_none()
    }

    /// Room of the node with the most free CPU (ties: most memory) among nodes with a pod slot.
    pub fn largest_free(&self) -> Resources {
        self.bounds.largest
    }

    /// Places the driver and every executor each on one node, first fit over the nodes in order,
    /// all or nothing. On success subtracts the room and returns the placement; on failure
    /// changes nothing.
    pub fn try_place(&mut self, demand: &Demand) -> Result<Placement, NoFit> {
        self.try_place_on(demand, None)
    }

    /// As [`Fitter::try_place`], with the pods of each role listed in `eligible` allowed only on
    /// the nodes marked true there (node selectors, taints: see [`Eligible`]). When a pod of a
    /// restricted role does not fit, the [`NoFit`] describes the room of its eligible nodes.
    pub fn try_place_on(
        &mut self,
        demand: &Demand,
        eligible: Option<&Eligible>,
    ) -> Result<Placement, NoFit> {
        if let Some(role) = self.quick_reject(demand) {
            return Err(self.no_fit(demand, role));
        }
        self.scratch.clear();
        for (g, group) in demand.pods.iter().enumerate() {
            let pod = group.each();
            let allowed = eligible.and_then(|e| e.get(&group.role));
            let ok = |i: usize| allowed.is_none_or(|a| a.get(i).copied().unwrap_or(false));
            // Earlier nodes only shrink while this run of identical pods is placed, so the scan
            // resumes at the node that took the previous pod.
            let mut start = 0;
            for _ in 0..group.count {
                match self.nodes[start..]
                    .iter()
                    .enumerate()
                    .position(|(k, n)| ok(start + k) && n.fits(&pod))
                {
                    Some(offset) => {
                        let i = start + offset;
                        self.nodes[i].take(&pod);
                        self.scratch.push((g, i));
                        start = i;
                    }
                    None => {
                        self.roll_back(demand);
                        let mut no_fit = self.no_fit(demand, group.role);
                        if let Some(a) = allowed {
                            let only: Vec<NodeCapacity> = self
                                .nodes
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| a.get(*i).copied().unwrap_or(false))
                                .map(|(_, n)| n.clone())
                                .collect();
                            let b = Bounds::of(&only);
                            no_fit.largest_free = b.largest;
                            no_fit.total_free = b.total;
                            no_fit.free_pod_slots = (b.slots != u64::MAX).then_some(b.slots);
                        }
                        return Err(no_fit);
                    }
                }
            }
        }
        self.bounds = Bounds::of(&self.nodes);
        Ok(Placement {
            pods: self
                .scratch
                .iter()
                .map(|&(g, i)| (demand.pods[g].role, i))
                .collect(),
        })
    }

    /// Takes the pods of `demand` from the nodes `placement` names (as [`Fitter::try_place`]
    /// returned it, for this fitter's node list or one of the same length), all or nothing:
    /// false, and nothing changed, when some pod does not fit its node.
    pub fn place_at(&mut self, demand: &Demand, placement: &Placement) -> bool {
        for (done, &(role, i)) in placement.pods.iter().enumerate() {
            let pod = demand.role(role).map(|p| p.each()).unwrap_or_default();
            match self.nodes.get_mut(i) {
                Some(n) if n.fits(&pod) => n.take(&pod),
                _ => {
                    for &(role, i) in &placement.pods[..done] {
                        let pod = demand.role(role).map(|p| p.each()).unwrap_or_default();
                        self.nodes[i].give_back(&pod);
                    }
                    return false;
                }
            }
        }
        self.bounds = Bounds::of(&self.nodes);
        true
    }

    /// Gives back the pods [`Fitter::place_at`] or [`Fitter::try_place`] took for `placement`.
    pub fn unplace(&mut self, demand: &Demand, placement: &Placement) {
        for &(role, i) in &placement.pods {
            let pod = demand.role(role).map(|p| p.each()).unwrap_or_default();
            if let Some(n) = self.nodes.get_mut(i) {
                n.give_back(&pod);
            }
        }
        self.bounds = Bounds::of(&self.nodes);
    }

    /// Gives back the room of a pod that ends (a running job's), on node `node`; a node index
    /// out of range is ignored.
    pub fn release(&mut self, node: usize, pod: &Resources) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.give_back(pod);
            self.bounds = Bounds::of(&self.nodes);
        }
    }

    /// As [`Fitter::release`] for many pods, with the bounds recomputed once.
    pub fn release_all(&mut self, pods: &[(usize, Resources)]) {
        for (node, pod) in pods {
            if let Some(n) = self.nodes.get_mut(*node) {
                n.give_back(pod);
            }
        }
        self.bounds = Bounds::of(&self.nodes);
    }

    /// A fitter whose free room on each node is the smaller of this one's and `other`'s (per
    /// resource and pod slots): a placement found there fits both. `other` must have as many
    /// nodes.
    pub fn meet(&self, other: &Fitter) -> Fitter {
        let nodes: Vec<NodeCapacity> = self
            .nodes
            .iter()
            .zip(&other.nodes)
            .map(|(a, b)| NodeCapacity {
                name: String::new(),
                cpu_milli: a.cpu_milli.min(b.cpu_milli),
                mem_mib: a.mem_mib.min(b.mem_mib),
                pods: match (a.pods, b.pods) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, None) => x,
                    (None, y) => y,
                },
            })
            .collect();
        Fitter::new(&nodes)
    }

    /// Subtracts a reservation: a job admitted earlier whose pods the backend does not show yet.
    ///
    /// Like [`Fitter::try_place`], but when the demand does not fit it still subtracts it
    /// greedily, saturating at zero: each pod goes to the first node it fits on, else it is taken
    /// from the nodes with the most room, so that free capacity is never over-estimated. Returns
    /// whether the demand was placed whole.
    pub fn reserve(&mut self, demand: &Demand) -> bool {
        if self.try_place(demand).is_ok() {
            return true;
        }
        for group in demand.pods.iter().filter(|g| g.count > 0) {
            let pod = group.each();
            for _ in 0..group.count {
                match self.nodes.iter().position(|n| n.fits(&pod)) {
                    Some(i) => self.nodes[i].take(&pod),
                    None => self.take_from_largest(&pod),
                }
            }
        }
        self.bounds = Bounds::of(&self.nodes);
        false
    }

    /// Takes a pod that fits nowhere from the nodes with the most room, spilling what one node
    /// cannot hold onto the next; the pod slot comes off the first of them.
    fn take_from_largest(&mut self, pod: &Resources) {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_by(|&a, &b| {
            let (na, nb) = (&self.nodes[a], &self.nodes[b]);
            (nb.cpu_milli, nb.mem_mib)
                .cmp(&(na.cpu_milli, na.mem_mib))
                .then(a.cmp(&b))
        });
        let mut left = *pod;
        for (k, &i) in order.iter().enumerate() {
            let node = &mut self.nodes[i];
            let part = Resources::new(
                left.cpu_milli.min(node.cpu_milli),
                left.mem_mib.min(node.mem_mib),
            );
            node.cpu_milli -= part.cpu_milli;
            node.mem_mib -= part.mem_mib;
            if k == 0 {
                node.pods = node.pods.map(|p| p.saturating_sub(1));
            }
            left = left.minus(&part);
            if left == Resources::default() {
                break;
            }
        }
    }

    /// O(1) necessary conditions; returns the role to blame when one fails.
    fn quick_reject(&self, demand: &Demand) -> Option<Role> {
        let b = &self.bounds;
        let mut last = None;
        for group in demand.pods.iter().filter(|g| g.count > 0) {
            if group.cpu_milli > b.max_cpu || group.mem_mib > b.max_mem {
                return Some(group.role);
            }
            last = Some(group.role);
        }
        let last = last?;
        if demand.pod_count() > b.slots || !b.total.covers(&demand.total()) {
            return Some(last);
        }
        None
    }

    fn roll_back(&mut self, demand: &Demand) {
        for &(g, i) in &self.scratch {
            self.nodes[i].give_back(&demand.pods[g].each());
        }
        self.scratch.clear();
    }

    fn no_fit(&self, demand: &Demand, unplaced: Role) -> NoFit {
        NoFit {
            need: demand.total(),
            pods: demand.pod_count(),
            largest_pod: demand.largest_pod(),
            unplaced,
            largest_free: self.bounds.largest,
            total_free: self.bounds.total,
            free_pod_slots: (self.bounds.slots != u64::MAX).then_some(self.bounds.slots),
            never: false,
        }
    }
}

/// The submit-time check: would the demand fit the empty cluster (`Snapshot::allocatable`)?
///
/// A job that cannot is refused at submit instead of waiting forever. An empty `allocatable`
/// refuses every demand that has pods: callers whose backend reports no nodes skip the check.
pub fn fits_empty(demand: &Demand, allocatable: &[NodeCapacity]) -> Result<(), NoFit> {
    // Most jobs fit one node whole, and then first fit places every pod (each finds room on
    // that node at the latest, as all of them fit there together): no copy of the node list
    // (asked at every submit; the copy was a tenth of the submit handler's time).
    if let Some(total) = demand.checked_total() {
        let pods = demand.pod_count();
        if allocatable
            .iter()
            .any(|n| n.room().covers(&total) && n.pods.is_none_or(|p| u64::from(p) >= pods))
        {
            return Ok(());
        }
    }
    Fitter::new(allocatable)
        .try_place(demand)
        .map(|_| ())
        .map_err(|e| NoFit { never: true, ..e })
}

#[cfg(test)]
mod tests;
