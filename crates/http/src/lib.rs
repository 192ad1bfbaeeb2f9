//! Lacuna's HTTP surface: the axum router, authentication extractors, the JSON error policy,
//! security headers, the OpenAPI document and the TLS server.
//!
//! Handlers are thin: they parse, call a domain service, and shape the answer. Every route
//! declares the permission it needs in its signature (`Auth<MembersManage>`) and in its OpenAPI
//! `security` scopes; a test walks the document and checks both agree for every role.

mod auth;
mod error;
mod json;
mod middleware;
mod routes;
mod server;
mod tls;

pub use auth::SESSION_COOKIE;
pub use error::ApiError;
pub use routes::PUBLIC_ROUTES;
pub use server::{RunningServer, ServeConfig, ServeError, TlsMode, start};
pub use tls::{TlsError, ensure_self_signed};

use lacuna_accounts::Accounts;
use std::sync::Arc;

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    pub(crate) http: Arc<HttpSettings>,
}

/// Settings that shape HTTP behaviour.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Take the client address from the last `X-Forwarded-For` hop (only behind a proxy you run).
    pub trust_proxy: bool,
    /// Send HSTS (true whenever the server itself speaks TLS).
    pub hsts: bool,
}

impl AppState {
    pub fn new(accounts: Accounts, http: HttpSettings) -> Self {
        Self { accounts, http: Arc::new(http) }
    }
}

/// The full application router and its OpenAPI document.
pub fn app(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    routes::build(state)
}
