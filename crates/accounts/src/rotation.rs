//! Key rotation: a tenant's data key (re-encrypting that tenant's fields) and the master key
//! (re-wrapping every key). Both keep the service running: ciphertexts name the key version that
//! sealed them, so old and new versions are readable side by side until the switch completes.

use crate::{AccountError, Accounts};
use lacuna_domain::TenantId;
use lacuna_storage::audit::NewAuditEvent;
use lacuna_storage::now_unix;
use serde_json::json;

/// How long a rotation waits before its final sweep and the destruction of old key versions.
pub const ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// What a tenant-key rotation did.
#[derive(Debug, Clone)]
pub struct TenantRotation {
    pub tenant: TenantId,
    pub new_version: u32,
    pub reencrypted: usize,
    pub retired_versions: u64,
}

impl Accounts {
    /// Rotates one tenant's data key: adds a new version, re-encrypts every encrypted field of the
    /// tenant under it (in one transaction), then destroys the old versions. Audited.
    pub async fn rotate_tenant_key(&self, tenant: TenantId, actor: &str) -> Result<TenantRotation, AccountError> {
        let new_version = self.keys.add_tenant_key_version(tenant).await?;
        // Servers cache unwrapped keys for up to a second: let every cache that predates the new
        // version expire before any value is sealed under it, so no reader meets an unknown key.
        tokio::time::sleep(crate::keys::KEY_CACHE_TTL).await;
        let mut reencrypted = self.reencrypt_tenant(tenant).await?;
        // A request that read the key list just before the new version existed may still commit
        // a value under an old version: wait out such a window, then sweep once more.
        tokio::time::sleep(ROTATION_GRACE).await;
        reencrypted += self.reencrypt_tenant(tenant).await?;
        let mut tx = self.store.tenant(tenant).write().await?;
        let event = NewAuditEvent {
            occurred_at: now_unix(),
            actor: actor.to_string(),
            action: "keys.rotate_tenant".into(),
            scope: json!({"new_version": new_version, "fields_reencrypted": reencrypted}).to_string(),
            ..Default::default()
        };
        tx.append_audit(&self.audit_key, &event).await?;
        tx.commit().await?;
        // Only now, with every field under the new version, do the old versions go.
        let retired_versions = self.keys.retire_old_tenant_keys(tenant, new_version).await?;
        Ok(TenantRotation { tenant, new_version, reencrypted, retired_versions })
    }

    /// Re-encrypts every encrypted field of the tenant not yet under the newest key version,
    /// in one transaction. Returns how many fields changed.
    async fn reencrypt_tenant(&self, tenant: TenantId) -> Result<usize, AccountError> {
        let ring = self.keys.tenant(tenant).await?;
        let mut tx = self.store.tenant(tenant).write().await?;
        let mut n = 0;
        for (user, ct) in tx.mfa_secrets().await? {
            if ring.is_newest(&ct) {
                continue;
            }
            let context = crate::mfa::secret_context(tenant, user);
            let plain =
                zeroize::Zeroizing::new(ring.decrypt(&context, &ct).map_err(|e| AccountError::Crypto(e.to_string()))?);
            tx.set_mfa_secret(user, &ring.encrypt(&context, &plain)).await?;
            n += 1;
        }
        for &column in lacuna_storage::practice::ENCRYPTED_COLUMNS {
            for (row_id, ct) in tx.encrypted_values(column).await? {
                if ring.is_newest(&ct) {
                    continue;
                }
                let context = lacuna_storage::practice::field_context(&tenant, column.0, column.2, &row_id);
                let plain = zeroize::Zeroizing::new(
                    ring.decrypt(&context, &ct).map_err(|e| AccountError::Crypto(e.to_string()))?,
                );
                tx.replace_encrypted_value(column, &row_id, &ring.encrypt(&context, &plain)).await?;
                n += 1;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Re-wraps every key under the current master key (the previous one must still be loaded).
    pub async fn rewrap_keys_under_current_master(&self) -> Result<usize, AccountError> {
        self.keys.rewrap_all().await
    }
}
