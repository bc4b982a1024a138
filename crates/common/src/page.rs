//! Keyset pagination. A page token is opaque to callers: base64url of a
//! versioned cursor (the last id returned), so lists stay stable while rows
//! are added and a page costs the same however deep it is.

use crate::{Error, FieldError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Return items strictly after this cursor.
    pub after: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// One page of results; `next` is the cursor of the last item when more remain.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in cursor order.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(cursor) } else { None };
        Page { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

const TOKEN_PREFIX: &str = "v1:";

pub fn encode_token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{cursor}"))
}

/// Parses `?limit=` and `?pageToken=` as they arrive in the query string.
pub fn parse(limit: Option<&str>, page_token: Option<&str>) -> Result<PageRequest, Error> {
    let mut bad = Vec::new();
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                bad.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let after = match page_token {
        None | Some("") => None,
        Some(raw) => match decode_token(raw) {
            Some(c) => Some(c),
            None => {
                bad.push(FieldError::new(
                    "pageToken",
                    "is not a page token this server issued",
                ));
                None
            }
        },
    };
    if bad.is_empty() {
        Ok(PageRequest { limit, after })
    } else {
        Err(Error::validation(bad))
    }
}

fn decode_token(raw: &str) -> Option<String> {
    if raw.len() > 512 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let s = String::from_utf8(bytes).ok()?;
    let cursor = s.strip_prefix(TOKEN_PREFIX)?;
    // Cursors are ids (or id-like keys): refuse anything else outright.
    if cursor.is_empty()
        || !cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
    {
        return None;
    }
    Some(cursor.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = encode_token("0190-abc");
        let p = parse(Some("5"), Some(&t)).unwrap();
        assert_eq!(p.limit, 5);
        assert_eq!(p.after.as_deref(), Some("0190-abc"));
    }

    #[test]
    fn bad_limit_and_token_are_both_reported() {
        let e = parse(Some("100000"), Some("garbage!")).unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(e.details().len(), 2);
        assert!(parse(Some("0"), None).is_err());
        assert!(parse(Some("abc"), None).is_err());
        assert!(parse(None, Some(&URL_SAFE_NO_PAD.encode("v1:'; drop"))).is_err());
    }

    #[test]
    fn page_from_rows() {
        let p = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next.as_deref(), Some("2"));
        let p = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(p.next, None);
    }
}
