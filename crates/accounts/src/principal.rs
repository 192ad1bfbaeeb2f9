use crate::AccountError;
use lacuna_domain::{Permission, PermissionSet, Role, TenantId, TokenId, UserId};

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
}
