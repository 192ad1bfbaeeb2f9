//! Members of the tenant: list, invite, change role and permissions, remove.

use crate::auth::{Auth, MembersManage, MembersRead};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_accounts::{MemberChange, NewMember};
use lacuna_domain::{Permission, PermissionSet, Role};
use lacuna_storage::MemberRow;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MemberResponse {
    id: String,
    email: String,
    name: String,
    role: Role,
    /// Narrowed permissions, or null when the member holds the role's full set.
    narrowed: Option<Vec<&'static str>>,
    /// What the member may do.
    permissions: Vec<&'static str>,
    /// True until the invitation is accepted.
    invited: bool,
    created_at: String,
}

impl From<MemberRow> for MemberResponse {
    fn from(m: MemberRow) -> Self {
        Self {
            id: m.user_id.to_string(),
            permissions: m.effective_permissions().names(),
            narrowed: m.permissions.map(PermissionSet::names),
            email: m.email,
            name: m.name,
            role: m.role,
            invited: m.invited,
            created_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    email: String,
    name: String,
    role: Role,
    /// Optional narrowing: a subset of the role's permissions.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    permissions: Option<Vec<Permission>>,
}

#[derive(Serialize, ToSchema)]
pub struct InviteResponse {
    member: MemberResponse,
    /// Give this to the new member (shown once); they accept it at `/api/v1/auth/accept-invite`.
    invite_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    #[serde(default)]
    role: Option<Role>,
    /// A list narrows the role; `null` restores the role's full set; absent leaves it as is.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    permissions: Option<Option<Vec<Permission>>>,
}

/// Distinguishes a field sent as `null` (Some(None)) from one left out (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Lists the tenant's members.
#[utoipa::path(get, path = "/api/v1/members", tag = "members",
    security(("session" = ["members.read"]), ("token" = ["members.read"])),
    responses((status = 200, body = [MemberResponse]), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, auth: Auth<MembersRead>) -> Result<Json<Vec<MemberResponse>>, ApiError> {
    let rows = st.accounts.list_members(&auth.principal).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Invites a member with a role (and optionally narrower permissions).
#[utoipa::path(post, path = "/api/v1/members", tag = "members", request_body = InviteRequest,
    security(("session" = ["members.manage"]), ("token" = ["members.manage"])),
    responses((status = 201, body = InviteResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn invite(
    State(st): State<AppState>,
    auth: Auth<MembersManage>,
    ValidJson(req): ValidJson<InviteRequest>,
) -> Result<(StatusCode, Json<InviteResponse>), ApiError> {
    let m = NewMember {
        email: req.email,
        name: req.name,
        role: req.role,
        permissions: req.permissions.map(|p| PermissionSet::of(&p)),
    };
    let (row, invite_token) = st.accounts.invite_member(&auth.principal, m).await?;
    Ok((StatusCode::CREATED, Json(InviteResponse { member: row.into(), invite_token })))
}

/// One member.
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "Member id")),
    security(("session" = ["members.read"]), ("token" = ["members.read"])),
    responses((status = 200, body = MemberResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth<MembersRead>,
    Path(id): Path<String>,
) -> Result<Json<MemberResponse>, ApiError> {
    let row = st.accounts.get_member(&auth.principal, parse_id(&id)?).await?;
    Ok(Json(row.into()))
}

/// Changes a member's role or narrows their permissions. The last owner cannot be demoted.
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "members", request_body = ChangeRequest,
    params(("id" = String, Path, description = "Member id")),
    security(("session" = ["members.manage"]), ("token" = ["members.manage"])),
    responses((status = 200, body = MemberResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change(
    State(st): State<AppState>,
    auth: Auth<MembersManage>,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<ChangeRequest>,
) -> Result<Json<MemberResponse>, ApiError> {
    let change =
        MemberChange { role: req.role, permissions: req.permissions.map(|o| o.map(|p| PermissionSet::of(&p))) };
    let row = st.accounts.change_member(&auth.principal, parse_id(&id)?, change).await?;
    Ok(Json(row.into()))
}

/// Removes a member and ends their sessions. The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "Member id")),
    security(("session" = ["members.manage"]), ("token" = ["members.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(st): State<AppState>,
    auth: Auth<MembersManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.accounts.remove_member(&auth.principal, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
