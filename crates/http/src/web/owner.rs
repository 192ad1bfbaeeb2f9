//! Owner tools: the audit trail with filters, exports (the CSV downloads are the API's own
//! export endpoints, so every download is recorded and audited by the same code), the request
//! log export, backups and restore rehearsals, and the trust report as measured by the server.

use super::form::FormData;
use super::layout::{Nav, Page, page_head, subnav};
use super::session::{Web, WebError, enc};
use super::time;
use crate::auth::{AuditRead, Requirement};
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use lacuna_domain::Permission;
use lacuna_practice::exports::ExportKind;
use lacuna_storage::audit::AuditFilter;
use maud::{Markup, html};

fn query(q: &Option<String>) -> FormData {
    FormData::parse(q.as_deref().unwrap_or_default().as_bytes())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Overview,
    Audit,
    Exports,
    Backups,
    Trust,
}

fn owner_page<R: Requirement>(web: &Web<R>, tab: Tab, title: &str, body: Markup) -> Page {
    let content = html! {
        (page_head("Owner tools", html! {}))
        (subnav(&[
            ("/owner", "Overview", tab == Tab::Overview),
            ("/owner/audit", "Audit trail", tab == Tab::Audit),
            ("/owner/exports", "Exports", tab == Tab::Exports),
            ("/owner/backups", "Backups", tab == Tab::Backups),
            ("/owner/trust", "Trust report", tab == Tab::Trust),
        ]))
        h2.section-title { (title) }
        (body)
    };
    Page::new(web, format!("{title} · Owner tools"), Nav::Owner).body(content)
}

/// A measured fact as people read it.
fn fact_value(v: &serde_json::Value) -> Markup {
    match v {
        serde_json::Value::Bool(true) => html! { span.pill.pill-ok { "yes" } },
        serde_json::Value::Bool(false) => html! { span.pill.pill-bad { "no" } },
        serde_json::Value::Null => html! { span.muted { "—" } },
        serde_json::Value::String(s) => html! { (s) },
        serde_json::Value::Array(a) => {
            let items: Vec<String> =
                a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect();
            html! { (items.join(", ")) }
        }
        other => html! { (other.to_string()) },
    }
}

/// `served_over_tls` → `Served over TLS`.
fn fact_label(key: &str) -> String {
    let words: Vec<String> = key
        .split('_')
        .map(|w| match w {
            "tls" | "hsts" | "mfa" | "rls" => w.to_uppercase(),
            _ => w.to_string(),
        })
        .collect();
    let s = words.join(" ");
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn facts(v: &serde_json::Value) -> Markup {
    html! {
        dl.facts.facts-wide {
            @if let Some(map) = v.as_object() {
                @for (k, val) in map {
                    dt { (fact_label(k)) }
                    dd { (fact_value(val)) }
                }
            }
        }
    }
}

pub(crate) async fn overview(
    State(st): State<AppState>,
    web: Web<AuditRead>,
    headers: HeaderMap,
) -> Result<Page, WebError> {
    let r = crate::trust::report(&st, &headers).await?;
    let events = st.accounts.audit_events(&web.p, AuditFilter { limit: 5, ..Default::default() }).await?;
    let tz = time::zone(&st.practice.practice_settings(&web.p).await?.timezone);
    let intact = r.practice.as_ref().and_then(|p| p["audit_chain_intact"].as_bool());
    let backup = r.backups["last_backup"].as_str().map(str::to_string);
    let rehearsal = r.backups["last_successful_rehearsal"].as_str().map(str::to_string);
    let body = html! {
        div.stat-grid {
            a.stat href="/owner/audit" {
                span.stat-label { "Audit chain" }
                span.stat-value { @match intact { Some(true) => "Intact", Some(false) => "Broken", None => "—" } }
                span.stat-note { "verified just now" }
            }
            a.stat href="/owner/backups" {
                span.stat-label { "Last backup" }
                span.stat-value { (backup.clone().unwrap_or_else(|| "None yet".into())) }
                span.stat-note { "daily, kept 30 days" }
            }
            a.stat href="/owner/backups" {
                span.stat-label { "Last restore rehearsal" }
                span.stat-value { (rehearsal.unwrap_or_else(|| "None yet".into())) }
                span.stat-note { "proves a backup restores" }
            }
            a.stat href="/owner/trust" {
                span.stat-label { "Two-step policy" }
                span.stat-value { (r.practice.as_ref().and_then(|p| p["mfa_policy"].as_str()).unwrap_or("—").replace('_', " ")) }
                span.stat-note { "for your members" }
            }
        }
        section.card {
            h3 { "Latest activity" }
            (audit_table(&events, &tz, &member_names(&st, &web.p).await))
            a href="/owner/audit" { "The whole audit trail →" }
        }
    };
    Ok(owner_page(&web, Tab::Overview, "Overview", body))
}

/// `user:<id>` as the member's name where the viewer may list members.
type Names = std::collections::HashMap<String, String>;

async fn member_names(st: &AppState, p: &lacuna_accounts::Principal) -> Names {
    match st.accounts.list_members(p).await {
        Ok(list) => list.into_iter().map(|m| (format!("user:{}", m.user_id), m.name)).collect(),
        Err(_) => Names::new(),
    }
}

fn who(names: &Names, raw: &str) -> Markup {
    match names.get(raw) {
        Some(n) => html! { span title=(raw) { (n) } },
        None => html! { span.code { (raw) } },
    }
}

fn audit_table(events: &[lacuna_storage::audit::AuditEvent], tz: &jiff::tz::TimeZone, names: &Names) -> Markup {
    html! {
        @if events.is_empty() {
            p.muted { "No events match." }
        } @else {
            div.table-scroll {
                table.table.audit-table {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Action" }
                        th scope="col" { "Actor" } th scope="col" { "Target" } th scope="col" { "Details" }
                    } }
                    tbody {
                        @for e in events {
                            tr {
                                td.muted { (e.seq) }
                                td.nowrap { (time::day_time(e.occurred_at, tz)) }
                                td { code { (e.action) } }
                                td { (who(names, &e.actor)) @if let Some(r) = &e.actor_role { br; span.muted.small { (r) } } }
                                td { @if let Some(t) = &e.target { (who(names, t)) } @else { "—" } }
                                td.small { @if e.scope != "{}" { code.scope { (e.scope) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

const AUDIT_PAGE: i64 = 50;

pub(crate) async fn audit(
    State(st): State<AppState>,
    web: Web<AuditRead>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = query(&q);
    let tz = time::zone(&st.practice.practice_settings(&web.p).await?.timezone);
    let bad = |field: &str| {
        WebError::Page(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            field,
            format!("{field}: enter a date"),
        ))
    };
    let from = match q.opt("from") {
        Some(d) => Some(time::start_of(time::parse_date(&d).ok_or_else(|| bad("from"))?, &tz)),
        None => None,
    };
    let to = match q.opt("to") {
        Some(d) => Some(time::start_of(time::add_days(time::parse_date(&d).ok_or_else(|| bad("to"))?, 1), &tz)),
        None => None,
    };
    let filter = AuditFilter {
        action: q.opt("action"),
        actor: q.opt("actor"),
        from,
        to,
        before_seq: q.opt("before").and_then(|b| b.parse().ok()),
        limit: AUDIT_PAGE,
    };
    let events = st.accounts.audit_events(&web.p, filter).await?;
    let older = (events.len() as i64 == AUDIT_PAGE).then(|| events.last().map(|e| e.seq)).flatten();
    let keep = ["action", "actor", "from", "to"]
        .iter()
        .filter_map(|k| q.opt(k).map(|v| format!("{k}={}", enc(&v))))
        .collect::<Vec<_>>()
        .join("&");
    let body = html! {
        section.card {
            form.filters method="get" action="/owner/audit" {
                div.field.field-inline { label for="a-action" { "Action" } input #a-action type="text" name="action" value=(q.get("action")) placeholder="e.g. member.change"; }
                div.field.field-inline { label for="a-actor" { "Actor" } input #a-actor type="text" name="actor" value=(q.get("actor")) placeholder="user:…"; }
                div.field.field-inline { label for="a-from" { "From" } input #a-from type="date" name="from" value=(q.get("from")); }
                div.field.field-inline { label for="a-to" { "To" } input #a-to type="date" name="to" value=(q.get("to")); }
                button.btn.btn-secondary type="submit" { "Filter" }
                a.btn.btn-quiet href="/owner/audit" { "Clear" }
            }
            (audit_table(&events, &tz, &member_names(&st, &web.p).await))
            @if let Some(seq) = older {
                a.btn.btn-quiet href=(format!("/owner/audit?{keep}&before={seq}")) { "Older events →" }
            }
            p.muted.small { "Append-only and hash-chained: any change to a past event breaks the chain, which is verified hourly and on every trust report." }
        }
    };
    Ok(owner_page(&web, Tab::Audit, "Audit trail", body))
}

pub(crate) async fn exports(State(st): State<AppState>, web: Web<AuditRead>) -> Result<Page, WebError> {
    let fresh = web.p.mfa.step_up_satisfied(lacuna_storage::now_unix());
    let can_export = web.p.permissions.contains(Permission::ExportsCreate);
    let register = if can_export { st.practice.exports(&web.p).await? } else { Vec::new() };
    let tz = time::zone(&st.practice.practice_settings(&web.p).await?.timezone);
    let names = member_names(&st, &web.p).await;
    let body = html! {
        @if !fresh {
            div.alert.alert-warn role="status" {
                "Downloads need a fresh two-step check (within 10 minutes). "
                a href="/mfa/verify?step_up=1&next=/owner/exports" { "Confirm it's you" }
            }
        }
        div.grid-2 {
            section.card {
                h3 { "Practice data (CSV)" }
                @if can_export {
                    ul.download-list {
                        @for k in ExportKind::ALL {
                            li { a.btn.btn-secondary href=(format!("/api/v1/exports/{}", k.name())) download { "Download " (k.name()) } }
                        }
                    }
                    p.muted.small { "Each download is recorded in the register below and in the audit trail." }
                } @else {
                    p.muted { "Your role does not include exports." }
                }
            }
            section.card {
                h3 { "Logs" }
                ul.download-list {
                    li { a.btn.btn-secondary href="/api/v1/audit/export?format=csv" download { "Audit trail (CSV)" } }
                    li { a.btn.btn-secondary href="/api/v1/request-log/export?format=csv" download { "Request log (CSV)" } }
                }
                p.muted.small { "The request log keeps method, route, status, latency and actor of every request for 90 days — never bodies or personal data." }
            }
        }
        @if can_export {
            section.card {
                h3 { "Export register" }
                @if register.is_empty() { p.muted { "No exports yet." } } @else {
                    table.table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Rows" } th scope="col" { "By" } } }
                        tbody {
                            @for r in &register {
                                tr { td { (time::day_time(r.created_at, &tz)) } td { (r.kind) } td { (r.row_count) } td { (who(&names, &r.actor)) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(owner_page(&web, Tab::Exports, "Exports", body))
}

pub(crate) async fn backups(
    State(st): State<AppState>,
    web: Web<AuditRead>,
    headers: HeaderMap,
) -> Result<Page, WebError> {
    let r = crate::trust::report(&st, &headers).await?;
    let ok = r.backups["last_backup_succeeded"].as_bool();
    let body = html! {
        section.card {
            @match ok {
                Some(true) => { div.alert.alert-ok role="status" { "The last backup succeeded." } }
                Some(false) => { div.alert.alert-error role="alert" { "The last backup failed. The operator has been told in the server log." } }
                None => { div.alert.alert-info role="status" { "No backup has run on this server yet. The first one runs within a day of starting." } }
            }
            (facts(&r.backups))
            p.muted.small { "Backups are encrypted snapshots. A restore rehearsal restores each new backup into a scratch database, compares row counts and verifies every audit chain." }
        }
    };
    Ok(owner_page(&web, Tab::Backups, "Backups and restore rehearsals", body))
}

pub(crate) async fn trust(
    State(st): State<AppState>,
    web: Web<AuditRead>,
    headers: HeaderMap,
) -> Result<Page, WebError> {
    let r = crate::trust::report(&st, &headers).await?;
    let mut sections = vec![
        ("Transport security", &r.tls),
        ("Encryption at rest", &r.encryption_at_rest),
        ("Tenant isolation in the database", &r.row_level_security),
        ("Audit trail", &r.audit_trail),
        ("Backups", &r.backups),
        ("Request log", &r.request_log),
    ];
    if let Some(p) = &r.practice {
        sections.insert(0, ("Your practice", p));
    }
    let body = html! {
        p.lead { "Each line was measured by this server; none is a fixed claim. The same report is public at "
            a href="/trust" { "/trust" } " and machine-readable at " a href="/api/v1/trust" { "/api/v1/trust" } "." }
        div.trust-grid {
            @for (title, v) in &sections {
                section.card { h3 { (title) } (facts(v)) }
            }
        }
    };
    Ok(owner_page(&web, Tab::Trust, "Trust report", body))
}
