//! `GET /api/v2/me`: who the caller is and what it may do.

use crate::access::OpCtx;
use crate::App;
use nephele_auth::Permissions;
use nephele_common::{Error, Result};
use nephele_store::{Organization, UserDetail};

#[derive(Debug, Clone)]
pub struct Me {
    pub user: UserDetail,
    pub organization: Organization,
    /// Effective permissions in the principal's own organization.
    pub permissions: Permissions,
}

impl App {
    pub async fn me(&self, ctx: &OpCtx) -> Result<Me> {
        let id = ctx.actor.user_id;
        let user = self
            .store()
            .user_detail(id)
            .await?
            .ok_or_else(|| Error::not_found("users", id))?;
        let org = ctx.actor.organization_id;
        let organization = self
            .store()
            .organization(org)
            .await?
            .ok_or_else(|| Error::not_found("organizations", org))?;
        let permissions = self.permissions_in(ctx, org).await?.unwrap_or_default();
        Ok(Me {
            user,
            organization,
            permissions,
        })
    }
}
