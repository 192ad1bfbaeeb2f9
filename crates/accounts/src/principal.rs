use crate::AccountError;
use lacuna_domain::{Permission, PermissionSet, Role, TenantId, TokenId, UserId};
use lacuna_storage::audit::NewAuditEvent;

/// Who is making a request, authenticated, with what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    /// The member acting (for an API token: the member who created it).
    pub user: UserId,
    /// The member's role; `None` for an API token.
    pub role: Option<Role>,
    pub permissions: PermissionSet,
    pub kind: PrincipalKind,
    /// Where the request came from, for the audit trail.
    pub meta: RequestMeta,
    /// Second-factor state (default for API tokens: nothing owed).
    pub mfa: crate::MfaState,
    /// The practice is cancelled: reads and exports only.
    pub tenant_cancelled: bool,
    /// Who this is, as read during authentication (serves `GET /me` without another query).
    pub profile: Profile,
}

/// The acting member's details and their practice's name.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub email: String,
    pub role: Role,
    pub tenant_name: String,
}

/// Request facts recorded with every audit event.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum PrincipalKind {
    /// A browser session: unsafe methods must present this CSRF token.
    Session {
        digest: Vec<u8>,
        csrf_token: String,
    },
    ApiToken {
        id: TokenId,
    },
}

impl Principal {
    /// Deny by default: Ok only if the permission is held.
    pub fn require(&self, p: Permission) -> Result<(), AccountError> {
        if self.permissions.contains(p) { Ok(()) } else { Err(AccountError::Forbidden(p)) }
    }

    /// `user:<id>` or `token:<id>`: who the audit trail names.
    pub fn actor(&self) -> String {
        match &self.kind {
            PrincipalKind::Session { .. } => format!("user:{}", self.user),
            PrincipalKind::ApiToken { id } => format!("token:{id}"),
        }
    }

    /// An audit event by this principal.
    pub fn audit(&self, action: &str, target: Option<String>, scope: serde_json::Value) -> NewAuditEvent {
        NewAuditEvent {
            occurred_at: lacuna_storage::now_unix(),
            actor: self.actor(),
            actor_role: self.role.map(|r| r.name().to_string()),
            action: action.to_string(),
            target,
            scope: scope.to_string(),
            client_addr: self.meta.client_addr.clone(),
            request_id: self.meta.request_id.clone(),
        }
    }
}

impl RequestMeta {
    /// An audit event by someone not (yet) signed in.
    pub fn audit(
        &self,
        actor: String,
        role: Option<&str>,
        action: &str,
        target: Option<String>,
        scope: serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            occurred_at: lacuna_storage::now_unix(),
            actor,
            actor_role: role.map(str::to_string),
            action: action.to_string(),
            target,
            scope: scope.to_string(),
            client_addr: self.client_addr.clone(),
            request_id: self.request_id.clone(),
        }
    }
}
