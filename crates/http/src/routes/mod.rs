//! Route table. Each handler's `#[utoipa::path]` states its security scopes (the permission it
//! needs); its `Auth<…>` argument enforces the same. Routes without `security` are public and
//! must be listed in `PUBLIC_ROUTES`, which the authorization-matrix test checks.

mod accounts;
mod audit;
mod export;
mod insight;
mod members;
mod meta;
mod mfa;
mod practice;
mod request_log;
mod tenant;
mod tokens;

use crate::AppState;
use crate::error::{ErrorBody, ErrorDetail};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes anyone may call, signed in or not.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/signup"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/accept-invite"),
    ("get", "/healthz"),
    ("get", "/api/v1/trust"),
    ("post", "/api/v1/webhooks/stripe"),
];

#[derive(OpenApi)]
#[openapi(
    info(title = "Lacuna API", description = "Practice platform for spas, salons and medspas."),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub(crate) fn build(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::accept_invite))
        .routes(routes!(accounts::me))
        .routes(routes!(members::list, members::invite))
        .routes(routes!(members::get, members::change, members::remove))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(mfa::status))
        .routes(routes!(mfa::enroll))
        .routes(routes!(mfa::confirm))
        .routes(routes!(mfa::verify))
        .routes(routes!(mfa::disable))
        .routes(routes!(mfa::set_policy))
        .routes(routes!(request_log::export))
        .routes(routes!(crate::trust::trust_json))
        .routes(routes!(tenant::cancel))
        .routes(routes!(tenant::reactivate))
        .routes(routes!(meta::healthz))
        .routes(routes!(practice::clients::create, practice::clients::list))
        .routes(routes!(practice::clients::lookup))
        .routes(routes!(practice::clients::get, practice::clients::update))
        .routes(routes!(practice::exports::export))
        .routes(routes!(practice::plans::create, practice::plans::list))
        .routes(routes!(practice::plans::redeem))
        .routes(routes!(practice::plans::cancel))
        .routes(routes!(practice::payments::create, practice::payments::list))
        .routes(routes!(practice::payments::refund))
        .routes(routes!(practice::messages::list))
        .routes(routes!(practice::webhooks::stripe))
        .routes(routes!(practice::catalog::get_settings, practice::catalog::patch_settings))
        .routes(routes!(practice::catalog::create_location, practice::catalog::list_locations))
        .routes(routes!(practice::catalog::create_service, practice::catalog::list_services))
        .routes(routes!(
            practice::catalog::get_service,
            practice::catalog::update_service,
            practice::catalog::delete_service
        ))
        .routes(routes!(practice::catalog::create_provider, practice::catalog::list_providers))
        .routes(routes!(
            practice::catalog::get_provider,
            practice::catalog::update_provider,
            practice::catalog::delete_provider
        ))
        .routes(routes!(practice::catalog::put_hours))
        .routes(routes!(practice::catalog::add_time_off, practice::catalog::list_time_off))
        .routes(routes!(practice::catalog::delete_time_off))
        .routes(routes!(practice::appointments::book, practice::appointments::list))
        .routes(routes!(practice::appointments::get))
        .routes(routes!(practice::appointments::reschedule))
        .routes(routes!(practice::appointments::cancel))
        .routes(routes!(practice::appointments::no_show))
        .routes(routes!(practice::appointments::complete))
        .routes(routes!(practice::appointments::availability))
        .routes(routes!(insight::ingest))
        .routes(routes!(insight::gaps))
        .routes(routes!(insight::actions))
        .routes(routes!(insight::propose))
        .routes(routes!(insight::approve))
        .routes(routes!(insight::decline))
        .routes(routes!(insight::get_policy))
        .routes(routes!(insight::set_policy))
        .routes(routes!(insight::triggers))
        .routes(routes!(insight::rejections))
        .routes(routes!(insight::rotate_pseudonyms))
        .routes(routes!(insight::set_webhook, insight::delete_webhook))
        .split_for_parts();
    let doc_json = std::sync::Arc::new(doc.clone());
    let router = router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc_json.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .route("/trust", axum::routing::get(crate::trust::trust_html))
        .route("/.well-known/security.txt", axum::routing::get(crate::trust::security_txt))
        .merge(crate::web::router())
        .fallback(meta::not_found);
    (crate::middleware::wrap(router.with_state(state.clone()), state), doc)
}

/// Parses a path id; anything that is not a valid id is simply not found.
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, crate::ApiError> {
    raw.parse().map_err(|_| crate::ApiError::not_found())
}

pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
