//! The audit trail: every account action is recorded with actor, time, target, scope, client
//! address and request id; the chain is verified by `lacuna audit verify`; tampering with rows
//! directly in the database (change, delete, reorder, insert, cut the tail) is detected.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{PASSWORD, Session, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

both_backends!(
    account_actions_are_audited_and_exportable,
    tampering_is_detected_by_verify,
    two_processes_and_abandoned_transactions_keep_one_chain,
    unchained_entries_are_sealed_linked_once_and_recovered
);

async fn account_actions_are_audited_and_exportable(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    app.patch(&format!("/api/v1/members/{}", desk.user_id), &owner, json!({"role": "provider"})).await;
    app.login("olive@example.com", "wrong password!!").await;
    let t = app.post("/api/v1/tokens", &owner, json!({"name": "script", "permissions": ["account.read"]})).await;
    app.delete(&format!("/api/v1/tokens/{}", t.body["token"]["id"].as_str().unwrap()), &owner).await;
    app.delete(&format!("/api/v1/members/{}", desk.user_id), &owner).await;

    let r = app.get("/api/v1/audit", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let events = r.body.as_array().unwrap();
    let actions: Vec<&str> = events.iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "tenant.signup",
            "member.invite",
            "member.accept_invite",
            "member.change",
            "auth.login_failed",
            "token.create",
            "token.revoke",
            "member.remove"
        ]
    );
    let change = events.iter().find(|e| e["action"] == "member.change").unwrap();
    assert_eq!(change["actor"], format!("user:{}", owner.user_id));
    assert_eq!(change["actor_role"], "owner");
    assert_eq!(change["target"], format!("user:{}", desk.user_id));
    assert_eq!(change["scope"]["from"]["role"], "front_desk");
    assert_eq!(change["scope"]["to"]["role"], "provider");
    assert_eq!(change["client_addr"], "127.0.0.1");
    assert!(change["request_id"].as_str().unwrap().len() >= 32);
    let failed = events.iter().find(|e| e["action"] == "auth.login_failed").unwrap();
    assert_eq!(failed["actor"], "anonymous");
    assert!(!failed.to_string().contains("wrong password"), "the attempted password is never recorded");

    // Filters.
    let r = app.get("/api/v1/audit?action=member.change", &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/audit?limit=2", &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = app.get("/api/v1/audit?limit=0", &owner).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("limit"));
    let r = app.get("/api/v1/audit?from=yesterday", &owner).await;
    assert_eq!(r.error_field(), Some("from"));

    // Exports: JSON lines in chain order, and CSV with a header.
    let jsonl = app.client.get(app.url("/api/v1/audit/export")).header("cookie", &owner.cookie).send().await.unwrap();
    assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = jsonl.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0]["seq"], 1);
    let csv = app
        .client
        .get(app.url("/api/v1/audit/export?format=csv"))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("seq,occurred_at,actor,"));
    assert_eq!(text.lines().count(), 9);
    assert_eq!(app.get("/api/v1/audit/export?format=xml", &owner).await.error_field(), Some("format"));

    // Only owners read the trail.
    let again = app.login("olive@example.com", PASSWORD).await;
    let _ = again;
    let manager = app.add_member(&owner, "max@example.com", "manager").await;
    assert_eq!(app.get("/api/v1/audit", &manager).await.status, StatusCode::FORBIDDEN);

    // On PostgreSQL the application role itself cannot rewrite history.
    if b == Backend::Postgres {
        let db = app.scratch.db.as_ref().unwrap();
        let mut c =
            sqlx::PgConnection::connect(&format!("postgres://lacuna_app@127.0.0.1:5432/{}", db.name())).await.unwrap();
        for sql in ["UPDATE audit_events SET action = 'nothing'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
            let mut tx = c.begin().await.unwrap();
            sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
                .bind(&owner.tenant_id)
                .execute(&mut *tx)
                .await
                .unwrap();
            let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await;
            let err = r.expect_err(sql).to_string();
            assert!(err.contains("permission denied"), "{sql}: {err}");
            tx.rollback().await.unwrap();
        }
    }
}

/// Five tenants, each with a chain of 6 events; each gets one kind of tampering.
async fn tampering_is_detected_by_verify(b: Backend) {
    let app = TestApp::spawn(b).await;
    let mut tenants: Vec<Session> = Vec::new();
    for i in 0..6 {
        let owner = app.signup(&format!("Spa {i}"), &format!("owner{i}@example.com")).await;
        for j in 0..5 {
            app.post(
                "/api/v1/members",
                &owner,
                json!({"email": format!("m{i}x{j}@example.com"), "name": "M", "role": "provider"}),
            )
            .await;
        }
        tenants.push(owner);
    }
    let accounts = &app.app.state.accounts;
    let verify = |t: &Session| {
        let id = t.tenant_id.parse().unwrap();
        async move { accounts.verify_audit_chain(id).await.unwrap() }
    };
    for t in &tenants {
        let r = verify(t).await;
        assert_eq!((r.events, r.broken.is_none()), (6, true), "{r:?}");
    }
    let bin = env!("CARGO_BIN_EXE_lacuna");
    let run_verify = || {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["audit", "verify", "--data-dir"]).arg(app.scratch.dir());
        if let Some(db) = &app.scratch.db {
            cmd.env("DATABASE_URL", &db.url);
        } else {
            cmd.env_remove("DATABASE_URL");
        }
        cmd.output().unwrap()
    };
    let ok = run_verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("36 events verified"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    // The attacker has direct database access (but not the master key): first the guards go.
    let unguard = match b {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;",
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER;",
    };
    app.owner_sql(unguard).await;
    let tid = |i: usize| tenants[i].tenant_id.clone();
    // 0: change a row.
    app.owner_sql(&format!(
        "UPDATE audit_events SET action = 'member.view' WHERE tenant_id = '{}' AND seq = 3",
        tid(0)
    ))
    .await;
    // 1: delete a row.
    app.owner_sql(&format!("DELETE FROM audit_events WHERE tenant_id = '{}' AND seq = 4", tid(1))).await;
    // 2: reorder two rows.
    let t2 = tid(2);
    app.owner_sql(&format!(
        "UPDATE audit_events SET seq = 1000000 WHERE tenant_id = '{t2}' AND seq = 2;
         UPDATE audit_events SET seq = 2 WHERE tenant_id = '{t2}' AND seq = 3;
         UPDATE audit_events SET seq = 3 WHERE tenant_id = '{t2}' AND seq = 1000000;"
    ))
    .await;
    // 3: insert a forged event at the end (copying a real one's hash), and move the head to it.
    let t3 = tid(3);
    app.owner_sql(&format!(
        "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor, actor_role, action, target, scope, client_addr,
                request_id, prev_hash, entry_hash)
         SELECT tenant_id, 7, occurred_at, actor, actor_role, 'member.remove', target, scope, client_addr, request_id,
                entry_hash, entry_hash FROM audit_events WHERE tenant_id = '{t3}' AND seq = 6;
         UPDATE audit_heads SET seq = 7, entry_hash = (SELECT entry_hash FROM audit_events WHERE tenant_id = '{t3}' AND seq = 7)
         WHERE tenant_id = '{t3}';"
    ))
    .await;
    // 4: cut off the last two events, leaving the head alone.
    app.owner_sql(&format!("DELETE FROM audit_events WHERE tenant_id = '{}' AND seq > 4", tid(4))).await;
    // 5: untouched.

    let expect = [(0, 3, "entry hash"), (1, 4, "missing"), (2, 2, ""), (3, 7, "entry hash"), (4, 5, "missing")];
    for (i, seq, reason) in expect {
        let r = verify(&tenants[i]).await;
        let broken = r.broken.unwrap_or_else(|| panic!("tampering {i} not detected"));
        assert_eq!(broken.seq, seq, "tampering {i}: {broken:?}");
        assert!(broken.reason.contains(reason), "tampering {i}: {broken:?}");
    }
    assert!(verify(&tenants[5]).await.broken.is_none());

    let out = run_verify();
    assert_eq!(out.status.code(), Some(1), "verify must fail");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("BROKEN").count(), 5, "{stdout}");
    assert!(stdout.contains(&format!("tenant {} ", tid(0))) && stdout.contains("at event #3"), "{stdout}");
    let _ = Method::GET;
}

/// Entries are written unchained and linked after commit by the tenant's chainer. A second
/// process on the same database (its own chainer) appending concurrently, and a transaction that
/// queued an audit event but was dropped, must still leave one unbroken chain.
async fn two_processes_and_abandoned_transactions_keep_one_chain(b: Backend) {
    use lacuna_storage::audit::NewAuditEvent;
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Spa", "owner@example.com").await;
    let tenant: lacuna_domain::TenantId = owner.tenant_id.parse().unwrap();
    let other = lacuna::open_services(&app.scratch.config).await.expect("second process");
    let key = other.accounts.keyring().audit_key().clone();
    fn event(i: usize) -> NewAuditEvent {
        NewAuditEvent {
            occurred_at: lacuna_storage::now_unix(),
            actor: "system".into(),
            action: format!("test.other_{i}"),
            scope: "{}".into(),
            ..Default::default()
        }
    }
    for i in 0..3 {
        let body = json!({"email": format!("seq{i}@example.com"), "name": "S", "role": "provider"});
        assert_eq!(app.post("/api/v1/members", &owner, body).await.status, StatusCode::CREATED);
    }
    // Abandoned: queued, then dropped without commit. Nothing is written.
    {
        let mut tx = app.app.store.tenant(tenant).write().await.unwrap();
        tx.append_audit(&key, &event(0)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 1..13 {
        let (other_store, key) = (other.store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut tx = other_store.tenant(tenant).write().await.unwrap();
            tx.append_audit(&key, &event(i)).await.unwrap();
            tx.commit().await.unwrap();
        }));
    }
    let invites = (0..12).map(|i| {
        app.post(
            "/api/v1/members",
            &owner,
            json!({"email": format!("m{i}@example.com"), "name": "M", "role": "provider"}),
        )
    });
    for r in futures_util::future::join_all(invites).await {
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Once more from each side, now that each cache may be stale.
    let r = app
        .post("/api/v1/members", &owner, json!({"email": "late@example.com", "name": "L", "role": "provider"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut tx = other.store.tenant(tenant).write().await.unwrap();
    tx.append_audit(&key, &event(99)).await.unwrap();
    tx.commit().await.unwrap();

    let report = app.app.state.accounts.verify_audit_chain(tenant).await.unwrap();
    // Sign-up, 16 invitations, 13 appends by the other process; the abandoned one is not there.
    assert_eq!((report.events, report.broken.is_none()), (30, true), "{report:?}");
    assert_eq!(app.owner_count("SELECT 1 FROM audit_events WHERE action = 'test.other_0'").await, 0);
    assert_eq!(app.owner_count("SELECT 1 FROM audit_events WHERE action LIKE 'test.other_%'").await, 13);
    other.store.close().await;
}

/// An entry is committed unchained with its seal and linked after the commit. One whose process
/// died in between is linked by the next reader; one written without the key (a forged seal) is
/// never linked and breaks verification; a copy of a genuine one cannot be inserted; a linked row
/// can never change again, and an unchained one only by being linked.
async fn unchained_entries_are_sealed_linked_once_and_recovered(b: Backend) {
    use lacuna_storage::audit::{NewAuditEvent, seal};
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Spa", "owner@example.com").await;
    let tenant: lacuna_domain::TenantId = owner.tenant_id.parse().unwrap();
    let t = &owner.tenant_id;
    let accounts = &app.app.state.accounts;
    let before = accounts.verify_audit_chain(tenant).await.unwrap();
    assert!(before.broken.is_none() && before.events >= 1, "{before:?}");
    let unchained = format!("SELECT 1 FROM audit_events WHERE tenant_id = '{t}' AND seq IS NULL");
    assert_eq!(app.owner_count(&unchained).await, 0, "a reader found entries still unchained");

    // A genuine entry committed by a process that died before chaining it.
    let key = accounts.keyring().audit_key();
    let e = NewAuditEvent {
        occurred_at: 1_800_000_000,
        actor: "system".into(),
        action: "test.orphan".into(),
        scope: "{}".into(),
        ..Default::default()
    };
    let entry_id = "6f1d3c1e-0000-4000-8000-000000000001";
    let insert = |entry_id: &str, seal: &[u8]| {
        format!(
            "INSERT INTO audit_events (tenant_id, occurred_at, actor, action, scope, entry_id, seal)
             VALUES ('{t}', {}, 'system', '{}', '{{}}', '{entry_id}', {})",
            e.occurred_at,
            e.action,
            bytes_literal(b, seal)
        )
    };
    let genuine = seal(key, t, entry_id, &e);
    app.owner_sql(&insert(entry_id, &genuine)).await;
    // Listing the trail links it first: it is the newest entry.
    let r = app.get("/api/v1/audit?limit=1", &owner).await;
    assert_eq!(r.body[0]["action"], "test.orphan", "{:?}", r.body);
    let after = accounts.verify_audit_chain(tenant).await.unwrap();
    assert_eq!((after.events, after.broken.is_none()), (before.events + 1, true), "{after:?}");

    // A copy of a genuine entry (replayed to chain it twice) is refused by the database.
    let replay = app.owner_sql_result(&insert(entry_id, &genuine)).await;
    assert!(replay.is_err(), "a replayed entry was accepted");

    // One written without the key: never linked, and verification says so.
    app.owner_sql(&insert("6f1d3c1e-0000-4000-8000-000000000002", &[7u8; 32])).await;
    let forged = accounts.verify_audit_chain(tenant).await.unwrap();
    let broken = forged.broken.expect("a forged entry went unnoticed");
    assert!(broken.reason.contains("seal"), "{broken:?}");
    assert_eq!(forged.events, after.events, "the forged entry was chained");
    assert_eq!(app.owner_count(&unchained).await, 1);

    // Linked rows never change; an unchained row can be linked but not altered.
    let relink = format!("UPDATE audit_events SET seq = 999 WHERE tenant_id = '{t}' AND seq = 1");
    let err = app.owner_sql_result(&relink).await.expect_err("a linked row changed");
    assert!(err.contains("append-only"), "{err}");
    let alter = format!("UPDATE audit_events SET action = 'member.remove' WHERE tenant_id = '{t}' AND seq IS NULL");
    let err = app.owner_sql_result(&alter).await.expect_err("an unchained row changed");
    assert!(err.contains("append-only"), "{err}");
    let delete = format!("DELETE FROM audit_events WHERE tenant_id = '{t}' AND seq IS NULL");
    assert!(app.owner_sql_result(&delete).await.is_err(), "an unchained row was deleted");

    // Hiding an unchained entry by giving it a place outside the chain is refused...
    let zero = bytes_literal(b, &[0]);
    let hide = format!(
        "UPDATE audit_events SET seq = -1, prev_hash = {zero}, entry_hash = {zero} WHERE tenant_id = '{t}' AND seq IS NULL"
    );
    assert!(app.owner_sql_result(&hide).await.is_err(), "an unchained row was moved out of the chain");
    // ...and on PostgreSQL, where every entry arrives unchained, so is inserting one already linked
    // (at the head's next place it would block the chainer).
    if b == Backend::Postgres {
        let linked = format!(
            "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor, action, scope, prev_hash, entry_hash)
             VALUES ('{t}', {}, 1, 'system', 'test.linked', '{{}}', {zero}, {zero})",
            forged.events + 1
        );
        let err = app.owner_sql_result(&linked).await.expect_err("a linked row was inserted");
        assert!(err.contains("unchained"), "{err}");
    }
    // A place far beyond the head is a gap that verification reports.
    let far = format!(
        "UPDATE audit_events SET seq = 1000, prev_hash = {zero}, entry_hash = {zero} WHERE tenant_id = '{t}' AND seq IS NULL"
    );
    assert_eq!(app.owner_sql(&far).await, 1);
    let report = accounts.verify_audit_chain(tenant).await.unwrap();
    let broken = report.broken.expect("an entry placed beyond the head went unnoticed");
    assert!(broken.reason.contains("missing"), "{broken:?}");
}

/// `bytes` as an SQL literal of the backend's byte type.
fn bytes_literal(b: Backend, bytes: &[u8]) -> String {
    match b {
        Backend::Sqlite => format!("X'{}'", hex::encode(bytes)),
        Backend::Postgres => format!("'\\x{}'::bytea", hex::encode(bytes)),
    }
}
