//! Memberships and packages: sell, list with balances, redeem against a completed appointment,
//! cancel.

use crate::auth::{Auth, PlansManage};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_practice::plans::{Plan, PlanInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct PlanResponse {
    id: String,
    client_id: String,
    /// `membership` or `package`.
    kind: String,
    name: String,
    service_id: Option<String>,
    /// Package: total price; membership: monthly price.
    price_minor: i64,
    currency: String,
    /// Membership: credits granted per started month (they roll over).
    credits_per_period: Option<i64>,
    /// Credits granted so far (package: its sessions).
    credits_total: i64,
    credits_used: i64,
    /// `credits_total - credits_used`.
    remaining: i64,
    starts_at: String,
    expires_at: Option<String>,
    /// `active`, `cancelled` or `expired`.
    status: String,
    created_at: String,
}

impl From<Plan> for PlanResponse {
    fn from(p: Plan) -> Self {
        Self {
            id: p.id.to_string(),
            client_id: p.client_id.to_string(),
            kind: p.kind,
            name: p.name,
            service_id: p.service_id.map(|s| s.to_string()),
            price_minor: p.price_minor,
            currency: p.currency,
            credits_per_period: p.credits_per_period,
            credits_total: p.credits_total,
            credits_used: p.credits_used,
            remaining: p.remaining,
            starts_at: rfc3339(p.starts_at),
            expires_at: p.expires_at.map(rfc3339),
            status: p.status,
            created_at: rfc3339(p.created_at),
        }
    }
}

/// A membership `{kind: "membership", name, price_minor, currency, credits_per_period}` or a
/// package `{kind: "package", name, service_id, sessions, price_minor, currency, expires_at?}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    kind: Option<String>,
    name: Option<String>,
    service_id: Option<String>,
    sessions: Option<i64>,
    credits_per_period: Option<i64>,
    price_minor: Option<i64>,
    currency: Option<String>,
    /// RFC 3339; defaults to now.
    starts_at: Option<String>,
    /// RFC 3339.
    expires_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// A completed appointment of the plan's client.
    appointment_id: Option<String>,
}

/// Parses an RFC 3339 time into Unix seconds.
pub(crate) fn parse_time(field: &str, raw: &str) -> Result<i64, ApiError> {
    time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", field, "must be an RFC 3339 time"))
}

/// Parses an id named in a body; a malformed one is a field error.
pub(crate) fn body_id<T: std::str::FromStr>(field: &str, raw: Option<String>) -> Result<Option<T>, ApiError> {
    raw.map(|r| {
        r.trim()
            .parse()
            .map_err(|_| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", field, "is not a valid id"))
    })
    .transpose()
}

/// Sells a membership or package to a client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/plans", tag = "plans", request_body = PlanRequest,
    params(("id" = String, Path, description = "Client id")),
    security(("session" = ["plans.manage"]), ("token" = ["plans.manage"])),
    responses((status = 201, body = PlanResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth<PlansManage>,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<PlanRequest>,
) -> Result<(StatusCode, Json<PlanResponse>), ApiError> {
    let client = parse_id(&id)?;
    let input = PlanInput {
        kind: req.kind,
        name: req.name,
        service_id: body_id("service_id", req.service_id)?,
        sessions: req.sessions,
        credits_per_period: req.credits_per_period,
        price_minor: req.price_minor,
        currency: req.currency,
        starts_at: req.starts_at.as_deref().map(|s| parse_time("starts_at", s)).transpose()?,
        expires_at: req.expires_at.as_deref().map(|s| parse_time("expires_at", s)).transpose()?,
    };
    let plan = st.practice.create_plan(&auth.principal, client, input).await?;
    Ok((StatusCode::CREATED, Json(plan.into())))
}

/// A client's plans with their remaining balance.
#[utoipa::path(get, path = "/api/v1/clients/{id}/plans", tag = "plans",
    params(("id" = String, Path, description = "Client id")),
    security(("session" = ["plans.manage"]), ("token" = ["plans.manage"])),
    responses((status = 200, body = [PlanResponse]), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth<PlansManage>,
    Path(id): Path<String>,
) -> Result<Json<Vec<PlanResponse>>, ApiError> {
    let plans = st.practice.client_plans(&auth.principal, parse_id(&id)?).await?;
    Ok(Json(plans.into_iter().map(Into::into).collect()))
}

/// Spends one credit on a completed appointment (once per appointment).
#[utoipa::path(post, path = "/api/v1/plans/{id}/redeem", tag = "plans", request_body = RedeemRequest,
    params(("id" = String, Path, description = "Plan id")),
    security(("session" = ["plans.manage"]), ("token" = ["plans.manage"])),
    responses((status = 200, body = PlanResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn redeem(
    State(st): State<AppState>,
    auth: Auth<PlansManage>,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<RedeemRequest>,
) -> Result<Json<PlanResponse>, ApiError> {
    let plan = parse_id(&id)?;
    let appt = body_id("appointment_id", req.appointment_id)?;
    Ok(Json(st.practice.redeem_plan(&auth.principal, plan, appt).await?.into()))
}

/// Cancels an active membership or package: no more credits or renewals. 409 `plan_expired` or
/// `plan_inactive` if it is not active.
#[utoipa::path(post, path = "/api/v1/plans/{id}/cancel", tag = "plans",
    params(("id" = String, Path, description = "Plan id")),
    security(("session" = ["plans.manage"]), ("token" = ["plans.manage"])),
    responses((status = 200, body = PlanResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    auth: Auth<PlansManage>,
    Path(id): Path<String>,
) -> Result<Json<PlanResponse>, ApiError> {
    Ok(Json(st.practice.cancel_plan(&auth.principal, parse_id(&id)?).await?.into()))
}
