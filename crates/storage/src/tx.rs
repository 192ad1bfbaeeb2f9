//! Tenant-scoped transactions: the only door to tenant data.

use crate::store::Pools;
use crate::{Result, Store, TenantId};

pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs the same query code against whichever backend the transaction is on. `$c` is bound to
/// the concrete connection (`&mut SqliteConnection` or `&mut PgConnection`).
macro_rules! on_conn {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.tx {
            $crate::tx::Tx::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::tx::Tx::Pg(t) => {
                let $c: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

/// A tenant bound to a store, ready to open transactions.
pub struct TenantScope<'a> {
    store: &'a Store,
    tenant: TenantId,
}

impl<'a> TenantScope<'a> {
    pub(crate) fn new(store: &'a Store, tenant: TenantId) -> Self {
        Self { store, tenant }
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so concurrent writers queue instead of failing mid-way.
    pub async fn write(self) -> Result<TenantTx> {
        self.begin(true).await
    }

    /// A transaction that only reads.
    pub async fn read(self) -> Result<TenantTx> {
        self.begin(false).await
    }

    async fn begin(self, write: bool) -> Result<TenantTx> {
        let tenant_str = self.tenant.to_string();
        let mut turn = None;
        let tx = match &*self.store.pools {
            Pools::Sqlite(pool) => {
                let t = if write {
                    turn = Some(self.store.sqlite_write_turn().await?);
                    pool.begin_with("BEGIN IMMEDIATE").await?
                } else {
                    pool.begin().await?
                };
                Tx::Sqlite(t)
            }
            Pools::Postgres(pool) => Tx::Pg(crate::store::begin_tenant_pg(pool, &tenant_str).await?),
        };
        Ok(TenantTx {
            tx,
            tenant: self.tenant,
            tenant_str,
            pending_audit: Vec::new(),
            store: self.store.clone(),
            _turn: turn,
        })
    }
}

/// One transaction on one tenant's data. Every query binds this tenant; dropping it without
/// [`TenantTx::commit`] rolls everything back, so a failed request leaves nothing half-written.
pub struct TenantTx {
    pub(crate) tx: Tx,
    tenant: TenantId,
    pub(crate) tenant_str: String,
    /// Audit events appended in this transaction, written unchained by `commit`.
    pub(crate) pending_audit: Vec<(lacuna_crypto::AuditKey, crate::audit::NewAuditEvent)>,
    /// For the chaining that follows a commit which wrote audit events.
    store: Store,
    /// SQLite writes: the write turn, released after the transaction (fields drop in order).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl TenantTx {
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// For the few statements whose dialects differ (e.g. `FOR UPDATE`).
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.tx, Tx::Pg(_))
    }

    /// Writes the pending audit events, unchained, as the transaction's last statements and
    /// commits; then has them chained (in the background: nothing of the practice waits at the
    /// chain's head while this transaction commits). On any error nothing is committed.
    pub async fn commit(mut self) -> Result<()> {
        let chain_key = if self.pending_audit.is_empty() { None } else { self.write_pending_audit().await? };
        let TenantTx { tx, _turn, store, tenant, .. } = self;
        match tx {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        drop(_turn);
        if let Some(key) = chain_key {
            store.chain_after_commit(tenant, key);
        }
        Ok(())
    }
}
