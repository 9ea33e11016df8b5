//! Conformance checks of replicas: the leader's lease (taken by one holder at a time, its epoch
//! growing at every acquisition, released at once, expired by the database's clock), fenced
//! writes (a store fenced by a lease that was taken over writes nothing) and the change feed
//! (PostgreSQL's LISTEN/NOTIFY reports other processes' job writes; SQLite has none). Included
//! by `conformance.rs`, whose `conformance!` macro runs each against SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::job::JobState::*;
use sluice_store::{Store, StoreChange, StoreError, Transition, open};

use crate::job;

const NAME: &str = "scheduler";
const LONG: i64 = 60_000;

fn is_fenced(e: &StoreError) -> bool {
    matches!(e, StoreError::Fenced { .. })
}

pub async fn lease_is_held_by_one_holder_at_a_time(store: Arc<dyn Store>) {
    assert_eq!(store.get_lease(NAME).await.unwrap(), None);
    let a = store
        .acquire_lease(NAME, "a", LONG)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!((a.holder.as_str(), a.epoch), ("a", 1));
    assert!(!a.expired());
    assert!(a.expires_at_ms >= a.db_now_ms + LONG - 1_000, "{a:?}");
    assert_eq!(store.acquire_lease(NAME, "b", LONG).await.unwrap(), None);
    // Other lease names are independent.
    let other = store.acquire_lease("other", "b", LONG).await.unwrap();
    assert_eq!(other.map(|l| l.epoch), Some(1));

    let renewed = store.renew_lease(&a, LONG).await.unwrap().expect("renewed");
    assert_eq!((renewed.holder.as_str(), renewed.epoch), ("a", 1));
    assert!(renewed.expires_at_ms >= a.expires_at_ms);

    store.release_lease(&a).await.unwrap();
    let seen = store.get_lease(NAME).await.unwrap().unwrap();
    assert!(seen.expired(), "released: {seen:?}");
    let b = store
        .acquire_lease(NAME, "b", LONG)
        .await
        .unwrap()
        .expect("a released lease is taken at once");
    assert_eq!((b.holder.as_str(), b.epoch), ("b", 2));
    assert_eq!(
        store.renew_lease(&a, LONG).await.unwrap(),
        None,
        "a lost it"
    );
    // A release by the old holder does nothing.
    store.release_lease(&a).await.unwrap();
    let seen = store.get_lease(NAME).await.unwrap().unwrap();
    assert_eq!((seen.holder.as_str(), seen.epoch), ("b", 2));
    assert!(!seen.expired());
    // Taking it again as its holder raises the epoch (a new term).
    let b2 = store.acquire_lease(NAME, "b", LONG).await.unwrap().unwrap();
    assert_eq!(b2.epoch, 3);
    assert_eq!(store.renew_lease(&b, LONG).await.unwrap(), None, "old term");
}

pub async fn expired_lease_goes_to_another_holder(store: Arc<dyn Store>) {
    let a = store.acquire_lease(NAME, "a", 200).await.unwrap().unwrap();
    assert_eq!(store.acquire_lease(NAME, "b", LONG).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let seen = store.get_lease(NAME).await.unwrap().unwrap();
    assert!(seen.expired(), "{seen:?}");
    // Expired but not taken: its holder may still renew it.
    let a = store.renew_lease(&a, 200).await.unwrap().expect("renewed");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = store.acquire_lease(NAME, "b", LONG).await.unwrap().unwrap();
    assert_eq!(b.epoch, a.epoch + 1);
    assert_eq!(store.renew_lease(&a, LONG).await.unwrap(), None);
}

pub async fn concurrent_acquisitions_have_one_winner(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .acquire_lease(NAME, &format!("r{i}"), LONG)
                .await
                .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(l) = t.await.unwrap() {
            winners.push(l);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].epoch, 1);
}

pub async fn fenced_store_writes_nothing_after_a_takeover(store: Arc<dyn Store>) {
    let a = store.acquire_lease(NAME, "a", LONG).await.unwrap().unwrap();
    let fa = store.fenced(&a);
    fa.insert_job(&job("j1", "ns", "normal", 1)).await.unwrap();
    fa.transition(&Transition::new("j1", Queued, Admitted, 2, "admitted"))
        .await
        .unwrap();
    let batch = fa
        .insert_jobs(&[job("j2", "ns", "normal", 3), job("j3", "ns", "normal", 3)])
        .await;
    assert!(batch.iter().all(|r| r.is_ok()), "{batch:?}");

    // b takes the lease over (a's expired, say).
    store.release_lease(&a).await.unwrap();
    let b = store.acquire_lease(NAME, "b", LONG).await.unwrap().unwrap();

    let err = fa
        .transition(&Transition::new("j1", Admitted, Submitted, 4, "submitted"))
        .await
        .unwrap_err();
    assert!(is_fenced(&err), "{err:?}");
    assert!(err.to_string().contains("no longer the leader"), "{err}");
    let err = fa
        .insert_job(&job("j4", "ns", "normal", 4))
        .await
        .unwrap_err();
    assert!(is_fenced(&err), "{err:?}");
    let batch = fa
        .transitions(&[
            Transition::new("j2", Queued, Admitted, 5, "admitted"),
            Transition::new("j3", Queued, Admitted, 5, "admitted"),
        ])
        .await;
    assert_eq!(batch.len(), 2);
    assert!(
        batch.iter().all(|r| matches!(r, Err(e) if is_fenced(e))),
        "{batch:?}"
    );
    let err = fa.add_note("j2", 6, "note").await.unwrap_err();
    assert!(is_fenced(&err), "{err:?}");
    let err = fa.expire_queued("j2", 6, "too long").await.unwrap_err();
    assert!(is_fenced(&err), "{err:?}");

    // Nothing of that was written; reads through the fenced store still work.
    assert_eq!(fa.get_job("j1").await.unwrap().unwrap().state, Admitted);
    assert_eq!(store.get_job("j4").await.unwrap(), None);
    assert_eq!(store.get_job("j2").await.unwrap().unwrap().state, Queued);
    assert_eq!(store.events("j2").await.unwrap().len(), 1);

    // The new holder's fenced store writes.
    let fb = store.fenced(&b);
    fb.transition(&Transition::new("j1", Admitted, Submitted, 7, "submitted"))
        .await
        .unwrap();
    // The plain store is not fenced (a follower's API writes).
    store
        .insert_job(&job("j5", "ns", "normal", 8))
        .await
        .unwrap();
}

async fn next(feed: &mut tokio::sync::mpsc::Receiver<StoreChange>) -> StoreChange {
    tokio::time::timeout(Duration::from_secs(10), feed.recv())
        .await
        .expect("a change within 10 s")
        .expect("the feed is open")
}

pub async fn change_feed_reports_other_writers(store: Arc<dyn Store>, url: String) {
    let Some(mut feed) = store.changes().await.unwrap() else {
        // SQLite: one server per database file, no feed.
        assert!(url.starts_with("sqlite"), "{url}");
        assert!(!store.request_stop("x").await.unwrap());
        return;
    };
    assert!(url.starts_with("postgres"), "{url}");
    let other = open(&url).await.unwrap();

    // Its own writes are not reported back.
    store
        .insert_job(&job("mine", "ns", "normal", 1))
        .await
        .unwrap();
    other
        .insert_job(&job("x1", "ns", "normal", 2))
        .await
        .unwrap();
    assert_eq!(next(&mut feed).await, StoreChange::Jobs(vec!["x1".into()]));

    let batch = other
        .insert_jobs(&[job("x2", "ns", "normal", 3), job("x3", "ns", "normal", 3)])
        .await;
    assert!(batch.iter().all(|r| r.is_ok()));
    assert_eq!(
        next(&mut feed).await,
        StoreChange::Jobs(vec!["x2".into(), "x3".into()])
    );
    other
        .transition(&Transition::new("x1", Queued, Cancelled, 4, "cancelled"))
        .await
        .unwrap();
    assert_eq!(next(&mut feed).await, StoreChange::Jobs(vec!["x1".into()]));
    // A failed write announces nothing: the next change is the stop request.
    let err = other
        .transition(&Transition::new("x1", Queued, Admitted, 5, "admitted"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(other.request_stop("x2").await.unwrap());
    assert_eq!(
        next(&mut feed).await,
        StoreChange::StopRequested("x2".into())
    );
    // A fenced store announces its writes too.
    let lease = other.acquire_lease(NAME, "o", LONG).await.unwrap().unwrap();
    other
        .fenced(&lease)
        .transition(&Transition::new("x2", Queued, Admitted, 6, "admitted"))
        .await
        .unwrap();
    assert_eq!(next(&mut feed).await, StoreChange::Jobs(vec!["x2".into()]));
    let purged = other
        .delete_jobs(sluice_store::JobSet::Queued, &["x3".to_string()])
        .await
        .unwrap();
    assert_eq!(purged, vec!["x3".to_string()]);
    assert_eq!(next(&mut feed).await, StoreChange::Jobs(vec!["x3".into()]));
    other.close().await;
}
