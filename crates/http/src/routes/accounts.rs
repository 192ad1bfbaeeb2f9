//! Sign-up, sign-in, sign-out, invitations and `GET /me`.

use crate::auth::{AccountRead, Auth, Authenticated, Meta, session_clear_cookie, session_set_cookie};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::routes::rfc3339;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lacuna_accounts::{IssuedSession, PrincipalKind, SignupInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The practice's name.
    practice_name: String,
    /// The owner's name.
    name: String,
    email: String,
    /// At least 12 characters.
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The invitation token from `POST /api/v1/members`.
    token: String,
    password: String,
}

/// A new session. The session itself travels in the `__Host-lacuna_session` cookie; send
/// `csrf_token` as `X-CSRF-Token` on every POST, PATCH and DELETE made with the cookie.
#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    tenant_id: String,
    user_id: String,
    csrf_token: String,
    expires_at: String,
    /// True when the member has MFA: send the code to `POST /api/v1/mfa/verify` before anything else.
    mfa_required: bool,
    /// True when the practice requires MFA and the member has none: enroll first.
    mfa_enrollment_required: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    tenant_id: String,
    tenant_name: String,
    user_id: String,
    email: String,
    name: String,
    role: lacuna_domain::Role,
    permissions: Vec<&'static str>,
    /// Present for cookie sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

fn session_response(status: StatusCode, s: IssuedSession, lifetime: i64) -> Response {
    let body = SessionResponse {
        tenant_id: s.tenant.to_string(),
        user_id: s.user.to_string(),
        csrf_token: s.csrf_token,
        expires_at: rfc3339(s.expires_at),
        mfa_required: s.mfa_required,
        mfa_enrollment_required: s.mfa_enrollment_required,
    };
    (status, [(header::SET_COOKIE, session_set_cookie(&s.cookie_value, lifetime))], Json(body)).into_response()
}

/// Creates a practice (tenant) and its owner, and signs the owner in.
#[utoipa::path(post, path = "/api/v1/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 201, body = SessionResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signup(
    State(st): State<AppState>,
    Meta(meta): Meta,
    ValidJson(req): ValidJson<SignupRequest>,
) -> Result<Response, ApiError> {
    let input =
        SignupInput { practice_name: req.practice_name, name: req.name, email: req.email, password: req.password };
    let s = st.accounts.signup(input, &meta).await?;
    Ok(session_response(StatusCode::CREATED, s, st.accounts_lifetime()))
}

/// Signs in with email and password. Repeated failures answer 429 with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    Meta(meta): Meta,
    ValidJson(req): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let s = st.accounts.login(&req.email, &req.password, &meta).await?;
    Ok(session_response(StatusCode::OK, s, st.accounts_lifetime()))
}

/// Ends the current session (it cannot be used again).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("session" = []), ("token" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(st): State<AppState>, auth: Auth<Authenticated>) -> Result<Response, ApiError> {
    st.accounts.logout(&auth.principal).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_clear_cookie())]).into_response())
}

/// Accepts an invitation: sets the member's password and signs them in.
#[utoipa::path(post, path = "/api/v1/auth/accept-invite", tag = "accounts", request_body = AcceptInviteRequest,
    responses((status = 200, body = SessionResponse), (status = 422, body = ErrorBody)))]
pub async fn accept_invite(
    State(st): State<AppState>,
    Meta(meta): Meta,
    ValidJson(req): ValidJson<AcceptInviteRequest>,
) -> Result<Response, ApiError> {
    let s = st.accounts.accept_invite(&req.token, req.password, &meta).await?;
    Ok(session_response(StatusCode::OK, s, st.accounts_lifetime()))
}

/// The signed-in member, their tenant, role and effective permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    security(("session" = ["account.read"]), ("token" = ["account.read"])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
pub async fn me(State(st): State<AppState>, auth: Auth<AccountRead>) -> Result<Json<MeResponse>, ApiError> {
    let me = st.accounts.me(&auth.principal);
    let csrf_token = match auth.principal.kind {
        PrincipalKind::Session { csrf_token, .. } => Some(csrf_token),
        PrincipalKind::ApiToken { .. } => None,
    };
    Ok(Json(MeResponse {
        tenant_id: me.tenant.to_string(),
        tenant_name: me.tenant_name,
        user_id: me.user.to_string(),
        email: me.email,
        name: me.name,
        role: me.role,
        permissions: me.permissions.names(),
        csrf_token,
    }))
}

impl AppState {
    fn accounts_lifetime(&self) -> i64 {
        self.accounts.session_lifetime_secs()
    }
}
