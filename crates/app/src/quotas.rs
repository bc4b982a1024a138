//! Quotas: limits on an organization's own instances, vCPUs and memory,
//! set by an admin of its parent, never above the parent's own limits.

use crate::access::OpCtx;
use crate::App;
use nephele_api_types::QuotaWrite;
use nephele_auth::Permission;
use nephele_common::error::Validator;
use nephele_common::ids::OrganizationId;
use nephele_common::{Error, ErrorCode, Precondition, Result};
use nephele_store::instances::{Limits, Quota};

impl App {
    pub async fn get_quota(&self, ctx: &OpCtx, org: OrganizationId) -> Result<Quota> {
        self.authorize(ctx, org, Permission::OrganizationsRead)
            .await?;
        self.store().quota(org).await
    }

    /// Sets an organization's limits. Only who may write its parent may,
    /// and each limit must stay within the parent's.
    pub async fn set_quota(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
        request: QuotaWrite,
        precondition: &Precondition,
    ) -> Result<Quota> {
        self.authorize(ctx, org, Permission::OrganizationsRead)
            .await?;
        let organization = self
            .store()
            .organization(org)
            .await?
            .ok_or_else(|| Error::not_found("organizations", org))?;
        let Some(parent) = organization.parent_id else {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "The root organization has no quota: nobody above it could set one",
            ));
        };
        // The parent may be above what the actor sees: then it is the
        // actor's own organization, and its quota is not the actor's to set.
        let held = self.permissions_in(ctx, parent).await?;
        if !held.is_some_and(|p| p.contains(Permission::OrganizationsWrite)) {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "Only an admin of the parent organization can set its quota",
            )
            .with("missing", vec![Permission::OrganizationsWrite.as_str()]));
        }
        let ceiling = self.store().quota(parent).await?.limits;
        let mut v = Validator::new();
        let mut limit = |field: &str, value: Option<i64>, ceiling: Option<i64>| {
            let value = value?;
            if value < 0 {
                v.push(field, "must not be negative");
            } else if let Some(c) = ceiling.filter(|c| value > *c) {
                v.push(
                    field,
                    format!("must not exceed the parent organization's {c}"),
                );
            }
            Some(value)
        };
        let limits = Limits {
            instances: limit("instances", request.instances, ceiling.instances),
            vcpus: limit("vcpus", request.vcpus, ceiling.vcpus),
            memory_mib: limit("memoryMiB", request.memory_mib, ceiling.memory_mib),
        };
        // No limit of its own under a limited parent is the parent's limit.
        let limits = Limits {
            instances: limits.instances.or(ceiling.instances),
            vcpus: limits.vcpus.or(ceiling.vcpus),
            memory_mib: limits.memory_mib.or(ceiling.memory_mib),
        };
        v.finish()?;
        self.store()
            .set_quota(org, limits, precondition, self.clock().now())
            .await
    }
}
