//! Memberships and packages tell Insight what happens to them — sold, renewed, redeemed,
//! cancelled, expired — through the same outbox and PHI guard as appointments, with nothing but
//! pseudonyms, price bands and categories; and Insight's gap engine finds the idle member.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{Session, TestApp};
use lacuna::scratch::Backend;
use lacuna_domain::TenantId;
use lacuna_insight::{EventKind, GapEngine, GapKind, InsightEvent, PhiGuard, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(plan_changes_reach_insight_pseudonymously_and_an_idle_member_is_lapsing, expiry_is_queued_once);

const DAY: i64 = 86_400;
const HOUR: i64 = 3600;

fn now() -> i64 {
    lacuna_storage::now_unix()
}

fn uuid() -> String {
    common::new_id()
}

fn rfc3339(unix: i64) -> String {
    lacuna_practice::insight_feed::instant(unix)
}

async fn client(app: &TestApp, s: &Session, name: &str, email: &str) -> String {
    app.add_client(s, json!({"name": name, "email": email, "phone": "+1 415 555 0134"})).await
}

/// A facial service (30-day cycle), a provider and a location, written directly. Returns (service, provider, location).
async fn catalogue(app: &TestApp, tenant: &str) -> (String, String, String) {
    app.sql_catalogue(tenant, 22_000, Some(30)).await
}

/// A completed appointment written directly (booking is tested elsewhere).
async fn completed(app: &TestApp, tenant: &str, client: &str, (svc, prov, loc): &(String, String, String)) -> String {
    let id = uuid();
    let t = now();
    let starts = t - 3 * DAY;
    let ends = starts + HOUR;
    app.owner_sql(&format!(
        "INSERT INTO appointments (tenant_id, id, client_id, provider_id, service_id, location_id, starts_at, ends_at,
             blocks_until, status, price_minor, currency, created_at, updated_at)
         VALUES ('{tenant}', '{id}', '{client}', '{prov}', '{svc}', '{loc}', {starts}, {ends}, {ends}, 'completed',
             22000, 'USD', {t}, {t})"
    ))
    .await;
    id
}

async fn outbox_count(app: &TestApp, tenant: &str, kind: &str) -> i64 {
    app.owner_count(&format!(
        "SELECT id FROM insight_outbox WHERE tenant_id = '{tenant}' AND body LIKE '%\"kind\":\"{kind}\"%'"
    ))
    .await
}

/// The tenant's events as Insight holds them, each parsed again through the PHI guard, and every
/// value checked to be a pseudonym, a band, a category, a number or a time.
async fn insight_events(app: &TestApp, tenant: TenantId, secrets: &[&str]) -> Vec<InsightEvent> {
    let guard = PhiGuard::new();
    let stored = app.app.services.insight.events(tenant).await.unwrap();
    stored
        .iter()
        .map(|e| {
            for secret in secrets {
                assert!(!e.body.contains(secret), "{} leaks into Insight: {}", secret, e.body);
            }
            let value: Value = serde_json::from_str(&e.body).unwrap();
            for (field, v) in value.as_object().unwrap() {
                let ok = match field.as_str() {
                    "event_id" => v.as_str().is_some_and(|s| s.starts_with("ev_") || s.len() == 36),
                    "client" => v.as_str().is_some_and(|s| s.starts_with("p_")),
                    "provider" => v.as_str().is_some_and(|s| s.starts_with("pv_")),
                    "membership_id" => v.as_str().is_some_and(|s| s.starts_with("m_")),
                    "appointment_ref" => v.as_str().is_some_and(|s| s.starts_with("a_")),
                    "location_id" => v.as_str().is_some_and(|s| s.starts_with("loc_")),
                    "kind" | "service_category" | "price_band" | "occurred_at" | "starts_at" | "ends_at" => {
                        v.is_string()
                    }
                    "cycle_days" | "follow_up_days" => v.is_u64(),
                    _ => false,
                };
                assert!(ok, "unexpected {field} = {v} in an Insight event");
            }
            guard.check(&value).unwrap()
        })
        .collect()
}

async fn plan_changes_reach_insight_pseudonymously_and_an_idle_member_is_lapsing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let t = owner.tenant_id.clone();
    let tenant: TenantId = t.parse().unwrap();
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com").await;
    let ben = client(&app, &owner, "Ben Ode", "ben@example.com").await;
    let cat = catalogue(&app, &t).await;
    let done = completed(&app, &t, &ana, &cat).await;

    // Ana buys a package of three facials, redeems one, then cancels the rest.
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "package", "name": "Facial × 3", "service_id": cat.0, "sessions": 3,
                   "price_minor": 60000, "currency": "USD"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let package = r.body["id"].as_str().unwrap().to_string();
    let r = app.post(&format!("/api/v1/plans/{package}/redeem"), &owner, json!({"appointment_id": done})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post(&format!("/api/v1/plans/{package}/cancel"), &owner, json!({})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{:?}", r.body);
    let r = app.post(&format!("/api/v1/plans/{package}/cancel"), &owner, json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("plan_inactive")));
    let audit = app.get("/api/v1/audit?action=plan.cancel", &owner).await;
    assert_eq!(audit.body.as_array().map(Vec::len), Some(1), "{:?}", audit.body);

    // Ben has been a member for 100 days (four months started) and never came in.
    let r = app
        .post(
            &format!("/api/v1/clients/{ben}/plans"),
            &owner,
            json!({"kind": "membership", "name": "Glow membership", "credits_per_period": 1,
                   "price_minor": 14900, "currency": "USD", "starts_at": rfc3339(now() - 100 * DAY)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let membership = r.body["id"].as_str().unwrap().to_string();

    // Each change was queued in the Practice outbox with the change itself.
    assert_eq!(outbox_count(&app, &t, "membership.started").await, 2);
    assert_eq!(outbox_count(&app, &t, "membership.redeemed").await, 1);
    assert_eq!(outbox_count(&app, &t, "membership.cancelled").await, 1);
    let renewals = outbox_count(&app, &t, "membership.renewed").await;
    assert!((3..=4).contains(&renewals), "100 days is three or four renewals, not {renewals}");
    // The hourly job finds nothing left to queue: every change is queued once.
    assert_eq!(lacuna::jobs::queue_plan_events(&app.app.services, now()).await.unwrap(), 0);

    // The feed job hands them to Insight through the PHI guard.
    let delivered = lacuna::jobs::deliver_insight_events(&app.app.services).await.unwrap();
    assert_eq!(delivered as i64, 4 + renewals);
    let secrets = [
        ana.as_str(),
        ben.as_str(),
        package.as_str(),
        membership.as_str(),
        done.as_str(),
        cat.0.as_str(),
        "Ana",
        "Ben",
        "example.com",
        "Glow",
        "Facial ×",
        "60000",
        "14900",
    ];
    let events = insight_events(&app, tenant, &secrets).await;
    assert_eq!(events.len() as i64, 4 + renewals);
    assert!(app.app.services.insight.rejections(tenant).await.unwrap().is_empty());
    let kinds = |k: EventKind| events.iter().filter(|e| e.kind == k).count();
    assert_eq!(kinds(EventKind::MembershipStarted), 2);
    assert_eq!(kinds(EventKind::MembershipRedeemed), 1);
    assert_eq!(kinds(EventKind::MembershipCancelled), 1);
    let redeemed = events.iter().find(|e| e.kind == EventKind::MembershipRedeemed).unwrap();
    assert_eq!(redeemed.price_band.map(|b| b.as_str()), Some("100-249"), "the redeemed service's band");
    assert_eq!(redeemed.service_category.map(|c| c.as_str()), Some("facial"));
    let package_events: Vec<_> = events.iter().filter(|e| e.membership_id == redeemed.membership_id).collect();
    assert_eq!(package_events.len(), 3, "started, redeemed, cancelled share the package's pseudonym");
    assert!(package_events.iter().all(|e| e.client == redeemed.client));

    // Insight: Ben's membership is lapsing (unused value, no visit); Ana's cancelled package is not.
    let engine = GapEngine::from_events(&events);
    let at = Timestamp::from_unix_seconds(now()).unwrap();
    let gaps = engine.gaps(&at);
    assert_eq!(gaps, GapEngine::recompute(&events, &at), "incremental equals a full recompute");
    let lapsing: Vec<_> = gaps.iter().filter(|g| g.kind == GapKind::LapsingMember).collect();
    assert_eq!(lapsing.len(), 1, "{gaps:?}");
    let ben_events: Vec<_> = events.iter().filter(|e| e.client != redeemed.client).collect();
    assert_eq!(lapsing[0].client, ben_events[0].client);
    assert!(lapsing[0].revenue_at_stake_minor >= 3 * 17_500, "months paid, nothing used");
    assert!(lapsing[0].evidence.contains("no visit since it started"), "{}", lapsing[0].evidence);

    // Delivered once.
    assert_eq!(lacuna::jobs::deliver_insight_events(&app.app.services).await.unwrap(), 0);
}

async fn expiry_is_queued_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let t = owner.tenant_id.clone();
    let tenant: TenantId = t.parse().unwrap();
    let ana = client(&app, &owner, "Ana Lima", "ana@example.com").await;
    let cat = catalogue(&app, &t).await;
    let r = app
        .post(
            &format!("/api/v1/clients/{ana}/plans"),
            &owner,
            json!({"kind": "package", "name": "Facial × 3", "service_id": cat.0, "sessions": 3,
                   "price_minor": 60000, "currency": "USD", "expires_at": rfc3339(now() + 30 * DAY)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let package = r.body["id"].as_str().unwrap().to_string();
    let services = &app.app.services;
    assert_eq!(lacuna::jobs::queue_plan_events(services, now()).await.unwrap(), 0, "not expired yet");

    // Time passes the expiry: the job queues `expired` once and stores the status.
    app.owner_sql(&format!("UPDATE client_plans SET expires_at = {} WHERE id = '{package}'", now() - 10)).await;
    assert_eq!(lacuna::jobs::queue_plan_events(services, now()).await.unwrap(), 1);
    assert_eq!(lacuna::jobs::queue_plan_events(services, now()).await.unwrap(), 0);
    assert_eq!(
        app.owner_count(&format!("SELECT id FROM client_plans WHERE id = '{package}' AND status = 'expired'")).await,
        1
    );
    assert_eq!(outbox_count(&app, &t, "membership.expired").await, 1);
    let r = app.post(&format!("/api/v1/plans/{package}/cancel"), &owner, json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, Some("plan_expired")));

    lacuna::jobs::deliver_insight_events(services).await.unwrap();
    let events = insight_events(&app, tenant, &[ana.as_str(), package.as_str()]).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&EventKind::MembershipStarted) && kinds.contains(&EventKind::MembershipExpired));
    // An expired package is no lapsing member.
    let at = Timestamp::from_unix_seconds(now()).unwrap();
    assert!(GapEngine::from_events(&events).gaps(&at).iter().all(|g| g.kind != GapKind::LapsingMember));
}
