//! Settings: the practice (time zone, currency, reminders), locations, services (with treatment
//! cycle and follow-up), providers and weekly hours, members (roles, narrowed permissions,
//! invitations), the MFA policy, and the message channel. Every write goes through the
//! catalogue and accounts services the API uses, under the same route requirements.

use super::auth_pages::{policy_label, refused_status};
use super::form::{FieldError, Form, FormData, amount, csrf, int, money};
use super::layout::{Nav, Page, page_head, subnav};
use super::session::{Web, WebError, WebForm, redirect};
use super::time;
use crate::auth::{CatalogManage, MembersManage, MembersRead, MessagesRead, MfaSelf, Requirement, TenantSettings};
use crate::routes::parse_id;
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use lacuna_accounts::{MemberChange, NewMember, Principal};
use lacuna_domain::{MfaPolicy, Permission, PermissionSet, ProviderId, Role, ServiceId, UserId};
use lacuna_practice::catalog::{CATEGORIES, HoursInput, ProviderPatch, ServicePatch, SettingsPatch};
use maud::{Markup, html};

fn query(q: &Option<String>) -> FormData {
    FormData::parse(q.as_deref().unwrap_or_default().as_bytes())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Practice,
    Locations,
    Services,
    Providers,
    Members,
    Security,
    Messages,
}

fn tabs(p: &Principal, current: Tab) -> Markup {
    let can = |perm| p.permissions.contains(perm);
    let mut items = Vec::new();
    if can(Permission::CatalogManage) {
        items.push(("/settings", "Practice", current == Tab::Practice));
        items.push(("/settings/locations", "Locations", current == Tab::Locations));
        items.push(("/settings/services", "Services", current == Tab::Services));
        items.push(("/settings/providers", "Providers & hours", current == Tab::Providers));
    }
    if can(Permission::MembersRead) {
        items.push(("/settings/members", "Members", current == Tab::Members));
    }
    items.push(("/settings/security", "Security", current == Tab::Security));
    if can(Permission::MessagesRead) {
        items.push(("/settings/messages", "Messages", current == Tab::Messages));
    }
    subnav(&items)
}

fn settings_page<R: Requirement>(web: &Web<R>, tab: Tab, title: &str, notice: Option<&str>, body: Markup) -> Page {
    let content = html! {
        (page_head("Settings", html! {}))
        (tabs(&web.p, tab))
        h2.section-title { (title) }
        (body)
    };
    Page::new(web, format!("{title} · Settings"), Nav::Settings).notice(notice).body(content)
}

fn refused<R: Requirement>(web: &Web<R>, tab: Tab, title: &str, e: &FieldError, body: Markup) -> Response {
    settings_page(web, tab, title, None, body).status(refused_status(e)).into_response()
}

fn field_error(e: impl Into<ApiError>) -> FieldError {
    e.into().into()
}

// ---- practice ----------------------------------------------------------------------------------

const PRACTICE_FIELDS: &[&str] = &["timezone", "currency", "reminder_lead_hours", "notes_phi_policy"];

fn practice_form<R: Requirement>(web: &Web<R>, values: &FormData, error: Option<&FieldError>) -> Markup {
    let f = Form::new(values, error, PRACTICE_FIELDS);
    html! {
        section.card.form-card {
            (f.banner())
            form method="post" action="/settings" {
                (csrf(&web.csrf))
                (f.input("timezone", "Time zone", "text", Some("IANA name, e.g. America/New_York or Europe/London. Working hours are in this zone."), true))
                (f.input("currency", "Currency", "text", Some("Three-letter code, e.g. USD."), true))
                (f.input("reminder_lead_hours", "Send reminders this many hours ahead", "number", None, true))
                (f.select("notes_phi_policy", "Client notes that look clinical or identifying", &[
                    ("warn".to_string(), "Save them with a warning".to_string()),
                    ("reject".to_string(), "Refuse them".to_string()),
                ], Some("Notes hold non-clinical information only; the same guard as Insight checks them.")))
                button.btn.btn-primary type="submit" { "Save" }
            }
        }
    }
}

pub(crate) async fn practice_page(
    State(st): State<AppState>,
    web: Web<CatalogManage>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let s = st.practice.practice_settings(&web.p).await?;
    let values = FormData::from_pairs([
        ("timezone", s.timezone),
        ("currency", s.currency),
        ("reminder_lead_hours", s.reminder_lead_hours.to_string()),
        ("notes_phi_policy", s.notes_phi_policy),
    ]);
    Ok(settings_page(&web, Tab::Practice, "Practice", q.opt("notice").as_deref(), practice_form(&web, &values, None)))
}

pub(crate) async fn practice_save(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    let result = async {
        let patch = SettingsPatch {
            timezone: form.opt("timezone"),
            currency: form.opt("currency"),
            reminder_lead_hours: int(&form, "reminder_lead_hours")?,
            notes_phi_policy: form.opt("notes_phi_policy"),
        };
        st.practice.update_practice_settings(&web.p, patch).await.map_err(field_error)
    }
    .await;
    match result {
        Ok(_) => Ok(redirect("/settings?notice=saved")),
        Err(e) => Ok(refused(&web, Tab::Practice, "Practice", &e, practice_form(&web, &form, Some(&e)))),
    }
}

// ---- locations ---------------------------------------------------------------------------------

async fn locations_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    values: &FormData,
    error: Option<&FieldError>,
) -> Result<Markup, WebError> {
    let list = st.practice.locations(&web.p).await?;
    let f = Form::new(values, error, &["name"]);
    Ok(html! {
        div.grid-2 {
            section.card {
                @if list.is_empty() { p.muted { "No locations yet. Add the first one: the calendar is per location." } }
                @else { ul.simple-list { @for l in &list { li { (l.name) } } } }
            }
            section.card {
                h3 { "Add a location" }
                (f.banner())
                form method="post" action="/settings/locations" {
                    (csrf(&web.csrf))
                    (f.input("name", "Name", "text", Some("For example “Downtown” or “Main studio”."), true))
                    button.btn.btn-primary type="submit" { "Add location" }
                }
            }
        }
    })
}

pub(crate) async fn locations_page(
    State(st): State<AppState>,
    web: Web<CatalogManage>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let body = locations_body(&st, &web, &FormData::default(), None).await?;
    Ok(settings_page(&web, Tab::Locations, "Locations", q.opt("notice").as_deref(), body))
}

pub(crate) async fn location_create(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    match st.practice.create_location(&web.p, form.get("name")).await {
        Ok(_) => Ok(redirect("/settings/locations?notice=created")),
        Err(e) => {
            let e = field_error(e);
            let body = locations_body(&st, &web, &form, Some(&e)).await?;
            Ok(refused(&web, Tab::Locations, "Locations", &e, body))
        }
    }
}

// ---- services ----------------------------------------------------------------------------------

const SERVICE_FIELDS: &[&str] =
    &["name", "category", "duration_min", "buffer_min", "price_minor", "cycle_days", "follow_up_days", "active"];

fn service_form<R: Requirement>(
    web: &Web<R>,
    action: &str,
    values: &FormData,
    error: Option<&FieldError>,
    submit: &str,
) -> Markup {
    let f = Form::new(values, error, SERVICE_FIELDS);
    let categories: Vec<(String, String)> =
        CATEGORIES.iter().map(|c| (c.to_string(), c[..1].to_uppercase() + &c[1..])).collect();
    html! {
        (f.banner())
        form method="post" action=(action) {
            (csrf(&web.csrf))
            (f.input("name", "Name", "text", None, true))
            (f.select("category", "Category", &categories, None))
            div.field-row {
                (f.input("duration_min", "Duration (minutes)", "number", None, true))
                (f.input("buffer_min", "Buffer after (minutes)", "number", Some("Clean-up time kept free."), false))
            }
            (f.input("price_minor", "Price", "text", Some("In your currency, e.g. 120 or 120.50."), true))
            div.field-row {
                (f.input("cycle_days", "Treatment cycle (days)", "number", Some("When the client is due again, e.g. 90 for neurotoxin."), false))
                (f.input("follow_up_days", "Follow-up (days)", "number", Some("When a check-in is due, e.g. 14."), false))
            }
            @if values.has("editing") { (f.checkbox("active", "Bookable", None)) }
            button.btn.btn-primary type="submit" { (submit) }
        }
    }
}

fn service_patch(form: &FormData, editing: bool) -> Result<ServicePatch, FieldError> {
    Ok(ServicePatch {
        name: Some(form.get("name").to_string()),
        category: Some(form.get("category").to_string()),
        duration_min: int(form, "duration_min")?,
        buffer_min: int(form, "buffer_min")?,
        price_minor: money(form, "price_minor")?,
        currency: None,
        cycle_days: int(form, "cycle_days")?,
        follow_up_days: int(form, "follow_up_days")?,
        active: editing.then(|| form.has("active")),
    })
}

async fn services_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    values: &FormData,
    error: Option<&FieldError>,
) -> Result<Markup, WebError> {
    let list = st.practice.services(&web.p).await?;
    Ok(html! {
        div.grid-2.grid-wide-left {
            section.card {
                @if list.is_empty() {
                    p.muted { "No services yet." }
                } @else {
                    table.table {
                        thead { tr {
                            th scope="col" { "Service" } th scope="col" { "Duration" } th scope="col" { "Price" }
                            th scope="col" { "Cycle" } th scope="col" { "Follow-up" }
                        } }
                        tbody {
                            @for s in &list {
                                tr.inactive[!s.active] {
                                    td { a href=(format!("/settings/services/{}", s.id)) { (s.name) } br; span.muted.small { (s.category) } }
                                    td { (s.duration_min) " min" @if s.buffer_min > 0 { span.muted.small { " +" (s.buffer_min) } } }
                                    td { (amount(s.price_minor)) " " (s.currency) }
                                    td { @if let Some(c) = s.cycle_days { (c) " days" } @else { "—" } }
                                    td { @if let Some(c) = s.follow_up_days { (c) " days" } @else { "—" } }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h3 { "Add a service" }
                (service_form(web, "/settings/services", values, error, "Add service"))
            }
        }
    })
}

pub(crate) async fn services_page(
    State(st): State<AppState>,
    web: Web<CatalogManage>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let defaults = FormData::from_pairs([("duration_min", "60"), ("buffer_min", "0"), ("category", "facial")]);
    let body = services_body(&st, &web, &defaults, None).await?;
    Ok(settings_page(&web, Tab::Services, "Services", q.opt("notice").as_deref(), body))
}

pub(crate) async fn service_create(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    let result = async {
        let patch = service_patch(&form, false)?;
        st.practice.create_service(&web.p, patch).await.map_err(field_error)
    }
    .await;
    match result {
        Ok(_) => Ok(redirect("/settings/services?notice=created")),
        Err(e) => {
            let body = services_body(&st, &web, &form, Some(&e)).await?;
            Ok(refused(&web, Tab::Services, "Services", &e, body))
        }
    }
}

fn service_values(s: &lacuna_practice::catalog::Service) -> FormData {
    let mut v = FormData::from_pairs([
        ("editing", "1".to_string()),
        ("name", s.name.clone()),
        ("category", s.category.clone()),
        ("duration_min", s.duration_min.to_string()),
        ("buffer_min", s.buffer_min.to_string()),
        ("price_minor", amount(s.price_minor)),
        ("cycle_days", s.cycle_days.map(|d| d.to_string()).unwrap_or_default()),
        ("follow_up_days", s.follow_up_days.map(|d| d.to_string()).unwrap_or_default()),
    ]);
    if s.active {
        v.set("active", "on");
    }
    v
}

pub(crate) async fn service_page(
    State(st): State<AppState>,
    web: Web<CatalogManage>,
    Path(id): Path<String>,
) -> Result<Page, WebError> {
    let id: ServiceId = parse_id(&id)?;
    let s = st.practice.get_service(&web.p, id).await?;
    let body = html! {
        section.card.form-card { (service_form(&web, &format!("/settings/services/{id}"), &service_values(&s), None, "Save service")) }
    };
    Ok(settings_page(&web, Tab::Services, &s.name, None, body))
}

pub(crate) async fn service_update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, mut form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    let id: ServiceId = parse_id(&id)?;
    let result = async {
        let patch = service_patch(&form, true)?;
        st.practice.update_service(&web.p, id, patch).await.map_err(field_error)
    }
    .await;
    match result {
        Ok(_) => Ok(redirect("/settings/services?notice=saved")),
        Err(e) => {
            form.set("editing", "1");
            let body = html! { section.card.form-card { (service_form(&web, &format!("/settings/services/{id}"), &form, Some(&e), "Save service")) } };
            Ok(refused(&web, Tab::Services, "Edit service", &e, body))
        }
    }
}

// ---- providers and hours -----------------------------------------------------------------------

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// `Mon, Tue, Fri`
fn working_days(pr: &lacuna_practice::catalog::Provider) -> String {
    let mut days: Vec<i64> = pr.hours.iter().map(|h| h.weekday).collect();
    days.sort_unstable();
    days.dedup();
    days.iter().filter_map(|d| WEEKDAYS.get(*d as usize)).map(|d| &d[..3]).collect::<Vec<_>>().join(", ")
}

async fn service_options(st: &AppState, p: &Principal) -> Result<Vec<(String, String)>, WebError> {
    Ok(st.practice.services(p).await?.into_iter().filter(|s| s.active).map(|s| (s.id.to_string(), s.name)).collect())
}

fn provider_form<R: Requirement>(
    web: &Web<R>,
    action: &str,
    values: &FormData,
    error: Option<&FieldError>,
    services: &[(String, String)],
    submit: &str,
) -> Markup {
    let f = Form::new(values, error, &["name", "service_ids", "active"]);
    html! {
        (f.banner())
        form method="post" action=(action) {
            (csrf(&web.csrf))
            (f.input("name", "Name", "text", None, true))
            @if services.is_empty() {
                p.muted { "Add services first, then choose which ones this provider performs." }
            } @else {
                (f.checkboxes("service_ids", "Performs", services, None))
            }
            @if values.has("editing") { (f.checkbox("active", "Takes bookings", None)) }
            button.btn.btn-primary type="submit" { (submit) }
        }
    }
}

async fn providers_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    values: &FormData,
    error: Option<&FieldError>,
) -> Result<Markup, WebError> {
    let list = st.practice.providers(&web.p).await?;
    let services = service_options(st, &web.p).await?;
    Ok(html! {
        div.grid-2.grid-wide-left {
            section.card {
                @if list.is_empty() {
                    p.muted { "No providers yet." }
                } @else {
                    table.table {
                        thead { tr { th scope="col" { "Provider" } th scope="col" { "Services" } th scope="col" { "Working days" } } }
                        tbody {
                            @for pr in &list {
                                tr.inactive[!pr.row.active] {
                                    td { a href=(format!("/settings/providers/{}", pr.row.id)) { (pr.row.name) } }
                                    td { (pr.service_ids.len()) }
                                    td {
                                        @if pr.hours.is_empty() { span.pill.pill-warn { "No hours" } }
                                        @else { (working_days(pr)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h3 { "Add a provider" }
                (provider_form(web, "/settings/providers", values, error, &services, "Add provider"))
            }
        }
    })
}

pub(crate) async fn providers_page(
    State(st): State<AppState>,
    web: Web<CatalogManage>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let body = providers_body(&st, &web, &FormData::default(), None).await?;
    Ok(settings_page(&web, Tab::Providers, "Providers & hours", q.opt("notice").as_deref(), body))
}

fn provider_patch(form: &FormData, editing: bool) -> ProviderPatch {
    ProviderPatch {
        name: Some(form.get("name").to_string()),
        user_id: None,
        service_ids: Some(form.all("service_ids").into_iter().map(str::to_string).collect()),
        active: editing.then(|| form.has("active")),
    }
}

pub(crate) async fn provider_create(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    match st.practice.create_provider(&web.p, provider_patch(&form, false)).await {
        // Next: their working hours.
        Ok(pr) => Ok(redirect(&format!("/settings/providers/{}?notice=created", pr.row.id))),
        Err(e) => {
            let e = field_error(e);
            let body = providers_body(&st, &web, &form, Some(&e)).await?;
            Ok(refused(&web, Tab::Providers, "Providers & hours", &e, body))
        }
    }
}

/// The weekly-hours form: one row per weekday (a checkbox, a location, start and end). An
/// error about window `hours[i]` is shown on the row it came from.
fn hours_form<R: Requirement>(
    web: &Web<R>,
    id: ProviderId,
    values: &FormData,
    error: Option<&FieldError>,
    locations: &[(String, String)],
) -> Markup {
    // `hours[i]…` names the i-th submitted window; rows carry their weekday in `row_of`.
    let row_error = |day: usize| -> Option<String> {
        let e = error?;
        let f = e.field.as_deref()?;
        let idx: usize = f.strip_prefix("hours[")?.split(']').next()?.parse().ok()?;
        let submitted: Vec<usize> = (0..7).filter(|d| values.has(&format!("works_{d}"))).collect();
        (submitted.get(idx) == Some(&day)).then(|| e.message.clone())
    };
    let unplaced = error.filter(|e| !e.field.as_deref().is_some_and(|f| f.starts_with("hours[")));
    html! {
        @if let Some(e) = unplaced { div.alert.alert-error role="alert" { (e.message) } }
        form method="post" action=(format!("/settings/providers/{id}/hours")) {
            (csrf(&web.csrf))
            table.table.hours-table {
                thead { tr {
                    th scope="col" { "Day" } th scope="col" { "Works" } th scope="col" { "Location" }
                    th scope="col" { "From" } th scope="col" { "To" }
                } }
                tbody {
                    @for (d, name) in WEEKDAYS.iter().enumerate() {
                        @let err = row_error(d);
                        tr.has-error[err.is_some()] {
                            th scope="row" { (name) }
                            td {
                                input id=(format!("works-{d}")) type="checkbox" name=(format!("works_{d}")) value="on"
                                    checked[values.has(&format!("works_{d}"))] aria-label=(format!("Works on {name}"));
                            }
                            td {
                                select name=(format!("location_{d}")) aria-label=(format!("Location on {name}")) {
                                    @for (v, l) in locations {
                                        option value=(v) selected[values.get(&format!("location_{d}")) == v] { (l) }
                                    }
                                }
                            }
                            td { input type="time" name=(format!("start_{d}")) value=(values.get(&format!("start_{d}"))) aria-label=(format!("Start on {name}")); }
                            td {
                                input type="time" name=(format!("end_{d}")) value=(values.get(&format!("end_{d}"))) aria-label=(format!("End on {name}"));
                                @if let Some(m) = err { p.field-error { (m) } }
                            }
                        }
                    }
                }
            }
            button.btn.btn-primary type="submit" { "Save hours" }
        }
    }
}

fn hours_values(pr: &lacuna_practice::catalog::Provider, default_location: &str) -> FormData {
    let mut v = FormData::default();
    let clock = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
    for d in 0..7 {
        match pr.hours.iter().find(|h| h.weekday == d as i64) {
            Some(h) => {
                v.push(&format!("works_{d}"), "on");
                v.push(&format!("location_{d}"), h.location_id.to_string());
                v.push(&format!("start_{d}"), clock(h.start_min));
                v.push(&format!("end_{d}"), clock(h.end_min));
            }
            None => {
                v.push(&format!("location_{d}"), default_location);
                v.push(&format!("start_{d}"), "09:00");
                v.push(&format!("end_{d}"), "17:00");
            }
        }
    }
    v
}

async fn provider_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    id: ProviderId,
    details: (&FormData, Option<&FieldError>),
    hours: (&FormData, Option<&FieldError>),
) -> Result<Markup, WebError> {
    let services = service_options(st, &web.p).await?;
    let locations: Vec<(String, String)> =
        st.practice.locations(&web.p).await?.into_iter().map(|l| (l.id.to_string(), l.name)).collect();
    Ok(html! {
        div.grid-2.grid-wide-right {
            section.card {
                h3 { "Details" }
                (provider_form(web, &format!("/settings/providers/{id}"), details.0, details.1, &services, "Save"))
            }
            section.card {
                h3 { "Weekly hours" }
                @if locations.is_empty() {
                    p.muted { "Add a " a href="/settings/locations" { "location" } " first: hours are kept per location." }
                } @else {
                    p.muted.small { "In the practice's time zone. Tick the days this provider works." }
                    (hours_form(web, id, hours.0, hours.1, &locations))
                }
            }
        }
    })
}

fn provider_values(pr: &lacuna_practice::catalog::Provider) -> FormData {
    let mut v = FormData::from_pairs([("editing", "1".to_string()), ("name", pr.row.name.clone())]);
    for s in &pr.service_ids {
        v.push("service_ids", s.to_string());
    }
    if pr.row.active {
        v.set("active", "on");
    }
    v
}

pub(crate) async fn provider_page(
    State(st): State<AppState>,
    web: Web<CatalogManage>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let id: ProviderId = parse_id(&id)?;
    let pr = st.practice.get_provider(&web.p, id).await?;
    let first_location = st.practice.locations(&web.p).await?.first().map(|l| l.id.to_string()).unwrap_or_default();
    let body = provider_body(&st, &web, id, (&provider_values(&pr), None), (&hours_values(&pr, &first_location), None))
        .await?;
    Ok(settings_page(&web, Tab::Providers, &pr.row.name, q.opt("notice").as_deref(), body))
}

pub(crate) async fn provider_update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, mut form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    let id: ProviderId = parse_id(&id)?;
    match st.practice.update_provider(&web.p, id, provider_patch(&form, true)).await {
        Ok(_) => Ok(redirect(&format!("/settings/providers/{id}?notice=saved"))),
        Err(e) => {
            let e = field_error(e);
            form.set("editing", "1");
            let pr = st.practice.get_provider(&web.p, id).await?;
            let first = st.practice.locations(&web.p).await?.first().map(|l| l.id.to_string()).unwrap_or_default();
            let body = provider_body(&st, &web, id, (&form, Some(&e)), (&hours_values(&pr, &first), None)).await?;
            Ok(refused(&web, Tab::Providers, &pr.row.name, &e, body))
        }
    }
}

pub(crate) async fn provider_hours(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, form }: WebForm<CatalogManage>,
) -> Result<Response, WebError> {
    let id: ProviderId = parse_id(&id)?;
    let input: Vec<HoursInput> = (0..7)
        .filter(|d| form.has(&format!("works_{d}")))
        .map(|d| HoursInput {
            location_id: form.get(&format!("location_{d}")).to_string(),
            weekday: d,
            start: form.get(&format!("start_{d}")).to_string(),
            end: form.get(&format!("end_{d}")).to_string(),
        })
        .collect();
    match st.practice.set_provider_hours(&web.p, id, Some(input)).await {
        Ok(_) => Ok(redirect(&format!("/settings/providers/{id}?notice=saved"))),
        Err(e) => {
            let e = field_error(e);
            let pr = st.practice.get_provider(&web.p, id).await?;
            let body = provider_body(&st, &web, id, (&provider_values(&pr), None), (&form, Some(&e))).await?;
            Ok(refused(&web, Tab::Providers, &pr.row.name, &e, body))
        }
    }
}

// ---- members -----------------------------------------------------------------------------------

fn role_options() -> Vec<(String, String)> {
    Role::ALL.iter().map(|r| (r.name().to_string(), role_label(*r))).collect()
}

fn role_label(r: Role) -> String {
    let n = r.name().replace('_', " ");
    n[..1].to_uppercase() + &n[1..]
}

fn permission_label(p: Permission) -> String {
    p.name().replace(['.', '_'], " ")
}

async fn members_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    values: &FormData,
    error: Option<&FieldError>,
    invited: Option<(String, String)>,
) -> Result<Markup, WebError> {
    let list = st.accounts.list_members(&web.p).await?;
    let manage = web.p.permissions.contains(Permission::MembersManage);
    let f = Form::new(values, error, &["email", "name", "role"]);
    Ok(html! {
        @if let Some((email, token)) = &invited {
            div.alert.alert-ok role="status" {
                p { "Invitation created for " strong { (email) } ". Send them this link — it is shown only once and works for 7 days:" }
                p { code.secret { "/invite?token=" (token) } }
            }
        }
        div.grid-2.grid-wide-left {
            section.card {
                table.table {
                    thead { tr { th scope="col" { "Member" } th scope="col" { "Role" } th scope="col" { "Access" } } }
                    tbody {
                        @for m in &list {
                            tr {
                                td {
                                    a href=(format!("/settings/members/{}", m.user_id)) { (m.name) } br;
                                    span.muted.small { (m.email) }
                                }
                                td { (role_label(m.role)) @if m.invited { " " span.pill.pill-warn { "invited" } } }
                                td { @if m.permissions.is_some() { span.pill { "narrowed" } } @else { span.muted { "full role" } } }
                            }
                        }
                    }
                }
            }
            @if manage {
                section.card {
                    h3 { "Invite a member" }
                    (f.banner())
                    form method="post" action="/settings/members" {
                        (csrf(&web.csrf))
                        (f.input("name", "Name", "text", None, true))
                        (f.input("email", "Email", "email", None, true))
                        (f.select("role", "Role", &role_options(), Some("You can narrow their permissions after inviting.")))
                        button.btn.btn-primary type="submit" { "Create invitation" }
                    }
                }
            }
        }
    })
}

pub(crate) async fn members_page(
    State(st): State<AppState>,
    web: Web<MembersRead>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let defaults = FormData::from_pairs([("role", "front_desk")]);
    let body = members_body(&st, &web, &defaults, None, None).await?;
    Ok(settings_page(&web, Tab::Members, "Members", q.opt("notice").as_deref(), body))
}

pub(crate) async fn member_invite(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<MembersManage>,
) -> Result<Response, WebError> {
    let result = async {
        let role: Role = form.get("role").parse().map_err(|_| FieldError::invalid("role", "Choose a role."))?;
        let m = NewMember {
            email: form.get("email").to_string(),
            name: form.get("name").to_string(),
            role,
            permissions: None,
        };
        st.accounts.invite_member(&web.p, m).await.map_err(field_error)
    }
    .await;
    match result {
        Ok((row, token)) => {
            let body = members_body(
                &st,
                &web,
                &FormData::from_pairs([("role", "front_desk")]),
                None,
                Some((row.email, token)),
            )
            .await?;
            Ok(settings_page(&web, Tab::Members, "Members", None, body).into_response())
        }
        Err(e) => {
            let body = members_body(&st, &web, &form, Some(&e), None).await?;
            Ok(refused(&web, Tab::Members, "Members", &e, body))
        }
    }
}

async fn member_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    id: UserId,
    values: Option<&FormData>,
    error: Option<&FieldError>,
) -> Result<(String, Markup), WebError> {
    let m = st.accounts.get_member(&web.p, id).await?;
    let manage = web.p.permissions.contains(Permission::MembersManage);
    let effective = m.permissions.unwrap_or_else(|| m.role.permissions());
    let mut defaults = FormData::from_pairs([("role", m.role.name())]);
    for p in effective.iter() {
        defaults.push("permissions", p.name());
    }
    let values = values.unwrap_or(&defaults);
    let f = Form::new(values, error, &["role", "permissions"]);
    let role_perms: Vec<(String, String)> =
        m.role.permissions().iter().map(|p| (p.name().to_string(), permission_label(p))).collect();
    let body = html! {
        div.grid-2 {
            section.card {
                dl.facts {
                    dt { "Email" } dd { (m.email) }
                    dt { "Role" } dd { (role_label(m.role)) }
                    dt { "Access" } dd { @if m.permissions.is_some() { "Narrowed by an owner" } @else { "Everything the role allows" } }
                    dt { "Status" } dd { @if m.invited { "Invitation not yet accepted" } @else { "Active" } }
                }
                @if manage && m.user_id != web.p.user {
                    form method="post" action=(format!("/settings/members/{id}/remove")) {
                        (csrf(&web.csrf))
                        button.btn.btn-danger type="submit" { "Remove member" }
                    }
                }
            }
            @if manage {
                section.card {
                    h3 { "Role and permissions" }
                    (f.banner())
                    form method="post" action=(format!("/settings/members/{id}")) {
                        (csrf(&web.csrf))
                        (f.select("role", "Role", &role_options(), Some("Changing the role signs the member out everywhere.")))
                        @if m.role != Role::Owner {
                            (f.checkboxes("permissions", "Permissions", &role_perms,
                                Some("Untick what this member should not do. All ticked means the role's full set.")))
                        }
                        button.btn.btn-primary type="submit" { "Save access" }
                    }
                }
            }
        }
    };
    Ok((m.name, body))
}

pub(crate) async fn member_page(
    State(st): State<AppState>,
    web: Web<MembersRead>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let id: UserId = parse_id(&id)?;
    let (name, body) = member_body(&st, &web, id, None, None).await?;
    Ok(settings_page(&web, Tab::Members, &name, q.opt("notice").as_deref(), body))
}

pub(crate) async fn member_change(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, form }: WebForm<MembersManage>,
) -> Result<Response, WebError> {
    let id: UserId = parse_id(&id)?;
    let result = async {
        let role: Role = form.get("role").parse().map_err(|_| FieldError::invalid("role", "Choose a role."))?;
        let current = st.accounts.get_member(&web.p, id).await.map_err(field_error)?;
        // The permissions offered are the current role's; with a new role, its full set.
        let permissions = if role != current.role || role == Role::Owner {
            Some(None)
        } else {
            let chosen: Vec<Permission> = form
                .all("permissions")
                .iter()
                .map(|n| n.parse().map_err(|_| FieldError::invalid("permissions", "Unknown permission.")))
                .collect::<Result<_, _>>()?;
            let set = PermissionSet::of(&chosen);
            Some((set != role.permissions()).then_some(set))
        };
        st.accounts.change_member(&web.p, id, MemberChange { role: Some(role), permissions }).await.map_err(field_error)
    }
    .await;
    match result {
        Ok(_) => Ok(redirect(&format!("/settings/members/{id}?notice=saved"))),
        Err(e) => {
            let (name, body) = member_body(&st, &web, id, Some(&form), Some(&e)).await?;
            Ok(refused(&web, Tab::Members, &name, &e, body))
        }
    }
}

pub(crate) async fn member_remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, .. }: WebForm<MembersManage>,
) -> Result<Response, WebError> {
    let id: UserId = parse_id(&id)?;
    match st.accounts.remove_member(&web.p, id).await {
        Ok(()) => Ok(redirect("/settings/members?notice=removed")),
        Err(e) => {
            let e = field_error(e);
            let (name, body) = member_body(&st, &web, id, None, Some(&e)).await?;
            Ok(refused(&web, Tab::Members, &name, &e, body))
        }
    }
}

// ---- security ----------------------------------------------------------------------------------

fn policy_options() -> Vec<(String, String)> {
    [MfaPolicy::Optional, MfaPolicy::OwnersManagers, MfaPolicy::Everyone]
        .iter()
        .map(|p| (p.name().to_string(), policy_label(*p)[..1].to_uppercase() + &policy_label(*p)[1..]))
        .collect()
}

async fn security_body<R: Requirement>(
    st: &AppState,
    web: &Web<R>,
    values: Option<&FormData>,
    error: Option<&FieldError>,
) -> Result<Markup, WebError> {
    let s = st.accounts.mfa_status(&web.p).await?;
    let defaults = FormData::from_pairs([("policy", s.policy.name())]);
    let f = Form::new(values.unwrap_or(&defaults), error, &["policy"]);
    let can_set = web.p.permissions.contains(Permission::TenantSettings);
    Ok(html! {
        div.grid-2 {
            section.card {
                h3 { "Two-step verification policy" }
                p { "Currently: " strong { (policy_label(s.policy)) } "." }
                @if can_set {
                    (f.banner())
                    form method="post" action="/settings/security" {
                        (csrf(&web.csrf))
                        (f.select("policy", "Require two-step verification", &policy_options(),
                            Some("Members it applies to must set it up at their next sign-in. Changing it asks you for a fresh code.")))
                        button.btn.btn-primary type="submit" { "Save policy" }
                    }
                } @else {
                    p.muted { "Only owners change the policy." }
                }
            }
            section.card {
                h3 { "Your own sign-in" }
                p { "Two-step verification for your account: "
                    @if s.enrolled { span.pill.pill-ok { "on" } } @else { span.pill { "off" } } }
                a.btn.btn-secondary href="/account/mfa" { "Manage" }
            }
        }
    })
}

pub(crate) async fn security_page(
    State(st): State<AppState>,
    web: Web<MfaSelf>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let body = security_body(&st, &web, None, None).await?;
    Ok(settings_page(&web, Tab::Security, "Security", q.opt("notice").as_deref(), body))
}

pub(crate) async fn security_save(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<TenantSettings>,
) -> Result<Response, WebError> {
    let result = match MfaPolicy::parse(form.get("policy")) {
        None => Err(FieldError::invalid("policy", "Choose a policy.")),
        Some(p) => st.accounts.set_mfa_policy(&web.p, p).await.map_err(field_error),
    };
    match result {
        Ok(()) => Ok(redirect("/settings/security?notice=saved")),
        Err(e) => {
            let body = security_body(&st, &web, Some(&form), Some(&e)).await?;
            Ok(refused(&web, Tab::Security, "Security", &e, body))
        }
    }
}

// ---- messages ----------------------------------------------------------------------------------

pub(crate) async fn messages_page(State(st): State<AppState>, web: Web<MessagesRead>) -> Result<Page, WebError> {
    let tz = time::zone(&st.practice.practice_settings(&web.p).await?.timezone);
    let messages = st.practice.messages(&web.p, None, 30).await?;
    let channel = st.http.message_channel;
    let body = html! {
        section.card {
            h3 { "Channels" }
            table.table {
                thead { tr { th scope="col" { "Channel" } th scope="col" { "Status" } th scope="col" { "Notes" } } }
                tbody {
                    tr {
                        th scope="row" { "Email (SMTP)" }
                        td { @if channel == "smtp" { span.pill.pill-ok { "configured" } } @else { span.pill { "not configured" } } }
                        td.muted { "Set LACUNA_SMTP_URL on the server to send real email." }
                    }
                    tr {
                        th scope="row" { "Local file" }
                        td { @if channel == "file" { span.pill.pill-ok { "in use" } } @else { span.pill { "standby" } } }
                        td.muted { "Messages are appended to outbox/messages.jsonl in the data folder — for trying Lacuna out." }
                    }
                    tr {
                        th scope="row" { "SMS" }
                        td { span.pill { "not configured" } }
                        td.muted { "No SMS provider is connected." }
                    }
                }
            }
        }
        section.card {
            h3 { "Recent messages" }
            @if messages.is_empty() {
                p.muted { "No messages yet. Booking confirmations and reminders appear here." }
            } @else {
                table.table {
                    thead { tr { th scope="col" { "Queued" } th scope="col" { "Kind" } th scope="col" { "To" } th scope="col" { "Status" } th scope="col" { "Attempts" } } }
                    tbody {
                        @for m in &messages {
                            tr {
                                td { (time::day_time(m.row.created_at, &tz)) }
                                td { (m.row.kind.replace('_', " ")) }
                                td { (m.payload.as_ref().map(|p| p.to_name.clone()).unwrap_or_default()) }
                                td { span.pill.(format!("status-{}", m.row.status)) { (m.row.status) } }
                                td { (m.row.attempts) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(settings_page(&web, Tab::Messages, "Messages", None, body))
}
