//! What Practice tells Insight, and nothing more: pseudonymous events. Pseudonyms are keyed
//! HMAC-SHA256 (128 bits, lowercase base32) under the tenant's pseudonym key, which lives in the
//! keystore beside the data key and never leaves the Practice side, so only Practice can map a
//! pseudonym back to a client. Amounts travel as price bands, places as location ids.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The tenant's pseudonym key, loaded for one request.
pub struct Pseudonymizer {
    key: Zeroizing<[u8; 32]>,
}

impl Pseudonymizer {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    /// `prefix` + 26 lowercase base32 characters of HMAC(key, kind ‖ id), truncated to 128 bits.
    fn mint(&self, prefix: &str, kind: &str, id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()).expect("HMAC takes any key length");
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{prefix}{}", data_encoding::BASE32_NOPAD.encode(&digest[..16]).to_ascii_lowercase())
    }

    pub fn client(&self, id: &str) -> String {
        self.mint("p_", "client", id)
    }
    pub fn provider(&self, id: &str) -> String {
        self.mint("pv_", "provider", id)
    }
    pub fn plan(&self, id: &str) -> String {
        self.mint("m_", "plan", id)
    }
    pub fn appointment(&self, id: &str) -> String {
        self.mint("a_", "appointment", id)
    }
    /// Locations are not personal, but their ids travel keyed too (`loc_` + 26 base32 characters),
    /// so nothing in an event can be a long run of digits.
    pub fn location(&self, id: &str) -> String {
        self.mint("loc_", "location", id)
    }
}

/// The price band of an amount in minor units (cents): Insight never sees exact prices.
pub fn price_band(minor: i64) -> &'static str {
    match minor / 100 {
        i64::MIN..=49 => "0-49",
        50..=99 => "50-99",
        100..=249 => "100-249",
        250..=499 => "250-499",
        500..=999 => "500-999",
        _ => "1000+",
    }
}

/// RFC 3339 UTC with a `Z`, as Insight's timestamps require.
pub fn instant(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The facts of one appointment that an event may carry.
#[derive(Debug, Clone)]
pub struct AppointmentFacts<'a> {
    pub appointment_id: &'a str,
    pub client_id: &'a str,
    pub provider_id: &'a str,
    pub location_id: &'a str,
    pub category: &'a str,
    pub cycle_days: Option<i64>,
    pub follow_up_days: Option<i64>,
    pub price_minor: i64,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// An `appointment.booked|completed|cancelled|no_show` event, pseudonymous by construction.
pub fn appointment_event(p: &Pseudonymizer, kind: &str, a: &AppointmentFacts<'_>, occurred_at: i64) -> Value {
    let mut e = json!({
        "event_id": lacuna_domain::new_row_id(),
        "kind": kind,
        "client": p.client(a.client_id),
        "provider": p.provider(a.provider_id),
        "service_category": a.category,
        "price_band": price_band(a.price_minor),
        "location_id": p.location(a.location_id),
        "occurred_at": instant(occurred_at),
        "starts_at": instant(a.starts_at),
        "ends_at": instant(a.ends_at),
        "appointment_ref": p.appointment(a.appointment_id),
    });
    if let Some(c) = a.cycle_days {
        e["cycle_days"] = json!(c);
    }
    if let Some(f) = a.follow_up_days {
        e["follow_up_days"] = json!(f);
    }
    e
}

/// Insight's timestamps cover 2000..2100: a plan time outside is clamped into that range, so its
/// event is not refused by the guard.
fn plan_instant(unix: i64) -> String {
    instant(unix.clamp(946_684_800, 4_102_444_799))
}

/// The facts of one membership or package that an event may carry.
#[derive(Debug, Clone)]
pub struct PlanFacts<'a> {
    pub plan_id: &'a str,
    pub client_id: &'a str,
    /// The service category of a package (or of a membership tied to one service).
    pub category: Option<&'a str>,
}

/// What happened to a plan, and what travels with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChange<'a> {
    /// Sold: the price paid for the first period (membership) or the whole package.
    Started {
        price_minor: i64,
    },
    /// Period `period` (2, 3, …) of a membership began: its monthly price.
    Renewed {
        period: i64,
        price_minor: i64,
    },
    /// One credit spent on a completed appointment, at the appointment's price.
    Redeemed {
        appointment_id: &'a str,
        price_minor: i64,
        category: Option<&'a str>,
    },
    Cancelled,
    Expired,
}

impl PlanChange<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Started { .. } => "membership.started",
            Self::Renewed { .. } => "membership.renewed",
            Self::Redeemed { .. } => "membership.redeemed",
            Self::Cancelled => "membership.cancelled",
            Self::Expired => "membership.expired",
        }
    }

    /// The change's identity on the Practice side: the same change always has the same one, so
    /// queueing it twice (a job that runs again, a retry) is refused by the outbox's key. It
    /// never leaves Practice: the outbox row's id, not part of the event.
    pub fn outbox_id(&self, plan_id: &str) -> String {
        match self {
            Self::Started { .. } => format!("plan.started:{plan_id}"),
            Self::Renewed { period, .. } => format!("plan.renewed:{plan_id}:{period}"),
            Self::Redeemed { appointment_id, .. } => format!("plan.redeemed:{plan_id}:{appointment_id}"),
            Self::Cancelled => format!("plan.cancelled:{plan_id}"),
            Self::Expired => format!("plan.expired:{plan_id}"),
        }
    }
}

/// A `membership.started|renewed|redeemed|cancelled|expired` event (memberships and packages
/// alike), pseudonymous by construction: `m_…` for the plan, `p_…` for the client, a price band.
/// The event id is keyed and derived from the change ([`PlanChange::outbox_id`]), so the same
/// change sent twice is one event to Insight.
pub fn plan_event(p: &Pseudonymizer, change: &PlanChange<'_>, plan: &PlanFacts<'_>, occurred_at: i64) -> Value {
    let mut e = json!({
        "event_id": p.mint("ev_", "plan-event", &change.outbox_id(plan.plan_id)),
        "kind": change.kind(),
        "client": p.client(plan.client_id),
        "membership_id": p.plan(plan.plan_id),
        "occurred_at": plan_instant(occurred_at),
    });
    let (price, category) = match *change {
        PlanChange::Started { price_minor } | PlanChange::Renewed { price_minor, .. } => {
            (Some(price_minor), plan.category)
        }
        PlanChange::Redeemed { price_minor, category, .. } => (Some(price_minor), category.or(plan.category)),
        PlanChange::Cancelled | PlanChange::Expired => (None, plan.category),
    };
    if let Some(price) = price {
        e["price_band"] = json!(price_band(price));
    }
    if let Some(category) = category {
        e["service_category"] = json!(category);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AppointmentFacts<'static> {
        AppointmentFacts {
            appointment_id: "6f1c2f0e-8a1b-4c55-9d1e-0b7f3a2c9e11",
            client_id: "0d6f3c2a-1b2c-4d5e-8f90-123456789abc",
            provider_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            location_id: "11112222-3333-4444-8555-666677778888",
            category: "filler",
            cycle_days: Some(270),
            follow_up_days: Some(14),
            price_minor: 75_000,
            starts_at: 1_790_000_000,
            ends_at: 1_790_002_700,
        }
    }

    #[test]
    fn events_pass_insights_phi_guard() {
        let p = Pseudonymizer::new(Zeroizing::new([7u8; 32]));
        for kind in ["appointment.booked", "appointment.completed", "appointment.cancelled", "appointment.no_show"] {
            let e = appointment_event(&p, kind, &facts(), 1_790_003_000);
            let guard = lacuna_insight::PhiGuard::new();
            assert!(guard.check(&e).is_ok(), "{kind}: {:?}", guard.check(&e).err());
        }
    }

    #[test]
    fn plan_events_pass_insights_phi_guard_and_are_stable_per_change() {
        let p = Pseudonymizer::new(Zeroizing::new([7u8; 32]));
        let plan = PlanFacts {
            plan_id: "2b0f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            client_id: "0d6f3c2a-1b2c-4d5e-8f90-123456789abc",
            category: Some("facial"),
        };
        let appointment_id = "6f1c2f0e-8a1b-4c55-9d1e-0b7f3a2c9e11";
        let changes = [
            PlanChange::Started { price_minor: 14_900 },
            PlanChange::Renewed { period: 2, price_minor: 14_900 },
            PlanChange::Redeemed { appointment_id, price_minor: 22_000, category: Some("facial") },
            PlanChange::Cancelled,
            PlanChange::Expired,
        ];
        let guard = lacuna_insight::PhiGuard::new();
        let mut ids = std::collections::HashSet::new();
        for change in &changes {
            let e = plan_event(&p, change, &plan, 1_790_003_000);
            let checked = guard.check(&e).unwrap_or_else(|r| panic!("{}: {r}", change.kind()));
            assert_eq!(checked.kind.as_str(), change.kind());
            assert!(ids.insert(checked.event_id.as_str().to_string()), "one id per change");
            assert_eq!(e, plan_event(&p, change, &plan, 1_790_003_000), "the same change is the same event");
            let text = e.to_string();
            for raw in [plan.plan_id, plan.client_id, appointment_id] {
                assert!(!text.contains(raw), "{text}");
            }
        }
        let e = plan_event(&p, &PlanChange::Started { price_minor: 14_900 }, &plan, 0);
        assert!(guard.check(&e).is_ok(), "a plan dated before 2000 is clamped, not refused");
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_unlinkable_across_keys() {
        let a = Pseudonymizer::new(Zeroizing::new([1u8; 32]));
        let b = Pseudonymizer::new(Zeroizing::new([2u8; 32]));
        let id = "0d6f3c2a-1b2c-4d5e-8f90-123456789abc";
        assert_eq!(a.client(id), a.client(id));
        assert_ne!(a.client(id), b.client(id));
        assert_ne!(a.client(id), a.provider(id).replacen("pv_", "p_", 1), "kinds are separated");
        assert!(a.client(id).starts_with("p_") && a.client(id).len() == 28);
        assert!(!a.client(id).contains(id));
    }

    #[test]
    fn prices_become_bands() {
        assert_eq!(price_band(4_999), "0-49");
        assert_eq!(price_band(42_000), "250-499");
        assert_eq!(price_band(120_000), "1000+");
    }
}
