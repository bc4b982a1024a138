//! Typed ids: an `OrganizationId` can never be passed where a `UserId` is meant.
//! Ids are UUIDv7, so they sort by creation time and page by keyset.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

typed_id!(
    /// An organization (tenant).
    OrganizationId
);
typed_id!(
    /// A user of an organization.
    UserId
);
typed_id!(
    /// A role, built-in or an organization's own.
    RoleId
);

typed_id!(
    /// A user's named API key.
    ApiKeyId
);
typed_id!(
    /// A data center that serves accounts.
    DatacenterId
);
typed_id!(
    /// One entry of the audit log.
    AuditEventId
);
typed_id!(
    /// An OAuth2 API client: its `client_id`.
    ClientId
);
typed_id!(
    /// A token-signing key: its `kid`.
    SigningKeyId
);
typed_id!(
    /// A refresh token; the family it belongs to shares the first one's id.
    RefreshTokenId
);
typed_id!(
    /// A compute instance.
    InstanceId
);
typed_id!(
    /// A durable asynchronous task.
    TaskId
);
typed_id!(
    /// One run of a server process: the holder of task leases.
    NodeId
);
typed_id!(
    /// A file (or a registered hash) in the notary.
    StoredFileId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lower_case_hyphenated_and_parse_back() {
        let id = OrganizationId::new();
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(s, s.to_lowercase());
        assert_eq!(s.parse::<OrganizationId>().unwrap(), id);
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = UserId::new();
        let b = UserId::new();
        assert!(a < b);
    }
}
typed_id!(
    /// A browser's session with the identity provider (the id token's `sid`).
    SsoSessionId
);
