//! The gap detectors, story by story, on hand-built events.

use std::cell::Cell;

use lacuna_insight::gaps::{DAY_SECS, band_midpoint_minor, rebook_grace_days};
use lacuna_insight::{
    AppointmentRef, ClientPseudonym, Days, EventId, EventKind, Gap, GapEngine, GapKind, InsightEvent,
    MembershipPseudonym, PriceBand, ProviderPseudonym, ServiceCategory, Timestamp,
};

/// 2024-01-01T00:00:00Z, a Monday.
const BASE: i64 = 1_704_067_200;

/// `prefix` + `name` padded with `a` to 26 base32 characters.
fn pseudo(prefix: &str, name: &str) -> String {
    assert!(name.len() <= 26 && name.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
    format!("{prefix}{name}{}", "a".repeat(26 - name.len()))
}

fn client(name: &str) -> ClientPseudonym {
    ClientPseudonym::parse(&pseudo("p_", name)).expect("client pseudonym")
}

fn provider(name: &str) -> ProviderPseudonym {
    ProviderPseudonym::parse(&pseudo("pv_", name)).expect("provider pseudonym")
}

/// Day `day` after [`BASE`], at `hour`:00 UTC.
fn at(day: i64, hour: i64) -> Timestamp {
    Timestamp::from_unix_seconds(BASE + day * DAY_SECS + hour * 3_600).expect("in range")
}

fn day(day: i64) -> Timestamp {
    at(day, 12)
}

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

fn next_event_id() -> EventId {
    let n = NEXT_ID.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let tail: String = (0..26).map(|i| alphabet[((n >> (5 * (i % 12))) & 31) as usize] as char).collect();
    EventId::parse(&format!("ev_{tail}")).expect("event id")
}

/// An event of `kind` for `who` at `when`; refine with the builder methods.
fn event(kind: EventKind, who: &str, when: Timestamp) -> InsightEvent {
    InsightEvent {
        event_id: next_event_id(),
        kind,
        client: client(who),
        provider: None,
        service_category: None,
        cycle_days: None,
        follow_up_days: None,
        price_band: None,
        location_id: None,
        occurred_at: when,
        starts_at: None,
        ends_at: None,
        membership_id: None,
        appointment_ref: None,
    }
}

trait Build {
    fn category(self, c: ServiceCategory) -> Self;
    fn cycle(self, days: u64) -> Self;
    fn follow_up(self, days: u64) -> Self;
    fn band(self, band: PriceBand) -> Self;
    fn with(self, provider_name: &str) -> Self;
    fn starts(self, when: Timestamp) -> Self;
    fn appointment(self, name: &str) -> Self;
    fn membership(self, name: &str) -> Self;
}

impl Build for InsightEvent {
    fn category(mut self, c: ServiceCategory) -> Self {
        self.service_category = Some(c);
        self
    }
    fn cycle(mut self, days: u64) -> Self {
        self.cycle_days = Days::new(days);
        self
    }
    fn follow_up(mut self, days: u64) -> Self {
        self.follow_up_days = Days::new(days);
        self
    }
    fn band(mut self, band: PriceBand) -> Self {
        self.price_band = Some(band);
        self
    }
    fn with(mut self, provider_name: &str) -> Self {
        self.provider = Some(provider(provider_name));
        self
    }
    fn starts(mut self, when: Timestamp) -> Self {
        self.starts_at = Some(when);
        self
    }
    fn appointment(mut self, name: &str) -> Self {
        self.appointment_ref = AppointmentRef::parse(&pseudo("a_", name));
        self
    }
    fn membership(mut self, name: &str) -> Self {
        self.membership_id = MembershipPseudonym::parse(&pseudo("m_", name));
        self
    }
}

fn filler_treatment(who: &str, when: Timestamp) -> InsightEvent {
    event(EventKind::AppointmentCompleted, who, when)
        .category(ServiceCategory::Filler)
        .cycle(270)
        .band(PriceBand::From500)
        .starts(when)
}

fn of_kind(gaps: &[Gap], kind: GapKind) -> Vec<&Gap> {
    gaps.iter().filter(|g| g.kind == kind).collect()
}

/// The engine's gaps, checked against the full scan and a from-scratch recompute.
fn gaps(engine: &GapEngine, events: &[InsightEvent], now: &Timestamp) -> Vec<Gap> {
    let gaps = engine.gaps(now);
    assert_eq!(gaps, engine.gaps_by_scan(now), "indexed and scanned gaps differ");
    assert_eq!(gaps, GapEngine::recompute(events, now), "incremental and recomputed gaps differ");
    gaps
}

struct Story {
    engine: GapEngine,
    events: Vec<InsightEvent>,
}

impl Story {
    fn new() -> Self {
        Self { engine: GapEngine::new(), events: Vec::new() }
    }
    fn then(&mut self, event: InsightEvent) -> &mut Self {
        assert!(self.engine.apply(&event), "fresh event");
        self.events.push(event);
        self
    }
    fn gaps(&self, now: &Timestamp) -> Vec<Gap> {
        gaps(&self.engine, &self.events, now)
    }
    fn kind(&self, now: &Timestamp, kind: GapKind) -> Vec<Gap> {
        self.gaps(now).into_iter().filter(|g| g.kind == kind).collect()
    }
}

// --- Rebook due ------------------------------------------------------------------------------------

#[test]
fn filler_300_days_ago_with_a_270_day_cycle_is_due_until_the_client_books() {
    let mut story = Story::new();
    story.then(filler_treatment("anna", day(0)));

    let due = story.kind(&day(300), GapKind::RebookDue);
    assert_eq!(due.len(), 1);
    let gap = &due[0];
    assert_eq!(gap.client, client("anna"));
    assert_eq!(gap.service_category, Some(ServiceCategory::Filler));
    assert_eq!(gap.revenue_at_stake_minor, 75_000, "500-999 band midpoint");
    assert_eq!(
        gap.evidence,
        format!("{} · last filler 10 months ago · cycle 270 days · no upcoming filler visit", client("anna"))
    );
    assert!((0.0..=1.0).contains(&gap.score));

    // She books for next week: nothing to do.
    story.then(
        event(EventKind::AppointmentBooked, "anna", day(300))
            .category(ServiceCategory::Filler)
            .starts(at(307, 10))
            .appointment("annanext"),
    );
    assert!(story.kind(&day(300), GapKind::RebookDue).is_empty());

    // She cancels it: due again.
    story.then(
        event(EventKind::AppointmentCancelled, "anna", day(302))
            .category(ServiceCategory::Filler)
            .appointment("annanext"),
    );
    assert_eq!(story.kind(&day(302), GapKind::RebookDue).len(), 1);
}

#[test]
fn a_booking_that_was_never_closed_stops_counting_once_its_start_has_passed() {
    let mut story = Story::new();
    story.then(filler_treatment("anna", day(0)));
    story.then(
        event(EventKind::AppointmentBooked, "anna", day(290)).category(ServiceCategory::Filler).starts(at(305, 10)),
    );
    assert!(story.kind(&day(300), GapKind::RebookDue).is_empty(), "booked for day 305");
    assert_eq!(story.kind(&day(306), GapKind::RebookDue).len(), 1, "day 305 passed without a visit");
}

#[test]
fn the_grace_window_is_a_tenth_of_the_cycle_but_at_least_a_week() {
    assert_eq!(rebook_grace_days(270), 27.0);
    assert_eq!(rebook_grace_days(30), 7.0);
    assert_eq!(rebook_grace_days(70), 7.0);
    assert_eq!(rebook_grace_days(100), 10.0);

    let mut story = Story::new();
    story.then(filler_treatment("anna", day(0)));
    let due_at = BASE + 12 * 3_600 + (270 + 27) * DAY_SECS;
    let ts = |secs| Timestamp::from_unix_seconds(secs).expect("in range");
    assert!(story.kind(&ts(due_at), GapKind::RebookDue).is_empty(), "exactly at cycle + grace: not yet");
    assert_eq!(story.kind(&ts(due_at + 1), GapKind::RebookDue).len(), 1);

    let mut facial = Story::new();
    facial.then(event(EventKind::AppointmentCompleted, "bea", day(0)).category(ServiceCategory::Facial).cycle(30));
    assert!(facial.kind(&day(36), GapKind::RebookDue).is_empty(), "30-day cycle + 7-day minimum grace");
    assert_eq!(facial.kind(&day(38), GapKind::RebookDue).len(), 1);
    assert_eq!(facial.kind(&day(38), GapKind::RebookDue)[0].revenue_at_stake_minor, 0, "no price band known");
}

#[test]
fn a_no_show_is_not_a_treatment_and_other_categories_do_not_count() {
    let mut story = Story::new();
    story.then(filler_treatment("anna", day(0)));
    story.then(
        event(EventKind::AppointmentNoShow, "anna", day(280))
            .category(ServiceCategory::Filler)
            .cycle(270)
            .starts(at(280, 9)),
    );
    // A facial next week does not book the overdue filler.
    story.then(
        event(EventKind::AppointmentBooked, "anna", day(290)).category(ServiceCategory::Facial).starts(at(310, 9)),
    );
    let due = story.kind(&day(300), GapKind::RebookDue);
    assert_eq!(due.len(), 1);
    assert!(due[0].evidence.contains("last filler 10 months ago"), "{}", due[0].evidence);
}

#[test]
fn categories_without_a_cycle_never_come_due_and_a_new_treatment_resets_the_clock() {
    let mut story = Story::new();
    story.then(event(EventKind::AppointmentCompleted, "anna", day(0)).category(ServiceCategory::Massage));
    assert!(story.kind(&day(900), GapKind::RebookDue).is_empty());

    story.then(filler_treatment("anna", day(0)));
    story.then(filler_treatment("anna", day(250)));
    assert!(story.kind(&day(300), GapKind::RebookDue).is_empty());
    let due = story.kind(&day(560), GapKind::RebookDue);
    assert_eq!(due.len(), 1);
    assert!(due[0].evidence.ends_with("· 2 filler treatments"), "{}", due[0].evidence);
}

#[test]
fn rebook_scores_rise_with_overdue_and_loyalty_then_fade_for_long_gone_clients() {
    let mut story = Story::new();
    story.then(filler_treatment("once", day(0)));
    for d in [-540, -270, 0] {
        story.then(filler_treatment("loyal", day(d + 1000)));
    }
    story.then(filler_treatment("older", day(-100)));
    story.then(filler_treatment("gone", day(-1400)));
    let now = day(330);
    let score =
        |name: &str| story.kind(&now, GapKind::RebookDue).iter().find(|g| g.client == client(name)).map(|g| g.score);
    let (once, older, gone) = (score("once"), score("older"), score("gone"));
    assert_eq!(score("loyal"), None, "treated recently");
    assert!(older > once, "more overdue ranks higher: {older:?} vs {once:?}");
    assert!(gone < once, "six cycles gone fades: {gone:?} vs {once:?}");

    let mut loyal = Story::new();
    for d in [-540, -270, 0] {
        loyal.then(filler_treatment("loyal", day(d)));
    }
    let loyal_score = loyal.kind(&now, GapKind::RebookDue)[0].score;
    assert!(Some(loyal_score) > once, "three treatments outrank one at the same overdue");
}

#[test]
fn duplicates_and_out_of_order_events_change_nothing() {
    let booking = event(EventKind::AppointmentBooked, "anna", day(290))
        .category(ServiceCategory::Filler)
        .starts(at(307, 10))
        .appointment("annanext");
    let cancel = event(EventKind::AppointmentCancelled, "anna", day(295))
        .category(ServiceCategory::Filler)
        .appointment("annanext");
    let treatment = filler_treatment("anna", day(0));

    let mut engine = GapEngine::new();
    assert!(engine.apply(&cancel), "the cancellation arrives first");
    assert!(engine.apply(&booking));
    assert!(!engine.apply(&booking), "duplicate");
    assert!(engine.apply(&treatment));
    assert!(!engine.apply(&treatment), "duplicate");
    assert_eq!(engine.stats().events, 3);
    assert_eq!(engine.stats().appointments, 2, "the treatment is its own appointment (by slot)");
    let events = [treatment, booking, cancel];
    let gaps = gaps(&engine, &events, &day(300));
    assert_eq!(of_kind(&gaps, GapKind::RebookDue).len(), 1, "the booking is closed whatever the order");
}

#[test]
fn a_rescheduled_appointment_follows_its_ref() {
    let mut story = Story::new();
    story.then(filler_treatment("anna", day(0)));
    story.then(
        event(EventKind::AppointmentBooked, "anna", day(280))
            .category(ServiceCategory::Filler)
            .starts(at(301, 10))
            .appointment("annanext"),
    );
    story.then(
        event(EventKind::AppointmentBooked, "anna", day(285))
            .category(ServiceCategory::Filler)
            .starts(at(320, 10))
            .appointment("annanext"),
    );
    assert!(story.kind(&day(310), GapKind::RebookDue).is_empty(), "moved to day 320");
    assert_eq!(story.kind(&day(321), GapKind::RebookDue).len(), 1);
}

// --- Follow-up due ---------------------------------------------------------------------------------

#[test]
fn a_treatment_with_a_follow_up_window_is_due_until_a_check_in() {
    let mut story = Story::new();
    story.then(filler_treatment("cleo", day(0)).follow_up(14));
    assert_eq!(story.kind(&at(0, 11), GapKind::FollowUpDue).len(), 0, "before the treatment");

    let due = story.kind(&day(5), GapKind::FollowUpDue);
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].evidence,
        format!("{} · filler 5 days ago · follow-up window 14 days · 9 days left · no check-in yet", client("cleo"))
    );
    assert_eq!(due[0].revenue_at_stake_minor, 75_000);
    let late = story.kind(&day(20), GapKind::FollowUpDue);
    assert!(late[0].evidence.contains("window closed 6 days ago"), "{}", late[0].evidence);
    assert!(late[0].score > due[0].score, "more urgent as the window runs out");
    assert_eq!(late[0].score, 1.0);
    assert!(story.kind(&day(28), GapKind::FollowUpDue).is_empty(), "stale after a second window");

    // A check-in: a later completed visit in the same category.
    story.then(
        event(EventKind::AppointmentCompleted, "cleo", day(7)).category(ServiceCategory::Filler).starts(at(7, 9)),
    );
    assert!(story.kind(&day(8), GapKind::FollowUpDue).is_empty());
}

#[test]
fn a_visit_in_another_category_is_not_a_check_in() {
    let mut story = Story::new();
    story.then(filler_treatment("cleo", day(0)).follow_up(14));
    story.then(event(EventKind::AppointmentCompleted, "cleo", day(3)).category(ServiceCategory::Facial));
    assert_eq!(story.kind(&day(5), GapKind::FollowUpDue).len(), 1);
    let none = Story::new();
    assert!(none.gaps(&day(5)).is_empty());
}

// --- Lapsing member --------------------------------------------------------------------------------

fn membership(kind: EventKind, who: &str, when: Timestamp) -> InsightEvent {
    event(kind, who, when).membership("gold")
}

#[test]
fn a_member_with_unused_value_and_no_visit_for_45_days_is_lapsing() {
    let mut story = Story::new();
    story.then(membership(EventKind::MembershipStarted, "dora", day(0)).band(PriceBand::From100));
    story.then(membership(EventKind::MembershipRedeemed, "dora", day(10)).band(PriceBand::From50));
    story.then(event(EventKind::AppointmentCompleted, "dora", day(10)).category(ServiceCategory::Facial));

    assert!(story.kind(&day(54), GapKind::LapsingMember).is_empty(), "44 days since the visit");
    let lapsing = story.kind(&day(56), GapKind::LapsingMember);
    assert_eq!(lapsing.len(), 1);
    let gap = &lapsing[0];
    assert_eq!(gap.revenue_at_stake_minor, 17_500 - 7_500, "paid band midpoint minus redeemed");
    assert_eq!(gap.membership, MembershipPseudonym::parse(&pseudo("m_", "gold")));
    assert_eq!(
        gap.evidence,
        format!("{} · membership {} · about 100 unused · last visit 6 weeks ago", client("dora"), pseudo("m_", "gold"))
    );

    // Renewal adds a period's value; a visit resets the clock.
    story.then(membership(EventKind::MembershipRenewed, "dora", day(60)));
    assert_eq!(story.kind(&day(61), GapKind::LapsingMember)[0].revenue_at_stake_minor, 10_000 + 17_500);
    story.then(event(EventKind::AppointmentCompleted, "dora", day(62)).category(ServiceCategory::Massage));
    assert!(story.kind(&day(100), GapKind::LapsingMember).is_empty());
    assert_eq!(story.kind(&day(108), GapKind::LapsingMember).len(), 1);

    // Cancelled: not a member any more.
    story.then(membership(EventKind::MembershipCancelled, "dora", day(109)));
    assert!(story.kind(&day(120), GapKind::LapsingMember).is_empty());
}

#[test]
fn a_used_up_or_expired_membership_is_not_lapsing_and_a_never_used_one_is() {
    let mut used = Story::new();
    used.then(membership(EventKind::MembershipStarted, "eve", day(0)).band(PriceBand::From100));
    used.then(membership(EventKind::MembershipRedeemed, "eve", day(1)));
    assert!(used.kind(&day(100), GapKind::LapsingMember).is_empty(), "a redemption without band uses one period");

    let mut idle = Story::new();
    idle.then(
        membership(EventKind::MembershipStarted, "fay", day(0))
            .band(PriceBand::From250)
            .category(ServiceCategory::Laser),
    );
    assert!(idle.kind(&day(44), GapKind::LapsingMember).is_empty());
    let lapsing = idle.kind(&day(46), GapKind::LapsingMember);
    assert_eq!(lapsing.len(), 1);
    assert_eq!(lapsing[0].service_category, Some(ServiceCategory::Laser));
    assert!(lapsing[0].evidence.ends_with("about 375 unused · no visit since it started 6 weeks ago"));

    idle.then(membership(EventKind::MembershipExpired, "fay", day(50)));
    assert!(idle.kind(&day(60), GapKind::LapsingMember).is_empty());
    // Renewed after expiry (a later event): active again.
    idle.then(membership(EventKind::MembershipRenewed, "fay", day(70)));
    assert_eq!(idle.kind(&day(71), GapKind::LapsingMember)[0].revenue_at_stake_minor, 2 * 37_500);
}

// --- Slot fill -------------------------------------------------------------------------------------

/// Tuesday 2024-10-29 (day 302), 10:00 UTC.
const SLOT_DAY: i64 = 302;

fn slot_fill_story() -> Story {
    let mut story = Story::new();
    // Tuesdays are days 1, 8, 15, … (day 0 is a Monday).
    let visit = |who: &str, d: i64, hour: i64, with: &str| {
        event(EventKind::AppointmentCompleted, who, at(d, hour + 1))
            .category(ServiceCategory::Filler)
            .cycle(270)
            .band(PriceBand::From500)
            .with(with)
            .starts(at(d, hour))
    };
    // Perfect fit: always the slot's provider, Tuesdays at 10.
    story.then(visit("perfect", -265 - 7 * 40, 10, "ines")).then(visit("perfect", 1 - 7 * 5, 10, "ines"));
    // Right weekday and hour, another provider.
    story.then(visit("weekday", 1 - 7 * 6, 10, "jon"));
    // Due, but Fridays at noon with another provider: only the hour is close.
    story.then(visit("noon", 4 - 7 * 6, 12, "jon"));
    // Due the most, no preference match (a Thursday evening).
    story.then(visit("overdue", 4 - 400, 18, "jon"));
    // Not due: treated a month ago.
    story.then(visit("recent", 270, 10, "ines"));
    // Nearly due: 85 % of the cycle at the slot.
    story.then(visit("nearly", SLOT_DAY - 230, 10, "ines"));
    // Never had filler.
    story.then(event(EventKind::AppointmentCompleted, "facial", at(1, 10)).category(ServiceCategory::Facial));
    // Due, but already booked for filler next month.
    story.then(visit("booked", 8 - 7 * 6, 10, "ines"));
    story.then(
        event(EventKind::AppointmentBooked, "booked", day(290)).category(ServiceCategory::Filler).starts(at(330, 10)),
    );
    // The client who cancels: a perfect fit too, but excluded.
    story.then(visit("leaver", 1 - 7 * 5, 10, "ines"));
    story.then(
        event(EventKind::AppointmentBooked, "leaver", day(280))
            .category(ServiceCategory::Filler)
            .with("ines")
            .band(PriceBand::From500)
            .cycle(270)
            .starts(at(SLOT_DAY, 10))
            .appointment("leaverslot"),
    );
    story
}

fn cancellation() -> InsightEvent {
    event(EventKind::AppointmentCancelled, "leaver", day(300))
        .category(ServiceCategory::Filler)
        .appointment("leaverslot")
}

#[test]
fn slot_fill_ranks_due_clients_by_provider_weekday_and_hour() {
    let story = slot_fill_story();
    let candidates = story.engine.slot_fill_candidates(&cancellation(), &day(300), 10);
    let order: Vec<ClientPseudonym> = candidates.iter().map(|g| g.client.clone()).collect();
    assert_eq!(
        order,
        ["perfect", "weekday", "nearly", "noon", "overdue"].map(client),
        "scores: {:?}",
        candidates.iter().map(|g| (g.client.as_str(), g.score)).collect::<Vec<_>>()
    );
    let best = &candidates[0];
    assert_eq!(best.kind, GapKind::SlotFill);
    assert_eq!(best.revenue_at_stake_minor, 75_000);
    let slot = best.slot.as_ref().expect("slot");
    assert_eq!((slot.provider.clone(), slot.starts_at), (Some(provider("ines")), at(SLOT_DAY, 10)));
    assert_eq!(
        best.evidence,
        format!(
            "{} · filler slot in 2 days (Tuesday 10:00 UTC) with {} · last filler 11 months ago · cycle 270 days \
             · 2 of 2 visits with {} · 2 on Tuesdays · 2 around 10:00",
            client("perfect"),
            provider("ines"),
            provider("ines")
        )
    );
    assert!(candidates.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(story.engine.slot_fill_candidates(&cancellation(), &day(300), 2).len(), 2);
    assert!(story.engine.slot_fill_candidates(&cancellation(), &day(303), 5).is_empty(), "the slot has passed");
}

#[test]
fn a_cancellation_opens_a_slot_in_the_gap_list_until_it_is_filled_or_passes() {
    let mut story = slot_fill_story();
    assert!(story.kind(&day(300), GapKind::SlotFill).is_empty());
    story.then(cancellation());

    let fills = story.kind(&day(300), GapKind::SlotFill);
    assert_eq!(fills.len(), 5, "top five per slot");
    assert_eq!(fills, story.engine.slot_fill_candidates(&cancellation(), &day(300), 5));
    assert_eq!(story.engine.stats().freed_slots, 1);
    assert!(story.kind(&at(SLOT_DAY, 10), GapKind::SlotFill).is_empty(), "the slot has started");

    // Someone else books that provider at that time: filled.
    story.then(
        event(EventKind::AppointmentBooked, "weekday", day(301))
            .category(ServiceCategory::Filler)
            .with("ines")
            .starts(at(SLOT_DAY, 10))
            .appointment("taken"),
    );
    assert!(story.kind(&day(301), GapKind::SlotFill).is_empty());
    // …and cancels again: one slot, open again, for everyone but the two who cancelled it.
    story.then(
        event(EventKind::AppointmentCancelled, "weekday", day(301))
            .category(ServiceCategory::Filler)
            .appointment("taken"),
    );
    assert_eq!(story.engine.stats().freed_slots, 2, "two cancelled appointments…");
    let fills = story.kind(&at(301, 13), GapKind::SlotFill);
    let clients: Vec<ClientPseudonym> = fills.iter().map(|g| g.client.clone()).collect();
    assert_eq!(clients, ["perfect", "nearly", "noon", "overdue"].map(client), "…one slot");
}

#[test]
fn a_late_cancellation_frees_nothing() {
    let mut story = slot_fill_story();
    story.then(
        event(EventKind::AppointmentCancelled, "leaver", at(SLOT_DAY, 11))
            .category(ServiceCategory::Filler)
            .appointment("leaverslot"),
    );
    assert_eq!(story.engine.stats().freed_slots, 0);
}

// --- Revenue and wording ---------------------------------------------------------------------------

#[test]
fn revenue_is_the_price_band_midpoint_in_minor_units() {
    let expected = [2_500, 7_500, 17_500, 37_500, 75_000, 150_000];
    for (band, minor) in PriceBand::ALL.iter().zip(expected) {
        assert_eq!(band_midpoint_minor(*band), minor, "{band}");
    }
}

#[test]
fn evidence_is_made_of_pseudonyms_categories_numbers_and_plain_words_only() {
    let mut story = slot_fill_story();
    story.then(cancellation());
    story.then(filler_treatment("cleo", day(295)).follow_up(14));
    story.then(membership(EventKind::MembershipStarted, "dora", day(100)).band(PriceBand::From100));
    let gaps = story.gaps(&day(300));
    for kind in GapKind::ALL {
        assert!(gaps.iter().any(|g| g.kind == kind), "no {kind:?} in {gaps:#?}");
    }
    let words = [
        "last",
        "ago",
        "cycle",
        "days",
        "day",
        "weeks",
        "week",
        "months",
        "month",
        "years",
        "year",
        "no",
        "upcoming",
        "visit",
        "visits",
        "treatments",
        "follow-up",
        "window",
        "left",
        "closed",
        "check-in",
        "yet",
        "membership",
        "about",
        "unused",
        "since",
        "it",
        "started",
        "slot",
        "in",
        "with",
        "of",
        "on",
        "around",
        "UTC",
        "today",
        "less",
        "than",
        "a",
    ];
    let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    for gap in &gaps {
        for token in gap.evidence.split([' ', '(', ')']).filter(|t| !t.is_empty() && *t != "·") {
            let ok = words.contains(&token)
                || ServiceCategory::parse(token).is_some()
                || weekdays.iter().any(|d| token == *d || token.strip_suffix('s') == Some(d))
                || token.bytes().all(|b| b.is_ascii_digit() || b == b':')
                || ClientPseudonym::parse(token).is_some()
                || ProviderPseudonym::parse(token).is_some()
                || MembershipPseudonym::parse(token).is_some();
            assert!(ok, "unexpected token {token:?} in {:?}", gap.evidence);
        }
    }
}

#[test]
fn slot_fill_prefers_a_due_client_to_one_long_gone_with_the_same_habits() {
    let mut story = Story::new();
    for (who, last) in [("gone", SLOT_DAY - 8 * 270 + 4), ("due", SLOT_DAY - 350)] {
        // Both on Tuesdays at 10 with ines (days -48 and -1854 are Tuesdays, like day 1).
        story.then(
            event(EventKind::AppointmentCompleted, who, at(last, 11))
                .category(ServiceCategory::Filler)
                .cycle(270)
                .with("ines")
                .starts(at(last, 10)),
        );
    }
    let ranked = story.engine.slot_fill_candidates(&cancellation().with("ines").starts(at(SLOT_DAY, 10)), &day(300), 5);
    let order: Vec<ClientPseudonym> = ranked.iter().map(|g| g.client.clone()).collect();
    assert_eq!(order, ["due", "gone"].map(client));
    assert_eq!(ranked[0].score, 1.0);
    assert!(ranked[1].score < 0.75, "{}", ranked[1].score);
}
