//! The calendar: a day or a week at one location, one column per provider, with the open slots
//! the availability service finds (the same code as `GET /api/v1/availability`) for the chosen
//! service. Booking, rescheduling and cancelling go through the booking service, so a slot taken
//! meanwhile comes back as its `slot_taken` conflict and is shown as such.

use super::auth_pages::refused_status;
use super::form::{FieldError, Form, FormData, csrf};
use super::layout::{Nav, Page, page_head};
use super::session::{Web, WebError, WebForm, enc, redirect};
use super::time;
use crate::auth::{AppointmentsWrite, Requirement, ScheduleRead};
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use lacuna_accounts::Principal;
use lacuna_domain::{AppointmentId, ClientId, LocationId, Permission, ProviderId};
use lacuna_practice::Practice;
use lacuna_practice::availability::{AvailabilityQuery, SLOT_GRID_SECS};
use lacuna_practice::booking::{Appointment, BookingInput, ListQuery};
use lacuna_practice::catalog::{Location, Provider, Service};
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

fn query(q: &Option<String>) -> FormData {
    FormData::parse(q.as_deref().unwrap_or_default().as_bytes())
}

/// The calendar's context: zone, catalogue, and what the toolbar chose.
struct View {
    tz: TimeZone,
    locations: Vec<Location>,
    location: Option<Location>,
    services: Vec<Service>,
    service: Option<Service>,
    providers: Vec<Provider>,
    date: Date,
    week: bool,
}

impl View {
    async fn load(practice: &Practice, p: &Principal, q: &FormData) -> Result<Self, WebError> {
        let settings = practice.practice_settings(p).await?;
        let tz = time::zone(&settings.timezone);
        let locations = practice.locations(p).await?;
        let location =
            locations.iter().find(|l| l.id.to_string() == q.get("location")).or_else(|| locations.first()).cloned();
        let services: Vec<Service> = practice.services(p).await?.into_iter().filter(|s| s.active).collect();
        let service =
            services.iter().find(|s| s.id.to_string() == q.get("service")).or_else(|| services.first()).cloned();
        let providers: Vec<Provider> = practice.providers(p).await?.into_iter().filter(|p| p.row.active).collect();
        let date = time::parse_date(q.get("date")).unwrap_or_else(|| time::today(&tz));
        Ok(Self { tz, locations, location, services, service, providers, date, week: q.get("view") == "week" })
    }

    /// The calendar URL for another date/view, keeping location and service.
    fn href(&self, date: Date, week: bool) -> String {
        let mut s = format!("/calendar?date={}", time::iso(date));
        if week {
            s.push_str("&view=week");
        }
        if let Some(l) = &self.location {
            s.push_str(&format!("&location={}", l.id));
        }
        if let Some(sv) = &self.service {
            s.push_str(&format!("&service={}", sv.id));
        }
        s
    }

    fn service_name(&self, all: &[Service], id: lacuna_domain::ServiceId) -> String {
        all.iter().find(|s| s.id == id).map(|s| s.name.clone()).unwrap_or_else(|| "Service".into())
    }
}

/// Client names for the appointments shown (read through the client service, so a member
/// without `clients.read` sees no names).
async fn client_names(practice: &Practice, p: &Principal, appts: &[Appointment]) -> HashMap<ClientId, String> {
    let mut out = HashMap::new();
    if !p.permissions.contains(Permission::ClientsRead) {
        return out;
    }
    for a in appts {
        if out.contains_key(&a.client_id) {
            continue;
        }
        if let Ok(c) = practice.get_client(p, a.client_id).await {
            out.insert(a.client_id, c.name);
        }
    }
    out
}

async fn appointments_between(
    practice: &Practice,
    p: &Principal,
    from: i64,
    to: i64,
    location: Option<LocationId>,
) -> Result<Vec<Appointment>, WebError> {
    let q = ListQuery { from: Some(rfc3339(from)), to: Some(rfc3339(to)), provider_id: None, client_id: None };
    Ok(practice
        .appointments(p, q)
        .await?
        .into_iter()
        .filter(|a| a.status != "cancelled" && location.is_none_or(|l| a.location_id == l))
        .collect())
}

/// Open slots per provider from the availability service (none if it refuses, e.g. no service).
async fn open_slots(
    practice: &Practice,
    p: &Principal,
    v: &View,
    from: Date,
    to: Date,
) -> HashMap<ProviderId, Vec<i64>> {
    let (Some(service), Some(location)) = (&v.service, &v.location) else { return HashMap::new() };
    let q = AvailabilityQuery {
        service_id: service.id.to_string(),
        provider_id: None,
        location_id: Some(location.id.to_string()),
        from: time::iso(from),
        to: time::iso(to),
    };
    match practice.availability(p, q).await {
        Ok(a) => {
            a.providers.into_iter().map(|(pid, slots)| (pid, slots.iter().map(|s| s.starts_at).collect())).collect()
        }
        Err(_) => HashMap::new(),
    }
}

pub(crate) async fn calendar(
    State(st): State<AppState>,
    web: Web<ScheduleRead>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let v = View::load(&st.practice, &web.p, &q).await?;
    let can_book = web.p.permissions.contains(Permission::AppointmentsWrite);
    let ready = v.location.is_some() && !v.providers.is_empty() && !v.services.is_empty();
    let body = match (&v.location, v.providers.is_empty(), v.services.is_empty()) {
        (None, _, _) | (_, true, _) | (_, _, true) => onboarding(&web.p, &v),
        _ if v.week => week_view(&st, &web.p, &v).await?,
        _ => day_view(&st, &web.p, &v, can_book).await?,
    };
    let title =
        if v.week { format!("Week of {}", time::long_date(time::monday_of(v.date))) } else { time::long_date(v.date) };
    let page = html! {
        (page_head(&title, html! {
            @if can_book && v.service.is_some() {
                a.btn.btn-primary href=(book_href(&v, None, None)) { "New appointment" }
            }
        }))
        @if ready { (toolbar(&v)) }
        (body)
    };
    Ok(Page::new(&web, title, Nav::Calendar).notice(q.opt("notice").as_deref()).body(page))
}

fn toolbar(v: &View) -> Markup {
    let (step, label) = if v.week { (7, "week") } else { (1, "day") };
    html! {
        div.toolbar {
            div.toolbar-nav {
                a.btn.btn-quiet href=(v.href(time::add_days(v.date, -step), v.week)) aria-label=(format!("Previous {label}")) { "‹" }
                a.btn.btn-quiet href=(v.href(time::today(&v.tz), v.week)) { "Today" }
                a.btn.btn-quiet href=(v.href(time::add_days(v.date, step), v.week)) aria-label=(format!("Next {label}")) { "›" }
                div.segmented role="group" aria-label="View" {
                    a href=(v.href(v.date, false)) aria-current=[(!v.week).then_some("true")] { "Day" }
                    a href=(v.href(v.date, true)) aria-current=[v.week.then_some("true")] { "Week" }
                }
            }
            form.toolbar-form method="get" action="/calendar" data-autosubmit {
                @if v.week { input type="hidden" name="view" value="week"; }
                div.field.field-inline {
                    label for="cal-date" { "Date" }
                    input #cal-date type="date" name="date" value=(time::iso(v.date));
                }
                div.field.field-inline {
                    label for="cal-location" { "Location" }
                    select #cal-location name="location" {
                        @for l in &v.locations {
                            option value=(l.id.to_string()) selected[v.location.as_ref().is_some_and(|c| c.id == l.id)] { (l.name) }
                        }
                    }
                }
                div.field.field-inline {
                    label for="cal-service" { "Open slots for" }
                    select #cal-service name="service" {
                        @for s in &v.services {
                            option value=(s.id.to_string()) selected[v.service.as_ref().is_some_and(|c| c.id == s.id)] {
                                (s.name) " (" (s.duration_min) " min)"
                            }
                        }
                    }
                }
                button.btn.btn-secondary type="submit" { "Show" }
            }
        }
    }
}

fn onboarding(p: &Principal, v: &View) -> Markup {
    let manage = p.permissions.contains(Permission::CatalogManage);
    let step = |done: bool, text: &str, href: &str| {
        html! {
            li.done[done] {
                span.check aria-hidden="true" { @if done { "✓" } @else { "○" } }
                @if manage && !done { a href=(href) { (text) } } @else { (text) }
            }
        }
    };
    html! {
        section.card.empty {
            h2 { "Set up your calendar" }
            p.muted { "Three steps and the calendar is ready for bookings." }
            ol.checklist {
                (step(v.location.is_some(), "Add a location", "/settings/locations"))
                (step(!v.services.is_empty(), "Add your services", "/settings/services"))
                (step(!v.providers.is_empty(), "Add providers and their working hours", "/settings/providers"))
            }
            @if !manage { p.muted { "Ask an owner or manager to finish the setup." } }
        }
    }
}

fn book_href(v: &View, provider: Option<ProviderId>, at: Option<i64>) -> String {
    let mut s = String::from("/calendar/book?");
    if let Some(sv) = &v.service {
        s.push_str(&format!("service_id={}", sv.id));
    }
    if let Some(l) = &v.location {
        s.push_str(&format!("&location_id={}", l.id));
    }
    if let Some(p) = provider {
        s.push_str(&format!("&provider_id={p}"));
    }
    let date = at.and_then(|t| time::date_of(t, &v.tz)).unwrap_or(v.date);
    s.push_str(&format!("&date={}", time::iso(date)));
    if let Some(t) = at {
        s.push_str(&format!("&time={}", enc(&time::clock(t, &v.tz))));
    }
    s
}

/// The instant of the local wall-clock time `minute` after midnight on `date` (so the rows of a
/// daylight-saving day are labelled with the times people read on the clock).
fn at_minute(date: Date, minute: i64, tz: &TimeZone) -> i64 {
    let (h, m) = (i8::try_from(minute / 60).ok(), i8::try_from(minute % 60).ok());
    h.zip(m)
        .and_then(|(h, m)| jiff::civil::Time::new(h, m, 0, 0).ok())
        .and_then(|t| date.to_datetime(t).to_zoned(tz.clone()).ok())
        .map_or_else(|| time::start_of(date, tz) + minute * 60, |z| z.timestamp().as_second())
}

async fn day_view(st: &AppState, p: &Principal, v: &View, can_book: bool) -> Result<Markup, WebError> {
    let location = v.location.as_ref().map(|l| l.id);
    let from = time::start_of(v.date, &v.tz);
    let to = time::start_of(time::add_days(v.date, 1), &v.tz);
    let appts = appointments_between(&st.practice, p, from, to, location).await?;
    let slots = open_slots(&st.practice, p, v, v.date, v.date).await;
    let names = client_names(&st.practice, p, &appts).await;
    let all_services = st.practice.services(p).await?;
    let weekday = i64::from(v.date.weekday().to_monday_zero_offset());

    // Columns: providers working here that day, or with an appointment here that day.
    let columns: Vec<&Provider> = v
        .providers
        .iter()
        .filter(|pr| {
            pr.hours.iter().any(|h| Some(h.location_id) == location && h.weekday == weekday)
                || appts.iter().any(|a| a.provider_id == pr.row.id)
        })
        .collect();
    if columns.is_empty() {
        return Ok(html! {
            section.card.empty {
                h2 { "Nobody works here on this day" }
                p.muted { "Working hours are set per provider in " a href="/settings/providers" { "Settings → Providers" } "." }
            }
        });
    }
    // Rows: 15-minute steps from the earliest start to the latest end of the day.
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    for pr in &columns {
        for h in pr.hours.iter().filter(|h| Some(h.location_id) == location && h.weekday == weekday) {
            first = first.min(h.start_min);
            last = last.max(h.end_min);
        }
    }
    for a in &appts {
        first = first.min((a.starts_at - from) / 60);
        last = last.max((a.ends_at - from + 59) / 60);
    }
    let step = SLOT_GRID_SECS / 60;
    let first = (first.clamp(0, 1440) / step) * step;
    let last = last.clamp(first + step, 1440);
    let rows: Vec<i64> = (first..last).step_by(step as usize).collect();
    let grid = day_grid(v, &rows, &columns, &appts, &slots, location, weekday);
    let service_name = v.service.as_ref().map(|s| s.name.as_str()).unwrap_or("");

    Ok(html! {
        div.calendar-scroll {
            table.calendar {
                caption.visually-hidden { "Appointments and open slots by provider" }
                thead {
                    tr {
                        th.time-col scope="col" { span.visually-hidden { "Time" } }
                        @for pr in &columns { th scope="col" { (pr.row.name) } }
                    }
                }
                tbody {
                    @for (minute, cells) in rows.iter().zip(&grid) {
                        @let t = at_minute(v.date, *minute, &v.tz);
                        tr.hour-start[minute % 60 == 0] {
                            th.time-col scope="row" {
                                @if minute % 30 == 0 { (time::clock(t, &v.tz)) }
                            }
                            @for (cell, pr) in cells.iter().zip(&columns) {
                                @match cell {
                                    Cell::Covered => {}
                                    Cell::Appt(a, span) => {
                                        td.appt rowspan=(span) {
                                            a.appt-card.(format!("status-{}", a.status)) href=(format!("/calendar/appointments/{}", a.id)) {
                                                span.appt-time { (time::clock(a.starts_at, &v.tz)) "–" (time::clock(a.ends_at, &v.tz)) }
                                                span.appt-client { (names.get(&a.client_id).map(String::as_str).unwrap_or("Client")) }
                                                span.appt-service { (v.service_name(&all_services, a.service_id)) }
                                            }
                                        }
                                    }
                                    Cell::Open => {
                                        td.open {
                                            @if can_book {
                                                a.slot href=(book_href(v, Some(pr.row.id), Some(t)))
                                                    aria-label=(format!("Book {service_name} with {} at {}", pr.row.name, time::clock(t, &v.tz))) {
                                                    "+ " (time::clock(t, &v.tz))
                                                }
                                            } @else {
                                                span.slot { (time::clock(t, &v.tz)) " open" }
                                            }
                                        }
                                    }
                                    Cell::Working => { td.working {} }
                                    Cell::Off => { td.off {} }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.legend {
            span.legend-item.legend-open { "Open for " (v.service.as_ref().map(|s| s.name.as_str()).unwrap_or("")) }
            span.legend-item.legend-busy { "Booked" }
            span.legend-item.legend-off { "Not working" }
        }
    })
}

/// One cell of the day grid.
enum Cell<'a> {
    /// Under an appointment that started in an earlier row (`rowspan`).
    Covered,
    Appt(&'a Appointment, usize),
    Open,
    Working,
    Off,
}

/// Lays out the day: per row (15 minutes) and provider column, an appointment spanning its
/// rows, an open slot, free working time, or time off.
fn day_grid<'a>(
    v: &View,
    rows: &[i64],
    columns: &[&Provider],
    appts: &'a [Appointment],
    slots: &HashMap<ProviderId, Vec<i64>>,
    location: Option<LocationId>,
    weekday: i64,
) -> Vec<Vec<Cell<'a>>> {
    let mut covered_until = vec![0usize; columns.len()];
    let mut grid = Vec::with_capacity(rows.len());
    for (i, minute) in rows.iter().enumerate() {
        let t = at_minute(v.date, *minute, &v.tz);
        let mut cells = Vec::with_capacity(columns.len());
        for (j, pr) in columns.iter().enumerate() {
            if covered_until[j] > i {
                cells.push(Cell::Covered);
                continue;
            }
            let starting = appts
                .iter()
                .find(|a| a.provider_id == pr.row.id && a.starts_at >= t && a.starts_at < t + SLOT_GRID_SECS);
            let cell = if let Some(a) = starting {
                let span = usize::try_from((a.ends_at - t + SLOT_GRID_SECS - 1) / SLOT_GRID_SECS)
                    .unwrap_or(1)
                    .clamp(1, rows.len() - i);
                covered_until[j] = i + span;
                Cell::Appt(a, span)
            } else if slots.get(&pr.row.id).is_some_and(|s| s.contains(&t)) {
                Cell::Open
            } else if pr.hours.iter().any(|h| {
                Some(h.location_id) == location && h.weekday == weekday && h.start_min <= *minute && *minute < h.end_min
            }) {
                Cell::Working
            } else {
                Cell::Off
            };
            cells.push(cell);
        }
        grid.push(cells);
    }
    grid
}

async fn week_view(st: &AppState, p: &Principal, v: &View) -> Result<Markup, WebError> {
    let location = v.location.as_ref().map(|l| l.id);
    let monday = time::monday_of(v.date);
    let days: Vec<Date> = (0..7).map(|i| time::add_days(monday, i)).collect();
    let from = time::start_of(monday, &v.tz);
    let to = time::start_of(time::add_days(monday, 7), &v.tz);
    let appts = appointments_between(&st.practice, p, from, to, location).await?;
    let slots = open_slots(&st.practice, p, v, monday, time::add_days(monday, 6)).await;
    let names = client_names(&st.practice, p, &appts).await;
    let all_services = st.practice.services(p).await?;
    let columns: Vec<&Provider> = v
        .providers
        .iter()
        .filter(|pr| {
            pr.hours.iter().any(|h| Some(h.location_id) == location) || appts.iter().any(|a| a.provider_id == pr.row.id)
        })
        .collect();
    let mut by_cell: BTreeMap<(usize, ProviderId), Vec<&Appointment>> = BTreeMap::new();
    for a in &appts {
        if let Some(d) = time::date_of(a.starts_at, &v.tz).and_then(|d| days.iter().position(|x| *x == d)) {
            by_cell.entry((d, a.provider_id)).or_default().push(a);
        }
    }
    let open_count = |d: Date, pid: ProviderId| -> usize {
        slots.get(&pid).map(|s| s.iter().filter(|t| time::date_of(**t, &v.tz) == Some(d)).count()).unwrap_or(0)
    };
    Ok(html! {
        div.calendar-scroll {
            table.calendar.week {
                caption.visually-hidden { "The week's appointments by day and provider" }
                thead {
                    tr {
                        th.day-col scope="col" { span.visually-hidden { "Day" } }
                        @for pr in &columns { th scope="col" { (pr.row.name) } }
                    }
                }
                tbody {
                    @for (i, d) in days.iter().enumerate() {
                        tr.today[*d == time::today(&v.tz)] {
                            th.day-col scope="row" { a href=(v.href(*d, false)) { (time::short_date(*d)) } }
                            @for pr in &columns {
                                td {
                                    @if let Some(list) = by_cell.get(&(i, pr.row.id)) {
                                        ul.week-list {
                                            @for a in list {
                                                li {
                                                    a.appt-chip href=(format!("/calendar/appointments/{}", a.id)) {
                                                        span.appt-time { (time::clock(a.starts_at, &v.tz)) }
                                                        " " (names.get(&a.client_id).map(String::as_str).unwrap_or("Client"))
                                                        span.appt-service { " · " (v.service_name(&all_services, a.service_id)) }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    @let n = open_count(*d, pr.row.id);
                                    @if n > 0 {
                                        a.open-count href=(v.href(*d, false)) { (n) " open" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

// ---- booking -----------------------------------------------------------------------------------

const BOOK_FIELDS: &[&str] = &["client_id", "service_id", "provider_id", "location_id", "date", "time"];

async fn book_form<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    values: &FormData,
    error: Option<&FieldError>,
) -> Result<Page, WebError> {
    let p = &web.p;
    let mut clients: Vec<(String, String)> = vec![(String::new(), "Choose a client…".into())];
    let recent = st.practice.search_clients(p, None, 50).await?;
    let chosen = values.get("client_id");
    if !recent.iter().any(|c| c.id.to_string() == chosen)
        && let Ok(id) = chosen.parse::<ClientId>()
        && let Ok(c) = st.practice.get_client(p, id).await
    {
        clients.push((c.id.to_string(), c.name.clone()));
    }
    clients.extend(recent.iter().map(|c| {
        let detail = c.email.clone().or_else(|| c.phone.clone()).map(|d| format!(" — {d}")).unwrap_or_default();
        (c.id.to_string(), format!("{}{detail}", c.name))
    }));
    let services: Vec<(String, String)> = st
        .practice
        .services(p)
        .await?
        .into_iter()
        .filter(|s| s.active)
        .map(|s| (s.id.to_string(), format!("{} ({} min)", s.name, s.duration_min)))
        .collect();
    let providers: Vec<(String, String)> = st
        .practice
        .providers(p)
        .await?
        .into_iter()
        .filter(|p| p.row.active)
        .map(|p| (p.row.id.to_string(), p.row.name))
        .collect();
    let locations: Vec<(String, String)> =
        st.practice.locations(p).await?.into_iter().map(|l| (l.id.to_string(), l.name)).collect();
    let f = Form::new(values, error, BOOK_FIELDS);
    let back = format!(
        "/calendar?date={}&location={}&service={}",
        enc(values.get("date")),
        enc(values.get("location_id")),
        enc(values.get("service_id"))
    );
    let body = html! {
        (page_head("New appointment", html! { a.btn.btn-quiet href=(back) { "Back to calendar" } }))
        section.card.form-card {
            (f.banner())
            form method="post" action="/calendar/book" {
                (csrf(&web.csrf))
                (f.select("client_id", "Client", &clients, Some("The 50 most recently added clients. Add a new one under Clients.")))
                (f.select("service_id", "Service", &services, None))
                (f.select("provider_id", "Provider", &providers, None))
                (f.select("location_id", "Location", &locations, None))
                div.field-row {
                    (f.input("date", "Date", "date", None, true))
                    (f.input("time", "Time", "time", None, true))
                }
                div.form-actions {
                    button.btn.btn-primary type="submit" { "Book appointment" }
                    a.btn.btn-quiet href=(back) { "Cancel" }
                }
            }
        }
    };
    Ok(Page::new(web, "New appointment", Nav::Calendar).body(body))
}

pub(crate) async fn book_page(
    State(st): State<AppState>,
    web: Web<AppointmentsWrite>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    book_form(&st, &web, &q, None).await
}

/// Errors about the start instant are shown beside the time field.
fn at_time_field(mut e: FieldError) -> FieldError {
    if e.field.as_deref() == Some("starts_at") {
        e.field = Some("time".into());
    }
    if e.code == "slot_taken" {
        e.beside = Some("Pick another time: the calendar shows what is still open.".into());
    }
    e
}

pub(crate) async fn book(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<AppointmentsWrite>,
) -> Result<Response, WebError> {
    let settings = st.practice.practice_settings(&web.p).await?;
    let tz = time::zone(&settings.timezone);
    let result = match time::local_rfc3339(form.get("date"), form.get("time"), &tz) {
        None => Err(FieldError::invalid("time", "Enter a date and a time (HH:MM).")),
        Some(starts_at) => {
            let input = BookingInput {
                client_id: form.get("client_id").to_string(),
                service_id: form.get("service_id").to_string(),
                provider_id: form.get("provider_id").to_string(),
                location_id: form.get("location_id").to_string(),
                starts_at,
            };
            st.practice.book(&web.p, input).await.map_err(|e| at_time_field(ApiError::from(e).into()))
        }
    };
    match result {
        Ok(a) => Ok(redirect(&format!(
            "/calendar?date={}&location={}&service={}&notice=booked",
            time::date_of(a.starts_at, &tz).map(time::iso).unwrap_or_default(),
            a.location_id,
            a.service_id
        ))),
        Err(e) => {
            let status = refused_status(&e);
            Ok(book_form(&st, &web, &form, Some(&e)).await?.status(status).into_response())
        }
    }
}

// ---- one appointment ---------------------------------------------------------------------------

/// Which of the appointment's forms was refused, with what was typed.
enum Refused {
    None,
    Reschedule(FormData, FieldError),
    Cancel(FormData, FieldError),
    Status(FieldError),
}

async fn appointment_page<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    id: AppointmentId,
    refused: Refused,
    notice: Option<&str>,
) -> Result<Page, WebError> {
    let p = &web.p;
    let a = st.practice.get_appointment(p, id).await?;
    let settings = st.practice.practice_settings(p).await?;
    let tz = time::zone(&settings.timezone);
    let service = st.practice.get_service(p, a.service_id).await.ok();
    let providers = st.practice.providers(p).await?;
    let provider_name =
        providers.iter().find(|pr| pr.row.id == a.provider_id).map(|pr| pr.row.name.clone()).unwrap_or_default();
    let location = st.practice.locations(p).await?.into_iter().find(|l| l.id == a.location_id);
    let client = if p.permissions.contains(Permission::ClientsRead) {
        st.practice.get_client(p, a.client_id).await.ok()
    } else {
        None
    };
    let can_write = p.permissions.contains(Permission::AppointmentsWrite) && a.status == "booked";
    let day = time::date_of(a.starts_at, &tz).map(time::iso).unwrap_or_default();

    let resched_default = FormData::from_pairs([
        ("date", day.clone()),
        ("time", time::clock(a.starts_at, &tz)),
        ("provider_id", a.provider_id.to_string()),
    ]);
    let cancel_default = FormData::from_pairs([("by", "client")]);
    let (rv, re, cv, ce, se) = match &refused {
        Refused::None => (&resched_default, None, &cancel_default, None, None),
        Refused::Reschedule(v, e) => (v, Some(e), &cancel_default, None, None),
        Refused::Cancel(v, e) => (&resched_default, None, v, Some(e), None),
        Refused::Status(e) => (&resched_default, None, &cancel_default, None, Some(e)),
    };
    let provider_options: Vec<(String, String)> = providers
        .iter()
        .filter(|pr| pr.row.active && pr.service_ids.contains(&a.service_id))
        .map(|pr| (pr.row.id.to_string(), pr.row.name.clone()))
        .collect();
    let rf = Form::new(rv, re, &["date", "time", "provider_id"]);
    let cf = Form::new(cv, ce, &["reason", "by"]);
    let by_options =
        vec![("client".to_string(), "The client".to_string()), ("practice".to_string(), "The practice".to_string())];
    let back = format!("/calendar?date={day}&location={}&service={}", a.location_id, a.service_id);
    let title = service.as_ref().map(|s| s.name.clone()).unwrap_or_else(|| "Appointment".into());

    let body = html! {
        (page_head(&title, html! { a.btn.btn-quiet href=(back) { "Back to calendar" } }))
        div.grid-2 {
            section.card {
                h2 { "Details" }
                dl.facts {
                    dt { "When" } dd { (time::day_time(a.starts_at, &tz)) "–" (time::clock(a.ends_at, &tz)) }
                    dt { "Client" } dd {
                        @if let Some(c) = &client { a href=(format!("/clients/{}", c.id)) { (c.name) } } @else { "—" }
                    }
                    dt { "Provider" } dd { (provider_name) }
                    dt { "Location" } dd { (location.map(|l| l.name).unwrap_or_default()) }
                    dt { "Price" } dd { (super::form::amount(a.price_minor)) " " (a.currency) }
                    dt { "Status" } dd { span.pill.(format!("status-{}", a.status)) { (a.status.replace('_', "-")) } }
                    @if let Some(r) = &a.cancel_reason {
                        dt { "Cancelled" } dd { (r) " (by " (a.cancelled_by.clone().unwrap_or_default()) ")" }
                    }
                }
                @if let Some(e) = se { div.alert.alert-error role="alert" { (e.message) } }
                @if can_write {
                    div.form-actions {
                        form method="post" action=(format!("/calendar/appointments/{}/complete", a.id)) {
                            (csrf(&web.csrf)) button.btn.btn-secondary type="submit" { "Mark completed" }
                        }
                        form method="post" action=(format!("/calendar/appointments/{}/no-show", a.id)) {
                            (csrf(&web.csrf)) button.btn.btn-quiet type="submit" { "Mark no-show" }
                        }
                    }
                }
            }
            @if can_write {
                div.stack {
                    section.card {
                        h2 { "Reschedule" }
                        (rf.banner())
                        form method="post" action=(format!("/calendar/appointments/{}/reschedule", a.id)) {
                            (csrf(&web.csrf))
                            div.field-row {
                                (rf.input("date", "Date", "date", None, true))
                                (rf.input("time", "Time", "time", None, true))
                            }
                            (rf.select("provider_id", "Provider", &provider_options, None))
                            button.btn.btn-primary type="submit" { "Move appointment" }
                        }
                    }
                    section.card {
                        h2 { "Cancel" }
                        (cf.banner())
                        form method="post" action=(format!("/calendar/appointments/{}/cancel", a.id)) {
                            (csrf(&web.csrf))
                            (cf.textarea("reason", "Reason", Some("Kept with the appointment; never sent to the client.")))
                            (cf.select("by", "Cancelled by", &by_options, None))
                            button.btn.btn-danger type="submit" { "Cancel appointment" }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::new(web, title, Nav::Calendar).notice(notice).body(body))
}

pub(crate) async fn appointment(
    State(st): State<AppState>,
    web: Web<ScheduleRead>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let id: AppointmentId = parse_id(&id)?;
    let q = query(&q);
    appointment_page(&st, &web, id, Refused::None, q.opt("notice").as_deref()).await
}

pub(crate) async fn reschedule(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, form }: WebForm<AppointmentsWrite>,
) -> Result<Response, WebError> {
    let id: AppointmentId = parse_id(&id)?;
    let settings = st.practice.practice_settings(&web.p).await?;
    let tz = time::zone(&settings.timezone);
    let result = match time::local_rfc3339(form.get("date"), form.get("time"), &tz) {
        None => Err(FieldError::invalid("time", "Enter a date and a time (HH:MM).")),
        Some(starts_at) => st
            .practice
            .reschedule(&web.p, id, Some(starts_at), form.opt("provider_id"))
            .await
            .map_err(|e| at_time_field(ApiError::from(e).into())),
    };
    match result {
        Ok(a) => Ok(redirect(&format!("/calendar/appointments/{}?notice=rescheduled", a.id))),
        Err(e) => {
            let status = refused_status(&e);
            Ok(appointment_page(&st, &web, id, Refused::Reschedule(form, e), None)
                .await?
                .status(status)
                .into_response())
        }
    }
}

pub(crate) async fn cancel(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, form }: WebForm<AppointmentsWrite>,
) -> Result<Response, WebError> {
    let id: AppointmentId = parse_id(&id)?;
    match st.practice.cancel(&web.p, id, form.opt("reason"), form.opt("by")).await {
        Ok(a) => Ok(redirect(&format!("/calendar/appointments/{}?notice=cancelled", a.id))),
        Err(e) => {
            let e: FieldError = ApiError::from(e).into();
            let status = refused_status(&e);
            Ok(appointment_page(&st, &web, id, Refused::Cancel(form, e), None).await?.status(status).into_response())
        }
    }
}

async fn finish(st: &AppState, web: &Web<AppointmentsWrite>, id: &str, complete: bool) -> Result<Response, WebError> {
    let id: AppointmentId = parse_id(id)?;
    let result = if complete { st.practice.complete(&web.p, id).await } else { st.practice.no_show(&web.p, id).await };
    match result {
        Ok(a) => Ok(redirect(&format!(
            "/calendar/appointments/{}?notice={}",
            a.id,
            if complete { "completed" } else { "no_show" }
        ))),
        Err(e) => {
            let e: FieldError = ApiError::from(e).into();
            let status = refused_status(&e);
            Ok(appointment_page(st, web, id, Refused::Status(e), None).await?.status(status).into_response())
        }
    }
}

pub(crate) async fn complete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, .. }: WebForm<AppointmentsWrite>,
) -> Result<Response, WebError> {
    finish(&st, &web, &id, true).await
}

pub(crate) async fn no_show(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, .. }: WebForm<AppointmentsWrite>,
) -> Result<Response, WebError> {
    finish(&st, &web, &id, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_wall_clock_on_daylight_saving_days() {
        let tz = TimeZone::get("America/New_York").unwrap_or(TimeZone::UTC);
        // 2026-03-08: clocks go from 02:00 to 03:00. 09:00 local is 13:00Z, not 14:00Z.
        let spring = Date::new(2026, 3, 8).unwrap_or_default();
        assert_eq!(crate::routes::rfc3339(at_minute(spring, 9 * 60, &tz)), "2026-03-08T13:00:00Z");
        // 2026-11-01: clocks go back; 09:00 local is 14:00Z.
        let fall = Date::new(2026, 11, 1).unwrap_or_default();
        assert_eq!(crate::routes::rfc3339(at_minute(fall, 9 * 60, &tz)), "2026-11-01T14:00:00Z");
    }
}
