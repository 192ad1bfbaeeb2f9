//! Memberships and packages, payments and refunds, Stripe webhooks, and the message outbox
//! (file channel, SMTP against a local sink, retries with backoff, marketing consent).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{Session, TestApp};
use hmac::{Hmac, Mac};
use lacuna::scratch::{Backend, Scratch};
use lacuna_domain::TenantId;
use lacuna_practice::messages::Channel;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

both_backends!(
    packages_and_memberships_are_sold_and_redeemed,
    plans_refuse_other_tenants_and_roles,
    payments_are_recorded_and_refunded_within_the_charge,
    card_numbers_are_refused_and_never_logged,
    stripe_webhooks_need_a_fresh_valid_signature,
    webhook_endpoint_is_absent_without_a_secret,
    file_channel_writes_each_message_once,
    smtp_delivers_and_failures_back_off,
    marketing_needs_consent,
    reminders_are_queued_within_the_lead_time,
    concurrent_refunds_never_exceed_the_charge,
    a_stopped_workers_claim_is_taken_back_after_its_lease,
);

const SECRET: &str = "whsec_test_secret_123";
const HOUR: i64 = 3600;

fn now() -> i64 {
    lacuna_storage::now_unix()
}

fn uuid() -> String {
    common::new_id()
}

async fn client(app: &TestApp, s: &Session, name: &str, email: &str, consent: bool) -> String {
    app.add_client(s, json!({"name": name, "email": email, "phone": "+1 415 555 0134", "marketing_consent": consent}))
        .await
}

/// A location, provider and service of the tenant (rows written directly: booking is built
/// elsewhere). Returns (service, provider, location).
async fn catalogue(app: &TestApp, tenant: &str) -> (String, String, String) {
    app.sql_catalogue(tenant, 15_000, None).await
}

async fn appointment(
    app: &TestApp,
    tenant: &str,
    client: &str,
    (svc, prov, loc): &(String, String, String),
    status: &str,
    starts_at: i64,
) -> String {
    let id = uuid();
    let t = now();
    let ends = starts_at + HOUR;
    app.owner_sql(&format!(
        "INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id, starts_at, ends_at,
             blocks_until, status, price_minor, currency, created_at, updated_at)
         VALUES ('{tenant}', '{id}', '{client}', '{prov}', '{svc}', '{loc}', {starts_at}, {ends}, {ends}, '{status}',
             15000, 'USD', {t}, {t})"
    ))
    .await;
    id
}

fn sign(body: &str, t: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn webhook(app: &TestApp, body: &str, signature: Option<String>) -> common::Resp {
    let mut req = app.client.post(app.url("/api/v1/webhooks/stripe")).header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    TestApp::read(req.body(body.to_string()).send().await.unwrap()).await
}

async fn spawn_with_secret(b: Backend) -> TestApp {
    let mut scratch = Scratch::new(b).await.unwrap();
    scratch.config.stripe_webhook_secret = Some(SECRET.into());
    TestApp::spawn_in(scratch).await
}

async fn packages_and_memberships_are_sold_and_redeemed(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let t = owner.tenant_id.clone();
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let ben = client(&app, &owner, "Ben Ode", "ben@example.com", false).await;
    let cat = catalogue(&app, &t).await;
    let other_service = catalogue(&app, &t).await;

    // A package of two sessions of the service.
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "package", "name": "3 facials", "service_id": cat.0, "sessions": 2, "price_minor": 40000, "currency": "usd"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["remaining"], 2);
    assert_eq!(r.body["currency"], "USD");
    let package = r.body["id"].as_str().unwrap().to_string();

    // Field errors name the field.
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "package", "name": "x", "price_minor": 1, "currency": "USD", "sessions": 1}),
        )
        .await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("service_id")));
    let r = app.post(&format!("/api/v1/clients/{ana}/plans"), &owner, json!({"kind": "package", "name": "x", "price_minor": 1, "currency": "USD", "sessions": 1, "service_id": uuid()})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("service_id")));
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "membership", "name": "x", "price_minor": -5, "currency": "USD", "credits_per_period": 1}),
        )
        .await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("price_minor")));

    let booked = appointment(&app, &t, &ana, &cat, "booked", now() + 48 * HOUR).await;
    let done1 = appointment(&app, &t, &ana, &cat, "completed", now() - 48 * HOUR).await;
    let done2 = appointment(&app, &t, &ana, &cat, "completed", now() - 24 * HOUR).await;
    let done3 = appointment(&app, &t, &ana, &cat, "completed", now() - 12 * HOUR).await;
    let other_svc = appointment(&app, &t, &ana, &other_service, "completed", now() - 6 * HOUR).await;
    let bens = appointment(&app, &t, &ben, &cat, "completed", now() - 6 * HOUR).await;
    let redeem = |a: String| {
        let (app, owner, package) = (&app, &owner, package.clone());
        async move { app.post(&format!("/api/v1/plans/{package}/redeem"), owner, json!({"appointment_id": a})).await }
    };
    let r = redeem(booked.clone()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("appointment_not_completed")));
    let r = redeem(bens).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("appointment_id")));
    let r = redeem(other_svc).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("appointment_id")));
    let r = app.post(&format!("/api/v1/plans/{package}/redeem"), &owner, json!({})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("appointment_id")));
    let r = redeem(done1.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["remaining"], 1);
    // Once per appointment.
    let r = redeem(done1.clone()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("already_redeemed")));
    let r = redeem(done2).await;
    assert_eq!(r.body["remaining"], 0);
    let r = redeem(done3.clone()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("plan_used_up")));

    // An expired package cannot be redeemed.
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "package", "name": "Old", "service_id": cat.0, "sessions": 5, "price_minor": 1000, "currency": "USD"}),
        )
        .await;
    let old = r.body["id"].as_str().unwrap().to_string();
    app.owner_sql(&format!("UPDATE client_plans SET expires_at = {} WHERE id = '{old}'", now() - 10)).await;
    let r = app.post(&format!("/api/v1/plans/{old}/redeem"), &owner, json!({"appointment_id": done3})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("plan_expired")));

    // A membership started 2 months and a bit ago: 3 started months × 2 credits.
    let start = time::OffsetDateTime::from_unix_timestamp(now() - 65 * 86_400).unwrap();
    let start = start.format(&time::format_description::well_known::Rfc3339).unwrap();
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "membership", "name": "Glow Club", "price_minor": 9900, "currency": "USD", "credits_per_period": 2, "starts_at": start}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let total = r.body["credits_total"].as_i64().unwrap();
    assert!((5..=6).contains(&total), "3 started months (2 if month lengths line up): {total}");
    assert_eq!(r.body["credits_total"].as_i64().unwrap() % 2, 0);
    let membership = r.body["id"].as_str().unwrap().to_string();
    let r = app.post(&format!("/api/v1/plans/{membership}/redeem"), &owner, json!({"appointment_id": done3})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["remaining"].as_i64().unwrap(), total - 1);

    let r = app.get(&format!("/api/v1/clients/{ana}/plans"), &owner).await;
    assert_eq!(r.status, StatusCode::OK);
    let plans = r.body.as_array().unwrap();
    assert_eq!(plans.len(), 3);
    let old_plan = plans.iter().find(|p| p["id"] == old.as_str()).unwrap();
    assert_eq!(old_plan["status"], "expired");

    let audit = app.get("/api/v1/audit?action=plan.redeem", &owner).await;
    assert_eq!(audit.body.as_array().unwrap().len(), 3, "{:?}", audit.body);
}

async fn plans_refuse_other_tenants_and_roles(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let provider = app.add_member(&owner, "pat@example.com", "provider").await;
    let mallory = app.signup("Other Spa", "mallory@example.com").await;
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let done = appointment(&app, &owner.tenant_id, &ana, &cat, "completed", now() - HOUR).await;
    let body = json!({"kind": "package", "name": "P", "service_id": cat.0, "sessions": 2, "price_minor": 100, "currency": "USD"});
    let r = app.post(&format!("/api/v1/clients/{ana}/plans"), &owner, body.clone()).await;
    let plan = r.body["id"].as_str().unwrap().to_string();

    // Another tenant's ids are simply not found.
    let r = app.post(&format!("/api/v1/clients/{ana}/plans"), &mallory, body.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get(&format!("/api/v1/clients/{ana}/plans"), &mallory).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.post(&format!("/api/v1/plans/{plan}/redeem"), &mallory, json!({"appointment_id": done})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Mallory's own plan cannot redeem Glow's appointment.
    let m_client = client(&app, &mallory, "Mo", "mo@example.com", false).await;
    let m_cat = catalogue(&app, &mallory.tenant_id).await;
    let r = app
        .post(&format!("/api/v1/clients/{m_client}/plans"), &mallory, json!({"kind": "package", "name": "P", "service_id": m_cat.0, "sessions": 2, "price_minor": 100, "currency": "USD"}))
        .await;
    let m_plan = r.body["id"].as_str().unwrap().to_string();
    let r = app.post(&format!("/api/v1/plans/{m_plan}/redeem"), &mallory, json!({"appointment_id": done})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A provider has no plans.manage.
    let r = app.post(&format!("/api/v1/plans/{plan}/redeem"), &provider, json!({"appointment_id": done})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.get(&format!("/api/v1/clients/{ana}/plans"), &provider).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nothing was redeemed by any of that.
    let r = app.get(&format!("/api/v1/clients/{ana}/plans"), &owner).await;
    assert_eq!(r.body[0]["credits_used"], 0);
}

fn charge_body(appt: &str, amount: i64) -> Value {
    json!({"appointment_id": appt, "amount_minor": amount, "currency": "USD", "payment_method": "pm_1Nv0aZ2eZvKYlo2C",
        "customer": "cus_9s6XKzkNRiz8i3", "payment_intent": format!("pi_{}", uuid::Uuid::new_v4().simple())})
}

async fn payments_are_recorded_and_refunded_within_the_charge(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let desk = app.add_member(&owner, "desk@example.com", "front_desk").await;
    let mallory = app.signup("Other Spa", "mallory@example.com").await;
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let appt = appointment(&app, &owner.tenant_id, &ana, &cat, "completed", now() - HOUR).await;

    // Ids must look like processor ids.
    for (field, bad) in
        [("payment_method", "card_123456789"), ("payment_intent", "pi_short"), ("customer", "cus_has space1")]
    {
        let mut body = charge_body(&appt, 15000);
        body[field] = json!(bad);
        let r = app.post("/api/v1/payments", &desk, body).await;
        assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{bad}");
    }
    let r = app.post("/api/v1/payments", &desk, json!({"amount_minor": 1, "currency": "USD"})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("appointment_id")));
    // Another tenant's appointment is not found.
    let r = app.post("/api/v1/payments", &mallory, charge_body(&appt, 100)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app.post("/api/v1/payments", &desk, charge_body(&appt, 15000)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    let charge = r.body["id"].as_str().unwrap().to_string();

    // Not captured yet: nothing to refund.
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &owner, json!({"amount_minor": 100})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("payment_not_captured")));
    app.owner_sql(&format!("UPDATE payments SET status = 'succeeded' WHERE id = '{charge}'")).await;

    // Front desk may take payments but not refund; another tenant cannot see the charge.
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &desk, json!({"amount_minor": 100})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &mallory, json!({"amount_minor": 100})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app
        .post(
            &format!("/api/v1/payments/{charge}/refund"),
            &owner,
            json!({"amount_minor": 5000, "reason": "duplicate"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "refund");
    assert_eq!(r.body["refund_of"], charge.as_str());
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &owner, json!({"amount_minor": 10001})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("amount_minor")));
    let r =
        app.post(&format!("/api/v1/payments/{charge}/refund"), &owner, json!({"reason": "because I said so"})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")));
    // Without an amount: the rest.
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["amount_minor"], 10000);
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &owner, json!({"amount_minor": 1})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let r = app.get(&format!("/api/v1/payments?appointment_id={appt}"), &desk).await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = r.body.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().find(|p| p["id"] == charge.as_str()).unwrap()["status"], "refunded");
    let r = app.get("/api/v1/payments", &mallory).await;
    assert_eq!(r.body.as_array().unwrap().len(), 0);
    let r = app.get("/api/v1/payments?plan_id=nope", &desk).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("plan_id")));

    // Both refunds are in the audit trail with their amounts.
    let audit = app.get("/api/v1/audit?action=payment.refund", &owner).await;
    let events = audit.body.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let amounts: Vec<i64> = events.iter().map(|e| e["scope"]["amount_minor"].as_i64().unwrap()).collect();
    assert!(amounts.contains(&5000) && amounts.contains(&10000), "{amounts:?}");
    assert!(events.iter().all(|e| e["target"] == charge.as_str()));
}

/// Collects every log line of the process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn card_numbers_are_refused_and_never_logged(b: Backend) {
    let logs = Captured::default();
    let writer = logs.clone();
    // Installed before the app (the harness's own subscriber then stays out); every level.
    let installed = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .try_init()
        .is_ok();
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let appt = appointment(&app, &owner.tenant_id, &ana, &cat, "completed", now() - HOUR).await;
    for card in ["4242 4242 4242 4242", "4242424242424242"] {
        let mut body = charge_body(&appt, 100);
        body["payment_method"] = json!(card);
        let r = app.post("/api/v1/payments", &owner, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(r.error_code(), Some("card_number_rejected"));
        assert!(!r.body.to_string().contains("4242"), "the number is not echoed");
        let r = app.get(&format!("/api/v1/payments?plan_id={}", card.replace(' ', "%20")), &owner).await;
        assert_eq!(r.error_code(), Some("card_number_rejected"));
    }
    let r = app.get("/api/v1/payments", &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 0, "nothing was stored");
    if installed {
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
        assert!(!text.is_empty(), "the capture works");
        assert!(!text.contains("4242 4242") && !text.contains("4242424242424242"), "card number in logs");
    }
}

async fn stripe_webhooks_need_a_fresh_valid_signature(b: Backend) {
    let app = spawn_with_secret(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let appt = appointment(&app, &owner.tenant_id, &ana, &cat, "completed", now() - HOUR).await;
    let body = charge_body(&appt, 15000);
    let pi = body["payment_intent"].as_str().unwrap().to_string();
    let charge = app.post("/api/v1/payments", &owner, body).await.body["id"].as_str().unwrap().to_string();
    let status = || async {
        let r = app.get(&format!("/api/v1/payments?appointment_id={appt}"), &owner).await;
        r.body.as_array().unwrap().iter().find(|p| p["id"] == charge.as_str()).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let event =
        |id: &str, kind: &str, object: Value| json!({"id": id, "type": kind, "data": {"object": object}}).to_string();
    let succeeded = event(
        "evt_1",
        "payment_intent.succeeded",
        json!({"id": pi, "amount_received": 15000, "metadata": {"lacuna_tenant": owner.tenant_id}}),
    );

    // Wrong secret, tampered body, stale timestamp, no header: refused, nothing changes.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_wrong").unwrap();
    mac.update(format!("{}.{succeeded}", now()).as_bytes());
    let wrong = format!("t={},v1={}", now(), hex::encode(mac.finalize().into_bytes()));
    let r = webhook(&app, &succeeded, Some(wrong)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, Some("invalid_signature")));
    let tampered = succeeded.replace("15000", "15001");
    let r = webhook(&app, &tampered, Some(sign(&succeeded, now()))).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, Some("invalid_signature")));
    let r = webhook(&app, &succeeded, Some(sign(&succeeded, now() - 301))).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, Some("stale_signature")));
    let r = webhook(&app, &succeeded, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(status().await, "pending");

    // Valid (with a second, stale v1 alongside, as during secret rotation).
    let t = now();
    let header = format!("{},v1={}", sign(&succeeded, t), "0".repeat(64));
    let r = webhook(&app, &succeeded, Some(header.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["outcome"], "processed");
    assert_eq!(status().await, "succeeded");

    // A refund, then the processor's charge.refunded; its replay changes nothing.
    let r = app.post(&format!("/api/v1/payments/{charge}/refund"), &owner, json!({"amount_minor": 5000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(status().await, "partially_refunded");
    let refunded = event(
        "evt_2",
        "charge.refunded",
        json!({"id": "ch_123456789", "payment_intent": pi, "amount": 15000, "amount_refunded": 15000,
               "metadata": {"lacuna_tenant": owner.tenant_id}}),
    );
    let r = webhook(&app, &refunded, Some(sign(&refunded, now()))).await;
    assert_eq!(r.body["outcome"], "processed");
    assert_eq!(status().await, "refunded");
    // Replay of evt_1 (fresh signature, same event id) is a no-op: the charge stays refunded.
    let r = webhook(&app, &succeeded, Some(sign(&succeeded, now()))).await;
    assert_eq!((r.status, r.body["outcome"].as_str()), (StatusCode::OK, Some("replayed")));
    assert_eq!(status().await, "refunded");

    // An event for a tenant that does not exist, or naming none, is acknowledged and ignored.
    let stray = event(
        "evt_3",
        "payment_intent.succeeded",
        json!({"id": pi, "metadata": {"lacuna_tenant": TenantId::new().to_string()}}),
    );
    let r = webhook(&app, &stray, Some(sign(&stray, now()))).await;
    assert_eq!(r.body["outcome"], "ignored");
    let r = webhook(&app, "not json", Some(sign("not json", now()))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn webhook_endpoint_is_absent_without_a_secret(b: Backend) {
    let app = TestApp::spawn(b).await;
    let body = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{}}}"#;
    let r = webhook(&app, body, Some(sign(body, now()))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn file_channel_writes_each_message_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let tenant: TenantId = owner.tenant_id.parse().unwrap();
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let practice = &app.app.state.practice;
    let mut appts = Vec::new();
    for i in 0..3 {
        let a = appointment(&app, &owner.tenant_id, &ana, &cat, "booked", now() + (72 + i) * HOUR).await;
        assert!(practice.enqueue_confirmation(tenant, a.parse().unwrap()).await.unwrap());
        // Idempotent by dedupe key.
        assert!(!practice.enqueue_confirmation(tenant, a.parse().unwrap()).await.unwrap());
        appts.push(a);
    }
    let channel = Channel::file_in(app.scratch.dir());
    // Two workers at once, then once more.
    let (a, b2) = tokio::join!(practice.deliver_due(&channel, now()), practice.deliver_due(&channel, now()));
    assert_eq!(a.unwrap().sent + b2.unwrap().sent, 3);
    assert_eq!(practice.deliver_due(&channel, now()).await.unwrap().sent, 0);
    let text = std::fs::read_to_string(app.scratch.dir().join("outbox/messages.jsonl")).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "exactly one line per message");
    assert!(lines.iter().all(|l| l["to"] == "ana@example.com" && l["kind"] == "confirmation"));
    assert!(lines[0]["body"].as_str().unwrap().contains("Hydrafacial"));

    let r = app.get("/api/v1/messages", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let msgs = r.body.as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert!(msgs.iter().all(|m| m["status"] == "sent" && m["attempts"].as_array().unwrap().len() == 1));
    assert_eq!(msgs[0]["to"], "ana@example.com");
    // Other tenants and roles without messages.read see none of it.
    let mallory = app.signup("Other Spa", "mallory@example.com").await;
    assert_eq!(app.get("/api/v1/messages", &mallory).await.body.as_array().unwrap().len(), 0);
    let provider = app.add_member(&owner, "pat@example.com", "provider").await;
    assert_eq!(app.get("/api/v1/messages", &provider).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/messages?status=bogus", &owner).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Another tenant's appointment cannot be enqueued under this tenant.
    let other: TenantId = mallory.tenant_id.parse().unwrap();
    assert!(practice.enqueue_confirmation(other, appts[0].parse().unwrap()).await.is_err());
}

/// A minimal SMTP server: accepts every message and returns the DATA sections it received.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            w.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

async fn smtp_delivers_and_failures_back_off(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let tenant: TenantId = owner.tenant_id.parse().unwrap();
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let practice = &app.app.state.practice;
    let a1 = appointment(&app, &owner.tenant_id, &ana, &cat, "booked", now() + 72 * HOUR).await;
    practice.enqueue_confirmation(tenant, a1.parse().unwrap()).await.unwrap();

    let (port, got) = smtp_sink().await;
    let smtp = Channel::smtp(&format!("smtp://127.0.0.1:{port}"), "Glow Spa <hello@glow.example>").unwrap();
    let report = practice.deliver_due(&smtp, now()).await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: ana@example.com") && mails[0].contains("Hydrafacial"), "{}", mails[0]);

    // A closed port: each failure is recorded and retried after 1m, 5m, 30m, 2h; the fifth fails.
    let a2 = appointment(&app, &owner.tenant_id, &ana, &cat, "booked", now() + 96 * HOUR).await;
    practice.enqueue_confirmation(tenant, a2.parse().unwrap()).await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = Channel::smtp(&format!("smtp://127.0.0.1:{closed}"), "hello@glow.example").unwrap();
    let mut t = now();
    let mut expected_next = Vec::new();
    for (i, delay) in [60, 300, 1800, 7200].into_iter().enumerate() {
        let report = practice.deliver_due(&dead, t).await.unwrap();
        assert_eq!(report.retried, 1, "attempt {}: {report:?}", i + 1);
        // Not due again before its backoff.
        assert_eq!(practice.deliver_due(&dead, t + delay - 1).await.unwrap(), Default::default());
        expected_next.push(t + delay);
        t += delay;
    }
    let report = practice.deliver_due(&dead, t).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let r = app.get("/api/v1/messages?status=failed", &owner).await;
    let msgs = r.body.as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    let attempts = msgs[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 5);
    assert!(attempts.iter().all(|a| a["outcome"] == "failed" && a["detail"] == "could not reach the SMTP server"));
    assert!(!r.body.to_string().contains("sink"), "no server text recorded");
    // Exactly one mail ever reached the sink.
    assert_eq!(got.lock().unwrap().len(), 1);
    // The sent one was never retried.
    let sent = app.get("/api/v1/messages?status=sent", &owner).await;
    assert_eq!(sent.body[0]["attempts"].as_array().unwrap().len(), 1);
}

async fn marketing_needs_consent(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let tenant: TenantId = owner.tenant_id.parse().unwrap();
    let yes = client(&app, &owner, "Ana Lima", "ana@example.com", true).await;
    let no = client(&app, &owner, "Ben Ode", "ben@example.com", false).await;
    let practice = &app.app.state.practice;
    for (c, key) in [(&yes, "nudge:ana"), (&no, "nudge:ben")] {
        assert!(
            practice
                .enqueue_marketing(tenant, c.parse().unwrap(), "nudge", key, "Time for a refresh", "Book again")
                .await
                .unwrap()
        );
    }
    let channel = Channel::file_in(app.scratch.dir());
    let report = practice.deliver_due(&channel, now()).await.unwrap();
    assert_eq!((report.sent, report.skipped), (1, 1), "{report:?}");
    let text = std::fs::read_to_string(app.scratch.dir().join("outbox/messages.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("ana@example.com") && !text.contains("ben@example.com"));
    let r = app.get("/api/v1/messages?status=skipped", &owner).await;
    let msgs = r.body.as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["client_id"], no.as_str());
    assert_eq!(msgs[0]["attempts"][0]["outcome"], "skipped");
    // Skipped stays skipped.
    assert_eq!(practice.deliver_due(&channel, now() + 86_400).await.unwrap(), Default::default());
}

async fn reminders_are_queued_within_the_lead_time(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let soon = appointment(&app, &owner.tenant_id, &ana, &cat, "booked", now() + 5 * HOUR).await;
    let _later = appointment(&app, &owner.tenant_id, &ana, &cat, "booked", now() + 30 * HOUR).await;
    let _cancelled = appointment(&app, &owner.tenant_id, &ana, &cat, "cancelled", now() + 6 * HOUR).await;
    let practice = &app.app.state.practice;
    assert_eq!(practice.enqueue_due_reminders(now()).await.unwrap(), 1);
    assert_eq!(practice.enqueue_due_reminders(now()).await.unwrap(), 0, "once per appointment");
    // A longer lead time picks up the later one too.
    app.owner_sql(&format!("UPDATE tenants SET reminder_lead_hours = 48 WHERE id = '{}'", owner.tenant_id)).await;
    assert_eq!(practice.enqueue_due_reminders(now()).await.unwrap(), 1);
    let r = app.get("/api/v1/messages", &owner).await;
    let msgs = r.body.as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().all(|m| m["kind"] == "reminder" && m["status"] == "pending"));
    assert!(msgs.iter().any(|m| m["appointment_id"] == soon.as_str()));
}

async fn concurrent_refunds_never_exceed_the_charge(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let appt = appointment(&app, &owner.tenant_id, &ana, &cat, "completed", now() - HOUR).await;
    let charge =
        app.post("/api/v1/payments", &owner, charge_body(&appt, 10000)).await.body["id"].as_str().unwrap().to_string();
    app.owner_sql(&format!("UPDATE payments SET status = 'succeeded' WHERE id = '{charge}'")).await;
    let path = format!("/api/v1/payments/{charge}/refund");
    let calls = (0..6).map(|_| app.post(&path, &owner, json!({"amount_minor": 4000})));
    let results = futures_join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(ok, 2, "two refunds of 4000 fit in 10000: {:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(results.iter().all(|r| r.status == StatusCode::CREATED || r.status == StatusCode::UNPROCESSABLE_ENTITY));
}

/// Runs the futures concurrently (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::new();
    // Poll all together.
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    for r in results {
        out.push(r.unwrap());
    }
    out
}

/// A worker claims a message and stops before sending it. While its lease runs, nobody else
/// sends the message; once it has run out, the message goes back to pending with an
/// `abandoned` attempt and the next round sends it, once.
async fn a_stopped_workers_claim_is_taken_back_after_its_lease(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let tenant: TenantId = owner.tenant_id.parse().unwrap();
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com", false).await;
    let cat = catalogue(&app, &owner.tenant_id).await;
    let practice = &app.app.state.practice;
    let a = appointment(&app, &owner.tenant_id, &ana, &cat, "booked", now() + 72 * HOUR).await;
    assert!(practice.enqueue_confirmation(tenant, a.parse().unwrap()).await.unwrap());

    // The crashed worker: claimed (committed), never sent, never recorded.
    let claimed_at = now();
    let mut tx = practice.store().tenant(tenant).write().await.unwrap();
    let claimed = tx.claim_due_messages(now(), claimed_at, 10).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].id;

    let channel = Channel::file_in(app.scratch.dir());
    let sent_lines =
        || std::fs::read_to_string(app.scratch.dir().join("outbox/messages.jsonl")).unwrap_or_default().lines().count();
    // Lease still running: the claim may belong to a live worker, so nothing is sent.
    let report = practice.deliver_due(&channel, now()).await.unwrap();
    assert_eq!((report.sent, report.reclaimed), (0, 0), "{report:?}");
    assert_eq!(sent_lines(), 0);
    let r = app.get("/api/v1/messages?status=sending", &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);

    // Lease over (the claim is backdated past it): taken back and sent, once.
    let lease = lacuna_practice::messages::CLAIM_LEASE_SECS;
    app.owner_sql(&format!("UPDATE outbox SET claimed_at = claimed_at - {} WHERE id = '{id}'", lease + 1)).await;
    let report = practice.deliver_due(&channel, now()).await.unwrap();
    assert_eq!((report.reclaimed, report.sent), (1, 1), "{report:?}");
    assert_eq!(sent_lines(), 1);
    assert_eq!(practice.deliver_due(&channel, now()).await.unwrap(), Default::default());
    assert_eq!(sent_lines(), 1);
    let r = app.get("/api/v1/messages", &owner).await;
    let m = &r.body.as_array().unwrap()[0];
    assert_eq!(m["status"], "sent");
    let outcomes: Vec<&str> =
        m["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, vec!["abandoned", "sent"]);
    // The stopped worker, were it to wake up, no longer holds the message.
    let mut tx = practice.store().tenant(tenant).write().await.unwrap();
    assert!(!tx.renew_message_claim(id, claimed_at - lease - 1, now()).await.unwrap());
    assert!(!tx.renew_message_claim(id, claimed_at, now()).await.unwrap());
}
