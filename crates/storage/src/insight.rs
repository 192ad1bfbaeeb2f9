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
use sqlx::sqlite::SqliteSynchronous;
use sqlx::{AssertSqlSafe, Connection, PgPool, SqliteConnection, SqlitePool};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const INSIGHT_SCHEMA: &str = "insight";
/// Insight's tables travel inside a SQLite backup snapshot under this prefix (`insight__events`…),
/// so one consistent, encrypted backup holds both stores.
pub const BACKUP_PREFIX: &str = "insight__";

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
CREATE INDEX IF NOT EXISTS events_received ON events (tenant_id, received_at);
CREATE TABLE IF NOT EXISTS rejections (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
CREATE TABLE IF NOT EXISTS policies (
    tenant_id   TEXT NOT NULL,
    action_kind TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, action_kind)
);
CREATE TABLE IF NOT EXISTS actions (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    gap_key     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    client      TEXT NOT NULL,
    gap         TEXT NOT NULL,
    value_minor BIGINT NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    decided_by  TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS actions_gap ON actions (tenant_id, gap_key, created_at);
CREATE INDEX IF NOT EXISTS actions_status ON actions (tenant_id, status, created_at);
CREATE TABLE IF NOT EXISTS triggers (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    action_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    client       TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT,
    outcome      TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS triggers_status ON triggers (tenant_id, status, created_at);";

const TABLES: &[&str] = &["events", "rejections", "policies", "actions", "triggers"];

#[derive(Debug, Clone)]
pub enum InsightStoreConfig {
    Sqlite { path: PathBuf },
    Postgres { owner_url: String, app_url: Option<String>, role: String },
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` in a transaction on either backend, written once: on PostgreSQL the transaction
/// first sets the tenant for row-level security; on SQLite a writing transaction takes the write
/// lock up front (`write`) and a reading one does not (`read`). An error rolls back.
macro_rules! in_tx {
    ($self:expr, $tenant:expr, $mode:ident, |$tx:ident| $body:block) => {{
        match &*$self.pool {
            Pool::Sqlite(p) => {
                #[allow(unused_mut)]
                let mut $tx = in_tx!(@sqlite p, $mode);
                let out = $body;
                $tx.commit().await?;
                out
            }
            Pool::Postgres(p) => {
                #[allow(unused_mut)]
                let mut $tx = crate::store::begin_tenant_pg(p, $tenant).await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    }};
    (@sqlite $p:ident, write) => { $p.begin_with("BEGIN IMMEDIATE").await? };
    (@sqlite $p:ident, read) => { $p.begin().await? };
}

/// Inserts one trigger inside a transaction of either backend (idempotent by id).
macro_rules! insert_trigger {
    ($tx:ident, $tenant:expr, $tr:expr) => {{
        let tr: &TriggerRow = $tr;
        sqlx::query(
            "INSERT INTO triggers (tenant_id, id, action_id, kind, client, body, status, created_at, delivered_at, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, id) DO NOTHING",
        )
        .bind($tenant)
        .bind(&tr.id)
        .bind(&tr.action_id)
        .bind(&tr.kind)
        .bind(&tr.client)
        .bind(&tr.body)
        .bind(&tr.status)
        .bind(tr.created_at)
        .bind(tr.delivered_at)
        .bind(&tr.outcome)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// An action as stored (see `lacuna_insight::actions`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    pub id: String,
    pub gap_key: String,
    pub kind: String,
    pub client: String,
    /// The gap as JSON (pseudonyms, category, evidence, revenue, score).
    pub gap: String,
    pub value_minor: i64,
    pub score: f64,
    /// `proposed`, `approved` or `declined`.
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    /// `user:<id>` of who decided, or `policy` for an automatic approval.
    pub decided_by: Option<String>,
}

type ActionTuple = (String, String, String, String, String, i64, f64, String, i64, Option<i64>, Option<String>);

impl From<ActionTuple> for ActionRow {
    fn from(t: ActionTuple) -> Self {
        let (id, gap_key, kind, client, gap, value_minor, score, status, created_at, decided_at, decided_by) = t;
        Self { id, gap_key, kind, client, gap, value_minor, score, status, created_at, decided_at, decided_by }
    }
}

const ACTION_COLUMNS: &str =
    "id, gap_key, kind, client, gap, value_minor, score, status, created_at, decided_at, decided_by";

/// A trigger: an approved action on its way to the Practice side (or an external system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRow {
    pub id: String,
    pub action_id: String,
    pub kind: String,
    pub client: String,
    /// What the Practice side needs, as JSON (kind, pseudonym, category, slot; no personal data).
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    /// What the Practice side did with it (e.g. `queued`, `no_consent`, `unknown_client`).
    pub outcome: Option<String>,
}

type TriggerTuple = (String, String, String, String, String, String, i64, Option<i64>, Option<String>);

impl From<TriggerTuple> for TriggerRow {
    fn from(t: TriggerTuple) -> Self {
        let (id, action_id, kind, client, body, status, created_at, delivered_at, outcome) = t;
        Self { id, action_id, kind, client, body, status, created_at, delivered_at, outcome }
    }
}

const TRIGGER_COLUMNS: &str = "id, action_id, kind, client, body, status, created_at, delivered_at, outcome";

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
                let pool = crate::store::pool_options::<sqlx::Sqlite>()
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
        in_tx!(self, &t, write, |tx| {
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
        });
        Ok(n)
    }

    /// The tenant's events, oldest first (a full recompute replays them).
    pub async fn events(&self, tenant: TenantId) -> Result<Vec<StoredEvent>> {
        const SQL: &str = "SELECT event_id, kind, occurred_at, body FROM events WHERE tenant_id = $1
             ORDER BY occurred_at, event_id";
        let t = tenant.to_string();
        let rows: Vec<(String, String, i64, String)> =
            in_tx!(self, &t, read, |tx| { sqlx::query_as(SQL).bind(&t).fetch_all(&mut *tx).await? });
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
        in_tx!(self, &t, write, |tx| {
            sqlx::query(SQL).bind(&t).bind(kind).execute(&mut *tx).await?;
        });
        Ok(())
    }

    pub async fn rejections(&self, tenant: TenantId) -> Result<Vec<(String, i64)>> {
        const SQL: &str = "SELECT kind, count FROM rejections WHERE tenant_id = $1 ORDER BY kind";
        let t = tenant.to_string();
        Ok(in_tx!(self, &t, read, |tx| { sqlx::query_as(SQL).bind(&t).fetch_all(&mut *tx).await? }))
    }

    /// Events received at or after `since` (Unix seconds), oldest received first, each with when
    /// it was received: how a cached gap engine catches up with what other processes
    /// (the feed job, `lacuna demo`, the ingest API) stored.
    pub async fn events_received_since(&self, tenant: TenantId, since: i64) -> Result<Vec<(StoredEvent, i64)>> {
        const SQL: &str = "SELECT event_id, kind, occurred_at, body, received_at FROM events
             WHERE tenant_id = $1 AND received_at >= $2 ORDER BY received_at, occurred_at, event_id";
        let t = tenant.to_string();
        let rows: Vec<(String, String, i64, String, i64)> =
            in_tx!(self, &t, read, |tx| { sqlx::query_as(SQL).bind(&t).bind(since).fetch_all(&mut *tx).await? });
        Ok(rows
            .into_iter()
            .map(|(event_id, kind, occurred_at, body, received)| {
                (StoredEvent { event_id, kind, occurred_at, body }, received)
            })
            .collect())
    }

    /// The tenant's approval policies as stored: `(action kind, policy JSON)`.
    pub async fn policies(&self, tenant: TenantId) -> Result<Vec<(String, String)>> {
        const SQL: &str = "SELECT action_kind, body FROM policies WHERE tenant_id = $1 ORDER BY action_kind";
        let t = tenant.to_string();
        Ok(in_tx!(self, &t, read, |tx| { sqlx::query_as(SQL).bind(&t).fetch_all(&mut *tx).await? }))
    }

    /// Sets the policy for one action kind.
    pub async fn set_policy(&self, tenant: TenantId, kind: &str, body: &str, by: &str, now: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO policies (tenant_id, action_kind, body, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, action_kind) DO UPDATE
             SET body = excluded.body, updated_at = excluded.updated_at, updated_by = excluded.updated_by";
        let t = tenant.to_string();
        in_tx!(self, &t, write, |tx| {
            sqlx::query(SQL).bind(&t).bind(kind).bind(body).bind(now).bind(by).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// The newest action per gap key created at or after `since`, and every action still
    /// `proposed` whatever its age: `(gap key, status, created_at)`. What the proposer checks so
    /// that one gap is not proposed twice.
    pub async fn recent_action_keys(&self, tenant: TenantId, since: i64) -> Result<Vec<(String, String, i64)>> {
        const SQL: &str = "SELECT gap_key, status, created_at FROM actions
             WHERE tenant_id = $1 AND (created_at >= $2 OR status = 'proposed')";
        let t = tenant.to_string();
        Ok(in_tx!(self, &t, read, |tx| { sqlx::query_as(SQL).bind(&t).bind(since).fetch_all(&mut *tx).await? }))
    }

    /// How many actions of `kind` the policy approved by itself at or after `since`.
    pub async fn auto_approved_since(&self, tenant: TenantId, kind: &str, since: i64) -> Result<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM actions
             WHERE tenant_id = $1 AND kind = $2 AND decided_by = 'policy' AND decided_at >= $3";
        let t = tenant.to_string();
        let (n,): (i64,) = in_tx!(self, &t, read, |tx| {
            sqlx::query_as(SQL).bind(&t).bind(kind).bind(since).fetch_one(&mut *tx).await?
        });
        Ok(n)
    }

    /// Stores new actions and, for those approved already, their triggers — all or nothing.
    pub async fn insert_actions(&self, tenant: TenantId, actions: &[ActionRow], triggers: &[TriggerRow]) -> Result<()> {
        let t = tenant.to_string();
        let insert_action = format!(
            "INSERT INTO actions (tenant_id, {ACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        in_tx!(self, &t, write, |tx| {
            for a in actions {
                sqlx::query(AssertSqlSafe(insert_action.as_str()))
                    .bind(&t)
                    .bind(&a.id)
                    .bind(&a.gap_key)
                    .bind(&a.kind)
                    .bind(&a.client)
                    .bind(&a.gap)
                    .bind(a.value_minor)
                    .bind(a.score)
                    .bind(&a.status)
                    .bind(a.created_at)
                    .bind(a.decided_at)
                    .bind(&a.decided_by)
                    .execute(&mut *tx)
                    .await?;
            }
            for tr in triggers {
                insert_trigger!(tx, &t, tr);
            }
        });
        Ok(())
    }

    /// Actions, newest first, optionally only those with `status` and/or `kind`.
    pub async fn actions(
        &self,
        tenant: TenantId,
        status: Option<&str>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActionRow>> {
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM actions WHERE tenant_id = $1
             AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR kind = $3)
             ORDER BY created_at DESC, id LIMIT $4"
        );
        let t = tenant.to_string();
        let rows: Vec<ActionTuple> = in_tx!(self, &t, read, |tx| {
            sqlx::query_as(AssertSqlSafe(sql.as_str()))
                .bind(&t)
                .bind(status)
                .bind(kind)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One action.
    pub async fn action(&self, tenant: TenantId, id: &str) -> Result<Option<ActionRow>> {
        let sql = format!("SELECT {ACTION_COLUMNS} FROM actions WHERE tenant_id = $1 AND id = $2");
        let t = tenant.to_string();
        let row: Option<ActionTuple> = in_tx!(self, &t, read, |tx| {
            sqlx::query_as(AssertSqlSafe(sql.as_str())).bind(&t).bind(id).fetch_optional(&mut *tx).await?
        });
        Ok(row.map(Into::into))
    }

    /// Approves or declines a `proposed` action (and stores the trigger of an approval) in one
    /// transaction. False when the action was no longer `proposed` (someone decided first).
    pub async fn decide_action(
        &self,
        tenant: TenantId,
        id: &str,
        status: &str,
        by: &str,
        now: i64,
        trigger: Option<&TriggerRow>,
    ) -> Result<bool> {
        const SQL: &str = "UPDATE actions SET status = $3, decided_at = $4, decided_by = $5
             WHERE tenant_id = $1 AND id = $2 AND status = 'proposed'";
        let t = tenant.to_string();
        Ok(in_tx!(self, &t, write, |tx| {
            let n = sqlx::query(SQL).bind(&t).bind(id).bind(status).bind(now).bind(by).execute(&mut *tx).await?;
            let decided = n.rows_affected() == 1;
            if let (true, Some(tr)) = (decided, trigger) {
                insert_trigger!(tx, &t, tr);
            }
            decided
        }))
    }

    /// Triggers with `status`, oldest first.
    pub async fn triggers(&self, tenant: TenantId, status: Option<&str>, limit: i64) -> Result<Vec<TriggerRow>> {
        let sql = format!(
            "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2)
             ORDER BY created_at, id LIMIT $3"
        );
        let t = tenant.to_string();
        let rows: Vec<TriggerTuple> = in_tx!(self, &t, read, |tx| {
            sqlx::query_as(AssertSqlSafe(sql.as_str())).bind(&t).bind(status).bind(limit).fetch_all(&mut *tx).await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Records what the Practice side did with a trigger.
    pub async fn finish_trigger(
        &self,
        tenant: TenantId,
        id: &str,
        status: &str,
        outcome: &str,
        now: i64,
    ) -> Result<()> {
        const SQL: &str = "UPDATE triggers SET status = $3, outcome = $4, delivered_at = $5
             WHERE tenant_id = $1 AND id = $2";
        let t = tenant.to_string();
        in_tx!(self, &t, write, |tx| {
            sqlx::query(SQL).bind(&t).bind(id).bind(status).bind(outcome).bind(now).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Replaces old pseudonyms by new ones wherever Insight keeps them — events, actions,
    /// triggers — in one transaction (after a rotation of the tenant's pseudonym key; the map
    /// comes from the Practice side). `rewrite` turns one stored JSON body (and, for actions,
    /// the gap key) into its new form, or `None` when nothing in it changed. Returns the number
    /// of rows rewritten.
    pub async fn rewrite_pseudonyms(
        &self,
        tenant: TenantId,
        rewrite: &(dyn Fn(&str) -> Option<String> + Sync),
        rename: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<u64> {
        let t = tenant.to_string();
        let mut n = 0u64;
        in_tx!(self, &t, write, |tx| {
            let events: Vec<(String, String)> =
                sqlx::query_as("SELECT event_id, body FROM events WHERE tenant_id = $1")
                    .bind(&t)
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, body) in events {
                if let Some(new) = rewrite(&body) {
                    sqlx::query("UPDATE events SET body = $3 WHERE tenant_id = $1 AND event_id = $2")
                        .bind(&t)
                        .bind(&id)
                        .bind(&new)
                        .execute(&mut *tx)
                        .await?;
                    n += 1;
                }
            }
            let actions: Vec<(String, String, String, String)> =
                sqlx::query_as("SELECT id, gap_key, client, gap FROM actions WHERE tenant_id = $1")
                    .bind(&t)
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, key, client, gap) in actions {
                let (k, c, g) = (rename(&key), rename(&client), rewrite(&gap));
                if k.is_some() || c.is_some() || g.is_some() {
                    sqlx::query(
                        "UPDATE actions SET gap_key = $3, client = $4, gap = $5 WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(&t)
                    .bind(&id)
                    .bind(k.unwrap_or(key))
                    .bind(c.unwrap_or(client))
                    .bind(g.unwrap_or(gap))
                    .execute(&mut *tx)
                    .await?;
                    n += 1;
                }
            }
            let triggers: Vec<(String, String, String)> =
                sqlx::query_as("SELECT id, client, body FROM triggers WHERE tenant_id = $1")
                    .bind(&t)
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, client, body) in triggers {
                let (c, b) = (rename(&client), rewrite(&body));
                if c.is_some() || b.is_some() {
                    sqlx::query("UPDATE triggers SET client = $3, body = $4 WHERE tenant_id = $1 AND id = $2")
                        .bind(&t)
                        .bind(&id)
                        .bind(c.unwrap_or(client))
                        .bind(b.unwrap_or(body))
                        .execute(&mut *tx)
                        .await?;
                    n += 1;
                }
            }
        });
        Ok(n)
    }

    /// SQLite: copies a consistent snapshot (`VACUUM INTO`) of Insight's tables into the backup
    /// snapshot `dest` as `insight__<table>`.
    pub async fn sqlite_snapshot_into(&self, dest: &Path) -> Result<()> {
        let Pool::Sqlite(pool) = &*self.pool else {
            return Err(StorageError::Setup("not a SQLite Insight store".into()));
        };
        let tmp = dest.with_extension("insight.tmp");
        let _ = std::fs::remove_file(&tmp);
        sqlx::query("VACUUM INTO $1").bind(tmp.to_string_lossy().to_string()).execute(pool).await?;
        let copied = async {
            let mut c = SqliteConnection::connect(&format!("sqlite://{}", dest.display())).await?;
            sqlx::query("ATTACH DATABASE $1 AS ins").bind(tmp.to_string_lossy().to_string()).execute(&mut c).await?;
            for t in TABLES {
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE TABLE {BACKUP_PREFIX}{t} AS SELECT * FROM ins.{t}")))
                    .execute(&mut c)
                    .await?;
            }
            sqlx::query("DETACH DATABASE ins").execute(&mut c).await?;
            c.close().await?;
            Ok::<_, StorageError>(())
        }
        .await;
        let _ = std::fs::remove_file(&tmp);
        copied
    }

    pub async fn close(&self) {
        match &*self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// Restore: moves the `insight__*` tables of a restored SQLite snapshot into a fresh Insight
/// database that replaces `insight_db`, and drops them from the snapshot. False (and nothing
/// touched) for a snapshot without them.
pub async fn sqlite_restore_from_snapshot(snapshot: &Path, insight_db: &Path) -> Result<bool> {
    let mut c = SqliteConnection::connect(&format!("sqlite://{}", snapshot.display())).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1")
        .bind(format!("{BACKUP_PREFIX}events"))
        .fetch_one(&mut c)
        .await?;
    if n == 0 {
        c.close().await?;
        return Ok(false);
    }
    let fresh = insight_db.with_extension("db.restoring");
    let _ = std::fs::remove_file(&fresh);
    let mut f = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", fresh.display())).await?;
    sqlx::raw_sql(TABLES_SQL).execute(&mut f).await?;
    f.close().await?;
    sqlx::query("ATTACH DATABASE $1 AS ins").bind(fresh.to_string_lossy().to_string()).execute(&mut c).await?;
    for t in TABLES {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO ins.{t} SELECT * FROM {BACKUP_PREFIX}{t}; DROP TABLE {BACKUP_PREFIX}{t};"
        )))
        .execute(&mut c)
        .await?;
    }
    sqlx::query("DETACH DATABASE ins").execute(&mut c).await?;
    c.close().await?;
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", insight_db.display()));
    }
    std::fs::rename(&fresh, insight_db).map_err(|e| StorageError::Setup(format!("replacing insight.db: {e}")))?;
    Ok(true)
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
    Ok(crate::store::pool_options::<sqlx::Postgres>()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(15))
        .connect_with(opts)
        .await?)
}
