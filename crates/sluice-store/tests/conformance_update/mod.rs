//! Conformance check of [`Store::update_schedule`] (what `sluice apply -f` does to a schedule
//! that exists). Included by `conformance.rs`.

use std::sync::Arc;

use serde_json::json;
use sluice_core::schedule::{ConcurrencyPolicy, MissedRunPolicy, NewSchedule};
use sluice_store::{Advance, Fire, Store, StoreError};

fn schedule(cron: &str, next: Option<i64>) -> NewSchedule {
    NewSchedule {
        namespace: "etl".into(),
        name: "nightly".into(),
        cron: cron.into(),
        time_zone: "Europe/Berlin".into(),
        concurrency: ConcurrencyPolicy::Forbid,
        missed_runs: MissedRunPolicy::Skip,
        catch_up_window_secs: 600,
        suspended: false,
        level: "high".into(),
        template: json!({"name": "nightly", "kind": {"type": "command", "argv": ["true"]}}),
        source: format!("schedule: {cron}\n"),
        created_at_ms: 1_000,
        next_fire_at_ms: next,
    }
}

pub async fn update_schedule_keeps_its_history(store: Arc<dyn Store>) {
    store
        .create_schedule(&schedule("0 * * * *", Some(5_000)))
        .await
        .unwrap();
    // A run, so that there is a last fire to keep.
    store
        .fire_schedule(&Fire {
            namespace: "etl".into(),
            name: "nightly".into(),
            advance: Some(Advance {
                expected_next_fire_at_ms: Some(5_000),
                next_fire_at_ms: Some(8_000),
            }),
            run: None,
            at_ms: 5_100,
            message: "skipped: nothing to run".into(),
        })
        .await
        .unwrap();
    let mut new = schedule("*/5 * * * *", Some(9_000));
    new.concurrency = ConcurrencyPolicy::Allow;
    new.missed_runs = MissedRunPolicy::RunOnce;
    new.catch_up_window_secs = 60;
    new.time_zone = "UTC".into();
    new.level = "normal".into();
    new.suspended = true;
    new.template = json!({"name": "nightly", "kind": {"type": "command", "argv": ["false"]}});
    new.created_at_ms = 99_999;
    let s = store.update_schedule(&new, 6_000).await.unwrap();
    assert_eq!(s.cron, "*/5 * * * *");
    assert_eq!(s.time_zone, "UTC");
    assert_eq!(s.concurrency, ConcurrencyPolicy::Allow);
    assert_eq!(s.missed_runs, MissedRunPolicy::RunOnce);
    assert_eq!(s.catch_up_window_secs, 60);
    assert!(s.suspended);
    assert_eq!(s.level, "normal");
    assert_eq!(s.template["kind"]["argv"][0], "false");
    assert_eq!(s.source, "schedule: */5 * * * *\n");
    assert_eq!(s.next_fire_at_ms, Some(9_000));
    assert_eq!(s.updated_at_ms, 6_000);
    // What it did before stays.
    assert_eq!(s.created_at_ms, 1_000);
    assert_eq!(s.last_message.as_deref(), Some("skipped: nothing to run"));
    assert_eq!(store.get_schedule("etl", "nightly").await.unwrap(), Some(s));
    let mut ghost = schedule("0 * * * *", None);
    ghost.name = "ghost".into();
    assert!(matches!(
        store.update_schedule(&ghost, 7_000).await,
        Err(StoreError::NoSchedule { .. })
    ));
    assert_eq!(store.get_schedule("etl", "ghost").await.unwrap(), None);
}
