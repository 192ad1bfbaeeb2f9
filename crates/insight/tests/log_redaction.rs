//! The PHI guard's log line names the field and the kind of identifier, never the value.
//!
//! Kept alone in its own test binary: a scoped `tracing` subscriber can miss events when other
//! tests on other threads register the same callsite at the same moment.

use std::fmt;
use std::sync::{Arc, Mutex};

use lacuna_insight::PhiGuard;
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records every field of every event and span.
struct Capture(Arc<Mutex<Vec<String>>>);

struct Collect<'a>(&'a mut Vec<String>);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if let Ok(mut lines) = self.0.lock() {
            span.record(&mut Collect(&mut lines));
        }
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            values.record(&mut Collect(&mut lines));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            event.record(&mut Collect(&mut lines));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn event_with(field: &str, value: &str) -> Value {
    json!({
        "event_id": "ev_a2b3c4d5e6f7g2h3i4j5k6l7mn",
        "kind": "appointment.booked",
        "client": "p_abcdefghijklmnopqrstuvwxyz",
        "service_category": "facial",
        "occurred_at": "2024-06-01T10:45:00Z",
        field: value,
    })
}

#[test]
fn the_log_names_field_and_kind_but_never_the_value() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let secrets = [
        ("client", "jane.doe@example.com"),
        ("notes", "Jane Doe, DOB 04/12/1985"),
        ("location_id", "742 Evergreen Terrace"),
    ];
    tracing::subscriber::with_default(Capture(Arc::clone(&lines)), || {
        let guard = PhiGuard::new();
        for (field, secret) in secrets {
            assert!(guard.check(&event_with(field, secret)).is_err());
        }
    });
    let logged = lines.lock().map(|l| l.join("\n")).unwrap_or_default();
    assert_eq!(logged.matches("event rejected by PHI guard").count(), 3, "{logged}");
    for expected in
        ["field=client", "field=notes", "field=location_id", "kind=Email", "kind=Date", "kind=PostalAddress"]
    {
        assert!(logged.contains(expected), "{expected} missing from {logged}");
    }
    for (_, secret) in secrets {
        for piece in secret.split([' ', ',', '@']).filter(|p| p.len() > 3) {
            assert!(!logged.contains(piece), "log leaks {piece:?}: {logged}");
        }
    }
}
