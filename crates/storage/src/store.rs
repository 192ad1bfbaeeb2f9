//! Opening the store: pools, migrations, and on PostgreSQL the non-owner application role.

use crate::{LoginRow, Result, StorageError, TenantId, TenantScope, migrate};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, PgPool, SqlitePool};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Tables the application role may use, with exactly the privileges it gets. Anything not
/// listed here is out of its reach on PostgreSQL. The audit trail is append-only: no DELETE, and
/// UPDATE only of an entry's place in the chain (which the table's trigger lets be set once, on an
/// unchained entry).
const APP_GRANTS: &[(&str, &str)] = &[
    ("tenants", "SELECT, INSERT, UPDATE, DELETE"),
    ("users", "SELECT, INSERT, UPDATE, DELETE"),
    ("members", "SELECT, INSERT, UPDATE, DELETE"),
    ("sessions", "SELECT, INSERT, UPDATE, DELETE"),
    ("api_tokens", "SELECT, INSERT, UPDATE, DELETE"),
    ("audit_events", "SELECT, INSERT, UPDATE (seq, prev_hash, entry_hash)"),
    ("audit_heads", "SELECT, INSERT, UPDATE"),
    ("tenant_index", "SELECT, INSERT, DELETE"),
    ("mfa_factors", "SELECT, INSERT, UPDATE, DELETE"),
    ("mfa_recovery_codes", "SELECT, INSERT, UPDATE, DELETE"),
    ("request_log", "SELECT, INSERT, DELETE"),
    // Practice
    ("locations", "SELECT, INSERT, UPDATE, DELETE"),
    ("clients", "SELECT, INSERT, UPDATE, DELETE"),
    ("client_search", "SELECT, INSERT, UPDATE, DELETE"),
    ("services", "SELECT, INSERT, UPDATE, DELETE"),
    ("providers", "SELECT, INSERT, UPDATE, DELETE"),
    ("provider_services", "SELECT, INSERT, UPDATE, DELETE"),
    ("provider_hours", "SELECT, INSERT, UPDATE, DELETE"),
    ("time_off", "SELECT, INSERT, UPDATE, DELETE"),
    ("appointments", "SELECT, INSERT, UPDATE, DELETE"),
    ("client_plans", "SELECT, INSERT, UPDATE, DELETE"),
    ("plan_redemptions", "SELECT, INSERT, UPDATE, DELETE"),
    ("payments", "SELECT, INSERT, UPDATE, DELETE"),
    ("outbox", "SELECT, INSERT, UPDATE, DELETE"),
    ("message_attempts", "SELECT, INSERT, UPDATE, DELETE"),
    ("exports", "SELECT, INSERT"),
    ("idempotency_keys", "SELECT, INSERT, UPDATE, DELETE"),
    ("insight_outbox", "SELECT, INSERT, UPDATE, DELETE"),
    ("insight_triggers", "SELECT, INSERT"),
    ("trigger_endpoints", "SELECT, INSERT, UPDATE, DELETE"),
    ("trigger_webhooks", "SELECT, INSERT, UPDATE"),
    ("stripe_events", "SELECT, INSERT, DELETE"),
];

/// Tenant-owned tables: row-level security must be enabled and forced on each.
pub(crate) const TENANT_TABLES: &[&str] = &[
    "tenants",
    "users",
    "members",
    "sessions",
    "api_tokens",
    "audit_events",
    "audit_heads",
    "mfa_factors",
    "mfa_recovery_codes",
    "request_log",
    "locations",
    "clients",
    "client_search",
    "services",
    "providers",
    "provider_services",
    "provider_hours",
    "time_off",
    "appointments",
    "client_plans",
    "plan_redemptions",
    "payments",
    "outbox",
    "message_attempts",
    "exports",
    "idempotency_keys",
    "insight_outbox",
    "insight_triggers",
    "trigger_endpoints",
    "trigger_webhooks",
    "stripe_events",
];

#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The embedded default: one SQLite file (WAL mode).
    Sqlite {
        path: PathBuf,
    },
    Postgres(PgConfig),
}

#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Owner connection (`DATABASE_URL`): runs migrations and grants, then is closed.
    pub owner_url: String,
    /// Application connection (`LACUNA_APP_DATABASE_URL`). When absent, the owner URL's host,
    /// port and database are used with `app_role` as the user and no password, which suits
    /// local trust or peer authentication; production supplies this URL.
    pub app_url: Option<String>,
    /// The application role: LOGIN, NOSUPERUSER, NOBYPASSRLS, not the tables' owner.
    pub app_role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

pub(crate) enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The data store. Cheap to clone; the pools inside never leave this crate.
#[derive(Clone)]
pub struct Store {
    pub(crate) pools: Arc<Pools>,
    /// SQLite: one writer at a time, queued here in arrival order. SQLite admits one writer
    /// anyway; without this gate the others would poll the lock through its busy handler, which
    /// sleeps 1, 2, 5, 10… ms between tries — tens of milliseconds of tail latency under load.
    pub(crate) sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// SQLite: write turns taken so far, counted once held; the background checkpointer skips
    /// its tick when this has not moved (see `checkpoint_due`).
    pub(crate) sqlite_writes: Arc<std::sync::atomic::AtomicU64>,
    /// Links committed audit entries into their tenant's chain (see `Chainer`).
    pub(crate) chainer: Arc<crate::audit::Chainer>,
}

impl Store {
    /// Connects, runs pending migrations, and (PostgreSQL) makes sure the application role
    /// exists with exactly the grants it needs and is subject to row-level security.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        let pools = match config {
            StoreConfig::Sqlite { path } => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StorageError::Setup(format!("cannot create {}: {e}", dir.display())))?;
                }
                // Checkpoints run in the background (see `checkpoint_in_background`); the
                // automatic one, which would run inside a writer's commit while it holds the write
                // turn, only as a safety net far above the background one's threshold.
                let opts = sqlite_options(path, SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .pragma("wal_autocheckpoint", SAFETY_NET_CHECKPOINT_PAGES.to_string())
                    // After a checkpoint that ran at the safety net, the WAL file shrinks back.
                    .pragma("journal_size_limit", (64 * 1024 * 1024).to_string());
                let pool = pool_options::<sqlx::Sqlite>()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(15))
                    .connect_with(opts)
                    .await?;
                let n = migrate::run_sqlite(&pool).await?;
                tracing::info!(applied = n, path = %path.display(), "sqlite store ready");
                Pools::Sqlite(pool)
            }
            StoreConfig::Postgres(pg) => Pools::Postgres(open_postgres(pg).await?),
        };
        let store = Store::with_pools(pools);
        if matches!(&*store.pools, Pools::Sqlite(_)) {
            checkpoint_in_background(
                Arc::downgrade(&store.pools),
                Arc::clone(&store.sqlite_writer),
                Arc::clone(&store.sqlite_writes),
            );
        }
        Ok(store)
    }

    /// A store over `pools`, its in-process state fresh.
    fn with_pools(pools: Pools) -> Store {
        Store {
            pools: Arc::new(pools),
            sqlite_writer: Arc::default(),
            sqlite_writes: Arc::default(),
            chainer: Arc::default(),
        }
    }

    pub fn backend(&self) -> Backend {
        match &*self.pools {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Waits for SQLite's write turn (see `sqlite_writer`); held until the transaction ends.
    pub(crate) async fn sqlite_write_turn(&self) -> Result<tokio::sync::OwnedMutexGuard<()>> {
        let turn = take_turn(self.sqlite_writer.clone()).await?;
        // Counted once held (see `checkpoint_due`).
        self.sqlite_writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(turn)
    }

    /// The only way to tenant data: a handle bound to one tenant.
    pub fn tenant(&self, tenant: TenantId) -> TenantScope<'_> {
        TenantScope::new(self, tenant)
    }

    /// Finds the login identity for an email, across tenants. On PostgreSQL the transaction sets
    /// `app.login_email`, and row-level security shows it only that one row.
    pub async fn login_lookup(&self, email: &str) -> Result<Option<LoginRow>> {
        const SQL: &str = "SELECT id, tenant_id, password_hash FROM users WHERE email = $1";
        let row: Option<(String, String, Option<String>)> = match &*self.pools {
            Pools::Sqlite(pool) => sqlx::query_as(SQL).bind(email).fetch_optional(pool).await?,
            Pools::Postgres(pool) => {
                let mut tx = begin_pg(pool, "BEGIN").await?;
                sqlx::query("SELECT set_config('app.login_email', $1, true)").bind(email).execute(&mut *tx).await?;
                let row = sqlx::query_as(SQL).bind(email).fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                row
            }
        };
        row.map(LoginRow::from_tuple).transpose()
    }

    /// Every tenant's id (from the id-only tenant index), for operator jobs such as
    /// `audit verify` that walk all tenants, each through its own tenant-scoped handle.
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>> {
        const SQL: &str = "SELECT id FROM tenant_index ORDER BY created_at, id";
        let rows: Vec<(String,)> = match &*self.pools {
            Pools::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await?,
            Pools::Postgres(p) => on_live_connection(p, || sqlx::query_as(SQL).fetch_all(p)).await?,
        };
        rows.into_iter().map(|(id,)| id.parse().map_err(|_| StorageError::Corrupt("tenant_index.id".into()))).collect()
    }

    /// Round trip to the database (readiness).
    pub async fn ping(&self) -> Result<()> {
        match &*self.pools {
            Pools::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
            Pools::Postgres(p) => on_live_connection(p, || sqlx::query("SELECT 1").execute(p)).await.map(|_| ())?,
        };
        Ok(())
    }

    /// For PostgreSQL: whether the connected role is subject to row-level security on every
    /// tenant table (non-superuser, no BYPASSRLS, not the owner, RLS enabled and forced).
    /// `None` on SQLite, which has no row-level security.
    pub async fn row_level_security(&self) -> Result<Option<bool>> {
        let Pools::Postgres(pool) = &*self.pools else { return Ok(None) };
        let (sup, bypass): (bool, bool) =
            sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_one(pool)
                .await?;
        let tables: Vec<(String, bool, bool, bool)> = sqlx::query_as(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                    pg_get_userbyid(c.relowner) = current_user
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY($1)",
        )
        .bind(TENANT_TABLES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
        let all_forced =
            tables.len() == TENANT_TABLES.len() && tables.iter().all(|(_, on, force, owner)| *on && *force && !owner);
        Ok(Some(!sup && !bypass && all_forced))
    }

    pub async fn close(&self) {
        match &*self.pools {
            Pools::Sqlite(p) => p.close().await,
            Pools::Postgres(p) => p.close().await,
        }
    }
}

/// The longest a transaction waits for an in-process turn (SQLite's writer gate, a chain
/// head) before failing like a pool timeout: the same bound as the pools' acquire timeout.
const TURN_WAIT: Duration = Duration::from_secs(15);

/// Takes an in-process turn, waiting at most [`TURN_WAIT`].
pub(crate) async fn take_turn<T>(turn: Arc<tokio::sync::Mutex<T>>) -> Result<tokio::sync::OwnedMutexGuard<T>> {
    tokio::time::timeout(TURN_WAIT, turn.lock_owned())
        .await
        .map_err(|_| crate::StorageError::Database(sqlx::Error::PoolTimedOut))
}

/// SQLite's own checkpoint threshold (pages of WAL, 4 KiB each) on the data database: a safety
/// net for when the background checkpointer cannot keep up.
const SAFETY_NET_CHECKPOINT_PAGES: u32 = 16_384;
/// The background checkpointer's interval. Short on purpose: what a checkpoint costs the writers
/// running beside it grows with what it copies and syncs. Measured at 500 bookings/s on the
/// 2-core VM (`lacuna bench booking --backend sqlite`, booking p99): every 1 s, 73–84 ms; every
/// 250 ms, 21–48 ms; every 25 ms, 7.5–12.3 ms; with no checkpoint at all (a diagnostic build whose
/// WAL only grew), 2.7–2.8 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] in which something was
/// written, on a pooled connection of its own, outside the write turn. SQLite's automatic
/// checkpoint would instead run inside the commit of whichever write crosses the threshold
/// (every thousand pages), while that write still holds the turn every other writer waits for: a
/// stall of several milliseconds for all of them, a few times a second under load. A `PASSIVE`
/// checkpoint does not block writers, and once it has copied everything the next write starts the
/// WAL from the beginning again, so the file stays small. The writers beside it still feel it
/// (most likely its `fsync` of the database file), more the more it copies, so it runs often and
/// small. Idle, it only reads a counter.
/// Ends when the store is dropped or closed.
fn checkpoint_in_background(
    pools: std::sync::Weak<Pools>,
    writer: Arc<tokio::sync::Mutex<()>>,
    writes: Arc<std::sync::atomic::AtomicU64>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Nothing known to be checkpointed yet (migrations may have written): the first tick runs.
        let mut checkpointed = u64::MAX;
        loop {
            tick.tick().await;
            let Some(pools) = pools.upgrade() else { break };
            let Pools::Sqlite(pool) = &*pools else { break };
            if pool.is_closed() {
                break;
            }
            // The count is read before the turn is tried (a turn is counted once held).
            let count = writes.load(std::sync::atomic::Ordering::Relaxed);
            let none_held = writer.try_lock().is_ok();
            if !checkpoint_due(checkpointed, count, none_held) {
                continue;
            }
            // (busy, WAL frames, frames checkpointed): complete when not busy and all copied.
            let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await;
            let complete = match done {
                Ok((busy, frames, copied)) => busy == 0 && frames == copied,
                Err(e) => {
                    tracing::debug!(error = %e, "background checkpoint skipped");
                    false
                }
            };
            checkpointed = checkpointed_after(count, none_held, complete);
        }
    });
}

/// Whether the background checkpointer has work: not when no write turn was taken since the last
/// checkpoint that copied the whole WAL with no turn held (`last`, see [`checkpointed_after`]).
/// Turns are counted once held and the count is read before the turn is tried, so a turn that
/// commits after the checkpoint either moved the count or was held when it was tried.
fn checkpoint_due(last: u64, count: u64, none_held: bool) -> bool {
    !(none_held && count == last)
}

/// What the checkpointer remembers after a checkpoint: the count it read, if no turn was held and
/// the checkpoint copied everything; otherwise nothing (the next tick runs again). A failed or
/// partial checkpoint (a reader still on an older snapshot) is retried, idle or not.
fn checkpointed_after(count: u64, none_held: bool, complete: bool) -> u64 {
    if none_held && complete { count } else { u64::MAX }
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// Pool options of the application's pools. By default sqlx pings a pooled connection both when
/// it is returned (in the background; closed if that fails) and again before handing it out: one
/// more round trip per transaction on the path of every request. Here the second ping is made
/// only for a connection that sat idle for [`PING_AFTER_IDLE`], the one a database restart or an
/// idle timeout may have closed since it was returned.
pub(crate) fn pool_options<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new().test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for >= PING_AFTER_IDLE {
                sqlx::Connection::ping(conn).await?;
            }
            Ok(true)
        })
    })
}

/// Runs `attempt` — a `BEGIN` or a read-only statement on the pool — again on another connection
/// while the connection it got turns out closed: by a database restart or a network reset since
/// it was returned to the pool (it is pinged then, and again before use only after
/// [`PING_AFTER_IDLE`]). Each closed connection is discarded as it fails, so after at most as
/// many as the pool holds a fresh one is opened. Only for statements that change nothing: one
/// that failed this way may, in principle, have run before the connection broke.
pub(crate) async fn on_live_connection<T, F>(
    pool: &PgPool,
    mut attempt: impl FnMut() -> F,
) -> std::result::Result<T, sqlx::Error>
where
    F: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut lost = 0;
    loop {
        match attempt().await {
            Err(e) if connection_closed(&e) && lost <= pool.options().get_max_connections() => {
                lost += 1;
                tracing::info!(error = %e, "pooled connection was closed; trying another");
            }
            done => return done,
        }
    }
}

/// Begins a PostgreSQL transaction with `sql` (`BEGIN …`) on a live connection (see
/// [`on_live_connection`]).
pub(crate) async fn begin_pg(
    pool: &PgPool,
    sql: impl Into<std::borrow::Cow<'static, str>>,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let sql = sql.into();
    Ok(on_live_connection(pool, || pool.begin_with(AssertSqlSafe(sql.clone()))).await?)
}

/// A PostgreSQL transaction for one tenant: `BEGIN` and the transaction-local tenant setting
/// that row-level security reads travel in one round trip (a simple-query batch cannot take bind
/// parameters). `tenant` is a `TenantId`'s canonical UUID text, so it holds only hex digits and
/// hyphens; checked anyway. Transaction-local: a pooled connection never carries it into another
/// request. READ COMMITTED explicitly, whatever the server's default: a booking's overlap check
/// relies on each statement seeing what committed before it (after the provider's row lock), not
/// a snapshot from the transaction's start.
pub(crate) async fn begin_tenant_pg(pool: &PgPool, tenant: &str) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    if !tenant.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(crate::StorageError::Corrupt("tenant id is not a UUID".into()));
    }
    begin_pg(
        pool,
        format!("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT set_config('app.tenant_id', '{tenant}', true)"),
    )
    .await
}

/// Whether an error says the connection itself is gone: the socket failed, or the server said it
/// is closing it (`57P01` admin shutdown — a restart or `pg_terminate_backend` — or `57P02`, a
/// crash), the notice a closed connection still holds for its next reader.
fn connection_closed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01" | "57P02")),
        _ => false,
    }
}

/// Whether the PostgreSQL cluster runs autovacuum (which keeps table statistics fresh).
pub(crate) async fn autovacuum_is_on<'c>(conn: impl sqlx::PgExecutor<'c>) -> Result<bool> {
    let (autovacuum,): (String,) = sqlx::query_as("SHOW autovacuum").fetch_one(conn).await?;
    Ok(autovacuum == "on")
}

/// Options shared by the data database and the keystore: created if missing, WAL, a generous
/// busy timeout. The parent directory is created too.
pub(crate) fn sqlite_options(path: &std::path::Path, sync: SqliteSynchronous) -> SqliteConnectOptions {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync)
        .busy_timeout(Duration::from_secs(10))
}

pub(crate) fn valid_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

async fn open_postgres(cfg: &PgConfig) -> Result<PgPool> {
    if !valid_role_name(&cfg.app_role) {
        return Err(StorageError::Setup("application role name must match [a-z_][a-z0-9_]*".into()));
    }
    let owner_opts: PgConnectOptions = cfg.owner_url.parse()?;
    let owner = PgPoolOptions::new().max_connections(2).connect_with(owner_opts.clone()).await?;
    let n = migrate::run_postgres(&owner).await?;
    ensure_app_role(&owner, &cfg.app_role).await?;
    owner.close().await;

    let app_opts = match &cfg.app_url {
        Some(url) => url.parse::<PgConnectOptions>()?,
        None => {
            let mut o = PgConnectOptions::new_without_pgpass()
                .host(owner_opts.get_host())
                .port(owner_opts.get_port())
                .username(&cfg.app_role);
            if let Some(db) = owner_opts.get_database() {
                o = o.database(db);
            }
            if let Some(sock) = owner_opts.get_socket() {
                o = o.socket(sock);
            }
            o
        }
    };
    let pool = pool_options::<sqlx::Postgres>()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(15))
        .connect_with(app_opts)
        .await?;
    let store = Store::with_pools(Pools::Postgres(pool.clone()));
    if store.row_level_security().await? != Some(true) {
        return Err(StorageError::Setup(
            "the application role bypasses row-level security (superuser, BYPASSRLS or table owner); \
             connect as a plain role (LACUNA_APP_DATABASE_URL)"
                .into(),
        ));
    }
    if !autovacuum_is_on(&pool).await? {
        tracing::warn!(
            "autovacuum is off on this PostgreSQL cluster: without fresh table statistics the planner may pick \
             slow plans as tables grow; turn it on or run ANALYZE regularly"
        );
    }
    tracing::info!(applied = n, role = %cfg.app_role, "postgresql store ready; row-level security enforced");
    Ok(pool)
}

/// Creates the application role if missing and grants it DML on the application tables only.
async fn ensure_app_role(owner: &PgPool, role: &str) -> Result<()> {
    let create = format!(
        "DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
         END $$"
    );
    // Several servers (or tests) may race to create the cluster-wide role: retry once.
    for attempt in 0..3 {
        match sqlx::raw_sql(AssertSqlSafe(create.clone())).execute(owner).await {
            Ok(_) => break,
            Err(e) if attempt < 2 => {
                tracing::debug!(error = %e, "retrying application role creation");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut grants = format!("GRANT USAGE ON SCHEMA public TO {role};");
    for (table, privileges) in APP_GRANTS {
        grants.push_str(&format!("REVOKE ALL ON {table} FROM {role}; GRANT {privileges} ON {table} TO {role};"));
    }
    sqlx::raw_sql(AssertSqlSafe(grants)).execute(owner).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{checkpoint_due, checkpointed_after, valid_role_name};

    #[test]
    fn the_checkpointer_rests_only_when_nothing_was_written() {
        // One tick: due? then what it remembers after a checkpoint that was `complete`.
        let tick = |last: &mut u64, count, none_held, complete| {
            let due = checkpoint_due(*last, count, none_held);
            if due {
                *last = checkpointed_after(count, none_held, complete);
            }
            due
        };
        let mut last = u64::MAX;
        assert!(tick(&mut last, 0, true, true), "the first tick runs (migrations may have written)");
        assert!(!tick(&mut last, 0, true, true), "then rests: nothing written");
        assert!(tick(&mut last, 3, true, true), "three turns ended since");
        assert!(!tick(&mut last, 3, true, true), "and were copied by that checkpoint");
        // A turn held when the checkpoint runs commits after it: the next tick must copy it even
        // though the count has not moved since.
        assert!(tick(&mut last, 4, false, true));
        assert!(tick(&mut last, 4, true, true), "the held turn's pages");
        assert!(!tick(&mut last, 4, true, true));
        // A checkpoint that failed, or left frames a reader still needed, is retried while idle.
        assert!(tick(&mut last, 5, true, false));
        assert!(tick(&mut last, 5, true, false));
        assert!(tick(&mut last, 5, true, true));
        assert!(!tick(&mut last, 5, true, true));
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        assert!(valid_role_name("lacuna_app"));
        assert!(!valid_role_name("lacuna-app"));
        assert!(!valid_role_name("x; DROP TABLE users"));
        assert!(!valid_role_name("1abc"));
        assert!(!valid_role_name(""));
    }
}
