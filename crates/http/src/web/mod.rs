//! The server-rendered web UI for owners, managers, providers and front desk.
//!
//! Pages are rendered with `maud` on top of the same domain services the JSON API calls
//! (`lacuna-practice`, `lacuna-accounts`): a booking conflict, a validation message or a
//! permission refusal comes from the same code, and is shown next to the field it names.
//! Each page states the same route requirement as its API twin (`Web<ScheduleRead>`), so the
//! second factor, forced enrollment, step-up and a cancelled practice's read-only state apply
//! exactly as they do to the API.
//!
//! What must never happen here: inline script or inline style (the CSP forbids both; the one
//! stylesheet and the one script are served from the binary), a business rule re-implemented
//! in a handler, or a form write without the session's CSRF token.

mod assets;
mod auth_pages;
mod calendar;
mod clients;
mod form;
mod insights;
mod layout;
mod owner;
mod session;
mod settings;
mod time;

use crate::AppState;
use crate::auth::Authenticated;
use axum::Router;
use axum::routing::{get, post};
use session::{Web, WebError};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .route("/signin", get(auth_pages::signin_page).post(auth_pages::signin))
        .route("/signup", get(auth_pages::signup_page).post(auth_pages::signup))
        .route("/invite", get(auth_pages::invite_page).post(auth_pages::accept_invite))
        .route("/mfa/verify", get(auth_pages::verify_page).post(auth_pages::verify))
        .route("/signout", post(auth_pages::signout))
        .route("/account/mfa", get(auth_pages::mfa_page))
        .route("/account/mfa/enroll", post(auth_pages::mfa_enroll))
        .route("/account/mfa/confirm", post(auth_pages::mfa_confirm))
        .route("/calendar", get(calendar::calendar))
        .route("/calendar/book", get(calendar::book_page).post(calendar::book))
        .route("/calendar/appointments/{id}", get(calendar::appointment))
        .route("/calendar/appointments/{id}/reschedule", post(calendar::reschedule))
        .route("/calendar/appointments/{id}/cancel", post(calendar::cancel))
        .route("/calendar/appointments/{id}/complete", post(calendar::complete))
        .route("/calendar/appointments/{id}/no-show", post(calendar::no_show))
        .route("/clients", get(clients::list))
        .route("/clients/search", get(clients::search_fragment))
        .route("/clients/new", get(clients::new_page).post(clients::create))
        .route("/clients/{id}", get(clients::profile))
        .route("/clients/{id}/edit", get(clients::edit_page).post(clients::update))
        .route("/settings", get(settings::practice_page).post(settings::practice_save))
        .route("/settings/locations", get(settings::locations_page).post(settings::location_create))
        .route("/settings/services", get(settings::services_page).post(settings::service_create))
        .route("/settings/services/{id}", get(settings::service_page).post(settings::service_update))
        .route("/settings/providers", get(settings::providers_page).post(settings::provider_create))
        .route("/settings/providers/{id}", get(settings::provider_page).post(settings::provider_update))
        .route("/settings/providers/{id}/hours", post(settings::provider_hours))
        .route("/settings/members", get(settings::members_page).post(settings::member_invite))
        .route("/settings/members/{id}", get(settings::member_page).post(settings::member_change))
        .route("/settings/members/{id}/remove", post(settings::member_remove))
        .route("/settings/security", get(settings::security_page).post(settings::security_save))
        .route("/settings/messages", get(settings::messages_page))
        .route("/owner", get(owner::overview))
        .route("/owner/audit", get(owner::audit))
        .route("/owner/exports", get(owner::exports))
        .route("/owner/backups", get(owner::backups))
        .route("/owner/trust", get(owner::trust))
        .route("/insights", get(insights::inbox))
        .route("/insights/propose", post(insights::propose))
        .route("/insights/actions/{id}/{verdict}", post(insights::decide))
        .route("/insights/policy", get(insights::policy_page))
        .route("/insights/policy/{kind}", post(insights::policy_save))
}

/// The front door: the calendar for the signed in, the sign-in page for everyone else.
async fn home(web: Result<Web<Authenticated>, WebError>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match web {
        Ok(_) => session::redirect("/calendar"),
        Err(e) => e.into_response(),
    }
}
