//! Charges and refunds (processor tokens and ids only), and processed processor webhook events.

use super::parse_id;
use crate::tx::on_conn;
use crate::{Result, StorageError, TenantTx};
use lacuna_domain::{AppointmentId, PaymentId, PlanId};

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub id: PaymentId,
    /// `charge` or `refund`.
    pub kind: String,
    pub appointment_id: Option<AppointmentId>,
    pub plan_id: Option<PlanId>,
    pub refund_of: Option<PaymentId>,
    pub amount_minor: i64,
    pub currency: String,
    pub payment_method: Option<String>,
    pub processor_customer: Option<String>,
    pub payment_intent: Option<String>,
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
}

type PaymentTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
);

const COLUMNS: &str = "id, kind, appointment_id, plan_id, refund_of, amount_minor, currency, payment_method, \
     processor_customer, payment_intent, status, created_by, created_at";

impl PaymentRow {
    fn from_tuple(t: PaymentTuple) -> Result<Self> {
        let (id, kind, appt, plan, refund_of, amount, currency, pm, cus, pi, status, by, at) = t;
        Ok(Self {
            id: parse_id(&id, "payments.id")?,
            kind,
            appointment_id: appt.map(|a| parse_id(&a, "payments.appointment_id")).transpose()?,
            plan_id: plan.map(|p| parse_id(&p, "payments.plan_id")).transpose()?,
            refund_of: refund_of.map(|r| parse_id(&r, "payments.refund_of")).transpose()?,
            amount_minor: amount,
            currency,
            payment_method: pm,
            processor_customer: cus,
            payment_intent: pi,
            status,
            created_by: by,
            created_at: at,
        })
    }
}

impl TenantTx {
    pub async fn insert_payment(&mut self, p: &PaymentRow) -> Result<()> {
        const SQL: &str = "INSERT INTO payments (tenant_id, id, kind, appointment_id, plan_id, refund_of, amount_minor,
                currency, payment_method, processor_customer, payment_intent, status, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL)
            .bind(&t).bind(p.id.to_string()).bind(&p.kind).bind(p.appointment_id.map(|a| a.to_string()))
            .bind(p.plan_id.map(|x| x.to_string())).bind(p.refund_of.map(|x| x.to_string())).bind(p.amount_minor)
            .bind(&p.currency).bind(&p.payment_method).bind(&p.processor_customer).bind(&p.payment_intent)
            .bind(&p.status).bind(&p.created_by).bind(p.created_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// One payment; on PostgreSQL locked for the rest of the transaction (refunds).
    pub async fn payment_for_update(&mut self, id: PaymentId) -> Result<Option<PaymentRow>> {
        const SQL: &str =
            const_str_concat!(const_str_concat!("SELECT ", COLUMNS), " FROM payments WHERE tenant_id = $1 AND id = $2");
        const SQL_PG: &str = const_str_concat!(SQL, " FOR UPDATE");
        let sql = if self.is_postgres() { SQL_PG } else { SQL };
        let t = self.tenant_str.clone();
        let row: Option<PaymentTuple> =
            on_conn!(self, c => sqlx::query_as(sql).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(PaymentRow::from_tuple).transpose()
    }

    /// Payments, optionally only those of one appointment and/or plan, oldest first.
    pub async fn payments(
        &mut self,
        appointment: Option<AppointmentId>,
        plan: Option<PlanId>,
        limit: i64,
    ) -> Result<Vec<PaymentRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM payments WHERE tenant_id = $1 AND ($2 IS NULL OR appointment_id = $2)
               AND ($3 IS NULL OR plan_id = $3) ORDER BY created_at, id LIMIT $4"
        );
        const SQL_PG: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM payments WHERE tenant_id = $1 AND ($2::text IS NULL OR appointment_id = $2)
               AND ($3::text IS NULL OR plan_id = $3) ORDER BY created_at, id LIMIT $4"
        );
        let sql = if self.is_postgres() { SQL_PG } else { SQL };
        let t = self.tenant_str.clone();
        let rows: Vec<PaymentTuple> = on_conn!(self, c => sqlx::query_as(sql).bind(&t)
            .bind(appointment.map(|a| a.to_string())).bind(plan.map(|p| p.to_string())).bind(limit)
            .fetch_all(c).await)?;
        rows.into_iter().map(PaymentRow::from_tuple).collect()
    }

    /// Charges carrying this processor payment intent.
    pub async fn charges_by_intent(&mut self, intent: &str) -> Result<Vec<PaymentRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM payments WHERE tenant_id = $1 AND payment_intent = $2 AND kind = 'charge' ORDER BY created_at, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<PaymentTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(intent).fetch_all(c).await)?;
        rows.into_iter().map(PaymentRow::from_tuple).collect()
    }

    /// The sum of a charge's refunds that did not fail.
    pub async fn refunded_amount(&mut self, charge: PaymentId) -> Result<i64> {
        const SQL: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payments
             WHERE tenant_id = $1 AND refund_of = $2 AND kind = 'refund' AND status <> 'failed'";
        let t = self.tenant_str.clone();
        let (n,): (i64,) =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(charge.to_string()).fetch_one(c).await)?;
        Ok(n)
    }

    pub async fn set_payment_status(&mut self, id: PaymentId, status: &str) -> Result<()> {
        const SQL: &str = "UPDATE payments SET status = $3 WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id.to_string()).bind(status)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Whether this transaction's tenant exists (webhooks name their tenant themselves).
    pub async fn tenant_exists(&mut self) -> Result<bool> {
        const SQL: &str = "SELECT COUNT(*) FROM tenants WHERE id = $1 AND deleted_at IS NULL";
        let t = self.tenant_str.clone();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_one(c).await)?;
        Ok(n > 0)
    }

    /// Records a processor event as processed; `false` when it already was (a replay).
    pub async fn record_processor_event(&mut self, event_id: &str, event_type: &str, now: i64) -> Result<bool> {
        const SQL: &str = "INSERT INTO stripe_events (tenant_id, event_id, event_type, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, event_id) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(event_id).bind(event_type).bind(now)
            .execute(c).await.map(|r| r.rows_affected()).map_err(StorageError::from))?;
        Ok(n == 1)
    }
}
