//! The workflow endpoints: apply and read workflows; start, list, read, cancel and rerun their
//! runs. The logic is in [`crate::workflows`] (and the tick's side in
//! [`crate::tick::workflows`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use sluice_core::access::AccessRole;
use sluice_core::workflow::{RunState, StepStatus, Workflow, waiting_for};
use sluice_store::{RunFilter, StoreError, WorkflowApplied, WorkflowRecord, WorkflowRunRecord};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody, body_text};
use crate::auth::{Caller, audit};
use crate::state::AppState;
use crate::time::rfc3339;
use crate::workflows;
pub use sluice_api::workflows::{RunView, StepDefView, StepView, WorkflowApplyView, WorkflowView};

/// Most runs one list answers.
pub const MAX_RUNS: u32 = 1_000;

fn step_defs(wf: &Workflow) -> Vec<StepDefView> {
    wf.steps
        .iter()
        .map(|s| StepDefView {
            name: s.name.clone(),
            depends_on: s.depends_on.clone(),
            trigger: s.trigger.to_string(),
        })
        .collect()
}

fn workflow_view(w: WorkflowRecord) -> Result<WorkflowView, ApiError> {
    let wf = workflows::decode(
        &format!("workflow {}/{}", w.namespace, w.name),
        &w.definition,
    )?;
    Ok(WorkflowView {
        priority: wf.priority.clone(),
        parameters: wf.parameters.clone(),
        steps: step_defs(&wf),
        schedule: w.cron,
        time_zone: w.time_zone,
        suspended: w.suspended,
        next_run_at: w.next_fire_at_ms.map(rfc3339),
        last_run_id: w.last_run_id,
        last_message: w.last_message,
        created_at: rfc3339(w.created_at_ms),
        updated_at: rfc3339(w.updated_at_ms),
        namespace: w.namespace,
        name: w.name,
    })
}

/// The view of a run: each step with its status read from its job.
pub async fn run_view(st: &AppState, run: WorkflowRunRecord) -> Result<RunView, ApiError> {
    let wf = workflows::decode(&format!("workflow run {}", run.id), &run.definition)?;
    let observed = workflows::observe(st, &run).await?;
    let statuses: Vec<StepStatus> = observed.iter().map(|(s, _)| *s).collect();
    let dag = wf.dag().ok();
    let mut steps = Vec::with_capacity(run.steps.len());
    for (i, (s, (status, job))) in run.steps.iter().zip(observed).enumerate() {
        let def = wf.steps.iter().find(|d| d.name == s.name);
        let message = match status {
            StepStatus::Waiting => match (&dag, run.cancel_requested) {
                (_, true) => Some("the run is being cancelled".into()),
                (Some(d), false) => Some(waiting_for(d, &statuses, i)),
                (None, false) => None,
            },
            StepStatus::Active | StepStatus::Succeeded | StepStatus::Failed => job
                .as_ref()
                .and_then(|j| j.message.clone())
                .or_else(|| s.message.clone()),
            _ => s.message.clone(),
        };
        steps.push(StepView {
            name: s.name.clone(),
            depends_on: def.map(|d| d.depends_on.clone()).unwrap_or_default(),
            trigger: def.map(|d| d.trigger.to_string()).unwrap_or_default(),
            status: status.to_string(),
            job_id: s.job_id.clone(),
            job_state: job.as_ref().map(|j| j.state.to_string()),
            job_attempt: job.as_ref().map(|j| j.attempt),
            previous_jobs: s.previous_jobs.clone(),
            message,
        });
    }
    Ok(RunView {
        id: run.id,
        namespace: run.namespace,
        workflow: run.workflow,
        state: run.state.to_string(),
        cancel_requested: run.cancel_requested,
        attempt: run.attempt,
        trigger: run.trigger,
        parameters: run.parameters,
        logical_date: sluice_core::workflow::logical_date(run.logical_date_ms),
        created_at: rfc3339(run.created_at_ms),
        finished_at: run.finished_at_ms.map(rfc3339),
        message: run.message,
        steps,
    })
}

/// Apply a workflow document (`apiVersion: sluice.io/v1`, `kind: Workflow`): create it, replace
/// its definition, or nothing when it already is so. Idempotent by namespace and name. Cycles,
/// unknown `dependsOn` names and duplicate step names are refused (400) naming them.
#[utoipa::path(put, path = "/v1/workflows",
    request_body(content = String, description = "workflow document, YAML or JSON", content_type = "application/yaml"),
    responses((status = 201, body = WorkflowApplyView), (status = 200, body = WorkflowApplyView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply_workflow(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WorkflowApplyView>), ApiError> {
    let text = body_text(&body, st.config.api.max_body_bytes)?;
    // The namespace is in the document: read it first (a document that does not parse is
    // refused by the apply, with nothing stored).
    if let Ok(wf) = workflows::parse(&st, text) {
        caller.require(&wf.namespace, AccessRole::Submitter)?;
    }
    let (applied, rec) = workflows::apply(&st, text, st.now_ms()).await?;
    if applied != WorkflowApplied::Unchanged {
        audit(
            &st,
            &caller,
            "workflow.apply",
            Some(&rec.namespace),
            Some(&rec.name),
            Some(applied.as_str().to_string()),
        )
        .await;
    }
    let status = if applied == WorkflowApplied::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(WorkflowApplyView {
            result: applied.as_str().into(),
            workflow: workflow_view(rec)?,
        }),
    ))
}

/// Query of `GET /v1/workflows`.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct WorkflowListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
}

/// List workflows, by namespace then name.
#[utoipa::path(get, path = "/v1/workflows", params(WorkflowListQuery),
    responses((status = 200, body = [WorkflowView])))]
pub async fn list_workflows(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<WorkflowListQuery>,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    let all = st.store.list_workflows(q.namespace.as_deref()).await?;
    let mut out = Vec::new();
    for w in all.into_iter().filter(|w| caller.sees(&w.namespace)) {
        out.push(workflow_view(w)?);
    }
    Ok(Json(out))
}

fn check_workflow(caller: &Caller, ns: &str, name: &str, role: AccessRole) -> Result<(), ApiError> {
    caller.visible(ns, || {
        ApiError::from(StoreError::NoWorkflow {
            namespace: ns.into(),
            name: name.into(),
        })
    })?;
    caller.require(ns, role)
}

/// One workflow.
#[utoipa::path(get, path = "/v1/workflows/{namespace}/{name}",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "workflow name")),
    responses((status = 200, body = WorkflowView), (status = 404, body = ErrorBody)))]
pub async fn get_workflow(
    State(st): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<WorkflowView>, ApiError> {
    check_workflow(&caller, &ns, &name, AccessRole::Viewer)?;
    let w = st
        .store
        .get_workflow(&ns, &name)
        .await?
        .ok_or(StoreError::NoWorkflow {
            namespace: ns,
            name,
        })?;
    Ok(Json(workflow_view(w)?))
}

/// The body of `POST /v1/workflows/{namespace}/{name}/runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default, PartialEq)]
pub struct StartRun {
    /// Parameter overrides (each must be declared by the workflow).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// Start a run of a workflow now, with parameter overrides.
#[utoipa::path(post, path = "/v1/workflows/{namespace}/{name}/runs",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "workflow name")),
    request_body(content = StartRun, content_type = "application/json"),
    responses((status = 201, body = RunView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start_run(
    State(st): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    check_workflow(&caller, &ns, &name, AccessRole::Submitter)?;
    let text = body_text(&body, st.config.api.max_body_bytes)?;
    let req: StartRun = if text.trim().is_empty() {
        StartRun::default()
    } else {
        serde_json::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("the request body: {e}")))?
    };
    let run = workflows::start(&st, &ns, &name, &req.parameters, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "workflow.run",
        Some(&ns),
        Some(&name),
        Some(format!("run {}", run.id)),
    )
    .await;
    Ok((StatusCode::CREATED, Json(run_view(&st, run).await?)))
}

/// Query of `GET /v1/workflow-runs`.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct RunListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in this state (running, succeeded, failed, cancelled).
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// List workflow runs, newest first (the history of workflows: runs are kept when their jobs
/// are purged).
#[utoipa::path(get, path = "/v1/workflow-runs", params(RunListQuery),
    responses((status = 200, body = [RunView]), (status = 400, body = ErrorBody)))]
pub async fn list_runs(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<RunListQuery>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    let states =
        match q.state.as_deref() {
            None | Some("") => Vec::new(),
            Some(s) => vec![s.parse::<RunState>().map_err(|e| {
                ApiError::BadRequest(format!("query parameter `state` = {s:?} {e}"))
            })?],
        };
    let filter = RunFilter {
        namespace: q.namespace,
        namespace_in: caller.namespace_in(AccessRole::Viewer),
        workflow: q.workflow,
        states,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_RUNS);
    let runs = st.store.list_workflow_runs(&filter, limit).await?;
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        out.push(run_view(&st, r).await?);
    }
    Ok(Json(out))
}

/// The run, if the caller may act on it with `role` (404 when it may not see it).
async fn load_run(
    st: &AppState,
    caller: &Caller,
    id: &str,
    role: AccessRole,
) -> Result<WorkflowRunRecord, ApiError> {
    let missing = || ApiError::from(StoreError::NoWorkflowRun(id.into()));
    let run = st.store.get_workflow_run(id).await?.ok_or_else(missing)?;
    caller.visible(&run.namespace, missing)?;
    caller.require(&run.namespace, role)?;
    Ok(run)
}

/// One workflow run: each step with its status, job and why it waits or was skipped.
#[utoipa::path(get, path = "/v1/workflow-runs/{id}",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody)))]
pub async fn get_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run = load_run(&st, &caller, &id, AccessRole::Viewer).await?;
    Ok(Json(run_view(&st, run).await?))
}

/// Cancel a run: its queued and running steps' jobs are cancelled, waiting steps never start.
#[utoipa::path(post, path = "/v1/workflow-runs/{id}/cancel",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run = load_run(&st, &caller, &id, AccessRole::Submitter).await?;
    let after = workflows::cancel(&st, &id, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "workflow.cancel",
        Some(&run.namespace),
        Some(&id),
        None,
    )
    .await;
    Ok(Json(run_view(&st, after).await?))
}

/// Rerun a failed or cancelled run from its failed steps: new jobs for its failed, skipped and
/// cancelled steps only; succeeded steps keep their results.
#[utoipa::path(post, path = "/v1/workflow-runs/{id}/rerun",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rerun_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run = load_run(&st, &caller, &id, AccessRole::Submitter).await?;
    let after = workflows::rerun(&st, &id, st.now_ms()).await?;
    audit(
        &st,
        &caller,
        "workflow.rerun",
        Some(&run.namespace),
        Some(&id),
        after.message.clone(),
    )
    .await;
    Ok(Json(run_view(&st, after).await?))
}

/// The OpenAPI paths and schemas of the workflow endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(
        apply_workflow,
        list_workflows,
        get_workflow,
        start_run,
        list_runs,
        get_run,
        cancel_run,
        rerun_run
    ),
    components(schemas(
        WorkflowView,
        StepDefView,
        WorkflowApplyView,
        StartRun,
        RunView,
        StepView
    ))
)]
pub struct WorkflowsApiDoc;

/// The routes of the workflow endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/workflows",
            axum::routing::put(apply_workflow).get(list_workflows),
        )
        .route("/v1/workflows/{namespace}/{name}", get(get_workflow))
        .route("/v1/workflows/{namespace}/{name}/runs", post(start_run))
        .route("/v1/workflow-runs", get(list_runs))
        .route("/v1/workflow-runs/{id}", get(get_run))
        .route("/v1/workflow-runs/{id}/cancel", post(cancel_run))
        .route("/v1/workflow-runs/{id}/rerun", post(rerun_run))
}
