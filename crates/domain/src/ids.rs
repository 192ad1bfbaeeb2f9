//! Typed identifiers. A `TenantId` can never be passed where a `UserId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
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
    /// One practice (one business, one or more locations).
    TenantId
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
