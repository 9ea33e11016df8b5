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
    Fitter::new(allocatable)
        .try_place(demand)
        .map(|_| ())
        .map_err(|e| NoFit { never: true, ..e })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::PodDemand;
    use proptest::prelude::*;

    const GIB: u64 = 1024;

    fn node(name: &str, cores: u64, gib: u64, pods: Option<u32>) -> NodeCapacity {
        NodeCapacity::new(name, cores * 1000, gib * GIB, pods)
    }

    fn res(cpu_milli: u64, mem_mib: u64) -> Resources {
        Resources::new(cpu_milli, mem_mib)
    }

    /// One driver and `n` executors.
    fn spark(driver: Resources, n: u32, executor: Resources) -> Demand {
        let mut pods = vec![PodDemand {
            role: Role::Driver,
            count: 1,
            cpu_milli: driver.cpu_milli,
            mem_mib: driver.mem_mib,
        }];
        if n > 0 {
            pods.push(PodDemand {
                role: Role::Executor,
                count: n,
                cpu_milli: executor.cpu_milli,
                mem_mib: executor.mem_mib,
            });
        }
        Demand { pods }
    }

    struct Case {
        name: &'static str,
        nodes: Vec<NodeCapacity>,
        demand: Demand,
        /// Ok: node index of each pod, in demand order. Err: a substring of the NoFit text.
        want: Result<Vec<usize>, &'static str>,
    }

    #[test]
    fn try_place_table() {
        let d = Role::Driver;
        let cases = vec![
            Case {
                name: "fits on one node",
                nodes: vec![node("a", 4, 8, None)],
                demand: spark(res(1000, 1024), 2, res(1000, 2048)),
                want: Ok(vec![0, 0, 0]),
            },
            Case {
                name: "empty demand places nothing",
                nodes: vec![],
                demand: Demand::default(),
                want: Ok(vec![]),
            },
            Case {
                name: "executors spread over nodes, first fit in order",
                nodes: vec![
                    node("a", 2, 4, None),
                    node("b", 2, 4, None),
                    node("c", 8, 32, None),
                ],
                demand: spark(res(1000, 1024), 3, res(1000, 1024)),
                want: Ok(vec![0, 0, 1, 1]),
            },
            Case {
                name: "smaller executors go back to earlier nodes",
                nodes: vec![node("a", 1, 4, None), node("b", 4, 4, None)],
                demand: spark(res(2000, 1024), 2, res(500, 512)),
                want: Ok(vec![1, 0, 0]),
            },
            Case {
                name: "fragmentation: enough in total, no node holds the driver",
                nodes: vec![
                    node("a", 1, 4, None),
                    node("b", 1, 4, None),
                    node("c", 1, 4, None),
                ],
                demand: spark(res(2000, 1024), 0, res(0, 0)),
                want: Err("largest free slot 1 core / 4 GiB, 3 cores / 12 GiB free in all"),
            },
            Case {
                name: "memory is the short resource",
                nodes: vec![node("a", 8, 2, None), node("b", 8, 2, None)],
                demand: spark(res(1000, 3 * GIB), 0, res(0, 0)),
                want: Err("largest pod 1 core / 3 GiB"),
            },
            Case {
                name: "executor does not fit after the driver took its node",
                nodes: vec![node("a", 2, 8, None), node("b", 1, 8, None)],
                demand: spark(res(1000, 1024), 1, res(2000, 1024)),
                want: Err("needs 3 cores / 2 GiB in 2 pods"),
            },
            Case {
                name: "pod slot limit",
                nodes: vec![node("a", 8, 32, Some(2)), node("b", 8, 32, Some(1))],
                demand: spark(res(1000, 1024), 3, res(1000, 1024)),
                want: Err("only 3 free pod slots"),
            },
            Case {
                name: "pod slots spread the pods",
                nodes: vec![node("a", 8, 32, Some(2)), node("b", 8, 32, Some(1))],
                demand: spark(res(1000, 1024), 2, res(1000, 1024)),
                want: Ok(vec![0, 0, 1]),
            },
            Case {
                name: "node without a pod slot is skipped and not the largest free slot",
                nodes: vec![node("a", 64, 256, Some(0)), node("b", 2, 4, None)],
                demand: spark(res(4000, 1024), 0, res(0, 0)),
                want: Err("largest free slot 2 cores / 4 GiB"),
            },
            Case {
                name: "no nodes",
                nodes: vec![],
                demand: spark(res(1000, 1024), 0, res(0, 0)),
                want: Err("largest free slot 0 cores / 0 MiB"),
            },
        ];
        for case in cases {
            let mut fitter = Fitter::new(&case.nodes);
            let got = fitter.try_place(&case.demand);
            match (&got, &case.want) {
                (Ok(p), Ok(want)) => {
                    let nodes: Vec<usize> = p.pods.iter().map(|&(_, i)| i).collect();
                    assert_eq!(&nodes, want, "{}", case.name);
                    assert_eq!(
                        p.pods.first().map(|&(r, _)| r),
                        (!want.is_empty()).then_some(d)
                    );
                }
                (Err(e), Err(want)) => {
                    let text = e.to_string();
                    assert!(
                        text.contains(want),
                        "{}: {text:?} lacks {want:?}",
                        case.name
                    );
                    assert!(!e.never);
                    assert_eq!(
                        fitter.nodes(),
                        &case.nodes[..],
                        "{}: failure changed nodes",
                        case.name
                    );
                }
                _ => panic!("{}: got {got:?}, want {:?}", case.name, case.want),
            }
        }
    }

    #[test]
    fn try_place_on_respects_eligible_nodes() {
        let nodes = [
            node("big", 8, 32, None),
            node("gpu", 4, 16, None),
            node("small", 2, 4, None),
        ];
        let demand = spark(res(2000, 1024), 2, res(1000, 1024));
        // The driver may only use "gpu"; executors any node.
        let mut eligible = Eligible::new();
        eligible.insert(Role::Driver, vec![false, true, false]);
        let mut f = Fitter::new(&nodes);
        let p = f.try_place_on(&demand, Some(&eligible)).unwrap();
        assert_eq!(
            p.pods,
            vec![(Role::Driver, 1), (Role::Executor, 0), (Role::Executor, 0)]
        );
        // Executors only on "small": one fits (2 cores), the second too; a third does not.
        eligible.insert(Role::Executor, vec![false, false, true]);
        let mut f = Fitter::new(&nodes);
        let p = f.try_place_on(&demand, Some(&eligible)).unwrap();
        assert_eq!(
            p.pods,
            vec![(Role::Driver, 1), (Role::Executor, 2), (Role::Executor, 2)]
        );
        let three = spark(res(2000, 1024), 3, res(1000, 1024));
        let err = Fitter::new(&nodes)
            .try_place_on(&three, Some(&eligible))
            .unwrap_err();
        assert_eq!(err.unplaced, Role::Executor);
        // The message describes the eligible node only.
        assert!(
            err.to_string()
                .contains("largest free slot 2 cores / 4 GiB"),
            "{err}"
        );
        // A short list: nodes past its end are not eligible.
        eligible.insert(Role::Executor, vec![]);
        assert!(
            Fitter::new(&nodes)
                .try_place_on(&demand, Some(&eligible))
                .is_err()
        );
        // No restriction behaves as try_place.
        let mut a = Fitter::new(&nodes);
        let mut b = Fitter::new(&nodes);
        assert_eq!(
            a.try_place_on(&demand, Some(&Eligible::new())),
            b.try_place(&demand)
        );
        assert_eq!(a.nodes(), b.nodes());
    }

    #[test]
    fn no_fit_text() {
        let demand = spark(res(1000, 1408), 2, res(1000, 1408));
        let err = Fitter::new(&[NodeCapacity::new("a", 2000, 3072, None)])
            .try_place(&demand)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "needs 3 cores / 4.1 GiB in 3 pods (largest pod 1 core / 1.4 GiB); largest free slot \
             2 cores / 3 GiB, 2 cores / 3 GiB free in all"
        );
        assert_eq!(err.unplaced, Role::Executor);
        let err = fits_empty(&demand, &[NodeCapacity::new("a", 2000, 3072, None)]).unwrap_err();
        assert!(err.never);
        assert!(
            err.to_string()
                .starts_with("can never fit this cluster: needs 3 cores"),
            "{err}"
        );
    }

    #[test]
    fn placement_subtracts_and_updates_bounds() {
        let mut f = Fitter::new(&[node("a", 4, 8, Some(10)), node("b", 2, 4, None)]);
        let p = f
            .try_place(&spark(res(4000, 1024), 1, res(1000, 1024)))
            .unwrap();
        assert_eq!(p.pods, vec![(Role::Driver, 0), (Role::Executor, 1)]);
        assert_eq!(f.nodes()[0], NodeCapacity::new("a", 0, 7 * GIB, Some(9)));
        assert_eq!(f.nodes()[1], NodeCapacity::new("b", 1000, 3 * GIB, None));
        assert_eq!(f.largest_free(), res(1000, 3 * GIB));
        assert_eq!(f.total_free(), res(1000, 10 * GIB));
        // A 2-core pod is now rejected by the bounds alone.
        let err = f
            .try_place(&spark(res(2000, 1024), 0, res(0, 0)))
            .unwrap_err();
        assert_eq!(err.unplaced, Role::Driver);
    }

    #[test]
    fn fits_empty_refuses_bigger_than_any_node() {
        let cluster = [node("a", 8, 32, None), node("b", 8, 32, None)];
        let big = spark(res(16_000, GIB), 0, res(0, 0));
        let err = fits_empty(&big, &cluster).unwrap_err();
        assert!(err.to_string().contains("can never fit"), "{err}");
        assert!(
            err.to_string()
                .contains("largest node has 8 cores / 32 GiB"),
            "{err}"
        );
        // Fits the empty cluster, even though it is larger than any node.
        assert_eq!(
            fits_empty(&spark(res(4000, GIB), 3, res(4000, 8 * GIB)), &cluster),
            Ok(())
        );
    }

    #[test]
    fn reserve_saturates() {
        let mut f = Fitter::new(&[node("a", 2, 2, Some(1)), node("b", 1, 1, None)]);
        assert!(!f.reserve(&spark(res(4000, 4 * GIB), 0, res(0, 0))));
        assert_eq!(f.total_free(), res(0, 0));
        assert_eq!(f.nodes()[0].pods, Some(0));
        // Nothing left; reserving more keeps everything at zero.
        assert!(!f.reserve(&spark(res(1000, GIB), 2, res(1000, GIB))));
        assert_eq!(f.total_free(), res(0, 0));

        // Partly placeable: the driver goes first fit, the executor that fits nowhere comes off the
        // nodes with the most room, spilling over.
        let mut f = Fitter::new(&[node("a", 2, 4, None), node("b", 3, 4, None)]);
        assert!(!f.reserve(&spark(res(1000, GIB), 1, res(4000, GIB))));
        assert_eq!(f.nodes()[0].room(), res(0, 3 * GIB));
        assert_eq!(f.nodes()[1].room(), res(0, 3 * GIB));
        assert!(!f.reserve(&spark(res(1000, GIB), 0, res(0, 0))));
        assert_eq!(f.total_free(), res(0, 5 * GIB));
        let mut f = Fitter::new(&[node("a", 2, 4, None)]);
        assert!(f.reserve(&spark(res(1000, GIB), 0, res(0, 0))));
        assert_eq!(f.total_free(), res(1000, 3 * GIB));
    }

    #[test]
    fn snapshot_totals() {
        let s = Snapshot {
            available: true,
            nodes: vec![node("a", 1, 2, None), node("b", 3, 4, Some(1))],
            allocatable: vec![node("a", 4, 8, None), node("b", 4, 8, Some(110))],
        };
        assert_eq!(s.total_free(), res(4000, 6 * GIB));
        assert_eq!(s.total_allocatable(), res(8000, 16 * GIB));
        assert!(!Snapshot::unavailable().available);
    }

    fn arb_nodes() -> impl Strategy<Value = Vec<NodeCapacity>> {
        prop::collection::vec((0u64..16, 0u64..16, prop::option::of(0u32..4)), 0..6).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (c, m, p))| NodeCapacity::new(format!("n{i}"), c * 500, m * 512, p))
                .collect()
        })
    }

    fn arb_demand() -> impl Strategy<Value = Demand> {
        (1u64..10, 1u64..10, 0u32..5, 1u64..10, 1u64..10).prop_map(|(dc, dm, n, ec, em)| {
            spark(res(dc * 500, dm * 512), n, res(ec * 500, em * 512))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn try_place_is_sound(nodes in arb_nodes(), demand in arb_demand()) {
            let mut f = Fitter::new(&nodes);
            match f.try_place(&demand) {
                Ok(p) => {
                    // Replay the placement against the original nodes.
                    let mut left = nodes.clone();
                    let mut k = 0;
                    for g in &demand.pods {
                        for _ in 0..g.count {
                            let (role, i) = p.pods[k];
                            prop_assert_eq!(role, g.role);
                            prop_assert!(left[i].fits(&g.each()));
                            left[i].take(&g.each());
                            k += 1;
                        }
                    }
                    prop_assert_eq!(k, p.pods.len());
                    prop_assert_eq!(f.nodes(), &left[..]);
                    prop_assert_eq!(f.total_free(), sum_room(&nodes).minus(&demand.total()));
                }
                Err(e) => {
                    prop_assert_eq!(f.nodes(), &nodes[..]);
                    prop_assert_eq!(e.total_free, sum_room(&nodes));
                }
            }
        }

        #[test]
        fn reserve_never_over_estimates(nodes in arb_nodes(), demand in arb_demand()) {
            let mut f = Fitter::new(&nodes);
            f.reserve(&demand);
            prop_assert_eq!(f.total_free(), sum_room(&nodes).minus(&demand.total()));
            for (after, before) in f.nodes().iter().zip(&nodes) {
                prop_assert!(before.room().covers(&after.room()));
            }
            prop_assert_eq!(Bounds::of(f.nodes()).total, f.total_free());
        }
    }
}
