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
            heads: self.store.audit_heads.clone(),
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
    /// Audit events appended in this transaction, chained and written by `commit`.
    pub(crate) pending_audit: Vec<(lacuna_crypto::AuditKey, crate::audit::NewAuditEvent)>,
    pub(crate) heads: std::sync::Arc<crate::audit::HeadCache>,
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

    /// Writes the pending audit events (last, holding the tenant's turn at the chain head) and
    /// commits. On any error nothing of the transaction is committed.
    pub async fn commit(mut self) -> Result<()> {
        let mut head_turn = None;
        if !self.pending_audit.is_empty() {
            let mut turn = self.heads.turn(self.tenant).await?;
            let cached = turn.take();
            let head = self.write_pending_audit(cached).await?;
            head_turn = Some((turn, head));
        }
        let TenantTx { tx, _turn, .. } = self;
        match tx {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        if let Some((mut turn, head)) = head_turn {
            *turn = head;
        }
        drop(_turn);
        Ok(())
    }
}
