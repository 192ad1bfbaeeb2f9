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
        self.store.chain_audit(p.tenant, &self.audit_key).await?;
        let mut tx = self.store.tenant(p.tenant).read().await?;
        Ok(tx.audit_events(&filter).await?)
    }

    /// The whole trail in chain order, a page at a time (for exports).
    pub async fn audit_page(&self, p: &Principal, after_seq: i64) -> Result<Vec<AuditEvent>, AccountError> {
        p.require(Permission::AuditRead)?;
        if after_seq == 0 {
            self.store.chain_audit(p.tenant, &self.audit_key).await?;
        }
        let mut tx = self.store.tenant(p.tenant).read().await?;
        Ok(tx.audit_chain_page(after_seq, PAGE).await?)
    }

    /// Verifies one tenant's chain from the first event to the recorded head.
    pub async fn verify_audit_chain(&self, tenant: TenantId) -> Result<ChainReport, AccountError> {
        // Entries committed but not yet linked are chained first; any whose seal fails (written
        // or altered without the key) stays unchained and breaks the report.
        // If they cannot be linked at all (a row in the way, say), the chain is reported broken
        // rather than the verification failing.
        let unsealed = match self.store.chain_audit(tenant, &self.audit_key).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::error!(%tenant, error = %e, "unchained audit entries cannot be linked");
                None
            }
        };
        let t = tenant.to_string();
        let mut verifier = ChainVerifier::new(&self.audit_key, &t);
        // The next page is read while this one is verified (reading and hashing overlap).
        let (pages, mut incoming) = tokio::sync::mpsc::channel::<Result<Vec<AuditEvent>, AccountError>>(2);
        let store = self.store.clone();
        let reader = tokio::spawn(async move {
            let mut after = 0;
            loop {
                let page = async {
                    let mut tx = store.tenant(tenant).read().await?;
                    Ok::<_, AccountError>(tx.audit_chain_page(after, PAGE).await?)
                }
                .await;
                let done = match &page {
                    Ok(p) => match p.last() {
                        Some(last) => {
                            after = last.seq;
                            false
                        }
                        None => true,
                    },
                    Err(_) => true,
                };
                if pages.send(page).await.is_err() || done {
                    break;
                }
            }
        });
        while let Some(page) = incoming.recv().await {
            let page = page?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if let Err(b) = verifier.feed(e) {
                    reader.abort();
                    return Ok(ChainReport { tenant, events: verifier.verified, broken: Some(b) });
                }
            }
        }
        let head = self.store.tenant(tenant).read().await?.audit_head().await?;
        let pending = match unsealed {
            Some(0) => None,
            Some(_) => Some("an unchained entry fails its seal (forged or altered)"),
            None => Some("unchained entries cannot be linked into the chain"),
        };
        let broken = verifier
            .finish(head)
            .err()
            .or(pending.map(|reason| BrokenLink { seq: verifier.verified as i64 + 1, reason }));
        Ok(ChainReport { tenant, events: verifier.verified, broken })
    }

    /// Links every tenant's committed, unchained audit entries (run at server start: entries
    /// whose process stopped between their commit and their link). A tenant whose entries
    /// cannot be linked is logged and skipped.
    pub async fn chain_all_audit(&self) -> Result<(), AccountError> {
        for t in self.store.tenant_ids().await? {
            if let Err(e) = self.store.chain_audit(t, &self.audit_key).await {
                tracing::error!(tenant = %t, error = %e, "unchained audit entries cannot be linked");
            }
        }
        Ok(())
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

impl Accounts {
    /// The tenant's whole request log, oldest first (owners' export).
    pub async fn request_log(
        &self,
        p: &Principal,
    ) -> Result<Vec<lacuna_storage::request_log::RequestLogEntry>, AccountError> {
        p.require(Permission::AuditRead)?;
        let mut tx = self.store.tenant(p.tenant).read().await?;
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = tx.request_log_page(after.clone(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.occurred_at, last.request_id.clone()));
            out.extend(page);
        }
        Ok(out)
    }
}

impl Accounts {
    /// Facts about the caller's own practice for the trust page, each checked now.
    pub async fn practice_trust(&self, p: &Principal) -> Result<serde_json::Value, AccountError> {
        let chain = self.verify_audit_chain(p.tenant).await?;
        let now = lacuna_storage::now_unix();
        let mut tx = self.store.tenant(p.tenant).read().await?;
        let policy = tx.mfa_policy().await?;
        let key_ok = self.data_key(p.tenant).await.is_ok();
        let oldest = tx.request_log_oldest().await?;
        Ok(serde_json::json!({
            "mfa_policy": policy.name(),
            "data_key_unwraps_with_master_key": key_ok,
            "audit_chain_events_verified_now": chain.events,
            "audit_chain_intact": chain.broken.is_none(),
            "request_log_oldest_entry_days": oldest.map(|t| (now - t) / 86_400),
        }))
    }
}
