//! Validated names: raw strings stop at the edge. Each `parse` returns the
//! reason a value is refused, for the 422 that lists it.

use serde::Serialize;
use std::fmt;

/// Whether a character may not appear in a name: control characters, and
/// the invisible format characters that make a name read as another —
/// the bidirectional embeddings, overrides and isolates (Trojan Source,
/// CVE-2021-42574), zero-width spaces and marks, the word joiner and
/// invisible operators, the byte-order mark and the tag characters.
/// ZWNJ and ZWJ (U+200C, U+200D) stay allowed: scripts such as Persian and
/// emoji sequences need them, and they change no order.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

fn has_hidden(s: &str) -> bool {
    s.chars().any(is_hidden)
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A display name (organization, role, instance): 1–100 characters, no
    /// control or invisible format characters ([`is_hidden`]), no
    /// surrounding white space.
    Name
);
string_newtype!(
    /// A login: 1–64 characters of `a-z 0-9 . _ - @`, stored lower-case so that
    /// `Admin` and `admin` are one account.
    Login
);
string_newtype!(
    /// An e-mail address, stored lower-case.
    Email
);

impl Name {
    pub const MAX: usize = 100;

    pub fn parse(s: &str) -> Result<Name, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        if has_hidden(s) {
            return Err(
                "must not contain control characters or invisible formatting characters".into(),
            );
        }
        if s.trim() != s {
            return Err("must not begin or end with white space".into());
        }
        Ok(Name(s.to_owned()))
    }
}

impl Login {
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Login, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        let lower = s.to_ascii_lowercase();
        if !lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c))
        {
            return Err("may contain only letters, digits and . _ - @".into());
        }
        Ok(Login(lower))
    }
}

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(s: &str) -> Result<Email, String> {
        if s.len() > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        if has_hidden(s) || s.chars().any(char::is_whitespace) {
            return Err("must not contain white space or control characters".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("must be an e-mail address".into());
        };
        if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.')
        {
            return Err("must be an e-mail address".into());
        }
        Ok(Email(s.to_lowercase()))
    }
}

/// The longest stored file name, in characters.
pub const FILE_NAME_MAX: usize = 255;

/// A host name or a dotted IPv4 address, as [`HTTP_URL`] and
/// [`REDIRECT_URI`] take them.
macro_rules! host {
    () => {
        concat!(
            r"(?:(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)*[A-Za-z](?:[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)?",
            r"|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
        )
    };
}

/// An optional port, 1–65535.
macro_rules! port {
    () => {
        r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
    };
}

/// A data center's `serverUrl`: an absolute `http://` or `https://` URL
/// of a host name (labels of letters, digits and single inner hyphens, the
/// last beginning with a letter) or a dotted IPv4 address, an optional
/// port, a path and no query or fragment. Tighter than what a URL parser
/// takes, so that everything it matches parses the same everywhere; the
/// server checks it and the OpenAPI schema states it.
pub const HTTP_URL: &str = concat!(
    r"^https?://",
    host!(),
    port!(),
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*$"
);
/// The longest `serverUrl`.
pub const HTTP_URL_MAX: usize = 2048;

/// A client's redirect URI (and post-logout redirect URI): `https://` on
/// a host name or dotted IPv4 address, or `http://` on a loopback address
/// (`127.0.0.1`, `[::1]`, `localhost`; RFC 8252 §7.3), with an optional
/// port, path and query, and no fragment, credentials or wildcard (`*`).
/// The server checks it and the OpenAPI schema states it.
pub const REDIRECT_URI: &str = concat!(
    r"^(?:https://",
    host!(),
    r"|http://(?:127\.0\.0\.1|\[::1\]|localhost))",
    port!(),
    r"(?:/[A-Za-z0-9._~!$&'()+,;=:@%-]*)*",
    r"(?:\?[A-Za-z0-9._~!$&'()+,;=:@%/?-]*)?$",
);
/// The longest redirect URI.
pub const REDIRECT_URI_MAX: usize = 2000;

/// Password length bounds; longer ones are refused before any hashing.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;

pub fn check_password(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if n < PASSWORD_MIN {
        return Err(format!("must be at least {PASSWORD_MIN} characters"));
    }
    if p.len() > PASSWORD_MAX {
        return Err(format!("must be at most {PASSWORD_MAX} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Name::parse("Acme Corp").is_ok());
        assert!(Name::parse("").is_err());
        assert!(Name::parse(" x").is_err());
        assert!(Name::parse("a\u{7}b").is_err());
        assert!(Name::parse(&"x".repeat(101)).is_err());
        assert!(Name::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn names_refuse_what_would_make_them_read_as_another() {
        for hidden in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200B}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            assert!(Name::parse(&format!("ab{hidden}c")).is_err(), "{hidden:?}");
            assert!(
                Email::parse(&format!("a{hidden}@b.c")).is_err(),
                "{hidden:?}"
            );
        }
        // Joiners that scripts and emoji need are names' own.
        assert!(
            Name::parse("\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}").is_ok()
        );
        assert!(Name::parse("team \u{1F469}\u{200D}\u{1F4BB}").is_ok());
    }

    #[test]
    fn logins_are_lower_case() {
        assert_eq!(Login::parse("Admin").unwrap().as_str(), "admin");
        assert!(Login::parse("a b").is_err());
        assert!(Login::parse("").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse("A@Acme.Test").unwrap().as_str(), "a@acme.test");
        assert!(Email::parse("nope").is_err());
        assert!(Email::parse("a@").is_err());
        assert!(Email::parse("a b@c.d").is_err());
    }

    #[test]
    fn passwords() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"x".repeat(2000)).is_err());
    }
}
