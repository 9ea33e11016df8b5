//! A batch of submits (group commit) written with multi-row `INSERT`s: the batch's jobs,
//! their labels, their first timeline events and the audit entries that go with them, all in
//! one transaction. On SQLite each chunk of jobs is one statement text holding the four
//! inserts (the labels and events read the jobs' own binds: `json_each` over the labels
//! JSON), so one call to the connection's thread per chunk; on PostgreSQL, which takes one
//! statement per call, one multi-row insert per table and chunk. Against one statement per
//! row this saves most of the per-statement work (a call to SQLite's worker thread, each
//! waiting for the writing task to be polled again; a round trip to the PostgreSQL server).
//!
//! Rows go in chunks of [`CHUNKS`] sizes, biggest first, so that there are only a few
//! statement texts, each prepared once per connection and then taken from sqlx's statement
//! cache. A chunk of the largest size stays far under both databases' bind limits.
//!
//! Bad input is found before any statement runs ([`JobRow::new`], [`check_audit`]) and fails
//! its own item only. Any statement that fails (a duplicate id, a lost connection) rolls the
//! whole batch back, and every job is then written in its own transaction, so each gets the
//! answer it would have had alone (see [`SqlStore::batch_insert_audited`]).

use std::fmt::Write as _;

use sluice_core::job::JobState;
use sluice_core::record::{JobRecord, NewJob};
use sqlx::AnyConnection;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::jobs::{
    JOB_INSERT_BINDS, JOB_INSERT_COLUMNS, JOB_INSERT_ROW, JobRow, bind_job, insert_job_in,
};
use super::pool::SqlStore;
use super::rows::is_unique_violation;
use super::tokens::{AUDIT_COLUMNS, AUDIT_INSERT_BINDS, AUDIT_INSERT_ROW, audit_text, check_audit};
use crate::auth::AuditEntry;
use crate::dialect::Dialect;
use crate::error::StoreError;

/// An audit entry's free text, made storable: `(subject, detail, peer)`.
type AuditText = (String, Option<String>, Option<String>);

/// The rows one statement inserts, biggest first.
pub(super) const CHUNKS: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// `n` rows split into [`CHUNKS`] sizes, biggest first (25 = 16 + 8 + 1).
pub(super) fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for size in CHUNKS {
        while n >= size {
            out.push(size);
            n -= size;
        }
    }
    out
}

/// `row` (a `$1`-based values tuple) with every placeholder moved up by `by`.
fn shifted(row: &str, by: usize, out: &mut String) {
    let mut rest = row;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..digits].parse::<usize>() {
            Ok(n) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "{}", n + by);
            }
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// `INSERT INTO table (columns) VALUES row, row, ...`: `rows` copies of `row`, each one's
/// placeholders after the previous one's `binds`.
pub(super) fn values_sql(
    table: &str,
    columns: &str,
    row: &str,
    binds: usize,
    rows: usize,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
    for k in 0..rows {
        if k > 0 {
            sql.push_str(", ");
        }
        shifted(row, k * binds, &mut sql);
    }
    sql
}

/// Runs `bind(query, item)` for each item of `items`, chunk by chunk, one statement each.
async fn insert_chunked<'q, T: 'q>(
    conn: &mut AnyConnection,
    items: &'q [T],
    statement: impl Fn(usize) -> String,
    bind: impl Fn(Query<'q, sqlx::Any, AnyArguments>, &'q T) -> Query<'q, sqlx::Any, AnyArguments>,
) -> Result<(), sqlx::Error> {
    let mut rest = items;
    for size in chunk_sizes(items.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(statement(size)));
        for item in chunk {
            q = bind(q, item);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A job to insert and the audit entry that goes with it, if any.
type Item<'r, 'j> = (&'r JobRow<'j>, Option<&'r AuditEntry>);

/// Binds an entry's [`AUDIT_INSERT_ROW`] values.
fn bind_audit<'q>(
    q: Query<'q, sqlx::Any, AnyArguments>,
    (e, (subject, detail, peer)): &'q (&AuditEntry, AuditText),
) -> Query<'q, sqlx::Any, AnyArguments> {
    q.bind(e.id.as_str())
        .bind(e.at_ms)
        .bind(e.actor.as_str())
        .bind(subject.as_str())
        .bind(e.action.as_str())
        .bind(e.namespace.as_deref())
        .bind(e.target.as_deref())
        .bind(detail.as_deref())
        .bind(peer.as_deref())
}

/// The first timeline event of each of `rows` jobs, from their [`JOB_INSERT_ROW`] binds
/// (`$1` id, `$9` creation time, `$5` state): no binds of its own.
fn events_sql(rows: usize) -> String {
    values_sql(
        "job_events",
        "job_id, at, from_state, to_state, message",
        "($1, $9, NULL, $5, $5)",
        JOB_INSERT_BINDS,
        rows,
    )
}

/// SQLite: the labels of each of `rows` jobs, read back out of their labels JSON (`$6`) by
/// `json_each`, with the id (`$1`) and creation time (`$9`): no binds of its own.
fn sqlite_labels_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO job_labels (job_id, key, value, created_at) \
         SELECT v.column1, j.key, j.value, v.column2 FROM (VALUES ",
    );
    for k in 0..rows {
        if k > 0 {
            sql.push_str(", ");
        }
        shifted("($1, $9, $6)", k * JOB_INSERT_BINDS, &mut sql);
    }
    sql.push_str(") AS v, json_each(v.column3) AS j");
    sql
}

/// SQLite: one statement text, run in one call to the connection's thread, for `jobs` rows
/// with their labels and events and, if `audits`, as many audit entries bound after them.
/// Every call to that thread waits for the writing task to be polled again, behind the HTTP
/// tasks under load, so one call per chunk instead of one per table is what makes the
/// batch short.
fn sqlite_chunk_sql(jobs: usize, audits: bool) -> String {
    let mut sql = values_sql(
        "jobs",
        JOB_INSERT_COLUMNS,
        JOB_INSERT_ROW,
        JOB_INSERT_BINDS,
        jobs,
    );
    sql.push_str(";\n");
    sql.push_str(&events_sql(jobs));
    sql.push_str(";\n");
    sql.push_str(&sqlite_labels_sql(jobs));
    if audits {
        sql.push_str(";\nINSERT INTO audit_log (");
        sql.push_str(AUDIT_COLUMNS);
        sql.push_str(") VALUES ");
        for k in 0..jobs {
            if k > 0 {
                sql.push_str(", ");
            }
            shifted(
                AUDIT_INSERT_ROW,
                jobs * JOB_INSERT_BINDS + k * AUDIT_INSERT_BINDS,
                &mut sql,
            );
        }
    }
    sql
}

/// Inserts the jobs of `items` (checked rows) with their labels and first events, and their
/// audit entries, inside the caller's transaction.
async fn insert_rows(
    conn: &mut AnyConnection,
    dialect: Dialect,
    items: &[Item<'_, '_>],
) -> Result<(), sqlx::Error> {
    let mut loose: Vec<(&AuditEntry, AuditText)> = Vec::new();
    match dialect {
        Dialect::Sqlite => {
            let mut rest = items;
            for size in chunk_sizes(items.len()) {
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let audited: Vec<(&AuditEntry, AuditText)> = chunk
                    .iter()
                    .filter_map(|(_, e)| e.map(|e| (e, audit_text(e))))
                    .collect();
                let with_audits = audited.len() == chunk.len();
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sqlite_chunk_sql(size, with_audits)));
                for (row, _) in chunk {
                    q = bind_job(q, row);
                }
                if with_audits {
                    for entry in &audited {
                        q = bind_audit(q, entry);
                    }
                    q.execute(&mut *conn).await?;
                } else {
                    q.execute(&mut *conn).await?;
                    loose.extend(audited);
                }
            }
        }
        Dialect::Postgres => {
            let rows: Vec<&JobRow<'_>> = items.iter().map(|(row, _)| *row).collect();
            insert_chunked(
                conn,
                &rows,
                |n| {
                    values_sql(
                        "jobs",
                        JOB_INSERT_COLUMNS,
                        JOB_INSERT_ROW,
                        JOB_INSERT_BINDS,
                        n,
                    )
                },
                |q, row| bind_job(q, row),
            )
            .await?;
            let labels: Vec<(&NewJob, &str, &str)> = rows
                .iter()
                .flat_map(|row| {
                    row.job
                        .labels
                        .iter()
                        .map(|(k, v)| (row.job, k.as_str(), v.as_str()))
                })
                .collect();
            insert_chunked(
                conn,
                &labels,
                |n| {
                    values_sql(
                        "job_labels",
                        "job_id, key, value, created_at",
                        "($1, $2, $3, $4)",
                        4,
                        n,
                    )
                },
                |q, (job, key, value)| {
                    q.bind(job.id.as_str())
                        .bind(*key)
                        .bind(*value)
                        .bind(job.created_at_ms)
                },
            )
            .await?;
            insert_chunked(
                conn,
                &rows,
                |n| {
                    values_sql(
                        "job_events",
                        "job_id, at, from_state, to_state, message",
                        "($1, $2, NULL, $3, $3)",
                        3,
                        n,
                    )
                },
                |q, row| {
                    q.bind(row.job.id.as_str())
                        .bind(row.job.created_at_ms)
                        .bind(JobState::Queued.as_str())
                },
            )
            .await?;
            loose.extend(
                items
                    .iter()
                    .filter_map(|(_, e)| e.map(|e| (e, audit_text(e)))),
            );
        }
    }
    insert_chunked(
        conn,
        &loose,
        |n| {
            values_sql(
                "audit_log",
                AUDIT_COLUMNS,
                AUDIT_INSERT_ROW,
                AUDIT_INSERT_BINDS,
                n,
            )
        },
        bind_audit,
    )
    .await
}

/// Logs an audit entry that could not be written: the action it records has happened.
fn audit_failed(e: &AuditEntry, err: &StoreError) {
    tracing::error!(
        actor = %e.actor,
        action = %e.action,
        "recording the audit entry failed: {err}"
    );
}

impl SqlStore {
    /// Writes `jobs` and their `entries` in one transaction; false if anything failed (then
    /// nothing was written).
    async fn bulk_in_one(&self, items: &[Item<'_, '_>]) -> bool {
        let mut w = match self.begin_write().await {
            Ok(w) => w,
            Err(_) => return false,
        };
        for (row, _) in items {
            w.touch(&row.job.id);
        }
        let written = insert_rows(&mut w.tx, self.dialect, items).await;
        if let Err(e) = &written
            && !is_unique_violation(e)
        {
            tracing::debug!(error = %e, "a batch of submits failed; writing them one by one");
        }
        w.finish(written.map_err(StoreError::from)).await.is_ok()
    }

    /// Inserts each job as [`crate::Store::insert_job`] does and, with each job inserted, its
    /// audit entry (`audits[i]` goes with `jobs[i]`; missing or `None` for none), all in one
    /// transaction: the results of the jobs, in order, each as it would be alone. An entry
    /// that cannot be written is logged, not returned: its job has been submitted.
    pub(super) async fn batch_insert_audited(
        &self,
        jobs: &[NewJob],
        audits: &[Option<AuditEntry>],
    ) -> Vec<Result<JobRecord, StoreError>> {
        let rows: Vec<Result<JobRow<'_>, StoreError>> = jobs.iter().map(JobRow::new).collect();
        let audit_of = |i: usize| audits.get(i).and_then(Option::as_ref);
        let mut good: Vec<Item<'_, '_>> = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let Ok(row) = row else { continue };
            let entry = audit_of(i).filter(|e| match check_audit(e) {
                Ok(()) => true,
                Err(err) => {
                    audit_failed(e, &err);
                    false
                }
            });
            good.push((row, entry));
        }
        if good.is_empty() || self.bulk_in_one(&good).await {
            return rows
                .into_iter()
                .map(|r| r.map(|row| row.record()))
                .collect();
        }
        // Each job alone, then its entry.
        let mut out = Vec::with_capacity(jobs.len());
        for (i, row) in rows.into_iter().enumerate() {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let inserted = match self.begin_write().await {
                Ok(mut w) => {
                    w.touch(&row.job.id);
                    let r = insert_job_in(&mut w.tx, row.job).await;
                    w.finish(r).await
                }
                Err(e) => Err(e),
            };
            if inserted.is_ok()
                && let Some(e) = audit_of(i)
                && check_audit(e).is_ok()
                && let Err(err) = self.record_audit_sql(e).await
            {
                audit_failed(e, &err);
            }
            out.push(inserted);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_with_few_statement_sizes() {
        for n in 0..200 {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}");
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{n}: {sizes:?}");
            assert!(sizes.iter().all(|s| CHUNKS.contains(s)));
        }
        assert_eq!(chunk_sizes(25), vec![16, 8, 1]);
        assert_eq!(chunk_sizes(70), vec![32, 32, 4, 2]);
    }

    #[test]
    fn rows_are_numbered_on_from_the_previous_row() {
        assert_eq!(
            values_sql("t", "a, b, c", "($1, NULL, $2, $2)", 2, 3),
            "INSERT INTO t (a, b, c) VALUES ($1, NULL, $2, $2), ($3, NULL, $4, $4), \
             ($5, NULL, $6, $6)"
        );
        let mut out = String::new();
        shifted("($9, $10, 1, $11)", 13, &mut out);
        assert_eq!(out, "($22, $23, 1, $24)");
    }
}
