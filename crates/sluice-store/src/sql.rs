//! [`SqlStore`]: the [`Store`] over `sqlx::AnyPool`, for SQLite and PostgreSQL.
//!
//! One implementation serves both databases: the SQL is portable (`$N` placeholders, integer
//! millisecond times, text JSON, `UPDATE ... RETURNING`, row-value comparison), and the few
//! differences (DDL, how a write transaction starts, pool size) hang off [`Dialect`].
//!
//! Migrations are the files under `migrations/{sqlite,postgres}/`, compiled in with
//! `include_str!` and applied by `sqlx::migrate::Migrator` (which works over `Any`), so the
//! applied versions live in sqlx's usual `_sqlx_migrations` table.
//!
//! SQLite write path: writes from this process are serialised by an async mutex and each runs
//! in `BEGIN IMMEDIATE`, so a write transaction takes SQLite's write lock up front (waiting up to
//! the busy timeout for other processes) instead of failing with `SQLITE_BUSY` when a read
//! transaction tries to upgrade. Reads run concurrently on the other pool connections (WAL).
//!
//! Layout, from the bottom up: `liveness` (PostgreSQL failover: timeouts, and which pool
//! connections are suspect after one), `pool` (the [`SqlStore`] type, opening, migrations, write
//! transactions), `rows` (row codecs and statement helpers), `jobs` (the job statements run in
//! a write transaction), `batch` and `bulk` (group commit: batched transitions; a batch of
//! submits as multi-row inserts), `orch` (the orchestration queries), `lease` (leader leases, fencing and
//! the change feed), this file, the [`Store`] implementation that puts them together, and
//! `bounded` (on PostgreSQL, every call of it bounded in time).

use async_trait::async_trait;
use sluice_core::job::{JobEvent, JobState};
use sluice_core::record::{JobRecord, NewJob};
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use sqlx::{AssertSqlSafe, Row};

use crate::auth::{AuditEntry, AuditFilter, NewToken, TokenRecord};
use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::history::{HistoryQuery, HistorySeries, RollUp, history, roll_up, roll_up_done};
use crate::orchestration::{
    DeadLetter, Fire, JobOrch, JobSet, OrchJob, Preempted, Requeue, RetryJob, SetFilter,
};
use crate::store::{JobFilter, JobPage, QueueStat, Store, Transition};
use crate::text::{exact, exact_labels, exact_opt};

mod batch;
mod bounded;
mod bulk;
mod jobs;
mod lease;
mod liveness;
mod orch;
mod pool;
mod rows;
mod schedule_update;
mod tokens;
mod usage;
mod workflow;

use jobs::{add_note_in, insert_job_in, transition_in};
pub use pool::SqlStore;
use rows::{
    DynQuery, J_JOB_COLUMNS, JOB_COLUMNS, decode_cursor, decode_event, decode_job, encode_cursor,
};

#[async_trait]
impl Store for SqlStore {
    async fn insert_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        let mut w = self.begin_write().await?;
        w.touch(&job.id);
        let result = insert_job_in(&mut w.tx, job).await;
        w.finish(result).await
    }

    async fn insert_jobs(&self, jobs: &[NewJob]) -> Vec<Result<JobRecord, StoreError>> {
        self.batch_insert_audited(jobs, &[]).await
    }

    async fn insert_jobs_audited(
        &self,
        jobs: &[NewJob],
        audits: &[Option<AuditEntry>],
    ) -> Vec<Result<JobRecord, StoreError>> {
        self.batch_insert_audited(jobs, audits).await
    }

    async fn transitions(&self, ts: &[Transition]) -> Vec<Result<JobRecord, StoreError>> {
        self.batch_transitions(ts).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        exact("id", id)?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_job).transpose()
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        exact_opt("namespace", filter.namespace.as_ref())?;
        exact_opt("name", filter.name.as_ref())?;
        exact_labels(filter.labels.iter().map(|(k, v)| (k, v)))?;
        let limit = limit.max(1);
        let mut q = DynQuery::default();
        let mut conditions: Vec<String> = Vec::new();
        // With a label filter the query walks the first label's index entries, which carry
        // created_at, in page order and joins the jobs; without, it walks jobs by created_at.
        // Either way a page reads about `limit` matching index entries, with no sort.
        let (from, created_at, id) = match filter.labels.split_first() {
            Some(((key, value), others)) => {
                let k = q.text(key.as_str());
                let v = q.text(value.as_str());
                conditions.push(format!("l.key = {k} AND l.value = {v}"));
                for (key, value) in others {
                    let k = q.text(key.as_str());
                    let v = q.text(value.as_str());
                    conditions.push(format!(
                        "EXISTS (SELECT 1 FROM job_labels o \
                         WHERE o.job_id = j.id AND o.key = {k} AND o.value = {v})"
                    ));
                }
                (
                    "job_labels l JOIN jobs j ON j.id = l.job_id",
                    "l.created_at",
                    "l.job_id",
                )
            }
            None => ("jobs j", "j.created_at", "j.id"),
        };
        if let Some(ns) = &filter.namespace {
            conditions.push(format!("j.namespace = {}", q.text(ns.as_str())));
        }
        if let Some(nss) = &filter.namespace_in {
            for ns in nss {
                exact("namespace", ns)?;
            }
            if nss.is_empty() {
                return Ok(JobPage {
                    jobs: Vec::new(),
                    next_cursor: None,
                });
            }
            let ps: Vec<String> = nss.iter().map(|ns| q.text(ns.as_str())).collect();
            conditions.push(format!("j.namespace IN ({})", ps.join(", ")));
        }
        if let Some(name) = &filter.name {
            conditions.push(format!("j.name = {}", q.text(name.as_str())));
        }
        if !filter.states.is_empty() {
            let ps: Vec<String> = filter.states.iter().map(|s| q.text(s.as_str())).collect();
            conditions.push(format!("j.state IN ({})", ps.join(", ")));
        }
        if let Some(from) = filter.created_from_ms {
            conditions.push(format!("{created_at} >= {}", q.int(from)));
        }
        if let Some(to) = filter.created_to_ms {
            conditions.push(format!("{created_at} < {}", q.int(to)));
        }
        if let Some(cursor) = cursor {
            let (cursor_ms, cursor_id) = decode_cursor(cursor)?;
            let cursor_ms = q.int(cursor_ms);
            let cursor_id = q.text(cursor_id);
            conditions.push(format!("({created_at}, {id}) < ({cursor_ms}, {cursor_id})"));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // One row more than asked tells whether there is a next page.
        let fetch = q.int(i64::from(limit) + 1);
        q.sql = format!(
            "SELECT {J_JOB_COLUMNS} FROM {from} {where_clause} \
             ORDER BY {created_at} DESC, {id} DESC LIMIT {fetch}"
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut jobs = rows.iter().map(decode_job).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if jobs.len() > limit as usize {
            jobs.truncate(limit as usize);
            jobs.last().map(encode_cursor)
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn jobs_in_states(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = DynQuery::default();
        let ps: Vec<String> = states.iter().map(|s| q.text(s.as_str())).collect();
        q.sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({}) ORDER BY enqueued_at, id",
            ps.join(", ")
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(decode_job).collect()
    }

    async fn transition(&self, t: &Transition) -> Result<JobRecord, StoreError> {
        if !t.from.can_move_to(t.to) {
            return Err(StoreError::InvalidTransition {
                id: t.id.clone(),
                from: t.from,
                to: t.to,
            });
        }
        let mut w = self.begin_write().await?;
        w.touch(&t.id);
        let result = transition_in(&mut w.tx, t).await;
        w.finish(result).await
    }

    async fn add_note(&self, id: &str, at_ms: i64, message: &str) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        let result = add_note_in(&mut w.tx, id, at_ms, message).await;
        w.finish(result).await
    }

    async fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        exact("id", id)?;
        let rows = sqlx::query(
            "SELECT job_id, at, from_state, to_state, message FROM job_events \
             WHERE job_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
        }
        rows.iter().map(decode_event).collect()
    }

    async fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        // SQLite's planner, once it has statistics, may prefer scanning a (namespace, ...) index
        // for the grouping over reading the few queued jobs by state: pin the state index.
        let from = match self.dialect {
            Dialect::Sqlite => "jobs INDEXED BY jobs_state_enqueued",
            Dialect::Postgres => "jobs",
        };
        let sql = format!(
            "SELECT namespace, level, COUNT(*) AS queued, MIN(enqueued_at) AS oldest \
             FROM {from} WHERE state = $1 GROUP BY namespace, level ORDER BY namespace, level"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(JobState::Queued.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let queued: i64 = row.try_get("queued")?;
                Ok(QueueStat {
                    namespace: row.try_get("namespace")?,
                    level: row.try_get("level")?,
                    // COUNT(*) is never negative.
                    queued: u64::try_from(queued).unwrap_or_default(),
                    oldest_enqueued_at_ms: row.try_get("oldest")?,
                })
            })
            .collect()
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError> {
        query.buckets()?;
        exact_opt("namespace", query.namespace.as_ref())?;
        exact_opt("level", query.level.as_ref())?;
        // One snapshot for every query of the history, so that the series agree.
        let begin = match self.dialect {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        };
        let mut tx = self.pool.begin_with(begin).await?;
        let result = history(&mut tx, self.dialect, query).await;
        if let Err(e) = tx.rollback().await {
            tracing::debug!(error = %e, "ending the history read transaction");
        }
        result
    }

    async fn roll_up_history(&self, now_ms: i64) -> Result<RollUp, StoreError> {
        // Most calls find nothing to do: tell without taking the write lock.
        let mut conn = self.pool.acquire().await?;
        if let Some(done) = roll_up_done(&mut conn, now_ms).await? {
            return Ok(done);
        }
        drop(conn);
        let mut w = self.begin_write().await?;
        let result = roll_up(&mut w.tx, self.dialect, now_ms).await;
        w.finish(result).await
    }

    async fn create_schedule(&self, s: &NewSchedule) -> Result<ScheduleRecord, StoreError> {
        self.orch_create_schedule(s).await
    }

    async fn get_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        self.orch_get_schedule(namespace, name).await
    }

    async fn list_schedules(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.orch_list_schedules(namespace).await
    }

    async fn due_schedules(&self, now_ms: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.orch_due_schedules(now_ms).await
    }

    async fn set_schedule_suspended(
        &self,
        namespace: &str,
        name: &str,
        suspended: bool,
        next_fire_at_ms: Option<i64>,
        at_ms: i64,
        message: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        self.orch_set_schedule_suspended(
            namespace,
            name,
            suspended,
            next_fire_at_ms,
            at_ms,
            message,
        )
        .await
    }

    async fn update_schedule(
        &self,
        s: &NewSchedule,
        at_ms: i64,
    ) -> Result<ScheduleRecord, StoreError> {
        self.orch_update_schedule(s, at_ms).await
    }

    async fn delete_schedule(&self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        self.orch_delete_schedule(namespace, name).await
    }

    async fn fire_schedule(&self, f: &Fire) -> Result<Option<JobRecord>, StoreError> {
        self.orch_fire_schedule(f).await
    }

    async fn job_orch(&self, id: &str) -> Result<Option<JobOrch>, StoreError> {
        self.orch_job_orch(id).await
    }

    async fn select_jobs(
        &self,
        filter: &SetFilter,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.orch_select_jobs(filter, limit).await
    }

    async fn delete_jobs(&self, set: JobSet, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.orch_delete_jobs(set, ids).await
    }

    async fn unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.orch_unsettled_failures().await
    }

    async fn retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError> {
        self.orch_retry_job(r).await
    }

    async fn preempt_job(&self, p: &Preempted) -> Result<JobRecord, StoreError> {
        if !matches!(p.from, JobState::Submitted | JobState::Running) {
            return Err(StoreError::InvalidTransition {
                id: p.id.clone(),
                from: p.from,
                to: JobState::Queued,
            });
        }
        let t = Transition::new(
            p.id.clone(),
            p.from,
            JobState::Queued,
            p.at_ms,
            p.message.clone(),
        );
        let mut w = self.begin_write().await?;
        w.touch(&p.id);
        let result = async {
            let rec = transition_in(&mut w.tx, &t).await?;
            sqlx::query(
                "UPDATE jobs SET preemptions = preemptions + 1, \
                 retry_round = CASE WHEN retry_round < 1 THEN 2 ELSE retry_round + 1 END \
                 WHERE id = $1",
            )
            .bind(p.id.as_str())
            .execute(&mut *w.tx)
            .await?;
            Ok(rec)
        }
        .await;
        w.finish(result).await
    }

    async fn dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError> {
        self.orch_dead_letter(d).await
    }

    async fn expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError> {
        self.orch_expire_queued(id, at_ms, reason).await
    }

    async fn requeue_dead_letter(&self, r: &Requeue) -> Result<JobRecord, StoreError> {
        self.orch_requeue_dead_letter(r).await
    }

    async fn queued_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        self.orch_queued_past_deadline(now_ms, limit).await
    }

    async fn count_dead_letters(&self) -> Result<u64, StoreError> {
        self.orch_count_dead_letters().await
    }

    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        self.create_token_sql(token).await
    }

    async fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.token_by_hash_sql(secret_hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.list_tokens_sql().await
    }

    async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<TokenRecord, StoreError> {
        self.revoke_token_sql(id, at_ms).await
    }

    async fn count_tokens(&self) -> Result<u64, StoreError> {
        self.count_tokens_sql().await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.record_audit_sql(entry).await
    }

    async fn record_audits(&self, entries: &[AuditEntry]) -> Vec<Result<(), StoreError>> {
        self.record_audits_sql(entries).await
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_log_sql(filter, limit).await
    }

    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.purge_audit_sql(before_ms).await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<crate::Lease>, StoreError> {
        self.acquire_lease_sql(name, holder, ttl_ms).await
    }

    async fn renew_lease(
        &self,
        lease: &crate::Lease,
        ttl_ms: i64,
    ) -> Result<Option<crate::Lease>, StoreError> {
        self.renew_lease_sql(lease, ttl_ms).await
    }

    async fn release_lease(&self, lease: &crate::Lease) -> Result<(), StoreError> {
        self.release_lease_sql(lease).await
    }

    async fn get_lease(&self, name: &str) -> Result<Option<crate::Lease>, StoreError> {
        self.get_lease_sql(name).await
    }

    fn fenced(&self, lease: &crate::Lease) -> std::sync::Arc<dyn Store> {
        std::sync::Arc::new(self.fenced_sql(lease))
    }

    async fn changes(
        &self,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<crate::StoreChange>>, StoreError> {
        self.changes_sql().await
    }

    async fn request_stop(&self, id: &str) -> Result<bool, StoreError> {
        self.request_stop_sql(id).await
    }

    async fn set_schedule_template(
        &self,
        namespace: &str,
        name: &str,
        template: &serde_json::Value,
        at_ms: i64,
        message: &str,
    ) -> Result<sluice_core::schedule::ScheduleRecord, StoreError> {
        self.set_schedule_template_sql(namespace, name, template, at_ms, message)
            .await
    }

    async fn put_usage(&self, record: &sluice_core::cost::UsageRecord) -> Result<(), StoreError> {
        self.put_usage_sql(record).await
    }

    async fn put_run_result(
        &self,
        job_id: &str,
        attempt: u32,
        at_ms: i64,
        result: &sluice_core::run_result::RunResult,
    ) -> Result<(), StoreError> {
        self.put_run_result_sql(job_id, attempt, at_ms, result)
            .await
    }

    async fn run_results(
        &self,
        job_id: &str,
    ) -> Result<Vec<(u32, sluice_core::run_result::RunResult)>, StoreError> {
        self.run_results_sql(job_id).await
    }

    async fn usage(
        &self,
        filter: &crate::usage::UsageFilter,
        limit: u32,
    ) -> Result<Vec<sluice_core::cost::UsageRecord>, StoreError> {
        self.usage_sql(filter, limit).await
    }

    async fn apply_workflow(
        &self,
        w: &crate::workflow::NewWorkflow,
    ) -> Result<
        (
            crate::workflow::WorkflowApplied,
            crate::workflow::WorkflowRecord,
        ),
        StoreError,
    > {
        self.apply_workflow_sql(w).await
    }

    async fn get_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<crate::workflow::WorkflowRecord>, StoreError> {
        self.get_workflow_sql(namespace, name).await
    }

    async fn list_workflows(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<crate::workflow::WorkflowRecord>, StoreError> {
        self.list_workflows_sql(namespace).await
    }

    async fn due_workflows(
        &self,
        now_ms: i64,
    ) -> Result<Vec<crate::workflow::WorkflowRecord>, StoreError> {
        self.due_workflows_sql(now_ms).await
    }

    async fn fire_workflow(
        &self,
        f: &crate::workflow::WorkflowFire,
    ) -> Result<Option<crate::workflow::WorkflowRunRecord>, StoreError> {
        self.fire_workflow_sql(f).await
    }

    async fn get_workflow_run(
        &self,
        id: &str,
    ) -> Result<Option<crate::workflow::WorkflowRunRecord>, StoreError> {
        self.get_workflow_run_sql(id).await
    }

    async fn list_workflow_runs(
        &self,
        filter: &crate::workflow::RunFilter,
        limit: u32,
    ) -> Result<Vec<crate::workflow::WorkflowRunRecord>, StoreError> {
        self.list_workflow_runs_sql(filter, limit).await
    }

    async fn update_workflow_run(
        &self,
        u: &crate::workflow::RunUpdate,
    ) -> Result<(crate::workflow::WorkflowRunRecord, Vec<JobRecord>), StoreError> {
        self.update_workflow_run_sql(u).await
    }

    async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests;
