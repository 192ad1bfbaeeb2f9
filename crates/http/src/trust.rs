//! The trust page and security.txt. Every fact on the trust page comes from a check the running
//! server made (a TLS handshake probe, a crypto self-test, the database role's privileges, the
//! last audit-chain verification, the request-log purge) or makes now for the signed-in tenant.
//! Nothing here is a constant claim.

use crate::auth::session_cookie;
use crate::probe::TlsProbe;
use crate::routes::rfc3339;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use lacuna_accounts::RequestMeta;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub at: i64,
    pub tenants: u64,
    pub events: u64,
    pub broken_tenants: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PurgeRun {
    pub at: i64,
    pub removed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CryptoSelfTest {
    pub at: i64,
    /// AES-256-GCM encrypt/decrypt and key wrap/unwrap round trips, and tamper detection.
    pub passed: bool,
    /// `environment` or `key file`.
    pub master_key_source: &'static str,
}

/// The newest backup and the newest successful restore rehearsal, from the backup ledger.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupFacts {
    pub last_backup_at: Option<i64>,
    pub last_backup_ok: Option<bool>,
    pub last_rehearsal_at: Option<i64>,
    pub last_rehearsal_detail: Option<String>,
    pub last_rehearsal_failed_at: Option<i64>,
}

#[derive(Default, Debug)]
struct Facts {
    backups: BackupFacts,
    tls: Option<TlsProbe>,
    plain_http: bool,
    crypto: Option<CryptoSelfTest>,
    audit: Option<AuditCheck>,
    purge: Option<PurgeRun>,
}

/// What the server has measured about itself. Cheap to clone.
#[derive(Clone, Default)]
pub struct TrustState(Arc<RwLock<Facts>>);

impl TrustState {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Facts> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Facts> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
    pub fn set_tls(&self, probe: Option<TlsProbe>) {
        let mut f = self.write();
        f.plain_http = probe.is_none();
        f.tls = probe;
    }
    pub fn set_crypto(&self, t: CryptoSelfTest) {
        self.write().crypto = Some(t);
    }
    pub fn set_audit(&self, a: AuditCheck) {
        self.write().audit = Some(a);
    }
    pub fn set_backups(&self, b: BackupFacts) {
        self.write().backups = b;
    }
    pub fn set_purge(&self, p: PurgeRun) {
        self.write().purge = Some(p);
    }
}

#[derive(Serialize, ToSchema)]
pub struct TrustReport {
    /// Protocol versions a handshake probe against this server succeeded or failed with.
    #[schema(value_type = Object)]
    pub(crate) tls: serde_json::Value,
    #[schema(value_type = Object)]
    pub(crate) encryption_at_rest: serde_json::Value,
    #[schema(value_type = Object)]
    pub(crate) row_level_security: serde_json::Value,
    #[schema(value_type = Object)]
    pub(crate) audit_trail: serde_json::Value,
    #[schema(value_type = Object)]
    pub(crate) backups: serde_json::Value,
    #[schema(value_type = Object)]
    pub(crate) request_log: serde_json::Value,
    /// Present when the request is signed in: facts about the caller's own practice.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) practice: Option<serde_json::Value>,
}

pub(crate) async fn report(st: &AppState, headers: &HeaderMap) -> Result<TrustReport, ApiError> {
    use serde_json::json;
    let facts = {
        let f = st.trust.read();
        (f.tls.clone(), f.plain_http, f.crypto.clone(), f.audit.clone(), f.purge.clone(), f.backups.clone())
    };
    let (tls, plain_http, crypto, audit, purge, backups) = facts;
    let rls = match st.accounts.store().row_level_security().await {
        Ok(Some(on)) => json!({"backend": "postgresql", "enforced": on,
            "checked": "application role is not superuser, has no BYPASSRLS, owns no table; every tenant table has RLS enabled and forced"}),
        Ok(None) => json!({"backend": "sqlite", "enforced": null,
            "checked": "SQLite has no row-level security; isolation rests on the tenant-scoped data layer alone"}),
        Err(e) => {
            tracing::error!(error = %e, "RLS check failed");
            json!({"enforced": null, "error": "check failed"})
        }
    };
    let practice = match session_cookie(headers) {
        Some(cookie) => match st.accounts.authenticate_session(&cookie, RequestMeta::default()).await {
            Ok(p) if !p.mfa.pending => Some(st.accounts.practice_trust(&p).await?),
            _ => None,
        },
        None => None,
    };
    Ok(TrustReport {
        tls: match (&tls, plain_http) {
            (Some(t), _) => json!({"served_over_tls": true, "accepted": t.accepted, "refused": t.refused,
                "hsts": st.http.hsts, "probed_at": rfc3339(t.probed_at)}),
            (None, true) => {
                json!({"served_over_tls": false, "note": "plain HTTP (--insecure-http): TLS is terminated elsewhere"})
            }
            (None, false) => json!({"served_over_tls": true, "note": "handshake probe has not run yet"}),
        },
        encryption_at_rest: match crypto {
            Some(c) => json!({"field_encryption": "AES-256-GCM with per-tenant data keys wrapped by the master key",
                "self_test_passed": c.passed, "self_test_at": rfc3339(c.at), "master_key_source": c.master_key_source}),
            None => json!({"self_test_passed": null}),
        },
        row_level_security: rls,
        audit_trail: match audit {
            Some(a) => json!({"chains_verified_at": rfc3339(a.at), "tenants": a.tenants, "events": a.events,
                "broken_chains": a.broken_tenants.len()}),
            None => json!({"chains_verified_at": null}),
        },
        backups: json!({
            "last_backup": backups.last_backup_at.map(rfc3339),
            "last_backup_succeeded": backups.last_backup_ok,
            "last_successful_rehearsal": backups.last_rehearsal_at.map(rfc3339),
            "rehearsal_found": backups.last_rehearsal_detail,
            "last_failed_rehearsal": backups.last_rehearsal_failed_at.map(rfc3339),
            "schedule": "daily, kept 30 days",
        }),
        request_log: json!({"retention_days": lacuna_storage::request_log::REQUEST_LOG_RETENTION_DAYS,
            "last_purge_at": purge.as_ref().map(|p| rfc3339(p.at)), "rows_purged": purge.map(|p| p.removed)}),
        practice,
    })
}

/// The server's security controls as it measured them; with a session, also the caller's practice.
#[utoipa::path(get, path = "/api/v1/trust", tag = "trust", responses((status = 200, body = TrustReport)))]
pub async fn trust_json(State(st): State<AppState>, headers: HeaderMap) -> Result<Json<TrustReport>, ApiError> {
    Ok(Json(report(&st, &headers).await?))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn rows(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "—".into(),
                    other => other.to_string(),
                };
                format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(&k.replace('_', " ")), esc(&text))
            })
            .collect(),
        None => String::new(),
    }
}

/// The same report for people.
pub async fn trust_html(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let r = report(&st, &headers).await?;
    let mut sections = vec![
        ("Transport security", r.tls),
        ("Encryption at rest", r.encryption_at_rest),
        ("Tenant isolation in the database", r.row_level_security),
        ("Audit trail", r.audit_trail),
        ("Backups", r.backups),
        ("Request log", r.request_log),
    ];
    if let Some(p) = r.practice {
        sections.push(("Your practice", p));
    }
    let body: String = sections
        .iter()
        .map(|(title, v)| format!("<section><h2>{}</h2><table>{}</table></section>", esc(title), rows(v)))
        .collect();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Lacuna · Trust</title></head><body><main>\
         <h1>Trust</h1><p>Each line below was measured by this server; none is a fixed claim.</p>{body}\
         <p><a href=\"/api/v1/trust\">Machine-readable</a> · <a href=\"/.well-known/security.txt\">security.txt</a></p>\
         </main></body></html>"
    );
    Ok(Html(page).into_response())
}

/// RFC 9116.
pub async fn security_txt(State(st): State<AppState>) -> Response {
    let text = format!(
        "Contact: {}\nExpires: {}\nPreferred-Languages: en\n",
        st.http.security_contact,
        rfc3339(st.http.security_expires)
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}
