//! Tenant isolation: tenant B cannot read, list, change or delete tenant A's rows through any
//! route, using A's real ids. On PostgreSQL, row-level security is checked directly: a raw query
//! under the application role with the tenant filter left out sees only the current tenant.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{PASSWORD, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

both_backends!(tenant_b_cannot_touch_tenant_a_through_the_api);

async fn tenant_b_cannot_touch_tenant_a_through_the_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = app.signup("Alpha Spa", "alice@example.com").await;
    let a_desk = app.add_member(&a, "fran@alpha.example", "front_desk").await;
    let a_token = app.post("/api/v1/tokens", &a, json!({"name": "a", "permissions": ["account.read"]})).await;
    let a_token_id = a_token.body["token"]["id"].as_str().unwrap().to_string();
    let a_secret = a_token.body["secret"].as_str().unwrap().to_string();
    let mallory = app.signup("Bravo Spa", "mallory@example.com").await;
    let m_token = app
        .post("/api/v1/tokens", &mallory, json!({"name": "m", "permissions": ["members.read", "members.manage"]}))
        .await;
    let m_secret = m_token.body["secret"].as_str().unwrap().to_string();

    let member = format!("/api/v1/members/{}", a_desk.user_id);
    let owner_a = format!("/api/v1/members/{}", a.user_id);
    // Read, change, delete A's members: all "not found" (no existence leak), by cookie and token.
    for path in [&member, &owner_a] {
        assert_eq!(app.get(path, &mallory).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.patch(path, &mallory, json!({"role": "owner"})).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.delete(path, &mallory).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.call_bearer(Method::GET, path, &m_secret, None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.call_bearer(Method::DELETE, path, &m_secret, None).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.delete(&format!("/api/v1/tokens/{a_token_id}"), &mallory).await.status, StatusCode::NOT_FOUND);
    // Lists show only B's own rows.
    let list = app.get("/api/v1/members", &mallory).await.body.to_string();
    assert!(!list.contains(&a.user_id) && !list.contains("alpha") && !list.contains("alice"), "{list}");
    let tokens = app.get("/api/v1/tokens", &mallory).await.body.to_string();
    assert!(!tokens.contains(&a_token_id), "{tokens}");
    // A's data is intact and A's credentials still work.
    let m = app.get(&member, &a).await;
    assert_eq!(m.body["role"], "front_desk");
    assert_eq!(app.get("/api/v1/me", &a_desk).await.status, StatusCode::OK);
    assert_eq!(app.call_bearer(Method::GET, "/api/v1/me", &a_secret, None).await.status, StatusCode::OK);
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status, StatusCode::OK);

    if b == Backend::Postgres {
        rls_is_a_second_wall(&app, &a.tenant_id, &mallory.tenant_id).await;
    }
}

/// Connects as the application role, exactly as the server does, and leaves the tenant filter out.
async fn rls_is_a_second_wall(app: &TestApp, tenant_a: &str, tenant_b: &str) {
    let db = app.scratch.db.as_ref().unwrap();
    let app_url = format!("postgres://lacuna_app@127.0.0.1:5432/{}", db.name());
    let mut c = sqlx::PgConnection::connect(&app_url).await.unwrap();

    // The role is what the server claims: not superuser, no BYPASSRLS.
    let (sup, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert!(!sup && !bypass);

    for table in ["tenants", "users", "members", "sessions", "api_tokens", "audit_events", "audit_heads"] {
        // No tenant set: zero rows, even though both tenants have data.
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c).await.unwrap();
        assert_eq!(n, 0, "{table} visible without a tenant");
        // Tenant A set, no WHERE clause: only A's rows.
        let col = if table == "tenants" { "id" } else { "tenant_id" };
        let mut tx = c.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant_a).execute(&mut *tx).await.unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {col} FROM {table}")))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table}: tenant A has rows");
        assert!(rows.iter().all(|(t,)| t == tenant_a), "{table}: another tenant's row leaked");
        tx.rollback().await.unwrap();
        // Transaction-local: after the transaction, the setting is gone again.
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.unwrap();
        assert_eq!(n, 0, "{table}: tenant setting leaked out of the transaction");
    }

    // Writing into another tenant while scoped to A is refused by the policy's WITH CHECK.
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant_a).execute(&mut *tx).await.unwrap();
    let moved = sqlx::query("UPDATE members SET tenant_id = $1").bind(tenant_b).execute(&mut *tx).await;
    assert!(moved.is_err(), "moved A's members into B");
    tx.rollback().await.unwrap();
    let mut tx = c.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant_a).execute(&mut *tx).await.unwrap();
    let deleted =
        sqlx::query("DELETE FROM members WHERE tenant_id = $1").bind(tenant_b).execute(&mut *tx).await.unwrap();
    assert_eq!(deleted.rows_affected(), 0, "deleted B's rows while scoped to A");
    tx.rollback().await.unwrap();

    // The one-round-trip auth function sets the tenant only for its own statement.
    let _ = sqlx::query("SELECT * FROM lacuna_session_auth($1, $2)")
        .bind(tenant_a)
        .bind(vec![0u8; 32])
        .fetch_all(&mut c)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM members").fetch_one(&mut c).await.unwrap();
    assert_eq!(n, 0, "the auth function leaked its tenant setting");

    // The application role cannot change the schema or switch the policies off.
    let r = sqlx::raw_sql("ALTER TABLE members DISABLE ROW LEVEL SECURITY").execute(&mut c).await;
    assert!(r.is_err(), "application role could disable RLS");
    let r = sqlx::raw_sql("DROP TABLE members").execute(&mut c).await;
    assert!(r.is_err(), "application role could drop a table");
    c.close().await.unwrap();
}
