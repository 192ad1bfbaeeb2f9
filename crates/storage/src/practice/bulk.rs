//! Bulk loading of practice history for `lacuna demo` and the benchmarks: appointments, plans and
//! charges, many rows per transaction (and on PostgreSQL one `INSERT … SELECT FROM UNNEST` per
//! batch of appointments), under the same tables and constraints as everyday writes. The
//! catalogue (settings, locations, services, providers) has no bulk path: the demo uses the
//! catalogue's own inserts.

use crate::tx::{Tx, on_conn};
use crate::{Result, TenantTx};

#[derive(Debug, Clone)]
pub struct AppointmentSeed {
    pub id: String,
    pub client_id: String,
    pub provider_id: String,
    pub service_id: String,
    pub location_id: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub blocks_until: i64,
    pub status: &'static str,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<&'static str>,
    pub price_minor: i64,
    pub currency: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct PlanSeed {
    pub id: String,
    pub client_id: String,
    pub kind: &'static str,
    pub name: String,
    pub service_id: Option<String>,
    pub price_minor: i64,
    pub currency: String,
    pub credits_total: i64,
    pub credits_used: i64,
    pub starts_at: i64,
    pub expires_at: Option<i64>,
    pub status: &'static str,
}

#[derive(Debug, Clone)]
pub struct ChargeSeed {
    pub id: String,
    pub appointment_id: Option<String>,
    pub plan_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub payment_method: String,
    pub processor_customer: String,
    pub payment_intent: String,
    pub created_by: String,
    pub created_at: i64,
}

impl TenantTx {
    pub async fn bulk_appointments(&mut self, rows: &[AppointmentSeed]) -> Result<()> {
        const ONE: &str = "INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id,
                starts_at, ends_at, blocks_until, status, cancel_reason, cancelled_by, price_minor, currency,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)";
        const MANY: &str = "INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id,
                starts_at, ends_at, blocks_until, status, cancel_reason, cancelled_by, price_minor, currency,
                created_at, updated_at)
             SELECT $1, u.id, u.client_id, u.provider_id, u.service_id, u.location_id, u.starts_at, u.ends_at,
                u.blocks_until, u.status, u.cancel_reason, u.cancelled_by, u.price_minor, u.currency, u.created_at,
                u.created_at
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
                $9::bigint[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::bigint[])
                AS u(id, client_id, provider_id, service_id, location_id, starts_at, ends_at, blocks_until, status,
                     cancel_reason, cancelled_by, price_minor, currency, created_at)";
        let t = self.tenant_str.clone();
        match &mut self.tx {
            Tx::Sqlite(c) => {
                for a in rows {
                    sqlx::query(ONE)
                        .bind(&t)
                        .bind(&a.id)
                        .bind(&a.client_id)
                        .bind(&a.provider_id)
                        .bind(&a.service_id)
                        .bind(&a.location_id)
                        .bind(a.starts_at)
                        .bind(a.ends_at)
                        .bind(a.blocks_until)
                        .bind(a.status)
                        .bind(&a.cancel_reason)
                        .bind(a.cancelled_by)
                        .bind(a.price_minor)
                        .bind(&a.currency)
                        .bind(a.created_at)
                        .execute(&mut **c)
                        .await?;
                }
            }
            Tx::Pg(c) => {
                fn col<T: Clone>(rows: &[AppointmentSeed], f: impl Fn(&AppointmentSeed) -> T) -> Vec<T> {
                    rows.iter().map(f).collect()
                }
                sqlx::query(MANY)
                    .bind(&t)
                    .bind(col(rows, |a| a.id.clone()))
                    .bind(col(rows, |a| a.client_id.clone()))
                    .bind(col(rows, |a| a.provider_id.clone()))
                    .bind(col(rows, |a| a.service_id.clone()))
                    .bind(col(rows, |a| a.location_id.clone()))
                    .bind(col(rows, |a| a.starts_at))
                    .bind(col(rows, |a| a.ends_at))
                    .bind(col(rows, |a| a.blocks_until))
                    .bind(col(rows, |a| a.status.to_string()))
                    .bind(col(rows, |a| a.cancel_reason.clone()))
                    .bind(col(rows, |a| a.cancelled_by.map(str::to_string)))
                    .bind(col(rows, |a| a.price_minor))
                    .bind(col(rows, |a| a.currency.clone()))
                    .bind(col(rows, |a| a.created_at))
                    .execute(&mut **c)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn bulk_plan(&mut self, p: &PlanSeed, now: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO client_plans (tenant_id, id, client_id, kind, name, service_id, price_minor,
                currency, credits_total, credits_used, starts_at, expires_at, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&p.id).bind(&p.client_id).bind(p.kind).bind(&p.name)
            .bind(&p.service_id).bind(p.price_minor).bind(&p.currency).bind(p.credits_total).bind(p.credits_used)
            .bind(p.starts_at).bind(p.expires_at).bind(p.status).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn bulk_charge(&mut self, p: &ChargeSeed) -> Result<()> {
        const SQL: &str = "INSERT INTO payments (tenant_id, id, kind, appointment_id, plan_id, amount_minor, currency,
                payment_method, processor_customer, payment_intent, status, created_by, created_at)
             VALUES ($1, $2, 'charge', $3, $4, $5, $6, $7, $8, $9, 'succeeded', $10, $11)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&p.id).bind(&p.appointment_id).bind(&p.plan_id)
            .bind(p.amount_minor).bind(&p.currency).bind(&p.payment_method).bind(&p.processor_customer)
            .bind(&p.payment_intent).bind(&p.created_by).bind(p.created_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
