//! Clients and exports: search without plaintext at rest, edits, isolation, roles, validation,
//! key rotation, and CSV exports that are recorded and audited.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{Session, TestApp};
use lacuna::scratch::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    personal_fields_never_reach_the_database_in_plain_text,
    search_finds_clients_by_a_few_letters,
    edits_resync_indexes_and_are_audited,
    another_tenant_cannot_read_list_or_edit,
    roles_and_validation_are_enforced,
    tenant_key_rotation_keeps_clients_readable,
    exports_are_csv_recorded_and_audited,
    notes_phi_guard_warns_or_rejects_per_practice_setting,
);

const NAME: &str = "Zephyrine Quillborough";
const EMAIL: &str = "zephyrine.quill@glowmail.example";
const PHONE: &str = "+1 (415) 555-0177";
const PHONE_DIGITS: &str = "14155550177";

async fn add(app: &TestApp, who: &Session, body: Value) -> Value {
    let r = app.post("/api/v1/clients", who, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn search(app: &TestApp, who: &Session, q: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/clients?q={}", q.replace(' ', "%20").replace('+', "%2B")), who).await;
    assert_eq!(r.status, StatusCode::OK, "search {q}: {:?}", r.body);
    r.body.as_array().unwrap().clone()
}

fn names(found: &[Value]) -> Vec<String> {
    found.iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

/// Every byte the database holds, as the owner (or a thief of the disk) would see it.
async fn raw_database(app: &TestApp) -> Vec<u8> {
    match &app.scratch.db {
        Some(db) => {
            let out = std::process::Command::new("pg_dump").args(["--data-only", &db.url]).output().unwrap();
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
            assert!(out.stdout.len() > 1000);
            out.stdout
        }
        None => {
            app.owner_sql("PRAGMA wal_checkpoint(TRUNCATE)").await;
            let mut all = Vec::new();
            for entry in std::fs::read_dir(app.scratch.dir()).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            assert!(all.len() > 10_000);
            all
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

async fn personal_fields_never_reach_the_database_in_plain_text(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let c = add(
        &app,
        &owner,
        json!({"name": NAME, "email": EMAIL, "phone": PHONE, "birthday": "1985-04-23", "notes": "prefers Tuesdays, lavender oil"}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    // Use every path that touches the fields: lookup, search, edit.
    assert_eq!(app.get(&format!("/api/v1/clients/lookup?email={EMAIL}"), &owner).await.body[0]["id"], id);
    assert_eq!(search(&app, &owner, "zeph").await.len(), 1);
    let r = app.patch(&format!("/api/v1/clients/{id}"), &owner, json!({"notes": "lavender oil, quiet room"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let raw = raw_database(&app).await;
    assert!(contains(&raw, "Glow Spa"), "the dump is real: it holds the practice name");
    for secret in [
        "Zephyrine",
        "Quillborough",
        "zephyrine.quill",
        "glowmail",
        PHONE_DIGITS,
        "555-0177",
        "5550177",
        "1985-04-23",
        "lavender",
    ] {
        assert!(!contains(&raw, secret), "{secret} found in plain text in the {b:?} database");
    }
}

async fn search_finds_clients_by_a_few_letters(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    for (name, email, phone) in [
        ("Jane Doe", "jane.doe@example.com", "+14155550134"),
        ("Janet Smith", "jsmith@example.com", "+14155550199"),
        ("Marc Dubois", "marc@example.com", "+33612345678"),
        ("Ana María Núñez", "ana@example.com", "0612 345 999"),
    ] {
        add(&app, &desk, json!({"name": name, "email": email, "phone": phone})).await;
    }
    assert_eq!(names(&search(&app, &desk, "ja").await), ["Jane Doe", "Janet Smith"]);
    assert_eq!(names(&search(&app, &desk, "jan").await), ["Jane Doe", "Janet Smith"]);
    assert_eq!(names(&search(&app, &desk, "Janet").await), ["Janet Smith"]);
    assert_eq!(names(&search(&app, &desk, "ja do").await), ["Jane Doe"]);
    assert_eq!(names(&search(&app, &desk, "do").await), ["Jane Doe"]);
    assert_eq!(names(&search(&app, &desk, "DUB").await), ["Marc Dubois"]);
    assert_eq!(names(&search(&app, &desk, "núñ").await), ["Ana María Núñez"]);
    // Email local part, and words longer than the indexed prefix (verified in memory).
    assert_eq!(names(&search(&app, &desk, "jsmi").await), ["Janet Smith"]);
    assert_eq!(names(&search(&app, &desk, "duboiss").await), Vec::<String>::new());
    // Phone digits however typed: prefix, national number, last four / seven.
    assert_eq!(names(&search(&app, &desk, "+1 415 555").await), ["Jane Doe", "Janet Smith"]);
    assert_eq!(names(&search(&app, &desk, "(415) 555-0134").await), ["Jane Doe"]);
    assert_eq!(names(&search(&app, &desk, "0199").await), ["Janet Smith"]);
    assert_eq!(names(&search(&app, &desk, "555-0134").await), ["Jane Doe"]);
    assert!(search(&app, &desk, "zz").await.is_empty());
    // No query: the newest clients (same second here, so any two); limit respected.
    let recent = app.get("/api/v1/clients?limit=2", &desk).await;
    assert_eq!(recent.body.as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/v1/clients", &desk).await.body.as_array().unwrap().len(), 4);
    // Too short or bad limit: 422 naming the field.
    let r = app.get("/api/v1/clients?q=j", &desk).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("q")));
    let r = app.get("/api/v1/clients?limit=500", &desk).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")));
    // A provider may read (and search) but not add.
    let prov = app.add_member(&owner, "pat@example.com", "provider").await;
    assert_eq!(names(&search(&app, &prov, "marc").await), ["Marc Dubois"]);
    // Exact lookup still works.
    let r = app.get("/api/v1/clients/lookup?phone=%2B1%20415-555-0134", &desk).await;
    assert_eq!(names(r.body.as_array().unwrap()), ["Jane Doe"]);
}

async fn edits_resync_indexes_and_are_audited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let c = add(
        &app,
        &owner,
        json!({"name": "Jane Doe", "email": "jane@example.com", "phone": "+14155550134", "notes": "n"}),
    )
    .await;
    let path = format!("/api/v1/clients/{}", c["id"].as_str().unwrap());
    let r = app.patch(&path, &owner, json!({"name": "Jane Whitfield", "email": "jw@example.com", "notes": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "Jane Whitfield");
    assert_eq!(r.body["phone"], "+14155550134", "absent fields are kept");
    assert_eq!(r.body["notes"], Value::Null, "null clears");
    let got = app.get(&path, &owner).await.body;
    assert_eq!((got["email"].as_str(), got["notes"].as_str()), (Some("jw@example.com"), None));
    // Old tokens and blind index are gone, new ones work.
    assert!(search(&app, &owner, "doe").await.is_empty());
    assert_eq!(names(&search(&app, &owner, "whit").await), ["Jane Whitfield"]);
    assert_eq!(names(&search(&app, &owner, "jw").await), ["Jane Whitfield"]);
    assert!(app.get("/api/v1/clients/lookup?email=jane@example.com", &owner).await.body.as_array().unwrap().is_empty());
    assert_eq!(app.get("/api/v1/clients/lookup?email=jw@example.com", &owner).await.body.as_array().unwrap().len(), 1);
    // Clearing the phone removes it from search and lookup.
    let r = app.patch(&path, &owner, json!({"phone": null, "marketing_consent": true})).await;
    assert_eq!((r.body["phone"].clone(), r.body["marketing_consent"].clone()), (Value::Null, json!(true)));
    assert!(search(&app, &owner, "0134").await.is_empty());
    // Audited with field names only.
    let audit = app.get("/api/v1/audit?action=client.update", &owner).await.body.to_string();
    assert!(audit.contains("client.update") && audit.contains("\"email\""), "{audit}");
    assert!(!audit.contains("jw@example.com") && !audit.contains("Whitfield"), "{audit}");
    // Invalid edits: 422 naming the field, nothing changed.
    for (body, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"phone": "call me"}), "phone"),
        (json!({"birthday": "1985-02-30"}), "birthday"),
        (json!({"name": "  "}), "name"),
    ] {
        let r = app.patch(&path, &owner, body).await;
        assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{:?}", r.body);
    }
    let r = app.patch(&path, &owner, json!({"nickname": "x"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get(&path, &owner).await.body["name"], "Jane Whitfield");
}

async fn another_tenant_cannot_read_list_or_edit(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = app.signup("Alpha Spa", "alice@example.com").await;
    let mallory = app.signup("Bravo Spa", "mallory@example.com").await;
    let c = add(&app, &a, json!({"name": "Jane Doe", "email": "jane@example.com", "phone": "+14155550134"})).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/v1/clients/{id}");
    assert_eq!(app.get(&path, &mallory).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.patch(&path, &mallory, json!({"name": "Pwned"})).await.status, StatusCode::NOT_FOUND);
    assert!(search(&app, &mallory, "jane").await.is_empty());
    assert!(search(&app, &mallory, "0134").await.is_empty());
    let list = app.get("/api/v1/clients", &mallory).await.body.to_string();
    assert!(!list.contains(id) && !list.contains("Jane"), "{list}");
    let lookup = app.get("/api/v1/clients/lookup?email=jane@example.com", &mallory).await.body.to_string();
    assert!(!lookup.contains(id), "{lookup}");
    let export = app.get("/api/v1/exports/clients", &mallory).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(!export.body.to_string().contains(id));
    // A's client is untouched.
    assert_eq!(app.get(&path, &a).await.body["name"], "Jane Doe");
}

async fn roles_and_validation_are_enforced(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let prov = app.add_member(&owner, "pat@example.com", "provider").await;
    let c = add(&app, &owner, json!({"name": "Jane Doe"})).await;
    let path = format!("/api/v1/clients/{}", c["id"].as_str().unwrap());
    assert_eq!(app.post("/api/v1/clients", &prov, json!({"name": "X"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, &prov, json!({"name": "X"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&path, &prov).await.status, StatusCode::OK);
    for (body, field) in [
        (json!({"name": "A", "email": "nope"}), "email"),
        (json!({"name": "A", "phone": "12"}), "phone"),
        (json!({"name": "A", "birthday": "2999-01-01"}), "birthday"),
        (json!({"name": ""}), "name"),
    ] {
        let r = app.post("/api/v1/clients", &owner, body).await;
        assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{:?}", r.body);
    }
    // A card number in notes is refused before it reaches any storage.
    let r = app.post("/api/v1/clients", &owner, json!({"name": "A", "notes": "card 4111 1111 1111 1111"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app.patch(&path, &owner, json!({"notes": "4111111111111111"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app.get("/api/v1/clients?q=4111111111111111", &owner).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
}

async fn tenant_key_rotation_keeps_clients_readable(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let c = add(
        &app,
        &owner,
        json!({"name": NAME, "email": EMAIL, "phone": PHONE, "birthday": "1985-04-23", "notes": "n"}),
    )
    .await;
    let path = format!("/api/v1/clients/{}", c["id"].as_str().unwrap());
    let tenant = owner.tenant_id.parse().unwrap();
    let rotation = app.app.services.accounts.rotate_tenant_key(tenant, "test").await.unwrap();
    assert!(rotation.reencrypted >= 5, "{rotation:?}");
    let got = app.get(&path, &owner).await;
    assert_eq!(got.status, StatusCode::OK, "{:?}", got.body);
    assert_eq!((got.body["name"].as_str(), got.body["email"].as_str()), (Some(NAME), Some(EMAIL)));
    assert_eq!(got.body["birthday"], "1985-04-23");
    assert_eq!(names(&search(&app, &owner, "quill").await), [NAME]);
    assert_eq!(
        app.get(&format!("/api/v1/clients/lookup?email={EMAIL}"), &owner).await.body.as_array().unwrap().len(),
        1
    );
    let r = app.patch(&path, &owner, json!({"name": "Zephyrine Q"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

fn csv_rows(body: &Value) -> Vec<Vec<String>> {
    let text = body.as_str().unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut out = vec![r.headers().unwrap().iter().map(str::to_string).collect()];
    for rec in r.records() {
        out.push(rec.unwrap().iter().map(str::to_string).collect());
    }
    out
}

async fn exports_are_csv_recorded_and_audited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "fran@example.com", "front_desk").await;
    let c =
        add(&app, &owner, json!({"name": "=HYPERLINK(\"x\")", "email": "jane@example.com", "phone": "+14155550134"}))
            .await;
    add(&app, &owner, json!({"name": "Jane Doe"})).await;
    // Rows for the other kinds, written as the database owner (their modules are built elsewhere).
    let (t, cid) = (owner.tenant_id.clone(), c["id"].as_str().unwrap().to_string());
    // Real ids: the exports read through the catalogue, which refuses malformed ones.
    let [loc1, svc1, prv1, apt1, pay1, pay2] = std::array::from_fn(|_| uuid::Uuid::new_v4().to_string());
    app.owner_sql(&format!(
        "INSERT INTO locations (tenant_id, id, name, created_at) VALUES ('{t}', '{loc1}', 'Main', 1);
         INSERT INTO services (tenant_id, id, name, category, duration_min, price_minor, currency, created_at, updated_at)
            VALUES ('{t}', '{svc1}', 'Botox', 'neurotoxin', 30, 40000, 'USD', 1, 1);
         INSERT INTO providers (tenant_id, id, name, created_at, updated_at) VALUES ('{t}', '{prv1}', 'Dr Pat', 1, 1);
         INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id, starts_at, ends_at,
            blocks_until, status, price_minor, currency, created_at, updated_at)
            VALUES ('{t}', '{apt1}', '{cid}', '{prv1}', '{svc1}', '{loc1}', 1000, 2800, 2800, 'booked', 40000, 'USD', 1, 1);
         INSERT INTO payments (tenant_id, id, kind, appointment_id, amount_minor, currency, payment_method, status, created_by, created_at)
            VALUES ('{t}', '{pay1}', 'charge', '{apt1}', 40000, 'USD', 'pm_test', 'succeeded', 'user:x', 2);
         INSERT INTO payments (tenant_id, id, kind, refund_of, amount_minor, currency, status, created_by, created_at)
            VALUES ('{t}', '{pay2}', 'refund', '{pay1}', 1000, 'USD', 'succeeded', 'user:x', 3);"
    ))
    .await;

    for (kind, rows) in [("clients", 2), ("services", 1), ("providers", 1), ("appointments", 1), ("transactions", 2)] {
        let r = app.get(&format!("/api/v1/exports/{kind}"), &owner).await;
        assert_eq!(r.status, StatusCode::OK, "{kind}: {:?}", r.body);
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert_eq!(r.headers["content-disposition"].to_str().unwrap(), format!("attachment; filename=\"{kind}.csv\""));
        let table = csv_rows(&r.body);
        assert_eq!(table.len(), rows + 1, "{kind}: {table:?}");
        match kind {
            "clients" => {
                assert_eq!(table[0][..4], ["id", "name", "email", "phone"]);
                let row = table.iter().find(|r| r[0] == cid).unwrap();
                assert_eq!(row[1], "'=HYPERLINK(\"x\")", "formula defused");
                assert_eq!((row[2].as_str(), row[3].as_str()), ("jane@example.com", "+14155550134"));
            }
            "appointments" => {
                assert_eq!((table[1][1].as_str(), table[1][2].as_str()), (cid.as_str(), "'=HYPERLINK(\"x\")"));
                assert_eq!((table[1][4].as_str(), table[1][6].as_str()), ("Dr Pat", "Botox"));
            }
            "transactions" => {
                // The refund names the client of the refunded charge.
                for row in &table[1..] {
                    assert_eq!(row[5], cid, "{row:?}");
                }
            }
            _ => {}
        }
    }
    // Unknown kind: 404. Front desk: 403. Nothing recorded for either.
    assert_eq!(app.get("/api/v1/exports/passwords", &owner).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/exports/clients", &desk).await.status, StatusCode::FORBIDDEN);

    let records =
        app.app.state.practice.store().tenant(t.parse().unwrap()).read().await.unwrap().exports().await.unwrap();
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.actor == format!("user:{}", owner.user_id)));
    let mut kinds: Vec<_> = records.iter().map(|r| (r.kind.as_str(), r.row_count)).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, [("appointments", 1), ("clients", 2), ("providers", 1), ("services", 1), ("transactions", 2)]);
    let audit = app.get("/api/v1/audit?action=export.create", &owner).await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    let text = audit.body.to_string();
    assert_eq!(text.matches("export.create").count(), 5, "{text}");
    assert!(!text.contains("jane@example.com"));
}

async fn notes_phi_guard_warns_or_rejects_per_practice_setting(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let r = app.get("/api/v1/practice/settings", &owner).await;
    assert_eq!(r.body["notes_phi_policy"], "warn", "warn is the default");
    // Ordinary notes: stored, no warning.
    let c =
        add(&app, &owner, json!({"name": "Ann", "notes": "Prefers afternoons, likes a quiet room. Tips well."})).await;
    assert!(c.get("warnings").is_none(), "{c:?}");
    let ann = c["id"].as_str().unwrap().to_string();
    // Warn: stored, with the field and the kind, never the value.
    let ssn = "123-45-6789";
    let r = app.post("/api/v1/clients", &owner, json!({"name": "Bea", "notes": format!("SSN {ssn}")})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["warnings"], json!([{"field": "notes", "kind": "Ssn"}]));
    let r = app.patch(&format!("/api/v1/clients/{ann}"), &owner, json!({"notes": "Diagnosed with rosacea"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["warnings"], json!([{"field": "notes", "kind": "ClinicalTerm"}]));

    // Reject: 422 naming the field and the kind, and nothing is written.
    let r = app.patch("/api/v1/practice/settings", &owner, json!({"notes_phi_policy": "block"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("notes_phi_policy"));
    let r = app.patch("/api/v1/practice/settings", &owner, json!({"notes_phi_policy": "reject"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["notes_phi_policy"], "reject");
    let before = app.owner_count("SELECT 1 FROM clients").await;
    let r = app.post("/api/v1/clients", &owner, json!({"name": "Cy", "notes": "Prefers mornings. MRN 48213377"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("phi_rejected"));
    assert_eq!(r.error_field(), Some("notes"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("RecordNumber"));
    assert!(!r.body.to_string().contains("48213377"), "the value is never echoed");
    assert_eq!(app.owner_count("SELECT 1 FROM clients").await, before);
    let r =
        app.patch(&format!("/api/v1/clients/{ann}"), &owner, json!({"notes": "her husband is john@example.com"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["field"], "notes");
    let r = app.get(&format!("/api/v1/clients/{ann}"), &owner).await;
    assert_eq!(r.body["notes"], "Diagnosed with rosacea", "the refused edit changed nothing");
    // Other fields can still be edited; ordinary notes still pass.
    let r = app.patch(&format!("/api/v1/clients/{ann}"), &owner, json!({"phone": "+1 415 555 0100"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r =
        app.patch(&format!("/api/v1/clients/{ann}"), &owner, json!({"notes": "Back after 3/14, prefers Anna"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}
