//! Messages to clients through an outbox.
//!
//! * Enqueueing is idempotent by dedupe key (`confirmation:<appointment>`,
//!   `reminder:<appointment>`). The payload (recipient, subject, text) is sealed with the
//!   tenant's data key (`outbox.payload_ct`, bound to the message id).
//! * Delivery ([`Practice::deliver_due`]) claims due `pending` messages per tenant, moving them
//!   to `sending` in a committed transaction *before* sending, so a message is never sent twice,
//!   even with two workers. Every attempt is recorded in `message_attempts`. A failure is
//!   retried after 1 min, 5 min, 30 min, 2 h; the fifth failure (or a permanent SMTP refusal)
//!   makes the message `failed`.
//! * Marketing messages (`marketing`, `nudge`) to a client without marketing consent (checked at
//!   delivery time) are `skipped`, with the attempt recorded, and never sent.
//! * A claim is a lease of [`CLAIM_LEASE_SECS`]. A worker renews it right before each send (and
//!   skips a message whose lease it lost), and every send is bounded by its channel's timeout,
//!   far below the lease, so a live worker never has a message taken from it. A message left in
//!   `sending` by a worker that stopped is put back to `pending` once the lease has run out, with
//!   an `abandoned` attempt recorded (it may have gone out before the crash: staff see that in
//!   `GET /api/v1/messages`); it counts towards the attempts.

use crate::{Practice, PracticeError, Result, TenantKeys};
use lacuna_accounts::Principal;
use lacuna_domain::{AppointmentId, ClientId, MessageId, Permission, TenantId};
use lacuna_storage::practice::clients::ClientRow;
use lacuna_storage::practice::outbox::{AppointmentBrief, AttemptRow, FinishedAttempt, OutboxRow};
use lacuna_storage::{TenantTx, now_unix};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const TABLE: &str = "outbox";
const COLUMN: &str = "payload_ct";
/// Delay before retry n (after the n-th failed attempt).
pub const BACKOFF_SECS: [i64; 4] = [60, 300, 1800, 7200];
pub const MAX_ATTEMPTS: i64 = 5;

/// The wait before trying again after failed attempt number `attempt` (1-based), or `None` when
/// that was the last attempt allowed. Message delivery and trigger webhooks both retry by it.
pub fn retry_delay(attempt: i64) -> Option<i64> {
    if !(1..MAX_ATTEMPTS).contains(&attempt) {
        return None;
    }
    let step = usize::try_from(attempt - 1).ok()?;
    BACKOFF_SECS.get(step).or(BACKOFF_SECS.last()).copied()
}
const CLAIM_BATCH: i64 = 50;
/// How long a claim on a message lasts without renewal (seconds).
pub const CLAIM_LEASE_SECS: i64 = 10 * 60;

/// Kinds that need the client's marketing consent.
pub const MARKETING_KINDS: &[&str] = &["marketing", "nudge"];

/// The sealed content of a message.
#[derive(Clone, Serialize, Deserialize)]
pub struct Payload {
    pub to: Option<String>,
    pub to_name: String,
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload").finish_non_exhaustive()
    }
}

/// A message ready for a channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: MessageId,
    pub tenant: TenantId,
    pub kind: String,
    pub payload: Payload,
}

/// Why a send failed; the text never carries the recipient or the server's reply.
#[derive(Debug, Clone)]
pub struct SendFailure {
    pub permanent: bool,
    pub detail: &'static str,
}

/// Where messages go.
pub enum Channel {
    /// One JSON line per message appended to a file (the local default).
    File { path: PathBuf, lock: tokio::sync::Mutex<()> },
    /// Email over SMTP (lettre, rustls).
    Smtp { transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, from: lettre::message::Mailbox },
}

impl Channel {
    /// The file channel at `<data_dir>/outbox/messages.jsonl`.
    pub fn file_in(data_dir: &std::path::Path) -> Self {
        Channel::File { path: data_dir.join("outbox").join("messages.jsonl"), lock: tokio::sync::Mutex::new(()) }
    }

    /// SMTP from a URL such as `smtp://host:25`, `smtp://host:587?tls=required` or
    /// `smtps://user:pass@host:465`, sending as `from`.
    pub fn smtp(url: &str, from: &str) -> std::result::Result<Self, String> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|_| "LACUNA_SMTP_URL is not a valid smtp:// or smtps:// URL".to_string())?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|_| "the SMTP from address is not a valid mailbox".to_string())?;
        Ok(Channel::Smtp { transport, from })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Channel::File { .. } => "file",
            Channel::Smtp { .. } => "email",
        }
    }

    pub async fn send(&self, m: &Outgoing) -> std::result::Result<(), SendFailure> {
        match self {
            Channel::File { path, lock } => {
                let line = serde_json::json!({
                    "id": m.id.to_string(), "tenant": m.tenant.to_string(), "kind": m.kind,
                    "to": m.payload.to, "to_name": m.payload.to_name, "subject": m.payload.subject,
                    "body": m.payload.body, "at": now_unix(),
                });
                let mut text = line.to_string();
                text.push('\n');
                let _guard = lock.lock().await;
                let fail = |detail| SendFailure { permanent: false, detail };
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(|_| fail("cannot create the outbox directory"))?;
                }
                let mut opts = tokio::fs::OpenOptions::new();
                opts.create(true).append(true);
                #[cfg(unix)]
                opts.mode(0o600);
                let mut f = opts.open(path).await.map_err(|_| fail("cannot open the outbox file"))?;
                f.write_all(text.as_bytes()).await.map_err(|_| fail("cannot write the outbox file"))?;
                f.flush().await.map_err(|_| fail("cannot write the outbox file"))?;
                Ok(())
            }
            Channel::Smtp { transport, from } => {
                use lettre::AsyncTransport;
                let Some(to) = m.payload.to.as_deref() else {
                    return Err(SendFailure { permanent: true, detail: "the client has no email address" });
                };
                let to: lettre::message::Mailbox = match to.parse() {
                    Ok(a) => a,
                    Err(_) => return Err(SendFailure { permanent: true, detail: "the email address is not valid" }),
                };
                let email = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(m.payload.subject.clone())
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(m.payload.body.clone())
                    .map_err(|_| SendFailure { permanent: true, detail: "the message could not be built" })?;
                match transport.send(email).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => {
                        Err(SendFailure { permanent: true, detail: "the SMTP server refused the message" })
                    }
                    Err(e) if e.is_transient() => {
                        Err(SendFailure { permanent: false, detail: "the SMTP server deferred the message" })
                    }
                    Err(e) if e.is_timeout() => Err(SendFailure { permanent: false, detail: "SMTP timed out" }),
                    Err(_) => Err(SendFailure { permanent: false, detail: "could not reach the SMTP server" }),
                }
            }
        }
    }
}

/// A message as staff see it in the outbox.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub row: OutboxRow,
    pub attempts: Vec<AttemptRow>,
    /// Decrypted for staff allowed to read messages.
    pub payload: Option<Payload>,
}

/// What one delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Claims of stopped workers taken back (their lease had run out).
    pub reclaimed: u64,
}

fn when(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

/// Seals a payload for message `id`.
pub(crate) fn seal(keys: &TenantKeys, id: MessageId, p: &Payload) -> Result<Vec<u8>> {
    let json = zeroize::Zeroizing::new(serde_json::to_string(p).map_err(|e| PracticeError::Crypto(e.to_string()))?);
    Ok(keys.seal(TABLE, COLUMN, &id.to_string(), &json))
}

fn open(keys: &TenantKeys, row: &OutboxRow) -> Result<Payload> {
    let json = zeroize::Zeroizing::new(keys.open(TABLE, COLUMN, &row.id.to_string(), &row.payload_ct)?);
    serde_json::from_str(&json).map_err(|_| PracticeError::Crypto("a sealed message is not a payload".into()))
}

impl Practice {
    /// Enqueues the booking confirmation of an appointment (idempotent). `false`: already queued.
    pub async fn enqueue_confirmation(&self, tenant: TenantId, appointment: AppointmentId) -> Result<bool> {
        self.enqueue_appointment_message(tenant, appointment, "confirmation").await
    }

    /// Enqueues the reminder of an appointment (idempotent). `false`: already queued.
    pub async fn enqueue_reminder(&self, tenant: TenantId, appointment: AppointmentId) -> Result<bool> {
        self.enqueue_appointment_message(tenant, appointment, "reminder").await
    }

    async fn enqueue_appointment_message(&self, tenant: TenantId, appt: AppointmentId, kind: &str) -> Result<bool> {
        let keys = self.keys(tenant).await?;
        let mut tx = self.store().tenant(tenant).write().await?;
        let queued = self.enqueue_appointment_message_in(&mut tx, &keys, appt, kind, now_unix()).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Enqueues `confirmation` or `reminder` for an appointment inside an open transaction (so
    /// that booking and its confirmation commit together).
    pub async fn enqueue_appointment_message_in(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        appt: AppointmentId,
        kind: &str,
        now: i64,
    ) -> Result<bool> {
        let brief = tx.appointment_brief(appt).await?.ok_or(PracticeError::NotFound)?;
        let client = tx.client(brief.client_id).await?.ok_or(PracticeError::NotFound)?;
        self.enqueue_appointment_message_for(tx, keys, &brief, &client, kind, now).await
    }

    /// Like [`Self::enqueue_appointment_message_in`], for a caller that already holds the
    /// appointment's facts and its client's row.
    pub(crate) async fn enqueue_appointment_message_for(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        brief: &AppointmentBrief,
        client: &ClientRow,
        kind: &str,
        now: i64,
    ) -> Result<bool> {
        let row = self.appointment_message(keys, brief, client, kind, now)?;
        Ok(tx.enqueue_message(&row).await?)
    }

    /// The sealed outbox row of an appointment message (`confirmation` or `reminder`), not yet
    /// queued; idempotent by its dedupe key `kind:appointment`.
    pub(crate) fn appointment_message(
        &self,
        keys: &TenantKeys,
        brief: &AppointmentBrief,
        client: &ClientRow,
        kind: &str,
        now: i64,
    ) -> Result<OutboxRow> {
        let appt = brief.id;
        let client = crate::clients::open_row(keys, client)?;
        let at = when(brief.starts_at);
        let (subject, body) = match kind {
            "confirmation" => (
                format!("Your {} appointment is booked", brief.service_name),
                format!(
                    "Hello {},\n\nyour {} appointment at {} is booked for {at}.\n",
                    client.name, brief.service_name, brief.location_name
                ),
            ),
            "reminder" => (
                format!("Reminder: {} on {at}", brief.service_name),
                format!(
                    "Hello {},\n\nthis is a reminder of your {} appointment at {} on {at}.\n",
                    client.name, brief.service_name, brief.location_name
                ),
            ),
            _ => return Err(PracticeError::invalid("kind", "must be confirmation or reminder")),
        };
        let payload = Payload { to: client.email.clone(), to_name: client.name.clone(), subject, body };
        let id = MessageId::new();
        Ok(OutboxRow {
            id,
            client_id: brief.client_id,
            appointment_id: Some(appt),
            kind: kind.to_string(),
            channel: "email".into(),
            dedupe_key: format!("{kind}:{appt}"),
            payload_ct: seal(keys, id, &payload)?,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            sent_at: None,
            created_at: now,
        })
    }

    /// Enqueues a marketing message or rebooking nudge (`kind` is `marketing` or `nudge`) to a
    /// client; delivery skips it unless the client consents. Idempotent by `dedupe_key`.
    pub async fn enqueue_marketing(
        &self,
        tenant: TenantId,
        client: ClientId,
        kind: &str,
        dedupe_key: &str,
        subject: &str,
        body: &str,
    ) -> Result<bool> {
        if !MARKETING_KINDS.contains(&kind) {
            return Err(PracticeError::invalid("kind", "must be marketing or nudge"));
        }
        let keys = self.keys(tenant).await?;
        let now = now_unix();
        let mut tx = self.store().tenant(tenant).write().await?;
        let row = tx.client(client).await?.ok_or(PracticeError::NotFound)?;
        let c = crate::clients::open_row(&keys, &row)?;
        let payload =
            Payload { to: c.email.clone(), to_name: c.name.clone(), subject: subject.into(), body: body.into() };
        let id = MessageId::new();
        let row = OutboxRow {
            id,
            client_id: client,
            appointment_id: None,
            kind: kind.to_string(),
            channel: "email".into(),
            dedupe_key: dedupe_key.to_string(),
            payload_ct: seal(&keys, id, &payload)?,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            sent_at: None,
            created_at: now,
        };
        let queued = tx.enqueue_message(&row).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// Enqueues reminders for booked appointments starting within each tenant's
    /// `reminder_lead_hours` of `now`. Returns how many were queued. A tenant that fails is
    /// logged and skipped; the others still get their reminders.
    pub async fn enqueue_due_reminders(&self, now: i64) -> Result<u64> {
        let mut queued = 0;
        for tenant in self.store().tenant_ids().await? {
            match self.enqueue_tenant_reminders(tenant, now).await {
                Ok(n) => queued += n,
                Err(e) => tracing::error!(%tenant, error = %e, "queueing reminders failed for a tenant"),
            }
        }
        Ok(queued)
    }

    async fn enqueue_tenant_reminders(&self, tenant: TenantId, now: i64) -> Result<u64> {
        let mut tx = self.store().tenant(tenant).read().await?;
        let lead = tx.reminder_lead_hours().await?;
        let due = tx.appointments_needing_reminder(now, now + lead * 3600).await?;
        drop(tx);
        if due.is_empty() {
            return Ok(0);
        }
        let keys = self.keys(tenant).await?;
        let mut tx = self.store().tenant(tenant).write().await?;
        let mut queued = 0;
        for appt in due {
            if self.enqueue_appointment_message_in(&mut tx, &keys, appt, "reminder", now).await? {
                queued += 1;
            }
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// One delivery round over every tenant: claim due messages, send, record. A tenant that
    /// fails is logged and skipped; the others are still served.
    pub async fn deliver_due(&self, channel: &Channel, now: i64) -> Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        for tenant in self.store().tenant_ids().await? {
            if let Err(e) = self.deliver_tenant(channel, tenant, now, &mut report).await {
                tracing::error!(%tenant, error = %e, "message delivery failed for a tenant");
            }
        }
        Ok(report)
    }

    async fn deliver_tenant(
        &self,
        channel: &Channel,
        tenant: TenantId,
        now: i64,
        report: &mut DeliveryReport,
    ) -> Result<()> {
        // Keys first: a message is claimed only when it can be opened right away.
        let keys = self.keys(tenant).await?;
        // Leases are wall-clock time, whatever `now` the round was asked to run at.
        let mut tx = self.store().tenant(tenant).write().await?;
        let reclaimed = tx.reclaim_abandoned_messages(now_unix() - CLAIM_LEASE_SECS, now, MAX_ATTEMPTS).await?;
        tx.commit().await?;
        if reclaimed > 0 {
            tracing::warn!(%tenant, reclaimed, "messages of a stopped worker put back to pending");
        }
        report.reclaimed += reclaimed;
        loop {
            let claimed_at = now_unix();
            let mut tx = self.store().tenant(tenant).write().await?;
            let claimed = tx.claim_due_messages(now, claimed_at, CLAIM_BATCH).await?;
            tx.commit().await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let n = claimed.len();
            for m in claimed {
                self.deliver_one(channel, tenant, &keys, m, claimed_at, now, report).await?;
            }
            if (n as i64) < CLAIM_BATCH {
                return Ok(());
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn deliver_one(
        &self,
        channel: &Channel,
        tenant: TenantId,
        keys: &TenantKeys,
        m: OutboxRow,
        claimed_at: i64,
        now: i64,
        report: &mut DeliveryReport,
    ) -> Result<()> {
        // Renew the lease once it is half gone (a long batch over a slow channel); before that
        // it is certainly still ours, as a claim is only taken back after the whole lease.
        let renewed_at = now_unix();
        if renewed_at - claimed_at >= CLAIM_LEASE_SECS / 2 {
            let mut tx = self.store().tenant(tenant).write().await?;
            let ours = tx.renew_message_claim(m.id, claimed_at, renewed_at).await?;
            tx.commit().await?;
            if !ours {
                tracing::warn!(message = %m.id, "lease lost before sending; left to the worker holding it");
                return Ok(());
            }
        }
        let attempt = m.attempts + 1;
        let (outcome, detail, status, next): (&str, Option<&str>, &str, i64) = 'decide: {
            if MARKETING_KINDS.contains(&m.kind.as_str()) {
                let mut tx = self.store().tenant(tenant).read().await?;
                let consent = tx.client(m.client_id).await?.is_some_and(|c| c.marketing_consent);
                drop(tx);
                if !consent {
                    report.skipped += 1;
                    break 'decide ("skipped", Some("no marketing consent"), "skipped", m.next_attempt_at);
                }
            }
            let payload = match open(keys, &m) {
                Ok(p) => p,
                Err(_) => {
                    report.failed += 1;
                    break 'decide ("failed", Some("the payload cannot be decrypted"), "failed", m.next_attempt_at);
                }
            };
            let out = Outgoing { id: m.id, tenant, kind: m.kind.clone(), payload };
            match channel.send(&out).await {
                Ok(()) => {
                    report.sent += 1;
                    ("sent", None, "sent", m.next_attempt_at)
                }
                Err(f) => match retry_delay(attempt).filter(|_| !f.permanent) {
                    None => {
                        report.failed += 1;
                        ("failed", Some(f.detail), "failed", m.next_attempt_at)
                    }
                    Some(delay) => {
                        report.retried += 1;
                        ("failed", Some(f.detail), "pending", now + delay)
                    }
                },
            }
        };
        if outcome != "sent" {
            tracing::warn!(message = %m.id, attempt, outcome, detail = detail.unwrap_or(""), "message not delivered");
        }
        let mut tx = self.store().tenant(tenant).write().await?;
        let f = FinishedAttempt { attempt, at: now, outcome, detail, status, next_attempt_at: next };
        tx.finish_attempt(m.id, &f).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The outbox, newest first, with every attempt; payloads decrypted for staff allowed to
    /// read messages.
    pub async fn messages(&self, p: &Principal, status: Option<&str>, limit: i64) -> Result<Vec<MessageView>> {
        if let Some(s) = status
            && !["pending", "sending", "sent", "failed", "skipped"].contains(&s)
        {
            return Err(PracticeError::invalid("status", "must be pending, sending, sent, failed or skipped"));
        }
        let keys = self.keys(p.tenant).await?;
        let mut tx = self.read(p, Permission::MessagesRead).await?;
        let rows = tx.messages(status, limit.clamp(1, 500)).await?;
        let ids: Vec<MessageId> = rows.iter().map(|r| r.id).collect();
        let mut attempts = tx.message_attempts(&ids).await?;
        drop(tx);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (mine, rest): (Vec<_>, Vec<_>) = attempts.into_iter().partition(|a| a.message_id == row.id);
            attempts = rest;
            let payload = open(&keys, &row).ok();
            out.push(MessageView { row, attempts: mine, payload });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_stop() {
        let waits: Vec<Option<i64>> = (0..=6).map(retry_delay).collect();
        assert_eq!(waits, [None, Some(60), Some(300), Some(1800), Some(7200), None, None]);
    }
}
