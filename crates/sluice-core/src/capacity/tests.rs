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
    (1u64..10, 1u64..10, 0u32..5, 1u64..10, 1u64..10)
        .prop_map(|(dc, dm, n, ec, em)| spark(res(dc * 500, dm * 512), n, res(ec * 500, em * 512)))
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

    /// The one-node shortcut of `fits_empty` answers as first fit over the nodes does.
    #[test]
    fn fits_empty_agrees_with_first_fit(nodes in arb_nodes(), demand in arb_demand()) {
        let first_fit = Fitter::new(&nodes).try_place(&demand);
        match (fits_empty(&demand, &nodes), first_fit) {
            (Ok(()), Ok(_)) => {}
            (Err(a), Err(b)) => prop_assert_eq!(a, NoFit { never: true, ..b }),
            (a, b) => prop_assert!(false, "fits_empty {:?}, first fit {:?}", a, b),
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
