//! Authentication and permission checks as extractors. A handler that takes `Auth<P>` runs only
//! for a principal holding `P`'s permission; the same requirement is written in the route's
//! OpenAPI `security` scopes, and the authorization-matrix test checks both agree.
//!
//! Cookie-authenticated unsafe requests (POST, PUT, PATCH, DELETE) must also carry the
//! session's CSRF token in `X-CSRF-Token`.

use crate::middleware::RequestId;
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use lacuna_accounts::{Principal, PrincipalKind, RequestMeta};
use lacuna_crypto::constant_time_eq;
use lacuna_domain::Permission;
use std::marker::PhantomData;
use std::net::SocketAddr;

/// `__Host-` prefix: Secure, Path=/, no Domain, so no sibling host can set or read it.
pub const SESSION_COOKIE: &str = "__Host-lacuna_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a route requires beyond being signed in.
pub trait Requirement: Send + Sync + 'static {
    const PERMISSION: Option<Permission>;
    /// Privileged: members with MFA must have passed a check in the last 10 minutes (step-up).
    const PRIVILEGED: bool = false;
    /// Usable while the sign-in still owes its second factor.
    const DURING_MFA_PENDING: bool = false;
    /// Usable while the tenant's policy forces this member to enroll in MFA first.
    const DURING_ENROLLMENT: bool = false;
    /// A write that a cancelled practice may still make (reads and exports always work).
    const WHILE_CANCELLED: bool = false;
}

macro_rules! requirements {
    ($($name:ident => $perm:expr $(, $flag:ident)* ;)*) => {
        $(
            #[doc = concat!("Route requirement `", stringify!($name), "`.")]
            #[allow(dead_code)]
            pub struct $name;
            impl Requirement for $name {
                const PERMISSION: Option<Permission> = $perm;
                $( const $flag: bool = true; )*
            }
        )*
    };
}

requirements! {
    // Any signed-in member, e.g. sign-out: works in every state.
    Authenticated => None, DURING_MFA_PENDING, DURING_ENROLLMENT, WHILE_CANCELLED;
    // The second factor itself.
    MfaVerify => None, DURING_MFA_PENDING, WHILE_CANCELLED;
    // Managing one's own MFA (enrollment must work while the policy forces it).
    MfaSelf => None, DURING_ENROLLMENT;
    AccountRead => Some(Permission::AccountRead), DURING_ENROLLMENT;
    MembersRead => Some(Permission::MembersRead);
    MembersManage => Some(Permission::MembersManage), PRIVILEGED;
    TokensManage => Some(Permission::TokensManage);
    TokensCreate => Some(Permission::TokensManage), PRIVILEGED;
    AuditRead => Some(Permission::AuditRead);
    AuditExport => Some(Permission::AuditRead), PRIVILEGED;
    TenantSettings => Some(Permission::TenantSettings), PRIVILEGED;
    TenantReactivate => Some(Permission::TenantSettings), PRIVILEGED, WHILE_CANCELLED;
    ClientsRead => Some(Permission::ClientsRead);
    ClientsWrite => Some(Permission::ClientsWrite);
    CatalogManage => Some(Permission::CatalogManage);
    ScheduleRead => Some(Permission::ScheduleRead);
    AppointmentsWrite => Some(Permission::AppointmentsWrite);
    PlansManage => Some(Permission::PlansManage);
    PaymentsWrite => Some(Permission::PaymentsWrite);
    PaymentsRefund => Some(Permission::PaymentsRefund), PRIVILEGED;
    MessagesRead => Some(Permission::MessagesRead);
    ExportsCreate => Some(Permission::ExportsCreate), PRIVILEGED;
    InsightRead => Some(Permission::InsightRead);
    InsightApprove => Some(Permission::InsightApprove);
    InsightManage => Some(Permission::InsightManage);
    InsightRotate => Some(Permission::InsightManage), PRIVILEGED;
    InsightIngest => Some(Permission::InsightIngest);
}

/// An authenticated principal who holds `R`'s permission.
pub struct Auth<R: Requirement> {
    pub principal: Principal,
    _r: PhantomData<R>,
}

impl<R: Requirement> FromRequestParts<AppState> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        if let Some(ctx) = parts.extensions.get::<crate::request_log::LogContext>() {
            ctx.set(principal.tenant, principal.actor());
        }
        check_requirement::<R>(&principal, &parts.method)?;
        Ok(Self { principal, _r: PhantomData })
    }
}

/// A principal already authenticated earlier in this request (by the idempotency middleware),
/// so the extractor does not look the session up a second time. Only server code can put it in
/// the request's extensions; it is never read from the wire.
#[derive(Clone)]
pub(crate) struct AuthenticatedPrincipal(pub Principal);

/// What `R` demands beyond a valid credential (second factor, enrollment, permission, a
/// cancelled practice's writes, step-up). Shared by the JSON API and the web pages.
pub(crate) fn check_requirement<R: Requirement>(principal: &Principal, method: &Method) -> Result<(), ApiError> {
    if principal.mfa.pending && !R::DURING_MFA_PENDING {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "mfa_required",
            "enter the code from your authenticator app (POST /api/v1/mfa/verify)",
        ));
    }
    if principal.mfa.enrollment_required && !R::DURING_ENROLLMENT {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa_enrollment_required",
            "your practice requires MFA: set it up first (POST /api/v1/mfa/enroll)",
        ));
    }
    if let Some(p) = R::PERMISSION {
        principal.require(p)?;
    }
    if principal.tenant_cancelled && is_unsafe(method) && !R::WHILE_CANCELLED {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tenant_cancelled",
            "this practice is cancelled: sign-in and exports work until it is deleted; reactivate to make changes",
        ));
    }
    if R::PRIVILEGED && !principal.mfa.step_up_satisfied(lacuna_storage::now_unix()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "step_up_required",
            "this action needs a fresh MFA check (POST /api/v1/mfa/verify)",
        ));
    }
    Ok(())
}

pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(AuthenticatedPrincipal(p)) = parts.extensions.get::<AuthenticatedPrincipal>() {
        return Ok(p.clone());
    }
    let meta = request_meta(parts, state);
    if let Some(bearer) = bearer_token(&parts.headers) {
        return Ok(state.accounts.authenticate_token(bearer, meta).await?);
    }
    let cookie = session_cookie(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
    let principal = state.accounts.authenticate_session(&cookie, meta).await?;
    if is_unsafe(&parts.method) {
        check_csrf(&parts.headers, &principal)?;
    }
    Ok(principal)
}

pub(crate) fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn check_csrf(headers: &HeaderMap, p: &Principal) -> Result<(), ApiError> {
    let PrincipalKind::Session { csrf_token, .. } = &p.kind else { return Ok(()) };
    let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if constant_time_eq(sent, csrf_token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "csrf", "missing or wrong X-CSRF-Token header"))
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// `Set-Cookie` for a new session: HttpOnly, Secure, SameSite=Strict, `__Host-` prefixed.
pub(crate) fn session_set_cookie(value: &str, max_age_secs: i64) -> String {
    cookie::Cookie::build((SESSION_COOKIE, value.to_string()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

pub(crate) fn session_clear_cookie() -> String {
    session_set_cookie("", 0)
}

/// The client's address: the socket peer, or the last `X-Forwarded-For` hop behind a trusted proxy.
fn client_addr(parts: &Parts, state: &AppState) -> Option<String> {
    if state.http.trust_proxy
        && let Some(hop) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
    {
        return Some(hop.to_string());
    }
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

pub(crate) fn request_meta(parts: &Parts, state: &AppState) -> RequestMeta {
    RequestMeta {
        client_addr: client_addr(parts, state),
        request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
    }
}

/// Request facts for routes used before sign-in (sign-up, sign-in, invitations).
pub struct Meta(pub RequestMeta);

impl FromRequestParts<AppState> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Meta(request_meta(parts, state)))
    }
}
