//! Usage records over [`SqlStore`]: one row per run in `run_usage`, the record as JSON; and
//! run results (a dbt run's nodes), one row per run in `run_results`.

use sluice_core::cost::UsageRecord;
use sluice_core::run_result::RunResult;
use sqlx::Row;

use super::pool::SqlStore;
use super::rows::DynQuery;
use crate::error::StoreError;
use crate::text::{exact, sanitize};
use crate::usage::UsageFilter;

impl SqlStore {
    /// Replaces a schedule's template (right-sizing advice applied on request).
    pub(super) async fn set_schedule_template_sql(
        &self,
        namespace: &str,
        name: &str,
        template: &serde_json::Value,
        at_ms: i64,
        message: &str,
    ) -> Result<sluice_core::schedule::ScheduleRecord, StoreError> {
        exact("namespace", namespace)?;
        exact("name", name)?;
        let template = serde_json::to_string(template)
            .map_err(|e| StoreError::Corrupt(format!("the schedule's template: {e}")))?;
        let message = sanitize(message);
        let mut w = self.begin_write().await?;
        let result = async {
            let done = sqlx::query(
                "UPDATE schedules SET template = $3, updated_at = $4, last_message = $5 \
                 WHERE namespace = $1 AND name = $2",
            )
            .bind(namespace)
            .bind(name)
            .bind(&template)
            .bind(at_ms)
            .bind(message.as_ref())
            .execute(&mut *w.tx)
            .await?;
            let missing = || StoreError::NoSchedule {
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            if done.rows_affected() == 0 {
                return Err(missing());
            }
            super::orch::get_schedule_in(&mut w.tx, namespace, name)
                .await?
                .ok_or_else(missing)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn put_usage_sql(&self, r: &UsageRecord) -> Result<(), StoreError> {
        exact("job_id", &r.job_id)?;
        exact("namespace", &r.namespace)?;
        exact("name", &r.name)?;
        if let Some(s) = &r.schedule {
            exact("schedule", s)?;
        }
        let detail = serde_json::to_string(r)
            .map_err(|e| StoreError::Corrupt(format!("encoding the usage of {}: {e}", r.job_id)))?;
        let mut w = self.begin_write().await?;
        let result = async {
            sqlx::query(
                "INSERT INTO run_usage (job_id, attempt, namespace, name, schedule, started_at, \
                 ended_at, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (job_id, attempt) DO UPDATE SET namespace = excluded.namespace, \
                 name = excluded.name, schedule = excluded.schedule, \
                 started_at = excluded.started_at, ended_at = excluded.ended_at, \
                 outcome = excluded.outcome, detail = excluded.detail",
            )
            .bind(&r.job_id)
            .bind(i64::from(r.attempt))
            .bind(&r.namespace)
            .bind(&r.name)
            .bind(r.schedule.as_deref())
            .bind(r.started_at_ms)
            .bind(r.ended_at_ms)
            .bind(r.outcome.as_str())
            .bind(&detail)
            .execute(&mut *w.tx)
            .await?;
            Ok(())
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn usage_sql(
        &self,
        f: &UsageFilter,
        limit: u32,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let mut q = DynQuery::default();
        let mut conditions = vec![
            format!("ended_at >= {}", q.int(f.from_ms)),
            format!("ended_at < {}", q.int(f.to_ms)),
        ];
        if let Some(ns) = &f.namespace {
            conditions.push(format!("namespace = {}", q.text(exact("namespace", ns)?)));
        }
        if let Some(nss) = &f.namespace_in {
            if nss.is_empty() {
                return Ok(Vec::new());
            }
            let mut ps = Vec::new();
            for ns in nss {
                ps.push(q.text(exact("namespace", ns)?));
            }
            conditions.push(format!("namespace IN ({})", ps.join(", ")));
        }
        if let Some(name) = &f.name {
            conditions.push(format!("name = {}", q.text(exact("name", name)?)));
        }
        if let Some(s) = &f.schedule {
            conditions.push(format!("schedule = {}", q.text(exact("schedule", s)?)));
        }
        let fetch = q.int(i64::from(limit.max(1)));
        q.sql = format!(
            "SELECT job_id, attempt, detail FROM run_usage WHERE {} \
             ORDER BY ended_at, job_id, attempt LIMIT {fetch}",
            conditions.join(" AND ")
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("job_id")?;
                let attempt: i64 = row.try_get("attempt")?;
                let detail: String = row.try_get("detail")?;
                serde_json::from_str(&detail).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "run_usage.detail of job {id:?} attempt {attempt}: {e}"
                    ))
                })
            })
            .collect()
    }

    pub(super) async fn put_run_result_sql(
        &self,
        job_id: &str,
        attempt: u32,
        at_ms: i64,
        result: &RunResult,
    ) -> Result<(), StoreError> {
        exact("job_id", job_id)?;
        let detail = serde_json::to_string(result)
            .map_err(|e| StoreError::Corrupt(format!("encoding the result of {job_id}: {e}")))?;
        // JSON escapes every control character of a tool's messages: the text is storable.
        let mut w = self.begin_write().await?;
        let result = async {
            sqlx::query(
                "INSERT INTO run_results (job_id, attempt, created_at, detail) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, attempt) DO UPDATE SET \
                 created_at = excluded.created_at, detail = excluded.detail",
            )
            .bind(job_id)
            .bind(i64::from(attempt))
            .bind(at_ms)
            .bind(&detail)
            .execute(&mut *w.tx)
            .await?;
            Ok(())
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn run_results_sql(
        &self,
        job_id: &str,
    ) -> Result<Vec<(u32, RunResult)>, StoreError> {
        exact("job_id", job_id)?;
        let rows = sqlx::query(
            "SELECT attempt, detail FROM run_results WHERE job_id = $1 ORDER BY attempt",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let attempt: i64 = row.try_get("attempt")?;
                let detail: String = row.try_get("detail")?;
                let r = serde_json::from_str(&detail).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "run_results.detail of job {job_id:?} attempt {attempt}: {e}"
                    ))
                })?;
                let attempt = u32::try_from(attempt).map_err(|_| {
                    StoreError::Corrupt(format!("run_results.attempt of job {job_id:?}: {attempt}"))
                })?;
                Ok((attempt, r))
            })
            .collect()
    }
}
