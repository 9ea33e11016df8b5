//! Start-time estimates as the server computes them (`crates/sluice-server/src/eta.rs`): 300
//! waiting jobs (10 namespaces x 30, the server's bound), and 1,000 (x 100), on a full 200-node cluster whose 400 running jobs
//! end over the next two hours, up to 2,000 forward cycles.
//!
//! Run with `cargo bench -p sluice-core --bench eta`. Throughput is in jobs estimated per
//! second. Inputs are built deterministically (an LCG) outside the timed closure.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_core::capacity::{NodeCapacity, Snapshot};
use sluice_core::cycle::{
    BackfillSettings, Candidate, CycleInput, HeadPolicy, NamespacePolicy, RunningJob, Timing,
    estimate_starts,
};
use sluice_core::job::{Demand, PodDemand, Resources, Role};

const NODES: usize = 200;
const NAMESPACES: usize = 10;
const MIN: i64 = 60_000;

struct Lcg(u64);

impl Lcg {
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo + 1)
    }
}

fn demand(driver: u64, executors: u32, each: u64) -> Demand {
    Demand {
        pods: vec![
            PodDemand {
                role: Role::Driver,
                count: 1,
                cpu_milli: driver * 1000,
                mem_mib: driver * 4096,
            },
            PodDemand {
                role: Role::Executor,
                count: executors,
                cpu_milli: each * 1000,
                mem_mib: each * 4096,
            },
        ],
    }
}

struct World {
    candidates: Vec<Candidate>,
    expected: Vec<Option<i64>>,
    snapshot: Snapshot,
    running: Vec<RunningJob>,
}

fn world(per_namespace: usize) -> World {
    let mut rng = Lcg(7);
    let allocatable: Vec<NodeCapacity> = (0..NODES)
        .map(|_| NodeCapacity::new("", 32_000, 128 * 1024, Some(110)))
        .collect();
    // Two running jobs per node, each holding half of it, ending over the next two hours.
    let mut running = Vec::new();
    for n in 0..NODES {
        for _ in 0..2 {
            running.push(RunningJob {
                end_ms: rng.range(1, 120) as i64 * MIN,
                namespace: format!("ns-{}", rng.range(0, NAMESPACES as u64 - 1)),
                pods: vec![(n, Resources::new(16_000, 64 * 1024))],
            });
        }
    }
    let nodes: Vec<NodeCapacity> = allocatable
        .iter()
        .map(|a| NodeCapacity::new("", 0, 0, a.pods.map(|p| p - 2)))
        .collect();
    let mut candidates = Vec::new();
    let mut expected = Vec::new();
    for ns in 0..NAMESPACES {
        for k in 0..per_namespace {
            let d = match rng.range(0, 9) {
                0..=5 => demand(1, rng.range(1, 4) as u32, 1),
                6..=8 => demand(2, rng.range(4, 16) as u32, 2),
                _ => demand(4, rng.range(16, 48) as u32, 4),
            };
            candidates.push(Candidate {
                id: format!("j-{ns}-{k:04}"),
                namespace: format!("ns-{ns}"),
                level: (k % 5 == 0) as usize,
                enqueued_at_ms: -(k as i64) * 1000,
                demand: d,
                constraints: None,
            });
            expected.push(Some(rng.range(2, 60) as i64 * MIN));
        }
    }
    World {
        candidates,
        expected,
        snapshot: Snapshot {
            available: true,
            nodes,
            allocatable,
        },
        running,
    }
}

fn bench_eta(c: &mut Criterion) {
    let held = BTreeMap::new();
    let namespaces = BTreeMap::new();
    let mut group = c.benchmark_group("estimate_starts");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    // 30 jobs per namespace (300 in all: the server's bound) and 100 (1,000 in all).
    for per_namespace in [30, 100] {
        let w = world(per_namespace);
        group.throughput(Throughput::Elements(w.candidates.len() as u64));
        for policy in [HeadPolicy::Strict, HeadPolicy::Backfill] {
            let input = CycleInput {
                candidates: &w.candidates,
                snapshot: &w.snapshot,
                held: &held,
                namespaces: &namespaces,
                default_policy: NamespacePolicy { weight: 1, policy },
            };
            let timing = Timing {
                now_ms: 0,
                expected_ms: &w.expected,
                max_runtime_ms: &[],
                running: &w.running,
                backfill: BackfillSettings::default(),
                aging: &[],
            };
            let estimated = estimate_starts(&input, &timing, 2000)
                .iter()
                .filter(|e| e.is_some())
                .count();
            eprintln!(
                "{policy}: {estimated} of {} jobs get an estimate",
                w.candidates.len()
            );
            group.bench_with_input(
                BenchmarkId::new(policy.as_str(), w.candidates.len()),
                &(),
                |b, _| b.iter(|| black_box(estimate_starts(&input, &timing, 2000))),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_eta);
criterion_main!(benches);
