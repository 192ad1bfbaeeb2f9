//! The authorization matrix: for every operation in the OpenAPI document × {anonymous, each
//! role, an owner of another tenant}, the answer must match what the operation's declared
//! permission (its `security` scopes) and the role's permissions say. A route that declares
//! nothing and is not on the public list fails here.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Session, TestApp};
use lacuna::scratch::Backend;
use lacuna_domain::{Permission, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

both_backends!(every_route_answers_as_its_declared_permission_says);

struct Op {
    method: String,
    path: String,
    /// None: public. Some(None): any signed-in member. Some(Some(p)): needs p.
    requires: Option<Option<Permission>>,
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(security) = op.get("security").and_then(Value::as_array) else {
                assert!(
                    lacuna_http::PUBLIC_ROUTES.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} declares no permission and is not on the public list"
                );
                ops.push(Op { method: method.clone(), path: path.clone(), requires: None });
                continue;
            };
            let mut scopes = BTreeSet::new();
            for req in security {
                for (scheme, s) in req.as_object().unwrap() {
                    assert!(scheme == "session" || scheme == "token", "unknown scheme {scheme}");
                    let s: BTreeSet<String> =
                        s.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
                    scopes.insert(s);
                }
            }
            assert_eq!(scopes.len(), 1, "{method} {path}: session and token must require the same permission");
            let scope = scopes.into_iter().next().unwrap();
            assert!(scope.len() <= 1, "{method} {path}: one permission per route");
            let perm = scope.into_iter().next().map(|s| s.parse::<Permission>().expect("a known permission"));
            assert!(
                !lacuna_http::PUBLIC_ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is public but declares security"
            );
            ops.push(Op { method: method.clone(), path: path.clone(), requires: Some(perm) });
        }
    }
    // Cancelling the practice and signing out change what comes after: do them last.
    ops.sort_by_key(|o| match o.path.as_str() {
        "/api/v1/tenant/cancel" => 1,
        "/api/v1/auth/logout" => 2,
        _ => 0,
    });
    ops
}

async fn every_route_answers_as_its_declared_permission_says(b: Backend) {
    let app = TestApp::spawn(b).await;
    let doc = app.call(Method::GET, "/api/openapi.json", None, None).await.body;
    let ops = operations(&doc);
    assert!(ops.len() >= 12, "the document lists every operation ({})", ops.len());

    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let mut actors: Vec<(String, Option<Role>, Session)> = vec![("owner".into(), Some(Role::Owner), owner.clone())];
    for role in [Role::Manager, Role::Provider, Role::FrontDesk] {
        let s = app.add_member(&owner, &format!("{}@example.com", role.name()), role.name()).await;
        actors.push((role.name().into(), Some(role), s));
    }
    let outsider = app.signup("Other Spa", "mallory@example.com").await;
    // Real ids of tenant A for the path parameters: a member nobody signs in as, and a token.
    let victim = app
        .post("/api/v1/members", &owner, json!({"email": "victim@example.com", "name": "V", "role": "provider"}))
        .await;
    let victim_id = victim.body["member"]["id"].as_str().unwrap().to_string();
    let token = app.post("/api/v1/tokens", &owner, json!({"name": "t", "permissions": ["account.read"]})).await;
    let token_id = token.body["token"]["id"].as_str().unwrap().to_string();

    let mut checked = 0;
    for op in &ops {
        let path = op.path.replace("{id}", if op.path.starts_with("/api/v1/tokens") { &token_id } else { &victim_id });
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let Some(requires) = op.requires else {
            continue; // public: nothing to deny
        };
        // Anonymous: always 401.
        let r = app.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anonymous {} {}", op.method, op.path);
        // Each role of the tenant.
        for (name, role, session) in &actors {
            let allowed = requires.is_none_or(|p| role.unwrap().permissions().contains(p));
            let r = app.call(method.clone(), &path, Some(session), body.clone()).await;
            if allowed {
                assert!(
                    r.status != StatusCode::FORBIDDEN && r.status != StatusCode::UNAUTHORIZED,
                    "{name} should pass {} {}, got {} {:?}",
                    op.method,
                    op.path,
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{name} must be refused {} {}: {:?}",
                    op.method,
                    op.path,
                    r.body
                );
            }
            checked += 1;
        }
        // An owner of another tenant, using tenant A's real ids: never sees or touches them.
        let r = app.call(method.clone(), &path, Some(&outsider), body.clone()).await;
        if op.path.contains("{id}") {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "outsider on {} {}: {:?}", op.method, op.path, r.body);
        } else {
            assert!(
                !r.body.to_string().contains(&owner.tenant_id),
                "outsider saw tenant A via {} {}",
                op.method,
                op.path
            );
            assert!(!r.body.to_string().contains(&victim_id), "outsider saw A's member via {} {}", op.method, op.path);
        }
        checked += 1;
    }
    assert!(checked >= 50, "matrix too small: {checked}");
}
