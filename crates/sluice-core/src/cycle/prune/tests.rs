use super::*;
use crate::capacity::NodeCapacity;
use crate::job::{PodDemand, Role};

const GIB: u64 = 1024;

/// A driver of `cores` and `n` executors of `ecores`, 1 GiB each.
fn spark(cores: u64, n: u32, ecores: u64) -> Demand {
    let mut pods = vec![PodDemand {
        role: Role::Driver,
        count: 1,
        cpu_milli: cores * 1000,
        mem_mib: GIB,
    }];
    if n > 0 {
        pods.push(PodDemand {
            role: Role::Executor,
            count: n,
            cpu_milli: ecores * 1000,
            mem_mib: GIB,
        });
    }
    Demand { pods }
}

#[test]
fn cut_table() {
    // Two nodes of 8 cores / 16 GiB, 4 pod slots each: 16 cores, 8 slots in all.
    let nodes = vec![
        NodeCapacity::new("a", 8000, 16 * GIB, Some(4)),
        NodeCapacity::new("b", 8000, 16 * GIB, Some(4)),
    ];
    let fitter = Fitter::new(&nodes);
    let cases: Vec<(&str, Vec<Demand>, Option<usize>)> = vec![
        ("empty queue", vec![], None),
        ("all could fit", vec![spark(2, 2, 2), spark(1, 0, 0)], None),
        (
            "a driver larger than any node",
            vec![spark(9, 0, 0), spark(1, 0, 0)],
            Some(0),
        ),
        (
            "the second job's executor is larger than any node",
            vec![spark(1, 0, 0), spark(1, 1, 9), spark(1, 0, 0)],
            Some(1),
        ),
        (
            "more pods than free slots",
            vec![spark(1, 8, 1), spark(1, 0, 0)],
            Some(0),
        ),
        (
            "together past the free room in all",
            vec![
                spark(4, 1, 4),
                spark(4, 1, 2),
                spark(3, 0, 0),
                spark(1, 0, 0),
            ],
            Some(2),
        ),
    ];
    for (name, demands, want) in cases {
        assert_eq!(strict_cut(&fitter, &demands), want, "{name}");
    }
}

#[test]
fn nothing_fits_an_empty_cluster() {
    let fitter = Fitter::new(&[]);
    assert_eq!(strict_cut(&fitter, &[spark(1, 0, 0)]), Some(0));
}
