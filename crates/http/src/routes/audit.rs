//! The audit trail: list with filters, export as CSV or JSON lines.

use crate::auth::{AuditExport, AuditRead, Auth};
use crate::error::ErrorBody;
use crate::routes::export::{self, ExportQuery, query_error};
use crate::routes::rfc3339;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lacuna_storage::audit::{AuditEvent, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct AuditEventResponse {
    seq: i64,
    occurred_at: String,
    /// `user:<id>`, `token:<id>` or `anonymous`.
    actor: String,
    actor_role: Option<String>,
    action: String,
    target: Option<String>,
    #[schema(value_type = Object)]
    scope: serde_json::Value,
    client_addr: Option<String>,
    request_id: Option<String>,
    /// This entry's link in the tenant's hash chain (hex).
    entry_hash: String,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(e: AuditEvent) -> Self {
        Self {
            seq: e.seq,
            occurred_at: rfc3339(e.occurred_at),
            actor: e.actor,
            actor_role: e.actor_role,
            action: e.action,
            target: e.target,
            scope: serde_json::from_str(&e.scope).unwrap_or(serde_json::Value::Null),
            client_addr: e.client_addr,
            request_id: e.request_id,
            entry_hash: hex::encode(e.entry_hash),
        }
    }
}

/// Every parameter arrives as text and is checked here, so a bad one is a 422 naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action, e.g. `member.change`.
    action: Option<String>,
    /// Only this actor, e.g. `user:<id>`.
    actor: Option<String>,
    /// From this time (RFC 3339), inclusive.
    from: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    to: Option<String>,
    /// Only events older than this sequence number (for paging).
    before: Option<String>,
    /// At most this many (1–1000, default 100).
    limit: Option<String>,
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| {
                    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", field, "must be an RFC 3339 time")
                })
        })
        .transpose()
}

fn parse_int(field: &str, v: &Option<String>, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| match s.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                field,
                format!("must be a whole number from {min} to {max}"),
            )),
        })
        .transpose()
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        Ok(AuditFilter {
            action: self.action.clone(),
            actor: self.actor.clone(),
            from: parse_time("from", &self.from)?,
            to: parse_time("to", &self.to)?,
            before_seq: parse_int("before", &self.before, 1, i64::MAX)?,
            limit: parse_int("limit", &self.limit, 1, 1000)?.unwrap_or(100),
        })
    }
}

/// The tenant's audit trail, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    security(("session" = ["audit.read"]), ("token" = ["audit.read"])),
    responses((status = 200, body = [AuditEventResponse]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth<AuditRead>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEventResponse>>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let events = st.accounts.audit_events(&auth.principal, q.filter()?).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// Flat CSV row: the scope as JSON text.
#[derive(Serialize)]
struct AuditCsvRow<'a> {
    seq: i64,
    occurred_at: &'a str,
    actor: &'a str,
    actor_role: Option<&'a str>,
    action: &'a str,
    target: Option<&'a str>,
    scope: String,
    client_addr: Option<&'a str>,
    request_id: Option<&'a str>,
    entry_hash: &'a str,
}

/// The whole audit trail in chain order, as CSV or JSON lines.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportQuery),
    security(("session" = ["audit.read"]), ("token" = ["audit.read"])),
    responses((status = 200, description = "text/csv or application/x-ndjson"), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(st): State<AppState>,
    auth: Auth<AuditExport>,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let format = q.format()?;
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = st.accounts.audit_page(&auth.principal, after).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        rows.extend(page.into_iter().map(AuditEventResponse::from));
    }
    export::respond(format, "audit", &rows, |r, w| {
        w.serialize(AuditCsvRow {
            seq: r.seq,
            occurred_at: &r.occurred_at,
            actor: &r.actor,
            actor_role: r.actor_role.as_deref(),
            action: &r.action,
            target: r.target.as_deref(),
            scope: r.scope.to_string(),
            client_addr: r.client_addr.as_deref(),
            request_id: r.request_id.as_deref(),
            entry_hash: &r.entry_hash,
        })
    })
}
