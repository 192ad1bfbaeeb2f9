use lacuna_accounts::AccountError;
use lacuna_storage::StorageError;

use crate::RejectedEvent;

/// Everything an Insight operation can refuse. The HTTP layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    /// 422, naming the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 422: events the PHI guard refused (field and kind of identifier, never the value).
    #[error("{} event(s) refused by the PHI guard", .0.len())]
    Rejected(Vec<RejectedEvent>),
    /// 404: absent, or another tenant's.
    #[error("not found")]
    NotFound,
    /// 403 with a reason beyond a missing permission (e.g. the policy names another role).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 409: e.g. the action was decided already.
    #[error("{0}")]
    Conflict(String),
    /// Authentication and permission refusals, storage failures of the accounts layer.
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("internal: {0}")]
    Internal(String),
}

impl InsightError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.to_string(), message: message.into() }
    }
}
