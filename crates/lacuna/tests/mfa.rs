//! MFA: TOTP enrollment with a QR code, the second factor at sign-in, single-use recovery codes,
//! replay refusal, step-up before privileged actions, the tenant policy, turning it off.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, Session, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    enroll_confirm_and_sign_in_with_a_second_factor,
    replayed_totp_and_reused_recovery_codes_are_refused,
    privileged_actions_need_a_recent_mfa_check,
    policy_walks_members_through_enrollment,
    turning_mfa_off_needs_password_and_code,
    guessing_codes_is_throttled,
);

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The code an authenticator app shows `ahead` seconds from now.
fn code(secret: &[u8], ahead: u64) -> String {
    lacuna_crypto::totp_code(secret, now() + ahead)
}

/// Enrolls `who` and confirms; returns (secret, recovery codes).
async fn enroll(app: &TestApp, who: &Session) -> (Vec<u8>, Vec<String>) {
    let e = app.call(Method::POST, "/api/v1/mfa/enroll", Some(who), None).await;
    assert_eq!(e.status, StatusCode::OK, "{:?}", e.body);
    let secret = lacuna_crypto::totp_secret_from_base32(e.body["secret"].as_str().unwrap()).unwrap();
    let r = app.post("/api/v1/mfa/confirm", who, json!({"code": code(&secret, 0)})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let codes = r.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (secret, codes)
}

async fn login(app: &TestApp, email: &str) -> (Session, Value) {
    let r = app.login(email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (TestApp::session_from(&r, email), r.body)
}

async fn audit_actions(app: &TestApp, owner: &Session) -> Vec<String> {
    let r = app.get("/api/v1/audit?limit=1000", owner).await;
    r.body.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

async fn enroll_confirm_and_sign_in_with_a_second_factor(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = app.get("/api/v1/mfa", &owner).await;
    assert_eq!((s.body["enrolled"].as_bool(), s.body["policy"].as_str()), (Some(false), Some("optional")));

    let e = app.call(Method::POST, "/api/v1/mfa/enroll", Some(&owner), None).await;
    let uri = e.body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Lacuna:olive%40example.com?"), "{uri}");
    assert!(uri.contains(&format!("secret={}", e.body["secret"].as_str().unwrap())));
    let svg = e.body["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && !svg.contains("<script"));
    let secret = lacuna_crypto::totp_secret_from_base32(e.body["secret"].as_str().unwrap()).unwrap();
    // A wrong first code does not confirm.
    let r = app.post("/api/v1/mfa/confirm", &owner, json!({"code": "000000"})).await;
    let r = if r.status == StatusCode::OK {
        app.post("/api/v1/mfa/confirm", &owner, json!({"code": "999999"})).await
    } else {
        r
    };
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("code"));
    let r = app.post("/api/v1/mfa/confirm", &owner, json!({"code": code(&secret, 0)})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);
    let s = app.get("/api/v1/mfa", &owner).await;
    assert_eq!((s.body["enrolled"].as_bool(), s.body["recovery_codes_left"].as_i64()), (Some(true), Some(10)));

    // Sign-in now owes a second factor; until then the session opens nothing else.
    let (pending, body) = login(&app, "olive@example.com").await;
    assert_eq!(body["mfa_required"], true);
    let r = app.get("/api/v1/me", &pending).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, Some("mfa_required")));
    let r =
        app.post("/api/v1/members", &pending, json!({"email": "x@example.com", "name": "X", "role": "provider"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post("/api/v1/mfa/verify", &pending, json!({"code": "12345"})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = app.post("/api/v1/mfa/verify", &pending, json!({"code": code(&secret, 30)})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(app.get("/api/v1/me", &pending).await.status, StatusCode::OK);

    let actions = audit_actions(&app, &pending).await;
    for a in ["mfa.enable", "auth.mfa_failed", "auth.mfa_verified"] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited: {actions:?}");
    }
    // The TOTP secret is stored only encrypted.
    if b == Backend::Sqlite {
        let mut bytes = std::fs::read(app.scratch.dir().join("lacuna.db")).unwrap();
        bytes.extend(std::fs::read(app.scratch.dir().join("lacuna.db-wal")).unwrap_or_default());
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()), "TOTP secret in clear");
    }
}

async fn replayed_totp_and_reused_recovery_codes_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup("Glow Spa", "olive@example.com").await;
    let (first, _) = login(&app, "olive@example.com").await;
    let (secret, recovery) = enroll(&app, &first).await;

    let c = code(&secret, 30);
    let (a, _) = login(&app, "olive@example.com").await;
    assert_eq!(app.post("/api/v1/mfa/verify", &a, json!({"code": c})).await.status, StatusCode::NO_CONTENT);
    // The same code again, on another sign-in: refused (each time step is accepted once).
    let (replay, _) = login(&app, "olive@example.com").await;
    let r = app.post("/api/v1/mfa/verify", &replay, json!({"code": c})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/api/v1/me", &replay).await.status, StatusCode::UNAUTHORIZED);
    // A recovery code works once, with any capitalisation or dashes.
    let rc = recovery[3].to_uppercase();
    assert_eq!(app.post("/api/v1/mfa/verify", &replay, json!({"code": rc})).await.status, StatusCode::NO_CONTENT);
    let (again, _) = login(&app, "olive@example.com").await;
    let r = app.post("/api/v1/mfa/verify", &again, json!({"code": recovery[3]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "recovery code used twice");
    assert_eq!(app.get("/api/v1/mfa", &a).await.body["recovery_codes_left"], 9);
    assert!(audit_actions(&app, &a).await.iter().any(|x| x == "mfa.recovery_code_used"));
}

async fn privileged_actions_need_a_recent_mfa_check(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let (_, recovery) = enroll(&app, &owner).await;
    // Just enrolled: the check is fresh.
    let invite = |n: u32| json!({"email": format!("p{n}@example.com"), "name": "P", "role": "provider"});
    assert_eq!(app.post("/api/v1/members", &owner, invite(1)).await.status, StatusCode::CREATED);
    // Eleven minutes later (moved in the database), privileged actions are refused...
    app.owner_sql("UPDATE sessions SET mfa_verified_at = mfa_verified_at - 11 * 60").await;
    for r in [
        app.post("/api/v1/members", &owner, invite(2)).await,
        app.post("/api/v1/tokens", &owner, json!({"name": "t", "permissions": ["account.read"]})).await,
        app.get("/api/v1/audit/export", &owner).await,
        app.call(Method::PUT, "/api/v1/settings/mfa-policy", Some(&owner), Some(json!({"policy": "everyone"}))).await,
    ] {
        assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, Some("step_up_required")), "{:?}", r.body);
    }
    // ...while ordinary reads still work.
    assert_eq!(app.get("/api/v1/members", &owner).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/audit", &owner).await.status, StatusCode::OK);
    // A step-up (here with a recovery code) opens them again.
    assert_eq!(
        app.post("/api/v1/mfa/verify", &owner, json!({"code": recovery[0]})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.post("/api/v1/members", &owner, invite(2)).await.status, StatusCode::CREATED);
    // Nothing was created by the refused attempts.
    assert_eq!(app.get("/api/v1/members", &owner).await.body.as_array().unwrap().len(), 3);
}

async fn policy_walks_members_through_enrollment(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    app.add_member(&owner, "max@example.com", "manager").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    let r = app.call(Method::PUT, "/api/v1/settings/mfa-policy", Some(&owner), Some(json!({"policy": "always"}))).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("policy")));
    let r = app
        .call(Method::PUT, "/api/v1/settings/mfa-policy", Some(&owner), Some(json!({"policy": "owners_managers"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // The manager must enroll before anything else; front desk is not affected.
    let (max, body) = login(&app, "max@example.com").await;
    assert_eq!(body["mfa_enrollment_required"], true);
    let r = app.get("/api/v1/members", &max).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, Some("mfa_enrollment_required")));
    assert_eq!(app.get("/api/v1/me", &max).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/mfa", &max).await.body["required"], true);
    enroll(&app, &max).await;
    assert_eq!(app.get("/api/v1/members", &max).await.status, StatusCode::OK);
    let (_, body) = login(&app, "fran@example.com").await;
    assert_eq!(body["mfa_enrollment_required"], false);
    assert_eq!(app.get("/api/v1/me", &desk).await.status, StatusCode::OK);
    // The owner, too, now has to enroll (the policy covers owners).
    let (o2, body) = login(&app, "olive@example.com").await;
    assert_eq!(body["mfa_enrollment_required"], true);
    assert_eq!(app.get("/api/v1/audit", &o2).await.error_code(), Some("mfa_enrollment_required"));
    enroll(&app, &o2).await;
    assert!(audit_actions(&app, &o2).await.iter().any(|x| x == "settings.mfa_policy"));
}

async fn turning_mfa_off_needs_password_and_code(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let (secret, recovery) = enroll(&app, &owner).await;
    let r = app.post("/api/v1/mfa/disable", &owner, json!({"password": "not my password", "code": recovery[0]})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password")));
    let r = app.post("/api/v1/mfa/disable", &owner, json!({"password": PASSWORD, "code": "000000"})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")));
    assert_eq!(app.get("/api/v1/mfa", &owner).await.body["enrolled"], true);
    let r = app.post("/api/v1/mfa/disable", &owner, json!({"password": PASSWORD, "code": code(&secret, 30)})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let (_, body) = login(&app, "olive@example.com").await;
    assert_eq!(body["mfa_required"], false);
    assert!(audit_actions(&app, &owner).await.iter().any(|x| x == "mfa.disable"));
}

async fn guessing_codes_is_throttled(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let (secret, _) = enroll(&app, &owner).await;
    let (pending, _) = login(&app, "olive@example.com").await;
    let good = code(&secret, 30);
    let wrong = if good == "123456" { "654321" } else { "123456" };
    for _ in 0..5 {
        assert_eq!(
            app.post("/api/v1/mfa/verify", &pending, json!({"code": wrong})).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let r = app.post("/api/v1/mfa/verify", &pending, json!({"code": good})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key("retry-after"));
}
