pub mod accounts;
pub mod api_keys;
pub mod audit_events;
pub mod authorize;
pub mod clients;
pub mod datacenters;
pub mod idp;
pub mod images;
pub mod instances;
pub mod links;
pub mod me;
pub mod notary;
pub mod ops;
pub mod organizations;
pub mod roles;
pub mod setup;
pub mod tasks;
pub mod users;

use serde::Deserialize;
use utoipa::IntoParams;

/// `?org_id=`: act in that organization (yours or one below it).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrgScope {
    pub org_id: Option<uuid::Uuid>,
}

/// A list in the organization acted in: `?org_id=`, `?limit=`, `?pageToken=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopedList {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}

/// A list that belongs to no organization: `?limit=`, `?pageToken=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlainList {
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}
