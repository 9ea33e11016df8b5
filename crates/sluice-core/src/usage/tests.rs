use super::*;

/// A real event log: `pi.py 4` on `local[2]` with Spark 4 (`spark.eventLog.compress=false`,
/// process-tree metrics on), its environment line removed.
const PI: &str = include_str!("fixtures/pi-local.jsonl");

fn parse(text: &str) -> RunUsage {
    let mut p = UsageParser::new();
    for l in text.lines() {
        p.line(l);
    }
    p.finish()
}

#[test]
fn a_real_event_log_gives_what_the_run_used() {
    let u = parse(PI);
    assert!(u.complete);
    assert_eq!(u.bad_lines, 0);
    assert_eq!(u.app_id.as_deref(), Some("local-1796308770649"));
    assert_eq!(
        (u.start_ms, u.end_ms),
        (Some(1796308759096), Some(1796308868868))
    );
    assert_eq!(
        u.executors.len(),
        1,
        "local mode: the driver runs the tasks"
    );
    let d = &u.executors["driver"];
    assert_eq!(d.cores, Some(2));
    assert_eq!(d.added_ms, Some(1796308772303));
    assert_eq!(d.tasks, 4);
    // Figures computed from the same file with Python's json module.
    assert_eq!(d.run_time_ms, 47458);
    assert_eq!(d.cpu_time_ns, 283790628);
    assert_eq!(d.gc_time_ms, 574);
    assert_eq!(d.peaks.jvm_heap, 98939552);
    assert_eq!(d.peaks.jvm_off_heap, 111524032);
    assert_eq!(d.peaks.jvm_rss, 326758400);
    assert_eq!(d.peaks.python_rss, 190615552);
    assert_eq!(d.peaks.process_rss(), 326758400 + 190615552);
    assert_eq!(u.failed_tasks, 0);
    assert_eq!(u.workers().count(), 0);
}

#[test]
fn a_truncated_log_is_read_to_its_last_whole_line() {
    let cut = &PI[..PI.len() * 2 / 3];
    let u = parse(cut);
    assert!(!u.complete, "no application end");
    assert_eq!(u.bad_lines, 1, "the cut line");
    assert!(u.executors["driver"].tasks < 4);
    assert!(u.executors["driver"].peaks.jvm_heap > 0);
}

#[test]
fn events_table() {
    type Check = fn(&RunUsage) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        (
            "executors added and removed, tasks on each, a failed task",
            r#"{"Event":"SparkListenerExecutorAdded","Timestamp":10,"Executor ID":"1","Executor Info":{"Total Cores":4}}
{"Event":"SparkListenerTaskEnd","Task Info":{"Executor ID":"1","Failed":false},"Task Metrics":{"Executor Run Time":100,"Executor CPU Time":5000,"JVM GC Time":7,"Memory Bytes Spilled":10,"Disk Bytes Spilled":20},"Task Executor Metrics":{"JVMHeapMemory":300}}
{"Event":"SparkListenerTaskEnd","Task Info":{"Executor ID":"1","Failed":true},"Task Metrics":{"Executor Run Time":50,"Executor CPU Time":-1,"JVM GC Time":3}}
{"Event":"SparkListenerExecutorRemoved","Timestamp":99,"Executor ID":"1"}"#,
            |u| {
                let e = &u.executors["1"];
                e.cores == Some(4)
                    && e.added_ms == Some(10)
                    && e.removed_ms == Some(99)
                    && e.tasks == 2
                    && e.run_time_ms == 150
                    && e.cpu_time_ns == 5000
                    && e.gc_time_ms == 10
                    && e.memory_spilled_bytes == 10
                    && e.disk_spilled_bytes == 20
                    && e.peaks.jvm_heap == 300
                    && u.failed_tasks == 1
                    && !u.complete
            },
        ),
        (
            "peaks are the maximum of every source",
            r#"{"Event":"SparkListenerExecutorMetricsUpdate","Executor ID":"2","Executor Metrics Updated":[{"Stage ID":0,"Executor Metrics":{"JVMHeapMemory":500,"OnHeapExecutionMemory":9}}]}
{"Event":"SparkListenerStageExecutorMetrics","Executor ID":"2","Executor Metrics":{"JVMHeapMemory":400,"OnHeapExecutionMemory":12}}"#,
            |u| {
                let p = u.executors["2"].peaks;
                p.jvm_heap == 500 && p.on_heap_execution == 12
            },
        ),
        (
            "garbage and unknown events are skipped",
            "not json\n{\"Event\":\"SomethingNew\",\"x\":1}\n\n{\"Event\":\"SparkListenerApplicationEnd\",\"Timestamp\":5}",
            |u| u.bad_lines == 1 && u.complete && u.end_ms == Some(5) && u.executors.is_empty(),
        ),
    ];
    for (name, text, check) in cases {
        let u = parse(text);
        assert!(check(&u), "{name}: {u:#?}");
    }
}
