use proptest::prelude::*;

use super::*;
use crate::cost::tests::record;
use crate::cost::{JvmPeaks, Measured};

fn measured(driver_mib: u64, exec_mib: u64, cpu_seconds: f64) -> Measured {
    let p = |mib: u64| JvmPeaks {
        heap: mib * MIB,
        ..JvmPeaks::default()
    };
    Measured {
        source: "eventlog".into(),
        complete: true,
        driver: Some(p(driver_mib)),
        executor: Some(p(exec_mib)),
        executors_used: 2,
        executor_seconds: 7200.0,
        task_cpu_seconds: cpu_seconds,
        ..Measured::default()
    }
}

/// `n` one-hour runs of a job asking for a 1g driver and 2 executors of 2g with 1 core each,
/// whose executor peaks are `exec_peaks` (cycled) and driver peak 300 MiB.
fn runs(n: usize, exec_peaks: &[u64], cpu_seconds: f64) -> Vec<UsageRecord> {
    (0..n)
        .map(|i| {
            let mut r = record(
                "ns",
                "etl",
                1.0,
                Some(measured(300, exec_peaks[i % exec_peaks.len()], cpu_seconds)),
            );
            r.job_id = format!("job{i}");
            r.started_at_ms += i as i64 * 86_400_000;
            r.ended_at_ms += i as i64 * 86_400_000;
            r
        })
        .collect()
}

const PRICES: Prices = Prices {
    core_hour: 0.04,
    gib_hour: 0.005,
};

fn cfg(min_runs: usize) -> AdviceConfig {
    AdviceConfig {
        min_runs,
        ..AdviceConfig::default()
    }
}

#[test]
fn advised_heap_table() {
    // (peak MiB, factor, want MiB)
    let cases = [
        (0, 1.2, MIN_HEAP_MIB),
        (95, 1.2, MIN_HEAP_MIB),
        (500, 1.2, 640),    // 600 -> 640
        (1000, 1.2, 1280),  // 1200 -> 1280
        (1024, 1.0, 1024),  // already a step
        (1025, 1.0, 1152),  // never below the peak
        (1000, 0.5, 1024),  // a factor below 1 counts as 1
        (3000, 1.25, 3840), // 3750 -> 3840
    ];
    for (peak, factor, want) in cases {
        assert_eq!(
            advised_heap_mib(peak, factor),
            want,
            "peak {peak} x {factor}"
        );
    }
}

#[test]
fn spark_mem_table() {
    for (mib, want) in [(512, "512m"), (1024, "1g"), (1152, "1152m"), (4096, "4g")] {
        assert_eq!(spark_mem(mib), want);
    }
}

#[test]
fn an_over_provisioned_job_is_advised_down_with_a_saving() {
    let rs = runs(5, &[400, 420, 410], 360.0);
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(a.status, AdviceStatus::Advised);
    assert_eq!(a.based_on.len(), 5);
    assert_eq!(a.executor_peak_mib, 420);
    assert_eq!(a.driver_peak_mib, 300);
    let rec = a.recommended.expect("advice");
    // 420 x 1.2 = 504 -> 512; driver 360 -> 512.
    assert_eq!(rec.executor_heap_mib, 512);
    assert_eq!(rec.driver_heap_mib, 512);
    // 360 s of CPU in 3 held core-hours: 3% busy, down to 1 core (it had 1).
    assert_eq!(rec.executor_cores, 1);
    // Per run: (1024-512) + 2 x (2048-512) = 3584 MiB = 3.5 GiB for an hour; 5 runs.
    assert!((a.monthly_saving.gib_hours - 17.5).abs() < 1e-9, "{a:?}");
    assert!((a.monthly_saving.cost - 17.5 * 0.005).abs() < 1e-9);
    assert_eq!(a.confidence, Confidence::Medium);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
}

#[test]
fn the_saving_is_scaled_to_a_month() {
    let rs = runs(5, &[400], 360.0);
    let month = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    let week = advise(
        "ns",
        "etl",
        GroupBy::Job,
        &rs,
        &cfg(5),
        &PRICES,
        7 * 86_400_000,
    );
    let ratio = week.monthly_saving.gib_hours / month.monthly_saving.gib_hours;
    assert!((ratio - 30.0 / 7.0).abs() < 1e-9);
}

#[test]
fn too_few_runs_give_no_advice() {
    let rs = runs(4, &[400], 360.0);
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(a.status, AdviceStatus::NotEnoughRuns);
    assert_eq!(a.recommended, None);
    assert_eq!(a.monthly_saving, Saving::default());
    assert!(a.warnings.iter().any(|w| w.contains("advice needs 5")));
}

#[test]
fn a_job_that_ran_out_of_memory_is_never_advised_down() {
    let mut rs = runs(5, &[400], 360.0);
    rs[2].outcome = Outcome::Oom;
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    let rec = a.recommended.expect("advice");
    assert_eq!(rec.executor_heap_mib, 2048);
    assert_eq!(rec.driver_heap_mib, 1024);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("job2/1 ran out of memory"))
    );
    assert!(a.monthly_saving.gib_hours <= 0.0);
}

#[test]
fn a_cancelled_run_does_not_count_but_its_peak_is_a_floor() {
    // Five runs peaking at 400 MiB and a sixth, cancelled, that had reached 1500 MiB.
    let mut rs = runs(6, &[400], 360.0);
    rs[5].outcome = Outcome::Cancelled;
    rs[5].measured = Some(measured(300, 1500, 10.0));
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    let rec = a.recommended.expect("advice");
    assert_eq!(a.based_on.len(), 5, "{:?}", a.based_on);
    assert!(
        !a.based_on.contains(&"job5/1".to_string()),
        "{:?}",
        a.based_on
    );
    assert_eq!(a.executor_peak_mib, 1500);
    assert!(rec.executor_heap_mib >= 1500, "{rec:?}");
    // Alone, the cancelled run is not enough.
    let mut rs = runs(5, &[400], 360.0);
    rs[4].outcome = Outcome::Cancelled;
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(a.status, AdviceStatus::NotEnoughRuns, "{a:?}");
}

#[test]
fn outcomes_round_trip_by_name() {
    for o in [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Oom,
        Outcome::Cancelled,
    ] {
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(json, format!("\"{}\"", o.as_str()));
    }
    assert_eq!(Outcome::parse("killed"), None);
}

#[test]
fn runs_near_their_limit_are_advised_up_with_a_warning() {
    let rs = runs(5, &[1950], 360.0);
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    let rec = a.recommended.expect("advice");
    // 1950 x 1.2 = 2340 -> 2432: above the request.
    assert_eq!(rec.executor_heap_mib, 2432);
    assert!(a.warnings.iter().any(|w| w.contains("near its limit")));
    assert!(
        a.monthly_saving.gib_hours < 0.0,
        "a negative saving: it costs more"
    );
}

#[test]
fn busy_cores_are_kept_and_idle_ones_advised_down() {
    let mut rs = runs(5, &[400], 3.0 * 3600.0 * 0.8);
    for r in &mut rs {
        r.requested.spark = Some(SparkShape {
            executor_cores: 4,
            ..r.requested.spark.unwrap_or_default()
        });
    }
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(a.recommended.map(|r| r.executor_cores), Some(4));
    let rs: Vec<_> = rs
        .into_iter()
        .map(|mut r| {
            if let Some(m) = &mut r.measured {
                m.task_cpu_seconds = 3.0 * 3600.0 * 0.3;
            }
            r
        })
        .collect();
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    // 4 x 0.3 x 1.2 = 1.44 -> 2.
    assert_eq!(a.recommended.map(|r| r.executor_cores), Some(2));
}

#[test]
fn confidence_table() {
    // (runs, peaks, complete, want)
    let cases: [(usize, &[u64], bool, Confidence); 4] = [
        (10, &[400, 410], true, Confidence::High),
        (5, &[400, 410], true, Confidence::Medium),
        (10, &[200, 500], true, Confidence::Low),
        (10, &[400], false, Confidence::Low),
    ];
    for (n, peaks, complete, want) in cases {
        let mut rs = runs(n, peaks, 360.0);
        for r in &mut rs {
            if let Some(m) = &mut r.measured {
                m.complete = complete;
            }
        }
        let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
        assert_eq!(
            a.confidence, want,
            "{n} runs, peaks {peaks:?}, complete {complete}"
        );
    }
}

#[test]
fn runs_without_memory_peaks_do_not_count() {
    let mut rs = runs(5, &[400], 360.0);
    rs[4].measured = Some(measured(0, 0, 360.0));
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(a.status, AdviceStatus::NotEnoughRuns, "{a:?}");
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("job4/1 has no memory peaks")),
        "{:?}",
        a.warnings
    );
}

#[test]
fn a_command_job_gets_no_spark_advice() {
    let mut rs = runs(5, &[400], 360.0);
    for r in &mut rs {
        r.requested.spark = None;
    }
    let a = advise("ns", "etl", GroupBy::Job, &rs, &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(a.status, AdviceStatus::NotSpark);
    let none = advise("ns", "etl", GroupBy::Job, &[], &cfg(5), &PRICES, MONTH_MS);
    assert_eq!(none.status, AdviceStatus::NotEnoughRuns);
}

#[test]
fn applying_advice_sets_the_specs_own_fields() {
    use crate::sizing::spark_shape;
    let mut spec = SparkSpec::default();
    spec.executor.memory = Some(crate::spec::Text("2g".into()));
    spec.spark_conf
        .insert("spark.driver.memory".into(), crate::spec::Text("4g".into()));
    let rec = SparkShape {
        driver_heap_mib: 512,
        executor_heap_mib: 768,
        executor_cores: 1,
        executors: 2,
    };
    let changed = apply_to(&mut spec, &rec);
    assert_eq!(
        changed,
        [
            "driver.memory default -> 512m",
            "executor.memory 2g -> 768m",
            "executor.cores default -> 1"
        ]
    );
    // The spec's fields win over its sparkConf: the shape Spark will get is the advice.
    let got = spark_shape(&spec, "spark").unwrap();
    assert_eq!(
        (
            got.driver_heap_mib,
            got.executor_heap_mib,
            got.executor_cores
        ),
        (512, 768, 1)
    );
    assert!(
        apply_to(&mut spec, &rec).is_empty(),
        "applied twice: nothing changes"
    );
}

proptest! {
    #[test]
    fn advice_is_never_below_a_peak_and_never_down_after_an_oom(
        peaks in prop::collection::vec(0u64..8192, 1..12),
        factor in 1.0f64..2.0,
        oom in any::<bool>(),
    ) {
        let mut rs = runs(peaks.len(), &peaks, 360.0);
        if oom {
            rs[0].outcome = Outcome::Oom;
        }
        let c = AdviceConfig { min_runs: 1, safety_factor: factor, near_limit: 0.9 };
        let a = advise("ns", "etl", GroupBy::Job, &rs, &c, &PRICES, MONTH_MS);
        let rec = a.recommended.expect("advice");
        let max = peaks.iter().copied().max().unwrap_or(0);
        prop_assert!(rec.executor_heap_mib >= max);
        prop_assert!(rec.executor_heap_mib.is_multiple_of(STEP_MIB));
        prop_assert!(rec.driver_heap_mib >= 300);
        if oom {
            prop_assert!(rec.executor_heap_mib >= 2048);
            prop_assert!(rec.driver_heap_mib >= 1024);
        }
    }
}
