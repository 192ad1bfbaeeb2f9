//! Roles and named permissions. Deny by default: a member may do exactly what their role grants,
//! narrowed further by the owner if they chose to.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares the permissions once: the enum, `ALL` and the names cannot drift apart.
macro_rules! permissions {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal ),* $(,)?) => {
        /// One named permission. The name (e.g. `members.manage`) is what the API and the OpenAPI
        /// document use; every route declares the one it needs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $( $(#[$doc])* $variant ),*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[ $(Permission::$variant),* ];

            pub fn name(self) -> &'static str {
                match self {
                    $( Permission::$variant => $name ),*
                }
            }
        }
    };
}

permissions! {
    /// Read one's own account and tenant (`GET /me`).
    AccountRead = "account.read",
    /// List the tenant's members.
    MembersRead = "members.read",
    /// Invite, change role or permissions of, and remove members.
    MembersManage = "members.manage",
    /// Create, list and revoke API tokens.
    TokensManage = "tokens.manage",
    /// Read and export the tenant's audit trail.
    AuditRead = "audit.read",
    /// Change tenant-wide settings (e.g. the MFA policy).
    TenantSettings = "tenant.settings",
    /// See clients: search, profiles, visit history.
    ClientsRead = "clients.read",
    /// Add and edit clients.
    ClientsWrite = "clients.write",
    /// Manage the catalogue: locations, services, providers, working hours, time off.
    CatalogManage = "catalog.manage",
    /// See the calendar: appointments and availability.
    ScheduleRead = "schedule.read",
    /// Book, reschedule, cancel, complete appointments and mark no-shows.
    AppointmentsWrite = "appointments.write",
    /// Sell and redeem memberships and packages.
    PlansManage = "plans.manage",
    /// Record charges (processor tokens only).
    PaymentsWrite = "payments.write",
    /// Refund a charge (privileged, audited).
    PaymentsRefund = "payments.refund",
    /// See the message outbox and delivery attempts.
    MessagesRead = "messages.read",
    /// Download CSV exports (privileged, recorded).
    ExportsCreate = "exports.create",
    /// See and change every provider's appointments. Without it (the provider role's default), a
    /// member sees and changes only the appointments of the provider records linked to their
    /// login (`providers.user_id`); availability stays visible for everyone.
    ScheduleReadAll = "schedule.read_all",
    /// See Insight's gaps, proposed actions and triggers (pseudonyms only).
    InsightRead = "insight.read",
    /// Approve or decline proposed actions (as far as the approval policy allows the role).
    InsightApprove = "insight.approve",
    /// Set the approval policy and rotate the pseudonym key.
    InsightManage = "insight.manage",
    /// Send pseudonymous events to Insight (`POST /insight/events`, for an external system's token).
    InsightIngest = "insight.ingest",
}

impl Permission {
    fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Permission {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL.iter().copied().find(|p| p.name() == s).ok_or_else(|| UnknownName(s.to_string()))
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name `{0}`")]
pub struct UnknownName(pub String);

/// A set of permissions (a small bit set).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn of(perms: &[Permission]) -> Self {
        Self(perms.iter().fold(0, |acc, p| acc | p.bit()))
    }
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }
    pub fn is_subset_of(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }
    pub fn intersect(self, other: PermissionSet) -> Self {
        Self(self.0 & other.0)
    }
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| self.contains(*p))
    }
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::name).collect()
    }
    /// Stable storage form: comma-separated names.
    pub fn to_storage(self) -> String {
        self.names().join(",")
    }
    pub fn from_storage(s: &str) -> Result<Self, UnknownName> {
        let mut perms = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            perms.push(part.parse()?);
        }
        Ok(Self::of(&perms))
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A staff member's role in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Manager,
    Provider,
    FrontDesk,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Owner, Role::Manager, Role::Provider, Role::FrontDesk];

    /// What the role grants before any narrowing.
    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            Role::Owner => PermissionSet::of(Permission::ALL),
            Role::Manager => PermissionSet::of(&[
                AccountRead,
                MembersRead,
                ClientsRead,
                ClientsWrite,
                CatalogManage,
                ScheduleRead,
                ScheduleReadAll,
                AppointmentsWrite,
                PlansManage,
                PaymentsWrite,
                PaymentsRefund,
                MessagesRead,
                ExportsCreate,
                InsightRead,
                InsightApprove,
            ]),
            Role::Provider => PermissionSet::of(&[AccountRead, ClientsRead, ScheduleRead, AppointmentsWrite]),
            Role::FrontDesk => PermissionSet::of(&[
                AccountRead,
                ClientsRead,
                ClientsWrite,
                ScheduleRead,
                ScheduleReadAll,
                AppointmentsWrite,
                PlansManage,
                PaymentsWrite,
                MessagesRead,
                InsightRead,
            ]),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Provider => "provider",
            Role::FrontDesk => "front_desk",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.iter().copied().find(|r| r.name() == s).ok_or_else(|| UnknownName(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.name().parse::<Permission>(), Ok(*p));
        }
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(*r));
        }
        let all = PermissionSet::of(Permission::ALL);
        assert_eq!(PermissionSet::from_storage(&all.to_storage()), Ok(all));
        assert_eq!(PermissionSet::from_storage(""), Ok(PermissionSet::EMPTY));
        assert!(PermissionSet::from_storage("members.read,root").is_err());
    }

    #[test]
    fn owner_has_everything_and_others_are_subsets() {
        let owner = Role::Owner.permissions();
        for r in Role::ALL {
            assert!(r.permissions().is_subset_of(owner));
            assert!(r.permissions().contains(Permission::AccountRead));
        }
        assert!(!Role::FrontDesk.permissions().contains(Permission::MembersManage));
        // A provider sees only their own appointments unless the owner grants more.
        assert!(!Role::Provider.permissions().contains(Permission::ScheduleReadAll));
        assert!(Role::FrontDesk.permissions().contains(Permission::ScheduleReadAll));
    }

    #[test]
    fn permission_bits_fit() {
        assert!(Permission::ALL.len() <= 64);
    }
}

/// The tenant's MFA policy, set by an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    /// Members choose.
    Optional,
    /// Owners and managers must use MFA.
    OwnersManagers,
    /// Every member must use MFA.
    Everyone,
}

impl MfaPolicy {
    pub fn name(self) -> &'static str {
        match self {
            MfaPolicy::Optional => "optional",
            MfaPolicy::OwnersManagers => "owners_managers",
            MfaPolicy::Everyone => "everyone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [MfaPolicy::Optional, MfaPolicy::OwnersManagers, MfaPolicy::Everyone].into_iter().find(|p| p.name() == s)
    }

    /// Whether a member with this role must have MFA.
    pub fn requires(self, role: Role) -> bool {
        match self {
            MfaPolicy::Optional => false,
            MfaPolicy::OwnersManagers => matches!(role, Role::Owner | Role::Manager),
            MfaPolicy::Everyone => true,
        }
    }
}
