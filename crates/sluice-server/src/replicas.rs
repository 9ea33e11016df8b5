//! The tasks that make several replicas work together on PostgreSQL (see [`crate::leader`]):
//! - [`run_elector`] keeps this replica's place in the election (renews the lease while it
//!   leads, tries to take it while it follows) and counts the changes;
//! - [`follow_changes`] applies what other replicas write to the leader's in-memory queue (a
//!   submit made on a follower reaches the leader's next cycle at once, woken by the
//!   notification), and stops the runs that followers' cancels ask for.

use std::time::Duration;

use sluice_store::StoreChange;

use crate::cancel::cancel_job;
use crate::leader::{Round, round};
use crate::state::AppState;

/// The elector of an elected replica; returns at once for the only server.
pub async fn run_elector(state: AppState) {
    if !state.leader.is_elected() {
        return;
    }
    let ttl = Duration::from_millis(state.config.ha.lease_ttl_ms);
    let every = Duration::from_millis(state.config.ha.renew_interval_ms);
    tracing::info!(
        identity = state.leader.identity(),
        ttl_ms = state.config.ha.lease_ttl_ms,
        "taking part in the leader election"
    );
    let mut failing = false;
    loop {
        match round(&state.leader, state.store.as_ref(), ttl).await {
            Round::Acquired(epoch) => {
                failing = false;
                tracing::info!(
                    epoch,
                    identity = state.leader.identity(),
                    "became the leader"
                );
                state.metrics.leader_changed(true);
                state.wake.notify_one();
            }
            Round::Renewed | Round::Follows => failing = false,
            Round::Lost(why) => {
                tracing::warn!("no longer the leader: {why}");
                state.metrics.leader_changed(false);
            }
            Round::Failed(why) => {
                if !failing {
                    tracing::warn!("leader election: {why}");
                }
                failing = true;
            }
        }
        // A leader that lost its lease through a fenced write (the loop stepped down) is
        // counted here too.
        if !state.leader.holds() && state.metrics.is_leader() {
            state.metrics.leader_changed(false);
        }
        tokio::time::sleep(every).await;
    }
}

/// Follows the store's change feed (PostgreSQL); returns at once where there is none.
pub async fn follow_changes(state: AppState) {
    loop {
        let mut feed = match state.store.changes().await {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("change feed: {e}; retrying in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        while let Some(first) = feed.recv().await {
            // Take what else is there, to apply it under one lock.
            let mut batch = vec![first];
            while let Ok(more) = feed.try_recv() {
                batch.push(more);
            }
            apply(&state, batch).await;
        }
        tracing::warn!("change feed ended; following it again");
        state.queue.reset();
    }
}

async fn apply(state: &AppState, batch: Vec<StoreChange>) {
    let mut ids = Vec::new();
    let mut resync = false;
    for change in batch {
        match change {
            StoreChange::Jobs(mut more) => ids.append(&mut more),
            StoreChange::Resync => resync = true,
            StoreChange::StopRequested(id) if state.leader.holds() => {
                let st = state.clone();
                tokio::spawn(async move {
                    match cancel_job(&st, &id, "a user (through another replica)").await {
                        Ok(_) => tracing::info!(job = %id, "stopped at another replica's request"),
                        Err(e) => {
                            tracing::info!(job = %id, "stop requested by another replica: {e}")
                        }
                    }
                });
            }
            StoreChange::StopRequested(_) => {}
        }
    }
    if !state.leader.holds() {
        return;
    }
    if resync {
        // Notifications may have been missed: the next tick loads the queue again.
        let _cycle = state.cycle_lock.lock().await;
        state.queue.reset();
    } else if !ids.is_empty() {
        ids.sort();
        ids.dedup();
        // Under the cycle lock, so that no write of the loop lands between a read here and
        // its application to the queue.
        let _cycle = state.cycle_lock.lock().await;
        for id in &ids {
            match state.store.get_job(id).await {
                Ok(Some(rec)) => state.queue.record(&rec),
                Ok(None) => state.queue.gone(id),
                Err(e) => {
                    tracing::warn!("change feed: reading job {id}: {e}; reloading the queue");
                    state.queue.reset();
                    break;
                }
            }
        }
    }
    state.wake.notify_one();
}
