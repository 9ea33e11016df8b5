//! Batched transitions: many in one transaction (a tick's admissions and moves). Batched
//! inserts are in `bulk`.
//!
//! Each transition runs as it would alone ([`transition_in`]); one that fails
//! for a reason that leaves the transaction usable (bad input, found in another state, not
//! found) gets its error and the others go on. An item that fails in the database (a duplicate
//! id, a lost connection) would abort the whole transaction on PostgreSQL: the batch is then
//! rolled back and every item is written again in its own transaction, so each gets exactly
//! the answer it would have had alone.

use sluice_core::record::JobRecord;

use super::jobs::transition_in;
use super::pool::SqlStore;
use crate::error::StoreError;
use crate::store::Transition;

/// An error that leaves the transaction usable: nothing was written by the failed statement.
fn leaves_tx_usable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::InvalidInput { .. }
            | StoreError::Conflict { .. }
            | StoreError::NotFound(_)
            | StoreError::InvalidTransition { .. }
    )
}

impl SqlStore {
    async fn batch_in_one(
        &self,
        items: &[Transition],
    ) -> Option<Vec<Result<JobRecord, StoreError>>> {
        let mut w = match self.begin_write().await {
            Ok(w) => w,
            Err(_) => return None,
        };
        let mut out = Vec::with_capacity(items.len());
        for t in items {
            w.touch(&t.id);
            let r = if t.from.can_move_to(t.to) {
                transition_in(&mut w.tx, t).await
            } else {
                Err(StoreError::InvalidTransition {
                    id: t.id.clone(),
                    from: t.from,
                    to: t.to,
                })
            };
            if let Err(e) = &r
                && !leaves_tx_usable(e)
            {
                // Roll back and write one by one.
                if let Err(rollback) = w.tx.rollback().await {
                    tracing::debug!(error = %rollback, "rolling back a batch");
                }
                return None;
            }
            out.push(r);
        }
        match w.finish(Ok(())).await {
            Ok(()) => Some(out),
            Err(_) => None,
        }
    }

    /// Applies `ts` in order in one transaction; the result of each, in order.
    pub(super) async fn batch_transitions(
        &self,
        ts: &[Transition],
    ) -> Vec<Result<JobRecord, StoreError>> {
        if ts.is_empty() {
            return Vec::new();
        }
        if let Some(out) = self.batch_in_one(ts).await {
            return out;
        }
        let mut out = Vec::with_capacity(ts.len());
        for t in ts {
            if !t.from.can_move_to(t.to) {
                out.push(Err(StoreError::InvalidTransition {
                    id: t.id.clone(),
                    from: t.from,
                    to: t.to,
                }));
                continue;
            }
            let mut w = match self.begin_write().await {
                Ok(w) => w,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            w.touch(&t.id);
            let r = transition_in(&mut w.tx, t).await;
            out.push(w.finish(r).await);
        }
        out
    }
}
