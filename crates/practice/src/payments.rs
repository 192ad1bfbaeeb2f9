//! Payments: processor tokens and ids only (`pm_…`, `cus_…`, `pi_…`), never card data.
//!
//! A charge is recorded `pending` when staff take a payment through the processor; the
//! processor's signed webhook (`payment_intent.succeeded`) marks it `succeeded`. A refund is
//! privileged, audited in the same transaction, and never exceeds what remains of a captured
//! charge; it is recorded `pending` (the processor executes it and confirms with
//! `charge.refunded`), and the charge becomes `partially_refunded` or `refunded`.

use crate::plans::{amount, currency};
use crate::{Practice, PracticeError, Result};
use lacuna_accounts::Principal;
use lacuna_domain::{AppointmentId, PaymentId, Permission, PlanId, ValidationError};
use lacuna_storage::now_unix;
use lacuna_storage::practice::payments::PaymentRow;

/// What staff submit after taking a payment through the processor.
#[derive(Debug, Clone, Default)]
pub struct PaymentInput {
    pub appointment_id: Option<AppointmentId>,
    pub plan_id: Option<PlanId>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// `pm_…`
    pub payment_method: Option<String>,
    /// `cus_…`
    pub customer: Option<String>,
    /// `pi_…`
    pub payment_intent: Option<String>,
}

/// Why a refund is made (the processor's reasons; no free text, so no personal data).
pub const REFUND_REASONS: &[&str] = &["requested_by_customer", "duplicate", "fraudulent", "other"];

pub type Payment = PaymentRow;

/// `prefix` followed by at least 8 (at most 250) ASCII letters or digits, e.g. `pm_1Nv0aZ2eZvKYlo2C`.
pub fn processor_id(field: &str, raw: &str, prefix: &str) -> Result<String, ValidationError> {
    let rest = raw.strip_prefix(prefix);
    match rest {
        Some(r) if (8..=250).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(raw.to_string()),
        _ => Err(ValidationError::new(field, format!("must be a processor id like {prefix}… (letters and digits)"))),
    }
}

impl Practice {
    /// Records a charge taken through the processor.
    pub async fn create_payment(&self, p: &Principal, input: PaymentInput) -> Result<Payment> {
        let now = now_unix();
        let mut tx = self.write(p, Permission::PaymentsWrite).await?;
        match (input.appointment_id, input.plan_id) {
            (Some(a), None) => {
                tx.billing_appointment(a).await?.ok_or(PracticeError::NotFound)?;
            }
            (None, Some(pl)) => {
                tx.plan(pl).await?.ok_or(PracticeError::NotFound)?;
            }
            _ => return Err(PracticeError::invalid("appointment_id", "give exactly one of appointment_id or plan_id")),
        }
        let amount_minor = amount("amount_minor", input.amount_minor, 1)?;
        let currency = currency("currency", input.currency.as_deref())?;
        let pm = input.payment_method.ok_or_else(|| PracticeError::invalid("payment_method", "is required"))?;
        let pm = processor_id("payment_method", &pm, "pm_")?;
        let cus = input.customer.map(|c| processor_id("customer", &c, "cus_")).transpose()?;
        let pi = input.payment_intent.ok_or_else(|| PracticeError::invalid("payment_intent", "is required"))?;
        let pi = processor_id("payment_intent", &pi, "pi_")?;
        let row = PaymentRow {
            id: PaymentId::new(),
            kind: "charge".into(),
            appointment_id: input.appointment_id,
            plan_id: input.plan_id,
            refund_of: None,
            amount_minor,
            currency,
            payment_method: Some(pm),
            processor_customer: cus,
            payment_intent: Some(pi),
            status: "pending".into(),
            created_by: p.actor(),
            created_at: now,
        };
        tx.insert_payment(&row).await?;
        let scope = serde_json::json!({"amount_minor": row.amount_minor, "currency": row.currency});
        self.audit(&mut tx, p, "payment.create", Some(row.id.to_string()), scope).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Payments, optionally of one appointment and/or plan.
    pub async fn payments(
        &self,
        p: &Principal,
        appointment: Option<AppointmentId>,
        plan: Option<PlanId>,
    ) -> Result<Vec<Payment>> {
        let mut tx = self.read(p, Permission::PaymentsWrite).await?;
        Ok(tx.payments(appointment, plan, 1000).await?)
    }

    /// Refunds part or (without an amount) all of what remains of a captured charge.
    pub async fn refund_payment(
        &self,
        p: &Principal,
        charge: PaymentId,
        amount_minor: Option<i64>,
        reason: Option<String>,
    ) -> Result<Payment> {
        let now = now_unix();
        let mut tx = self.write(p, Permission::PaymentsRefund).await?;
        let row = tx.payment_for_update(charge).await?.ok_or(PracticeError::NotFound)?;
        if row.kind != "charge" {
            return Err(PracticeError::conflict("not_a_charge", None, "only a charge can be refunded"));
        }
        if !matches!(row.status.as_str(), "succeeded" | "partially_refunded") {
            return Err(PracticeError::conflict(
                "payment_not_captured",
                None,
                "the charge has not succeeded (or is already fully refunded)",
            ));
        }
        let remaining = row.amount_minor - tx.refunded_amount(charge).await?;
        let amount = amount_minor.unwrap_or(remaining);
        if amount < 1 {
            return Err(PracticeError::invalid("amount_minor", "must be at least 1"));
        }
        if amount > remaining {
            return Err(PracticeError::invalid(
                "amount_minor",
                format!("must not exceed the remaining charged amount ({remaining})"),
            ));
        }
        let reason = reason.unwrap_or_else(|| "requested_by_customer".into());
        if !REFUND_REASONS.contains(&reason.as_str()) {
            return Err(PracticeError::invalid("reason", format!("must be one of {}", REFUND_REASONS.join(", "))));
        }
        let refund = PaymentRow {
            id: PaymentId::new(),
            kind: "refund".into(),
            appointment_id: row.appointment_id,
            plan_id: row.plan_id,
            refund_of: Some(charge),
            amount_minor: amount,
            currency: row.currency.clone(),
            payment_method: None,
            processor_customer: row.processor_customer.clone(),
            payment_intent: row.payment_intent.clone(),
            status: "pending".into(),
            created_by: p.actor(),
            created_at: now,
        };
        tx.insert_payment(&refund).await?;
        let status = if amount == remaining { "refunded" } else { "partially_refunded" };
        tx.set_payment_status(charge, status).await?;
        let scope = serde_json::json!({"amount_minor": amount, "currency": row.currency, "reason": reason,
            "refund": refund.id.to_string(), "remaining_minor": remaining - amount});
        self.audit(&mut tx, p, "payment.refund", Some(charge.to_string()), scope).await?;
        tx.commit().await?;
        Ok(refund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_ids_have_their_prefix_and_enough_characters() {
        assert!(processor_id("m", "pm_1Nv0aZ2eZvKYlo2C", "pm_").is_ok());
        assert!(processor_id("m", "pm_short", "pm_").is_err());
        assert!(processor_id("m", "cus_1Nv0aZ2eZvKYlo2C", "pm_").is_err());
        assert!(processor_id("m", "pm_1Nv0aZ2e ZvKYlo2C", "pm_").is_err());
        assert!(processor_id("m", "pm_1Nv0aZ2e-ZvKYlo2C", "pm_").is_err());
    }
}
