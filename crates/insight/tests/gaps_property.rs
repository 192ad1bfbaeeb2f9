//! Property: gaps maintained incrementally — events arriving shuffled, duplicated, with queries in
//! between — equal a full recompute from the deduplicated, time-ordered events, and equal a full
//! scan of the engine's own state, for every gap kind.
//!
//! Streams come from a small deterministic generator (SplitMix64, fixed seeds): no dependency, the
//! same streams on every run. A failure prints the seed of the stream.

use std::collections::BTreeMap;

use lacuna_insight::gaps::DAY_SECS;
use lacuna_insight::{
    AppointmentRef, ClientPseudonym, Days, EventId, EventKind, Gap, GapEngine, GapKind, InsightEvent,
    MembershipPseudonym, PriceBand, ProviderPseudonym, ServiceCategory, Timestamp,
};

/// Streams generated.
const STREAMS: u64 = 2_000;
/// 2024-01-01T00:00:00Z.
const BASE: i64 = 1_704_067_200;

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `prefix` + 26 base32 characters encoding `n`.
fn id(prefix: &str, n: u64) -> String {
    let tail: String = (0..26).map(|i| ALPHABET[((n >> (5 * (i % 12))) & 31) as usize] as char).collect();
    format!("{prefix}{tail}")
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix_seconds(BASE + secs).expect("in range")
}

/// Builds the events of one random stream, in time order (before shuffling).
struct Generator {
    rng: Rng,
    events: Vec<InsightEvent>,
    next_event: u64,
    clients: Vec<ClientPseudonym>,
    providers: Vec<ProviderPseudonym>,
    /// Dense streams crowd appointments into a few weeks and hours, so slots are booked, freed and
    /// rebooked over and over.
    dense: bool,
}

/// The categories in play, with the cycles producers send for them (0 = none).
const CATEGORIES: [(ServiceCategory, &[u64]); 4] = [
    (ServiceCategory::Filler, &[270, 180]),
    (ServiceCategory::Neurotoxin, &[90]),
    (ServiceCategory::Facial, &[30, 42]),
    (ServiceCategory::Massage, &[0]),
];

impl Generator {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let clients = (0..rng.range(2, 8)).map(|i| ClientPseudonym::parse(&id("p_", seed * 16 + i as u64)));
        let clients = clients.collect::<Option<_>>().expect("client pseudonyms");
        let providers = (0..rng.range(1, 3)).map(|i| ProviderPseudonym::parse(&id("pv_", i as u64 + 7)));
        let providers = providers.collect::<Option<_>>().expect("provider pseudonyms");
        Self { rng, events: Vec::new(), next_event: seed << 20, clients, providers, dense: seed.is_multiple_of(4) }
    }

    fn event(&mut self, kind: EventKind, client: &ClientPseudonym, at: i64) -> InsightEvent {
        self.next_event += 1;
        InsightEvent {
            event_id: EventId::parse(&id("ev_", self.next_event)).expect("event id"),
            kind,
            client: client.clone(),
            provider: None,
            service_category: None,
            cycle_days: None,
            follow_up_days: None,
            price_band: None,
            location_id: None,
            occurred_at: ts(at),
            starts_at: None,
            ends_at: None,
            membership_id: None,
            appointment_ref: None,
        }
    }

    fn band(&mut self) -> Option<PriceBand> {
        if self.rng.chance(15) { None } else { Some(*self.rng.pick(PriceBand::ALL)) }
    }

    fn appointment(&mut self, n: u64) {
        let client = self.rng.pick(&self.clients).clone();
        let (category, cycles) = if self.dense { CATEGORIES[0] } else { *self.rng.pick(&CATEGORIES) };
        let cycle = *self.rng.pick(cycles);
        // Few days, hours and providers, so that slots collide now and then (often when dense).
        let starts = if self.dense {
            self.rng.range(330, 350) * DAY_SECS + self.rng.range(10, 11) * 3_600
        } else {
            self.rng.range(0, 400) * DAY_SECS + self.rng.range(9, 17) * 3_600
        };
        let provider = if self.rng.chance(90) { Some(self.rng.pick(&self.providers).clone()) } else { None };
        let band = self.band();
        let reference = if self.rng.chance(70) { AppointmentRef::parse(&id("a_", n)) } else { None };
        let describe = |mut e: InsightEvent, full: bool| {
            e.service_category = Some(category);
            e.appointment_ref = reference.clone();
            if full || reference.is_none() {
                e.starts_at = Some(ts(starts));
                e.provider = provider.clone();
                e.price_band = band;
                e.cycle_days = Days::new(cycle).filter(|_| cycle > 0);
            }
            e
        };
        // A walk-in: completed without a booking, sometimes without a start.
        if self.rng.chance(15) {
            let mut e = describe(self.event(EventKind::AppointmentCompleted, &client, starts + 3_600), true);
            if self.rng.chance(40) {
                e.starts_at = None;
                e.appointment_ref = None;
            }
            e.follow_up_days = Days::new(*self.rng.pick(&[0, 0, 7, 14]));
            self.events.push(e);
            return;
        }
        let booked_at = starts - self.rng.range(1, 40) * DAY_SECS;
        if self.dense && self.rng.chance(50) {
            // History, so that there are clients due for the crowded slots.
            let mut e = describe(self.event(EventKind::AppointmentCompleted, &client, starts - 300 * DAY_SECS), true);
            e.starts_at = Some(ts(starts - 300 * DAY_SECS - 3_600));
            e.appointment_ref = None;
            self.events.push(e);
        }
        let booking = describe(self.event(EventKind::AppointmentBooked, &client, booked_at), true);
        self.events.push(booking);
        let mut starts = starts;
        if reference.is_some() && self.rng.chance(10) {
            // Rescheduled: a second booking of the same appointment.
            starts += self.rng.range(-5, 20) * DAY_SECS;
            let mut again = describe(self.event(EventKind::AppointmentBooked, &client, booked_at + DAY_SECS), true);
            again.starts_at = Some(ts(starts));
            self.events.push(again);
        }
        let full = self.rng.chance(50);
        match self.rng.below(10) {
            0..=5 => {
                let mut e = describe(self.event(EventKind::AppointmentCompleted, &client, starts + 3_600), full);
                if reference.is_none() {
                    e.starts_at = Some(ts(starts));
                }
                e.follow_up_days = Days::new(*self.rng.pick(&[0, 0, 7, 14, 30]));
                self.events.push(e);
            }
            6 | 7 => {
                // Mostly ahead of the slot, sometimes too late to free it.
                let at = starts - self.rng.range(-1, 20) * DAY_SECS - self.rng.range(0, 3_600);
                let mut e = describe(self.event(EventKind::AppointmentCancelled, &client, at.max(booked_at)), full);
                if reference.is_none() {
                    e.starts_at = Some(ts(starts));
                }
                self.events.push(e);
            }
            8 => {
                let mut e = describe(self.event(EventKind::AppointmentNoShow, &client, starts + 1_800), full);
                if reference.is_none() {
                    e.starts_at = Some(ts(starts));
                }
                self.events.push(e);
            }
            _ => {} // Still open.
        }
    }

    fn membership(&mut self, n: u64) {
        let client = self.rng.pick(&self.clients).clone();
        let membership = MembershipPseudonym::parse(&id("m_", n)).expect("membership id");
        let band = self.band();
        let category = if self.rng.chance(50) { Some(self.rng.pick(&CATEGORIES).0) } else { None };
        let mut at = self.rng.range(0, 300) * DAY_SECS + self.rng.range(0, DAY_SECS - 1);
        let push = |g: &mut Self, kind: EventKind, at: i64, band: Option<PriceBand>| {
            let mut e = g.event(kind, &client, at);
            e.membership_id = Some(membership.clone());
            e.price_band = band;
            e.service_category = category.filter(|_| kind != EventKind::MembershipRedeemed);
            g.events.push(e);
        };
        if self.rng.chance(90) {
            push(self, EventKind::MembershipStarted, at, band);
        }
        for _ in 0..self.rng.below(6) {
            at += self.rng.range(1, 40) * DAY_SECS;
            let kind = *self.rng.pick(&[
                EventKind::MembershipRenewed,
                EventKind::MembershipRedeemed,
                EventKind::MembershipRedeemed,
                EventKind::MembershipRedeemed,
            ]);
            let band = if kind == EventKind::MembershipRenewed && self.rng.chance(50) { band } else { self.band() };
            push(self, kind, at, band);
        }
        if self.rng.chance(25) {
            let kind = *self.rng.pick(&[EventKind::MembershipCancelled, EventKind::MembershipExpired]);
            let end = at + self.rng.range(0, 60) * DAY_SECS;
            push(self, kind, end, None);
        }
    }

    /// A query time: anywhere in the stream, or in the crowded weeks of a dense stream.
    fn now(rng: &mut Rng, dense: bool) -> Timestamp {
        let days = if dense { rng.range(320, 351) } else { rng.range(-10, 450) };
        ts(days * DAY_SECS + rng.range(0, DAY_SECS - 1))
    }

    fn stream(mut self) -> (Vec<InsightEvent>, Rng) {
        let appointments = self.rng.range(5, 60) as u64;
        for n in 0..appointments {
            self.appointment(n);
        }
        for n in 0..self.rng.below(4) {
            self.membership(n);
        }
        if self.dense {
            // Clients waiting for a slot: due for filler, nothing booked.
            for n in 0..self.rng.range(1, 4) as u64 {
                let client = ClientPseudonym::parse(&id("p_", (self.next_event << 8) + n)).expect("client pseudonym");
                let at = self.rng.range(20, 60) * DAY_SECS + self.rng.range(9, 17) * 3_600;
                let mut e = self.event(EventKind::AppointmentCompleted, &client, at);
                e.service_category = Some(ServiceCategory::Filler);
                e.cycle_days = Days::new(270);
                e.provider = Some(self.rng.pick(&self.providers).clone());
                e.starts_at = Some(ts(at - 3_600));
                self.events.push(e);
            }
        }
        (self.events, self.rng)
    }
}

fn check(
    engine: &GapEngine,
    arrived: &[InsightEvent],
    now: &Timestamp,
    seed: u64,
    seen: &mut BTreeMap<GapKind, usize>,
) {
    let incremental = engine.gaps(now);
    let scanned = engine.gaps_by_scan(now);
    let recomputed = GapEngine::recompute(arrived, now);
    assert_eq!(incremental, scanned, "seed {seed}: indexed gaps differ from a scan of the same engine at {now:?}");
    assert_eq!(incremental, recomputed, "seed {seed}: incremental gaps differ from a full recompute at {now:?}");
    for gap in &incremental {
        *seen.entry(gap.kind).or_default() += 1;
        check_gap(gap, seed);
    }
}

fn check_gap(gap: &Gap, seed: u64) {
    assert!((0.0..=1.0).contains(&gap.score), "seed {seed}: score {} out of range", gap.score);
    assert!(gap.revenue_at_stake_minor >= 0, "seed {seed}");
    assert!(gap.evidence.starts_with(gap.client.as_str()), "seed {seed}: {}", gap.evidence);
    assert_eq!(gap.slot.is_some(), gap.kind == GapKind::SlotFill, "seed {seed}");
    assert_eq!(gap.membership.is_some(), gap.kind == GapKind::LapsingMember, "seed {seed}");
}

#[test]
fn incremental_gaps_equal_a_full_recompute_for_random_streams() {
    let mut seen: BTreeMap<GapKind, usize> = BTreeMap::new();
    let mut total_events = 0;
    for seed in 1..=STREAMS {
        let generator = Generator::new(seed);
        let dense = generator.dense;
        let (mut events, mut rng) = generator.stream();
        // Duplicates (redelivery), then an arbitrary arrival order.
        let duplicates: Vec<InsightEvent> = events.iter().filter(|_| rng.chance(5)).cloned().collect();
        events.extend(duplicates);
        for i in (1..events.len()).rev() {
            events.swap(i, rng.below(i as u64 + 1) as usize);
        }
        total_events += events.len();

        let mut engine = GapEngine::new();
        let checkpoints = [events.len() / 3, 2 * events.len() / 3, events.len()];
        let mut applied = 0;
        for end in checkpoints {
            if applied == 0 && seed % 2 == 0 {
                // Half the streams start from a bulk load (indexes built once at the end), then
                // go on incrementally: the indexes it leaves must be the ones `apply` keeps.
                engine = GapEngine::from_events(&events[..end]);
            } else {
                for event in &events[applied..end] {
                    engine.apply(event);
                }
            }
            applied = end;
            for _ in 0..3 {
                let now = Generator::now(&mut rng, dense);
                check(&engine, &events[..applied], &now, seed, &mut seen);
            }
        }
        // Re-applying everything changes nothing.
        let before = engine.stats();
        assert!(events.iter().all(|e| !engine.apply(e)), "seed {seed}: a duplicate was applied");
        assert_eq!(engine.stats(), before, "seed {seed}");
    }
    println!("{STREAMS} streams, {total_events} events; gaps seen per kind: {seen:?}");
    for kind in GapKind::ALL {
        let n = seen.get(&kind).copied().unwrap_or(0);
        assert!(n >= 200, "the generator must exercise {kind:?}: only {n} gaps");
    }
}

#[test]
fn any_arrival_order_gives_the_same_gaps() {
    for seed in 1..=200 {
        let (events, mut rng) = Generator::new(seed).stream();
        let now = Generator::now(&mut rng, seed.is_multiple_of(4));
        let in_order = GapEngine::from_events(&events).gaps(&now);
        let reversed = GapEngine::from_events(events.iter().rev()).gaps(&now);
        assert_eq!(in_order, reversed, "seed {seed}");
        assert_eq!(in_order, GapEngine::recompute(&events, &now), "seed {seed}");
    }
}

/// A busy practice: many clients with a favourite provider, weekday and hour, and many upcoming
/// bookings of which a good share is cancelled — so that there are many freed slots, each with
/// many clients to rank, and `gaps` skips most of them by their score bounds. The skipping must
/// never change the result: indexed gaps equal a full scan (which scores every client for every
/// slot) and a full recompute.
#[test]
fn many_cancellations_give_the_same_slot_fills_as_a_full_scan() {
    let mut slot_fills = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed * 7_919);
        let providers: Vec<ProviderPseudonym> = (0..rng.range(2, 6))
            .map(|i| ProviderPseudonym::parse(&id("pv_", seed * 100 + i as u64)))
            .collect::<Option<_>>()
            .expect("providers");
        let mut events = Vec::new();
        let mut next = seed << 24;
        let mut event = |kind: EventKind, client: &ClientPseudonym, at: i64| {
            next += 1;
            InsightEvent {
                event_id: EventId::parse(&id("ev_", next)).expect("event id"),
                kind,
                client: client.clone(),
                provider: None,
                service_category: None,
                cycle_days: None,
                follow_up_days: None,
                price_band: Some(PriceBand::From250),
                location_id: None,
                occurred_at: ts(at),
                starts_at: None,
                ends_at: None,
                membership_id: None,
                appointment_ref: None,
            }
        };
        let today = 400 * DAY_SECS;
        let mut reference = seed << 24;
        for c in 0..rng.range(60, 200) as u64 {
            let client = ClientPseudonym::parse(&id("p_", seed * 1_000 + c)).expect("client");
            let (category, cycles) = *rng.pick(&CATEGORIES[..3]);
            let cycle = *rng.pick(cycles);
            let provider = rng.pick(&providers).clone();
            let hour = rng.range(9, 17);
            let mut day = rng.range(0, 350);
            for _ in 0..rng.range(1, 6) {
                if day >= 400 {
                    break;
                }
                // Mostly the favourite provider and hour, sometimes not.
                let with = if rng.chance(80) { provider.clone() } else { rng.pick(&providers).clone() };
                let h = if rng.chance(70) { hour } else { rng.range(9, 17) };
                let starts = day * DAY_SECS + h * 3_600;
                let mut e = event(EventKind::AppointmentCompleted, &client, starts + 3_600);
                e.service_category = Some(category);
                e.cycle_days = Days::new(cycle).filter(|_| rng.chance(90));
                e.provider = Some(with);
                e.starts_at = Some(ts(starts));
                events.push(e);
                day += (cycle as i64).max(20) + rng.range(-10, 30);
            }
            // Upcoming bookings in the next three weeks, two in five cancelled already.
            for _ in 0..rng.range(0, 3) {
                reference += 1;
                let starts = today + rng.range(1, 21) * DAY_SECS + rng.range(9, 17) * 3_600;
                let mut booked = event(EventKind::AppointmentBooked, &client, today - rng.range(1, 30) * DAY_SECS);
                booked.service_category = Some(if rng.chance(80) { category } else { rng.pick(&CATEGORIES).0 });
                booked.provider = Some(rng.pick(&providers).clone());
                booked.starts_at = Some(ts(starts));
                booked.cycle_days = Days::new(cycle).filter(|c| c.get() > 0);
                booked.appointment_ref = AppointmentRef::parse(&id("a_", reference));
                if rng.chance(40) {
                    let mut cancelled = booked.clone();
                    cancelled.event_id = EventId::parse(&id("ev_", (seed << 40) + reference)).expect("event id");
                    cancelled.kind = EventKind::AppointmentCancelled;
                    cancelled.occurred_at = ts(today - rng.range(0, 5) * DAY_SECS);
                    events.push(cancelled);
                }
                events.push(booked);
            }
        }
        for i in (1..events.len()).rev() {
            events.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let engine = GapEngine::from_events(&events);
        for offset in [0, 3_600 * 5, DAY_SECS * 3] {
            let now = ts(today + offset);
            let incremental = engine.gaps(&now);
            assert_eq!(
                incremental,
                engine.gaps_by_scan(&now),
                "seed {seed}: indexed slot fills differ from a full scan"
            );
            assert_eq!(incremental, GapEngine::recompute(&events, &now), "seed {seed}: differ from a recompute");
            slot_fills += incremental.iter().filter(|g| g.kind == GapKind::SlotFill).count();
        }
    }
    assert!(slot_fills >= 2_000, "the streams must free many slots: {slot_fills} slot fills");
}

/// Enough clients due for a rebook that `gaps` builds and sorts them on two threads (from 4,096
/// rebook gaps on): the two sorted parts, merged, must be exactly the one-thread result, which is
/// what a full scan and a full recompute give.
#[test]
fn many_gaps_built_on_two_threads_equal_a_full_scan() {
    let mut events = Vec::new();
    for seed in 1..=3_000 {
        events.extend(Generator::new(seed).stream().0);
    }
    let now = ts(430 * DAY_SECS);
    let bulk = GapEngine::from_events(&events);
    let gaps = bulk.gaps(&now);
    let rebook = gaps.iter().filter(|g| g.kind == GapKind::RebookDue).count();
    let others = gaps.len() - rebook;
    assert!(rebook >= 4_096, "only {rebook} rebook gaps: the two-thread path is not exercised");
    println!("{rebook} rebook gaps, {others} others");
    assert!(gaps.iter().any(|g| g.kind != GapKind::RebookDue), "only rebook gaps");
    assert_eq!(gaps, bulk.gaps_by_scan(&now), "indexed gaps differ from a scan");
    assert_eq!(gaps, GapEngine::recompute(&events, &now), "indexed gaps differ from a recompute");
    let mut one_by_one = GapEngine::new();
    for e in &events {
        one_by_one.apply(e);
    }
    assert_eq!(gaps, one_by_one.gaps(&now), "a bulk load and one event at a time differ");
}
