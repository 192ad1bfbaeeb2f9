//! Sign-up, sign-in, sessions, API tokens.

use crate::Keyring;
use crate::{AccountError, Credential, Principal, PrincipalKind, Profile, RequestMeta, Throttle};
use lacuna_crypto::AuditKey;
use lacuna_crypto::{PasswordHasher, random_token};
use lacuna_domain::{Email, Password, PermissionSet, Role, TenantId, TokenId, UserId, ValidationError, required_text};
use lacuna_storage::{ApiTokenRow, SessionRow, Store, now_unix};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Session and throttling policy.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// A session unused for this long is over (30 minutes).
    pub idle_timeout_secs: i64,
    /// A session is over this long after sign-in, used or not (12 hours).
    pub absolute_lifetime_secs: i64,
    /// Failed sign-ins allowed per account, and per client address, within `throttle_window`.
    pub max_failures_per_account: u32,
    pub max_failures_per_address: u32,
    pub throttle_window: Duration,
    /// Invitations expire after this long (7 days).
    pub invite_lifetime_secs: i64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_lifetime_secs: 12 * 60 * 60,
            max_failures_per_account: 5,
            max_failures_per_address: 30,
            throttle_window: Duration::from_secs(15 * 60),
            invite_lifetime_secs: 7 * 24 * 60 * 60,
        }
    }
}

/// The account service. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) store: Store,
    pub(crate) keys: Arc<Keyring>,
    pub(crate) audit_key: AuditKey,
    pub(crate) hasher: PasswordHasher,
    pub(crate) config: Arc<AccountsConfig>,
    pub(crate) account_throttle: Arc<Throttle>,
    address_throttle: Arc<Throttle>,
}

pub struct SignupInput {
    pub practice_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// A new session: the cookie value is shown to the client once and stored only hashed.
pub struct IssuedSession {
    pub tenant: TenantId,
    pub user: UserId,
    pub cookie_value: String,
    pub csrf_token: String,
    pub expires_at: i64,
    /// The member has MFA: the session works only for `POST /mfa/verify` until a code is given.
    pub mfa_required: bool,
    /// The tenant's policy requires MFA and the member has none: enrollment comes first.
    pub mfa_enrollment_required: bool,
}

pub struct NewToken {
    pub row: ApiTokenRow,
    /// The secret, returned once.
    pub secret: String,
}

/// What `GET /me` shows.
pub struct MeView {
    pub tenant: TenantId,
    pub tenant_name: String,
    pub user: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub permissions: PermissionSet,
}

impl Accounts {
    pub fn new(store: Store, keys: Arc<Keyring>, hasher: PasswordHasher, config: AccountsConfig) -> Self {
        let account_throttle = Arc::new(Throttle::new(config.max_failures_per_account, config.throttle_window));
        let address_throttle = Arc::new(Throttle::new(config.max_failures_per_address, config.throttle_window));
        let audit_key = keys.audit_key().clone();
        Self { store, keys, audit_key, hasher, config: Arc::new(config), account_throttle, address_throttle }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a tenant, its wrapped data key and its first owner, and signs the owner in.
    /// All in one transaction: on any failure nothing is left behind.
    pub async fn signup(&self, input: SignupInput, meta: &RequestMeta) -> Result<IssuedSession, AccountError> {
        let practice = required_text("practice_name", &input.practice_name, 200)?;
        let name = required_text("name", &input.name, 200)?;
        let email = Email::parse("email", &input.email)?;
        let password = Password::parse("password", input.password)?;
        let hash = self.hash(&password).await?;

        let tenant = TenantId::new();
        let user = UserId::new();
        let now = now_unix();
        // The key goes into the keystore first: if the transaction below fails, an unused key
        // is left behind, never data without a key.
        self.keys.create_tenant_key(tenant).await?;
        let mut tx = self.store.tenant(tenant).write().await?;
        tx.create_tenant(&practice, now).await?;
        tx.insert_user(user, email.as_str(), Some(&hash), now).await.map_err(map_email_conflict)?;
        tx.insert_member(user, &name, Role::Owner, None, None, None, now).await?;
        let session = self.issue_session(&mut tx, user, now, false).await?;
        let actor = format!("user:{user}");
        tx.append_audit(
            &self.audit_key,
            &meta.audit(actor.clone(), Some("owner"), "tenant.signup", Some(actor), json!({})),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(tenant = %tenant, "tenant created");
        Ok(session)
    }

    /// Signs in with email and password, throttled per account and per client address.
    pub async fn login(&self, email: &str, password: &str, meta: &RequestMeta) -> Result<IssuedSession, AccountError> {
        let email = Email::parse("email", email)?;
        let client = meta.client_addr.as_deref().unwrap_or("unknown");
        let account_key = email.as_str().to_string();
        if let Err(retry_after_secs) =
            self.address_throttle.check(client).and(self.account_throttle.check(&account_key))
        {
            return Err(AccountError::Throttled { retry_after_secs });
        }
        let row = self.store.login_lookup(email.as_str()).await?;
        let verified = match row.as_ref().and_then(|r| r.password_hash.clone()) {
            Some(stored) => {
                let hasher = self.hasher.clone();
                let pw = password.to_string();
                tokio::task::spawn_blocking(move || hasher.verify(&stored, &pw))
                    .await
                    .map_err(|e| AccountError::Crypto(e.to_string()))?
            }
            None => {
                let hasher = self.hasher.clone();
                let pw = password.to_string();
                tokio::task::spawn_blocking(move || hasher.verify_nobody(&pw))
                    .await
                    .map_err(|e| AccountError::Crypto(e.to_string()))?
            }
        };
        let Some(row) = row.filter(|_| verified) else {
            self.account_throttle.record_failure(&account_key);
            self.address_throttle.record_failure(client);
            // A failure against a real account goes into that tenant's audit trail.
            if let Some(known) = self.store.login_lookup(email.as_str()).await? {
                let mut tx = self.store.tenant(known.tenant_id).write().await?;
                let target = Some(format!("user:{}", known.user_id));
                let e = meta.audit(
                    "anonymous".into(),
                    None,
                    "auth.login_failed",
                    target,
                    json!({"reason": "bad password"}),
                );
                tx.append_audit(&self.audit_key, &e).await?;
                tx.commit().await?;
            }
            return Err(AccountError::InvalidCredentials);
        };
        self.account_throttle.clear(&account_key);
        let now = now_unix();
        let mut tx = self.store.tenant(row.tenant_id).write().await?;
        let enrolled = tx.mfa_factor(row.user_id).await?.is_some_and(|f| f.confirmed_at.is_some());
        let session = self.issue_session(&mut tx, row.user_id, now, enrolled).await?;
        let actor = format!("user:{}", row.user_id);
        let role = tx.member(row.user_id).await?.map(|m| m.role);
        let scope = json!({"mfa": if enrolled { "pending" } else { "none" }});
        tx.append_audit(
            &self.audit_key,
            &meta.audit(actor.clone(), role.map(|r| r.name()), "auth.login", Some(actor), scope),
        )
        .await?;
        let policy = tx.mfa_policy().await?;
        let session =
            IssuedSession { mfa_enrollment_required: !enrolled && role.is_some_and(|r| policy.requires(r)), ..session };
        tx.commit().await?;
        Ok(session)
    }

    pub(crate) async fn issue_session(
        &self,
        tx: &mut lacuna_storage::TenantTx,
        user: UserId,
        now: i64,
        mfa_pending: bool,
    ) -> Result<IssuedSession, AccountError> {
        let (cookie_value, cred) = Credential::issue_dotted(tx.tenant());
        let row = SessionRow {
            user_id: user,
            csrf_token: random_token(32),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.config.absolute_lifetime_secs,
            revoked_at: None,
            mfa_pending,
            mfa_verified_at: None,
        };
        tx.insert_session(&cred.digest, &row).await?;
        Ok(IssuedSession {
            tenant: tx.tenant(),
            user,
            cookie_value,
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
            mfa_required: mfa_pending,
            mfa_enrollment_required: false,
        })
    }

    /// Resolves a session cookie: unknown, forged, revoked, idle or expired sessions are refused.
    /// One transaction, one query (plus a write at most once a minute for the idle timer).
    pub async fn authenticate_session(&self, cookie_value: &str, meta: RequestMeta) -> Result<Principal, AccountError> {
        let cred = Credential::parse_dotted(cookie_value).ok_or(AccountError::Unauthenticated)?;
        let now = now_unix();
        let auth = self.store.session_auth(cred.tenant, &cred.digest).await?.ok_or(AccountError::Unauthenticated)?;
        let session = &auth.session;
        if session.revoked_at.is_some()
            || now >= session.expires_at
            || now - session.last_seen_at >= self.config.idle_timeout_secs
            || auth.status.deleted_at.is_some()
        {
            return Err(AccountError::Unauthenticated);
        }
        // Sliding idle timeout; written at most once a minute to keep reads cheap.
        if now - session.last_seen_at >= 60 {
            let mut w = self.store.tenant(cred.tenant).write().await?;
            w.touch_session(&cred.digest, now).await?;
            w.commit().await?;
        }
        let member = auth.member;
        let mfa = crate::MfaState {
            enrolled: auth.mfa_enrolled,
            pending: session.mfa_pending,
            enrollment_required: !auth.mfa_enrolled && auth.mfa_policy.requires(member.role),
            verified_at: session.mfa_verified_at,
        };
        Ok(Principal {
            tenant: cred.tenant,
            user: member.user_id,
            role: Some(member.role),
            permissions: member.effective_permissions(),
            kind: PrincipalKind::Session { digest: cred.digest, csrf_token: auth.session.csrf_token },
            meta,
            mfa,
            tenant_cancelled: auth.status.cancelled_at.is_some(),
            profile: Profile {
                name: member.name,
                email: member.email,
                role: member.role,
                tenant_name: auth.tenant_name,
            },
        })
    }

    /// Resolves an API token: its own permissions, never more than its creator still holds.
    pub async fn authenticate_token(&self, bearer: &str, meta: RequestMeta) -> Result<Principal, AccountError> {
        let cred = Credential::parse_api(bearer).ok_or(AccountError::Unauthenticated)?;
        let now = now_unix();
        let mut tx = self.store.tenant(cred.tenant).read().await?;
        let auth = tx.token_auth(&cred.digest).await?.ok_or(AccountError::Unauthenticated)?;
        drop(tx);
        let token = auth.token;
        if token.revoked_at.is_some() || auth.status.deleted_at.is_some() {
            return Err(AccountError::Unauthenticated);
        }
        if token.last_used_at.is_none_or(|t| now - t >= 60) {
            let mut w = self.store.tenant(cred.tenant).write().await?;
            w.touch_api_token(token.id, now).await?;
            w.commit().await?;
        }
        let creator = auth.creator;
        Ok(Principal {
            tenant: cred.tenant,
            user: token.created_by,
            role: None,
            permissions: token.permissions.intersect(creator.effective_permissions()),
            kind: PrincipalKind::ApiToken { id: token.id },
            meta,
            mfa: crate::MfaState::default(),
            tenant_cancelled: auth.status.cancelled_at.is_some(),
            profile: Profile {
                name: creator.name,
                email: creator.email,
                role: creator.role,
                tenant_name: auth.tenant_name,
            },
        })
    }

    /// Revokes the principal's session (API tokens are revoked through the token routes).
    pub async fn logout(&self, p: &Principal) -> Result<(), AccountError> {
        if let PrincipalKind::Session { digest, .. } = &p.kind {
            let mut tx = self.store.tenant(p.tenant).write().await?;
            tx.revoke_session(digest, now_unix()).await?;
            tx.append_audit(&self.audit_key, &p.audit("auth.logout", Some(p.actor()), json!({}))).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// `GET /me`: everything was read during authentication.
    pub fn me(&self, p: &Principal) -> MeView {
        MeView {
            tenant: p.tenant,
            tenant_name: p.profile.tenant_name.clone(),
            user: p.user,
            email: p.profile.email.clone(),
            name: p.profile.name.clone(),
            role: p.profile.role,
            permissions: p.permissions,
        }
    }

    // ---- API tokens ----

    pub async fn create_token(
        &self,
        p: &Principal,
        name: &str,
        permissions: PermissionSet,
    ) -> Result<NewToken, AccountError> {
        p.require(lacuna_domain::Permission::TokensManage)?;
        let name = required_text("name", name, 100)?;
        if !permissions.is_subset_of(p.permissions) {
            return Err(ValidationError::new("permissions", "a token cannot hold permissions its creator lacks").into());
        }
        let (secret, cred) = Credential::issue_api(p.tenant);
        let row = ApiTokenRow {
            id: TokenId::new(),
            name,
            permissions,
            created_by: p.user,
            created_at: now_unix(),
            last_used_at: None,
            revoked_at: None,
        };
        let mut tx = self.store.tenant(p.tenant).write().await?;
        tx.insert_api_token(&cred.digest, &row).await?;
        let scope = json!({"name": row.name, "permissions": row.permissions.names()});
        tx.append_audit(&self.audit_key, &p.audit("token.create", Some(format!("token:{}", row.id)), scope)).await?;
        tx.commit().await?;
        Ok(NewToken { row, secret })
    }

    pub async fn list_tokens(&self, p: &Principal) -> Result<Vec<ApiTokenRow>, AccountError> {
        p.require(lacuna_domain::Permission::TokensManage)?;
        let mut tx = self.store.tenant(p.tenant).read().await?;
        Ok(tx.api_tokens().await?)
    }

    pub async fn revoke_token(&self, p: &Principal, id: TokenId) -> Result<(), AccountError> {
        p.require(lacuna_domain::Permission::TokensManage)?;
        let mut tx = self.store.tenant(p.tenant).write().await?;
        if !tx.revoke_api_token(id, now_unix()).await? {
            return Err(AccountError::NotFound);
        }
        tx.append_audit(&self.audit_key, &p.audit("token.revoke", Some(format!("token:{id}")), json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn hash(&self, password: &Password) -> Result<String, AccountError> {
        let hasher = self.hasher.clone();
        let pw = password.expose().to_string();
        tokio::task::spawn_blocking(move || hasher.hash(&pw))
            .await
            .map_err(|e| AccountError::Crypto(e.to_string()))?
            .map_err(|e| AccountError::Crypto(e.to_string()))
    }
}

pub(crate) fn map_email_conflict(e: lacuna_storage::StorageError) -> AccountError {
    match e {
        lacuna_storage::StorageError::Conflict(_) => AccountError::EmailTaken,
        other => other.into(),
    }
}

impl Accounts {
    /// How long a new session cookie lives (the absolute lifetime).
    pub fn session_lifetime_secs(&self) -> i64 {
        self.config.absolute_lifetime_secs
    }
}
