//! Users of an organization: their logins, passwords and roles.
//!
//! Managing a user (changing its roles, its password, deleting it) needs
//! `users:write` where it lives *and* every permission the user holds
//! there: otherwise a user manager could reset an admin's password and
//! become admin. Granting roles needs every permission they carry.

use crate::access::{ensure_grantable, permissions_of, OpCtx};
use crate::App;
use nephele_api_types::{PasswordChange, UserCreate, UserUpdate};
use nephele_auth::{Permission, Permissions};
use nephele_common::error::Validator;
use nephele_common::ids::{DatacenterId, OrganizationId, RoleId, UserId};
use nephele_common::names::{check_password, Email, Login};
use nephele_common::page::{Page, PageRequest};
use nephele_common::status::UserStatus;
use nephele_common::{Error, Precondition, Result, Secret};
use nephele_store::links::LinkPurpose;
use nephele_store::{Datacenter, NewUser, Role, UserChanges, UserDetail};

const TYPE: &str = "users";

/// A user just made, and for an invited user with no mail server to send
/// it, its activation link (shown this once).
#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub user: UserDetail,
    pub activation_url: Option<Secret>,
}

/// Roles named in a request, resolved in the organization they are
/// assigned in: built-in or its own, by name (case-insensitive) or id.
pub(crate) fn resolve_roles(
    v: &mut Validator,
    assignable: &[Role],
    wanted: &[String],
) -> (Vec<RoleId>, Permissions) {
    let mut ids = Vec::new();
    let mut permissions = Permissions::default();
    for (i, name) in wanted.iter().enumerate() {
        let found = assignable
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.id.to_string() == *name);
        match found {
            Some(role) => {
                if !ids.contains(&role.id) {
                    ids.push(role.id);
                }
                permissions = permissions.union(permissions_of(role));
            }
            None => v.push(&format!("roles[{i}]"), format!("unknown role '{name}'")),
        }
    }
    (ids, permissions)
}

/// The permissions of the roles named `held`.
pub(crate) fn held_permissions(assignable: &[Role], held: &[String]) -> Permissions {
    assignable
        .iter()
        .filter(|r| held.contains(&r.name))
        .fold(Permissions::default(), |acc, r| {
            acc.union(permissions_of(r))
        })
}

impl App {
    pub async fn list_users(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        page: &PageRequest,
    ) -> Result<Page<UserDetail>> {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::UsersRead).await?;
        self.store().list_users(org, page).await
    }

    async fn visible_user(
        &self,
        ctx: &OpCtx,
        id: UserId,
        permission: Permission,
    ) -> Result<(UserDetail, Permissions)> {
        let user = self
            .store()
            .user_detail(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        let held = self
            .authorize_object(ctx, user.user.organization_id, permission, TYPE, &id)
            .await?;
        Ok((user, held))
    }

    pub async fn get_user(&self, ctx: &OpCtx, id: UserId) -> Result<UserDetail> {
        Ok(self.visible_user(ctx, id, Permission::UsersRead).await?.0)
    }

    /// A user to be managed by the actor: needs `users:write` and every
    /// permission the user holds.
    async fn managed_user(
        &self,
        ctx: &OpCtx,
        id: UserId,
    ) -> Result<(UserDetail, Permissions, Vec<Role>)> {
        let (user, held) = self.visible_user(ctx, id, Permission::UsersWrite).await?;
        let assignable = self
            .store()
            .assignable_roles(user.user.organization_id)
            .await?;
        ensure_grantable(held, held_permissions(&assignable, &user.roles))?;
        Ok((user, held, assignable))
    }

    async fn check_datacenter(&self, v: &mut Validator, id: Option<uuid::Uuid>) -> Result<()> {
        if let Some(id) = id {
            if self.store().datacenter(DatacenterId(id)).await?.is_none() {
                v.push("datacenterId", "no such data center");
            }
        }
        Ok(())
    }

    /// Creates a user. Without a password the user is `invited`: an
    /// activation link is made in the same transaction and mailed to it,
    /// or, with no mail server configured, answered here (once).
    pub async fn create_user(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        request: UserCreate,
    ) -> Result<CreatedUser> {
        let org = self.acting_organization(ctx, acting);
        let mut v = Validator::new();
        let login = v.require("login", request.login, |l| Login::parse(&l));
        let email = v.require("email", request.email, |e| Email::parse(&e));
        let password = v.field("password", request.password, false, |p| {
            check_password(p.expose()).map(|()| p)
        });
        let held = self.authorize(ctx, org, Permission::UsersWrite).await?;
        let assignable = self.store().assignable_roles(org).await?;
        let wanted = request.roles.unwrap_or_default();
        let (roles, granted) = resolve_roles(&mut v, &assignable, &wanted);
        self.check_datacenter(&mut v, request.datacenter_id).await?;
        v.finish()?;
        let (Some(login), Some(email)) = (login, email) else {
            return Err(Error::internal("validated user incomplete"));
        };
        ensure_grantable(held, granted)?;
        let invited = password.is_none();
        // An invited user has a password nobody knows until the link sets one.
        let password = password.unwrap_or_else(|| Secret::new(crate::signin::random_token()));
        let password_hash = self.passwords().hash(&password).await?;
        let new = NewUser {
            id: UserId::new(),
            organization_id: org,
            login,
            email,
            password_hash,
            status: if invited {
                UserStatus::Invited
            } else {
                UserStatus::Enabled
            },
            datacenter_id: request
                .datacenter_id
                .map_or(Datacenter::LOCAL, DatacenterId),
            now: self.clock().now(),
        };
        let mut activation_url = None;
        let user = if invited {
            let (url, link) = self.new_link(new.id, LinkPurpose::Activate);
            let user = self
                .store()
                .create_invited_user(&new, &roles, &link)
                .await?;
            if self.sends_mail() {
                self.mail_link(&user, LinkPurpose::Activate, &url).await;
            } else {
                activation_url = Some(url);
            }
            user
        } else {
            self.store().create_user(&new, &roles).await?
        };
        let user = self
            .store()
            .user_detail(user.id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, user.id))?;
        Ok(CreatedUser {
            user,
            activation_url,
        })
    }

    /// PUT (`replace`: `login`, `email` and `roles` required) and PATCH.
    pub async fn update_user(
        &self,
        ctx: &OpCtx,
        id: UserId,
        request: UserUpdate,
        replace: bool,
        precondition: &Precondition,
    ) -> Result<UserDetail> {
        let mut v = Validator::new();
        let login = v.field("login", request.login, replace, |l| Login::parse(&l));
        let email = v.field("email", request.email, replace, |e| Email::parse(&e));
        if replace && request.roles.is_none() {
            v.push("roles", "is required");
        }
        let status = v.field("status", request.status, false, |s| s.parse::<UserStatus>());
        let (user, held, assignable) = self.managed_user(ctx, id).await?;
        // `invited` is where an invitation puts a user, and the user
        // leaves it by accepting: a representation may repeat it, a
        // change cannot make it.
        if status == Some(UserStatus::Invited) && user.user.status != UserStatus::Invited {
            return Err(Error::wrong_state(
                TYPE,
                id,
                "Only an invitation makes a user invited",
            ));
        }
        if status == Some(UserStatus::Disabled) && Some(id) == ctx.actor.user_id() {
            return Err(Error::wrong_state(TYPE, id, "You cannot disable yourself"));
        }
        let roles = request
            .roles
            .as_ref()
            .map(|wanted| resolve_roles(&mut v, &assignable, wanted));
        self.check_datacenter(&mut v, request.datacenter_id).await?;
        v.finish()?;
        if let Some((_, granted)) = roles {
            ensure_grantable(held, granted)?;
        }
        let changes = UserChanges {
            login,
            email,
            datacenter_id: request.datacenter_id.map(DatacenterId),
            roles: roles.map(|(ids, _)| ids),
            status,
        };
        let now = self.clock().now();
        self.store()
            .update_user(user.user.id, &changes, precondition, now)
            .await?;
        self.store()
            .user_detail(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))
    }

    /// `POST /api/v2/users/{id}/password`. Your own password needs the
    /// current one; another user's needs the right to manage that user.
    /// Either way every session of the user ends.
    pub async fn change_password(
        &self,
        ctx: &OpCtx,
        id: UserId,
        request: PasswordChange,
    ) -> Result<()> {
        let mut v = Validator::new();
        let password = v.require("password", request.password, |p| {
            check_password(p.expose()).map(|()| p)
        });
        let own = Some(id) == ctx.actor.user_id();
        let user = if own {
            let current = v.require("currentPassword", request.current_password, Ok);
            v.finish()?;
            let user = self
                .store()
                .user(id)
                .await?
                .ok_or_else(|| Error::not_found(TYPE, id))?;
            let current = current.unwrap_or_else(|| Secret::new(""));
            if !self
                .passwords()
                .verify(&current, Some(&user.password_hash))
                .await?
            {
                return Err(Error::invalid(
                    "currentPassword",
                    "is not the current password",
                ));
            }
            user
        } else {
            let (user, _, _) = self.managed_user(ctx, id).await?;
            v.finish()?;
            user.user
        };
        let Some(password) = password else {
            return Err(Error::internal("validated password missing"));
        };
        let hash = self.passwords().hash(&password).await?;
        self.store()
            .set_password(user.id, &hash, self.clock().now())
            .await
    }

    /// `POST /api/v2/users/{id}/sessions/revoke`: ends every session of a
    /// user the actor manages (itself too): its refresh tokens are
    /// deleted and its access tokens refused, on every node within the
    /// revocation bound.
    pub async fn revoke_sessions(&self, ctx: &OpCtx, id: UserId) -> Result<()> {
        self.managed_user(ctx, id).await?;
        self.store().end_user_sessions(id).await
    }

    pub async fn delete_user(
        &self,
        ctx: &OpCtx,
        id: UserId,
        precondition: &Precondition,
    ) -> Result<()> {
        self.managed_user(ctx, id).await?;
        if Some(id) == ctx.actor.user_id() {
            return Err(Error::wrong_state(TYPE, id, "You cannot delete yourself"));
        }
        self.store().delete_user(id, precondition).await
    }
}
