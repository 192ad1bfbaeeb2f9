//! Lacuna's HTTP surface: the axum router, authentication extractors, the JSON error policy,
//! security headers, the OpenAPI document and the TLS server.
//!
//! Handlers are thin: they parse, call a domain service, and shape the answer. Every route
//! declares the permission it needs in its signature (`Auth<MembersManage>`) and in its OpenAPI
//! `security` scopes; a test walks the document and checks both agree for every role.

mod auth;
mod error;
mod idempotency;
mod json;
mod middleware;
pub mod probe;
pub mod request_log;
mod routes;
mod server;
mod tls;
pub mod trust;
mod web;

pub use auth::SESSION_COOKIE;
pub use error::ApiError;
pub use idempotency::KEY_LIFETIME_SECS as IDEMPOTENCY_KEY_LIFETIME_SECS;
pub use routes::PUBLIC_ROUTES;
pub use server::{RunningServer, ServeConfig, ServeError, TlsMode, start};
pub use tls::{TlsError, ensure_self_signed};

use lacuna_accounts::Accounts;
use lacuna_practice::Practice;
use std::sync::Arc;

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    pub practice: Practice,
    pub insight: lacuna_insight_service::InsightService,
    pub(crate) http: Arc<HttpSettings>,
    pub request_log: request_log::RequestLogger,
    pub trust: trust::TrustState,
}

/// Settings that shape HTTP behaviour.
#[derive(Clone)]
pub struct HttpSettings {
    /// Take the client address from the last `X-Forwarded-For` hop (only behind a proxy you run).
    pub trust_proxy: bool,
    /// Send HSTS (true whenever the server itself speaks TLS).
    pub hsts: bool,
    /// `Contact:` of security.txt (RFC 9116), e.g. `mailto:security@example.com`.
    pub security_contact: String,
    /// `Expires:` of security.txt (Unix time).
    pub security_expires: i64,
    /// The Stripe webhook endpoint secret (`LACUNA_STRIPE_WEBHOOK_SECRET`); without it the
    /// webhook endpoint answers 404.
    pub stripe_webhook_secret: Option<String>,
    /// The message channel in use, as the settings page names it: `smtp` or `file`.
    pub message_channel: &'static str,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The webhook secret never reaches a log line.
        f.debug_struct("HttpSettings")
            .field("trust_proxy", &self.trust_proxy)
            .field("hsts", &self.hsts)
            .field("security_contact", &self.security_contact)
            .field("security_expires", &self.security_expires)
            .field("stripe_webhook_secret", &self.stripe_webhook_secret.as_ref().map(|_| "<set>"))
            .field("message_channel", &self.message_channel)
            .finish()
    }
}

impl AppState {
    /// Builds the state and starts the request-log writer (needs a running Tokio runtime).
    pub fn new(accounts: Accounts, insight: lacuna_insight_service::InsightService, http: HttpSettings) -> Self {
        let request_log = request_log::RequestLogger::start(accounts.store().clone());
        let practice = Practice::new(accounts.clone());
        Self { accounts, practice, insight, http: Arc::new(http), request_log, trust: trust::TrustState::default() }
    }
}

/// The full application router and its OpenAPI document.
pub fn app(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    routes::build(state)
}
