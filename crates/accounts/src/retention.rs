//! Retention: cancelling a practice, deleting it after 90 days (crypto-shredding its keys), and
//! replaying shred tombstones over data an old backup brought back.

use crate::{AccountError, Accounts, Principal};
use lacuna_domain::{Permission, TenantId};
use lacuna_storage::audit::NewAuditEvent;
use lacuna_storage::now_unix;
use serde_json::json;

/// After cancellation, sign-in keeps working (for exports) this long; then the tenant is deleted.
pub const CANCELLED_RETENTION_DAYS: i64 = 90;

impl Accounts {
    /// An owner cancels the practice. Sign-in keeps working for exports; changes are refused.
    pub async fn cancel_tenant(&self, p: &Principal) -> Result<i64, AccountError> {
        p.require(Permission::TenantSettings)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        tx.set_cancelled(Some(now), now).await?;
        let delete_after = now + CANCELLED_RETENTION_DAYS * 86_400;
        let scope = json!({"delete_after": delete_after});
        tx.append_audit(&self.audit_key, &p.audit("tenant.cancel", None, scope)).await?;
        tx.commit().await?;
        Ok(delete_after)
    }

    /// Undoes a cancellation within the retention period.
    pub async fn reactivate_tenant(&self, p: &Principal) -> Result<(), AccountError> {
        p.require(Permission::TenantSettings)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        tx.set_cancelled(None, now).await?;
        tx.append_audit(&self.audit_key, &p.audit("tenant.reactivate", None, json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a tenant: first its keys are destroyed (so every copy of its encrypted data, in
    /// every backup, becomes unreadable), then its data rows go. The audit chain stays and records
    /// the deletion.
    pub async fn delete_tenant(&self, tenant: TenantId, actor: &str) -> Result<u64, AccountError> {
        let keys = self.keys.shred_tenant(tenant).await?;
        let now = now_unix();
        let mut tx = self.store.tenant(tenant).write().await?;
        let rows = tx.purge_tenant_data(now).await?;
        let event = NewAuditEvent {
            occurred_at: now,
            actor: actor.to_string(),
            action: "tenant.delete".into(),
            scope: json!({"keys_destroyed": keys, "rows_removed": rows}).to_string(),
            ..Default::default()
        };
        tx.append_audit(&self.audit_key, &event).await?;
        tx.commit().await?;
        tracing::warn!(tenant = %tenant, keys, rows, "tenant deleted; its keys are destroyed");
        Ok(rows)
    }

    /// Deletes tenants whose cancellation is older than the retention period. Returns them.
    pub async fn delete_expired_tenants(&self, now: i64) -> Result<Vec<TenantId>, AccountError> {
        let cutoff = now - CANCELLED_RETENTION_DAYS * 86_400;
        let mut deleted = Vec::new();
        for t in self.store.tenant_ids().await? {
            let status = self.store.tenant(t).read().await?.tenant_status().await?;
            if let Some(s) = status
                && s.deleted_at.is_none()
                && s.cancelled_at.is_some_and(|c| c <= cutoff)
            {
                self.delete_tenant(t, "system:retention").await?;
                deleted.push(t);
            }
        }
        Ok(deleted)
    }

    /// Re-applies every genuine shred tombstone: a tenant whose keys were destroyed but whose data
    /// is present (an old backup restored) has that data removed again. Returns those tenants.
    pub async fn replay_tombstones(&self) -> Result<Vec<TenantId>, AccountError> {
        let mut replayed = Vec::new();
        for t in self.store.tenant_ids().await? {
            if !self.keys.is_shredded(t).await? {
                continue;
            }
            let mut tx = self.store.tenant(t).write().await?;
            if tx.has_tenant_data().await? {
                let rows = tx.purge_tenant_data(now_unix()).await?;
                let event = NewAuditEvent {
                    occurred_at: now_unix(),
                    actor: "system:restore".into(),
                    action: "tenant.delete_replayed".into(),
                    scope: json!({"rows_removed": rows}).to_string(),
                    ..Default::default()
                };
                tx.append_audit(&self.audit_key, &event).await?;
                tx.commit().await?;
                replayed.push(t);
            }
        }
        Ok(replayed)
    }
}
