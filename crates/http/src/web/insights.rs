//! The Insights inbox: revenue gaps grouped by kind with their evidence and revenue at stake,
//! totals at the top, proposed actions to approve or decline, what became of approved ones, and
//! the approval-policy editor. Everything comes from the Insight service (pseudonyms only); a
//! pseudonym is shown as a client's name only to a member who may see clients
//! (`clients.read`), resolved on the Practice side.

use super::form::{FieldError, Form, FormData, amount, csrf, int, money};
use super::layout::{Nav, Page, page_head, subnav};
use super::session::{Web, WebError, redirect};
use crate::auth::{InsightApprove, InsightManage, InsightRead, Requirement};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use lacuna_domain::{Permission, Role};
use lacuna_insight::{ActionKind, GapKind, Policy, PolicyMode};
use lacuna_insight_service::{GapQuery, InsightError};
use maud::{Markup, html};
use std::collections::HashMap;

impl From<InsightError> for WebError {
    fn from(e: InsightError) -> Self {
        WebError::Page(e.into())
    }
}

fn kind_title(k: GapKind) -> &'static str {
    match k {
        GapKind::RebookDue => "Due to rebook",
        GapKind::SlotFill => "Open slots to fill",
        GapKind::FollowUpDue => "Follow-ups due",
        GapKind::LapsingMember => "Lapsing members",
    }
}

fn action_title(k: ActionKind) -> &'static str {
    match k {
        ActionKind::RebookNudge => "Rebook nudge",
        ActionKind::SlotFillOffer => "Slot-fill offer",
        ActionKind::FollowUpCheckin => "Follow-up check-in",
        ActionKind::MemberReminder => "Membership reminder",
    }
}

fn tabs<R: Requirement>(web: &Web<R>, title: &str, current: &str, body: Markup) -> Page {
    let content = html! {
        (page_head("Insights", html! {}))
        (subnav(&[
            ("/insights", "Inbox", current == "inbox"),
            ("/insights/policy", "Approval policy", current == "policy"),
        ]))
        (body)
    };
    Page::new(web, format!("{title} · Insights"), Nav::Insights).body(content)
}

/// Names for pseudonyms, for members who may see clients; empty for everyone else.
async fn names(st: &AppState, web: &Web<InsightRead>, pseudonyms: &[String]) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    if !web.p.permissions.contains(Permission::ClientsRead) {
        return out;
    }
    let wanted: Vec<&str> = pseudonyms.iter().map(String::as_str).collect();
    let Ok(resolved) = st.practice.resolve_pseudonyms(&web.p, &wanted).await else { return out };
    for (pseudonym, id) in resolved {
        if let Ok(c) = st.practice.get_client(&web.p, id).await {
            out.insert(pseudonym, (c.name, format!("/clients/{id}")));
        }
    }
    out
}

fn who(pseudonym: &str, names: &HashMap<String, (String, String)>) -> Markup {
    match names.get(pseudonym) {
        Some((name, href)) => html! { a href=(href) { (name) } " " span.muted.small.code { (pseudonym) } },
        None => html! { span.code { (pseudonym) } },
    }
}

/// The inbox.
pub(crate) async fn inbox(
    State(st): State<AppState>,
    web: Web<InsightRead>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = FormData::parse(q.as_deref().unwrap_or_default().as_bytes());
    let list = st.insight.gaps(&web.p, &GapQuery { limit: 200, ..Default::default() }).await?;
    let proposed = st.insight.actions(&web.p, Some("proposed"), None, 100).await?;
    let triggers = st.insight.triggers(&web.p, 20).await?;
    let mut pseudonyms: Vec<String> = proposed.iter().map(|a| a.client.clone()).collect();
    pseudonyms.extend(list.gaps.iter().take(40).map(|g| g.gap.client.as_str().to_string()));
    let names = names(&st, &web, &pseudonyms).await;
    let may_approve = web.p.permissions.contains(Permission::InsightApprove);
    let body = html! {
        section.stat-grid aria-label="Totals" {
            div.stat {
                span.stat-label { "Revenue at stake" }
                span.stat-value { (amount(list.revenue_at_stake_minor)) }
                span.stat-note { (list.total) " gaps" }
            }
            @for k in &list.by_kind {
                div.stat {
                    span.stat-label { (kind_title(k.kind)) }
                    span.stat-value { (k.count) }
                    span.stat-note { (amount(k.revenue_at_stake_minor)) " at stake" }
                }
            }
        }
        section.card {
            div.toolbar {
                h2.section-title { "Waiting for approval" }
                @if may_approve {
                    form.toolbar-form method="post" action="/insights/propose" {
                        (csrf(&web.csrf))
                        button.btn.btn-secondary type="submit" { "Look for new actions" }
                    }
                }
            }
            @if proposed.is_empty() {
                p.empty { "Nothing waits for approval. New actions are proposed from the gaps below every minute." }
            } @else {
                div.table-scroll {
                    table.table.actions-table {
                        thead { tr { th { "Action" } th { "Client" } th { "Why" } th { "At stake" } th { span.visually-hidden { "Decide" } } } }
                        tbody {
                            @for a in &proposed {
                                tr {
                                    td.nowrap { (action_title(a.kind)) }
                                    td { (who(&a.client, &names)) }
                                    td { (a.gap.get("evidence").and_then(|e| e.as_str()).unwrap_or_default()) }
                                    td.nowrap { (amount(a.revenue_at_stake_minor)) }
                                    td.nowrap {
                                        @if may_approve {
                                            form.inline method="post" action=(format!("/insights/actions/{}/approve", a.id)) {
                                                (csrf(&web.csrf))
                                                button.btn.btn-primary type="submit" aria-label=(format!("Approve {} for {}", action_title(a.kind), a.client)) { "Approve" }
                                            }
                                            form.inline method="post" action=(format!("/insights/actions/{}/decline", a.id)) {
                                                (csrf(&web.csrf))
                                                button.btn.btn-quiet type="submit" aria-label=(format!("Decline {} for {}", action_title(a.kind), a.client)) { "Decline" }
                                            }
                                        } @else {
                                            span.muted { "Needs a manager" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for kind in GapKind::ALL {
            @let gaps: Vec<_> = list.gaps.iter().filter(|g| g.gap.kind == kind).take(10).collect();
            section.card {
                h2.section-title { (kind_title(kind)) }
                @if gaps.is_empty() {
                    p.empty { "None right now." }
                } @else {
                    ul.simple-list.gap-list {
                        @for g in gaps {
                            li {
                                div { (who(g.gap.client.as_str(), &names)) }
                                div.muted { (g.gap.evidence) }
                                div.small {
                                    (amount(g.gap.revenue_at_stake_minor)) " at stake · score " (format!("{:.2}", g.gap.score))
                                    @if let Some(a) = &g.action { " · " span.pill { "action " (a.status) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2.section-title { "Approved actions" }
            @if triggers.is_empty() {
                p.empty { "None yet. An approved action goes to the practice's own message outbox; Insight never contacts anyone." }
            } @else {
                ul.simple-list {
                    @for (t, status, outcome) in &triggers {
                        li {
                            (action_title(t.kind)) " for " (who(&t.client, &HashMap::new())) " · "
                            @match (status.as_str(), outcome.as_deref()) {
                                ("pending", _) => span.pill.pill-warn { "on its way" },
                                (_, Some("queued")) => span.pill.pill-ok { "message queued" },
                                (_, Some("no_consent")) => span.pill { "not sent: no marketing consent" },
                                (_, Some("no_contact")) => span.pill { "not sent: no email address" },
                                (_, Some("webhook")) => span.pill.pill-ok { "sent to your practice system" },
                                (_, Some("unknown_client")) => span.pill.pill-bad { "client not found" },
                                _ => span.pill { (status) },
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(tabs(&web, "Inbox", "inbox", body).notice(q.opt("notice").as_deref()))
}

/// "Look for new actions now".
pub(crate) async fn propose(
    State(st): State<AppState>,
    super::session::WebForm { web, .. }: super::session::WebForm<InsightApprove>,
) -> Result<Response, WebError> {
    st.insight.propose_now(&web.p).await?;
    Ok(redirect("/insights?notice=proposed"))
}

/// Approve or decline.
pub(crate) async fn decide(
    State(st): State<AppState>,
    Path((id, verdict)): Path<(String, String)>,
    super::session::WebForm { web, .. }: super::session::WebForm<InsightApprove>,
) -> Result<Response, WebError> {
    let id: uuid::Uuid = id.parse().map_err(|_| WebError::Page(ApiError::not_found()))?;
    let approve = match verdict.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return Err(WebError::Page(ApiError::not_found())),
    };
    st.insight.decide(&web.p, &id.to_string(), approve).await?;
    Ok(redirect(if approve { "/insights?notice=approved" } else { "/insights?notice=declined" }))
}

const POLICY_FIELDS: &[&str] = &["mode", "role", "max_per_day", "max_value_minor"];

fn roles() -> Vec<(String, String)> {
    Role::ALL.iter().map(|r| (r.name().to_string(), r.name().replace('_', " "))).collect()
}

fn policy_values(p: &Policy) -> FormData {
    match &p.mode {
        PolicyMode::Off => FormData::from_pairs([("mode", "off")]),
        PolicyMode::Approval { role } => FormData::from_pairs([("mode", "approval"), ("role", role.as_str())]),
        PolicyMode::Auto { max_per_day, max_value_minor, role } => FormData::from_pairs([
            ("mode", "auto".to_string()),
            ("role", role.clone()),
            ("max_per_day", max_per_day.to_string()),
            ("max_value_minor", format!("{:.2}", *max_value_minor as f64 / 100.0)),
        ]),
    }
}

fn policy_form<R: Requirement>(
    web: &Web<R>,
    kind: ActionKind,
    values: &FormData,
    error: Option<&FieldError>,
) -> Markup {
    let f = Form::new(values, error, POLICY_FIELDS);
    let editable = web.p.permissions.contains(Permission::InsightManage);
    html! {
        section.card.form-card {
            h2.section-title { (action_title(kind)) }
            (f.banner())
            form method="post" action=(format!("/insights/policy/{}", kind.as_str())) {
                (csrf(&web.csrf))
                (f.select("mode", "How it is handled", &[
                    ("approval".to_string(), "Wait for approval".to_string()),
                    ("auto".to_string(), "Approve automatically within limits".to_string()),
                    ("off".to_string(), "Off: never propose".to_string()),
                ], None))
                (f.select("role", "Who approves", &roles(), Some("Owners can always approve.")))
                (f.input("max_per_day", "Automatic approvals per day", "number", Some("Only for automatic approval; beyond it, actions wait."), false))
                (f.input("max_value_minor", "Largest value approved automatically", "text", Some("Revenue at stake, e.g. 400.00."), false))
                @if editable { button.btn.btn-primary type="submit" { "Save" } }
                @else { p.muted { "Only an owner can change the policy." } }
            }
        }
    }
}

/// The policy editor.
pub(crate) async fn policy_page(
    State(st): State<AppState>,
    web: Web<InsightRead>,
    RawQuery(q): RawQuery,
) -> Result<Page, WebError> {
    let q = FormData::parse(q.as_deref().unwrap_or_default().as_bytes());
    let policies = st.insight.policies(&web.p).await?;
    let body = html! {
        p.lead { "No message, rebooking offer or change happens before an action is approved — by a person, or by the limits you set here." }
        div.grid-2 { @for p in &policies { (policy_form(&web, p.kind, &policy_values(p), None)) } }
    };
    Ok(tabs(&web, "Approval policy", "policy", body).notice(q.opt("notice").as_deref()))
}

/// Saves one kind's policy; a refused value is shown beside its field with what was typed.
pub(crate) async fn policy_save(
    State(st): State<AppState>,
    Path(kind): Path<String>,
    super::session::WebForm { web, form }: super::session::WebForm<InsightManage>,
) -> Result<Response, WebError> {
    let action = ActionKind::parse(&kind).ok_or_else(|| WebError::Page(ApiError::not_found()))?;
    let result = async {
        let mut body = serde_json::json!({"mode": form.get("mode"), "role": form.get("role")});
        if form.get("mode") == "auto" {
            body["max_per_day"] = int(&form, "max_per_day")?.map_or(serde_json::Value::Null, Into::into);
            body["max_value_minor"] = money(&form, "max_value_minor")?.map_or(serde_json::Value::Null, Into::into);
        }
        st.insight.set_policy(&web.p, &kind, &body).await.map_err(|e| FieldError::from(ApiError::from(e)))
    }
    .await;
    match result {
        Ok(_) => Ok(redirect("/insights/policy?notice=saved")),
        Err(e) => {
            let body = policy_form(&web, action, &form, Some(&e));
            let status = if e.code == "invalid" {
                axum::http::StatusCode::UNPROCESSABLE_ENTITY
            } else {
                axum::http::StatusCode::FORBIDDEN
            };
            Ok(tabs(&web, "Approval policy", "policy", body).status(status).into_response())
        }
    }
}
