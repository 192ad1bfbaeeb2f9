//! Client rows. Name, email, phone, birthday and notes are ciphertexts under the tenant's data
//! key; `email_bidx` / `phone_bidx` are keyed HMACs for exact lookups.

use super::parse_id;
use crate::tx::on_conn;
use crate::{Result, TenantTx};
use lacuna_domain::ClientId;

/// A client as stored: personal fields encrypted.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: ClientId,
    pub name_ct: Vec<u8>,
    pub email_ct: Option<Vec<u8>>,
    pub phone_ct: Option<Vec<u8>>,
    pub birthday_ct: Option<Vec<u8>>,
    pub notes_ct: Option<Vec<u8>>,
    pub email_bidx: Option<Vec<u8>>,
    pub phone_bidx: Option<Vec<u8>>,
    pub marketing_consent: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

type ClientTuple = (
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    bool,
    i64,
    i64,
);

const COLUMNS: &str = "id, name_ct, email_ct, phone_ct, birthday_ct, notes_ct, email_bidx, phone_bidx, \
     marketing_consent, created_at, updated_at";

impl ClientRow {
    fn from_tuple(t: ClientTuple) -> Result<Self> {
        let (id, name_ct, email_ct, phone_ct, birthday_ct, notes_ct, email_bidx, phone_bidx, consent, created, updated) =
            t;
        Ok(Self {
            id: parse_id(&id, "clients.id")?,
            name_ct,
            email_ct,
            phone_ct,
            birthday_ct,
            notes_ct,
            email_bidx,
            phone_bidx,
            marketing_consent: consent,
            created_at: created,
            updated_at: updated,
        })
    }
}

impl TenantTx {
    pub async fn insert_client(&mut self, c: &ClientRow) -> Result<()> {
        const SQL: &str = "INSERT INTO clients (tenant_id, id, name_ct, email_ct, phone_ct, birthday_ct, notes_ct,
                email_bidx, phone_bidx, marketing_consent, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        let t = self.tenant_str.clone();
        on_conn!(self, c2 => sqlx::query(SQL)
            .bind(&t).bind(c.id.to_string()).bind(&c.name_ct).bind(&c.email_ct).bind(&c.phone_ct)
            .bind(&c.birthday_ct).bind(&c.notes_ct).bind(&c.email_bidx).bind(&c.phone_bidx)
            .bind(c.marketing_consent).bind(c.created_at).bind(c.updated_at)
            .execute(c2).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn client(&mut self, id: ClientId) -> Result<Option<ClientRow>> {
        const SQL: &str =
            const_str_concat!(const_str_concat!("SELECT ", COLUMNS), " FROM clients WHERE tenant_id = $1 AND id = $2");
        let t = self.tenant_str.clone();
        let row: Option<ClientTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id.to_string()).fetch_optional(c).await)?;
        row.map(ClientRow::from_tuple).transpose()
    }

    /// Clients whose email blind index matches (exact lookup).
    pub async fn clients_by_email_bidx(&mut self, bidx: &[u8]) -> Result<Vec<ClientRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM clients WHERE tenant_id = $1 AND email_bidx = $2 ORDER BY created_at, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<ClientTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(bidx).fetch_all(c).await)?;
        rows.into_iter().map(ClientRow::from_tuple).collect()
    }

    /// Clients whose phone blind index matches (exact lookup).
    pub async fn clients_by_phone_bidx(&mut self, bidx: &[u8]) -> Result<Vec<ClientRow>> {
        const SQL: &str = const_str_concat!(
            const_str_concat!("SELECT ", COLUMNS),
            " FROM clients WHERE tenant_id = $1 AND phone_bidx = $2 ORDER BY created_at, id"
        );
        let t = self.tenant_str.clone();
        let rows: Vec<ClientTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(bidx).fetch_all(c).await)?;
        rows.into_iter().map(ClientRow::from_tuple).collect()
    }
}
