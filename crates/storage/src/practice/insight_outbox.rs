//! The Practice side of the Insight feed: pseudonymous events queued in the same transaction as
//! the change they describe, then handed to Insight's store by a job.

use crate::tx::on_conn;
use crate::{Result, TenantTx};

impl TenantTx {
    pub async fn enqueue_insight_event(&mut self, id: &str, body: &str, now: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO insight_outbox (tenant_id, id, body, created_at) VALUES ($1, $2, $3, $4)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id).bind(body).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Oldest undelivered events first: `(id, body)`.
    pub async fn pending_insight_events(&mut self, limit: i64) -> Result<Vec<(String, String)>> {
        const SQL: &str = "SELECT id, body FROM insight_outbox WHERE tenant_id = $1 AND delivered_at IS NULL
             ORDER BY created_at, id LIMIT $2";
        let t = self.tenant_str.clone();
        Ok(on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(limit).fetch_all(c).await)?)
    }

    pub async fn mark_insight_delivered(&mut self, ids: &[String], now: i64) -> Result<()> {
        const SQL: &str = "UPDATE insight_outbox SET delivered_at = $3 WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => {
            for id in ids {
                sqlx::query(SQL).bind(&t).bind(id).bind(now).execute(&mut *c).await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}
