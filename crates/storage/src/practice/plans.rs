//! Memberships and packages a client holds, and their redemptions against appointments.

use super::parse_id;
use crate::tx::on_conn;
use crate::{Result, StorageError, TenantTx};
use lacuna_domain::{AppointmentId, ClientId, PlanId, ServiceId};

/// A client's plan as stored. For a membership `credits_total` is what has been granted so far
/// (it grows by `credits_per_period` per started month; see the practice crate).
#[derive(Debug, Clone)]
pub struct PlanRow {
    pub id: PlanId,
    pub client_id: ClientId,
    /// `membership` or `package`.
    pub kind: String,
    pub name: String,
    pub service_id: Option<ServiceId>,
    pub price_minor: i64,
    pub currency: String,
    pub credits_total: i64,
    pub credits_used: i64,
    pub credits_per_period: Option<i64>,
    pub starts_at: i64,
    pub expires_at: Option<i64>,
    /// `active`, `cancelled` or `expired`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

type PlanTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    String,
    i64,
    i64,
);

const COLUMNS: &str = "id, client_id, kind, name, service_id, price_minor, currency, credits_total, credits_used, \
     credits_per_period, starts_at, expires_at, status, created_at, updated_at";

impl PlanRow {
    fn from_tuple(t: PlanTuple) -> Result<Self> {
        let (id, client, kind, name, service, price, currency, total, used, per, starts, expires, status, c, u) = t;
        Ok(Self {
            id: parse_id(&id, "client_plans.id")?,
            client_id: parse_id(&client, "client_plans.client_id")?,
            kind,
            name,
            service_id: service.map(|s| parse_id(&s, "client_plans.service_id")).transpose()?,
            price_minor: price,
            currency,
            credits_total: total,
            credits_used: used,
            credits_per_period: per,
            starts_at: starts,
            expires_at: expires,
            status,
            created_at: c,
            updated_at: u,
        })
    }
}

/// What billing needs to know about an appointment (the booking crate owns the rest).
#[derive(Debug, Clone)]
pub struct BillingAppointment {
    pub id: AppointmentId,
    pub client_id: ClientId,
    pub service_id: ServiceId,
    pub status: String,
    pub starts_at: i64,
    pub price_minor: i64,
    pub currency: String,
}

impl TenantTx {
    pub async fn insert_plan(&mut self, p: &PlanRow) -> Result<()> {
        const SQL: &str = "INSERT INTO client_plans (tenant_id, id, client_id, kind, name, service_id, price_minor,
                currency, credits_total, credits_used, credits_per_period, starts_at, expires_at, status,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL)
            .bind(&t).bind(p.id.to_string()).bind(p.client_id.to_string()).bind(&p.kind).bind(&p.name)
            .bind(p.service_id.map(|s| s.to_string())).bind(p.price_minor).bind(&p.currency)
            .bind(p.credits_total).bind(p.credits_used).bind(p.credits_per_period).bind(p.starts_at)
            .bind(p.expires_at).bind(&p.status).bind(p.created_at).bind(p.updated_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// One plan; on PostgreSQL the row is locked for the rest of the transaction (redeem).
    pub async fn plan_for_update(&mut self, id: PlanId) -> Result<Option<PlanRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM client_plans WHERE tenant_id = $1 AND id = $2"
        );
        const SQL_PG: &str = const_str_concat!(SQL, " FOR UPDATE");
        let sql = if self.is_postgres() { SQL_PG } else { SQL };
        let t = self.tenant_str.clone();
        let row: Option<PlanTuple> =
            on_conn!(self, c => sqlx::query_as(sql).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(PlanRow::from_tuple).transpose()
    }

    pub async fn plan(&mut self, id: PlanId) -> Result<Option<PlanRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM client_plans WHERE tenant_id = $1 AND id = $2"
        );
        let t = self.tenant_str.clone();
        let row: Option<PlanTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(PlanRow::from_tuple).transpose()
    }

    pub async fn plans_of_client(&mut self, client: ClientId) -> Result<Vec<PlanRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM client_plans WHERE tenant_id = $1 AND client_id = $2 ORDER BY created_at, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<PlanTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(client.to_string()).fetch_all(c).await)?;
        rows.into_iter().map(PlanRow::from_tuple).collect()
    }

    /// Plans still `active` in storage (some may have expired by time since), oldest first.
    pub async fn active_plans(&mut self) -> Result<Vec<PlanRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM client_plans WHERE tenant_id = $1 AND status = 'active' ORDER BY created_at, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<PlanTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter().map(PlanRow::from_tuple).collect()
    }

    /// Moves a plan from status `from` to `to`; false if it was not in `from` (changed meanwhile).
    pub async fn set_plan_status(&mut self, id: PlanId, from: &str, to: &str, now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE client_plans SET status = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2 AND status = $3";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id.to_string()).bind(from).bind(to).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Stores a plan's balance and status.
    pub async fn update_plan_balance(
        &mut self,
        id: PlanId,
        credits_total: i64,
        credits_used: i64,
        status: &str,
        now: i64,
    ) -> Result<()> {
        const SQL: &str = "UPDATE client_plans SET credits_total = $3, credits_used = $4, status = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id.to_string()).bind(credits_total).bind(credits_used)
            .bind(status).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a redemption; an appointment can be redeemed once (`Conflict("appointment")`).
    pub async fn insert_redemption(
        &mut self,
        id: &str,
        plan: PlanId,
        appointment: AppointmentId,
        at: i64,
    ) -> Result<()> {
        const SQL: &str = "INSERT INTO plan_redemptions (tenant_id, id, plan_id, appointment_id, redeemed_at)
             VALUES ($1, $2, $3, $4, $5)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id).bind(plan.to_string()).bind(appointment.to_string())
            .bind(at).execute(c).await.map(|_| ()).map_err(StorageError::unique("appointment")))?;
        Ok(())
    }

    /// Whether a service exists (a package names one).
    pub async fn billing_service_exists(&mut self, id: ServiceId) -> Result<bool> {
        const SQL: &str = "SELECT COUNT(*) FROM services WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_one(c).await)?;
        Ok(n > 0)
    }

    /// The billing-relevant facts of one appointment.
    pub async fn billing_appointment(&mut self, id: AppointmentId) -> Result<Option<BillingAppointment>> {
        const SQL: &str = "SELECT id, client_id, service_id, status, starts_at, price_minor, currency
             FROM appointments WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let row: Option<(String, String, String, String, i64, i64, String)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(|(id, client, service, status, starts_at, price_minor, currency)| {
            Ok(BillingAppointment {
                id: parse_id(&id, "appointments.id")?,
                client_id: parse_id(&client, "appointments.client_id")?,
                service_id: parse_id(&service, "appointments.service_id")?,
                status,
                starts_at,
                price_minor,
                currency,
            })
        })
        .transpose()
    }
}
