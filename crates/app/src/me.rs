//! `GET /api/v2/me`: who the caller is and what it may do.

use crate::access::OpCtx;
use crate::App;
use nephele_auth::{Permissions, PrincipalId};
use nephele_common::{Error, Result};
use nephele_store::{ApiClient, Organization, UserDetail};

/// The principal behind a request.
#[derive(Debug, Clone)]
pub enum MePrincipal {
    User(UserDetail),
    Client(ApiClient),
}

#[derive(Debug, Clone)]
pub struct Me {
    pub principal: MePrincipal,
    pub organization: Organization,
    /// Effective permissions in the principal's own organization.
    pub permissions: Permissions,
}

impl App {
    pub async fn me(&self, ctx: &OpCtx) -> Result<Me> {
        let principal = match ctx.actor.principal {
            PrincipalId::User(id) => MePrincipal::User(
                self.store()
                    .user_detail(id)
                    .await?
                    .ok_or_else(|| Error::not_found("users", id))?,
            ),
            PrincipalId::Client(id) => MePrincipal::Client(
                self.store()
                    .client(id)
                    .await?
                    .ok_or_else(|| Error::not_found("clients", id))?,
            ),
        };
        let org = ctx.actor.organization_id;
        let organization = self
            .store()
            .organization(org)
            .await?
            .ok_or_else(|| Error::not_found("organizations", org))?;
        let permissions = self.permissions_in(ctx, org).await?.unwrap_or_default();
        Ok(Me {
            principal,
            organization,
            permissions,
        })
    }
}
