//! Right-sizing advice applied to a schedule, on request only:
//! `POST /v1/advice/{namespace}/{schedule}/apply` (role `submitter` in the namespace). The
//! advice is computed as `GET /v1/advice?by=schedule` does, from the runs of the window; the
//! schedule's template gets the advised `driver.memory`, `executor.memory` and
//! `executor.cores`; its next runs use them. Nothing else ever changes a schedule's sizing.

use axum::Json;
use axum::extract::{Path, Query, State};
use sluice_core::access::AccessRole;
use sluice_core::cost::GroupBy;
use sluice_core::cost::advice::{AdviceStatus, advise, apply_to};
use sluice_core::spec::JobKind;
use sluice_core::stored::StoredJob;
use sluice_store::StoreError;

use super::cost::{CostParams, MAX_RUNS, filter};
use super::error::{ApiError, ErrorBody, refused};
use crate::admission;
use crate::auth::{Caller, audit};
use crate::state::AppState;
pub use sluice_api::AppliedView;

/// Applies the schedule's right-sizing advice to its template.
#[utoipa::path(post, path = "/v1/advice/{namespace}/{schedule}/apply",
    params(("namespace" = String, Path), ("schedule" = String, Path)),
    responses((status = 200, body = AppliedView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply(
    State(st): State<AppState>,
    caller: Caller,
    Path((namespace, schedule)): Path<(String, String)>,
    Query(p): Query<CostParams>,
) -> Result<Json<AppliedView>, ApiError> {
    let missing = || {
        ApiError::from(StoreError::NoSchedule {
            namespace: namespace.clone(),
            name: schedule.clone(),
        })
    };
    caller.visible(&namespace, missing)?;
    caller.require(&namespace, AccessRole::Submitter)?;
    let rec = st
        .store
        .get_schedule(&namespace, &schedule)
        .await?
        .ok_or_else(missing)?;
    let p = CostParams {
        namespace: Some(namespace.clone()),
        schedule: Some(schedule.clone()),
        name: None,
        ..p
    };
    let f = filter(&st, &caller, &p)?;
    let runs = st.store.usage(&f, MAX_RUNS).await?;
    let cfg = &st.config.cost;
    let window = f.to_ms.saturating_sub(f.from_ms);
    let advice = advise(
        &namespace,
        &schedule,
        GroupBy::Schedule,
        &runs,
        &cfg.advice(),
        &cfg.prices(&namespace),
        window,
    );
    let recommended = match (advice.status, advice.recommended) {
        (AdviceStatus::Advised, Some(r)) => r,
        (AdviceStatus::NotSpark, _) => {
            return Err(ApiError::Conflict(format!(
                "schedule {namespace}/{schedule}: its runs are not Spark jobs; there is no advice \
                 to apply"
            )));
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "schedule {namespace}/{schedule}: {} measured run(s) in the window, advice needs \
                 {} (cost.advice_min_runs)",
                advice.based_on.len(),
                cfg.advice_min_runs
            )));
        }
    };
    let corrupt = |e: &dyn std::fmt::Display| {
        ApiError::from(StoreError::Corrupt(format!(
            "the template of schedule {namespace}/{schedule}: {e}"
        )))
    };
    let stored = StoredJob::decode(&rec.template).map_err(|e| corrupt(&e))?;
    let mut job = stored.job;
    let changed = match &mut job.kind {
        JobKind::Spark { spec, .. } => apply_to(spec, &recommended),
        other => {
            return Err(ApiError::Conflict(format!(
                "schedule {namespace}/{schedule} runs a `{}` job; right-sizing advice applies \
                 to Spark applications (`spark`) only",
                other.section()
            )));
        }
    };
    if !changed.is_empty() {
        // The new sizing must be one the backend can run.
        admission::check(&st, &job)
            .await
            .map_err(|r| refused(r, &format!("the runs of schedule {namespace}/{schedule}")))?;
        let template = StoredJob::rebuilt(job, stored.policy)
            .and_then(|t| t.encode())
            .map_err(|e| corrupt(&e))?;
        let message = format!("right-sizing advice applied: {}", changed.join(", "));
        st.store
            .set_schedule_template(&namespace, &schedule, &template, st.now_ms(), &message)
            .await?;
        audit(
            &st,
            &caller,
            "schedule.advice.apply",
            Some(&namespace),
            Some(&schedule),
            Some(changed.join(", ")),
        )
        .await;
    }
    Ok(Json(AppliedView { advice, changed }))
}

/// The OpenAPI document of the apply route (merged into `/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(apply), components(schemas(AppliedView)))]
pub struct AdviceApiDoc;

/// The routes of this module.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route(
        "/v1/advice/{namespace}/{schedule}/apply",
        axum::routing::post(apply),
    )
}
