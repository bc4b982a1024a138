//! Organizations: a tree of tenants of any depth.

use crate::access::OpCtx;
use crate::App;
use nephele_api_types::{OrganizationCreate, OrganizationUpdate};
use nephele_auth::Permission;
use nephele_common::error::Validator;
use nephele_common::ids::OrganizationId;
use nephele_common::names::Name;
use nephele_common::page::{Page, PageRequest};
use nephele_common::status::OrganizationStatus;
use nephele_common::{Error, Precondition, Result};
use nephele_store::{NewOrganization, Organization, OrganizationChanges};

impl App {
    pub async fn list_organizations(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        parent: Option<OrganizationId>,
        page: &PageRequest,
    ) -> Result<Page<Organization>> {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::OrganizationsRead)
            .await?;
        self.store().list_organizations(org, parent, page).await
    }

    pub async fn get_organization(&self, ctx: &OpCtx, id: OrganizationId) -> Result<Organization> {
        self.authorize(ctx, id, Permission::OrganizationsRead)
            .await?;
        self.store()
            .organization(id)
            .await?
            .ok_or_else(|| Error::not_found("organizations", id))
    }

    pub async fn create_organization(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        request: OrganizationCreate,
    ) -> Result<Organization> {
        let mut v = Validator::new();
        let name = v.require("name", request.name, |n| Name::parse(&n));
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::internal("validated name missing"));
        };
        let parent = match request.parent_id {
            Some(p) => OrganizationId(p),
            None => self.acting_organization(ctx, acting),
        };
        self.authorize(ctx, parent, Permission::OrganizationsWrite)
            .await?;
        self.store()
            .create_organization(&NewOrganization {
                id: OrganizationId::new(),
                parent_id: Some(parent),
                name,
                now: self.clock().now(),
            })
            .await
    }

    /// PUT and PATCH: `name`, `parentId`, `status` and `mfaRequired` are
    /// mutable. For PUT `name` is required; for PATCH (a merge patch) an
    /// absent field is unchanged. `parentId` moves the organization;
    /// absent (or `null`) leaves it. `status` is set from above: it needs
    /// `organizations:write` in the parent, so nobody suspends (or
    /// reactivates) their own organization. `mfaRequired` is turned on
    /// with `organizations:write` on the organization (its own
    /// administrators or those above) but turned off only from above, as
    /// `status` is: a requirement set from above cannot be lifted from
    /// below. (The root's own administrators decide both of the root.)
    pub async fn update_organization(
        &self,
        ctx: &OpCtx,
        id: OrganizationId,
        request: OrganizationUpdate,
        replace: bool,
        precondition: &Precondition,
    ) -> Result<Organization> {
        let mut v = Validator::new();
        let name = v.field("name", request.name, replace, |n| Name::parse(&n));
        let status = v.field("status", request.status, false, |s| {
            s.parse::<OrganizationStatus>()
        });
        v.finish()?;
        self.authorize(ctx, id, Permission::OrganizationsWrite)
            .await?;
        let parent = request.parent_id.map(OrganizationId);
        if let Some(parent) = parent {
            self.authorize(ctx, parent, Permission::OrganizationsWrite)
                .await?;
        }
        let current = self
            .store()
            .organization(id)
            .await?
            .ok_or_else(|| Error::not_found("organizations", id))?;
        let changes_status = status.is_some_and(|s| s != current.status);
        let lifts_mfa = request.mfa_required == Some(false) && current.mfa_required;
        if changes_status || lifts_mfa {
            let from_above = match current.parent_id {
                Some(above) => self
                    .permissions_in(ctx, above)
                    .await?
                    .is_some_and(|held| held.contains(Permission::OrganizationsWrite)),
                // The store refuses, in words: the root has nothing above.
                None => true,
            };
            if !from_above {
                let mut missing = nephele_auth::Permissions::default();
                missing.insert(Permission::OrganizationsWrite);
                let (field, reason) = if changes_status {
                    (
                        "status",
                        "an organization's status is set from the one above it",
                    )
                } else {
                    (
                        "mfaRequired",
                        "an organization's MFA requirement is lifted from the one above it",
                    )
                };
                return Err(crate::access::forbidden(missing)
                    .with("reason", reason)
                    .with("field", field));
            }
        }
        self.store()
            .update_organization(
                id,
                &OrganizationChanges {
                    name,
                    parent_id: parent,
                    status,
                    mfa_required: request.mfa_required,
                },
                precondition,
                self.clock().now(),
            )
            .await
    }

    pub async fn delete_organization(
        &self,
        ctx: &OpCtx,
        id: OrganizationId,
        precondition: &Precondition,
    ) -> Result<()> {
        self.authorize(ctx, id, Permission::OrganizationsWrite)
            .await?;
        if id == ctx.actor.organization_id {
            return Err(Error::wrong_state(
                "organizations",
                id,
                "You cannot delete your own organization",
            ));
        }
        self.store().delete_organization(id, precondition).await
    }
}
