//! Exports: the register of who exported what (`exports`), and the flat rows of the export kinds
//! that join several tables (appointments, transactions). Services and providers are exported
//! from the catalogue's own listings. Client names arrive as ciphertexts (`client_name_ct`); the
//! practice layer opens them.

use crate::tx::on_conn;
use crate::{Result, TenantTx};

type AppointmentTuple = (
    String,
    String,
    Vec<u8>,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
);
type PaymentTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
);

/// One recorded export.
#[derive(Debug, Clone)]
pub struct ExportRecord {
    pub id: String,
    pub actor: String,
    pub kind: String,
    pub row_count: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct AppointmentExportRow {
    pub id: String,
    pub client_id: String,
    pub client_name_ct: Vec<u8>,
    pub provider_id: String,
    pub provider_name: String,
    pub service_id: String,
    pub service_name: String,
    pub location_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub price_minor: i64,
    pub currency: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct PaymentExportRow {
    pub id: String,
    pub kind: String,
    pub appointment_id: Option<String>,
    pub plan_id: Option<String>,
    pub refund_of: Option<String>,
    /// The client the payment is for: through its appointment or plan (or, for a refund, those of
    /// the refunded charge).
    pub client_id: Option<String>,
    pub client_name_ct: Option<Vec<u8>>,
    pub amount_minor: i64,
    pub currency: String,
    pub payment_method: Option<String>,
    pub processor_customer: Option<String>,
    pub payment_intent: Option<String>,
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
}

impl TenantTx {
    /// Records an export (in the same transaction as its audit event).
    pub async fn insert_export(&mut self, e: &ExportRecord) -> Result<()> {
        const SQL: &str = "INSERT INTO exports (tenant_id, id, actor, kind, row_count, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&e.id).bind(&e.actor).bind(&e.kind)
            .bind(e.row_count).bind(e.created_at).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Every recorded export, newest first.
    pub async fn exports(&mut self) -> Result<Vec<ExportRecord>> {
        const SQL: &str = "SELECT id, actor, kind, row_count, created_at FROM exports
             WHERE tenant_id = $1 ORDER BY created_at DESC, id";
        let t = self.tenant_str.clone();
        let rows: Vec<(String, String, String, i64, i64)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, actor, kind, row_count, created_at)| ExportRecord { id, actor, kind, row_count, created_at })
            .collect())
    }

    pub async fn export_appointments(&mut self) -> Result<Vec<AppointmentExportRow>> {
        const SQL: &str = "SELECT a.id, a.client_id, c.name_ct AS client_name_ct, a.provider_id,
                p.name AS provider_name, a.service_id, s.name AS service_name, a.location_id, a.starts_at,
                a.ends_at, a.status, a.cancel_reason, a.cancelled_by, a.price_minor, a.currency, a.created_at
             FROM appointments a
             JOIN clients c ON c.tenant_id = a.tenant_id AND c.id = a.client_id
             JOIN providers p ON p.tenant_id = a.tenant_id AND p.id = a.provider_id
             JOIN services s ON s.tenant_id = a.tenant_id AND s.id = a.service_id
             WHERE a.tenant_id = $1 ORDER BY a.starts_at, a.id";
        let t = self.tenant_str.clone();
        let rows: Vec<AppointmentTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    client_id,
                    client_name_ct,
                    provider_id,
                    provider_name,
                    service_id,
                    service_name,
                    location_id,
                    starts_at,
                    ends_at,
                    status,
                    cancel_reason,
                    cancelled_by,
                    price_minor,
                    currency,
                    created_at,
                )| AppointmentExportRow {
                    id,
                    client_id,
                    client_name_ct,
                    provider_id,
                    provider_name,
                    service_id,
                    service_name,
                    location_id,
                    starts_at,
                    ends_at,
                    status,
                    cancel_reason,
                    cancelled_by,
                    price_minor,
                    currency,
                    created_at,
                },
            )
            .collect())
    }

    pub async fn export_payments(&mut self) -> Result<Vec<PaymentExportRow>> {
        const SQL: &str = "SELECT x.id, x.kind, x.appointment_id, x.plan_id, x.refund_of, x.client_id,
                c.name_ct AS client_name_ct, x.amount_minor, x.currency, x.payment_method, x.processor_customer,
                x.payment_intent, x.status, x.created_by, x.created_at
             FROM (
                SELECT pay.tenant_id, pay.id, pay.kind, pay.appointment_id, pay.plan_id, pay.refund_of,
                    COALESCE(a.client_id, cp.client_id, oa.client_id, ocp.client_id) AS client_id,
                    pay.amount_minor, pay.currency, pay.payment_method, pay.processor_customer,
                    pay.payment_intent, pay.status, pay.created_by, pay.created_at
                FROM payments pay
                LEFT JOIN appointments a ON a.tenant_id = pay.tenant_id AND a.id = pay.appointment_id
                LEFT JOIN client_plans cp ON cp.tenant_id = pay.tenant_id AND cp.id = pay.plan_id
                LEFT JOIN payments orig ON orig.tenant_id = pay.tenant_id AND orig.id = pay.refund_of
                LEFT JOIN appointments oa ON oa.tenant_id = pay.tenant_id AND oa.id = orig.appointment_id
                LEFT JOIN client_plans ocp ON ocp.tenant_id = pay.tenant_id AND ocp.id = orig.plan_id
                WHERE pay.tenant_id = $1
             ) x
             LEFT JOIN clients c ON c.tenant_id = x.tenant_id AND c.id = x.client_id
             ORDER BY x.created_at, x.id";
        let t = self.tenant_str.clone();
        let rows: Vec<PaymentTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    kind,
                    appointment_id,
                    plan_id,
                    refund_of,
                    client_id,
                    client_name_ct,
                    amount_minor,
                    currency,
                    payment_method,
                    processor_customer,
                    payment_intent,
                    status,
                    created_by,
                    created_at,
                )| PaymentExportRow {
                    id,
                    kind,
                    appointment_id,
                    plan_id,
                    refund_of,
                    client_id,
                    client_name_ct,
                    amount_minor,
                    currency,
                    payment_method,
                    processor_customer,
                    payment_intent,
                    status,
                    created_by,
                    created_at,
                },
            )
            .collect())
    }
}
