//! API tokens for scripts and connectors: scoped to the tenant and a set of permissions.

use crate::auth::{Auth, TokensCreate, TokensManage};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_domain::{Permission, PermissionSet};
use lacuna_storage::ApiTokenRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    id: String,
    name: String,
    permissions: Vec<&'static str>,
    created_by: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked: bool,
}

impl From<ApiTokenRow> for TokenResponse {
    fn from(t: ApiTokenRow) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            permissions: t.permissions.names(),
            created_by: t.created_by.to_string(),
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked: t.revoked_at.is_some(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    name: String,
    /// A subset of the creator's own permissions.
    #[schema(value_type = Vec<String>)]
    permissions: Vec<Permission>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    token: TokenResponse,
    /// Use as `Authorization: Bearer <secret>`. Shown once; only its hash is stored.
    secret: String,
}

/// Lists the tenant's API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    security(("session" = ["tokens.manage"]), ("token" = ["tokens.manage"])),
    responses((status = 200, body = [TokenResponse]), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, auth: Auth<TokensManage>) -> Result<Json<Vec<TokenResponse>>, ApiError> {
    Ok(Json(st.accounts.list_tokens(&auth.principal).await?.into_iter().map(Into::into).collect()))
}

/// Creates an API token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    security(("session" = ["tokens.manage"]), ("token" = ["tokens.manage"])),
    responses((status = 201, body = CreatedToken), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth<TokensCreate>,
    ValidJson(req): ValidJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let t = st.accounts.create_token(&auth.principal, &req.name, PermissionSet::of(&req.permissions)).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token: t.row.into(), secret: t.secret })))
}

/// Revokes an API token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    security(("session" = ["tokens.manage"]), ("token" = ["tokens.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    auth: Auth<TokensManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.accounts.revoke_token(&auth.principal, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
