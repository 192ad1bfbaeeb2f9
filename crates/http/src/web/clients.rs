//! Clients: search as you type (the script swaps in a server-rendered fragment from the same
//! search service as `GET /api/v1/clients?q=`), the profile with visits, memberships, packages
//! and notes, and the add and edit forms.

use super::auth_pages::refused_status;
use super::form::{FieldError, Form, FormData, amount, csrf};
use super::layout::{Nav, Page, html_response, page_head};
use super::session::{Web, WebError, WebForm, redirect};
use super::time;
use crate::auth::{ClientsRead, ClientsWrite, Requirement};
use crate::routes::{parse_id, rfc3339};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lacuna_domain::{ClientId, Permission};
use lacuna_practice::booking::ListQuery;
use lacuna_practice::clients::{Client, ClientInput, ClientPatch};
use maud::{Markup, html};

fn query(q: &Option<String>) -> FormData {
    FormData::parse(q.as_deref().unwrap_or_default().as_bytes())
}

/// The result list (also the fragment the search box fetches).
fn results(clients: &Result<Vec<Client>, FieldError>, q: &str) -> Markup {
    html! {
        @match clients {
            Err(e) => { p.muted.search-hint { (e.message) } }
            Ok(list) if list.is_empty() && q.is_empty() => { p.muted.search-hint { "No clients yet." } }
            Ok(list) if list.is_empty() => { p.muted.search-hint { "No client matches “" (q) "”." } }
            Ok(list) => {
                ul.client-list {
                    @for c in list {
                        li {
                            a.client-row href=(format!("/clients/{}", c.id)) {
                                span.avatar aria-hidden="true" { (initials(&c.name)) }
                                span.client-main {
                                    span.client-name { (c.name) }
                                    span.client-detail {
                                        (c.email.as_deref().unwrap_or(""))
                                        @if c.email.is_some() && c.phone.is_some() { " · " }
                                        (c.phone.as_deref().unwrap_or(""))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn initials(name: &str) -> String {
    name.split_whitespace().filter_map(|w| w.chars().next()).take(2).flat_map(char::to_uppercase).collect()
}

async fn search(st: &AppState, p: &lacuna_accounts::Principal, q: &str) -> Result<Vec<Client>, FieldError> {
    let q = q.trim();
    st.practice.search_clients(p, (!q.is_empty()).then_some(q), 25).await.map_err(|e| ApiError::from(e).into())
}

pub(crate) async fn list(
    State(st): State<AppState>,
    web: Web<ClientsRead>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let term = q.get("q").to_string();
    let found = search(&st, &web.p, &term).await;
    let can_add = web.p.permissions.contains(Permission::ClientsWrite);
    let body = html! {
        (page_head("Clients", html! {
            @if can_add { a.btn.btn-primary href="/clients/new" { "Add client" } }
        }))
        section.card {
            form.search-form method="get" action="/clients" role="search" {
                label for="client-search" { "Search clients" }
                div.search-row {
                    input #client-search type="search" name="q" value=(term) autocomplete="off"
                        placeholder="Name, email or phone" data-search-url="/clients/search" data-search-target="client-results"
                        aria-describedby="client-search-hint" aria-controls="client-results";
                    button.btn.btn-secondary type="submit" { "Search" }
                }
                p #client-search-hint.hint { "Type two or more letters of a name or email, or digits of a phone number. Results update as you type." }
            }
            div #client-results aria-live="polite" { (results(&found, &term)) }
        }
    };
    Ok(Page::new(&web, "Clients", Nav::Clients).notice(q.opt("notice").as_deref()).body(body))
}

/// The fragment behind search-as-you-type.
pub(crate) async fn search_fragment(
    State(st): State<AppState>,
    web: Web<ClientsRead>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = query(&q);
    let term = q.get("q").to_string();
    let found = search(&st, &web.p, &term).await;
    html_response(StatusCode::OK, results(&found, &term))
}

// ---- add and edit ------------------------------------------------------------------------------

const CLIENT_FIELDS: &[&str] = &["name", "email", "phone", "birthday", "marketing_consent", "notes"];

fn client_form<R: Requirement>(
    web: &Web<R>,
    action: &str,
    values: &FormData,
    error: Option<&FieldError>,
    submit: &str,
    cancel: &str,
) -> Markup {
    let f = Form::new(values, error, CLIENT_FIELDS);
    html! {
        section.card.form-card {
            (f.banner())
            form method="post" action=(action) {
                (csrf(&web.csrf))
                (f.input("name", "Full name", "text", None, true))
                div.field-row {
                    (f.input("email", "Email", "email", None, false))
                    (f.input("phone", "Phone", "tel", Some("Digits, with + and country code if abroad."), false))
                }
                (f.input("birthday", "Birthday", "date", None, false))
                (f.checkbox("marketing_consent", "Agrees to receive offers and reminders by email", None))
                (f.textarea("notes", "Notes", Some("Non-clinical notes only: preferences, allergies to products, how they like to be contacted.")))
                div.form-actions {
                    button.btn.btn-primary type="submit" { (submit) }
                    a.btn.btn-quiet href=(cancel) { "Cancel" }
                }
            }
        }
    }
}

fn input_of(form: &FormData) -> ClientInput {
    ClientInput {
        name: form.get("name").to_string(),
        email: form.opt("email"),
        phone: form.opt("phone"),
        birthday: form.opt("birthday"),
        marketing_consent: form.has("marketing_consent"),
        notes: form.opt("notes"),
    }
}

pub(crate) async fn new_page(web: Web<ClientsWrite>) -> Page {
    let body = html! {
        (page_head("Add client", html! {}))
        (client_form(&web, "/clients/new", &FormData::default(), None, "Add client", "/clients"))
    };
    Page::new(&web, "Add client", Nav::Clients).body(body)
}

pub(crate) async fn create(
    State(st): State<AppState>,
    WebForm { web, form }: WebForm<ClientsWrite>,
) -> Result<Response, WebError> {
    match st.practice.create_client(&web.p, input_of(&form)).await {
        Ok(c) => Ok(redirect(&format!("/clients/{}?notice=created", c.id))),
        Err(e) => {
            let e: FieldError = ApiError::from(e).into();
            let body = html! {
                (page_head("Add client", html! {}))
                (client_form(&web, "/clients/new", &form, Some(&e), "Add client", "/clients"))
            };
            Ok(Page::new(&web, "Add client", Nav::Clients).status(refused_status(&e)).body(body).into_response())
        }
    }
}

fn values_of(c: &Client) -> FormData {
    let mut v = FormData::from_pairs([
        ("name", c.name.clone()),
        ("email", c.email.clone().unwrap_or_default()),
        ("phone", c.phone.clone().unwrap_or_default()),
        ("birthday", c.birthday.clone().unwrap_or_default()),
        ("notes", c.notes.clone().unwrap_or_default()),
    ]);
    if c.marketing_consent {
        v.set("marketing_consent", "on");
    }
    v
}

pub(crate) async fn edit_page(
    State(st): State<AppState>,
    web: Web<ClientsWrite>,
    Path(id): Path<String>,
) -> Result<Page, WebError> {
    let id: ClientId = parse_id(&id)?;
    let c = st.practice.get_client(&web.p, id).await?;
    let body = html! {
        (page_head(&format!("Edit {}", c.name), html! {}))
        (client_form(&web, &format!("/clients/{id}/edit"), &values_of(&c), None, "Save changes", &format!("/clients/{id}")))
    };
    Ok(Page::new(&web, "Edit client", Nav::Clients).body(body))
}

pub(crate) async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    WebForm { web, form }: WebForm<ClientsWrite>,
) -> Result<Response, WebError> {
    let id: ClientId = parse_id(&id)?;
    let patch = ClientPatch {
        name: Some(form.get("name").to_string()),
        email: Some(form.opt("email")),
        phone: Some(form.opt("phone")),
        birthday: Some(form.opt("birthday")),
        marketing_consent: Some(form.has("marketing_consent")),
        notes: Some(form.opt("notes")),
    };
    match st.practice.update_client(&web.p, id, patch).await {
        Ok(c) => Ok(redirect(&format!("/clients/{}?notice=saved", c.id))),
        Err(e) => {
            let e: FieldError = ApiError::from(e).into();
            let body = html! {
                (page_head("Edit client", html! {}))
                (client_form(&web, &format!("/clients/{id}/edit"), &form, Some(&e), "Save changes", &format!("/clients/{id}")))
            };
            Ok(Page::new(&web, "Edit client", Nav::Clients).status(refused_status(&e)).body(body).into_response())
        }
    }
}

// ---- profile -----------------------------------------------------------------------------------

/// How far back the visit history reaches (the listing covers at most 92 days per call).
const HISTORY_DAYS: i64 = 2 * 365;
const CHUNK_DAYS: i64 = 90;

pub(crate) async fn profile(
    State(st): State<AppState>,
    web: Web<ClientsRead>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let id: ClientId = parse_id(&id)?;
    let p = &web.p;
    let c = st.practice.get_client(p, id).await?;
    let tz = time::zone(&st.practice.practice_settings(p).await?.timezone);

    // Visits: upcoming (90 days) and history (two years), newest first.
    let mut visits = Vec::new();
    if p.permissions.contains(Permission::ScheduleRead) {
        let now = lacuna_storage::now_unix();
        let mut to = now + CHUNK_DAYS * 86_400;
        let stop = now - HISTORY_DAYS * 86_400;
        while to > stop {
            let from = (to - CHUNK_DAYS * 86_400).max(stop);
            let q = ListQuery {
                from: Some(rfc3339(from)),
                to: Some(rfc3339(to)),
                provider_id: None,
                client_id: Some(id.to_string()),
            };
            visits.extend(st.practice.appointments(p, q).await?);
            to = from;
        }
        visits.sort_by_key(|a| std::cmp::Reverse(a.starts_at));
    }
    let services = st.practice.services(p).await.unwrap_or_default();
    let providers = st.practice.providers(p).await.unwrap_or_default();
    let name_of_service = |sid| services.iter().find(|s| s.id == sid).map(|s| s.name.clone()).unwrap_or_default();
    let name_of_provider =
        |pid| providers.iter().find(|pr| pr.row.id == pid).map(|pr| pr.row.name.clone()).unwrap_or_default();
    let plans = if p.permissions.contains(Permission::PlansManage) {
        Some(st.practice.client_plans(p, id).await?)
    } else {
        None
    };
    let can_edit = p.permissions.contains(Permission::ClientsWrite);
    let can_book = p.permissions.contains(Permission::AppointmentsWrite);
    let now = lacuna_storage::now_unix();

    let body = html! {
        div.page-head.profile-head {
            span.avatar.avatar-lg aria-hidden="true" { (initials(&c.name)) }
            div { h1 { (c.name) } p.muted { "Client since " (time::day(c.created_at, &tz)) } }
            div.actions {
                @if can_book { a.btn.btn-primary href=(format!("/calendar/book?client_id={}", c.id)) { "Book appointment" } }
                @if can_edit { a.btn.btn-secondary href=(format!("/clients/{}/edit", c.id)) { "Edit" } }
            }
        }
        div.grid-2 {
            div.stack {
                section.card {
                    h2 { "Contact" }
                    dl.facts {
                        dt { "Email" } dd { (c.email.as_deref().unwrap_or("—")) }
                        dt { "Phone" } dd { (c.phone.as_deref().unwrap_or("—")) }
                        dt { "Birthday" } dd { (c.birthday.as_deref().unwrap_or("—")) }
                        dt { "Marketing" } dd { @if c.marketing_consent { "Agreed" } @else { "Not agreed" } }
                    }
                }
                section.card {
                    h2 { "Notes" }
                    @if let Some(n) = &c.notes { p.notes { (n) } } @else { p.muted { "No notes." } }
                }
                section.card {
                    h2 { "Memberships and packages" }
                    @match &plans {
                        None => { p.muted { "Your role does not include plans." } }
                        Some(list) if list.is_empty() => { p.muted { "None." } }
                        Some(list) => {
                            ul.plan-list {
                                @for plan in list {
                                    li {
                                        div.plan-title { strong { (plan.name) } " " span.pill { (plan.kind) } " " span.pill.(format!("status-{}", plan.status)) { (plan.status) } }
                                        div.muted {
                                            (plan.remaining) " of " (plan.credits_total) " sessions left · "
                                            (amount(plan.price_minor)) " " (plan.currency)
                                            @if let Some(x) = plan.expires_at { " · expires " (time::day(x, &tz)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Visits" }
                @if visits.is_empty() {
                    p.muted { "No visits yet." }
                } @else {
                    table.table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Service" } th scope="col" { "Provider" } th scope="col" { "Status" } } }
                        tbody {
                            @for a in &visits {
                                tr.upcoming[a.starts_at > now] {
                                    td { a href=(format!("/calendar/appointments/{}", a.id)) { (time::day_time(a.starts_at, &tz)) } }
                                    td { (name_of_service(a.service_id)) }
                                    td { (name_of_provider(a.provider_id)) }
                                    td { span.pill.(format!("status-{}", a.status)) { (a.status.replace('_', "-")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::new(&web, c.name.clone(), Nav::Clients).notice(q.opt("notice").as_deref()).body(body))
}
