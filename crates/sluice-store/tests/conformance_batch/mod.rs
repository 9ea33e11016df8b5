//! Conformance checks of the batched writes (group commit): `Store::insert_jobs` and
//! `Store::transitions`. Included by `conformance.rs`, whose `conformance!` macro runs each
//! against SQLite and PostgreSQL.

use std::sync::Arc;

use sluice_core::job::{Demand, JobState, PodDemand, Role};
use sluice_core::record::NewJob;
use sluice_store::{AuditEntry, AuditFilter, JobFilter, Store, StoreError, Transition};

use JobState::*;

fn new_job(id: &str, at: i64) -> NewJob {
    NewJob {
        id: id.into(),
        namespace: "team".into(),
        name: "task".into(),
        level: "normal".into(),
        labels: [("app".to_string(), id.to_string())].into_iter().collect(),
        stored: crate::stored_command(&["true"]),
        demand: Demand {
            pods: vec![PodDemand {
                role: Role::Task,
                count: 1,
                cpu_milli: 500,
                mem_mib: 256,
            }],
        },
        created_at_ms: at,
    }
}

/// A batch of inserts: every job stored with its first event, in order; a duplicate id
/// (within the batch or already stored) and a NUL in a value fail only their own job.
pub async fn insert_jobs_batch(store: Arc<dyn Store>) {
    store.insert_job(&new_job("b0", 1_000)).await.unwrap();
    let mut bad = new_job("bnul", 1_005);
    bad.namespace = "te\0am".into();
    let jobs = vec![
        new_job("b1", 1_001),
        new_job("b0", 1_002), // already stored
        new_job("b2", 1_003),
        bad,
        new_job("b2", 1_004), // twice in the batch
        new_job("b3", 1_006),
    ];
    let out = store.insert_jobs(&jobs).await;
    assert_eq!(out.len(), jobs.len());
    assert_eq!(out[0].as_ref().unwrap().id, "b1");
    assert!(
        matches!(&out[1], Err(StoreError::Duplicate(id)) if id == "b0"),
        "{:?}",
        out[1]
    );
    assert_eq!(out[2].as_ref().unwrap().state, Queued);
    assert!(
        matches!(&out[3], Err(StoreError::InvalidInput { .. })),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(&out[4], Err(StoreError::Duplicate(id)) if id == "b2"),
        "{:?}",
        out[4]
    );
    assert_eq!(out[5].as_ref().unwrap().enqueued_at_ms, 1_006);
    for id in ["b0", "b1", "b2", "b3"] {
        let rec = store.get_job(id).await.unwrap().unwrap();
        assert_eq!(rec.state, Queued);
        let events = store.events(id).await.unwrap();
        assert_eq!(events.len(), 1, "{id}");
        assert_eq!(events[0].to, Queued);
    }
    // b2 kept its first insert.
    assert_eq!(
        store.get_job("b2").await.unwrap().unwrap().created_at_ms,
        1_003
    );
    assert!(store.get_job("bnul").await.unwrap().is_none());
    let queued = store.jobs_in_states(&[Queued]).await.unwrap();
    let ids: Vec<&str> = queued.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["b0", "b1", "b2", "b3"]);
    assert!(store.insert_jobs(&[]).await.is_empty());
}

/// Many concurrent batches all land, each job once.
pub async fn insert_jobs_concurrent_batches(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for b in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let jobs: Vec<NewJob> = (0..25)
                .map(|i| new_job(&format!("c{b:02}{i:03}"), 10_000 + b * 100 + i))
                .collect();
            store.insert_jobs(&jobs).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.unwrap().iter().all(|x| x.is_ok()));
    }
    assert_eq!(store.jobs_in_states(&[Queued]).await.unwrap().len(), 200);
}

/// A batch of transitions applies in order in one go; a conflict, an unknown job and an
/// illegal move fail only their own, and leave the others written with their events.
pub async fn transitions_batch(store: Arc<dyn Store>) {
    for (i, id) in ["t1", "t2", "t3"].into_iter().enumerate() {
        store
            .insert_job(&new_job(id, 2_000 + i as i64))
            .await
            .unwrap();
    }
    let ts = vec![
        Transition::new("t1", Queued, Admitted, 3_000, "admitted"),
        Transition::new("t2", Running, Failed, 3_000, "not running"), // conflict
        Transition::new("nope", Queued, Admitted, 3_000, "unknown"),
        Transition::new("t3", Queued, Succeeded, 3_000, "illegal"),
        Transition::new("t2", Queued, Admitted, 3_001, "admitted"),
        // Two moves of one job in one batch, in order.
        Transition::new("t1", Admitted, Submitted, 3_002, "submitted").with_backend_ref("r1"),
    ];
    let out = store.transitions(&ts).await;
    assert_eq!(out.len(), ts.len());
    assert_eq!(out[0].as_ref().unwrap().state, Admitted);
    assert!(
        matches!(&out[1], Err(StoreError::Conflict { actual: Queued, .. })),
        "{:?}",
        out[1]
    );
    assert!(
        matches!(&out[2], Err(StoreError::NotFound(_))),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(&out[3], Err(StoreError::InvalidTransition { .. })),
        "{:?}",
        out[3]
    );
    assert_eq!(out[4].as_ref().unwrap().state, Admitted);
    let t1 = out[5].as_ref().unwrap();
    assert_eq!(t1.state, Submitted);
    assert_eq!(t1.backend_ref.as_deref(), Some("r1"));
    let events: Vec<JobState> = store
        .events("t1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.to)
        .collect();
    assert_eq!(events, [Queued, Admitted, Submitted]);
    assert_eq!(store.get_job("t3").await.unwrap().unwrap().state, Queued);
    assert_eq!(store.events("t3").await.unwrap().len(), 1);
    assert!(store.transitions(&[]).await.is_empty());
}

/// A tick's admissions (one move at one time for many jobs: the store writes them with
/// multi-row statements, in chunks of 32, 16, ... rows) land as they would one by one: 37 jobs
/// with, among them, a job that moved meanwhile and an unknown one that fail alone, a job
/// twice, and messages that need cleaning (chunks of 32, 4, 2 and 1 here); each admitted job
/// gets its own message and event.
pub async fn transitions_batch_same_shape(store: Arc<dyn Store>) {
    let ids: Vec<String> = (0..37).map(|i| format!("m{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .insert_job(&new_job(id, 2_000 + i as i64))
            .await
            .unwrap();
    }
    store
        .transition(&Transition::new(
            "m05",
            Queued,
            Cancelled,
            2_500,
            "cancelled",
        ))
        .await
        .unwrap();
    let mut ts: Vec<Transition> = ids
        .iter()
        .map(|id| {
            Transition::new(
                id.as_str(),
                Queued,
                Admitted,
                3_000,
                format!("to {id}\u{7}"),
            )
        })
        .collect();
    ts.insert(
        33,
        Transition::new("nope", Queued, Admitted, 3_000, "unknown"),
    );
    // The same job again: a conflict (it was admitted a moment before, in the same batch).
    ts.insert(36, Transition::new("m03", Queued, Admitted, 3_000, "again"));
    let out = store.transitions(&ts).await;
    assert_eq!(out.len(), ts.len());
    for (k, (t, r)) in ts.iter().zip(&out).enumerate() {
        match (k, t.id.as_str()) {
            (_, "m05") | (36, _) => assert!(
                matches!(r, Err(StoreError::Conflict { .. })),
                "{k} {}: {r:?}",
                t.id
            ),
            (_, "nope") => assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}"),
            (_, id) => {
                let rec = r.as_ref().unwrap();
                assert_eq!((rec.id.as_str(), rec.state), (id, Admitted));
                assert_eq!(rec.updated_at_ms, 3_000);
                assert_eq!(
                    rec.message.as_deref(),
                    Some(format!("to {id}\u{FFFD}").as_str())
                );
            }
        }
    }
    assert!(matches!(
        &out[36],
        Err(StoreError::Conflict {
            actual: Admitted,
            ..
        })
    ));
    for id in ["m00", "m31", "m36"] {
        let events = store.events(id).await.unwrap();
        let moves: Vec<JobState> = events.iter().map(|e| e.to).collect();
        assert_eq!(moves, [Queued, Admitted], "{id}");
        assert_eq!(events[1].at_ms, 3_000);
        assert_eq!(events[1].from, Some(Queued));
        assert_eq!(events[1].message, format!("to {id}\u{FFFD}"));
    }
    let moves: Vec<JobState> = store
        .events("m05")
        .await
        .unwrap()
        .iter()
        .map(|e| e.to)
        .collect();
    assert_eq!(moves, [Queued, Cancelled]);
    assert!(store.jobs_in_states(&[Queued]).await.unwrap().is_empty());
    assert_eq!(store.jobs_in_states(&[Admitted]).await.unwrap().len(), 36);
}

fn submit_entry(id: &str, job: &NewJob) -> AuditEntry {
    AuditEntry {
        id: id.into(),
        at_ms: job.created_at_ms,
        actor: "tok-a".into(),
        subject: "alice".into(),
        action: "job.submit".into(),
        namespace: Some(job.namespace.clone()),
        target: Some(job.id.clone()),
        detail: Some(format!("name {:?}", job.name)),
        peer: Some("127.0.0.1".into()),
    }
}

/// The audit entries of a job's submit ids.
async fn submit_targets(store: &dyn Store) -> Vec<String> {
    let mut out: Vec<String> = store
        .audit_log(
            &AuditFilter {
                action: Some("job.submit".into()),
                ..AuditFilter::default()
            },
            1_000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.target)
        .collect();
    out.sort();
    out
}

/// Submits with their audit entries in one batch: every job with its labels, first event and
/// entry (a batch of 43 spans several statement sizes); a duplicate or bad job fails alone and
/// its entry is not written; a bad entry is dropped without failing its job.
pub async fn insert_jobs_audited_batch(store: Arc<dyn Store>) {
    let mut jobs: Vec<NewJob> = (0..43)
        .map(|i| {
            let mut job = new_job(&format!("a{i:03}"), 20_000 + i);
            job.labels.insert("tier".into(), format!("t{}", i % 3));
            job
        })
        .collect();
    // One job without labels, one with none of its entry.
    jobs[5].labels.clear();
    let mut audits: Vec<Option<AuditEntry>> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| Some(submit_entry(&format!("e{i:03}"), j)))
        .collect();
    audits[7] = None;
    let out = store.insert_jobs_audited(&jobs, &audits).await;
    assert_eq!(out.len(), 43);
    for (job, r) in jobs.iter().zip(&out) {
        let rec = r.as_ref().unwrap();
        assert_eq!((rec.id.as_str(), rec.state), (job.id.as_str(), Queued));
        let stored = store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!(stored.labels, job.labels, "{}", job.id);
        assert_eq!(stored.created_at_ms, job.created_at_ms);
        assert_eq!(store.events(&job.id).await.unwrap().len(), 1, "{}", job.id);
    }
    // The labels table answers label filters.
    let t1 = store
        .list_jobs(
            &JobFilter {
                labels: vec![("tier".into(), "t1".into())],
                ..JobFilter::default()
            },
            100,
            None,
        )
        .await
        .unwrap();
    assert_eq!(t1.jobs.len(), 14);
    let want: Vec<String> = jobs
        .iter()
        .map(|j| j.id.clone())
        .filter(|id| id != "a007")
        .collect();
    assert_eq!(submit_targets(store.as_ref()).await, want);

    // A duplicate (already stored), a bad job and a bad entry in one batch.
    let mut bad = new_job("anul", 30_001);
    bad.name = "ta\0sk".into();
    let again = vec![
        new_job("a001", 30_000),
        bad,
        new_job("a100", 30_002),
        new_job("a101", 30_003),
    ];
    let mut entries: Vec<Option<AuditEntry>> = again
        .iter()
        .enumerate()
        .map(|(i, j)| Some(submit_entry(&format!("f{i:03}"), j)))
        .collect();
    if let Some(e) = entries[3].as_mut() {
        e.actor = "to\0k".into();
    }
    let out = store.insert_jobs_audited(&again, &entries).await;
    assert!(
        matches!(&out[0], Err(StoreError::Duplicate(id)) if id == "a001"),
        "{:?}",
        out[0]
    );
    assert!(
        matches!(&out[1], Err(StoreError::InvalidInput { .. })),
        "{:?}",
        out[1]
    );
    assert_eq!(out[2].as_ref().unwrap().id, "a100");
    assert_eq!(out[3].as_ref().unwrap().id, "a101");
    assert_eq!(
        store.get_job("a001").await.unwrap().unwrap().created_at_ms,
        20_001
    );
    assert!(store.get_job("anul").await.unwrap().is_none());
    let targets = submit_targets(store.as_ref()).await;
    assert_eq!(targets.len(), want.len() + 1, "{targets:?}");
    assert!(targets.contains(&"a100".to_string()));
    assert!(!targets.contains(&"a101".to_string()), "its entry was bad");
    assert_eq!(
        targets.iter().filter(|t| *t == "a001").count(),
        1,
        "the duplicate's entry is not written"
    );
    assert!(store.insert_jobs_audited(&[], &[]).await.is_empty());

    // Every job with its entry, in statements of several sizes (70 = 32 + 32 + 4 + 2): each job,
    // label, event and entry lands with its own values.
    let many: Vec<NewJob> = (0..70)
        .map(|i| {
            let mut job = new_job(&format!("m{i:03}"), 40_000 + i);
            job.labels.insert("row".into(), format!("r{i}"));
            job
        })
        .collect();
    let entries: Vec<Option<AuditEntry>> = many
        .iter()
        .enumerate()
        .map(|(i, j)| Some(submit_entry(&format!("g{i:03}"), j)))
        .collect();
    let out = store.insert_jobs_audited(&many, &entries).await;
    assert_eq!(out.len(), 70);
    for (job, r) in many.iter().zip(&out) {
        assert_eq!(r.as_ref().unwrap().id, job.id);
        let stored = store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!(stored.labels, job.labels, "{}", job.id);
        assert_eq!(stored.created_at_ms, job.created_at_ms, "{}", job.id);
        let events = store.events(&job.id).await.unwrap();
        assert_eq!(events.len(), 1, "{}", job.id);
        assert_eq!(events[0].at_ms, job.created_at_ms, "{}", job.id);
    }
    let targets = submit_targets(store.as_ref()).await;
    for job in &many {
        assert_eq!(
            targets.iter().filter(|t| **t == job.id).count(),
            1,
            "{}",
            job.id
        );
    }
}
