//! Multi-factor authentication: TOTP enrollment with a first code, single-use recovery codes,
//! the second factor at sign-in, step-up for privileged actions, the tenant policy.

use crate::{AccountError, Accounts, Principal, PrincipalKind};
use lacuna_crypto::{DataKeyRing, new_totp_secret, qr_svg, sha256, totp_check, totp_secret_base32, totp_uri};
use lacuna_domain::{MfaPolicy, Permission, TenantId, UserId, ValidationError};
use lacuna_storage::{TenantTx, now_unix};
use rand::Rng;
use serde_json::json;

/// A privileged action needs an MFA check this recent (for members who have MFA).
pub const STEP_UP_WINDOW_SECS: i64 = 10 * 60;
const RECOVERY_CODES: usize = 10;
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// The principal's second-factor situation, computed at authentication.
#[derive(Debug, Clone, Default)]
pub struct MfaState {
    /// The member has a confirmed TOTP factor.
    pub enrolled: bool,
    /// Signed in with the password only; the second factor is still owed.
    pub pending: bool,
    /// The tenant's policy requires MFA for this member, who has none yet.
    pub enrollment_required: bool,
    /// When this session last passed an MFA check.
    pub verified_at: Option<i64>,
}

impl MfaState {
    /// Whether a privileged action may go ahead now.
    pub fn step_up_satisfied(&self, now: i64) -> bool {
        !self.enrolled || self.verified_at.is_some_and(|t| now - t <= STEP_UP_WINDOW_SECS)
    }
}

pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

pub struct MfaStatus {
    pub enrolled: bool,
    pub enrollment_started: bool,
    pub recovery_codes_left: i64,
    pub policy: MfaPolicy,
    pub required: bool,
}

pub(crate) fn secret_context(tenant: TenantId, user: UserId) -> Vec<u8> {
    format!("mfa_factors.secret_ct|{tenant}|{user}").into_bytes()
}

fn normalize_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn new_recovery_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..16).map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char).collect();
    format!("{}-{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12], &chars[12..16])
}

fn session_digest(p: &Principal) -> Result<&[u8], AccountError> {
    match &p.kind {
        PrincipalKind::Session { digest, .. } => Ok(digest),
        PrincipalKind::ApiToken { .. } => {
            Err(ValidationError::new("session", "MFA is managed from a signed-in browser session, not an API token")
                .into())
        }
    }
}

impl Accounts {
    pub(crate) async fn data_key(&self, tenant: TenantId) -> Result<std::sync::Arc<DataKeyRing>, AccountError> {
        self.keys.tenant(tenant).await
    }

    pub async fn mfa_status(&self, p: &Principal) -> Result<MfaStatus, AccountError> {
        let mut tx = self.store.tenant(p.tenant).read().await?;
        let factor = tx.mfa_factor(p.user).await?;
        let policy = tx.mfa_policy().await?;
        Ok(MfaStatus {
            enrolled: factor.as_ref().is_some_and(|f| f.confirmed_at.is_some()),
            enrollment_started: factor.as_ref().is_some_and(|f| f.confirmed_at.is_none()),
            recovery_codes_left: tx.unused_recovery_codes(p.user).await?,
            policy,
            required: p.role.is_some_and(|r| policy.requires(r)),
        })
    }

    /// Starts enrollment: a new secret (stored encrypted, unconfirmed) and its QR code.
    pub async fn mfa_enroll(&self, p: &Principal) -> Result<Enrollment, AccountError> {
        session_digest(p)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        if tx.mfa_factor(p.user).await?.is_some_and(|f| f.confirmed_at.is_some()) {
            return Err(
                ValidationError::new("mfa", "MFA is already on; turn it off first to enroll a new device").into()
            );
        }
        let member = tx.member(p.user).await?.ok_or(AccountError::Unauthenticated)?;
        let secret = new_totp_secret();
        let key = self.data_key(p.tenant).await?;
        tx.put_pending_mfa_factor(p.user, &key.encrypt(&secret_context(p.tenant, p.user), &secret), now).await?;
        tx.commit().await?;
        let crypto = |e: lacuna_crypto::TotpError| AccountError::Crypto(e.to_string());
        let otpauth_uri = totp_uri(&secret, "Lacuna", &member.email).map_err(crypto)?;
        Ok(Enrollment {
            secret_base32: totp_secret_base32(&secret),
            qr_svg: qr_svg(&otpauth_uri).map_err(crypto)?,
            otpauth_uri,
        })
    }

    /// Confirms enrollment with a first code; returns the recovery codes (shown once).
    pub async fn mfa_confirm(&self, p: &Principal, code: &str) -> Result<Vec<String>, AccountError> {
        let digest = session_digest(p)?.to_vec();
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        let factor = tx
            .mfa_factor(p.user)
            .await?
            .filter(|f| f.confirmed_at.is_none())
            .ok_or_else(|| ValidationError::new("code", "start enrollment first"))?;
        let key = self.data_key(p.tenant).await?;
        let secret = key
            .decrypt(&secret_context(p.tenant, p.user), &factor.secret_ct)
            .map_err(|e| AccountError::Crypto(e.to_string()))?;
        let step =
            totp_check(&secret, code, now as u64).ok_or_else(|| ValidationError::new("code", "code is not valid"))?;
        if !tx.consume_totp_step(p.user, step as i64).await? {
            return Err(ValidationError::new("code", "code was already used").into());
        }
        tx.confirm_mfa_factor(p.user, now).await?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| sha256(normalize_recovery(c).as_bytes())).collect();
        tx.put_recovery_codes(p.user, &hashes).await?;
        tx.mark_session_mfa_verified(&digest, now).await?;
        tx.append_audit(&self.audit_key, &p.audit("mfa.enable", Some(p.actor()), json!({"method": "totp"}))).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// Checks a TOTP code (each time step accepted once) or a recovery code (each used once).
    /// Returns which kind matched.
    async fn check_second_factor(
        &self,
        tx: &mut TenantTx,
        user: UserId,
        code: &str,
        now: i64,
    ) -> Result<Option<&'static str>, AccountError> {
        let Some(factor) = tx.mfa_factor(user).await?.filter(|f| f.confirmed_at.is_some()) else {
            return Ok(None);
        };
        let key = self.data_key(tx.tenant()).await?;
        let secret = key
            .decrypt(&secret_context(tx.tenant(), user), &factor.secret_ct)
            .map_err(|e| AccountError::Crypto(e.to_string()))?;
        if let Some(step) = totp_check(&secret, code, now as u64) {
            return Ok(tx.consume_totp_step(user, step as i64).await?.then_some("totp"));
        }
        let normalized = normalize_recovery(code);
        if normalized.len() == 16 && tx.use_recovery_code(user, &sha256(normalized.as_bytes()), now).await? {
            return Ok(Some("recovery_code"));
        }
        Ok(None)
    }

    /// The second factor at sign-in, or a step-up before a privileged action.
    pub async fn mfa_verify(&self, p: &Principal, code: &str) -> Result<(), AccountError> {
        let digest = session_digest(p)?.to_vec();
        let throttle_key = format!("mfa:{}", p.user);
        if let Err(retry_after_secs) = self.account_throttle.check(&throttle_key) {
            return Err(AccountError::Throttled { retry_after_secs });
        }
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        match self.check_second_factor(&mut tx, p.user, code, now).await? {
            Some(method) => {
                tx.mark_session_mfa_verified(&digest, now).await?;
                let action = if method == "recovery_code" { "mfa.recovery_code_used" } else { "auth.mfa_verified" };
                tx.append_audit(&self.audit_key, &p.audit(action, Some(p.actor()), json!({"method": method}))).await?;
                tx.commit().await?;
                self.account_throttle.clear(&throttle_key);
                Ok(())
            }
            None => {
                drop(tx);
                self.account_throttle.record_failure(&throttle_key);
                let mut tx = self.store.tenant(p.tenant).write().await?;
                tx.append_audit(&self.audit_key, &p.audit("auth.mfa_failed", Some(p.actor()), json!({}))).await?;
                tx.commit().await?;
                Err(ValidationError::new("code", "code is not valid or was already used").into())
            }
        }
    }

    /// Turns MFA off after re-authentication with the password and a current code.
    pub async fn mfa_disable(&self, p: &Principal, password: &str, code: &str) -> Result<(), AccountError> {
        session_digest(p)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        let hash = tx.password_hash(p.user).await?.ok_or(AccountError::Unauthenticated)?;
        let hasher = self.hasher.clone();
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || hasher.verify(&hash, &pw))
            .await
            .map_err(|e| AccountError::Crypto(e.to_string()))?;
        if !ok {
            return Err(ValidationError::new("password", "password is incorrect").into());
        }
        if self.check_second_factor(&mut tx, p.user, code, now).await?.is_none() {
            return Err(ValidationError::new("code", "code is not valid or was already used").into());
        }
        tx.delete_mfa(p.user).await?;
        tx.append_audit(&self.audit_key, &p.audit("mfa.disable", Some(p.actor()), json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_mfa_policy(&self, p: &Principal, policy: MfaPolicy) -> Result<(), AccountError> {
        p.require(Permission::TenantSettings)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        let before = tx.mfa_policy().await?;
        tx.set_mfa_policy(policy, now).await?;
        let scope = json!({"from": before.name(), "to": policy.name()});
        tx.append_audit(&self.audit_key, &p.audit("settings.mfa_policy", None, scope)).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_long_random_and_normalise() {
        let a = new_recovery_code();
        assert_eq!(a.len(), 19);
        assert_ne!(a, new_recovery_code());
        assert_eq!(normalize_recovery(&a.to_uppercase()).len(), 16);
    }

    #[test]
    fn step_up_window() {
        let now = 1_000_000;
        let mut s = MfaState { enrolled: true, verified_at: Some(now - 60), ..Default::default() };
        assert!(s.step_up_satisfied(now));
        s.verified_at = Some(now - STEP_UP_WINDOW_SECS - 1);
        assert!(!s.step_up_satisfied(now));
        s.verified_at = None;
        assert!(!s.step_up_satisfied(now));
        assert!(MfaState::default().step_up_satisfied(now), "members without MFA are not blocked");
    }
}
