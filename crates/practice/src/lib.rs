//! Practice: the system of record a spa, salon or medspa runs on every day. Clients (personal
//! fields encrypted with the tenant's data key, blind-indexed for exact lookup), the catalogue,
//! booking, memberships and packages, payments (processor tokens only), the message outbox and
//! exports. The rules live here; HTTP and SQL do not.
//!
//! Every operation takes the acting [`Principal`], checks its permission (the HTTP layer checks
//! too: two locks on one door), and works through the tenant-scoped handle of `lacuna-storage`
//! inside one transaction, so a refused request leaves nothing half-written.

mod error;
mod fields;

pub mod availability;
pub mod booking;
pub mod catalog;
pub mod clients;
pub mod exports;
pub mod insight_feed;
pub mod messages;
pub mod notes_guard;
pub mod payments;
pub mod plans;
pub mod search;
pub mod triggers;
pub mod webhooks;

pub use error::PracticeError;
pub use fields::TenantKeys;

use lacuna_accounts::{Accounts, Principal};
use lacuna_domain::{Permission, TenantId};
use lacuna_storage::{Store, TenantTx};

pub type Result<T, E = PracticeError> = std::result::Result<T, E>;

/// The practice service. Cheap to clone.
#[derive(Clone)]
pub struct Practice {
    accounts: Accounts,
    store: Store,
}

impl Practice {
    pub fn new(accounts: Accounts) -> Self {
        let store = accounts.store().clone();
        Self { accounts, store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The tenant's keys for sealing and blind-indexing personal fields, read now.
    pub async fn keys(&self, tenant: TenantId) -> Result<TenantKeys> {
        TenantKeys::load(self.accounts.keyring(), tenant).await
    }

    /// Checks the permission and opens a write transaction on the principal's tenant.
    pub(crate) async fn write(&self, p: &Principal, perm: Permission) -> Result<TenantTx> {
        p.require(perm)?;
        Ok(self.store.tenant(p.tenant).write().await?)
    }

    /// Checks the permission and opens a read transaction on the principal's tenant.
    pub(crate) async fn read(&self, p: &Principal, perm: Permission) -> Result<TenantTx> {
        p.require(perm)?;
        Ok(self.store.tenant(p.tenant).read().await?)
    }

    /// Appends an audit event in the same transaction as the change it records.
    pub(crate) async fn audit(
        &self,
        tx: &mut TenantTx,
        p: &Principal,
        action: &str,
        target: Option<String>,
        scope: serde_json::Value,
    ) -> Result<()> {
        tx.append_audit(self.accounts.keyring().audit_key(), &p.audit(action, target, scope)).await?;
        Ok(())
    }
}
