//! The JSON API's one error type: every failure reaches the client as
//! `{"error": {"code": "...", "message": "..."}}` with the right status code.
//!
//! Codes are stable, snake_case and meant for programs; messages are Italian, for people. Errors the
//! client caused are not logged as errors; internal ones are logged with their cause chain and
//! shown to the client as a generic message.

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: no active service has this id.
    #[error("servizio sconosciuto: «{0}»")]
    UnknownService(String),
    /// 404: no such route.
    #[error("risorsa inesistente")]
    NotFound,
    /// 400: a parameter the client sent is wrong; `code` says which rule it broke.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 429: too many attempts; retry after this many seconds.
    #[error("troppi tentativi: riprovare tra {0} secondi")]
    TooManyRequests(u64),
    /// 503: the server has not been set up yet (no Questura in the database).
    #[error("il sistema non è ancora configurato")]
    NotConfigured,
    /// 500: our fault. The cause is logged, never shown.
    #[error("errore interno del server")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::UnknownService(_) => (StatusCode::NOT_FOUND, "unknown_service"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Internal(err.into())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(
            "invalid_query",
            format!("parametri non validi: {}", rejection.body_text()),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::bad_request(
            "invalid_body",
            format!("dati non validi: {}", rejection.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(
            "invalid_path",
            format!("percorso non valido: {}", rejection.body_text()),
        )
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `unknown_service`, `invalid_date`, `range_too_large`.
    #[schema(example = "invalid_date")]
    pub code: String,
    /// What went wrong, in Italian, for a person.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyRequests(seconds) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}
