//! `lacuna demo` on both backends: the practice it creates is complete, consistent (no provider
//! double-booked, personal fields readable only through the API) and its owner can sign in.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use lacuna::demo::{DemoOptions, run};
use lacuna::scratch::Backend;
use reqwest::StatusCode;

both_backends!(a_small_demo_practice_is_complete_and_consistent);

async fn a_small_demo_practice_is_complete_and_consistent(b: Backend) {
    let app = TestApp::spawn(b).await;
    let opts = DemoOptions { clients: 60, appointments: 400, seed: 7, ..Default::default() };
    let s = run(&app.app.services, &opts).await.unwrap();
    assert_eq!((s.locations, s.providers, s.services, s.clients), (2, 8, 20, 60));
    assert_eq!(s.appointments, 400);
    assert!(s.upcoming > 0 && s.charges > 0, "{s:?}");
    // Insight got the history, pseudonymously: no client id or email in any event.
    let tenant = s.tenant.unwrap();
    let events = app.app.services.insight.events(tenant).await.unwrap();
    assert_eq!(events.len() as u64, s.insight_events);
    let appointment_events = events.iter().filter(|e| e.kind.starts_with("appointment.")).count();
    assert!(appointment_events > 400 && appointment_events <= 800, "{appointment_events}");
    assert!(events.iter().all(|e| !e.body.contains("@example.com") && e.body.contains("\"client\":\"p_")));
    // Memberships and packages too, through the outbox (all delivered): each started, and the
    // membership and package kinds the live code emits.
    let plan_events = events.iter().filter(|e| e.kind.starts_with("membership.")).count();
    assert!(s.plans > 0 && plan_events >= s.plans, "{plan_events} events for {} plans", s.plans);
    assert_eq!(events.iter().filter(|e| e.kind == "membership.started").count(), s.plans);
    assert_eq!(appointment_events + plan_events, events.len());
    assert_eq!(app.owner_count("SELECT id FROM insight_outbox WHERE delivered_at IS NULL").await, 0);
    let guard = lacuna_insight::PhiGuard::new();
    assert!(events.iter().all(|e| guard.check(&serde_json::from_str(&e.body).unwrap()).is_ok()));

    // No provider is ever double-booked (buffers included).
    let overlaps = app
        .owner_count(
            "SELECT 1 FROM appointments a JOIN appointments b ON a.tenant_id = b.tenant_id
               AND a.provider_id = b.provider_id AND a.id < b.id
             WHERE a.status IN ('booked', 'completed') AND b.status IN ('booked', 'completed')
               AND a.starts_at < b.blocks_until AND b.starts_at < a.blocks_until",
        )
        .await;
    assert_eq!(overlaps, 0);
    // Every appointment is of a service its provider performs.
    let foreign = app
        .owner_count(
            "SELECT 1 FROM appointments a WHERE NOT EXISTS (SELECT 1 FROM provider_services ps
               WHERE ps.tenant_id = a.tenant_id AND ps.provider_id = a.provider_id AND ps.service_id = a.service_id)",
        )
        .await;
    assert_eq!(foreign, 0);

    // The owner signs in with what the command prints, and reads a client through the API.
    let r = app.login(&opts.owner_email, &opts.owner_password).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let owner = TestApp::session_from(&r, &opts.owner_email);
    // Demo clients are searchable like any other (search tokens written with them).
    let r = app.get("/api/v1/clients?q=ol&limit=50", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let hits = r.body.as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|c| c["name"].as_str().unwrap().to_lowercase().contains("ol")
        || c["email"].as_str().unwrap_or_default().starts_with("ol")));

    // The same seed again (another owner) is refused for the same email, not half-created.
    let again = run(&app.app.services, &opts).await;
    assert!(again.unwrap_err().to_string().contains("already has an account"));
}
