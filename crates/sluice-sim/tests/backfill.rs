//! Backfill and aging on the shipped sample trace and cluster (examples/sim): the figures the
//! report shows, computed here by replaying, and checked against the bounds docs/scheduling.md
//! documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice_sim::generate::{GenConfig, Loads, Rhythm, generate};
use sluice_sim::window::BatchWindow;
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
    // Over the makespan every policy runs the same work in about the same time, so the
    // utilisation is close to the offered load whatever the policy (docs/scheduling.md): within
    // a point of strict's (88.5% vs 88.7% on the sample). The room backfill wins is the room a
    // backlog leaves idle, below.
    assert!(
        (backfill.utilisation - strict.utilisation).abs() < 0.01,
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

/// The nightly sample: the same cluster, and `examples/sim/nightly.csv` (generated with
/// `--nightly`, seed 7): a quiet day and a batch window from 0h to 6h above the cluster's
/// capacity.
fn nightly() -> (Cluster, Workload) {
    let cluster = Cluster::parse(include_str!("../../../examples/sim/cluster.toml")).unwrap();
    let trace =
        sluice_sim::trace::parse(include_str!("../../../examples/sim/nightly.csv")).unwrap();
    let w = Workload::new(&trace, &cluster).unwrap();
    (cluster, w)
}

fn nightly_compare(
    cluster: &Cluster,
    w: &Workload,
    policies: &[Policy],
    factor: f64,
) -> Vec<Summary> {
    sluice_sim::compare_with(
        w,
        cluster,
        policies,
        &sluice_sim::Compare {
            estimate_factor: factor,
            window: Some(BatchWindow::NIGHTLY),
            ..sluice_sim::Compare::default()
        },
    )
}

#[test]
fn the_nightly_sample_is_what_the_generator_makes_with_the_documented_settings() {
    let cluster = Cluster::parse(include_str!("../../../examples/sim/cluster.toml")).unwrap();
    let rhythm = Rhythm::nightly(&cluster, BatchWindow::NIGHTLY, Loads::default()).unwrap();
    let cfg = GenConfig {
        jobs: 2000,
        seed: 7,
        rhythm: Some(rhythm),
        ..GenConfig::default()
    }
    .for_load(&cluster, 0.9)
    .unwrap();
    let made = sluice_sim::trace::write_csv(&generate(&cfg).unwrap());
    assert!(made == include_str!("../../../examples/sim/nightly.csv"));
}

#[test]
fn on_the_nightly_sample_backfill_gains_five_points_in_the_batch_window_not_over_the_makespan() {
    let (cluster, w) = nightly();
    let policies = [
        Policy::NoAdmission,
        Policy::Strict,
        Policy::BestEffort,
        Policy::Backfill,
    ];
    let s = nightly_compare(&cluster, &w, &policies, 1.0);
    let (strict, best, backfill) = (
        of(&s, Policy::Strict),
        of(&s, Policy::BestEffort),
        of(&s, Policy::Backfill),
    );
    assert!(of(&s, Policy::NoAdmission).half_started > 0);
    for x in [strict, best, backfill] {
        assert_eq!((x.half_started, x.ran), (0, x.jobs), "{}", x.policy);
    }
    let window = |x: &Summary| x.window_utilisation.unwrap();
    // The issue's +5 points: met over the batch window ...
    assert!(
        window(backfill) - window(strict) >= 0.05,
        "window: backfill {} strict {}",
        window(backfill),
        window(strict)
    );
    // ... not over the makespan (the same work in about the same time) nor while jobs wait.
    assert!((backfill.utilisation - strict.utilisation).abs() < 0.01);
    let waiting = backfill.contended_utilisation - strict.contended_utilisation;
    assert!((0.0..0.05).contains(&waiting), "while waiting: {waiting}");
    // Best-effort uses the window best, and starves the nightly jobs longest.
    assert!(window(best) > window(backfill));
    assert!(best.starvation_ms > backfill.starvation_ms);
}

/// Per namespace, the longest a job waited under `a` beyond its wait under `b`, ms.
fn extra_by_namespace(w: &Workload, a: &sluice_sim::Run, b: &sluice_sim::Run) -> Vec<i64> {
    let mut out = vec![0; w.namespaces.len()];
    for ((job, x), y) in w.jobs.iter().zip(&a.jobs).zip(&b.jobs) {
        if let (Some(sx), Some(sy)) = (x.start_ms, y.start_ms) {
            out[job.ns] = out[job.ns].max(sx - sy);
        }
    }
    out
}

#[test]
fn on_the_nightly_sample_backfill_keeps_the_bound_for_every_namespace() {
    let (cluster, w) = nightly();
    let bound = bound_ms(&cluster, &w);
    let b = BaselineConfig::default();
    let strict = sluice_sim::replay(&w, &cluster, Policy::Strict, b);
    let best = sluice_sim::replay(&w, &cluster, Policy::BestEffort, b);
    let best_worst = extra_by_namespace(&w, &best, &strict)
        .into_iter()
        .max()
        .unwrap_or(0);
    // Best-effort, with no reservation, is the contrast: it goes beyond the bound.
    assert!(
        best_worst > bound,
        "best-effort {best_worst} within {bound}"
    );
    for factor in [1.0, 2.0, 0.5] {
        let backfill = sluice_sim::replay_estimated(&w, &cluster, Policy::Backfill, b, factor);
        let extra = extra_by_namespace(&w, &backfill, &strict);
        let worst = extra.iter().max().copied().unwrap_or(0);
        // Every namespace, not only the batch's, with exact and wrong estimates: overdue
        // heads go in fair-share order, pass what their maxRuntime ends in time, and do not
        // block their own backfill namespace, whose later jobs go on beside the hard
        // reservation (docs/scheduling.md, "On the nightly sample").
        assert!(worst <= bound, "x{factor}: {extra:?} past {bound}");
    }
}

#[test]
fn on_the_nightly_sample_aging_keeps_the_per_job_bound_where_a_plus_l_cannot_hold() {
    let (cluster, w) = nightly();
    let s = nightly_compare(
        &cluster,
        &w,
        &[Policy::Strict, Policy::StrictAging, Policy::BackfillAging],
        1.0,
    );
    let check = |p: Policy| of(&s, p).aging.clone().unwrap();
    let (strict, backfill) = (check(Policy::StrictAging), check(Policy::BackfillAging));
    // A + L cannot hold here: the top-level work queued in a namespace ahead of an aged job
    // is more than the cluster runs in L.
    assert!(strict.over_a_plus_l > strict.aged / 4, "{strict:?}");
    assert!(backfill.over_a_plus_l > 0, "{backfill:?}");
    // The per-job bound (the last start of the jobs ahead of it when it reached the top, plus
    // L) holds for every aged job under both: aged heads go before the heads overdue only by
    // backfill's max wait (without that, etl-nightly-71 went 23m 49s past it under
    // backfill+aging: another team's backfill-overdue head went first by fair share).
    assert_eq!(strict.over_bound, 0, "{strict:?}");
    assert_eq!(backfill.over_bound, 0, "{backfill:?}");
}

/// High's share of the workload's CPU-time (cores x run time), and the high p95 wait over the
/// normal p95 wait under `p`.
fn high_share_and_ratio(w: &Workload, s: &[Summary], p: Policy) -> (f64, f64) {
    let cpu_time = |level: usize| -> f64 {
        w.jobs
            .iter()
            .filter(|j| j.level == level)
            .map(|j| j.demand.total().cpu_milli as f64 * j.duration_ms as f64)
            .sum()
    };
    let high = w.levels.iter().position(|l| l == "high").unwrap();
    let all: f64 = (0..w.levels.len()).map(cpu_time).sum();
    let p95 = |level: &str| {
        let waits = &of(s, p)
            .by_level
            .iter()
            .find(|(l, _)| l == level)
            .unwrap()
            .1;
        waits.p95_ms as f64
    };
    (cpu_time(high) / all, p95("high") / p95("normal"))
}

#[test]
fn with_preemption_high_waits_at_most_a_tenth_of_normal_on_both_samples() {
    let policies = [Policy::Strict, Policy::StrictPreemption];
    let (cluster, w) = sample();
    let flat = sluice_sim::compare(&w, &cluster, &policies, BaselineConfig::default());
    let (cluster, nw) = nightly();
    let night = nightly_compare(&cluster, &nw, &policies, 1.0);
    for (name, w, s) in [("flat", &w, &flat), ("nightly", &nw, &night)] {
        let (share, ratio) = high_share_and_ratio(w, s, Policy::StrictPreemption);
        // The condition: high is at most 20% of the load (14.5% and 19.8%).
        assert!(share <= 0.20, "{name}: high share {share}");
        assert!(
            ratio <= 0.1,
            "{name}: strict+preemption high/normal p95 {ratio}"
        );
        // Without preemption a high job waits for room to free: strict misses the target.
        let (_, strict) = high_share_and_ratio(w, s, Policy::Strict);
        assert!(strict > 0.1, "{name}: strict high/normal p95 {strict}");
    }
}
