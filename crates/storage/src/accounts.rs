//! Rows and queries for tenants, keys, staff, sessions and API tokens.
//! Every query here binds the transaction's tenant as `$1`.

use crate::tx::on_conn;
use crate::{Result, StorageError, TenantTx};
use lacuna_domain::{PermissionSet, Role, TenantId, TokenId, UserId};

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse().map_err(|_| corrupt(what))
}

/// What sign-in needs to know about an email.
#[derive(Debug, Clone)]
pub struct LoginRow {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    /// `None` while an invitation has not been accepted.
    pub password_hash: Option<String>,
}

impl LoginRow {
    pub(crate) fn from_tuple((id, tenant, hash): (String, String, Option<String>)) -> Result<Self> {
        Ok(Self {
            user_id: parse_id(&id, "users.id")?,
            tenant_id: parse_id(&tenant, "users.tenant_id")?,
            password_hash: hash,
        })
    }
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// `None`: the role's full set. `Some`: narrowed by an owner (always a subset of the role).
    pub permissions: Option<PermissionSet>,
    /// True until the invitation is accepted and a password set.
    pub invited: bool,
    pub created_at: i64,
}

type MemberTuple = (String, String, String, String, Option<String>, Option<String>, i64);

impl MemberRow {
    fn from_tuple((id, email, name, role, perms, pw, created): MemberTuple) -> Result<Self> {
        Ok(Self {
            user_id: parse_id(&id, "members.user_id")?,
            email,
            name,
            role: role.parse().map_err(|_| corrupt("members.role"))?,
            permissions: perms
                .map(|p| PermissionSet::from_storage(&p).map_err(|_| corrupt("members.permissions")))
                .transpose()?,
            invited: pw.is_none(),
            created_at: created,
        })
    }

    /// What the member may do: the role's permissions, narrowed if the owner narrowed them.
    pub fn effective_permissions(&self) -> PermissionSet {
        let role = self.role.permissions();
        self.permissions.map_or(role, |p| p.intersect(role))
    }
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, m.name, m.role, m.permissions, u.password_hash, m.created_at
     FROM members m JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id";

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Signed in with a password, second factor still owed.
    pub mfa_pending: bool,
    /// When this session last passed an MFA check.
    pub mfa_verified_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id: TokenId,
    pub name: String,
    pub permissions: PermissionSet,
    pub created_by: UserId,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

type TokenTuple = (String, String, String, String, i64, Option<i64>, Option<i64>);

impl ApiTokenRow {
    fn from_tuple((id, name, perms, by, created, used, revoked): TokenTuple) -> Result<Self> {
        Ok(Self {
            id: parse_id(&id, "api_tokens.id")?,
            name,
            permissions: PermissionSet::from_storage(&perms).map_err(|_| corrupt("api_tokens.permissions"))?,
            created_by: parse_id(&by, "api_tokens.created_by")?,
            created_at: created,
            last_used_at: used,
            revoked_at: revoked,
        })
    }
}

const TOKEN_SELECT: &str =
    "SELECT id, name, permissions, created_by, created_at, last_used_at, revoked_at FROM api_tokens";

impl TenantTx {
    // ---- tenant and keys ----

    pub async fn create_tenant(&mut self, name: &str, now: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)";
        const INDEX: &str = "INSERT INTO tenant_index (id, created_at) VALUES ($1, $2)";
        let t = self.tenant_str.clone();
        on_conn!(self, c => {
            sqlx::query(SQL).bind(&t).bind(name).bind(now).execute(&mut *c).await?;
            sqlx::query(INDEX).bind(&t).bind(now).execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn tenant_name(&mut self) -> Result<Option<String>> {
        const SQL: &str = "SELECT name FROM tenants WHERE id = $1";
        let t = self.tenant_str.clone();
        let row: Option<(String,)> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_optional(c).await)?;
        Ok(row.map(|r| r.0))
    }

    /// Serialises changes to the tenant's membership (e.g. the last-owner rule) by taking the
    /// tenant row's write lock on PostgreSQL; on SQLite the transaction already holds the lock.
    pub async fn lock_tenant(&mut self, now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE tenants SET updated_at = $2 WHERE id = $1";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    // ---- users and members ----

    pub async fn insert_user(
        &mut self,
        user: UserId,
        email: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<()> {
        const SQL: &str =
            "INSERT INTO users (tenant_id, id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(email).bind(password_hash).bind(now).execute(c).await.map(|r| r.rows_affected()))
            .map_err(StorageError::unique("email"))?;
        Ok(())
    }

    pub async fn set_password(&mut self, user: UserId, hash: &str) -> Result<bool> {
        const SQL: &str = "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(hash).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_member(
        &mut self,
        user: UserId,
        name: &str,
        role: Role,
        permissions: Option<PermissionSet>,
        invite_hash: Option<&[u8]>,
        invite_expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        const SQL: &str = "INSERT INTO members (tenant_id, user_id, name, role, permissions, invite_hash,
                invite_expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let perms = permissions.map(PermissionSet::to_storage);
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(name).bind(role.name()).bind(&perms)
            .bind(invite_hash).bind(invite_expires_at).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn member(&mut self, user: UserId) -> Result<Option<MemberRow>> {
        const SQL: &str = const_str_concat!(MEMBER_SELECT, " WHERE m.tenant_id = $1 AND m.user_id = $2");
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let row: Option<MemberTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&id).fetch_optional(c).await)?;
        row.map(MemberRow::from_tuple).transpose()
    }

    pub async fn members(&mut self) -> Result<Vec<MemberRow>> {
        const SQL: &str = const_str_concat!(MEMBER_SELECT, " WHERE m.tenant_id = $1 ORDER BY m.created_at, m.user_id");
        let t = self.tenant_str.clone();
        let rows: Vec<MemberTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter().map(MemberRow::from_tuple).collect()
    }

    /// The member whose unexpired invitation has this hash.
    pub async fn member_by_invite(&mut self, invite_hash: &[u8], now: i64) -> Result<Option<UserId>> {
        const SQL: &str =
            "SELECT user_id FROM members WHERE tenant_id = $1 AND invite_hash = $2 AND invite_expires_at > $3";
        let t = self.tenant_str.clone();
        let row: Option<(String,)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(invite_hash).bind(now).fetch_optional(c).await)?;
        row.map(|(id,)| parse_id(&id, "members.user_id")).transpose()
    }

    pub async fn clear_invite(&mut self, user: UserId, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE members SET invite_hash = NULL, invite_expires_at = NULL, updated_at = $3
             WHERE tenant_id = $1 AND user_id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn update_member_access(
        &mut self,
        user: UserId,
        role: Role,
        permissions: Option<PermissionSet>,
        now: i64,
    ) -> Result<bool> {
        const SQL: &str = "UPDATE members SET role = $3, permissions = $4, updated_at = $5
             WHERE tenant_id = $1 AND user_id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let perms = permissions.map(PermissionSet::to_storage);
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(role.name()).bind(&perms).bind(now)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Removes the member and their login identity; their sessions go with them.
    pub async fn delete_member(&mut self, user: UserId) -> Result<bool> {
        const SESSIONS: &str = "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2";
        const MEMBER: &str = "DELETE FROM members WHERE tenant_id = $1 AND user_id = $2";
        const USER: &str = "DELETE FROM users WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let n = on_conn!(self, c => {
            sqlx::query(SESSIONS).bind(&t).bind(&id).execute(&mut *c).await?;
            let n = sqlx::query(MEMBER).bind(&t).bind(&id).execute(&mut *c).await?.rows_affected();
            sqlx::query(USER).bind(&t).bind(&id).execute(&mut *c).await?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(n == 1)
    }

    pub async fn count_owners(&mut self) -> Result<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM members WHERE tenant_id = $1 AND role = 'owner'";
        let t = self.tenant_str.clone();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_one(c).await)?;
        Ok(n)
    }

    // ---- sessions ----

    pub async fn insert_session(&mut self, token_hash: &[u8], s: &SessionRow) -> Result<()> {
        const SQL: &str = "INSERT INTO sessions (tenant_id, token_hash, user_id, csrf_token, created_at,
                last_seen_at, expires_at, revoked_at, mfa_pending, mfa_verified_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let t = self.tenant_str.clone();
        let user = s.user_id.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(token_hash).bind(&user).bind(&s.csrf_token)
            .bind(s.created_at).bind(s.last_seen_at).bind(s.expires_at).bind(s.revoked_at).bind(s.mfa_pending)
            .bind(s.mfa_verified_at).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn session(&mut self, token_hash: &[u8]) -> Result<Option<SessionRow>> {
        const SQL: &str = "SELECT user_id, csrf_token, created_at, last_seen_at, expires_at, revoked_at, mfa_pending,
                mfa_verified_at FROM sessions WHERE tenant_id = $1 AND token_hash = $2";
        type Row = (String, String, i64, i64, i64, Option<i64>, bool, Option<i64>);
        let t = self.tenant_str.clone();
        let row: Option<Row> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(token_hash).fetch_optional(c).await)?;
        row.map(|(user, csrf, created, seen, expires, revoked, mfa_pending, mfa_verified_at)| {
            Ok(SessionRow {
                user_id: parse_id(&user, "sessions.user_id")?,
                csrf_token: csrf,
                created_at: created,
                last_seen_at: seen,
                expires_at: expires,
                revoked_at: revoked,
                mfa_pending,
                mfa_verified_at,
            })
        })
        .transpose()
    }

    pub async fn touch_session(&mut self, token_hash: &[u8], now: i64) -> Result<()> {
        const SQL: &str = "UPDATE sessions SET last_seen_at = $3 WHERE tenant_id = $1 AND token_hash = $2";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(token_hash).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn revoke_session(&mut self, token_hash: &[u8], now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE sessions SET revoked_at = $3
             WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(token_hash).bind(now).execute(c).await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Revokes every live session of a member (after a role or permission change).
    pub async fn revoke_sessions_of(&mut self, user: UserId, now: i64) -> Result<u64> {
        const SQL: &str = "UPDATE sessions SET revoked_at = $3
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        Ok(
            on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(now).execute(c).await.map(|r| r.rows_affected()))?,
        )
    }

    // ---- API tokens ----

    pub async fn insert_api_token(&mut self, token_hash: &[u8], row: &ApiTokenRow) -> Result<()> {
        const SQL: &str = "INSERT INTO api_tokens (tenant_id, id, name, token_hash, permissions, created_by,
                created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)";
        let t = self.tenant_str.clone();
        let id = row.id.to_string();
        let by = row.created_by.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(&row.name).bind(token_hash)
            .bind(row.permissions.to_storage()).bind(&by).bind(row.created_at).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn api_token_by_hash(&mut self, token_hash: &[u8]) -> Result<Option<ApiTokenRow>> {
        const SQL: &str = const_str_concat!(TOKEN_SELECT, " WHERE tenant_id = $1 AND token_hash = $2");
        let t = self.tenant_str.clone();
        let row: Option<TokenTuple> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(token_hash).fetch_optional(c).await)?;
        row.map(ApiTokenRow::from_tuple).transpose()
    }

    pub async fn api_tokens(&mut self) -> Result<Vec<ApiTokenRow>> {
        const SQL: &str = const_str_concat!(TOKEN_SELECT, " WHERE tenant_id = $1 ORDER BY created_at, id");
        let t = self.tenant_str.clone();
        let rows: Vec<TokenTuple> = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_all(c).await)?;
        rows.into_iter().map(ApiTokenRow::from_tuple).collect()
    }

    pub async fn revoke_api_token(&mut self, id: TokenId, now: i64) -> Result<bool> {
        const SQL: &str =
            "UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL";
        let t = self.tenant_str.clone();
        let id = id.to_string();
        let n = on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn touch_api_token(&mut self, id: TokenId, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE api_tokens SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let id = id.to_string();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(&id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl TenantTx {
    /// The member's password hash (for re-authentication before sensitive changes).
    pub async fn password_hash(&mut self, user: UserId) -> Result<Option<String>> {
        const SQL: &str = "SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2";
        let t = self.tenant_str.clone();
        let id = user.to_string();
        let row: Option<(Option<String>,)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).bind(&id).fetch_optional(c).await)?;
        Ok(row.and_then(|r| r.0))
    }
}

/// Where a tenant stands in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantStatus {
    pub cancelled_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

impl TenantTx {
    pub async fn tenant_status(&mut self) -> Result<Option<TenantStatus>> {
        const SQL: &str = "SELECT cancelled_at, deleted_at FROM tenants WHERE id = $1";
        let t = self.tenant_str.clone();
        let row: Option<(Option<i64>, Option<i64>)> =
            on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_optional(c).await)?;
        Ok(row.map(|(cancelled_at, deleted_at)| TenantStatus { cancelled_at, deleted_at }))
    }

    pub async fn set_cancelled(&mut self, at: Option<i64>, now: i64) -> Result<()> {
        const SQL: &str = "UPDATE tenants SET cancelled_at = $2, updated_at = $3 WHERE id = $1";
        let t = self.tenant_str.clone();
        on_conn!(self, c => sqlx::query(SQL).bind(&t).bind(at).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes every row of the tenant's data except the audit chain (ids and actions only),
    /// and marks the tenant deleted. Returns how many rows went.
    pub async fn purge_tenant_data(&mut self, now: i64) -> Result<u64> {
        const DELETES: &[&str] = &[
            "DELETE FROM stripe_events WHERE tenant_id = $1",
            "DELETE FROM message_attempts WHERE tenant_id = $1",
            "DELETE FROM outbox WHERE tenant_id = $1",
            "DELETE FROM plan_redemptions WHERE tenant_id = $1",
            "DELETE FROM payments WHERE tenant_id = $1 AND refund_of IS NOT NULL",
            "DELETE FROM payments WHERE tenant_id = $1",
            "DELETE FROM client_plans WHERE tenant_id = $1",
            "DELETE FROM appointments WHERE tenant_id = $1",
            "DELETE FROM time_off WHERE tenant_id = $1",
            "DELETE FROM provider_hours WHERE tenant_id = $1",
            "DELETE FROM provider_services WHERE tenant_id = $1",
            "DELETE FROM providers WHERE tenant_id = $1",
            "DELETE FROM services WHERE tenant_id = $1",
            "DELETE FROM client_search WHERE tenant_id = $1",
            "DELETE FROM clients WHERE tenant_id = $1",
            "DELETE FROM locations WHERE tenant_id = $1",
            "DELETE FROM idempotency_keys WHERE tenant_id = $1",
            "DELETE FROM insight_outbox WHERE tenant_id = $1",
            "DELETE FROM sessions WHERE tenant_id = $1",
            "DELETE FROM api_tokens WHERE tenant_id = $1",
            "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1",
            "DELETE FROM mfa_factors WHERE tenant_id = $1",
            "DELETE FROM members WHERE tenant_id = $1",
            "DELETE FROM users WHERE tenant_id = $1",
            "DELETE FROM request_log WHERE tenant_id = $1",
        ];
        const MARK: &str = "UPDATE tenants SET name = '', deleted_at = $2, updated_at = $2 WHERE id = $1";
        let t = self.tenant_str.clone();
        let n = on_conn!(self, c => {
            let mut n = 0;
            for sql in DELETES {
                n += sqlx::query(*sql).bind(&t).execute(&mut *c).await?.rows_affected();
            }
            sqlx::query(MARK).bind(&t).bind(now).execute(&mut *c).await?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(n)
    }

    /// Whether any personal data of the tenant is present (e.g. brought back by an old backup).
    pub async fn has_tenant_data(&mut self) -> Result<bool> {
        const SQL: &str = "SELECT (SELECT COUNT(*) FROM users WHERE tenant_id = $1)
                + (SELECT COUNT(*) FROM clients WHERE tenant_id = $1)";
        let t = self.tenant_str.clone();
        let (n,): (i64,) = on_conn!(self, c => sqlx::query_as(SQL).bind(&t).fetch_one(c).await)?;
        Ok(n > 0)
    }
}

/// Everything authentication needs about a session, read in one query.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub session: SessionRow,
    pub member: MemberRow,
    pub mfa_enrolled: bool,
    pub tenant_name: String,
    pub mfa_policy: lacuna_domain::MfaPolicy,
    pub status: TenantStatus,
}

/// Everything authentication needs about an API token, read in one query.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub token: ApiTokenRow,
    pub creator: MemberRow,
    pub tenant_name: String,
    pub status: TenantStatus,
}

/// Columns 0..=5 of a member: user id, email, name, role, narrowed permissions, password hash,
/// and its creation time.
struct MemberCols {
    user_id: String,
    email: String,
    name: String,
    role: String,
    permissions: Option<String>,
    password_hash: Option<String>,
    created_at: i64,
}

impl MemberCols {
    fn into_row(self) -> Result<MemberRow> {
        MemberRow::from_tuple((
            self.user_id,
            self.email,
            self.name,
            self.role,
            self.permissions,
            self.password_hash,
            self.created_at,
        ))
    }
}

impl TenantTx {
    /// The session with its member, login identity, MFA factor and tenant, in one round trip
    /// (the hot path of every cookie-authenticated request).
    pub async fn session_auth(&mut self, token_hash: &[u8]) -> Result<Option<SessionAuth>> {
        const SQL: &str = SESSION_AUTH_SQL;
        let t = self.tenant_str.clone();
        let got = on_conn!(self, c => {
            match sqlx::query(SQL).bind(&t).bind(token_hash).fetch_optional(c).await? {
                None => Ok::<_, sqlx::Error>(None),
                Some(r) => decode_session_auth(&r).map(Some),
            }
        })?;
        got.map(SessionAuthCols::into_auth).transpose()
    }
}

/// The session-auth join. Keep in step with the PostgreSQL function `lacuna_session_auth`
/// (migrations/postgres/0006_auth_function.sql), which embeds the same SELECT: both backends run
/// the same integration tests through it.
const SESSION_AUTH_SQL: &str =
    "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at,
                s.mfa_pending, s.mfa_verified_at, u.email, m.name, m.role, m.permissions, u.password_hash,
                m.created_at, (f.confirmed_at IS NOT NULL), t.name, t.mfa_policy, t.cancelled_at, t.deleted_at
             FROM sessions s
             JOIN members m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
             JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
             JOIN tenants t ON t.id = s.tenant_id
             LEFT JOIN mfa_factors f ON f.tenant_id = s.tenant_id AND f.user_id = s.user_id
             WHERE s.tenant_id = $1 AND s.token_hash = $2";

type SessionAuthCols = (
    (String, String, i64, i64, i64, Option<i64>, bool, Option<i64>),
    MemberCols,
    (bool, String, String, Option<i64>, Option<i64>),
);

/// Decodes the 19 columns of the session-auth row (same order in the SQL and the PostgreSQL function).
fn decode_session_auth<R: sqlx::Row>(r: &R) -> std::result::Result<SessionAuthCols, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    bool: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let user_id: String = r.try_get(0)?;
    let session = (
        user_id.clone(),
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
    );
    let member = MemberCols {
        user_id,
        email: r.try_get(8)?,
        name: r.try_get(9)?,
        role: r.try_get(10)?,
        permissions: r.try_get(11)?,
        password_hash: r.try_get(12)?,
        created_at: r.try_get(13)?,
    };
    let tenant = (r.try_get(14)?, r.try_get(15)?, r.try_get(16)?, r.try_get(17)?, r.try_get(18)?);
    Ok((session, member, tenant))
}

trait IntoAuth {
    fn into_auth(self) -> Result<SessionAuth>;
}

impl IntoAuth for SessionAuthCols {
    fn into_auth(self) -> Result<SessionAuth> {
        let (s, m, x) = self;
        Ok(SessionAuth {
            session: SessionRow {
                user_id: parse_id(&s.0, "sessions.user_id")?,
                csrf_token: s.1,
                created_at: s.2,
                last_seen_at: s.3,
                expires_at: s.4,
                revoked_at: s.5,
                mfa_pending: s.6,
                mfa_verified_at: s.7,
            },
            member: m.into_row()?,
            mfa_enrolled: x.0,
            tenant_name: x.1,
            mfa_policy: lacuna_domain::MfaPolicy::parse(&x.2).ok_or_else(|| corrupt("tenants.mfa_policy"))?,
            status: TenantStatus { cancelled_at: x.3, deleted_at: x.4 },
        })
    }
}

impl crate::Store {
    /// The session-auth read for `tenant`: on PostgreSQL one round trip through
    /// `lacuna_session_auth` (row-level security applies inside it); on SQLite a read transaction.
    pub async fn session_auth(
        &self,
        tenant: lacuna_domain::TenantId,
        token_hash: &[u8],
    ) -> Result<Option<SessionAuth>> {
        match &*self.pools {
            crate::store::Pools::Postgres(pool) => {
                let tenant = tenant.to_string();
                let row = crate::store::on_live_connection(pool, || {
                    sqlx::query("SELECT * FROM lacuna_session_auth($1, $2)")
                        .bind(&tenant)
                        .bind(token_hash)
                        .fetch_optional(pool)
                })
                .await?;
                row.map(|r| {
                    decode_session_auth(&r).map_err(crate::StorageError::from).and_then(SessionAuthCols::into_auth)
                })
                .transpose()
            }
            crate::store::Pools::Sqlite(_) => self.tenant(tenant).read().await?.session_auth(token_hash).await,
        }
    }
}

impl TenantTx {
    /// The API token with its creator and tenant, in one round trip.
    pub async fn token_auth(&mut self, token_hash: &[u8]) -> Result<Option<TokenAuth>> {
        const SQL: &str =
            "SELECT k.id, k.name, k.permissions, k.created_by, k.created_at, k.last_used_at, k.revoked_at,
                u.email, m.name, m.role, m.permissions, u.password_hash, m.created_at,
                t.name, t.cancelled_at, t.deleted_at
             FROM api_tokens k
             JOIN members m ON m.tenant_id = k.tenant_id AND m.user_id = k.created_by
             JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
             JOIN tenants t ON t.id = k.tenant_id
             WHERE k.tenant_id = $1 AND k.token_hash = $2";
        let t = self.tenant_str.clone();
        let got = on_conn!(self, c => {
            use sqlx::Row;
            match sqlx::query(SQL).bind(&t).bind(token_hash).fetch_optional(c).await? {
                None => Ok::<_, sqlx::Error>(None),
                Some(r) => {
                    let created_by: String = r.try_get(3)?;
                    let token: TokenTuple = (
                        r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, created_by.clone(), r.try_get(4)?,
                        r.try_get(5)?, r.try_get(6)?,
                    );
                    let member = MemberCols {
                        user_id: created_by, email: r.try_get(7)?, name: r.try_get(8)?, role: r.try_get(9)?,
                        permissions: r.try_get(10)?, password_hash: r.try_get(11)?, created_at: r.try_get(12)?,
                    };
                    let tenant = (r.try_get::<String, _>(13)?, r.try_get::<Option<i64>, _>(14)?, r.try_get::<Option<i64>, _>(15)?);
                    Ok(Some((token, member, tenant)))
                }
            }
        })?;
        let Some((k, m, x)) = got else { return Ok(None) };
        Ok(Some(TokenAuth {
            token: ApiTokenRow::from_tuple(k)?,
            creator: m.into_row()?,
            tenant_name: x.0,
            status: TenantStatus { cancelled_at: x.1, deleted_at: x.2 },
        }))
    }
}
