//! Database-side primitives for backups: consistent snapshots and row counts.
//! SQLite: `VACUUM INTO` writes a consistent copy while the server keeps running.
//! PostgreSQL: a REPEATABLE READ transaction exports its snapshot, the counts are taken in it, and
//! `pg_dump --snapshot` dumps exactly that state (driven by the caller).

use crate::store::Pools;
use crate::{Result, StorageError, Store};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use std::collections::BTreeMap;
use std::path::Path;

pub type Counts = BTreeMap<String, i64>;

fn valid_table(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Store {
    /// Writes a consistent copy of the SQLite database to `dest` (which must not exist).
    pub async fn sqlite_snapshot(&self, dest: &Path) -> Result<()> {
        let Pools::Sqlite(pool) = &*self.pools else {
            return Err(StorageError::Setup("not a SQLite store".into()));
        };
        sqlx::query("VACUUM INTO $1").bind(dest.to_string_lossy().to_string()).execute(pool).await?;
        Ok(())
    }
}

/// Checks a SQLite file's integrity and counts the rows of every table.
pub async fn sqlite_file_counts(path: &Path) -> Result<Counts> {
    let mut c = SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display())).await?;
    let (ok,): (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(&mut c).await?;
    if ok != "ok" {
        return Err(StorageError::Corrupt(format!("SQLite integrity check: {ok}")));
    }
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await?;
    let mut counts = Counts::new();
    for (t,) in tables.into_iter().filter(|(t,)| valid_table(t)) {
        let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"))).fetch_one(&mut c).await?;
        counts.insert(t, n);
    }
    c.close().await?;
    Ok(counts)
}

async fn pg_counts_on(c: &mut PgConnection) -> Result<Counts> {
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            .fetch_all(&mut *c)
            .await?;
    let mut counts = Counts::new();
    for (t,) in tables.into_iter().filter(|(t,)| valid_table(t)) {
        let (n,): (i64,) =
            sqlx::query_as(AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"))).fetch_one(&mut *c).await?;
        counts.insert(t, n);
    }
    Ok(counts)
}

/// An open snapshot of a PostgreSQL database: hold it while `pg_dump --snapshot` runs.
pub struct PgSnapshot {
    conn: PgConnection,
    pub id: String,
    pub counts: Counts,
}

impl PgSnapshot {
    /// Opens a REPEATABLE READ transaction as the backup role (`url`, which must bypass
    /// row-level security), exports its snapshot and counts every table in it.
    pub async fn begin(url: &str) -> Result<Self> {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut conn).await?;
        let (bypass,): (bool,) =
            sqlx::query_as("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&mut conn)
                .await?;
        if !bypass {
            return Err(StorageError::Setup(
                "the backup connection must bypass row-level security (superuser or BYPASSRLS role): \
                 set LACUNA_BACKUP_DATABASE_URL"
                    .into(),
            ));
        }
        let (id,): (String,) = sqlx::query_as("SELECT pg_export_snapshot()").fetch_one(&mut conn).await?;
        let counts = pg_counts_on(&mut conn).await?;
        Ok(Self { conn, id, counts })
    }

    pub async fn finish(mut self) -> Result<()> {
        sqlx::raw_sql("COMMIT").execute(&mut self.conn).await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// Row counts of a PostgreSQL database, read by a role that bypasses row-level security.
pub async fn pg_counts(url: &str) -> Result<Counts> {
    let mut c = PgConnection::connect(url).await?;
    let counts = pg_counts_on(&mut c).await?;
    c.close().await?;
    Ok(counts)
}

/// Creates or drops a database on the server behind `admin_url` (for restore rehearsals).
pub async fn pg_admin(admin_url: &str, sql: String) -> Result<()> {
    let mut c = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await?;
    c.close().await?;
    Ok(())
}
