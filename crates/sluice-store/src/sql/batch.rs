//! Batched transitions: many in one transaction (a tick's admissions and moves). Batched
//! inserts are in `bulk`.
//!
//! Each transition runs as it would alone ([`transition_in`]); one that fails
//! for a reason that leaves the transaction usable (bad input, found in another state, not
//! found) gets its error and the others go on. An item that fails in the database (a duplicate
//! id, a lost connection) would abort the whole transaction on PostgreSQL: the batch is then
//! rolled back and every item is written again in its own transaction, so each gets exactly
//! the answer it would have had alone.
//!
//! A run of transitions of one shape (the same move at the same time, nothing learned from the
//! backend, distinct jobs: a tick's admissions) is written with one multi-row `UPDATE ... FROM
//! (VALUES ...)` and one multi-row insert of their timeline events per chunk
//! ([`transitions_many_in`]), in the chunk sizes of `bulk`, instead of two statements per job:
//! on PostgreSQL two round trips per chunk instead of two per job. A job the update did not
//! match (moved meanwhile, gone) is then tried alone, for the answer it would have had alone.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sluice_core::record::JobRecord;
use sqlx::AnyConnection;

use super::bulk::{chunk_sizes, values_sql};
use super::jobs::{transition_in, transition_sets};
use super::pool::{SqlStore, WriteTx};
use super::rows::{DynQuery, JOB_COLUMNS, decode_job};
use crate::error::StoreError;
use crate::store::Transition;
use crate::text::{exact, sanitize};

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

/// How many transitions from the start of `items` can go in one multi-row update with the
/// first: the same move at the same time, no backend ref or exit code learned, an allowed move,
/// a well-formed id, and no job twice.
fn same_shape_run(items: &[Transition]) -> usize {
    let Some(first) = items.first() else {
        return 0;
    };
    let mut seen = HashSet::new();
    items
        .iter()
        .take_while(|t| {
            t.from == first.from
                && t.to == first.to
                && t.at_ms == first.at_ms
                && t.backend_ref.is_none()
                && t.exit_code.is_none()
                && t.from.can_move_to(t.to)
                && exact("id", &t.id).is_ok()
                && seen.insert(t.id.as_str())
        })
        .count()
}

/// Applies `chunk` (a [`same_shape_run`]) with one `UPDATE ... FROM (VALUES ...)` and one
/// multi-row insert of the timeline events; a job the update did not match is tried alone
/// ([`transition_in`]) for its error. The results in order; `Err` when a statement failed in
/// a way that leaves the transaction unusable.
async fn transitions_many_in(
    conn: &mut AnyConnection,
    chunk: &[Transition],
) -> Result<Vec<Result<JobRecord, StoreError>>, StoreError> {
    let Some(first) = chunk.first() else {
        return Ok(Vec::new());
    };
    let messages: Vec<String> = chunk
        .iter()
        .map(|t| sanitize(&t.message).into_owned())
        .collect();
    let mut q = DynQuery::default();
    let mut rows = String::new();
    for (k, (t, message)) in chunk.iter().zip(&messages).enumerate() {
        let id = q.text(t.id.as_str());
        let m = q.text(message.as_str());
        let sep = if k == 0 { "" } else { ", " };
        // Writing to a String cannot fail.
        let _ = write!(rows, "{sep}({id}, {m})");
    }
    let from = q.text(first.from.as_str());
    let sets = transition_sets(&mut q, first, "v.vmsg");
    q.sql = format!(
        "WITH v (vid, vmsg) AS (VALUES {rows}) UPDATE jobs SET {sets} FROM v \
         WHERE jobs.id = v.vid AND jobs.state = {from} RETURNING {JOB_COLUMNS}"
    );
    let mut updated: HashMap<String, JobRecord> = HashMap::with_capacity(chunk.len());
    for row in q.build().fetch_all(&mut *conn).await? {
        let record = decode_job(&row)?;
        updated.insert(record.id.clone(), record);
    }
    let events: Vec<(&Transition, &String)> = chunk
        .iter()
        .zip(&messages)
        .filter(|(t, _)| updated.contains_key(&t.id))
        .collect();
    if !events.is_empty() {
        let sql = values_sql(
            "job_events",
            "job_id, at, from_state, to_state, message",
            "($1, $2, $3, $4, $5)",
            5,
            events.len(),
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (t, message) in &events {
            insert = insert
                .bind(t.id.as_str())
                .bind(t.at_ms)
                .bind(t.from.as_str())
                .bind(t.to.as_str())
                .bind(message.as_str());
        }
        insert.execute(&mut *conn).await?;
    }
    let mut out = Vec::with_capacity(chunk.len());
    for t in chunk {
        match updated.remove(&t.id) {
            Some(record) => out.push(Ok(record)),
            None => match transition_in(conn, t).await {
                Err(e) if !leaves_tx_usable(&e) => return Err(e),
                r => out.push(r),
            },
        }
    }
    Ok(out)
}

/// Rolls a batch back, so that its items are written one by one: `None` for
/// [`SqlStore::batch_transitions`] to do so.
async fn roll_back(w: WriteTx<'_>) -> Option<Vec<Result<JobRecord, StoreError>>> {
    if let Err(rollback) = w.tx.rollback().await {
        tracing::debug!(error = %rollback, "rolling back a batch");
    }
    None
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
        let mut i = 0;
        while i < items.len() {
            let run = same_shape_run(&items[i..]);
            if run >= 2 {
                for size in chunk_sizes(run) {
                    let chunk = &items[i..i + size];
                    i += size;
                    for t in chunk {
                        w.touch(&t.id);
                    }
                    match transitions_many_in(&mut w.tx, chunk).await {
                        Ok(results) => out.extend(results),
                        Err(_) => return roll_back(w).await,
                    }
                }
                continue;
            }
            let t = &items[i];
            i += 1;
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
                return roll_back(w).await;
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
