use lacuna_domain::{Permission, ValidationError};
use lacuna_storage::StorageError;

/// Everything an account operation can refuse. The HTTP layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    #[error("sign-in required")]
    Unauthenticated,
    #[error("this action needs the `{0}` permission")]
    Forbidden(Permission),
    #[error("not found")]
    NotFound,
    #[error("a tenant must keep at least one owner")]
    LastOwner,
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cryptography: {0}")]
    Crypto(String),
}
