//! Idempotency keys: the first response to a POST, kept (encrypted) for retries.

use crate::tx::on_conn;
use crate::{Result, TenantTx};

/// A key already seen.
#[derive(Debug, Clone)]
pub struct IdempotencyRow {
    pub fingerprint: Vec<u8>,
    /// `None` while the first request is still running.
    pub status_code: Option<i64>,
    pub response_ct: Option<Vec<u8>>,
}

impl TenantTx {
    /// Claims a key for a new request. Returns false if the key exists already (look it up).
    pub async fn claim_idempotency_key(
        &mut self,
        key: &str,
        actor: &str,
        fingerprint: &[u8],
        now: i64,
    ) -> Result<bool> {
        const SQL: &str = "INSERT INTO idempotency_keys (tenant_id, idem_key, actor, fingerprint, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, idem_key) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(key).bind(actor).bind(fingerprint).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn idempotency_key(&mut self, key: &str) -> Result<Option<IdempotencyRow>> {
        const SQL: &str =
            "SELECT fingerprint, status_code, response_ct FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2";
        let t = self.tenant_str.clone();
        type Row = (Vec<u8>, Option<i64>, Option<Vec<u8>>);
        let row: Option<Row> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(key).fetch_optional(c).await)?;
        Ok(row.map(|(fingerprint, status_code, response_ct)| IdempotencyRow { fingerprint, status_code, response_ct }))
    }

    /// Records the response of the request that claimed the key.
    pub async fn complete_idempotency_key(&mut self, key: &str, status: i64, response_ct: &[u8]) -> Result<()> {
        const SQL: &str =
            "UPDATE idempotency_keys SET status_code = $3, response_ct = $4 WHERE tenant_id = $1 AND idem_key = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(key).bind(status).bind(response_ct)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Frees a key whose request failed on the server side, so a retry runs again.
    pub async fn release_idempotency_key(&mut self, key: &str) -> Result<()> {
        const SQL: &str = "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(key).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Drops keys older than `before` (they are kept 24 hours).
    pub async fn purge_idempotency_keys(&mut self, before: i64) -> Result<u64> {
        const SQL: &str = "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2";
        let t = self.tenant_str.clone();
        Ok(on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(before).execute(c).await.map(|r| r.rows_affected()))?)
    }
}
