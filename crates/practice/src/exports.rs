//! Exports: a practice's own data as flat tables (CSV in the HTTP layer). Every export is
//! recorded in `exports` (who, when, what, how many rows) and in the audit chain, in the same
//! transaction that reads the rows: an export that is not recorded does not happen.
//!
//! Client names and contact details are decrypted: the owner (or whoever holds the privileged
//! `exports.create` permission) is exporting their own practice's records.

use crate::clients::open_row;
use crate::{Practice, PracticeError, Result, TenantKeys};
use lacuna_accounts::Principal;
use lacuna_domain::Permission;
use lacuna_storage::now_unix;
use lacuna_storage::practice::exports::ExportRecord;

/// What can be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Clients,
    Services,
    Providers,
    Appointments,
    Transactions,
}

impl ExportKind {
    pub const ALL: &'static [ExportKind] = &[
        ExportKind::Clients,
        ExportKind::Services,
        ExportKind::Providers,
        ExportKind::Appointments,
        ExportKind::Transactions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ExportKind::Clients => "clients",
            ExportKind::Services => "services",
            ExportKind::Providers => "providers",
            ExportKind::Appointments => "appointments",
            ExportKind::Transactions => "transactions",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == s)
    }
}

/// A flat table: a header and rows of cells (already formatted; empty for absent values).
#[derive(Clone)]
pub struct ExportTable {
    pub kind: ExportKind,
    pub header: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

impl std::fmt::Debug for ExportTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Rows may hold personal data: never in a log line.
        f.debug_struct("ExportTable").field("kind", &self.kind).field("rows", &self.rows.len()).finish()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

impl Practice {
    /// Reads every row of one kind for the principal's tenant, records the export and audits it.
    pub async fn export(&self, p: &Principal, kind: ExportKind) -> Result<ExportTable> {
        p.require(Permission::ExportsCreate)?;
        let keys = self.keys(p.tenant).await?;
        let mut tx = self.write(p, Permission::ExportsCreate).await?;
        let (header, rows): (&'static [&'static str], Vec<Vec<String>>) = match kind {
            ExportKind::Clients => {
                let mut rows = Vec::new();
                for r in tx.all_clients().await? {
                    let c = open_row(&keys, &r)?;
                    rows.push(vec![
                        c.id.to_string(),
                        c.name,
                        opt(c.email),
                        opt(c.phone),
                        opt(c.birthday),
                        c.marketing_consent.to_string(),
                        opt(c.notes),
                        c.created_at.to_string(),
                        c.updated_at.to_string(),
                    ]);
                }
                (
                    &[
                        "id",
                        "name",
                        "email",
                        "phone",
                        "birthday",
                        "marketing_consent",
                        "notes",
                        "created_at",
                        "updated_at",
                    ],
                    rows,
                )
            }
            ExportKind::Services => (
                &[
                    "id",
                    "name",
                    "category",
                    "duration_min",
                    "buffer_min",
                    "price_minor",
                    "currency",
                    "cycle_days",
                    "follow_up_days",
                    "active",
                    "created_at",
                    "updated_at",
                ],
                tx.services()
                    .await?
                    .into_iter()
                    .map(|s| {
                        vec![
                            s.id.to_string(),
                            s.name,
                            s.category,
                            s.duration_min.to_string(),
                            s.buffer_min.to_string(),
                            s.price_minor.to_string(),
                            s.currency,
                            opt(s.cycle_days),
                            opt(s.follow_up_days),
                            s.active.to_string(),
                            s.created_at.to_string(),
                            s.updated_at.to_string(),
                        ]
                    })
                    .collect(),
            ),
            ExportKind::Providers => (
                &["id", "name", "user_id", "active", "created_at", "updated_at"],
                tx.providers()
                    .await?
                    .into_iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.name,
                            opt(r.user_id),
                            r.active.to_string(),
                            r.created_at.to_string(),
                            r.updated_at.to_string(),
                        ]
                    })
                    .collect(),
            ),
            ExportKind::Appointments => {
                let mut rows = Vec::new();
                for a in tx.export_appointments().await? {
                    let client_name = client_name(&keys, &a.client_id, Some(&a.client_name_ct))?;
                    rows.push(vec![
                        a.id,
                        a.client_id,
                        client_name,
                        a.provider_id,
                        a.provider_name,
                        a.service_id,
                        a.service_name,
                        a.location_id,
                        a.starts_at.to_string(),
                        a.ends_at.to_string(),
                        a.status,
                        opt(a.cancel_reason),
                        opt(a.cancelled_by),
                        a.price_minor.to_string(),
                        a.currency,
                        a.created_at.to_string(),
                    ]);
                }
                (
                    &[
                        "id",
                        "client_id",
                        "client_name",
                        "provider_id",
                        "provider_name",
                        "service_id",
                        "service_name",
                        "location_id",
                        "starts_at",
                        "ends_at",
                        "status",
                        "cancel_reason",
                        "cancelled_by",
                        "price_minor",
                        "currency",
                        "created_at",
                    ],
                    rows,
                )
            }
            ExportKind::Transactions => {
                let mut rows = Vec::new();
                for t in tx.export_payments().await? {
                    let client_name = match &t.client_id {
                        Some(id) => client_name(&keys, id, t.client_name_ct.as_deref())?,
                        None => String::new(),
                    };
                    rows.push(vec![
                        t.id,
                        t.kind,
                        opt(t.appointment_id),
                        opt(t.plan_id),
                        opt(t.refund_of),
                        opt(t.client_id),
                        client_name,
                        t.amount_minor.to_string(),
                        t.currency,
                        opt(t.payment_method),
                        opt(t.processor_customer),
                        opt(t.payment_intent),
                        t.status,
                        t.created_by,
                        t.created_at.to_string(),
                    ]);
                }
                (
                    &[
                        "id",
                        "kind",
                        "appointment_id",
                        "plan_id",
                        "refund_of",
                        "client_id",
                        "client_name",
                        "amount_minor",
                        "currency",
                        "payment_method",
                        "processor_customer",
                        "payment_intent",
                        "status",
                        "created_by",
                        "created_at",
                    ],
                    rows,
                )
            }
        };
        let record = ExportRecord {
            id: lacuna_domain::new_row_id(),
            actor: p.actor(),
            kind: kind.name().to_string(),
            row_count: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            created_at: now_unix(),
        };
        tx.insert_export(&record).await?;
        self.audit(
            &mut tx,
            p,
            "export.create",
            Some(format!("export:{}", record.id)),
            serde_json::json!({ "kind": record.kind, "rows": record.row_count }),
        )
        .await?;
        tx.commit().await?;
        Ok(ExportTable { kind, header, rows })
    }

    /// The tenant's export register, newest first.
    pub async fn exports(&self, p: &Principal) -> Result<Vec<ExportRecord>> {
        let mut tx = self.read(p, Permission::ExportsCreate).await?;
        Ok(tx.exports().await?)
    }
}

fn client_name(keys: &TenantKeys, client_id: &str, ct: Option<&[u8]>) -> Result<String> {
    match ct {
        Some(ct) => keys.open("clients", "name_ct", client_id, ct),
        None => Err(PracticeError::NotFound),
    }
}
