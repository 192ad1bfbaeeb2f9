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

    /// Queues an event under an id that names the change it describes (a plan's renewal for one
    /// period, say); a second call with the same id queues nothing. Returns whether it was new.
    pub async fn enqueue_insight_event_once(&mut self, id: &str, body: &str, now: i64) -> Result<bool> {
        const SQL: &str = "INSERT INTO insight_outbox (tenant_id, id, body, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, id) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id).bind(body).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Whether an event with this outbox id was ever queued (delivered or not).
    pub async fn insight_event_queued(&mut self, id: &str) -> Result<bool> {
        const SQL: &str = "SELECT COUNT(*) FROM insight_outbox WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id).fetch_one(c).await)?;
        Ok(n > 0)
    }
}
