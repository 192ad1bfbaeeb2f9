//! Practice rows: clients, catalogue, appointments, plans, payments, outbox, exports,
//! idempotency keys. Personal fields arrive here already encrypted (`*_ct`) and blind-indexed
//! (`*_bidx`); this layer never sees them in plain text. Every query binds the tenant as `$1`.

pub mod appointments;
pub mod bulk;
pub mod catalog;
pub mod clients;
pub mod exports;
pub mod idempotency;
pub mod insight_outbox;
pub mod insight_triggers;
pub mod outbox;
pub mod payments;
pub mod plans;

use crate::StorageError;

pub(crate) fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

pub(crate) fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> crate::Result<T> {
    s.parse().map_err(|_| corrupt(what))
}

/// Every column that holds a ciphertext under the tenant's data key, with its table's id column.
/// Key rotation walks this list; a new encrypted column must be added here (a test checks that
/// every `*_ct` column of the schema is listed).
pub const ENCRYPTED_COLUMNS: &[(&str, &str, &str)] = &[
    ("clients", "id", "name_ct"),
    ("clients", "id", "email_ct"),
    ("clients", "id", "phone_ct"),
    ("clients", "id", "birthday_ct"),
    ("clients", "id", "notes_ct"),
    ("outbox", "id", "payload_ct"),
    ("idempotency_keys", "idem_key", "response_ct"),
    ("trigger_endpoints", "tenant_id", "secret_ct"),
];

/// The associated data sealed with a field: a ciphertext is bound to its tenant, table, column
/// and row, so it cannot be moved to another row or field without failing to decrypt.
pub fn field_context(tenant: &crate::TenantId, table: &str, column: &str, row_id: &str) -> Vec<u8> {
    format!("lacuna field v1|{tenant}|{table}.{column}|{row_id}").into_bytes()
}

impl crate::TenantTx {
    /// Every non-null value of one encrypted column (from [`ENCRYPTED_COLUMNS`]) with its row id.
    pub async fn encrypted_values(&mut self, column: (&str, &str, &str)) -> crate::Result<Vec<(String, Vec<u8>)>> {
        let (table, id, col) = checked(column)?;
        let sql = format!("SELECT {id}, {col} FROM {table} WHERE tenant_id = $1 AND {col} IS NOT NULL");
        let t = self.tenant_str.clone();
        Ok(crate::tx::on_conn!(self, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&t).fetch_all(c).await)?)
    }

    /// Replaces one encrypted value (re-encryption under a newer key version).
    pub async fn replace_encrypted_value(
        &mut self,
        column: (&str, &str, &str),
        row_id: &str,
        ct: &[u8],
    ) -> crate::Result<()> {
        let (table, id, col) = checked(column)?;
        let sql = format!("UPDATE {table} SET {col} = $3 WHERE tenant_id = $1 AND {id} = $2");
        let t = self.tenant_str.clone();
        crate::tx::on_conn!(self, c => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&t).bind(row_id).bind(ct)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// Only the listed columns may be interpolated into SQL.
fn checked<'a>(column: (&'a str, &'a str, &'a str)) -> crate::Result<(&'a str, &'a str, &'a str)> {
    if ENCRYPTED_COLUMNS.contains(&column) { Ok(column) } else { Err(corrupt("not an encrypted column")) }
}
