//! Typed identifiers. A `TenantId` can never be passed where a `UserId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A fresh row id: a UUIDv7, its first 48 bits the creation time in milliseconds, then random
/// bits (ordered within the process). Time-ordered ids keep inserts at the right-hand end of every
/// index keyed by them, so a write dirties the same few pages as the writes just before it
/// instead of one random page per index, and a checkpoint or vacuum has fewer pages to write.
/// Ids are not secrets: no capability rests on one being unguessable (tokens and session ids
/// carry their own random secrets). A row id's creation time is its row's `created_at`, shown to
/// the same members who see the id; the tenant id, which travels further, stays random.
pub fn time_ordered() -> Uuid {
    Uuid::now_v7()
}

/// [`time_ordered`] as stored: hyphenated, lowercase.
pub fn new_row_id() -> String {
    time_ordered().hyphenated().to_string()
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        id_type!($(#[$meta])* $name, time_ordered);
    };
    ($(#[$meta:meta])* $name:ident, $fresh:path) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id (time-ordered unless said otherwise; see [`time_ordered`]).
            pub fn new() -> Self {
                Self($fresh())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Hyphenated lowercase: the form stored in the database.
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// One practice (one business, one or more locations). Random, not time-ordered: it travels
    /// in invitation links, session cookies and API tokens, and would tell whoever holds one when
    /// the practice signed up.
    TenantId,
    Uuid::new_v4
);
id_type!(
    /// A staff login identity.
    UserId
);
id_type!(
    /// An API token (the id, never the secret).
    TokenId
);
id_type!(
    /// A practice location.
    LocationId
);
id_type!(
    /// A client of the practice (a customer; data, not a user).
    ClientId
);
id_type!(
    /// A service on the practice's menu.
    ServiceId
);
id_type!(
    /// A provider (someone who performs services).
    ProviderId
);
id_type!(
    /// An appointment.
    AppointmentId
);
id_type!(
    /// A client's membership or package.
    PlanId
);
id_type!(
    /// A charge or refund.
    PaymentId
);
id_type!(
    /// A message in the outbox.
    MessageId
);

#[cfg(test)]
mod time_order_tests {
    use super::*;

    #[test]
    fn fresh_ids_sort_in_creation_order_and_differ() {
        let ids: Vec<AppointmentId> = (0..1000).map(|_| AppointmentId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids are not in creation order");
        let rows: Vec<String> = (0..1000).map(|_| new_row_id()).collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "row ids (as text) are not in creation order");
        assert_eq!(rows[0].len(), 36);
        assert_eq!(AppointmentId::new().as_uuid().get_version_num(), 7);
        assert_eq!(TenantId::new().as_uuid().get_version_num(), 4, "the tenant id stays random");
    }
}
