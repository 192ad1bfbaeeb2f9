//! Lacuna's data layer on SQLite (embedded default) and PostgreSQL.
//!
//! The connection pools never leave this crate. Tenant data is reachable only through a
//! [`TenantTx`], a transaction that cannot be opened without a [`TenantId`]: every query it
//! runs binds that tenant, and on PostgreSQL the transaction also sets `app.tenant_id`
//! transaction-locally so that row-level security (FORCE, under a non-owner role) is a second
//! wall. A query without a tenant cannot be written by accident from outside this crate.
//!
//! SQL is written once with `$n` placeholders (which both drivers bind by number); where the
//! dialects differ, both texts sit side by side.

// This crate is the one place allowed to speak SQL (see clippy.toml).
#![allow(clippy::disallowed_methods)]

/// `concat!` for `const &str` items (std's `concat!` takes only literals).
macro_rules! const_str_concat {
    ($a:expr, $b:expr) => {{
        const A: &str = $a;
        const B: &str = $b;
        const LEN: usize = A.len() + B.len();
        const BYTES: [u8; LEN] = {
            let mut out = [0u8; LEN];
            let (a, b) = (A.as_bytes(), B.as_bytes());
            let mut i = 0;
            while i < a.len() {
                out[i] = a[i];
                i += 1;
            }
            while i < LEN {
                out[i] = b[i - a.len()];
                i += 1;
            }
            out
        };
        match std::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("not utf-8"),
        }
    }};
}

mod accounts;
pub mod audit;
pub mod backup;
pub mod insight;
pub mod keystore;
pub mod mfa;
pub mod practice;
pub mod request_log;

mod migrate;
pub mod scratch;
mod store;
mod tx;

pub use accounts::{ApiTokenRow, LoginRow, MemberRow, SessionAuth, SessionRow, TenantStatus, TokenAuth};
pub use migrate::{MIGRATIONS_POSTGRES, MIGRATIONS_SQLITE, Migration};
pub use store::{Backend, PgConfig, Store, StoreConfig};
pub use tx::{TenantScope, TenantTx};

pub use lacuna_domain::TenantId;

/// Errors from the data layer. Messages never carry stored values.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("a row with the same {0} already exists")]
    Conflict(&'static str),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: i64, name: &'static str, source: sqlx::Error },
    #[error("PostgreSQL setup: {0}")]
    Setup(String),
}

impl StorageError {
    /// Maps a unique-constraint violation to `Conflict(what)`, passing other errors through.
    pub(crate) fn unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
        move |e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StorageError::Conflict(what),
            _ => StorageError::Database(e),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Seconds since the Unix epoch: the storage form of every timestamp.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
