//! Keys: tenant keys live in a keystore apart from the data; tenant-key rotation re-encrypts and
//! destroys the old version without losing data; master-key rotation re-wraps everything;
//! deleting a tenant destroys its keys, so an old copy of the database restored with the current
//! keys cannot be read (and the data it brought back is removed again).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{PASSWORD, Session, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(
    keys_live_apart_and_tenant_rotation_keeps_data_readable,
    master_key_rotation_rewraps_every_key,
    cancelled_tenant_is_read_only_then_deleted_with_its_keys,
    deleted_tenant_stays_unreadable_in_an_old_copy_of_the_database,
);

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn enroll(app: &TestApp, who: &Session) -> Vec<u8> {
    let e = app.call(Method::POST, "/api/v1/mfa/enroll", Some(who), None).await;
    let secret = lacuna_crypto::totp_secret_from_base32(e.body["secret"].as_str().unwrap()).unwrap();
    let r = app.post("/api/v1/mfa/confirm", who, json!({"code": lacuna_crypto::totp_code(&secret, now())})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    secret
}

/// Signs in and passes the second factor with a code `ahead` seconds in the future.
async fn sign_in_with_mfa(app: &TestApp, email: &str, secret: &[u8], ahead: u64) -> StatusCode {
    let r = app.login(email, PASSWORD).await;
    let s = TestApp::session_from(&r, email);
    let code = lacuna_crypto::totp_code(secret, now() + ahead);
    app.post("/api/v1/mfa/verify", &s, json!({"code": code})).await.status
}

fn run_cli(app: &TestApp, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lacuna"));
    cmd.args(args).arg("--data-dir").arg(app.scratch.dir());
    match &app.scratch.db {
        Some(db) => cmd.env("DATABASE_URL", &db.url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    cmd.env_remove("LACUNA_MASTER_KEY").env_remove("LACUNA_PREVIOUS_MASTER_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

async fn keys_live_apart_and_tenant_rotation_keeps_data_readable(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let secret = enroll(&app, &owner).await;
    let tenant = owner.tenant_id.parse().unwrap();
    let keystore = app.app.services.accounts.keyring().keystore().clone();
    let scope = format!("tenant:{}", owner.tenant_id);
    assert_eq!(keystore.keys(&scope).await.unwrap().len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.scratch.dir().join("keystore.db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "keystore readable by others");
    }
    // The data database holds no key material.
    if b == Backend::Sqlite {
        let wrapped = keystore.keys(&scope).await.unwrap()[0].wrapped.clone();
        let mut bytes = std::fs::read(app.scratch.dir().join("lacuna.db")).unwrap();
        bytes.extend(std::fs::read(app.scratch.dir().join("lacuna.db-wal")).unwrap_or_default());
        assert!(!bytes.windows(24).any(|w| w == &wrapped[..24]), "wrapped key found in the data database");
    }

    // Rotate with the real command while the server runs.
    let out = run_cli(&app, &["keys", "rotate", "--tenant", &owner.tenant_id], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1 field"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let keys = keystore.keys(&scope).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.version).collect::<Vec<_>>(), vec![2], "old version destroyed");
    // The MFA secret, now under version 2, still works; nothing was lost.
    assert_eq!(sign_in_with_mfa(&app, "olive@example.com", &secret, 30).await, StatusCode::NO_CONTENT);
    let ring = app.app.services.accounts.keyring().tenant(tenant).await.unwrap();
    assert_eq!(ring.newest().version(), 2);
    let audit = app.get("/api/v1/audit?action=keys.rotate_tenant", &owner).await;
    assert_eq!(audit.body.as_array().map(Vec::len), Some(1), "{:?}", audit.body);
}

async fn master_key_rotation_rewraps_every_key(b: Backend) {
    let mut app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let secret = enroll(&app, &owner).await;
    app.stop().await;
    let old = std::fs::read_to_string(app.scratch.dir().join("master.key")).unwrap().trim().to_string();
    let new = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0x33u8; 32])
    };
    // Without the previous key the command refuses to run.
    let out = run_cli(&app, &["keys", "rotate-master"], &[("LACUNA_MASTER_KEY", new.clone())]);
    assert!(!out.status.success());
    let out = run_cli(
        &app,
        &["keys", "rotate-master"],
        &[("LACUNA_MASTER_KEY", new.clone()), ("LACUNA_PREVIOUS_MASTER_KEY", old.clone())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-wrapped 2 key(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The old master no longer opens anything; the new one alone opens everything.
    let out = run_cli(&app, &["audit", "verify"], &[("LACUNA_MASTER_KEY", old)]);
    assert!(!out.status.success(), "old master still works");
    let out = run_cli(&app, &["audit", "verify"], &[("LACUNA_MASTER_KEY", new.clone())]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut scratch =
        std::mem::replace(&mut app.scratch, lacuna::scratch::Scratch::new(Backend::Sqlite).await.unwrap());
    scratch.config.master_key = Some(new);
    let app = TestApp::spawn_in(scratch).await;
    assert_eq!(sign_in_with_mfa(&app, "olive@example.com", &secret, 30).await, StatusCode::NO_CONTENT);
}

async fn cancelled_tenant_is_read_only_then_deleted_with_its_keys(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let other = app.signup("Other Spa", "other@example.com").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    assert_eq!(app.call(Method::POST, "/api/v1/tenant/cancel", Some(&desk), None).await.status, StatusCode::FORBIDDEN);
    let r = app.call(Method::POST, "/api/v1/tenant/cancel", Some(&owner), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Sign-in and exports still work; changes do not.
    let again = app.login("olive@example.com", PASSWORD).await;
    assert_eq!(again.status, StatusCode::OK);
    let again = TestApp::session_from(&again, "olive@example.com");
    assert_eq!(app.get("/api/v1/audit/export", &again).await.status, StatusCode::OK);
    let r =
        app.post("/api/v1/members", &again, json!({"email": "x@example.com", "name": "X", "role": "provider"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, Some("tenant_cancelled")));
    // 89 days on: still there. 91 days on: deleted, keys destroyed, sign-in gone.
    let accounts = &app.app.services.accounts;
    let day = 86_400;
    let t = lacuna_storage::now_unix();
    assert!(accounts.delete_expired_tenants(t + 89 * day).await.unwrap().is_empty());
    let deleted = accounts.delete_expired_tenants(t + 91 * day).await.unwrap();
    assert_eq!(deleted.iter().map(ToString::to_string).collect::<Vec<_>>(), vec![owner.tenant_id.clone()]);
    assert!(accounts.keyring().tenant(owner.tenant_id.parse().unwrap()).await.is_err(), "key still there");
    assert!(accounts.keyring().is_shredded(owner.tenant_id.parse().unwrap()).await.unwrap());
    assert_eq!(app.login("olive@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &again).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &desk).await.status, StatusCode::UNAUTHORIZED);
    // The audit chain survives, verifies, and ends with the deletion.
    let report = accounts.verify_audit_chain(owner.tenant_id.parse().unwrap()).await.unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    // The other practice is untouched.
    assert_eq!(app.get("/api/v1/me", &other).await.status, StatusCode::OK);
    // A shredded tenant can never get a key again.
    assert!(accounts.keyring().create_tenant_key(owner.tenant_id.parse().unwrap()).await.is_err());
}

async fn deleted_tenant_stays_unreadable_in_an_old_copy_of_the_database(b: Backend) {
    let mut app = TestApp::spawn(b).await;
    let doomed = app.signup("Doomed Spa", "dora@example.com").await;
    let keeper = app.signup("Keeper Spa", "kim@example.com").await;
    let doomed_secret = enroll(&app, &doomed).await;
    let keeper_secret = enroll(&app, &keeper).await;
    app.stop().await;

    // Take a copy of the data (a backup, as far as the data is concerned) while all is well.
    let copy = copy_data(&app).await;

    // Delete the tenant for real.
    let mut scratch =
        std::mem::replace(&mut app.scratch, lacuna::scratch::Scratch::new(Backend::Sqlite).await.unwrap());
    let live = lacuna::build(&scratch.config).await.unwrap();
    live.services.accounts.delete_tenant(doomed.tenant_id.parse().unwrap(), "test").await.unwrap();
    live.services.close().await;
    drop(live);

    // Put the old copy back, with the current keystore and master key.
    restore_data(&mut scratch, copy).await;
    let services = lacuna::open_services(&scratch.config).await.unwrap();
    let doomed_id = doomed.tenant_id.parse().unwrap();
    // The old copy holds the tenant's encrypted MFA secret again, but no key can open it.
    let ring = services.accounts.keyring().tenant(doomed_id).await;
    assert!(ring.is_err(), "the deleted tenant's key came back");
    let mut tx = services.store.tenant(doomed_id).read().await.unwrap();
    let secrets = tx.mfa_secrets().await.unwrap();
    drop(tx);
    assert_eq!(secrets.len(), 1, "the copy brought the ciphertext back");
    assert_ne!(secrets[0].1, doomed_secret, "stored encrypted");
    // Replaying the tombstone removes the resurrected data; the other practice is fine.
    let replayed = services.accounts.replay_tombstones().await.unwrap();
    assert_eq!(replayed, vec![doomed_id]);
    services.close().await;
    let app = TestApp::spawn_in(scratch).await;
    assert_eq!(app.login("dora@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_with_mfa(&app, "kim@example.com", &keeper_secret, 30).await, StatusCode::NO_CONTENT);
}

enum DataCopy {
    Sqlite(Vec<u8>),
    Postgres(String),
}

async fn copy_data(app: &TestApp) -> DataCopy {
    use sqlx::Connection;
    match &app.scratch.db {
        None => DataCopy::Sqlite(std::fs::read(app.scratch.dir().join("lacuna.db")).unwrap()),
        Some(db) => {
            let name = format!("{}_copy", db.name());
            let mut c = sqlx::PgConnection::connect(&lacuna_storage::scratch::admin_url()).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {}", db.name())))
                .execute(&mut c)
                .await
                .unwrap();
            DataCopy::Postgres(name)
        }
    }
}

async fn restore_data(scratch: &mut lacuna::scratch::Scratch, copy: DataCopy) {
    use sqlx::Connection;
    match copy {
        DataCopy::Sqlite(bytes) => {
            let dir = scratch.dir();
            let _ = std::fs::remove_file(dir.join("lacuna.db-wal"));
            let _ = std::fs::remove_file(dir.join("lacuna.db-shm"));
            std::fs::write(dir.join("lacuna.db"), bytes).unwrap();
        }
        DataCopy::Postgres(name) => {
            let db = scratch.db.as_ref().unwrap();
            let mut c = sqlx::PgConnection::connect(&lacuna_storage::scratch::admin_url()).await.unwrap();
            for sql in [
                format!("DROP DATABASE {} WITH (FORCE)", db.name()),
                format!("ALTER DATABASE {name} RENAME TO {}", db.name()),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
            }
        }
    }
}
