//! MFA: status, enrollment (QR code), confirmation, the second factor / step-up, turning it off,
//! and the tenant policy.

use crate::auth::{Auth, MfaSelf, MfaVerify, TenantSettings};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lacuna_domain::MfaPolicy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MfaStatusResponse {
    enrolled: bool,
    enrollment_started: bool,
    recovery_codes_left: i64,
    policy: MfaPolicy,
    /// The practice's policy requires MFA for this member.
    required: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EnrollResponse {
    /// For typing into an authenticator app by hand (base32).
    secret: String,
    otpauth_uri: String,
    /// The `otpauth_uri` as a QR code (SVG).
    qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A 6-digit code from the authenticator app, or a recovery code.
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown once. Keep them somewhere safe.
    recovery_codes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    password: String,
    code: String,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    policy: MfaPolicy,
}

/// The signed-in member's MFA state and the practice's policy.
#[utoipa::path(get, path = "/api/v1/mfa", tag = "mfa",
    security(("session" = []), ("token" = [])),
    responses((status = 200, body = MfaStatusResponse), (status = 401, body = ErrorBody)))]
pub async fn status(State(st): State<AppState>, auth: Auth<MfaSelf>) -> Result<Json<MfaStatusResponse>, ApiError> {
    let s = st.accounts.mfa_status(&auth.principal).await?;
    Ok(Json(MfaStatusResponse {
        enrolled: s.enrolled,
        enrollment_started: s.enrollment_started,
        recovery_codes_left: s.recovery_codes_left,
        policy: s.policy,
        required: s.required,
    }))
}

/// Starts TOTP enrollment: a new secret and its QR code. Confirm with a first code.
#[utoipa::path(post, path = "/api/v1/mfa/enroll", tag = "mfa",
    security(("session" = []), ("token" = [])),
    responses((status = 200, body = EnrollResponse), (status = 422, body = ErrorBody)))]
pub async fn enroll(State(st): State<AppState>, auth: Auth<MfaSelf>) -> Result<Json<EnrollResponse>, ApiError> {
    let e = st.accounts.mfa_enroll(&auth.principal).await?;
    Ok(Json(EnrollResponse { secret: e.secret_base32, otpauth_uri: e.otpauth_uri, qr_svg: e.qr_svg }))
}

/// Confirms enrollment with the first code; returns ten recovery codes (once).
#[utoipa::path(post, path = "/api/v1/mfa/confirm", tag = "mfa", request_body = CodeRequest,
    security(("session" = []), ("token" = [])),
    responses((status = 200, body = RecoveryCodes), (status = 422, body = ErrorBody)))]
pub async fn confirm(
    State(st): State<AppState>,
    auth: Auth<MfaSelf>,
    ValidJson(req): ValidJson<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = st.accounts.mfa_confirm(&auth.principal, &req.code).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// The second factor after sign-in, or a step-up before a privileged action. Each code works once.
#[utoipa::path(post, path = "/api/v1/mfa/verify", tag = "mfa", request_body = CodeRequest,
    security(("session" = []), ("token" = [])),
    responses((status = 204), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify(
    State(st): State<AppState>,
    auth: Auth<MfaVerify>,
    ValidJson(req): ValidJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    st.accounts.mfa_verify(&auth.principal, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns MFA off; needs the password and a current code.
#[utoipa::path(post, path = "/api/v1/mfa/disable", tag = "mfa", request_body = DisableRequest,
    security(("session" = []), ("token" = [])),
    responses((status = 204), (status = 422, body = ErrorBody)))]
pub async fn disable(
    State(st): State<AppState>,
    auth: Auth<MfaSelf>,
    ValidJson(req): ValidJson<DisableRequest>,
) -> Result<StatusCode, ApiError> {
    st.accounts.mfa_disable(&auth.principal, &req.password, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the practice's MFA policy (owners; needs a fresh MFA check if the owner has MFA).
#[utoipa::path(put, path = "/api/v1/settings/mfa-policy", tag = "mfa", request_body = PolicyBody,
    security(("session" = ["tenant.settings"]), ("token" = ["tenant.settings"])),
    responses((status = 200, body = PolicyBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_policy(
    State(st): State<AppState>,
    auth: Auth<TenantSettings>,
    ValidJson(req): ValidJson<PolicyBody>,
) -> Result<Json<PolicyBody>, ApiError> {
    st.accounts.set_mfa_policy(&auth.principal, req.policy).await?;
    Ok(Json(req))
}
