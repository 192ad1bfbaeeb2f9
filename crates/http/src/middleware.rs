//! Cross-cutting HTTP behaviour, applied to every route and the fallback:
//! security headers, request ids, a request log line (route template, never the raw path,
//! query string or body), a body size limit, a request timeout, and JSON error bodies for
//! errors produced outside our handlers (404, 405, 408, 413).

use crate::request_log::LogContext;
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use lacuna_storage::request_log::RequestLogEntry;
use std::time::{Duration, Instant};
use tower_http::timeout::TimeoutLayer;

/// The id of the current request (also sent back as `X-Request-Id`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub(crate) fn wrap(router: Router, state: AppState) -> Router {
    router
        .layer(middleware::from_fn_with_state(state.clone(), crate::idempotency::idempotency))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(middleware::from_fn_with_state(state, request_log))
}

async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if st.http.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Turns any non-JSON error response into the standard JSON error body.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    // JSON bodies, and the web pages' own HTML error pages, are already what the client expects.
    let is_json_or_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html"));
    if !status.is_client_error() && !status.is_server_error() || is_json_or_page {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed for this route"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "request body must be application/json"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "bad request"),
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::SET_COOKIE] {
        if let Some(v) = resp.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// One log line and one request-log entry per request (route template, never the raw path or
/// query string); adds `X-Request-Id`.
async fn request_log(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    let context = LogContext::default();
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(context.clone());
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "<unmatched>".into());
    let mut resp = next.run(req).await;
    let latency_us = started.elapsed().as_micros() as i64;
    let who = context.get();
    tracing::info!(
        target: "lacuna::request",
        request_id = %id,
        method = %method,
        route = %route,
        status = resp.status().as_u16(),
        latency_us,
        tenant = who.as_ref().map(|w| w.0.to_string()).unwrap_or_default(),
    );
    st.request_log.record(RequestLogEntry {
        tenant: who.as_ref().map(|w| w.0),
        occurred_at: lacuna_storage::now_unix(),
        direction: "in",
        method: method.to_string(),
        route,
        status: i32::from(resp.status().as_u16()),
        latency_us,
        actor: who.map(|w| w.1),
        request_id: id.clone(),
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    resp
}
