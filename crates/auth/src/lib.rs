//! Who may do what, where. A principal holds roles, each granted in an
//! organization; a role's permissions apply in that organization and every
//! organization below it, never above or beside it.

use nephele_common::ids::{ClientId, OrganizationId, UserId};
pub mod jws;

use std::fmt;
use std::str::FromStr;

/// `resource:action` permissions (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    OrganizationsRead,
    OrganizationsWrite,
    UsersRead,
    UsersWrite,
    RolesRead,
    RolesWrite,
    ClientsRead,
    ClientsWrite,
    InstancesRead,
    InstancesWrite,
    InstancesOperate,
    TasksRead,
    AuditRead,
    NotaryRead,
    NotaryWrite,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::OrganizationsRead,
        Permission::OrganizationsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::RolesRead,
        Permission::RolesWrite,
        Permission::ClientsRead,
        Permission::ClientsWrite,
        Permission::InstancesRead,
        Permission::InstancesWrite,
        Permission::InstancesOperate,
        Permission::TasksRead,
        Permission::AuditRead,
        Permission::NotaryRead,
        Permission::NotaryWrite,
    ];

    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            OrganizationsRead => "organizations:read",
            OrganizationsWrite => "organizations:write",
            UsersRead => "users:read",
            UsersWrite => "users:write",
            RolesRead => "roles:read",
            RolesWrite => "roles:write",
            ClientsRead => "clients:read",
            ClientsWrite => "clients:write",
            InstancesRead => "instances:read",
            InstancesWrite => "instances:write",
            InstancesOperate => "instances:operate",
            TasksRead => "tasks:read",
            AuditRead => "audit:read",
            NotaryRead => "notary:read",
            NotaryWrite => "notary:write",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown permission '{s}'"))
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u32);

impl Permissions {
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Is every permission of `self` also in `other`?
    pub fn is_subset(self, other: Permissions) -> bool {
        self.0 & !other.0 == 0
    }

    /// The permissions of `self` that `other` lacks.
    pub fn difference(self, other: Permissions) -> Permissions {
        Permissions(self.0 & !other.0)
    }

    /// Every permission there is.
    pub fn all() -> Permissions {
        Permission::ALL
            .into_iter()
            .fold(Permissions::default(), |mut set, p| {
                set.insert(p);
                set
            })
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Parses stored permission names; unknown ones are skipped.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Permissions {
        let mut set = Permissions::default();
        for n in names {
            if let Ok(p) = n.parse() {
                set.insert(p);
            }
        }
        set
    }
}

/// Permissions granted in one organization (and so in all below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub organization_id: OrganizationId,
    pub role: String,
    pub permissions: Permissions,
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with a login (or e-mail) and password.
    Password,
    /// An API key, as `MC-Api-Key` or as HTTP Basic `email:key`.
    ApiKey,
    /// A bearer access token from the token service.
    Bearer,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Bearer => "bearer",
        }
    }
}

/// Who a principal is: a user, or an API client acting in its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalId {
    User(UserId),
    Client(ClientId),
}

impl PrincipalId {
    pub fn kind(self) -> &'static str {
        match self {
            PrincipalId::User(_) => "user",
            PrincipalId::Client(_) => "client",
        }
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalId::User(id) => id.fmt(f),
            PrincipalId::Client(id) => id.fmt(f),
        }
    }
}

/// Where a principal stands with multi-factor authentication (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mfa {
    /// No second factor, and none required (every API client).
    #[default]
    Off,
    /// A user with an active TOTP: a password alone no longer proves who
    /// it is (no HTTP Basic with a password).
    Enrolled,
    /// A user without one whose organization, or one above it, requires
    /// MFA: nothing but its own `GET /api/v2/me` and enrolment works
    /// until it enrols.
    MustEnrol,
}

/// An authenticated principal.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: PrincipalId,
    /// A user's login, or a client's name.
    pub name: String,
    /// The principal's own organization: the top of what it can see.
    pub organization_id: OrganizationId,
    pub grants: Vec<Grant>,
    pub method: AuthMethod,
    pub mfa: Mfa,
}

impl Actor {
    /// The user behind the request; `None` for an API client.
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            PrincipalId::User(id) => Some(id),
            PrincipalId::Client(_) => None,
        }
    }

    /// The permissions in an organization whose ancestry (itself first,
    /// the root last) is given.
    pub fn permissions_in(&self, ancestry: &[OrganizationId]) -> Permissions {
        self.grants
            .iter()
            .filter(|g| ancestry.contains(&g.organization_id))
            .fold(Permissions::default(), |acc, g| acc.union(g.permissions))
    }

    /// Can the principal see the organization at all? Only its own and
    /// those below it.
    pub fn can_see(&self, ancestry: &[OrganizationId]) -> bool {
        ancestry.contains(&self.organization_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_and_print() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
        }
        assert!("instances:explode".parse::<Permission>().is_err());
    }

    #[test]
    fn grants_apply_below_never_above_or_beside() {
        let root = OrganizationId::new();
        let child = OrganizationId::new();
        let sibling = OrganizationId::new();
        let actor = Actor {
            principal: PrincipalId::User(UserId::new()),
            name: "a".into(),
            organization_id: child,
            grants: vec![Grant {
                organization_id: child,
                role: "admin".into(),
                permissions: Permissions::from_names(["organizations:write"]),
            }],
            method: AuthMethod::Password,
            mfa: Mfa::Off,
        };
        let grandchild = OrganizationId::new();
        assert!(actor
            .permissions_in(&[grandchild, child, root])
            .contains(Permission::OrganizationsWrite));
        assert!(!actor
            .permissions_in(&[root])
            .contains(Permission::OrganizationsWrite));
        assert!(!actor.can_see(&[root]));
        assert!(!actor.can_see(&[sibling, root]));
        assert!(actor.can_see(&[grandchild, child, root]));
    }

    #[test]
    fn subsets() {
        let a = Permissions::from_names(["users:read"]);
        let b = Permissions::from_names(["users:read", "users:write"]);
        assert!(a.is_subset(b));
        assert!(!b.is_subset(a));
        assert_eq!(
            b.difference(a).iter().collect::<Vec<_>>(),
            [Permission::UsersWrite]
        );
        assert_eq!(Permissions::all().iter().count(), Permission::ALL.len());
    }
}
