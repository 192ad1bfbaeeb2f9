use lacuna_accounts::AccountError;
use lacuna_domain::ValidationError;
use lacuna_storage::StorageError;

/// Everything a practice operation can refuse. The HTTP layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum PracticeError {
    /// 422, naming the field.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// 404: absent, or another tenant's (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// 409: the request is valid but collides with the current state (e.g. the slot was taken).
    #[error("{message}")]
    Conflict { code: &'static str, field: Option<&'static str>, message: String },
    /// Authentication and permission refusals, storage and crypto failures from the accounts layer.
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cryptography: {0}")]
    Crypto(String),
    /// 422: a field holds an identifier or clinical content and the practice rejects such notes.
    /// Carries the field and the kind, never the value.
    #[error("{field} hold non-clinical information only; this looks like it contains: {kind}")]
    PhiRejected { field: &'static str, kind: &'static str },
}

impl PracticeError {
    pub fn conflict(code: &'static str, field: Option<&'static str>, message: impl Into<String>) -> Self {
        Self::Conflict { code, field, message: message.into() }
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(ValidationError::new(field, message))
    }
}
