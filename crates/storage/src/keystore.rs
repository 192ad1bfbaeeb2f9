//! The keystore: wrapped keys (each tenant's data key versions, the audit-chain key) and shred
//! tombstones, in a SQLite file of its own beside the data, never inside the data database.
//!
//! Why apart: deleting a tenant destroys its data key here. If the wrapped keys lived in the data
//! database, restoring an old data backup would bring the key back and the master key would still
//! unwrap it: nothing would have been shredded. Data backups therefore never contain keys; the
//! keystore is backed up on its own, and a restore replays its tombstones.

use crate::{Result, StorageError};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keys (
    scope       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, version)
);
CREATE TABLE IF NOT EXISTS tombstones (
    scope       TEXT PRIMARY KEY,
    shredded_at INTEGER NOT NULL,
    mac         BLOB NOT NULL
);";

/// One stored wrapped key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub scope: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
}

#[derive(Clone)]
pub struct Keystore {
    pool: SqlitePool,
}

impl Keystore {
    pub async fn open(path: &Path) -> Result<Self> {
        // Keys are few and precious: every commit is flushed.
        let opts = crate::store::sqlite_options(path, SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        restrict_permissions(path);
        Ok(Self { pool })
    }

    /// Stores a new key; refuses to revive a shredded scope.
    pub async fn put(&self, scope: &str, version: u32, wrapped: &[u8], now: i64) -> Result<()> {
        if self.tombstone(scope).await?.is_some() {
            return Err(StorageError::Setup(format!("{scope} was shredded; its keys cannot be recreated")));
        }
        sqlx::query("INSERT INTO keys (scope, version, wrapped, created_at) VALUES ($1, $2, $3, $4)")
            .bind(scope)
            .bind(i64::from(version))
            .bind(wrapped)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StorageError::unique("key version"))?;
        Ok(())
    }

    /// Every live version of a scope's key.
    pub async fn keys(&self, scope: &str) -> Result<Vec<StoredKey>> {
        let rows: Vec<(String, i64, Vec<u8>)> =
            sqlx::query_as("SELECT scope, version, wrapped FROM keys WHERE scope = $1 ORDER BY version")
                .bind(scope)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(to_key).collect()
    }

    /// Every key of every scope (master-key rotation).
    pub async fn all(&self) -> Result<Vec<StoredKey>> {
        let rows: Vec<(String, i64, Vec<u8>)> =
            sqlx::query_as("SELECT scope, version, wrapped FROM keys ORDER BY scope, version")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(to_key).collect()
    }

    /// Replaces a key's wrapping (same key, new master).
    pub async fn rewrap(&self, scope: &str, version: u32, wrapped: &[u8]) -> Result<()> {
        sqlx::query("UPDATE keys SET wrapped = $3 WHERE scope = $1 AND version = $2")
            .bind(scope)
            .bind(i64::from(version))
            .bind(wrapped)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops key versions older than `keep_from` (after their data was re-encrypted).
    pub async fn retire_below(&self, scope: &str, keep_from: u32) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM keys WHERE scope = $1 AND version < $2")
            .bind(scope)
            .bind(i64::from(keep_from))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Destroys every version of a scope's key and records a tombstone, in one transaction.
    pub async fn shred(&self, scope: &str, now: i64, mac: &[u8]) -> Result<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query("DELETE FROM keys WHERE scope = $1").bind(scope).execute(&mut *tx).await?.rows_affected();
        sqlx::query("INSERT OR REPLACE INTO tombstones (scope, shredded_at, mac) VALUES ($1, $2, $3)")
            .bind(scope)
            .bind(now)
            .bind(mac)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Make sure the deleted pages do not linger in the WAL.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        Ok(n)
    }

    pub async fn tombstone(&self, scope: &str) -> Result<Option<(i64, Vec<u8>)>> {
        Ok(sqlx::query_as("SELECT shredded_at, mac FROM tombstones WHERE scope = $1")
            .bind(scope)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn tombstones(&self) -> Result<Vec<(String, i64, Vec<u8>)>> {
        Ok(sqlx::query_as("SELECT scope, shredded_at, mac FROM tombstones ORDER BY shredded_at")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_key((scope, version, wrapped): (String, i64, Vec<u8>)) -> Result<StoredKey> {
    let version = u32::try_from(version).map_err(|_| StorageError::Corrupt("keys.version".into()))?;
    Ok(StoredKey { scope, version, wrapped })
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for p in [path.to_path_buf(), path.with_extension("db-wal"), path.with_extension("db-shm")] {
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) {}
