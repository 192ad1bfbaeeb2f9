//! The Practice side of Insight's triggers and of a pseudonym rotation: which triggers were
//! carried out (idempotent by trigger id), and the ids every pseudonym is minted from.

use crate::tx::on_conn;
use crate::{Result, TenantTx};

/// The ids of everything a pseudonym is minted from, per kind.
#[derive(Debug, Default, Clone)]
pub struct PseudonymSources {
    pub clients: Vec<String>,
    pub providers: Vec<String>,
    pub plans: Vec<String>,
    pub appointments: Vec<String>,
    pub locations: Vec<String>,
}

/// The external system that receives this tenant's triggers.
#[derive(Debug, Clone)]
pub struct TriggerEndpointRow {
    pub url: String,
    /// The signing secret, sealed with the tenant's data key.
    pub secret_ct: Vec<u8>,
    pub created_at: i64,
}

/// One webhook delivery of a trigger.
#[derive(Debug, Clone)]
pub struct TriggerWebhookRow {
    pub trigger_id: String,
    pub body: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_result: Option<String>,
}

impl TenantTx {
    pub async fn trigger_endpoint(&mut self) -> Result<Option<TriggerEndpointRow>> {
        const SQL: &str = "SELECT url, secret_ct, created_at FROM trigger_endpoints WHERE tenant_id = $1";
        let t = self.tenant_str.clone();
        let row: Option<(String, Vec<u8>, i64)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_optional(c).await)?;
        Ok(row.map(|(url, secret_ct, created_at)| TriggerEndpointRow { url, secret_ct, created_at }))
    }

    /// Sets (or replaces) the endpoint.
    pub async fn set_trigger_endpoint(&mut self, e: &TriggerEndpointRow) -> Result<()> {
        const SQL: &str =
            "INSERT INTO trigger_endpoints (tenant_id, url, secret_ct, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, secret_ct = excluded.secret_ct,
             created_at = excluded.created_at";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&e.url).bind(&e.secret_ct).bind(e.created_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete_trigger_endpoint(&mut self) -> Result<bool> {
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query("DELETE FROM trigger_endpoints WHERE tenant_id = $1").bind(&t)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Queues a webhook delivery (idempotent by trigger id).
    pub async fn enqueue_trigger_webhook(&mut self, trigger_id: &str, body: &str, now: i64) -> Result<bool> {
        const SQL: &str =
            "INSERT INTO trigger_webhooks (tenant_id, trigger_id, body, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, 'pending', 0, $4, $4) ON CONFLICT (tenant_id, trigger_id) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(trigger_id).bind(body).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Claims due deliveries (`pending` → `sending`), oldest first.
    pub async fn claim_due_trigger_webhooks(&mut self, now: i64, limit: i64) -> Result<Vec<TriggerWebhookRow>> {
        const SELECT: &str = "SELECT trigger_id, body, status, attempts, next_attempt_at, last_result FROM trigger_webhooks
             WHERE tenant_id = $1 AND status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, trigger_id LIMIT $3";
        const CLAIM: &str = "UPDATE trigger_webhooks SET status = 'sending' WHERE tenant_id = $1 AND trigger_id = $2 AND status = 'pending'";
        let t = self.tenant_str.clone();
        let rows: Vec<(String, String, String, i64, i64, Option<String>)> =
            on_conn!(self, c => sqlx::query_as(SELECT).bind(&t).bind(now).bind(limit).fetch_all(c).await)?;
        let mut claimed = Vec::new();
        for (trigger_id, body, status, attempts, next_attempt_at, last_result) in rows {
            let n = on_conn!(self, c => sqlx::query(CLAIM).bind(&t).bind(&trigger_id).execute(c).await.map(|r| r.rows_affected()))?;
            if n == 1 {
                claimed.push(TriggerWebhookRow { trigger_id, body, status, attempts, next_attempt_at, last_result });
            }
        }
        Ok(claimed)
    }

    /// Records an attempt: `delivered`, back to `pending` at `next_attempt_at`, or `failed`.
    pub async fn finish_trigger_webhook(
        &mut self,
        trigger_id: &str,
        status: &str,
        next_attempt_at: i64,
        result: &str,
        now: i64,
    ) -> Result<()> {
        const SQL: &str = "UPDATE trigger_webhooks SET status = $3, attempts = attempts + 1, next_attempt_at = $4,
             last_result = $5, delivered_at = CASE WHEN $3 = 'delivered' THEN $6 ELSE delivered_at END
             WHERE tenant_id = $1 AND trigger_id = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(trigger_id).bind(status).bind(next_attempt_at)
            .bind(result).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Every delivery of the tenant, newest first (for staff and tests).
    pub async fn trigger_webhooks(&mut self, limit: i64) -> Result<Vec<TriggerWebhookRow>> {
        const SQL: &str =
            "SELECT trigger_id, body, status, attempts, next_attempt_at, last_result FROM trigger_webhooks
             WHERE tenant_id = $1 ORDER BY created_at DESC, trigger_id LIMIT $2";
        let t = self.tenant_str.clone();
        let rows: Vec<(String, String, String, i64, i64, Option<String>)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(limit).fetch_all(c).await)?;
        Ok(rows
            .into_iter()
            .map(|(trigger_id, body, status, attempts, next_attempt_at, last_result)| TriggerWebhookRow {
                trigger_id,
                body,
                status,
                attempts,
                next_attempt_at,
                last_result,
            })
            .collect())
    }

    /// What was done with a trigger already, if it was carried out before.
    pub async fn trigger_outcome(&mut self, id: &str) -> Result<Option<String>> {
        const SQL: &str = "SELECT outcome FROM insight_triggers WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let row: Option<(String,)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id).fetch_optional(c).await)?;
        Ok(row.map(|(o,)| o))
    }

    /// Records a trigger as carried out. False if it already was (then nothing is written).
    pub async fn record_trigger(
        &mut self,
        id: &str,
        action_kind: &str,
        outcome: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        const SQL: &str = "INSERT INTO insight_triggers (tenant_id, id, action_kind, outcome, message_id, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, id) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id).bind(action_kind).bind(outcome)
            .bind(message_id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The client ids of the tenant (to find the one behind a pseudonym).
    pub async fn client_id_strings(&mut self) -> Result<Vec<String>> {
        self.ids_of("SELECT id FROM clients WHERE tenant_id = $1").await
    }

    /// Every id a pseudonym of this tenant can be minted from.
    pub async fn pseudonym_sources(&mut self) -> Result<PseudonymSources> {
        Ok(PseudonymSources {
            clients: self.ids_of("SELECT id FROM clients WHERE tenant_id = $1").await?,
            providers: self.ids_of("SELECT id FROM providers WHERE tenant_id = $1").await?,
            plans: self.ids_of("SELECT id FROM client_plans WHERE tenant_id = $1").await?,
            appointments: self.ids_of("SELECT id FROM appointments WHERE tenant_id = $1").await?,
            locations: self.ids_of("SELECT id FROM locations WHERE tenant_id = $1").await?,
        })
    }

    async fn ids_of(&mut self, sql: &'static str) -> Result<Vec<String>> {
        let t = self.tenant_str.clone();
        let rows: Vec<(String,)> = on_conn!(self, c => sqlx::query_as(sql).bind(&t).fetch_all(c).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Rewrites the bodies of undelivered Insight events (`rewrite` returns the new body, or
    /// `None` when unchanged). Returns how many changed.
    pub async fn rewrite_pending_insight_events(
        &mut self,
        rewrite: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<u64> {
        let pending = self.pending_insight_events(i64::MAX).await?;
        let t = self.tenant_str.clone();
        let mut n = 0;
        for (id, body) in pending {
            if let Some(new) = rewrite(&body) {
                on_conn!(self, c => sqlx::query("UPDATE insight_outbox SET body = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(&t).bind(&id).bind(&new).execute(c).await.map(|r| r.rows_affected()))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
