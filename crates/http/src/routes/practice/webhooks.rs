//! Processor webhooks. Public (the processor has no session), believed only with a valid
//! `Stripe-Signature` within five minutes; answers 404 when no webhook secret is configured.

use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use lacuna_practice::webhooks::{EventOutcome, SignatureError, verify_signature};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    received: bool,
    /// `processed`, `replayed` (already seen: nothing changed) or `ignored`.
    outcome: &'static str,
}

/// Stripe events (`payment_intent.succeeded`, `payment_intent.payment_failed`, `charge.refunded`).
#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    responses((status = 200, body = WebhookResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stripe(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookResponse>, ApiError> {
    let Some(secret) = st.http.stripe_webhook_secret.as_deref() else {
        return Err(ApiError::not_found());
    };
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now = lacuna_storage::now_unix();
    verify_signature(secret.as_bytes(), header, &body, now).map_err(|e| {
        let code = match e {
            SignatureError::Stale => "stale_signature",
            SignatureError::Malformed | SignatureError::Mismatch => "invalid_signature",
        };
        tracing::warn!(code, "webhook refused");
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    })?;
    let outcome = match st.practice.apply_stripe_event(&body, now).await {
        Ok(o) => o,
        Err(lacuna_practice::PracticeError::Validation(v)) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", v.message));
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = match outcome {
        EventOutcome::Processed { .. } => "processed",
        EventOutcome::Replayed => "replayed",
        EventOutcome::Ignored => "ignored",
    };
    Ok(Json(WebhookResponse { received: true, outcome }))
}
