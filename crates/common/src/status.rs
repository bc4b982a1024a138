//! The states an account can be in (SPEC §4, §6): whether a user may sign
//! in, and whether an organization's principals may act at all.

use std::fmt;
use std::str::FromStr;

/// A user's status. Only an `enabled` user authenticates; an `invited`
/// one has no password yet and becomes `enabled` when it sets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Enabled,
    Disabled,
    Invited,
}

/// An organization's status. A `suspended` organization's principals,
/// and those of every organization below it, are refused on every scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrganizationStatus {
    Active,
    Suspended,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(format!(
                        "must be one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(UserStatus {
    Enabled => "enabled",
    Disabled => "disabled",
    Invited => "invited",
});

text_enum!(OrganizationStatus {
    Active => "active",
    Suspended => "suspended",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_they_print() {
        for s in UserStatus::ALL {
            assert_eq!(s.as_str().parse::<UserStatus>(), Ok(*s));
        }
        for s in OrganizationStatus::ALL {
            assert_eq!(s.to_string().parse::<OrganizationStatus>(), Ok(*s));
        }
        assert_eq!(
            "Enabled".parse::<UserStatus>(),
            Err("must be one of: enabled, disabled, invited".into())
        );
    }
}
