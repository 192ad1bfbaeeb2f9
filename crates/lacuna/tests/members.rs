//! Members, roles, narrowed permissions, the last-owner rule, and API tokens, on both backends.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    invite_accept_and_sign_in_as_the_new_member,
    roles_limit_what_members_may_do,
    owner_narrows_and_restores_permissions,
    narrowing_beyond_the_role_is_422,
    last_owner_cannot_be_demoted_or_removed,
    removed_member_loses_access_at_once,
    role_change_ends_the_members_sessions,
    api_tokens_are_scoped_hashed_and_revocable,
);

async fn invite_accept_and_sign_in_as_the_new_member(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let r = app
        .post("/api/v1/members", &owner, json!({"email": "Fran@Example.com", "name": "Fran", "role": "front_desk"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["member"]["invited"], true);
    assert_eq!(r.body["member"]["email"], "fran@example.com");
    let token = r.body["invite_token"].as_str().unwrap().to_string();
    // Cannot sign in before accepting.
    assert_eq!(app.login("fran@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    // A short password is refused and the invitation stays usable.
    let r = app
        .call(Method::POST, "/api/v1/auth/accept-invite", None, Some(json!({"token": token, "password": "short"})))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("password"));
    let r = app
        .call(Method::POST, "/api/v1/auth/accept-invite", None, Some(json!({"token": token, "password": PASSWORD})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // An invitation works once.
    let again = app
        .call(Method::POST, "/api/v1/auth/accept-invite", None, Some(json!({"token": token, "password": PASSWORD})))
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.error_field(), Some("token"));
    let r = app.login("fran@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let fran = TestApp::session_from(&r, "fran@example.com");
    let me = app.get("/api/v1/me", &fran).await;
    assert_eq!(me.body["role"], "front_desk");
    assert_eq!(me.body["tenant_id"], owner.tenant_id.as_str());
    // The same email cannot be invited twice.
    let r = app
        .post("/api/v1/members", &owner, json!({"email": "fran@example.com", "name": "Fran 2", "role": "provider"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_field(), Some("email"));
}

async fn roles_limit_what_members_may_do(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let manager = app.add_member(&owner, "max@example.com", "manager").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    // A manager lists members but cannot invite.
    assert_eq!(app.get("/api/v1/members", &manager).await.status, StatusCode::OK);
    let r =
        app.post("/api/v1/members", &manager, json!({"email": "x@example.com", "name": "X", "role": "owner"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), Some("forbidden"));
    // Front desk cannot even list members, nor make itself an owner.
    assert_eq!(app.get("/api/v1/members", &desk).await.status, StatusCode::FORBIDDEN);
    let r = app.patch(&format!("/api/v1/members/{}", desk.user_id), &desk, json!({"role": "owner"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/me", &desk).await.body["role"], "front_desk");
    // Nothing was created by the refused invite.
    assert_eq!(app.get("/api/v1/members", &owner).await.body.as_array().unwrap().len(), 3);
}

async fn owner_narrows_and_restores_permissions(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let manager = app.add_member(&owner, "max@example.com", "manager").await;
    let path = format!("/api/v1/members/{}", manager.user_id);
    let r = app.patch(&path, &owner, json!({"permissions": ["account.read"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["narrowed"], json!(["account.read"]));
    assert_eq!(r.body["permissions"], json!(["account.read"]));
    let again = app.login("max@example.com", PASSWORD).await;
    let manager = TestApp::session_from(&again, "max@example.com");
    assert_eq!(app.get("/api/v1/members", &manager).await.status, StatusCode::FORBIDDEN);
    // null restores the role's full set.
    let r = app.patch(&path, &owner, json!({"permissions": null})).await;
    assert_eq!(r.body["narrowed"], serde_json::Value::Null);
    let again = app.login("max@example.com", PASSWORD).await;
    let manager = TestApp::session_from(&again, "max@example.com");
    assert_eq!(app.get("/api/v1/members", &manager).await.status, StatusCode::OK);
}

async fn narrowing_beyond_the_role_is_422(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    let path = format!("/api/v1/members/{}", desk.user_id);
    let r = app.patch(&path, &owner, json!({"permissions": ["members.manage"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("permissions"));
    let r = app.patch(&path, &owner, json!({"permissions": ["root.everything"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("permissions[0]"));
    let r = app.patch(&path, &owner, json!({"role": "janitor"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("role"));
    let r = app
        .patch(&format!("/api/v1/members/{}", owner.user_id), &owner, json!({"permissions": ["account.read"]}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Unchanged after all refusals.
    let m = app.get(&path, &owner).await;
    assert_eq!(m.body["role"], "front_desk");
    assert_eq!(m.body["narrowed"], serde_json::Value::Null);
}

async fn last_owner_cannot_be_demoted_or_removed(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let me = format!("/api/v1/members/{}", owner.user_id);
    let r = app.patch(&me, &owner, json!({"role": "manager"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), Some("last_owner"));
    let r = app.delete(&me, &owner).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(app.get("/api/v1/me", &owner).await.body["role"], "owner");
    // With a second owner, one may step down; then the other is the last.
    let second = app.add_member(&owner, "sam@example.com", "owner").await;
    let r = app.patch(&me, &owner, json!({"role": "manager"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.delete(&format!("/api/v1/members/{}", second.user_id), &second).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

async fn removed_member_loses_access_at_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    assert_eq!(app.get("/api/v1/me", &desk).await.status, StatusCode::OK);
    let r = app.delete(&format!("/api/v1/members/{}", desk.user_id), &owner).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &desk).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("fran@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.delete(&format!("/api/v1/members/{}", desk.user_id), &owner).await.status, StatusCode::NOT_FOUND);
}

async fn role_change_ends_the_members_sessions(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let manager = app.add_member(&owner, "max@example.com", "manager").await;
    let r = app.patch(&format!("/api/v1/members/{}", manager.user_id), &owner, json!({"role": "provider"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/me", &manager).await.status, StatusCode::UNAUTHORIZED);
    let r = app.login("max@example.com", PASSWORD).await;
    let again = TestApp::session_from(&r, "max@example.com");
    assert_eq!(app.get("/api/v1/me", &again).await.body["role"], "provider");
}

async fn api_tokens_are_scoped_hashed_and_revocable(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let r = app.post("/api/v1/tokens", &owner, json!({"name": "connector", "permissions": ["account.read"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let id = r.body["token"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("lac_"));
    // Works for what it holds, and nothing more.
    let me = app.call_bearer(Method::GET, "/api/v1/me", &secret, None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["permissions"], json!(["account.read"]));
    assert_eq!(app.call_bearer(Method::GET, "/api/v1/members", &secret, None).await.status, StatusCode::FORBIDDEN);
    // Bearer writes need no CSRF token (no ambient cookie).
    let full = app
        .post(
            "/api/v1/tokens",
            &owner,
            json!({"name": "admin script", "permissions": ["members.manage", "members.read"]}),
        )
        .await;
    let full_secret = full.body["secret"].as_str().unwrap().to_string();
    let r = app
        .call_bearer(
            Method::POST,
            "/api/v1/members",
            &full_secret,
            Some(json!({"email": "t@example.com", "name": "T", "role": "provider"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // The secret is never listed and never stored in clear.
    let list = app.get("/api/v1/tokens", &owner).await;
    assert!(!list.body.to_string().contains(&secret[4..]));
    if b == Backend::Sqlite {
        let mut bytes = std::fs::read(app.scratch.dir().join("lacuna.db")).unwrap();
        bytes.extend(std::fs::read(app.scratch.dir().join("lacuna.db-wal")).unwrap_or_default());
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "token secret stored in clear");
    }
    let r = app.post("/api/v1/tokens", &owner, json!({"name": "x", "permissions": ["no.such"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Forged and revoked tokens are refused.
    let mut forged = secret.clone();
    forged.pop();
    forged.push(if secret.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(app.call_bearer(Method::GET, "/api/v1/me", &forged, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.delete(&format!("/api/v1/tokens/{id}"), &owner).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call_bearer(Method::GET, "/api/v1/me", &secret, None).await.status, StatusCode::UNAUTHORIZED);
    // A token dies with its creator's access: narrow the owner's co-owner and the token shrinks.
    let sam = app.add_member(&owner, "sam@example.com", "owner").await;
    let r = app.post("/api/v1/tokens", &sam, json!({"name": "sam's", "permissions": ["members.read"]})).await;
    let sams = r.body["secret"].as_str().unwrap().to_string();
    assert_eq!(app.call_bearer(Method::GET, "/api/v1/members", &sams, None).await.status, StatusCode::OK);
    app.patch(&format!("/api/v1/members/{}", sam.user_id), &owner, json!({"role": "front_desk"})).await;
    assert_eq!(app.call_bearer(Method::GET, "/api/v1/members", &sams, None).await.status, StatusCode::FORBIDDEN);
}
