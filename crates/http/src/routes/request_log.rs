//! The tenant's request log: export (owners).

use crate::auth::{AuditExport, Auth};
use crate::error::ErrorBody;
use crate::routes::export::{self, ExportQuery, query_error};
use crate::routes::rfc3339;
use crate::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    occurred_at: String,
    direction: &'static str,
    method: String,
    route: String,
    status: i32,
    latency_us: i64,
    actor: Option<String>,
    request_id: String,
}

/// Every request made in this tenant (route templates only; never bodies or query strings),
/// kept 90 days, as CSV or JSON lines.
#[utoipa::path(get, path = "/api/v1/request-log/export", tag = "audit", params(ExportQuery),
    security(("session" = ["audit.read"]), ("token" = ["audit.read"])),
    responses((status = 200, description = "text/csv or application/x-ndjson"), (status = 403, body = ErrorBody)))]
pub async fn export(
    State(st): State<AppState>,
    auth: Auth<AuditExport>,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let format = q.format()?;
    // Include what was recorded up to this very request.
    st.request_log.flush().await;
    let entries = st.accounts.request_log(&auth.principal).await?;
    let rows: Vec<Row> = entries
        .into_iter()
        .map(|e| Row {
            occurred_at: rfc3339(e.occurred_at),
            direction: e.direction,
            method: e.method,
            route: e.route,
            status: e.status,
            latency_us: e.latency_us,
            actor: e.actor,
            request_id: e.request_id,
        })
        .collect();
    export::respond(format, "request-log", &rows, |r, w| w.serialize(r))
}
