//! The API's errors: one status per kind, one JSON body, and the mapping of the store's,
//! the backend's and the orchestration's errors to them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_backend::BackendError;
use sluice_store::StoreError;

use crate::admission::Refusal;
use crate::fault::{store_detail, store_unavailable};
use crate::guard::command::CommandRefused;
use crate::orchestration::OrchError;
use crate::time::ParamError;
pub use sluice_api::ErrorBody;

/// An API error: a status and a message that names the field and value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a field is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The job can never run on this backend (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No such job (404).
    #[error("{0}")]
    NotFound(String),
    /// The job is in a state that does not allow this (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is over `api.max_body_bytes` (413).
    #[error("request body is larger than the limit api.max_body_bytes = {0} bytes")]
    TooLarge(usize),
    /// Something failed that the client cannot fix (500); the message is generic, the detail
    /// is in the server's log.
    #[error("{0}")]
    Internal(String),
    /// The backend or the database is not reachable now (503, with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
    /// No valid token: missing, unknown, revoked or expired (401, with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// The token or the configuration does not allow this (403): a role the token lacks, a
    /// request from another site or host, a command job where command jobs are not allowed.
    #[error("{0}")]
    Forbidden(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sluice\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }
}

/// The `Retry-After` of a 503, in seconds.
pub const RETRY_AFTER_SECS: u32 = 5;

/// The body of a 500 caused by the store (the detail goes to the log, never to the client).
pub const STORE_FAILED: &str = "internal error: the store failed (the server log has the details)";

/// The one mapping of store errors: not found 404, conflicts 409, invalid input 400 (naming the
/// field), unavailable 503 (with `Retry-After`), anything else 500 with a generic message (the
/// detail, which may hold database or driver text, is logged).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if store_unavailable(&e) {
            tracing::warn!("store unavailable: {}", store_detail(&e));
            return ApiError::Unavailable("the store is unavailable, try again later".into());
        }
        match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("no job with id {id:?}")),
            e @ (StoreError::NoSchedule { .. }
            | StoreError::NoToken(_)
            | StoreError::NoWorkflow { .. }
            | StoreError::NoWorkflowRun(_)) => ApiError::NotFound(e.to_string()),
            e @ (StoreError::DuplicateSchedule { .. }
            | StoreError::Duplicate(_)
            | StoreError::DuplicateToken(_)
            | StoreError::NotDeadLettered(_)
            | StoreError::Stale(_)
            | StoreError::Conflict { .. }
            | StoreError::InvalidTransition { .. }) => ApiError::Conflict(e.to_string()),
            e @ StoreError::BadCursor(_) => {
                ApiError::BadRequest(format!("query parameter `cursor`: {e}"))
            }
            StoreError::BadQuery(m) => ApiError::BadRequest(m),
            // A value the store cannot keep (a NUL character), naming the field.
            e @ StoreError::InvalidInput { .. } => ApiError::BadRequest(e.to_string()),
            e => {
                tracing::error!("store error: {}", store_detail(&e));
                ApiError::Internal(STORE_FAILED.into())
            }
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Unavailable(m) => {
                ApiError::Unavailable(format!("backend unavailable: {m}"))
            }
            e => ApiError::Internal(format!("backend: {e}")),
        }
    }
}

impl From<OrchError> for ApiError {
    fn from(e: OrchError) -> Self {
        match e {
            OrchError::Spec(e) => ApiError::BadRequest(e.to_string()),
            OrchError::NoFilter(m) => ApiError::BadRequest(m),
            OrchError::NeverFits(m) => ApiError::Unprocessable(m),
            OrchError::Refused(e) => ApiError::Forbidden(e.0),
            OrchError::Store(e) => ApiError::from(e),
            OrchError::Backend(e) => ApiError::from(e),
            OrchError::Encode(e) => ApiError::Internal(format!("encoding: {e}")),
            OrchError::Conflict(m) => ApiError::Conflict(m),
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl From<CommandRefused> for ApiError {
    fn from(e: CommandRefused) -> Self {
        ApiError::Forbidden(e.0)
    }
}

/// A refusal of the admission gate for `subject` ("job ns/name"): 400 for an invalid spec,
/// 422 for a job that can never run here.
pub fn refused(r: Refusal, subject: &str) -> ApiError {
    match r {
        Refusal::Invalid(e) => ApiError::BadRequest(e.to_string()),
        never @ Refusal::Never { .. } => ApiError::Unprocessable(format!("{subject} {never}")),
        Refusal::Backend(e) => ApiError::from(e),
    }
}

/// The text of a request body: 413 over `limit` bytes, 400 when it is not UTF-8.
pub fn body_text(body: &Result<Bytes, BytesRejection>, limit: usize) -> Result<&str, ApiError> {
    let body = body.as_ref().map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest(format!("request body: {e}"))
        }
    })?;
    std::str::from_utf8(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests;
