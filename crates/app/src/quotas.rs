//! Quotas: limits on the instances, vCPUs and memory of an organization
//! and every organization below it, set by an admin of its parent, never
//! above what the organizations above leave.

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
    /// and each limit must stay within what the organizations above leave
    /// for its subtree. A limit left out is none of its own: the limits
    /// above still hold.
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
        let ceiling = self.quota_ceiling(org).await?;
        let mut v = Validator::new();
        let mut limit = |field: &str, value: Option<i64>, ceiling: Option<i64>| {
            let value = value?;
            if value < 0 {
                v.push(field, "must not be negative");
            } else if let Some(c) = ceiling.filter(|c| value > *c) {
                v.push(
                    field,
                    format!("must not exceed {c}, what the organizations above leave for it"),
                );
            }
            Some(value)
        };
        let limits = Limits {
            instances: limit("instances", request.instances, ceiling.instances),
            vcpus: limit("vcpus", request.vcpus, ceiling.vcpus),
            memory_mib: limit("memoryMiB", request.memory_mib, ceiling.memory_mib),
        };
        v.finish()?;
        self.store()
            .set_quota(org, limits, precondition, self.clock().now())
            .await
    }

    /// The most each limit of `org` may be: for every limited organization
    /// above it, its limit less what the rest of its subtree uses.
    async fn quota_ceiling(&self, org: OrganizationId) -> Result<Limits> {
        let own = self.store().quota(org).await?.usage;
        let mut ceiling = Limits::default();
        for above in self
            .store()
            .organization_ancestry(org)
            .await?
            .into_iter()
            .skip(1)
        {
            let quota = self.store().quota(above).await?;
            let rest = quota.usage.minus(own);
            let room = |limit: Option<i64>, used: i64, current: Option<i64>| {
                let room = limit.map(|l| (l - used).max(0));
                match (room, current) {
                    (Some(r), Some(c)) => Some(r.min(c)),
                    (r, c) => r.or(c),
                }
            };
            ceiling = Limits {
                instances: room(quota.limits.instances, rest.instances, ceiling.instances),
                vcpus: room(quota.limits.vcpus, rest.vcpus, ceiling.vcpus),
                memory_mib: room(quota.limits.memory_mib, rest.memory_mib, ceiling.memory_mib),
            };
        }
        Ok(ceiling)
    }
}
