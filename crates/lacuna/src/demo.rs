//! `lacuna demo`: a realistic practice to try Lacuna with and to benchmark on — two locations,
//! providers with weekly hours, a menu of real services with their treatment cycles and
//! follow-up windows, clients (personal fields sealed like any other), two years of appointment
//! history with rebooking habits, cancellations and no-shows, upcoming bookings, memberships,
//! packages and charges. The same seed gives the same practice.
//!
//! The catalogue goes in through the catalogue's own inserts; clients and history through the
//! storage layer's bulk loaders in batches, one transaction each; no provider is ever
//! double-booked (an occupancy map per provider and day, 15-minute grid).

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use lacuna_accounts::{RequestMeta, SignupInput};
use lacuna_domain::{LocationId, ProviderId, ServiceId, TenantId};
use lacuna_practice::clients::{ClientInput, prepare_client};
use lacuna_storage::now_unix;
use lacuna_storage::practice::bulk::{AppointmentSeed, ChargeSeed, PlanSeed};
use lacuna_storage::practice::catalog::{HoursRow, LocationRow, ProviderRow, ServiceRow};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

pub const TIMEZONE: &str = "America/New_York";
const CURRENCY: &str = "USD";
const BATCH: usize = 2_000;
const SLOT_MIN: i64 = 15;
const DAY_START_MIN: i64 = 9 * 60;
const DAY_END_MIN: i64 = 18 * 60;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub clients: usize,
    /// Appointments to create (history and upcoming).
    pub appointments: usize,
    pub seed: u64,
    pub practice_name: String,
    pub owner_email: String,
    pub owner_password: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            clients: 3_000,
            appointments: 24_000,
            seed: 42,
            practice_name: "Lumen Aesthetics & Spa".into(),
            owner_email: "owner@lumen.example".into(),
            owner_password: "lumen-demo-password".into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    pub tenant: Option<TenantId>,
    pub locations: usize,
    pub providers: usize,
    pub services: usize,
    pub clients: usize,
    pub appointments: usize,
    pub upcoming: usize,
    pub plans: usize,
    pub charges: usize,
    /// Pseudonymous events handed to Insight (through the PHI guard).
    pub insight_events: u64,
    pub seconds: f64,
}

/// (name, category, minutes, buffer, price in cents, cycle days, follow-up days)
type MenuItem = (&'static str, &'static str, i64, i64, i64, Option<i64>, Option<i64>);
const MENU: &[MenuItem] = &[
    ("Botox — forehead & frown lines", "neurotoxin", 30, 15, 42_000, Some(90), Some(14)),
    ("Dysport — crow's feet", "neurotoxin", 30, 15, 38_000, Some(90), Some(14)),
    ("Lip flip", "neurotoxin", 15, 15, 18_000, Some(75), Some(14)),
    ("Lip filler (1 syringe)", "filler", 45, 15, 75_000, Some(270), Some(14)),
    ("Cheek filler", "filler", 60, 15, 120_000, Some(365), Some(14)),
    ("Under-eye filler", "filler", 45, 15, 90_000, Some(270), Some(14)),
    ("Laser hair removal — small area", "laser", 30, 15, 15_000, Some(42), None),
    ("Laser hair removal — large area", "laser", 60, 15, 35_000, Some(42), None),
    ("IPL photofacial", "laser", 45, 15, 40_000, Some(30), Some(7)),
    ("Fractional laser resurfacing", "laser", 90, 30, 95_000, Some(90), Some(7)),
    ("HydraFacial", "facial", 60, 15, 22_000, Some(30), None),
    ("Chemical peel", "facial", 45, 15, 18_000, Some(42), Some(7)),
    ("Microneedling", "facial", 60, 15, 35_000, Some(42), Some(7)),
    ("Signature facial", "facial", 60, 15, 16_000, Some(30), None),
    ("Swedish massage (60 min)", "massage", 60, 15, 13_000, Some(28), None),
    ("Deep tissue massage (90 min)", "massage", 90, 15, 18_000, Some(28), None),
    ("Cut & style", "hair", 60, 15, 9_500, Some(42), None),
    ("Colour & gloss", "hair", 120, 15, 21_000, Some(56), None),
    ("Gel manicure", "nails", 45, 15, 5_500, Some(21), None),
    ("Spa pedicure", "nails", 60, 15, 7_500, Some(28), None),
];

/// Provider roles: the categories each performs.
const ROLES: &[(&str, &[&str])] = &[
    ("injector", &["neurotoxin", "filler"]),
    ("injector", &["neurotoxin", "filler"]),
    ("laser specialist", &["laser", "facial"]),
    ("esthetician", &["facial"]),
    ("massage therapist", &["massage"]),
    ("massage therapist", &["massage"]),
    ("stylist", &["hair"]),
    ("nail technician", &["nails"]),
];

const FIRST: &[&str] = &[
    "Olivia",
    "Emma",
    "Ava",
    "Sophia",
    "Isabella",
    "Mia",
    "Amelia",
    "Harper",
    "Evelyn",
    "Abigail",
    "Emily",
    "Ella",
    "Elizabeth",
    "Camila",
    "Luna",
    "Sofia",
    "Avery",
    "Mila",
    "Aria",
    "Scarlett",
    "Penelope",
    "Layla",
    "Chloe",
    "Victoria",
    "Madison",
    "Eleanor",
    "Grace",
    "Nora",
    "Riley",
    "Zoey",
    "Hannah",
    "Hazel",
    "Lily",
    "Ellie",
    "Violet",
    "Lillian",
    "Zoe",
    "Stella",
    "Aurora",
    "Natalie",
    "Liam",
    "Noah",
    "Oliver",
    "James",
    "Lucas",
    "Mateo",
    "Ethan",
    "Daniel",
    "Priya",
    "Aisha",
    "Mei",
    "Yuki",
    "Fatima",
    "Ines",
    "Chiara",
    "Freya",
    "Ingrid",
    "Zara",
    "Nia",
    "Rosa",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Kim",
    "Chen",
    "Okafor",
    "Rossi",
];

struct Provider {
    id: ProviderId,
    location: usize,
    categories: &'static [&'static str],
    /// Weekdays worked, 0 = Monday.
    days: [bool; 7],
    /// Busy 15-minute slots per local day number (bit i = DAY_START + 15·i).
    busy: HashMap<i64, u64>,
}

impl Provider {
    fn works(&self, weekday: i64) -> bool {
        self.days[weekday as usize]
    }

    /// Books the first free run of `slots` at or after `from_slot` on `day`; returns its start slot.
    fn take(&mut self, day: i64, from_slot: i64, slots: i64) -> Option<i64> {
        let per_day = (DAY_END_MIN - DAY_START_MIN) / SLOT_MIN;
        let mask = if slots >= 64 { u64::MAX } else { (1u64 << slots) - 1 };
        let busy = self.busy.entry(day).or_insert(0);
        for s in (from_slot..=per_day - slots).chain(0..from_slot.min(per_day - slots + 1)) {
            if *busy & (mask << s) == 0 {
                *busy |= mask << s;
                return Some(s);
            }
        }
        None
    }
}

/// Creates the demo practice in the configured store.
pub async fn run(services: &crate::Services, opts: &DemoOptions) -> anyhow::Result<DemoSummary> {
    if opts.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let started = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let tz = TimeZone::get(TIMEZONE).context("time zone database")?;
    let now = now_unix();
    let today = jiff::Timestamp::from_second(now)?.to_zoned(tz.clone()).date();
    let first_day = today.checked_sub(jiff::Span::new().days(730))?;

    let session = services
        .accounts
        .signup(
            SignupInput {
                practice_name: opts.practice_name.clone(),
                name: "Demo Owner".into(),
                email: opts.owner_email.clone(),
                password: opts.owner_password.clone(),
            },
            &RequestMeta::default(),
        )
        .await
        .map_err(|e| match e {
            lacuna_accounts::AccountError::EmailTaken => anyhow::anyhow!(
                "{} already has an account here: pass --email (and --password) for another demo practice",
                opts.owner_email
            ),
            other => other.into(),
        })?;
    let tenant = session.tenant;
    let store = &services.store;
    let keys = lacuna_practice::Practice::new(services.accounts.clone()).keys(tenant).await?;
    let mut summary = DemoSummary { tenant: Some(tenant), ..Default::default() };

    // Catalogue: locations, services, providers with hours.
    let locations = ["Downtown", "Riverside"];
    let location_ids: Vec<LocationId> = locations.iter().map(|_| LocationId::new()).collect();
    let services_seed: Vec<ServiceRow> = MENU
        .iter()
        .map(|&(name, category, duration, buffer, price, cycle, follow_up)| ServiceRow {
            id: ServiceId::new(),
            name: name.into(),
            category: category.into(),
            duration_min: duration,
            buffer_min: buffer,
            price_minor: price,
            currency: CURRENCY.into(),
            cycle_days: cycle,
            follow_up_days: follow_up,
            active: true,
            created_at: now,
            updated_at: now,
        })
        .collect();
    // Enough providers for the requested history: a provider fits about 3,500 appointments in two
    // years of 9-hour days, so plan for 2,500 each and leave the calendar room to breathe.
    let provider_count = ROLES.len().max(opts.appointments.div_ceil(2_500));
    let mut providers: Vec<Provider> = (0..provider_count)
        .map(|i| {
            let (_, categories) = ROLES[i % ROLES.len()];
            // Half work Monday to Friday, half Tuesday to Saturday.
            let days = if i % 2 == 0 {
                [true, true, true, true, true, false, false]
            } else {
                [false, true, true, true, true, true, false]
            };
            Provider { id: ProviderId::new(), location: i % locations.len(), categories, days, busy: HashMap::new() }
        })
        .collect();
    {
        let mut tx = store.tenant(tenant).write().await?;
        let mut settings = tx.practice_settings().await?;
        (settings.timezone, settings.currency) = (TIMEZONE.into(), CURRENCY.into());
        tx.set_practice_settings(&settings, now).await?;
        for (&id, name) in location_ids.iter().zip(locations) {
            tx.insert_location(&LocationRow { id, name: name.into(), created_at: now }).await?;
        }
        for s in &services_seed {
            tx.insert_service(s).await?;
        }
        for (i, p) in providers.iter().enumerate() {
            let (role, _) = ROLES[i % ROLES.len()];
            let name = format!("{} {} ({role})", pick(&mut rng, FIRST), pick(&mut rng, LAST));
            let performs: Vec<ServiceId> =
                services_seed.iter().filter(|s| p.categories.contains(&s.category.as_str())).map(|s| s.id).collect();
            let hours: Vec<HoursRow> = (0..7)
                .filter(|d| p.works(*d))
                .map(|weekday| HoursRow {
                    location_id: location_ids[p.location],
                    weekday,
                    start_min: DAY_START_MIN,
                    end_min: DAY_END_MIN,
                })
                .collect();
            let row = ProviderRow { id: p.id, name, user_id: None, active: true, created_at: now, updated_at: now };
            tx.insert_provider(&row).await?;
            tx.set_provider_services(p.id, &performs).await?;
            tx.replace_provider_hours(p.id, &hours).await?;
        }
        tx.commit().await?;
    }
    summary.locations = locations.len();
    summary.services = services_seed.len();
    summary.providers = providers.len();

    let total_rows = (opts.clients + opts.appointments) as u64;
    let bar = ProgressBar::new(total_rows).with_style(
        ProgressStyle::with_template("{msg:<14} {bar:40} {pos}/{len} rows · {elapsed} · eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    // Clients, sealed exactly as the API would seal them.
    bar.set_message("clients");
    let mut client_ids = Vec::with_capacity(opts.clients);
    let mut batch = Vec::with_capacity(BATCH);
    let mut search = Vec::new();
    for i in 0..opts.clients {
        let (first, last) = (pick(&mut rng, FIRST), pick(&mut rng, LAST));
        let birthday =
            format!("{}-{:02}-{:02}", rng.gen_range(1950..2004), rng.gen_range(1..=12), rng.gen_range(1..=28));
        let input = ClientInput {
            name: format!("{first} {last}"),
            email: Some(format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i)),
            phone: Some(format!("+1 555 {:03} {:04}", rng.gen_range(100..1000), i % 10_000)),
            birthday: Some(birthday),
            marketing_consent: rng.gen_bool(0.7),
            notes: None,
        };
        let (row, tokens) = prepare_client(&keys, input, now - rng.gen_range(0..730 * 86_400))?;
        client_ids.push(row.id.to_string());
        search.extend(tokens.into_iter().map(|t| (row.id, t)));
        batch.push(row);
        if batch.len() == BATCH || i + 1 == opts.clients {
            let mut tx = store.tenant(tenant).write().await?;
            for row in batch.drain(..) {
                tx.insert_client(&row).await?;
            }
            tx.insert_client_search_tokens(&search).await?;
            search.clear();
            tx.commit().await?;
            bar.set_position((i + 1) as u64);
        }
    }
    summary.clients = client_ids.len();

    // Appointment history: each client has a favourite service, provider, weekday and hour, and
    // comes back about once per treatment cycle until they lapse. Some try a second service.
    bar.set_message("appointments");
    let mut appts: Vec<AppointmentSeed> = Vec::with_capacity(opts.appointments);
    let mut completed: Vec<usize> = Vec::new();
    let horizon_days = 730 + 21;
    let mut round = 0;
    while appts.len() < opts.appointments && round < 200 {
        for client_id in &client_ids {
            if appts.len() >= opts.appointments {
                break;
            }
            let service = &services_seed[weighted_service(&mut rng)];
            let candidates: Vec<usize> = (0..providers.len())
                .filter(|&p| providers[p].categories.contains(&service.category.as_str()))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let pi = candidates[rng.gen_range(0..candidates.len())];
            let slots = (service.duration_min + service.buffer_min + SLOT_MIN - 1) / SLOT_MIN;
            let preferred_slot = rng.gen_range(0..((DAY_END_MIN - DAY_START_MIN) / SLOT_MIN - slots).max(1));
            let cycle = service.cycle_days.unwrap_or(60);
            // Each pass adds another series (a second or third service) starting anywhere in the two years.
            let mut day = rng.gen_range(0..730);
            let loyalty: f64 = rng.gen_range(0.75..0.97);
            while day < horizon_days && appts.len() < opts.appointments {
                let date = first_day.checked_add(jiff::Span::new().days(day))?;
                let weekday = i64::from(date.weekday().to_monday_zero_offset());
                if !providers[pi].works(weekday) {
                    day += 1;
                    continue;
                }
                let Some(slot) = providers[pi].take(day, preferred_slot, slots) else {
                    day += 1;
                    continue;
                };
                let starts_at = local_to_unix(&tz, date, DAY_START_MIN + slot * SLOT_MIN)?;
                let ends_at = starts_at + service.duration_min * 60;
                let future = starts_at > now;
                let roll: f64 = rng.gen_range(0.0..1.0);
                let (status, cancel_reason, cancelled_by) = if future {
                    ("booked", None, None)
                } else if roll < 0.06 {
                    ("cancelled", Some("schedule conflict".to_string()), Some("client"))
                } else if roll < 0.08 {
                    ("cancelled", Some("provider unavailable".to_string()), Some("practice"))
                } else if roll < 0.11 {
                    ("no_show", None, None)
                } else {
                    ("completed", None, None)
                };
                if status == "completed" {
                    completed.push(appts.len());
                }
                appts.push(AppointmentSeed {
                    id: uuid::Uuid::new_v4().to_string(),
                    client_id: client_id.clone(),
                    provider_id: providers[pi].id.to_string(),
                    service_id: service.id.to_string(),
                    location_id: location_ids[providers[pi].location].to_string(),
                    starts_at,
                    ends_at,
                    blocks_until: ends_at + service.buffer_min * 60,
                    status,
                    cancel_reason,
                    cancelled_by,
                    price_minor: service.price_minor,
                    currency: CURRENCY.into(),
                    created_at: (starts_at - rng.gen_range(1..30) * 86_400).min(now),
                });
                if future {
                    break;
                }
                if !rng.gen_bool(loyalty) {
                    break; // lapsed: the gap Insight looks for
                }
                let jitter = rng.gen_range(0.85..1.35);
                day += ((cycle as f64) * jitter).round() as i64;
            }
        }
        round += 1;
    }
    if appts.len() < opts.appointments {
        bail!(
            "the calendar could hold only {} of the {} appointments asked for; ask for fewer",
            appts.len(),
            opts.appointments
        );
    }
    appts.sort_by_key(|a| a.starts_at);
    summary.upcoming = appts.iter().filter(|a| a.status == "booked").count();
    for (n, chunk) in appts.chunks(BATCH).enumerate() {
        let mut tx = store.tenant(tenant).write().await?;
        tx.bulk_appointments(chunk).await?;
        tx.commit().await?;
        bar.set_position((opts.clients + n * BATCH + chunk.len()) as u64);
    }
    summary.appointments = appts.len();

    // Memberships and packages, and a charge for every completed visit.
    bar.set_message("plans, charges");
    let mut plans = Vec::new();
    for client_id in &client_ids {
        let roll: f64 = rng.gen_range(0.0..1.0);
        let started = now - rng.gen_range(30..700) * 86_400;
        if roll < 0.08 {
            let months = (now - started) / (30 * 86_400) + 1;
            plans.push(PlanSeed {
                id: uuid::Uuid::new_v4().to_string(),
                client_id: client_id.clone(),
                kind: "membership",
                name: "Glow membership (1 facial a month)".into(),
                service_id: None,
                price_minor: 14_900,
                currency: CURRENCY.into(),
                credits_total: months,
                credits_used: rng.gen_range(0..=months),
                starts_at: started,
                expires_at: None,
                status: "active",
            });
        } else if roll < 0.13 {
            let s = &services_seed[rng.gen_range(0..services_seed.len())];
            plans.push(PlanSeed {
                id: uuid::Uuid::new_v4().to_string(),
                client_id: client_id.clone(),
                kind: "package",
                name: format!("{} × 6", s.name),
                service_id: Some(s.id.to_string()),
                price_minor: s.price_minor * 5,
                currency: CURRENCY.into(),
                credits_total: 6,
                credits_used: rng.gen_range(0..=6),
                starts_at: started,
                expires_at: Some(started + 365 * 86_400),
                status: if started + 365 * 86_400 < now { "expired" } else { "active" },
            });
        }
    }
    let charges: Vec<ChargeSeed> = completed
        .iter()
        .map(|&ai| {
            let a = &appts[ai];
            ChargeSeed {
                id: uuid::Uuid::new_v4().to_string(),
                appointment_id: Some(a.id.clone()),
                plan_id: None,
                amount_minor: a.price_minor,
                currency: a.currency.clone(),
                payment_method: format!("pm_demo{}", token(&mut rng)),
                processor_customer: format!("cus_demo{}", token(&mut rng)),
                payment_intent: format!("pi_demo{}", token(&mut rng)),
                created_by: format!("user:{}", session.user),
                created_at: a.ends_at,
            }
        })
        .collect();
    {
        let mut tx = store.tenant(tenant).write().await?;
        for p in &plans {
            tx.bulk_plan(p, now).await?;
        }
        tx.commit().await?;
    }
    for chunk in charges.chunks(BATCH) {
        let mut tx = store.tenant(tenant).write().await?;
        for c in chunk {
            tx.bulk_charge(c).await?;
        }
        tx.commit().await?;
    }
    // Insight learns the same history, pseudonymously: a `booked` event for every appointment and
    // its outcome, through the PHI guard like any other event; plans below, through the outbox.
    bar.set_message("insight feed");
    let pseudonyms = lacuna_practice::insight_feed::Pseudonymizer::new(
        services.accounts.keyring().tenant_hmac_key(tenant, "pseudonym").await?,
    );
    let by_id: HashMap<String, &ServiceRow> = services_seed.iter().map(|s| (s.id.to_string(), s)).collect();
    for chunk in appts.chunks(BATCH) {
        let mut events = Vec::with_capacity(chunk.len() * 2);
        for a in chunk {
            let Some(service) = by_id.get(a.service_id.as_str()) else { continue };
            let facts = lacuna_practice::insight_feed::AppointmentFacts {
                appointment_id: &a.id,
                client_id: &a.client_id,
                provider_id: &a.provider_id,
                location_id: &a.location_id,
                category: &service.category,
                cycle_days: service.cycle_days,
                follow_up_days: service.follow_up_days,
                price_minor: a.price_minor,
                starts_at: a.starts_at,
                ends_at: a.ends_at,
            };
            let outcome = match a.status {
                "completed" => Some(("appointment.completed", a.ends_at)),
                "cancelled" => Some(("appointment.cancelled", a.starts_at - 86_400)),
                "no_show" => Some(("appointment.no_show", a.ends_at)),
                _ => None,
            };
            let booked = std::iter::once(("appointment.booked", a.created_at));
            for (kind, at) in booked.chain(outcome) {
                let value = lacuna_practice::insight_feed::appointment_event(&pseudonyms, kind, &facts, at.min(now));
                let event = services.phi_guard.check(&value).map_err(|r| anyhow::anyhow!("demo event refused: {r}"))?;
                events.push(lacuna_storage::insight::StoredEvent {
                    event_id: event.event_id.as_str().to_string(),
                    kind: kind.to_string(),
                    occurred_at: event.occurred_at.unix_seconds(),
                    body: value.to_string(),
                });
            }
        }
        summary.insight_events += services.insight.append(tenant, &events, now).await?;
    }
    summary.insight_events += plan_events(services, tenant, &pseudonyms, &plans, &services_seed, now, &mut rng).await?;
    bar.finish_and_clear();
    summary.plans = plans.len();
    summary.charges = charges.len();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The plans' Insight events, queued in the Practice outbox exactly as the live code queues them
/// (`started`, a `renewed` per month started, `expired` past the expiry, via
/// `Practice::queue_plan_events`), plus a `redeemed` event per credit used, spread over the plan's
/// life; then the feed job delivers them through the PHI guard. Returns events delivered.
async fn plan_events(
    services: &crate::Services,
    tenant: TenantId,
    pseudonyms: &lacuna_practice::insight_feed::Pseudonymizer,
    plans: &[PlanSeed],
    menu: &[ServiceRow],
    now: i64,
    rng: &mut StdRng,
) -> anyhow::Result<u64> {
    use lacuna_practice::insight_feed::{PlanChange, PlanFacts, plan_event};
    use lacuna_storage::practice::plans::PlanRow;
    let ids: Vec<String> = menu.iter().map(|s| s.id.to_string()).collect();
    let by_id: HashMap<&str, &ServiceRow> = ids.iter().map(String::as_str).zip(menu.iter()).collect();
    // A membership's monthly credit is "1 facial": redeemed at a signature facial's price.
    let facial_price = menu.iter().find(|s| s.category == "facial").map_or(16_000, |s| s.price_minor);
    for chunk in plans.chunks(BATCH) {
        let mut tx = services.store.tenant(tenant).write().await?;
        for p in chunk {
            let row = PlanRow {
                id: p.id.parse().map_err(|_| anyhow::anyhow!("demo plan id"))?,
                client_id: p.client_id.parse().map_err(|_| anyhow::anyhow!("demo client id"))?,
                kind: p.kind.to_string(),
                name: p.name.clone(),
                service_id: p
                    .service_id
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|_| anyhow::anyhow!("demo service id"))?,
                price_minor: p.price_minor,
                currency: p.currency.clone(),
                credits_total: p.credits_total,
                credits_used: p.credits_used,
                credits_per_period: None,
                starts_at: p.starts_at,
                expires_at: p.expires_at,
                status: p.status.to_string(),
                created_at: p.starts_at,
                updated_at: now,
            };
            lacuna_practice::Practice::queue_plan_events(&mut tx, pseudonyms, &row, now).await?;
            let service = p.service_id.as_deref().and_then(|s| by_id.get(s));
            let (price, category) = service.map_or((facial_price, "facial"), |s| (s.price_minor, s.category.as_str()));
            let until = p.expires_at.map_or(now, |e| e.min(now));
            let plan =
                PlanFacts { plan_id: &p.id, client_id: &p.client_id, category: service.map(|s| s.category.as_str()) };
            for _ in 0..p.credits_used {
                let appointment_id = uuid::Uuid::new_v4().to_string();
                let change = PlanChange::Redeemed {
                    appointment_id: &appointment_id,
                    price_minor: price,
                    category: Some(category),
                };
                let at = rng.gen_range(p.starts_at..until.max(p.starts_at + 1));
                let event = plan_event(pseudonyms, &change, &plan, at);
                tx.enqueue_insight_event_once(&change.outbox_id(&p.id), &event.to_string(), now).await?;
            }
        }
        tx.commit().await?;
    }
    crate::jobs::deliver_insight_events(services).await
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

fn token(rng: &mut StdRng) -> String {
    (0..14)
        .map(|_| char::from(b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"[rng.gen_range(0..57)]))
        .collect()
}

/// Popular treatments are booked more: neurotoxin and facials most, fillers and colour least.
fn weighted_service(rng: &mut StdRng) -> usize {
    const WEIGHTS: &[u32] = &[14, 8, 4, 5, 2, 2, 5, 3, 4, 1, 8, 4, 4, 6, 8, 5, 6, 3, 5, 3];
    let total: u32 = WEIGHTS.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (i, w) in WEIGHTS.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    0
}

/// Local wall-clock minutes on a date in the tenant's zone → Unix seconds (DST-correct).
fn local_to_unix(tz: &TimeZone, date: Date, minutes: i64) -> anyhow::Result<i64> {
    let dt = DateTime::from_parts(date, jiff::civil::Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0)?);
    Ok(dt.to_zoned(tz.clone())?.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_is_never_booked_twice_in_one_slot() {
        let mut p = Provider {
            id: ProviderId::new(),
            location: 0,
            categories: &["facial"],
            days: [true; 7],
            busy: HashMap::new(),
        };
        let a = p.take(1, 4, 5);
        let b = p.take(1, 4, 5);
        assert_eq!(a, Some(4));
        assert_eq!(b, Some(9), "the next free run after the first booking");
        // A full day refuses.
        let per_day = (DAY_END_MIN - DAY_START_MIN) / SLOT_MIN;
        let mut q = Provider {
            id: ProviderId::new(),
            location: 0,
            categories: &["facial"],
            days: [true; 7],
            busy: HashMap::new(),
        };
        assert_eq!(q.take(2, 0, per_day), Some(0));
        assert_eq!(q.take(2, 0, 1), None);
    }

    #[test]
    fn local_times_follow_daylight_saving() {
        let tz = TimeZone::get(TIMEZONE).expect("bundled tzdb");
        let winter = local_to_unix(&tz, jiff::civil::date(2026, 1, 15), 9 * 60).expect("valid");
        let summer = local_to_unix(&tz, jiff::civil::date(2026, 7, 15), 9 * 60).expect("valid");
        // 09:00 EST is 14:00 UTC; 09:00 EDT is 13:00 UTC.
        assert_eq!(winter % 86_400, 14 * 3600);
        assert_eq!(summer % 86_400, 13 * 3600);
    }

    #[test]
    fn the_menu_and_the_weights_agree() {
        assert_eq!(MENU.len(), 20);
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..1000).all(|_| weighted_service(&mut rng) < MENU.len()));
    }
}
