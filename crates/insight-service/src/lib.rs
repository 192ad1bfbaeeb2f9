//! Insight at work. [`InsightService`] keeps one [`GapEngine`] per tenant warm over Insight's own
//! store, answers the gap list, turns gaps into proposed actions under the practice's approval
//! policy, records who approved or declined what (in the tenant's audit trail), and hands
//! approved actions on as *triggers* for the Practice side to carry out.
//!
//! It holds pseudonyms only. It depends on the Insight boundary crate, on Insight's store and on
//! the accounts layer (for principals, permissions and the audit trail) — never on Practice: the
//! mapping from a pseudonym to a person exists only on the other side of a trigger.
//!
//! Every event, from the Practice feed or from an external system's `POST /insight/events`, passes
//! the [`PhiGuard`] before it is stored, and again when an engine replays the store.

mod error;

pub use error::InsightError;

use lacuna_accounts::{Accounts, Principal, RequestMeta};
use lacuna_domain::{Permission, Role, TenantId, rename_tokens};
use lacuna_insight::{
    ActionKind, Decision, Gap, GapEngine, GapKind, PhiGuard, Policy, PolicyMode, ServiceCategory, Timestamp, gap_key,
};
use lacuna_storage::insight::{ActionRow, InsightStore, StoredEvent, TriggerRow};
use lacuna_storage::now_unix;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub type Result<T, E = InsightError> = std::result::Result<T, E>;

/// A gap is proposed again only this long after its last action was decided.
pub const PROPOSAL_COOLDOWN_SECS: i64 = 30 * 86_400;
/// At most this many new actions of one kind per proposal run (the best-scored gaps first), so
/// an inbox fills at a pace people can work through.
pub const PROPOSALS_PER_KIND_PER_RUN: usize = 25;
/// Largest batch `POST /insight/events` accepts.
pub const MAX_INGEST_BATCH: usize = 1000;

/// A warm engine and how far it has read the store.
struct Cached {
    engine: GapEngine,
    /// Newest `received_at` read so far; `None` before the first load.
    watermark: Option<i64>,
    /// Event ids read at exactly `watermark` (so a re-read of that second skips them unparsed).
    at_watermark: HashSet<String>,
}

struct Inner {
    store: InsightStore,
    guard: Arc<PhiGuard>,
    accounts: Accounts,
    engines: std::sync::Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<Cached>>>>,
}

/// The Insight service. Cheap to clone.
#[derive(Clone)]
pub struct InsightService {
    inner: Arc<Inner>,
}

/// What `POST /insight/events` did with a batch.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Events new to Insight.
    pub accepted: u64,
    /// Events already known (same event id): accepted again as no-ops.
    pub duplicates: u64,
}

/// One refused event of a batch: where, which field, what it looked like (never the value).
#[derive(Debug, Clone, Serialize)]
pub struct RejectedEvent {
    pub index: usize,
    pub field: String,
    /// The kind of identifier the value looked like (`Email`, `Phone`, `FreeText`, `Malformed`…).
    pub kind: String,
    pub message: String,
}

/// Filters of the gap list.
#[derive(Debug, Clone, Default)]
pub struct GapQuery {
    pub kind: Option<GapKind>,
    pub category: Option<ServiceCategory>,
    pub min_score: Option<f64>,
    pub limit: usize,
}

/// Count and revenue at stake of one kind of gap.
#[derive(Debug, Clone, Serialize)]
pub struct KindTotal {
    pub kind: GapKind,
    pub count: u64,
    pub revenue_at_stake_minor: i64,
}

/// A gap with its key and the action it became, if any.
#[derive(Debug, Clone, Serialize)]
pub struct GapView {
    /// Stable identity of the gap (what an action refers to).
    pub key: String,
    /// The action that would answer it.
    pub action_kind: ActionKind,
    #[serde(flatten)]
    pub gap: Gap,
    /// The latest action proposed for it, if any: `(id, status)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionRef {
    pub id: String,
    pub status: String,
}

/// The gap list: totals over everything that matched, and the best `limit` gaps.
#[derive(Debug, Clone, Serialize)]
pub struct GapList {
    pub as_of: String,
    pub total: u64,
    pub revenue_at_stake_minor: i64,
    pub by_kind: Vec<KindTotal>,
    pub gaps: Vec<GapView>,
}

/// A proposed, approved or declined action.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    pub id: String,
    pub kind: ActionKind,
    pub status: String,
    pub client: String,
    pub gap_key: String,
    pub gap: Value,
    pub revenue_at_stake_minor: i64,
    pub score: f64,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// What one proposal run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProposeReport {
    pub proposed: u64,
    pub auto_approved: u64,
}

/// A trigger on its way to the Practice side: the action to carry out for one pseudonym.
#[derive(Debug, Clone, Serialize)]
pub struct Trigger {
    pub id: String,
    pub action_id: String,
    pub kind: ActionKind,
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_category: Option<String>,
    /// For a slot-fill offer: the slot's start (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_starts_at: Option<String>,
    /// "send rebook nudge to p_… via the practice's channel".
    pub instruction: String,
}

impl InsightService {
    pub fn new(store: InsightStore, guard: Arc<PhiGuard>, accounts: Accounts) -> Self {
        Self { inner: Arc::new(Inner { store, guard, accounts, engines: Default::default() }) }
    }

    pub fn store(&self) -> &InsightStore {
        &self.inner.store
    }

    pub fn guard(&self) -> &PhiGuard {
        &self.inner.guard
    }

    // ---- events -------------------------------------------------------------------------------

    /// Events from an external practice system (`POST /insight/events`), all or nothing: every
    /// event passes the PHI guard or the whole batch is refused, each refusal counted and logged
    /// by field and kind of identifier, never by value.
    pub async fn ingest(&self, p: &Principal, raw: &[Value]) -> Result<IngestReport> {
        p.require(Permission::InsightIngest)?;
        if raw.is_empty() || raw.len() > MAX_INGEST_BATCH {
            return Err(InsightError::invalid("events", format!("send 1 to {MAX_INGEST_BATCH} events")));
        }
        let mut accepted = Vec::with_capacity(raw.len());
        let mut rejected = Vec::new();
        for (index, value) in raw.iter().enumerate() {
            match self.inner.guard.check(value) {
                Ok(e) => accepted.push(StoredEvent {
                    event_id: e.event_id.as_str().to_string(),
                    kind: e.kind.as_str().to_string(),
                    occurred_at: e.occurred_at.unix_seconds(),
                    body: serde_json::to_string(&e).map_err(|e| InsightError::Internal(e.to_string()))?,
                }),
                Err(r) => {
                    self.inner.store.count_rejection(p.tenant, r.kind().as_str()).await?;
                    rejected.push(RejectedEvent {
                        index,
                        field: r.field().to_string(),
                        kind: r.kind().as_str().to_string(),
                        message: r.to_string(),
                    });
                }
            }
        }
        if !rejected.is_empty() {
            return Err(InsightError::Rejected(rejected));
        }
        let n = self.inner.store.append(p.tenant, &accepted, now_unix()).await?;
        Ok(IngestReport { accepted: n, duplicates: accepted.len() as u64 - n })
    }

    /// The PHI guard's refusals for this tenant, by kind of identifier.
    pub async fn rejections(&self, p: &Principal) -> Result<Vec<(String, i64)>> {
        p.require(Permission::InsightRead)?;
        Ok(self.inner.store.rejections(p.tenant).await?)
    }

    /// The tenant's engine, caught up with the store.
    async fn engine(&self, tenant: TenantId) -> Result<tokio::sync::OwnedMutexGuard<Cached>> {
        let slot = {
            let mut map =
                self.inner.engines.lock().map_err(|_| InsightError::Internal("engine map poisoned".into()))?;
            map.entry(tenant)
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(Cached {
                        engine: GapEngine::new(),
                        watermark: None,
                        at_watermark: HashSet::new(),
                    }))
                })
                .clone()
        };
        let mut cached = slot.lock_owned().await;
        self.catch_up(tenant, &mut cached).await?;
        Ok(cached)
    }

    async fn catch_up(&self, tenant: TenantId, cached: &mut Cached) -> Result<()> {
        let since = cached.watermark.unwrap_or(i64::MIN);
        let rows = self.inner.store.events_received_since(tenant, since).await?;
        let mut newest = since;
        let mut at_newest = HashSet::new();
        for (stored, received) in rows {
            if received > newest {
                newest = received;
                at_newest.clear();
            }
            if received == newest {
                at_newest.insert(stored.event_id.clone());
            }
            if received == since && cached.at_watermark.contains(&stored.event_id) {
                continue;
            }
            match self.inner.guard.check_json(&stored.body) {
                Ok(event) => {
                    cached.engine.apply(&event);
                }
                Err(r) => tracing::warn!(
                    %tenant,
                    field = r.field(),
                    kind = %r.kind(),
                    "stored event no longer passes the PHI guard; skipped"
                ),
            }
        }
        if newest == since {
            cached.at_watermark.extend(at_newest);
        } else {
            cached.at_watermark = at_newest;
        }
        cached.watermark = Some(newest);
        Ok(())
    }

    /// Forgets a tenant's warm engine (after a pseudonym rotation rewrote its history).
    fn forget(&self, tenant: TenantId) {
        if let Ok(mut map) = self.inner.engines.lock() {
            map.remove(&tenant);
        }
    }

    // ---- gaps ---------------------------------------------------------------------------------

    /// Current gaps with totals of revenue at stake; pseudonyms only.
    pub async fn gaps(&self, p: &Principal, q: &GapQuery) -> Result<GapList> {
        p.require(Permission::InsightRead)?;
        let now = now_timestamp()?;
        let gaps = self.engine(p.tenant).await?.engine.gaps(&now);
        let actions = self.latest_actions(p.tenant).await?;
        let mut by_kind: BTreeMap<GapKind, (u64, i64)> = GapKind::ALL.into_iter().map(|k| (k, (0, 0))).collect();
        let mut total = 0u64;
        let mut revenue = 0i64;
        let mut views = Vec::new();
        for gap in gaps {
            if q.kind.is_some_and(|k| k != gap.kind)
                || q.category.is_some_and(|c| Some(c) != gap.service_category)
                || q.min_score.is_some_and(|m| gap.score < m)
            {
                continue;
            }
            total += 1;
            revenue = revenue.saturating_add(gap.revenue_at_stake_minor);
            let e = by_kind.entry(gap.kind).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(gap.revenue_at_stake_minor);
            if views.len() < q.limit {
                let key = gap_key(&gap);
                let action = actions.get(&key).cloned();
                views.push(GapView { key, action_kind: ActionKind::for_gap(gap.kind), gap, action });
            }
        }
        Ok(GapList {
            as_of: now.to_string(),
            total,
            revenue_at_stake_minor: revenue,
            by_kind: by_kind
                .into_iter()
                .map(|(kind, (count, revenue_at_stake_minor))| KindTotal { kind, count, revenue_at_stake_minor })
                .collect(),
            gaps: views,
        })
    }

    /// The newest action per gap key (recent ones and all still proposed).
    async fn latest_actions(&self, tenant: TenantId) -> Result<HashMap<String, ActionRef>> {
        let rows = self.inner.store.actions(tenant, None, None, 5_000).await?;
        let mut map = HashMap::new();
        for a in rows {
            // Newest first: keep the first seen per key.
            map.entry(a.gap_key).or_insert(ActionRef { id: a.id, status: a.status });
        }
        Ok(map)
    }

    // ---- policy -------------------------------------------------------------------------------

    /// The approval policy for every action kind (defaults filled in).
    pub async fn policies(&self, p: &Principal) -> Result<Vec<Policy>> {
        p.require(Permission::InsightRead)?;
        self.load_policies(p.tenant).await
    }

    async fn load_policies(&self, tenant: TenantId) -> Result<Vec<Policy>> {
        let stored: HashMap<String, String> = self.inner.store.policies(tenant).await?.into_iter().collect();
        Ok(ActionKind::ALL
            .into_iter()
            .map(|kind| {
                stored
                    .get(kind.as_str())
                    .and_then(|body| parse_mode(&serde_json::from_str(body).unwrap_or(Value::Null)).ok())
                    .map(|mode| Policy { kind, mode })
                    .unwrap_or_else(|| Policy::default_for(kind))
            })
            .collect())
    }

    /// Sets the policy for one action kind (owners: `insight.manage`), audited.
    pub async fn set_policy(&self, p: &Principal, kind: &str, mode: &Value) -> Result<Policy> {
        p.require(Permission::InsightManage)?;
        let kind = ActionKind::parse(kind).ok_or_else(|| {
            InsightError::invalid("kind", "must be rebook_nudge, slot_fill_offer, follow_up_checkin or member_reminder")
        })?;
        let mode = parse_mode(mode)?;
        let policy = Policy { kind, mode };
        let body = serde_json::to_value(&policy).map_err(|e| InsightError::Internal(e.to_string()))?;
        self.audit(p, "insight.policy.set", Some(format!("action_kind:{kind}")), body.clone()).await?;
        self.inner.store.set_policy(p.tenant, kind.as_str(), &body.to_string(), &p.actor(), now_unix()).await?;
        Ok(policy)
    }

    // ---- actions ------------------------------------------------------------------------------

    /// Turns current gaps into proposed actions under the policy: a kind that is off proposes
    /// nothing; within an auto-approval's limits the action is approved by the policy (audited,
    /// actor `policy`) and its trigger queued; otherwise it waits for a person. A gap already
    /// proposed, or decided within [`PROPOSAL_COOLDOWN_SECS`], is not proposed again.
    pub async fn propose(&self, tenant: TenantId) -> Result<ProposeReport> {
        let now = now_unix();
        let now_ts = now_timestamp()?;
        let gaps = self.engine(tenant).await?.engine.gaps(&now_ts);
        let policies: HashMap<ActionKind, Policy> =
            self.load_policies(tenant).await?.into_iter().map(|p| (p.kind, p)).collect();
        let taken: HashSet<String> = self
            .inner
            .store
            .recent_action_keys(tenant, now - PROPOSAL_COOLDOWN_SECS)
            .await?
            .into_iter()
            .map(|(key, _, _)| key)
            .collect();
        let day_start = now - now.rem_euclid(86_400);
        let mut auto_today: HashMap<ActionKind, u32> = HashMap::new();
        for kind in ActionKind::ALL {
            let n = self.inner.store.auto_approved_since(tenant, kind.as_str(), day_start).await?;
            auto_today.insert(kind, u32::try_from(n).unwrap_or(u32::MAX));
        }
        let mut per_kind: HashMap<ActionKind, usize> = HashMap::new();
        let (mut actions, mut triggers, mut audits) = (Vec::new(), Vec::new(), Vec::new());
        let mut report = ProposeReport::default();
        for gap in gaps {
            let kind = ActionKind::for_gap(gap.kind);
            let key = gap_key(&gap);
            if taken.contains(&key) {
                continue;
            }
            let count = per_kind.entry(kind).or_default();
            if *count >= PROPOSALS_PER_KIND_PER_RUN {
                continue;
            }
            let policy = policies.get(&kind).cloned().unwrap_or_else(|| Policy::default_for(kind));
            let today = auto_today.entry(kind).or_default();
            let decision = policy.decide(gap.revenue_at_stake_minor, *today);
            if decision == Decision::NotProposed {
                continue;
            }
            *count += 1;
            let mut row = action_row(&gap, kind, key, now)?;
            if decision == Decision::AutoApprove {
                *today += 1;
                row.status = "approved".into();
                row.decided_at = Some(now);
                row.decided_by = Some("policy".into());
                triggers.push(trigger_row(&row, &gap, now)?);
                audits.push(RequestMeta::default().audit(
                    "policy".into(),
                    None,
                    "insight.action.auto_approve",
                    Some(format!("insight_action:{}", row.id)),
                    json!({"kind": kind, "revenue_at_stake_minor": row.value_minor}),
                ));
                report.auto_approved += 1;
            } else {
                report.proposed += 1;
            }
            actions.push(row);
        }
        if actions.is_empty() {
            return Ok(report);
        }
        // Audit first: an approval the trail does not show must not exist.
        if !audits.is_empty() {
            let mut tx = self.inner.accounts.store().tenant(tenant).write().await?;
            tx.append_audit_batch(self.inner.accounts.keyring().audit_key(), &audits).await?;
            tx.commit().await?;
        }
        self.inner.store.insert_actions(tenant, &actions, &triggers).await?;
        Ok(report)
    }

    /// [`Self::propose`] on behalf of a member (`insight.approve`): "look again now".
    pub async fn propose_now(&self, p: &Principal) -> Result<ProposeReport> {
        p.require(Permission::InsightApprove)?;
        self.propose(p.tenant).await
    }

    /// Actions, newest first.
    pub async fn actions(
        &self,
        p: &Principal,
        status: Option<&str>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ActionView>> {
        p.require(Permission::InsightRead)?;
        if let Some(s) = status
            && !["proposed", "approved", "declined"].contains(&s)
        {
            return Err(InsightError::invalid("status", "must be proposed, approved or declined"));
        }
        if let Some(k) = kind
            && ActionKind::parse(k).is_none()
        {
            return Err(InsightError::invalid("kind", "is not an action kind"));
        }
        let rows = self.inner.store.actions(p.tenant, status, kind, limit.clamp(1, 1000)).await?;
        Ok(rows.into_iter().filter_map(action_view).collect())
    }

    /// Approves (`approve = true`) or declines a proposed action. Needs `insight.approve` and a
    /// member whose role the policy names (owners always); API tokens cannot decide. Audited with
    /// who and when before it takes effect; an approval queues the action's trigger.
    pub async fn decide(&self, p: &Principal, id: &str, approve: bool) -> Result<ActionView> {
        p.require(Permission::InsightApprove)?;
        let role = p.role.ok_or(InsightError::Forbidden(
            "an approval needs a signed-in member; API tokens cannot approve or decline",
        ))?;
        let row = self.inner.store.action(p.tenant, id).await?.ok_or(InsightError::NotFound)?;
        let kind = ActionKind::parse(&row.kind).ok_or(InsightError::NotFound)?;
        if row.status != "proposed" {
            return Err(InsightError::Conflict(format!("this action was already {}", row.status)));
        }
        let policy = self
            .load_policies(p.tenant)
            .await?
            .into_iter()
            .find(|pol| pol.kind == kind)
            .unwrap_or_else(|| Policy::default_for(kind));
        if !policy.may_decide(role.name()) {
            return Err(InsightError::Forbidden("the approval policy names another role for this kind of action"));
        }
        let now = now_unix();
        let status = if approve { "approved" } else { "declined" };
        let trigger = if approve {
            let gap: Value = serde_json::from_str(&row.gap).unwrap_or(Value::Null);
            Some(trigger_row_from_json(&row, &gap, now))
        } else {
            None
        };
        self.audit(
            p,
            if approve { "insight.action.approve" } else { "insight.action.decline" },
            Some(format!("insight_action:{}", row.id)),
            json!({"kind": kind, "revenue_at_stake_minor": row.value_minor}),
        )
        .await?;
        if !self.inner.store.decide_action(p.tenant, id, status, &p.actor(), now, trigger.as_ref()).await? {
            return Err(InsightError::Conflict("someone decided this action first".into()));
        }
        let row = self.inner.store.action(p.tenant, id).await?.ok_or(InsightError::NotFound)?;
        action_view(row).ok_or(InsightError::NotFound)
    }

    // ---- triggers -----------------------------------------------------------------------------

    /// Triggers not yet handed to the Practice side, oldest first.
    pub async fn pending_triggers(&self, tenant: TenantId, limit: i64) -> Result<Vec<Trigger>> {
        let rows = self.inner.store.triggers(tenant, Some("pending"), limit).await?;
        Ok(rows.into_iter().filter_map(trigger_view).collect())
    }

    /// Triggers with their outcome, newest decisions included (for the inbox and tests).
    pub async fn triggers(&self, p: &Principal, limit: i64) -> Result<Vec<(Trigger, String, Option<String>)>> {
        p.require(Permission::InsightRead)?;
        let rows = self.inner.store.triggers(p.tenant, None, limit.clamp(1, 1000)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let (status, outcome) = (r.status.clone(), r.outcome.clone());
                trigger_view(r).map(|t| (t, status, outcome))
            })
            .collect())
    }

    /// Records what the Practice side did with a trigger (`delivered` with an outcome such as
    /// `queued` or `no_consent`, or `failed`).
    pub async fn finish_trigger(&self, tenant: TenantId, id: &str, status: &str, outcome: &str) -> Result<()> {
        Ok(self.inner.store.finish_trigger(tenant, id, status, outcome, now_unix()).await?)
    }

    // ---- pseudonym rotation -------------------------------------------------------------------

    /// Carries Insight's history over to new pseudonyms: `map` (old → new, from the Practice
    /// side, which alone holds the keys) is applied to every stored event, action and trigger in
    /// one transaction, and the warm engine is rebuilt from the rewritten store. Insight learns
    /// nothing about anyone: it only swaps one opaque token for another. Returns rows rewritten.
    pub async fn apply_pseudonym_map(&self, p: &Principal, map: &HashMap<String, String>) -> Result<u64> {
        p.require(Permission::InsightManage)?;
        let rename = |s: &str| rename_tokens(s, map);
        let n = self.inner.store.rewrite_pseudonyms(p.tenant, &rename, &rename).await?;
        self.forget(p.tenant);
        self.audit(p, "insight.pseudonyms.remap", None, json!({"pseudonyms": map.len(), "rows": n})).await?;
        Ok(n)
    }

    async fn audit(&self, p: &Principal, action: &str, target: Option<String>, scope: Value) -> Result<()> {
        let mut tx = self.inner.accounts.store().tenant(p.tenant).write().await?;
        tx.append_audit(self.inner.accounts.keyring().audit_key(), &p.audit(action, target, scope)).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn now_timestamp() -> Result<Timestamp> {
    Timestamp::from_unix_seconds(now_unix()).ok_or_else(|| InsightError::Internal("clock out of range".into()))
}

/// Parses a policy mode: `{"mode":"off"}`, `{"mode":"approval","role":"manager"}` or
/// `{"mode":"auto","max_per_day":20,"max_value_minor":40000,"role":"manager"}`.
fn parse_mode(v: &Value) -> Result<PolicyMode> {
    let obj = v.as_object().ok_or_else(|| InsightError::invalid("mode", "send an object with a mode"))?;
    for key in obj.keys() {
        if !["mode", "role", "max_per_day", "max_value_minor", "kind"].contains(&key.as_str()) {
            return Err(InsightError::invalid(key, "is not a policy field"));
        }
    }
    let role = || -> Result<String> {
        let r = obj.get("role").and_then(Value::as_str).unwrap_or(lacuna_insight::actions::DEFAULT_APPROVER);
        r.parse::<Role>()
            .map(|r| r.name().to_string())
            .map_err(|_| InsightError::invalid("role", "must be owner, manager, provider or front_desk"))
    };
    match obj.get("mode").and_then(Value::as_str) {
        Some("off") => Ok(PolicyMode::Off),
        Some("approval") => Ok(PolicyMode::Approval { role: role()? }),
        Some("auto") => {
            let max_per_day = obj
                .get("max_per_day")
                .and_then(Value::as_u64)
                .filter(|n| *n <= 10_000)
                .ok_or_else(|| InsightError::invalid("max_per_day", "must be a whole number from 0 to 10000"))?;
            let max_value_minor =
                obj.get("max_value_minor").and_then(Value::as_i64).filter(|n| *n >= 0).ok_or_else(|| {
                    InsightError::invalid("max_value_minor", "must be a whole number of minor units ≥ 0")
                })?;
            Ok(PolicyMode::Auto { max_per_day: max_per_day as u32, max_value_minor, role: role()? })
        }
        _ => Err(InsightError::invalid("mode", "must be off, approval or auto")),
    }
}

fn action_row(gap: &Gap, kind: ActionKind, key: String, now: i64) -> Result<ActionRow> {
    Ok(ActionRow {
        id: lacuna_domain::new_row_id(),
        gap_key: key,
        kind: kind.as_str().to_string(),
        client: gap.client.as_str().to_string(),
        gap: serde_json::to_string(gap).map_err(|e| InsightError::Internal(e.to_string()))?,
        value_minor: gap.revenue_at_stake_minor,
        score: gap.score,
        status: "proposed".into(),
        created_at: now,
        decided_at: None,
        decided_by: None,
    })
}

fn trigger_row(row: &ActionRow, gap: &Gap, now: i64) -> Result<TriggerRow> {
    let gap = serde_json::to_value(gap).map_err(|e| InsightError::Internal(e.to_string()))?;
    Ok(trigger_row_from_json(row, &gap, now))
}

/// The trigger of an approved action: only what the Practice side needs to act.
fn trigger_row_from_json(row: &ActionRow, gap: &Value, now: i64) -> TriggerRow {
    let kind = ActionKind::parse(&row.kind).unwrap_or(ActionKind::RebookNudge);
    let id = lacuna_domain::new_row_id();
    let body = json!({
        "trigger_id": id,
        "action_id": row.id,
        "action_kind": kind,
        "client": row.client,
        "service_category": gap.get("service_category"),
        "slot_starts_at": gap.get("slot").and_then(|s| s.get("starts_at")),
        "instruction": format!("send {} to {} via the practice's channel", kind.words(), row.client),
    });
    TriggerRow {
        id,
        action_id: row.id.clone(),
        kind: row.kind.clone(),
        client: row.client.clone(),
        body: body.to_string(),
        status: "pending".into(),
        created_at: now,
        delivered_at: None,
        outcome: None,
    }
}

fn trigger_view(r: TriggerRow) -> Option<Trigger> {
    let body: Value = serde_json::from_str(&r.body).ok()?;
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Trigger {
        kind: ActionKind::parse(&r.kind)?,
        instruction: text("instruction").unwrap_or_default(),
        service_category: text("service_category"),
        slot_starts_at: text("slot_starts_at"),
        id: r.id,
        action_id: r.action_id,
        client: r.client,
    })
}

fn action_view(r: ActionRow) -> Option<ActionView> {
    Some(ActionView {
        kind: ActionKind::parse(&r.kind)?,
        gap: serde_json::from_str(&r.gap).unwrap_or(Value::Null),
        id: r.id,
        status: r.status,
        client: r.client,
        gap_key: r.gap_key,
        revenue_at_stake_minor: r.value_minor,
        score: r.score,
        created_at: r.created_at,
        decided_at: r.decided_at,
        decided_by: r.decided_by,
    })
}
