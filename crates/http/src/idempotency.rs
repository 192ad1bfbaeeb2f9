//! `Idempotency-Key` for every authenticated POST: a retried request gets the first response
//! back and creates nothing twice.
//!
//! The key is scoped to the acting member or token (SHA-256 of actor and key), claimed in its
//! own transaction before the handler runs, so two copies of one request racing each other
//! cannot both run: the second gets 409 `idempotency_in_progress`. The finished response (2xx or
//! 4xx) is stored encrypted with the tenant's data key and replayed with
//! `Idempotent-Replayed: true`; a 5xx frees the key so the retry runs again. Reusing a key with a
//! different request is a 422. Keys are kept 24 hours.
//!
//! Requests without a valid credential pass through untouched: the handler refuses them.

use crate::{ApiError, AppState};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lacuna_crypto::sha256;
use serde::{Deserialize, Serialize};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a key is remembered.
pub const KEY_LIFETIME_SECS: i64 = 24 * 60 * 60;

const TABLE: &str = "idempotency_keys";
const COLUMN: &str = "response_ct";

#[derive(Serialize, Deserialize)]
struct StoredResponse {
    content_type: Option<String>,
    body: String,
}

fn invalid_key() -> ApiError {
    ApiError::field(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "Idempotency-Key",
        "must be 1 to 255 printable ASCII characters",
    )
}

pub(crate) async fn idempotency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(IDEMPOTENCY_HEADER) {
        return next.run(req).await;
    }
    match run(st, req, next).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn run(st: AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    let raw_key = req
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or_else(invalid_key)?
        .to_string();
    let (mut parts, body) = req.into_parts();
    let Ok(principal) = crate::auth::authenticate(&parts, &st).await else {
        // Not signed in (or a bad CSRF token): the handler gives the proper refusal.
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    // The handler's `Auth` extractor takes it from here instead of reading the session again.
    parts.extensions.insert(crate::auth::AuthenticatedPrincipal(principal.clone()));
    let bytes = to_bytes(body, crate::middleware::MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large"))?;
    let actor = principal.actor();
    let key = hex::encode(sha256(format!("{actor}\n{raw_key}").as_bytes()));
    let fingerprint = {
        let mut material = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
        material.extend_from_slice(&bytes);
        sha256(&material).to_vec()
    };
    let store = st.practice.store();
    let now = lacuna_storage::now_unix();

    let mut tx = store.tenant(principal.tenant).write().await.map_err(internal)?;
    let claimed = tx.claim_idempotency_key(&key, &actor, &fingerprint, now).await.map_err(internal)?;
    if !claimed {
        let existing = tx.idempotency_key(&key).await.map_err(internal)?;
        drop(tx);
        return match existing {
            Some(row) if row.fingerprint != fingerprint => Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key",
                "this key was used for a different request",
            )),
            Some(row) => match (row.status_code, row.response_ct) {
                (Some(status), Some(ct)) => replay(&st, &principal, &key, status, &ct).await,
                _ => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                )),
            },
            // Freed between the two statements (a 5xx): ask the client to retry.
            None => Err(ApiError::new(StatusCode::CONFLICT, "idempotency_in_progress", "retry shortly")),
        };
    }
    tx.commit().await.map_err(internal)?;

    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = resp.status();
    let (resp_parts, resp_body) = resp.into_parts();
    let resp_bytes = to_bytes(resp_body, 16 * 1024 * 1024).await.map_err(|_| ApiError::internal())?;
    let content_type = resp_parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);

    let mut tx = store.tenant(principal.tenant).write().await.map_err(internal)?;
    match std::str::from_utf8(&resp_bytes) {
        Ok(text) if !status.is_server_error() => {
            let stored = StoredResponse { content_type, body: text.to_string() };
            let json = serde_json::to_string(&stored).map_err(|_| ApiError::internal())?;
            let keys = st.practice.keys(principal.tenant).await?;
            let sealed = keys.seal(TABLE, COLUMN, &key, &json);
            tx.complete_idempotency_key(&key, i64::from(status.as_u16()), &sealed).await.map_err(internal)?;
        }
        // A server error, or a body that cannot be stored: free the key so a retry runs again.
        _ => tx.release_idempotency_key(&key).await.map_err(internal)?,
    }
    tx.commit().await.map_err(internal)?;
    Ok(Response::from_parts(resp_parts, Body::from(resp_bytes)))
}

async fn replay(
    st: &AppState,
    principal: &lacuna_accounts::Principal,
    key: &str,
    status: i64,
    ct: &[u8],
) -> Result<Response, ApiError> {
    let keys = st.practice.keys(principal.tenant).await?;
    let json = keys.open(TABLE, COLUMN, key, ct)?;
    let stored: StoredResponse = serde_json::from_str(&json).map_err(|_| ApiError::internal())?;
    let status =
        u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).ok_or_else(ApiError::internal)?;
    let mut resp = (status, stored.body).into_response();
    if let Some(v) = stored.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp.headers_mut().insert(HeaderName::from_static(REPLAYED_HEADER), HeaderValue::from_static("true"));
    Ok(resp)
}

fn internal(e: lacuna_storage::StorageError) -> ApiError {
    tracing::error!(error = %e, "idempotency storage error");
    ApiError::internal()
}
