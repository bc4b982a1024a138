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
    /// The user has an active TOTP (`false` for an API client).
    pub mfa_enabled: bool,
    /// The user's organization, or one above it, requires MFA (`false`
    /// for an API client).
    pub mfa_required: bool,
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
        let (mfa_enabled, mfa_required) = match ctx.actor.principal {
            PrincipalId::User(id) => (
                self.store().totp_active(id).await?,
                self.ancestry(org).await?.mfa_required.is_some(),
            ),
            PrincipalId::Client(_) => (false, false),
        };
        Ok(Me {
            principal,
            organization,
            permissions,
            mfa_enabled,
            mfa_required,
        })
    }
}
