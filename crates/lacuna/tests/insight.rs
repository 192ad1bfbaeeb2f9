//! Insight end to end over HTTP: events from an external system through the PHI guard, gaps with
//! revenue at stake, proposals under the approval policy, approvals and declines audited, triggers
//! carried out by the Practice side (consent respected, once only), pseudonym rotation.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{Session, TestApp};
use lacuna::scratch::Backend;
use lacuna_practice::insight_feed::{Pseudonymizer, instant};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    gaps_actions_approval_and_triggers,
    the_phi_guard_refuses_a_whole_batch_and_counts_it,
    auto_approval_within_the_policy_limits_only,
    pseudonym_rotation_carries_history_over,
    triggers_for_an_external_system_go_out_as_signed_webhooks,
);

const DAY: i64 = 86_400;

fn id(r: &common::Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:?} {:?}", r.status, r.body)).to_string()
}

async fn minter(app: &TestApp, owner: &Session) -> Pseudonymizer {
    let key = app.app.services.accounts.keyring().tenant_hmac_key(owner.tenant_id.parse().unwrap(), "pseudonym").await;
    Pseudonymizer::new(key.unwrap())
}

async fn client(app: &TestApp, owner: &Session, name: &str, consent: bool) -> String {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let r =
        app.post("/api/v1/clients", owner, json!({"name": name, "email": email, "marketing_consent": consent})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    id(&r)
}

/// A completed neurotoxin treatment (cycle 90 days) `days_ago`, as an external system sends it.
fn completed(p: &Pseudonymizer, client: &str, days_ago: i64) -> Value {
    let at = lacuna_storage::now_unix() - days_ago * DAY;
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "kind": "appointment.completed",
        "client": p.client(client),
        "service_category": "neurotoxin",
        "cycle_days": 90,
        "price_band": "250-499",
        "occurred_at": instant(at),
        "starts_at": instant(at - 3600),
        "ends_at": instant(at),
    })
}

async fn ingest_token(app: &TestApp, owner: &Session) -> String {
    let r = app.post("/api/v1/tokens", owner, json!({"name": "pms", "permissions": ["insight.ingest"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["token"]["secret"].as_str().or(r.body["secret"].as_str()).unwrap().to_string()
}

async fn send(app: &TestApp, token: &str, events: Vec<Value>) -> common::Resp {
    app.call_bearer(Method::POST, "/api/v1/insight/events", token, Some(json!({"events": events}))).await
}

fn action_for<'a>(actions: &'a Value, pseudonym: &str) -> &'a Value {
    actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client"] == pseudonym)
        .unwrap_or_else(|| panic!("no action for {pseudonym}: {actions}"))
}

async fn gaps_actions_approval_and_triggers(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow", "owner@glow.test").await;
    let desk = app.add_member(&owner, "desk@glow.test", "front_desk").await;
    let manager = app.add_member(&owner, "manager@glow.test", "manager").await;
    let (ann, bob, cat) = (
        client(&app, &owner, "Ann Avery", true).await,
        client(&app, &owner, "Bob Brook", false).await,
        client(&app, &owner, "Cat Cole", true).await,
    );
    let p = minter(&app, &owner).await;
    let token = ingest_token(&app, &owner).await;

    let r =
        send(&app, &token, vec![completed(&p, &ann, 120), completed(&p, &bob, 130), completed(&p, &cat, 140)]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["accepted"], 3);
    // The same events again are no-ops.
    let again = send(&app, &token, vec![]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "an empty batch is refused");

    // Gaps: three clients overdue, pseudonyms only, revenue at stake from the price band.
    let gaps = app.get("/api/v1/insight/gaps?kind=rebook_due", &desk).await;
    assert_eq!(gaps.status, StatusCode::OK, "{:?}", gaps.body);
    assert_eq!(gaps.body["total"], 3, "{}", gaps.body);
    assert_eq!(gaps.body["revenue_at_stake_minor"], 3 * 37_500);
    let text = gaps.body.to_string();
    assert!(text.contains(&p.client(&ann)) && text.contains("last neurotoxin"), "{text}");
    for personal in ["Ann", "Avery", "ann.avery@example.com", &ann] {
        assert!(!text.contains(personal), "gap list leaks {personal}");
    }
    let bad = app.get("/api/v1/insight/gaps?kind=everything", &desk).await;
    assert_eq!((bad.status, bad.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("kind")));

    // Proposals under the default policy (approval by a manager): nothing is sent yet.
    let r = app.post("/api/v1/insight/actions/propose", &manager, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["proposed"].as_u64(), r.body["auto_approved"].as_u64()), (Some(3), Some(0)));
    let r = app.post("/api/v1/insight/actions/propose", &manager, json!({})).await;
    assert_eq!(r.body["proposed"], 0, "a gap is proposed once");
    assert_eq!(app.post("/api/v1/insight/actions/propose", &desk, json!({})).await.status, StatusCode::FORBIDDEN);
    let actions = app.get("/api/v1/insight/actions?status=proposed", &desk).await.body;
    assert_eq!(actions.as_array().unwrap().len(), 3);
    let (a_ann, a_bob, a_cat) = (
        action_for(&actions, &p.client(&ann))["id"].as_str().unwrap().to_string(),
        action_for(&actions, &p.client(&bob))["id"].as_str().unwrap().to_string(),
        action_for(&actions, &p.client(&cat))["id"].as_str().unwrap().to_string(),
    );
    assert!(app.get("/api/v1/insight/triggers", &owner).await.body.as_array().unwrap().is_empty());
    assert_eq!(lacuna::jobs::deliver_insight_triggers(&app.app.services).await.unwrap(), 0);

    // Front desk may look but not approve; another practice cannot even see the action.
    let r = app.post(&format!("/api/v1/insight/actions/{a_ann}/approve"), &desk, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let other = app.signup("Elsewhere", "owner@elsewhere.test").await;
    let r = app.post(&format!("/api/v1/insight/actions/{a_ann}/approve"), &other, json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // The manager approves Ann's and Bob's, declines Cat's.
    let r = app.post(&format!("/api/v1/insight/actions/{a_ann}/approve"), &manager, json!({})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("approved")), "{:?}", r.body);
    assert_eq!(r.body["decided_by"], format!("user:{}", manager.user_id));
    let r = app.post(&format!("/api/v1/insight/actions/{a_ann}/approve"), &manager, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "decided once");
    let r = app.post(&format!("/api/v1/insight/actions/{a_bob}/approve"), &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.post(&format!("/api/v1/insight/actions/{a_cat}/decline"), &manager, json!({})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("declined")));

    // Audited with who: approvals and the decline.
    let audit = app.get("/api/v1/audit?limit=200", &owner).await.body.to_string();
    assert_eq!(audit.matches("insight.action.approve").count(), 2, "{audit}");
    assert_eq!(audit.matches("insight.action.decline").count(), 1);
    assert!(audit.contains(&format!("insight_action:{a_cat}")));

    // Two triggers; the Practice side carries them out: Ann gets a nudge, Bob (no consent) none.
    let triggers = app.get("/api/v1/insight/triggers", &owner).await.body;
    assert_eq!(triggers.as_array().unwrap().len(), 2, "{triggers}");
    assert!(triggers.to_string().contains("send rebook nudge to p_"));
    assert_eq!(lacuna::jobs::deliver_insight_triggers(&app.app.services).await.unwrap(), 2);
    assert_eq!(lacuna::jobs::deliver_insight_triggers(&app.app.services).await.unwrap(), 0, "delivered once");
    let triggers = app.get("/api/v1/insight/triggers", &owner).await.body;
    let outcome = |who: &str| {
        triggers.as_array().unwrap().iter().find(|t| t["client"] == who).map(|t| t["outcome"].clone()).unwrap()
    };
    assert_eq!(outcome(&p.client(&ann)), "queued");
    assert_eq!(outcome(&p.client(&bob)), "no_consent");
    let messages = app.get("/api/v1/messages", &owner).await.body;
    let nudges: Vec<&Value> = messages.as_array().unwrap().iter().filter(|m| m["kind"] == "nudge").collect();
    assert_eq!(nudges.len(), 1, "{messages}");
    assert_eq!(nudges[0]["client_id"], ann.as_str());
    assert_eq!(nudges[0]["to"], "ann.avery@example.com");

    // A trigger delivered twice (e.g. a crash before Insight recorded the outcome) is carried out once.
    let first = triggers.as_array().unwrap().iter().find(|t| t["client"] == p.client(&ann)).unwrap();
    let practice = lacuna_practice::Practice::new(app.app.services.accounts.clone());
    let again = lacuna_practice::triggers::TriggerIn {
        id: first["id"].as_str().unwrap(),
        action_kind: "rebook_nudge",
        client_pseudonym: first["client"].as_str().unwrap(),
        service_category: Some("neurotoxin"),
        slot_starts_at: None,
    };
    let tenant = owner.tenant_id.parse().unwrap();
    assert_eq!(practice.carry_out_trigger(tenant, &again).await.unwrap(), "queued");
    let messages = app.get("/api/v1/messages", &owner).await.body;
    assert_eq!(messages.as_array().unwrap().iter().filter(|m| m["kind"] == "nudge").count(), 1);

    // The gap list shows which action each gap became.
    let gaps = app.get("/api/v1/insight/gaps", &owner).await.body;
    let ann_gap = gaps["gaps"].as_array().unwrap().iter().find(|g| g["client"] == p.client(&ann)).unwrap();
    assert_eq!(ann_gap["action"]["status"], "approved");
}

async fn the_phi_guard_refuses_a_whole_batch_and_counts_it(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow", "owner@glow.test").await;
    let ann = client(&app, &owner, "Ann Avery", true).await;
    let p = minter(&app, &owner).await;
    let token = ingest_token(&app, &owner).await;
    let mut leaky = completed(&p, &ann, 100);
    leaky["client"] = json!("ann.avery@example.com");
    let mut extra = completed(&p, &ann, 100);
    extra["notes"] = json!("allergic to lidocaine");
    let r = send(&app, &token, vec![completed(&p, &ann, 100), leaky, extra]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("phi_rejected"));
    assert_eq!(r.error_field(), Some("events[1].client"));
    let text = r.body.to_string();
    assert!(text.contains("Email") && text.contains("events[2].notes"), "{text}");
    assert!(!text.contains("ann.avery") && !text.contains("lidocaine"), "the refusal echoes a value: {text}");
    // Nothing of the batch was kept, and the refusals were counted by kind.
    assert_eq!(app.get("/api/v1/insight/gaps", &owner).await.body["total"], 0);
    let counts = app.get("/api/v1/insight/rejections", &owner).await.body.to_string();
    assert!(counts.contains("Email"), "{counts}");
    // A session without insight.ingest (front desk) cannot send events.
    let desk = app.add_member(&owner, "desk@glow.test", "front_desk").await;
    let r = app.post("/api/v1/insight/events", &desk, json!([completed(&p, &ann, 100)])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn auto_approval_within_the_policy_limits_only(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow", "owner@glow.test").await;
    let manager = app.add_member(&owner, "manager@glow.test", "manager").await;
    let p = minter(&app, &owner).await;
    let token = ingest_token(&app, &owner).await;
    let mut clients = Vec::new();
    for n in 0..3 {
        clients.push(client(&app, &owner, &format!("Client {n}"), true).await);
    }
    let events = clients.iter().map(|c| completed(&p, c, 120)).collect();
    assert_eq!(send(&app, &token, events).await.status, StatusCode::ACCEPTED);

    // Only an owner (insight.manage) sets the policy; bad values name the field.
    assert_eq!(put(&app, &manager, json!({"mode": "off"})).await.status, StatusCode::FORBIDDEN);
    let r = put(&app, &owner, json!({"mode": "auto", "max_per_day": -1, "max_value_minor": 5})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("max_per_day")));
    let r = put(&app, &owner, json!({"mode": "approval", "role": "janitor"})).await;
    assert_eq!((r.status, r.error_field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("role")));
    let r =
        put(&app, &owner, json!({"mode": "auto", "max_per_day": 2, "max_value_minor": 50_000, "role": "owner"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let policy = app.get("/api/v1/insight/policy", &manager).await.body;
    assert_eq!(policy[0]["kind"], "rebook_nudge");
    assert_eq!(policy[0]["mode"], "auto");

    // Two within the daily count are approved by the policy; the third waits for an owner.
    let r = app.post("/api/v1/insight/actions/propose", &owner, json!({})).await;
    assert_eq!((r.body["auto_approved"].as_u64(), r.body["proposed"].as_u64()), (Some(2), Some(1)), "{:?}", r.body);
    let waiting = app.get("/api/v1/insight/actions?status=proposed", &owner).await.body;
    let waiting_id = waiting[0]["id"].as_str().unwrap().to_string();
    let r = app.post(&format!("/api/v1/insight/actions/{waiting_id}/approve"), &manager, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the policy names owners for what exceeds the limits");
    let audit = app.get("/api/v1/audit?limit=200", &owner).await.body.to_string();
    assert_eq!(audit.matches("insight.action.auto_approve").count(), 2, "{audit}");
    assert!(audit.contains("insight.policy.set"));
    assert_eq!(lacuna::jobs::deliver_insight_triggers(&app.app.services).await.unwrap(), 2);

    // Off: nothing more is proposed, whatever the gaps.
    assert_eq!(put(&app, &owner, json!({"mode": "off"})).await.status, StatusCode::OK);
    let extra = client(&app, &owner, "Client 3", true).await;
    assert_eq!(send(&app, &token, vec![completed(&p, &extra, 150)]).await.status, StatusCode::ACCEPTED);
    let r = app.post("/api/v1/insight/actions/propose", &owner, json!({})).await;
    assert_eq!((r.body["auto_approved"].as_u64(), r.body["proposed"].as_u64()), (Some(0), Some(0)));
}

async fn put(app: &TestApp, who: &Session, body: Value) -> common::Resp {
    app.call(Method::PUT, "/api/v1/insight/policy/rebook_nudge", Some(who), Some(body)).await
}

async fn pseudonym_rotation_carries_history_over(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow", "owner@glow.test").await;
    let ann = client(&app, &owner, "Ann Avery", true).await;
    let old = minter(&app, &owner).await;
    let token = ingest_token(&app, &owner).await;
    assert_eq!(send(&app, &token, vec![completed(&old, &ann, 120)]).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.post("/api/v1/insight/actions/propose", &owner, json!({})).await.body["proposed"], 1);
    let before = app.get("/api/v1/insight/gaps", &owner).await.body;
    assert_eq!(before["gaps"][0]["client"], old.client(&ann));

    let desk = app.add_member(&owner, "desk@glow.test", "front_desk").await;
    assert_eq!(app.post("/api/v1/insight/pseudonym-key/rotate", &desk, json!({})).await.status, StatusCode::FORBIDDEN);
    let r = app.post("/api/v1/insight/pseudonym-key/rotate", &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["rows_rewritten"].as_u64().unwrap() >= 2, "{:?}", r.body);
    assert_eq!(r.body["old_keys_retired"], 1);

    // Same history, new pseudonyms; the old one is gone from everything Insight shows.
    let new = minter(&app, &owner).await;
    let new_p = new.client(&ann);
    assert_ne!(new_p, old.client(&ann));
    let after = app.get("/api/v1/insight/gaps", &owner).await.body;
    assert_eq!(after["total"], before["total"]);
    assert_eq!(after["gaps"][0]["client"], new_p.as_str());
    assert!(after["gaps"][0]["evidence"].as_str().unwrap().contains(&new_p));
    let actions = app.get("/api/v1/insight/actions", &owner).await.body.to_string();
    assert!(actions.contains(&new_p) && !actions.contains(&old.client(&ann)), "{actions}");
    assert_eq!(
        app.post("/api/v1/insight/actions/propose", &owner, json!({})).await.body["proposed"],
        0,
        "same gap, same action"
    );

    // Old pseudonyms resolve to no one; new ones to the client.
    let practice = lacuna_practice::Practice::new(app.app.services.accounts.clone());
    let tenant = owner.tenant_id.parse().unwrap();
    let stale = lacuna_practice::triggers::TriggerIn {
        id: "00000000-0000-4000-8000-000000000001",
        action_kind: "rebook_nudge",
        client_pseudonym: &old.client(&ann),
        service_category: Some("neurotoxin"),
        slot_starts_at: None,
    };
    assert_eq!(practice.carry_out_trigger(tenant, &stale).await.unwrap(), "unknown_client");
    let fresh = lacuna_practice::triggers::TriggerIn {
        id: "00000000-0000-4000-8000-000000000002",
        client_pseudonym: &new_p,
        ..stale
    };
    assert_eq!(practice.carry_out_trigger(tenant, &fresh).await.unwrap(), "queued");
    let audit = app.get("/api/v1/audit?limit=100", &owner).await.body.to_string();
    assert!(audit.contains("insight.pseudonym_key.rotate") && audit.contains("insight.pseudonyms.remap"), "{audit}");
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A local receiver standing in for an external practice system: fails its first request.
async fn webhook_sink() -> (String, Seen) {
    use axum::http::HeaderMap;
    let seen: Seen = Default::default();
    let s = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let s = s.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let mut seen = s.lock().unwrap();
                seen.push((h("lacuna-signature"), h("lacuna-trigger-id"), body));
                if seen.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook"), seen)
}

async fn triggers_for_an_external_system_go_out_as_signed_webhooks(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow", "owner@glow.test").await;
    let (url, seen) = webhook_sink().await;
    let r = app
        .call(Method::PUT, "/api/v1/insight/webhook", Some(&owner), Some(json!({"url": "http://example.com/x"})))
        .await;
    assert_eq!(
        (r.status, r.error_field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
        "plain http only on loopback"
    );
    let r = app.call(Method::PUT, "/api/v1/insight/webhook", Some(&owner), Some(json!({"url": url}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();

    // The external system's own pseudonym: not a client of this practice.
    let theirs = "p_abcdefghijklmnopqrstuvwxyz";
    let p = minter(&app, &owner).await;
    let mut event = completed(&p, "unused", 120);
    event["client"] = json!(theirs);
    let token = ingest_token(&app, &owner).await;
    assert_eq!(send(&app, &token, vec![event]).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.post("/api/v1/insight/actions/propose", &owner, json!({})).await.body["proposed"], 1);
    let action = app.get("/api/v1/insight/actions", &owner).await.body[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(&format!("/api/v1/insight/actions/{action}/approve"), &owner, json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(lacuna::jobs::deliver_insight_triggers(&app.app.services).await.unwrap(), 1);
    let trigger = app.get("/api/v1/insight/triggers", &owner).await.body[0].clone();
    assert_eq!(trigger["outcome"], "webhook");

    // First attempt fails (500): retried later, not lost; the second is delivered.
    let r = lacuna::jobs::deliver_trigger_webhooks(&app.app.services).await.unwrap();
    assert_eq!((r.delivered, r.retrying, r.failed), (0, 1, 0));
    assert_eq!(
        lacuna::jobs::deliver_trigger_webhooks(&app.app.services).await.unwrap().retrying,
        0,
        "waits for its backoff"
    );
    app.owner_sql("UPDATE trigger_webhooks SET next_attempt_at = 0").await;
    let r = lacuna::jobs::deliver_trigger_webhooks(&app.app.services).await.unwrap();
    assert_eq!((r.delivered, r.retrying, r.failed), (1, 0, 0));
    app.owner_sql("UPDATE trigger_webhooks SET next_attempt_at = 0").await;
    assert_eq!(lacuna::jobs::deliver_trigger_webhooks(&app.app.services).await.unwrap().delivered, 0, "delivered once");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (signature, trigger_id, body) in &seen {
        assert_eq!(trigger_id, trigger["id"].as_str().unwrap(), "idempotent by trigger id");
        let t: i64 = signature.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        assert_eq!(signature, &lacuna_practice::triggers::sign_webhook(secret.as_bytes(), t, body));
        assert_ne!(signature, &lacuna_practice::triggers::sign_webhook(b"whsec_wrong", t, body));
        assert!((lacuna_storage::now_unix() - t).abs() < 60);
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!((body["client"].as_str(), body["action_kind"].as_str()), (Some(theirs), Some("rebook_nudge")));
    }
    let audit = app.get("/api/v1/audit?limit=100", &owner).await.body.to_string();
    assert!(
        audit.contains("insight.webhook.set") && !audit.contains(&secret),
        "the secret never reaches the audit trail"
    );
}
