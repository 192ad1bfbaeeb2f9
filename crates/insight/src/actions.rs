//! Proposed actions and the practice's approval policy: what Insight may suggest doing about a
//! gap, and the rule that decides whether a person must approve it first.
//!
//! Nothing here sends, writes or contacts anyone. A [`Decision`] only says whether a proposal
//! waits for a person, is approved by the policy itself, or is not proposed at all; the caller
//! stores it, audits it, and only an approved action becomes a trigger to the Practice side.

use std::fmt;

use serde::Serialize;

use crate::gaps::{Gap, GapKind};

/// What Insight proposes doing about a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Invite a client whose treatment cycle has run out to book again.
    RebookNudge,
    /// Offer a freed slot to a client who is due.
    SlotFillOffer,
    /// Check in with a client after a treatment with a follow-up window.
    FollowUpCheckin,
    /// Remind a member of the unused value in their membership or package.
    MemberReminder,
}

impl ActionKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ActionKind; 4] =
        [ActionKind::RebookNudge, ActionKind::SlotFillOffer, ActionKind::FollowUpCheckin, ActionKind::MemberReminder];

    /// The wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::RebookNudge => "rebook_nudge",
            ActionKind::SlotFillOffer => "slot_fill_offer",
            ActionKind::FollowUpCheckin => "follow_up_checkin",
            ActionKind::MemberReminder => "member_reminder",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The action that answers a kind of gap.
    pub const fn for_gap(kind: GapKind) -> Self {
        match kind {
            GapKind::RebookDue => ActionKind::RebookNudge,
            GapKind::SlotFill => ActionKind::SlotFillOffer,
            GapKind::FollowUpDue => ActionKind::FollowUpCheckin,
            GapKind::LapsingMember => ActionKind::MemberReminder,
        }
    }

    /// In words, for a trigger ("send rebook nudge to p_… via the practice's channel").
    pub const fn words(self) -> &'static str {
        match self {
            ActionKind::RebookNudge => "rebook nudge",
            ActionKind::SlotFillOffer => "slot-fill offer",
            ActionKind::FollowUpCheckin => "follow-up check-in",
            ActionKind::MemberReminder => "membership reminder",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the practice wants one kind of action handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum PolicyMode {
    /// Never proposed.
    Off,
    /// Proposed, and waits until a member with `role` (or an owner) approves it.
    Approval {
        /// The role that approves (`owner`, `manager`, `front_desk`, `provider`).
        role: String,
    },
    /// Approved by the policy itself, up to `max_per_day` actions of this kind per UTC day and
    /// each worth at most `max_value_minor`; beyond either limit it waits for `role` like
    /// [`PolicyMode::Approval`].
    Auto {
        /// Auto-approvals per UTC day.
        max_per_day: u32,
        /// Largest revenue at stake (minor units) approved without a person.
        max_value_minor: i64,
        /// Who approves what the limits leave over.
        role: String,
    },
}

/// The policy for one kind of action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The action kind it governs.
    pub kind: ActionKind,
    /// How it is handled.
    #[serde(flatten)]
    pub mode: PolicyMode,
}

/// The role that approves by default: a practice manager (owners can always approve).
pub const DEFAULT_APPROVER: &str = "manager";

impl Policy {
    /// Until an owner says otherwise, every action waits for a manager or an owner.
    pub fn default_for(kind: ActionKind) -> Self {
        Self { kind, mode: PolicyMode::Approval { role: DEFAULT_APPROVER.to_string() } }
    }

    /// What happens to a new proposal worth `value_minor`, when `auto_approved_today` actions of
    /// this kind were already approved by the policy today.
    pub fn decide(&self, value_minor: i64, auto_approved_today: u32) -> Decision {
        match &self.mode {
            PolicyMode::Off => Decision::NotProposed,
            PolicyMode::Approval { .. } => Decision::AwaitApproval,
            PolicyMode::Auto { max_per_day, max_value_minor, .. } => {
                if auto_approved_today < *max_per_day && value_minor <= *max_value_minor {
                    Decision::AutoApprove
                } else {
                    Decision::AwaitApproval
                }
            }
        }
    }

    /// The role whose members may approve (owners always may); `None` when the kind is off.
    pub fn approver_role(&self) -> Option<&str> {
        match &self.mode {
            PolicyMode::Off => None,
            PolicyMode::Approval { role } | PolicyMode::Auto { role, .. } => Some(role),
        }
    }

    /// Whether a member with `role` may approve or decline this kind of action.
    pub fn may_decide(&self, role: &str) -> bool {
        role == "owner" || self.approver_role().is_some_and(|r| r == role)
    }
}

/// What the policy says about a new proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The kind is off: no action is created.
    NotProposed,
    /// Stored as proposed; nothing happens until a person approves it.
    AwaitApproval,
    /// Approved by the policy (within its daily count and value).
    AutoApprove,
}

/// A stable key for "the same gap": an action is proposed once per key until it is decided and a
/// cool-down has passed. Built from pseudonyms, category, slot and membership only.
pub fn gap_key(gap: &Gap) -> String {
    let mut key = format!("{}|{}", gap.kind.as_str(), gap.client.as_str());
    if let Some(c) = gap.service_category {
        key.push('|');
        key.push_str(c.as_str());
    }
    if let Some(slot) = &gap.slot {
        key.push_str("|slot:");
        if let Some(p) = &slot.provider {
            key.push_str(p.as_str());
            key.push('@');
        }
        key.push_str(&slot.starts_at.text());
    }
    if let Some(m) = &gap.membership {
        key.push('|');
        key.push_str(m.as_str());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(n: u32, value: i64) -> Policy {
        Policy {
            kind: ActionKind::RebookNudge,
            mode: PolicyMode::Auto { max_per_day: n, max_value_minor: value, role: "manager".into() },
        }
    }

    #[test]
    fn off_proposes_nothing_and_nobody_decides() {
        let p = Policy { kind: ActionKind::SlotFillOffer, mode: PolicyMode::Off };
        assert_eq!(p.decide(0, 0), Decision::NotProposed);
        assert!(!p.may_decide("manager"));
        assert!(p.may_decide("owner"), "owners may always decide what is already proposed");
    }

    #[test]
    fn approval_always_waits() {
        let p = Policy::default_for(ActionKind::RebookNudge);
        assert_eq!(p.decide(1, 0), Decision::AwaitApproval);
        assert!(p.may_decide("manager"));
        assert!(p.may_decide("owner"));
        assert!(!p.may_decide("front_desk"));
        assert!(!p.may_decide("provider"));
    }

    #[test]
    fn auto_approves_within_count_and_value_only() {
        let p = auto(2, 20_000);
        assert_eq!(p.decide(20_000, 0), Decision::AutoApprove);
        assert_eq!(p.decide(20_000, 1), Decision::AutoApprove);
        assert_eq!(p.decide(20_000, 2), Decision::AwaitApproval, "the daily count is spent");
        assert_eq!(p.decide(20_001, 0), Decision::AwaitApproval, "worth more than the limit");
        assert_eq!(auto(0, i64::MAX).decide(0, 0), Decision::AwaitApproval);
    }

    #[test]
    fn action_kinds_round_trip_and_answer_every_gap() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ActionKind::parse("send_everything"), None);
        let answered: std::collections::BTreeSet<_> = GapKind::ALL.into_iter().map(ActionKind::for_gap).collect();
        assert_eq!(answered.len(), GapKind::ALL.len());
    }
}
