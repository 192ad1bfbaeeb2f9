//! Lacuna's domain vocabulary: typed ids, roles and permissions, validated values.
//!
//! This crate depends on nothing of ours and knows nothing about HTTP or SQL. Everything that
//! crosses a boundary (a request body, a database row) is turned into these types first, so
//! the rest of the code can rely on what they guarantee.

mod card;
mod ids;
mod pseudonyms;
mod rbac;
mod values;

pub use card::{contains_card_number, luhn_valid};
pub use ids::{
    AppointmentId, ClientId, LocationId, MessageId, PaymentId, PlanId, ProviderId, ServiceId, TenantId, TokenId,
    UserId, new_row_id,
};
pub use pseudonyms::rename_tokens;
pub use rbac::{MfaPolicy, Permission, PermissionSet, Role};
pub use values::{Email, Password, ValidationError, required_text};
