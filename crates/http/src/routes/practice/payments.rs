//! Payments: record a processor charge, list, refund (privileged, audited).

use crate::auth::{Auth, PaymentsRefund, PaymentsWrite};
use crate::error::ErrorBody;
use crate::json::{ValidJson, ValidQuery};
use crate::routes::practice::plans::body_id;
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_practice::payments::{Payment, PaymentInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct PaymentResponse {
    id: String,
    /// `charge` or `refund`.
    kind: String,
    appointment_id: Option<String>,
    plan_id: Option<String>,
    /// For a refund: the charge it refunds.
    refund_of: Option<String>,
    amount_minor: i64,
    currency: String,
    payment_method: Option<String>,
    customer: Option<String>,
    payment_intent: Option<String>,
    /// Charge: `pending`, `succeeded`, `failed`, `partially_refunded`, `refunded`; refund: `pending`.
    status: String,
    created_at: String,
}

impl From<Payment> for PaymentResponse {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id.to_string(),
            kind: p.kind,
            appointment_id: p.appointment_id.map(|a| a.to_string()),
            plan_id: p.plan_id.map(|a| a.to_string()),
            refund_of: p.refund_of.map(|a| a.to_string()),
            amount_minor: p.amount_minor,
            currency: p.currency,
            payment_method: p.payment_method,
            customer: p.processor_customer,
            payment_intent: p.payment_intent,
            status: p.status,
            created_at: rfc3339(p.created_at),
        }
    }
}

/// A charge taken through the processor: its tokens and ids only, never card data.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// Exactly one of `appointment_id` and `plan_id`.
    appointment_id: Option<String>,
    plan_id: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    /// `pm_…`
    payment_method: Option<String>,
    /// `cus_…`
    customer: Option<String>,
    /// `pi_…`
    payment_intent: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Defaults to everything that remains of the charge.
    amount_minor: Option<i64>,
    /// `requested_by_customer` (default), `duplicate`, `fraudulent` or `other`.
    reason: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PaymentQuery {
    appointment_id: Option<String>,
    plan_id: Option<String>,
}

/// Records a charge taken through the processor.
#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", request_body = PaymentRequest,
    security(("session" = ["payments.write"]), ("token" = ["payments.write"])),
    responses((status = 201, body = PaymentResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth<PaymentsWrite>,
    ValidJson(req): ValidJson<PaymentRequest>,
) -> Result<(StatusCode, Json<PaymentResponse>), ApiError> {
    let input = PaymentInput {
        appointment_id: body_id("appointment_id", req.appointment_id)?,
        plan_id: body_id("plan_id", req.plan_id)?,
        amount_minor: req.amount_minor,
        currency: req.currency,
        payment_method: req.payment_method,
        customer: req.customer,
        payment_intent: req.payment_intent,
    };
    let p = st.practice.create_payment(&auth.principal, input).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// Payments (charges and refunds), optionally of one appointment or plan.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(PaymentQuery),
    security(("session" = ["payments.write"]), ("token" = ["payments.write"])),
    responses((status = 200, body = [PaymentResponse]), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth<PaymentsWrite>,
    ValidQuery(q): ValidQuery<PaymentQuery>,
) -> Result<Json<Vec<PaymentResponse>>, ApiError> {
    let appt = body_id("appointment_id", q.appointment_id.filter(|s| !s.is_empty()))?;
    let plan = body_id("plan_id", q.plan_id.filter(|s| !s.is_empty()))?;
    let rows = st.practice.payments(&auth.principal, appt, plan).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Refunds a charge, in part or in full (privileged: recent MFA; audited).
#[utoipa::path(post, path = "/api/v1/payments/{id}/refund", tag = "payments", request_body = RefundRequest,
    params(("id" = String, Path, description = "Charge id")),
    security(("session" = ["payments.refund"]), ("token" = ["payments.refund"])),
    responses((status = 201, body = PaymentResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn refund(
    State(st): State<AppState>,
    auth: Auth<PaymentsRefund>,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<RefundRequest>,
) -> Result<(StatusCode, Json<PaymentResponse>), ApiError> {
    let charge = parse_id(&id)?;
    let r = st.practice.refund_payment(&auth.principal, charge, req.amount_minor, req.reason).await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}
