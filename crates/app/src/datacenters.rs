//! Data centers: where accounts live. This server's own is always there;
//! the root organization's admins add and remove the others.

use crate::access::OpCtx;
use crate::App;
use nephele_api_types::DatacenterCreate;
use nephele_auth::Permissions;
use nephele_common::error::Validator;
use nephele_common::ids::DatacenterId;
use nephele_common::names::{Name, HTTP_URL, HTTP_URL_MAX};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Result};
use nephele_store::{Datacenter, NewDatacenter};
use regex::Regex;
use std::sync::LazyLock;

fn parse_server_url(s: &str) -> std::result::Result<String, String> {
    // A pattern that did not compile would refuse every URL (and fail the
    // tests below), never let one through.
    static FORM: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(HTTP_URL).ok());
    if s.len() > HTTP_URL_MAX {
        return Err(format!("must be at most {HTTP_URL_MAX} characters"));
    }
    if !FORM.as_ref().is_some_and(|form| form.is_match(s)) {
        return Err(
            "must be an absolute http:// or https:// URL of a host name or IPv4 \
                    address, with an optional port and path and no query or fragment"
                .into(),
        );
    }
    let url = url::Url::parse(s).map_err(|e| format!("is not a URL: {e}"))?;
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
    use super::parse_server_url;

    #[test]
    fn a_server_url_is_an_http_url_of_a_host() {
        for (given, stored) in [
            ("https://dc2.example.com", "https://dc2.example.com"),
            ("http://10.0.0.7:8443/", "http://10.0.0.7:8443"),
            ("https://a-b.c9/api/x%20y", "https://a-b.c9/api/x%20y"),
            ("https://Example.COM:443/p", "https://example.com/p"),
            ("http://localhost:65535", "http://localhost:65535"),
        ] {
            assert_eq!(parse_server_url(given).as_deref(), Ok(stored), "{given}");
        }
        for refused in [
            "",
            "example.com",
            "ftp://example.com",
            "HTTPS://example.com",
            "https://",
            "https://example.com?q=1",
            "https://example.com/#top",
            "https://999.1.1.1",
            "https://1.2.3",
            "https://xn--zz.example",
            "https://-a.example",
            "https://a.example.",
            "https://a.example:65536",
            "https://a.example:0",
            "https://[::1]",
            "https://a b.example",
            "https://example.com/a b",
            "https://user@example.com",
        ] {
            assert!(parse_server_url(refused).is_err(), "{refused}");
        }
    }
}
