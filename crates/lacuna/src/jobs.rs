//! Background jobs that run inside `lacuna serve`: purge the request log past its retention,
//! verify every audit chain. Each runs once at start, then on its interval; each records what it
//! found so the trust page reports measured facts.

use lacuna_http::trust::{AuditCheck, PurgeRun, TrustState};
use lacuna_storage::now_unix;
use lacuna_storage::request_log::REQUEST_LOG_RETENTION_DAYS;
use std::time::Duration;

pub const PURGE_EVERY: Duration = Duration::from_secs(6 * 3600);
pub const VERIFY_EVERY: Duration = Duration::from_secs(3600);
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);
pub const INSIGHT_FEED_EVERY: Duration = Duration::from_secs(5);
/// How often current gaps are turned into proposed actions.
pub const INSIGHT_PROPOSE_EVERY: Duration = Duration::from_secs(60);
pub const PLAN_EVENTS_EVERY: Duration = Duration::from_secs(3600);
pub const BACKUP_EVERY: Duration = Duration::from_secs(24 * 3600);
pub const DELIVER_EVERY: Duration = Duration::from_secs(30);
pub const REMINDERS_EVERY: Duration = Duration::from_secs(300);

/// The message channel the configuration selects: SMTP when `smtp_url` is set, else the file
/// channel in the data dir.
pub fn message_channel(config: &crate::Config) -> anyhow::Result<lacuna_practice::messages::Channel> {
    use lacuna_practice::messages::Channel;
    match config.smtp_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            let from = config.smtp_from.as_deref().unwrap_or("Lacuna <no-reply@localhost>");
            Channel::smtp(url, from).map_err(anyhow::Error::msg)
        }
        None => Ok(Channel::file_in(&config.data_dir)),
    }
}

/// One round of the message jobs: queue due reminders, then deliver what is due.
pub async fn deliver_messages(
    practice: &lacuna_practice::Practice,
    channel: &lacuna_practice::messages::Channel,
    now: i64,
) -> anyhow::Result<lacuna_practice::messages::DeliveryReport> {
    let report = practice.deliver_due(channel, now).await?;
    if report != Default::default() {
        tracing::info!(
            sent = report.sent,
            retried = report.retried,
            failed = report.failed,
            skipped = report.skipped,
            channel = channel.name(),
            "messages delivered"
        );
    }
    Ok(report)
}

/// Spawns the reminder and delivery workers.
pub fn spawn_messages(services: &crate::Services, config: &crate::Config) -> anyhow::Result<()> {
    let channel = std::sync::Arc::new(message_channel(config)?);
    tracing::info!(channel = channel.name(), "message delivery configured");
    let practice = lacuna_practice::Practice::new(services.accounts.clone());
    let p = practice.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REMINDERS_EVERY);
        loop {
            tick.tick().await;
            match p.enqueue_due_reminders(now_unix()).await {
                Ok(n) if n > 0 => tracing::info!(queued = n, "reminders queued"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "reminder job failed"),
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DELIVER_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = deliver_messages(&practice, &channel, now_unix()).await {
                tracing::error!(error = %e, "message delivery failed to run");
            }
        }
    });
    Ok(())
}

/// The daily backup: take one, rehearse its restore, drop those past 30 days.
pub async fn daily_backup(
    services: &crate::Services,
    config: &crate::Config,
    trust: &TrustState,
) -> anyhow::Result<()> {
    let outcome = async {
        let (path, _) = crate::backup::backup(services, config).await?;
        crate::backup::verify(services, config, &path).await?;
        let pruned = crate::backup::prune(config, now_unix())?;
        tracing::info!(backup = %path.display(), pruned, "daily backup taken and rehearsed");
        anyhow::Ok(())
    }
    .await;
    trust.set_backups(crate::backup::backup_facts(config));
    outcome
}

/// Deletes request-log rows older than the retention; returns how many.
pub async fn purge_request_log(services: &crate::Services, trust: &TrustState, now: i64) -> anyhow::Result<u64> {
    let cutoff = now - REQUEST_LOG_RETENTION_DAYS * 86_400;
    let removed = services.store.purge_request_log(cutoff).await?;
    trust.set_purge(PurgeRun { at: now, removed });
    tracing::info!(removed, "request log purged past {REQUEST_LOG_RETENTION_DAYS} days");
    Ok(removed)
}

/// Hands Practice's queued pseudonymous events to Insight's store, through the PHI guard. An event
/// the guard refuses is counted by the kind of identifier it looked like (never its value) and not
/// kept. Delivery is at-least-once; Insight keeps each event id once. Returns events accepted.
pub async fn deliver_insight_events(services: &crate::Services) -> anyhow::Result<u64> {
    use lacuna_storage::insight::StoredEvent;
    let mut accepted_total = 0;
    for tenant in services.store.tenant_ids().await? {
        loop {
            let mut tx = services.store.tenant(tenant).write().await?;
            let pending = tx.pending_insight_events(500).await?;
            if pending.is_empty() {
                break;
            }
            let mut accepted = Vec::with_capacity(pending.len());
            for (_, body) in &pending {
                match services.phi_guard.check_json(body) {
                    Ok(e) => accepted.push(StoredEvent {
                        event_id: e.event_id.as_str().to_string(),
                        kind: e.kind.as_str().to_string(),
                        occurred_at: e.occurred_at.unix_seconds(),
                        body: body.clone(),
                    }),
                    Err(rejection) => services.insight.count_rejection(tenant, rejection.kind().as_str()).await?,
                }
            }
            accepted_total += services.insight.append(tenant, &accepted, now_unix()).await?;
            let ids: Vec<String> = pending.into_iter().map(|(id, _)| id).collect();
            tx.mark_insight_delivered(&ids, now_unix()).await?;
            tx.commit().await?;
        }
    }
    Ok(accepted_total)
}

/// Hands Insight's pending triggers (approved actions) to the Practice side, which alone maps a
/// pseudonym to a client and queues the message (consent and quiet hours respected), and records
/// the outcome back in Insight. Idempotent by trigger id on both sides. Returns triggers handled.
pub async fn deliver_insight_triggers(services: &crate::Services) -> anyhow::Result<u64> {
    let practice = lacuna_practice::Practice::new(services.accounts.clone());
    let mut handled = 0;
    for tenant in services.store.tenant_ids().await? {
        for t in services.insight_service.pending_triggers(tenant, 100).await? {
            let slot =
                t.slot_starts_at.as_deref().and_then(|s| s.parse::<jiff::Timestamp>().ok()).map(|s| s.as_second());
            let input = lacuna_practice::triggers::TriggerIn {
                id: &t.id,
                action_kind: t.kind.as_str(),
                client_pseudonym: &t.client,
                service_category: t.service_category.as_deref(),
                slot_starts_at: slot,
            };
            match practice.carry_out_trigger(tenant, &input).await {
                Ok(outcome) => {
                    services.insight_service.finish_trigger(tenant, &t.id, "delivered", outcome).await?;
                    handled += 1;
                }
                // Left pending: the next run tries again.
                Err(e) => {
                    tracing::error!(%tenant, trigger = %t.id, error = %e, "carrying out an Insight trigger failed")
                }
            }
        }
    }
    Ok(handled)
}

/// Delivers due trigger webhooks to practices' external systems (signed, retried with backoff).
pub async fn deliver_trigger_webhooks(
    services: &crate::Services,
) -> anyhow::Result<lacuna_practice::triggers::WebhookReport> {
    let practice = lacuna_practice::Practice::new(services.accounts.clone());
    let http = webhook_client()?;
    Ok(practice.deliver_trigger_webhooks(&http, now_unix()).await?)
}

fn webhook_client() -> anyhow::Result<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

/// Turns every tenant's current gaps into proposed actions under its approval policy.
pub async fn propose_insight_actions(services: &crate::Services) -> anyhow::Result<u64> {
    let mut n = 0;
    for tenant in services.store.tenant_ids().await? {
        match services.insight_service.propose(tenant).await {
            Ok(r) => n += r.proposed + r.auto_approved,
            Err(e) => tracing::error!(%tenant, error = %e, "proposing Insight actions failed"),
        }
    }
    Ok(n)
}

/// Queues the membership renewals and plan expiries the calendar has produced since the last run
/// (idempotent: each is queued once, whenever and however often this runs). Returns events queued.
pub async fn queue_plan_events(services: &crate::Services, now: i64) -> anyhow::Result<u64> {
    Ok(lacuna_practice::Practice::new(services.accounts.clone()).queue_due_plan_events(now).await?)
}

/// Forgets idempotency keys older than their lifetime (24 hours), tenant by tenant.
pub async fn purge_idempotency_keys(services: &crate::Services, now: i64) -> anyhow::Result<u64> {
    let before = now - lacuna_http::IDEMPOTENCY_KEY_LIFETIME_SECS;
    let mut removed = 0;
    for tenant in services.store.tenant_ids().await? {
        let mut tx = services.store.tenant(tenant).write().await?;
        removed += tx.purge_idempotency_keys(before).await?;
        tx.commit().await?;
    }
    Ok(removed)
}

/// Verifies every tenant's audit chain and records the outcome.
pub async fn verify_audit_chains(services: &crate::Services, trust: &TrustState) -> anyhow::Result<AuditCheck> {
    let reports = services.accounts.verify_all_audit_chains(|_, _| {}).await?;
    let broken: Vec<String> = reports.iter().filter(|r| r.broken.is_some()).map(|r| r.tenant.to_string()).collect();
    for r in reports.iter().filter(|r| r.broken.is_some()) {
        tracing::error!(tenant = %r.tenant, broken = ?r.broken, "audit chain broken");
    }
    let check = AuditCheck {
        at: now_unix(),
        tenants: reports.len() as u64,
        events: reports.iter().map(|r| r.events).sum(),
        broken_tenants: broken,
    };
    trust.set_audit(check.clone());
    Ok(check)
}

/// Re-applies shred tombstones (data an old backup brought back), then deletes tenants whose
/// cancellation has passed the retention period.
pub async fn retention(services: &crate::Services, now: i64) -> anyhow::Result<()> {
    let replayed = services.accounts.replay_tombstones().await?;
    if !replayed.is_empty() {
        tracing::warn!(tenants = replayed.len(), "removed data of deleted tenants that a restore brought back");
    }
    let deleted = services.accounts.delete_expired_tenants(now).await?;
    if !deleted.is_empty() {
        tracing::warn!(tenants = deleted.len(), "deleted tenants past their retention period");
    }
    Ok(())
}

/// Spawns the jobs on their intervals (each also runs once right away, the backup after a day).
pub fn spawn(services: crate::Services, config: crate::Config, trust: TrustState) {
    trust.set_backups(crate::backup::backup_facts(&config));
    let (b, t) = (services.clone(), trust.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + BACKUP_EVERY, BACKUP_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = daily_backup(&b, &config, &t).await {
                tracing::error!(error = %format!("{e:#}"), "daily backup failed");
            }
        }
    });
    let r = services.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = retention(&r, now_unix()).await {
                tracing::error!(error = %e, "retention job failed");
            }
        }
    });
    let plans = services.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PLAN_EVENTS_EVERY);
        loop {
            tick.tick().await;
            match queue_plan_events(&plans, now_unix()).await {
                Ok(n) if n > 0 => tracing::info!(queued = n, "plan renewals and expiries queued for insight"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "plan event job failed"),
            }
        }
    });
    let feed = services.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INSIGHT_FEED_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = deliver_insight_events(&feed).await {
                tracing::error!(error = %e, "insight feed delivery failed");
            }
            if let Err(e) = deliver_insight_triggers(&feed).await {
                tracing::error!(error = %e, "insight trigger delivery failed");
            }
            if let Err(e) = deliver_trigger_webhooks(&feed).await {
                tracing::error!(error = %e, "trigger webhook delivery failed");
            }
        }
    });
    let propose = services.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INSIGHT_PROPOSE_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = propose_insight_actions(&propose).await {
                tracing::error!(error = %e, "insight proposals failed");
            }
        }
    });
    let (s, t) = (services.clone(), trust.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = purge_request_log(&s, &t, now_unix()).await {
                tracing::error!(error = %e, "request log purge failed");
            }
            if let Err(e) = purge_idempotency_keys(&s, now_unix()).await {
                tracing::error!(error = %e, "idempotency key purge failed");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(VERIFY_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = verify_audit_chains(&services, &trust).await {
                tracing::error!(error = %e, "audit chain verification failed to run");
            }
        }
    });
}
