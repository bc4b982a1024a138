//! Authentication (credentials → [`Actor`]) and authorization (may this
//! actor do this, in that organization?).

use crate::App;
use nephele_auth::{Actor, Grant, Permission, Permissions};
use nephele_common::ids::OrganizationId;
use nephele_common::names::PASSWORD_MAX;
use nephele_common::{Error, ErrorCode, Result, Secret};

/// The context every tenant-scoped operation runs in.
#[derive(Debug, Clone)]
pub struct OpCtx {
    pub actor: Actor,
    pub request_id: String,
    pub agent_id: Option<String>,
}

fn invalid_credentials() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "Invalid credentials")
}

impl App {
    /// HTTP Basic with a login (or e-mail) and password. Unknown logins
    /// cost the same Argon2id verification as wrong passwords.
    pub async fn authenticate_password(&self, login: &str, password: &Secret) -> Result<Actor> {
        if password.expose().len() > PASSWORD_MAX || login.len() > 320 {
            return Err(invalid_credentials());
        }
        let user = self.store().user_by_login_or_email(login).await?;
        let ok = self
            .passwords()
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        match user {
            Some(user) if ok => {
                let mut grants = Vec::new();
                for g in self.store().role_grants(user.id).await? {
                    grants.push(Grant {
                        organization_id: g.organization_id,
                        role: g.role_name,
                        permissions: Permissions::from_names(
                            g.permissions.iter().map(String::as_str),
                        ),
                    });
                }
                Ok(Actor {
                    user_id: user.id,
                    login: user.login,
                    organization_id: user.organization_id,
                    grants,
                })
            }
            _ => Err(invalid_credentials()),
        }
    }

    /// Checks that the actor may `permission` in organization `org`. An
    /// organization the actor cannot see does not exist for it (404); one
    /// it sees without the permission is 403.
    pub async fn authorize(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
        permission: Permission,
    ) -> Result<()> {
        let ancestry = self.store().organization_ancestry(org).await?;
        if ancestry.is_empty() || !ctx.actor.can_see(&ancestry) {
            return Err(Error::not_found("organizations", org));
        }
        if !ctx.actor.permissions_in(&ancestry).contains(permission) {
            return Err(
                Error::new(ErrorCode::Forbidden, "Your role does not allow this action")
                    .with("permission", permission.as_str()),
            );
        }
        Ok(())
    }

    /// The organization a request acts in: `org_id` if given, otherwise the
    /// actor's own. Whether the actor may act there (its own or below it,
    /// else 404) is checked by [`App::authorize`], which every operation
    /// runs on the organization it acts in.
    pub fn acting_organization(
        &self,
        ctx: &OpCtx,
        org_id: Option<OrganizationId>,
    ) -> OrganizationId {
        org_id.unwrap_or(ctx.actor.organization_id)
    }
}
