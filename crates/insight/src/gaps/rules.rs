//! Scores and evidence wording of the detectors. Pure functions of numbers the engine hands in, so
//! the indexed and the full-scan paths of [`super::GapEngine`] cannot diverge here.

use super::text::{hour, human_ago, human_duration, human_in, major_units, plural, weekday, weekday_name};
use super::{DAY_SECS, NEARLY_DUE_RATIO};
use crate::event::{ClientPseudonym, MembershipPseudonym, ProviderPseudonym, ServiceCategory};

fn unit(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

fn days(secs: i64) -> f64 {
    secs as f64 / DAY_SECS as f64
}

/// `0.25 + 0.75·clamp(1 − (r − 2) / 4, 0, 1)` for `r` cycles elapsed: 1 up to two cycles, 0.25
/// from six on — clients long gone are less likely to come back.
fn recency(ratio: f64) -> f64 {
    0.25 + 0.75 * unit(1.0 - (ratio - 2.0) / 4.0)
}

/// Rebook score: `(0.6·overdue + 0.4·loyalty) · recency`, see the module docs.
pub(super) fn rebook_score(elapsed_secs: i64, cycle_days: u16, treatments: u32) -> f64 {
    let ratio = days(elapsed_secs) / f64::from(cycle_days.max(1));
    let overdue = unit(ratio - 1.0);
    let loyalty = f64::from(treatments) / (f64::from(treatments) + 2.0);
    unit((0.6 * overdue + 0.4 * loyalty) * recency(ratio))
}

/// Follow-up score: `min(1, 0.25 + 0.75·elapsed / window)`.
pub(super) fn follow_up_score(elapsed_secs: i64, window_days: u16) -> f64 {
    unit(0.25 + 0.75 * days(elapsed_secs) / f64::from(window_days.max(1)))
}

/// Lapsing-member score: `0.5·clamp(idle days / 180) + 0.5·clamp(unused / 100 000 minor units)`.
pub(super) fn lapsing_score(idle_secs: i64, unused_minor: i64) -> f64 {
    unit(0.5 * unit(days(idle_secs) / 180.0) + 0.5 * unit(unused_minor as f64 / 100_000.0))
}

/// How well one client fits a freed slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlotFit {
    /// Cycles elapsed between the last treatment in the category and the slot's start.
    pub ratio: f64,
    /// Treatments of the client (all categories).
    pub visits: u32,
    /// Of those, with the slot's provider.
    pub with_provider: u32,
    /// Of those, on the slot's weekday.
    pub on_weekday: u32,
    /// Sum over visits of `max(0, 1 − |visit hour − slot hour| / 3)`.
    pub hour_affinity: f64,
    /// Visits within an hour of the slot's hour.
    pub near_hour: u32,
}

impl SlotFit {
    /// `0.4·due + 0.3·provider + 0.15·weekday + 0.15·hour`, see the module docs.
    pub fn score(&self) -> f64 {
        let due = slot_due(self.ratio);
        let share = |n: f64| if self.visits == 0 { 0.0 } else { unit(n / f64::from(self.visits)) };
        unit(
            0.4 * due
                + 0.3 * share(f64::from(self.with_provider))
                + 0.15 * share(f64::from(self.on_weekday))
                + 0.15 * share(self.hour_affinity),
        )
    }
}

/// The "due" part of a slot fit for `ratio` cycles elapsed at the slot's start:
/// `clamp((ratio − 0.8) / 0.4, 0, 1) · recency(ratio)`. It rises to 1 at 1.2 cycles, stays 1 up to
/// two, then only falls (to 0.25 from six on): for a later slot start it is never higher once two
/// cycles have passed, which is what lets [`super::GapEngine::gaps`] skip clients.
pub(super) fn slot_due(ratio: f64) -> f64 {
    unit((ratio - NEARLY_DUE_RATIO) / 0.4) * recency(ratio)
}

/// The highest [`slot_due`] of any slot starting at or after the instant at which `ratio` cycles
/// have elapsed.
pub(super) fn slot_due_bound(ratio: f64) -> f64 {
    if ratio <= 2.0 { 1.0 } else { slot_due(ratio) }
}

/// The affinity of a visit at `visit_hour` to a slot at `slot_hour`: 1 at the same hour, 0 three
/// hours or more away.
pub(super) fn hour_affinity(visit_hour: usize, slot_hour: usize) -> f64 {
    unit(1.0 - visit_hour.abs_diff(slot_hour) as f64 / 3.0)
}

/// "p_… · last filler 10 months ago · cycle 270 days · no upcoming filler visit · 3 filler treatments".
pub(super) fn rebook_evidence(
    client: &ClientPseudonym,
    category: ServiceCategory,
    elapsed_secs: i64,
    cycle_days: u16,
    treatments: u32,
) -> String {
    let mut parts = vec![
        client.to_string(),
        format!("last {category} {}", human_ago(elapsed_secs)),
        format!("cycle {cycle_days} days"),
        format!("no upcoming {category} visit"),
    ];
    if treatments > 1 {
        parts.push(format!("{treatments} {category} treatments"));
    }
    parts.join(" · ")
}

/// "p_… · filler 5 days ago · follow-up window 14 days · 9 days left · no check-in yet".
pub(super) fn follow_up_evidence(
    client: &ClientPseudonym,
    category: ServiceCategory,
    elapsed_secs: i64,
    window_days: u16,
) -> String {
    let window_secs = i64::from(window_days) * DAY_SECS;
    let status = if elapsed_secs < window_secs {
        format!("{} left", human_duration(window_secs - elapsed_secs))
    } else {
        format!("window closed {}", human_ago(elapsed_secs - window_secs))
    };
    [
        client.to_string(),
        format!("{category} {}", human_ago(elapsed_secs)),
        format!("follow-up window {window_days} days"),
        status,
        "no check-in yet".to_owned(),
    ]
    .join(" · ")
}

/// "p_… · membership m_… · about 750 unused · last visit 2 months ago".
pub(super) fn lapsing_evidence(
    client: &ClientPseudonym,
    membership: &MembershipPseudonym,
    unused_minor: i64,
    idle_secs: i64,
    visited: bool,
) -> String {
    let idle = if visited {
        format!("last visit {}", human_ago(idle_secs))
    } else {
        format!("no visit since it started {}", human_ago(idle_secs))
    };
    [
        client.to_string(),
        format!("membership {membership}"),
        format!("about {} unused", major_units(unused_minor)),
        idle,
    ]
    .join(" · ")
}

/// What a slot-fill evidence line says about the slot.
pub(super) struct SlotWords<'a> {
    pub category: ServiceCategory,
    pub provider: Option<&'a ProviderPseudonym>,
    pub starts: i64,
    pub now: i64,
}

/// "p_… · filler slot in 2 days (Tuesday 14:00 UTC) with pv_… · last filler 8 months ago · cycle
/// 180 days · 3 of 4 visits with pv_… · 2 on Tuesdays · 3 around 14:00".
pub(super) fn slot_fill_evidence(
    client: &ClientPseudonym,
    slot: &SlotWords<'_>,
    last_ago_secs: i64,
    cycle_days: u16,
    fit: &SlotFit,
) -> String {
    let (day, hh) = (weekday_name(weekday(slot.starts)), hour(slot.starts));
    let category = slot.category;
    let with = slot.provider.map(|p| format!(" with {p}")).unwrap_or_default();
    let mut parts = vec![
        client.to_string(),
        format!("{category} slot {} ({day} {hh:02}:00 UTC){with}", human_in(slot.starts - slot.now)),
        format!("last {category} {}", human_ago(last_ago_secs)),
        format!("cycle {cycle_days} days"),
    ];
    if let Some(provider) = slot.provider.filter(|_| fit.with_provider > 0) {
        parts.push(format!("{} of {} with {provider}", fit.with_provider, plural(fit.visits, "visit")));
    }
    if fit.on_weekday > 0 {
        parts.push(format!("{} on {day}s", fit.on_weekday));
    }
    if fit.near_hour > 0 {
        parts.push(format!("{} around {hh:02}:00", fit.near_hour));
    }
    parts.join(" · ")
}
