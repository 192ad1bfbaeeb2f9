//! Memberships and packages.
//!
//! * A **package** is `sessions` prepaid sessions of one service: `credits_total = sessions`,
//!   optionally expiring at `expires_at`.
//! * A **membership** costs `price_minor` a month and grants `credits_per_period` credits for
//!   every *started* month since `starts_at` (a month starts on the same day of the month and
//!   time of day as `starts_at`; in shorter months, on the first instant after). Credits roll
//!   over while the membership is active. The grant is computed on read and on redeem
//!   (`credits_total` in the database is brought up to date when a redemption is stored), so
//!   no job has to run for credits to appear. Recurring charging itself is the processor's
//!   subscription; its charges are recorded as payments.
//!
//! A redemption spends one credit on one *completed* appointment of the plan's client (for a
//! package, of the package's service); an appointment can be redeemed once.
//!
//! **Insight.** Every change queues a pseudonymous `membership.*` event in the same transaction
//! (see [`crate::insight_feed::plan_event`]): selling → `started`, a redemption → `redeemed` (the
//! appointment's price band and category), cancelling → `cancelled`. Renewals and expiry happen
//! by the calendar, not by a request, so [`Practice::queue_plan_events`] (run by a job, and on
//! every sale, redemption and cancellation) queues `renewed` for each month started and
//! `expired` once the expiry has passed (and stores the `expired` status). Each of these events
//! has an id derived from the change (plan, period), so however often it runs, a change is queued
//! once and Insight keeps it once.

use crate::insight_feed::{PlanChange, PlanFacts, Pseudonymizer, plan_event};
use crate::{Practice, PracticeError, Result};
use lacuna_accounts::Principal;
use lacuna_domain::{AppointmentId, ClientId, Permission, PlanId, ServiceId, TenantId, ValidationError, required_text};
use lacuna_storage::practice::plans::PlanRow;
use lacuna_storage::{StorageError, TenantTx, now_unix};

/// What staff enter to sell a plan. Fields are optional here so that the plan's client is
/// checked (404) before the form (422).
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// `membership` or `package`.
    pub kind: Option<String>,
    pub name: Option<String>,
    /// Package: the service its sessions are for.
    pub service_id: Option<ServiceId>,
    /// Package: number of sessions.
    pub sessions: Option<i64>,
    /// Membership: credits granted per started month.
    pub credits_per_period: Option<i64>,
    /// Package: total price; membership: monthly price.
    pub price_minor: Option<i64>,
    /// ISO 4217, e.g. `USD`.
    pub currency: Option<String>,
    /// Defaults to now.
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// A plan with its balance as of now.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: PlanId,
    pub client_id: ClientId,
    pub kind: String,
    pub name: String,
    pub service_id: Option<ServiceId>,
    pub price_minor: i64,
    pub currency: String,
    pub credits_per_period: Option<i64>,
    pub credits_total: i64,
    pub credits_used: i64,
    pub remaining: i64,
    pub starts_at: i64,
    pub expires_at: Option<i64>,
    /// `active`, `cancelled` or `expired` (past `expires_at`).
    pub status: String,
    pub created_at: i64,
}

const MAX_PRICE: i64 = 10_000_000_000;

/// Months started since `starts_at` (the first month counts from `starts_at` itself).
pub fn periods_started(starts_at: i64, now: i64) -> i64 {
    if now < starts_at {
        return 0;
    }
    let (Ok(s), Ok(n)) =
        (time::OffsetDateTime::from_unix_timestamp(starts_at), time::OffsetDateTime::from_unix_timestamp(now))
    else {
        return 0;
    };
    let mut months = i64::from(n.year() - s.year()) * 12 + i64::from(n.month() as u8) - i64::from(s.month() as u8);
    if (n.day(), n.time()) < (s.day(), s.time()) {
        months -= 1;
    }
    months + 1
}

/// The instant period `period` (1, 2, …) of a membership starting at `starts_at` begins: the least
/// `t` with `periods_started(starts_at, t) >= period` (the same day of the month and time of day;
/// in a month without that day, the first instant of the next month).
pub fn period_start(starts_at: i64, period: i64) -> i64 {
    if period <= 1 {
        return starts_at;
    }
    let Ok(s) = time::OffsetDateTime::from_unix_timestamp(starts_at) else { return starts_at };
    let months = i64::from(s.year()) * 12 + i64::from(s.month() as u8) - 1 + (period - 1);
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let month_of = |y: i64, m: i64| {
        let (Ok(y), Ok(m)) = (i32::try_from(y), u8::try_from(m)) else { return None };
        Some((y, time::Month::try_from(m).ok()?))
    };
    let Some((y, m)) = month_of(year, month) else { return starts_at };
    match time::Date::from_calendar_date(y, m, s.day()) {
        Ok(date) => date.with_time(s.time()).assume_utc().unix_timestamp(),
        // The day does not exist in that month: the period starts when the next month does.
        Err(_) => {
            let next = month_of((months + 1).div_euclid(12), (months + 1).rem_euclid(12) + 1)
                .and_then(|(y, m)| time::Date::from_calendar_date(y, m, 1).ok());
            next.map_or(starts_at, |d| d.midnight().assume_utc().unix_timestamp())
        }
    }
}

/// The plan's balance and status as of `now`.
pub fn current(row: &PlanRow, now: i64) -> Plan {
    let credits_total = match (row.kind.as_str(), row.credits_per_period) {
        ("membership", Some(per)) => {
            // Credits stop accruing at expiry.
            let until = row.expires_at.map_or(now, |e| now.min(e.saturating_sub(1)));
            row.credits_total.max(per.saturating_mul(periods_started(row.starts_at, until)))
        }
        _ => row.credits_total,
    };
    let status = if row.status == "active" && row.expires_at.is_some_and(|e| e <= now) {
        "expired".to_string()
    } else {
        row.status.clone()
    };
    Plan {
        id: row.id,
        client_id: row.client_id,
        kind: row.kind.clone(),
        name: row.name.clone(),
        service_id: row.service_id,
        price_minor: row.price_minor,
        currency: row.currency.clone(),
        credits_per_period: row.credits_per_period,
        credits_total,
        credits_used: row.credits_used,
        remaining: (credits_total - row.credits_used).max(0),
        starts_at: row.starts_at,
        expires_at: row.expires_at,
        status,
        created_at: row.created_at,
    }
}

/// `USD`, `eur` → `EUR`: three ASCII letters.
pub(crate) fn currency(field: &str, raw: Option<&str>) -> Result<String, ValidationError> {
    let c = raw.map(str::trim).unwrap_or_default().to_ascii_uppercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(ValidationError::new(field, "must be a three-letter currency code like USD"))
    }
}

pub(crate) fn amount(field: &str, raw: Option<i64>, min: i64) -> Result<i64, ValidationError> {
    match raw {
        Some(v) if (min..=MAX_PRICE).contains(&v) => Ok(v),
        Some(_) => Err(ValidationError::new(field, format!("must be between {min} and {MAX_PRICE} (minor units)"))),
        None => Err(ValidationError::new(field, "is required")),
    }
}

fn validate(input: PlanInput, client: ClientId, now: i64) -> Result<PlanRow, ValidationError> {
    let kind = input.kind.as_deref().map(str::trim).unwrap_or_default();
    let name = required_text("name", input.name.as_deref().unwrap_or_default(), 200)?;
    let price_minor = amount("price_minor", input.price_minor, 0)?;
    let currency = currency("currency", input.currency.as_deref())?;
    let starts_at = input.starts_at.unwrap_or(now);
    if !(0..=4_102_444_800).contains(&starts_at) {
        return Err(ValidationError::new("starts_at", "must be a Unix time before 2100"));
    }
    if let Some(e) = input.expires_at
        && (e <= starts_at || e > 4_102_444_800)
    {
        return Err(ValidationError::new("expires_at", "must be after starts_at (and before 2100)"));
    }
    let (service_id, credits_total, per) = match kind {
        "package" => {
            let service = input.service_id.ok_or_else(|| ValidationError::new("service_id", "is required"))?;
            if input.credits_per_period.is_some() {
                return Err(ValidationError::new("credits_per_period", "is for memberships only"));
            }
            let sessions = match input.sessions {
                Some(n) if (1..=1000).contains(&n) => n,
                Some(_) => return Err(ValidationError::new("sessions", "must be between 1 and 1000")),
                None => return Err(ValidationError::new("sessions", "is required")),
            };
            (Some(service), sessions, None)
        }
        "membership" => {
            if input.sessions.is_some() {
                return Err(ValidationError::new("sessions", "is for packages only"));
            }
            let per = match input.credits_per_period {
                Some(n) if (0..=100).contains(&n) => n,
                Some(_) => return Err(ValidationError::new("credits_per_period", "must be between 0 and 100")),
                None => return Err(ValidationError::new("credits_per_period", "is required")),
            };
            (input.service_id, 0, Some(per))
        }
        _ => return Err(ValidationError::new("kind", "must be membership or package")),
    };
    Ok(PlanRow {
        id: PlanId::new(),
        client_id: client,
        kind: kind.to_string(),
        name,
        service_id,
        price_minor,
        currency,
        credits_total,
        credits_used: 0,
        credits_per_period: per,
        starts_at,
        expires_at: input.expires_at,
        status: "active".into(),
        created_at: now,
        updated_at: now,
    })
}

impl Practice {
    /// Sells a membership or package to a client.
    pub async fn create_plan(&self, p: &Principal, client: ClientId, input: PlanInput) -> Result<Plan> {
        let now = now_unix();
        let feed = self.plan_pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::PlansManage).await?;
        tx.client(client).await?.ok_or(PracticeError::NotFound)?;
        let mut row = validate(input, client, now)?;
        if let Some(service) = row.service_id
            && !tx.billing_service_exists(service).await?
        {
            return Err(PracticeError::invalid("service_id", "no such service"));
        }
        if row.kind == "membership" {
            row.credits_total = current(&row, now).credits_total;
        }
        tx.insert_plan(&row).await?;
        Self::queue_plan_events(&mut tx, &feed, &row, now).await?;
        let scope = serde_json::json!({"kind": row.kind, "client": client.to_string(), "price_minor": row.price_minor,
            "currency": row.currency});
        self.audit(&mut tx, p, "plan.create", Some(row.id.to_string()), scope).await?;
        tx.commit().await?;
        // The sale may have been dated in the past, so that queue_plan_events found it expired.
        let row = after_sale(row, now);
        Ok(current(&row, now))
    }

    /// A client's plans with their balances.
    pub async fn client_plans(&self, p: &Principal, client: ClientId) -> Result<Vec<Plan>> {
        let now = now_unix();
        let mut tx = self.read(p, Permission::PlansManage).await?;
        tx.client(client).await?.ok_or(PracticeError::NotFound)?;
        let rows = tx.plans_of_client(client).await?;
        Ok(rows.iter().map(|r| current(r, now)).collect())
    }

    /// Spends one credit of a plan on a completed appointment.
    pub async fn redeem_plan(&self, p: &Principal, plan: PlanId, appointment: Option<AppointmentId>) -> Result<Plan> {
        self.redeem_plan_at(p, plan, appointment, now_unix()).await
    }

    /// [`Practice::redeem_plan`] as of `now` (tests of expiry and renewal).
    pub async fn redeem_plan_at(
        &self,
        p: &Principal,
        plan: PlanId,
        appointment: Option<AppointmentId>,
        now: i64,
    ) -> Result<Plan> {
        let feed = self.plan_pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::PlansManage).await?;
        let row = tx.plan_for_update(plan).await?.ok_or(PracticeError::NotFound)?;
        let appointment = appointment.ok_or_else(|| PracticeError::invalid("appointment_id", "is required"))?;
        let appt = tx.billing_appointment(appointment).await?.ok_or(PracticeError::NotFound)?;
        if appt.client_id != row.client_id {
            return Err(PracticeError::invalid("appointment_id", "belongs to another client"));
        }
        if row.kind == "package" && row.service_id != Some(appt.service_id) {
            return Err(PracticeError::invalid("appointment_id", "is for another service than the package's"));
        }
        if appt.status != "completed" {
            return Err(PracticeError::conflict(
                "appointment_not_completed",
                Some("appointment_id"),
                "only a completed appointment can be redeemed",
            ));
        }
        let cur = current(&row, now);
        match cur.status.as_str() {
            "active" => {}
            "expired" => return Err(PracticeError::conflict("plan_expired", None, "the plan has expired")),
            _ => return Err(PracticeError::conflict("plan_inactive", None, "the plan is not active")),
        }
        if cur.remaining < 1 {
            return Err(PracticeError::conflict("plan_used_up", None, "the plan has no credits left"));
        }
        tx.insert_redemption(&lacuna_domain::new_row_id(), plan, appointment, now).await.map_err(|e| match e {
            StorageError::Conflict(_) => PracticeError::conflict(
                "already_redeemed",
                Some("appointment_id"),
                "this appointment has already been redeemed",
            ),
            e => e.into(),
        })?;
        let used = row.credits_used + 1;
        tx.update_plan_balance(plan, cur.credits_total, used, "active", now).await?;
        Self::queue_plan_events(&mut tx, &feed, &row, now).await?;
        let category = tx.service(appt.service_id).await?.map(|s| s.category);
        let appointment_id = appointment.to_string();
        let change = PlanChange::Redeemed {
            appointment_id: &appointment_id,
            price_minor: appt.price_minor,
            category: category.as_deref(),
        };
        Self::queue_plan_change(&mut tx, &feed, &row, &change, now, now).await?;
        let scope = serde_json::json!({"appointment": appointment.to_string(), "remaining": cur.remaining - 1});
        self.audit(&mut tx, p, "plan.redeem", Some(plan.to_string()), scope).await?;
        tx.commit().await?;
        let mut after = cur;
        after.credits_used = used;
        after.remaining -= 1;
        Ok(after)
    }
}

/// A plan just sold, with the `expired` status `queue_plan_events` stored if the sale was dated
/// past its expiry.
fn after_sale(mut row: PlanRow, now: i64) -> PlanRow {
    if row.status == "active" && row.expires_at.is_some_and(|e| e <= now) {
        row.status = "expired".into();
    }
    row
}

impl Practice {
    /// Cancels an active membership or package: no more credits, no more renewals. 409
    /// `plan_expired` / `plan_inactive` if it is not active.
    pub async fn cancel_plan(&self, p: &Principal, plan: PlanId) -> Result<Plan> {
        let now = now_unix();
        let feed = self.plan_pseudonymizer(p.tenant).await?;
        let mut tx = self.write(p, Permission::PlansManage).await?;
        let mut row = tx.plan_for_update(plan).await?.ok_or(PracticeError::NotFound)?;
        match current(&row, now).status.as_str() {
            "active" => {}
            "expired" => return Err(PracticeError::conflict("plan_expired", None, "the plan has expired")),
            _ => return Err(PracticeError::conflict("plan_inactive", None, "the plan is not active")),
        }
        // Months started before the cancellation were paid for: Insight hears of them first.
        Self::queue_plan_events(&mut tx, &feed, &row, now).await?;
        if !tx.set_plan_status(plan, "active", "cancelled", now).await? {
            return Err(PracticeError::conflict("plan_inactive", None, "the plan changed meanwhile"));
        }
        Self::queue_plan_change(&mut tx, &feed, &row, &PlanChange::Cancelled, now, now).await?;
        let scope = serde_json::json!({"kind": row.kind, "remaining": current(&row, now).remaining});
        self.audit(&mut tx, p, "plan.cancel", Some(plan.to_string()), scope).await?;
        tx.commit().await?;
        row.status = "cancelled".into();
        row.updated_at = now;
        Ok(current(&row, now))
    }

    /// The tenant's pseudonym minter (its key never leaves Practice).
    async fn plan_pseudonymizer(&self, tenant: TenantId) -> Result<Pseudonymizer> {
        Ok(Pseudonymizer::new(self.accounts().keyring().tenant_hmac_key(tenant, "pseudonym").await?))
    }

    /// Queues the Insight events a plan's calendar has produced by `now` and that were not queued
    /// yet: `started`, `renewed` for every month started (up to the expiry), and `expired` once
    /// the expiry has passed — storing the `expired` status too. Idempotent: every change has a
    /// fixed outbox id, and a plan whose latest change is already queued costs one look-up.
    /// Returns how many events were queued. A cancelled plan queues nothing here.
    pub async fn queue_plan_events(tx: &mut TenantTx, feed: &Pseudonymizer, row: &PlanRow, now: i64) -> Result<u64> {
        if row.status == "cancelled" || row.starts_at > now {
            return Ok(0);
        }
        let id = row.id.to_string();
        let expired_at = row.expires_at.filter(|e| *e <= now).or((row.status == "expired").then_some(now));
        let mut changes = vec![(PlanChange::Started { price_minor: row.price_minor }, row.starts_at)];
        if row.kind == "membership" {
            let until = expired_at.map_or(now, |e| e.saturating_sub(1));
            for period in 2..=periods_started(row.starts_at, until) {
                changes.push((
                    PlanChange::Renewed { period, price_minor: row.price_minor },
                    period_start(row.starts_at, period),
                ));
            }
        }
        if let Some(at) = expired_at {
            changes.push((PlanChange::Expired, at));
        }
        // Everything up to the latest change is queued in one transaction, in order: if the
        // latest is there, so is the rest.
        if let Some((latest, _)) = changes.last()
            && tx.insight_event_queued(&latest.outbox_id(&id)).await?
        {
            return Ok(0);
        }
        let category = match row.service_id {
            Some(service) => tx.service(service).await?.map(|s| s.category),
            None => None,
        };
        let plan = PlanFacts { plan_id: &id, client_id: &row.client_id.to_string(), category: category.as_deref() };
        let mut queued = 0;
        for (change, at) in &changes {
            let event = plan_event(feed, change, &plan, *at);
            if tx.enqueue_insight_event_once(&change.outbox_id(&id), &event.to_string(), now).await? {
                queued += 1;
            }
        }
        if expired_at.is_some() && row.status == "active" {
            tx.set_plan_status(row.id, "active", "expired", now).await?;
        }
        Ok(queued)
    }

    /// Queues one change of a plan (redemption, cancellation) in the caller's transaction.
    async fn queue_plan_change(
        tx: &mut TenantTx,
        feed: &Pseudonymizer,
        row: &PlanRow,
        change: &PlanChange<'_>,
        occurred_at: i64,
        now: i64,
    ) -> Result<()> {
        let id = row.id.to_string();
        let category = match row.service_id {
            Some(service) => tx.service(service).await?.map(|s| s.category),
            None => None,
        };
        let plan = PlanFacts { plan_id: &id, client_id: &row.client_id.to_string(), category: category.as_deref() };
        let event = plan_event(feed, change, &plan, occurred_at);
        tx.enqueue_insight_event_once(&change.outbox_id(&id), &event.to_string(), now).await?;
        Ok(())
    }

    /// The periodic job: for every tenant, queues the renewals and expiries the calendar has
    /// produced (see [`Practice::queue_plan_events`]). Returns events queued.
    pub async fn queue_due_plan_events(&self, now: i64) -> Result<u64> {
        let mut queued = 0;
        for tenant in self.store.tenant_ids().await? {
            let feed = self.plan_pseudonymizer(tenant).await?;
            let mut tx = self.store.tenant(tenant).write().await?;
            for row in tx.active_plans().await? {
                queued += Self::queue_plan_events(&mut tx, &feed, &row, now).await?;
            }
            tx.commit().await?;
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_31: i64 = 1_706_659_200; // 2024-01-31T00:00:00Z
    const DAY: i64 = 86_400;

    #[test]
    fn months_count_from_the_start() {
        let start = 1_704_067_200; // 2024-01-01T00:00:00Z
        assert_eq!(periods_started(start, start - 1), 0);
        assert_eq!(periods_started(start, start), 1);
        assert_eq!(periods_started(start, start + 30 * DAY), 1); // Jan 31
        assert_eq!(periods_started(start, start + 31 * DAY), 2); // Feb 1
        assert_eq!(periods_started(start, start + 366 * DAY), 13); // 2025-01-01
    }

    #[test]
    fn period_starts_are_where_periods_begin() {
        for start in [1_704_067_200, JAN_31, JAN_31 + 13 * 3600 + 7, 1_709_208_000, 1_735_603_200] {
            for period in 1..40 {
                let at = period_start(start, period);
                assert_eq!(periods_started(start, at), period, "start {start} period {period}");
                assert_eq!(periods_started(start, at - 1), period - 1, "start {start} period {period}");
            }
        }
    }

    #[test]
    fn short_months_start_after_the_missing_day() {
        assert_eq!(periods_started(JAN_31, JAN_31 + 29 * DAY), 1); // Feb 29 (2024)
        assert_eq!(periods_started(JAN_31, JAN_31 + 30 * DAY), 2); // Mar 1
    }

    #[test]
    fn plans_need_their_kind_specific_fields() {
        let base = PlanInput {
            name: Some("Glow".into()),
            price_minor: Some(9900),
            currency: Some("usd".into()),
            ..Default::default()
        };
        let c = ClientId::new();
        let e = validate(PlanInput { kind: Some("package".into()), ..base.clone() }, c, 0).err();
        assert_eq!(e.map(|e| e.field).as_deref(), Some("service_id"));
        let e = validate(PlanInput { kind: Some("membership".into()), ..base.clone() }, c, 0).err();
        assert_eq!(e.map(|e| e.field).as_deref(), Some("credits_per_period"));
        let e = validate(PlanInput { kind: Some("gift".into()), ..base.clone() }, c, 0).err();
        assert_eq!(e.map(|e| e.field).as_deref(), Some("kind"));
        let ok = validate(PlanInput { kind: Some("membership".into()), credits_per_period: Some(2), ..base }, c, 0);
        assert_eq!(ok.map(|r| r.currency).ok().as_deref(), Some("USD"));
    }
}
