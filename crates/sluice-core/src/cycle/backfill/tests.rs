//! Backfill and aging, in the style of Kueue's TestSchedule: per case the nodes' free room, the
//! running jobs with their expected ends, the queued jobs with their expected run times, and
//! what the cycle must admit, leave (with reasons) and reserve.

use std::collections::BTreeMap;

use crate::capacity::{NodeCapacity, Snapshot};
use crate::cycle::{
    BackfillSettings, Candidate, CycleInput, CycleOutput, HeadPolicy, NamespacePolicy, RunningJob,
    Timing, aged_level, place_running, schedule_at,
};
use crate::job::{Demand, PodDemand, Resources, Role};

const GIB: u64 = 1024;
const MIN: i64 = 60_000;

fn node(name: &str, cores: u64) -> NodeCapacity {
    NodeCapacity::new(name, cores * 1000, 64 * GIB, None)
}

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

/// A running job holding `cores` cores on node `at`, expected to end at `end` minutes.
fn running(at: usize, cores: u64, end: i64) -> RunningJob {
    RunningJob {
        end_ms: end * MIN,
        namespace: String::new(),
        pods: vec![(at, Resources::new(cores * 1000, GIB))],
    }
}

/// A queued job of `cores` cores in `ns`, enqueued at minute `at`, expected to run `run`
/// minutes.
struct Q {
    id: &'static str,
    ns: &'static str,
    level: usize,
    at: i64,
    cores: u64,
    run: i64,
    /// Its `maxRuntime`, minutes.
    max: Option<i64>,
}

fn q(id: &'static str, cores: u64, run: i64) -> Q {
    Q {
        id,
        ns: "ns",
        level: 0,
        at: 0,
        cores,
        run,
        max: None,
    }
}

struct Case {
    name: &'static str,
    /// Allocatable cores per node.
    nodes: Vec<u64>,
    running: Vec<RunningJob>,
    queued: Vec<Q>,
    policies: Vec<(&'static str, HeadPolicy)>,
    now: i64,
    settings: BackfillSettings,
    aging: Vec<Option<i64>>,
    want_admitted: Vec<&'static str>,
    /// Id to the reason's kind or a substring of its text.
    want_left: BTreeMap<&'static str, &'static str>,
    /// (head id, reserved start in minutes).
    want_reserved: Vec<(&'static str, i64)>,
    /// (id, node index) of admitted jobs whose node matters.
    want_nodes: Vec<(&'static str, usize)>,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            nodes: vec![],
            running: vec![],
            queued: vec![],
            policies: vec![],
            now: 0,
            settings: BackfillSettings {
                default_runtime_ms: 60 * MIN,
                overrun_margin_ms: 5 * MIN,
                max_head_wait_ms: Some(120 * MIN),
            },
            aging: vec![],
            want_admitted: vec![],
            want_left: BTreeMap::new(),
            want_reserved: vec![],
            want_nodes: vec![],
        }
    }
}

/// Free room per node: allocatable less the running jobs' pods.
fn free_nodes(nodes: &[u64], running: &[RunningJob]) -> (Vec<NodeCapacity>, Vec<NodeCapacity>) {
    let alloc: Vec<NodeCapacity> = nodes
        .iter()
        .enumerate()
        .map(|(i, c)| node(&format!("n{i}"), *c))
        .collect();
    let mut free = alloc.clone();
    for r in running {
        for (n, p) in &r.pods {
            free[*n].cpu_milli -= p.cpu_milli;
            free[*n].mem_mib -= p.mem_mib;
        }
    }
    (free, alloc)
}

fn run_case(c: &Case) -> (Vec<Candidate>, CycleOutput) {
    let (free, alloc) = free_nodes(&c.nodes, &c.running);
    let snapshot = Snapshot {
        available: true,
        nodes: free,
        allocatable: alloc,
    };
    let cands: Vec<Candidate> = c
        .queued
        .iter()
        .map(|j| Candidate {
            id: j.id.to_string(),
            namespace: j.ns.to_string(),
            level: j.level,
            enqueued_at_ms: j.at * MIN,
            demand: pod(j.cores),
            constraints: None,
        })
        .collect();
    let expected: Vec<Option<i64>> = c.queued.iter().map(|j| Some(j.run * MIN)).collect();
    let max_runtime: Vec<Option<i64>> = c.queued.iter().map(|j| j.max.map(|m| m * MIN)).collect();
    let namespaces: BTreeMap<String, NamespacePolicy> = c
        .policies
        .iter()
        .map(|(ns, p)| {
            (
                ns.to_string(),
                NamespacePolicy {
                    weight: 1,
                    policy: *p,
                },
            )
        })
        .collect();
    let held = BTreeMap::new();
    let out = schedule_at(
        &CycleInput {
            candidates: &cands,
            snapshot: &snapshot,
            held: &held,
            namespaces: &namespaces,
            default_policy: NamespacePolicy {
                weight: 1,
                policy: HeadPolicy::Backfill,
            },
        },
        &Timing {
            now_ms: c.now * MIN,
            expected_ms: &expected,
            max_runtime_ms: &max_runtime,
            running: &c.running,
            backfill: c.settings,
            aging: &c.aging,
        },
    );
    (cands, out)
}

#[test]
fn backfill_table() {
    let cases = vec![
        Case {
            name: "a short job that ends before the head's reserved start is backfilled",
            nodes: vec![4],
            running: vec![running(0, 3, 100)],
            queued: vec![q("head", 4, 30), q("short", 1, 50)],
            want_admitted: vec!["short"],
            want_left: BTreeMap::from([("head", "no-room")]),
            want_reserved: vec![("head", 100)],
            ..Case::default()
        },
        Case {
            name: "a long job that would delay the head waits, and says why",
            nodes: vec![4],
            running: vec![running(0, 3, 100)],
            queued: vec![q("head", 4, 30), q("long", 1, 200)],
            want_left: BTreeMap::from([
                ("head", "no-room"),
                (
                    "long",
                    "would delay job head at the head of namespace ns, reserved to start in 1h 40m",
                ),
            ]),
            want_reserved: vec![("head", 100)],
            ..Case::default()
        },
        Case {
            name: "strict: the same short job waits behind the head",
            nodes: vec![4],
            running: vec![running(0, 3, 100)],
            queued: vec![q("head", 4, 30), q("short", 1, 50)],
            policies: vec![("ns", HeadPolicy::Strict)],
            want_left: BTreeMap::from([("head", "no-room"), ("short", "blocked")]),
            ..Case::default()
        },
        Case {
            name: "best-effort: the long job passes and would delay the head",
            nodes: vec![4],
            running: vec![running(0, 3, 100)],
            queued: vec![q("head", 4, 30), q("long", 1, 200)],
            policies: vec![("ns", HeadPolicy::BestEffort)],
            want_admitted: vec!["long"],
            want_left: BTreeMap::from([("head", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "per node: enough room in all now, the head fits one node at the first end",
            nodes: vec![4, 4],
            running: vec![running(0, 2, 100), running(1, 2, 200)],
            queued: vec![q("head", 4, 30)],
            want_left: BTreeMap::from([("head", "largest free slot 2 cores")]),
            want_reserved: vec![("head", 100)],
            ..Case::default()
        },
        Case {
            name: "a long job fits beside the reservation on another node",
            nodes: vec![4, 4],
            running: vec![running(0, 4, 100), running(1, 2, 1000)],
            queued: vec![q("head", 4, 30), q("long", 2, 500)],
            want_admitted: vec!["long"],
            want_left: BTreeMap::from([("head", "no-room")]),
            want_reserved: vec![("head", 100)],
            want_nodes: vec![("long", 1)],
            ..Case::default()
        },
        Case {
            name: "first fit would take the head's node: the job goes where it fits beside it",
            nodes: vec![4, 4, 2],
            running: vec![running(0, 2, 100), running(1, 4, 1000)],
            queued: vec![q("head", 4, 30), q("long", 2, 500)],
            want_admitted: vec!["long"],
            want_left: BTreeMap::from([("head", "no-room")]),
            want_reserved: vec![("head", 100)],
            want_nodes: vec![("long", 2)],
            ..Case::default()
        },
        Case {
            name: "a job running past its estimate is taken to end now + the margin",
            nodes: vec![4],
            running: vec![running(0, 3, 50)],
            queued: vec![q("head", 4, 30), q("short", 1, 4), q("long", 1, 6)],
            now: 60,
            want_admitted: vec!["short"],
            want_left: BTreeMap::from([("head", "no-room"), ("long", "reserved")]),
            want_reserved: vec![("head", 65)],
            ..Case::default()
        },
        Case {
            name: "an overdue head's reservation binds other namespaces' heads too",
            nodes: vec![4],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "b",
                    at: 100,
                    ..q("b-long", 1, 500)
                },
                Q {
                    ns: "c",
                    at: 100,
                    ..q("c-short", 1, 50)
                },
            ],
            policies: vec![("b", HeadPolicy::Strict), ("c", HeadPolicy::Strict)],
            now: 121,
            want_left: BTreeMap::from([
                ("a-head", "no-room"),
                (
                    "b-long",
                    "would delay job a-head at the head of namespace a",
                ),
                // Expected to end before the start, but an overdue head trusts no estimate.
                ("c-short", "would delay job a-head"),
            ]),
            want_reserved: vec![("a-head", 200)],
            ..Case::default()
        },
        Case {
            name: "beside an overdue head's reservation other jobs still start",
            nodes: vec![4, 2],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "c",
                    at: 100,
                    ..q("c-long", 1, 500)
                },
            ],
            policies: vec![("c", HeadPolicy::Strict)],
            now: 121,
            want_admitted: vec!["c-long"],
            want_left: BTreeMap::from([("a-head", "no-room")]),
            want_reserved: vec![("a-head", 200)],
            want_nodes: vec![("c-long", 1)],
            ..Case::default()
        },
        Case {
            name: "a job whose maxRuntime ends it before an overdue head's reserved start passes",
            nodes: vec![4],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "c",
                    at: 100,
                    max: Some(60),
                    ..q("c-bounded", 1, 50)
                },
            ],
            policies: vec![("c", HeadPolicy::Strict)],
            now: 121,
            // 121 + 60 + the 5-minute margin = 186, before the reserved start at 200.
            want_admitted: vec!["c-bounded"],
            want_left: BTreeMap::from([("a-head", "no-room")]),
            want_reserved: vec![("a-head", 200)],
            ..Case::default()
        },
        Case {
            name: "a maxRuntime ending it exactly at an overdue head's reserved start passes",
            nodes: vec![4],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "c",
                    at: 100,
                    max: Some(74),
                    ..q("c-bounded", 1, 50)
                },
            ],
            now: 121,
            want_admitted: vec!["c-bounded"],
            want_left: BTreeMap::from([("a-head", "no-room")]),
            want_reserved: vec![("a-head", 200)],
            ..Case::default()
        },
        Case {
            name: "a maxRuntime ending it after an overdue head's reserved start does not pass",
            nodes: vec![4],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "c",
                    at: 100,
                    // Expected to end at 171, but only its maxRuntime is certain: 121 + 75 + 5.
                    max: Some(75),
                    ..q("c-bounded", 1, 50)
                },
            ],
            policies: vec![("c", HeadPolicy::Strict)],
            now: 121,
            want_left: BTreeMap::from([
                ("a-head", "no-room"),
                (
                    "c-bounded",
                    "would delay job a-head at the head of namespace a",
                ),
            ]),
            want_reserved: vec![("a-head", 200)],
            ..Case::default()
        },
        Case {
            name: "an aged head's hard reservation passes a job its maxRuntime ends in time",
            nodes: vec![5],
            running: vec![running(0, 3, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    level: 1,
                    ..q("a-aged", 5, 30)
                },
                Q {
                    ns: "b",
                    at: 100,
                    max: Some(20),
                    ..q("b-bounded", 1, 20)
                },
                Q {
                    ns: "c",
                    at: 100,
                    ..q("c-unbounded", 1, 20)
                },
            ],
            policies: vec![
                ("a", HeadPolicy::Strict),
                ("b", HeadPolicy::Strict),
                ("c", HeadPolicy::Strict),
            ],
            settings: BackfillSettings {
                max_head_wait_ms: None,
                ..Case::default().settings
            },
            aging: vec![None, Some(60 * MIN)],
            now: 121,
            want_admitted: vec!["b-bounded"],
            want_left: BTreeMap::from([
                ("a-aged", "no-room"),
                ("c-unbounded", "would delay job a-aged"),
            ]),
            want_reserved: vec![("a-aged", 200)],
            ..Case::default()
        },
        Case {
            name: "the reservation binds jobs passing another backfill namespace's head",
            nodes: vec![4],
            running: vec![running(0, 2, 100)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "b",
                    ..q("b-head", 3, 30)
                },
                Q {
                    ns: "b",
                    at: 1,
                    ..q("b-long", 1, 500)
                },
            ],
            want_admitted: vec![],
            want_left: BTreeMap::from([
                ("a-head", "no-room"),
                ("b-head", "no-room"),
                ("b-long", "would delay job a-head"),
            ]),
            want_reserved: vec![("a-head", 100), ("b-head", 100)],
            ..Case::default()
        },
        Case {
            name: "a head in fair-share order may delay a reservation (as under strict); it moves",
            nodes: vec![4, 2],
            running: vec![running(0, 2, 100), running(1, 2, 300)],
            queued: vec![
                Q {
                    ns: "a",
                    ..q("a-head", 4, 30)
                },
                Q {
                    ns: "b",
                    at: 1,
                    ..q("b-head", 2, 1000)
                },
            ],
            policies: vec![("b", HeadPolicy::Strict)],
            want_admitted: vec!["b-head"],
            want_left: BTreeMap::from([("a-head", "no-room")]),
            want_reserved: vec![("a-head", 1000)],
            ..Case::default()
        },
    ];
    for c in &cases {
        check_case(c);
    }
}

/// Runs a case and checks what it admits (in order), leaves (with reasons), reserves, and
/// where.
fn check_case(c: &Case) {
    let (cands, out) = run_case(c);
    let id = |i: usize| cands[i].id.as_str();
    let admitted: Vec<&str> = out.admitted.iter().map(|a| id(a.index)).collect();
    assert_eq!(admitted, c.want_admitted, "{}: admitted", c.name);
    let left: BTreeMap<&str, String> = out
        .waiting
        .iter()
        .map(|w| (id(w.index), format!("{} | {}", w.reason.kind(), w.reason)))
        .collect();
    assert_eq!(
        left.keys().copied().collect::<Vec<_>>(),
        c.want_left.keys().copied().collect::<Vec<_>>(),
        "{}: left",
        c.name
    );
    for (k, want) in &c.want_left {
        assert!(
            left[k].contains(want),
            "{}: {k}: {} lacks {want:?}",
            c.name,
            left[k]
        );
    }
    let reserved: Vec<(&str, i64)> = out
        .reservations
        .iter()
        .map(|r| (id(r.index), r.start_ms / MIN))
        .collect();
    assert_eq!(reserved, c.want_reserved, "{}: reserved", c.name);
    for (want_id, want_node) in &c.want_nodes {
        let a = out
            .admitted
            .iter()
            .find(|a| id(a.index) == *want_id)
            .unwrap_or_else(|| panic!("{}: {want_id} not admitted", c.name));
        assert_eq!(
            a.placement.pods[0].1, *want_node,
            "{}: node of {want_id}",
            c.name
        );
    }
}

#[test]
fn aging_table() {
    // Levels: 0 high, 1 normal, 2 low; normal rises after 120 min, low after 60 min.
    let aging = vec![None, Some(120 * MIN), Some(60 * MIN)];
    assert_eq!(aged_level(1, 119 * MIN, &aging), 1);
    assert_eq!(aged_level(1, 120 * MIN, &aging), 0);
    assert_eq!(aged_level(2, 59 * MIN, &aging), 2);
    assert_eq!(aged_level(2, 60 * MIN, &aging), 1, "one bound: one level");
    assert_eq!(aged_level(2, 179 * MIN, &aging), 1);
    assert_eq!(
        aged_level(2, 180 * MIN, &aging),
        0,
        "both bounds: two levels"
    );
    assert_eq!(aged_level(0, 1000 * MIN, &aging), 0, "the top level stays");
    assert_eq!(aged_level(1, 1000 * MIN, &[]), 1, "no aging");

    let cases = vec![
        Case {
            name: "an old normal job goes before a younger high job",
            nodes: vec![1],
            queued: vec![
                Q {
                    level: 1,
                    at: 0,
                    ..q("old-normal", 1, 10)
                },
                Q {
                    level: 0,
                    at: 100,
                    ..q("high", 1, 10)
                },
            ],
            now: 130,
            aging: aging.clone(),
            policies: vec![("ns", HeadPolicy::Strict)],
            want_admitted: vec!["old-normal"],
            want_left: BTreeMap::from([("high", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "an aged job sorts behind older high jobs (by its enqueue time)",
            nodes: vec![1],
            queued: vec![
                Q {
                    level: 1,
                    at: 0,
                    ..q("old-normal", 1, 10)
                },
                Q {
                    level: 0,
                    at: -10,
                    ..q("older-high", 1, 10)
                },
            ],
            now: 130,
            aging: aging.clone(),
            policies: vec![("ns", HeadPolicy::Strict)],
            want_admitted: vec!["older-high"],
            want_left: BTreeMap::from([("old-normal", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "an aged head is not starved by other namespaces: it holds a hard reservation",
            nodes: vec![2],
            running: vec![running(0, 1, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    level: 1,
                    at: 0,
                    ..q("aged-big", 2, 10)
                },
                Q {
                    ns: "b",
                    level: 0,
                    at: 125,
                    ..q("b-small", 1, 10)
                },
            ],
            now: 130,
            aging: aging.clone(),
            policies: vec![("a", HeadPolicy::Strict), ("b", HeadPolicy::Strict)],
            want_admitted: vec![],
            want_left: BTreeMap::from([("aged-big", "no-room"), ("b-small", "reserved")]),
            ..Case::default()
        },
        Case {
            name: "before its bound a big head is passed by another namespace's job",
            nodes: vec![2],
            running: vec![running(0, 1, 200)],
            queued: vec![
                Q {
                    ns: "a",
                    level: 1,
                    at: 20,
                    ..q("big", 2, 10)
                },
                Q {
                    ns: "b",
                    level: 0,
                    at: 125,
                    ..q("b-small", 1, 10)
                },
            ],
            now: 130,
            aging: aging.clone(),
            policies: vec![("a", HeadPolicy::Strict), ("b", HeadPolicy::Strict)],
            want_admitted: vec!["b-small"],
            want_left: BTreeMap::from([("big", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "before its bound the normal job waits behind high",
            nodes: vec![1],
            queued: vec![
                Q {
                    level: 1,
                    at: 0,
                    ..q("normal", 1, 10)
                },
                Q {
                    level: 0,
                    at: 100,
                    ..q("high", 1, 10)
                },
            ],
            now: 110,
            aging: aging.clone(),
            policies: vec![("ns", HeadPolicy::Strict)],
            want_admitted: vec!["high"],
            want_left: BTreeMap::from([("normal", "no-room")]),
            ..Case::default()
        },
    ];
    for c in &cases {
        let (cands, out) = run_case(c);
        let id = |i: usize| cands[i].id.as_str();
        let admitted: Vec<&str> = out.admitted.iter().map(|a| id(a.index)).collect();
        assert_eq!(admitted, c.want_admitted, "{}: admitted", c.name);
        for w in &out.waiting {
            let want = c.want_left[id(w.index)];
            assert!(
                w.reason.kind() == want || w.reason.to_string().contains(want),
                "{}: {}",
                c.name,
                w.reason
            );
        }
        let aged: Vec<(&str, usize)> = out.aged.iter().map(|a| (id(a.index), a.level)).collect();
        let want_aged: Vec<(&str, usize)> = c
            .queued
            .iter()
            .filter(|j| j.level == 1 && c.now - j.at >= 120)
            .map(|j| (j.id, 0))
            .collect();
        assert_eq!(aged, want_aged, "{}: aged", c.name);
    }
}

#[test]
fn running_jobs_are_placed_in_the_held_room() {
    let alloc = vec![node("a", 8), node("b", 8)];
    // a holds 6 cores, b holds 2.
    let mut free = alloc.clone();
    free[0].cpu_milli = 2000;
    free[1].cpu_milli = 6000;
    free[0].mem_mib -= 2 * GIB;
    free[1].mem_mib -= GIB;
    let jobs = vec![(pod(6), 10 * MIN), (pod(2), 20 * MIN), (pod(3), 30 * MIN)];
    let placed = place_running(&alloc, &free, &jobs);
    // The 3-core job fits no held room: left out, its room not expected back.
    assert_eq!(placed.len(), 2);
    assert_eq!(placed[0].pods, vec![(0, Resources::new(6000, GIB))]);
    assert_eq!(placed[1].pods, vec![(1, Resources::new(2000, GIB))]);
    assert_eq!((placed[0].end_ms, placed[1].end_ms), (10 * MIN, 20 * MIN));
    assert!(place_running(&alloc, &free[..1], &jobs).is_empty());
}

mod overdue;
mod props;
