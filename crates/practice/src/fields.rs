//! Sealing personal fields: AES-256-GCM under the tenant's newest data key, bound to tenant,
//! table, column and row; and keyed blind indexes (HMAC-SHA256) for exact lookups.

use crate::{PracticeError, Result};
use hmac::{Hmac, Mac};
use lacuna_accounts::Keyring;
use lacuna_crypto::DataKeyRing;
use lacuna_domain::TenantId;
use lacuna_storage::practice::field_context;
use sha2::Sha256;
use std::sync::Arc;
use zeroize::Zeroizing;

/// One tenant's keys, loaded for the duration of a request.
pub struct TenantKeys {
    tenant: TenantId,
    ring: Arc<DataKeyRing>,
    index: Zeroizing<[u8; 32]>,
}

impl TenantKeys {
    pub(crate) async fn load(keyring: &Keyring, tenant: TenantId) -> Result<Self> {
        Ok(Self {
            tenant,
            ring: keyring.tenant(tenant).await?,
            index: keyring.tenant_hmac_key(tenant, "blind-index").await?,
        })
    }

    /// Encrypts a field value of row `row_id` in `table.column`.
    pub fn seal(&self, table: &str, column: &str, row_id: &str, plain: &str) -> Vec<u8> {
        self.ring.encrypt(&field_context(&self.tenant, table, column, row_id), plain.as_bytes())
    }

    pub fn seal_opt(&self, table: &str, column: &str, row_id: &str, plain: Option<&str>) -> Option<Vec<u8>> {
        plain.map(|p| self.seal(table, column, row_id, p))
    }

    /// Decrypts a field value; a value sealed for another row, column or tenant fails.
    pub fn open(&self, table: &str, column: &str, row_id: &str, ct: &[u8]) -> Result<String> {
        let plain = Zeroizing::new(
            self.ring
                .decrypt(&field_context(&self.tenant, table, column, row_id), ct)
                .map_err(|e| PracticeError::Crypto(e.to_string()))?,
        );
        String::from_utf8(plain.to_vec()).map_err(|_| PracticeError::Crypto("a sealed field is not UTF-8".into()))
    }

    pub fn open_opt(&self, table: &str, column: &str, row_id: &str, ct: Option<&[u8]>) -> Result<Option<String>> {
        ct.map(|c| self.open(table, column, row_id, c)).transpose()
    }

    /// Keyed blind index of a normalised value, domain-separated by `kind` (e.g. `email`).
    pub fn blind_index(&self, kind: &str, normalised: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.index.as_ref()).expect("HMAC takes any key length");
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}
