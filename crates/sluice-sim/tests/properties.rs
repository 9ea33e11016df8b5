//! The properties issue 15 asks the report to show, asserted on a small generated trace (a few
//! hundred jobs of the documented mix at 90% offered load on the sample cluster, several
//! seeds): no half-started job under any sluice policy and some under the no-admission
//! baseline; backfill never makes a job wait longer than under strict by more than the
//! documented bound; with aging no aged job starts past its per-job bound ([`sluice_sim::aging`]); high
//! jobs wait less than normal ones. Not timed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice_sim::generate::{GenConfig, generate};
use sluice_sim::{BaselineConfig, Cluster, Policy, Summary, Workload};

fn of(summaries: &[Summary], p: Policy) -> &Summary {
    summaries.iter().find(|s| s.policy == p).unwrap()
}

fn p95(s: &Summary, level: &str) -> i64 {
    s.by_level
        .iter()
        .find(|(l, _)| l == level)
        .map(|(_, w)| w.p95_ms)
        .unwrap()
}

#[test]
fn the_issue_properties_hold_on_small_generated_traces() {
    let cluster = Cluster::parse(include_str!("../../../examples/sim/cluster.toml")).unwrap();
    let bound = cluster.backfill.max_head_wait_ms.unwrap();
    for seed in [1, 2, 3] {
        let cfg = GenConfig {
            jobs: 400,
            seed,
            ..GenConfig::default()
        }
        .for_load(&cluster, 0.9)
        .unwrap();
        let trace = generate(&cfg).unwrap();
        let w = Workload::new(&trace, &cluster).unwrap();
        let longest = w.jobs.iter().map(|j| j.duration_ms).max().unwrap();
        let policies = [
            Policy::NoAdmission,
            Policy::Strict,
            Policy::BestEffort,
            Policy::Backfill,
            Policy::StrictAging,
            Policy::BackfillAging,
        ];
        let s = sluice_sim::compare(&w, &cluster, &policies, BaselineConfig::default());
        let at = format!("seed {seed}");
        for p in &policies[1..] {
            let x = of(&s, *p);
            assert_eq!(x.half_started, 0, "{at}: {p}");
            assert_eq!(x.ran + x.refused, x.jobs, "{at}: {p}: every job ran");
        }
        assert!(
            of(&s, Policy::NoAdmission).half_started > 0,
            "{at}: the baseline half-starts jobs"
        );
        let backfill = of(&s, Policy::Backfill);
        let extra = backfill.vs_strict.as_ref().unwrap().max_extra_wait_ms;
        assert!(
            extra <= bound + longest,
            "{at}: backfill made a job wait {extra} ms longer than strict (bound {})",
            bound + longest
        );
        for p in [Policy::StrictAging, Policy::BackfillAging] {
            let a = of(&s, p).aging.as_ref().expect("aging checked");
            assert_eq!(a.longest_run_ms, longest);
            // The per-job bound (crates/sluice-sim/src/aging.rs): the last start of the jobs of
            // its namespace ahead of it when it reached the top level, or that time, plus the
            // longest run. (A + L, which ignores the jobs ahead, is missed by one job on seed 1
            // under backfill+aging.)
            assert_eq!(
                a.over_bound, 0,
                "{at}: {p}: {} of {} aged jobs started past their bound (the worst {} ms past, {})",
                a.over_bound, a.aged, a.max_past_bound_ms, a.worst_past_bound
            );
            assert!(a.over_bound <= a.over_a_plus_l, "{at}: {p}: {a:?}");
        }
        // Priority works: high jobs wait less than normal ones. (Not 1/10 of it on every
        // trace: without preemption a high job still waits for room to free, and when normal
        // waits are short the two are close; see docs/scheduling.md for the sample's figures.)
        for p in [Policy::Strict, Policy::Backfill] {
            let x = of(&s, p);
            assert!(
                p95(x, "high") < p95(x, "normal"),
                "{at}: {p}: high p95 {} normal p95 {}",
                p95(x, "high"),
                p95(x, "normal")
            );
        }
    }
}
