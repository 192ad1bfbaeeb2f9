//! Wiring: configuration → store, keys, services → HTTP app. `lacuna serve`, `lacuna bench`
//! and the integration tests all build the application through [`build`], so what is tested is
//! what runs.

pub mod backup;
pub mod bench;
pub mod demo;
pub mod jobs;
pub mod scratch;

use anyhow::Context;
use lacuna_accounts::{Accounts, AccountsConfig, Keyring};
use lacuna_crypto::{MasterKey, MasterKeySource, MasterKeys, PasswordHasher};
use lacuna_http::{AppState, HttpSettings, RunningServer, ServeConfig, TlsMode};
use lacuna_storage::{PgConfig, Store, StoreConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL (migrations run as this, the owner); otherwise SQLite.
    pub database_url: Option<String>,
    /// The application role's own URL (production); derived from `database_url` when absent.
    pub app_database_url: Option<String>,
    pub app_role: String,
    /// Insight's own role's URL (`LACUNA_INSIGHT_DATABASE_URL`); derived like the app role's.
    pub insight_database_url: Option<String>,
    /// Base64 of 32 bytes; when absent, `<data_dir>/master.key` is used (created on first start).
    pub master_key: Option<String>,
    /// The master key being rotated away from (`LACUNA_PREVIOUS_MASTER_KEY`), still accepted for
    /// unwrapping until `lacuna keys rotate-master` has re-wrapped everything.
    pub previous_master_key: Option<String>,
    /// PostgreSQL URL for backups (a role that bypasses row-level security); defaults to
    /// `database_url`.
    pub backup_database_url: Option<String>,
    pub listen: SocketAddr,
    pub tls: TlsChoice,
    pub trust_proxy: bool,
    /// security.txt `Contact:`; a placeholder (with a warning) when not configured.
    pub security_contact: Option<String>,
    /// security.txt `Expires:` this many days after start.
    pub security_expires_days: i64,
    /// Stripe webhook endpoint secret (`LACUNA_STRIPE_WEBHOOK_SECRET`); the webhook endpoint
    /// answers 404 without it.
    pub stripe_webhook_secret: Option<String>,
    /// Outgoing mail (`LACUNA_SMTP_URL`, e.g. `smtp://mail.example.com:587?tls=required`); without
    /// it messages go to the file channel `<data_dir>/outbox/messages.jsonl`.
    pub smtp_url: Option<String>,
    /// The sender address for SMTP (`LACUNA_SMTP_FROM`).
    pub smtp_from: Option<String>,
}

#[derive(Debug, Clone)]
pub enum TlsChoice {
    /// Generate (once) and use a self-signed certificate in the data dir.
    SelfSigned,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    InsecureHttp,
}

impl Config {
    /// Defaults for a data dir: SQLite, self-signed TLS on a random loopback port.
    pub fn local(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            database_url: None,
            app_database_url: None,
            app_role: "lacuna_app".into(),
            insight_database_url: None,
            master_key: None,
            previous_master_key: None,
            backup_database_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: TlsChoice::SelfSigned,
            trust_proxy: false,
            security_contact: None,
            security_expires_days: 180,
            stripe_webhook_secret: None,
            smtp_url: None,
            smtp_from: None,
        }
    }

    fn insight_store_config(&self) -> lacuna_storage::insight::InsightStoreConfig {
        use lacuna_storage::insight::InsightStoreConfig;
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                InsightStoreConfig::Postgres {
                    owner_url: url.clone(),
                    app_url: self.insight_database_url.clone(),
                    role: format!("{}_insight", self.app_role.trim_end_matches("_app")),
                }
            }
            _ => InsightStoreConfig::Sqlite { path: self.data_dir.join("insight.db") },
        }
    }

    fn store_config(&self) -> StoreConfig {
        match &self.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreConfig::Postgres(PgConfig {
                    owner_url: url.clone(),
                    app_url: self.app_database_url.clone(),
                    app_role: self.app_role.clone(),
                })
            }
            _ => StoreConfig::Sqlite { path: self.data_dir.join("lacuna.db") },
        }
    }
}

/// The assembled application, ready to be served.
pub struct App {
    pub state: AppState,
    pub store: Store,
    pub router: axum::Router,
    pub openapi: utoipa::openapi::OpenApi,
    pub services: Services,
    tls: TlsMode,
    listen: SocketAddr,
}

/// The services without HTTP: what operator commands (`audit verify`, …) work with.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub accounts: Accounts,
    /// Insight's own store (its own SQLite file, or its own PostgreSQL schema and role).
    pub insight: lacuna_storage::insight::InsightStore,
    /// Insight's boundary: every event from Practice or outside passes it first.
    pub phi_guard: Arc<lacuna_insight::PhiGuard>,
    /// Insight at work: warm gap engines, proposed actions, the approval policy, triggers.
    pub insight_service: lacuna_insight_service::InsightService,
    /// Outcome of the start-up crypto self-test.
    pub crypto_self_test: lacuna_http::trust::CryptoSelfTest,
}

impl Services {
    /// Closes every pool (the data store and Insight's).
    pub async fn close(&self) {
        self.store.close().await;
        self.insight.close().await;
    }
}

/// Loads the master key and opens (and migrates) the store.
pub async fn open_services(config: &Config) -> anyhow::Result<Services> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let (master, source) = MasterKey::load(config.master_key.as_deref(), &config.data_dir.join("master.key"))?;
    match source {
        MasterKeySource::Environment => tracing::info!("master key from LACUNA_MASTER_KEY"),
        MasterKeySource::ExistingFile => {
            tracing::warn!("master key from the key file in the data dir; production should supply LACUNA_MASTER_KEY")
        }
        MasterKeySource::GeneratedFile => tracing::warn!(
            "generated a new master key file in the data dir (mode 0600); production should supply its own via LACUNA_MASTER_KEY and keep it apart from backups"
        ),
    }
    let crypto_self_test = lacuna_http::trust::CryptoSelfTest {
        at: lacuna_storage::now_unix(),
        passed: lacuna_crypto::self_test(&master),
        master_key_source: if source == MasterKeySource::Environment { "environment" } else { "key file" },
    };
    if !crypto_self_test.passed {
        anyhow::bail!("cryptographic self-test failed; refusing to start");
    }
    let previous = config
        .previous_master_key
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .map(MasterKey::from_base64)
        .transpose()
        .context("LACUNA_PREVIOUS_MASTER_KEY")?;
    tracing::info!(master = %master.fingerprint(), previous = ?previous.as_ref().map(MasterKey::fingerprint), "master key loaded");
    let keystore = lacuna_storage::keystore::Keystore::open(&config.data_dir.join("keystore.db"))
        .await
        .context("opening the keystore")?;
    let keys =
        Arc::new(Keyring::open(MasterKeys::new(master, previous), keystore).await.context("opening the keyring")?);
    let store = Store::open(&config.store_config()).await.context("opening the store")?;
    let accounts = Accounts::new(store.clone(), keys, PasswordHasher::new(), AccountsConfig::default());
    let insight = lacuna_storage::insight::InsightStore::open(&config.insight_store_config())
        .await
        .context("opening Insight's store")?;
    let phi_guard = Arc::new(lacuna_insight::PhiGuard::new());
    let insight_service =
        lacuna_insight_service::InsightService::new(insight.clone(), phi_guard.clone(), accounts.clone());
    Ok(Services { store, accounts, insight, phi_guard, insight_service, crypto_self_test })
}

/// Everything `serve` runs: the services and the router over them.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    let services = open_services(config).await?;
    let Services { store, accounts, .. } = services.clone();
    let tls = match &config.tls {
        TlsChoice::SelfSigned => {
            let (cert, key, generated) = lacuna_http::ensure_self_signed(&config.data_dir)?;
            if generated {
                tracing::warn!(cert = %cert.display(), "generated a self-signed certificate for local use");
            }
            TlsMode::Files { cert, key }
        }
        TlsChoice::Files { cert, key } => TlsMode::Files { cert: cert.clone(), key: key.clone() },
        TlsChoice::InsecureHttp => TlsMode::InsecureHttp,
    };
    let hsts = !matches!(tls, TlsMode::InsecureHttp);
    let security_contact = config.security_contact.clone().unwrap_or_else(|| {
        tracing::warn!("no --security-contact given; security.txt names a placeholder address");
        "mailto:security@localhost".to_string()
    });
    let settings = HttpSettings {
        trust_proxy: config.trust_proxy,
        hsts,
        security_contact,
        security_expires: lacuna_storage::now_unix() + config.security_expires_days * 86_400,
        stripe_webhook_secret: config.stripe_webhook_secret.clone().filter(|s| !s.is_empty()),
        message_channel: if config.smtp_url.as_deref().is_some_and(|u| !u.is_empty()) { "smtp" } else { "file" },
    };
    // Audit entries committed by a previous run but not yet linked into their chains.
    let sweeper = accounts.clone();
    tokio::spawn(async move {
        if let Err(e) = sweeper.chain_all_audit().await {
            tracing::error!(error = %e, "could not link pending audit entries at start");
        }
    });
    let state = AppState::new(accounts, services.insight_service.clone(), settings);
    state.trust.set_crypto(services.crypto_self_test.clone());
    let (router, openapi) = lacuna_http::app(state.clone());
    Ok(App { state, store, router, openapi, tls, listen: config.listen, services })
}

impl App {
    /// Starts serving; returns once the socket listens.
    pub async fn start(&self) -> anyhow::Result<RunningServer> {
        let cfg = ServeConfig { listen: self.listen, tls: self.tls.clone() };
        let server = lacuna_http::start(self.router.clone(), cfg).await?;
        // Measure what the listener actually accepts, for the trust page.
        let trust = self.state.trust.clone();
        if server.tls {
            let addr = server.addr;
            tokio::spawn(async move { trust.set_tls(Some(lacuna_http::probe::probe(addr).await)) });
        } else {
            trust.set_tls(None);
        }
        Ok(server)
    }

    /// The PEM certificate the server presents (for clients that must trust it).
    pub fn certificate_pem(&self) -> Option<Vec<u8>> {
        match &self.tls {
            TlsMode::Files { cert, .. } => std::fs::read(cert).ok(),
            TlsMode::InsecureHttp => None,
        }
    }
}
