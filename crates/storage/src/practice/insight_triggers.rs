//! The Practice side of Insight's triggers and of a pseudonym rotation: which triggers were
//! carried out (idempotent by trigger id), and the ids every pseudonym is minted from.

use crate::tx::on_conn;
use crate::{Result, TenantTx};

/// The ids of everything a pseudonym is minted from, per kind.
#[derive(Debug, Default, Clone)]
pub struct PseudonymSources {
    pub clients: Vec<String>,
    pub providers: Vec<String>,
    pub plans: Vec<String>,
    pub appointments: Vec<String>,
    pub locations: Vec<String>,
}

impl TenantTx {
    /// What was done with a trigger already, if it was carried out before.
    pub async fn trigger_outcome(&mut self, id: &str) -> Result<Option<String>> {
        const SQL: &str = "SELECT outcome FROM insight_triggers WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let row: Option<(String,)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(id).fetch_optional(c).await)?;
        Ok(row.map(|(o,)| o))
    }

    /// Records a trigger as carried out. False if it already was (then nothing is written).
    pub async fn record_trigger(
        &mut self,
        id: &str,
        action_kind: &str,
        outcome: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        const SQL: &str = "INSERT INTO insight_triggers (tenant_id, id, action_kind, outcome, message_id, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, id) DO NOTHING";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(id).bind(action_kind).bind(outcome)
            .bind(message_id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The client ids of the tenant (to find the one behind a pseudonym).
    pub async fn client_id_strings(&mut self) -> Result<Vec<String>> {
        self.ids_of("SELECT id FROM clients WHERE tenant_id = $1").await
    }

    /// Every id a pseudonym of this tenant can be minted from.
    pub async fn pseudonym_sources(&mut self) -> Result<PseudonymSources> {
        Ok(PseudonymSources {
            clients: self.ids_of("SELECT id FROM clients WHERE tenant_id = $1").await?,
            providers: self.ids_of("SELECT id FROM providers WHERE tenant_id = $1").await?,
            plans: self.ids_of("SELECT id FROM client_plans WHERE tenant_id = $1").await?,
            appointments: self.ids_of("SELECT id FROM appointments WHERE tenant_id = $1").await?,
            locations: self.ids_of("SELECT id FROM locations WHERE tenant_id = $1").await?,
        })
    }

    async fn ids_of(&mut self, sql: &'static str) -> Result<Vec<String>> {
        let t = self.tenant_str.clone();
        let rows: Vec<(String,)> = on_conn!(self, c => sqlx::query_as(sql).bind(&t).fetch_all(c).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Rewrites the bodies of undelivered Insight events (`rewrite` returns the new body, or
    /// `None` when unchanged). Returns how many changed.
    pub async fn rewrite_pending_insight_events(
        &mut self,
        rewrite: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<u64> {
        let pending = self.pending_insight_events(i64::MAX).await?;
        let t = self.tenant_str.clone();
        let mut n = 0;
        for (id, body) in pending {
            if let Some(new) = rewrite(&body) {
                on_conn!(self, c => sqlx::query("UPDATE insight_outbox SET body = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(&t).bind(&id).bind(&new).execute(c).await.map(|r| r.rows_affected()))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
