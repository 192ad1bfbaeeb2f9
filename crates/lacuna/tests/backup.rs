//! Backups: encrypted and consistent, with a manifest; the restore rehearsal compares counts and
//! verifies audit chains; restore brings back the earlier state; a corrupted or truncated backup
//! is reported and never half-restored.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};

both_backends!(backup_rehearse_and_restore, corrupted_or_truncated_backups_are_refused);

fn cli(app_dir: &Path, db: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lacuna"));
    cmd.args(args).arg("--data-dir").arg(app_dir).env_remove("LACUNA_MASTER_KEY");
    match db {
        Some(url) => cmd.env("DATABASE_URL", url),
        None => cmd.env_remove("DATABASE_URL"),
    };
    cmd.output().unwrap()
}

fn out(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn take_backup(app: &TestApp) -> PathBuf {
    let db = app.scratch.db.as_ref().map(|d| d.url.clone());
    let o = cli(app.scratch.dir(), db.as_deref(), &["backup"]);
    assert!(o.status.success(), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let path = text.split("backup written: ").nth(1).unwrap().split(" (").next().unwrap().to_string();
    PathBuf::from(path)
}

async fn backup_rehearse_and_restore(b: Backend) {
    let mut app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    app.add_member(&owner, "fran@example.com", "front_desk").await;
    // Insight's own store is in the backup too: its approval policy comes back with the rest.
    let policy = |mode: &str| json!({"mode": mode, "role": "owner"});
    let put = |body| app.call(Method::PUT, "/api/v1/insight/policy/slot_fill_offer", Some(&owner), Some(body));
    assert_eq!(put(policy("off")).await.status, StatusCode::OK);
    let file = take_backup(&app);
    assert_eq!(put(policy("approval")).await.status, StatusCode::OK);
    let db = app.scratch.db.as_ref().map(|d| d.url.clone());

    // Encrypted: none of the data is readable in the file; private; a manifest beside it.
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"LACUNA-BACKUP-1\n"));
    for needle in ["olive@example.com", "Glow Spa", "fran@example.com", "argon2id"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in the backup");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o077, 0);
    }
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.with_extension("manifest.json")).unwrap()).unwrap();
    assert_eq!(sidecar["manifest"]["counts"]["users"], 2);
    assert_eq!(sidecar["file_bytes"], bytes.len());
    // No key material in a backup: the keystore stays apart.
    assert!(!file.parent().unwrap().join("keystore.db").exists());

    // The rehearsal passes and is recorded; the trust page reports it.
    let o = cli(app.scratch.dir(), db.as_deref(), &["backup", "verify", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("rehearsal passed"), "{}", out(&o));
    app.app.state.trust.set_backups(lacuna::backup::backup_facts(&app.scratch.config));
    let t = app.call(Method::GET, "/api/v1/trust", None, None).await.body;
    assert!(t["backups"]["last_backup"].is_string(), "{t}");
    assert!(t["backups"]["last_successful_rehearsal"].is_string(), "{t}");

    // Changes after the backup...
    app.add_member(&owner, "late@example.com", "provider").await;
    app.stop().await;
    // ...are gone after a restore; what was backed up is back and works.
    let o = cli(app.scratch.dir(), db.as_deref(), &["restore", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o));
    let scratch = std::mem::replace(&mut app.scratch, lacuna::scratch::Scratch::new(Backend::Sqlite).await.unwrap());
    let app = TestApp::spawn_in(scratch).await;
    let r = app.login("olive@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let s = TestApp::session_from(&r, "olive@example.com");
    let members = app.get("/api/v1/members", &s).await.body.to_string();
    assert!(members.contains("fran@example.com") && !members.contains("late@example.com"), "{members}");
    let policies = app.get("/api/v1/insight/policy", &s).await.body;
    let slot_fill = policies.as_array().unwrap().iter().find(|p| p["kind"] == "slot_fill_offer").unwrap();
    assert_eq!(slot_fill["mode"], "off", "Insight's policy as it was at the backup: {policies}");
    let report = app.app.services.accounts.verify_audit_chain(owner.tenant_id.parse().unwrap()).await.unwrap();
    assert!(report.broken.is_none());
    // The daily job takes, rehearses and records a backup too.
    lacuna::jobs::daily_backup(&app.app.services, &app.scratch.config, &app.app.state.trust).await.unwrap();
    let ledger = lacuna::backup::read_ledger(&app.scratch.config);
    assert!(ledger.iter().filter(|e| e.kind == "rehearsal" && e.ok).count() >= 2);
    let _ = json!({});
}

async fn corrupted_or_truncated_backups_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let file = take_backup(&app);
    app.add_member(&owner, "after@example.com", "provider").await;
    let db = app.scratch.db.as_ref().map(|d| d.url.clone());
    let bytes = std::fs::read(&file).unwrap();
    let dir = file.parent().unwrap();
    let header_end = 16 + 4 + u32::from_be_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated by one byte", bytes[..bytes.len() - 1].to_vec()),
        // After the first full chunk when there is more than one; otherwise right after the header.
        ("truncated at a chunk boundary", {
            let cut = header_end + 65_536 + 16;
            bytes[..if cut < bytes.len() { cut } else { header_end }].to_vec()
        }),
        ("cut inside the header", bytes[..30].to_vec()),
        ("one byte flipped", {
            let mut c = bytes.clone();
            let i = header_end + 100;
            c[i] ^= 0x40;
            c
        }),
    ];
    for (what, content) in cases {
        let bad = dir.join(format!("bad-{}.lbk", what.replace(' ', "-")));
        std::fs::write(&bad, content).unwrap();
        let o = cli(app.scratch.dir(), db.as_deref(), &["backup", "verify", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", out(&o));
        assert!(out(&o).contains("REHEARSAL FAILED"), "{what}: {}", out(&o));
        let o = cli(app.scratch.dir(), db.as_deref(), &["restore", bad.to_str().unwrap()]);
        assert!(!o.status.success(), "{what} was restored");
        // Nothing was half-restored: the live data still has the member added after the backup.
        let members = app.get("/api/v1/members", &owner).await.body.to_string();
        assert!(members.contains("after@example.com"), "{what}: {members}");
    }
    let failed =
        lacuna::backup::read_ledger(&app.scratch.config).iter().filter(|e| e.kind == "rehearsal" && !e.ok).count();
    assert_eq!(failed, 4);
}
