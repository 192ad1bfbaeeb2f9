//! The keyring: tenants' data keys and the audit-chain key, unwrapped on demand from the
//! keystore with the master key(s). Rotation of a tenant key, rotation of the master key, and
//! shredding of a deleted tenant's keys happen here.
//!
//! Unwrapped tenant keys are cached for at most [`KEY_CACHE_TTL`] (one second). `lacuna keys rotate`
//! runs in another process: a server holding a stale key list could encrypt new data under a
//! version the rotation is about to destroy. The rotation waits [`crate::rotation::ROTATION_GRACE`]
//! (three seconds, longer than the cache lives) before its final re-encryption sweep and only then
//! destroys old versions, so whatever a stale cache sealed is swept up first. Shredding a tenant
//! drops its entries here at once.

use crate::AccountError;
use lacuna_crypto::{AuditKey, DataKey, DataKeyRing, MasterKeys};
use lacuna_domain::TenantId;
use lacuna_storage::keystore::Keystore;
use lacuna_storage::now_unix;
use std::sync::Arc;

const AUDIT_SCOPE: &str = "audit";

/// Every purpose a tenant keyed-hash key may have; all are shredded with the tenant.
pub const TENANT_HMAC_PURPOSES: &[&str] = &["blind-index", "pseudonym"];

fn tenant_scope(t: TenantId) -> String {
    format!("tenant:{t}")
}

fn crypto(e: impl std::fmt::Display) -> AccountError {
    AccountError::Crypto(e.to_string())
}

pub struct Keyring {
    masters: MasterKeys,
    keystore: Keystore,
    audit: AuditKey,
    rings: KeyCache<Arc<DataKeyRing>>,
    hmac_keys: KeyCache<Arc<zeroize::Zeroizing<[u8; 32]>>>,
}

/// How long an unwrapped key stays cached (must stay below the rotation grace period).
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A tiny time-bounded cache of unwrapped keys by scope.
struct KeyCache<T: Clone>(std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, T)>>);

impl<T: Clone> KeyCache<T> {
    fn new() -> Self {
        Self(std::sync::Mutex::new(std::collections::HashMap::new()))
    }
    fn get(&self, scope: &str) -> Option<T> {
        let map = self.0.lock().ok()?;
        map.get(scope).filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL).map(|(_, v)| v.clone())
    }
    fn put(&self, scope: String, value: T) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
            }
            map.insert(scope, (std::time::Instant::now(), value));
        }
    }
    fn forget_prefix(&self, prefix: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|k, _| !k.starts_with(prefix));
        }
    }
}

impl Keyring {
    /// Opens the keyring; creates the audit-chain key on first use.
    pub async fn open(masters: MasterKeys, keystore: Keystore) -> Result<Self, AccountError> {
        let audit = match keystore.keys(AUDIT_SCOPE).await?.last() {
            Some(k) => AuditKey::from_bytes(*masters.unwrap(AUDIT_SCOPE, &k.wrapped).map_err(crypto)?),
            None => {
                let key = AuditKey::generate();
                keystore.put(AUDIT_SCOPE, 1, &masters.wrap(AUDIT_SCOPE, key.expose()), now_unix()).await?;
                key
            }
        };
        Ok(Self { masters, keystore, audit, rings: KeyCache::new(), hmac_keys: KeyCache::new() })
    }

    pub fn audit_key(&self) -> &AuditKey {
        &self.audit
    }

    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// Creates a new tenant's first data key.
    pub async fn create_tenant_key(&self, tenant: TenantId) -> Result<(), AccountError> {
        let key = DataKey::generate(1);
        let scope = tenant_scope(tenant);
        self.keystore.put(&scope, 1, &self.masters.wrap_data_key(&scope, &key), now_unix()).await?;
        Ok(())
    }

    /// The tenant's live data-key versions, read now.
    pub async fn tenant(&self, tenant: TenantId) -> Result<Arc<DataKeyRing>, AccountError> {
        let scope = tenant_scope(tenant);
        if let Some(ring) = self.rings.get(&scope) {
            return Ok(ring);
        }
        let ring = self.tenant_uncached(&scope).await?;
        self.rings.put(scope, ring.clone());
        Ok(ring)
    }

    async fn tenant_uncached(&self, scope: &str) -> Result<Arc<DataKeyRing>, AccountError> {
        let scope = scope.to_string();
        let stored = self.keystore.keys(&scope).await?;
        let keys = stored
            .iter()
            .map(|k| self.masters.unwrap_data_key(&scope, k.version, &k.wrapped))
            .collect::<Result<Vec<_>, _>>()
            .map_err(crypto)?;
        Ok(Arc::new(DataKeyRing::new(keys).ok_or_else(|| crypto("the tenant has no data key (shredded?)"))?))
    }

    /// Adds a new newest version of the tenant's key; returns its version. Old versions stay
    /// readable until [`Keyring::retire_old_tenant_keys`].
    pub async fn add_tenant_key_version(&self, tenant: TenantId) -> Result<u32, AccountError> {
        self.rings.forget_prefix(&tenant_scope(tenant));
        let ring = self.tenant(tenant).await?;
        let version = ring.newest().version() + 1;
        let key = DataKey::generate(version);
        let scope = tenant_scope(tenant);
        self.keystore.put(&scope, version, &self.masters.wrap_data_key(&scope, &key), now_unix()).await?;
        self.rings.forget_prefix(&scope);
        Ok(version)
    }

    pub async fn retire_old_tenant_keys(&self, tenant: TenantId, keep_from: u32) -> Result<u64, AccountError> {
        let n = self.keystore.retire_below(&tenant_scope(tenant), keep_from).await?;
        self.rings.forget_prefix(&tenant_scope(tenant));
        Ok(n)
    }

    /// Re-wraps every key not yet under the current master. Returns how many.
    pub async fn rewrap_all(&self) -> Result<usize, AccountError> {
        let mut n = 0;
        for k in self.keystore.all().await? {
            if self.masters.is_current(&k.wrapped) {
                continue;
            }
            let secret = self.masters.unwrap(&k.scope, &k.wrapped).map_err(crypto)?;
            self.keystore.rewrap(&k.scope, k.version, &self.masters.wrap(&k.scope, &secret)).await?;
            n += 1;
        }
        Ok(n)
    }

    /// A tenant's keyed-hash key for one purpose (e.g. `blind-index`), created on first use and
    /// kept wrapped in the keystore beside the data key. It does not rotate with the data key
    /// (blind indexes must stay comparable), and it is shredded with the tenant.
    pub async fn tenant_hmac_key(
        &self,
        tenant: TenantId,
        purpose: &str,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, AccountError> {
        let scope = format!("{}:{purpose}", tenant_scope(tenant));
        if let Some(key) = self.hmac_keys.get(&scope) {
            return Ok(zeroize::Zeroizing::new(**key));
        }
        let key = self.tenant_hmac_key_uncached(tenant, &scope).await?;
        self.hmac_keys.put(scope, Arc::new(zeroize::Zeroizing::new(*key)));
        Ok(key)
    }

    /// Rotates a tenant's keyed-hash key for `purpose` (e.g. `pseudonym`): a new version becomes
    /// current at once in this process (other processes see it within [`KEY_CACHE_TTL`]); the old
    /// one stays until [`Self::retire_old_tenant_hmac_keys`]. Returns `(old, new)`.
    pub async fn rotate_tenant_hmac_key(
        &self,
        tenant: TenantId,
        purpose: &str,
    ) -> Result<(zeroize::Zeroizing<[u8; 32]>, zeroize::Zeroizing<[u8; 32]>), AccountError> {
        let old = self.tenant_hmac_key(tenant, purpose).await?;
        let scope = format!("{}:{purpose}", tenant_scope(tenant));
        let version = self.keystore.keys(&scope).await?.last().map_or(1, |k| k.version) + 1;
        let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, fresh.as_mut());
        self.keystore.put(&scope, version, &self.masters.wrap(&scope, &fresh), now_unix()).await?;
        self.hmac_keys.forget_prefix(&scope);
        Ok((old, fresh))
    }

    /// Destroys every version of a tenant's keyed-hash key for `purpose` but the current one:
    /// what was minted under them can no longer be recomputed by anyone. Returns versions removed.
    pub async fn retire_old_tenant_hmac_keys(&self, tenant: TenantId, purpose: &str) -> Result<u64, AccountError> {
        let scope = format!("{}:{purpose}", tenant_scope(tenant));
        match self.keystore.keys(&scope).await?.last() {
            Some(current) => Ok(self.keystore.retire_below(&scope, current.version).await?),
            None => Ok(0),
        }
    }

    async fn tenant_hmac_key_uncached(
        &self,
        tenant: TenantId,
        scope: &str,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, AccountError> {
        let scope = scope.to_string();
        for _ in 0..3 {
            if let Some(k) = self.keystore.keys(&scope).await?.last() {
                return self.masters.unwrap(&scope, &k.wrapped).map_err(crypto);
            }
            if self.is_shredded(tenant).await? {
                return Err(crypto("the tenant's keys were shredded"));
            }
            let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, fresh.as_mut());
            match self.keystore.put(&scope, 1, &self.masters.wrap(&scope, &fresh), now_unix()).await {
                Ok(()) => return Ok(fresh),
                // Another request created it first: read theirs.
                Err(lacuna_storage::StorageError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(crypto("could not create the tenant's keyed-hash key"))
    }

    /// Destroys every version of the tenant's data key (and its keyed-hash keys) and records a
    /// tombstone (HMAC'd with the audit key so it cannot be forged). Irreversible by design.
    pub async fn shred_tenant(&self, tenant: TenantId) -> Result<u64, AccountError> {
        let scope = tenant_scope(tenant);
        self.rings.forget_prefix(&scope);
        self.hmac_keys.forget_prefix(&scope);
        let now = now_unix();
        let mut n = 0;
        for purpose in TENANT_HMAC_PURPOSES {
            let sub = format!("{scope}:{purpose}");
            let mac = self.audit.mac(format!("lacuna shred v1|{sub}|{now}").as_bytes());
            n += self.keystore.shred(&sub, now, &mac).await?;
        }
        let mac = self.audit.mac(format!("lacuna shred v1|{scope}|{now}").as_bytes());
        Ok(n + self.keystore.shred(&scope, now, &mac).await?)
    }

    /// Whether a tombstone for this tenant exists and is genuine.
    pub async fn is_shredded(&self, tenant: TenantId) -> Result<bool, AccountError> {
        let scope = tenant_scope(tenant);
        Ok(match self.keystore.tombstone(&scope).await? {
            Some((at, mac)) => self.audit.mac(format!("lacuna shred v1|{scope}|{at}").as_bytes()).as_slice() == mac,
            None => false,
        })
    }
}

impl crate::Accounts {
    pub fn keyring(&self) -> &Keyring {
        &self.keys
    }
}

impl crate::Accounts {
    /// The same services over another store (e.g. a restore rehearsal's scratch database).
    pub fn with_store(&self, store: lacuna_storage::Store) -> crate::Accounts {
        crate::Accounts::new(store, self.keys.clone(), self.hasher.clone(), (*self.config).clone())
    }

    /// Wraps a backup's key under the current master key.
    pub fn wrap_backup_key(&self, backup_id: &str, key: &[u8; 32]) -> Vec<u8> {
        self.keys.masters().wrap(&format!("backup:{backup_id}"), key)
    }

    pub fn unwrap_backup_key(
        &self,
        backup_id: &str,
        wrapped: &[u8],
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, AccountError> {
        self.keys.masters().unwrap(&format!("backup:{backup_id}"), wrapped).map_err(crypto)
    }

    pub fn master_fingerprint(&self) -> String {
        self.keys.masters().current().fingerprint()
    }
}

impl Keyring {
    pub(crate) fn masters(&self) -> &MasterKeys {
        &self.masters
    }
}
