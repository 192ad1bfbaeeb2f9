//! The JSON body extractor: content type checked, unknown fields refused, and every failure
//! answered as a 4xx naming the field (via serde_path_to_error), never a 500.

use crate::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "request body must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "could not read request body")
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Ok(ValidJson(v)),
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                // serde's message may quote the offending value; keep only its kind.
                let message = describe(&inner);
                let field = if path == "." { None } else { Some(path) };
                let (status, code) = if inner.is_syntax() || inner.is_eof() {
                    (StatusCode::BAD_REQUEST, "malformed_json")
                } else {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
                };
                Err(ApiError { field: field.or_else(|| unknown_field(&inner)), ..ApiError::new(status, code, message) })
            }
        }
    }
}

fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.is_syntax() || e.is_eof() {
        return "request body is not valid JSON".into();
    }
    if text.starts_with("unknown field") {
        return "unknown field".into();
    }
    if text.starts_with("missing field") {
        return "is required".into();
    }
    if text.starts_with("invalid type") {
        return "has the wrong type".into();
    }
    if text.starts_with("unknown variant") || text.starts_with("unknown name") {
        return "is not one of the allowed values".into();
    }
    "is invalid".into()
}

/// serde reports a missing or unknown field at the parent path; pull the name out of its message.
fn unknown_field(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.strip_prefix("unknown field `").or_else(|| text.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_string)
}
