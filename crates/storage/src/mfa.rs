//! MFA rows: the TOTP factor (secret stored only encrypted), recovery codes (stored only
//! hashed), the session's second-factor state and the tenant's policy.

use crate::tx::on_conn;
use crate::{Result, StorageError, TenantTx};
use lacuna_domain::{MfaPolicy, UserId};

/// A member's TOTP factor.
#[derive(Debug, Clone)]
pub struct MfaFactor {
    /// AES-256-GCM ciphertext under the tenant's data key.
    pub secret_ct: Vec<u8>,
    /// `None` while enrollment awaits its first code.
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
}

impl TenantTx {
    pub async fn mfa_policy(&mut self) -> Result<MfaPolicy> {
        const SQL: &str = "SELECT mfa_policy FROM tenants WHERE id = $1";
        let t = self.tenant_str.clone();
        let (p,): (String,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_one(c).await)?;
        MfaPolicy::parse(&p).ok_or_else(|| StorageError::Corrupt("tenants.mfa_policy".into()))
    }

    pub async fn set_mfa_policy(&mut self, policy: MfaPolicy, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE tenants SET mfa_policy = $2, updated_at = $3 WHERE id = $1";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(policy.name()).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn mfa_factor(&mut self, user: UserId) -> Result<Option<MfaFactor>> {
        const SQL: &str =
            "SELECT secret_ct, confirmed_at, last_step FROM mfa_factors WHERE tenant_id = $1 AND user_id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let row: Option<(Vec<u8>, Option<i64>, i64)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&id).fetch_optional(c).await)?;
        Ok(row.map(|(secret_ct, confirmed_at, last_step)| MfaFactor { secret_ct, confirmed_at, last_step }))
    }

    /// Starts (or restarts) an enrollment: an unconfirmed factor with a new secret.
    pub async fn put_pending_mfa_factor(&mut self, user: UserId, secret_ct: &[u8], now: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO mfa_factors (tenant_id, user_id, secret_ct, confirmed_at, last_step, created_at)
             VALUES ($1, $2, $3, NULL, 0, $4)
             ON CONFLICT (tenant_id, user_id) DO UPDATE
                SET secret_ct = excluded.secret_ct, confirmed_at = NULL, last_step = 0, created_at = excluded.created_at";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(secret_ct).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn confirm_mfa_factor(&mut self, user: UserId, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE mfa_factors SET confirmed_at = $3 WHERE tenant_id = $1 AND user_id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Accepts a TOTP time step once: false if this step (or a later one) was already used.
    pub async fn consume_totp_step(&mut self, user: UserId, step: i64) -> Result<bool> {
        const SQL: &str =
            "UPDATE mfa_factors SET last_step = $3 WHERE tenant_id = $1 AND user_id = $2 AND last_step < $3";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(step).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn delete_mfa(&mut self, user: UserId) -> Result<()> {
        const CODES: &str = "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2";
        const FACTOR: &str = "DELETE FROM mfa_factors WHERE tenant_id = $1 AND user_id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => {
            sqlx::query(CODES).bind(&t).bind(&id).execute(&mut *c).await?;
            sqlx::query(FACTOR).bind(&t).bind(&id).execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Replaces the member's recovery codes with these (hashes only).
    pub async fn put_recovery_codes(&mut self, user: UserId, hashes: &[Vec<u8>]) -> Result<()> {
        const CLEAR: &str = "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2";
        const SQL: &str =
            "INSERT INTO mfa_recovery_codes (tenant_id, user_id, code_hash, used_at) VALUES ($1, $2, $3, NULL)";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => {
            sqlx::query(CLEAR).bind(&t).bind(&id).execute(&mut *c).await?;
            for h in hashes {
                sqlx::query(SQL).bind(&t).bind(&id).bind(h).execute(&mut *c).await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Uses a recovery code once: false if unknown or already used.
    pub async fn use_recovery_code(&mut self, user: UserId, hash: &[u8], now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE mfa_recovery_codes SET used_at = $4
             WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 AND used_at IS NULL";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(hash).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn unused_recovery_codes(&mut self, user: UserId) -> Result<i64> {
        const SQL: &str =
            "SELECT COUNT(*) FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&id).fetch_one(c).await)?;
        Ok(n)
    }

    /// The session passed an MFA check now.
    pub async fn mark_session_mfa_verified(&mut self, token_hash: &[u8], now: i64) -> Result<()> {
        const SQL: &str = "UPDATE sessions SET mfa_pending = FALSE, mfa_verified_at = $3
             WHERE tenant_id = $1 AND token_hash = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(token_hash).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl TenantTx {
    /// Every encrypted TOTP secret of the tenant (for re-encryption under a new key version).
    pub async fn mfa_secrets(&mut self) -> Result<Vec<(UserId, Vec<u8>)>> {
        const SQL: &str = "SELECT user_id, secret_ct FROM mfa_factors WHERE tenant_id = $1";
        let t = self.tenant_str.clone();
        let rows: Vec<(String, Vec<u8>)> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter()
            .map(|(u, ct)| Ok((u.parse().map_err(|_| StorageError::Corrupt("mfa_factors.user_id".into()))?, ct)))
            .collect()
    }

    pub async fn set_mfa_secret(&mut self, user: UserId, secret_ct: &[u8]) -> Result<()> {
        const SQL: &str = "UPDATE mfa_factors SET secret_ct = $3 WHERE tenant_id = $1 AND user_id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(secret_ct).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
