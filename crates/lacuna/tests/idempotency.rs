//! `Idempotency-Key` on POST: retries return the first response and create nothing twice, also
//! when the copies race; a key reused for another request is refused; keys are per member.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Resp, Session, TestApp};
use lacuna::scratch::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_retry_returns_the_first_response_and_creates_nothing_twice,
    a_key_reused_for_another_request_is_refused,
    racing_copies_of_one_request_create_one_client,
    keys_belong_to_one_member_and_are_validated,
    refusals_are_replayed_too,
);

async fn post_with_key(app: &TestApp, who: &Session, path: &str, key: &str, body: Value) -> Resp {
    let r = app
        .client
        .post(app.url(path))
        .header("cookie", &who.cookie)
        .header("x-csrf-token", &who.csrf)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    TestApp::read(r).await
}

async fn clients_with_email(app: &TestApp, who: &Session, email: &str) -> usize {
    let r = app.get(&format!("/api/v1/clients/lookup?email={email}"), who).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body.as_array().unwrap().len()
}

async fn a_retry_returns_the_first_response_and_creates_nothing_twice(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let body = json!({"name": "Ada Client", "email": "ada@example.com"});
    let first = post_with_key(&app, &owner, "/api/v1/clients", "retry-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = post_with_key(&app, &owner, "/api/v1/clients", "retry-1", body.clone()).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(second.body, first.body, "the very same response comes back");
    assert_eq!(clients_with_email(&app, &owner, "ada@example.com").await, 1);
    // Without a key, the same body is a new request.
    let third = app.post("/api/v1/clients", &owner, body).await;
    assert_eq!(third.status, StatusCode::CREATED);
    assert_ne!(third.body["id"], first.body["id"]);
    assert_eq!(clients_with_email(&app, &owner, "ada@example.com").await, 2);
    // The stored response names a client: it is encrypted, never kept in clear.
    let leaked = app.owner_count("SELECT 1 FROM idempotency_keys WHERE response_ct IS NULL").await;
    assert_eq!(leaked, 0);
}

async fn a_key_reused_for_another_request_is_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let r = post_with_key(&app, &owner, "/api/v1/clients", "k-1", json!({"name": "Ada"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = post_with_key(&app, &owner, "/api/v1/clients", "k-1", json!({"name": "Grace"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("idempotency_key_reused"));
    assert_eq!(r.error_field(), Some("Idempotency-Key"));
}

async fn racing_copies_of_one_request_create_one_client(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let body = json!({"name": "Ada Client", "email": "race@example.com"});
    let results = futures_util::future::join_all(
        (0..10).map(|_| post_with_key(&app, &owner, "/api/v1/clients", "race", body.clone())),
    )
    .await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert!(!created.is_empty());
    for r in &results {
        assert!(
            r.status == StatusCode::CREATED || r.error_code() == Some("idempotency_in_progress"),
            "{} {:?}",
            r.status,
            r.body
        );
    }
    assert!(created.iter().all(|r| r.body["id"] == created[0].body["id"]), "every success names the same client");
    assert_eq!(clients_with_email(&app, &owner, "race@example.com").await, 1);
}

async fn keys_belong_to_one_member_and_are_validated(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "desk@example.com", "front_desk").await;
    let body = json!({"name": "Ada", "email": "shared@example.com"});
    let a = post_with_key(&app, &owner, "/api/v1/clients", "same-key", body.clone()).await;
    let d = post_with_key(&app, &desk, "/api/v1/clients", "same-key", body).await;
    assert_eq!((a.status, d.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(d.headers.get("idempotent-replayed").is_none(), "another member's key is not mine");
    assert_ne!(a.body["id"], d.body["id"]);
    let r = post_with_key(&app, &owner, "/api/v1/clients", &"x".repeat(256), json!({"name": "Ada"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("Idempotency-Key"));
    // Not signed in: the route's own refusal, not an idempotency answer.
    let r = app.client.post(app.url("/api/v1/clients")).header("idempotency-key", "k").json(&json!({"name": "x"}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

async fn refusals_are_replayed_too(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let body = json!({"name": "Ada", "email": "not-an-email"});
    let first = post_with_key(&app, &owner, "/api/v1/clients", "bad-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::UNPROCESSABLE_ENTITY);
    let again = post_with_key(&app, &owner, "/api/v1/clients", "bad-1", body).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
}
