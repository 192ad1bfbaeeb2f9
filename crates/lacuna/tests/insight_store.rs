//! Insight's store is apart from Practice data: its own SQLite file, or on PostgreSQL its own
//! schema and role — a role the database refuses when it tries to read clients.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::TestApp;
use lacuna::scratch::Backend;
use lacuna_domain::TenantId;
use lacuna_storage::insight::{InsightStore, InsightStoreConfig, StoredEvent};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    events_are_kept_once_per_tenant_apart_from_practice_data,
    practice_events_reach_insight_only_through_the_phi_guard
);

fn event(id: &str, at: i64) -> StoredEvent {
    StoredEvent {
        event_id: id.into(),
        kind: "appointment.completed".into(),
        occurred_at: at,
        body: json!({"event_id": id, "client": "p_abcdefghijklmnop"}).to_string(),
    }
}

async fn open(app: &TestApp) -> InsightStore {
    let config = match &app.scratch.db {
        Some(db) => {
            InsightStoreConfig::Postgres { owner_url: db.url.clone(), app_url: None, role: "lacuna_insight".into() }
        }
        None => InsightStoreConfig::Sqlite { path: app.scratch.config.data_dir.join("insight.db") },
    };
    InsightStore::open(&config).await.unwrap()
}

async fn events_are_kept_once_per_tenant_apart_from_practice_data(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let r = app.post("/api/v1/clients", &owner, json!({"name": "Ada Lovelace", "email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let store = open(&app).await;
    let (a, other) = (owner.tenant_id.parse::<TenantId>().unwrap(), TenantId::new());

    assert_eq!(store.append(a, &[event("e1", 10), event("e2", 20)], 100).await.unwrap(), 2);
    assert_eq!(store.append(a, &[event("e2", 20), event("e3", 30)], 101).await.unwrap(), 1, "e2 is not kept twice");
    assert_eq!(
        store.events(a).await.unwrap().iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["e1", "e2", "e3"]
    );
    assert!(store.events(other).await.unwrap().is_empty(), "another tenant sees none of them");
    store.count_rejection(a, "email").await.unwrap();
    store.count_rejection(a, "email").await.unwrap();
    assert_eq!(store.rejections(a).await.unwrap(), [("email".to_string(), 2)]);

    match &app.scratch.db {
        None => {
            // Its own file: the Practice database has no Insight tables and Insight's has no clients.
            let dir = &app.scratch.config.data_dir;
            assert!(dir.join("insight.db").exists());
            let practice =
                sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("lacuna.db").display())).await.unwrap();
            let found: Option<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master WHERE name = 'events'")
                .fetch_optional(&practice)
                .await
                .unwrap();
            assert!(found.is_none());
            let insight =
                sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("insight.db").display())).await.unwrap();
            assert!(sqlx::query("SELECT 1 FROM clients").fetch_all(&insight).await.is_err());
        }
        Some(db) => {
            // Connected as Insight's role: Practice tables are refused by the database itself.
            let url = lacuna_storage::scratch::replace_database(&lacuna_storage::scratch::admin_url(), db.name());
            let url = url.replacen("postgres@", "lacuna_insight@", 1);
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            for table in ["public.clients", "public.users", "public.appointments", "public.audit_events"] {
                let err = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .expect_err("Insight must not read Practice data");
                assert!(err.to_string().contains("permission denied"), "{table}: {err}");
            }
            // Its own tables work, and without a tenant set, row-level security shows nothing.
            let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM insight.events").fetch_one(&pool).await.unwrap();
            assert_eq!(n, 0);
        }
    }
}

async fn practice_events_reach_insight_only_through_the_phi_guard(b: Backend) {
    use lacuna_practice::insight_feed::{AppointmentFacts, Pseudonymizer, appointment_event};
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let tenant: TenantId = owner.tenant_id.parse().unwrap();
    let services = &app.app.services;
    let key = services.accounts.keyring().tenant_hmac_key(tenant, "pseudonym").await.unwrap();
    let facts = AppointmentFacts {
        appointment_id: "6f1c2f0e-8a1b-4c55-9d1e-0b7f3a2c9e11",
        client_id: "0d6f3c2a-1b2c-4d5e-8f90-123456789abc",
        provider_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        location_id: "5b2e8c1a-3d4f-4e6a-9b7c-8d9e0f1a2b3c",
        category: "filler",
        cycle_days: Some(270),
        follow_up_days: Some(14),
        price_minor: 75_000,
        starts_at: 1_790_000_000,
        ends_at: 1_790_002_700,
    };
    let good = appointment_event(&Pseudonymizer::new(key), "appointment.completed", &facts, 1_790_003_000);
    let mut bad = good.clone();
    bad["client"] = json!("ada@example.com");
    bad["event_id"] = json!(uuid::Uuid::new_v4().to_string());
    let mut tx = services.store.tenant(tenant).write().await.unwrap();
    tx.enqueue_insight_event("o1", &good.to_string(), 1).await.unwrap();
    tx.enqueue_insight_event("o2", &bad.to_string(), 2).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(lacuna::jobs::deliver_insight_events(services).await.unwrap(), 1);
    let kept = services.insight.events(tenant).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(!kept[0].body.contains("ada@example.com") && !kept[0].body.contains(facts.client_id));
    assert_eq!(services.insight.rejections(tenant).await.unwrap(), [("Email".to_string(), 1)]);
    // Delivered once: a second run finds nothing left to send.
    assert_eq!(lacuna::jobs::deliver_insight_events(services).await.unwrap(), 0);
    assert_eq!(services.insight.events(tenant).await.unwrap().len(), 1);
}
