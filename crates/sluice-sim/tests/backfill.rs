//! Backfill and aging on the shipped sample trace and cluster (examples/sim): the figures the
//! report shows, computed here by replaying, and checked against the bounds docs/scheduling.md
//! documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice_sim::{BaselineConfig, Cluster, Policy, Summary, Workload};

fn sample() -> (Cluster, Workload) {
    let cluster = Cluster::parse(include_str!("../../../examples/sim/cluster.toml")).unwrap();
    let trace = sluice_sim::trace::parse(include_str!("../../../examples/sim/trace.csv")).unwrap();
    let w = Workload::new(&trace, &cluster).unwrap();
    (cluster, w)
}

fn of(summaries: &[Summary], p: Policy) -> &Summary {
    summaries.iter().find(|s| s.policy == p).unwrap()
}

/// The documented bound on how much longer a job waits under backfill than under strict:
/// `scheduler.backfill_max_wait` plus the longest run time in the workload.
fn bound_ms(cluster: &Cluster, w: &Workload) -> i64 {
    let max_wait = cluster
        .backfill
        .max_head_wait_ms
        .expect("the sample sets backfill_max_wait");
    max_wait + w.jobs.iter().map(|j| j.duration_ms).max().unwrap_or(0)
}

#[test]
fn backfill_uses_more_of_the_cluster_than_strict_and_starves_less_than_best_effort() {
    let (cluster, w) = sample();
    let policies = [Policy::Strict, Policy::BestEffort, Policy::Backfill];
    let s = sluice_sim::compare(&w, &cluster, &policies, BaselineConfig::default());
    let (strict, best, backfill) = (
        of(&s, Policy::Strict),
        of(&s, Policy::BestEffort),
        of(&s, Policy::Backfill),
    );
    assert_eq!(backfill.half_started, 0);
    assert_eq!(backfill.ran + backfill.refused, backfill.jobs);
    assert!(
        backfill.utilisation > strict.utilisation,
        "utilisation: backfill {} strict {}",
        backfill.utilisation,
        strict.utilisation
    );
    assert!(
        backfill.contended_utilisation > strict.contended_utilisation,
        "utilisation while jobs wait: backfill {} strict {}",
        backfill.contended_utilisation,
        strict.contended_utilisation
    );
    assert!(backfill.waits.p95_ms < strict.waits.p95_ms);
    assert!(
        backfill.starvation_ms < best.starvation_ms,
        "the reservation keeps big jobs from starving: backfill {} best-effort {}",
        backfill.starvation_ms,
        best.starvation_ms
    );
    assert!(strict.vs_strict.as_ref().unwrap().max_extra_wait_ms == 0);
}

#[test]
fn backfill_extra_wait_over_strict_stays_within_the_bound_even_with_wrong_estimates() {
    let (cluster, w) = sample();
    let bound = bound_ms(&cluster, &w);
    let policies = [Policy::Strict, Policy::Backfill, Policy::BestEffort];
    for factor in [1.0, 0.5, 2.0] {
        let s = sluice_sim::compare_estimated(
            &w,
            &cluster,
            &policies,
            BaselineConfig::default(),
            factor,
        );
        let backfill = of(&s, Policy::Backfill);
        let v = backfill.vs_strict.as_ref().unwrap();
        assert!(
            v.max_extra_wait_ms <= bound,
            "estimates x{factor}: job {} waited {} ms longer than under strict, bound {bound}",
            v.max_extra_job,
            v.max_extra_wait_ms
        );
        assert_eq!(backfill.half_started, 0, "x{factor}");
        // Best-effort, which has no reservation, is the contrast: it goes beyond the bound.
        let best = of(&s, Policy::BestEffort).vs_strict.as_ref().unwrap();
        assert!(best.max_extra_wait_ms > bound, "x{factor}: {best:?}");
    }
}

#[test]
fn aging_shortens_the_longest_waits() {
    let (cluster, w) = sample();
    assert!(
        !cluster.aging.is_empty(),
        "the sample sets [scheduler.aging]"
    );
    let policies = [
        Policy::Strict,
        Policy::StrictAging,
        Policy::Backfill,
        Policy::BackfillAging,
    ];
    let s = sluice_sim::compare(&w, &cluster, &policies, BaselineConfig::default());
    for (plain, aged) in [
        (Policy::Strict, Policy::StrictAging),
        (Policy::Backfill, Policy::BackfillAging),
    ] {
        let (a, b) = (of(&s, plain), of(&s, aged));
        assert_eq!(b.half_started, 0);
        let normal = |x: &Summary| {
            x.by_level
                .iter()
                .find(|(l, _)| l == "normal")
                .unwrap()
                .1
                .max_ms
        };
        assert!(
            normal(b) < normal(a),
            "{aged}: longest normal wait {} not below {plain}'s {}",
            normal(b),
            normal(a)
        );
    }
}
