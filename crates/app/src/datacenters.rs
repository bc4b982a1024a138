//! Data centers: where accounts live. This server's own is always there;
//! the root organization's admins add and remove the others.

use crate::access::OpCtx;
use crate::App;
use nephele_api_types::DatacenterCreate;
use nephele_auth::Permissions;
use nephele_common::error::Validator;
use nephele_common::ids::DatacenterId;
use nephele_common::names::Name;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Result};
use nephele_store::{Datacenter, NewDatacenter};

fn parse_server_url(s: &str) -> std::result::Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an absolute http:// or https:// URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl App {
    /// This server's data center URL for `server_url` when it is the local one.
    pub fn datacenter_url(&self, dc: &Datacenter) -> String {
        dc.server_url
            .clone()
            .unwrap_or_else(|| self.config().public_url.clone())
    }

    /// Every authenticated principal may list the data centers.
    pub async fn list_datacenters(
        &self,
        _ctx: &OpCtx,
        page: &PageRequest,
    ) -> Result<Page<Datacenter>> {
        self.store().list_datacenters(page).await
    }

    /// Only a principal of the root organization holding every permission
    /// there (an admin of the root) manages data centers.
    pub(crate) async fn ensure_root_admin(&self, ctx: &OpCtx, what: &str) -> Result<()> {
        // The actor's own organization is the root when it has no ancestors.
        let ancestry = self
            .store()
            .organization_ancestry(ctx.actor.organization_id)
            .await?;
        let held = ctx.actor.permissions_in(&ancestry);
        if ancestry.len() != 1 || held != Permissions::all() {
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!("Only the root organization's admins {what}"),
            ));
        }
        Ok(())
    }

    pub async fn create_datacenter(
        &self,
        ctx: &OpCtx,
        request: DatacenterCreate,
    ) -> Result<Datacenter> {
        let mut v = Validator::new();
        let name = v.require("name", request.name, |n| Name::parse(&n));
        let url = v.require("serverUrl", request.server_url, |u| parse_server_url(&u));
        v.finish()?;
        let (Some(name), Some(server_url)) = (name, url) else {
            return Err(Error::internal("validated data center incomplete"));
        };
        self.ensure_root_admin(ctx, "manage data centers").await?;
        self.store()
            .create_datacenter(&NewDatacenter {
                id: DatacenterId::new(),
                name,
                server_url,
                now: self.clock().now(),
            })
            .await
    }

    pub async fn delete_datacenter(&self, ctx: &OpCtx, id: DatacenterId) -> Result<()> {
        self.ensure_root_admin(ctx, "manage data centers").await?;
        if id == Datacenter::LOCAL {
            return Err(Error::wrong_state(
                "datacenters",
                id,
                "This server's own data center cannot be deleted",
            ));
        }
        self.store().delete_datacenter(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server_url("https://dc2.example/").unwrap(),
            "https://dc2.example"
        );
        assert!(parse_server_url("ftp://x").is_err());
        assert!(parse_server_url("dc2.example").is_err());
        assert!(parse_server_url("https://x/?a=1").is_err());
    }
}
