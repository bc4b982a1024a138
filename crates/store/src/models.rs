//! What the store keeps, as the domain sees it.

use chrono::{DateTime, Utc};
use nephele_common::ids::{OrganizationId, RoleId, UserId};
use nephele_common::names::{Email, Login, Name};

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrganizationId,
    pub parent_id: Option<OrganizationId>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub id: OrganizationId,
    pub parent_id: Option<OrganizationId>,
    pub name: Name,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub organization_id: OrganizationId,
    pub login: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub organization_id: OrganizationId,
    pub login: Login,
    pub email: Email,
    pub password_hash: String,
    pub now: DateTime<Utc>,
}

/// A role held by a user in an organization (and every organization below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub role_id: RoleId,
    pub role_name: String,
    pub organization_id: OrganizationId,
    /// The role's permission names, as stored.
    pub permissions: Vec<String>,
}

/// Ids of the built-in roles (seeded by the first migration).
pub mod builtin_roles {
    use nephele_common::ids::RoleId;
    use uuid::Uuid;

    pub const ADMIN: RoleId = RoleId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000001));
    pub const OPERATOR: RoleId = RoleId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000002));
    pub const VIEWER: RoleId = RoleId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000003));
}
