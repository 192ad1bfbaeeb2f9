//! [`GapEngine`]: per-tenant state, its incremental update, and the two ways to read gaps out of
//! it (indexed and full scan).
//!
//! Every piece of state is a commutative, idempotent summary of the events seen — sums and counts
//! over deduplicated events, maxima and minima of times, and "latest by (`occurred_at`, event id)"
//! values — so the order in which events arrive does not matter. From that state each record
//! derives a *window*: the instant from which (and, for follow-ups, until which) its gap is open.
//! [`GapEngine::apply`] recomputes the windows of the few records an event touches and moves their
//! entries in ordered indexes; [`GapEngine::gaps`] reads the indexes up to `now`;
//! [`GapEngine::gaps_by_scan`] recomputes every window from the state instead.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::rules::{self, SlotFit, SlotWords};
use super::text::{hour, weekday};
use super::{DAY_SECS, Gap, GapKind, GapSlot, LAPSE_DAYS, NEARLY_DUE_RATIO, SLOT_FILL_PER_SLOT};
use super::{band_midpoint_minor, rebook_grace_secs};
use crate::event::{
    AppointmentRef, ClientPseudonym, Days, EventId, EventKind, InsightEvent, MembershipPseudonym, PriceBand,
    ProviderPseudonym, ServiceCategory, Timestamp,
};

/// Hash maps of the engine: foldhash, seeded per process (several times faster than SipHash on
/// the short keys here; the keys are keyed HMACs, ids minted on the Practice side, and UUID
/// event ids as their 128 bits).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The event ids applied so far. A UUID id (the Practice side's form) is kept as its 128 bits
/// ([`EventId::uuid_bits`]): a smaller, cheaper key than its 36 characters in the engine's
/// largest table. Any other id is kept as sent.
#[derive(Debug, Default)]
struct Seen {
    uuids: FastSet<u128>,
    other: FastSet<EventId>,
}

impl Seen {
    /// `true` if `id` was not seen before (and is now).
    fn insert(&mut self, id: &EventId) -> bool {
        match id.uuid_bits() {
            Some(bits) => self.uuids.insert(bits),
            None => self.other.insert(id.clone()),
        }
    }

    fn len(&self) -> usize {
        self.uuids.len() + self.other.len()
    }
}

/// Events per chunk of a bulk load ([`GapEngine::from_chunks`]).
pub const LOAD_CHUNK: usize = 1 << 14;

/// From this many rebook-due gaps on, [`GapEngine::gaps`] builds and sorts the gaps on two threads.
const PARALLEL_GAPS: usize = 4096;

/// From this many open freed slots on, [`GapEngine::gaps`] ranks them on two threads.
const PARALLEL_SLOTS: usize = 64;

/// Number of service categories.
const CATEGORIES: usize = ServiceCategory::ALL.len();

fn category(index: u8) -> ServiceCategory {
    ServiceCategory::ALL.get(usize::from(index)).copied().unwrap_or(ServiceCategory::Other)
}

fn category_index(category: ServiceCategory) -> u8 {
    category as u8
}

/// The number of `key` in `index`; a new key gets the next number (the count of keys so far),
/// and `true`. One probe, whether the key is known or new.
fn number<K: Eq + std::hash::Hash>(index: &mut FastMap<K, u32>, key: K) -> (u32, bool) {
    let next = u32::try_from(index.len()).unwrap_or(u32::MAX);
    let number = *index.entry(key).or_insert(next);
    (number, number == next)
}

/// 64-bit FNV-1a: a stable tie-breaker between events of the same second.
fn fingerprint(id: &EventId) -> u64 {
    id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The order of two events touching the same record: `occurred_at`, then the id's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: i64,
    tie: u64,
}

impl Key {
    fn of(event: &InsightEvent) -> Self {
        Self { at: event.occurred_at.unix_seconds(), tie: fingerprint(&event.event_id) }
    }
}

/// A value set by the latest event (by [`Key`]) that carried one.
#[derive(Debug, Clone)]
struct Latest<T> {
    key: Key,
    value: T,
}

fn keep_latest<T>(slot: &mut Option<Latest<T>>, key: Key, value: T) {
    if slot.as_ref().is_none_or(|l| key > l.key) {
        *slot = Some(Latest { key, value });
    }
}

fn max_opt(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.max(b)))
}

fn min_opt(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// A completed visit: the latest one per category.
#[derive(Debug, Clone)]
struct Treatment {
    follow_up_days: u16,
    band: Option<PriceBand>,
}

/// One client's history in one service category.
#[derive(Debug)]
struct CategoryState {
    category: u8,
    treatments: u32,
    last: Option<Latest<Treatment>>,
    cycle_days: Option<Latest<u16>>,
    band: Option<Latest<PriceBand>>,
    /// Start times of open bookings (booked, not yet closed) in this category.
    open_starts: Vec<i64>,
    /// The rebook window as currently indexed.
    rebook_from: Option<i64>,
    /// The follow-up window `[from, until)` as currently indexed.
    follow_up: Option<(i64, i64)>,
}

impl CategoryState {
    fn new(category: u8) -> Self {
        Self {
            category,
            treatments: 0,
            last: None,
            cycle_days: None,
            band: None,
            open_starts: Vec::new(),
            rebook_from: None,
            follow_up: None,
        }
    }

    fn latest_open_start(&self) -> Option<i64> {
        self.open_starts.iter().copied().max()
    }

    fn has_upcoming(&self, now: i64) -> bool {
        self.latest_open_start().is_some_and(|s| s >= now)
    }

    /// Rebook due from this instant on: after `last + cycle + grace`, and after the latest open
    /// booking's start (a booking starting at or after `now` is upcoming).
    fn rebook_window(&self) -> Option<i64> {
        let last = self.last.as_ref()?.key.at;
        let cycle = self.cycle_days.as_ref()?.value;
        let due = last + i64::from(cycle) * DAY_SECS + rebook_grace_secs(cycle);
        Some(self.latest_open_start().map_or(due, |s| s.max(due)) + 1)
    }

    /// Follow-up due over `[treatment, treatment + 2 × window)`.
    fn follow_up_window(&self) -> Option<(i64, i64)> {
        let last = self.last.as_ref()?;
        let window = i64::from(last.value.follow_up_days) * DAY_SECS;
        (window > 0).then_some((last.key.at, last.key.at + 2 * window))
    }
}

/// One client: per-category history, visit preferences, memberships.
#[derive(Debug)]
struct ClientState {
    id: ClientPseudonym,
    categories: Vec<CategoryState>,
    last_treatment: Option<i64>,
    visits: u32,
    /// (provider, treatments with them).
    providers: Vec<(u32, u32)>,
    weekdays: [u32; 7],
    hours: [u32; 24],
    memberships: Vec<u32>,
}

impl ClientState {
    fn new(id: ClientPseudonym) -> Self {
        Self {
            id,
            categories: Vec::new(),
            last_treatment: None,
            visits: 0,
            providers: Vec::new(),
            weekdays: [0; 7],
            hours: [0; 24],
            memberships: Vec::new(),
        }
    }

    fn category(&self, category: u8) -> Option<&CategoryState> {
        self.categories.iter().find(|c| c.category == category)
    }

    fn category_mut(&mut self, category: u8) -> &mut CategoryState {
        let at = match self.categories.iter().position(|c| c.category == category) {
            Some(at) => at,
            None => {
                self.categories.push(CategoryState::new(category));
                self.categories.len() - 1
            }
        };
        &mut self.categories[at]
    }

    fn visits_with(&self, provider: u32) -> u32 {
        self.providers.iter().find(|(p, _)| *p == provider).map_or(0, |(_, n)| *n)
    }
}

/// What an appointment event says about the slot.
#[derive(Debug, Clone)]
struct SlotInfo {
    category: u8,
    starts: Option<i64>,
    provider: Option<u32>,
    band: Option<PriceBand>,
    cycle_days: Option<u16>,
}

/// A completed visit (a treatment) as counted in its client's state.
#[derive(Debug, Clone)]
struct Visit {
    client: u32,
    key: Key,
    info: SlotInfo,
    follow_up_days: u16,
}

/// A booking's end: completed, cancelled or no-show.
#[derive(Debug, Clone)]
struct Closure {
    kind: EventKind,
    info: SlotInfo,
}

/// How events of one appointment find each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AppointmentKey {
    /// By `appointment_ref`.
    Ref(AppointmentRef),
    /// Without a ref: by client, category and start.
    Slot(u32, u8, i64),
}

/// One appointment: its latest booking and its latest closing event. What is derived from them
/// and registered in the indexes is kept apart, in [`Registered`]: a bulk load touches only this
/// (and the smaller the record, the fewer cache lines each event of a million appointments misses).
#[derive(Debug)]
struct Appointment {
    /// The client of the first event seen for it.
    client: u32,
    booking: Option<Latest<SlotInfo>>,
    closure: Option<Latest<Closure>>,
}

/// What one appointment has registered in the engine's indexes (none of it during a deferred
/// load; [`GapEngine::reindex`] fills it in).
#[derive(Debug, Clone, Copy, Default)]
struct Registered {
    /// (category, start) as registered in the client's open bookings.
    open: Option<(u8, i64)>,
    /// (provider, start) as registered in the engine's held slots.
    holds: Option<(u32, i64)>,
    /// Start of the freed slot as registered in the slot index.
    slot: Option<i64>,
}

impl Appointment {
    fn open_booking(&self) -> Option<&SlotInfo> {
        if self.closure.is_some() { None } else { self.booking.as_ref().map(|b| &b.value) }
    }

    fn derived_open(&self) -> Option<(u8, i64)> {
        let booking = self.open_booking()?;
        Some((booking.category, booking.starts?))
    }

    fn derived_holds(&self) -> Option<(u32, i64)> {
        let booking = self.open_booking()?;
        Some((booking.provider?, booking.starts?))
    }

    /// What this appointment's state says it should have registered in the indexes.
    fn derived_registered(&self, providers: &[ProviderPseudonym]) -> Registered {
        Registered {
            open: self.derived_open(),
            holds: self.derived_holds(),
            slot: self.slot_view(providers).map(|s| s.starts),
        }
    }

    /// The slot a cancellation freed: the cancel event's fields, else the booking's; only when
    /// the slot starts after the cancellation.
    fn slot_view<'a>(&'a self, providers: &'a [ProviderPseudonym]) -> Option<SlotView<'a>> {
        let closure = self.closure.as_ref()?;
        if closure.value.kind != EventKind::AppointmentCancelled {
            return None;
        }
        let cancel = &closure.value.info;
        let booking = self.booking.as_ref().map(|b| &b.value);
        let starts = cancel.starts.or(booking.and_then(|b| b.starts))?;
        if starts <= closure.key.at {
            return None;
        }
        let provider = cancel.provider.or(booking.and_then(|b| b.provider));
        Some(SlotView {
            category: cancel.category,
            starts,
            provider,
            provider_id: provider.and_then(|p| providers.get(p as usize)),
            band: cancel.band.or(booking.and_then(|b| b.band)),
            cycle_days: cancel.cycle_days.or(booking.and_then(|b| b.cycle_days)),
            excluded: vec![self.client],
            cancelled_at: closure.key.at,
        })
    }
}

/// A freed slot, as the ranking sees it.
#[derive(Debug, Clone)]
struct SlotView<'a> {
    category: u8,
    starts: i64,
    provider: Option<u32>,
    provider_id: Option<&'a ProviderPseudonym>,
    band: Option<PriceBand>,
    cycle_days: Option<u16>,
    /// The clients who cancelled this slot: never proposed for it.
    excluded: Vec<u32>,
    cancelled_at: i64,
}

/// A membership or package.
#[derive(Debug)]
struct Membership {
    id: MembershipPseudonym,
    /// The client of the first event seen for it.
    client: u32,
    /// Active after `started` / `renewed`, inactive after `cancelled` / `expired`: the latest wins.
    active: Option<Latest<bool>>,
    last_started: Option<i64>,
    first_renewed: Option<i64>,
    last_redeemed: Option<i64>,
    paid_minor: i64,
    paid_unbanded: u32,
    redeemed_minor: i64,
    redeemed_unbanded: u32,
    band: Option<Latest<PriceBand>>,
    category: Option<Latest<ServiceCategory>>,
    /// The lapse window as currently indexed.
    lapse_from: Option<i64>,
}

impl Membership {
    fn new(id: MembershipPseudonym, client: u32) -> Self {
        Self {
            id,
            client,
            active: None,
            last_started: None,
            first_renewed: None,
            last_redeemed: None,
            paid_minor: 0,
            paid_unbanded: 0,
            redeemed_minor: 0,
            redeemed_unbanded: 0,
            band: None,
            category: None,
            lapse_from: None,
        }
    }

    /// Paid minus redeemed, band midpoints; events without a band count as the membership's band.
    fn unused_minor(&self) -> i64 {
        let own = self.band.as_ref().map_or(0, |b| band_midpoint_minor(b.value));
        let paid = self.paid_minor + i64::from(self.paid_unbanded) * own;
        let redeemed = self.redeemed_minor + i64::from(self.redeemed_unbanded) * own;
        (paid - redeemed).max(0)
    }

    /// The last sign of use: the client's last treatment, this membership's last redemption, or
    /// its start. `visited` tells whether it is a visit rather than the start.
    fn reference(&self, last_treatment: Option<i64>) -> Option<(i64, bool)> {
        let since = self.last_started.or(self.first_renewed)?;
        let visit = [last_treatment, self.last_redeemed].into_iter().flatten().max();
        Some(match visit {
            Some(v) if v >= since => (v, true),
            _ => (since, false),
        })
    }

    /// Lapsing from this instant on, while active with unused value.
    fn lapse_window(&self, last_treatment: Option<i64>) -> Option<i64> {
        let active = self.active.as_ref().is_some_and(|a| a.value);
        if !active || self.unused_minor() <= 0 {
            return None;
        }
        Some(self.reference(last_treatment)?.0 + LAPSE_DAYS * DAY_SECS)
    }
}

/// Runs `side` on another thread while `here` runs on this one, and returns both results. A
/// panic on either thread carries on in the caller, after the other has finished.
fn on_two_threads<A: Send, B>(side: impl FnOnce() -> A + Send, here: impl FnOnce() -> B) -> (A, B) {
    let (a, b) = std::thread::scope(|scope| {
        let side = scope.spawn(side);
        let b = here();
        (side.join(), b)
    });
    match a {
        Ok(a) => (a, b),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Two runs sorted by [`Gap::rank_cmp`] merged into one, stably: on ties, `first`'s gap first.
fn merge_sorted(first: Vec<Gap>, second: Vec<Gap>) -> Vec<Gap> {
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.into_iter().peekable(), second.into_iter().peekable());
    loop {
        let take_second = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => y.rank_cmp(x) == std::cmp::Ordering::Less,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => break,
        };
        out.extend(if take_second { b.next() } else { a.next() });
    }
    out
}

/// The parts of an engine a treatment (a completed visit) is counted in.
struct Treatments<'a> {
    clients: &'a mut Vec<ClientState>,
    provider_clients: &'a mut Vec<Vec<u32>>,
    treated: &'a mut [Vec<u32>; CATEGORIES],
}

impl Treatments<'_> {
    fn record(&mut self, visit: &Visit) {
        let Visit { client, key, ref info, follow_up_days } = *visit;
        let Some(state) = self.clients.get_mut(client as usize) else { return };
        let slot_time = info.starts.unwrap_or(key.at);
        state.visits += 1;
        state.last_treatment = max_opt(state.last_treatment, key.at);
        if let Some(provider) = info.provider {
            match state.providers.iter_mut().find(|(p, _)| *p == provider) {
                Some((_, n)) => *n += 1,
                None => {
                    state.providers.push((provider, 1));
                    if let Some(clients) = self.provider_clients.get_mut(provider as usize) {
                        clients.push(client);
                    }
                }
            }
        }
        state.weekdays[weekday(slot_time)] += 1;
        state.hours[hour(slot_time)] += 1;
        let cat = state.category_mut(info.category);
        let first = cat.treatments == 0;
        cat.treatments += 1;
        keep_latest(&mut cat.last, key, Treatment { follow_up_days, band: info.band });
        if let Some(cycle) = info.cycle_days {
            keep_latest(&mut cat.cycle_days, key, cycle);
        }
        if let Some(band) = info.band {
            keep_latest(&mut cat.band, key, band);
        }
        if first && let Some(treated) = self.treated.get_mut(usize::from(info.category)) {
            treated.push(client);
        }
    }
}

/// The visits of a bulk load grouped by client (a stable counting sort, O(visits)), so that each
/// client's state stays in cache while its visits are counted.
fn grouped_by_client(visits: Vec<Visit>, clients: usize) -> impl Iterator<Item = Visit> {
    let mut starts = vec![0usize; clients + 1];
    for visit in &visits {
        if let Some(n) = starts.get_mut(visit.client as usize + 1) {
            *n += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut grouped: Vec<Option<Visit>> = vec![None; visits.len()];
    for visit in visits {
        let Some(at) = starts.get_mut(visit.client as usize) else { continue };
        if let Some(slot) = grouped.get_mut(*at) {
            *slot = Some(visit);
            *at += 1;
        }
    }
    grouped.into_iter().flatten()
}

/// What the appointments register in the engine's indexes, derived from their state alone.
struct Registrations {
    /// Per appointment.
    registered: Vec<Registered>,
    /// Open bookings per (provider, start).
    held: FastMap<(u32, i64), u32>,
    /// (slot start, appointment) of the freed slots.
    slot_index: BTreeSet<(i64, u32)>,
}

fn registrations(appointments: &[Appointment], providers: &[ProviderPseudonym]) -> Registrations {
    let registered: Vec<Registered> = appointments.iter().map(|a| a.derived_registered(providers)).collect();
    let mut held: FastMap<(u32, i64), u32> = FastMap::default();
    let mut slots = Vec::new();
    for (index, r) in (0u32..).zip(&registered) {
        if let Some(holds) = r.holds {
            *held.entry(holds).or_default() += 1;
        }
        if let Some(starts) = r.slot {
            slots.push((starts, index));
        }
    }
    // `BTreeSet::from_iter` sorts once and builds the tree in one pass.
    Registrations { registered, held, slot_index: slots.into_iter().collect() }
}

/// Sizes of an engine, for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Distinct events applied.
    pub events: usize,
    /// Distinct clients.
    pub clients: usize,
    /// Distinct providers.
    pub providers: usize,
    /// Distinct appointments.
    pub appointments: usize,
    /// Distinct memberships.
    pub memberships: usize,
    /// Slots freed by a cancellation (past ones included).
    pub freed_slots: usize,
}

/// The gap engine of one tenant. See the [module documentation](super).
#[derive(Debug, Default)]
pub struct GapEngine {
    seen: Seen,
    client_index: FastMap<ClientPseudonym, u32>,
    clients: Vec<ClientState>,
    provider_index: FastMap<ProviderPseudonym, u32>,
    providers: Vec<ProviderPseudonym>,
    appointment_index: FastMap<AppointmentKey, u32>,
    appointments: Vec<Appointment>,
    /// Per appointment, what it has registered; as long as `appointments` except during a
    /// deferred load, when it is empty.
    registered: Vec<Registered>,
    membership_index: FastMap<MembershipPseudonym, u32>,
    memberships: Vec<Membership>,
    /// Per category, the clients with at least one treatment in it.
    treated: [Vec<u32>; CATEGORIES],
    /// Per provider, the clients with at least one treatment with them (any category).
    provider_clients: Vec<Vec<u32>>,
    /// Open bookings per (provider, start).
    held: FastMap<(u32, i64), u32>,
    /// (due from, client, category).
    rebook_index: BTreeSet<(i64, u32, u8)>,
    /// (due until, client, category); `from` is in the category state.
    follow_up_index: BTreeSet<(i64, u32, u8)>,
    /// (lapsing from, membership).
    lapse_index: BTreeSet<(i64, u32)>,
    /// (slot start, appointment).
    slot_index: BTreeSet<(i64, u32)>,
    /// While [`GapEngine::from_events`] loads: state only, no window derived and no index
    /// touched; [`GapEngine::reindex`] derives them all once at the end.
    deferred: bool,
}

impl GapEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with `events` applied (in any order): the same engine as applying them one at a
    /// time, built faster — the events only update the state, and every window and index is
    /// derived once at the end (sorted runs bulk-loaded into the ordered indexes) instead of being
    /// moved after each event.
    ///
    /// Events are deduplicated in the order given (the first of an `event_id` counts, as with
    /// `apply`) and applied in two passes: appointments and memberships in the order given, then
    /// the treatments (completed visits) grouped by client — a legal arrival order for them, and
    /// one that keeps each client's state in cache while its visits are counted.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a InsightEvent>) -> Self {
        let events: Vec<&InsightEvent> = events.into_iter().collect();
        Self::from_chunks(events.chunks(LOAD_CHUNK), events.len(), |_| {})
    }

    /// [`GapEngine::from_events`] over events that arrive in chunks — for instance from a reader
    /// that parses a file while the engine loads, so that no more than a few chunks of events
    /// exist at a time. Each chunk goes to `recycle` once applied (a reader can refill it), and
    /// `expected` (a guess of the number of events; 0 if unknown) sizes the tables up front.
    ///
    /// Two threads in a pipeline. One keeps the set of event ids and the client index: chunk by
    /// chunk it says which events are new and which client (by index, numbered in order of first
    /// appearance) each new one is about. The calling thread applies them. Both tables are
    /// looked up once per event, and the set is the largest table of all (each insert a cache
    /// and TLB miss), so they are worth a core of their own. `chunks` is consumed on that thread.
    pub fn from_chunks<C, E>(
        chunks: impl IntoIterator<Item = C, IntoIter: Send>,
        expected: usize,
        mut recycle: impl FnMut(C),
    ) -> Self
    where
        C: AsRef<[E]> + Send,
        E: std::borrow::Borrow<InsightEvent>,
    {
        /// Said of an event already seen.
        const STALE: u32 = u32::MAX;
        let mut engine = Self::new();
        // Most appointments have two events (booked, then an outcome).
        engine.appointment_index.reserve(expected / 2);
        engine.appointments.reserve(expected / 2);
        engine.deferred = true;
        let mut visits = Vec::with_capacity(expected / 2);
        let mut seen = std::mem::take(&mut engine.seen);
        seen.uuids.reserve(expected);
        let mut client_index = std::mem::take(&mut engine.client_index);
        let chunks = chunks.into_iter();
        let (send, receive) = std::sync::mpsc::sync_channel::<(C, Vec<u32>)>(4);
        let dedup = move || {
            for chunk in chunks {
                let clients = (chunk.as_ref().iter())
                    .map(|e| {
                        let e = e.borrow();
                        if !seen.insert(&e.event_id) {
                            return STALE;
                        }
                        number(&mut client_index, e.client.clone()).0
                    })
                    .collect();
                if send.send((chunk, clients)).is_err() {
                    break;
                }
            }
            (seen, client_index)
        };
        // The dedup thread only inserts into two tables; should it ever panic, so do we.
        ((engine.seen, engine.client_index), ()) = on_two_threads(dedup, || {
            // `receive` is moved in: dropped if this thread unwinds, so that the other one,
            // blocked on a full channel, ends and the scope can end too.
            let receive = receive;
            for (chunk, clients) in receive.iter() {
                for (event, client) in chunk.as_ref().iter().zip(clients).filter(|(_, c)| *c != STALE) {
                    let event = event.borrow();
                    // Numbered in the order this loop meets them: a new client is the next one.
                    if client as usize == engine.clients.len() {
                        engine.clients.push(ClientState::new(event.client.clone()));
                    }
                    engine.apply_fresh(client, event, Some(&mut visits));
                }
                recycle(chunk);
            }
        });
        // What is left runs on two threads, on disjoint parts of the engine: the treatments
        // (counted per client, into the clients' state) on this one, and on the other what the
        // appointments register (derived from the appointments alone; it only reads them). Then
        // the windows.
        let GapEngine { clients, providers, appointments, provider_clients, treated, .. } = &mut engine;
        let (registrations, ()) = on_two_threads(
            || registrations(appointments, providers),
            || {
                let mut treatments = Treatments { clients, provider_clients, treated };
                for visit in grouped_by_client(visits, treatments.clients.len()) {
                    treatments.record(&visit);
                }
            },
        );
        engine.reindex(registrations);
        engine
    }

    /// Derives every open booking, held slot, freed slot and window from the state and builds the
    /// indexes from them: the end of a deferred load. Every index and "as indexed" field is empty
    /// before (a deferred load touches none). `registrations` are the appointments' (see
    /// [`registrations`]).
    fn reindex(&mut self, registrations: Registrations) {
        self.deferred = false;
        let Registrations { registered, held, slot_index } = registrations;
        for (appointment, registered) in self.appointments.iter().zip(&registered) {
            if let Some((cat, starts)) = registered.open
                && let Some(state) = self.clients.get_mut(appointment.client as usize)
            {
                state.category_mut(cat).open_starts.push(starts);
            }
        }
        (self.registered, self.held, self.slot_index) = (registered, held, slot_index);
        let Self { clients, memberships, rebook_index, follow_up_index, lapse_index, .. } = self;
        let (mut rebook, mut follow_up) = (Vec::new(), Vec::new());
        for (client, state) in (0u32..).zip(clients.iter_mut()) {
            for cat in &mut state.categories {
                cat.rebook_from = cat.rebook_window();
                cat.follow_up = cat.follow_up_window();
                if let Some(from) = cat.rebook_from {
                    rebook.push((from, client, cat.category));
                }
                if let Some((_, until)) = cat.follow_up {
                    follow_up.push((until, client, cat.category));
                }
            }
        }
        let mut lapse = Vec::new();
        for (index, membership) in (0u32..).zip(memberships.iter_mut()) {
            let last_treatment = clients.get(membership.client as usize).and_then(|c| c.last_treatment);
            membership.lapse_from = membership.lapse_window(last_treatment);
            if let Some(from) = membership.lapse_from {
                lapse.push((from, index));
            }
        }
        // `BTreeSet::from_iter` sorts once and builds each tree in one pass.
        *rebook_index = rebook.into_iter().collect();
        *follow_up_index = follow_up.into_iter().collect();
        *lapse_index = lapse.into_iter().collect();
    }

    /// Builds the state from scratch — events deduplicated and applied in time order — and
    /// evaluates every detector by a full scan, without the incremental indexes. Always equal to
    /// [`GapEngine::gaps`] of an engine that received the same events in any order.
    pub fn recompute(events: &[InsightEvent], now: &Timestamp) -> Vec<Gap> {
        let mut ordered: Vec<(i64, &InsightEvent)> = events.iter().map(|e| (e.occurred_at.unix_seconds(), e)).collect();
        ordered.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.event_id.cmp(&y.event_id)));
        Self::from_events(ordered.into_iter().map(|(_, e)| e)).gaps_by_scan(now)
    }

    /// Applies one event. Returns `false` (and changes nothing) if its `event_id` was seen before.
    ///
    /// Cost: a few hash look-ups and ordered-index updates for the records the event touches (its
    /// client's category, appointment, memberships); independent of the size of the engine apart
    /// from logarithmic index operations.
    pub fn apply(&mut self, event: &InsightEvent) -> bool {
        if !self.seen.insert(&event.event_id) {
            return false;
        }
        let client = self.intern_client(&event.client);
        self.apply_fresh(client, event, None);
        true
    }

    /// Applies an event not seen before, of the client interned as `client`. A completed visit is
    /// counted at once, or, given `defer_visits` (a deferred load), set aside there.
    fn apply_fresh(&mut self, client: u32, event: &InsightEvent, defer_visits: Option<&mut Vec<Visit>>) {
        let key = Key::of(event);
        if event.kind.is_appointment() {
            self.apply_appointment(client, key, event, defer_visits);
        } else {
            self.apply_membership(client, key, event);
        }
    }

    /// Sizes of the engine.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            events: self.seen.len(),
            clients: self.clients.len(),
            providers: self.providers.len(),
            appointments: self.appointments.len(),
            memberships: self.memberships.len(),
            freed_slots: self.slot_index.len(),
        }
    }

    /// The gaps open at `now`, best first (see [`Gap::rank_cmp`]), read from the incremental
    /// indexes: cost proportional to the gaps returned (plus, per freed future slot, the clients
    /// treated in its category). `now` is expected to be at or after the events applied.
    pub fn gaps(&self, now: &Timestamp) -> Vec<Gap> {
        let now = now.unix_seconds();
        let rebook: Vec<(u32, u8)> =
            self.rebook_index.range(..=(now, u32::MAX, u8::MAX)).map(|&(_, client, cat)| (client, cat)).collect();
        let rebook_gaps = |part: &[(u32, u8)]| -> Vec<Gap> {
            part.iter().filter_map(|&(c, cat)| self.rebook_gap(c, cat, now)).collect()
        };
        // With many gaps, two threads, each building and sorting one part: the rebook gaps are
        // split so that the parts are about even (the second one takes the other detectors'). The
        // sorted parts are merged stably, first part first on ties: exactly the result of sorting
        // all of them in the one-thread order (rebook, follow-up, lapsing, slot fill).
        if rebook.len() >= PARALLEL_GAPS {
            let (first, second) = rebook.split_at(rebook.len() / 2 + rebook.len() / 8);
            let (theirs, mine) = on_two_threads(
                || {
                    let mut gaps = rebook_gaps(second);
                    self.other_gaps(now, &mut gaps);
                    gaps.sort_by(Gap::rank_cmp);
                    gaps
                },
                || {
                    let mut mine = rebook_gaps(first);
                    mine.sort_by(Gap::rank_cmp);
                    mine
                },
            );
            return merge_sorted(mine, theirs);
        }
        let mut gaps = rebook_gaps(&rebook);
        self.other_gaps(now, &mut gaps);
        gaps.sort_by(Gap::rank_cmp);
        gaps
    }

    /// The gaps besides rebook due, unsorted, appended to `gaps`: follow-up due, lapsing
    /// members, slot fill.
    fn other_gaps(&self, now: i64, gaps: &mut Vec<Gap>) {
        for &(_, client, cat) in self.follow_up_index.range((now + 1, 0, 0)..) {
            let state = self.clients.get(client as usize).and_then(|c| c.category(cat));
            if state.and_then(|s| s.follow_up).is_some_and(|(from, _)| from <= now) {
                gaps.extend(self.follow_up_gap(client, cat, now));
            }
        }
        for &(_, membership) in self.lapse_index.range(..=(now, u32::MAX)) {
            gaps.extend(self.lapsing_gap(membership, now));
        }
        let freed = self
            .slot_index
            .range((now + 1, 0)..)
            .filter_map(|&(_, a)| self.appointments.get(a as usize)?.slot_view(&self.providers))
            .filter(|slot| !slot.provider.is_some_and(|p| self.held.contains_key(&(p, slot.starts))));
        let slots = self.open_slots(freed, now);
        let mut pools: [Option<Vec<(f64, u32)>>; CATEGORIES] = Default::default();
        for slot in &slots {
            if let Some(pool) = pools.get_mut(usize::from(slot.category)) {
                pool.get_or_insert_with(|| self.slot_pool(slot.category, now));
            }
        }
        let rank = |part: &[SlotView<'_>]| -> Vec<Gap> {
            part.iter()
                .filter_map(|slot| Some((slot, pools.get(usize::from(slot.category))?.as_deref()?)))
                .flat_map(|(slot, pool)| self.rank_slot_pruned(slot, now, SLOT_FILL_PER_SLOT, pool))
                .collect()
        };
        // Slots rank independently: with many of them, on two threads (halves in order, so the
        // result is exactly the one-thread result).
        if slots.len() >= PARALLEL_SLOTS {
            let (first, second) = slots.split_at(slots.len() / 2);
            let (theirs, mine) = on_two_threads(|| rank(second), || rank(first));
            gaps.extend(mine);
            gaps.extend(theirs);
        } else {
            gaps.extend(rank(&slots));
        }
    }

    /// The same result as [`GapEngine::gaps`], computed by scanning every client, membership and
    /// appointment and re-deriving every window from the state (no index is read). The reference
    /// the indexes are checked against; O(size of the engine).
    pub fn gaps_by_scan(&self, now: &Timestamp) -> Vec<Gap> {
        let now = now.unix_seconds();
        let mut gaps = Vec::new();
        for (client, state) in (0u32..).zip(&self.clients) {
            for cat in &state.categories {
                if cat.rebook_window().is_some_and(|from| from <= now) {
                    gaps.extend(self.rebook_gap(client, cat.category, now));
                }
                if cat.follow_up_window().is_some_and(|(from, until)| from <= now && now < until) {
                    gaps.extend(self.follow_up_gap(client, cat.category, now));
                }
            }
        }
        for (index, membership) in (0u32..).zip(&self.memberships) {
            let last_treatment = self.clients.get(membership.client as usize).and_then(|c| c.last_treatment);
            if membership.lapse_window(last_treatment).is_some_and(|from| from <= now) {
                gaps.extend(self.lapsing_gap(index, now));
            }
        }
        let mut held: HashSet<(u32, i64)> = HashSet::new();
        held.extend(self.appointments.iter().filter_map(Appointment::derived_holds));
        let freed = self
            .appointments
            .iter()
            .filter_map(|a| a.slot_view(&self.providers))
            .filter(|slot| slot.starts > now && !slot.provider.is_some_and(|p| held.contains(&(p, slot.starts))));
        for slot in self.open_slots(freed, now) {
            let all = 0..u32::try_from(self.clients.len()).unwrap_or(u32::MAX);
            gaps.extend(self.rank_slot(&slot, now, SLOT_FILL_PER_SLOT, all));
        }
        gaps.sort_by(Gap::rank_cmp);
        gaps
    }

    /// The best `limit` clients for the slot an appointment event (normally a cancellation)
    /// describes, best first. Fields the event lacks (start, provider, band, cycle) are taken
    /// from the booking of the same appointment if the engine has it. Empty if the slot does not
    /// start after `now`. The event's client is never proposed; the event need not be applied,
    /// and whether the slot has been rebooked since is not checked (that is [`GapEngine::gaps`]'s
    /// job). Cost: one pass over the clients treated in the slot's category.
    pub fn slot_fill_candidates(&self, cancelled: &InsightEvent, now: &Timestamp, limit: usize) -> Vec<Gap> {
        let now = now.unix_seconds();
        let Some(category) = cancelled.service_category else { return Vec::new() };
        let cat = category_index(category);
        let client = self.client_index.get(&cancelled.client).copied();
        let starts = cancelled.starts_at.as_ref().map(Timestamp::unix_seconds);
        let key = match (&cancelled.appointment_ref, starts, client) {
            (Some(r), _, _) => Some(AppointmentKey::Ref(r.clone())),
            (None, Some(s), Some(c)) => Some(AppointmentKey::Slot(c, cat, s)),
            _ => None,
        };
        let booking = key
            .and_then(|k| self.appointment_index.get(&k))
            .and_then(|a| self.appointments.get(*a as usize))
            .and_then(|a| a.booking.as_ref())
            .map(|b| &b.value);
        let Some(starts) = starts.or(booking.and_then(|b| b.starts)) else {
            return Vec::new();
        };
        if starts <= now {
            return Vec::new();
        }
        let provider_id = cancelled
            .provider
            .as_ref()
            .or(booking.and_then(|b| b.provider).and_then(|p| self.providers.get(p as usize)));
        let slot = SlotView {
            category: cat,
            starts,
            provider: provider_id.and_then(|p| self.provider_index.get(p)).copied(),
            provider_id,
            band: cancelled.price_band.or(booking.and_then(|b| b.band)),
            cycle_days: cancelled.cycle_days.map(Days::get).filter(|d| *d > 0).or(booking.and_then(|b| b.cycle_days)),
            excluded: client.into_iter().collect(),
            cancelled_at: cancelled.occurred_at.unix_seconds(),
        };
        let treated = self.treated.get(usize::from(cat)).map_or(&[][..], Vec::as_slice);
        self.rank_slot(&slot, now, limit, treated.iter().copied())
    }

    // --- Applying events -------------------------------------------------------------------------

    fn intern_client(&mut self, id: &ClientPseudonym) -> u32 {
        let (index, new) = number(&mut self.client_index, id.clone());
        if new {
            self.clients.push(ClientState::new(id.clone()));
        }
        index
    }

    fn intern_provider(&mut self, id: &ProviderPseudonym) -> u32 {
        if let Some(index) = self.provider_index.get(id) {
            return *index;
        }
        let index = u32::try_from(self.providers.len()).unwrap_or(u32::MAX);
        self.providers.push(id.clone());
        self.provider_clients.push(Vec::new());
        self.provider_index.insert(id.clone(), index);
        index
    }

    fn intern_appointment(&mut self, key: AppointmentKey, client: u32) -> u32 {
        let (index, new) = number(&mut self.appointment_index, key);
        if new {
            self.appointments.push(Appointment { client, booking: None, closure: None });
            if !self.deferred {
                self.registered.push(Registered::default());
            }
        }
        index
    }

    fn intern_membership(&mut self, id: &MembershipPseudonym, client: u32) -> u32 {
        if let Some(index) = self.membership_index.get(id) {
            return *index;
        }
        let index = u32::try_from(self.memberships.len()).unwrap_or(u32::MAX);
        self.memberships.push(Membership::new(id.clone(), client));
        self.membership_index.insert(id.clone(), index);
        if let Some(c) = self.clients.get_mut(client as usize) {
            c.memberships.push(index);
        }
        index
    }

    fn apply_appointment(
        &mut self,
        client: u32,
        key: Key,
        event: &InsightEvent,
        defer_visits: Option<&mut Vec<Visit>>,
    ) {
        let Some(category) = event.service_category else { return };
        let cat = category_index(category);
        let info = SlotInfo {
            category: cat,
            starts: event.starts_at.as_ref().map(Timestamp::unix_seconds),
            provider: event.provider.as_ref().map(|p| self.intern_provider(p)),
            band: event.price_band,
            cycle_days: event.cycle_days.map(Days::get).filter(|d| *d > 0),
        };
        if event.kind == EventKind::AppointmentCompleted {
            let visit =
                Visit { client, key, info: info.clone(), follow_up_days: event.follow_up_days.map_or(0, Days::get) };
            match defer_visits {
                Some(later) => later.push(visit),
                None => self.record_treatment(&visit),
            }
        }
        let appointment_key = match (&event.appointment_ref, &info.starts) {
            (Some(r), _) => Some(AppointmentKey::Ref(r.clone())),
            (None, Some(starts)) => Some(AppointmentKey::Slot(client, cat, *starts)),
            (None, None) => None,
        };
        if let Some(appointment_key) = appointment_key {
            let index = self.intern_appointment(appointment_key, client);
            if let Some(appointment) = self.appointments.get_mut(index as usize) {
                if event.kind == EventKind::AppointmentBooked {
                    keep_latest(&mut appointment.booking, key, info);
                } else {
                    keep_latest(&mut appointment.closure, key, Closure { kind: event.kind, info });
                }
            }
            self.refresh_appointment(index);
        }
        if event.kind == EventKind::AppointmentCompleted {
            self.refresh_category(client, cat);
            self.refresh_client_memberships(client);
        }
    }

    fn record_treatment(&mut self, visit: &Visit) {
        let Self { clients, provider_clients, treated, .. } = self;
        Treatments { clients, provider_clients, treated }.record(visit);
    }

    /// Re-derives a client category's windows and moves its index entries.
    fn refresh_category(&mut self, client: u32, cat: u8) {
        if self.deferred {
            return;
        }
        let Some(state) = self.clients.get_mut(client as usize) else { return };
        let state = state.category_mut(cat);
        let rebook = state.rebook_window();
        if rebook != state.rebook_from {
            if let Some(old) = state.rebook_from {
                self.rebook_index.remove(&(old, client, cat));
            }
            if let Some(new) = rebook {
                self.rebook_index.insert((new, client, cat));
            }
            state.rebook_from = rebook;
        }
        let follow_up = state.follow_up_window();
        if follow_up != state.follow_up {
            if let Some((_, old)) = state.follow_up {
                self.follow_up_index.remove(&(old, client, cat));
            }
            if let Some((_, new)) = follow_up {
                self.follow_up_index.insert((new, client, cat));
            }
            state.follow_up = follow_up;
        }
    }

    /// Re-derives an appointment's open booking, held slot and freed slot, and moves them.
    fn refresh_appointment(&mut self, index: u32) {
        if self.deferred {
            return;
        }
        let Some(appointment) = self.appointments.get(index as usize) else { return };
        let now_registered = appointment.derived_registered(&self.providers);
        let Registered { open, holds, slot } = now_registered;
        let client = appointment.client;
        let Registered { open: old_open, holds: old_holds, slot: old_slot } =
            self.registered.get(index as usize).copied().unwrap_or_default();
        if open != old_open {
            if let Some((cat, starts)) = old_open
                && let Some(state) = self.clients.get_mut(client as usize)
            {
                let starts_list = &mut state.category_mut(cat).open_starts;
                if let Some(at) = starts_list.iter().position(|s| *s == starts) {
                    starts_list.swap_remove(at);
                }
            }
            if let Some((cat, starts)) = open
                && let Some(state) = self.clients.get_mut(client as usize)
            {
                state.category_mut(cat).open_starts.push(starts);
            }
            for (cat, _) in [old_open, open].into_iter().flatten() {
                self.refresh_category(client, cat);
            }
        }
        if holds != old_holds {
            if let Some(old) = old_holds
                && let Some(n) = self.held.get_mut(&old)
            {
                *n -= 1;
                if *n == 0 {
                    self.held.remove(&old);
                }
            }
            if let Some(new) = holds {
                *self.held.entry(new).or_default() += 1;
            }
        }
        if slot != old_slot {
            if let Some(old) = old_slot {
                self.slot_index.remove(&(old, index));
            }
            if let Some(new) = slot {
                self.slot_index.insert((new, index));
            }
        }
        if let Some(registered) = self.registered.get_mut(index as usize) {
            *registered = now_registered;
        }
    }

    fn apply_membership(&mut self, client: u32, key: Key, event: &InsightEvent) {
        let Some(id) = &event.membership_id else { return };
        let index = self.intern_membership(id, client);
        let Some(membership) = self.memberships.get_mut(index as usize) else { return };
        match event.kind {
            EventKind::MembershipStarted | EventKind::MembershipRenewed => {
                keep_latest(&mut membership.active, key, true);
                if event.kind == EventKind::MembershipStarted {
                    membership.last_started = max_opt(membership.last_started, key.at);
                } else {
                    membership.first_renewed = min_opt(membership.first_renewed, key.at);
                }
                match event.price_band {
                    Some(band) => {
                        membership.paid_minor += band_midpoint_minor(band);
                        keep_latest(&mut membership.band, key, band);
                    }
                    None => membership.paid_unbanded += 1,
                }
                if let Some(category) = event.service_category {
                    keep_latest(&mut membership.category, key, category);
                }
            }
            EventKind::MembershipRedeemed => {
                membership.last_redeemed = max_opt(membership.last_redeemed, key.at);
                match event.price_band {
                    Some(band) => membership.redeemed_minor += band_midpoint_minor(band),
                    None => membership.redeemed_unbanded += 1,
                }
            }
            EventKind::MembershipCancelled | EventKind::MembershipExpired => {
                keep_latest(&mut membership.active, key, false);
            }
            EventKind::AppointmentBooked
            | EventKind::AppointmentCompleted
            | EventKind::AppointmentCancelled
            | EventKind::AppointmentNoShow => {}
        }
        self.refresh_membership(index);
    }

    fn refresh_client_memberships(&mut self, client: u32) {
        let count = self.clients.get(client as usize).map_or(0, |c| c.memberships.len());
        for i in 0..count {
            if let Some(index) = self.clients.get(client as usize).and_then(|c| c.memberships.get(i)).copied() {
                self.refresh_membership(index);
            }
        }
    }

    fn refresh_membership(&mut self, index: u32) {
        if self.deferred {
            return;
        }
        let Some(membership) = self.memberships.get(index as usize) else { return };
        let last_treatment = self.clients.get(membership.client as usize).and_then(|c| c.last_treatment);
        let lapse = membership.lapse_window(last_treatment);
        if lapse != membership.lapse_from {
            if let Some(old) = membership.lapse_from {
                self.lapse_index.remove(&(old, index));
            }
            if let Some(new) = lapse {
                self.lapse_index.insert((new, index));
            }
            if let Some(membership) = self.memberships.get_mut(index as usize) {
                membership.lapse_from = lapse;
            }
        }
    }

    // --- Building gaps ---------------------------------------------------------------------------

    fn rebook_gap(&self, client: u32, cat: u8, now: i64) -> Option<Gap> {
        let state = self.clients.get(client as usize)?;
        let history = state.category(cat)?;
        let last = history.last.as_ref()?.key.at;
        let cycle = history.cycle_days.as_ref()?.value;
        let category = category(cat);
        let elapsed = now - last;
        Some(Gap {
            kind: GapKind::RebookDue,
            client: state.id.clone(),
            service_category: Some(category),
            slot: None,
            membership: None,
            evidence: rules::rebook_evidence(&state.id, category, elapsed, cycle, history.treatments),
            revenue_at_stake_minor: history.band.as_ref().map_or(0, |b| band_midpoint_minor(b.value)),
            score: rules::rebook_score(elapsed, cycle, history.treatments),
        })
    }

    fn follow_up_gap(&self, client: u32, cat: u8, now: i64) -> Option<Gap> {
        let state = self.clients.get(client as usize)?;
        let history = state.category(cat)?;
        let last = history.last.as_ref()?;
        let window = last.value.follow_up_days;
        let category = category(cat);
        let elapsed = now - last.key.at;
        let band = last.value.band.or(history.band.as_ref().map(|b| b.value));
        Some(Gap {
            kind: GapKind::FollowUpDue,
            client: state.id.clone(),
            service_category: Some(category),
            slot: None,
            membership: None,
            evidence: rules::follow_up_evidence(&state.id, category, elapsed, window),
            revenue_at_stake_minor: band.map_or(0, band_midpoint_minor),
            score: rules::follow_up_score(elapsed, window),
        })
    }

    fn lapsing_gap(&self, index: u32, now: i64) -> Option<Gap> {
        let membership = self.memberships.get(index as usize)?;
        let state = self.clients.get(membership.client as usize)?;
        let (reference, visited) = membership.reference(state.last_treatment)?;
        let unused = membership.unused_minor();
        let idle = now - reference;
        Some(Gap {
            kind: GapKind::LapsingMember,
            client: state.id.clone(),
            service_category: membership.category.as_ref().map(|c| c.value),
            slot: None,
            membership: Some(membership.id.clone()),
            evidence: rules::lapsing_evidence(&state.id, &membership.id, unused, idle, visited),
            revenue_at_stake_minor: unused,
            score: rules::lapsing_score(idle, unused),
        })
    }

    /// The freed slots open at `now` (cancelled at or before it), one per physical slot: slots
    /// freed more than once (cancelled, rebooked, cancelled again) with the same provider, start
    /// and category are merged, excluding every client who cancelled them and described by the
    /// latest cancellation. Slots without a provider cannot be matched and stay apart.
    fn open_slots<'a>(&self, freed: impl Iterator<Item = SlotView<'a>>, now: i64) -> Vec<SlotView<'a>> {
        type Latest<'b> = (i64, Option<&'b ClientPseudonym>);
        let mut merged: BTreeMap<(i64, u8, u32), (Latest<'_>, SlotView<'a>)> = BTreeMap::new();
        let mut apart = Vec::new();
        for slot in freed.filter(|s| s.cancelled_at <= now) {
            let Some(provider) = slot.provider else {
                apart.push(slot);
                continue;
            };
            let who = slot.excluded.first().and_then(|c| self.clients.get(*c as usize)).map(|c| &c.id);
            let latest = (slot.cancelled_at, who);
            match merged.entry((slot.starts, slot.category, provider)) {
                Entry::Vacant(entry) => {
                    entry.insert((latest, slot));
                }
                Entry::Occupied(mut entry) => {
                    let (kept_latest, kept) = entry.get_mut();
                    let mut excluded = std::mem::take(&mut kept.excluded);
                    excluded.extend(slot.excluded.iter().copied());
                    if latest > *kept_latest {
                        (*kept_latest, *kept) = (latest, slot);
                    }
                    excluded.sort_unstable();
                    excluded.dedup();
                    kept.excluded = excluded;
                }
            }
        }
        merged.into_values().map(|(_, slot)| slot).chain(apart).collect()
    }

    /// Ranks `candidates` for a freed slot; see the module docs for who qualifies and the score.
    fn rank_slot(
        &self,
        slot: &SlotView<'_>,
        now: i64,
        limit: usize,
        candidates: impl Iterator<Item = u32>,
    ) -> Vec<Gap> {
        let mut ranker = SlotRanker::new(self, slot, now, limit);
        if limit > 0 {
            for index in candidates {
                ranker.consider(index);
            }
        }
        ranker.finish()
    }

    /// The clients of a category who can be proposed for some slot at `now` (treated in it, no
    /// upcoming booking in it), each with an upper bound of their slot-fill score for any slot
    /// after `now` *with a provider they never had*: `0.4·due + 0.15·weekday + 0.15·hour` with
    /// the highest due still possible ([`rules::slot_due_bound`]; 1 without a cycle of their own,
    /// as the slot's cycle then counts), their most frequent weekday's share, and 1 for the hour.
    /// Highest bound first.
    fn slot_pool(&self, cat: u8, now: i64) -> Vec<(f64, u32)> {
        let treated = self.treated.get(usize::from(cat)).map_or(&[][..], Vec::as_slice);
        let mut pool: Vec<(f64, u32)> = treated
            .iter()
            .filter_map(|&index| {
                let state = self.clients.get(index as usize)?;
                let history = state.category(cat)?;
                let last = history.last.as_ref()?.key.at;
                if history.has_upcoming(now) {
                    return None;
                }
                let due = match history.cycle_days.as_ref() {
                    Some(cycle) => {
                        let ratio = (now - last) as f64 / (f64::from(cycle.value) * DAY_SECS as f64);
                        rules::slot_due_bound(ratio)
                    }
                    None => 1.0,
                };
                let busiest = state.weekdays.iter().copied().max().unwrap_or(0);
                let weekday = if state.visits == 0 { 0.0 } else { f64::from(busiest) / f64::from(state.visits) };
                Some((0.4 * due + 0.15 * weekday.clamp(0.0, 1.0) + 0.15, index))
            })
            .collect();
        pool.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        pool
    }

    /// [`GapEngine::rank_slot`] over the same clients (`pool` from [`GapEngine::slot_pool`]),
    /// without scoring most of them: first every client who has had the slot's provider, exactly;
    /// then the others in the order of their upper bound, stopping once the bound falls below the
    /// `limit`-th best score found. A client skipped scores less than every client listed, so the
    /// result is exactly `rank_slot`'s.
    fn rank_slot_pruned(&self, slot: &SlotView<'_>, now: i64, limit: usize, pool: &[(f64, u32)]) -> Vec<Gap> {
        let mut ranker = SlotRanker::new(self, slot, now, limit);
        if limit == 0 {
            return ranker.finish();
        }
        let regulars = slot.provider.and_then(|p| self.provider_clients.get(p as usize));
        for &index in regulars.map_or(&[][..], Vec::as_slice) {
            ranker.consider(index);
        }
        for &(bound, index) in pool {
            if ranker.threshold().is_some_and(|t| bound + 1e-9 < t) {
                break;
            }
            let regular =
                slot.provider.is_some_and(|p| self.clients.get(index as usize).is_some_and(|c| c.visits_with(p) > 0));
            if !regular {
                ranker.consider(index);
            }
        }
        ranker.finish()
    }
}

/// One client's fit for a slot, as ranked.
struct Ranked<'e> {
    score: f64,
    state: &'e ClientState,
    ago: i64,
    cycle: u16,
    fit: SlotFit,
}

fn best_first(a: &Ranked<'_>, b: &Ranked<'_>) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.state.id.cmp(&b.state.id))
}

/// Scores clients for one freed slot and keeps the best `limit`.
struct SlotRanker<'e, 's> {
    engine: &'e GapEngine,
    slot: &'s SlotView<'s>,
    now: i64,
    limit: usize,
    keep: usize,
    slot_day: usize,
    slot_hour: usize,
    affinity: [f64; 24],
    ranked: Vec<Ranked<'e>>,
    /// The best `limit` scores seen, highest first.
    top: Vec<f64>,
}

impl<'e, 's> SlotRanker<'e, 's> {
    fn new(engine: &'e GapEngine, slot: &'s SlotView<'s>, now: i64, limit: usize) -> Self {
        let slot_hour = hour(slot.starts);
        // Bounded selection: never more than ~2 × limit candidates held, whatever the tenant's size.
        let keep = limit.max(16);
        Self {
            engine,
            slot,
            now,
            limit,
            keep,
            slot_day: weekday(slot.starts),
            slot_hour,
            affinity: std::array::from_fn(|h| rules::hour_affinity(h, slot_hour)),
            ranked: Vec::with_capacity(2 * keep),
            top: Vec::with_capacity(limit + 1),
        }
    }

    /// The `limit`-th best score so far, once `limit` clients qualified.
    fn threshold(&self) -> Option<f64> {
        if self.limit > 0 && self.top.len() >= self.limit { self.top.last().copied() } else { None }
    }

    /// Scores one client, if they qualify for the slot.
    fn consider(&mut self, index: u32) {
        let (slot, now) = (self.slot, self.now);
        if slot.excluded.contains(&index) {
            return;
        }
        let Some(state) = self.engine.clients.get(index as usize) else { return };
        let Some(history) = state.category(slot.category) else { return };
        let Some(last) = history.last.as_ref().map(|l| l.key.at) else { return };
        if history.has_upcoming(now) {
            return;
        }
        let Some(cycle) = history.cycle_days.as_ref().map(|c| c.value).or(slot.cycle_days) else { return };
        let ratio = (slot.starts - last) as f64 / (f64::from(cycle) * DAY_SECS as f64);
        if ratio < NEARLY_DUE_RATIO {
            return;
        }
        let hour_affinity = state.hours.iter().zip(&self.affinity).map(|(n, a)| f64::from(*n) * a).sum();
        let slot_hour = self.slot_hour;
        let near_hour = state.hours[slot_hour.saturating_sub(1)..=(slot_hour + 1).min(23)].iter().sum();
        let fit = SlotFit {
            ratio,
            visits: state.visits,
            with_provider: slot.provider.map_or(0, |p| state.visits_with(p)),
            on_weekday: state.weekdays[self.slot_day],
            hour_affinity,
            near_hour,
        };
        let score = fit.score();
        if self.limit > 0 {
            let at = self.top.iter().position(|t| score > *t).unwrap_or(self.top.len());
            if at < self.limit {
                self.top.insert(at, score);
                self.top.truncate(self.limit);
            }
        }
        self.ranked.push(Ranked { score, state, ago: now - last, cycle, fit });
        if self.ranked.len() >= 2 * self.keep {
            self.ranked.select_nth_unstable_by(self.keep - 1, best_first);
            self.ranked.truncate(self.keep);
        }
    }

    fn finish(mut self) -> Vec<Gap> {
        self.ranked.sort_by(best_first);
        self.ranked.truncate(self.limit);
        let slot = self.slot;
        let category = category(slot.category);
        let words = SlotWords { category, provider: slot.provider_id, starts: slot.starts, now: self.now };
        // The start in whole seconds (a fraction sent by the producer is not kept).
        let Some(starts_at) = Timestamp::from_unix_seconds(slot.starts) else { return Vec::new() };
        self.ranked
            .into_iter()
            .map(|r| Gap {
                kind: GapKind::SlotFill,
                client: r.state.id.clone(),
                service_category: Some(category),
                slot: Some(GapSlot { provider: slot.provider_id.cloned(), starts_at }),
                membership: None,
                evidence: rules::slot_fill_evidence(&r.state.id, &words, r.ago, r.cycle, &r.fit),
                revenue_at_stake_minor: slot.band.map_or(0, band_midpoint_minor),
                score: r.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(client: &str, score: f64, evidence: &str) -> Gap {
        Gap {
            kind: GapKind::RebookDue,
            client: ClientPseudonym::parse(client).expect("pseudonym"),
            service_category: Some(ServiceCategory::Filler),
            slot: None,
            membership: None,
            evidence: evidence.into(),
            revenue_at_stake_minor: 0,
            score,
        }
    }

    /// The merge of two sorted parts is the stable sort of the first part followed by the second.
    #[test]
    fn merging_sorted_parts_equals_sorting_them_together() {
        let a = "p_aaaaaaaaaaaaaaaaaaaaaaaaaa";
        let b = "p_bbbbbbbbbbbbbbbbbbbbbbbbbb";
        let first = vec![gap(a, 0.9, "first"), gap(b, 0.5, "first"), gap(a, 0.1, "first")];
        let second = vec![gap(b, 0.9, "second"), gap(b, 0.5, "second"), gap(a, 0.5, "second")];
        let mut expected: Vec<Gap> = first.iter().chain(&second).cloned().collect();
        expected.sort_by(Gap::rank_cmp);
        let (mut x, mut y) = (first, second);
        x.sort_by(Gap::rank_cmp);
        y.sort_by(Gap::rank_cmp);
        let merged = merge_sorted(x, y);
        assert_eq!(merged, expected);
        // Ties (same score, kind and client) keep the first part's gap first.
        let evidence: Vec<&str> = merged.iter().filter(|g| g.score == 0.5).map(|g| g.evidence.as_str()).collect();
        assert_eq!(evidence, ["second", "first", "second"]);
        assert!(merge_sorted(Vec::new(), Vec::new()).is_empty());
    }
}
