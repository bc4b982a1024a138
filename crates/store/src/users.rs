use crate::columns::Parsed;
use crate::door::{breaks_unique, db_error, job, run, run_raw, Conn};
use crate::tables::{
    api_keys, datacenters, link_tokens, organizations, refresh_tokens, role_assignments, roles,
    sso_sessions, users,
};
use crate::{builtin_roles, NewUser, RoleGrant, Store, User, UserChanges, UserDetail};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use nephele_common::clock::to_micros;
use nephele_common::ids::{DatacenterId, OrganizationId, RoleId, UserId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::status::UserStatus;
use nephele_common::{Error, Precondition, Result};
use std::collections::HashMap;

/// Login and e-mail are unique platform-wide: a violation is 409 (2020)
/// naming the field.
fn user_conflict(e: DieselError, login: &str, email: &str) -> Error {
    if breaks_unique(&e, "email") {
        Error::name_taken("users", "email", email)
    } else if breaks_unique(&e, "users") {
        Error::name_taken("users", "login", login)
    } else {
        db_error(e)
    }
}

async fn assign_roles(
    c: &mut Conn,
    user: UserId,
    organization: OrganizationId,
    roles: &[RoleId],
) -> Result<()> {
    run!(c.execute(diesel::delete(
        role_assignments::table.filter(role_assignments::user_id.eq(user.to_string()))
    )))?;
    for role in roles {
        run!(
            c.execute(diesel::insert_into(role_assignments::table).values((
                role_assignments::user_id.eq(user.to_string()),
                role_assignments::role_id.eq(role.to_string()),
                role_assignments::organization_id.eq(organization.to_string()),
            )))
        )?;
    }
    Ok(())
}

/// Sets a user's password, in the caller's transaction: an invited user
/// becomes enabled, and every session of the user ends. Whether there
/// was such a user.
pub(crate) async fn write_password(
    c: &mut Conn,
    id: UserId,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    run!(c.execute(
        diesel::update(
            users::table
                .find(id.to_string())
                .filter(users::status.eq(UserStatus::Invited.as_str()))
        )
        .set(users::status.eq(UserStatus::Enabled.as_str()))
    ))?;
    let done = run!(
        c.execute(diesel::update(users::table.find(id.to_string())).set((
            users::password_hash.eq(hash),
            users::updated_at.eq(to_micros(now)),
            users::version.eq(users::version + 1),
        )))
    )?;
    if done == 0 {
        return Ok(false);
    }
    end_sessions(c, id).await?;
    Ok(true)
}

/// Moves a user's session generation on and deletes its refresh tokens.
async fn end_sessions(c: &mut Conn, id: UserId) -> Result<()> {
    let done = run!(c.execute(
        diesel::update(users::table.find(id.to_string()))
            .set(users::session_generation.eq(users::session_generation + 1))
    ))?;
    if done == 0 {
        return Err(Error::not_found("users", id));
    }
    run!(c.execute(diesel::delete(
        refresh_tokens::table.filter(refresh_tokens::user_id.eq(id.to_string()))
    )))?;
    run!(c.execute(diesel::delete(
        sso_sessions::table.filter(sso_sessions::user_id.eq(id.to_string()))
    )))?;
    Ok(())
}

/// Refuses a home data center that is gone, in the transaction that
/// sets it, which must hold the invariant lock: that orders this against
/// [`Store::delete_datacenter`], which looks for users under the same lock.
async fn check_home(c: &mut Conn, id: DatacenterId) -> Result<()> {
    let found: i64 = run!(c.get_result(datacenters::table.find(id.to_string()).count()))?;
    if found == 0 {
        return Err(Error::invalid("datacenterId", "no such data center"));
    }
    Ok(())
}

/// Inserts a user and grants it roles in its own organization, in a door
/// transaction.
pub(crate) async fn add_user(c: &mut Conn, new: &NewUser, roles: &[RoleId]) -> Result<User> {
    crate::door::lock_invariants(c).await?;
    check_home(c, new.datacenter_id).await?;
    let now = to_micros(new.now);
    let inserted = run_raw!(c.execute(diesel::insert_into(users::table).values((
        users::id.eq(new.id.to_string()),
        users::organization_id.eq(new.organization_id.to_string()),
        users::login.eq(new.login.as_str()),
        users::email.eq(new.email.as_str()),
        users::password_hash.eq(&new.password_hash),
        users::status.eq(new.status.as_str()),
        users::datacenter_id.eq(new.datacenter_id.to_string()),
        users::created_at.eq(now),
        users::updated_at.eq(now),
        users::version.eq(1),
    ))));
    if let Err(e) = inserted {
        return Err(user_conflict(e, new.login.as_str(), new.email.as_str()));
    }
    assign_roles(c, new.id, new.organization_id, roles).await?;
    Ok(User {
        id: new.id,
        organization_id: new.organization_id,
        login: new.login.to_string(),
        email: new.email.to_string(),
        password_hash: new.password_hash.clone(),
        status: new.status,
        datacenter_id: new.datacenter_id,
        session_generation: 0,
        created_at: new.now,
        updated_at: new.now,
        version: 1,
    })
}

/// A user, read in a door transaction; 404 when it is gone.
async fn user_in(c: &mut Conn, id: UserId) -> Result<User> {
    run!(c.optional_first(users::table.find(id.to_string()).select(User::as_select())))?
        .ok_or_else(|| Error::not_found("users", id))
}

/// Refuses a change that would leave the root organization without an
/// enabled admin: `user` is about to lose the admin role there, to be
/// disabled or to be deleted.
async fn keep_a_root_admin(c: &mut Conn, user: &User) -> Result<()> {
    let admins: Vec<String> = run!(c.load(
        role_assignments::table
            .inner_join(
                organizations::table.on(organizations::id.eq(role_assignments::organization_id))
            )
            .inner_join(users::table.on(users::id.eq(role_assignments::user_id)))
            .filter(organizations::parent_id.is_null())
            .filter(role_assignments::role_id.eq(builtin_roles::ADMIN.to_string()))
            .filter(users::status.eq(UserStatus::Enabled.as_str()))
            .select(role_assignments::user_id)
    ))?;
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

/// The names of the roles each of `users` holds, in one query (the door's
/// version of `db::role_names`, for `role_assignments`).
async fn role_names(c: &mut Conn, users: &[String]) -> Result<HashMap<String, Vec<String>>> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = run!(c.load(
        role_assignments::table
            .inner_join(roles::table.on(roles::id.eq(role_assignments::role_id)))
            .filter(role_assignments::user_id.eq_any(users))
            .order(roles::name)
            .select((role_assignments::user_id, roles::name))
    ))?;
    Ok(crate::roles::names_by_holder(rows))
}

async fn with_role_names(c: &mut Conn, users: Vec<User>) -> Result<Vec<UserDetail>> {
    let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let mut names = role_names(c, &ids).await?;
    Ok(users
        .into_iter()
        .map(|user| {
            let roles = names.remove(&user.id.to_string()).unwrap_or_default();
            UserDetail { user, roles }
        })
        .collect())
}

/// A row of a role grant: `permissions` is the stored, space-separated text.
#[derive(Queryable)]
struct GrantRow {
    role_id: Parsed<RoleId>,
    role_name: String,
    organization_id: Parsed<OrganizationId>,
    permissions: String,
}

impl From<GrantRow> for RoleGrant {
    fn from(row: GrantRow) -> RoleGrant {
        RoleGrant {
            role_id: row.role_id.0,
            role_name: row.role_name,
            organization_id: row.organization_id.0,
            permissions: row
                .permissions
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl Store {
    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(users::table.find(id.to_string()).select(User::as_select())))
    }

    /// Looks a user up by login or e-mail (both stored lower-case).
    pub async fn user_by_login_or_email(&self, login_or_email: &str) -> Result<Option<User>> {
        let key = login_or_email.to_lowercase();
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            users::table
                .select(User::as_select())
                .filter(users::login.eq(&key).or(users::email.eq(&key)))
        ))
    }

    /// The users of one organization, by id.
    pub async fn list_users(
        &self,
        organization: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<UserDetail>> {
        // Every id is after the empty text.
        let after = page.after.clone().unwrap_or_default();
        let mut c = self.door.reader().await?;
        let users = run!(c.load(
            users::table
                .select(User::as_select())
                .filter(users::organization_id.eq(organization.to_string()))
                .filter(users::id.gt(&after))
                .order(users::id)
                .limit(i64::from(page.limit) + 1)
        ))?;
        let users = with_role_names(&mut c, users).await?;
        Ok(Page::from_rows(users, page.limit, |u| {
            u.user.id.to_string()
        }))
    }

    /// A user with its role names.
    pub async fn user_detail(&self, id: UserId) -> Result<Option<UserDetail>> {
        let mut c = self.door.reader().await?;
        let user =
            run!(c.optional_first(users::table.find(id.to_string()).select(User::as_select())))?;
        match user {
            Some(user) => Ok(with_role_names(&mut c, vec![user]).await?.pop()),
            None => Ok(None),
        }
    }

    pub async fn create_user(&self, new: &NewUser, roles: &[RoleId]) -> Result<User> {
        let (new, roles) = (new.clone(), roles.to_vec());
        self.write(job!(|c| { add_user(c, &new, &roles).await }))
            .await
    }

    /// Applies `changes` to a user in one transaction. Refuses to take the
    /// admin role from the root organization's last enabled admin, or to
    /// disable that admin. Disabling ends the user's sessions.
    pub async fn update_user(
        &self,
        id: UserId,
        changes: &UserChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let _change = self.access_change();
        let (changes, precondition) = (changes.clone(), precondition.clone());
        self.write(job!(|c| {
            let disabling = changes.status == Some(UserStatus::Disabled);
            if changes.roles.is_some() || changes.datacenter_id.is_some() || disabling {
                crate::door::lock_invariants(c).await?;
            }
            if let Some(home) = changes.datacenter_id {
                check_home(c, home).await?;
            }
            let current = user_in(c, id).await?;
            precondition.check(current.version)?;
            let status = match changes.status {
                // An invited user becomes enabled by setting a password.
                Some(UserStatus::Enabled) if current.status == UserStatus::Invited => {
                    return Err(Error::wrong_state(
                        "users",
                        id,
                        "An invited user is enabled by setting a password",
                    )
                    .with("currentState", current.status.as_str())
                    .with("field", "status"));
                }
                Some(status) => status,
                None => current.status,
            };
            let dropping_admin = changes
                .roles
                .as_ref()
                .is_some_and(|roles| !roles.contains(&builtin_roles::ADMIN));
            if dropping_admin || (disabling && current.status == UserStatus::Enabled) {
                keep_a_root_admin(c, &current).await?;
            }
            if let Some(roles) = &changes.roles {
                assign_roles(c, id, current.organization_id, roles).await?;
            }
            if disabling && current.status != UserStatus::Disabled {
                end_sessions(c, id).await?;
                // Nor may a link sent before set its password later.
                run!(c.execute(diesel::delete(
                    link_tokens::table.filter(link_tokens::user_id.eq(id.to_string()))
                )))?;
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
                status,
                updated_at: now,
                version: current.version + 1,
                ..current
            };
            let done = run_raw!(
                c.execute(diesel::update(users::table.find(id.to_string())).set((
                    users::login.eq(&updated.login),
                    users::email.eq(&updated.email),
                    users::datacenter_id.eq(updated.datacenter_id.to_string()),
                    users::status.eq(updated.status.as_str()),
                    users::updated_at.eq(to_micros(now)),
                    users::version.eq(updated.version),
                )))
            );
            if let Err(e) = done {
                return Err(user_conflict(e, &updated.login, &updated.email));
            }
            Ok(updated)
        }))
        .await
    }

    /// Sets a user's password and ends its sessions, in one transaction.
    /// An invited user is enabled by it.
    pub async fn set_password(&self, id: UserId, hash: &str, now: DateTime<Utc>) -> Result<()> {
        let _change = self.access_change();
        let hash = hash.to_owned();
        self.write(job!(|c| {
            if !write_password(c, id, &hash, now).await? {
                return Err(Error::not_found("users", id));
            }
            Ok(())
        }))
        .await
    }

    /// Ends every session of a user: its refresh tokens are deleted and
    /// its access tokens refused (see [`User::session_generation`]).
    pub async fn end_user_sessions(&self, id: UserId) -> Result<()> {
        let _change = self.access_change();
        self.write(job!(|c| { end_sessions(c, id).await })).await
    }

    /// Deletes a user with its role assignments, API keys and refresh
    /// tokens. Refuses to
    /// delete the root organization's last admin.
    pub async fn delete_user(&self, id: UserId, precondition: &Precondition) -> Result<()> {
        let _change = self.access_change();
        let precondition = precondition.clone();
        self.write(job!(|c| {
            crate::door::lock_invariants(c).await?;
            let current = user_in(c, id).await?;
            precondition.check(current.version)?;
            keep_a_root_admin(c, &current).await?;
            let key = id.to_string();
            run!(c.execute(diesel::delete(
                role_assignments::table.filter(role_assignments::user_id.eq(&key))
            )))?;
            run!(c.execute(diesel::delete(
                api_keys::table.filter(api_keys::user_id.eq(&key))
            )))?;
            run!(c.execute(diesel::delete(
                refresh_tokens::table.filter(refresh_tokens::user_id.eq(&key))
            )))?;
            crate::mfa::delete_for_user(c, &key).await?;
            run!(c.execute(diesel::delete(users::table.find(&key))))?;
            Ok(())
        }))
        .await
    }

    /// The roles a user holds, each with the organization it was granted in
    /// and its permissions.
    pub async fn role_grants(&self, user: UserId) -> Result<Vec<RoleGrant>> {
        let mut c = self.door.reader().await?;
        let rows: Vec<GrantRow> = run!(c.load(
            role_assignments::table
                .inner_join(roles::table.on(roles::id.eq(role_assignments::role_id)))
                .filter(role_assignments::user_id.eq(user.to_string()))
                .order(roles::name)
                .select((
                    role_assignments::role_id,
                    roles::name,
                    role_assignments::organization_id,
                    roles::permissions,
                ))
        ))?;
        Ok(rows.into_iter().map(RoleGrant::from).collect())
    }
}
