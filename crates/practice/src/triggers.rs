//! Where Insight's approved actions meet a person: only here does a pseudonym become a client.
//!
//! [`Practice::carry_out_trigger`] finds the client behind a trigger's pseudonym (by minting the
//! pseudonym of every client under the tenant's current key — a pseudonym of a rotated-away key
//! resolves to no one), checks marketing consent, holds the message until quiet hours end, and
//! queues it in the message outbox — all in one transaction with a record of the trigger id, so
//! a trigger delivered twice is carried out once.
//!
//! [`Practice::rotate_pseudonym_key`] gives the tenant a new pseudonym key and returns the map of
//! every old pseudonym to its new one, for Insight to carry its history over;
//! [`Practice::retire_old_pseudonym_keys`] then destroys the old key.

use crate::insight_feed::Pseudonymizer;
use crate::messages::{Payload, seal};
use crate::{Practice, PracticeError, Result};
use lacuna_accounts::Principal;
use lacuna_domain::{ClientId, MessageId, Permission, TenantId, rename_tokens};
use lacuna_storage::now_unix;
use lacuna_storage::practice::outbox::OutboxRow;
use std::collections::HashMap;

/// Mints one kind of pseudonym from an id.
type Mint = fn(&Pseudonymizer, &str) -> String;

/// No nudge leaves between these hours of the practice's local time (start inclusive, end
/// exclusive); one queued during them waits until the end.
pub const QUIET_HOURS: (i8, i8) = (21, 9);

/// A trigger as the Practice side receives it.
#[derive(Debug, Clone)]
pub struct TriggerIn<'a> {
    pub id: &'a str,
    /// `rebook_nudge`, `slot_fill_offer`, `follow_up_checkin` or `member_reminder`.
    pub action_kind: &'a str,
    pub client_pseudonym: &'a str,
    pub service_category: Option<&'a str>,
    /// A slot-fill offer's slot (Unix seconds).
    pub slot_starts_at: Option<i64>,
}

/// What was done with a trigger.
pub mod outcome {
    /// A message was queued in the outbox.
    pub const QUEUED: &str = "queued";
    /// The client has not consented to marketing: nothing was sent.
    pub const NO_CONSENT: &str = "no_consent";
    /// The client has no email address to send to.
    pub const NO_CONTACT: &str = "no_contact";
    /// The pseudonym maps to no current client (deleted, or minted under a retired key).
    pub const UNKNOWN_CLIENT: &str = "unknown_client";
    /// Not a client of ours: sent to the practice's external system as a signed webhook.
    pub const WEBHOOK: &str = "webhook";
}

/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "Lacuna-Signature";
/// The header naming the trigger: receivers deduplicate on it.
pub const TRIGGER_ID_HEADER: &str = "Lacuna-Trigger-Id";
const ENDPOINT_TABLE: &str = "trigger_endpoints";
const ENDPOINT_COLUMN: &str = "secret_ct";

/// What one run of webhook delivery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WebhookReport {
    pub delivered: u64,
    pub retrying: u64,
    pub failed: u64,
}

impl Practice {
    /// The client behind a pseudonym under the tenant's current key, if any.
    async fn client_for_pseudonym(&self, tenant: TenantId, pseudonym: &str) -> Result<Option<ClientId>> {
        Ok(self.clients_for_pseudonyms(tenant, &[pseudonym]).await?.remove(pseudonym))
    }

    /// The clients behind `wanted` pseudonyms (those that are ours): every client's pseudonym is
    /// minted once under the current key, however many are wanted.
    async fn clients_for_pseudonyms(&self, tenant: TenantId, wanted: &[&str]) -> Result<HashMap<String, ClientId>> {
        let wanted: std::collections::HashSet<&str> = wanted.iter().copied().collect();
        let mut found = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let key = self.accounts().keyring().tenant_hmac_key(tenant, "pseudonym").await?;
        let minter = Pseudonymizer::new(key);
        let ids = self.store().tenant(tenant).read().await?.client_id_strings().await?;
        for id in &ids {
            let pseudonym = minter.client(id);
            if wanted.contains(pseudonym.as_str())
                && let Ok(client) = id.parse()
            {
                found.insert(pseudonym, client);
                if found.len() == wanted.len() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Resolves pseudonyms for a member allowed to see both sides (`clients.read` and
    /// `insight.read`): the Insight inbox shows names only to them. Pseudonyms that are not
    /// clients of ours are left out.
    pub async fn resolve_pseudonyms(&self, p: &Principal, pseudonyms: &[&str]) -> Result<HashMap<String, ClientId>> {
        p.require(Permission::ClientsRead)?;
        p.require(Permission::InsightRead)?;
        self.clients_for_pseudonyms(p.tenant, pseudonyms).await
    }

    /// Carries out one trigger (idempotent by its id). Returns the outcome, one of [`outcome`].
    pub async fn carry_out_trigger(&self, tenant: TenantId, t: &TriggerIn<'_>) -> Result<&'static str> {
        if let Some(done) = self.store().tenant(tenant).read().await?.trigger_outcome(t.id).await? {
            return Ok(known_outcome(&done));
        }
        let now = now_unix();
        let Some(client_id) = self.client_for_pseudonym(tenant, t.client_pseudonym).await? else {
            // Not ours: the practice's external system minted it, and only it can act on it.
            let mut tx = self.store().tenant(tenant).write().await?;
            let result = if tx.trigger_endpoint().await?.is_some() {
                let body = serde_json::json!({
                    "trigger_id": t.id,
                    "action_kind": t.action_kind,
                    "client": t.client_pseudonym,
                    "service_category": t.service_category,
                    "slot_starts_at": t.slot_starts_at.map(crate::insight_feed::instant),
                });
                tx.enqueue_trigger_webhook(t.id, &body.to_string(), now).await?;
                outcome::WEBHOOK
            } else {
                outcome::UNKNOWN_CLIENT
            };
            if !tx.record_trigger(t.id, t.action_kind, result, None, now).await? {
                drop(tx);
                let done = self.store().tenant(tenant).read().await?.trigger_outcome(t.id).await?;
                return Ok(done.as_deref().map_or(result, known_outcome));
            }
            tx.commit().await?;
            return Ok(result);
        };
        let keys = self.keys(tenant).await?;
        let mut tx = self.store().tenant(tenant).write().await?;
        let row = tx.client(client_id).await?.ok_or(PracticeError::NotFound)?;
        let client = crate::clients::open_row(&keys, &row)?;
        let settings = tx.practice_settings().await?;
        let result = if !client.marketing_consent {
            outcome::NO_CONSENT
        } else if client.email.is_none() {
            outcome::NO_CONTACT
        } else {
            outcome::QUEUED
        };
        let mut message_id = None;
        if result == outcome::QUEUED {
            let (subject, body) = nudge_text(t, &client.name, &settings.timezone);
            let id = MessageId::new();
            let payload = Payload { to: client.email.clone(), to_name: client.name.clone(), subject, body };
            let msg = OutboxRow {
                id,
                client_id,
                appointment_id: None,
                kind: "nudge".into(),
                channel: "email".into(),
                dedupe_key: format!("trigger:{}", t.id),
                payload_ct: seal(&keys, id, &payload)?,
                status: "pending".into(),
                attempts: 0,
                next_attempt_at: after_quiet_hours(now, &settings.timezone),
                sent_at: None,
                created_at: now,
            };
            tx.enqueue_message(&msg).await?;
            message_id = Some(id.to_string());
        }
        if !tx.record_trigger(t.id, t.action_kind, result, message_id.as_deref(), now).await? {
            // Another worker carried it out meanwhile: keep theirs, write nothing.
            drop(tx);
            let done = self.store().tenant(tenant).read().await?.trigger_outcome(t.id).await?;
            return Ok(done.as_deref().map_or(outcome::QUEUED, known_outcome));
        }
        tx.commit().await?;
        Ok(result)
    }

    /// Starts a pseudonym-key rotation (owners: `insight.manage`): the tenant gets a new key and
    /// this returns every old pseudonym (clients, providers, plans, appointments, locations) with
    /// its new one. Undelivered feed events are rewritten here; Insight's store is rewritten by
    /// Insight with the map; then [`Self::retire_old_pseudonym_keys`] destroys the old key.
    pub async fn rotate_pseudonym_key(&self, p: &Principal) -> Result<HashMap<String, String>> {
        p.require(Permission::InsightManage)?;
        let sources = self.store().tenant(p.tenant).read().await?.pseudonym_sources().await?;
        let (old, new) = self.accounts().keyring().rotate_tenant_hmac_key(p.tenant, "pseudonym").await?;
        let (old, new) = (Pseudonymizer::new(old), Pseudonymizer::new(new));
        let mut map = HashMap::new();
        let kinds: [(&Vec<String>, Mint); 5] = [
            (&sources.clients, Pseudonymizer::client),
            (&sources.providers, Pseudonymizer::provider),
            (&sources.plans, Pseudonymizer::plan),
            (&sources.appointments, Pseudonymizer::appointment),
            (&sources.locations, Pseudonymizer::location),
        ];
        for (ids, mint) in kinds {
            for id in ids {
                map.insert(mint(&old, id), mint(&new, id));
            }
        }
        // Events minted in the last moments under a cached old key are still in the outbox.
        tokio::time::sleep(lacuna_accounts::KEY_CACHE_TTL).await;
        let mut tx = self.store().tenant(p.tenant).write().await?;
        let rewrite = |body: &str| rename_tokens(body, &map);
        let rewritten = tx.rewrite_pending_insight_events(&rewrite).await?;
        self.audit(
            &mut tx,
            p,
            "insight.pseudonym_key.rotate",
            None,
            serde_json::json!({"pseudonyms": map.len(), "pending_events_rewritten": rewritten}),
        )
        .await?;
        tx.commit().await?;
        Ok(map)
    }

    /// Sets the external practice system that receives triggers for pseudonyms that are not
    /// clients of this practice (owners: `insight.manage`). Returns the signing secret, shown
    /// once; it is stored sealed with the tenant's data key. `https://` only, except loopback.
    pub async fn set_trigger_endpoint(&self, p: &Principal, url: &str) -> Result<String> {
        p.require(Permission::InsightManage)?;
        let url = url.trim();
        let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"].iter().any(|l| url.starts_with(l));
        if !(url.starts_with("https://") || loopback) || url.len() > 2000 || url.chars().any(char::is_whitespace) {
            return Err(PracticeError::invalid("url", "must be an https:// URL"));
        }
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let secret = format!("whsec_{}", hex::encode(raw));
        let keys = self.keys(p.tenant).await?;
        let row = lacuna_storage::practice::insight_triggers::TriggerEndpointRow {
            url: url.to_string(),
            secret_ct: keys.seal(ENDPOINT_TABLE, ENDPOINT_COLUMN, &p.tenant.to_string(), &secret),
            created_at: now_unix(),
        };
        let mut tx = self.write(p, Permission::InsightManage).await?;
        tx.set_trigger_endpoint(&row).await?;
        self.audit(&mut tx, p, "insight.webhook.set", None, serde_json::json!({"url": url})).await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Removes the external system's endpoint; queued deliveries to it fail.
    pub async fn delete_trigger_endpoint(&self, p: &Principal) -> Result<()> {
        let mut tx = self.write(p, Permission::InsightManage).await?;
        if !tx.delete_trigger_endpoint().await? {
            return Err(PracticeError::NotFound);
        }
        self.audit(&mut tx, p, "insight.webhook.delete", None, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delivers due trigger webhooks of every tenant: POST, signed, at most once at a time per
    /// trigger (claimed first), retried after 1 min, 5 min, 30 min, 2 h, then failed.
    pub async fn deliver_trigger_webhooks(&self, http: &reqwest::Client, now: i64) -> Result<WebhookReport> {
        let mut report = WebhookReport::default();
        for tenant in self.store().tenant_ids().await? {
            let mut tx = self.store().tenant(tenant).write().await?;
            let Some(endpoint) = tx.trigger_endpoint().await? else { continue };
            let due = tx.claim_due_trigger_webhooks(now, 50).await?;
            tx.commit().await?;
            if due.is_empty() {
                continue;
            }
            let keys = self.keys(tenant).await?;
            let secret = zeroize::Zeroizing::new(keys.open(
                ENDPOINT_TABLE,
                ENDPOINT_COLUMN,
                &tenant.to_string(),
                &endpoint.secret_ct,
            )?);
            for d in due {
                let sent_at = now_unix();
                let signature = sign_webhook(secret.as_bytes(), sent_at, &d.body);
                let result = http
                    .post(&endpoint.url)
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, signature)
                    .header(TRIGGER_ID_HEADER, &d.trigger_id)
                    .timeout(std::time::Duration::from_secs(10))
                    .body(d.body.clone())
                    .send()
                    .await;
                let (status, next, detail) = match result {
                    Ok(r) if r.status().is_success() => ("delivered", sent_at, format!("HTTP {}", r.status().as_u16())),
                    other => {
                        let detail = match other {
                            Ok(r) => format!("HTTP {}", r.status().as_u16()),
                            Err(e) if e.is_timeout() => "timed out".to_string(),
                            Err(_) => "connection failed".to_string(),
                        };
                        match crate::messages::retry_delay(d.attempts + 1) {
                            Some(wait) => ("pending", sent_at + wait, detail),
                            None => ("failed", sent_at, detail),
                        }
                    }
                };
                match status {
                    "delivered" => report.delivered += 1,
                    "pending" => report.retrying += 1,
                    _ => report.failed += 1,
                }
                let mut tx = self.store().tenant(tenant).write().await?;
                tx.finish_trigger_webhook(&d.trigger_id, status, next, &detail, sent_at).await?;
                tx.commit().await?;
            }
        }
        Ok(report)
    }

    /// Destroys the tenant's old pseudonym keys: old pseudonyms stop resolving for good.
    pub async fn retire_old_pseudonym_keys(&self, p: &Principal) -> Result<u64> {
        p.require(Permission::InsightManage)?;
        Ok(self.accounts().keyring().retire_old_tenant_hmac_keys(p.tenant, "pseudonym").await?)
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, as the receiver recomputes it.
pub fn sign_webhook(secret: &[u8], t: i64, body: &str) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn known_outcome(s: &str) -> &'static str {
    [outcome::QUEUED, outcome::NO_CONSENT, outcome::NO_CONTACT, outcome::UNKNOWN_CLIENT, outcome::WEBHOOK]
        .into_iter()
        .find(|o| *o == s)
        .unwrap_or(outcome::QUEUED)
}

/// The message of a trigger, in the practice's words (the client's first name only).
fn nudge_text(t: &TriggerIn<'_>, name: &str, tz: &str) -> (String, String) {
    let first = name.split_whitespace().next().unwrap_or(name);
    let what = t.service_category.map(category_words).unwrap_or("visit");
    match t.action_kind {
        "slot_fill_offer" => {
            let when = t.slot_starts_at.map(|s| local_time(s, tz)).unwrap_or_else(|| "soon".into());
            (
                format!("A {what} appointment just opened up"),
                format!(
                    "Hello {first},\n\na {what} appointment opened up on {when}. Reply or call us if you would like it.\n"
                ),
            )
        }
        "follow_up_checkin" => (
            format!("How are you after your {what}?"),
            format!(
                "Hello {first},\n\nwe hope you are happy with your recent {what}. Reply or call us if anything needs a look.\n"
            ),
        ),
        "member_reminder" => (
            "Your membership has unused visits".to_string(),
            format!("Hello {first},\n\nyour membership still has value to use. We would love to see you again soon.\n"),
        ),
        _ => (
            format!("Time for your next {what}?"),
            format!(
                "Hello {first},\n\nit has been a while since your last {what}. Book your next visit whenever suits you.\n"
            ),
        ),
    }
}

fn category_words(c: &str) -> &'static str {
    match c {
        "neurotoxin" => "neurotoxin treatment",
        "filler" => "filler treatment",
        "laser" => "laser treatment",
        "facial" => "facial",
        "massage" => "massage",
        "hair" => "hair appointment",
        "nails" => "nail appointment",
        _ => "visit",
    }
}

fn local_time(unix: i64, tz: &str) -> String {
    jiff::Timestamp::from_second(unix)
        .ok()
        .and_then(|ts| jiff::tz::TimeZone::get(tz).ok().map(|z| ts.to_zoned(z)))
        .map(|z| z.strftime("%A %-d %B at %H:%M").to_string())
        .unwrap_or_default()
}

/// `now`, or the end of quiet hours in the practice's time zone if `now` falls inside them.
pub fn after_quiet_hours(now: i64, tz: &str) -> i64 {
    let (start, end) = QUIET_HOURS;
    let Some(zoned) =
        jiff::Timestamp::from_second(now).ok().and_then(|ts| jiff::tz::TimeZone::get(tz).ok().map(|z| ts.to_zoned(z)))
    else {
        return now;
    };
    let hour = zoned.hour();
    let quiet = if start > end { hour >= start || hour < end } else { hour >= start && hour < end };
    if !quiet {
        return now;
    }
    let day = if hour >= start && start > end { zoned.date().tomorrow().ok() } else { Some(zoned.date()) };
    day.and_then(|d| d.at(end, 0, 0, 0).to_zoned(zoned.time_zone().clone()).ok())
        .map_or(now, |z| z.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or_default()
    }

    #[test]
    fn quiet_hours_hold_messages_until_morning_local_time() {
        let tz = "America/New_York";
        // 15:00 New York (EST, UTC-5): sends now.
        assert_eq!(after_quiet_hours(at("2026-01-15T20:00:00Z"), tz), at("2026-01-15T20:00:00Z"));
        // 22:30 New York: waits until 09:00 the next day.
        assert_eq!(after_quiet_hours(at("2026-01-16T03:30:00Z"), tz), at("2026-01-16T14:00:00Z"));
        // 06:00 New York: waits until 09:00 the same day.
        assert_eq!(after_quiet_hours(at("2026-01-16T11:00:00Z"), tz), at("2026-01-16T14:00:00Z"));
        // Unknown zone: no delay rather than no message.
        assert_eq!(after_quiet_hours(100, "Nowhere/Else"), 100);
    }
}
