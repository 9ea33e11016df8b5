//! The API's errors: one status per kind, one JSON body, and the mapping of the store's,
//! the backend's and the orchestration's errors to them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sluice_backend::BackendError;
use sluice_store::StoreError;
use utoipa::ToSchema;

use crate::orchestration::OrchError;
use crate::time::ParamError;

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
    /// The store or backend failed (500 / 503).
    #[error("{0}")]
    Internal(String),
    /// The backend is not reachable (503).
    #[error("{0}")]
    Unavailable(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
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
        };
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ApiError::NotFound(format!("no job with id {id:?}")),
            e @ StoreError::NoSchedule { .. } => ApiError::NotFound(e.to_string()),
            e @ (StoreError::DuplicateSchedule { .. }
            | StoreError::NotDeadLettered(_)
            | StoreError::Stale(_)
            | StoreError::Conflict { .. }) => ApiError::Conflict(e.to_string()),
            e => ApiError::Internal(format!("store: {e}")),
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
            OrchError::Store(e) => ApiError::from(e),
            OrchError::Backend(e) => ApiError::from(e),
            OrchError::Encode(e) => ApiError::Internal(format!("encoding: {e}")),
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::BadRequest(e.0)
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
