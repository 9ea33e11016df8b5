//! Replaying 100,000 generated jobs on a 200-node cluster (32 cores / 128 GiB each) under each
//! policy, in virtual time.
//!
//! Run with `cargo bench -p sluice-sim --bench replay`. Throughput is in jobs replayed per
//! second. The trace (seed 42, offered load 0.85) is generated outside the timed closure.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_core::NodeCapacity;
use sluice_sim::generate::{GenConfig, generate};
use sluice_sim::{BaselineConfig, Cluster, Policy, Workload, replay};

const JOBS: usize = 100_000;
const NODES: usize = 200;

fn bench_replay(c: &mut Criterion) {
    let nodes = (0..NODES)
        .map(|i| NodeCapacity::new(format!("node-{i}"), 32_000, 128 * 1024, Some(110)))
        .collect();
    let cluster = Cluster::of_nodes(nodes);
    let cfg = GenConfig {
        jobs: JOBS,
        seed: 42,
        ..GenConfig::default()
    }
    .for_load(&cluster, 0.85)
    .unwrap();
    let trace = generate(&cfg).unwrap();
    let w = Workload::new(&trace, &cluster).unwrap();
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(JOBS as u64));
    for policy in [
        Policy::Strict,
        Policy::BestEffort,
        Policy::Backfill,
        Policy::NoAdmission,
    ] {
        group.bench_with_input(BenchmarkId::new(policy.as_str(), JOBS), &w, |b, w| {
            b.iter(|| black_box(replay(w, &cluster, policy, BaselineConfig::default())));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_replay);
criterion_main!(benches);
