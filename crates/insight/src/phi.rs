//! The PHI guard: raw JSON in, a pseudonymous [`InsightEvent`] or a counted, value-free rejection out.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::detect::{IdentifierKind, classify};
use crate::event::{
    AppointmentRef, ClientPseudonym, Days, EventId, EventKind, FIELDS, InsightEvent, LocationId, MembershipPseudonym,
    PriceBand, ProviderPseudonym, ServiceCategory, Timestamp,
};

/// What the `field` of a rejection is when the input is not an object at all.
const ROOT: &str = "$";
/// What the `field` of a rejection is when an unknown key could itself be personal data.
const REDACTED_KEY: &str = "<redacted key>";

/// Why the guard refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// The input is not a JSON object.
    NotAnObject,
    /// The key is not part of the event schema.
    UnknownField,
    /// The value does not match its field's exact format.
    InvalidValue,
    /// A required field is absent (or null).
    MissingField,
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectionReason::NotAnObject => "is not a JSON object",
            RejectionReason::UnknownField => "is not part of the Insight event schema",
            RejectionReason::InvalidValue => "does not match its format",
            RejectionReason::MissingField => "is required but missing",
        })
    }
}

/// A refused event. Names the field and what its value looks like, never the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event rejected by PHI guard: field `{field}` {reason} (value looks like: {kind}; value withheld)")]
pub struct PhiRejection {
    field: String,
    reason: RejectionReason,
    kind: IdentifierKind,
}

impl PhiRejection {
    fn new(field: impl Into<String>, reason: RejectionReason, kind: IdentifierKind) -> Self {
        Self { field: field.into(), reason, kind }
    }

    fn invalid(field: &str, value: &Value) -> Self {
        Self::new(field, RejectionReason::InvalidValue, classify_field_value(value))
    }

    fn missing(field: &str) -> Self {
        Self::new(field, RejectionReason::MissingField, IdentifierKind::Malformed)
    }

    /// The JSON key concerned: a schema field name, `$` for the whole input, or `<redacted key>`
    /// for an unknown key that is not a plain identifier (it could itself be personal data).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the event was refused.
    pub fn reason(&self) -> RejectionReason {
        self.reason
    }

    /// What the offending value looks like.
    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }
}

/// The boundary of Insight. Shareable across threads; counts its rejections per identifier kind.
#[derive(Debug, Default)]
pub struct PhiGuard {
    rejected: [AtomicU64; IdentifierKind::COUNT],
}

impl PhiGuard {
    /// A guard with all counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `raw` as an [`InsightEvent`] if it is an object holding only schema fields, each in
    /// its exact format; otherwise counts, logs (without the value) and returns the rejection.
    pub fn check(&self, raw: &Value) -> Result<InsightEvent, PhiRejection> {
        let result = parse_event(raw);
        if let Err(rejection) = &result {
            self.rejected[rejection.kind.index()].fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                field = %rejection.field,
                kind = ?rejection.kind,
                reason = ?rejection.reason,
                "event rejected by PHI guard"
            );
        }
        result
    }

    /// [`PhiGuard::check`] on JSON text, without building a JSON tree for a well-formed event: the
    /// text is read straight into borrowed fields (every key known, no key twice, strings without
    /// escapes, day counts as integers) and each value goes through the very validators `check`
    /// uses. Anything else — unknown or repeated keys, escapes, a value that fails its format, text
    /// that is not JSON at all — takes the full path of `check`, so the result (and the rejection,
    /// counted and logged once) is always `check`'s.
    pub fn check_json(&self, raw: &str) -> Result<InsightEvent, PhiRejection> {
        if let Ok(wire) = serde_json::from_str::<Wire<'_>>(raw)
            && let Some(event) = wire.event()
        {
            return Ok(event);
        }
        self.check(&serde_json::from_str(raw).unwrap_or(Value::Null))
    }

    /// Rejections so far, per identifier kind (every kind present, zero included).
    pub fn rejections(&self) -> BTreeMap<IdentifierKind, u64> {
        IdentifierKind::ALL.into_iter().map(|k| (k, self.rejected[k.index()].load(Ordering::Relaxed))).collect()
    }
}

/// What a refused value looks like. Strings are classified; other scalars in string fields are
/// malformed; arrays and objects are searched for the strongest identifier they hold.
fn classify_field_value(value: &Value) -> IdentifierKind {
    match value {
        Value::String(s) => classify(s),
        Value::Array(_) | Value::Object(_) => classify_nested(value),
        Value::Number(_) | Value::Bool(_) | Value::Null => IdentifierKind::Malformed,
    }
}

/// Like [`classify_field_value`], but numbers are classified too (a phone number or ZIP sent as
/// a JSON number is still a phone number or a ZIP).
fn classify_nested(value: &Value) -> IdentifierKind {
    match value {
        Value::String(s) => classify(s),
        Value::Number(n) => classify(&n.to_string()),
        Value::Bool(_) | Value::Null => IdentifierKind::Malformed,
        Value::Array(items) => strongest(items.iter().map(classify_nested)),
        Value::Object(map) => strongest(map.values().map(classify_nested)),
    }
}

/// The first structured kind, else the first name or free text, else malformed.
fn strongest(kinds: impl Iterator<Item = IdentifierKind>) -> IdentifierKind {
    let kinds: Vec<IdentifierKind> = kinds.collect();
    kinds
        .iter()
        .find(|k| k.is_structured())
        .or_else(|| kinds.iter().find(|k| **k != IdentifierKind::Malformed))
        .copied()
        .unwrap_or(IdentifierKind::Malformed)
}

/// An unknown key is echoed only if it is a plain identifier that does not itself look like data.
fn safe_key(key: &str) -> String {
    let plain = (1..=64).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && classify(key) == IdentifierKind::Malformed;
    if plain { key.to_owned() } else { REDACTED_KEY.to_owned() }
}

fn parse_event(raw: &Value) -> Result<InsightEvent, PhiRejection> {
    let Value::Object(obj) = raw else {
        return Err(PhiRejection::new(ROOT, RejectionReason::NotAnObject, classify_nested(raw)));
    };
    if let Some((key, value)) = obj.iter().find(|(key, _)| !FIELDS.contains(&key.as_str())) {
        return Err(PhiRejection::new(safe_key(key), RejectionReason::UnknownField, classify_nested(value)));
    }
    let fields = Fields(obj);
    let event = InsightEvent {
        event_id: fields.required("event_id", EventId::parse)?,
        kind: fields.required("kind", EventKind::parse)?,
        client: fields.required("client", ClientPseudonym::parse)?,
        provider: fields.optional("provider", ProviderPseudonym::parse)?,
        service_category: fields.optional("service_category", ServiceCategory::parse)?,
        cycle_days: fields.days("cycle_days")?,
        follow_up_days: fields.days("follow_up_days")?,
        price_band: fields.optional("price_band", PriceBand::parse)?,
        location_id: fields.optional("location_id", LocationId::parse)?,
        occurred_at: fields.required("occurred_at", Timestamp::parse)?,
        starts_at: fields.optional("starts_at", Timestamp::parse)?,
        ends_at: fields.optional("ends_at", Timestamp::parse)?,
        membership_id: fields.optional("membership_id", MembershipPseudonym::parse)?,
        appointment_ref: fields.optional("appointment_ref", AppointmentRef::parse)?,
    };
    if event.kind.is_appointment() && event.service_category.is_none() {
        return Err(PhiRejection::missing("service_category"));
    }
    Ok(event)
}

/// A well-formed event as it is sent, fields borrowed from the text: the fast path of
/// [`PhiGuard::check_json`]. A string with an escape cannot be borrowed and fails here (the full
/// path then decides), as does any key outside the schema or any key given twice.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    event_id: Option<&'a str>,
    #[serde(borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    client: Option<&'a str>,
    #[serde(borrow)]
    provider: Option<&'a str>,
    #[serde(borrow)]
    service_category: Option<&'a str>,
    cycle_days: Option<u64>,
    follow_up_days: Option<u64>,
    #[serde(borrow)]
    price_band: Option<&'a str>,
    #[serde(borrow)]
    location_id: Option<&'a str>,
    #[serde(borrow)]
    occurred_at: Option<&'a str>,
    #[serde(borrow)]
    starts_at: Option<&'a str>,
    #[serde(borrow)]
    ends_at: Option<&'a str>,
    #[serde(borrow)]
    membership_id: Option<&'a str>,
    #[serde(borrow)]
    appointment_ref: Option<&'a str>,
}

impl Wire<'_> {
    /// The event if every present field passes its validator and the required ones are present;
    /// `None` sends the text down the full path (which then names the first field at fault).
    fn event(&self) -> Option<InsightEvent> {
        /// Absent stays absent; present must parse.
        fn opt<T>(value: Option<&str>, parse: impl Fn(&str) -> Option<T>) -> Option<Option<T>> {
            match value {
                None => Some(None),
                Some(v) => parse(v).map(Some),
            }
        }
        fn days(value: Option<u64>) -> Option<Option<Days>> {
            match value {
                None => Some(None),
                Some(d) => Days::new(d).map(Some),
            }
        }
        let event = InsightEvent {
            event_id: EventId::parse(self.event_id?)?,
            kind: EventKind::parse(self.kind?)?,
            client: ClientPseudonym::parse(self.client?)?,
            provider: opt(self.provider, ProviderPseudonym::parse)?,
            service_category: opt(self.service_category, ServiceCategory::parse)?,
            cycle_days: days(self.cycle_days)?,
            follow_up_days: days(self.follow_up_days)?,
            price_band: opt(self.price_band, PriceBand::parse)?,
            location_id: opt(self.location_id, LocationId::parse)?,
            occurred_at: Timestamp::parse(self.occurred_at?)?,
            starts_at: opt(self.starts_at, Timestamp::parse)?,
            ends_at: opt(self.ends_at, Timestamp::parse)?,
            membership_id: opt(self.membership_id, MembershipPseudonym::parse)?,
            appointment_ref: opt(self.appointment_ref, AppointmentRef::parse)?,
        };
        (!event.kind.is_appointment() || event.service_category.is_some()).then_some(event)
    }
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn optional<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, PhiRejection> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value @ Value::String(s)) => match parse(s) {
                Some(parsed) => Ok(Some(parsed)),
                None => Err(PhiRejection::invalid(name, value).with_prefix_hint(s)),
            },
            Some(value) => Err(PhiRejection::invalid(name, value)),
        }
    }

    fn required<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, PhiRejection> {
        self.optional(name, parse)?.ok_or_else(|| PhiRejection::missing(name))
    }

    fn days(&self, name: &str) -> Result<Option<Days>, PhiRejection> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().and_then(Days::new) {
                Some(days) => Ok(Some(days)),
                None => {
                    // An out-of-range number may still be a phone number, ZIP or SSN.
                    let kind = match classify(&n.to_string()) {
                        k if k.is_structured() => k,
                        _ => IdentifierKind::Malformed,
                    };
                    Err(PhiRejection::new(name, RejectionReason::InvalidValue, kind))
                }
            },
            Some(value) => Err(PhiRejection::invalid(name, value)),
        }
    }
}

impl PhiRejection {
    /// For a value that looks malformed as a whole but carries an id prefix ("loc_5551234567",
    /// "p_123-45-6789"), classify what follows the prefix; only structured identifiers count
    /// ("loc_Downtown" stays malformed rather than becoming a name).
    fn with_prefix_hint(mut self, value: &str) -> Self {
        if self.kind == IdentifierKind::Malformed
            && let Some((prefix, rest)) = value.split_once('_')
            && matches!(prefix, "p" | "pv" | "m" | "a" | "ev" | "loc")
        {
            let inner = classify(rest);
            if inner.is_structured() {
                self.kind = inner;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CLIENT: &str = "p_abcdefghijklmnopqrstuvwxyz";

    fn full_event() -> Value {
        json!({
            "event_id": "ev_a2b3c4d5e6f7g2h3i4j5k6l7mn",
            "kind": "appointment.completed",
            "client": CLIENT,
            "provider": "pv_zyxwvutsrqponmlkjihgfedcba",
            "service_category": "filler",
            "cycle_days": 180,
            "follow_up_days": 14,
            "price_band": "500-999",
            "location_id": "loc_downtown",
            "occurred_at": "2024-06-01T10:45:00Z",
            "starts_at": "2024-06-01T10:00:00Z",
            "ends_at": "2024-06-01T10:45:00.250Z",
            "membership_id": "m_mmmmmmmmmmmmmmmmmmmmmmmmm2",
            "appointment_ref": "a_aaaaaaaaaaaaaaaaaaaaaaaa23",
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut event = full_event();
        if let Value::Object(map) = &mut event {
            map.insert(field.to_owned(), value);
        }
        event
    }

    fn without(field: &str) -> Value {
        let mut event = full_event();
        if let Value::Object(map) = &mut event {
            map.remove(field);
        }
        event
    }

    fn rejection(raw: &Value) -> PhiRejection {
        match PhiGuard::new().check(raw) {
            Ok(event) => panic!("accepted: {event:?}"),
            Err(rejection) => rejection,
        }
    }

    #[test]
    fn a_valid_event_round_trips() {
        let guard = PhiGuard::new();
        let event = guard.check(&full_event()).expect("valid");
        assert_eq!(event.client.as_str(), CLIENT);
        assert_eq!(event.cycle_days.map(Days::get), Some(180));
        assert_eq!(event.price_band, Some(PriceBand::From500));
        let json = serde_json::to_value(&event).expect("serialise");
        assert_eq!(json, full_event());
        assert_eq!(guard.check(&json), Ok(event));

        let minimal = json!({
            "event_id": "550e8400-e29b-41d4-a716-446655440000",
            "kind": "membership.renewed",
            "client": CLIENT,
            "occurred_at": "2030-01-31T00:00:00Z",
        });
        let event = guard.check(&minimal).expect("valid minimal event");
        assert_eq!(serde_json::to_value(&event).expect("serialise"), minimal);
        assert!(guard.rejections().values().all(|n| *n == 0));
    }

    #[test]
    fn null_optionals_are_absent() {
        let event = PhiGuard::new().check(&with("provider", Value::Null)).expect("valid");
        assert_eq!(event.provider, None);
    }

    #[test]
    fn unknown_fields_are_rejected_and_classified() {
        let r = rejection(&with("email", json!("jane.doe@example.com")));
        assert_eq!((r.field(), r.reason(), r.kind()), ("email", RejectionReason::UnknownField, IdentifierKind::Email));
        let r = rejection(&with("notes", json!("allergic to latex, prefers mornings")));
        assert_eq!((r.field(), r.kind()), ("notes", IdentifierKind::FreeText));
        let r = rejection(&with("phone", json!(5551234567_u64)));
        assert_eq!(r.kind(), IdentifierKind::Phone);
        let r = rejection(&with("contact", json!({"home": {"zip": "90210"}, "vip": true})));
        assert_eq!(r.kind(), IdentifierKind::ZipCode);
    }

    #[test]
    fn an_unknown_key_that_looks_like_data_is_not_echoed() {
        for key in ["Jane Doe", "jane@example.com", "5551234567", "Jane"] {
            let r = rejection(&with(key, json!(1)));
            assert_eq!(r.field(), REDACTED_KEY);
            assert!(!r.to_string().contains(key));
        }
    }

    #[test]
    fn invalid_values_are_classified() {
        let cases = [
            ("client", json!("Jane Doe"), IdentifierKind::Name),
            ("client", json!("jane.doe@example.com"), IdentifierKind::Email),
            ("provider", json!("(555) 123-4567"), IdentifierKind::Phone),
            ("location_id", json!("123 Main St"), IdentifierKind::PostalAddress),
            ("location_id", json!("loc_5551234567"), IdentifierKind::Phone),
            ("price_band", json!("90210"), IdentifierKind::ZipCode),
            ("occurred_at", json!("1985-04-12T00:00:00Z"), IdentifierKind::Date),
            ("event_id", json!("123-45-6789"), IdentifierKind::Ssn),
            ("membership_id", json!("MRN 12345678"), IdentifierKind::RecordNumber),
            ("appointment_ref", json!("a_123-45-6789"), IdentifierKind::Ssn),
            ("appointment_ref", json!("a_tooshort"), IdentifierKind::Malformed),
            ("appointment_ref", json!("Jane Doe"), IdentifierKind::Name),
            ("service_category", json!("https://example.com/jane"), IdentifierKind::Url),
            ("starts_at", json!("192.168.1.1"), IdentifierKind::IpAddress),
            ("kind", json!("she was late again"), IdentifierKind::FreeText),
            ("client", json!("p_tooshort"), IdentifierKind::Malformed),
            ("client", json!(42), IdentifierKind::Malformed),
            ("client", json!(true), IdentifierKind::Malformed),
            ("client", json!(["jane@example.com"]), IdentifierKind::Email),
            ("cycle_days", json!(-1), IdentifierKind::Malformed),
            ("cycle_days", json!(3651), IdentifierKind::Malformed),
            ("cycle_days", json!(90.5), IdentifierKind::Malformed),
            ("cycle_days", json!("90"), IdentifierKind::Malformed),
            ("follow_up_days", json!("04/12/1985"), IdentifierKind::Date),
            ("follow_up_days", json!(5551234567_u64), IdentifierKind::Phone),
        ];
        for (field, value, kind) in cases {
            let r = rejection(&with(field, value.clone()));
            assert_eq!((r.field(), r.reason(), r.kind()), (field, RejectionReason::InvalidValue, kind), "{value}");
        }
    }

    #[test]
    fn missing_and_non_object() {
        for field in ["event_id", "kind", "client", "occurred_at", "service_category"] {
            let r = rejection(&without(field));
            assert_eq!((r.field(), r.reason()), (field, RejectionReason::MissingField));
        }
        let membership = with("kind", json!("membership.started"));
        let Value::Object(mut map) = membership else { panic!("object") };
        map.remove("service_category");
        assert!(PhiGuard::new().check(&Value::Object(map)).is_ok(), "category is optional for memberships");
        let r = rejection(&json!("jane.doe@example.com"));
        assert_eq!((r.field(), r.reason(), r.kind()), ("$", RejectionReason::NotAnObject, IdentifierKind::Email));
        assert_eq!(rejection(&json!([1, 2])).reason(), RejectionReason::NotAnObject);
    }

    #[test]
    fn rejections_never_show_the_value() {
        let secrets = [
            ("client", "Jane Doe"),
            ("notes", "Jane Doe, DOB 04/12/1985, allergic to latex"),
            ("provider", "jane.doe+spa@example.com"),
            ("location_id", "123 Main St, Springfield"),
            ("event_id", "123-45-6789"),
        ];
        for (field, secret) in secrets {
            let r = rejection(&with(field, json!(secret)));
            let shown = format!("{r} {r:?} {:?} {}", r.kind(), r.reason());
            assert!(shown.contains(field), "{shown}");
            assert!(shown.contains(r.kind().as_str()), "{shown}");
            for piece in secret.split([' ', ',']).filter(|p| p.len() > 3) {
                assert!(!shown.contains(piece), "{shown:?} leaks {piece:?}");
            }
        }
    }

    #[test]
    fn counters_are_per_kind_and_shared_across_threads() {
        let guard = PhiGuard::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        assert!(guard.check(&with("client", json!("555-123-4567"))).is_err());
                        assert!(guard.check(&with("notes", json!("Jane Doe"))).is_err());
                        assert!(guard.check(&full_event()).is_ok());
                    }
                });
            }
        });
        let counts = guard.rejections();
        assert_eq!(counts.len(), IdentifierKind::COUNT);
        assert_eq!(counts[&IdentifierKind::Phone], 100);
        assert_eq!(counts[&IdentifierKind::Name], 100);
        assert_eq!(counts.values().sum::<u64>(), 200);
    }
}
