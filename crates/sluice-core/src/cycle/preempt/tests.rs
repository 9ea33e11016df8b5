//! Preemption, in the style of Kueue's TestSchedule: per case the nodes, the running jobs (where
//! they hold room, their level, start and preemption count), the queued jobs and the settings,
//! and what the cycle must admit and preempt (preemptor, victims) and leave. Then property
//! tests: victims are always of strictly lower priority, each one is needed, the job fits once
//! they are gone, and no job is a victim twice.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::capacity::{Fitter, NodeCapacity, Snapshot};
use crate::cycle::{
    Candidate, CycleInput, HeadPolicy, NamespacePolicy, Preemptible, PreemptionInput,
    PreemptionSettings, Timing, schedule_preempting,
};
use crate::job::{Demand, PodDemand, Resources, Role};

const GIB: u64 = 1024;

/// Levels: 0 high, 1 normal, 2 low.
const HIGH: usize = 0;
const NORMAL: usize = 1;
const LOW: usize = 2;

/// One pod (a driver) of `cores` cores and 1 GiB.
fn pod(cores: u64) -> Demand {
    Demand {
        pods: vec![PodDemand {
            role: Role::Driver,
            count: 1,
            cpu_milli: cores * 1000,
            mem_mib: GIB,
        }],
    }
}

/// A running job: id, namespace, level, start, (node, cores) per pod, preemptions so far.
struct R {
    id: &'static str,
    ns: &'static str,
    level: usize,
    started: i64,
    pods: Vec<(usize, u64)>,
    preemptions: u32,
}

fn r(id: &'static str, level: usize, started: i64, node: usize, cores: u64) -> R {
    R {
        id,
        ns: "ns",
        level,
        started,
        pods: vec![(node, cores)],
        preemptions: 0,
    }
}

/// A queued job: id, namespace, level, enqueued at, cores (one pod).
fn q(id: &'static str, level: usize, at: i64, cores: u64) -> Candidate {
    Candidate {
        id: id.to_string(),
        namespace: "ns".to_string(),
        level,
        enqueued_at_ms: at,
        demand: pod(cores),
        constraints: None,
    }
}

fn in_ns(mut c: Candidate, ns: &str) -> Candidate {
    c.namespace = ns.to_string();
    c
}

/// High may preempt, in every namespace, up to 2 times per job.
fn high_only() -> PreemptionSettings {
    PreemptionSettings {
        levels: vec![true, false, false],
        namespaces: None,
        max_per_job: 2,
    }
}

struct Case {
    name: &'static str,
    /// Allocatable cores per node (64 GiB each).
    nodes: Vec<u64>,
    running: Vec<R>,
    queued: Vec<Candidate>,
    settings: PreemptionSettings,
    /// Ids of pending preemptors.
    pending: Vec<&'static str>,
    available: bool,
    policy: HeadPolicy,
    want_admitted: Vec<&'static str>,
    /// (preemptor, victims in the order chosen).
    want_preempt: Vec<(&'static str, Vec<&'static str>)>,
    want_left: Vec<&'static str>,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            nodes: vec![4],
            running: Vec::new(),
            queued: Vec::new(),
            settings: high_only(),
            pending: Vec::new(),
            available: true,
            policy: HeadPolicy::Strict,
            want_admitted: Vec::new(),
            want_preempt: Vec::new(),
            want_left: Vec::new(),
        }
    }
}

fn run_case(c: &Case) {
    // Free room: allocatable less what the running jobs hold.
    let mut free: Vec<NodeCapacity> = c
        .nodes
        .iter()
        .enumerate()
        .map(|(i, &cores)| NodeCapacity::new(format!("n{i}"), cores * 1000, 64 * GIB, None))
        .collect();
    let allocatable = free.clone();
    let mut held: BTreeMap<String, Resources> = BTreeMap::new();
    let running: Vec<Preemptible> = c
        .running
        .iter()
        .map(|x| {
            let pods: Vec<(usize, Resources)> = x
                .pods
                .iter()
                .map(|&(n, cores)| (n, Resources::new(cores * 1000, GIB)))
                .collect();
            for (n, p) in &pods {
                free[*n].cpu_milli -= p.cpu_milli;
                free[*n].mem_mib -= p.mem_mib;
                let h = held.entry(x.ns.to_string()).or_default();
                *h = h.plus(p);
            }
            Preemptible {
                id: x.id.to_string(),
                namespace: x.ns.to_string(),
                level: x.level,
                started_at_ms: x.started,
                pods,
                preemptions: x.preemptions,
            }
        })
        .collect();
    let snapshot = Snapshot {
        available: c.available,
        nodes: free,
        allocatable,
    };
    let pending: Vec<usize> = c
        .pending
        .iter()
        .map(|id| {
            c.queued
                .iter()
                .position(|q| q.id == *id)
                .expect("pending id")
        })
        .collect();
    let namespaces = BTreeMap::new();
    let (out, plans) = schedule_preempting(
        &CycleInput {
            candidates: &c.queued,
            snapshot: &snapshot,
            held: &held,
            namespaces: &namespaces,
            default_policy: NamespacePolicy {
                weight: 1,
                policy: c.policy,
            },
        },
        &Timing::default(),
        &PreemptionInput {
            settings: &c.settings,
            running: &running,
            pending: &pending,
        },
    );
    let admitted: Vec<&str> = out
        .admitted
        .iter()
        .map(|a| c.queued[a.index].id.as_str())
        .collect();
    assert_eq!(admitted, c.want_admitted, "{}: admitted", c.name);
    let preempt: Vec<(&str, Vec<&str>)> = plans
        .iter()
        .map(|p| {
            (
                c.queued[p.index].id.as_str(),
                p.victims.iter().map(|&k| running[k].id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(preempt, c.want_preempt, "{}: preempted", c.name);
    let mut left: Vec<&str> = out
        .waiting
        .iter()
        .map(|w| c.queued[w.index].id.as_str())
        .collect();
    left.sort_unstable();
    let mut want_left = c.want_left.clone();
    want_left.sort_unstable();
    assert_eq!(left, want_left, "{}: left", c.name);
}

#[test]
fn preemption_table() {
    let cases = vec![
        Case {
            name: "the most recently started of equal priority goes",
            running: vec![r("a", NORMAL, 1, 0, 2), r("b", NORMAL, 2, 0, 2)],
            queued: vec![q("h", HIGH, 10, 2)],
            want_preempt: vec![("h", vec!["b"])],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "lowest priority first, even if it started earlier",
            running: vec![r("n", NORMAL, 5, 0, 2), r("l", LOW, 1, 0, 2)],
            queued: vec![q("h", HIGH, 10, 2)],
            want_preempt: vec![("h", vec!["l"])],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "never more than needed: a victim added first but not needed is spared",
            running: vec![r("small", LOW, 3, 0, 1), r("big", LOW, 2, 0, 3)],
            queued: vec![q("h", HIGH, 10, 3)],
            want_preempt: vec![("h", vec!["big"])],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "several victims when one is not enough",
            running: vec![
                r("a", LOW, 3, 0, 1),
                r("b", LOW, 2, 0, 1),
                r("c", LOW, 1, 0, 2),
            ],
            queued: vec![q("h", HIGH, 10, 3)],
            want_preempt: vec![("h", vec!["a", "c"])],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "per node: room freed on another node does not count",
            nodes: vec![4, 4],
            running: vec![
                r("x", LOW, 3, 0, 2),
                r("y", LOW, 2, 1, 2),
                r("z", LOW, 1, 0, 2),
                r("v", HIGH, 0, 1, 2),
            ],
            queued: vec![q("h", HIGH, 10, 4)],
            want_preempt: vec![("h", vec!["x", "z"])],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "never a job of equal or higher priority",
            running: vec![r("h1", HIGH, 1, 0, 2), r("h2", HIGH, 2, 0, 2)],
            queued: vec![q("h", HIGH, 10, 2)],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "nobody is preempted when even all candidates are not enough",
            running: vec![r("l", LOW, 1, 0, 1), r("h1", HIGH, 2, 0, 3)],
            queued: vec![q("h", HIGH, 10, 2)],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "a level that may not preempt waits",
            running: vec![r("l", LOW, 1, 0, 4)],
            queued: vec![q("n", NORMAL, 10, 2)],
            want_left: vec!["n"],
            ..Case::default()
        },
        Case {
            name: "a job preempted max_per_job times is spared",
            running: vec![
                R {
                    preemptions: 2,
                    ..r("twice", LOW, 5, 0, 2)
                },
                r("once", LOW, 1, 0, 2),
            ],
            queued: vec![q("h", HIGH, 10, 2)],
            want_preempt: vec![("h", vec!["once"])],
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "namespaces that do not take part neither preempt nor are preempted",
            running: vec![
                R {
                    ns: "other",
                    ..r("o", LOW, 5, 0, 2)
                },
                r("mine", LOW, 1, 0, 2),
            ],
            queued: vec![q("h", HIGH, 10, 2), in_ns(q("oh", HIGH, 11, 2), "other")],
            settings: PreemptionSettings {
                namespaces: Some(BTreeSet::from(["ns".to_string()])),
                ..high_only()
            },
            want_preempt: vec![("h", vec!["mine"])],
            want_left: vec!["h", "oh"],
            ..Case::default()
        },
        Case {
            name: "two preemptors in one cycle never share a victim",
            nodes: vec![6],
            running: vec![
                r("a", LOW, 1, 0, 2),
                r("b", LOW, 2, 0, 2),
                r("c", LOW, 3, 0, 2),
            ],
            queued: vec![q("h1", HIGH, 10, 2), q("h2", HIGH, 11, 2)],
            policy: HeadPolicy::BestEffort,
            want_preempt: vec![("h1", vec!["c"]), ("h2", vec!["b"])],
            want_left: vec!["h1", "h2"],
            ..Case::default()
        },
        Case {
            name: "a job that fits is admitted, nobody preempted",
            running: vec![r("l", LOW, 1, 0, 2)],
            queued: vec![q("h", HIGH, 10, 2)],
            want_admitted: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "a job blocked behind its head does not preempt; the head does",
            running: vec![r("l", LOW, 1, 0, 4)],
            queued: vec![q("h1", HIGH, 10, 4), q("h2", HIGH, 11, 1)],
            want_preempt: vec![("h1", vec!["l"])],
            want_left: vec!["h1", "h2"],
            ..Case::default()
        },
        Case {
            name: "backend unavailable: nothing admitted, nobody preempted",
            running: vec![r("l", LOW, 1, 0, 4)],
            queued: vec![q("h", HIGH, 10, 2)],
            available: false,
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "off: nobody preempted",
            running: vec![r("l", LOW, 1, 0, 4)],
            queued: vec![q("h", HIGH, 10, 2)],
            settings: PreemptionSettings::default(),
            want_left: vec!["h"],
            ..Case::default()
        },
        Case {
            name: "a pending preemptor takes the freed room before an older job of another namespace",
            nodes: vec![4],
            running: vec![R {
                ns: "busy",
                ..r("busy-l", LOW, 1, 0, 2)
            }],
            queued: vec![
                in_ns(q("old", NORMAL, 1, 2), "idle"),
                in_ns(q("h", HIGH, 10, 2), "busy"),
            ],
            pending: vec!["h"],
            want_admitted: vec!["h"],
            want_left: vec!["old"],
            ..Case::default()
        },
        Case {
            name: "a pending preemptor that does not fit yet is not planned again",
            running: vec![r("l", LOW, 1, 0, 4)],
            queued: vec![q("h", HIGH, 10, 2)],
            pending: vec!["h"],
            want_left: vec!["h"],
            ..Case::default()
        },
    ];
    for c in &cases {
        run_case(c);
    }
}

/// Without the pending preemptor first, fair share gives the idle namespace the room (the case
/// above would then not test anything).
#[test]
fn without_pending_fair_share_would_give_the_room_away() {
    let free = vec![NodeCapacity::new("n0", 2000, 63 * GIB, None)];
    let snapshot = Snapshot {
        available: true,
        nodes: free,
        allocatable: vec![NodeCapacity::new("n0", 4000, 64 * GIB, None)],
    };
    let queued = vec![
        in_ns(q("old", NORMAL, 1, 2), "idle"),
        in_ns(q("h", HIGH, 10, 2), "busy"),
    ];
    let held = BTreeMap::from([("busy".to_string(), Resources::new(2000, GIB))]);
    let namespaces = BTreeMap::new();
    let (out, _) = schedule_preempting(
        &CycleInput {
            candidates: &queued,
            snapshot: &snapshot,
            held: &held,
            namespaces: &namespaces,
            default_policy: NamespacePolicy::default(),
        },
        &Timing::default(),
        &PreemptionInput {
            settings: &PreemptionSettings::default(),
            running: &[],
            pending: &[],
        },
    );
    let admitted: Vec<&str> = out
        .admitted
        .iter()
        .map(|a| queued[a.index].id.as_str())
        .collect();
    assert_eq!(admitted, vec!["old"]);
}

/// A random world: cores per node; running jobs (level, node, cores, preemptions so far); the
/// level and cores of the queued jobs.
type World = (Vec<u64>, Vec<(usize, usize, u64, u32)>, usize, u64);

/// Random clusters: running jobs of random levels on random nodes, two queued jobs.
fn arb_world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(2u64..8, 1..4),
        prop::collection::vec((0usize..3, 0usize..4, 1u64..4, 0u32..3), 0..10),
        0usize..3,
        1u64..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn victims_are_lower_needed_and_enough(
        (nodes, runs, level, cores) in arb_world(),
        max_per_job in 0u32..3,
        all_levels in any::<bool>(),
    ) {
        // Place the running jobs first fit on their node (skipping what does not fit).
        let mut free: Vec<NodeCapacity> = nodes
            .iter()
            .enumerate()
            .map(|(i, &c)| NodeCapacity::new(format!("n{i}"), c * 1000, 64 * GIB, None))
            .collect();
        let allocatable = free.clone();
        let mut running = Vec::new();
        for (k, &(lvl, node, c, pre)) in runs.iter().enumerate() {
            let n = node % nodes.len();
            if free[n].cpu_milli < c * 1000 {
                continue;
            }
            free[n].cpu_milli -= c * 1000;
            free[n].mem_mib -= GIB;
            running.push(Preemptible {
                id: format!("r{k}"),
                namespace: "ns".into(),
                level: lvl,
                started_at_ms: k as i64,
                pods: vec![(n, Resources::new(c * 1000, GIB))],
                preemptions: pre,
            });
        }
        let snapshot = Snapshot { available: true, nodes: free.clone(), allocatable };
        let queued = vec![q("h", level, 100, cores), q("h2", level, 101, cores)];
        let settings = PreemptionSettings {
            levels: if all_levels { vec![true; 3] } else { vec![true, false, false] },
            namespaces: None,
            max_per_job,
        };
        let held = BTreeMap::new();
        let namespaces = BTreeMap::new();
        let (out, plans) = schedule_preempting(
            &CycleInput {
                candidates: &queued,
                snapshot: &snapshot,
                held: &held,
                namespaces: &namespaces,
                default_policy: NamespacePolicy { weight: 1, policy: HeadPolicy::BestEffort },
            },
            &Timing::default(),
            &PreemptionInput { settings: &settings, running: &running, pending: &[] },
        );
        // The room after the cycle's admissions: what the plans start from.
        let mut after = Fitter::new(&free);
        for a in &out.admitted {
            prop_assert!(after.place_at(&queued[a.index].demand, &a.placement));
        }
        let mut seen = BTreeSet::new();
        for p in &plans {
            let job = &queued[p.index];
            prop_assert!(settings.may_preempt(&job.namespace, job.level));
            prop_assert!(!p.victims.is_empty());
            prop_assert!(!out.admitted.iter().any(|a| a.index == p.index));
            let fits = |victims: &[usize], base: &Fitter| {
                let mut f = base.clone();
                for &k in victims {
                    f.release_all(&running[k].pods);
                }
                f.try_place(&job.demand).is_ok()
            };
            // Strictly lower priority, under the limit, never twice.
            for &k in &p.victims {
                prop_assert!(running[k].level > job.level, "victim of equal or higher level");
                prop_assert!(running[k].preemptions < max_per_job);
                prop_assert!(seen.insert(k), "a victim chosen twice");
            }
            // The job fits once they are gone, and did not before.
            prop_assert!(!fits(&[], &after));
            prop_assert!(fits(&p.victims, &after));
            // Minimal: without any single one of them it does not fit.
            for n in 0..p.victims.len() {
                let mut without = p.victims.clone();
                without.remove(n);
                prop_assert!(!fits(&without, &after), "victim {} not needed", p.victims[n]);
            }
            for &k in &p.victims {
                after.release_all(&running[k].pods);
            }
            prop_assert!(after.place_at(&job.demand, &p.placement));
        }
        // A single job that could not have been helped by every allowed victim together is
        // never a preemptor; one that could is (with one queued job, nothing competes).
        if plans.is_empty() && out.admitted.is_empty() && settings.may_preempt("ns", level) {
            let mut f = Fitter::new(&free);
            for r in running.iter().filter(|r| r.level > level && r.preemptions < max_per_job) {
                f.release_all(&r.pods);
            }
            prop_assert!(f.try_place(&queued[0].demand).is_err(), "a preemption was possible");
        }
    }
}
