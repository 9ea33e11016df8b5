//! Conformance checks of the store's two rules for text (see the docs of [`Store`]): messages
//! sluice writes are stored with NUL and other control characters (except `\n`, `\t`) replaced
//! by U+FFFD; values kept or matched exactly that contain NUL fail with
//! [`StoreError::InvalidInput`] naming the field, before anything is written. And unavailability:
//! a closed store reports [`StoreError::is_unavailable`]. Included by `conformance.rs`, whose
//! `conformance!` macro runs each against SQLite and PostgreSQL (where a NUL in text is refused
//! by the database itself).

use std::sync::Arc;

use serde_json::json;
use sluice_core::job::JobState;
use sluice_core::schedule::{ConcurrencyPolicy, MissedRunPolicy, NewSchedule};
use sluice_store::{
    DeadLetter, HistoryQuery, JobFilter, JobSet, Requeue, RequeuePlace, RetryJob, SetFilter, Store,
    StoreError, Transition,
};

use JobState::*;

use crate::{job, labelled, tr};

/// What a failure message quoting a command line with a NUL byte looks like.
const RAW: &str = "exec failed: argv [\"spark-submit\", \"a\0b\"] in /tmp/x\r\u{1b}[0m\n\tdone";
/// `RAW` as stored.
const STORED: &str =
    "exec failed: argv [\"spark-submit\", \"a\u{FFFD}b\"] in /tmp/x\u{FFFD}\u{FFFD}[0m\n\tdone";

/// The field of an [`StoreError::InvalidInput`], or a panic naming what came instead.
fn invalid_field<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::InvalidInput { field, value }) => {
            assert!(value.contains('\0'), "{value:?}");
            field
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

pub async fn nul_in_messages_is_stored_sanitized(store: Arc<dyn Store>) {
    store
        .insert_job(&job("j", "ns", "high", 1_000))
        .await
        .unwrap();

    // Transition: the job's message and the timeline event.
    let rec = store
        .transition(&Transition::new("j", Queued, Admitted, 1_001, RAW))
        .await
        .unwrap();
    assert_eq!(rec.message.as_deref(), Some(STORED));
    let got = store.get_job("j").await.unwrap().unwrap();
    assert_eq!(got.message.as_deref(), Some(STORED));

    // Note.
    store.add_note("j", 1_002, RAW).await.unwrap();
    let events = store.events("j").await.unwrap();
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["queued", STORED, STORED]);

    // Failure, then a retry with such a message, then a dead letter with such a reason.
    let failed = store
        .transition(&Transition::new("j", Admitted, Failed, 1_003, RAW).with_exit_code(1))
        .await
        .unwrap();
    assert_eq!(failed.message.as_deref(), Some(STORED));
    let retried = store
        .retry_job(&RetryJob {
            id: "j".into(),
            attempt: 1,
            at_ms: 1_004,
            eligible_at_ms: 1_004,
            message: RAW.into(),
            stored: None,
            demand: None,
        })
        .await
        .unwrap();
    assert_eq!(retried.message.as_deref(), Some(STORED));
    store
        .transition(&tr("j", Queued, Admitted, 1_005))
        .await
        .unwrap();
    store
        .transition(&tr("j", Admitted, Failed, 1_006))
        .await
        .unwrap();
    store
        .dead_letter(&DeadLetter {
            id: "j".into(),
            attempt: 2,
            at_ms: 1_007,
            failure_class: "application".into(),
            reason: RAW.into(),
        })
        .await
        .unwrap();
    let orch = store.job_orch("j").await.unwrap().unwrap();
    assert_eq!(orch.dlq_reason.as_deref(), Some(STORED));
    let last = store.events("j").await.unwrap().pop().unwrap();
    assert_eq!(
        last.message,
        format!("dead-lettered (application): {STORED}")
    );

    // Requeue from the dead-letter queue, then expiry of a queued job.
    let requeued = store
        .requeue_dead_letter(&Requeue {
            id: "j".into(),
            at_ms: 1_008,
            place: RequeuePlace::Tail,
            message: RAW.into(),
        })
        .await
        .unwrap();
    assert_eq!(requeued.message.as_deref(), Some(STORED));
    let expired = store.expire_queued("j", 1_009, RAW).await.unwrap();
    assert_eq!(expired.message.as_deref(), Some(STORED));
    let orch = store.job_orch("j").await.unwrap().unwrap();
    assert_eq!(orch.dlq_reason.as_deref(), Some(STORED));

    // Nothing stored anywhere kept a control character other than \n and \t.
    for e in store.events("j").await.unwrap() {
        assert!(
            !e.message
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{:?}",
            e.message
        );
    }
    // Text without such characters is stored as is.
    store.add_note("j", 1_010, "plain\ttext\néà").await.unwrap();
    let last = store.events("j").await.unwrap().pop().unwrap();
    assert_eq!(last.message, "plain\ttext\néà");
}

pub async fn nul_in_values_is_invalid_input(store: Arc<dyn Store>) {
    // Inserts: the label, the name, the id; nothing is written.
    let bad = labelled(job("a", "ns", "high", 1_000), &[("team", "da\0ta")]);
    assert_eq!(invalid_field(store.insert_job(&bad).await), "labels.team");
    let bad = labelled(job("a", "ns", "high", 1_000), &[("te\0am", "data")]);
    assert_eq!(invalid_field(store.insert_job(&bad).await), "labels");
    let mut bad = job("a", "ns", "high", 1_000);
    bad.name = "et\0l".into();
    assert_eq!(invalid_field(store.insert_job(&bad).await), "name");
    let bad = job("a\0", "ns", "high", 1_000);
    assert_eq!(invalid_field(store.insert_job(&bad).await), "id");
    let page = store
        .list_jobs(&JobFilter::default(), 10, None)
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "{:?}", page.jobs);

    // A spec is JSON: a NUL inside one of its strings is kept exactly.
    let mut ok = labelled(job("a", "ns", "high", 1_000), &[("team", "data")]);
    ok.stored = crate::stored_command(&["printf", "ab"]);
    if let sluice_core::spec::JobKind::Command(c) = &mut ok.stored.job.kind {
        c.argv[1] = sluice_core::spec::Text("a\0b".into());
    }
    store.insert_job(&ok).await.unwrap();
    let got = store.get_job("a").await.unwrap().unwrap();
    assert_eq!(got.stored, Ok(ok.stored));

    // Reads: lookups and filters.
    assert_eq!(invalid_field(store.get_job("a\0").await), "id");
    assert_eq!(invalid_field(store.events("a\0").await), "id");
    assert_eq!(invalid_field(store.job_orch("a\0").await), "id");
    for (filter, field) in [
        (
            JobFilter {
                namespace: Some("n\0s".into()),
                ..Default::default()
            },
            "namespace",
        ),
        (
            JobFilter {
                name: Some("e\0".into()),
                ..Default::default()
            },
            "name",
        ),
        (
            JobFilter {
                labels: vec![("team".into(), "\0".into())],
                ..Default::default()
            },
            "labels.team",
        ),
    ] {
        assert_eq!(
            invalid_field(store.list_jobs(&filter, 10, None).await),
            field
        );
    }
    assert!(matches!(
        store
            .list_jobs(&JobFilter::default(), 10, Some("5:a\0"))
            .await,
        Err(StoreError::BadCursor(_))
    ));
    let mut set = SetFilter::all(JobSet::Queued);
    set.level = Some("hi\0gh".into());
    assert_eq!(invalid_field(store.select_jobs(&set, 10).await), "level");
    assert_eq!(
        invalid_field(store.delete_jobs(JobSet::Queued, &["a\0".into()]).await),
        "ids"
    );
    let q = HistoryQuery {
        from_ms: 0,
        to_ms: 10_000,
        step_ms: 1_000,
        namespace: Some("n\0s".into()),
        level: None,
    };
    assert_eq!(invalid_field(store.history(&q).await), "namespace");

    // Writes naming a job.
    assert_eq!(
        invalid_field(store.transition(&tr("a\0", Queued, Admitted, 1_001)).await),
        "id"
    );
    assert_eq!(
        invalid_field(
            store
                .transition(&tr("a", Queued, Admitted, 1_001).with_backend_ref("r\0"))
                .await
        ),
        "backend_ref"
    );
    assert_eq!(invalid_field(store.add_note("a\0", 1_001, "x").await), "id");
    // Nothing of that was written.
    let got = store.get_job("a").await.unwrap().unwrap();
    assert_eq!(got.state, Queued);
    assert_eq!(store.events("a").await.unwrap().len(), 1);

    // Schedules.
    let schedule = NewSchedule {
        namespace: "ns".into(),
        name: "nightly".into(),
        cron: "0 * * * *".into(),
        time_zone: "UTC".into(),
        concurrency: ConcurrencyPolicy::Forbid,
        missed_runs: MissedRunPolicy::Skip,
        catch_up_window_secs: 600,
        suspended: false,
        level: "high".into(),
        template: json!({ "name": "nightly" }),
        source: "name: nightly\0\n".into(),
        created_at_ms: 1_000,
        next_fire_at_ms: None,
    };
    assert_eq!(
        invalid_field(store.create_schedule(&schedule).await),
        "source"
    );
    assert_eq!(invalid_field(store.get_schedule("ns", "n\0").await), "name");
    assert!(store.list_schedules(None).await.unwrap().is_empty());
}

pub async fn closed_store_is_unavailable(store: Arc<dyn Store>) {
    store
        .insert_job(&job("a", "ns", "high", 1_000))
        .await
        .unwrap();
    store.close().await;
    let read = store.get_job("a").await.unwrap_err();
    assert!(read.is_unavailable(), "{read:?}");
    let write = store
        .transition(&tr("a", Queued, Admitted, 1_001))
        .await
        .unwrap_err();
    assert!(write.is_unavailable(), "{write:?}");
    // The client-facing message has no driver text; the log line has it.
    assert_eq!(
        read.to_string(),
        "the database is unavailable, try again later"
    );
    assert!(
        read.detail().len() > read.to_string().len(),
        "{}",
        read.detail()
    );
    // Errors that are not unavailability say so.
    assert!(!StoreError::NotFound("a".into()).is_unavailable());
}
