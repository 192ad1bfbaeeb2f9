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
        if lacuna_domain::contains_card_number(&bytes) {
            return Err(card_number_refused(card_field(&bytes)));
        }
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

/// The refusal for input that looks like a card number. The value itself is never echoed or logged.
pub(crate) fn card_number_refused(field: Option<String>) -> ApiError {
    ApiError {
        field,
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_number_rejected",
            "card numbers are not accepted: take the card in the payment processor and send its token (pm_…)",
        )
    }
}

/// The path of the first JSON value that holds the card-like number (for the error's `field`).
fn card_field(bytes: &[u8]) -> Option<String> {
    fn walk(v: &serde_json::Value, path: &mut Vec<String>) -> bool {
        match v {
            serde_json::Value::String(s) => lacuna_domain::contains_card_number(s.as_bytes()),
            serde_json::Value::Number(n) => lacuna_domain::contains_card_number(n.to_string().as_bytes()),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, x)| {
                path.push(i.to_string());
                let hit = walk(x, path);
                if !hit {
                    path.pop();
                }
                hit
            }),
            serde_json::Value::Object(map) => map.iter().any(|(k, x)| {
                path.push(k.clone());
                let hit = lacuna_domain::contains_card_number(k.as_bytes()) || walk(x, path);
                if !hit {
                    path.pop();
                }
                hit
            }),
            _ => false,
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut path = Vec::new();
    (walk(&value, &mut path) && !path.is_empty()).then(|| path.join("."))
}

/// Query-string extractor with the same policy as [`ValidJson`]: unknown or malformed parameters
/// are a 422 naming the parameter, card-like numbers are refused.
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "query string is malformed"))?;
        if let Some((k, _)) = decoded.iter().find(|(_, v)| lacuna_domain::contains_card_number(v.as_bytes())) {
            return Err(card_number_refused(Some(k.clone())));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize(de).map(ValidQuery).map_err(|err| {
            let path = err.path().to_string();
            let text = err.into_inner().to_string();
            let field = if path == "." { text.split('`').nth(1).map(str::to_string) } else { Some(path) };
            let message = if text.starts_with("unknown field") {
                "unknown parameter"
            } else if text.starts_with("missing field") {
                "is required"
            } else {
                "is invalid"
            };
            ApiError { field, ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message) }
        })
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
