//! The practice itself: cancel (deleted after 90 days) and reactivate.

use crate::auth::{Auth, TenantReactivate, TenantSettings};
use crate::error::ErrorBody;
use crate::routes::rfc3339;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Cancelled {
    /// Until then sign-in and exports keep working; after it, the practice and its data are
    /// deleted and its encryption keys destroyed.
    delete_after: String,
}

/// Cancels the practice (owners; fresh MFA check if the owner has MFA). Audited.
#[utoipa::path(post, path = "/api/v1/tenant/cancel", tag = "tenant",
    security(("session" = ["tenant.settings"]), ("token" = ["tenant.settings"])),
    responses((status = 200, body = Cancelled), (status = 403, body = ErrorBody)))]
pub async fn cancel(State(st): State<AppState>, auth: Auth<TenantSettings>) -> Result<Json<Cancelled>, ApiError> {
    let at = st.accounts.cancel_tenant(&auth.principal).await?;
    Ok(Json(Cancelled { delete_after: rfc3339(at) }))
}

/// Reactivates a cancelled practice before it is deleted. Audited.
#[utoipa::path(post, path = "/api/v1/tenant/reactivate", tag = "tenant",
    security(("session" = ["tenant.settings"]), ("token" = ["tenant.settings"])),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn reactivate(State(st): State<AppState>, auth: Auth<TenantReactivate>) -> Result<StatusCode, ApiError> {
    st.accounts.reactivate_tenant(&auth.principal).await?;
    Ok(StatusCode::NO_CONTENT)
}
