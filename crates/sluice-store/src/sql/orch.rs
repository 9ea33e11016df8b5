//! The orchestration part of [`SqlStore`] (migration 0002): schedules, retries, the
//! dead-letter queue, queue TTLs, requeue and purge. Each method is one transaction with a
//! compare-and-set on the state it expects, like [`super::jobs::transition_in`]. State changes keep
//! the history columns of migration 0003 (`admitted_at`, `dequeued_at`, `cpu_milli`,
//! `mem_mib`) as `transition` does, and the queue deadline of migration 0005 (`queue_ttl_ms`,
//! `queue_deadline`): set whenever a job enters its queue, cleared whenever it leaves.

use sluice_core::job::JobState;
use sluice_core::record::JobRecord;
use sluice_core::schedule::{NewSchedule, ScheduleRecord};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::jobs::insert_job_in;
use super::pool::SqlStore;
use super::rows::{
    Arg, DynQuery, J_JOB_COLUMNS, JOB_COLUMNS, decode_job, is_unique_violation, parse_state,
};
use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::orchestration::{
    DeadLetter, Fire, JobOrch, JobSet, OrchJob, Requeue, RequeuePlace, RetryJob, SetFilter,
    queue_ttl_ms,
};
use crate::text::{exact, exact_labels, exact_opt, sanitize};

/// The orchestration columns, qualified with `j`.
const J_ORCH_COLUMNS: &str = "j.schedule, j.scheduled_for, j.retry_round, j.retry_at, \
     j.queued_at, j.queue_deadline, j.failure_class, j.dlq_at, j.dlq_reason, j.preemptions";

const SCHEDULE_COLUMNS: &str = "namespace, name, cron, time_zone, concurrency, missed_runs, \
     catch_up_window_secs, suspended, level, template, source, created_at, updated_at, \
     next_fire_at, last_fire_at, last_job_id, last_message";

/// Reset of the run fields when a job goes back to its queue (and of the history columns).
const BACK_TO_QUEUE: &str = "started_at = NULL, finished_at = NULL, backend_ref = NULL, \
     exit_code = NULL, admitted_at = NULL, dequeued_at = NULL";

fn decode_orch(row: &AnyRow, id: &str) -> Result<JobOrch, StoreError> {
    let round: i64 = row.try_get("retry_round")?;
    Ok(JobOrch {
        schedule: row.try_get("schedule")?,
        scheduled_for_ms: row.try_get("scheduled_for")?,
        retry_round: u32::try_from(round).map_err(|_| {
            StoreError::Corrupt(format!(
                "jobs.retry_round of job {id:?} is {round}, not a valid attempt number"
            ))
        })?,
        retry_at_ms: row.try_get("retry_at")?,
        queued_at_ms: row.try_get("queued_at")?,
        queue_deadline_ms: row.try_get("queue_deadline")?,
        failure_class: row.try_get("failure_class")?,
        dlq_at_ms: row.try_get("dlq_at")?,
        dlq_reason: row.try_get("dlq_reason")?,
        preemptions: {
            let n: i64 = row.try_get("preemptions")?;
            u32::try_from(n).map_err(|_| {
                StoreError::Corrupt(format!(
                    "jobs.preemptions of job {id:?} is {n}, not a count"
                ))
            })?
        },
    })
}

fn decode_schedule(row: &AnyRow) -> Result<ScheduleRecord, StoreError> {
    let namespace: String = row.try_get("namespace")?;
    let name: String = row.try_get("name")?;
    let corrupt = |column: &str, value: &str, why: &str| {
        StoreError::Corrupt(format!(
            "schedules.{column} of schedule {namespace}/{name} is {value:?}: {why}"
        ))
    };
    let concurrency: String = row.try_get("concurrency")?;
    let concurrency = concurrency
        .parse()
        .map_err(|e: String| corrupt("concurrency", &concurrency, &e))?;
    let missed: String = row.try_get("missed_runs")?;
    let missed_runs = missed
        .parse()
        .map_err(|e: String| corrupt("missed_runs", &missed, &e))?;
    let window: i64 = row.try_get("catch_up_window_secs")?;
    let catch_up_window_secs = u64::try_from(window)
        .map_err(|_| corrupt("catch_up_window_secs", &window.to_string(), "negative"))?;
    let suspended: i64 = row.try_get("suspended")?;
    let template: String = row.try_get("template")?;
    let template = serde_json::from_str(&template)
        .map_err(|e| corrupt("template", &template, &format!("not JSON: {e}")))?;
    Ok(ScheduleRecord {
        cron: row.try_get("cron")?,
        time_zone: row.try_get("time_zone")?,
        concurrency,
        missed_runs,
        catch_up_window_secs,
        suspended: suspended != 0,
        level: row.try_get("level")?,
        template,
        source: row.try_get("source")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        next_fire_at_ms: row.try_get("next_fire_at")?,
        last_fire_at_ms: row.try_get("last_fire_at")?,
        last_job_id: row.try_get("last_job_id")?,
        last_message: row.try_get("last_message")?,
        namespace,
        name,
    })
}

async fn event_in(
    conn: &mut AnyConnection,
    id: &str,
    at_ms: i64,
    from: JobState,
    to: JobState,
    message: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO job_events (job_id, at, from_state, to_state, message) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(at_ms)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(sanitize(message).as_ref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// After a compare-and-set matched nothing: [`StoreError::NotFound`] or the given error.
async fn missing_or(
    conn: &mut AnyConnection,
    id: &str,
    otherwise: StoreError,
) -> Result<StoreError, StoreError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match exists {
        None => StoreError::NotFound(id.to_string()),
        Some(_) => otherwise,
    })
}

async fn schedule_missing_or(
    conn: &mut AnyConnection,
    namespace: &str,
    name: &str,
    otherwise: StoreError,
) -> Result<StoreError, StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT name FROM schedules WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match exists {
        None => StoreError::NoSchedule {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        Some(_) => otherwise,
    })
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn encode_error(what: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what} does not encode: {e}"))
}

pub(super) async fn get_schedule_in(
    conn: &mut AnyConnection,
    namespace: &str,
    name: &str,
) -> Result<Option<ScheduleRecord>, StoreError> {
    let sql =
        format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE namespace = $1 AND name = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(namespace)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode_schedule).transpose()
}

/// A schedule's exact fields checked, and its template encoded (create and update).
pub(super) fn checked_template(s: &NewSchedule) -> Result<String, StoreError> {
    for (field, value) in [
        ("namespace", &s.namespace),
        ("name", &s.name),
        ("cron", &s.cron),
        ("time_zone", &s.time_zone),
        ("level", &s.level),
        ("source", &s.source),
    ] {
        exact(field, value)?;
    }
    serde_json::to_string(&s.template).map_err(encode_error("the schedule's template"))
}

impl SqlStore {
    pub(super) async fn orch_create_schedule(
        &self,
        s: &NewSchedule,
    ) -> Result<ScheduleRecord, StoreError> {
        let template = checked_template(s)?;
        let mut w = self.begin_write().await?;
        let result = async {
            let done = sqlx::query(
                "INSERT INTO schedules (namespace, name, cron, time_zone, concurrency, missed_runs, \
                 catch_up_window_secs, suspended, level, template, source, created_at, updated_at, \
                 next_fire_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
            )
            .bind(s.namespace.as_str())
            .bind(s.name.as_str())
            .bind(s.cron.as_str())
            .bind(s.time_zone.as_str())
            .bind(s.concurrency.as_str())
            .bind(s.missed_runs.as_str())
            .bind(to_i64(s.catch_up_window_secs))
            .bind(i64::from(s.suspended))
            .bind(s.level.as_str())
            .bind(template.as_str())
            .bind(s.source.as_str())
            .bind(s.created_at_ms)
            .bind(s.next_fire_at_ms)
            .execute(&mut *w.tx)
            .await;
            match done {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::DuplicateSchedule {
                        namespace: s.namespace.clone(),
                        name: s.name.clone(),
                    });
                }
                other => other?,
            };
            get_schedule_in(&mut w.tx, &s.namespace, &s.name)
                .await?
                .ok_or_else(|| StoreError::NoSchedule {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                })
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_get_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        exact("namespace", namespace)?;
        exact("name", name)?;
        let mut conn = self.pool.acquire().await?;
        get_schedule_in(&mut conn, namespace, name).await
    }

    pub(super) async fn orch_list_schedules(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        if let Some(ns) = namespace {
            exact("namespace", ns)?;
        }
        let mut q = DynQuery::default();
        let filter = match namespace {
            Some(ns) => format!("WHERE namespace = {}", q.text(ns)),
            None => String::new(),
        };
        q.sql =
            format!("SELECT {SCHEDULE_COLUMNS} FROM schedules {filter} ORDER BY namespace, name");
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(decode_schedule).collect()
    }

    pub(super) async fn orch_due_schedules(
        &self,
        now_ms: i64,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        let sql = format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules \
             WHERE suspended = 0 AND next_fire_at <= $1 ORDER BY next_fire_at, namespace, name"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_schedule).collect()
    }

    pub(super) async fn orch_set_schedule_suspended(
        &self,
        namespace: &str,
        name: &str,
        suspended: bool,
        next_fire_at_ms: Option<i64>,
        at_ms: i64,
        message: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        exact("namespace", namespace)?;
        exact("name", name)?;
        let message = sanitize(message);
        let mut w = self.begin_write().await?;
        let result = async {
            let done = sqlx::query(
                "UPDATE schedules SET suspended = $3, next_fire_at = $4, updated_at = $5, \
                 last_message = $6 WHERE namespace = $1 AND name = $2",
            )
            .bind(namespace)
            .bind(name)
            .bind(i64::from(suspended))
            .bind(next_fire_at_ms)
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
            get_schedule_in(&mut w.tx, namespace, name)
                .await?
                .ok_or_else(missing)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_delete_schedule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        exact("namespace", namespace)?;
        exact("name", name)?;
        let mut w = self.begin_write().await?;
        let result = sqlx::query("DELETE FROM schedules WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .execute(&mut *w.tx)
            .await
            .map(|d| d.rows_affected() > 0)
            .map_err(StoreError::from);
        w.finish(result).await
    }

    pub(super) async fn orch_fire_schedule(
        &self,
        f: &Fire,
    ) -> Result<Option<JobRecord>, StoreError> {
        exact("namespace", &f.namespace)?;
        exact("name", &f.name)?;
        let fire_message = sanitize(&f.message);
        let mut w = self.begin_write().await?;
        if let Some(run) = &f.run {
            w.touch(&run.job.id);
        }
        let result = async {
            let mut q = DynQuery::default();
            let ns = q.text(f.namespace.as_str());
            let name = q.text(f.name.as_str());
            let at = q.int(f.at_ms);
            let message = q.text(fire_message.as_ref());
            let mut sets = format!("updated_at = {at}, last_message = {message}");
            let mut conds = format!("namespace = {ns} AND name = {name}");
            if let Some(a) = &f.advance {
                let next = match a.next_fire_at_ms {
                    Some(n) => q.int(n),
                    None => "NULL".to_string(),
                };
                sets.push_str(&format!(", next_fire_at = {next}"));
                match a.expected_next_fire_at_ms {
                    Some(e) => conds.push_str(&format!(" AND next_fire_at = {}", q.int(e))),
                    None => conds.push_str(" AND next_fire_at IS NULL"),
                }
                conds.push_str(" AND suspended = 0");
            }
            if let Some(run) = &f.run {
                let id = q.text(run.job.id.as_str());
                sets.push_str(&format!(", last_fire_at = {at}, last_job_id = {id}"));
            }
            q.sql = format!("UPDATE schedules SET {sets} WHERE {conds}");
            let done = q.build().execute(&mut *w.tx).await?;
            if done.rows_affected() == 0 {
                let stale = StoreError::Stale(format!(
                    "schedule {}/{} is suspended or its next fire time is no longer {:?}",
                    f.namespace,
                    f.name,
                    f.advance.and_then(|a| a.expected_next_fire_at_ms)
                ));
                return Err(schedule_missing_or(&mut w.tx, &f.namespace, &f.name, stale).await?);
            }
            let Some(run) = &f.run else {
                return Ok(None);
            };
            insert_job_in(&mut w.tx, &run.job).await?;
            sqlx::query("UPDATE jobs SET schedule = $2, scheduled_for = $3 WHERE id = $1")
                .bind(run.job.id.as_str())
                .bind(f.name.as_str())
                .bind(run.scheduled_for_ms)
                .execute(&mut *w.tx)
                .await?;
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(run.job.id.as_str())
                .fetch_one(&mut *w.tx)
                .await?;
            decode_job(&row).map(Some)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_job_orch(&self, id: &str) -> Result<Option<JobOrch>, StoreError> {
        exact("id", id)?;
        let sql = format!("SELECT {J_ORCH_COLUMNS} FROM jobs j WHERE j.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_orch(&r, id)).transpose()
    }

    pub(super) async fn orch_select_jobs(
        &self,
        f: &SetFilter,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        for id in &f.ids {
            exact("ids", id)?;
        }
        exact_opt("namespace", f.namespace.as_ref())?;
        exact_opt("level", f.level.as_ref())?;
        exact_opt("schedule", f.schedule.as_ref())?;
        exact_labels(f.labels.iter().map(|(k, v)| (k, v)))?;
        let mut q = DynQuery::default();
        let mut conds = vec![set_condition(&mut q, f.set)];
        if !f.ids.is_empty() {
            let ps: Vec<String> = f.ids.iter().map(|i| q.text(i.as_str())).collect();
            conds.push(format!("j.id IN ({})", ps.join(", ")));
        }
        if let Some(ns) = &f.namespace {
            conds.push(format!("j.namespace = {}", q.text(ns.as_str())));
        }
        if let Some(nss) = &f.namespace_in {
            if nss.is_empty() {
                return Ok(Vec::new());
            }
            let mut ps = Vec::with_capacity(nss.len());
            for ns in nss {
                ps.push(q.text(exact("namespace", ns)?));
            }
            conds.push(format!("j.namespace IN ({})", ps.join(", ")));
        }
        if let Some(level) = &f.level {
            conds.push(format!("j.level = {}", q.text(level.as_str())));
        }
        if let Some(s) = &f.schedule {
            conds.push(format!("j.schedule = {}", q.text(s.as_str())));
        }
        for (key, value) in &f.labels {
            let k = q.text(key.as_str());
            let v = q.text(value.as_str());
            conds.push(format!(
                "EXISTS (SELECT 1 FROM job_labels l WHERE l.job_id = j.id AND l.key = {k} AND l.value = {v})"
            ));
        }
        if let Some(before) = f.before_ms {
            let b = q.int(before);
            conds.push(match f.set {
                JobSet::DeadLetters => format!("j.dlq_at < {b}"),
                JobSet::Queued => format!("COALESCE(j.queued_at, j.enqueued_at) < {b}"),
            });
        }
        let order = match f.set {
            JobSet::DeadLetters => "j.dlq_at DESC, j.id DESC",
            JobSet::Queued => "j.enqueued_at, j.id",
        };
        let lim = q.int(i64::from(limit.max(1)));
        q.sql = format!(
            "SELECT {J_JOB_COLUMNS}, {J_ORCH_COLUMNS} FROM jobs j WHERE {} ORDER BY {order} LIMIT {lim}",
            conds.join(" AND ")
        );
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(decode_orch_job).collect()
    }

    pub(super) async fn orch_delete_jobs(
        &self,
        set: JobSet,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        for id in ids {
            exact("ids", id)?;
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.begin_write().await?;
        for id in ids {
            w.touch(id);
        }
        let result = async {
            let mut deleted = Vec::new();
            // Bounded statements: a purge of many jobs goes in chunks.
            for chunk in ids.chunks(500) {
                let mut q = DynQuery::default();
                let cond = set_condition(&mut q, set);
                let ps: Vec<String> = chunk.iter().map(|i| q.text(i.as_str())).collect();
                q.sql = format!(
                    "DELETE FROM jobs WHERE id IN ({}) AND {} RETURNING id",
                    ps.join(", "),
                    cond.replace("j.", "")
                );
                let mut gone = Vec::new();
                for row in q.build().fetch_all(&mut *w.tx).await? {
                    gone.push(row.try_get::<String, _>("id")?);
                }
                // A purged job's run results go with it.
                if !gone.is_empty() {
                    let mut q = DynQuery::default();
                    let ps: Vec<String> = gone.iter().map(|i| q.text(i.as_str())).collect();
                    q.sql = format!(
                        "DELETE FROM run_results WHERE job_id IN ({})",
                        ps.join(", ")
                    );
                    q.build().execute(&mut *w.tx).await?;
                }
                deleted.extend(gone);
            }
            Ok(deleted)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_unsettled_failures(&self) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 AND failure_class IS NULL \
             AND dlq_at IS NULL ORDER BY updated_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(JobState::Failed.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_job).collect()
    }

    pub(super) async fn orch_retry_job(&self, r: &RetryJob) -> Result<JobRecord, StoreError> {
        exact("id", &r.id)?;
        let retry_message = sanitize(&r.message);
        let ttl_ms = r.stored.as_ref().map(|s| queue_ttl_ms(&s.policy));
        let spec = r
            .stored
            .as_ref()
            .map(|s| {
                s.encode()
                    .map_err(|e| {
                        StoreError::Corrupt(format!("the retried spec of {:?}: {e}", r.id))
                    })
                    .and_then(|v| {
                        serde_json::to_string(&v).map_err(encode_error("the retried spec"))
                    })
            })
            .transpose()?;
        let demand = r
            .demand
            .as_ref()
            .map(|d| {
                serde_json::to_string(d)
                    .map_err(encode_error("the retried demand"))
                    .map(|text| (text, d.total()))
            })
            .transpose()?;
        let mut w = self.begin_write().await?;
        w.touch(&r.id);
        let result = async {
            let mut q = DynQuery::default();
            let id = q.text(r.id.as_str());
            let attempt = q.int(i64::from(r.attempt));
            let at = q.int(r.at_ms);
            let eligible = q.int(r.eligible_at_ms);
            let message = q.text(retry_message.as_ref());
            let queued = q.text(JobState::Queued.as_str());
            let failed = q.text(JobState::Failed.as_str());
            let mut sets = format!(
                "state = {queued}, attempt = attempt + 1, enqueued_at = {eligible}, \
                 queued_at = {eligible}, retry_at = {eligible}, updated_at = {at}, \
                 message = {message}, failure_class = NULL, {BACK_TO_QUEUE}"
            );
            if let Some(spec) = &spec {
                sets.push_str(&format!(", spec = {}", q.arg(Arg::Text(spec.clone()))));
            }
            // The queue-TTL clock restarts when the retry becomes eligible, with the TTL of the
            // new spec if there is one.
            match ttl_ms {
                Some(Some(ttl)) => {
                    let ttl_p = q.int(ttl);
                    let deadline = q.int(r.eligible_at_ms.saturating_add(ttl));
                    sets.push_str(&format!(
                        ", queue_ttl_ms = {ttl_p}, queue_deadline = {deadline}"
                    ));
                }
                Some(None) => sets.push_str(", queue_ttl_ms = NULL, queue_deadline = NULL"),
                None => sets.push_str(&format!(", queue_deadline = {eligible} + queue_ttl_ms")),
            }
            if let Some((text, total)) = &demand {
                let d = q.text(text.as_str());
                let cpu = q.int(to_i64(total.cpu_milli));
                let mem = q.int(to_i64(total.mem_mib));
                sets.push_str(&format!(
                    ", demand = {d}, cpu_milli = {cpu}, mem_mib = {mem}"
                ));
            }
            q.sql = format!(
                "UPDATE jobs SET {sets} WHERE id = {id} AND state = {failed} \
                 AND attempt = {attempt} AND failure_class IS NULL AND dlq_at IS NULL \
                 RETURNING {JOB_COLUMNS}"
            );
            let Some(row) = q.build().fetch_optional(&mut *w.tx).await? else {
                let stale = StoreError::Stale(format!(
                    "job {:?} is no longer an unhandled failure of attempt {}",
                    r.id, r.attempt
                ));
                return Err(missing_or(&mut w.tx, &r.id, stale).await?);
            };
            let rec = decode_job(&row)?;
            event_in(
                &mut w.tx,
                &r.id,
                r.at_ms,
                JobState::Failed,
                JobState::Queued,
                &retry_message,
            )
            .await?;
            Ok(rec)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_dead_letter(&self, d: &DeadLetter) -> Result<JobRecord, StoreError> {
        exact("id", &d.id)?;
        exact("failure_class", &d.failure_class)?;
        let reason = sanitize(&d.reason);
        let mut w = self.begin_write().await?;
        let result = async {
            let sql = format!(
                "UPDATE jobs SET failure_class = $3, dlq_at = $4, dlq_reason = $5, updated_at = $4 \
                 WHERE id = $1 AND state = $6 AND attempt = $2 AND failure_class IS NULL \
                 AND dlq_at IS NULL RETURNING {JOB_COLUMNS}"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(d.id.as_str())
                .bind(i64::from(d.attempt))
                .bind(d.failure_class.as_str())
                .bind(d.at_ms)
                .bind(reason.as_ref())
                .bind(JobState::Failed.as_str())
                .fetch_optional(&mut *w.tx)
                .await?;
            let Some(row) = row else {
                let stale = StoreError::Stale(format!(
                    "job {:?} is no longer an unhandled failure of attempt {}",
                    d.id, d.attempt
                ));
                return Err(missing_or(&mut w.tx, &d.id, stale).await?);
            };
            let rec = decode_job(&row)?;
            event_in(
                &mut w.tx,
                &d.id,
                d.at_ms,
                JobState::Failed,
                JobState::Failed,
                &format!("dead-lettered ({}): {reason}", d.failure_class),
            )
            .await?;
            Ok(rec)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_expire_queued(
        &self,
        id: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<JobRecord, StoreError> {
        exact("id", id)?;
        let reason = sanitize(reason);
        let mut w = self.begin_write().await?;
        w.touch(id);
        let result = async {
            let sql = format!(
                "UPDATE jobs SET state = $3, updated_at = $2, finished_at = $2, dequeued_at = $2, \
                 message = $4, failure_class = 'expired', dlq_at = $2, dlq_reason = $4, \
                 queue_deadline = NULL WHERE id = $1 AND state = $5 RETURNING {JOB_COLUMNS}"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .bind(at_ms)
                .bind(JobState::Failed.as_str())
                .bind(reason.as_ref())
                .bind(JobState::Queued.as_str())
                .fetch_optional(&mut *w.tx)
                .await?;
            let Some(row) = row else {
                let actual: Option<String> =
                    sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *w.tx)
                        .await?;
                return Err(match actual {
                    None => StoreError::NotFound(id.to_string()),
                    Some(actual) => StoreError::Conflict {
                        id: id.to_string(),
                        expected: JobState::Queued,
                        actual: parse_state("jobs.state", id, &actual)?,
                    },
                });
            };
            let rec = decode_job(&row)?;
            event_in(
                &mut w.tx,
                id,
                at_ms,
                JobState::Queued,
                JobState::Failed,
                &reason,
            )
            .await?;
            Ok(rec)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_requeue_dead_letter(
        &self,
        r: &Requeue,
    ) -> Result<JobRecord, StoreError> {
        exact("id", &r.id)?;
        let requeue_message = sanitize(&r.message);
        let mut w = self.begin_write().await?;
        w.touch(&r.id);
        let result = async {
            let place: Option<(String, String)> = sqlx::query_as(
                "SELECT namespace, level FROM jobs WHERE id = $1 AND state = $2 \
                 AND dlq_at IS NOT NULL",
            )
            .bind(r.id.as_str())
            .bind(JobState::Failed.as_str())
            .fetch_optional(&mut *w.tx)
            .await?;
            let Some((namespace, level)) = place else {
                let not = StoreError::NotDeadLettered(r.id.clone());
                return Err(missing_or(&mut w.tx, &r.id, not).await?);
            };
            let enqueued_at = match r.place {
                RequeuePlace::Tail => r.at_ms,
                RequeuePlace::Front => {
                    let first: Option<i64> = sqlx::query_scalar(
                        "SELECT MIN(enqueued_at) FROM jobs \
                         WHERE state = $1 AND namespace = $2 AND level = $3",
                    )
                    .bind(JobState::Queued.as_str())
                    .bind(namespace.as_str())
                    .bind(level.as_str())
                    .fetch_one(&mut *w.tx)
                    .await?;
                    first.unwrap_or(r.at_ms).min(r.at_ms) - 1
                }
            };
            let sql = format!(
                "UPDATE jobs SET state = $2, attempt = attempt + 1, retry_round = attempt + 1, \
                 enqueued_at = $3, queued_at = $4, queue_deadline = $4 + queue_ttl_ms, \
                 retry_at = NULL, updated_at = $4, message = $5, failure_class = NULL, \
                 dlq_at = NULL, dlq_reason = NULL, \
                 {BACK_TO_QUEUE} \
                 WHERE id = $1 AND state = $6 AND dlq_at IS NOT NULL RETURNING {JOB_COLUMNS}"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(r.id.as_str())
                .bind(JobState::Queued.as_str())
                .bind(enqueued_at)
                .bind(r.at_ms)
                .bind(requeue_message.as_ref())
                .bind(JobState::Failed.as_str())
                .fetch_one(&mut *w.tx)
                .await?;
            let rec = decode_job(&row)?;
            event_in(
                &mut w.tx,
                &r.id,
                r.at_ms,
                JobState::Failed,
                JobState::Queued,
                &requeue_message,
            )
            .await?;
            Ok(rec)
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn orch_queued_past_deadline(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OrchJob>, StoreError> {
        // The state literal and `queue_deadline IS NOT NULL` match the predicate of the partial
        // index jobs_queue_deadline, which PostgreSQL then walks in order; SQLite's planner may
        // prefer a state index (and sort) without statistics: pin it.
        let from = match self.dialect {
            Dialect::Sqlite => "jobs j INDEXED BY jobs_queue_deadline",
            Dialect::Postgres => "jobs j",
        };
        let queued = JobState::Queued.as_str();
        let sql = format!(
            "SELECT {J_JOB_COLUMNS}, {J_ORCH_COLUMNS} FROM {from} \
             WHERE j.state = '{queued}' AND j.queue_deadline IS NOT NULL AND j.queue_deadline < $1 \
             ORDER BY j.queue_deadline, j.id LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms)
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_orch_job).collect()
    }

    pub(super) async fn orch_count_dead_letters(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE dlq_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

/// The SQL condition (on alias `j`) of a set.
fn set_condition(q: &mut DynQuery, set: JobSet) -> String {
    match set {
        JobSet::DeadLetters => {
            let failed = q.text(JobState::Failed.as_str());
            format!("j.state = {failed} AND j.dlq_at IS NOT NULL")
        }
        JobSet::Queued => {
            let queued = q.text(JobState::Queued.as_str());
            format!("j.state = {queued}")
        }
    }
}

/// A row of `J_JOB_COLUMNS, J_ORCH_COLUMNS` as the job and its orchestration columns.
fn decode_orch_job(row: &AnyRow) -> Result<OrchJob, StoreError> {
    let job = decode_job(row)?;
    let orch = decode_orch(row, &job.id)?;
    Ok(OrchJob { job, orch })
}
