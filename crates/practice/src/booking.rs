//! Booking: a provider is never double-booked. Within the booking transaction the provider's
//! row is locked (`FOR UPDATE` on PostgreSQL; SQLite write transactions are serialised by
//! `BEGIN IMMEDIATE`) before the overlap check, so concurrent requests for one slot queue up
//! and all but the first see it taken.

use crate::availability::{check_within_hours, parse_instant, parse_ref};
use crate::insight_feed::{AppointmentFacts, Pseudonymizer, appointment_event};
use crate::{Practice, PracticeError, Result};
use lacuna_accounts::Principal;
use lacuna_domain::{AppointmentId, ClientId, LocationId, Permission, ProviderId, ServiceId, required_text};
use lacuna_storage::practice::appointments::AppointmentFilter;
pub use lacuna_storage::practice::appointments::AppointmentRow as Appointment;
use lacuna_storage::practice::catalog::{ServiceRow, SlotContext};
use lacuna_storage::practice::outbox::AppointmentBrief;
use lacuna_storage::{TenantTx, now_unix};

/// The most appointments one listing returns.
pub const LIST_LIMIT: i64 = 1000;
/// The longest range one listing may cover (days).
pub const MAX_LIST_DAYS: i64 = 92;

#[derive(Debug, Clone)]
pub struct BookingInput {
    pub client_id: String,
    pub service_id: String,
    pub provider_id: String,
    pub location_id: String,
    /// RFC 3339.
    pub starts_at: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub provider_id: Option<String>,
    pub client_id: Option<String>,
}

/// Who cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    Client,
    Practice,
}

impl CancelledBy {
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        match raw.trim() {
            "client" => Ok(Self::Client),
            "practice" => Ok(Self::Practice),
            _ => Err(PracticeError::invalid(field, "must be client or practice")),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Practice => "practice",
        }
    }
}

const LIVE: &str = "booked";

/// Whose appointments a member may see and change: everyone's with `schedule.read_all`,
/// otherwise only those of the provider records linked to their login. Anything outside the
/// scope answers 404, exactly like another tenant's appointment.
enum Scope {
    All,
    Linked(Vec<ProviderId>),
}

impl Scope {
    async fn of(tx: &mut TenantTx, p: &Principal) -> Result<Self> {
        if p.permissions.contains(Permission::ScheduleReadAll) {
            Ok(Self::All)
        } else {
            Ok(Self::Linked(tx.providers_of_user(&p.user.to_string()).await?))
        }
    }

    /// `NotFound` unless the provider is in scope.
    fn check(&self, provider: ProviderId) -> Result<()> {
        match self {
            Self::Linked(ids) if !ids.contains(&provider) => Err(PracticeError::NotFound),
            _ => Ok(()),
        }
    }
}

fn slot_taken() -> PracticeError {
    PracticeError::conflict(
        "slot_taken",
        Some("starts_at"),
        "the provider already has an appointment overlapping this time (service and buffer included)",
    )
}

impl Practice {
    /// Every rule of a slot that needs no look at other appointments, checked inside the write
    /// transaction: the provider's row is locked by the same statement that reads the provider,
    /// service, location, time zone, the provider's hours and (when given) the client, so
    /// concurrent bookings of one provider queue up here. Returns the context and
    /// `(ends_at, blocks_until)`; time off and overlaps are checked after it.
    async fn slot_context(
        tx: &mut TenantTx,
        service: ServiceId,
        provider: ProviderId,
        location: LocationId,
        client: Option<ClientId>,
        starts_at: i64,
    ) -> Result<(SlotContext, i64, i64)> {
        let ctx = tx.lock_slot_context(provider, service, location, client).await?.ok_or(PracticeError::NotFound)?;
        if client.is_some() && ctx.client.is_none() {
            return Err(PracticeError::NotFound);
        }
        if !ctx.provider_active {
            return Err(PracticeError::invalid("provider_id", "the provider is not active"));
        }
        if !ctx.service.active {
            return Err(PracticeError::invalid("service_id", "the service is not active"));
        }
        if starts_at < now_unix() {
            return Err(PracticeError::invalid("starts_at", "is in the past"));
        }
        if !ctx.performs {
            return Err(PracticeError::invalid("service_id", "the provider does not perform this service"));
        }
        let ends_at = starts_at + ctx.service.duration_min * 60;
        let blocks_until = ends_at + ctx.service.buffer_min * 60;
        let tz = crate::availability::parse_time_zone("timezone", &ctx.timezone)?;
        check_within_hours(&tz, &ctx.hours, location, starts_at, blocks_until)?;
        Ok((ctx, ends_at, blocks_until))
    }

    /// The outcome of the time-off and overlap checks as an error, if either found something.
    fn check_free((time_off, busy): (bool, bool)) -> Result<()> {
        if time_off {
            return Err(PracticeError::invalid("starts_at", "the provider has time off then"));
        }
        if busy {
            return Err(slot_taken());
        }
        Ok(())
    }

    /// Books an appointment. 409 `slot_taken` if the provider is busy then, also when another
    /// request books the same time concurrently.
    pub async fn book(&self, p: &Principal, input: BookingInput) -> Result<Appointment> {
        let client_id: ClientId = parse_ref("client_id", &input.client_id)?;
        let service_id: ServiceId = parse_ref("service_id", &input.service_id)?;
        let provider_id: ProviderId = parse_ref("provider_id", &input.provider_id)?;
        let location_id: LocationId = parse_ref("location_id", &input.location_id)?;
        let starts_at = parse_instant("starts_at", &input.starts_at)?;

        // Keys first: the write transaction should hold its lock as briefly as possible.
        let keys = self.keys(p.tenant).await?;
        let feed = self.pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::AppointmentsWrite).await?;
        Scope::of(&mut tx, p).await?.check(provider_id)?;
        let (ctx, ends_at, blocks_until) =
            Self::slot_context(&mut tx, service_id, provider_id, location_id, Some(client_id), starts_at).await?;
        let client = ctx.client.ok_or(PracticeError::NotFound)?;
        let service = ctx.service;
        let now = now_unix();
        let row = Appointment {
            id: AppointmentId::new(),
            client_id,
            provider_id,
            service_id,
            location_id,
            starts_at,
            ends_at,
            blocks_until,
            status: LIVE.to_string(),
            cancel_reason: None,
            cancelled_by: None,
            price_minor: service.price_minor,
            currency: service.currency.clone(),
            created_at: now,
            updated_at: now,
        };
        // The confirmation and the Insight event commit with the booking, or not at all; the
        // overlap check and the three inserts are one round trip (see `book_if_free`).
        let brief = AppointmentBrief {
            id: row.id,
            client_id,
            status: row.status.clone(),
            starts_at,
            service_name: service.name.clone(),
            location_name: ctx.location_name,
        };
        let confirmation = self.appointment_message(&keys, &brief, &client, "confirmation", now)?;
        let event = Self::insight_event(&feed, "appointment.booked", &row, &service, now);
        let event_id = lacuna_domain::new_row_id();
        Self::check_free(tx.book_if_free(&row, &confirmation, (&event_id, &event)).await?)?;
        self.audit_appointment(&mut tx, p, "appointment.book", &row, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn get_appointment(&self, p: &Principal, id: AppointmentId) -> Result<Appointment> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        let a = tx.appointment(id).await?.ok_or(PracticeError::NotFound)?;
        Scope::of(&mut tx, p).await?.check(a.provider_id)?;
        Ok(a)
    }

    /// Appointments starting in `[from, to)` (default: the next 31 days), optionally of one
    /// provider or client.
    pub async fn appointments(&self, p: &Principal, q: ListQuery) -> Result<Vec<Appointment>> {
        let now = now_unix();
        let from = q.from.as_deref().map(|f| parse_instant("from", f)).transpose()?.unwrap_or(now - 86_400);
        let to = q.to.as_deref().map(|t| parse_instant("to", t)).transpose()?.unwrap_or(from + 31 * 86_400);
        if to <= from {
            return Err(PracticeError::invalid("to", "must be after from"));
        }
        if to - from > MAX_LIST_DAYS * 86_400 {
            return Err(PracticeError::invalid("to", format!("the range may cover at most {MAX_LIST_DAYS} days")));
        }
        let provider = q.provider_id.as_deref().map(|s| parse_ref("provider_id", s)).transpose()?;
        let client = q.client_id.as_deref().map(|s| parse_ref("client_id", s)).transpose()?;
        // Narrowed members: only their linked providers' appointments, filtered in the query.
        let linked_user = (!p.permissions.contains(Permission::ScheduleReadAll)).then(|| p.user.to_string());
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        Ok(tx.appointments(&AppointmentFilter { from, to, provider, client, linked_user, limit: LIST_LIMIT }).await?)
    }

    /// The appointment, if it is in the principal's scope and still booked.
    async fn live_appointment(
        tx: &mut TenantTx,
        p: &Principal,
        id: AppointmentId,
        action: &str,
    ) -> Result<Appointment> {
        let a = tx.appointment(id).await?.ok_or(PracticeError::NotFound)?;
        Scope::of(tx, p).await?.check(a.provider_id)?;
        if a.status != LIVE {
            return Err(PracticeError::conflict(
                "invalid_transition",
                Some("status"),
                format!("cannot {action} an appointment that is {}", a.status.replace('_', "-")),
            ));
        }
        Ok(a)
    }

    /// Moves a booked appointment to another time (and optionally another provider), under the
    /// same rules as a new booking.
    pub async fn reschedule(
        &self,
        p: &Principal,
        id: AppointmentId,
        starts_at: Option<String>,
        provider_id: Option<String>,
    ) -> Result<Appointment> {
        let feed = self.pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::AppointmentsWrite).await?;
        let mut a = Self::live_appointment(&mut tx, p, id, "reschedule").await?;
        let starts_at = parse_instant("starts_at", starts_at.as_deref().unwrap_or_default())?;
        if let Some(pid) = provider_id.filter(|s| !s.trim().is_empty()) {
            a.provider_id = parse_ref("provider_id", &pid)?;
            Scope::of(&mut tx, p).await?.check(a.provider_id)?;
        }
        let (ctx, ends_at, blocks_until) =
            Self::slot_context(&mut tx, a.service_id, a.provider_id, a.location_id, None, starts_at).await?;
        Self::check_free(tx.slot_conflicts(a.provider_id, starts_at, blocks_until, Some(a.id)).await?)?;
        a.starts_at = starts_at;
        a.ends_at = ends_at;
        a.blocks_until = blocks_until;
        a.updated_at = now_unix();
        tx.move_appointment(&a).await?;
        // Insight learns the new time: a later `booked` event of the same appointment replaces the
        // earlier one (its upcoming-visit and slot checks then use the new time).
        Self::feed_insight(&mut tx, &feed, "appointment.booked", &a, &ctx.service, a.updated_at).await?;
        self.audit_appointment(&mut tx, p, "appointment.reschedule", &a, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Cancels a booked appointment, recording why and by whom. The time becomes free.
    pub async fn cancel(
        &self,
        p: &Principal,
        id: AppointmentId,
        reason: Option<String>,
        by: Option<String>,
    ) -> Result<Appointment> {
        let feed = self.pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::AppointmentsWrite).await?;
        let mut a = Self::live_appointment(&mut tx, p, id, "cancel").await?;
        let reason = required_text("reason", reason.as_deref().unwrap_or_default(), 500)?;
        let by = CancelledBy::parse("by", by.as_deref().unwrap_or_default())?;
        a.status = "cancelled".into();
        a.cancel_reason = Some(reason);
        a.cancelled_by = Some(by.name().into());
        a.updated_at = now_unix();
        Self::set_status(&mut tx, &a).await?;
        let service = tx.service(a.service_id).await?.ok_or(PracticeError::NotFound)?;
        Self::feed_insight(&mut tx, &feed, "appointment.cancelled", &a, &service, a.updated_at).await?;
        // The reason is free text: never in the audit trail.
        self.audit_appointment(&mut tx, p, "appointment.cancel", &a, serde_json::json!({ "by": by.name() })).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Marks a booked appointment as a no-show (it keeps its time on the calendar's history).
    pub async fn no_show(&self, p: &Principal, id: AppointmentId) -> Result<Appointment> {
        self.finish(p, id, "no_show", "mark as no-show").await
    }

    /// Marks a booked appointment as completed.
    pub async fn complete(&self, p: &Principal, id: AppointmentId) -> Result<Appointment> {
        self.finish(p, id, "completed", "complete").await
    }

    async fn finish(&self, p: &Principal, id: AppointmentId, status: &str, action: &str) -> Result<Appointment> {
        let feed = self.pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::AppointmentsWrite).await?;
        let mut a = Self::live_appointment(&mut tx, p, id, action).await?;
        a.status = status.into();
        a.updated_at = now_unix();
        Self::set_status(&mut tx, &a).await?;
        let service = tx.service(a.service_id).await?.ok_or(PracticeError::NotFound)?;
        let kind = if status == "completed" { "appointment.completed" } else { "appointment.no_show" };
        Self::feed_insight(&mut tx, &feed, kind, &a, &service, a.updated_at).await?;
        let action = if status == "completed" { "appointment.complete" } else { "appointment.no_show" };
        self.audit_appointment(&mut tx, p, action, &a, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// The tenant's pseudonym minter (its key never leaves Practice).
    async fn pseudonymizer(&self, tenant: lacuna_domain::TenantId) -> Result<Pseudonymizer> {
        Ok(Pseudonymizer::new(self.accounts().keyring().tenant_hmac_key(tenant, "pseudonym").await?))
    }

    /// The pseudonymous Insight event of an appointment change (JSON text).
    fn insight_event(feed: &Pseudonymizer, kind: &str, a: &Appointment, service: &ServiceRow, now: i64) -> String {
        let (appointment_id, client_id, provider_id, location_id) =
            (a.id.to_string(), a.client_id.to_string(), a.provider_id.to_string(), a.location_id.to_string());
        let facts = AppointmentFacts {
            appointment_id: &appointment_id,
            client_id: &client_id,
            provider_id: &provider_id,
            location_id: &location_id,
            category: &service.category,
            cycle_days: service.cycle_days,
            follow_up_days: service.follow_up_days,
            price_minor: a.price_minor,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
        };
        appointment_event(feed, kind, &facts, now).to_string()
    }

    /// Queues the pseudonymous Insight event of an appointment change in the same transaction.
    async fn feed_insight(
        tx: &mut TenantTx,
        feed: &Pseudonymizer,
        kind: &str,
        a: &Appointment,
        service: &ServiceRow,
        now: i64,
    ) -> Result<()> {
        let event = Self::insight_event(feed, kind, a, service, now);
        tx.enqueue_insight_event(&lacuna_domain::new_row_id(), &event, now).await?;
        Ok(())
    }

    /// Audits a booking operation: ids only, last in the transaction (the audit head's lock is
    /// held from here to the commit).
    async fn audit_appointment(
        &self,
        tx: &mut TenantTx,
        p: &Principal,
        action: &str,
        a: &Appointment,
        mut scope: serde_json::Value,
    ) -> Result<()> {
        if let Some(m) = scope.as_object_mut() {
            m.insert("provider_id".into(), a.provider_id.to_string().into());
            m.insert("service_id".into(), a.service_id.to_string().into());
            m.insert("client_id".into(), a.client_id.to_string().into());
            m.insert("starts_at".into(), a.starts_at.into());
        }
        self.audit(tx, p, action, Some(format!("appointment:{}", a.id)), scope).await
    }

    async fn set_status(tx: &mut TenantTx, a: &Appointment) -> Result<()> {
        if !tx.set_appointment_status(a, LIVE).await? {
            return Err(PracticeError::conflict(
                "invalid_transition",
                Some("status"),
                "the appointment changed meanwhile",
            ));
        }
        Ok(())
    }
}
