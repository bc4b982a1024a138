//! `If-Match` preconditions. A resource's ETag is its version in quotes
//! (`"3"`), a strong validator, so the check can run inside the store's
//! transaction against the version it reads.

use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match`: no condition.
    #[default]
    None,
    /// `If-Match: *`: the resource must exist.
    Exists,
    /// `If-Match: "3", "4"`: the current version must be one of these.
    Versions(Vec<i64>),
}

impl Precondition {
    /// The ETag of a resource at `version`.
    pub fn etag(version: i64) -> String {
        format!("\"{version}\"")
    }

    /// Parses an `If-Match` header value (RFC 9110 §13.1.1). Weak tags never
    /// match (If-Match uses strong comparison); tags that are not versions of
    /// ours can never match either, so both stay in as impossible versions.
    pub fn parse_if_match(value: &str) -> Result<Precondition> {
        let value = value.trim();
        if value == "*" {
            return Ok(Precondition::Exists);
        }
        let mut versions = Vec::new();
        for tag in value.split(',') {
            let tag = tag.trim();
            let (weak, quoted) = match tag.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, tag),
            };
            let inner = quoted
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
                .ok_or_else(|| {
                    Error::malformed("If-Match must be * or a list of quoted entity tags")
                        .with("header", "If-Match")
                })?;
            match inner.parse::<i64>() {
                Ok(v) if !weak => versions.push(v),
                _ => versions.push(-1),
            }
        }
        Ok(Precondition::Versions(versions))
    }

    /// Does a resource at `version` satisfy the condition?
    pub fn check(&self, version: i64) -> Result<()> {
        match self {
            Precondition::Versions(vs) if !vs.contains(&version) => {
                Err(Error::precondition_failed())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        assert_eq!(
            Precondition::parse_if_match("*").unwrap(),
            Precondition::Exists
        );
        let p = Precondition::parse_if_match("\"3\", \"4\"").unwrap();
        assert!(p.check(3).is_ok());
        assert!(p.check(5).is_err());
        let weak = Precondition::parse_if_match("W/\"3\"").unwrap();
        assert!(weak.check(3).is_err());
        assert!(Precondition::parse_if_match("3").is_err());
        assert!(Precondition::parse_if_match("\"a\"b\"").is_err());
        assert!(Precondition::None.check(9).is_ok());
    }
}
