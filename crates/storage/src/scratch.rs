//! Throw-away PostgreSQL databases for tests and benchmarks: created fresh, dropped after
//! (also when a test panics). Never used by `serve`.

use crate::Result;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The maintenance connection used to create scratch databases:
/// `LACUNA_TEST_PG_URL`, or the local trust-auth default.
pub fn admin_url() -> String {
    std::env::var("LACUNA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists until this value is dropped.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// Owner URL of the new database (suitable as `DATABASE_URL`).
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create(admin_url: &str) -> Result<Self> {
        let name = format!("lacuna_scratch_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        conn.close().await?;
        let url = replace_database(admin_url, &name);
        Ok(Self { admin_url: admin_url.to_string(), name, url })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Gathers table statistics (`ANALYZE`, as the owner) if the cluster's autovacuum, which
    /// would keep them fresh, is off. Returns whether it ran.
    pub async fn analyze_if_no_autovacuum(&self) -> Result<bool> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let run = !crate::store::autovacuum_is_on(&mut conn).await?;
        if run {
            sqlx::query("ANALYZE").execute(&mut conn).await?;
        }
        conn.close().await?;
        Ok(run)
    }
}

/// Swaps the database path of a `postgres://…/db?params` URL.
pub fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside an async runtime; do the blocking work on a thread of its own.
        let t = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                        eprintln!("could not drop scratch database {name}: {e}");
                    }
                    let _ = conn.close().await;
                }
            });
        });
        let _ = t.join();
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn swaps_the_database() {
        assert_eq!(replace_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            replace_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
