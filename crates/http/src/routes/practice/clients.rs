//! Clients: add, read, edit, search, exact lookup by email or phone.

use crate::auth::{Auth, ClientsRead, ClientsWrite};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::json::ValidQuery;
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_practice::clients::{Client, ClientInput, ClientPatch, Saved};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    id: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    /// `YYYY-MM-DD`.
    birthday: Option<String>,
    marketing_consent: bool,
    notes: Option<String>,
    created_at: String,
    updated_at: String,
    /// After a create or edit: fields stored although they look like they hold an identifier
    /// or clinical details (the practice's `notes_phi_policy` is `warn`). Absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<FieldWarning>,
}

/// A stored field that looks like it holds what it should not: the kind, never the value.
#[derive(Serialize, ToSchema)]
pub struct FieldWarning {
    field: String,
    /// The kind of identifier (`Ssn`, `Email`, `Phone`, `RecordNumber`, …) or `ClinicalTerm`.
    kind: String,
}

impl From<Saved> for ClientResponse {
    fn from(s: Saved) -> Self {
        let warnings =
            s.warnings.iter().map(|w| FieldWarning { field: w.field.to_string(), kind: w.kind.to_string() }).collect();
        Self { warnings, ..s.client.into() }
    }
}

impl From<Client> for ClientResponse {
    fn from(c: Client) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name,
            email: c.email,
            phone: c.phone,
            birthday: c.birthday,
            marketing_consent: c.marketing_consent,
            notes: c.notes,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            warnings: Vec::new(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    birthday: Option<String>,
    #[serde(default)]
    marketing_consent: bool,
    /// Non-clinical notes only.
    #[serde(default)]
    notes: Option<String>,
}

impl From<ClientRequest> for ClientInput {
    fn from(r: ClientRequest) -> Self {
        Self {
            name: r.name,
            email: r.email,
            phone: r.phone,
            birthday: r.birthday,
            marketing_consent: r.marketing_consent,
            notes: r.notes,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// Exact email.
    email: Option<String>,
    /// Exact phone number, any formatting.
    phone: Option<String>,
}

/// Adds a client.
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = ClientRequest,
    security(("session" = ["clients.write"]), ("token" = ["clients.write"])),
    responses((status = 201, body = ClientResponse), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth<ClientsWrite>,
    ValidJson(req): ValidJson<ClientRequest>,
) -> Result<(StatusCode, Json<ClientResponse>), ApiError> {
    let c = st.practice.create_client(&auth.principal, req.into()).await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// One client.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    security(("session" = ["clients.read"]), ("token" = ["clients.read"])),
    responses((status = 200, body = ClientResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth<ClientsRead>,
    Path(id): Path<String>,
) -> Result<Json<ClientResponse>, ApiError> {
    Ok(Json(st.practice.get_client(&auth.principal, parse_id(&id)?).await?.into()))
}

/// Exact lookup by email or phone (through keyed blind indexes).
#[utoipa::path(get, path = "/api/v1/clients/lookup", tag = "clients", params(LookupQuery),
    security(("session" = ["clients.read"]), ("token" = ["clients.read"])),
    responses((status = 200, body = [ClientResponse]), (status = 422, body = ErrorBody)))]
pub async fn lookup(
    State(st): State<AppState>,
    auth: Auth<ClientsRead>,
    ValidQuery(q): ValidQuery<LookupQuery>,
) -> Result<Json<Vec<ClientResponse>>, ApiError> {
    let found = match (q.email, q.phone) {
        (Some(e), None) => st.practice.clients_by_email(&auth.principal, &e).await?,
        (None, Some(p)) => st.practice.clients_by_phone(&auth.principal, &p).await?,
        _ => {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "email",
                "give exactly one of email or phone",
            ));
        }
    };
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// `Some(value)` for a present field, even `null` (so `null` can clear it; absent keeps it).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A partial edit: fields left out keep their value; `null` clears an optional field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatchRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
    /// `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    birthday: Option<Option<String>>,
    #[serde(default)]
    marketing_consent: Option<bool>,
    /// Non-clinical notes only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    notes: Option<Option<String>>,
}

impl From<ClientPatchRequest> for ClientPatch {
    fn from(r: ClientPatchRequest) -> Self {
        Self {
            name: r.name,
            email: r.email,
            phone: r.phone,
            birthday: r.birthday,
            marketing_consent: r.marketing_consent,
            notes: r.notes,
        }
    }
}

/// Edits a client.
#[utoipa::path(patch, path = "/api/v1/clients/{id}", tag = "clients", request_body = ClientPatchRequest,
    params(("id" = String, Path, description = "Client id")),
    security(("session" = ["clients.write"]), ("token" = ["clients.write"])),
    responses((status = 200, body = ClientResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    auth: Auth<ClientsWrite>,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<ClientPatchRequest>,
) -> Result<Json<ClientResponse>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(st.practice.update_client(&auth.principal, id, req.into()).await?.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A few letters of a name or email, or digits of a phone number. Empty: newest clients.
    q: Option<String>,
    /// 1 to 50 (default 20).
    limit: Option<usize>,
}

/// Lists or searches clients (keyed search tokens: the database never holds the text).
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(SearchQuery),
    security(("session" = ["clients.read"]), ("token" = ["clients.read"])),
    responses((status = 200, body = [ClientResponse]), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth<ClientsRead>,
    ValidQuery(q): ValidQuery<SearchQuery>,
) -> Result<Json<Vec<ClientResponse>>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "limit", "must be 1 to 50"));
    }
    let found = st.practice.search_clients(&auth.principal, q.q.as_deref(), limit).await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}
