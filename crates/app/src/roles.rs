//! Roles: the three built-in ones and each organization's own. A custom
//! role can carry only permissions its author holds, and built-in roles
//! never change.

use crate::access::{ensure_grantable, permissions_of, OpCtx};
use crate::App;
use nephele_api_types::RoleWrite;
use nephele_auth::{Permission, Permissions};
use nephele_common::error::Validator;
use nephele_common::ids::{OrganizationId, RoleId};
use nephele_common::names::Name;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Precondition, Result};
use nephele_store::{NewRole, Role};

const TYPE: &str = "roles";

/// Parses `permissions`: every entry a known `resource:action`. Stored in
/// the canonical order, without repeats.
fn parse_permissions(v: &mut Validator, names: Option<Vec<String>>) -> Option<Permissions> {
    let Some(names) = names else {
        v.push("permissions", "is required");
        return None;
    };
    let mut set = Permissions::default();
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        match name.parse::<Permission>() {
            Ok(p) => set.insert(p),
            Err(reason) => {
                v.push(&format!("permissions[{i}]"), reason);
                ok = false;
            }
        }
    }
    ok.then_some(set)
}

/// A role's `name` and `permissions`, both required.
fn parse_role(request: RoleWrite) -> Result<(Name, Permissions)> {
    let mut v = Validator::new();
    let name = v.require("name", request.name, |n| Name::parse(&n));
    let permissions = parse_permissions(&mut v, request.permissions);
    v.finish()?;
    match (name, permissions) {
        (Some(name), Some(permissions)) => Ok((name, permissions)),
        _ => Err(Error::internal("validated role incomplete")),
    }
}

fn names_of(set: Permissions) -> Vec<String> {
    set.iter().map(|p| p.as_str().to_owned()).collect()
}

fn builtin_immutable(role: &Role) -> Error {
    Error::new(ErrorCode::Forbidden, "Built-in roles cannot be changed")
        .with("type", TYPE)
        .with("id", role.id.to_string())
}

impl App {
    pub async fn list_roles(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        page: &PageRequest,
    ) -> Result<Page<Role>> {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::RolesRead).await?;
        self.store().list_roles(org, page).await
    }

    /// A role the actor can see with `permission`: a built-in one (checked
    /// in the actor's own organization) or one of an organization it sees.
    async fn visible_role(
        &self,
        ctx: &OpCtx,
        id: RoleId,
        permission: Permission,
    ) -> Result<(Role, Permissions)> {
        let role = self
            .store()
            .role(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        let org = role.organization_id.unwrap_or(ctx.actor.organization_id);
        let held = self
            .authorize_object(ctx, org, permission, TYPE, &id)
            .await?;
        Ok((role, held))
    }

    pub async fn get_role(&self, ctx: &OpCtx, id: RoleId) -> Result<Role> {
        Ok(self.visible_role(ctx, id, Permission::RolesRead).await?.0)
    }

    pub async fn create_role(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        request: RoleWrite,
    ) -> Result<Role> {
        let org = self.acting_organization(ctx, acting);
        let (name, permissions) = parse_role(request)?;
        let held = self.authorize(ctx, org, Permission::RolesWrite).await?;
        ensure_grantable(held, permissions)?;
        self.store()
            .create_role(&NewRole {
                id: RoleId::new(),
                organization_id: org,
                name,
                permissions: names_of(permissions),
                now: self.clock().now(),
            })
            .await
    }

    /// PUT: a new name and permissions for a custom role. The author must
    /// hold every permission the role carries before and after.
    pub async fn update_role(
        &self,
        ctx: &OpCtx,
        id: RoleId,
        request: RoleWrite,
        precondition: &Precondition,
    ) -> Result<Role> {
        let (name, permissions) = parse_role(request)?;
        let (role, held) = self.visible_role(ctx, id, Permission::RolesWrite).await?;
        if role.is_builtin() {
            return Err(builtin_immutable(&role));
        }
        ensure_grantable(held, permissions_of(&role).union(permissions))?;
        self.store()
            .update_role(
                id,
                name.as_str(),
                &names_of(permissions),
                precondition,
                self.clock().now(),
            )
            .await
    }

    pub async fn delete_role(
        &self,
        ctx: &OpCtx,
        id: RoleId,
        precondition: &Precondition,
    ) -> Result<()> {
        let (role, held) = self.visible_role(ctx, id, Permission::RolesWrite).await?;
        if role.is_builtin() {
            return Err(builtin_immutable(&role));
        }
        ensure_grantable(held, permissions_of(&role))?;
        self.store().delete_role(id, precondition).await
    }
}
