//! Both migration trees build the same schema: every table and column exists on both
//! backends, so the two never drift apart.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use lacuna::scratch::{Backend, Scratch};
use sqlx::Connection;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_schemas_match() {
    let lite = Scratch::new(Backend::Sqlite).await.unwrap();
    let pg = Scratch::new(Backend::Postgres).await.unwrap();
    let a = lacuna::build(&lite.config).await.unwrap();
    let b = lacuna::build(&pg.config).await.unwrap();
    a.services.close().await;
    b.services.close().await;

    let mut c =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", lite.dir().join("lacuna.db").display())).await.unwrap();
    let lite_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut p = sqlx::PgConnection::connect(&pg.db.as_ref().unwrap().url).await.unwrap();
    let pg_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(&mut p)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(lite_cols.len() > 30, "{lite_cols:?}");
    assert_eq!(lite_cols, pg_cols, "the SQLite and PostgreSQL migrations differ");

    // Every tenant-owned PostgreSQL table has RLS enabled and forced. The one exception is the
    // tenant index, which holds nothing but random tenant ids (for operator jobs).
    let index_cols: BTreeSet<&str> =
        pg_cols.iter().filter(|(t, _)| t == "tenant_index").map(|(_, c)| c.as_str()).collect();
    assert_eq!(index_cols, BTreeSet::from(["id", "created_at"]), "tenant_index must stay id-only");
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT IN ('lacuna_migrations', 'tenant_index')",
    )
    .fetch_all(&mut p)
    .await
    .unwrap();
    for (t, on, forced) in tables {
        assert!(on && forced, "{t}: row-level security must be enabled and forced");
    }
}
