//! One scheduling cycle over N queued jobs in 1,000 namespaces (two levels) on a 200-node cluster.
//!
//! Run with `cargo bench -p sluice-core --bench cycle`. Throughput is in decisions (jobs) per
//! second. Inputs are built deterministically (an LCG) outside the timed closure.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_core::capacity::{NodeCapacity, Snapshot};
use sluice_core::cycle::{Candidate, CycleInput, HeadPolicy, NamespacePolicy, schedule};
use sluice_core::job::{Demand, PodDemand, Resources, Role};

const NAMESPACES: usize = 1_000;
const NODES: usize = 200;

/// Knuth's MMIX linear congruential generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

struct World {
    candidates: Vec<Candidate>,
    snapshot: Snapshot,
    held: BTreeMap<String, Resources>,
    namespaces: BTreeMap<String, NamespacePolicy>,
}

fn world(n: usize, all_best_effort: bool) -> World {
    let mut rng = Lcg(42);
    // 32 cores / 128 GiB nodes, 110 pod slots, partly used.
    let allocatable: Vec<NodeCapacity> = (0..NODES)
        .map(|i| NodeCapacity::new(format!("node-{i:03}"), 32_000, 128 * 1024, Some(110)))
        .collect();
    let nodes: Vec<NodeCapacity> = allocatable
        .iter()
        .map(|a| {
            let used_cpu = rng.range(0, 32) * 1000;
            let used_mem = rng.range(0, 128) * 1024;
            NodeCapacity::new(
                a.name.clone(),
                a.cpu_milli - used_cpu,
                a.mem_mib - used_mem,
                Some(110 - rng.range(0, 40) as u32),
            )
        })
        .collect();
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("team-{i:04}")).collect();
    let namespaces = names
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let policy = NamespacePolicy {
                weight: 1 + (i % 3) as u32,
                policy: if i % 2 == 0 && !all_best_effort {
                    HeadPolicy::Strict
                } else {
                    HeadPolicy::BestEffort
                },
            };
            (ns.clone(), policy)
        })
        .collect();
    let held = names
        .iter()
        .step_by(4)
        .map(|ns| {
            (
                ns.clone(),
                Resources::new(rng.range(0, 64) * 1000, rng.range(0, 256) * 1024),
            )
        })
        .collect();
    let candidates = (0..n)
        .map(|i| {
            let ns = &names[rng.range(0, NAMESPACES as u64 - 1) as usize];
            let driver_cpu = rng.range(1, 4) * 1000;
            let driver_mem = rng.range(1, 8) * 1024 + 384;
            let executors = rng.range(1, 8) as u32;
            let exec_cpu = rng.range(1, 8) * 1000;
            let exec_mem = rng.range(2, 16) * 1024 + 384;
            Candidate {
                id: format!("job-{i:07}"),
                namespace: ns.clone(),
                level: usize::from(rng.range(0, 3) == 0),
                enqueued_at_ms: rng.range(0, 1_000_000) as i64,
                demand: Demand {
                    pods: vec![
                        PodDemand {
                            role: Role::Driver,
                            count: 1,
                            cpu_milli: driver_cpu,
                            mem_mib: driver_mem,
                        },
                        PodDemand {
                            role: Role::Executor,
                            count: executors,
                            cpu_milli: exec_cpu,
                            mem_mib: exec_mem,
                        },
                    ],
                },
                constraints: None,
            }
        })
        .collect();
    World {
        candidates,
        snapshot: Snapshot {
            available: true,
            nodes,
            allocatable,
        },
        held,
        namespaces,
    }
}

fn bench_cycle(c: &mut Criterion) {
    // Half the namespaces strict, half best-effort.
    run_group(c, "cycle", &[1_000, 10_000, 100_000], false);
    // Worst case: every namespace best-effort, so every job gets a fit attempt.
    run_group(c, "cycle_best_effort", &[100_000], true);
}

fn run_group(c: &mut Criterion, name: &str, sizes: &[usize], all_best_effort: bool) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for &n in sizes {
        let w = world(n, all_best_effort);
        let input = CycleInput {
            candidates: &w.candidates,
            snapshot: &w.snapshot,
            held: &w.held,
            namespaces: &w.namespaces,
            default_policy: NamespacePolicy::default(),
        };
        let out = schedule(&input);
        eprintln!(
            "{name}/{n}: {} admitted, {} waiting",
            out.admitted.len(),
            out.waiting.len()
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| schedule(black_box(input)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_cycle);
criterion_main!(benches);
