//! Conformance checks of the usage records (cost intelligence): one per run, replaced when
//! recorded again, read back whole by end time and narrowed by namespace, name and schedule.
//! Included by `conformance.rs`, whose `conformance!` macro runs each against SQLite and
//! PostgreSQL.

use std::sync::Arc;

use sluice_core::cost::{JvmPeaks, Measured, Outcome, ProcessUsage, Requested, UsageRecord};
use sluice_core::sizing::SparkShape;
use sluice_store::{Store, StoreError, UsageFilter};

fn record(job: &str, attempt: u32, ns: &str, name: &str, ended: i64) -> UsageRecord {
    UsageRecord {
        job_id: job.into(),
        attempt,
        namespace: ns.into(),
        name: name.into(),
        schedule: None,
        started_at_ms: ended - 60_000,
        ended_at_ms: ended,
        outcome: Outcome::Succeeded,
        requested: Requested {
            cpu_milli: 3000,
            mem_mib: 6272,
            spark: Some(SparkShape {
                driver_heap_mib: 1024,
                executor_heap_mib: 2048,
                executor_cores: 1,
                executors: 2,
            }),
        },
        measured: Some(Measured {
            source: "eventlog+process".into(),
            complete: true,
            driver: Some(JvmPeaks {
                heap: 98_939_552,
                off_heap: 111_524_032,
                execution: 0,
                rss: 326_758_400,
            }),
            executor: None,
            executors_used: 0,
            executor_seconds: 0.0,
            task_seconds: 47.458,
            task_cpu_seconds: 0.283790628,
            gc_seconds: 0.574,
            memory_spilled_bytes: 0,
            disk_spilled_bytes: 1 << 20,
            failed_tasks: 1,
            process: Some(ProcessUsage {
                peak_rss_bytes: 400 << 20,
                cpu_seconds: 12.5,
            }),
        }),
        note: None,
    }
}

fn all() -> UsageFilter {
    UsageFilter {
        from_ms: 0,
        to_ms: i64::MAX,
        ..UsageFilter::default()
    }
}

pub async fn usage_records_round_trip_and_filter(store: Arc<dyn Store>) {
    let a1 = record("j1", 1, "a", "etl", 10_000);
    let mut a2 = record("j1", 2, "a", "etl", 20_000);
    a2.outcome = Outcome::Oom;
    a2.measured = None;
    a2.note = Some("no event log".into());
    let mut b = record("j2", 1, "b", "etl", 15_000);
    b.schedule = Some("nightly".into());
    let c = record("j3", 1, "a", "report", 30_000);
    for r in [&c, &a2, &b, &a1] {
        store.put_usage(r).await.unwrap();
    }
    // Whole, oldest end first.
    let got = store.usage(&all(), 100).await.unwrap();
    assert_eq!(got, vec![a1.clone(), b.clone(), a2.clone(), c.clone()]);
    // The range is [from, to).
    let f = UsageFilter {
        from_ms: 15_000,
        to_ms: 30_000,
        ..all()
    };
    let ids: Vec<_> = store.usage(&f, 100).await.unwrap();
    assert_eq!(ids, vec![b.clone(), a2.clone()]);
    let by = |f: UsageFilter| {
        let store = store.clone();
        async move {
            store
                .usage(&f, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| format!("{}/{}", r.job_id, r.attempt))
                .collect::<Vec<_>>()
        }
    };
    let ns_a = UsageFilter {
        namespace: Some("a".into()),
        ..all()
    };
    assert_eq!(by(ns_a).await, ["j1/1", "j1/2", "j3/1"]);
    let etl_in_a = UsageFilter {
        namespace: Some("a".into()),
        name: Some("etl".into()),
        ..all()
    };
    assert_eq!(by(etl_in_a).await, ["j1/1", "j1/2"]);
    let nightly = UsageFilter {
        schedule: Some("nightly".into()),
        ..all()
    };
    assert_eq!(by(nightly).await, ["j2/1"]);
    let scoped = UsageFilter {
        namespace_in: Some(vec!["b".into(), "c".into()]),
        ..all()
    };
    assert_eq!(by(scoped).await, ["j2/1"]);
    let none = UsageFilter {
        namespace_in: Some(Vec::new()),
        ..all()
    };
    assert!(by(none).await.is_empty());
    assert_eq!(store.usage(&all(), 2).await.unwrap().len(), 2);
    // Recording a run again replaces it.
    let mut again = a1.clone();
    again.ended_at_ms = 40_000;
    again.note = Some("read again".into());
    store.put_usage(&again).await.unwrap();
    let got = store.usage(&all(), 100).await.unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(got.last(), Some(&again));
    // NUL in a value that must match: refused, naming the field.
    let bad = record("j\0", 1, "a", "etl", 1);
    match store.put_usage(&bad).await {
        Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, "job_id"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

pub async fn schedule_template_is_replaced_on_request(store: Arc<dyn Store>) {
    let made = store
        .create_schedule(&crate::orch::schedule("a", "nightly", Some(5_000), false))
        .await
        .unwrap();
    let template =
        serde_json::json!({"name": "nightly", "kind": {"type": "command", "argv": ["false"]}});
    let got = store
        .set_schedule_template("a", "nightly", &template, 9_000, "advice applied\0!")
        .await
        .unwrap();
    assert_eq!(got.template, template);
    assert_eq!(got.updated_at_ms, 9_000);
    assert_eq!(got.last_message.as_deref(), Some("advice applied\u{FFFD}!"));
    // Everything else is kept.
    assert_eq!(
        (got.cron, got.next_fire_at_ms, got.source, got.created_at_ms),
        (
            made.cron,
            made.next_fire_at_ms,
            made.source,
            made.created_at_ms
        )
    );
    let again = store.get_schedule("a", "nightly").await.unwrap().unwrap();
    assert_eq!(again.template, template);
    match store
        .set_schedule_template("a", "missing", &template, 9_000, "x")
        .await
    {
        Err(StoreError::NoSchedule { .. }) => {}
        other => panic!("expected NoSchedule, got {other:?}"),
    }
}
