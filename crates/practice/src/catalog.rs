//! The catalogue: practice settings, locations, services, providers, working hours, time off.
//! Writes need `catalog.manage`, reads `schedule.read`.

use crate::availability::{parse_clock, parse_instant, parse_ref, parse_time_zone};
use crate::{Practice, PracticeError, Result};
use lacuna_accounts::Principal;
use lacuna_domain::{LocationId, Permission, ProviderId, ServiceId, UserId, ValidationError, required_text};
use lacuna_storage::StorageError;
use lacuna_storage::now_unix;
pub use lacuna_storage::practice::catalog::{
    HoursRow, LocationRow as Location, PracticeSettingsRow as PracticeSettings, ProviderRow, ServiceRow as Service,
    TimeOffRow as TimeOff,
};

pub const CATEGORIES: &[&str] = &["neurotoxin", "filler", "laser", "facial", "massage", "hair", "nails", "other"];

/// A provider with the services they perform and their weekly hours.
#[derive(Debug, Clone)]
pub struct Provider {
    pub row: ProviderRow,
    pub service_ids: Vec<ServiceId>,
    pub hours: Vec<HoursRow>,
}

/// A change of practice settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub timezone: Option<String>,
    pub currency: Option<String>,
    pub reminder_lead_hours: Option<i64>,
    /// `warn` or `reject`: see [`crate::notes_guard`].
    pub notes_phi_policy: Option<String>,
}

/// A new service, or (with every field optional) a change to one.
#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub name: Option<String>,
    pub category: Option<String>,
    pub duration_min: Option<i64>,
    pub buffer_min: Option<i64>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub cycle_days: Option<i64>,
    pub follow_up_days: Option<i64>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ProviderPatch {
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub service_ids: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// One weekly working window as typed: `{location_id, weekday 0=Mon..6, start "09:00", end "17:00"}`.
#[derive(Debug, Clone)]
pub struct HoursInput {
    pub location_id: String,
    pub weekday: i64,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone)]
pub struct TimeOffInput {
    pub starts_at: String,
    pub ends_at: String,
    pub reason: Option<String>,
}

pub fn parse_currency(field: &str, raw: &str) -> Result<String, ValidationError> {
    let c = raw.trim().to_ascii_uppercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(ValidationError::new(field, "must be a three-letter ISO 4217 currency code like USD"))
    }
}

fn in_range(field: &str, v: i64, lo: i64, hi: i64) -> Result<i64, ValidationError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ValidationError::new(field, format!("must be between {lo} and {hi}")))
    }
}

/// Applies a patch to a service (a fresh one for creation) and validates the result.
fn apply_service(s: &mut Service, p: ServicePatch) -> Result<(), ValidationError> {
    if let Some(n) = p.name {
        s.name = required_text("name", &n, 200)?;
    }
    if let Some(c) = p.category {
        let c = c.trim().to_ascii_lowercase();
        if !CATEGORIES.contains(&c.as_str()) {
            return Err(ValidationError::new("category", format!("must be one of {}", CATEGORIES.join(", "))));
        }
        s.category = c;
    }
    if let Some(d) = p.duration_min {
        s.duration_min = in_range("duration_min", d, 5, 720)?;
    }
    if let Some(b) = p.buffer_min {
        s.buffer_min = in_range("buffer_min", b, 0, 240)?;
    }
    if let Some(pr) = p.price_minor {
        s.price_minor = in_range("price_minor", pr, 0, 100_000_000)?;
    }
    if let Some(c) = p.currency {
        s.currency = parse_currency("currency", &c)?;
    }
    if let Some(c) = p.cycle_days {
        s.cycle_days = Some(in_range("cycle_days", c, 1, 3650)?);
    }
    if let Some(f) = p.follow_up_days {
        s.follow_up_days = Some(in_range("follow_up_days", f, 1, 3650)?);
    }
    if let Some(a) = p.active {
        s.active = a;
    }
    Ok(())
}

/// The audit action and the changed field names of a service patch (never the values).
fn service_change(p: &ServicePatch, was_active: bool) -> (&'static str, Vec<&'static str>) {
    let fields = [
        ("name", p.name.is_some()),
        ("category", p.category.is_some()),
        ("duration_min", p.duration_min.is_some()),
        ("buffer_min", p.buffer_min.is_some()),
        ("price_minor", p.price_minor.is_some()),
        ("currency", p.currency.is_some()),
        ("cycle_days", p.cycle_days.is_some()),
        ("follow_up_days", p.follow_up_days.is_some()),
        ("active", p.active.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    let action = if was_active && p.active == Some(false) { "service.deactivate" } else { "service.update" };
    (action, fields)
}

fn parse_service_ids(raw: &[String]) -> Result<Vec<ServiceId>, ValidationError> {
    let mut ids: Vec<ServiceId> = raw.iter().map(|s| parse_ref("service_ids", s)).collect::<Result<_, _>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

impl Practice {
    // ---- settings ------------------------------------------------------------------------

    pub async fn practice_settings(&self, p: &Principal) -> Result<PracticeSettings> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        Ok(tx.practice_settings().await?)
    }

    pub async fn update_practice_settings(&self, p: &Principal, patch: SettingsPatch) -> Result<PracticeSettings> {
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        let mut s = tx.practice_settings().await?;
        if let Some(tz) = patch.timezone {
            parse_time_zone("timezone", &tz)?;
            s.timezone = tz.trim().to_string();
        }
        if let Some(c) = patch.currency {
            s.currency = parse_currency("currency", &c)?;
        }
        if let Some(h) = patch.reminder_lead_hours {
            s.reminder_lead_hours = in_range("reminder_lead_hours", h, 1, 168)?;
        }
        if let Some(policy) = patch.notes_phi_policy {
            s.notes_phi_policy =
                crate::notes_guard::NotesPolicy::parse("notes_phi_policy", &policy)?.name().to_string();
        }
        tx.set_practice_settings(&s, now_unix()).await?;
        let scope = serde_json::json!({"timezone": s.timezone, "currency": s.currency,
            "reminder_lead_hours": s.reminder_lead_hours, "notes_phi_policy": s.notes_phi_policy});
        self.audit(&mut tx, p, "practice.settings_changed", None, scope).await?;
        tx.commit().await?;
        Ok(s)
    }

    // ---- locations -----------------------------------------------------------------------

    pub async fn create_location(&self, p: &Principal, name: &str) -> Result<Location> {
        let name = required_text("name", name, 200)?;
        let row = Location { id: LocationId::new(), name, created_at: now_unix() };
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        tx.insert_location(&row).await?;
        self.audit(&mut tx, p, "location.create", Some(format!("location:{}", row.id)), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn locations(&self, p: &Principal) -> Result<Vec<Location>> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        Ok(tx.locations().await?)
    }

    // ---- services ------------------------------------------------------------------------

    pub async fn create_service(&self, p: &Principal, input: ServicePatch) -> Result<Service> {
        let now = now_unix();
        for (field, missing) in [
            ("name", input.name.is_none()),
            ("category", input.category.is_none()),
            ("duration_min", input.duration_min.is_none()),
            ("price_minor", input.price_minor.is_none()),
        ] {
            if missing {
                return Err(PracticeError::invalid(field, "is required"));
            }
        }
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        let currency = tx.practice_settings().await?.currency;
        let mut s = Service {
            id: ServiceId::new(),
            name: String::new(),
            category: String::new(),
            duration_min: 0,
            buffer_min: 0,
            price_minor: 0,
            currency,
            cycle_days: None,
            follow_up_days: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        apply_service(&mut s, input)?;
        tx.insert_service(&s).await?;
        self.audit(&mut tx, p, "service.create", Some(format!("service:{}", s.id)), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(s)
    }

    pub async fn update_service(&self, p: &Principal, id: ServiceId, patch: ServicePatch) -> Result<Service> {
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        let mut s = tx.service(id).await?.ok_or(PracticeError::NotFound)?;
        let (action, fields) = service_change(&patch, s.active);
        apply_service(&mut s, patch)?;
        s.updated_at = now_unix();
        tx.update_service(&s).await?;
        self.audit(&mut tx, p, action, Some(format!("service:{id}")), serde_json::json!({ "fields": fields })).await?;
        tx.commit().await?;
        Ok(s)
    }

    pub async fn get_service(&self, p: &Principal, id: ServiceId) -> Result<Service> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        tx.service(id).await?.ok_or(PracticeError::NotFound)
    }

    pub async fn services(&self, p: &Principal) -> Result<Vec<Service>> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        Ok(tx.services().await?)
    }

    /// Deletes a service nothing refers to; one with appointments can only be deactivated.
    pub async fn delete_service(&self, p: &Principal, id: ServiceId) -> Result<()> {
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        match tx.delete_service(id).await {
            Ok(true) => {}
            Ok(false) => return Err(PracticeError::NotFound),
            Err(StorageError::Conflict(_)) => {
                return Err(PracticeError::conflict(
                    "in_use",
                    None,
                    "the service has appointments or plans; set active=false instead",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(&mut tx, p, "service.delete", Some(format!("service:{id}")), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- providers -----------------------------------------------------------------------

    async fn check_services_exist(tx: &mut lacuna_storage::TenantTx, ids: &[ServiceId]) -> Result<()> {
        for id in ids {
            if tx.service(*id).await?.is_none() {
                return Err(PracticeError::invalid("service_ids", format!("no service {id}")));
            }
        }
        Ok(())
    }

    /// Applies a name and a login link. The linked login must be a member of this practice: a
    /// member without `schedule.read_all` sees exactly the appointments of their linked providers.
    async fn apply_provider(
        tx: &mut lacuna_storage::TenantTx,
        row: &mut ProviderRow,
        name: Option<String>,
        user_id: Option<String>,
    ) -> Result<()> {
        if let Some(n) = name {
            row.name = required_text("name", &n, 200)?;
        }
        if let Some(u) = user_id {
            row.user_id = if u.trim().is_empty() {
                None
            } else {
                let user = parse_ref::<UserId>("user_id", &u)?;
                if tx.member(user).await?.is_none() {
                    return Err(PracticeError::invalid("user_id", "no member of this practice has this id"));
                }
                Some(user.to_string())
            };
        }
        Ok(())
    }

    pub async fn create_provider(&self, p: &Principal, input: ProviderPatch) -> Result<Provider> {
        let now = now_unix();
        let mut row = ProviderRow {
            id: ProviderId::new(),
            name: String::new(),
            user_id: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        if input.name.is_none() {
            return Err(PracticeError::invalid("name", "is required"));
        }
        row.active = input.active.unwrap_or(true);
        let services = parse_service_ids(input.service_ids.as_deref().unwrap_or_default())?;
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        Self::apply_provider(&mut tx, &mut row, input.name, input.user_id).await?;
        Self::check_services_exist(&mut tx, &services).await?;
        tx.insert_provider(&row).await?;
        tx.set_provider_services(row.id, &services).await?;
        let scope = serde_json::json!({ "user_id": row.user_id, "service_ids": services.len() });
        self.audit(&mut tx, p, "provider.create", Some(format!("provider:{}", row.id)), scope).await?;
        tx.commit().await?;
        Ok(Provider { row, service_ids: services, hours: vec![] })
    }

    pub async fn update_provider(&self, p: &Principal, id: ProviderId, patch: ProviderPatch) -> Result<Provider> {
        let services = patch.service_ids.as_deref().map(parse_service_ids).transpose()?;
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        let mut row = tx.lock_provider(id).await?.ok_or(PracticeError::NotFound)?;
        let deactivate = row.active && patch.active == Some(false);
        let fields: Vec<&str> = [
            ("name", patch.name.is_some()),
            ("user_id", patch.user_id.is_some()),
            ("service_ids", services.is_some()),
            ("active", patch.active.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        Self::apply_provider(&mut tx, &mut row, patch.name, patch.user_id).await?;
        if let Some(a) = patch.active {
            row.active = a;
        }
        row.updated_at = now_unix();
        tx.update_provider(&row).await?;
        if let Some(s) = &services {
            Self::check_services_exist(&mut tx, s).await?;
            tx.set_provider_services(id, s).await?;
        }
        // Ids and field names only: a provider's name is personal data.
        let action = if deactivate { "provider.deactivate" } else { "provider.update" };
        let scope = serde_json::json!({ "fields": fields, "user_id": row.user_id });
        self.audit(&mut tx, p, action, Some(format!("provider:{id}")), scope).await?;
        let provider = Self::load_provider(&mut tx, row).await?;
        tx.commit().await?;
        Ok(provider)
    }

    async fn load_provider(tx: &mut lacuna_storage::TenantTx, row: ProviderRow) -> Result<Provider> {
        let service_ids = tx.provider_services(Some(row.id)).await?.into_iter().map(|(_, s)| s).collect();
        let hours = tx.provider_hours(Some(row.id)).await?.into_iter().map(|(_, h)| h).collect();
        Ok(Provider { row, service_ids, hours })
    }

    pub async fn get_provider(&self, p: &Principal, id: ProviderId) -> Result<Provider> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        let row = tx.provider(id).await?.ok_or(PracticeError::NotFound)?;
        Self::load_provider(&mut tx, row).await
    }

    pub async fn providers(&self, p: &Principal) -> Result<Vec<Provider>> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        let rows = tx.providers().await?;
        let services = tx.provider_services(None).await?;
        let hours = tx.provider_hours(None).await?;
        Ok(rows
            .into_iter()
            .map(|row| Provider {
                service_ids: services.iter().filter(|(p, _)| *p == row.id).map(|(_, s)| *s).collect(),
                hours: hours.iter().filter(|(p, _)| *p == row.id).map(|(_, h)| *h).collect(),
                row,
            })
            .collect())
    }

    pub async fn delete_provider(&self, p: &Principal, id: ProviderId) -> Result<()> {
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        match tx.delete_provider(id).await {
            Ok(true) => {}
            Ok(false) => return Err(PracticeError::NotFound),
            Err(StorageError::Conflict(_)) => {
                return Err(PracticeError::conflict(
                    "in_use",
                    None,
                    "the provider has appointments; set active=false instead",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(&mut tx, p, "provider.delete", Some(format!("provider:{id}")), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a provider's weekly hours as a whole. Windows of one weekday may not overlap.
    pub async fn set_provider_hours(
        &self,
        p: &Principal,
        id: ProviderId,
        input: Option<Vec<HoursInput>>,
    ) -> Result<Provider> {
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        let row = tx.lock_provider(id).await?.ok_or(PracticeError::NotFound)?;
        let input = input.ok_or_else(|| PracticeError::invalid("hours", "is required (an empty list clears them)"))?;
        if input.len() > 7 * 12 {
            return Err(PracticeError::invalid("hours", "too many windows"));
        }
        let mut hours = Vec::with_capacity(input.len());
        for (i, h) in input.iter().enumerate() {
            let f = |name: &str| format!("hours[{i}].{name}");
            let location_id: LocationId = parse_ref(&f("location_id"), &h.location_id)?;
            if tx.location(location_id).await?.is_none() {
                return Err(PracticeError::invalid(&f("location_id"), "no such location"));
            }
            let weekday = in_range(&f("weekday"), h.weekday, 0, 6)?;
            let start_min = parse_clock(&f("start"), &h.start)?;
            let end_min = parse_clock(&f("end"), &h.end)?;
            if start_min >= end_min {
                return Err(PracticeError::invalid(&f("end"), "must be after start"));
            }
            hours.push(HoursRow { location_id, weekday, start_min, end_min });
        }
        hours.sort_by_key(|h| (h.weekday, h.start_min));
        for (i, w) in hours.windows(2).enumerate() {
            if w[0].weekday == w[1].weekday && w[1].start_min < w[0].end_min {
                return Err(PracticeError::invalid(&format!("hours[{}]", i + 1), "overlaps another window that day"));
            }
        }
        tx.replace_provider_hours(id, &hours).await?;
        let scope = serde_json::json!({ "windows": hours.len() });
        self.audit(&mut tx, p, "provider.hours_set", Some(format!("provider:{id}")), scope).await?;
        let provider = Self::load_provider(&mut tx, row).await?;
        tx.commit().await?;
        Ok(provider)
    }

    // ---- time off ------------------------------------------------------------------------

    pub async fn add_time_off(&self, p: &Principal, provider: ProviderId, input: TimeOffInput) -> Result<TimeOff> {
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        tx.lock_provider(provider).await?.ok_or(PracticeError::NotFound)?;
        let starts_at = parse_instant("starts_at", &input.starts_at)?;
        let ends_at = parse_instant("ends_at", &input.ends_at)?;
        if ends_at <= starts_at {
            return Err(PracticeError::invalid("ends_at", "must be after starts_at"));
        }
        if ends_at - starts_at > 366 * 86_400 {
            return Err(PracticeError::invalid("ends_at", "time off may last at most a year"));
        }
        let reason =
            input.reason.filter(|r| !r.trim().is_empty()).map(|r| required_text("reason", &r, 500)).transpose()?;
        let row = TimeOff { id: lacuna_domain::new_row_id(), provider_id: provider, starts_at, ends_at, reason };
        tx.insert_time_off(&row).await?;
        // The reason is free text: never in the audit trail.
        let scope = serde_json::json!({ "time_off_id": row.id, "starts_at": starts_at, "ends_at": ends_at });
        self.audit(&mut tx, p, "provider.time_off_add", Some(format!("provider:{provider}")), scope).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Time off of a provider that has not ended yet (or all since `since`).
    pub async fn time_off(&self, p: &Principal, provider: ProviderId) -> Result<Vec<TimeOff>> {
        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        tx.provider(provider).await?.ok_or(PracticeError::NotFound)?;
        Ok(tx.time_off(Some(provider), now_unix() - 366 * 86_400, i64::MAX / 2).await?)
    }

    pub async fn delete_time_off(&self, p: &Principal, provider: ProviderId, id: &str) -> Result<()> {
        let id: uuid::Uuid = id.parse().map_err(|_| PracticeError::NotFound)?;
        let mut tx = self.write(p, Permission::CatalogManage).await?;
        if !tx.delete_time_off(provider, &id.to_string()).await? {
            return Err(PracticeError::NotFound);
        }
        let scope = serde_json::json!({ "time_off_id": id.to_string() });
        self.audit(&mut tx, p, "provider.time_off_delete", Some(format!("provider:{provider}")), scope).await?;
        tx.commit().await?;
        Ok(())
    }
}
