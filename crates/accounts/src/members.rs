//! Members: invite, change role and permissions, remove. The last owner always stays.

use crate::service::map_email_conflict;
use crate::{AccountError, Accounts, Credential, IssuedSession, Principal, RequestMeta};
use lacuna_domain::{Email, Password, Permission, PermissionSet, Role, UserId, ValidationError, required_text};
use lacuna_storage::{MemberRow, now_unix};
use serde_json::json;

pub struct NewMember {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub permissions: Option<PermissionSet>,
}

/// A change to a member's access. `permissions: Some(None)` clears a narrowing.
pub struct MemberChange {
    pub role: Option<Role>,
    pub permissions: Option<Option<PermissionSet>>,
}

fn check_narrowing(role: Role, permissions: Option<PermissionSet>) -> Result<(), ValidationError> {
    match permissions {
        Some(_) if role == Role::Owner => Err(ValidationError::new(
            "permissions",
            "owners always hold every permission; choose another role to narrow",
        )),
        Some(p) if !p.is_subset_of(role.permissions()) => Err(ValidationError::new(
            "permissions",
            format!(
                "can only narrow the {} role's permissions: {}",
                role.name(),
                role.permissions().names().join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

impl Accounts {
    pub async fn list_members(&self, p: &Principal) -> Result<Vec<MemberRow>, AccountError> {
        p.require(Permission::MembersRead)?;
        let mut tx = self.store.tenant(p.tenant).read().await?;
        Ok(tx.members().await?)
    }

    pub async fn get_member(&self, p: &Principal, id: UserId) -> Result<MemberRow, AccountError> {
        p.require(Permission::MembersRead)?;
        let mut tx = self.store.tenant(p.tenant).read().await?;
        tx.member(id).await?.ok_or(AccountError::NotFound)
    }

    /// Adds a member who must accept the returned invitation (shown once) to set a password.
    pub async fn invite_member(&self, p: &Principal, m: NewMember) -> Result<(MemberRow, String), AccountError> {
        p.require(Permission::MembersManage)?;
        let email = Email::parse("email", &m.email)?;
        let name = required_text("name", &m.name, 200)?;
        check_narrowing(m.role, m.permissions)?;
        let now = now_unix();
        let user = UserId::new();
        let (invite, cred) = Credential::issue_dotted(p.tenant);
        let mut tx = self.store.tenant(p.tenant).write().await?;
        tx.insert_user(user, email.as_str(), None, now).await.map_err(map_email_conflict)?;
        tx.insert_member(
            user,
            &name,
            m.role,
            m.permissions,
            Some(&cred.digest),
            Some(now + self.config.invite_lifetime_secs),
            now,
        )
        .await?;
        let row = tx.member(user).await?.ok_or(AccountError::NotFound)?;
        let scope = json!({"role": m.role.name(), "permissions": m.permissions.map(PermissionSet::names)});
        tx.append_audit(&self.audit_key, &p.audit("member.invite", Some(format!("user:{user}")), scope)).await?;
        tx.commit().await?;
        Ok((row, invite))
    }

    /// Accepts an invitation: sets the password and signs the new member in.
    pub async fn accept_invite(
        &self,
        invite: &str,
        password: String,
        meta: &RequestMeta,
    ) -> Result<IssuedSession, AccountError> {
        let password = Password::parse("password", password)?;
        let cred = Credential::parse_dotted(invite)
            .ok_or_else(|| ValidationError::new("token", "invitation is invalid or expired"))?;
        let hash = self.hash(&password).await?;
        let now = now_unix();
        let mut tx = self.store.tenant(cred.tenant).write().await?;
        let user = tx
            .member_by_invite(&cred.digest, now)
            .await?
            .ok_or_else(|| ValidationError::new("token", "invitation is invalid or expired"))?;
        tx.set_password(user, &hash).await?;
        tx.clear_invite(user, now).await?;
        let session = self.issue_session(&mut tx, user, now, false).await?;
        let policy = tx.mfa_policy().await?;
        let actor = format!("user:{user}");
        let role = tx.member(user).await?.map(|m| m.role);
        tx.append_audit(
            &self.audit_key,
            &meta.audit(actor.clone(), role.map(|r| r.name()), "member.accept_invite", Some(actor), json!({})),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedSession { mfa_enrollment_required: role.is_some_and(|r| policy.requires(r)), ..session })
    }

    /// Changes a member's role and/or narrowed permissions. Their sessions are revoked so the
    /// change takes effect at once. Refused if it would leave the tenant without an owner.
    pub async fn change_member(
        &self,
        p: &Principal,
        id: UserId,
        change: MemberChange,
    ) -> Result<MemberRow, AccountError> {
        p.require(Permission::MembersManage)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        tx.lock_tenant(now).await?;
        let current = tx.member(id).await?.ok_or(AccountError::NotFound)?;
        let role = change.role.unwrap_or(current.role);
        let permissions = match change.permissions {
            Some(p) => p,
            // A role change drops a narrowing that no longer fits the new role.
            None if role != current.role => None,
            None => current.permissions,
        };
        check_narrowing(role, permissions)?;
        tx.update_member_access(id, role, permissions, now).await?;
        if tx.count_owners().await? == 0 {
            return Err(AccountError::LastOwner);
        }
        tx.revoke_sessions_of(id, now).await?;
        let row = tx.member(id).await?.ok_or(AccountError::NotFound)?;
        let scope = json!({
            "from": {"role": current.role.name(), "permissions": current.permissions.map(PermissionSet::names)},
            "to": {"role": role.name(), "permissions": permissions.map(PermissionSet::names)},
        });
        tx.append_audit(&self.audit_key, &p.audit("member.change", Some(format!("user:{id}")), scope)).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn remove_member(&self, p: &Principal, id: UserId) -> Result<(), AccountError> {
        p.require(Permission::MembersManage)?;
        let now = now_unix();
        let mut tx = self.store.tenant(p.tenant).write().await?;
        tx.lock_tenant(now).await?;
        let removed = tx.member(id).await?.ok_or(AccountError::NotFound)?;
        if !tx.delete_member(id).await? {
            return Err(AccountError::NotFound);
        }
        if tx.count_owners().await? == 0 {
            return Err(AccountError::LastOwner);
        }
        let scope = json!({"role": removed.role.name()});
        tx.append_audit(&self.audit_key, &p.audit("member.remove", Some(format!("user:{id}")), scope)).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_must_fit_the_role() {
        use Permission::*;
        assert!(check_narrowing(Role::Manager, Some(PermissionSet::of(&[AccountRead]))).is_ok());
        assert!(check_narrowing(Role::Manager, None).is_ok());
        let e = check_narrowing(Role::FrontDesk, Some(PermissionSet::of(&[MembersManage]))).expect_err("wider");
        assert_eq!(e.field, "permissions");
        assert!(check_narrowing(Role::Owner, Some(PermissionSet::of(&[AccountRead]))).is_err());
    }
}
