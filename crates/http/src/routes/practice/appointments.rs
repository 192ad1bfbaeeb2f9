//! Booking: appointments and the availability search.

use crate::auth::{AppointmentsWrite, Auth, ScheduleRead};
use crate::error::ErrorBody;
use crate::json::{ValidJson, ValidQuery};
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lacuna_practice::availability::{Availability, AvailabilityQuery as AvailabilityInput};
use lacuna_practice::booking::{Appointment, BookingInput, ListQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct AppointmentResponse {
    id: String,
    client_id: String,
    provider_id: String,
    service_id: String,
    location_id: String,
    starts_at: String,
    ends_at: String,
    /// End of the service's buffer: the provider is busy until then.
    blocks_until: String,
    /// booked, completed, cancelled or no_show.
    status: String,
    cancel_reason: Option<String>,
    /// client or practice.
    cancelled_by: Option<String>,
    price_minor: i64,
    currency: String,
    created_at: String,
    updated_at: String,
}

impl From<Appointment> for AppointmentResponse {
    fn from(a: Appointment) -> Self {
        Self {
            id: a.id.to_string(),
            client_id: a.client_id.to_string(),
            provider_id: a.provider_id.to_string(),
            service_id: a.service_id.to_string(),
            location_id: a.location_id.to_string(),
            starts_at: rfc3339(a.starts_at),
            ends_at: rfc3339(a.ends_at),
            blocks_until: rfc3339(a.blocks_until),
            status: a.status,
            cancel_reason: a.cancel_reason,
            cancelled_by: a.cancelled_by,
            price_minor: a.price_minor,
            currency: a.currency,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    client_id: String,
    service_id: String,
    provider_id: String,
    location_id: String,
    /// RFC 3339, e.g. `2026-03-09T09:00:00-04:00`.
    starts_at: String,
}

/// Books an appointment. 409 `slot_taken` if the provider is busy then (service and buffer included).
#[utoipa::path(post, path = "/api/v1/appointments", tag = "appointments", request_body = BookingRequest,
    security(("session" = ["appointments.write"]), ("token" = ["appointments.write"])),
    responses((status = 201, body = AppointmentResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn book(
    State(st): State<AppState>,
    auth: Auth<AppointmentsWrite>,
    ValidJson(r): ValidJson<BookingRequest>,
) -> Result<(StatusCode, Json<AppointmentResponse>), ApiError> {
    let input = BookingInput {
        client_id: r.client_id,
        service_id: r.service_id,
        provider_id: r.provider_id,
        location_id: r.location_id,
        starts_at: r.starts_at,
    };
    let a = st.practice.book(&auth.principal, input).await?;
    Ok((StatusCode::CREATED, Json(a.into())))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// RFC 3339; default: a day ago.
    from: Option<String>,
    /// RFC 3339; default: 31 days after `from`. At most 92 days after `from`.
    to: Option<String>,
    provider_id: Option<String>,
    client_id: Option<String>,
}

/// Appointments starting in `[from, to)`, optionally of one provider or client.
#[utoipa::path(get, path = "/api/v1/appointments", tag = "appointments", params(ListParams),
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = [AppointmentResponse]), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
    ValidQuery(q): ValidQuery<ListParams>,
) -> Result<Json<Vec<AppointmentResponse>>, ApiError> {
    let q = ListQuery { from: q.from, to: q.to, provider_id: q.provider_id, client_id: q.client_id };
    Ok(Json(st.practice.appointments(&auth.principal, q).await?.into_iter().map(Into::into).collect()))
}

/// One appointment.
#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "appointments",
    params(("id" = String, Path, description = "Appointment id")),
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = AppointmentResponse), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
    Path(id): Path<String>,
) -> Result<Json<AppointmentResponse>, ApiError> {
    Ok(Json(st.practice.get_appointment(&auth.principal, parse_id(&id)?).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// RFC 3339 (required).
    #[serde(default)]
    starts_at: Option<String>,
    /// Another provider, if the appointment moves to them.
    #[serde(default)]
    provider_id: Option<String>,
}

/// Moves a booked appointment, under the same rules as a new booking.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/reschedule", tag = "appointments",
    request_body = RescheduleRequest, params(("id" = String, Path, description = "Appointment id")),
    security(("session" = ["appointments.write"]), ("token" = ["appointments.write"])),
    responses((status = 200, body = AppointmentResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reschedule(
    State(st): State<AppState>,
    auth: Auth<AppointmentsWrite>,
    Path(id): Path<String>,
    ValidJson(r): ValidJson<RescheduleRequest>,
) -> Result<Json<AppointmentResponse>, ApiError> {
    Ok(Json(st.practice.reschedule(&auth.principal, parse_id(&id)?, r.starts_at, r.provider_id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why (required).
    #[serde(default)]
    reason: Option<String>,
    /// `client` or `practice` (required).
    #[serde(default)]
    by: Option<String>,
}

/// Cancels a booked appointment; the time becomes free.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/cancel", tag = "appointments",
    request_body = CancelRequest, params(("id" = String, Path, description = "Appointment id")),
    security(("session" = ["appointments.write"]), ("token" = ["appointments.write"])),
    responses((status = 200, body = AppointmentResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    auth: Auth<AppointmentsWrite>,
    Path(id): Path<String>,
    ValidJson(r): ValidJson<CancelRequest>,
) -> Result<Json<AppointmentResponse>, ApiError> {
    Ok(Json(st.practice.cancel(&auth.principal, parse_id(&id)?, r.reason, r.by).await?.into()))
}

/// Marks a booked appointment as a no-show.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/no-show", tag = "appointments",
    params(("id" = String, Path, description = "Appointment id")),
    security(("session" = ["appointments.write"]), ("token" = ["appointments.write"])),
    responses((status = 200, body = AppointmentResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn no_show(
    State(st): State<AppState>,
    auth: Auth<AppointmentsWrite>,
    Path(id): Path<String>,
) -> Result<Json<AppointmentResponse>, ApiError> {
    Ok(Json(st.practice.no_show(&auth.principal, parse_id(&id)?).await?.into()))
}

/// Marks a booked appointment as completed.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/complete", tag = "appointments",
    params(("id" = String, Path, description = "Appointment id")),
    security(("session" = ["appointments.write"]), ("token" = ["appointments.write"])),
    responses((status = 200, body = AppointmentResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn complete(
    State(st): State<AppState>,
    auth: Auth<AppointmentsWrite>,
    Path(id): Path<String>,
) -> Result<Json<AppointmentResponse>, ApiError> {
    Ok(Json(st.practice.complete(&auth.principal, parse_id(&id)?).await?.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityParams {
    service_id: String,
    provider_id: Option<String>,
    location_id: Option<String>,
    /// First local date, `YYYY-MM-DD`.
    from: String,
    /// Last local date (inclusive), at most 31 days in all.
    to: String,
}

#[derive(Serialize, ToSchema)]
pub struct SlotResponse {
    starts_at: String,
    location_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderSlots {
    provider_id: String,
    slots: Vec<SlotResponse>,
}

#[derive(Serialize, ToSchema)]
pub struct AvailabilityResponse {
    /// The practice's time zone (dates and working hours are local to it).
    timezone: String,
    service_id: String,
    providers: Vec<ProviderSlots>,
}

impl From<Availability> for AvailabilityResponse {
    fn from(a: Availability) -> Self {
        Self {
            timezone: a.timezone,
            service_id: a.service_id.to_string(),
            providers: a
                .providers
                .into_iter()
                .map(|(pid, slots)| ProviderSlots {
                    provider_id: pid.to_string(),
                    slots: slots
                        .into_iter()
                        .map(|s| SlotResponse {
                            starts_at: rfc3339(s.starts_at),
                            location_id: s.location_id.to_string(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Open slots (15-minute grid) for a service, per provider, between two local dates.
#[utoipa::path(get, path = "/api/v1/availability", tag = "appointments", params(AvailabilityParams),
    security(("session" = ["schedule.read"]), ("token" = ["schedule.read"])),
    responses((status = 200, body = AvailabilityResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn availability(
    State(st): State<AppState>,
    auth: Auth<ScheduleRead>,
    ValidQuery(q): ValidQuery<AvailabilityParams>,
) -> Result<Json<AvailabilityResponse>, ApiError> {
    let input = AvailabilityInput {
        service_id: q.service_id,
        provider_id: q.provider_id,
        location_id: q.location_id,
        from: q.from,
        to: q.to,
    };
    Ok(Json(st.practice.availability(&auth.principal, input).await?.into()))
}
