//! The gap engine: revenue gaps found in one tenant's pseudonymous event stream.
//!
//! [`GapEngine`] keeps compact per-client state, updated by [`GapEngine::apply`] one event at a time
//! (amortised O(log n): a few hash look-ups and ordered-index updates, no scan), and answers
//! [`GapEngine::gaps`] from time-ordered indexes. [`GapEngine::recompute`] builds the same state
//! from scratch and evaluates every detector by a full scan without the indexes; the two always
//! agree. The engine is **order-independent and idempotent**: events may arrive late, out of order
//! or more than once (duplicates are recognised by `event_id`), and the result is the same as
//! applying the deduplicated stream in time order. One engine serves one tenant; the caller owns
//! tenancy and never mixes tenants in one engine.
//!
//! Events of one appointment are matched by `appointment_ref`, or without one by client, category
//! and `starts_at`; an appointment or membership belongs to the client of its first event seen.
//! Idempotency costs memory: the engine keeps every `event_id` it has applied.
//!
//! # Detectors
//!
//! Time is whole seconds; a day is 86 400 s. "Treatment" means an `appointment.completed` event
//! (its `occurred_at`); a `no_show` or `cancelled` is never a treatment.
//!
//! - **Rebook due** ([`GapKind::RebookDue`]) for a client and a service category when the last
//!   treatment in that category plus its cycle plus a grace window lies before `now`
//!   (`now > last + cycle + grace`, grace = 10 % of the cycle, at least [`MIN_GRACE_DAYS`] days;
//!   see [`rebook_grace_days`]) and the client has no *upcoming* booking **in that category** (a
//!   booking not yet cancelled, completed or no-showed, starting at or after `now`). A booking in
//!   another category does not suppress the gap: the practice can offer the overdue treatment at
//!   that visit. The cycle and price band are those of the latest treatment in the category that
//!   carried them; a cycle of 0 days means "no cycle". Score:
//!   `(0.6·overdue + 0.4·loyalty) · recency` with `r = elapsed / cycle`,
//!   `overdue = clamp(r − 1, 0, 1)`, `loyalty = n / (n + 2)` for `n` treatments in the category,
//!   `recency = 0.25 + 0.75·clamp(1 − (r − 2) / 4, 0, 1)` (1 up to two cycles, 0.25 from six on:
//!   long-gone clients sink). Revenue: the category's price band.
//! - **Follow-up due** ([`GapKind::FollowUpDue`]) when the latest treatment in a category had a
//!   follow-up window of `F > 0` days and no check-in yet: a check-in is any later completed visit
//!   in the same category (which then becomes the latest treatment). The gap is open from the
//!   treatment until one further window after the follow-up window closed (`last ≤ now < last + 2F`);
//!   after that it is stale and the rebook detector takes over. A booked (not yet completed)
//!   check-in does not close the gap. Score: `min(1, 0.25 + 0.75·p)` with
//!   `p = elapsed / F`. Revenue: the treatment's price band (a missed check-in puts the next
//!   treatment at risk).
//! - **Lapsing member** ([`GapKind::LapsingMember`]) for a membership or package whose latest
//!   status event is `started` or `renewed` (not `cancelled` or `expired`), with unused value > 0,
//!   and no visit for [`LAPSE_DAYS`] days: `now ≥ reference + 45 days`, where the reference is the
//!   latest of the client's last treatment (any category), the last redemption of this membership,
//!   and the membership's start (its latest `started`, or failing that its first `renewed`).
//!   **Unused value** (no credit field exists on the wire, so it is derived from price bands): each
//!   `started` / `renewed` event adds its price band's midpoint (what was paid for the period), each
//!   `redeemed` event subtracts its price band's midpoint (the service redeemed); an event without a
//!   band counts as the membership's own band (the latest band seen on its `started` / `renewed`
//!   events). Unused = max(0, paid − redeemed). Score: `0.5·idle + 0.5·value` with
//!   `idle = clamp(days idle / 180, 0, 1)` and `value = clamp(unused / 1000.00, 0, 1)`. Revenue: the
//!   unused value.
//! - **Slot fill** ([`GapKind::SlotFill`]): an `appointment.cancelled` whose slot starts after the
//!   cancellation opens a slot; while it starts after `now`, was cancelled at or before `now` and no
//!   other open booking holds the same provider and start, [`GapEngine::gaps`] lists the best
//!   [`SLOT_FILL_PER_SLOT`] candidates (see [`GapEngine::slot_fill_candidates`] for any limit).
//!   A slot freed more than once (cancelled, rebooked, cancelled again) is one slot, described by
//!   its latest cancellation. Candidates: every client with at least one treatment in the slot's
//!   category, other than the client(s) who cancelled it, without an upcoming booking in that
//!   category, and due or nearly due at the
//!   slot's start: `(slot start − last) / cycle ≥` [`NEARLY_DUE_RATIO`] (the client's cycle for the
//!   category, else the slot's). Score: `0.4·due + 0.3·provider + 0.15·weekday + 0.15·hour`, with
//!   `due = clamp((ratio − 0.8) / 0.4, 0, 1) · recency(ratio)` (recency as for rebook), `provider` the share of the client's visits with the
//!   slot's provider, `weekday` the share on the slot's weekday, `hour` the mean over visits of
//!   `max(0, 1 − |visit hour − slot hour| / 3)` (all in UTC, over all the client's treatments).
//!   Ties are broken by pseudonym. Revenue: the slot's price band.
//!
//! Revenue at stake is in minor units of the tenant's currency, assuming two decimals: the
//! midpoint of the price band, see [`band_midpoint_minor`]. Scores are in `0..=1`.
//!
//! Evidence strings are built only from pseudonyms, service categories, counts and durations
//! ("p_… · last filler 10 months ago · cycle 270 days · no upcoming filler visit"), never from
//! anything else; durations are human ("3 weeks ago", see [`human_duration`]).

mod engine;
mod rules;
mod text;

use serde::Serialize;

use crate::event::{ClientPseudonym, MembershipPseudonym, PriceBand, ProviderPseudonym, ServiceCategory, Timestamp};

pub use engine::{EngineStats, GapEngine, LOAD_CHUNK};
pub use text::{human_ago, human_duration, human_in};

/// Seconds in a day.
pub const DAY_SECS: i64 = 86_400;
/// The rebook grace window is 10 % of the cycle, but at least this many days.
pub const MIN_GRACE_DAYS: i64 = 7;
/// A member with no visit for this many days is lapsing.
pub const LAPSE_DAYS: i64 = 45;
/// Slot-fill candidates listed per open slot by [`GapEngine::gaps`].
pub const SLOT_FILL_PER_SLOT: usize = 5;
/// A client is "nearly due" for a slot when this fraction of the cycle has elapsed at its start.
pub const NEARLY_DUE_RATIO: f64 = 0.8;

/// What kind of revenue gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// A treatment with a cycle is overdue and nothing is booked.
    RebookDue,
    /// A cancelled slot and a client who could take it.
    SlotFill,
    /// A treatment's follow-up window has no check-in.
    FollowUpDue,
    /// A membership or package with unused value and no recent visit.
    LapsingMember,
}

impl GapKind {
    /// Every kind.
    pub const ALL: [GapKind; 4] = [GapKind::RebookDue, GapKind::SlotFill, GapKind::FollowUpDue, GapKind::LapsingMember];

    /// The wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            GapKind::RebookDue => "rebook_due",
            GapKind::SlotFill => "slot_fill",
            GapKind::FollowUpDue => "follow_up_due",
            GapKind::LapsingMember => "lapsing_member",
        }
    }
}

/// The slot a [`GapKind::SlotFill`] gap proposes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GapSlot {
    /// The provider of the cancelled appointment, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderPseudonym>,
    /// When the freed slot starts.
    pub starts_at: Timestamp,
}

/// A revenue gap for one client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// What kind of gap.
    pub kind: GapKind,
    /// The client, pseudonymously.
    pub client: ClientPseudonym,
    /// The service category concerned (absent for a membership without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_category: Option<ServiceCategory>,
    /// The freed slot, for [`GapKind::SlotFill`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<GapSlot>,
    /// The membership, for [`GapKind::LapsingMember`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipPseudonym>,
    /// Why, in words, from pseudonyms, categories, counts and durations only.
    pub evidence: String,
    /// Revenue at stake, in minor currency units (see [`band_midpoint_minor`]); 0 when unknown.
    pub revenue_at_stake_minor: i64,
    /// How promising the gap is, `0..=1` (formulas in the [module documentation](self)).
    pub score: f64,
}

impl Gap {
    /// The order of [`GapEngine::gaps`]: highest score first, then kind, client, category, slot and
    /// membership, so the output is deterministic.
    pub fn rank_cmp(&self, other: &Gap) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.kind.cmp(&other.kind))
            .then_with(|| self.client.cmp(&other.client))
            .then_with(|| self.service_category.cmp(&other.service_category))
            .then_with(|| self.slot.cmp(&other.slot))
            .then_with(|| self.membership.cmp(&other.membership))
    }
}

/// The midpoint of a price band in minor units, assuming a currency with two decimals: the middle
/// of `[low, high + 1)` — 25.00, 75.00, 175.00, 375.00, 750.00 — and 1.5 × 1000 = 1500.00 for the
/// open-ended `1000+` band.
pub const fn band_midpoint_minor(band: PriceBand) -> i64 {
    match band {
        PriceBand::Under50 => 2_500,
        PriceBand::From50 => 7_500,
        PriceBand::From100 => 17_500,
        PriceBand::From250 => 37_500,
        PriceBand::From500 => 75_000,
        PriceBand::From1000 => 150_000,
    }
}

/// The rebook grace window for a cycle, in seconds: 10 % of the cycle, at least [`MIN_GRACE_DAYS`].
pub const fn rebook_grace_secs(cycle_days: u16) -> i64 {
    let tenth = cycle_days as i64 * DAY_SECS / 10;
    if tenth > MIN_GRACE_DAYS * DAY_SECS { tenth } else { MIN_GRACE_DAYS * DAY_SECS }
}

/// The rebook grace window for a cycle, in (possibly fractional) days.
pub fn rebook_grace_days(cycle_days: u16) -> f64 {
    rebook_grace_secs(cycle_days) as f64 / DAY_SECS as f64
}
