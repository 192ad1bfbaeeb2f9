//! Appointment rows. `blocks_until` = `ends_at` + the service's buffer; a provider's live
//! (booked or completed) appointments never overlap on `[starts_at, blocks_until)`: the practice
//! layer checks that under the provider's row lock (PostgreSQL) or the write lock (SQLite).

use super::parse_id;
use crate::tx::on_conn;
use crate::{Result, TenantTx};
use lacuna_domain::{AppointmentId, ClientId, LocationId, ProviderId, ServiceId};

/// The longest an appointment may block a provider (service duration + buffer), in seconds.
/// Bounds the overlap query's index range.
pub const MAX_BLOCK_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct AppointmentRow {
    pub id: AppointmentId,
    pub client_id: ClientId,
    pub provider_id: ProviderId,
    pub service_id: ServiceId,
    pub location_id: LocationId,
    pub starts_at: i64,
    pub ends_at: i64,
    pub blocks_until: i64,
    /// `booked`, `completed`, `cancelled` or `no_show`.
    pub status: String,
    pub cancel_reason: Option<String>,
    /// `client` or `practice`.
    pub cancelled_by: Option<String>,
    pub price_minor: i64,
    pub currency: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the calendar needs of a live appointment to find free time.
#[derive(Debug, Clone, Copy)]
pub struct BusyRow {
    pub provider_id: ProviderId,
    pub starts_at: i64,
    pub blocks_until: i64,
}

type Tuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
    i64,
);

const COLUMNS: &str = "id, client_id, provider_id, service_id, location_id, starts_at, ends_at, blocks_until, status, \
     cancel_reason, cancelled_by, price_minor, currency, created_at, updated_at";

fn from_tuple(t: Tuple) -> Result<AppointmentRow> {
    let (
        id,
        client,
        provider,
        service,
        location,
        starts_at,
        ends_at,
        blocks_until,
        status,
        reason,
        by,
        price,
        cur,
        c,
        u,
    ) = t;
    Ok(AppointmentRow {
        id: parse_id(&id, "appointments.id")?,
        client_id: parse_id(&client, "appointments.client_id")?,
        provider_id: parse_id(&provider, "appointments.provider_id")?,
        service_id: parse_id(&service, "appointments.service_id")?,
        location_id: parse_id(&location, "appointments.location_id")?,
        starts_at,
        ends_at,
        blocks_until,
        status,
        cancel_reason: reason,
        cancelled_by: by,
        price_minor: price,
        currency: cur,
        created_at: c,
        updated_at: u,
    })
}

/// Filters for listing appointments; times are Unix seconds, `[from, to)` on `starts_at`.
#[derive(Debug, Clone, Default)]
pub struct AppointmentFilter {
    pub from: i64,
    pub to: i64,
    pub provider: Option<ProviderId>,
    pub client: Option<ClientId>,
    /// Only appointments of the providers linked to this login (`providers.user_id`).
    pub linked_user: Option<String>,
    pub limit: i64,
}

/// Binds an appointment's columns in the order of `insert_appointment`'s `VALUES ($1 … $16)`:
/// tenant, id, client, provider, service, location, times, status, cancellation, price, stamps.
macro_rules! bind_appointment {
    ($q:expr, $t:expr, $a:expr) => {
        $q.bind($t)
            .bind($a.id.to_string())
            .bind($a.client_id.to_string())
            .bind($a.provider_id.to_string())
            .bind($a.service_id.to_string())
            .bind($a.location_id.to_string())
            .bind($a.starts_at)
            .bind($a.ends_at)
            .bind($a.blocks_until)
            .bind(&$a.status)
            .bind(&$a.cancel_reason)
            .bind(&$a.cancelled_by)
            .bind($a.price_minor)
            .bind(&$a.currency)
            .bind($a.created_at)
            .bind($a.updated_at)
    };
}

/// What stands in the way of a provider's `[start, until)`, as one row `(time_off, busy)`, with
/// the calling statement's placeholders for tenant, provider, start, until and an appointment
/// to leave out. A provider's live appointments never overlap one another, so only two can
/// overlap the new time: the first starting at or after its start (if it starts before `until`),
/// and the last starting before it (if it blocks past the start; every earlier one ends before
/// that one starts). Each is one step along `(tenant_id, provider_id, starts_at)`, however full
/// the calendar; written as ordered `LIMIT 1` lookups, which only that index can answer without
/// sorting, so the planner picks it even without statistics.
macro_rules! conflicts_sql {
    ($tenant:literal, $provider:literal, $start:literal, $until:literal, $except:literal) => {
        concat!(
            "SELECT EXISTS (SELECT 1 FROM time_off WHERE tenant_id = ",
            $tenant,
            " AND provider_id = ",
            $provider,
            " AND starts_at < ",
            $until,
            " AND ends_at > ",
            $start,
            ") AS time_off,
             COALESCE((SELECT starts_at FROM appointments WHERE tenant_id = ",
            $tenant,
            " AND provider_id = ",
            $provider,
            " AND status IN ('booked', 'completed') AND starts_at >= ",
            $start,
            " AND id <> ",
            $except,
            " ORDER BY starts_at LIMIT 1) < ",
            $until,
            ", false)
             OR COALESCE((SELECT blocks_until FROM appointments WHERE tenant_id = ",
            $tenant,
            " AND provider_id = ",
            $provider,
            " AND status IN ('booked', 'completed') AND starts_at < ",
            $start,
            " AND id <> ",
            $except,
            " ORDER BY starts_at DESC LIMIT 1) > ",
            $start,
            ", false) AS busy"
        )
    };
}

impl TenantTx {
    pub async fn insert_appointment(&mut self, a: &AppointmentRow) -> Result<()> {
        const SQL: &str = "INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id,
                starts_at, ends_at, blocks_until, status, cancel_reason, cancelled_by, price_minor, currency,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => bind_appointment!(sqlx::query(SQL), &t, a).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn appointment(&mut self, id: AppointmentId) -> Result<Option<AppointmentRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM appointments WHERE tenant_id = $1 AND id = $2"
        );
        let t = self.tenant_str.clone();
        let row: Option<Tuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(from_tuple).transpose()
    }

    pub async fn appointments(&mut self, f: &AppointmentFilter) -> Result<Vec<AppointmentRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM appointments WHERE tenant_id = $1 AND starts_at >= $2 AND starts_at < $3
               AND ($4 IS NULL OR provider_id = $4) AND ($5 IS NULL OR client_id = $5)
               AND ($7 IS NULL OR provider_id IN (SELECT id FROM providers WHERE tenant_id = $1 AND user_id = $7))
             ORDER BY starts_at, id LIMIT $6"
        );
        let t = self.tenant_str.clone();
        let provider = f.provider.map(|p| p.to_string());
        let client = f.client.map(|c| c.to_string());
        let rows: Vec<Tuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(f.from).bind(f.to)
            .bind(&provider).bind(&client).bind(f.limit).bind(&f.linked_user).fetch_all(c).await)?;
        rows.into_iter().map(from_tuple).collect()
    }

    /// Books `a` if nothing stands in its way: checks time off and live appointments overlapping
    /// `[starts_at, blocks_until)` and, only if there are none, inserts the appointment, its
    /// confirmation message and its Insight event `(outbox id, body)`. Returns
    /// `(time off overlaps, a live appointment overlaps)`. On PostgreSQL this is one statement:
    /// its snapshot is taken after the caller locked the provider's row, so it sees every
    /// booking committed before; on SQLite the write transaction excludes other writers.
    pub async fn book_if_free(
        &mut self,
        a: &AppointmentRow,
        confirmation: &super::outbox::OutboxRow,
        event: (&str, &str),
    ) -> Result<(bool, bool)> {
        const PG: &str = concat!(
            "WITH conflict AS (",
            conflicts_sql!("$1", "$4", "$7", "$9", "''"),
            "), booked AS (
                INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id,
                    starts_at, ends_at, blocks_until, status, cancel_reason, cancelled_by, price_minor, currency,
                    created_at, updated_at)
                SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM conflict
                WHERE NOT time_off AND NOT busy
                RETURNING 1
             ), message AS (
                INSERT INTO outbox (tenant_id, id, client_id, appointment_id, kind, channel, dedupe_key,
                    payload_ct, status, attempts, next_attempt_at, sent_at, created_at)
                SELECT $1, $17, $3, $2, $18, $19, $20, $21, $22, $23, $24, $25, $26 FROM booked
                ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
             ), event AS (
                INSERT INTO insight_outbox (tenant_id, id, body, created_at) SELECT $1, $27, $28, $15 FROM booked
             )
             SELECT time_off, busy FROM conflict"
        );
        if !self.is_postgres() {
            let (time_off, busy) = self.slot_conflicts(a.provider_id, a.starts_at, a.blocks_until, None).await?;
            if !time_off && !busy {
                self.insert_appointment(a).await?;
                self.enqueue_message(confirmation).await?;
                self.enqueue_insight_event(event.0, event.1, a.created_at).await?;
            }
            return Ok((time_off, busy));
        }
        let t = self.tenant_str.clone();
        let m = confirmation;
        let (time_off, busy): (bool, bool) = on_conn!(self, c => bind_appointment!(sqlx::query_as(PG), &t, a)
            .bind(m.id.to_string()).bind(&m.kind).bind(&m.channel).bind(&m.dedupe_key).bind(&m.payload_ct)
            .bind(&m.status).bind(m.attempts).bind(m.next_attempt_at).bind(m.sent_at).bind(m.created_at)
            .bind(event.0).bind(event.1)
            .fetch_one(c).await)?;
        Ok((time_off, busy))
    }

    /// What stands in the way of `[starts_at, blocks_until)` for a provider, in one round trip:
    /// `(time off overlaps, a live appointment other than `except` overlaps)`.
    pub async fn slot_conflicts(
        &mut self,
        provider: ProviderId,
        starts_at: i64,
        blocks_until: i64,
        except: Option<AppointmentId>,
    ) -> Result<(bool, bool)> {
        const SQL: &str = conflicts_sql!("$1", "$2", "$3", "$4", "$5");
        let t = self.tenant_str.clone();
        let except = except.map(|e| e.to_string()).unwrap_or_default();
        let (time_off, busy): (bool, bool) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t)
            .bind(provider.to_string()).bind(starts_at).bind(blocks_until).bind(&except).fetch_one(c).await)?;
        Ok((time_off, busy))
    }

    /// Live appointments blocking any time in `[from, to)`: of one provider or of all.
    pub async fn busy(&mut self, provider: Option<ProviderId>, from: i64, to: i64) -> Result<Vec<BusyRow>> {
        const SQL: &str = "SELECT provider_id, starts_at, blocks_until FROM appointments
             WHERE tenant_id = $1 AND ($2 IS NULL OR provider_id = $2) AND status IN ('booked', 'completed')
               AND starts_at < $4 AND starts_at > $5 AND blocks_until > $3
             ORDER BY provider_id, starts_at";
        let t = self.tenant_str.clone();
        let pid = provider.map(|p| p.to_string());
        let rows: Vec<(String, i64, i64)> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&pid).bind(from)
            .bind(to).bind(from - MAX_BLOCK_SECS).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(p, starts_at, blocks_until)| {
                Ok(BusyRow { provider_id: parse_id(&p, "appointments.provider_id")?, starts_at, blocks_until })
            })
            .collect()
    }

    /// Moves an appointment (reschedule), possibly to another provider.
    pub async fn move_appointment(&mut self, a: &AppointmentRow) -> Result<bool> {
        const SQL: &str = "UPDATE appointments SET provider_id = $3, starts_at = $4, ends_at = $5, blocks_until = $6,
                updated_at = $7 WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(a.id.to_string()).bind(a.provider_id.to_string())
            .bind(a.starts_at).bind(a.ends_at).bind(a.blocks_until).bind(a.updated_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Sets the status (and the cancellation details), only if it is still `from_status`.
    pub async fn set_appointment_status(&mut self, a: &AppointmentRow, from_status: &str) -> Result<bool> {
        const SQL: &str = "UPDATE appointments SET status = $3, cancel_reason = $4, cancelled_by = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2 AND status = $7";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(a.id.to_string()).bind(&a.status)
            .bind(&a.cancel_reason).bind(&a.cancelled_by).bind(a.updated_at).bind(from_status)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
