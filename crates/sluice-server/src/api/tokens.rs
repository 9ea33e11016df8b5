//! Who am I, API tokens (admin on `*`) and the audit log (admin on `*`).
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /v1/whoami` | the caller's token id, subject and roles |
//! | `POST /v1/tokens` | make a token (JSON: subject, bindings, expires); its secret is in the answer, once |
//! | `GET /v1/tokens` | every token (never a secret or a hash) |
//! | `POST /v1/tokens/{id}/revoke` | revoke a token: refused at once from then on |
//! | `GET /v1/audit` | the audit log, newest first |

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::access::Binding;
use sluice_store::{AuditEntry, AuditFilter, TokenRecord};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody, body_text};
use crate::auth::token::{TokenError, create_token};
use crate::auth::{Caller, audit};
use crate::state::AppState;
use crate::time::{parse_duration, parse_time, rfc3339};
pub use sluice_api::tokens::{AuditView, NewTokenView, TokenView, WhoAmI};

/// The caller's identity and roles (the UI uses it to show only what the token may do).
#[utoipa::path(get, path = "/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(st): State<AppState>, caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        admin: caller.grants.is_admin(),
        bindings: caller
            .grants
            .bindings()
            .iter()
            .map(Binding::to_string)
            .collect(),
        actor: caller.actor,
        subject: caller.subject,
        auth_enabled: st.config.auth.enabled,
    })
}

fn token_view(t: TokenRecord, now: i64) -> TokenView {
    TokenView {
        active: t.is_active(now),
        bindings: t.bindings.iter().map(Binding::to_string).collect(),
        created_at: rfc3339(t.created_at_ms),
        expires_at: t.expires_at_ms.map(rfc3339),
        revoked_at: t.revoked_at_ms.map(rfc3339),
        id: t.id,
        subject: t.subject,
        created_by: t.created_by,
    }
}

/// The body of `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// Who or what it is for (a person, a team, "prometheus").
    pub subject: String,
    /// `NAMESPACE=ROLE` (roles: viewer, submitter, operator, admin; `*` for every namespace).
    pub bindings: Vec<String>,
    /// How long it works, like `30d` or `12h`; absent: until revoked.
    pub expires: Option<String>,
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Store(e) => ApiError::from(e),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

/// Make a token (admin on `*`).
#[utoipa::path(post, path = "/v1/tokens", request_body = NewTokenRequest,
    responses((status = 201, body = NewTokenView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NewTokenView>), ApiError> {
    let text = body_text(&body, st.config.api.max_body_bytes)?;
    let req: NewTokenRequest = serde_json::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("token request: {e}")))?;
    let subject = req.subject.trim();
    if subject.is_empty() || subject.len() > 200 || subject.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "subject = {:?}: must be 1-200 characters without control characters",
            req.subject
        )));
    }
    if req.bindings.is_empty() {
        return Err(ApiError::BadRequest(
            "bindings = []: give at least one NAMESPACE=ROLE".into(),
        ));
    }
    let bindings = req
        .bindings
        .iter()
        .map(|b| {
            b.parse::<Binding>()
                .map_err(|e| ApiError::BadRequest(format!("bindings: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let now = st.now_ms();
    let expires_at = match &req.expires {
        None => None,
        Some(e) => {
            let d = parse_duration("expires", e)?;
            if d.is_zero() {
                return Err(ApiError::BadRequest(format!(
                    "expires = {e:?}: must be longer than zero"
                )));
            }
            Some(now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        }
    };
    let (rec, secret) = create_token(
        &st,
        subject,
        bindings,
        expires_at,
        Some(caller.actor.clone()),
    )
    .await?;
    audit(
        &st,
        &caller,
        "token.create",
        None,
        Some(&rec.id),
        Some(format!(
            "subject {:?}, bindings {}",
            rec.subject,
            rec.bindings
                .iter()
                .map(Binding::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(NewTokenView {
            token: secret,
            info: token_view(rec, now),
        }),
    ))
}

/// Every token (admin on `*`).
#[utoipa::path(get, path = "/v1/tokens", responses((status = 200, body = [TokenView]), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    let now = st.now_ms();
    Ok(Json(
        st.store
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| token_view(t, now))
            .collect(),
    ))
}

/// Revoke a token (admin on `*`): every later request with it gets 401.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", params(("id" = String, Path, description = "token id")),
    responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let now = st.now_ms();
    let rec = st.store.revoke_token(&id, now).await?;
    audit(&st, &caller, "token.revoke", None, Some(&rec.id), None).await;
    Ok(Json(token_view(rec, now)))
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams, Default)]
pub struct AuditQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this actor (a token id).
    pub actor: Option<String>,
    /// Only this action (`job.submit`, `job.cancel`, `token.create`, ...).
    pub action: Option<String>,
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// Before (RFC 3339).
    pub until: Option<String>,
    /// Most entries, 1-10000 (default 100).
    pub limit: Option<u32>,
}

fn audit_view(e: AuditEntry) -> AuditView {
    AuditView {
        at: rfc3339(e.at_ms),
        id: e.id,
        actor: e.actor,
        subject: e.subject,
        action: e.action,
        namespace: e.namespace,
        target: e.target,
        detail: e.detail,
        peer: e.peer,
    }
}

/// The audit log, newest first (admin on `*`).
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery),
    responses((status = 200, body = [AuditView]), (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(st): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `limit` = {limit} must be between 1 and 10000"
        )));
    }
    let f = AuditFilter {
        namespace: q.namespace,
        actor: q.actor,
        action: q.action,
        since_ms: q
            .since
            .as_deref()
            .map(|v| parse_time("since", v))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|v| parse_time("until", v))
            .transpose()?,
    };
    Ok(Json(
        st.store
            .audit_log(&f, limit)
            .await?
            .into_iter()
            .map(audit_view)
            .collect(),
    ))
}

/// The OpenAPI paths and schemas of these endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(whoami, create, list, revoke, audit_log),
    components(schemas(WhoAmI, TokenView, NewTokenRequest, NewTokenView, AuditView))
)]
pub struct TokensApiDoc;

/// The routes of these endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/whoami", get(whoami))
        .route("/v1/tokens", post(create).get(list))
        .route("/v1/tokens/{id}/revoke", post(revoke))
        .route("/v1/audit", get(audit_log))
}
