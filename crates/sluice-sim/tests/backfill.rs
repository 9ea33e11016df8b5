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

/// Jobs all submitted at once, so that nothing unforeseen happens after the estimates.
const BURST: &str = "submit,namespace,level,name,driver_cpu,driver_memory,executor_cpu,executor_memory,executors,duration
0,a,normal,a0,1,1g,1,1g,3,600
0,a,normal,a1,1,1g,1,1g,6,300
0,b,normal,b0,1,1g,1,1g,1,900
0,a,high,a2,1,1g,1,1g,2,120
0,b,normal,b1,1,1g,1,1g,4,450
0,a,normal,a3,1,1g,1,1g,1,60
0,b,high,b2,1,1g,1,1g,7,200
0,b,normal,b3,1,1g,1,1g,2,1000
";

#[test]
fn start_estimates_are_exact_when_run_times_are_and_nothing_else_arrives() {
    let cluster =
        Cluster::parse("nodes = [{ prefix = \"n\", count = 2, cpu = \"4\", memory = \"16g\" }]\n")
            .unwrap();
    let w = Workload::new(&sluice_sim::trace::parse(BURST).unwrap(), &cluster).unwrap();
    let b = BaselineConfig::default();
    for p in [
        Policy::Strict,
        Policy::BestEffort,
        Policy::Backfill,
        Policy::StrictAging,
    ] {
        let plain = sluice_sim::replay_estimated(&w, &cluster, p, b, 1.0);
        let with = sluice_sim::replay_eta(&w, &cluster, p, b, 1.0, true);
        let starts = |r: &sluice_sim::Run| r.jobs.iter().map(|j| j.start_ms).collect::<Vec<_>>();
        assert_eq!(
            starts(&plain),
            starts(&with),
            "{p}: estimating changes nothing"
        );
        let waited: Vec<usize> = (0..w.jobs.len())
            .filter(|&i| with.jobs[i].start_ms != Some(0))
            .collect();
        assert!(!waited.is_empty(), "{p}: some job waits");
        for &i in &waited {
            assert_eq!(with.jobs[i].eta_ms, with.jobs[i].start_ms, "{p}: job {i}");
        }
        let acc = sluice_sim::stats::eta_accuracy(&w, &with).unwrap();
        assert_eq!((acc.jobs, acc.mean_abs_error_ms), (waited.len(), 0), "{p}");
        // Wrong run-time estimates make wrong start estimates.
        let off = sluice_sim::replay_eta(&w, &cluster, p, b, 0.5, true);
        let acc = sluice_sim::stats::eta_accuracy(&w, &off).unwrap();
        assert!(acc.mean_abs_error_ms > 0, "{p}: {acc:?}");
    }
}

#[test]
fn the_report_gives_the_accuracy_of_start_estimates_on_the_sample() {
    let (cluster, w) = sample();
    let s = sluice_sim::compare_eta(
        &w,
        &cluster,
        &[Policy::Strict, Policy::Backfill],
        BaselineConfig::default(),
        1.0,
        true,
    );
    for x in &s {
        let e = x.eta.as_ref().unwrap();
        let waited = w
            .jobs
            .iter()
            .zip(&sluice_sim::replay(&w, &cluster, x.policy, BaselineConfig::default()).jobs)
            .filter(|(j, r)| r.start_ms.is_some_and(|st| st > j.submit_ms))
            .count();
        assert_eq!(e.jobs + e.unestimated, waited, "{}", x.policy);
        assert!(e.within_20pct > 0.0 && e.within_20pct <= 1.0);
    }
    let text = sluice_sim::report::text(&s);
    assert!(text.contains("ETA error (mean)"), "{text}");
}
