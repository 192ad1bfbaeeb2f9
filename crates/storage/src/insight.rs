//! Insight's own store, apart from Practice data: on SQLite a database file of its own
//! (`insight.db`), on PostgreSQL the schema `insight`, reached through its own role
//! (`lacuna_insight`) that holds grants on that schema's tables and on nothing else — so the
//! database itself refuses Insight a read of `clients` or any other Practice table.
//!
//! Insight keeps only pseudonymous events (already through the PHI guard) as JSON text, and
//! counts of what the guard refused. Every call names its tenant; on PostgreSQL the transaction
//! also sets `app.tenant_id` and row-level security (FORCE) is the second wall here too.

use crate::{Result, StorageError, TenantId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};
use std::path::PathBuf;
use std::time::Duration;

pub const INSIGHT_SCHEMA: &str = "insight";

const TABLES_SQL: &str = "
CREATE TABLE IF NOT EXISTS events (
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    body        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX IF NOT EXISTS events_time ON events (tenant_id, occurred_at);
CREATE TABLE IF NOT EXISTS rejections (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);";

const TABLES: &[&str] = &["events", "rejections"];

#[derive(Debug, Clone)]
pub enum InsightStoreConfig {
    Sqlite { path: PathBuf },
    Postgres { owner_url: String, app_url: Option<String>, role: String },
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Insight's store. Cheap to clone.
#[derive(Clone)]
pub struct InsightStore {
    pool: std::sync::Arc<Pool>,
}

/// One pseudonymous event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub event_id: String,
    pub kind: String,
    pub occurred_at: i64,
    /// The event as JSON (the PHI guard's accepted form).
    pub body: String,
}

impl InsightStore {
    pub async fn open(config: &InsightStoreConfig) -> Result<Self> {
        let pool = match config {
            InsightStoreConfig::Sqlite { path } => {
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(crate::store::sqlite_options(path, SqliteSynchronous::Normal))
                    .await?;
                sqlx::raw_sql(TABLES_SQL).execute(&pool).await?;
                Pool::Sqlite(pool)
            }
            InsightStoreConfig::Postgres { owner_url, app_url, role } => {
                Pool::Postgres(open_postgres(owner_url, app_url.as_deref(), role).await?)
            }
        };
        Ok(Self { pool: std::sync::Arc::new(pool) })
    }

    /// Stores events not seen before (idempotent by event id). Returns how many were new.
    pub async fn append(&self, tenant: TenantId, events: &[StoredEvent], now: i64) -> Result<u64> {
        const SQL: &str = "INSERT INTO events (tenant_id, event_id, kind, occurred_at, body, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, event_id) DO NOTHING";
        let t = tenant.to_string();
        let mut n = 0;
        match &*self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                for e in events {
                    n += sqlx::query(SQL)
                        .bind(&t)
                        .bind(&e.event_id)
                        .bind(&e.kind)
                        .bind(e.occurred_at)
                        .bind(&e.body)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
            }
            Pool::Postgres(p) => {
                let mut tx = begin_pg(p, &t).await?;
                for e in events {
                    n += sqlx::query(SQL)
                        .bind(&t)
                        .bind(&e.event_id)
                        .bind(&e.kind)
                        .bind(e.occurred_at)
                        .bind(&e.body)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
            }
        }
        Ok(n)
    }

    /// The tenant's events, oldest first (a full recompute replays them).
    pub async fn events(&self, tenant: TenantId) -> Result<Vec<StoredEvent>> {
        const SQL: &str = "SELECT event_id, kind, occurred_at, body FROM events WHERE tenant_id = $1
             ORDER BY occurred_at, event_id";
        let t = tenant.to_string();
        let rows: Vec<(String, String, i64, String)> = match &*self.pool {
            Pool::Sqlite(p) => sqlx::query_as(SQL).bind(&t).fetch_all(p).await?,
            Pool::Postgres(p) => {
                let mut tx = begin_pg(p, &t).await?;
                let rows = sqlx::query_as(SQL).bind(&t).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        Ok(rows
            .into_iter()
            .map(|(event_id, kind, occurred_at, body)| StoredEvent { event_id, kind, occurred_at, body })
            .collect())
    }

    /// Counts one refusal of the PHI guard by the kind of identifier it looked like (never the value).
    pub async fn count_rejection(&self, tenant: TenantId, kind: &str) -> Result<()> {
        const SQL: &str = "INSERT INTO rejections (tenant_id, kind, count) VALUES ($1, $2, 1)
             ON CONFLICT (tenant_id, kind) DO UPDATE SET count = rejections.count + 1";
        let t = tenant.to_string();
        match &*self.pool {
            Pool::Sqlite(p) => sqlx::query(SQL).bind(&t).bind(kind).execute(p).await.map(|_| ())?,
            Pool::Postgres(p) => {
                let mut tx = begin_pg(p, &t).await?;
                sqlx::query(SQL).bind(&t).bind(kind).execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    pub async fn rejections(&self, tenant: TenantId) -> Result<Vec<(String, i64)>> {
        const SQL: &str = "SELECT kind, count FROM rejections WHERE tenant_id = $1 ORDER BY kind";
        let t = tenant.to_string();
        Ok(match &*self.pool {
            Pool::Sqlite(p) => sqlx::query_as(SQL).bind(&t).fetch_all(p).await?,
            Pool::Postgres(p) => {
                let mut tx = begin_pg(p, &t).await?;
                let rows = sqlx::query_as(SQL).bind(&t).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        })
    }

    pub async fn close(&self) {
        match &*self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

async fn begin_pg(pool: &PgPool, tenant: &str) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant).execute(&mut *tx).await?;
    Ok(tx)
}

/// Owner: creates the schema, its tables with forced row-level security, and the role with
/// grants on exactly those tables. Then connects as the role, with `search_path = insight`.
async fn open_postgres(owner_url: &str, app_url: Option<&str>, role: &str) -> Result<PgPool> {
    if !crate::store::valid_role_name(role) {
        return Err(StorageError::Setup("insight role name must match [a-z_][a-z0-9_]*".into()));
    }
    let owner_opts: PgConnectOptions = owner_url.parse()?;
    let owner = PgPoolOptions::new().max_connections(1).connect_with(owner_opts.clone()).await?;
    let mut setup = format!(
        "SELECT pg_advisory_xact_lock(7262687);
         CREATE SCHEMA IF NOT EXISTS {INSIGHT_SCHEMA};
         SET LOCAL search_path TO {INSIGHT_SCHEMA};
         {TABLES_SQL}
         DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
         END $$;
         REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
         GRANT USAGE ON SCHEMA {INSIGHT_SCHEMA} TO {role};"
    );
    for t in TABLES {
        setup.push_str(&format!(
            "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
             DROP POLICY IF EXISTS tenant_isolation ON {t};
             CREATE POLICY tenant_isolation ON {t}
                USING (tenant_id = current_setting('app.tenant_id', true))
                WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
             REVOKE ALL ON {t} FROM {role}; GRANT SELECT, INSERT, UPDATE ON {t} TO {role};"
        ));
    }
    // Several servers (or tests in other databases) may race to create the cluster-wide role.
    for attempt in 0..3 {
        let mut tx = owner.begin().await?;
        match sqlx::raw_sql(AssertSqlSafe(setup.clone())).execute(&mut *tx).await {
            Ok(_) => {
                tx.commit().await?;
                break;
            }
            Err(e) if attempt < 2 => {
                tracing::debug!(error = %e, "retrying insight schema setup");
                drop(tx);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    owner.close().await;

    let opts = match app_url {
        Some(url) => url.parse::<PgConnectOptions>()?,
        None => {
            let mut o = PgConnectOptions::new_without_pgpass()
                .host(owner_opts.get_host())
                .port(owner_opts.get_port())
                .username(role);
            if let Some(db) = owner_opts.get_database() {
                o = o.database(db);
            }
            o
        }
    }
    .options([("search_path", INSIGHT_SCHEMA)]);
    Ok(PgPoolOptions::new().max_connections(4).acquire_timeout(Duration::from_secs(15)).connect_with(opts).await?)
}
