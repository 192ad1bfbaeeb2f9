//! The catalogue: practice settings (time zone, currency), locations, services, providers with
//! the services they perform, their weekly working hours and their time off.

use super::parse_id;
use crate::tx::on_conn;
use crate::{Result, StorageError, TenantTx};
use lacuna_domain::{ClientId, LocationId, ProviderId, ServiceId};

/// Tenant-wide practice settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeSettingsRow {
    /// IANA time zone name (e.g. `America/New_York`).
    pub timezone: String,
    /// ISO 4217 code.
    pub currency: String,
    pub reminder_lead_hours: i64,
    /// What happens to client notes that look clinical or hold identifiers: `warn` or `reject`.
    pub notes_phi_policy: String,
}

#[derive(Debug, Clone)]
pub struct LocationRow {
    pub id: LocationId,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct ServiceRow {
    pub id: ServiceId,
    pub name: String,
    pub category: String,
    pub duration_min: i64,
    pub buffer_min: i64,
    pub price_minor: i64,
    pub currency: String,
    pub cycle_days: Option<i64>,
    pub follow_up_days: Option<i64>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub id: ProviderId,
    pub name: String,
    /// The staff login of this provider, if any.
    pub user_id: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One weekly working window in the tenant's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoursRow {
    pub location_id: LocationId,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: i64,
    /// Minutes from local midnight.
    pub start_min: i64,
    pub end_min: i64,
}

#[derive(Debug, Clone)]
pub struct TimeOffRow {
    pub id: String,
    pub provider_id: ProviderId,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: Option<String>,
}

type ServiceTuple = (String, String, String, i64, i64, i64, String, Option<i64>, Option<i64>, bool, i64, i64);
const SERVICE_COLUMNS: &str = "id, name, category, duration_min, buffer_min, price_minor, currency, cycle_days, \
     follow_up_days, active, created_at, updated_at";

fn service_from(t: ServiceTuple) -> Result<ServiceRow> {
    let (id, name, category, duration_min, buffer_min, price_minor, currency, cycle, follow, active, created, updated) =
        t;
    Ok(ServiceRow {
        id: parse_id(&id, "services.id")?,
        name,
        category,
        duration_min,
        buffer_min,
        price_minor,
        currency,
        cycle_days: cycle,
        follow_up_days: follow,
        active,
        created_at: created,
        updated_at: updated,
    })
}

/// What a booking checks about its provider, service, location and practice, read in one
/// statement (see [`TenantTx::lock_slot_context`]).
#[derive(Debug, Clone)]
pub struct SlotContext {
    pub provider_active: bool,
    pub service: ServiceRow,
    /// Whether the provider performs the service.
    pub performs: bool,
    /// The practice's time zone.
    pub timezone: String,
    pub location_name: String,
    /// The provider's weekly hours, every location.
    pub hours: Vec<HoursRow>,
    /// The client asked for, if it exists in this tenant.
    pub client: Option<super::clients::ClientRow>,
}

type ProviderTuple = (String, String, Option<String>, bool, i64, i64);
const PROVIDER_COLUMNS: &str = "id, name, user_id, active, created_at, updated_at";

fn provider_from(t: ProviderTuple) -> Result<ProviderRow> {
    let (id, name, user_id, active, created_at, updated_at) = t;
    Ok(ProviderRow { id: parse_id(&id, "providers.id")?, name, user_id, active, created_at, updated_at })
}

type TimeOffTuple = (String, String, i64, i64, Option<String>);

fn time_off_from(t: TimeOffTuple) -> Result<TimeOffRow> {
    let (id, provider, starts_at, ends_at, reason) = t;
    Ok(TimeOffRow { id, provider_id: parse_id(&provider, "time_off.provider_id")?, starts_at, ends_at, reason })
}

fn foreign_key(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StorageError::Conflict(what),
        _ => StorageError::Database(e),
    }
}

impl TenantTx {
    // ---- settings ------------------------------------------------------------------------

    pub async fn practice_settings(&mut self) -> Result<PracticeSettingsRow> {
        const SQL: &str = "SELECT timezone, currency, reminder_lead_hours, notes_phi_policy FROM tenants WHERE id = $1";
        let t = self.tenant_str.clone();
        let (timezone, currency, reminder_lead_hours, notes_phi_policy): (String, String, i64, String) =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_one(c).await)?;
        Ok(PracticeSettingsRow { timezone, currency, reminder_lead_hours, notes_phi_policy })
    }

    pub async fn set_practice_settings(&mut self, s: &PracticeSettingsRow, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE tenants SET timezone = $2, currency = $3, reminder_lead_hours = $4,
                notes_phi_policy = $5, updated_at = $6 WHERE id = $1";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&s.timezone).bind(&s.currency)
            .bind(s.reminder_lead_hours).bind(&s.notes_phi_policy).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    // ---- locations -----------------------------------------------------------------------

    pub async fn insert_location(&mut self, l: &LocationRow) -> Result<()> {
        const SQL: &str = "INSERT INTO locations (tenant_id, id, name, created_at) VALUES ($1, $2, $3, $4)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(l.id.to_string()).bind(&l.name).bind(l.created_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn location(&mut self, id: LocationId) -> Result<Option<LocationRow>> {
        const SQL: &str = "SELECT id, name, created_at FROM locations WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let row: Option<(String, String, i64)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(|(id, name, created_at)| Ok(LocationRow { id: parse_id(&id, "locations.id")?, name, created_at }))
            .transpose()
    }

    pub async fn locations(&mut self) -> Result<Vec<LocationRow>> {
        const SQL: &str = "SELECT id, name, created_at FROM locations WHERE tenant_id = $1 ORDER BY name, id";
        let t = self.tenant_str.clone();
        let rows: Vec<(String, String, i64)> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(id, name, created_at)| Ok(LocationRow { id: parse_id(&id, "locations.id")?, name, created_at }))
            .collect()
    }

    // ---- services ------------------------------------------------------------------------

    pub async fn insert_service(&mut self, s: &ServiceRow) -> Result<()> {
        const SQL: &str = "INSERT INTO services (tenant_id, id, name, category, duration_min, buffer_min, price_minor,
                currency, cycle_days, follow_up_days, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(s.id.to_string()).bind(&s.name).bind(&s.category)
            .bind(s.duration_min).bind(s.buffer_min).bind(s.price_minor).bind(&s.currency).bind(s.cycle_days)
            .bind(s.follow_up_days).bind(s.active).bind(s.created_at).bind(s.updated_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Writes every mutable field of a service.
    pub async fn update_service(&mut self, s: &ServiceRow) -> Result<bool> {
        const SQL: &str = "UPDATE services SET name = $3, category = $4, duration_min = $5, buffer_min = $6,
                price_minor = $7, currency = $8, cycle_days = $9, follow_up_days = $10, active = $11, updated_at = $12
             WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(s.id.to_string()).bind(&s.name).bind(&s.category)
            .bind(s.duration_min).bind(s.buffer_min).bind(s.price_minor).bind(&s.currency).bind(s.cycle_days)
            .bind(s.follow_up_days).bind(s.active).bind(s.updated_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn service(&mut self, id: ServiceId) -> Result<Option<ServiceRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", SERVICE_COLUMNS),
            " FROM services WHERE tenant_id = $1 AND id = $2"
        );
        let t = self.tenant_str.clone();
        let row: Option<ServiceTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(service_from).transpose()
    }

    pub async fn services(&mut self) -> Result<Vec<ServiceRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", SERVICE_COLUMNS),
            " FROM services WHERE tenant_id = $1 ORDER BY name, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<ServiceTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter().map(service_from).collect()
    }

    /// Deletes a service no appointment or plan refers to. `Conflict("service")` if one does.
    pub async fn delete_service(&mut self, id: ServiceId) -> Result<bool> {
        const SQL: &str = "DELETE FROM services WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id.to_string()).execute(c).await
            .map(|r| r.rows_affected()).map_err(foreign_key("service")))?;
        Ok(n == 1)
    }

    // ---- providers -----------------------------------------------------------------------

    pub async fn insert_provider(&mut self, p: &ProviderRow) -> Result<()> {
        const SQL: &str = "INSERT INTO providers (tenant_id, id, name, user_id, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(p.id.to_string()).bind(&p.name).bind(&p.user_id)
            .bind(p.active).bind(p.created_at).bind(p.updated_at).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn update_provider(&mut self, p: &ProviderRow) -> Result<bool> {
        const SQL: &str = "UPDATE providers SET name = $3, user_id = $4, active = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(p.id.to_string()).bind(&p.name).bind(&p.user_id)
            .bind(p.active).bind(p.updated_at).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn provider(&mut self, id: ProviderId) -> Result<Option<ProviderRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", PROVIDER_COLUMNS),
            " FROM providers WHERE tenant_id = $1 AND id = $2"
        );
        let t = self.tenant_str.clone();
        let row: Option<ProviderTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(provider_from).transpose()
    }

    /// Reads a provider and, on PostgreSQL, locks its row until the transaction ends, so that
    /// bookings for one provider are serialised (SQLite write transactions already are).
    pub async fn lock_provider(&mut self, id: ProviderId) -> Result<Option<ProviderRow>> {
        const SQL_PG: &str = const_str_concat!(
            const_str_concat!("SELECT ", PROVIDER_COLUMNS),
            " FROM providers WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        );
        if !self.is_postgres() {
            return self.provider(id).await;
        }
        let t = self.tenant_str.clone();
        let row: Option<ProviderTuple> =
            on_conn!(self, c => sqlx::query_as(SQL_PG).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(provider_from).transpose()
    }

    /// The providers whose records are linked to this staff login.
    pub async fn providers_of_user(&mut self, user: &str) -> Result<Vec<ProviderId>> {
        const SQL: &str = "SELECT id FROM providers WHERE tenant_id = $1 AND user_id = $2 ORDER BY id";
        let t = self.tenant_str.clone();
        let rows: Vec<(String,)> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(user).fetch_all(c).await)?;
        rows.into_iter().map(|(id,)| parse_id(&id, "providers.id")).collect()
    }

    /// The provider, service, location, practice time zone, the provider's weekly hours and
    /// (when given) the client: everything a booking checks, in one round trip. On PostgreSQL the
    /// provider's row is locked until the transaction ends (bookings of one provider queue up;
    /// SQLite write transactions already are serialised). `None` if the provider, the service or
    /// the location does not exist in this tenant; a missing client is `client: None`.
    pub async fn lock_slot_context(
        &mut self,
        provider: ProviderId,
        service: ServiceId,
        location: LocationId,
        client: Option<ClientId>,
    ) -> Result<Option<SlotContext>> {
        const SELECT: &str = "SELECT p.active, s.id, s.name, s.category, s.duration_min, s.buffer_min, s.price_minor,
                s.currency, s.cycle_days, s.follow_up_days, s.active, s.created_at, s.updated_at, t.timezone, l.name,
                EXISTS (SELECT 1 FROM provider_services ps
                        WHERE ps.tenant_id = p.tenant_id AND ps.provider_id = p.id AND ps.service_id = s.id),";
        const FROM: &str = "
                c.id, c.name_ct, c.email_ct, c.phone_ct, c.birthday_ct, c.notes_ct, c.email_bidx, c.phone_bidx,
                c.marketing_consent, c.created_at, c.updated_at
             FROM providers p
             JOIN services s ON s.tenant_id = p.tenant_id AND s.id = $3
             JOIN locations l ON l.tenant_id = p.tenant_id AND l.id = $4
             JOIN tenants t ON t.id = p.tenant_id
             LEFT JOIN clients c ON c.tenant_id = p.tenant_id AND c.id = $5
             WHERE p.tenant_id = $1 AND p.id = $2";
        // The hours as one JSON array of `[location, weekday, start, end]` (NULL or `[]` if none).
        const HOURS_PG: &str = "
                (SELECT json_agg(json_build_array(h.location_id, h.weekday, h.start_min, h.end_min))::text
                 FROM provider_hours h WHERE h.tenant_id = p.tenant_id AND h.provider_id = p.id),";
        const HOURS_SQLITE: &str = "
                (SELECT json_group_array(json_array(h.location_id, h.weekday, h.start_min, h.end_min))
                 FROM provider_hours h WHERE h.tenant_id = p.tenant_id AND h.provider_id = p.id),";
        const SQL_PG: &str =
            const_str_concat!(const_str_concat!(const_str_concat!(SELECT, HOURS_PG), FROM), " FOR UPDATE OF p");
        const SQL_SQLITE: &str = const_str_concat!(const_str_concat!(SELECT, HOURS_SQLITE), FROM);
        let sql = if self.is_postgres() { SQL_PG } else { SQL_SQLITE };
        let t = self.tenant_str.clone();
        let client = client.map(|c| c.to_string());
        type Head = (bool, ServiceTuple, String, String, bool, Option<String>);
        let got: Option<(Head, Option<super::clients::ClientTuple>)> = on_conn!(self, c => {
            use sqlx::Row;
            match sqlx::query(sql).bind(&t).bind(provider.to_string()).bind(service.to_string())
                .bind(location.to_string()).bind(&client).fetch_optional(c).await?
            {
                None => Ok::<_, sqlx::Error>(None),
                Some(r) => {
                    let service: ServiceTuple = (
                        r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?, r.try_get(6)?,
                        r.try_get(7)?, r.try_get(8)?, r.try_get(9)?, r.try_get(10)?, r.try_get(11)?, r.try_get(12)?,
                    );
                    let head = (r.try_get(0)?, service, r.try_get(13)?, r.try_get(14)?, r.try_get(15)?, r.try_get(16)?);
                    let client = match r.try_get::<Option<String>, _>(17)? {
                        None => None,
                        Some(id) => Some((
                            id, r.try_get(18)?, r.try_get(19)?, r.try_get(20)?, r.try_get(21)?, r.try_get(22)?,
                            r.try_get(23)?, r.try_get(24)?, r.try_get(25)?, r.try_get(26)?, r.try_get(27)?,
                        )),
                    };
                    Ok(Some((head, client)))
                }
            }
        })?;
        let Some(((provider_active, service, timezone, location_name, performs, hours), client)) = got else {
            return Ok(None);
        };
        let hours: Vec<(String, i64, i64, i64)> = match hours.as_deref() {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|_| StorageError::Corrupt("provider_hours".into()))?,
        };
        let mut hours = hours
            .into_iter()
            .map(|(l, weekday, start_min, end_min)| {
                Ok(HoursRow { location_id: parse_id(&l, "provider_hours.location_id")?, weekday, start_min, end_min })
            })
            .collect::<Result<Vec<_>>>()?;
        hours.sort_by_key(|h| (h.weekday, h.start_min));
        Ok(Some(SlotContext {
            provider_active,
            service: service_from(service)?,
            performs,
            timezone,
            location_name,
            hours,
            client: client.map(super::clients::ClientRow::from_tuple).transpose()?,
        }))
    }

    pub async fn providers(&mut self) -> Result<Vec<ProviderRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", PROVIDER_COLUMNS),
            " FROM providers WHERE tenant_id = $1 ORDER BY name, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<ProviderTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter().map(provider_from).collect()
    }

    /// Deletes a provider without appointments. `Conflict("provider")` if any refer to it.
    pub async fn delete_provider(&mut self, id: ProviderId) -> Result<bool> {
        const SQL: &str = "DELETE FROM providers WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id.to_string()).execute(c).await
            .map(|r| r.rows_affected()).map_err(foreign_key("provider")))?;
        Ok(n == 1)
    }

    /// Replaces the set of services a provider performs.
    pub async fn set_provider_services(&mut self, id: ProviderId, services: &[ServiceId]) -> Result<()> {
        const DEL: &str = "DELETE FROM provider_services WHERE tenant_id = $1 AND provider_id = $2";
        const INS: &str = "INSERT INTO provider_services (tenant_id, provider_id, service_id) VALUES ($1, $2, $3)";
        let t = self.tenant_str.clone();
        let pid = id.to_string();
        on_conn!(self, c => sqlx::query(DEL).bind(&t).bind(&pid).execute(c).await.map(|r| r.rows_affected()))?;
        for s in services {
            on_conn!(self, c => sqlx::query(INS).bind(&t).bind(&pid).bind(s.to_string()).execute(c).await
                .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// `(provider, service)` pairs: for one provider, or for all when `None`.
    pub async fn provider_services(&mut self, id: Option<ProviderId>) -> Result<Vec<(ProviderId, ServiceId)>> {
        const SQL: &str = "SELECT provider_id, service_id FROM provider_services
             WHERE tenant_id = $1 AND ($2 IS NULL OR provider_id = $2) ORDER BY provider_id, service_id";
        let t = self.tenant_str.clone();
        let pid = id.map(|p| p.to_string());
        let rows: Vec<(String, String)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&pid).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(p, s)| {
                Ok((parse_id(&p, "provider_services.provider_id")?, parse_id(&s, "provider_services.service_id")?))
            })
            .collect()
    }

    /// Whether the provider performs the service.
    pub async fn provider_performs(&mut self, provider: ProviderId, service: ServiceId) -> Result<bool> {
        const SQL: &str =
            "SELECT COUNT(*) FROM provider_services WHERE tenant_id = $1 AND provider_id = $2 AND service_id = $3";
        let t = self.tenant_str.clone();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(provider.to_string())
            .bind(service.to_string()).fetch_one(c).await)?;
        Ok(n > 0)
    }

    /// Replaces a provider's weekly hours as a whole.
    pub async fn replace_provider_hours(&mut self, id: ProviderId, hours: &[HoursRow]) -> Result<()> {
        const DEL: &str = "DELETE FROM provider_hours WHERE tenant_id = $1 AND provider_id = $2";
        const INS: &str =
            "INSERT INTO provider_hours (tenant_id, provider_id, location_id, weekday, start_min, end_min)
             VALUES ($1, $2, $3, $4, $5, $6)";
        let t = self.tenant_str.clone();
        let pid = id.to_string();
        on_conn!(self, c => sqlx::query(DEL).bind(&t).bind(&pid).execute(c).await.map(|r| r.rows_affected()))?;
        for h in hours {
            on_conn!(self, c => sqlx::query(INS).bind(&t).bind(&pid).bind(h.location_id.to_string()).bind(h.weekday)
                .bind(h.start_min).bind(h.end_min).execute(c).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Weekly hours: of one provider, or of all when `None`.
    pub async fn provider_hours(&mut self, id: Option<ProviderId>) -> Result<Vec<(ProviderId, HoursRow)>> {
        const SQL: &str = "SELECT provider_id, location_id, weekday, start_min, end_min FROM provider_hours
             WHERE tenant_id = $1 AND ($2 IS NULL OR provider_id = $2) ORDER BY provider_id, weekday, start_min";
        let t = self.tenant_str.clone();
        let pid = id.map(|p| p.to_string());
        let rows: Vec<(String, String, i64, i64, i64)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&pid).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(p, l, weekday, start_min, end_min)| {
                Ok((
                    parse_id(&p, "provider_hours.provider_id")?,
                    HoursRow { location_id: parse_id(&l, "provider_hours.location_id")?, weekday, start_min, end_min },
                ))
            })
            .collect()
    }

    // ---- time off ------------------------------------------------------------------------

    pub async fn insert_time_off(&mut self, r: &TimeOffRow) -> Result<()> {
        const SQL: &str = "INSERT INTO time_off (tenant_id, id, provider_id, starts_at, ends_at, reason)
             VALUES ($1, $2, $3, $4, $5, $6)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&r.id).bind(r.provider_id.to_string()).bind(r.starts_at)
            .bind(r.ends_at).bind(&r.reason).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Time off overlapping `[from, to)`: of one provider, or of all when `None`.
    pub async fn time_off(&mut self, id: Option<ProviderId>, from: i64, to: i64) -> Result<Vec<TimeOffRow>> {
        const SQL: &str = "SELECT id, provider_id, starts_at, ends_at, reason FROM time_off
             WHERE tenant_id = $1 AND ($2 IS NULL OR provider_id = $2) AND starts_at < $4 AND ends_at > $3
             ORDER BY provider_id, starts_at";
        let t = self.tenant_str.clone();
        let pid = id.map(|p| p.to_string());
        let rows: Vec<TimeOffTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&pid).bind(from).bind(to).fetch_all(c).await)?;
        rows.into_iter().map(time_off_from).collect()
    }

    pub async fn delete_time_off(&mut self, provider: ProviderId, id: &str) -> Result<bool> {
        const SQL: &str = "DELETE FROM time_off WHERE tenant_id = $1 AND provider_id = $2 AND id = $3";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(provider.to_string()).bind(id).execute(c).await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
