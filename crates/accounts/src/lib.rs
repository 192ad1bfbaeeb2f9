//! Tenants, staff accounts, sessions, API tokens and members: the rules, not the transport.
//!
//! Credentials (session cookies, API tokens, invitations) are random secrets that name their
//! tenant in clear and are stored only as SHA-256 digests; a forged or altered one finds no row.
//! Every function that touches tenant data takes a [`Principal`] or a credential and works
//! through the tenant-scoped handle of `lacuna-storage`.

mod audit;
mod credentials;
mod error;
mod keys;
mod members;
mod mfa;
mod principal;
mod retention;
mod rotation;
mod service;
mod throttle;

pub use audit::ChainReport;
pub use credentials::Credential;
pub use error::AccountError;
pub use keys::{KEY_CACHE_TTL, Keyring};
pub use members::{MemberChange, NewMember};
pub use mfa::{Enrollment, MfaState, MfaStatus, STEP_UP_WINDOW_SECS};

pub use principal::{Principal, PrincipalKind, Profile, RequestMeta};
pub use retention::CANCELLED_RETENTION_DAYS;
pub use rotation::TenantRotation;
pub use service::{Accounts, AccountsConfig, IssuedSession, MeView, NewToken, SignupInput};
pub use throttle::Throttle;
