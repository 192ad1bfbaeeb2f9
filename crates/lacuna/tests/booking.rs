//! Catalogue and booking: the full flow, no double booking (also under 50 concurrent requests),
//! buffers, working hours in local time across DST, time off, availability, isolation and roles.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::{Session, TestApp};
use lacuna::scratch::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

both_backends!(
    full_flow,
    fifty_concurrent_bookings_of_one_slot_yield_one,
    buffer_blocks_the_next_slot,
    invalid_bookings_name_the_field,
    working_hours_follow_dst,
    availability_excludes_booked_slots,
    other_tenant_gets_404,
    provider_role_books_but_cannot_manage_catalog,
    a_booking_queues_its_confirmation_and_feeds_insight,
    a_provider_sees_only_their_own_appointments,
    catalogue_and_booking_changes_are_audited,
);

/// Monday 2027-01-04 (UTC practice unless changed).
const MONDAY: &str = "2027-01-04";

struct Setup {
    location: String,
    service: String,
    other_service: String,
    provider: String,
    client: String,
}

fn id(r: &common::Resp) -> String {
    r.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:?} {:?}", r.status, r.body)).to_string()
}

async fn setup(app: &TestApp, owner: &Session) -> Setup {
    let location = app.post("/api/v1/locations", owner, json!({"name": "Main Street"})).await;
    assert_eq!(location.status, StatusCode::CREATED, "{:?}", location.body);
    let location = id(&location);
    let service = app
        .post(
            "/api/v1/services",
            owner,
            json!({"name": "Botox", "category": "neurotoxin", "duration_min": 60, "buffer_min": 15,
                   "price_minor": 45000, "cycle_days": 90, "follow_up_days": 14}),
        )
        .await;
    assert_eq!(service.status, StatusCode::CREATED, "{:?}", service.body);
    assert_eq!(service.body["currency"], "USD");
    let service = id(&service);
    let other = app
        .post(
            "/api/v1/services",
            owner,
            json!({"name": "Facial", "category": "facial", "duration_min": 30, "price_minor": 9000}),
        )
        .await;
    let other_service = id(&other);
    let provider = app.post("/api/v1/providers", owner, json!({"name": "Dr. Reyes", "service_ids": [service]})).await;
    assert_eq!(provider.status, StatusCode::CREATED, "{:?}", provider.body);
    let provider = id(&provider);
    let hours: Vec<Value> =
        (0..5).map(|d| json!({"location_id": location, "weekday": d, "start": "09:00", "end": "17:00"})).collect();
    let r = app
        .call(Method::PUT, &format!("/api/v1/providers/{provider}/hours"), Some(owner), Some(json!({"hours": hours})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["hours"].as_array().unwrap().len(), 5);
    let client = app.post("/api/v1/clients", owner, json!({"name": "Jane Client"})).await;
    assert_eq!(client.status, StatusCode::CREATED, "{:?}", client.body);
    Setup { location, service, other_service, provider, client: id(&client) }
}

fn booking(s: &Setup, starts_at: &str) -> Value {
    json!({"client_id": s.client, "service_id": s.service, "provider_id": s.provider,
           "location_id": s.location, "starts_at": starts_at})
}

async fn full_flow(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;

    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["ends_at"], format!("{MONDAY}T11:00:00Z"));
    assert_eq!(r.body["blocks_until"], format!("{MONDAY}T11:15:00Z"));
    assert_eq!(r.body["status"], "booked");
    assert_eq!(r.body["price_minor"], 45000);
    let appt = id(&r);

    let r = app.get(&format!("/api/v1/appointments/{appt}"), &owner).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .get(
            &format!("/api/v1/appointments?from={MONDAY}T00:00:00Z&to=2027-01-05T00:00:00Z&provider_id={}", s.provider),
            &owner,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.get(&format!("/api/v1/appointments?from=2027-01-01T00:00:00Z&client_id={}", s.client), &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);

    let r = app
        .post(
            &format!("/api/v1/appointments/{appt}/reschedule"),
            &owner,
            json!({"starts_at": format!("{MONDAY}T13:00:00Z")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["starts_at"], format!("{MONDAY}T13:00:00Z"));
    // The old time is free again.
    let r2 = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    assert_eq!(r2.status, StatusCode::CREATED, "{:?}", r2.body);
    let second = id(&r2);

    let r = app.post(&format!("/api/v1/appointments/{appt}/cancel"), &owner, json!({"reason": "flu"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("by"));
    let r = app
        .post(&format!("/api/v1/appointments/{appt}/cancel"), &owner, json!({"reason": "flu", "by": "client"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["cancel_reason"], "flu");
    assert_eq!(r.body["cancelled_by"], "client");
    let r = app.post(&format!("/api/v1/appointments/{appt}/complete"), &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), Some("invalid_transition"));
    // A cancelled appointment no longer blocks its slot.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T13:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let r = app.post(&format!("/api/v1/appointments/{second}/complete"), &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "completed");
    let r = app.post(&format!("/api/v1/appointments/{second}/no-show"), &owner, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // A completed appointment still occupies its time.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:30:00Z"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Catalogue reads and changes.
    let r = app.patch(&format!("/api/v1/services/{}", s.service), &owner, json!({"price_minor": 50000})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["price_minor"], 50000);
    let r = app.get("/api/v1/services", &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = app.delete(&format!("/api/v1/services/{}", s.service), &owner).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a service with appointments stays");
    let r = app.delete(&format!("/api/v1/services/{}", s.other_service), &owner).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.get(&format!("/api/v1/providers/{}", s.provider), &owner).await;
    assert_eq!(r.body["service_ids"][0], s.service.as_str());
    let r = app.get("/api/v1/locations", &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.patch("/api/v1/practice/settings", &owner, json!({"timezone": "Mars/Olympus"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("timezone"));
    let r = app.patch("/api/v1/practice/settings", &owner, json!({"currency": "eur"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["currency"], "EUR");
}

async fn fifty_concurrent_bookings_of_one_slot_yield_one(b: Backend) {
    let app = Arc::new(TestApp::spawn(b).await);
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let body = booking(&s, &format!("{MONDAY}T11:00:00Z"));
    let mut handles = Vec::new();
    for _ in 0..50 {
        let (app, owner, body) = (app.clone(), owner.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            let r = app.post("/api/v1/appointments", &owner, body).await;
            (r.status, r.error_code().map(str::to_string))
        }));
    }
    let mut created = 0;
    let mut taken = 0;
    for h in handles {
        match h.await.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::CONFLICT, Some(code)) if code == "slot_taken" => taken += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((created, taken), (1, 49));
    let r = app.get(&format!("/api/v1/appointments?from={MONDAY}T00:00:00Z"), &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // One audit entry for the one booking (the refused ones wrote none), linked into the chain.
    let r = app.get("/api/v1/audit?action=appointment.book", &owner).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{:?}", r.body);
    assert_eq!(app.owner_count("SELECT 1 FROM audit_events WHERE action = 'appointment.book'").await, 1);
    let report = app.app.state.accounts.verify_audit_chain(owner.tenant_id.parse().unwrap()).await.unwrap();
    assert!(report.broken.is_none(), "{report:?}");
}

async fn buffer_blocks_the_next_slot(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // 11:00 is after the service but inside its 15-minute buffer.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T11:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("slot_taken"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("overlapping"));
    // Starting earlier so that our own buffer runs into it is refused too.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T09:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T11:15:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // The overlap check looks at the first live appointment at or after the new start and the
    // last one before it: 12:30 must skip the cancelled 13:00 one inside its time, and 13:30 is
    // refused because of the live 12:30 one.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T13:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let cancelled = r.body["id"].as_str().unwrap().to_string();
    let body = json!({"reason": "flu", "by": "client"});
    let r = app.post(&format!("/api/v1/appointments/{cancelled}/cancel"), &owner, body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T12:30:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "12:30 starts as 11:15's buffer ends: {:?}", r.body);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T13:30:00Z"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "12:30 blocks until 13:45: {:?}", r.body);
}

async fn invalid_bookings_name_the_field(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (booking(&s, &format!("{MONDAY}T08:00:00Z")), "starts_at", "outside hours"),
        (booking(&s, &format!("{MONDAY}T16:00:00Z")), "starts_at", "service+buffer past closing"),
        (booking(&s, "2027-01-09T10:00:00Z"), "starts_at", "saturday"),
        (booking(&s, "2020-01-06T10:00:00Z"), "starts_at", "past"),
        (booking(&s, "next monday"), "starts_at", "not a time"),
        (
            json!({"client_id": s.client, "service_id": s.other_service, "provider_id": s.provider,
                   "location_id": s.location, "starts_at": format!("{MONDAY}T10:00:00Z")}),
            "service_id",
            "provider does not perform it",
        ),
    ];
    for (body, field, why) in cases {
        let r = app.post("/api/v1/appointments", &owner, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {:?}", r.body);
        assert_eq!(r.error_field(), Some(field), "{why}: {:?}", r.body);
    }
    // Another location the provider does not work at.
    let other = app.post("/api/v1/locations", &owner, json!({"name": "Uptown"})).await;
    let mut body = booking(&s, &format!("{MONDAY}T10:00:00Z"));
    body["location_id"] = json!(id(&other));
    let r = app.post("/api/v1/appointments", &owner, body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("location_id"));
    // Time off.
    let r = app
        .post(
            &format!("/api/v1/providers/{}/time-off", s.provider),
            &owner,
            json!({"starts_at": format!("{MONDAY}T12:00:00Z"), "ends_at": format!("{MONDAY}T14:00:00Z"), "reason": "training"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let off = id(&r);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T11:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "buffer runs into time off: {:?}", r.body);
    assert_eq!(r.error_field(), Some("starts_at"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("time off"));
    let r = app.get(&format!("/api/v1/providers/{}/time-off", s.provider), &owner).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.delete(&format!("/api/v1/providers/{}/time-off/{off}", s.provider), &owner).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T11:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Inactive service.
    let r = app.patch(&format!("/api/v1/services/{}", s.service), &owner, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T14:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("service_id"));
    // Bad catalogue input.
    let r = app
        .post(
            "/api/v1/services",
            &owner,
            json!({"name": "X", "category": "tattoo", "duration_min": 30, "price_minor": 1}),
        )
        .await;
    assert_eq!(r.error_field(), Some("category"));
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/providers/{}/hours", s.provider),
            Some(&owner),
            Some(json!({"hours": [{"location_id": s.location, "weekday": 0, "start": "17:00", "end": "09:00"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("hours[0].end"));
}

async fn working_hours_follow_dst(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let r = app.patch("/api/v1/practice/settings", &owner, json!({"timezone": "America/New_York"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["timezone"], "America/New_York");
    let s = setup(&app, &owner).await;
    // Spring forward: Sunday 2027-03-14. Monday 09:00 local is 13:00Z; a week before, 14:00Z.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, "2027-03-15T09:00:00-04:00")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["starts_at"], "2027-03-15T13:00:00Z");
    let r = app.post("/api/v1/appointments", &owner, booking(&s, "2027-03-08T09:00:00-05:00")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["starts_at"], "2027-03-08T14:00:00Z");
    // 13:00Z in winter is 08:00 local: before opening.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, "2027-03-01T13:00:00Z")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.error_field(), Some("starts_at"));
    // Availability uses local hours too: 09:00 local is booked until 10:15 local (buffer
    // included), so the first open slot is 10:15 EDT = 14:15Z.
    let r =
        app.get(&format!("/api/v1/availability?service_id={}&from=2027-03-15&to=2027-03-15", s.service), &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["providers"][0]["slots"][0]["starts_at"], "2027-03-15T14:15:00Z");
    let r =
        app.get(&format!("/api/v1/availability?service_id={}&from=2027-03-01&to=2027-03-01", s.service), &owner).await;
    assert_eq!(r.body["providers"][0]["slots"][0]["starts_at"], "2027-03-01T14:00:00Z");
}

async fn availability_excludes_booked_slots(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let url =
        format!("/api/v1/availability?service_id={}&provider_id={}&from={MONDAY}&to={MONDAY}", s.service, s.provider);
    let before = app.get(&url, &owner).await;
    assert_eq!(before.status, StatusCode::OK, "{:?}", before.body);
    let starts = |r: &common::Resp| -> Vec<String> {
        r.body["providers"][0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["starts_at"].as_str().unwrap().to_string())
            .collect()
    };
    let all = starts(&before);
    // 09:00 to 15:45 (the last start whose 75 minutes end by 17:00) on a 15-minute grid.
    assert_eq!(all.len(), 28, "{all:?}");
    assert_eq!(all[0], format!("{MONDAY}T09:00:00Z"));
    assert_eq!(all.last().unwrap(), &format!("{MONDAY}T15:45:00Z"));
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T12:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let after = starts(&app.get(&url, &owner).await);
    // Starts from 10:45 (ends 12:00) up to 13:00 (the booking blocks until 13:15) are gone.
    assert!(after.contains(&format!("{MONDAY}T10:45:00Z")));
    assert!(!after.contains(&format!("{MONDAY}T11:00:00Z")));
    assert!(!after.contains(&format!("{MONDAY}T12:00:00Z")));
    assert!(!after.contains(&format!("{MONDAY}T13:00:00Z")));
    assert!(after.contains(&format!("{MONDAY}T13:15:00Z")));
    assert_eq!(after.len(), all.len() - 9);
    // Every advertised slot can really be booked.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &after[0])).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The range is limited.
    let r =
        app.get(&format!("/api/v1/availability?service_id={}&from=2027-01-01&to=2027-03-01", s.service), &owner).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("to"));
}

async fn other_tenant_gets_404(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    let appt = id(&r);
    let mallory = app.signup("Other Spa", "mallory@example.com").await;
    // Mallory has her own catalogue, but uses A's ids.
    let m = setup(&app, &mallory).await;
    let mut body = booking(&m, &format!("{MONDAY}T10:00:00Z"));
    body["provider_id"] = json!(s.provider);
    let r = app.post("/api/v1/appointments", &mallory, body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = app.post("/api/v1/appointments", &mallory, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for path in [
        format!("/api/v1/appointments/{appt}"),
        format!("/api/v1/services/{}", s.service),
        format!("/api/v1/providers/{}", s.provider),
        format!("/api/v1/providers/{}/time-off", s.provider),
    ] {
        let r = app.get(&path, &mallory).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = app
        .post(&format!("/api/v1/appointments/{appt}/cancel"), &mallory, json!({"reason": "x", "by": "practice"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/appointments/{appt}/reschedule"),
            &mallory,
            json!({"starts_at": format!("{MONDAY}T14:00:00Z")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.patch(&format!("/api/v1/services/{}", s.service), &mallory, json!({"price_minor": 1})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.delete(&format!("/api/v1/providers/{}", s.provider), &mallory).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r =
        app.get(&format!("/api/v1/availability?service_id={}&from={MONDAY}&to={MONDAY}", s.service), &mallory).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get(&format!("/api/v1/appointments?from={MONDAY}T00:00:00Z"), &mallory).await;
    assert_eq!(r.body.as_array().unwrap().len(), 0);
    // A's appointment is untouched.
    let r = app.get(&format!("/api/v1/appointments/{appt}"), &owner).await;
    assert_eq!(r.body["status"], "booked");
    assert_eq!(r.body["starts_at"], format!("{MONDAY}T10:00:00Z"));
}

async fn provider_role_books_but_cannot_manage_catalog(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let provider = app.add_member(&owner, "pat@example.com", "provider").await;
    let r = app.patch(&format!("/api/v1/providers/{}", s.provider), &owner, json!({"user_id": provider.user_id})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.post("/api/v1/appointments", &provider, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/services",
            &provider,
            json!({"name": "X", "category": "other", "duration_min": 30, "price_minor": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.patch("/api/v1/practice/settings", &provider, json!({"timezone": "UTC"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/providers/{}/hours", s.provider),
            Some(&provider),
            Some(json!({"hours": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/v1/services", &provider).await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn a_booking_queues_its_confirmation_and_feeds_insight(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let mut s = setup(&app, &owner).await;
    let client = app
        .post(
            "/api/v1/clients",
            &owner,
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "marketing_consent": true}),
        )
        .await;
    s.client = id(&client);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let appt = id(&r);
    // The confirmation was queued with the booking, once.
    let queued = app.owner_count(&format!("SELECT 1 FROM outbox WHERE dedupe_key = 'confirmation:{appt}'")).await;
    assert_eq!(queued, 1);
    let r = app
        .post(
            &format!("/api/v1/appointments/{appt}/reschedule"),
            &owner,
            json!({"starts_at": format!("{MONDAY}T13:00:00Z")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .post(&format!("/api/v1/appointments/{appt}/cancel"), &owner, json!({"reason": "ill", "by": "client"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Insight receives every change (the reschedule as a new `booked` time), pseudonymously.
    let services = &app.app.services;
    assert_eq!(lacuna::jobs::deliver_insight_events(services).await.unwrap(), 3);
    let events = services.insight.events(owner.tenant_id.parse().unwrap()).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.len(), 3);
    assert!(
        events.iter().any(|e| e.kind == "appointment.booked" && e.body.contains(&format!("{MONDAY}T13:00:00Z"))),
        "the new time reaches Insight"
    );
    assert!(kinds.contains(&"appointment.booked") && kinds.contains(&"appointment.cancelled"), "{kinds:?}");
    for e in &events {
        assert!(!e.body.contains(&s.client) && !e.body.contains("Ada") && !e.body.contains(&appt), "{}", e.body);
        assert!(e.body.contains("\"service_category\":\"neurotoxin\""));
    }
    let client_pseudonyms: std::collections::HashSet<String> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.body).unwrap()["client"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(client_pseudonyms.len(), 1, "one client, one stable pseudonym");
}

async fn a_provider_sees_only_their_own_appointments(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let pat = app.add_member(&owner, "pat@example.com", "provider").await;
    let desk = app.add_member(&owner, "desk@example.com", "front_desk").await;
    // A second provider with the same service and hours.
    let r = app.post("/api/v1/providers", &owner, json!({"name": "Dr. Kim", "service_ids": [s.service]})).await;
    let kim = id(&r);
    let hours: Vec<Value> =
        (0..5).map(|d| json!({"location_id": s.location, "weekday": d, "start": "09:00", "end": "17:00"})).collect();
    let r = app
        .call(Method::PUT, &format!("/api/v1/providers/{kim}/hours"), Some(&owner), Some(json!({"hours": hours})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Only a member of this practice can be linked.
    let r =
        app.patch(&format!("/api/v1/providers/{}", s.provider), &owner, json!({"user_id": uuid::Uuid::new_v4()})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field(), Some("user_id"));
    // Unlinked, Pat sees nobody's appointments.
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    let mine = id(&r);
    let mut body = booking(&s, &format!("{MONDAY}T10:00:00Z"));
    body["provider_id"] = json!(kim);
    let r = app.post("/api/v1/appointments", &owner, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let theirs = id(&r);
    let list = format!("/api/v1/appointments?from={MONDAY}T00:00:00Z");
    let r = app.get(&list, &pat).await;
    assert_eq!(r.body.as_array().unwrap().len(), 0, "{:?}", r.body);

    let r = app.patch(&format!("/api/v1/providers/{}", s.provider), &owner, json!({"user_id": pat.user_id})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.get(&list, &pat).await;
    let ids: Vec<&str> = r.body.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine.as_str()]);
    let r = app.get(&format!("{list}&provider_id={kim}"), &pat).await;
    assert_eq!(r.body.as_array().unwrap().len(), 0);
    assert_eq!(app.get(&format!("/api/v1/appointments/{mine}"), &pat).await.status, StatusCode::OK);
    // Another provider's appointment does not exist for Pat: not readable, not changeable.
    assert_eq!(app.get(&format!("/api/v1/appointments/{theirs}"), &pat).await.status, StatusCode::NOT_FOUND);
    let r = app
        .post(&format!("/api/v1/appointments/{theirs}/cancel"), &pat, json!({"reason": "x", "by": "practice"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.post(&format!("/api/v1/appointments/{theirs}/complete"), &pat, json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/appointments/{mine}/reschedule"),
            &pat,
            json!({"starts_at": format!("{MONDAY}T14:00:00Z"), "provider_id": kim}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "cannot move an appointment to another provider");
    body["starts_at"] = json!(format!("{MONDAY}T14:00:00Z"));
    assert_eq!(app.post("/api/v1/appointments", &pat, body).await.status, StatusCode::NOT_FOUND);
    // Availability of others stays visible.
    let r = app
        .get(
            &format!("/api/v1/availability?service_id={}&provider_id={kim}&from={MONDAY}&to={MONDAY}", s.service),
            &pat,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Own appointments: booked and changed as before.
    let r = app.post("/api/v1/appointments", &pat, booking(&s, &format!("{MONDAY}T14:00:00Z"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app.post(&format!("/api/v1/appointments/{mine}/complete"), &pat, json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    // The owner and the front desk see everyone's.
    assert_eq!(app.get(&list, &owner).await.body.as_array().unwrap().len(), 3);
    assert_eq!(app.get(&list, &desk).await.body.as_array().unwrap().len(), 3);
    assert_eq!(app.get(&format!("/api/v1/appointments/{theirs}"), &desk).await.status, StatusCode::OK);
}

async fn catalogue_and_booking_changes_are_audited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let owner = app.signup("Glow Spa", "olive@example.com").await;
    let s = setup(&app, &owner).await;
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    let appt = id(&r);
    let r = app
        .post(
            &format!("/api/v1/appointments/{appt}/reschedule"),
            &owner,
            json!({"starts_at": format!("{MONDAY}T12:00:00Z")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(&format!("/api/v1/appointments/{appt}/cancel"), &owner, json!({"reason": "Jane is ill", "by": "client"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T10:00:00Z"))).await;
    let done = id(&r);
    app.post(&format!("/api/v1/appointments/{done}/complete"), &owner, json!({})).await;
    let r = app.post("/api/v1/appointments", &owner, booking(&s, &format!("{MONDAY}T14:00:00Z"))).await;
    let missed = id(&r);
    app.post(&format!("/api/v1/appointments/{missed}/no-show"), &owner, json!({})).await;
    let r = app.patch(&format!("/api/v1/services/{}", s.service), &owner, json!({"price_minor": 50000})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.patch(&format!("/api/v1/services/{}", s.other_service), &owner, json!({"active": false})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(
            &format!("/api/v1/providers/{}/time-off", s.provider),
            &owner,
            json!({"starts_at": "2027-02-01T09:00:00Z", "ends_at": "2027-02-01T12:00:00Z", "reason": "dentist"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = app.get("/api/v1/audit?limit=1000", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let events = r.body.as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for want in [
        "location.create",
        "service.create",
        "service.update",
        "service.deactivate",
        "provider.create",
        "provider.hours_set",
        "provider.time_off_add",
        "appointment.book",
        "appointment.reschedule",
        "appointment.cancel",
        "appointment.complete",
        "appointment.no_show",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let book = events.iter().find(|e| e["action"] == "appointment.book").unwrap();
    assert!(book["target"].as_str().unwrap().starts_with("appointment:"));
    assert_eq!(book["scope"]["provider_id"], s.provider.as_str());
    // Ids only: no names, no free text.
    let all = r.body.to_string();
    for secret in ["Jane", "is ill", "dentist", "Dr. Reyes", "Main Street"] {
        assert!(!all.contains(secret), "{secret} leaked into the audit trail");
    }
    let report = app.app.state.accounts.verify_audit_chain(owner.tenant_id.parse().unwrap()).await.unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.events as usize, events.len());
}
