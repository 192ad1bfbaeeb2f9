//! The request log's rows: written in batches, read per tenant, purged after the retention.

use crate::store::Pools;
use crate::tx::on_conn;
use crate::{Result, Store, TenantId, TenantTx};

/// Days a request-log row is kept.
pub const REQUEST_LOG_RETENTION_DAYS: i64 = 90;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogEntry {
    pub tenant: Option<TenantId>,
    pub occurred_at: i64,
    /// `in` (a request to us) or `out` (a call we made).
    pub direction: &'static str,
    pub method: String,
    /// The route template (`/api/v1/members/{id}`), never the raw path.
    pub route: String,
    pub status: i32,
    pub latency_us: i64,
    pub actor: Option<String>,
    pub request_id: String,
}

impl Store {
    /// Writes entries, one transaction per tenant (so row-level security applies to each). Each
    /// tenant's batch is a single statement: `INSERT … SELECT FROM UNNEST(…)` on PostgreSQL,
    /// `INSERT … SELECT FROM json_each(…)` on SQLite, which keeps SQLite's write turn short.
    pub async fn write_request_log(&self, entries: &[RequestLogEntry]) -> Result<()> {
        let mut tenants: Vec<Option<TenantId>> = entries.iter().map(|e| e.tenant).collect();
        tenants.sort();
        tenants.dedup();
        for t in tenants {
            let batch: Vec<&RequestLogEntry> = entries.iter().filter(|e| e.tenant == t).collect();
            match (&*self.pools, t) {
                (Pools::Postgres(p), None) => {
                    let mut tx = p.begin().await?;
                    pg_insert_batch(&mut tx, None, &batch).await?;
                    tx.commit().await?;
                }
                (Pools::Postgres(_), Some(tenant)) => {
                    let mut tx = self.tenant(tenant).write().await?;
                    let crate::tx::Tx::Pg(inner) = &mut tx.tx else { unreachable!("postgres pool") };
                    pg_insert_batch(inner, Some(tenant.to_string()), &batch).await?;
                    tx.commit().await?;
                }
                (Pools::Sqlite(p), None) => {
                    let _turn = self.sqlite_write_turn().await?;
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                    sqlite_insert_batch(&mut tx, None, &batch).await?;
                    tx.commit().await?;
                }
                (Pools::Sqlite(_), Some(tenant)) => {
                    let mut tx = self.tenant(tenant).write().await?;
                    let crate::tx::Tx::Sqlite(inner) = &mut tx.tx else { unreachable!("sqlite pool") };
                    sqlite_insert_batch(inner, Some(tenant.to_string()), &batch).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes rows older than `cutoff` for every tenant and for requests without one.
    pub async fn purge_request_log(&self, cutoff: i64) -> Result<u64> {
        const UNSCOPED: &str = "DELETE FROM request_log WHERE tenant_id IS NULL AND occurred_at < $1";
        let mut n = match &*self.pools {
            Pools::Sqlite(p) => {
                // In its write turn, like every SQLite write (the checkpointer counts turns).
                let _turn = self.sqlite_write_turn().await?;
                sqlx::query(UNSCOPED).bind(cutoff).execute(p).await?.rows_affected()
            }
            Pools::Postgres(p) => sqlx::query(UNSCOPED).bind(cutoff).execute(p).await?.rows_affected(),
        };
        for t in self.tenant_ids().await? {
            let mut tx = self.tenant(t).write().await?;
            n += tx.purge_request_log(cutoff).await?;
            tx.commit().await?;
        }
        Ok(n)
    }
}

async fn pg_insert_batch(
    conn: &mut sqlx::PgConnection,
    tenant: Option<String>,
    batch: &[&RequestLogEntry],
) -> Result<()> {
    const SQL: &str = "INSERT INTO request_log (tenant_id, occurred_at, direction, method, route, status, latency_us,
            actor, request_id)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[],
            $8::text[], $9::text[])";
    sqlx::query(SQL)
        .bind(tenant)
        .bind(batch.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.direction.to_string()).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.method.clone()).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.route.clone()).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.status).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.latency_us).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.actor.clone()).collect::<Vec<_>>())
        .bind(batch.iter().map(|e| e.request_id.clone()).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    Ok(())
}

async fn sqlite_insert_batch(
    conn: &mut sqlx::SqliteConnection,
    tenant: Option<String>,
    batch: &[&RequestLogEntry],
) -> Result<()> {
    const SQL: &str = "INSERT INTO request_log (tenant_id, occurred_at, direction, method, route, status, latency_us,
            actor, request_id)
         SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
            value ->> 7
         FROM json_each($2)";
    let rows: Vec<serde_json::Value> = batch
        .iter()
        .map(|e| {
            serde_json::json!([
                e.occurred_at,
                e.direction,
                e.method,
                e.route,
                e.status,
                e.latency_us,
                e.actor,
                e.request_id
            ])
        })
        .collect();
    let rows = serde_json::Value::Array(rows).to_string();
    sqlx::query(SQL).bind(tenant).bind(rows).execute(conn).await?;
    Ok(())
}

impl TenantTx {
    async fn purge_request_log(&mut self, cutoff: i64) -> Result<u64> {
        const SQL: &str = "DELETE FROM request_log WHERE tenant_id = $1 AND occurred_at < $2";
        let t = self.tenant_str.clone();
        Ok(on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(cutoff).execute(c).await.map(|r| r.rows_affected()))?)
    }

    /// A page of this tenant's log, oldest first, after (`occurred_at`, `request_id`).
    pub async fn request_log_page(&mut self, after: Option<(i64, String)>, limit: i64) -> Result<Vec<RequestLogEntry>> {
        const SQL: &str = "SELECT occurred_at, direction, method, route, status, latency_us, actor, request_id
             FROM request_log WHERE tenant_id = $1
               AND ($2 IS NULL OR occurred_at > $2 OR (occurred_at = $2 AND request_id > $3))
             ORDER BY occurred_at, request_id LIMIT $4";
        type Row = (i64, String, String, String, i32, i64, Option<String>, String);
        let t = self.tenant_str.clone();
        let (at, id) = after.map_or((None, String::new()), |(a, i)| (Some(a), i));
        let rows: Vec<Row> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(at).bind(&id).bind(limit).fetch_all(c).await)?;
        let tenant = Some(self.tenant());
        Ok(rows
            .into_iter()
            .map(|(occurred_at, direction, method, route, status, latency_us, actor, request_id)| RequestLogEntry {
                tenant,
                occurred_at,
                direction: if direction == "out" { "out" } else { "in" },
                method,
                route,
                status,
                latency_us,
                actor,
                request_id,
            })
            .collect())
    }

    /// The oldest row's time, if any (the trust page shows retention as measured).
    pub async fn request_log_oldest(&mut self) -> Result<Option<i64>> {
        const SQL: &str = "SELECT MIN(occurred_at) FROM request_log WHERE tenant_id = $1";
        let t = self.tenant_str.clone();
        let (v,): (Option<i64>,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_one(c).await)?;
        Ok(v)
    }
}
