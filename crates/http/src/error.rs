//! The one place where errors become HTTP: status, code, message and the offending field.
//! Internal errors are logged with context and answered with a generic 500 that reveals nothing.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lacuna_accounts::AccountError;
use lacuna_domain::ValidationError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

/// `{"error": {"code", "message", "field"?}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, retry_after: None }
    }
    pub fn field(status: StatusCode, code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(status, code, message) }
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign-in required")
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.field, e.message)
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        use AccountError as E;
        match e {
            E::Validation(v) => v.into(),
            E::EmailTaken => ApiError::field(StatusCode::CONFLICT, "conflict", "email", e.to_string()),
            E::InvalidCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", e.to_string()),
            E::Throttled { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", e.to_string())
            },
            E::Unauthenticated => ApiError::unauthenticated(),
            E::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            E::NotFound => ApiError::not_found(),
            E::LastOwner => ApiError::field(StatusCode::CONFLICT, "last_owner", "role", e.to_string()),
            E::Storage(s) => {
                tracing::error!(error = %s, "storage error");
                ApiError::internal()
            }
            E::Crypto(s) => {
                tracing::error!(error = %s, "crypto error");
                ApiError::internal()
            }
        }
    }
}

impl From<lacuna_practice::PracticeError> for ApiError {
    fn from(e: lacuna_practice::PracticeError) -> Self {
        use lacuna_practice::PracticeError as E;
        match e {
            E::Validation(v) => v.into(),
            E::NotFound => ApiError::not_found(),
            E::Conflict { code, field, message } => {
                ApiError { field: field.map(str::to_string), ..ApiError::new(StatusCode::CONFLICT, code, message) }
            }
            E::Account(a) => a.into(),
            E::Storage(s) => AccountError::Storage(s).into(),
            E::Crypto(s) => AccountError::Crypto(s).into(),
            E::PhiRejected { field, kind } => ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "phi_rejected",
                field,
                format!(
                    "{field} hold non-clinical information only and this practice rejects notes that look like \
                     they contain an identifier or clinical details (found: {kind}); remove it and try again"
                ),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message, field: self.field } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
