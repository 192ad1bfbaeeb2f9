//! Lacuna Insight's boundary: the only door through which practice activity reaches the
//! intelligence layer.
//!
//! What lives here:
//! - [`InsightEvent`], the pseudonymous event and the only shape Insight accepts: a kind, a keyed
//!   pseudonym for the client (`p_…`) and optionally the provider (`pv_…`), a service category, cycle
//!   and follow-up days, a price band, a location id, timestamps, and pseudonymous membership
//!   (`m_…`) and appointment (`a_…`) ids — every field typed and validated against its exact format;
//! - [`PhiGuard`], which turns raw JSON into an [`InsightEvent`] or rejects it. Anything outside the
//!   schema, and any value that does not match its field's format, is refused, and the refusal is
//!   classified by [`classify`] into an [`IdentifierKind`] (the HIPAA Safe Harbor identifier it looks
//!   like: name, email, phone, address, date of birth, SSN, record number, URL, IP address, free
//!   text…) so operators can see *why* producers are being turned away;
//! - per-kind rejection counters and a warning log line per rejection;
//! - [`GapEngine`] (module [`gaps`]), which turns one tenant's accepted events into revenue gaps —
//!   rebook due, slot fill, follow-up due, lapsing member — each with evidence in words (pseudonyms
//!   and categories only), revenue at stake and a score, updated incrementally as events arrive.
//!
//! What must never happen here: holding, returning or logging a client's personal data. A
//! rejection names the field and the kind of identifier, never the value — not in its `Display`,
//! not in its `Debug`, not in the log. Pseudonyms are keyed HMACs minted on the Practice side; this
//! crate cannot and must not map them back to a person. It depends on no other crate of the
//! workspace, so nothing from Practice can leak in through a type.

pub mod actions;
mod detect;
mod event;
pub mod gaps;
mod phi;

pub use actions::{ActionKind, Decision, Policy, PolicyMode, gap_key};
pub use detect::{IdentifierKind, UnknownIdentifierKind, classify};
pub use event::{
    AppointmentRef, ClientPseudonym, Days, EventId, EventKind, FIELDS, InsightEvent, LocationId, MAX_DAYS,
    MembershipPseudonym, PRICE_BANDS, PriceBand, ProviderPseudonym, ServiceCategory, Timestamp,
};
pub use gaps::{Gap, GapEngine, GapKind, GapSlot};
pub use phi::{PhiGuard, PhiRejection, RejectionReason};
