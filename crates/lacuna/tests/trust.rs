//! Request log (route templates only, per tenant, exported by owners, purged after 90 days),
//! the trust page (measured facts that change when reality does), and security.txt.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    request_log_records_route_templates_per_tenant,
    request_log_is_purged_after_ninety_days,
    trust_page_reports_what_the_server_measured,
    security_txt_follows_rfc_9116,
);

fn now() -> i64 {
    lacuna_storage::now_unix()
}

async fn export_lines(app: &TestApp, who: &common::Session) -> Vec<Value> {
    let r = app.client.get(app.url("/api/v1/request-log/export")).header("cookie", &who.cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn request_log_records_route_templates_per_tenant(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = app.signup("Alpha Spa", "alice@example.com").await;
    let other = app.signup("Bravo Spa", "bob@example.com").await;
    let member = format!("/api/v1/members/{}", a.user_id);
    assert_eq!(app.get(&format!("{member}?note=jane.doe%40example.com"), &a).await.status, StatusCode::OK);
    app.get("/api/v1/members/not-a-real-id", &a).await;
    app.get("/api/v1/me", &other).await;

    let lines = export_lines(&app, &a).await;
    let text = lines.iter().map(Value::to_string).collect::<String>();
    // The route template, never the raw path, query string or the personal data in it.
    assert!(lines.iter().any(|l| l["route"] == "/api/v1/members/{id}" && l["status"] == 200), "{text}");
    assert!(lines.iter().any(|l| l["route"] == "/api/v1/members/{id}" && l["status"] == 404), "{text}");
    assert!(lines.iter().all(|l| !l["route"].as_str().unwrap().contains(&a.user_id)), "raw path recorded: {text}");
    assert!(!text.contains("jane.doe") && !text.contains("not-a-real-id") && !text.contains("note="), "{text}");
    let first = &lines[0];
    for field in ["occurred_at", "method", "route", "status", "latency_us", "request_id", "direction"] {
        assert!(!first[field].is_null(), "{field} missing: {first}");
    }
    assert!(lines.iter().any(|l| l["actor"] == format!("user:{}", a.user_id)));
    // Only this tenant's requests.
    assert!(!lines.iter().any(|l| l["route"] == "/api/v1/me" && l["actor"] == format!("user:{}", other.user_id)));
    let theirs = export_lines(&app, &other).await;
    assert!(theirs.iter().all(|l| l["actor"] != format!("user:{}", a.user_id)));
    // CSV as well.
    let csv = app
        .client
        .get(app.url("/api/v1/request-log/export?format=csv"))
        .header("cookie", &a.cookie)
        .send()
        .await
        .unwrap();
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("occurred_at,direction,method,route,status,latency_us,actor,request_id"), "{csv}");
}

async fn request_log_is_purged_after_ninety_days(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = app.signup("Alpha Spa", "alice@example.com").await;
    let day = 86_400;
    for (tenant, age, id) in [
        (Some(&a.tenant_id), 91 * day, "old-a"),
        (Some(&a.tenant_id), 89 * day, "recent-a"),
        (None, 120 * day, "old-anonymous"),
        (None, 10 * day, "recent-anonymous"),
    ] {
        let t = tenant.map(|t| format!("'{t}'")).unwrap_or("NULL".into());
        app.owner_sql(&format!(
            "INSERT INTO request_log (tenant_id, occurred_at, direction, method, route, status, latency_us, actor, request_id)
             VALUES ({t}, {}, 'in', 'GET', '/api/v1/me', 200, 10, NULL, '{id}')",
            now() - age
        ))
        .await;
    }
    let removed = lacuna::jobs::purge_request_log(&app.app.services, &app.app.state.trust, now()).await.unwrap();
    assert_eq!(removed, 2);
    let ids: Vec<String> =
        export_lines(&app, &a).await.iter().map(|l| l["request_id"].as_str().unwrap().to_string()).collect();
    assert!(ids.contains(&"recent-a".to_string()) && !ids.contains(&"old-a".to_string()), "{ids:?}");
    let remaining = app
        .owner_sql("UPDATE request_log SET status = status WHERE request_id IN ('old-anonymous', 'recent-anonymous')")
        .await;
    assert_eq!(remaining, 1);
    let trust = app.call(Method::GET, "/api/v1/trust", None, None).await.body;
    assert_eq!(trust["request_log"]["rows_purged"], 2);
    assert_eq!(trust["request_log"]["retention_days"], 90);
}

async fn trust_page_reports_what_the_server_measured(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    // The TLS probe runs right after start; wait for it.
    let mut t = Value::Null;
    for _ in 0..50 {
        t = app.call(Method::GET, "/api/v1/trust", None, None).await.body;
        if t["tls"]["probed_at"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(t["tls"]["accepted"], json!(["TLS 1.3", "TLS 1.2"]), "{t}");
    assert_eq!(t["tls"]["refused"], json!(["TLS 1.1", "TLS 1.0"]), "{t}");
    assert_eq!(t["encryption_at_rest"]["self_test_passed"], true);
    match b {
        Backend::Postgres => assert_eq!(t["row_level_security"]["enforced"], true),
        Backend::Sqlite => assert!(t["row_level_security"]["enforced"].is_null()),
    }
    assert!(t["practice"].is_null(), "no practice facts without a session");
    // Audit: nothing verified until the job runs; then the time and the count are shown.
    assert!(t["audit_trail"]["chains_verified_at"].is_null());
    lacuna::jobs::verify_audit_chains(&app.app.services, &app.app.state.trust).await.unwrap();
    let t = app.get("/api/v1/trust", &owner).await.body;
    assert!(t["audit_trail"]["chains_verified_at"].is_string());
    assert_eq!(t["audit_trail"]["broken_chains"], 0);
    assert_eq!(t["practice"]["mfa_policy"], "optional");
    assert_eq!(t["practice"]["audit_chain_intact"], true);
    assert_eq!(t["practice"]["data_key_unwraps_with_master_key"], true);
    // Facts follow reality: change the policy and break the chain, and the page says so.
    app.call(Method::PUT, "/api/v1/settings/mfa-policy", Some(&owner), Some(json!({"policy": "everyone"}))).await;
    let unguard = match b {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER",
    };
    app.owner_sql(unguard).await;
    app.owner_sql(&format!(
        "UPDATE audit_events SET actor = 'someone else' WHERE tenant_id = '{}' AND seq = 1",
        owner.tenant_id
    ))
    .await;
    let t = app.get("/api/v1/trust", &owner).await.body;
    assert_eq!(t["practice"]["mfa_policy"], "everyone");
    assert_eq!(t["practice"]["audit_chain_intact"], false);
    lacuna::jobs::verify_audit_chains(&app.app.services, &app.app.state.trust).await.unwrap();
    let t = app.call(Method::GET, "/api/v1/trust", None, None).await.body;
    assert_eq!(t["audit_trail"]["broken_chains"], 1);
    // The HTML page shows the same facts, under the strict CSP.
    let page = app.client.get(app.url("/trust")).send().await.unwrap();
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("TLS 1.3") && html.contains("Audit trail") && !html.contains("<script"), "{html}");
}

async fn security_txt_follows_rfc_9116(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app.client.get(app.url("/.well-known/security.txt")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::to_string);
    assert_eq!(field("Contact").as_deref(), Some("mailto:security@localhost"));
    let expires = field("Expires").unwrap();
    let t = time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339).unwrap();
    let days = (t.unix_timestamp() - now()) / 86_400;
    assert!((170..=180).contains(&days), "{expires}");
}
