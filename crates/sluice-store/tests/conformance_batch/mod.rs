//! Conformance checks of the batched writes (group commit): `Store::insert_jobs` and
//! `Store::transitions`. Included by `conformance.rs`, whose `conformance!` macro runs each
//! against SQLite and PostgreSQL.

use std::sync::Arc;

use sluice_core::job::{Demand, JobState, PodDemand, Role};
use sluice_core::record::NewJob;
use sluice_store::{Store, StoreError, Transition};

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
