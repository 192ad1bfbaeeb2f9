//! Insight: the pseudonymous event intake for external systems, gaps with revenue at stake,
//! proposed actions and their approval, the approval policy, triggers, pseudonym rotation.
//! Every answer holds pseudonyms only.

use crate::auth::{Auth, InsightApprove, InsightIngest, InsightManage, InsightRead, InsightRotate};
use crate::error::ErrorBody;
use crate::json::{ValidJson, ValidQuery};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_insight::{GapKind, ServiceCategory};
use lacuna_insight_service::{ActionView, GapList, GapQuery, IngestReport, InsightError, ProposeReport};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

impl From<InsightError> for ApiError {
    fn from(e: InsightError) -> Self {
        use InsightError as E;
        match e {
            E::Invalid { field, message } => {
                ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", field, message)
            }
            E::Rejected(list) => {
                let first = list.first().map(|r| format!("events[{}].{}", r.index, r.field));
                let detail: Vec<String> = list
                    .iter()
                    .take(5)
                    .map(|r| format!("events[{}].{} looks like {} ({})", r.index, r.field, r.kind, r.message))
                    .collect();
                ApiError {
                    field: first,
                    ..ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "phi_rejected",
                        format!(
                            "{} event(s) refused by the PHI guard, nothing was stored: {}",
                            list.len(),
                            detail.join("; ")
                        ),
                    )
                }
            }
            E::NotFound => ApiError::not_found(),
            E::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why),
            E::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            E::Account(a) => a.into(),
            E::Storage(s) => lacuna_accounts::AccountError::Storage(s).into(),
            E::Internal(s) => {
                tracing::error!(error = %s, "insight error");
                ApiError::internal()
            }
        }
    }
}

/// One pseudonymous event, a list of them, or `{"events": [...]}` (at most 1000).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum EventsRequest {
    Batch { events: Vec<Value> },
    List(Vec<Value>),
    One(Value),
}

#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    /// Events new to Insight.
    accepted: u64,
    /// Events Insight already had (same `event_id`): no-ops.
    duplicates: u64,
}

impl From<IngestReport> for IngestResponse {
    fn from(r: IngestReport) -> Self {
        Self { accepted: r.accepted, duplicates: r.duplicates }
    }
}

/// Sends pseudonymous events from an external practice system (an API token with
/// `insight.ingest`). Every event passes the PHI guard or the whole batch is refused (422 naming
/// the event, the field and the kind of identifier it looked like — never the value).
#[utoipa::path(post, path = "/api/v1/insight/events", tag = "insight",
    request_body(content = Object, description = "One event, a list of events, or {\"events\": [...]}"),
    security(("session" = ["insight.ingest"]), ("token" = ["insight.ingest"])),
    responses((status = 202, body = IngestResponse), (status = 422, body = ErrorBody)))]
pub async fn ingest(
    State(st): State<AppState>,
    auth: Auth<InsightIngest>,
    ValidJson(req): ValidJson<EventsRequest>,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let events = match req {
        EventsRequest::Batch { events } | EventsRequest::List(events) => events,
        EventsRequest::One(event) => vec![event],
    };
    let report = st.insight.ingest(&auth.principal, &events).await?;
    Ok((StatusCode::ACCEPTED, Json(report.into())))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GapParams {
    /// `rebook_due`, `slot_fill`, `follow_up_due` or `lapsing_member`.
    kind: Option<String>,
    /// A service category (`neurotoxin`, `filler`, …).
    category: Option<String>,
    /// Only gaps scoring at least this (0–1).
    min_score: Option<f64>,
    /// How many gaps to list (default 50, at most 500); totals always cover every match.
    limit: Option<usize>,
}

/// The gap list, `GapList` of the Insight service: totals of revenue at stake over every matching gap
/// (by kind and overall) and the best-scored gaps, each with its evidence, pseudonyms only.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct GapsResponse(GapList);

/// Current revenue gaps with totals of revenue at stake.
#[utoipa::path(get, path = "/api/v1/insight/gaps", tag = "insight", params(GapParams),
    security(("session" = ["insight.read"]), ("token" = ["insight.read"])),
    responses((status = 200, body = GapsResponse), (status = 422, body = ErrorBody)))]
pub async fn gaps(
    State(st): State<AppState>,
    auth: Auth<InsightRead>,
    ValidQuery(q): ValidQuery<GapParams>,
) -> Result<Json<GapsResponse>, ApiError> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            GapKind::ALL.into_iter().find(|g| g.as_str() == k).ok_or_else(|| {
                ApiError::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "kind",
                    "must be rebook_due, slot_fill, follow_up_due or lapsing_member",
                )
            })
        })
        .transpose()?;
    let category = q
        .category
        .as_deref()
        .map(|c| {
            ServiceCategory::parse(c).ok_or_else(|| {
                ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "category", "is not a service category")
            })
        })
        .transpose()?;
    if q.min_score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
        return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "min_score", "must be from 0 to 1"));
    }
    let query = GapQuery { kind, category, min_score: q.min_score, limit: q.limit.unwrap_or(50).min(500) };
    Ok(Json(GapsResponse(st.insight.gaps(&auth.principal, &query).await?)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActionParams {
    /// `proposed`, `approved` or `declined`.
    status: Option<String>,
    /// `rebook_nudge`, `slot_fill_offer`, `follow_up_checkin` or `member_reminder`.
    kind: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

/// A proposed, approved or declined action (`ActionView`): kind, pseudonym, the gap it answers,
/// revenue at stake, and who decided when.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct ActionResponse(ActionView);

/// Actions, newest first.
#[utoipa::path(get, path = "/api/v1/insight/actions", tag = "insight", params(ActionParams),
    security(("session" = ["insight.read"]), ("token" = ["insight.read"])),
    responses((status = 200, body = [ActionResponse]), (status = 422, body = ErrorBody)))]
pub async fn actions(
    State(st): State<AppState>,
    auth: Auth<InsightRead>,
    ValidQuery(q): ValidQuery<ActionParams>,
) -> Result<Json<Vec<ActionResponse>>, ApiError> {
    let rows =
        st.insight.actions(&auth.principal, q.status.as_deref(), q.kind.as_deref(), q.limit.unwrap_or(100)).await?;
    Ok(Json(rows.into_iter().map(ActionResponse).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct ProposeResponse {
    /// New actions waiting for approval.
    proposed: u64,
    /// New actions the policy approved by itself (their triggers are queued).
    auto_approved: u64,
}

impl From<ProposeReport> for ProposeResponse {
    fn from(r: ProposeReport) -> Self {
        Self { proposed: r.proposed, auto_approved: r.auto_approved }
    }
}

/// Turns current gaps into proposed actions now (a job also does this every minute).
#[utoipa::path(post, path = "/api/v1/insight/actions/propose", tag = "insight",
    security(("session" = ["insight.approve"]), ("token" = ["insight.approve"])),
    responses((status = 200, body = ProposeResponse)))]
pub async fn propose(
    State(st): State<AppState>,
    auth: Auth<InsightApprove>,
) -> Result<Json<ProposeResponse>, ApiError> {
    Ok(Json(st.insight.propose_now(&auth.principal).await?.into()))
}

/// Approves a proposed action: audited, then its trigger goes to the Practice side.
#[utoipa::path(post, path = "/api/v1/insight/actions/{id}/approve", tag = "insight",
    params(("id" = String, Path, description = "Action id")),
    security(("session" = ["insight.approve"]), ("token" = ["insight.approve"])),
    responses((status = 200, body = ActionResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(st): State<AppState>,
    auth: Auth<InsightApprove>,
    Path(id): Path<String>,
) -> Result<Json<ActionResponse>, ApiError> {
    let id: uuid::Uuid = crate::routes::parse_id(&id)?;
    Ok(Json(ActionResponse(st.insight.decide(&auth.principal, &id.to_string(), true).await?)))
}

/// Declines a proposed action (audited); nothing is sent.
#[utoipa::path(post, path = "/api/v1/insight/actions/{id}/decline", tag = "insight",
    params(("id" = String, Path, description = "Action id")),
    security(("session" = ["insight.approve"]), ("token" = ["insight.approve"])),
    responses((status = 200, body = ActionResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn decline(
    State(st): State<AppState>,
    auth: Auth<InsightApprove>,
    Path(id): Path<String>,
) -> Result<Json<ActionResponse>, ApiError> {
    let id: uuid::Uuid = crate::routes::parse_id(&id)?;
    Ok(Json(ActionResponse(st.insight.decide(&auth.principal, &id.to_string(), false).await?)))
}

/// The approval policy of one action kind: `{"kind", "mode": "off"}`,
/// `{"kind", "mode": "approval", "role"}` or
/// `{"kind", "mode": "auto", "max_per_day", "max_value_minor", "role"}`.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct PolicyResponse(lacuna_insight::Policy);

/// The approval policy for every action kind.
#[utoipa::path(get, path = "/api/v1/insight/policy", tag = "insight",
    security(("session" = ["insight.read"]), ("token" = ["insight.read"])),
    responses((status = 200, body = [PolicyResponse])))]
pub async fn get_policy(
    State(st): State<AppState>,
    auth: Auth<InsightRead>,
) -> Result<Json<Vec<PolicyResponse>>, ApiError> {
    Ok(Json(st.insight.policies(&auth.principal).await?.into_iter().map(PolicyResponse).collect()))
}

/// Sets the policy of one action kind (audited). Body: `{"mode": "off"}`,
/// `{"mode": "approval", "role": "manager"}` or
/// `{"mode": "auto", "max_per_day": 20, "max_value_minor": 40000, "role": "manager"}`.
#[utoipa::path(put, path = "/api/v1/insight/policy/{kind}", tag = "insight",
    params(("kind" = String, Path, description = "Action kind")),
    request_body(content = Object),
    security(("session" = ["insight.manage"]), ("token" = ["insight.manage"])),
    responses((status = 200, body = PolicyResponse), (status = 422, body = ErrorBody)))]
pub async fn set_policy(
    State(st): State<AppState>,
    auth: Auth<InsightManage>,
    Path(kind): Path<String>,
    ValidJson(body): ValidJson<Value>,
) -> Result<Json<PolicyResponse>, ApiError> {
    Ok(Json(PolicyResponse(st.insight.set_policy(&auth.principal, &kind, &body).await?)))
}

#[derive(Serialize, ToSchema)]
pub struct TriggerResponse {
    id: String,
    action_id: String,
    kind: String,
    client: String,
    /// "send rebook nudge to p_… via the practice's channel".
    instruction: String,
    /// `pending`, `delivered` or `failed`.
    status: String,
    /// What the Practice side did: `queued`, `no_consent`, `no_contact`, `unknown_client`.
    outcome: Option<String>,
}

/// Triggers of approved actions and what became of them.
#[utoipa::path(get, path = "/api/v1/insight/triggers", tag = "insight",
    security(("session" = ["insight.read"]), ("token" = ["insight.read"])),
    responses((status = 200, body = [TriggerResponse])))]
pub async fn triggers(
    State(st): State<AppState>,
    auth: Auth<InsightRead>,
) -> Result<Json<Vec<TriggerResponse>>, ApiError> {
    let rows = st.insight.triggers(&auth.principal, 200).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(t, status, outcome)| TriggerResponse {
                id: t.id,
                action_id: t.action_id,
                kind: t.kind.as_str().to_string(),
                client: t.client,
                instruction: t.instruction,
                status,
                outcome,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct RejectionCount {
    /// The kind of identifier refused values looked like (`Email`, `Phone`, `FreeText`, …).
    kind: String,
    count: i64,
}

/// How many events the PHI guard refused, by kind of identifier (never the values).
#[utoipa::path(get, path = "/api/v1/insight/rejections", tag = "insight",
    security(("session" = ["insight.read"]), ("token" = ["insight.read"])),
    responses((status = 200, body = [RejectionCount])))]
pub async fn rejections(
    State(st): State<AppState>,
    auth: Auth<InsightRead>,
) -> Result<Json<Vec<RejectionCount>>, ApiError> {
    let rows = st.insight.rejections(&auth.principal).await?;
    Ok(Json(rows.into_iter().map(|(kind, count)| RejectionCount { kind, count }).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct RotationResponse {
    /// Pseudonyms mapped from the old key to the new one.
    pseudonyms: usize,
    /// Insight rows (events, actions, triggers) carried over to the new pseudonyms.
    rows_rewritten: u64,
    /// Old key versions destroyed: old pseudonyms no longer resolve.
    old_keys_retired: u64,
}

/// Rotates the tenant's pseudonym key (owners; fresh MFA). Practice maps every old pseudonym to
/// its new one, Insight carries its history over with that map, then the old key is destroyed.
#[utoipa::path(post, path = "/api/v1/insight/pseudonym-key/rotate", tag = "insight",
    security(("session" = ["insight.manage"]), ("token" = ["insight.manage"])),
    responses((status = 200, body = RotationResponse), (status = 403, body = ErrorBody)))]
pub async fn rotate_pseudonyms(
    State(st): State<AppState>,
    auth: Auth<InsightRotate>,
) -> Result<Json<RotationResponse>, ApiError> {
    let p = &auth.principal;
    let map = st.practice.rotate_pseudonym_key(p).await?;
    let rows_rewritten = st.insight.apply_pseudonym_map(p, &map).await?;
    let old_keys_retired = st.practice.retire_old_pseudonym_keys(p).await?;
    Ok(Json(RotationResponse { pseudonyms: map.len(), rows_rewritten, old_keys_retired }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where the practice's external system receives triggers (`https://`).
    url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookResponse {
    url: String,
    /// The signing secret, shown once: verify `Lacuna-Signature: t=…,v1=…` as
    /// HMAC-SHA256(secret, "<t>.<body>") and deduplicate on `Lacuna-Trigger-Id`.
    secret: String,
}

/// Sets the external practice system that receives triggers as signed webhooks (owners; fresh
/// MFA). Triggers for pseudonyms that are not clients of this practice go there.
#[utoipa::path(put, path = "/api/v1/insight/webhook", tag = "insight", request_body = WebhookRequest,
    security(("session" = ["insight.manage"]), ("token" = ["insight.manage"])),
    responses((status = 200, body = WebhookResponse), (status = 422, body = ErrorBody)))]
pub async fn set_webhook(
    State(st): State<AppState>,
    auth: Auth<InsightRotate>,
    ValidJson(req): ValidJson<WebhookRequest>,
) -> Result<Json<WebhookResponse>, ApiError> {
    let url = req.url.unwrap_or_default();
    let secret = st.practice.set_trigger_endpoint(&auth.principal, &url).await?;
    Ok(Json(WebhookResponse { url: url.trim().to_string(), secret }))
}

/// Removes the external system's endpoint.
#[utoipa::path(delete, path = "/api/v1/insight/webhook", tag = "insight",
    security(("session" = ["insight.manage"]), ("token" = ["insight.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(State(st): State<AppState>, auth: Auth<InsightRotate>) -> Result<StatusCode, ApiError> {
    st.practice.delete_trigger_endpoint(&auth.principal).await?;
    Ok(StatusCode::NO_CONTENT)
}
