//! Processor webhooks (Stripe). A request is believed only if its `Stripe-Signature` header
//! (`t=<unix>,v1=<hex>[,v1=<hex>…]`) carries an HMAC-SHA256 of `"{t}.{raw body}"` under the
//! endpoint secret (compared in constant time) and `t` is within the tolerance of now. The
//! event names its tenant in `data.object.metadata.lacuna_tenant`; each event id is processed
//! once per tenant (a replay is a no-op).

use crate::{Practice, Result};
use hmac::{Hmac, Mac};
use lacuna_domain::TenantId;
use sha2::Sha256;

/// Stripe's default tolerance: five minutes either side.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Verifies a `Stripe-Signature` header over the raw body.
pub fn verify_signature(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut t: Option<i64> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else { continue };
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => {
                if let Ok(sig) = hex::decode(v) {
                    sigs.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // `verify_slice` compares in constant time.
    if sigs.iter().any(|s| mac.clone().verify_slice(s).is_ok()) { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// What became of a (verified) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Applied; `updated` payments changed.
    Processed { updated: usize },
    /// This event id was already processed: nothing changed.
    Replayed,
    /// Not for us (no or unknown tenant, unhandled type): acknowledged, nothing changed.
    Ignored,
}

impl Practice {
    /// Applies a verified processor event. Call only after [`verify_signature`].
    pub async fn apply_stripe_event(&self, body: &[u8], now: i64) -> Result<EventOutcome> {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Err(crate::PracticeError::invalid("body", "is not a JSON event"));
        };
        let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
            return Err(crate::PracticeError::invalid("body", "has no event id or type"));
        };
        if id.is_empty() || id.len() > 255 {
            return Err(crate::PracticeError::invalid("id", "is not an event id"));
        }
        let object = &event["data"]["object"];
        let Some(tenant) = object["metadata"]["lacuna_tenant"].as_str().and_then(|t| t.parse::<TenantId>().ok()) else {
            return Ok(EventOutcome::Ignored);
        };
        let mut tx = self.store().tenant(tenant).write().await?;
        if !tx.tenant_exists().await? {
            return Ok(EventOutcome::Ignored);
        }
        if !tx.record_processor_event(id, kind, now).await? {
            return Ok(EventOutcome::Replayed);
        }
        let mut updated = 0;
        match kind {
            "payment_intent.succeeded" | "payment_intent.payment_failed" => {
                let new = if kind == "payment_intent.succeeded" { "succeeded" } else { "failed" };
                if let Some(intent) = object["id"].as_str() {
                    for c in tx.charges_by_intent(intent).await? {
                        if c.status == "pending" {
                            tx.set_payment_status(c.id, new).await?;
                            updated += 1;
                        }
                    }
                }
            }
            "charge.refunded" => {
                let intent = object["payment_intent"].as_str();
                let refunded = object["amount_refunded"].as_i64().unwrap_or(0);
                let total = object["amount"].as_i64().unwrap_or(i64::MAX);
                if let Some(intent) = intent {
                    let status = if refunded >= total { "refunded" } else { "partially_refunded" };
                    for c in tx.charges_by_intent(intent).await? {
                        if c.status != status {
                            tx.set_payment_status(c.id, status).await?;
                            updated += 1;
                        }
                    }
                }
            }
            _ => {}
        }
        tx.commit().await?;
        tracing::info!(event_type = kind, updated, "processor event applied");
        Ok(EventOutcome::Processed { updated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures_are_checked() {
        let (s, body, t) = (b"whsec_test".as_slice(), br#"{"id":"evt_1"}"#.as_slice(), 1_700_000_000);
        let good = sign(s, t, body);
        assert_eq!(verify_signature(s, &format!("t={t},v1={good}"), body, t + 10), Ok(()));
        // Any of several v1 values (secret rotation).
        assert_eq!(verify_signature(s, &format!("t={t},v1=00ff,v1={good},v0=abc"), body, t), Ok(()));
        assert_eq!(verify_signature(s, &format!("t={t},v1={good}"), b"{}", t), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"other", &format!("t={t},v1={good}"), body, t), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(s, &format!("t={t},v1={good}"), body, t + 301), Err(SignatureError::Stale));
        assert_eq!(verify_signature(s, &format!("v1={good}"), body, t), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(s, &format!("t={t}"), body, t), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(s, "garbage", body, t), Err(SignatureError::Malformed));
    }
}
