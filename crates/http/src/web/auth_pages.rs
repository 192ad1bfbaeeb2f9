//! Sign-up, sign-in, the second factor (at sign-in and as a step-up before privileged actions),
//! MFA enrollment with a QR code, invitations and sign-out. The session is the API's session
//! (same cookie, same service calls); only the transport of the CSRF token differs.

use super::form::{FieldError, Form, FormData, csrf};
use super::layout::{Nav, Page, bare_page};
use super::session::{PublicForm, Web, WebError, WebForm, enc, form_token, redirect, safe_next};
use crate::auth::{Authenticated, Meta, MfaSelf, MfaVerify, session_clear_cookie, session_set_cookie};
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lacuna_accounts::{IssuedSession, SignupInput};
use maud::{Markup, PreEscaped, html};

fn query(q: &Option<String>) -> FormData {
    FormData::parse(q.as_deref().unwrap_or_default().as_bytes())
}

fn status_of(e: &FieldError) -> StatusCode {
    match e.code.as_str() {
        "conflict" | "slot_taken" | "last_owner" | "invalid_transition" => StatusCode::CONFLICT,
        "throttled" => StatusCode::TOO_MANY_REQUESTS,
        "invalid_credentials" | "unauthenticated" => StatusCode::UNAUTHORIZED,
        "forbidden" => StatusCode::FORBIDDEN,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(crate) fn refused_status(e: &FieldError) -> StatusCode {
    status_of(e)
}

/// Signed in: set the cookie and go on — to the second factor, to enrollment, or to `next`.
fn signed_in(st: &AppState, s: IssuedSession, next: &str) -> Response {
    let to = if s.mfa_required {
        format!("/mfa/verify?next={}", enc(next))
    } else if s.mfa_enrollment_required {
        "/account/mfa?required=1".to_string()
    } else {
        next.to_string()
    };
    let cookie = session_set_cookie(&s.cookie_value, st.accounts.session_lifetime_secs());
    (StatusCode::SEE_OTHER, [(header::LOCATION, to), (header::SET_COOKIE, cookie)]).into_response()
}

// ---- sign-in ---------------------------------------------------------------------------------

fn signin_form(values: &FormData, error: Option<&FieldError>, q: &FormData) -> Markup {
    let f = Form::new(values, error, &["email", "password"]);
    html! {
        section.card.auth-card {
            h1 { "Sign in" }
            @if q.has("expired") {
                div.alert.alert-info role="status" { "Your session ended. Sign in again to continue where you were." }
            }
            @if q.has("signed_out") {
                div.alert.alert-ok role="status" { "You are signed out." }
            }
            (f.banner())
            form method="post" action="/signin" {
                input type="hidden" name="form_token" value=(values.get("form_token"));
                input type="hidden" name="next" value=(values.get("next"));
                (f.input("email", "Email", "email", None, true))
                (f.input("password", "Password", "password", None, true))
                button.btn.btn-primary.btn-block type="submit" { "Sign in" }
            }
            p.muted.center { "New here? " a href="/signup" { "Create a practice" } }
        }
    }
}

/// A public page with its form token (and the cookie, when new).
fn with_form_token(headers: &HeaderMap, mut values: FormData, page: impl FnOnce(&FormData) -> Response) -> Response {
    let (token, set) = form_token(headers);
    values.set("form_token", token);
    let mut resp = page(&values);
    if let Some(set) = set.and_then(|s| header::HeaderValue::from_str(&s).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, set);
    }
    resp
}

pub(crate) async fn signin_page(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let values = FormData::from_pairs([("next", safe_next(q.opt("next").as_deref()))]);
    with_form_token(&headers, values, |v| bare_page(StatusCode::OK, "Sign in", signin_form(v, None, &q)))
}

pub(crate) async fn signin(State(st): State<AppState>, Meta(meta): Meta, PublicForm(form): PublicForm) -> Response {
    let next = safe_next(form.opt("next").as_deref());
    match st.accounts.login(form.get("email"), form.get("password"), &meta).await {
        Ok(s) => signed_in(&st, s, &next),
        Err(e) => {
            let e = FieldError::from(ApiError::from(e));
            bare_page(status_of(&e), "Sign in", signin_form(&form, Some(&e), &FormData::default()))
        }
    }
}

// ---- sign-up ---------------------------------------------------------------------------------

fn signup_form(values: &FormData, error: Option<&FieldError>) -> Markup {
    let f = Form::new(values, error, &["practice_name", "name", "email", "password"]);
    html! {
        section.card.auth-card {
            h1 { "Create your practice" }
            p.muted { "You will be its owner. You can invite your team afterwards." }
            (f.banner())
            form method="post" action="/signup" {
                input type="hidden" name="form_token" value=(values.get("form_token"));
                (f.input("practice_name", "Practice name", "text", None, true))
                (f.input("name", "Your name", "text", None, true))
                (f.input("email", "Email", "email", None, true))
                (f.input("password", "Password", "password", Some("At least 12 characters. A few unrelated words work well."), true))
                button.btn.btn-primary.btn-block type="submit" { "Create practice" }
            }
            p.muted.center { "Already have an account? " a href="/signin" { "Sign in" } }
        }
    }
}

pub(crate) async fn signup_page(headers: HeaderMap) -> Response {
    with_form_token(&headers, FormData::default(), |v| {
        bare_page(StatusCode::OK, "Create your practice", signup_form(v, None))
    })
}

pub(crate) async fn signup(State(st): State<AppState>, Meta(meta): Meta, PublicForm(form): PublicForm) -> Response {
    let input = SignupInput {
        practice_name: form.get("practice_name").to_string(),
        name: form.get("name").to_string(),
        email: form.get("email").to_string(),
        password: form.get("password").to_string(),
    };
    match st.accounts.signup(input, &meta).await {
        Ok(s) => signed_in(&st, s, "/calendar?notice=welcome"),
        Err(e) => {
            let e = FieldError::from(ApiError::from(e));
            bare_page(status_of(&e), "Create your practice", signup_form(&form, Some(&e)))
        }
    }
}

// ---- invitations -----------------------------------------------------------------------------

fn invite_form(values: &FormData, error: Option<&FieldError>) -> Markup {
    let f = Form::new(values, error, &["password"]);
    html! {
        section.card.auth-card {
            h1 { "Join your practice" }
            p.muted { "Choose a password to accept the invitation." }
            (f.banner())
            form method="post" action="/invite" {
                input type="hidden" name="form_token" value=(values.get("form_token"));
                input type="hidden" name="token" value=(values.get("token"));
                (f.input("new_password", "Password", "password", Some("At least 12 characters."), true))
                button.btn.btn-primary.btn-block type="submit" { "Accept invitation" }
            }
        }
    }
}

pub(crate) async fn invite_page(headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let values = FormData::from_pairs([("token", q.get("token"))]);
    with_form_token(&headers, values, |v| bare_page(StatusCode::OK, "Join your practice", invite_form(v, None)))
}

pub(crate) async fn accept_invite(
    State(st): State<AppState>,
    Meta(meta): Meta,
    PublicForm(form): PublicForm,
) -> Response {
    match st.accounts.accept_invite(form.get("token"), form.get("new_password").to_string(), &meta).await {
        Ok(s) => signed_in(&st, s, "/calendar"),
        Err(e) => {
            let mut e = FieldError::from(ApiError::from(e));
            if e.field.as_deref() == Some("password") {
                e.field = Some("new_password".into());
            }
            bare_page(status_of(&e), "Join your practice", invite_form(&form, Some(&e)))
        }
    }
}

// ---- the second factor -----------------------------------------------------------------------

fn verify_form(web: &Web<MfaVerify>, next: &str, error: Option<&FieldError>) -> Markup {
    let values = FormData::from_pairs([("next", next)]);
    let f = Form::new(&values, error, &["code"]);
    let step_up = !web.p.mfa.pending;
    html! {
        section.card.auth-card {
            @if step_up {
                h1 { "Confirm it's you" }
                p.muted { "This action needs a fresh check. Enter the 6-digit code from your authenticator app." }
            } @else {
                h1 { "Two-step verification" }
                p.muted { "Enter the 6-digit code from your authenticator app, or one of your recovery codes." }
            }
            (f.banner())
            form method="post" action="/mfa/verify" {
                (csrf(&web.csrf))
                input type="hidden" name="next" value=(next);
                (f.input("code", "Code", "text", None, true))
                button.btn.btn-primary.btn-block type="submit" { "Verify" }
            }
        }
    }
}

pub(crate) async fn verify_page(web: Web<MfaVerify>, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let next = safe_next(q.opt("next").as_deref());
    bare_page(StatusCode::OK, "Two-step verification", verify_form(&web, &next, None))
}

pub(crate) async fn verify(State(st): State<AppState>, WebForm { web, form }: WebForm<MfaVerify>) -> Response {
    let next = safe_next(form.opt("next").as_deref());
    match st.accounts.mfa_verify(&web.p, form.get("code").trim()).await {
        Ok(()) => redirect(&next),
        Err(e) => {
            let e = FieldError::from(ApiError::from(e));
            bare_page(status_of(&e), "Two-step verification", verify_form(&web, &next, Some(&e)))
        }
    }
}

pub(crate) async fn signout(State(st): State<AppState>, WebForm { web, .. }: WebForm<Authenticated>) -> Response {
    // Signing out of a session that is already gone still clears the cookie.
    let _ = st.accounts.logout(&web.p).await;
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/signin?signed_out=1".to_string()), (header::SET_COOKIE, session_clear_cookie())],
    )
        .into_response()
}

// ---- MFA enrollment --------------------------------------------------------------------------

/// The QR code as inline SVG: the renderer's XML prolog dropped, labelled for screen readers.
/// It carries presentation attributes only (no `style`), so the CSP allows it.
fn qr_markup(svg: &str) -> Markup {
    let start = svg.find("<svg").unwrap_or(0);
    let svg = svg[start..].replacen("<svg ", "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" ", 1);
    PreEscaped(svg)
}

pub(crate) async fn mfa_page(
    State(st): State<AppState>,
    web: Web<MfaSelf>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let s = st.accounts.mfa_status(&web.p).await?;
    let body = html! {
        (super::layout::page_head("Your account", html! {}))
        @if q.has("required") && !s.enrolled {
            div.alert.alert-warn role="status" { "Your practice requires two-step verification. Set it up to continue." }
        }
        section.card {
            h2 { "Two-step verification" }
            @if s.enrolled {
                p { span.pill.pill-ok { "On" } " Codes from your authenticator app protect your sign-in." }
                p.muted { (s.recovery_codes_left) " recovery codes left." }
            } @else {
                p { span.pill { "Off" } " Add a code from an authenticator app to every sign-in. Privileged actions — exports, member changes, security settings — will ask for a fresh code." }
                form method="post" action="/account/mfa/enroll" {
                    (csrf(&web.csrf))
                    button.btn.btn-primary type="submit" { "Set up two-step verification" }
                }
            }
            p.muted { "Practice policy: " (policy_label(s.policy)) }
        }
        section.card {
            h2 { "Profile" }
            dl.facts {
                dt { "Name" } dd { (web.p.profile.name) }
                dt { "Email" } dd { (web.p.profile.email) }
                dt { "Role" } dd { (web.p.profile.role.name().replace('_', " ")) }
                dt { "Practice" } dd { (web.p.profile.tenant_name) }
            }
        }
    };
    Ok(Page::new(&web, "Your account", Nav::Account).notice(q.opt("notice").as_deref()).body(body))
}

pub(crate) fn policy_label(p: lacuna_domain::MfaPolicy) -> &'static str {
    match p {
        lacuna_domain::MfaPolicy::Optional => "each member chooses",
        lacuna_domain::MfaPolicy::OwnersManagers => "required for owners and managers",
        lacuna_domain::MfaPolicy::Everyone => "required for everyone",
    }
}

fn enroll_body(web: &Web<MfaSelf>, secret: &str, uri: &str, qr: Markup, error: Option<&FieldError>) -> Markup {
    let values = FormData::default();
    let f = Form::new(&values, error, &["code"]);
    html! {
        (super::layout::page_head("Set up two-step verification", html! {}))
        section.card.enroll {
            div.enroll-qr { (qr) }
            div.enroll-steps {
                ol.steps {
                    li { "Open your authenticator app (1Password, Google Authenticator, Authy…) and scan the code." }
                    li {
                        "Can't scan? Enter this key by hand: "
                        code #mfa-secret.secret { (secret) }
                    }
                    li { "Type the 6-digit code the app shows." }
                }
                (f.banner())
                form method="post" action="/account/mfa/confirm" {
                    (csrf(&web.csrf))
                    input type="hidden" name="secret" value=(secret);
                    input type="hidden" name="uri" value=(uri);
                    (f.input("code", "Code from the app", "text", None, true))
                    button.btn.btn-primary type="submit" { "Turn on" }
                }
            }
        }
    }
}

pub(crate) async fn mfa_enroll(
    State(st): State<AppState>,
    WebForm { web, .. }: WebForm<MfaSelf>,
) -> Result<Page, WebError> {
    let e = st.accounts.mfa_enroll(&web.p).await?;
    let body = enroll_body(&web, &e.secret_base32, &e.otpauth_uri, qr_markup(&e.qr_svg), None);
    Ok(Page::new(&web, "Set up two-step verification", Nav::Account).body(body))
}

pub(crate) async fn mfa_confirm(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<MfaSelf>,
) -> Result<Page, WebError> {
    match st.accounts.mfa_confirm(&web.p, form.get("code").trim()).await {
        Ok(codes) => {
            let body = html! {
                (super::layout::page_head("Two-step verification is on", html! {}))
                section.card {
                    h2 { "Save your recovery codes" }
                    p { "Each code works once, if you lose your phone. They are shown only now — print them or keep them in your password manager." }
                    ul.codes { @for c in &codes { li { code { (c) } } } }
                    a.btn.btn-primary href="/calendar" { "Continue" }
                }
            };
            Ok(Page::new(&web, "Recovery codes", Nav::Account).notice(Some("mfa_on")).body(body))
        }
        Err(e) => {
            let e = FieldError::from(ApiError::from(e));
            let uri = form.get("uri");
            let qr = lacuna_crypto::qr_svg(uri).map(|s| qr_markup(&s)).unwrap_or_else(|_| html! {});
            let body = enroll_body(&web, form.get("secret"), uri, qr, Some(&e));
            Ok(Page::new(&web, "Set up two-step verification", Nav::Account).status(status_of(&e)).body(body))
        }
    }
}
