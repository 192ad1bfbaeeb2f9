//! The catalogue: practice settings, locations, services, providers, working hours, time off.

use crate::auth::{Auth, CatalogManage, ScheduleRead};
use crate::error::ErrorBody;
use crate::json::ValidJson;
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_practice::availability::format_clock;
use lacuna_practice::catalog::{
    HoursInput, Location, PracticeSettings, Provider, ProviderPatch, Service, ServicePatch, SettingsPatch, TimeOff,
    TimeOffInput,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---- settings ----------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct SettingsResponse {
    /// IANA time zone name; working hours are in this zone.
    timezone: String,
    /// ISO 4217 code.
    currency: String,
    reminder_lead_hours: i64,
    /// What happens to client notes that look like they hold an identifier or clinical details:
    /// `warn` (stored, with a warning) or `reject` (422).
    notes_phi_policy: String,
}

impl From<PracticeSettings> for SettingsResponse {
    fn from(s: PracticeSettings) -> Self {
        Self {
            timezone: s.timezone,
            currency: s.currency,
            reminder_lead_hours: s.reminder_lead_hours,
            notes_phi_policy: s.notes_phi_policy,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    reminder_lead_hours: Option<i64>,
    /// `warn` or `reject`.
    #[serde(default)]
    notes_phi_policy: Option<String>,
}

/// The practice's time zone, currency and reminder lead time.
#[utoipa::path(get, path = "/api/v1/practice/settings", tag = "catalog",
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = SettingsResponse)))]
pub async fn get_settings(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
) -> Result<Json<SettingsResponse>, ApiError> {
    Ok(Json(st.practice.practice_settings(&auth.principal).await?.into()))
}

/// Changes the practice's time zone (IANA name), currency, reminder lead time or notes policy.
#[utoipa::path(patch, path = "/api/v1/practice/settings", tag = "catalog", request_body = SettingsRequest,
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 200, body = SettingsResponse), (status = 422, body = ErrorBody)))]
pub async fn patch_settings(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    ValidJson(r): ValidJson<SettingsRequest>,
) -> Result<Json<SettingsResponse>, ApiError> {
    let patch = SettingsPatch {
        timezone: r.timezone,
        currency: r.currency,
        reminder_lead_hours: r.reminder_lead_hours,
        notes_phi_policy: r.notes_phi_policy,
    };
    Ok(Json(st.practice.update_practice_settings(&auth.principal, patch).await?.into()))
}

// ---- locations ---------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct LocationResponse {
    id: String,
    name: String,
    created_at: String,
}

impl From<Location> for LocationResponse {
    fn from(l: Location) -> Self {
        Self { id: l.id.to_string(), name: l.name, created_at: rfc3339(l.created_at) }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    name: String,
}

/// Adds a location.
#[utoipa::path(post, path = "/api/v1/locations", tag = "catalog", request_body = LocationRequest,
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 201, body = LocationResponse), (status = 422, body = ErrorBody)))]
pub async fn create_location(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    ValidJson(r): ValidJson<LocationRequest>,
) -> Result<(StatusCode, Json<LocationResponse>), ApiError> {
    let l = st.practice.create_location(&auth.principal, &r.name).await?;
    Ok((StatusCode::CREATED, Json(l.into())))
}

/// The practice's locations.
#[utoipa::path(get, path = "/api/v1/locations", tag = "catalog",
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = [LocationResponse])))]
pub async fn list_locations(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
) -> Result<Json<Vec<LocationResponse>>, ApiError> {
    Ok(Json(st.practice.locations(&auth.principal).await?.into_iter().map(Into::into).collect()))
}

// ---- services ----------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct ServiceResponse {
    id: String,
    name: String,
    /// neurotoxin, filler, laser, facial, massage, hair, nails or other.
    category: String,
    duration_min: i64,
    buffer_min: i64,
    price_minor: i64,
    currency: String,
    /// Days until the client is due again.
    cycle_days: Option<i64>,
    /// Days after which a check-in is due.
    follow_up_days: Option<i64>,
    active: bool,
    created_at: String,
    updated_at: String,
}

impl From<Service> for ServiceResponse {
    fn from(s: Service) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name,
            category: s.category,
            duration_min: s.duration_min,
            buffer_min: s.buffer_min,
            price_minor: s.price_minor,
            currency: s.currency,
            cycle_days: s.cycle_days,
            follow_up_days: s.follow_up_days,
            active: s.active,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
        }
    }
}

/// A new service (name, category, duration_min, price_minor required) or a change (all optional).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    duration_min: Option<i64>,
    #[serde(default)]
    buffer_min: Option<i64>,
    #[serde(default)]
    price_minor: Option<i64>,
    /// Defaults to the practice currency.
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    cycle_days: Option<i64>,
    #[serde(default)]
    follow_up_days: Option<i64>,
    #[serde(default)]
    active: Option<bool>,
}

impl From<ServiceRequest> for ServicePatch {
    fn from(r: ServiceRequest) -> Self {
        Self {
            name: r.name,
            category: r.category,
            duration_min: r.duration_min,
            buffer_min: r.buffer_min,
            price_minor: r.price_minor,
            currency: r.currency,
            cycle_days: r.cycle_days,
            follow_up_days: r.follow_up_days,
            active: r.active,
        }
    }
}

/// Adds a service to the menu.
#[utoipa::path(post, path = "/api/v1/services", tag = "catalog", request_body = ServiceRequest,
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 201, body = ServiceResponse), (status = 422, body = ErrorBody)))]
pub async fn create_service(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    ValidJson(r): ValidJson<ServiceRequest>,
) -> Result<(StatusCode, Json<ServiceResponse>), ApiError> {
    let s = st.practice.create_service(&auth.principal, r.into()).await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

/// The menu.
#[utoipa::path(get, path = "/api/v1/services", tag = "catalog",
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = [ServiceResponse])))]
pub async fn list_services(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
) -> Result<Json<Vec<ServiceResponse>>, ApiError> {
    Ok(Json(st.practice.services(&auth.principal).await?.into_iter().map(Into::into).collect()))
}

/// One service.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Service id")),
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = ServiceResponse), (status = 404, body = ErrorBody)))]
pub async fn get_service(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
    Path(id): Path<String>,
) -> Result<Json<ServiceResponse>, ApiError> {
    Ok(Json(st.practice.get_service(&auth.principal, parse_id(&id)?).await?.into()))
}

/// Changes a service (only the fields given).
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "catalog", request_body = ServiceRequest,
    params(("id" = String, Path, description = "Service id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 200, body = ServiceResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_service(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path(id): Path<String>,
    ValidJson(r): ValidJson<ServiceRequest>,
) -> Result<Json<ServiceResponse>, ApiError> {
    Ok(Json(st.practice.update_service(&auth.principal, parse_id(&id)?, r.into()).await?.into()))
}

/// Deletes a service without appointments (otherwise 409: deactivate it instead).
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Service id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_service(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.practice.delete_service(&auth.principal, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- providers ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursItem {
    location_id: String,
    /// 0 = Monday … 6 = Sunday.
    weekday: i64,
    /// Local time `HH:MM`.
    start: String,
    /// Local time `HH:MM` (`24:00` = midnight).
    end: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderResponse {
    id: String,
    name: String,
    user_id: Option<String>,
    active: bool,
    service_ids: Vec<String>,
    hours: Vec<HoursItem>,
    created_at: String,
    updated_at: String,
}

impl From<Provider> for ProviderResponse {
    fn from(p: Provider) -> Self {
        Self {
            id: p.row.id.to_string(),
            name: p.row.name,
            user_id: p.row.user_id,
            active: p.row.active,
            service_ids: p.service_ids.iter().map(ToString::to_string).collect(),
            hours: p
                .hours
                .iter()
                .map(|h| HoursItem {
                    location_id: h.location_id.to_string(),
                    weekday: h.weekday,
                    start: format_clock(h.start_min),
                    end: format_clock(h.end_min),
                })
                .collect(),
            created_at: rfc3339(p.row.created_at),
            updated_at: rfc3339(p.row.updated_at),
        }
    }
}

/// A new provider (name required) or a change (all optional).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    #[serde(default)]
    name: Option<String>,
    /// The staff member who is this provider, if any.
    #[serde(default)]
    user_id: Option<String>,
    /// The services this provider performs (replaces the set).
    #[serde(default)]
    service_ids: Option<Vec<String>>,
    #[serde(default)]
    active: Option<bool>,
}

impl From<ProviderRequest> for ProviderPatch {
    fn from(r: ProviderRequest) -> Self {
        Self { name: r.name, user_id: r.user_id, service_ids: r.service_ids, active: r.active }
    }
}

/// Adds a provider.
#[utoipa::path(post, path = "/api/v1/providers", tag = "catalog", request_body = ProviderRequest,
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 201, body = ProviderResponse), (status = 422, body = ErrorBody)))]
pub async fn create_provider(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    ValidJson(r): ValidJson<ProviderRequest>,
) -> Result<(StatusCode, Json<ProviderResponse>), ApiError> {
    let p = st.practice.create_provider(&auth.principal, r.into()).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// The practice's providers with their services and weekly hours.
#[utoipa::path(get, path = "/api/v1/providers", tag = "catalog",
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = [ProviderResponse])))]
pub async fn list_providers(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
) -> Result<Json<Vec<ProviderResponse>>, ApiError> {
    Ok(Json(st.practice.providers(&auth.principal).await?.into_iter().map(Into::into).collect()))
}

/// One provider.
#[utoipa::path(get, path = "/api/v1/providers/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Provider id")),
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = ProviderResponse), (status = 404, body = ErrorBody)))]
pub async fn get_provider(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
    Path(id): Path<String>,
) -> Result<Json<ProviderResponse>, ApiError> {
    Ok(Json(st.practice.get_provider(&auth.principal, parse_id(&id)?).await?.into()))
}

/// Changes a provider (only the fields given).
#[utoipa::path(patch, path = "/api/v1/providers/{id}", tag = "catalog", request_body = ProviderRequest,
    params(("id" = String, Path, description = "Provider id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 200, body = ProviderResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_provider(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path(id): Path<String>,
    ValidJson(r): ValidJson<ProviderRequest>,
) -> Result<Json<ProviderResponse>, ApiError> {
    Ok(Json(st.practice.update_provider(&auth.principal, parse_id(&id)?, r.into()).await?.into()))
}

/// Deletes a provider without appointments (otherwise 409: deactivate instead).
#[utoipa::path(delete, path = "/api/v1/providers/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Provider id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_provider(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.practice.delete_provider(&auth.principal, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursRequest {
    /// The whole weekly schedule; replaces the previous one.
    #[serde(default)]
    hours: Option<Vec<HoursItem>>,
}

/// Replaces a provider's weekly working hours (local time of the practice).
#[utoipa::path(put, path = "/api/v1/providers/{id}/hours", tag = "catalog", request_body = HoursRequest,
    params(("id" = String, Path, description = "Provider id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 200, body = ProviderResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_hours(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path(id): Path<String>,
    ValidJson(r): ValidJson<HoursRequest>,
) -> Result<Json<ProviderResponse>, ApiError> {
    let hours = r.hours.map(|hs| {
        hs.into_iter()
            .map(|h| HoursInput { location_id: h.location_id, weekday: h.weekday, start: h.start, end: h.end })
            .collect()
    });
    Ok(Json(st.practice.set_provider_hours(&auth.principal, parse_id(&id)?, hours).await?.into()))
}

// ---- time off ----------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct TimeOffResponse {
    id: String,
    provider_id: String,
    starts_at: String,
    ends_at: String,
    reason: Option<String>,
}

impl From<TimeOff> for TimeOffResponse {
    fn from(t: TimeOff) -> Self {
        Self {
            id: t.id,
            provider_id: t.provider_id.to_string(),
            starts_at: rfc3339(t.starts_at),
            ends_at: rfc3339(t.ends_at),
            reason: t.reason,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOffRequest {
    /// RFC 3339.
    #[serde(default)]
    starts_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Adds time off for a provider.
#[utoipa::path(post, path = "/api/v1/providers/{id}/time-off", tag = "catalog", request_body = TimeOffRequest,
    params(("id" = String, Path, description = "Provider id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 201, body = TimeOffResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_time_off(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path(id): Path<String>,
    ValidJson(r): ValidJson<TimeOffRequest>,
) -> Result<(StatusCode, Json<TimeOffResponse>), ApiError> {
    let input = TimeOffInput {
        starts_at: r.starts_at.unwrap_or_default(),
        ends_at: r.ends_at.unwrap_or_default(),
        reason: r.reason,
    };
    let t = st.practice.add_time_off(&auth.principal, parse_id(&id)?, input).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// A provider's time off (from a year ago on).
#[utoipa::path(get, path = "/api/v1/providers/{id}/time-off", tag = "catalog",
    params(("id" = String, Path, description = "Provider id")),
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = [TimeOffResponse]), (status = 404, body = ErrorBody)))]
pub async fn list_time_off(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
    Path(id): Path<String>,
) -> Result<Json<Vec<TimeOffResponse>>, ApiError> {
    Ok(Json(st.practice.time_off(&auth.principal, parse_id(&id)?).await?.into_iter().map(Into::into).collect()))
}

/// Removes one period of time off.
#[utoipa::path(delete, path = "/api/v1/providers/{id}/time-off/{time_off_id}", tag = "catalog",
    params(("id" = String, Path, description = "Provider id"), ("time_off_id" = String, Path, description = "Time-off id")),
    security(("session" = ["catalog.manage"]), ("token" = ["catalog.manage"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_time_off(
    State(st): State<AppState>,
    auth: Auth<CatalogManage>,
    Path((id, time_off_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    st.practice.delete_time_off(&auth.principal, parse_id(&id)?, &time_off_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
