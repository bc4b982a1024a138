//! Nephele's wire types: what goes over HTTP, with the OpenAPI schema of
//! each. Shared by the server, the client and the CLI.
//!
//! Request types take every field as `Option` and refuse unknown fields: the
//! server then reports *every* missing or invalid field in one 422, rather
//! than the first one serde trips over.

use chrono::{DateTime, Utc};
use nephele_common::{ErrorDetail, Secret};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `{"data": …}`: every successful `/api/v2` and `/occm` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// A page of a list. `nextPage` is present when more remain: pass it as
/// `?pageToken=` to continue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// `{"errors": […]}`: every error body (but OAuth2's).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupStatus {
    pub initialized: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupInit {
    /// The one-time token from `DATA_DIR/setup-token` (or `--setup-token`).
    #[schema(value_type = String)]
    pub setup_token: Option<Secret>,
    pub organization: Option<SetupOrganization>,
    pub admin: Option<SetupAdmin>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupOrganization {
    #[schema(value_type = String)]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupAdmin {
    #[schema(value_type = String)]
    pub login: Option<String>,
    #[schema(value_type = String)]
    pub email: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetupResult {
    pub organization: Organization,
    pub user: User,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    /// The organization above this one; `null` for the root.
    pub parent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; the `ETag` is derived from it.
    pub version: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationCreate {
    #[schema(value_type = String)]
    pub name: Option<String>,
    /// Default: the organization acted in.
    pub parent_id: Option<Uuid>,
}

/// PUT replaces the mutable fields (only `name`); PATCH takes a JSON merge
/// patch of the same shape.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationUpdate {
    #[schema(value_type = String)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub login: String,
    pub email: String,
    pub organization_id: Uuid,
    /// Role names held in the user's organization.
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}
