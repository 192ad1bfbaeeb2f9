//! The message outbox and its delivery attempts. The payload (recipient and text) is a
//! ciphertext under the tenant's data key; this layer never sees it in plain text.
//!
//! Delivery claims a message by moving it from `pending` to `sending` in its own committed
//! transaction before anything is sent, so two workers never send the same message. The claim
//! is a lease (`claimed_at`): a worker that stops after claiming leaves the message in `sending`,
//! and once the lease has run out [`TenantTx::reclaim_abandoned_messages`] puts it back to
//! `pending` with an `abandoned` attempt. A live worker renews its lease before each send
//! ([`TenantTx::renew_message_claim`]), so a message it still holds is never taken from it.

use super::parse_id;
use crate::tx::on_conn;
use crate::{Result, StorageError, TenantTx};
use lacuna_domain::{AppointmentId, ClientId, MessageId};

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: MessageId,
    pub client_id: ClientId,
    pub appointment_id: Option<AppointmentId>,
    pub kind: String,
    pub channel: String,
    pub dedupe_key: String,
    pub payload_ct: Vec<u8>,
    /// `pending`, `sending`, `sent`, `failed` or `skipped`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub message_id: MessageId,
    pub attempt: i64,
    pub attempted_at: i64,
    /// `sent`, `failed` or `skipped`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// The outcome of one delivery attempt and the state it leaves the message in.
#[derive(Debug, Clone)]
pub struct FinishedAttempt<'a> {
    /// 1-based.
    pub attempt: i64,
    pub at: i64,
    /// `sent`, `failed` or `skipped`.
    pub outcome: &'a str,
    /// Never personal data or a server's reply.
    pub detail: Option<&'a str>,
    /// The message's new status (`pending` again for a retry).
    pub status: &'a str,
    pub next_attempt_at: i64,
}

/// What a message about an appointment needs to say.
#[derive(Debug, Clone)]
pub struct AppointmentBrief {
    pub id: AppointmentId,
    pub client_id: ClientId,
    pub status: String,
    pub starts_at: i64,
    pub service_name: String,
    pub location_name: String,
}

type OutboxTuple =
    (String, String, Option<String>, String, String, String, Vec<u8>, String, i64, i64, Option<i64>, i64);

const COLUMNS: &str = "id, client_id, appointment_id, kind, channel, dedupe_key, payload_ct, status, attempts, \
     next_attempt_at, sent_at, created_at";

impl OutboxRow {
    fn from_tuple(t: OutboxTuple) -> Result<Self> {
        let (id, client, appt, kind, channel, dedupe_key, payload_ct, status, attempts, next, sent_at, created_at) = t;
        Ok(Self {
            id: parse_id(&id, "outbox.id")?,
            client_id: parse_id(&client, "outbox.client_id")?,
            appointment_id: appt.map(|a| parse_id(&a, "outbox.appointment_id")).transpose()?,
            kind,
            channel,
            dedupe_key,
            payload_ct,
            status,
            attempts,
            next_attempt_at: next,
            sent_at,
            created_at,
        })
    }
}

impl TenantTx {
    /// Enqueues a message; `false` (and nothing written) when its dedupe key is already queued.
    pub async fn enqueue_message(&mut self, m: &OutboxRow) -> Result<bool> {
        const SQL: &str = "INSERT INTO outbox (tenant_id, id, client_id, appointment_id, kind, channel, dedupe_key,
                payload_ct, status, attempts, next_attempt_at, sent_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL)
            .bind(&t).bind(m.id.to_string()).bind(m.client_id.to_string()).bind(m.appointment_id.map(|a| a.to_string()))
            .bind(&m.kind).bind(&m.channel).bind(&m.dedupe_key).bind(&m.payload_ct).bind(&m.status)
            .bind(m.attempts).bind(m.next_attempt_at).bind(m.sent_at).bind(m.created_at)
            .execute(c).await.map(|r| r.rows_affected()).map_err(StorageError::from))?;
        Ok(n == 1)
    }

    pub async fn message(&mut self, id: MessageId) -> Result<Option<OutboxRow>> {
        const SQL: &str =
            const_str_concat!(const_str_concat!("SELECT ", COLUMNS), " FROM outbox WHERE tenant_id = $1 AND id = $2");
        let t = self.tenant_str.clone();
        let row: Option<OutboxTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(OutboxRow::from_tuple).transpose()
    }

    /// Newest messages first.
    pub async fn messages(&mut self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM outbox WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) ORDER BY created_at DESC, id LIMIT $3"
        );
        const SQL_PG: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM outbox WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id LIMIT $3"
        );
        let sql = if self.is_postgres() { SQL_PG } else { SQL };
        let t = self.tenant_str.clone();
        let rows: Vec<OutboxTuple> =
            on_conn!(self, c => sqlx::query_as(sql).bind(&t).bind(status).bind(limit).fetch_all(c).await)?;
        rows.into_iter().map(OutboxRow::from_tuple).collect()
    }

    /// Every attempt of the given messages, in order.
    pub async fn message_attempts(&mut self, ids: &[MessageId]) -> Result<Vec<AttemptRow>> {
        const SQL: &str = "SELECT message_id, attempt, attempted_at, outcome, detail FROM message_attempts
             WHERE tenant_id = $1 AND message_id = $2 ORDER BY attempt";
        let t = self.tenant_str.clone();
        let mut out = Vec::new();
        for id in ids {
            let rows: Vec<(String, i64, i64, String, Option<String>)> =
                on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_all(c).await)?;
            for (mid, attempt, at, outcome, detail) in rows {
                out.push(AttemptRow {
                    message_id: parse_id(&mid, "message_attempts.message_id")?,
                    attempt,
                    attempted_at: at,
                    outcome,
                    detail,
                });
            }
        }
        Ok(out)
    }

    /// Claims up to `limit` due pending messages: each moves to `sending` only if it still was
    /// `pending`, so of two racing workers exactly one gets it. `claimed_at` (wall-clock time)
    /// starts the lease. Commit before sending.
    pub async fn claim_due_messages(&mut self, now: i64, claimed_at: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        const PICK: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM outbox WHERE tenant_id = $1 AND status = 'pending' AND next_attempt_at <= $2
               ORDER BY next_attempt_at, id LIMIT $3"
        );
        const PICK_PG: &str = const_str_concat!(PICK, " FOR UPDATE SKIP LOCKED");
        const CLAIM: &str = "UPDATE outbox SET status = 'sending', claimed_at = $3
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'";
        let sql = if self.is_postgres() { PICK_PG } else { PICK };
        let t = self.tenant_str.clone();
        let rows: Vec<OutboxTuple> =
            on_conn!(self, c => sqlx::query_as(sql).bind(&t).bind(now).bind(limit).fetch_all(c).await)?;
        let mut claimed = Vec::new();
        for row in rows {
            let mut m = OutboxRow::from_tuple(row)?;
            let n = on_conn!(self, c => sqlx::query(CLAIM).bind(&t).bind(m.id.to_string()).bind(claimed_at)
                .execute(c).await.map(|r| r.rows_affected()))?;
            if n == 1 {
                m.status = "sending".into();
                claimed.push(m);
            }
        }
        Ok(claimed)
    }

    /// Extends the lease of a message this worker claimed at `claimed_at` to `renewed_at`.
    /// `false` if the claim is no longer this worker's (its lease ran out and it was reclaimed):
    /// the message must then not be sent.
    pub async fn renew_message_claim(&mut self, id: MessageId, claimed_at: i64, renewed_at: i64) -> Result<bool> {
        const SQL: &str = "UPDATE outbox SET claimed_at = $4
             WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND claimed_at = $3";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id.to_string()).bind(claimed_at).bind(renewed_at)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Messages left in `sending` whose lease started before `cutoff` (their worker stopped
    /// after claiming them) go back to `pending`, due at `now`, with an `abandoned` attempt on
    /// record — or to `failed` when that was their last attempt. Returns how many.
    pub async fn reclaim_abandoned_messages(&mut self, cutoff: i64, now: i64, max_attempts: i64) -> Result<u64> {
        const PICK: &str = "SELECT id, attempts FROM outbox
             WHERE tenant_id = $1 AND status = 'sending' AND COALESCE(claimed_at, 0) < $2 ORDER BY id LIMIT 500";
        const PICK_PG: &str = const_str_concat!(
            "SELECT id, attempts FROM outbox
             WHERE tenant_id = $1 AND status = 'sending' AND COALESCE(claimed_at, 0) < $2 ORDER BY id LIMIT 500",
            " FOR UPDATE SKIP LOCKED"
        );
        const ATTEMPT: &str =
            "INSERT INTO message_attempts (tenant_id, message_id, attempt, attempted_at, outcome, detail)
             VALUES ($1, $2, $3, $4, 'abandoned', 'the worker stopped after claiming it; it may or may not have been sent')";
        const UPDATE: &str = "UPDATE outbox SET status = $3, attempts = $4, next_attempt_at = $5, claimed_at = NULL
             WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND COALESCE(claimed_at, 0) < $6";
        let sql = if self.is_postgres() { PICK_PG } else { PICK };
        let t = self.tenant_str.clone();
        let rows: Vec<(String, i64)> =
            on_conn!(self, c => sqlx::query_as(sql).bind(&t).bind(cutoff).fetch_all(c).await)?;
        let mut n = 0;
        for (id, attempts) in rows {
            let attempt = attempts + 1;
            let status = if attempt >= max_attempts { "failed" } else { "pending" };
            let changed = on_conn!(self, c => {
                let changed = sqlx::query(UPDATE).bind(&t).bind(&id).bind(status).bind(attempt).bind(now).bind(cutoff)
                    .execute(&mut *c).await?.rows_affected();
                if changed == 1 {
                    sqlx::query(ATTEMPT).bind(&t).bind(&id).bind(attempt).bind(now).execute(&mut *c).await?;
                }
                Ok::<u64, sqlx::Error>(changed)
            })?;
            n += changed;
        }
        Ok(n)
    }

    /// Records one attempt and the message's resulting state.
    pub async fn finish_attempt(&mut self, id: MessageId, f: &FinishedAttempt<'_>) -> Result<()> {
        const ATTEMPT: &str =
            "INSERT INTO message_attempts (tenant_id, message_id, attempt, attempted_at, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6)";
        const UPDATE: &str = "UPDATE outbox SET status = $3, attempts = $4, next_attempt_at = $5,
                sent_at = CASE WHEN $3 = 'sent' THEN $6 ELSE sent_at END
             WHERE tenant_id = $1 AND id = $2";
        const UPDATE_PG: &str = "UPDATE outbox SET status = $3, attempts = $4, next_attempt_at = $5,
                sent_at = CASE WHEN $3::text = 'sent' THEN $6 ELSE sent_at END
             WHERE tenant_id = $1 AND id = $2";
        let update = if self.is_postgres() { UPDATE_PG } else { UPDATE };
        let t = self.tenant_str.clone();
        let mid = id.to_string();
        on_conn!(self, c => {
            sqlx::query(ATTEMPT).bind(&t).bind(&mid).bind(f.attempt).bind(f.at).bind(f.outcome).bind(f.detail)
                .execute(&mut *c).await?;
            sqlx::query(update).bind(&t).bind(&mid).bind(f.status).bind(f.attempt).bind(f.next_attempt_at).bind(f.at)
                .execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The tenant's reminder lead time in hours.
    pub async fn reminder_lead_hours(&mut self) -> Result<i64> {
        const SQL: &str = "SELECT reminder_lead_hours FROM tenants WHERE id = $1";
        let t = self.tenant_str.clone();
        let row: Option<(i64,)> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_optional(c).await)?;
        Ok(row.map(|(h,)| h).unwrap_or(24))
    }

    /// Booked appointments starting in `[from, until)` that have no reminder queued yet.
    pub async fn appointments_needing_reminder(&mut self, from: i64, until: i64) -> Result<Vec<AppointmentId>> {
        const SQL: &str = "SELECT a.id FROM appointments a
             WHERE a.tenant_id = $1 AND a.status = 'booked' AND a.starts_at >= $2 AND a.starts_at < $3
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.tenant_id = a.tenant_id
                               AND o.dedupe_key = 'reminder:' || a.id)
             ORDER BY a.starts_at, a.id LIMIT 500";
        let t = self.tenant_str.clone();
        let rows: Vec<(String,)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(from).bind(until).fetch_all(c).await)?;
        rows.into_iter().map(|(id,)| parse_id(&id, "appointments.id")).collect()
    }

    /// What a confirmation or reminder says about an appointment.
    pub async fn appointment_brief(&mut self, id: AppointmentId) -> Result<Option<AppointmentBrief>> {
        const SQL: &str = "SELECT a.id, a.client_id, a.status, a.starts_at, s.name, l.name
             FROM appointments a
             JOIN services s ON s.tenant_id = a.tenant_id AND s.id = a.service_id
             JOIN locations l ON l.tenant_id = a.tenant_id AND l.id = a.location_id
             WHERE a.tenant_id = $1 AND a.id = $2";
        let t = self.tenant_str.clone();
        let row: Option<(String, String, String, i64, String, String)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(|(id, client, status, starts_at, service_name, location_name)| {
            Ok(AppointmentBrief {
                id: parse_id(&id, "appointments.id")?,
                client_id: parse_id(&client, "appointments.client_id")?,
                status,
                starts_at,
                service_name,
                location_name,
            })
        })
        .transpose()
    }
}
