//! The page shell: header, navigation (what the member may use), notices, and error pages.
//! No inline style or script anywhere: one stylesheet, one script, both from `/assets`.

use super::session::Web;
use crate::ApiError;
use crate::auth::Requirement;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lacuna_accounts::Principal;
use lacuna_domain::Permission;
use maud::{DOCTYPE, Markup, html};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Calendar,
    Clients,
    Insights,
    Settings,
    Owner,
    Account,
}

/// A full page for a signed-in member.
pub(crate) struct Page {
    title: String,
    nav: Nav,
    principal: Principal,
    csrf: String,
    notice: Option<&'static str>,
    body: Markup,
    status: StatusCode,
}

impl Page {
    pub fn new<R: Requirement>(web: &Web<R>, title: impl Into<String>, nav: Nav) -> Self {
        Self {
            title: title.into(),
            nav,
            principal: web.p.clone(),
            csrf: web.csrf.clone(),
            notice: None,
            body: html! {},
            status: StatusCode::OK,
        }
    }

    pub fn body(mut self, body: Markup) -> Self {
        self.body = body;
        self
    }

    /// A confirmation after a redirect (`?notice=saved`): fixed texts only, nothing reflected.
    pub fn notice(mut self, code: Option<&str>) -> Self {
        self.notice = code.and_then(notice_text);
        self
    }

    /// A refused form is shown again with 422 (or 409 for a conflict).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "saved" => "Saved.",
        "created" => "Added.",
        "booked" => "Appointment booked.",
        "rescheduled" => "Appointment moved.",
        "cancelled" => "Appointment cancelled.",
        "completed" => "Appointment marked as completed.",
        "no_show" => "Appointment marked as a no-show.",
        "mfa_on" => "Two-step verification is on.",
        "verified" => "Verified.",
        "removed" => "Removed.",
        "proposed" => "Looked for new actions.",
        "approved" => "Approved. The practice's outbox takes it from here.",
        "declined" => "Declined. Nothing will be sent.",
        "welcome" => "Welcome to Lacuna. Start by adding a location, your services and providers.",
        _ => return None,
    })
}

fn can(p: &Principal, perm: Permission) -> bool {
    p.permissions.contains(perm)
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let p = &self.principal;
        let item = |nav: Nav, href: &str, label: &str| {
            html! {
                li { a href=(href) aria-current=[(self.nav == nav).then_some("page")] { (label) } }
            }
        };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(&self.title))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.topbar {
                        div.topbar-inner {
                            a.brand href="/calendar" { span.brand-mark aria-hidden="true" { "◐" } "Lacuna" }
                            nav aria-label="Main" {
                                ul.nav {
                                    @if can(p, Permission::ScheduleRead) { (item(Nav::Calendar, "/calendar", "Calendar")) }
                                    @if can(p, Permission::ClientsRead) { (item(Nav::Clients, "/clients", "Clients")) }
                                    @if can(p, Permission::InsightRead) { (item(Nav::Insights, "/insights", "Insights")) }
                                    @if can(p, Permission::CatalogManage) || can(p, Permission::MembersRead) || can(p, Permission::TenantSettings) {
                                        (item(Nav::Settings, "/settings", "Settings"))
                                    }
                                    @if can(p, Permission::AuditRead) { (item(Nav::Owner, "/owner", "Owner tools")) }
                                }
                            }
                            div.account {
                                a.account-name href="/account/mfa" aria-current=[(self.nav == Nav::Account).then_some("page")] {
                                    span.practice { (p.profile.tenant_name) }
                                    span.person { (p.profile.name) " · " (p.profile.role.name().replace('_', " ")) }
                                }
                                form method="post" action="/signout" {
                                    (super::form::csrf(&self.csrf))
                                    button.btn.btn-quiet type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                    main #main.container {
                        @if let Some(n) = self.notice { div.alert.alert-ok role="status" { (n) } }
                        @if p.tenant_cancelled {
                            div.alert.alert-warn role="status" { "This practice is cancelled: you can read and export, but not make changes." }
                        }
                        (self.body)
                    }
                }
            }
        };
        html_response(self.status, markup)
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Lacuna" }
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/app.js" defer {}
        }
    }
}

/// A page for someone not signed in (sign-in, sign-up, MFA prompt, errors).
pub(crate) fn bare_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main #main.narrow {
                    a.brand.brand-center href="/" { span.brand-mark aria-hidden="true" { "◐" } "Lacuna" }
                    (body)
                }
            }
        }
    };
    html_response(status, markup)
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

/// What a refused page shows: the service's message (a 500 says nothing more).
pub(crate) fn error_page(e: &ApiError) -> Response {
    let (title, text) = match e.status {
        StatusCode::NOT_FOUND => ("Not found", "There is nothing here, or it belongs to someone else.".to_string()),
        StatusCode::FORBIDDEN => ("Not allowed", e.message.clone()),
        s if s.is_server_error() => ("Something went wrong", "Please try again in a moment.".to_string()),
        _ => ("Cannot do that", e.message.clone()),
    };
    bare_page(
        e.status,
        title,
        html! {
            section.card {
                h1 { (title) }
                p { (text) }
                p { a href="/calendar" { "Back to the calendar" } }
            }
        },
    )
}

/// A page heading with optional actions on the right.
pub(crate) fn page_head(title: &str, actions: Markup) -> Markup {
    html! {
        div.page-head {
            h1 { (title) }
            div.actions { (actions) }
        }
    }
}

/// Secondary navigation of a section.
pub(crate) fn subnav(items: &[(&str, &str, bool)]) -> Markup {
    html! {
        nav.subnav aria-label="Section" {
            ul {
                @for (href, label, current) in items {
                    li { a href=(href) aria-current=[current.then_some("page")] { (label) } }
                }
            }
        }
    }
}
