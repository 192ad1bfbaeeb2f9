//! The `lacuna` command: `serve`, `bench`, and operator tasks.

use clap::{Parser, Subcommand, ValueEnum};
use lacuna::scratch::Backend;
use lacuna::{Config, TlsChoice};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "lacuna", version, about = "Practice platform for spas, salons and medspas")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTPS; SQLite in the data dir unless DATABASE_URL names PostgreSQL).
    Serve(ServeArgs),
    /// Measure performance.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key management.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Take an encrypted, consistent backup into <data-dir>/backups (or verify one: `backup verify FILE`).
    Backup(BackupArgs),
    /// Create a demo practice with realistic synthetic data (fixed seed) and print how to sign in.
    Demo(DemoArgs),
    /// Restore a backup over the current data (stop the server first).
    Restore {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// How many clients.
    #[arg(long, default_value_t = 3_000)]
    clients: usize,
    /// How many appointments (two years of history plus the next three weeks).
    #[arg(long, default_value_t = 24_000)]
    appointments: usize,
    /// Random seed: the same seed gives the same practice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The owner's sign-in email.
    #[arg(long, default_value = "owner@lumen.example")]
    email: String,
    /// The owner's password (at least 12 characters).
    #[arg(long, default_value = "lumen-demo-password")]
    password: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BackupArgs {
    #[command(subcommand)]
    action: Option<BackupAction>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum BackupAction {
    /// The restore rehearsal: restore into a scratch database, compare row counts with the
    /// manifest, verify every audit chain, record the result. Exit code 1 if anything is wrong.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate tenant data keys: new version, re-encrypt the tenant's fields, destroy the old one.
    Rotate {
        /// One tenant's id; without it, every tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-wrap every key under LACUNA_MASTER_KEY; LACUNA_PREVIOUS_MASTER_KEY must hold the old one.
    RotateMaster(StoreArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every tenant's hash chain; reports the first broken link. Exit code 1 if any is broken.
    Verify(StoreArgs),
}

/// Where the data is (shared by `serve` and the operator commands).
#[derive(clap::Args)]
struct StoreArgs {
    /// Where the SQLite database, key file and generated certificate live.
    #[arg(long, default_value = "./lacuna-data", env = "LACUNA_DATA_DIR")]
    data_dir: PathBuf,
    /// PostgreSQL owner URL (runs migrations); without it, SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// PostgreSQL URL of the non-owner application role (derived from DATABASE_URL if absent).
    #[arg(long, env = "LACUNA_APP_DATABASE_URL", hide_env_values = true)]
    app_database_url: Option<String>,
    /// PostgreSQL URL of Insight's own role (derived from DATABASE_URL if absent).
    #[arg(long, env = "LACUNA_INSIGHT_DATABASE_URL", hide_env_values = true)]
    insight_database_url: Option<String>,
    /// Name of the PostgreSQL application role.
    #[arg(long, default_value = "lacuna_app", env = "LACUNA_APP_ROLE")]
    app_role: String,
    /// PostgreSQL URL for backups: a role that bypasses row-level security (defaults to DATABASE_URL).
    #[arg(long, env = "LACUNA_BACKUP_DATABASE_URL", hide_env_values = true)]
    backup_database_url: Option<String>,
}

impl StoreArgs {
    fn config(self) -> Config {
        Config {
            database_url: self.database_url,
            app_database_url: self.app_database_url,
            insight_database_url: self.insight_database_url,
            app_role: self.app_role,
            master_key: std::env::var("LACUNA_MASTER_KEY").ok(),
            previous_master_key: std::env::var("LACUNA_PREVIOUS_MASTER_KEY").ok(),
            backup_database_url: self.backup_database_url,
            ..Config::local(self.data_dir)
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443", env = "LACUNA_LISTEN")]
    listen: SocketAddr,
    #[command(flatten)]
    store: StoreArgs,
    /// TLS certificate (PEM). Without it, a self-signed one is generated in the data dir.
    #[arg(long, requires = "tls_key", env = "LACUNA_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert", env = "LACUNA_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP. Only for tests or behind a TLS-terminating proxy on this host.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_http: bool,
    /// Trust the last X-Forwarded-For hop as the client address (only behind your own proxy).
    #[arg(long, env = "LACUNA_TRUST_PROXY")]
    trust_proxy: bool,
    /// Where to report vulnerabilities (security.txt Contact), e.g. mailto:security@example.com.
    #[arg(long, env = "LACUNA_SECURITY_CONTACT")]
    security_contact: Option<String>,
    /// security.txt Expires, in days from start (RFC 9116 recommends less than a year).
    #[arg(long, default_value_t = 180, env = "LACUNA_SECURITY_EXPIRES_DAYS")]
    security_expires_days: i64,
    /// Outgoing mail server, e.g. smtp://mail.example.com:587?tls=required (credentials in the
    /// URL). Without it, messages are appended to <data-dir>/outbox/messages.jsonl.
    #[arg(long, env = "LACUNA_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender address for outgoing mail, e.g. "Glow Spa <hello@glow.example>".
    #[arg(long, env = "LACUNA_SMTP_FROM", requires = "smtp_url")]
    smtp_from: Option<String>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Authenticated GET /api/v1/me against the bare GET /healthz, same server, same run.
    Http {
        #[arg(long, value_enum, default_value = "both")]
        backend: BackendArg,
        /// Seconds per endpoint.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Booking latency at a steady open-loop rate, then availability search for one provider.
    Booking {
        #[arg(long, value_enum, default_value = "both")]
        backend: BackendArg,
        /// Booking requests per second.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 50)]
        providers: usize,
        /// Availability searches (one provider, 14 days).
        #[arg(long, default_value_t = 200)]
        searches: usize,
        /// Whole measurements per backend, each on a fresh server and database (backends
        /// alternate); the summary says in how many the p99 goal was met.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// Writes a chain of audit events in one tenant, then times `audit verify` over it.
    Audit {
        #[arg(long, value_enum, default_value = "both")]
        backend: BackendArg,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Fills one tenant with clients, then times search (`GET /api/v1/clients?q=`) for 2-, 3- and
    /// 5-letter queries.
    Clients {
        #[arg(long, value_enum, default_value = "both")]
        backend: BackendArg,
        #[arg(long, default_value_t = 50_000)]
        clients: u64,
        /// Queries measured per query length.
        #[arg(long, default_value_t = 500)]
        queries: usize,
    },
    /// Insight's gap engine on a demo data dir (`lacuna demo --clients N --appointments M`), or a
    /// synthetic stream of the same shape: full detection time and memory, incremental apply
    /// latency, and DuckDB (`pip install duckdb`) on the same events with the rebook-due query.
    Insight {
        #[command(flatten)]
        store: StoreArgs,
        /// The tenant to measure (default: the data dir's only tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Build a demo-shaped stream in memory instead of reading the data dir.
        #[arg(long)]
        synthetic: bool,
        /// Synthetic: clients.
        #[arg(long, default_value_t = 20_000)]
        clients: usize,
        /// Synthetic: appointments.
        #[arg(long, default_value_t = 200_000)]
        appointments: usize,
        /// New events applied one at a time after the full detection.
        #[arg(long, default_value_t = 10_000)]
        incremental: usize,
        /// Skip the DuckDB comparison.
        #[arg(long)]
        no_duckdb: bool,
        /// Also check the indexed gaps against a full scan and the incremental ones against a full
        /// recompute (slow with many freed slots).
        #[arg(long)]
        verify: bool,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Enqueues sealed messages in one tenant, then times a delivery round (file channel).
    Outbox {
        #[arg(long, value_enum, default_value = "both")]
        backend: BackendArg,
        #[arg(long, default_value_t = 2_000)]
        messages: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
    Both,
}

impl BackendArg {
    fn backends(self) -> Vec<Backend> {
        match self {
            BackendArg::Sqlite => vec![Backend::Sqlite],
            BackendArg::Postgres => vec![Backend::Postgres],
            BackendArg::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LACUNA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                init_tracing("info");
                serve(args).await
            }
            Command::Audit(AuditCommand::Verify(store)) => {
                init_tracing("warn");
                audit_verify(store.config()).await
            }
            Command::Backup(BackupArgs { action: None, store }) => {
                init_tracing("warn");
                let config = store.config();
                let services = lacuna::open_services(&config).await?;
                let spinner = indicatif::ProgressBar::new_spinner().with_message("taking a consistent, encrypted backup");
                spinner.enable_steady_tick(Duration::from_millis(120));
                let (path, manifest) = lacuna::backup::backup(&services, &config).await?;
                spinner.finish_and_clear();
                println!(
                    "backup written: {} ({} rows in {} tables; manifest beside it)",
                    path.display(),
                    manifest.counts.values().sum::<i64>(),
                    manifest.counts.len()
                );
                Ok(())
            }
            Command::Backup(BackupArgs { action: Some(BackupAction::Verify { file, store }), .. }) => {
                init_tracing("warn");
                let config = store.config();
                let services = lacuna::open_services(&config).await?;
                let spinner = indicatif::ProgressBar::new_spinner().with_message("restore rehearsal");
                spinner.enable_steady_tick(Duration::from_millis(120));
                let result = lacuna::backup::verify(&services, &config, &file).await;
                spinner.finish_and_clear();
                match result {
                    Ok(r) => {
                        println!(
                            "rehearsal passed: {} rows in {} tables match the manifest; {} audit events in {} chains verified ({:.2}s)",
                            r.rows, r.tables, r.audit_events, r.tenants, r.seconds
                        );
                        Ok(())
                    }
                    Err(e) => {
                        println!("REHEARSAL FAILED: {e:#}");
                        std::process::exit(1);
                    }
                }
            }
            Command::Demo(args) => {
                init_tracing("warn");
                let config = args.store.config();
                let services = lacuna::open_services(&config).await?;
                let opts = lacuna::demo::DemoOptions {
                    clients: args.clients,
                    appointments: args.appointments,
                    seed: args.seed,
                    owner_email: args.email.clone(),
                    owner_password: args.password.clone(),
                    ..Default::default()
                };
                let s = lacuna::demo::run(&services, &opts).await?;
                println!(
                    "demo practice \"{}\" created in {:.1}s: {} locations, {} providers, {} services, {} clients, \
                     {} appointments ({} upcoming), {} memberships and packages, {} charges, \
                     {} pseudonymous events for Insight",
                    opts.practice_name,
                    s.seconds,
                    s.locations,
                    s.providers,
                    s.services,
                    s.clients,
                    s.appointments,
                    s.upcoming,
                    s.plans,
                    s.charges,
                    s.insight_events
                );
                println!("start the server:  lacuna serve --data-dir {}", config.data_dir.display());
                println!("then sign in at https://127.0.0.1:8443 as {} with password {}", args.email, args.password);
                Ok(())
            }
            Command::Restore { file, store } => {
                init_tracing("warn");
                let manifest = lacuna::backup::restore(&store.config(), &file).await?;
                println!(
                    "restored backup {} ({} rows in {} tables)",
                    manifest.id,
                    manifest.counts.values().sum::<i64>(),
                    manifest.counts.len()
                );
                Ok(())
            }
            Command::Keys(KeysCommand::Rotate { tenant, store }) => {
                init_tracing("warn");
                keys_rotate(store.config(), tenant).await
            }
            Command::Keys(KeysCommand::RotateMaster(store)) => {
                init_tracing("warn");
                let config = store.config();
                if config.previous_master_key.is_none() {
                    anyhow::bail!(
                        "set LACUNA_PREVIOUS_MASTER_KEY to the old master key and LACUNA_MASTER_KEY to the new one"
                    );
                }
                let services = lacuna::open_services(&config).await?;
                let n = services.accounts.rewrap_keys_under_current_master().await?;
                println!(
                    "re-wrapped {n} key(s) under the current master key; LACUNA_PREVIOUS_MASTER_KEY can now be removed"
                );
                Ok(())
            }
            Command::Bench(BenchCommand::Audit { backend, events }) => {
                init_tracing("warn");
                for b in backend.backends() {
                    let (write, n, verify) = lacuna::bench::audit(b, events).await?;
                    println!(
                        "{:<10} {} events written in {:.1}s; verified in {:.2}s = {:.0} events/s",
                        b.name(),
                        n,
                        write,
                        verify,
                        n as f64 / verify.max(1e-9)
                    );
                }
                Ok(())
            }
            Command::Bench(BenchCommand::Clients { backend, clients, queries }) => {
                init_tracing("warn");
                for b in backend.backends() {
                    let (write, figures) = lacuna::bench::clients(b, clients, queries).await?;
                    println!("{:<10} {clients} clients written in {write:.1}s", b.name());
                    println!(
                        "{:<10} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9}",
                        "backend", "letters", "queries", "mean hits", "p50 µs", "p99 µs", "max µs"
                    );
                    for f in figures {
                        println!(
                            "{:<10} {:>7} {:>8} {:>9.1} {:>9} {:>9} {:>9}",
                            b.name(),
                            f.letters,
                            f.queries,
                            f.mean_hits,
                            f.p50_us,
                            f.p99_us,
                            f.max_us
                        );
                    }
                }
                Ok(())
            }
            Command::Bench(BenchCommand::Outbox { backend, messages }) => {
                init_tracing("warn");
                for b in backend.backends() {
                    let (enqueue, n, deliver) = lacuna::bench::outbox(b, messages).await?;
                    println!(
                        "{:<10} {n} messages enqueued in {enqueue:.2}s ({:.0}/s); delivered in {deliver:.2}s = {:.0} messages/s",
                        b.name(),
                        n as f64 / enqueue.max(1e-9),
                        n as f64 / deliver.max(1e-9)
                    );
                }
                Ok(())
            }
            Command::Bench(BenchCommand::Booking { backend, rate, seconds, providers, searches, runs }) => {
                init_tracing("warn");
                let opts = lacuna::bench::BookingBenchOptions {
                    backends: backend.backends(),
                    rate,
                    duration: Duration::from_secs(seconds),
                    providers,
                    availability_requests: searches,
                    runs,
                };
                let results = lacuna::bench::booking(&opts).await?;
                lacuna::bench::print_booking(&results);
                Ok(())
            }
            Command::Bench(BenchCommand::Insight {
                store,
                tenant,
                synthetic,
                clients,
                appointments,
                incremental,
                no_duckdb,
                verify,
                seed,
            }) => {
                init_tracing("warn");
                let opts = lacuna::bench::InsightBenchOptions {
                    tenant,
                    synthetic: synthetic.then_some((clients, appointments)),
                    incremental,
                    duckdb: !no_duckdb,
                    verify,
                    seed,
                };
                lacuna::bench::insight(&store.config(), &opts).await
            }
            Command::Bench(BenchCommand::Http { backend, seconds, concurrency }) => {
                init_tracing("warn");
                let opts = lacuna::bench::HttpBenchOptions {
                    backends: backend.backends(),
                    duration: Duration::from_secs(seconds),
                    concurrency,
                    warmup: Duration::from_secs(2),
                };
                let results = lacuna::bench::http(&opts).await?;
                lacuna::bench::print_http(&results);
                Ok(())
            }
        }
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let tls = match (args.insecure_http, args.tls_cert, args.tls_key) {
        (true, _, _) => {
            tracing::warn!("!!! --insecure-http: serving PLAIN HTTP. Sessions and passwords travel unencrypted. !!!");
            tracing::warn!("!!! Use this only for tests or behind a TLS-terminating proxy on this host.        !!!");
            TlsChoice::InsecureHttp
        }
        (false, Some(cert), Some(key)) => TlsChoice::Files { cert, key },
        _ => TlsChoice::SelfSigned,
    };
    let config = Config {
        listen: args.listen,
        tls,
        trust_proxy: args.trust_proxy,
        security_contact: args.security_contact,
        security_expires_days: args.security_expires_days,
        // A secret: from the environment only, never a command-line argument.
        stripe_webhook_secret: std::env::var("LACUNA_STRIPE_WEBHOOK_SECRET").ok(),
        smtp_url: args.smtp_url,
        smtp_from: args.smtp_from,
        ..args.store.config()
    };
    let app = lacuna::build(&config).await?;
    let server = app.start().await?;
    tracing::info!(url = %server.base_url(), backend = app.store.backend().name(), "lacuna is listening");
    eprintln!("Lacuna is running at {}  (Ctrl-C to stop)", server.base_url());
    lacuna::jobs::spawn(app.services.clone(), config.clone(), app.state.trust.clone());
    lacuna::jobs::spawn_messages(&app.services, &config)?;
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        handle.graceful_shutdown(Some(Duration::from_secs(20)));
    });
    server.wait().await?;
    app.state.request_log.flush().await;
    app.services.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn audit_verify(config: Config) -> anyhow::Result<()> {
    let services = lacuna::open_services(&config).await?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("verifying audit chains {bar:40} {pos}/{len} tenants {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let reports = services.accounts.verify_all_audit_chains(|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    let reports = reports.await?;
    bar.finish_and_clear();
    let events: u64 = reports.iter().map(|r| r.events).sum();
    let mut broken = 0;
    for r in &reports {
        if let Some(b) = &r.broken {
            broken += 1;
            println!(
                "BROKEN  tenant {}  at event #{}: {}  ({} events verified before it)",
                r.tenant, b.seq, b.reason, r.events
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} tenants, {} events verified in {:.2}s ({:.0} events/s); {} broken chain(s)",
        reports.len(),
        events,
        secs,
        events as f64 / secs.max(1e-9),
        broken
    );
    services.close().await;
    if broken > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn keys_rotate(config: Config, tenant: Option<String>) -> anyhow::Result<()> {
    let services = lacuna::open_services(&config).await?;
    let tenants = match tenant {
        Some(t) => vec![t.parse().map_err(|_| anyhow::anyhow!("--tenant must be a tenant id"))?],
        None => services.store.tenant_ids().await?,
    };
    let bar = indicatif::ProgressBar::new(tenants.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("rotating tenant keys {bar:40} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut fields = 0;
    for t in &tenants {
        let r = services.accounts.rotate_tenant_key(*t, "operator").await?;
        fields += r.reencrypted;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("rotated {} tenant key(s); re-encrypted {fields} field(s); old key versions destroyed", tenants.len());
    services.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
