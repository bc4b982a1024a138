//! JSON ⇄ XML conversion for the XML representation of the API.
//!
//! The mapping (the contract): XML mirrors JSON one to one.
//!
//! * The root element of a response is `<response>`; an object's fields become
//!   child elements, in the object's key order.
//! * An array in field `roles` becomes `<roles>` holding one `<role>` per item
//!   (the [`singular`] of the field name). In a list response the top-level
//!   `data` array holds one element per item named after the resource in the
//!   singular (`<response><data><role>…</role><role>…</role></data></response>`).
//!   Arrays nested directly in arrays hold `<item>` elements.
//! * `null` becomes an empty element with `nil="true"`.
//! * A key that is not a usable XML element name becomes
//!   `<entry key="ORIGINAL KEY">`.
//! * XML request bodies follow the same mapping; their root element is named
//!   after the resource (`<instance>…</instance>`) and is not checked. They are
//!   deserialized type-directed (like `serde_json`) by [`from_slice`].

mod de;
mod parse;
mod render;
#[cfg(test)]
mod tests;

use std::fmt;

pub use render::{singular, to_xml};

/// Name of the element used for keys that are not valid XML names, and of
/// items whose field name has no usable singular.
const ENTRY: &str = "entry";
const ITEM: &str = "item";

/// Why an XML request body could not be read.
#[derive(Debug)]
pub struct XmlError {
    pub kind: XmlErrorKind,
    pub message: String,
    /// Where in the document a [`XmlErrorKind::Data`] error occurred, e.g.
    /// `admin.email` or `roles[1]`; `None` at the root or for syntax errors.
    pub path: Option<String>,
}

/// The kind of an [`XmlError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlErrorKind {
    /// Not well-formed XML, or a forbidden construct (DOCTYPE, excessive
    /// nesting, several roots, …).
    Syntax,
    /// Well-formed XML whose content does not fit the expected type.
    Data,
}

impl XmlError {
    fn syntax(message: impl Into<String>) -> Self {
        Self {
            kind: XmlErrorKind::Syntax,
            message: message.into(),
            path: None,
        }
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.path) {
            (XmlErrorKind::Syntax, _) => write!(f, "invalid XML: {}", self.message),
            (XmlErrorKind::Data, Some(path)) => write!(f, "{} (at `{path}`)", self.message),
            (XmlErrorKind::Data, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for XmlError {}

/// Parses an XML request body and deserializes it, type-directed, into T.
///
/// # Errors
///
/// [`XmlErrorKind::Syntax`] when the body is not a single well-formed UTF-8
/// XML element (or uses a DOCTYPE, or nests deeper than 64 elements);
/// [`XmlErrorKind::Data`], with the path of the offending element, when its
/// content does not fit `T`.
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, XmlError> {
    let root = parse::parse_tree(bytes)?;
    de::deserialize(&root)
}
