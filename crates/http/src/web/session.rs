//! Who is looking at a page: the session cookie (the same one the API uses), the route's
//! requirement (the same `Requirement` types and checks as the API's `Auth<R>`), and CSRF for
//! forms — the session's token travels as the hidden field `csrf_token` instead of the
//! `X-CSRF-Token` header. Refusals become what a browser needs: a redirect to sign-in (with a
//! way back), to the second factor, to MFA enrollment, or an HTML error page.

use super::form::FormData;
use crate::auth::{Requirement, check_requirement, request_meta, session_cookie};
use crate::{ApiError, AppState};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lacuna_accounts::{Principal, PrincipalKind};
use lacuna_crypto::constant_time_eq;
use std::marker::PhantomData;

/// Forms are small; anything larger is refused before parsing.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in member allowed to see the page (holds `R`'s permission, owes no factor).
pub(crate) struct Web<R: Requirement> {
    pub p: Principal,
    pub csrf: String,
    _r: PhantomData<R>,
}

/// A form post by a member allowed to make it, with the CSRF token checked.
pub(crate) struct WebForm<R: Requirement> {
    pub web: Web<R>,
    pub form: FormData,
}

/// Why a page was not shown.
#[derive(Debug)]
pub(crate) enum WebError {
    Redirect(String),
    Page(ApiError),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Page(e)
    }
}

impl From<lacuna_practice::PracticeError> for WebError {
    fn from(e: lacuna_practice::PracticeError) -> Self {
        WebError::Page(e.into())
    }
}

impl From<lacuna_accounts::AccountError> for WebError {
    fn from(e: lacuna_accounts::AccountError) -> Self {
        WebError::Page(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Redirect(to) => redirect(&to),
            WebError::Page(e) => super::layout::error_page(&e),
        }
    }
}

/// `303 See Other` (after a form post the browser follows with a GET).
pub(crate) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// A `next` target only if it is a path on this site (never `//host` or a scheme).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.to_string(),
        _ => "/calendar".to_string(),
    }
}

pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Maps a refusal to where the browser should go instead.
fn refusal(e: ApiError, next: &str, had_cookie: bool) -> WebError {
    let next = enc(next);
    match e.code {
        "unauthenticated" if had_cookie => WebError::Redirect(format!("/signin?expired=1&next={next}")),
        "unauthenticated" => WebError::Redirect(format!("/signin?next={next}")),
        "mfa_required" => WebError::Redirect(format!("/mfa/verify?next={next}")),
        "mfa_enrollment_required" => WebError::Redirect("/account/mfa?required=1".into()),
        "step_up_required" => WebError::Redirect(format!("/mfa/verify?step_up=1&next={next}")),
        _ => WebError::Page(e),
    }
}

impl<R: Requirement> FromRequestParts<AppState> for Web<R> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        // Where to come back to: the page itself (a form post comes back to the page it was on,
        // which has the same path).
        let next = match (parts.method.clone(), parts.uri.path_and_query()) {
            (axum::http::Method::GET, Some(pq)) => pq.as_str().to_string(),
            _ => parts.uri.path().to_string(),
        };
        let cookie = session_cookie(&parts.headers);
        let had_cookie = cookie.as_deref().is_some_and(|c| !c.is_empty());
        let Some(cookie) = cookie.filter(|c| !c.is_empty()) else {
            return Err(refusal(ApiError::unauthenticated(), &next, false));
        };
        let principal = st
            .accounts
            .authenticate_session(&cookie, request_meta(parts, st))
            .await
            .map_err(|e| refusal(e.into(), &next, had_cookie))?;
        if let Some(ctx) = parts.extensions.get::<crate::request_log::LogContext>() {
            ctx.set(principal.tenant, principal.actor());
        }
        check_requirement::<R>(&principal, &parts.method).map_err(|e| refusal(e, &next, had_cookie))?;
        let csrf = match &principal.kind {
            PrincipalKind::Session { csrf_token, .. } => csrf_token.clone(),
            PrincipalKind::ApiToken { .. } => return Err(WebError::Page(ApiError::unauthenticated())),
        };
        Ok(Web { p: principal, csrf, _r: PhantomData })
    }
}

impl<R: Requirement> FromRequest<AppState> for WebForm<R> {
    type Rejection = WebError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let web = Web::<R>::from_request_parts(&mut parts, st).await?;
        let form = read_form(body).await?;
        if !constant_time_eq(form.get("csrf_token").as_bytes(), web.csrf.as_bytes()) {
            return Err(WebError::Page(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "This form has expired. Go back, reload the page and try again.",
            )));
        }
        Ok(WebForm { web, form })
    }
}

/// The pre-session form cookie: there is no session yet to hold a CSRF token for sign-in, sign-up
/// and invitation forms, so the page sets this random value in a `__Host-` cookie (Secure,
/// HttpOnly, SameSite=Strict) and in a hidden field; the post must carry both, equal. Another
/// site can neither read nor set the cookie, so it cannot sign a browser in to its own account.
pub(crate) const FORM_COOKIE: &str = "__Host-lacuna_form";

/// The form token for a public page: the browser's existing one, or a new one with the
/// `Set-Cookie` to send.
pub(crate) fn form_token(headers: &axum::http::HeaderMap) -> (String, Option<String>) {
    if let Some(t) =
        cookie_value(headers, FORM_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return (t, None);
    }
    let t = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let set = format!("{FORM_COOKIE}={t}; Path=/; Secure; HttpOnly; SameSite=Strict");
    (t, Some(set))
}

fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A form posted before sign-in (sign-in, sign-up, invitation), its form token checked.
pub(crate) struct PublicForm(pub FormData);

impl FromRequest<AppState> for PublicForm {
    type Rejection = WebError;

    async fn from_request(req: Request, _st: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let form = read_form(body).await?;
        let cookie = cookie_value(&parts.headers, FORM_COOKIE).unwrap_or_default();
        let sent = form.get("form_token");
        if cookie.is_empty() || !constant_time_eq(sent.as_bytes(), cookie.as_bytes()) {
            return Err(WebError::Page(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "This form has expired. Go back, reload the page and try again.",
            )));
        }
        Ok(PublicForm(form))
    }
}

async fn read_form(body: axum::body::Body) -> Result<FormData, WebError> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        WebError::Page(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the form is too large"))
    })?;
    Ok(FormData::parse(&bytes))
}
