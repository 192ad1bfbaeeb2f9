//! Sign-up, sign-in, sessions, sign-out, throttling, validation and JSON errors, over HTTPS,
//! on both backends.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    signup_then_me_shows_owner,
    short_password_is_422_naming_the_field,
    duplicate_email_is_409_and_nothing_half_written,
    login_and_logout_revokes_the_session,
    wrong_password_is_401_and_throttled_with_retry_after,
    session_cookie_has_the_required_attributes,
    request_bodies_are_validated_as_json_errors,
    forged_tampered_expired_and_revoked_cookies_are_refused,
    csrf_token_required_for_cookie_writes,
    security_headers_on_every_response,
);

async fn signup_then_me_shows_owner(b: Backend) {
    let app = TestApp::spawn(b).await;
    let s = app.signup("Glow Spa", "olive@example.com").await;
    let r = app.get("/api/v1/me", &s).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["tenant_name"], "Glow Spa");
    assert_eq!(r.body["email"], "olive@example.com");
    assert_eq!(r.body["role"], "owner");
    assert_eq!(r.body["tenant_id"], s.tenant_id.as_str());
    assert!(r.body["permissions"].as_array().unwrap().iter().any(|p| p == "members.manage"));
    // Anonymous: 401 with the JSON error body.
    let r = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), Some("unauthenticated"));
}

async fn short_password_is_422_naming_the_field(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/signup",
            None,
            Some(json!({"practice_name": "A", "name": "B", "email": "b@example.com", "password": "elevenchars"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("password"));
    // Nothing was created: the email is still free.
    app.signup("A", "b@example.com").await;
}

async fn duplicate_email_is_409_and_nothing_half_written(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup("First Spa", "same@example.com").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/signup",
            None,
            Some(
                json!({"practice_name": "Second Spa", "name": "X", "email": "SAME@example.com", "password": PASSWORD}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_field(), Some("email"));
    // The failed signup left no tenant behind (one transaction).
    let tenants = app.owner_sql("UPDATE tenants SET name = name").await;
    assert_eq!(tenants, 1);
}

async fn login_and_logout_revokes_the_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup("Glow Spa", "olive@example.com").await;
    let r = app.login("Olive@Example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let s = TestApp::session_from(&r, "olive@example.com");
    assert_eq!(app.get("/api/v1/me", &s).await.status, StatusCode::OK);
    let r = app.call(Method::POST, "/api/v1/auth/logout", Some(&s), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let cleared = r.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie is dead on the server, not just in the browser.
    assert_eq!(app.get("/api/v1/me", &s).await.status, StatusCode::UNAUTHORIZED);
}

async fn wrong_password_is_401_and_throttled_with_retry_after(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup("Glow Spa", "olive@example.com").await;
    for _ in 0..5 {
        let r = app.login("olive@example.com", "not the password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), Some("invalid_credentials"));
    }
    // Unknown accounts answer exactly like wrong passwords.
    let r = app.login("nobody@example.com", "not the password!").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, app.login("nobody@example.com", "x").await.body);
    // The account is now locked for a while, even with the right password.
    let r = app.login("olive@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    // Per client address too: many accounts from one address get throttled.
    let mut throttled = false;
    for i in 0..40 {
        let r = app.login(&format!("guess{i}@example.com"), "not the password!").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers.contains_key("retry-after"));
            throttled = true;
            break;
        }
    }
    assert!(throttled, "per-address throttling never kicked in");
}

async fn session_cookie_has_the_required_attributes(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/signup",
            None,
            Some(json!({"practice_name": "A", "name": "B", "email": "c@example.com", "password": PASSWORD})),
        )
        .await;
    let c = r.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(c.starts_with("__Host-lacuna_session="), "{c}");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(attr), "missing {attr} in {c}");
    }
    assert!(!c.contains("Domain"), "{c}");
}

async fn request_bodies_are_validated_as_json_errors(b: Backend) {
    let app = TestApp::spawn(b).await;
    let post_raw = |body: &'static str, ctype: &'static str| {
        let req = app.client.post(app.url("/api/v1/signup")).header("content-type", ctype).body(body);
        async move { TestApp::read(req.send().await.unwrap()).await }
    };
    let r = post_raw("{not json", "application/json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), Some("malformed_json"));
    let r = post_raw(r#"{"practice_name":"A","name":"B","email":"e@example.com"}"#, "application/json").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("password"));
    let r = post_raw(
        r#"{"practice_name":"A","name":"B","email":"e@example.com","password":"long enough pass","admin":true}"#,
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("admin"));
    let r =
        post_raw(r#"{"practice_name":"A","name":7,"email":"e@example.com","password":"x"}"#, "application/json").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("name"));
    let r = post_raw(
        r#"{"practice_name":"A","name":"B","email":"nope","password":"long enough pass"}"#,
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("email"));
    let r = post_raw("practice_name=A", "application/x-www-form-urlencoded").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Over the 1 MiB limit. The server stops reading and closes that connection, so this
    // request goes on a client of its own rather than poisoning the shared connection pool.
    let big = format!(r#"{{"practice_name":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    // The client may still be writing when the 413 arrives and the server closes the
    // connection; a reset is also a refusal, but at least one attempt must read the JSON 413.
    let cert = app.app.certificate_pem().unwrap();
    let mut answered = None;
    for _ in 0..5 {
        let lone = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&cert).unwrap()])
            .build()
            .unwrap();
        let sent = lone.post(app.url("/api/v1/signup")).header("content-type", "application/json").body(big.clone());
        if let Ok(resp) = sent.send().await {
            answered = Some(TestApp::read(resp).await);
            break;
        }
    }
    let r = answered.expect("the server answered an oversized body at least once");
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), Some("payload_too_large"));
    // Unknown route and wrong method: JSON too.
    let r = app.call(Method::GET, "/api/v1/nope", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), Some("not_found"));
    let r = app.call(Method::DELETE, "/api/v1/signup", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), Some("method_not_allowed"));
}

async fn forged_tampered_expired_and_revoked_cookies_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let s = app.signup("Glow Spa", "olive@example.com").await;
    let other = app.signup("Other Spa", "other@example.com").await;
    let with_cookie = |cookie: String| common::Session { cookie, ..s.clone() };
    let value = s.cookie.split_once('=').unwrap().1.to_string();
    let (tenant_hex, secret) = value.split_once('.').unwrap();
    // Random forgery in the right shape.
    let forged = format!("__Host-lacuna_session={tenant_hex}.{}", "A".repeat(43));
    assert_eq!(app.get("/api/v1/me", &with_cookie(forged)).await.status, StatusCode::UNAUTHORIZED);
    // One character of the secret changed.
    let mut chars: Vec<char> = secret.chars().collect();
    chars[5] = if chars[5] == 'x' { 'y' } else { 'x' };
    let tampered = format!("__Host-lacuna_session={tenant_hex}.{}", chars.into_iter().collect::<String>());
    assert_eq!(app.get("/api/v1/me", &with_cookie(tampered)).await.status, StatusCode::UNAUTHORIZED);
    // A real secret presented under another tenant's id.
    let other_hex = other.tenant_id.replace('-', "");
    let moved = format!("__Host-lacuna_session={other_hex}.{secret}");
    assert_eq!(app.get("/api/v1/me", &with_cookie(moved)).await.status, StatusCode::UNAUTHORIZED);
    // Garbage.
    assert_eq!(
        app.get("/api/v1/me", &with_cookie("__Host-lacuna_session=..".into())).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Still fine before expiry.
    assert_eq!(app.get("/api/v1/me", &s).await.status, StatusCode::OK);
    // Idle for 31 minutes: refused.
    let idle = app.login("olive@example.com", PASSWORD).await;
    let idle = TestApp::session_from(&idle, "olive@example.com");
    app.owner_sql("UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60").await;
    assert_eq!(app.get("/api/v1/me", &idle).await.status, StatusCode::UNAUTHORIZED);
    // Past the 12-hour absolute lifetime, even if recently used: refused.
    let old = app.login("olive@example.com", PASSWORD).await;
    let old = TestApp::session_from(&old, "olive@example.com");
    assert_eq!(app.get("/api/v1/me", &old).await.status, StatusCode::OK);
    app.owner_sql("UPDATE sessions SET expires_at = expires_at - 12 * 3600 - 1").await;
    assert_eq!(app.get("/api/v1/me", &old).await.status, StatusCode::UNAUTHORIZED);
    // Revoked (logged out) sessions are refused.
    let r = app.login("other@example.com", PASSWORD).await;
    let live = TestApp::session_from(&r, "other@example.com");
    app.call(Method::POST, "/api/v1/auth/logout", Some(&live), None).await;
    assert_eq!(app.get("/api/v1/me", &live).await.status, StatusCode::UNAUTHORIZED);
}

async fn csrf_token_required_for_cookie_writes(b: Backend) {
    let app = TestApp::spawn(b).await;
    let s = app.signup("Glow Spa", "olive@example.com").await;
    let body = json!({"email": "fd@example.com", "name": "Fran", "role": "front_desk"});
    let no_token =
        app.client.post(app.url("/api/v1/members")).header("cookie", &s.cookie).json(&body).send().await.unwrap();
    let r = TestApp::read(no_token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), Some("csrf"));
    let wrong = app
        .client
        .post(app.url("/api/v1/members"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", "0".repeat(43))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(TestApp::read(wrong).await.status, StatusCode::FORBIDDEN);
    // Nothing was created by the refused requests.
    assert_eq!(app.get("/api/v1/members", &s).await.body.as_array().unwrap().len(), 1);
    assert_eq!(app.post("/api/v1/members", &s, body).await.status, StatusCode::CREATED);
}

async fn security_headers_on_every_response(b: Backend) {
    let app = TestApp::spawn(b).await;
    let s = app.signup("Glow Spa", "olive@example.com").await;
    for r in [
        app.call(Method::GET, "/healthz", None, None).await,
        app.get("/api/v1/me", &s).await,
        app.call(Method::GET, "/api/v1/me", None, None).await,
        app.call(Method::GET, "/no/such/page", None, None).await,
    ] {
        let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(h("strict-transport-security").contains("max-age="), "HSTS");
        let csp = h("content-security-policy");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert!(!h("referrer-policy").is_empty());
        assert!(!h("x-request-id").is_empty());
    }
}

/// A database restart closes every pooled connection; the requests after it must not fail. Here
/// the server's connections are terminated between requests, and the next sign-in check, read and
/// write succeed (each on a fresh connection; a closed one is discarded, never handed out twice).
#[tokio::test]
async fn postgresql_requests_survive_their_connections_being_closed() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let owner = app.signup("Alpha Spa", "alice@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/me", &owner).await.status, StatusCode::OK);
    }
    let closed = app
        .owner_count(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename <> current_user",
        )
        .await;
    assert!(closed >= 1, "no server connection to close");
    for round in 0..3 {
        assert_eq!(app.get("/api/v1/me", &owner).await.status, StatusCode::OK, "read, round {round}");
        let made = app
            .post("/api/v1/tokens", &owner, json!({"name": format!("t{round}"), "permissions": ["account.read"]}))
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "write, round {round}: {:?}", made.body);
    }
}
