use crate::db::{col, col_id, col_time, db_error, lock_invariants, role_names, unique_violation};
use crate::{builtin_roles, NewUser, RoleGrant, Store, User, UserChanges, UserDetail};
use chrono::{DateTime, Utc};
use nephele_common::clock::to_micros;
use nephele_common::ids::{DatacenterId, OrganizationId, RoleId, UserId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Precondition, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

const COLUMNS: &str = "id, organization_id, login, email, password_hash, datacenter_id, \
                       session_generation, created_at, updated_at, version";

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: col_id(r, "id")?,
        organization_id: col_id(r, "organization_id")?,
        login: col(r, "login")?,
        email: col(r, "email")?,
        password_hash: col(r, "password_hash")?,
        datacenter_id: col_id(r, "datacenter_id")?,
        session_generation: col(r, "session_generation")?,
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        version: col(r, "version")?,
    })
}

/// Login and e-mail are unique platform-wide: a violation is 409 (2020)
/// naming the field.
fn user_conflict(e: sqlx::Error, login: &str, email: &str) -> Error {
    match unique_violation(&e) {
        Some(c) if c.contains("email") => Error::name_taken("users", "email", email),
        Some(_) => Error::name_taken("users", "login", login),
        None => db_error(e),
    }
}

async fn assign_roles(
    tx: &mut Transaction<'static, Any>,
    user: UserId,
    organization: OrganizationId,
    roles: &[RoleId],
) -> Result<()> {
    sqlx::query("DELETE FROM role_assignments WHERE user_id = $1")
        .bind(user.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for role in roles {
        sqlx::query(
            "INSERT INTO role_assignments (user_id, role_id, organization_id) VALUES ($1, $2, $3)",
        )
        .bind(user.to_string())
        .bind(role.to_string())
        .bind(organization.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Moves a user's session generation on and deletes its refresh tokens.
async fn end_sessions(tx: &mut Transaction<'static, Any>, id: UserId) -> Result<()> {
    let done =
        sqlx::query("UPDATE users SET session_generation = session_generation + 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("users", id));
    }
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Refuses a home data center that is gone, in the transaction that
/// sets it, which must hold the invariant lock: that orders this against
/// [`Store::delete_datacenter`], which looks for users under the same lock.
async fn check_home(tx: &mut Transaction<'static, Any>, id: DatacenterId) -> Result<()> {
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM datacenters WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    if found == 0 {
        return Err(Error::invalid("datacenterId", "no such data center"));
    }
    Ok(())
}

/// Inserts a user and grants it roles in its own organization.
pub(crate) async fn insert_user(
    tx: &mut Transaction<'static, Any>,
    store: &Store,
    new: &NewUser,
    roles: &[RoleId],
) -> Result<User> {
    lock_invariants(store, tx).await?;
    check_home(tx, new.datacenter_id).await?;
    sqlx::query(
        "INSERT INTO users (id, organization_id, login, email, password_hash, datacenter_id, \
         created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1)",
    )
    .bind(new.id.to_string())
    .bind(new.organization_id.to_string())
    .bind(new.login.as_str())
    .bind(new.email.as_str())
    .bind(&new.password_hash)
    .bind(new.datacenter_id.to_string())
    .bind(to_micros(new.now))
    .execute(&mut **tx)
    .await
    .map_err(|e| user_conflict(e, new.login.as_str(), new.email.as_str()))?;
    assign_roles(tx, new.id, new.organization_id, roles).await?;
    Ok(User {
        id: new.id,
        organization_id: new.organization_id,
        login: new.login.to_string(),
        email: new.email.to_string(),
        password_hash: new.password_hash.clone(),
        datacenter_id: new.datacenter_id,
        session_generation: 0,
        created_at: new.now,
        updated_at: new.now,
        version: 1,
    })
}

async fn fetch_user<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    id: UserId,
) -> Result<Option<User>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(executor)
        .await
        .map_err(db_error)?;
    row.as_ref().map(user_from_row).transpose()
}

async fn user_in_tx(tx: &mut Transaction<'static, Any>, id: UserId) -> Result<User> {
    fetch_user(&mut **tx, id)
        .await?
        .ok_or_else(|| Error::not_found("users", id))
}

/// Refuses a change that would leave the root organization without an
/// admin: `user` is about to lose the admin role there (or to be deleted).
async fn keep_a_root_admin(tx: &mut Transaction<'static, Any>, user: &User) -> Result<()> {
    let admins: Vec<String> = sqlx::query_scalar(
        "SELECT a.user_id FROM role_assignments a JOIN organizations o ON o.id = a.organization_id \
         WHERE o.parent_id IS NULL AND a.role_id = $1",
    )
    .bind(builtin_roles::ADMIN.to_string())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    let id = user.id.to_string();
    if admins.len() == 1 && admins[0] == id {
        return Err(Error::wrong_state(
            "users",
            id,
            "The root organization must keep at least one admin",
        ));
    }
    Ok(())
}

impl Store {
    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        fetch_user(&self.read, id).await
    }

    /// Looks a user up by login or e-mail (both stored lower-case).
    pub async fn user_by_login_or_email(&self, login_or_email: &str) -> Result<Option<User>> {
        let key = login_or_email.to_lowercase();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE login = $1 OR email = $1"
        ))
        .bind(key)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The users of one organization, by id.
    pub async fn list_users(
        &self,
        organization: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<UserDetail>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE organization_id = $1 AND ($2 IS NULL OR id > $2) \
             ORDER BY id LIMIT $3"
        ))
        .bind(organization.to_string())
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        let users = self.with_role_names(users).await?;
        Ok(Page::from_rows(users, page.limit, |u| {
            u.user.id.to_string()
        }))
    }

    /// A user with its role names.
    pub async fn user_detail(&self, id: UserId) -> Result<Option<UserDetail>> {
        match self.user(id).await? {
            Some(user) => Ok(self.with_role_names(vec![user]).await?.pop()),
            None => Ok(None),
        }
    }

    async fn with_role_names(&self, users: Vec<User>) -> Result<Vec<UserDetail>> {
        let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
        let mut names = role_names(self, "role_assignments", "user_id", &ids).await?;
        Ok(users
            .into_iter()
            .map(|user| {
                let roles = names.remove(&user.id.to_string()).unwrap_or_default();
                UserDetail { user, roles }
            })
            .collect())
    }

    pub async fn create_user(&self, new: &NewUser, roles: &[RoleId]) -> Result<User> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let user = insert_user(&mut tx, self, new, roles).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(user)
    }

    /// Applies `changes` to a user in one transaction. Refuses to take the
    /// admin role from the root organization's last admin.
    pub async fn update_user(
        &self,
        id: UserId,
        changes: &UserChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        if changes.roles.is_some() || changes.datacenter_id.is_some() {
            lock_invariants(self, &mut tx).await?;
        }
        if let Some(home) = changes.datacenter_id {
            check_home(&mut tx, home).await?;
        }
        let current = user_in_tx(&mut tx, id).await?;
        precondition.check(current.version)?;
        if let Some(roles) = &changes.roles {
            if !roles.contains(&builtin_roles::ADMIN) {
                keep_a_root_admin(&mut tx, &current).await?;
            }
            assign_roles(&mut tx, id, current.organization_id, roles).await?;
        }
        let updated = User {
            login: changes
                .login
                .as_ref()
                .map_or(current.login.clone(), |l| l.to_string()),
            email: changes
                .email
                .as_ref()
                .map_or(current.email.clone(), |e| e.to_string()),
            datacenter_id: changes.datacenter_id.unwrap_or(current.datacenter_id),
            updated_at: now,
            version: current.version + 1,
            ..current
        };
        sqlx::query(
            "UPDATE users SET login = $1, email = $2, datacenter_id = $3, updated_at = $4, \
             version = $5 WHERE id = $6",
        )
        .bind(&updated.login)
        .bind(&updated.email)
        .bind(updated.datacenter_id.to_string())
        .bind(to_micros(now))
        .bind(updated.version)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| user_conflict(e, &updated.login, &updated.email))?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    /// Sets a user's password and ends its sessions, in one transaction.
    pub async fn set_password(&self, id: UserId, hash: &str, now: DateTime<Utc>) -> Result<()> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 \
             WHERE id = $3",
        )
        .bind(hash)
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("users", id));
        }
        end_sessions(&mut tx, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Ends every session of a user: its refresh tokens are deleted and
    /// its access tokens refused (see [`User::session_generation`]).
    pub async fn end_user_sessions(&self, id: UserId) -> Result<()> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        end_sessions(&mut tx, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Deletes a user with its role assignments, API keys and refresh
    /// tokens. Refuses to
    /// delete the root organization's last admin.
    pub async fn delete_user(&self, id: UserId, precondition: &Precondition) -> Result<()> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        lock_invariants(self, &mut tx).await?;
        let current = user_in_tx(&mut tx, id).await?;
        precondition.check(current.version)?;
        keep_a_root_admin(&mut tx, &current).await?;
        for sql in [
            "DELETE FROM role_assignments WHERE user_id = $1",
            "DELETE FROM api_keys WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// The roles a user holds, each with the organization it was granted in
    /// and its permissions.
    pub async fn role_grants(&self, user: UserId) -> Result<Vec<RoleGrant>> {
        let rows = sqlx::query(
            "SELECT a.role_id, r.name, a.organization_id, r.permissions FROM role_assignments a \
             JOIN roles r ON r.id = a.role_id WHERE a.user_id = $1 ORDER BY r.name",
        )
        .bind(user.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter().map(grant_from_row).collect()
    }
}

/// A row of `role_id, name, organization_id, permissions`.
pub(crate) fn grant_from_row(r: &AnyRow) -> Result<RoleGrant> {
    Ok(RoleGrant {
        role_id: col_id(r, "role_id")?,
        role_name: col(r, "name")?,
        organization_id: col_id(r, "organization_id")?,
        permissions: col::<String>(r, "permissions")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    })
}
