use super::*;
use crate::capacity::NodeCapacity;
use crate::job::{PodDemand, Role};
use proptest::prelude::*;

const GIB: u64 = 1024;

fn node(name: &str, cores: u64, gib: u64, pods: Option<u32>) -> NodeCapacity {
    NodeCapacity::new(name, cores * 1000, gib * GIB, pods)
}

/// A driver of `cores`/`gib` and `n` executors of `ecores`/`egib`, all in whole units.
fn spark(cores: u64, gib: u64, n: u32, ecores: u64, egib: u64) -> Demand {
    let mut pods = vec![PodDemand {
        role: Role::Driver,
        count: 1,
        cpu_milli: cores * 1000,
        mem_mib: gib * GIB,
    }];
    if n > 0 {
        pods.push(PodDemand {
            role: Role::Executor,
            count: n,
            cpu_milli: ecores * 1000,
            mem_mib: egib * GIB,
        });
    }
    Demand { pods }
}

fn job(id: &str, ns: &str, level: usize, at: i64, demand: Demand) -> Candidate {
    Candidate {
        id: id.to_string(),
        namespace: ns.to_string(),
        level,
        enqueued_at_ms: at,
        demand,
        constraints: None,
    }
}

#[test]
fn constraints_hold_jobs_back() {
    let snapshot = Snapshot {
        available: true,
        nodes: vec![node("a", 4, 8, None), node("b", 4, 8, None)],
        allocatable: vec![node("a", 4, 8, None), node("b", 4, 8, None)],
    };
    let mut quota = small("q", "x", 0, 1);
    quota.constraints = Some(Constraints {
        eligible: Eligible::new(),
        blocked: Some("ResourceQuota team requests.cpu: full".into()),
    });
    let mut pinned = job("p", "y", 0, 1, spark(2, 1, 2, 2, 1));
    let mut only_b = Eligible::new();
    only_b.insert(Role::Driver, vec![false, true]);
    only_b.insert(Role::Executor, vec![false, true]);
    pinned.constraints = Some(Constraints {
        eligible: only_b,
        blocked: None,
    });
    let behind = small("z", "x", 0, 2);
    let cands = vec![quota, pinned, behind];
    let held = BTreeMap::new();
    let namespaces = BTreeMap::new();
    let out = schedule(&CycleInput {
        candidates: &cands,
        snapshot: &snapshot,
        held: &held,
        namespaces: &namespaces,
        default_policy: NamespacePolicy::default(),
    });
    assert!(out.admitted.is_empty(), "{out:?}");
    let reasons: Vec<(usize, String, &str)> = out
        .waiting
        .iter()
        .map(|w| (w.index, w.reason.to_string(), w.reason.kind()))
        .collect();
    assert_eq!(reasons[0].0, 0);
    assert_eq!(
        (reasons[0].1.as_str(), reasons[0].2),
        ("ResourceQuota team requests.cpu: full", "constrained")
    );
    // Strict: the job behind the quota-held head is blocked.
    assert_eq!(reasons[1].0, 2);
    assert_eq!(reasons[1].2, "blocked");
    // Pinned to node b, which holds the driver and one executor but not two.
    assert_eq!(reasons[2].0, 1);
    assert_eq!(reasons[2].2, "no-room");
    assert!(
        reasons[2]
            .1
            .contains("largest free slot 4 cores / 8 GiB, 4 cores / 8 GiB free"),
        "{}",
        reasons[2].1
    );
}

/// A one-pod job of one core and one GiB.
fn small(id: &str, ns: &str, level: usize, at: i64) -> Candidate {
    job(id, ns, level, at, spark(1, 1, 0, 0, 0))
}

fn policy(weight: u32, policy: HeadPolicy) -> NamespacePolicy {
    NamespacePolicy { weight, policy }
}

fn snapshot(nodes: &[NodeCapacity], available: bool) -> Snapshot {
    Snapshot {
        available,
        nodes: nodes.to_vec(),
        allocatable: nodes.to_vec(),
    }
}

struct Case {
    name: &'static str,
    nodes: Vec<NodeCapacity>,
    available: bool,
    candidates: Vec<Candidate>,
    held: Vec<(&'static str, Resources)>,
    namespaces: Vec<(&'static str, NamespacePolicy)>,
    default_policy: NamespacePolicy,
    /// Ids, in admission order.
    want_admitted: Vec<&'static str>,
    /// Id to the reason's kind or a substring of its text.
    want_left: BTreeMap<&'static str, &'static str>,
}

impl Default for Case {
    fn default() -> Self {
        Self {
            name: "",
            nodes: vec![],
            available: true,
            candidates: vec![],
            held: vec![],
            namespaces: vec![],
            default_policy: NamespacePolicy::default(),
            want_admitted: vec![],
            want_left: BTreeMap::new(),
        }
    }
}

fn run(case: &Case) -> CycleOutput {
    let snapshot = snapshot(&case.nodes, case.available);
    let held: BTreeMap<String, Resources> =
        case.held.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let namespaces: BTreeMap<String, NamespacePolicy> = case
        .namespaces
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    schedule(&CycleInput {
        candidates: &case.candidates,
        snapshot: &snapshot,
        held: &held,
        namespaces: &namespaces,
        default_policy: case.default_policy,
    })
}

#[test]
fn schedule_table() {
    let strict = HeadPolicy::Strict;
    let best = HeadPolicy::BestEffort;
    let cases = vec![
        Case {
            name: "fits",
            nodes: vec![node("a", 4, 16, None)],
            candidates: vec![job("j1", "ns", 0, 1, spark(1, 1, 2, 1, 2))],
            want_admitted: vec!["j1"],
            ..Case::default()
        },
        Case {
            name: "does not fit",
            nodes: vec![node("a", 2, 16, None)],
            candidates: vec![job("j1", "ns", 0, 1, spark(4, 1, 0, 0, 0))],
            want_left: BTreeMap::from([("j1", "needs 4 cores / 1 GiB in 1 pod")]),
            ..Case::default()
        },
        Case {
            name: "fragmentation: enough in total, no node holds the driver",
            nodes: vec![
                node("a", 2, 8, None),
                node("b", 2, 8, None),
                node("c", 2, 8, None),
            ],
            candidates: vec![job("j1", "ns", 0, 1, spark(3, 1, 0, 0, 0))],
            want_left: BTreeMap::from([(
                "j1",
                "largest free slot 2 cores / 8 GiB, 6 cores / 24 GiB free in all",
            )]),
            ..Case::default()
        },
        Case {
            name: "executors spread over nodes",
            nodes: vec![node("a", 4, 8, None), node("b", 4, 8, None)],
            candidates: vec![job("j1", "ns", 0, 1, spark(2, 2, 3, 2, 2))],
            want_admitted: vec!["j1"],
            ..Case::default()
        },
        Case {
            name: "pod slot limit",
            nodes: vec![node("a", 16, 64, Some(2))],
            candidates: vec![job("j1", "ns", 0, 1, spark(1, 1, 2, 1, 1))],
            want_left: BTreeMap::from([("j1", "only 2 free pod slots")]),
            ..Case::default()
        },
        Case {
            name: "priority within a namespace: high before an earlier normal job",
            nodes: vec![node("a", 1, 8, None)],
            candidates: vec![small("normal", "ns", 1, 1), small("high", "ns", 0, 5)],
            want_admitted: vec!["high"],
            want_left: BTreeMap::from([("normal", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "FIFO within a level",
            nodes: vec![node("a", 2, 8, None)],
            candidates: vec![
                small("a1", "ns", 0, 2),
                small("a2", "ns", 0, 1),
                small("a3", "ns", 0, 3),
            ],
            want_admitted: vec!["a2", "a1"],
            want_left: BTreeMap::from([("a3", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "id breaks enqueue-time ties",
            nodes: vec![node("a", 2, 8, None)],
            candidates: vec![
                small("b", "ns", 0, 1),
                small("a", "ns", 0, 1),
                small("c", "ns", 0, 1),
            ],
            want_admitted: vec!["a", "b"],
            want_left: BTreeMap::from([("c", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "strict head blocks later jobs and lower levels",
            nodes: vec![node("a", 2, 8, None)],
            candidates: vec![
                job("big", "ns", 0, 1, spark(4, 1, 0, 0, 0)),
                small("later", "ns", 0, 2),
                small("low", "ns", 1, 0),
            ],
            namespaces: vec![("ns", policy(1, strict))],
            want_left: BTreeMap::from([
                ("big", "no-room"),
                (
                    "later",
                    "behind job big at the head of namespace ns, which does not fit (strict FIFO)",
                ),
                ("low", "blocked"),
            ]),
            ..Case::default()
        },
        Case {
            name: "best-effort lets a later smaller job pass",
            nodes: vec![node("a", 2, 8, None)],
            candidates: vec![
                job("big", "ns", 0, 1, spark(4, 1, 0, 0, 0)),
                small("later", "ns", 0, 2),
                small("low", "ns", 1, 0),
            ],
            namespaces: vec![("ns", policy(1, best))],
            want_admitted: vec!["later", "low"],
            want_left: BTreeMap::from([("big", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "default policy applies to unlisted namespaces",
            nodes: vec![node("a", 2, 8, None)],
            candidates: vec![
                job("big", "ns", 0, 1, spark(4, 1, 0, 0, 0)),
                small("later", "ns", 0, 2),
            ],
            namespaces: vec![("other", policy(1, strict))],
            default_policy: policy(1, best),
            want_admitted: vec!["later"],
            want_left: BTreeMap::from([("big", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "fair share: a flooding namespace does not starve a one-job namespace",
            nodes: vec![node("a", 3, 64, None)],
            candidates: vec![
                small("f1", "flood", 0, 1),
                small("f2", "flood", 0, 2),
                small("f3", "flood", 0, 3),
                small("f4", "flood", 0, 4),
                small("f5", "flood", 0, 5),
                small("s1", "solo", 0, 10),
            ],
            want_admitted: vec!["f1", "s1", "f2"],
            want_left: BTreeMap::from([
                ("f3", "no-room"),
                ("f4", "behind job f3"),
                ("f5", "behind job f3"),
            ]),
            ..Case::default()
        },
        Case {
            name: "weights: weight 2 gets about twice",
            nodes: vec![node("a", 6, 600, None)],
            candidates: (0..10)
                .flat_map(|i| {
                    [
                        small(&format!("a{i}"), "a", 0, i),
                        small(&format!("b{i}"), "b", 0, i),
                    ]
                })
                .collect(),
            namespaces: vec![("a", policy(2, strict)), ("b", policy(1, strict))],
            want_admitted: vec!["a0", "b0", "a1", "b1", "a2", "a3"],
            want_left: BTreeMap::from([
                ("a4", "no-room"),
                ("b2", "no-room"),
                ("a9", "blocked"),
                ("b9", "blocked"),
            ]),
            ..Case::default()
        },
        Case {
            name: "held usage counts",
            nodes: vec![node("a", 1, 8, None)],
            candidates: vec![small("a1", "a", 0, 1), small("b1", "b", 0, 2)],
            held: vec![("a", Resources::new(500, 0))],
            want_admitted: vec!["b1"],
            want_left: BTreeMap::from([("a1", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "equal shares: the better level goes first across namespaces",
            nodes: vec![node("a", 1, 8, None)],
            candidates: vec![small("a1", "a", 1, 0), small("b1", "b", 0, 5)],
            want_admitted: vec!["b1"],
            want_left: BTreeMap::from([("a1", "no-room")]),
            ..Case::default()
        },
        Case {
            name: "backend unavailable",
            nodes: vec![node("a", 64, 256, None)],
            available: false,
            candidates: vec![small("j1", "ns", 0, 1), small("j2", "other", 0, 1)],
            want_left: BTreeMap::from([
                ("j1", "backend unavailable"),
                ("j2", "backend-unavailable"),
            ]),
            ..Case::default()
        },
        Case {
            name: "zero candidates",
            nodes: vec![node("a", 1, 1, None)],
            ..Case::default()
        },
        Case {
            name: "no nodes",
            candidates: vec![small("j1", "ns", 0, 1)],
            want_left: BTreeMap::from([("j1", "no-room")]),
            ..Case::default()
        },
    ];

    for case in &cases {
        let out = run(case);
        let ids = |i: usize| case.candidates[i].id.as_str();
        let got: Vec<&str> = out.admitted.iter().map(|a| ids(a.index)).collect();
        assert_eq!(got, case.want_admitted, "{}: admitted", case.name);
        assert_eq!(
            out.admitted.len() + out.waiting.len(),
            case.candidates.len(),
            "{}: every candidate decided once",
            case.name
        );
        let left: BTreeMap<&str, &WaitReason> = out
            .waiting
            .iter()
            .map(|w| (ids(w.index), &w.reason))
            .collect();
        for (id, want) in &case.want_left {
            let reason = left
                .get(id)
                .unwrap_or_else(|| panic!("{}: {id} is not waiting", case.name));
            let text = reason.to_string();
            assert!(
                reason.kind() == *want || text.contains(want),
                "{}: {id} waits for {text:?} ({}), want {want:?}",
                case.name,
                reason.kind()
            );
        }
    }
}

#[test]
fn positions_and_level_positions() {
    let case = Case {
        nodes: vec![node("a", 1, 8, None)],
        candidates: vec![
            small("n2", "a", 1, 4),
            small("h1", "a", 0, 1),
            small("h2", "a", 0, 2),
            small("n1", "a", 1, 3),
            small("h3", "a", 0, 3),
            small("b1", "b", 1, 9),
            small("b2", "b", 1, 10),
        ],
        held: vec![("b", Resources::new(1000, 0))],
        namespaces: vec![("a", policy(1, HeadPolicy::BestEffort))],
        ..Case::default()
    };
    let out = run(&case);
    let got: Vec<(&str, u32, u32, &str)> = out
        .waiting
        .iter()
        .map(|w| {
            (
                case.candidates[w.index].id.as_str(),
                w.position,
                w.level_position,
                w.reason.kind(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("h2", 1, 1, "no-room"),
            ("h3", 2, 2, "no-room"),
            ("n1", 3, 1, "no-room"),
            ("n2", 4, 2, "no-room"),
            ("b1", 1, 1, "no-room"),
            ("b2", 2, 2, "blocked"),
        ]
    );
    assert_eq!(out.admitted.len(), 1);
    assert_eq!(case.candidates[out.admitted[0].index].id, "h1");
    assert_eq!(out.admitted[0].placement.pods, vec![(Role::Driver, 0)]);
}

#[test]
fn policy_names() {
    assert_eq!(
        serde_json::to_string(&HeadPolicy::BestEffort).unwrap(),
        "\"best-effort\""
    );
    assert_eq!(
        serde_json::to_string(&HeadPolicy::Strict).unwrap(),
        "\"strict\""
    );
    assert_eq!(
        "best-effort".parse::<HeadPolicy>(),
        Ok(HeadPolicy::BestEffort)
    );
    assert!("fifo".parse::<HeadPolicy>().is_err());
    let p: NamespacePolicy = serde_json::from_str(r#"{"policy":"best-effort"}"#).unwrap();
    assert_eq!(p, policy(1, HeadPolicy::BestEffort));
    assert_eq!(NamespacePolicy::default(), policy(1, HeadPolicy::Strict));
}

#[test]
fn shares_are_exact_and_weighted() {
    let total = Resources::new(6000, 6000);
    assert_eq!(dominant_share(Resources::new(0, 0), total, 1), 0);
    assert_eq!(
        dominant_share(Resources::new(3000, 1000), total, 1),
        dominant_share(Resources::new(1000, 3000), total, 1)
    );
    assert_eq!(
        dominant_share(Resources::new(2000, 0), total, 2),
        dominant_share(Resources::new(1000, 0), total, 1)
    );
    assert_eq!(
        dominant_share(Resources::new(1000, 0), total, 0),
        dominant_share(Resources::new(1000, 0), total, 1)
    );
    assert_eq!(
        dominant_share(Resources::new(1000, 1000), Resources::default(), 1),
        0
    );
}

/// The cycle as the specification states it: a scan of every namespace per decision.
fn reference(input: &CycleInput<'_>) -> Vec<usize> {
    if !input.snapshot.available {
        return vec![];
    }
    let cands = input.candidates;
    let mut by_ns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in cands.iter().enumerate() {
        by_ns.entry(c.namespace.as_str()).or_default().push(i);
    }
    for v in by_ns.values_mut() {
        v.sort_by_key(|&i| (cands[i].level, cands[i].enqueued_at_ms, cands[i].id.clone()));
    }
    let total = share_total(input);
    let mut state: BTreeMap<&str, (usize, Resources, bool)> = by_ns
        .keys()
        .map(|&ns| {
            (
                ns,
                (0, input.held.get(ns).copied().unwrap_or_default(), false),
            )
        })
        .collect();
    let pol = |ns: &str| {
        input
            .namespaces
            .get(ns)
            .copied()
            .unwrap_or(input.default_policy)
    };
    let mut fitter = Fitter::new(&input.snapshot.nodes);
    let mut admitted = vec![];
    loop {
        let pick = state
            .iter()
            .filter(|(ns, (next, _, blocked))| !blocked && *next < by_ns[*ns].len())
            .map(|(ns, (next, held, _))| {
                let head = &cands[by_ns[ns][*next]];
                let share = dominant_share(*held, total, pol(ns).weight);
                ((share, head.level, head.enqueued_at_ms, *ns), *ns)
            })
            .min();
        let Some((_, ns)) = pick else { break };
        let (next, held, blocked) = state.get_mut(ns).unwrap();
        let i = by_ns[ns][*next];
        *next += 1;
        match fitter.try_place(&cands[i].demand) {
            Ok(_) => {
                admitted.push(i);
                *held = held.plus(&cands[i].demand.total());
            }
            Err(_) => *blocked = pol(ns).policy == HeadPolicy::Strict,
        }
    }
    admitted
}

#[derive(Debug, Clone)]
struct World {
    nodes: Vec<NodeCapacity>,
    available: bool,
    candidates: Vec<Candidate>,
    held: BTreeMap<String, Resources>,
    namespaces: BTreeMap<String, NamespacePolicy>,
    default_policy: NamespacePolicy,
}

impl World {
    fn input(&self, snapshot: &Snapshot) -> CycleOutput {
        schedule(&CycleInput {
            candidates: &self.candidates,
            snapshot,
            held: &self.held,
            namespaces: &self.namespaces,
            default_policy: self.default_policy,
        })
    }
    fn snapshot(&self) -> Snapshot {
        snapshot(&self.nodes, self.available)
    }
    fn policy(&self, ns: &str) -> NamespacePolicy {
        self.namespaces
            .get(ns)
            .copied()
            .unwrap_or(self.default_policy)
    }
    /// Candidate indices of one namespace in queue order.
    fn queue(&self, ns: &str) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.candidates.len())
            .filter(|&i| self.candidates[i].namespace == ns)
            .collect();
        v.sort_by_key(|&i| {
            let c = &self.candidates[i];
            (c.level, c.enqueued_at_ms, c.id.clone())
        });
        v
    }
}

fn arb_policy() -> impl Strategy<Value = NamespacePolicy> {
    (1u32..4, prop::bool::ANY).prop_map(|(w, b)| {
        policy(
            w,
            if b {
                HeadPolicy::BestEffort
            } else {
                HeadPolicy::Strict
            },
        )
    })
}

fn arb_world() -> impl Strategy<Value = World> {
    let nodes = prop::collection::vec((1u64..12, 1u64..24, prop::option::of(0u32..6)), 0..5);
    let cand = (
        0usize..3,
        0usize..3,
        0i64..8,
        1u64..6,
        1u64..8,
        0u32..4,
        1u64..5,
        1u64..8,
    );
    let cands = prop::collection::vec(cand, 0..40);
    let held = prop::collection::vec((0u64..8, 0u64..16), 3);
    let pols = prop::collection::vec(arb_policy(), 4);
    (nodes, prop::bool::weighted(0.9), cands, held, pols).prop_map(
        |(nodes, available, cands, held, pols)| {
            let names = ["a", "b", "c"];
            World {
                nodes: nodes
                    .into_iter()
                    .enumerate()
                    .map(|(i, (c, m, p))| NodeCapacity::new(format!("n{i}"), c * 1000, m * 512, p))
                    .collect(),
                available,
                candidates: cands
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ns, level, at, dc, dm, n, ec, em))| {
                        let mut d = spark(dc, 1, n, ec, 1);
                        d.pods[0].mem_mib = dm * 512;
                        if let Some(e) = d.pods.get_mut(1) {
                            e.mem_mib = em * 512;
                        }
                        job(&format!("j{i:02}"), names[ns], level, at, d)
                    })
                    .collect(),
                held: names
                    .iter()
                    .zip(held)
                    .map(|(ns, (c, m))| (ns.to_string(), Resources::new(c * 1000, m * 512)))
                    .collect(),
                namespaces: names[..2]
                    .iter()
                    .zip(&pols)
                    .map(|(ns, p)| (ns.to_string(), *p))
                    .collect(),
                default_policy: pols[3],
            }
        },
    )
}

/// Admitted ids in order, and (id, reason, position, level position) of the waiting jobs.
type Summary = (Vec<String>, Vec<(String, String, u32, u32)>);

/// A stable summary of an output, by job id.
fn summary(w: &World, out: &CycleOutput) -> Summary {
    let id = |i: usize| w.candidates[i].id.clone();
    (
        out.admitted.iter().map(|a| id(a.index)).collect(),
        out.waiting
            .iter()
            .map(|x| {
                (
                    id(x.index),
                    x.reason.to_string(),
                    x.position,
                    x.level_position,
                )
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn never_admits_beyond_capacity(w in arb_world()) {
        let out = w.input(&w.snapshot());
        let mut free = w.nodes.clone();
        for a in &out.admitted {
            let demand = &w.candidates[a.index].demand;
            let pods: Vec<(Role, Resources)> = demand
                .pods
                .iter()
                .flat_map(|g| std::iter::repeat_n((g.role, g.each()), g.count as usize))
                .collect();
            prop_assert_eq!(pods.len(), a.placement.pods.len());
            for ((role, size), &(placed_role, node)) in pods.iter().zip(&a.placement.pods) {
                prop_assert_eq!(*role, placed_role);
                let n = &mut free[node];
                prop_assert!(n.fits(size), "{:?} does not fit {:?}", size, n);
                n.cpu_milli -= size.cpu_milli;
                n.mem_mib -= size.mem_mib;
                n.pods = n.pods.map(|p| p - 1);
            }
        }
    }

    #[test]
    fn every_candidate_decided_once(w in arb_world()) {
        let out = w.input(&w.snapshot());
        let mut seen: Vec<usize> = out
            .admitted
            .iter()
            .map(|a| a.index)
            .chain(out.waiting.iter().map(|x| x.index))
            .collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..w.candidates.len()).collect::<Vec<_>>());
        if !w.available {
            prop_assert!(out.admitted.is_empty());
            prop_assert!(out.waiting.iter().all(|x| x.reason == WaitReason::BackendUnavailable));
        }
    }

    #[test]
    fn queue_order_is_respected(w in arb_world()) {
        let out = w.input(&w.snapshot());
        let admitted: Vec<usize> = out.admitted.iter().map(|a| a.index).collect();
        let reasons: BTreeMap<usize, &WaitReason> =
            out.waiting.iter().map(|x| (x.index, &x.reason)).collect();
        for ns in ["a", "b", "c"] {
            let queue = w.queue(ns);
            let strict = w.policy(ns).policy == HeadPolicy::Strict;
            let is_admitted: Vec<bool> = queue.iter().map(|i| admitted.contains(i)).collect();
            // Strict: the admitted jobs form a prefix of the namespace's order (so FIFO
            // within a level and levels in order).
            if strict {
                let k = is_admitted.iter().take_while(|&&a| a).count();
                prop_assert!(is_admitted[k..].iter().all(|&a| !a), "{}: {:?}", ns, is_admitted);
            }
            // Any job ahead of an admitted one that still waits does so for want of room.
            if let Some(last) = is_admitted.iter().rposition(|&a| a) {
                for &i in &queue[..last] {
                    if let Some(r) = reasons.get(&i) {
                        prop_assert_eq!(r.kind(), "no-room");
                    }
                }
                // A job of level L admitted: every higher-level job admitted or waiting on room.
                let top = w.candidates[queue[last]].level;
                for &i in &queue {
                    if w.candidates[i].level < top {
                        let ok = admitted.contains(&i)
                            || matches!(
                                reasons[&i],
                                WaitReason::NoRoom(_) | WaitReason::BlockedBehind { .. }
                            );
                        prop_assert!(ok);
                    }
                }
            }
            // Blocked only behind an earlier job of a strict namespace that has no room.
            for (k, &i) in queue.iter().enumerate() {
                if let Some(WaitReason::BlockedBehind { head_id, namespace }) = reasons.get(&i) {
                    prop_assert!(strict);
                    prop_assert_eq!(namespace, ns);
                    let h = queue[..k].iter().position(|&j| &w.candidates[j].id == head_id);
                    prop_assert!(h.is_some());
                    prop_assert_eq!(reasons[&queue[h.unwrap_or(0)]].kind(), "no-room");
                }
            }
            // Positions count the waiting jobs of the namespace in queue order.
            let waiting: Vec<&Waiting> = out
                .waiting
                .iter()
                .filter(|x| w.candidates[x.index].namespace == ns)
                .collect();
            for (k, x) in waiting.iter().enumerate() {
                prop_assert_eq!(x.position as usize, k + 1);
                let level = w.candidates[x.index].level;
                let same = waiting[..k].iter().filter(|y| w.candidates[y.index].level == level).count();
                prop_assert_eq!(x.level_position as usize, same + 1);
            }
        }
    }

    #[test]
    fn matches_the_reference_scan(w in arb_world()) {
        let snapshot = w.snapshot();
        let out = w.input(&snapshot);
        let want = reference(&CycleInput {
            candidates: &w.candidates,
            snapshot: &snapshot,
            held: &w.held,
            namespaces: &w.namespaces,
            default_policy: w.default_policy,
        });
        prop_assert_eq!(out.admitted.iter().map(|a| a.index).collect::<Vec<_>>(), want);
    }

    #[test]
    fn deterministic_under_shuffle(
        (w, shuffled) in arb_world().prop_flat_map(|w| {
            let c = w.candidates.clone();
            (Just(w), Just(c).prop_shuffle())
        })
    ) {
        let a = summary(&w, &w.input(&w.snapshot()));
        let w2 = World { candidates: shuffled, ..w.clone() };
        let b = summary(&w2, &w2.input(&w2.snapshot()));
        prop_assert_eq!(a, b);
    }
}

mod prune;
