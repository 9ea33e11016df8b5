use super::*;
use crate::job::{PodDemand, Role};
use crate::usage::UsageParser;

/// A real event log (`pi.py 4` on `local[2]`, Spark 4), shared with the parser's tests.
const PI: &str = include_str!("../usage/fixtures/pi-local.jsonl");

fn demand(driver_mib: u64, executors: u32, exec_mib: u64) -> Demand {
    Demand {
        pods: vec![
            PodDemand {
                role: Role::Driver,
                count: 1,
                cpu_milli: 1000,
                mem_mib: driver_mib,
            },
            PodDemand {
                role: Role::Executor,
                count: executors,
                cpu_milli: 1000,
                mem_mib: exec_mib,
            },
        ],
    }
}

fn shape(driver: u64, executor: u64, cores: u64, executors: u64) -> SparkShape {
    SparkShape {
        driver_heap_mib: driver,
        executor_heap_mib: executor,
        executor_cores: cores,
        executors,
    }
}

pub(crate) fn record(ns: &str, name: &str, hours: f64, measured: Option<Measured>) -> UsageRecord {
    UsageRecord {
        job_id: format!("{name}-job"),
        attempt: 1,
        namespace: ns.into(),
        name: name.into(),
        schedule: None,
        started_at_ms: 1_700_000_000_000,
        ended_at_ms: 1_700_000_000_000 + (hours * 3_600_000.0) as i64,
        outcome: Outcome::Succeeded,
        // driver 1g + 384m, 2 executors of 2g + 384m: 3 cores, 6272 MiB (6.125 GiB).
        requested: Requested::new(&demand(1408, 2, 2432), Some(shape(1024, 2048, 1, 2))),
        measured,
        note: None,
    }
}

fn peaks(heap_mib: u64, rss_mib: u64) -> JvmPeaks {
    JvmPeaks {
        heap: heap_mib * MIB,
        off_heap: 0,
        execution: 0,
        rss: rss_mib * MIB,
    }
}

#[test]
fn a_real_event_log_becomes_measured_figures() {
    let mut p = UsageParser::new();
    for l in PI.lines() {
        p.line(l);
    }
    let u = p.finish();
    let m = Measured::from_event_log(&u, 0);
    assert_eq!(m.source, "eventlog");
    assert!(m.complete);
    assert_eq!(m.executors_used, 0, "local mode: no executors");
    let d = m.driver.expect("driver peaks");
    assert_eq!(d.heap, 98939552);
    assert_eq!(d.rss, u.executors["driver"].peaks.process_rss());
    assert_eq!(
        m.executor, m.driver,
        "local mode: the tasks ran in the driver"
    );
    assert!((m.task_cpu_seconds - 0.283790628).abs() < 1e-9);
    assert!((m.task_seconds - 47.458).abs() < 1e-9);
    assert!((m.gc_seconds - 0.574).abs() < 1e-9);
}

#[test]
fn executors_count_their_lifetimes_and_the_largest_peak() {
    let mut p = UsageParser::new();
    for l in [
        r#"{"Event":"SparkListenerApplicationStart","App ID":"app-1","Timestamp":1000}"#,
        r#"{"Event":"SparkListenerExecutorAdded","Timestamp":2000,"Executor ID":"1","Executor Info":{"Total Cores":2}}"#,
        r#"{"Event":"SparkListenerExecutorAdded","Timestamp":3000,"Executor ID":"2","Executor Info":{"Total Cores":2}}"#,
        r#"{"Event":"SparkListenerStageExecutorMetrics","Executor ID":"1","Executor Metrics":{"JVMHeapMemory":300,"ProcessTreeJVMRSSMemory":900}}"#,
        r#"{"Event":"SparkListenerStageExecutorMetrics","Executor ID":"2","Executor Metrics":{"JVMHeapMemory":500,"OnHeapExecutionMemory":700}}"#,
        r#"{"Event":"SparkListenerExecutorRemoved","Timestamp":5000,"Executor ID":"1"}"#,
        r#"{"Event":"SparkListenerApplicationEnd","Timestamp":11000}"#,
    ] {
        p.line(l);
    }
    let m = Measured::from_event_log(&p.finish(), 99_000);
    assert_eq!(m.executors_used, 2);
    // 1: 2 s -> 5 s; 2: 3 s -> the application's end at 11 s.
    assert!((m.executor_seconds - 11.0).abs() < 1e-9);
    let x = m.executor.expect("executor peaks");
    assert_eq!((x.heap, x.execution, x.rss), (500, 700, 900));
    assert_eq!(x.heap_need(), 700);
    assert_eq!(m.driver, None);
}

#[test]
fn efficiency_table() {
    struct Case {
        name: &'static str,
        measured: Option<Measured>,
        want_used_core_hours: f64,
        want_used_gib_hours: f64,
        want_exec_headroom: Option<f64>,
    }
    let spark = Measured {
        source: "eventlog".into(),
        complete: true,
        driver: Some(peaks(256, 512)),
        executor: Some(peaks(512, 1024)),
        executors_used: 2,
        executor_seconds: 2.0 * 3600.0,
        task_cpu_seconds: 1800.0,
        ..Measured::default()
    };
    let cases = [
        Case {
            name: "not measured: only what was held",
            measured: None,
            want_used_core_hours: 0.0,
            want_used_gib_hours: 0.0,
            want_exec_headroom: None,
        },
        Case {
            name: "spark: driver rss for the run, executor rss for its lifetimes",
            measured: Some(spark.clone()),
            want_used_core_hours: 0.5,
            want_used_gib_hours: 0.5 + 2.0,
            want_exec_headroom: Some(0.25),
        },
        Case {
            name: "the process's cpu time wins when larger than the tasks'",
            measured: Some(spark.clone().with_process(ProcessUsage {
                peak_rss_bytes: 0,
                cpu_seconds: 3600.0,
            })),
            want_used_core_hours: 1.0,
            want_used_gib_hours: 2.5,
            want_exec_headroom: Some(0.25),
        },
    ];
    let prices = Prices {
        core_hour: 0.1,
        gib_hour: 0.01,
    };
    for c in cases {
        let r = record("ns", "j", 1.0, c.measured);
        let e = efficiency(&r, &prices);
        assert!((e.held_core_hours - 3.0).abs() < 1e-9, "{}", c.name);
        assert!((e.held_gib_hours - 6.125).abs() < 1e-9, "{}", c.name);
        assert!((e.cost - (0.3 + 0.06125)).abs() < 1e-9, "{}", c.name);
        assert!(
            (e.used_core_hours - c.want_used_core_hours).abs() < 1e-9,
            "{}: {e:?}",
            c.name
        );
        assert!(
            (e.used_gib_hours - c.want_used_gib_hours).abs() < 1e-9,
            "{}: {e:?}",
            c.name
        );
        assert_eq!(e.executor_headroom, c.want_exec_headroom, "{}", c.name);
        // Waste is claimed only for measured runs.
        let idle = match &r.measured {
            Some(_) => prices.of(3.0 - e.used_core_hours, 6.125 - e.used_gib_hours),
            None => 0.0,
        };
        assert!((e.waste - idle).abs() < 1e-9, "{}", c.name);
    }
}

#[test]
fn a_command_job_is_measured_by_its_process() {
    let mut r = record(
        "ns",
        "cmd",
        2.0,
        Some(Measured::from_process(ProcessUsage {
            peak_rss_bytes: 512 * MIB,
            cpu_seconds: 1800.0,
        })),
    );
    r.requested = Requested::new(
        &Demand {
            pods: vec![PodDemand {
                role: Role::Task,
                count: 1,
                cpu_milli: 2000,
                mem_mib: 1024,
            }],
        },
        None,
    );
    let e = efficiency(&r, &Prices::default());
    assert!((e.held_core_hours - 4.0).abs() < 1e-9);
    assert!((e.used_core_hours - 0.5).abs() < 1e-9);
    assert_eq!(e.cpu_utilisation, Some(0.125));
    assert!((e.used_gib_hours - 1.0).abs() < 1e-9);
    assert_eq!(e.process_headroom, Some(0.5));
    assert_eq!(e.cost, 0.0);
}

#[test]
fn aggregate_groups_and_prices_per_namespace() {
    let m = Measured {
        task_cpu_seconds: 3600.0,
        ..Measured::default()
    };
    let mut a2 = record("a", "x", 1.0, Some(m.clone()));
    a2.started_at_ms += 86_400_000;
    a2.ended_at_ms += 86_400_000;
    a2.schedule = Some("nightly".into());
    let runs = vec![
        record("a", "x", 1.0, Some(m)),
        a2,
        record("a", "y", 2.0, None),
        record("b", "x", 1.0, None),
    ];
    let prices = |ns: &str| Prices {
        core_hour: if ns == "b" { 1.0 } else { 0.0 },
        gib_hour: 0.0,
    };
    let by_job = aggregate(&runs, GroupBy::Job, &prices);
    let keys: Vec<(&str, &str, u64, u64)> = by_job
        .iter()
        .map(|a| {
            (
                a.namespace.as_str(),
                a.key.as_str(),
                a.runs,
                a.measured_runs,
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![("a", "x", 2, 2), ("a", "y", 1, 0), ("b", "x", 1, 0)]
    );
    // Two measured runs of 3 held core-hours, 1 used each.
    assert_eq!(by_job[0].cpu_utilisation, Some(2.0 / 6.0));
    assert_eq!(by_job[1].cpu_utilisation, None);
    assert_eq!(by_job[2].cost, 3.0);
    let by_ns = aggregate(&runs, GroupBy::Namespace, &prices);
    assert_eq!(by_ns.len(), 2);
    assert_eq!((by_ns[0].runs, by_ns[0].cost), (3, 0.0));
    let by_schedule = aggregate(&runs, GroupBy::Schedule, &prices);
    assert_eq!(by_schedule.len(), 1, "runs without a schedule are left out");
    assert_eq!(by_schedule[0].key, "nightly");
    let by_day = aggregate(&runs, GroupBy::Day, &prices);
    let days: Vec<&str> = by_day.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(days, vec!["2023-11-14", "2023-11-15", "2023-11-14"]);
}
