//! Schema migrations for both backends, applied in order at start inside one transaction.
//! Each schema change goes into both lists in the same commit; a test builds both from
//! scratch and compares their tables and columns.

use crate::{Result, StorageError};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS_SQLITE: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/sqlite/0001_foundation.sql") },
    Migration { version: 2, name: "audit", sql: include_str!("../migrations/sqlite/0002_audit.sql") },
    Migration { version: 3, name: "mfa", sql: include_str!("../migrations/sqlite/0003_mfa.sql") },
    Migration { version: 4, name: "request_log", sql: include_str!("../migrations/sqlite/0004_request_log.sql") },
    Migration { version: 5, name: "retention", sql: include_str!("../migrations/sqlite/0005_retention.sql") },
    Migration { version: 6, name: "auth_function", sql: include_str!("../migrations/sqlite/0006_auth_function.sql") },
    Migration { version: 7, name: "practice", sql: include_str!("../migrations/sqlite/0007_practice.sql") },
    Migration {
        version: 10,
        name: "billing_messages",
        sql: include_str!("../migrations/sqlite/0010_billing_messages.sql"),
    },
    Migration {
        version: 11,
        name: "insight_outbox",
        sql: include_str!("../migrations/sqlite/0011_insight_outbox.sql"),
    },
    Migration {
        version: 12,
        name: "practice_guards",
        sql: include_str!("../migrations/sqlite/0012_practice_guards.sql"),
    },
    Migration {
        version: 30,
        name: "insight_triggers",
        sql: include_str!("../migrations/sqlite/0030_insight_triggers.sql"),
    },
    Migration {
        version: 31,
        name: "trigger_webhooks",
        sql: include_str!("../migrations/sqlite/0031_trigger_webhooks.sql"),
    },
    Migration {
        version: 32,
        name: "audit_unchained",
        sql: include_str!("../migrations/sqlite/0032_audit_unchained.sql"),
    },
    Migration {
        version: 33,
        name: "audit_entry_index",
        sql: include_str!("../migrations/sqlite/0033_audit_entry_index.sql"),
    },
];

pub const MIGRATIONS_POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/postgres/0001_foundation.sql") },
    Migration { version: 2, name: "audit", sql: include_str!("../migrations/postgres/0002_audit.sql") },
    Migration { version: 3, name: "mfa", sql: include_str!("../migrations/postgres/0003_mfa.sql") },
    Migration { version: 4, name: "request_log", sql: include_str!("../migrations/postgres/0004_request_log.sql") },
    Migration { version: 5, name: "retention", sql: include_str!("../migrations/postgres/0005_retention.sql") },
    Migration { version: 6, name: "auth_function", sql: include_str!("../migrations/postgres/0006_auth_function.sql") },
    Migration { version: 7, name: "practice", sql: include_str!("../migrations/postgres/0007_practice.sql") },
    Migration {
        version: 10,
        name: "billing_messages",
        sql: include_str!("../migrations/postgres/0010_billing_messages.sql"),
    },
    Migration {
        version: 11,
        name: "insight_outbox",
        sql: include_str!("../migrations/postgres/0011_insight_outbox.sql"),
    },
    Migration {
        version: 12,
        name: "practice_guards",
        sql: include_str!("../migrations/postgres/0012_practice_guards.sql"),
    },
    Migration {
        version: 30,
        name: "insight_triggers",
        sql: include_str!("../migrations/postgres/0030_insight_triggers.sql"),
    },
    Migration {
        version: 31,
        name: "trigger_webhooks",
        sql: include_str!("../migrations/postgres/0031_trigger_webhooks.sql"),
    },
    Migration {
        version: 32,
        name: "audit_unchained",
        sql: include_str!("../migrations/postgres/0032_audit_unchained.sql"),
    },
    Migration {
        version: 33,
        name: "audit_entry_index",
        sql: include_str!("../migrations/postgres/0033_audit_entry_index.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS lacuna_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Applies the migrations of `$list` not yet recorded, inside the open transaction `$tx`
/// (the same code for both backends; only how the transaction is opened differs).
macro_rules! apply_pending {
    ($tx:expr, $list:expr) => {{
        sqlx::raw_sql(CREATE_TABLE).execute(&mut *$tx).await?;
        let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM lacuna_migrations").fetch_all(&mut *$tx).await?;
        let mut n = 0;
        for m in $list.iter().filter(|m| !applied.iter().any(|(v,)| *v == m.version)) {
            sqlx::raw_sql(m.sql).execute(&mut *$tx).await.map_err(|source| StorageError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
            sqlx::query("INSERT INTO lacuna_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(crate::now_unix())
                .execute(&mut *$tx)
                .await?;
            n += 1;
        }
        n
    }};
}

pub(crate) async fn run_sqlite(pool: &sqlx::SqlitePool) -> Result<usize> {
    // The write lock up front: concurrent starters queue instead of failing mid-way.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let n = apply_pending!(tx, MIGRATIONS_SQLITE);
    tx.commit().await?;
    Ok(n)
}

pub(crate) async fn run_postgres(pool: &sqlx::PgPool) -> Result<usize> {
    let mut tx = pool.begin().await?;
    // One migrator at a time per database, even with several servers starting together.
    sqlx::query("SELECT pg_advisory_xact_lock(7262686)").execute(&mut *tx).await?;
    let n = apply_pending!(tx, MIGRATIONS_POSTGRES);
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let s: Vec<_> = MIGRATIONS_SQLITE.iter().map(|m| (m.version, m.name)).collect();
        let p: Vec<_> = MIGRATIONS_POSTGRES.iter().map(|m| (m.version, m.name)).collect();
        assert_eq!(s, p);
    }
}
