//! Workflows over [`SqlStore`] (migration 0011): definitions, runs and steps. A run's write is
//! one transaction with a compare-and-set on its version, and the jobs of the steps it starts
//! are inserted in that same transaction, so a step is linked to exactly one job even across a
//! crash.

use std::collections::BTreeMap;

use sluice_core::record::JobRecord;
use sluice_core::workflow::{RunState, StepPhase};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::jobs::insert_job_in;
use super::pool::SqlStore;
use super::rows::DynQuery;
use crate::error::StoreError;
use crate::text::{exact, sanitize};
use crate::workflow::{
    NewWorkflow, RunFilter, RunUpdate, StepRecord, WorkflowApplied, WorkflowFire, WorkflowRecord,
    WorkflowRunRecord,
};

const WORKFLOW_COLUMNS: &str = "namespace, name, definition, source, cron, time_zone, suspended, \
     created_at, updated_at, next_fire_at, last_fire_at, last_run_id, last_message";

const RUN_COLUMNS: &str = "id, namespace, workflow, state, cancel_requested, parameters, \
     logical_date, trigger_kind, definition, attempt, version, created_at, updated_at, \
     finished_at, message";

const STEP_COLUMNS: &str =
    "run_id, step, position, phase, job_id, previous_jobs, template, message, updated_at";

fn json(what: &str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn string_map(what: &str, text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn string_list(what: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json(what: &str, v: serde_json::Result<String>) -> Result<String, StoreError> {
    v.map_err(|e| StoreError::Corrupt(format!("{what} does not encode: {e}")))
}

fn decode_workflow(row: &AnyRow) -> Result<WorkflowRecord, StoreError> {
    let namespace: String = row.try_get("namespace")?;
    let name: String = row.try_get("name")?;
    let definition: String = row.try_get("definition")?;
    let suspended: i64 = row.try_get("suspended")?;
    Ok(WorkflowRecord {
        definition: json(
            &format!("workflows.definition of {namespace}/{name}"),
            &definition,
        )?,
        source: row.try_get("source")?,
        cron: row.try_get("cron")?,
        time_zone: row.try_get("time_zone")?,
        suspended: suspended != 0,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        next_fire_at_ms: row.try_get("next_fire_at")?,
        last_fire_at_ms: row.try_get("last_fire_at")?,
        last_run_id: row.try_get("last_run_id")?,
        last_message: row.try_get("last_message")?,
        namespace,
        name,
    })
}

fn decode_run(row: &AnyRow) -> Result<WorkflowRunRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |col: &str, why: String| {
        StoreError::Corrupt(format!("workflow_runs.{col} of run {id:?}: {why}"))
    };
    let state: String = row.try_get("state")?;
    let state: RunState = state.parse().map_err(|e: String| corrupt("state", e))?;
    let cancel: i64 = row.try_get("cancel_requested")?;
    let parameters: String = row.try_get("parameters")?;
    let definition: String = row.try_get("definition")?;
    let attempt: i64 = row.try_get("attempt")?;
    Ok(WorkflowRunRecord {
        namespace: row.try_get("namespace")?,
        workflow: row.try_get("workflow")?,
        state,
        cancel_requested: cancel != 0,
        parameters: string_map(
            &format!("workflow_runs.parameters of run {id:?}"),
            &parameters,
        )?,
        logical_date_ms: row.try_get("logical_date")?,
        trigger: row.try_get("trigger_kind")?,
        definition: json(
            &format!("workflow_runs.definition of run {id:?}"),
            &definition,
        )?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt("attempt", attempt.to_string()))?,
        version: row.try_get("version")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        finished_at_ms: row.try_get("finished_at")?,
        message: row.try_get("message")?,
        steps: Vec::new(),
        id,
    })
}

fn decode_step(row: &AnyRow) -> Result<(String, StepRecord), StoreError> {
    let run: String = row.try_get("run_id")?;
    let name: String = row.try_get("step")?;
    let what = |col: &str| format!("workflow_steps.{col} of run {run:?} step {name:?}");
    let phase: String = row.try_get("phase")?;
    let phase: StepPhase = phase
        .parse()
        .map_err(|e: String| StoreError::Corrupt(format!("{}: {phase:?} {e}", what("phase"))))?;
    let position: i64 = row.try_get("position")?;
    let previous: String = row.try_get("previous_jobs")?;
    let template: String = row.try_get("template")?;
    Ok((
        run.clone(),
        StepRecord {
            position: u32::try_from(position)
                .map_err(|_| StoreError::Corrupt(format!("{}: {position}", what("position"))))?,
            phase,
            job_id: row.try_get("job_id")?,
            previous_jobs: string_list(&what("previous_jobs"), &previous)?,
            template: json(&what("template"), &template)?,
            message: row.try_get("message")?,
            updated_at_ms: row.try_get("updated_at")?,
            name,
        },
    ))
}

async fn get_workflow_in(
    conn: &mut AnyConnection,
    ns: &str,
    name: &str,
) -> Result<Option<WorkflowRecord>, StoreError> {
    let sql =
        format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE namespace = $1 AND name = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(ns)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode_workflow).transpose()
}

/// Runs with their steps, from the runs' rows.
async fn with_steps(
    conn: &mut AnyConnection,
    mut runs: Vec<WorkflowRunRecord>,
) -> Result<Vec<WorkflowRunRecord>, StoreError> {
    if runs.is_empty() {
        return Ok(runs);
    }
    let mut q = DynQuery::default();
    let ps: Vec<String> = runs.iter().map(|r| q.text(r.id.as_str())).collect();
    q.sql = format!(
        "SELECT {STEP_COLUMNS} FROM workflow_steps WHERE run_id IN ({}) ORDER BY run_id, position",
        ps.join(", ")
    );
    let rows = q.build().fetch_all(&mut *conn).await?;
    let mut by_run: BTreeMap<String, Vec<StepRecord>> = BTreeMap::new();
    for row in &rows {
        let (run, step) = decode_step(row)?;
        by_run.entry(run).or_default().push(step);
    }
    for r in &mut runs {
        r.steps = by_run.remove(&r.id).unwrap_or_default();
    }
    Ok(runs)
}

async fn get_run_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<WorkflowRunRecord>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(run) = row.as_ref().map(decode_run).transpose()? else {
        return Ok(None);
    };
    Ok(with_steps(conn, vec![run]).await?.pop())
}

impl SqlStore {
    pub(super) async fn apply_workflow_sql(
        &self,
        w: &NewWorkflow,
    ) -> Result<(WorkflowApplied, WorkflowRecord), StoreError> {
        exact("namespace", &w.namespace)?;
        exact("name", &w.name)?;
        let definition = to_json(
            "the workflow's definition",
            serde_json::to_string(&w.definition),
        )?;
        let mut w_tx = self.begin_write().await?;
        let result = async {
            let conn = &mut *w_tx.tx;
            let old = get_workflow_in(conn, &w.namespace, &w.name).await?;
            let applied = match &old {
                None => {
                    sqlx::query(
                        "INSERT INTO workflows (namespace, name, definition, source, cron, \
                         time_zone, suspended, created_at, updated_at, next_fire_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
                    )
                    .bind(&w.namespace)
                    .bind(&w.name)
                    .bind(&definition)
                    .bind(&w.source)
                    .bind(w.cron.as_deref())
                    .bind(w.time_zone.as_deref())
                    .bind(i64::from(w.suspended))
                    .bind(w.at_ms)
                    .bind(w.next_fire_at_ms)
                    .execute(&mut *conn)
                    .await?;
                    WorkflowApplied::Created
                }
                Some(old) if old.source == w.source && old.definition == w.definition => {
                    WorkflowApplied::Unchanged
                }
                Some(old) => {
                    // The next fire time stays unless the schedule itself changed.
                    let same_timing = old.cron == w.cron
                        && old.time_zone == w.time_zone
                        && old.suspended == w.suspended;
                    let next = if same_timing {
                        old.next_fire_at_ms
                    } else {
                        w.next_fire_at_ms
                    };
                    sqlx::query(
                        "UPDATE workflows SET definition = $3, source = $4, cron = $5, \
                         time_zone = $6, suspended = $7, updated_at = $8, next_fire_at = $9 \
                         WHERE namespace = $1 AND name = $2",
                    )
                    .bind(&w.namespace)
                    .bind(&w.name)
                    .bind(&definition)
                    .bind(&w.source)
                    .bind(w.cron.as_deref())
                    .bind(w.time_zone.as_deref())
                    .bind(i64::from(w.suspended))
                    .bind(w.at_ms)
                    .bind(next)
                    .execute(&mut *conn)
                    .await?;
                    WorkflowApplied::Configured
                }
            };
            let rec = get_workflow_in(conn, &w.namespace, &w.name)
                .await?
                .ok_or_else(|| StoreError::NoWorkflow {
                    namespace: w.namespace.clone(),
                    name: w.name.clone(),
                })?;
            Ok((applied, rec))
        }
        .await;
        w_tx.finish(result).await
    }

    pub(super) async fn get_workflow_sql(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        exact("namespace", ns)?;
        exact("name", name)?;
        let mut conn = self.pool.acquire().await?;
        get_workflow_in(&mut conn, ns, name).await
    }

    pub(super) async fn list_workflows_sql(
        &self,
        ns: Option<&str>,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let mut q = DynQuery::default();
        let filter = match ns {
            Some(ns) => format!("WHERE namespace = {}", q.text(exact("namespace", ns)?)),
            None => String::new(),
        };
        q.sql =
            format!("SELECT {WORKFLOW_COLUMNS} FROM workflows {filter} ORDER BY namespace, name");
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(decode_workflow).collect()
    }

    pub(super) async fn due_workflows_sql(
        &self,
        now_ms: i64,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE next_fire_at IS NOT NULL \
             AND next_fire_at <= $1 ORDER BY next_fire_at, namespace, name"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_workflow).collect()
    }

    pub(super) async fn fire_workflow_sql(
        &self,
        f: &WorkflowFire,
    ) -> Result<Option<WorkflowRunRecord>, StoreError> {
        exact("namespace", &f.namespace)?;
        exact("name", &f.name)?;
        let message = sanitize(&f.message);
        let mut w = self.begin_write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let missing = || StoreError::NoWorkflow {
                namespace: f.namespace.clone(),
                name: f.name.clone(),
            };
            let done =
                match &f.advance {
                    Some(a) => {
                        sqlx::query(
                            "UPDATE workflows SET next_fire_at = $3, last_message = $4 \
                         WHERE namespace = $1 AND name = $2 AND next_fire_at = $5",
                        )
                        .bind(&f.namespace)
                        .bind(&f.name)
                        .bind(a.next_fire_at_ms)
                        .bind(message.as_ref())
                        .bind(a.expected_next_fire_at_ms)
                        .execute(&mut *conn)
                        .await?
                    }
                    None => sqlx::query(
                        "UPDATE workflows SET last_message = $3 WHERE namespace = $1 AND name = $2",
                    )
                    .bind(&f.namespace)
                    .bind(&f.name)
                    .bind(message.as_ref())
                    .execute(&mut *conn)
                    .await?,
                };
            if done.rows_affected() == 0 {
                return Err(match get_workflow_in(conn, &f.namespace, &f.name).await? {
                    None => missing(),
                    Some(_) => StoreError::Stale(format!(
                        "workflow {}/{}: its next fire time changed meanwhile",
                        f.namespace, f.name
                    )),
                });
            }
            let Some(run) = &f.run else {
                return Ok(None);
            };
            exact("id", &run.id)?;
            sqlx::query(
                "UPDATE workflows SET last_fire_at = $3, last_run_id = $4 \
                 WHERE namespace = $1 AND name = $2",
            )
            .bind(&f.namespace)
            .bind(&f.name)
            .bind(f.at_ms)
            .bind(&run.id)
            .execute(&mut *conn)
            .await?;
            for (k, v) in &run.parameters {
                exact(&format!("parameters.{k}"), v)?;
            }
            sqlx::query(
                "INSERT INTO workflow_runs (id, namespace, workflow, state, cancel_requested, \
                 parameters, logical_date, trigger_kind, definition, attempt, version, created_at, \
                 updated_at, finished_at, message) \
                 VALUES ($1, $2, $3, 'running', 0, $4, $5, $6, $7, 1, 1, $8, $8, NULL, $9)",
            )
            .bind(&run.id)
            .bind(&run.namespace)
            .bind(&run.workflow)
            .bind(to_json(
                "the run's parameters",
                serde_json::to_string(&run.parameters),
            )?)
            .bind(run.logical_date_ms)
            .bind(&run.trigger)
            .bind(to_json(
                "the run's definition",
                serde_json::to_string(&run.definition),
            )?)
            .bind(run.created_at_ms)
            .bind(message.as_ref())
            .execute(&mut *conn)
            .await?;
            for (i, s) in run.steps.iter().enumerate() {
                exact("step", &s.name)?;
                sqlx::query(
                    "INSERT INTO workflow_steps (run_id, step, position, phase, job_id, \
                     previous_jobs, template, message, updated_at) \
                     VALUES ($1, $2, $3, 'waiting', NULL, '[]', $4, NULL, $5)",
                )
                .bind(&run.id)
                .bind(&s.name)
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .bind(to_json(
                    "a step's template",
                    serde_json::to_string(&s.template),
                )?)
                .bind(run.created_at_ms)
                .execute(&mut *conn)
                .await?;
            }
            get_run_in(conn, &run.id).await
        }
        .await;
        w.finish(result).await
    }

    pub(super) async fn get_workflow_run_sql(
        &self,
        id: &str,
    ) -> Result<Option<WorkflowRunRecord>, StoreError> {
        exact("id", id)?;
        let mut conn = self.pool.acquire().await?;
        get_run_in(&mut conn, id).await
    }

    pub(super) async fn list_workflow_runs_sql(
        &self,
        f: &RunFilter,
        limit: u32,
    ) -> Result<Vec<WorkflowRunRecord>, StoreError> {
        let mut q = DynQuery::default();
        let mut conditions = Vec::new();
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
        if let Some(w) = &f.workflow {
            conditions.push(format!("workflow = {}", q.text(exact("workflow", w)?)));
        }
        if !f.states.is_empty() {
            let ps: Vec<String> = f.states.iter().map(|s| q.text(s.as_str())).collect();
            conditions.push(format!("state IN ({})", ps.join(", ")));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let fetch = q.int(i64::from(limit.max(1)));
        q.sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs {where_clause} \
             ORDER BY created_at DESC, id DESC LIMIT {fetch}"
        );
        let mut conn = self.pool.acquire().await?;
        let rows = q.build().fetch_all(&mut *conn).await?;
        let runs = rows.iter().map(decode_run).collect::<Result<Vec<_>, _>>()?;
        with_steps(&mut conn, runs).await
    }

    pub(super) async fn update_workflow_run_sql(
        &self,
        u: &RunUpdate,
    ) -> Result<(WorkflowRunRecord, Vec<JobRecord>), StoreError> {
        exact("id", &u.id)?;
        let mut w = self.begin_write().await?;
        for s in &u.steps {
            if let Some(job) = &s.job {
                w.touch(&job.id);
            }
        }
        let result = async {
            let conn = &mut *w.tx;
            let run = get_run_in(conn, &u.id)
                .await?
                .ok_or_else(|| StoreError::NoWorkflowRun(u.id.clone()))?;
            if run.version != u.expected_version {
                return Err(StoreError::Stale(format!(
                    "workflow run {}: changed meanwhile (version {}, expected {})",
                    u.id, run.version, u.expected_version
                )));
            }
            let mut jobs = Vec::new();
            for c in &u.steps {
                let Some(old) = run.steps.iter().find(|s| s.name == c.step) else {
                    return Err(StoreError::Stale(format!(
                        "workflow run {} has no step {:?}",
                        u.id, c.step
                    )));
                };
                let mut job_id = old.job_id.clone();
                let mut previous = old.previous_jobs.clone();
                if c.reset
                    && let Some(j) = job_id.take()
                {
                    previous.push(j);
                }
                if let Some(job) = &c.job {
                    jobs.push(insert_job_in(conn, job).await?);
                    job_id = Some(job.id.clone());
                }
                let message = c.message.as_deref().map(sanitize);
                sqlx::query(
                    "UPDATE workflow_steps SET phase = $3, job_id = $4, previous_jobs = $5, \
                     message = $6, updated_at = $7 WHERE run_id = $1 AND step = $2",
                )
                .bind(&u.id)
                .bind(&c.step)
                .bind(c.phase.as_str())
                .bind(job_id)
                .bind(to_json(
                    "a step's previous jobs",
                    serde_json::to_string(&previous),
                )?)
                .bind(message.as_deref())
                .bind(u.at_ms)
                .execute(&mut *conn)
                .await?;
            }
            let state = u.state.unwrap_or(run.state);
            let finished = match (u.state, state.is_terminal()) {
                (Some(_), true) => Some(u.at_ms),
                (Some(_), false) => None,
                (None, _) => run.finished_at_ms,
            };
            let cancel = u.cancel_requested.unwrap_or(run.cancel_requested);
            let message = match &u.message {
                Some(m) => Some(sanitize(m).into_owned()),
                None => run.message.clone(),
            };
            sqlx::query(
                "UPDATE workflow_runs SET state = $2, cancel_requested = $3, attempt = $4, \
                 version = version + 1, updated_at = $5, finished_at = $6, message = $7 \
                 WHERE id = $1",
            )
            .bind(&u.id)
            .bind(state.as_str())
            .bind(i64::from(cancel))
            .bind(i64::from(run.attempt) + i64::from(u.rerun))
            .bind(u.at_ms)
            .bind(finished)
            .bind(message)
            .execute(&mut *conn)
            .await?;
            let after = get_run_in(conn, &u.id)
                .await?
                .ok_or_else(|| StoreError::NoWorkflowRun(u.id.clone()))?;
            Ok((after, jobs))
        }
        .await;
        w.finish(result).await
    }
}
