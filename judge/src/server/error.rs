//! The API's errors, in Judge0's shapes: `{"error": "..."}` for requests, `{"field":
//! ["message"]}` for validation, empty bodies for authentication.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::db::DbError;
use crate::queue::QueueError;

/// Per-field validation messages, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, Vec<String>)>);

impl FieldErrors {
    /// Adds a message for a field.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, messages)) => messages.push(message),
            None => self.0.push((field.to_owned(), vec![message])),
        }
    }

    /// Whether no field has a message.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `{"field": ["message", ...], ...}`.
    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> =
            self.0.iter().map(|(f, m)| (f.clone(), Value::from(m.clone()))).collect();
        Value::Object(map)
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong `X-Auth-Token`: 401, empty body.
    #[error("unauthorized")]
    Unauthorized,
    /// Missing or wrong `X-Auth-User`: 403, empty body.
    #[error("forbidden")]
    Forbidden,
    /// 404 `{"error":"not found"}`.
    #[error("not found")]
    NotFound,
    /// 400 `{"error": ...}`.
    #[error("{0}")]
    BadRequest(String),
    /// 422 with per-field messages.
    #[error("invalid submission")]
    Invalid(FieldErrors),
    /// 422 with a prepared body (batches).
    #[error("invalid batch")]
    InvalidBatch(Value),
    /// 503 `{"error": ...}`.
    #[error("{0}")]
    Unavailable(String),
    /// 500: something of ours failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
            ApiError::Forbidden => StatusCode::FORBIDDEN.into_response(),
            ApiError::NotFound => {
                (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
            }
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, Json(json!({ "error": m }))).into_response(),
            ApiError::Invalid(errors) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(errors.to_json())).into_response()
            }
            ApiError::InvalidBatch(body) => (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response(),
            ApiError::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": m }))).into_response()
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "Request failed.");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "internal error"}))).into_response()
            }
        }
    }
}
