//! Reading and verifying the audit trail.

use crate::{AccountError, Accounts, Principal};
use lacuna_domain::{Permission, TenantId};
use lacuna_storage::audit::{AuditEvent, AuditFilter, BrokenLink, ChainVerifier};

/// The result of verifying one tenant's chain.
#[derive(Debug, Clone)]
pub struct ChainReport {
    pub tenant: TenantId,
    pub events: u64,
    pub broken: Option<BrokenLink>,
}

const PAGE: i64 = 10_000;

impl Accounts {
    pub async fn audit_events(&self, p: &Principal, mut filter: AuditFilter) -> Result<Vec<AuditEvent>, AccountError> {
        p.require(Permission::AuditRead)?;
        filter.limit = filter.limit.clamp(1, 1000);
        let mut tx = self.store.tenant(p.tenant).read().await?;
        Ok(tx.audit_events(&filter).await?)
    }

    /// The whole trail in chain order, a page at a time (for exports).
    pub async fn audit_page(&self, p: &Principal, after_seq: i64) -> Result<Vec<AuditEvent>, AccountError> {
        p.require(Permission::AuditRead)?;
        let mut tx = self.store.tenant(p.tenant).read().await?;
        Ok(tx.audit_chain_page(after_seq, PAGE).await?)
    }

    /// Verifies one tenant's chain from the first event to the recorded head.
    pub async fn verify_audit_chain(&self, tenant: TenantId) -> Result<ChainReport, AccountError> {
        let t = tenant.to_string();
        let mut verifier = ChainVerifier::new(&self.audit_key, &t);
        let mut after = 0;
        loop {
            let mut tx = self.store.tenant(tenant).read().await?;
            let page = tx.audit_chain_page(after, PAGE).await?;
            drop(tx);
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                if let Err(b) = verifier.feed(e) {
                    return Ok(ChainReport { tenant, events: verifier.verified, broken: Some(b) });
                }
            }
        }
        let head = self.store.tenant(tenant).read().await?.audit_head().await?;
        let broken = verifier.finish(head).err();
        Ok(ChainReport { tenant, events: verifier.verified, broken })
    }

    /// Verifies every tenant's chain; `progress(done, total)` after each tenant.
    pub async fn verify_all_audit_chains(
        &self,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<ChainReport>, AccountError> {
        let tenants = self.store.tenant_ids().await?;
        let mut out = Vec::with_capacity(tenants.len());
        for (i, t) in tenants.iter().enumerate() {
            out.push(self.verify_audit_chain(*t).await?);
            progress(i + 1, tenants.len());
        }
        Ok(out)
    }
}
