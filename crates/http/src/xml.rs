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

use std::collections::HashSet;
use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::de::{self, IntoDeserializer, Visitor};
use serde_json::Value;

/// Maximum element nesting accepted in a request body (the root is depth 1).
const MAX_DEPTH: usize = 64;

/// The XML declaration every rendered document starts with.
const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Name of the element used for keys that are not valid XML names, and of
/// items whose field name has no usable singular.
const ENTRY: &str = "entry";
const ITEM: &str = "item";

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Renders a JSON document as XML. `list_item` names the elements of a top-level
/// `data` array (e.g. Some("role") for a list of roles); without it they are named singular("data") -> "item".
#[must_use]
pub fn to_xml(value: &Value, list_item: Option<&str>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(DECLARATION);
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("<response/>"),
        Value::Object(map) => {
            out.push_str("<response>");
            for (key, field) in map {
                let items = match (key.as_str(), field, list_item) {
                    ("data", Value::Array(_), Some(item)) => item_name(item),
                    _ => item_name(&singular(key)),
                };
                write_field(&mut out, key, field, &items);
            }
            out.push_str("</response>");
        }
        other => write_field(
            &mut out,
            "response",
            other,
            &item_name(&singular("response")),
        ),
    }
    out
}

/// The singular of an array field's name, used for the item elements.
#[must_use]
pub fn singular(name: &str) -> String {
    if name == "data" {
        return ITEM.to_owned();
    }
    let stem = if let Some(stem) = name.strip_suffix("ies") {
        format!("{stem}y")
    } else if ["sses", "xes", "ches", "shes", "zzes"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
    {
        name[..name.len() - 2].to_owned()
    } else if name.ends_with('s') && !name.ends_with("ss") {
        name[..name.len() - 1].to_owned()
    } else {
        return ITEM.to_owned();
    };
    if stem.is_empty() {
        ITEM.to_owned()
    } else {
        stem
    }
}

/// `name` if it can be used as an item element name, otherwise `item`.
fn item_name(name: &str) -> String {
    if is_valid_name(name) {
        name.to_owned()
    } else {
        ITEM.to_owned()
    }
}

/// Writes `value` as the element for field `key`; array items are named `items`.
fn write_field(out: &mut String, key: &str, value: &Value, items: &str) {
    let close = open_tag(out, key);
    write_content(out, value, items, close);
}

/// Writes `<name` (or `<entry key="name"` for an unusable name) and returns the
/// closing tag's name.
fn open_tag<'a>(out: &mut String, name: &'a str) -> &'a str {
    if is_valid_name(name) {
        out.push('<');
        out.push_str(name);
        name
    } else {
        out.push('<');
        out.push_str(ENTRY);
        out.push_str(" key=\"");
        escape_into(out, name, true);
        out.push('"');
        ENTRY
    }
}

/// Writes the rest of an element whose start tag (`<name attrs`) is already
/// written and still open.
fn write_content(out: &mut String, value: &Value, items: &str, close: &str) {
    match value {
        Value::Null => out.push_str(" nil=\"true\"/>"),
        Value::Bool(b) => {
            out.push('>');
            out.push_str(if *b { "true" } else { "false" });
            close_tag(out, close);
        }
        Value::Number(n) => {
            out.push('>');
            out.push_str(&n.to_string());
            close_tag(out, close);
        }
        Value::String(s) => {
            if s.is_empty() {
                out.push_str("/>");
            } else {
                out.push('>');
                escape_into(out, s, false);
                close_tag(out, close);
            }
        }
        Value::Array(list) if list.is_empty() => out.push_str("/>"),
        Value::Array(list) => {
            out.push('>');
            for item in list {
                out.push('<');
                out.push_str(items);
                // Arrays directly inside arrays hold `<item>` elements.
                write_content(out, item, ITEM, items);
            }
            close_tag(out, close);
        }
        Value::Object(map) if map.is_empty() => out.push_str("/>"),
        Value::Object(map) => {
            out.push('>');
            for (key, field) in map {
                write_field(out, key, field, &item_name(&singular(key)));
            }
            close_tag(out, close);
        }
    }
}

fn close_tag(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Appends `text` escaped for element content (or, with `attribute`, for a
/// double-quoted attribute value). Characters XML 1.0 does not allow become
/// U+FFFD; line-break and tab characters that a parser would normalise are
/// written as character references.
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Whether `c` is a `Char` of XML 1.0 (surrogates cannot occur in a `char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FFFE}'
        && c != '\u{FFFF}'
}

/// Whether `name` can be written as an element name: an XML 1.0 `Name`
/// without `:` (no namespace prefixes) that does not start with `xml`.
fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !is_name_start_char(first) || name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml")) {
        return false;
    }
    chars.all(is_name_char)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

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

/// The serde error of the tree deserializer.
#[derive(Debug)]
struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

// ---------------------------------------------------------------------------
// Parsing into a tree
// ---------------------------------------------------------------------------

/// One element of a parsed request body.
#[derive(Debug, Default)]
struct Node {
    /// The element's name (for `<entry key="k">`, the key `k`).
    name: String,
    /// `nil="true"` was present.
    nil: bool,
    /// Character data (entities decoded, CDATA included); empty when the
    /// element has child elements.
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn has_children(&self) -> bool {
        !self.children.is_empty()
    }

    /// No child elements and only whitespace as text.
    fn is_blank(&self) -> bool {
        !self.has_children() && is_xml_whitespace(&self.text)
    }
}

fn is_xml_whitespace(text: &str) -> bool {
    text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

fn trim_xml(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// Parses an XML request body and deserializes it, type-directed, into T.
///
/// # Errors
///
/// [`XmlErrorKind::Syntax`] when the body is not a single well-formed UTF-8
/// XML element (or uses a DOCTYPE, or nests deeper than 64 elements);
/// [`XmlErrorKind::Data`], with the path of the offending element, when its
/// content does not fit `T`.
pub fn from_slice<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, XmlError> {
    let root = parse_tree(bytes)?;
    serde_path_to_error::deserialize(NodeDe { node: &root }).map_err(|err| {
        let path = err.path().to_string();
        XmlError {
            kind: XmlErrorKind::Data,
            message: err.into_inner().0,
            path: (!path.is_empty() && path != ".").then_some(path),
        }
    })
}

/// Parses `bytes` into the root element's tree, rejecting anything that is not
/// a single well-formed UTF-8 element without DTD.
fn parse_tree(bytes: &[u8]) -> Result<Node, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        XmlError::syntax(format!(
            "the document is not valid UTF-8 (at byte {})",
            err.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);

    let mut reader = Reader::from_str(text);
    {
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
    }

    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader.read_event().map_err(|err| {
            XmlError::syntax(format!(
                "malformed XML at byte {}: {err}",
                reader.error_position()
            ))
        })?;
        match event {
            Event::Start(start) => {
                let node = open_element(&start, stack.len(), root.is_some())?;
                stack.push(node);
            }
            Event::Empty(start) => {
                let node = open_element(&start, stack.len(), root.is_some())?;
                close_element(node, &mut stack, &mut root)?;
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start tags.
                let node = stack
                    .pop()
                    .ok_or_else(|| XmlError::syntax("end tag without a start tag"))?;
                close_element(node, &mut stack, &mut root)?;
            }
            Event::Text(content) => {
                let content = content.unescape().map_err(|err| {
                    XmlError::syntax(format!(
                        "malformed XML at byte {}: {err}",
                        reader.buffer_position()
                    ))
                })?;
                add_text(&mut stack, &content)?;
            }
            Event::CData(content) => {
                if stack.is_empty() {
                    return Err(XmlError::syntax("CDATA outside the root element"));
                }
                let content = content
                    .decode()
                    .map_err(|err| XmlError::syntax(format!("malformed CDATA section: {err}")))?;
                add_text(&mut stack, &content)?;
            }
            Event::DocType(_) => {
                return Err(XmlError::syntax(
                    "DOCTYPE declarations are not allowed in request bodies",
                ));
            }
            Event::Decl(decl) => check_declaration(&decl)?,
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError::syntax(format!(
            "unexpected end of document: element `{}` is not closed",
            open.name
        )));
    }
    root.ok_or_else(|| XmlError::syntax("the document has no root element"))
}

/// Builds the node for a start (or empty-element) tag at nesting `depth`
/// (number of currently open ancestors).
fn open_element(start: &BytesStart<'_>, depth: usize, have_root: bool) -> Result<Node, XmlError> {
    if depth == 0 && have_root {
        return Err(XmlError::syntax(
            "the document has more than one root element",
        ));
    }
    if depth >= MAX_DEPTH {
        return Err(XmlError::syntax(format!(
            "elements are nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|_| XmlError::syntax("element name is not valid UTF-8"))?
        .to_owned();
    let mut node = Node {
        name,
        ..Node::default()
    };
    let mut key = None;
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|err| {
            XmlError::syntax(format!(
                "malformed attribute in element `{}`: {err}",
                node.name
            ))
        })?;
        let value = attribute.unescape_value().map_err(|err| {
            XmlError::syntax(format!(
                "malformed attribute in element `{}`: {err}",
                node.name
            ))
        })?;
        match attribute.key.as_ref() {
            b"nil" => node.nil = trim_xml(&value) == "true",
            b"key" if node.name == ENTRY => key = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(key) = key {
        node.name = key;
    }
    Ok(node)
}

/// Attaches a finished element to its parent, or makes it the root.
fn close_element(
    mut node: Node,
    stack: &mut [Node],
    root: &mut Option<Node>,
) -> Result<(), XmlError> {
    if node.has_children() {
        if !is_xml_whitespace(&node.text) {
            return Err(XmlError::syntax(format!(
                "element `{}` mixes text with child elements",
                node.name
            )));
        }
        node.text = String::new();
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
    Ok(())
}

fn add_text(stack: &mut [Node], content: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(content);
            Ok(())
        }
        None if is_xml_whitespace(content) => Ok(()),
        None => Err(XmlError::syntax("text outside the root element")),
    }
}

fn check_declaration(decl: &quick_xml::events::BytesDecl<'_>) -> Result<(), XmlError> {
    match decl.encoding() {
        None => Ok(()),
        Some(Ok(encoding)) if encoding.eq_ignore_ascii_case(b"utf-8") => Ok(()),
        Some(Ok(encoding)) => Err(XmlError::syntax(format!(
            "unsupported encoding `{}`: request bodies must be UTF-8",
            String::from_utf8_lossy(&encoding)
        ))),
        Some(Err(err)) => Err(XmlError::syntax(format!(
            "malformed XML declaration: {err}"
        ))),
    }
}

// ---------------------------------------------------------------------------
// Deserializing the tree
// ---------------------------------------------------------------------------

/// Deserializes one element (its content, not its name).
#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
}

impl<'a> NodeDe<'a> {
    /// What the element holds, for error messages.
    fn found(self) -> String {
        if self.node.nil {
            "nil".to_owned()
        } else if self.node.has_children() {
            format!("element `{}` with child elements", self.node.name)
        } else {
            format!("text {:?}", self.node.text)
        }
    }

    fn invalid(self, expected: &str) -> DeError {
        DeError(format!(
            "invalid type: expected {expected}, found {}",
            self.found()
        ))
    }

    /// The text of a leaf element, or an error naming `expected`.
    fn text(self, expected: &str) -> Result<&'a str, DeError> {
        if self.node.nil || self.node.has_children() {
            Err(self.invalid(expected))
        } else {
            Ok(&self.node.text)
        }
    }

    /// Parses the trimmed text of a leaf element.
    fn parse<T: std::str::FromStr>(self, expected: &str) -> Result<T, DeError> {
        trim_xml(self.text(expected)?)
            .parse()
            .map_err(|_| self.invalid(expected))
    }

    fn float(self, expected: &str) -> Result<f64, DeError> {
        let value: f64 = self.parse(expected)?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.invalid(expected))
        }
    }

    /// The child elements of an element read as a sequence or map. A blank
    /// element is an empty collection.
    fn children(self, expected: &str) -> Result<&'a [Node], DeError> {
        if self.node.nil || !(self.node.has_children() || self.node.is_blank()) {
            Err(self.invalid(expected))
        } else {
            Ok(&self.node.children)
        }
    }

    fn map_access(self, expected: &str) -> Result<ChildMap<'a>, DeError> {
        let children = self.children(expected)?;
        let mut seen = HashSet::with_capacity(children.len());
        for child in children {
            if !seen.insert(child.name.as_str()) {
                return Err(DeError(format!("repeated element `{}`", child.name)));
            }
        }
        Ok(ChildMap {
            iter: children.iter(),
            pending: None,
        })
    }

    /// Whether `deserialize_any` should read this element as a sequence.
    fn looks_like_seq(self) -> bool {
        match self.node.children.as_slice() {
            [only] => only.name == singular(&self.node.name),
            [first, rest @ ..] => rest.iter().all(|child| child.name == first.name),
            [] => false,
        }
    }
}

macro_rules! deserialize_number {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.nil {
            visitor.visit_unit()
        } else if !self.node.has_children() {
            visitor.visit_str(&self.node.text)
        } else if self.looks_like_seq() {
            self.deserialize_seq(visitor)
        } else {
            self.deserialize_map(visitor)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match trim_xml(self.text("bool")?) {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(self.invalid("bool")),
        }
    }

    deserialize_number! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = self.float("f32")?;
        if value.abs() > f64::from(f32::MAX) {
            return Err(self.invalid("f32"));
        }
        #[allow(clippy::cast_possible_truncation)]
        visitor.visit_f32(value as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f64(self.float("f64")?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.text("a character")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.invalid("a character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.text("string")?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_bytes(self.text("bytes")?.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.nil {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.nil || self.node.is_blank() {
            visitor.visit_unit()
        } else {
            Err(self.invalid("an empty element"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let children = self.children("a sequence")?;
        visitor.visit_seq(ChildSeq {
            iter: children.iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map_access("a map")?)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map_access(&format!("struct {name}"))?)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if self.node.nil {
            return Err(self.invalid(&format!("enum {name}")));
        }
        match self.node.children.as_slice() {
            [] => visitor.visit_enum(trim_xml(&self.node.text).into_deserializer()),
            [variant] => visitor.visit_enum(VariantDe { node: variant }),
            _ => Err(DeError(format!(
                "invalid type: expected enum {name} (a variant name, or one element named \
                 after the variant), found {} child elements",
                self.node.children.len()
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The child elements of an element as a sequence.
struct ChildSeq<'a> {
    iter: std::slice::Iter<'a, Node>,
}

impl<'de> de::SeqAccess<'de> for ChildSeq<'_> {
    type Error = DeError;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        match self.iter.next() {
            Some(node) => seed.deserialize(NodeDe { node }).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The child elements of an element as a map from element name to element.
struct ChildMap<'a> {
    iter: std::slice::Iter<'a, Node>,
    pending: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for ChildMap<'_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some(node) => {
                self.pending = Some(node);
                seed.deserialize(KeyDe { key: &node.name }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, DeError> {
        match self.pending.take() {
            Some(node) => seed.deserialize(NodeDe { node }),
            None => Err(DeError(
                "a map value was requested before its key".to_owned(),
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An element name used as a map key or struct field name.
struct KeyDe<'a> {
    key: &'a str,
}

impl KeyDe<'_> {
    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, DeError> {
        self.key.parse().map_err(|_| {
            DeError(format!(
                "invalid type: expected {expected} as key, found {:?}",
                self.key
            ))
        })
    }
}

macro_rules! deserialize_key_number {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.key)
    }

    deserialize_key_number! {
        deserialize_bool => bool, visit_bool;
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
        deserialize_f32 => f32, visit_f32;
        deserialize_f64 => f64, visit_f64;
        deserialize_char => char, visit_char;
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(self.key.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// An enum written as an element with one child named after the variant.
struct VariantDe<'a> {
    node: &'a Node,
}

impl<'de, 'a> de::EnumAccess<'de> for VariantDe<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, NodeDe<'a>), DeError> {
        let variant = seed.deserialize(KeyDe {
            key: &self.node.name,
        })?;
        Ok((variant, NodeDe { node: self.node }))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserializer::deserialize_unit(self, de::IgnoredAny).map(|_| ())
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map_access("a struct variant")?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    fn preserves_order() -> bool {
        json!({"b": 1, "a": 2})
            .as_object()
            .and_then(|map| map.keys().next().cloned())
            .as_deref()
            == Some("b")
    }

    fn body(xml: &str) -> &str {
        xml.strip_prefix(DECLARATION).expect("declaration")
    }

    // ----- rendering -----

    #[test]
    fn renders_declaration_and_root() {
        let xml = to_xml(&json!({"name": "a"}), None);
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><response><name>a</name></response>"#
        );
    }

    #[test]
    fn renders_list_with_list_item() {
        let value = json!({"data": [{"name": "a"}, {"name": "b"}], "nextPage": "x"});
        assert_eq!(
            body(&to_xml(&value, Some("role"))),
            "<response><data><role><name>a</name></role><role><name>b</name></role></data>\
             <nextPage>x</nextPage></response>"
        );
    }

    #[test]
    fn renders_list_without_list_item_as_items() {
        let value = json!({"data": [1, 2]});
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><data><item>1</item><item>2</item></data></response>"
        );
    }

    #[test]
    fn list_item_applies_only_to_top_level_data_array() {
        let value = json!({"data": {"data": [1]}});
        assert_eq!(
            body(&to_xml(&value, Some("role"))),
            "<response><data><data><item>1</item></data></data></response>"
        );
        // An unusable list item name falls back to `item`.
        assert_eq!(
            body(&to_xml(&json!({"data": [1]}), Some("1x"))),
            "<response><data><item>1</item></data></response>"
        );
    }

    #[test]
    fn renders_nested_arrays() {
        let value = json!({"data": {"roles": ["admin"]}});
        assert_eq!(
            body(&to_xml(&value, Some("user"))),
            "<response><data><roles><role>admin</role></roles></data></response>"
        );
        let value = json!({"matrix": [[1, 2], [], [[3]]]});
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><matrix><item><item>1</item><item>2</item></item><item/>\
             <item><item><item>3</item></item></item></matrix></response>"
        );
    }

    #[test]
    fn renders_null_with_nil() {
        let value = json!({"a": null, "list": [null, 1], "o": {"b": null}});
        assert_eq!(
            body(&to_xml(&value, None)),
            r#"<response><a nil="true"/><list><item nil="true"/><item>1</item></list><o><b nil="true"/></o></response>"#
        );
    }

    #[test]
    fn renders_scalars_and_empties() {
        // Keys in sorted order: the expectation holds with and without
        // serde_json's `preserve_order`.
        let value = json!({"a": [], "f": false, "i": -3, "o": {}, "s": "", "t": true, "x": 1.5});
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><a/><f>false</f><i>-3</i><o/><s/><t>true</t><x>1.5</x></response>"
        );
        assert_eq!(body(&to_xml(&json!({}), None)), "<response/>");
    }

    #[test]
    fn renders_non_object_top_level_as_content() {
        assert_eq!(body(&to_xml(&json!("hi"), None)), "<response>hi</response>");
        assert_eq!(
            body(&to_xml(&json!(null), None)),
            r#"<response nil="true"/>"#
        );
        assert_eq!(
            body(&to_xml(&json!([1, "a"]), Some("role"))),
            "<response><item>1</item><item>a</item></response>"
        );
    }

    #[test]
    fn escapes_text_and_attributes() {
        let value = json!({"s": "a & b < c > d \"q\" 'a'", "we\"ird<&>'": "v"});
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><s>a &amp; b &lt; c &gt; d \"q\" 'a'</s>\
             <entry key=\"we&quot;ird&lt;&amp;&gt;&apos;\">v</entry></response>"
        );
    }

    #[test]
    fn replaces_characters_not_allowed_in_xml() {
        let value = json!({"s": "a\u{0}b\u{1b}c\td\ne\rf\u{FFFE}g\u{FFFF}\u{10FFFF}"});
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><s>a\u{FFFD}b\u{FFFD}c\td\ne&#13;f\u{FFFD}g\u{FFFD}\u{10FFFF}</s></response>"
        );
        let value = json!({"bad\u{7}key\t": 1});
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><entry key=\"bad\u{FFFD}key&#9;\">1</entry></response>"
        );
    }

    #[test]
    fn invalid_key_names_become_entries() {
        // Keys in sorted order: the expectation holds with and without
        // serde_json's `preserve_order`.
        let value = json!({
            "": 1, "-x": 3, ".x": 4, "1abc": 2, "XmlThing": 6, "a:b": 7, "e": {"": []},
            "has space": 5, "k": null, "my things": [1], "ok_name-1.2": 8, "xmls": [2],
            "ünïcödé": 9
        });
        assert_eq!(
            body(&to_xml(&value, None)),
            "<response><entry key=\"\">1</entry><entry key=\"-x\">3</entry>\
             <entry key=\".x\">4</entry><entry key=\"1abc\">2</entry>\
             <entry key=\"XmlThing\">6</entry><entry key=\"a:b\">7</entry>\
             <e><entry key=\"\"/></e><entry key=\"has space\">5</entry><k nil=\"true\"/>\
             <entry key=\"my things\"><item>1</item></entry><ok_name-1.2>8</ok_name-1.2>\
             <entry key=\"xmls\"><item>2</item></entry><ünïcödé>9</ünïcödé></response>"
        );
    }

    #[test]
    fn renders_error_envelope() {
        let value = json!({"errors": [{"code": 2012, "message": "m",
            "context": {"expectedStates": ["Running"]}}]});
        let context = "<context><expectedStates><expectedState>Running</expectedState>\
                       </expectedStates></context>";
        // With serde_json's `preserve_order` the fields keep their order,
        // otherwise they are sorted.
        let expected = if preserves_order() {
            format!("<code>2012</code><message>m</message>{context}")
        } else {
            format!("<code>2012</code>{context}<message>m</message>")
        };
        assert_eq!(
            body(&to_xml(&value, None)),
            format!("<response><errors><error>{expected}</error></errors></response>")
        );
    }

    #[test]
    fn keeps_object_key_order() {
        let mut map = serde_json::Map::new();
        map.insert("b".into(), json!(1));
        map.insert("a".into(), json!(2));
        let xml = to_xml(&Value::Object(map.clone()), None);
        let expected: String = map.iter().map(|(k, v)| format!("<{k}>{v}</{k}>")).collect();
        assert_eq!(body(&xml), format!("<response>{expected}</response>"));
    }

    #[test]
    fn singular_cases() {
        let cases = [
            ("policies", "policy"),
            ("addresses", "address"),
            ("boxes", "box"),
            ("matches", "match"),
            ("hashes", "hash"),
            ("buzzes", "buzz"),
            ("roles", "role"),
            ("expectedStates", "expectedState"),
            ("permissions", "permission"),
            ("errors", "error"),
            ("instances", "instance"),
            ("data", "item"),
            ("address", "item"),
            ("info", "item"),
            ("response", "item"),
            ("s", "item"),
            ("", "item"),
        ];
        for (plural, expected) in cases {
            assert_eq!(singular(plural), expected, "singular({plural:?})");
        }
    }

    // ----- parsing -----

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    enum State {
        Running,
        Stopped,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Admin {
        email: String,
        login_count: u32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Instance {
        display_name: String,
        cpu: u32,
        description: Option<String>,
        note: Option<String>,
        #[serde(default)]
        label: Option<String>,
        roles: Vec<String>,
        admin: Admin,
        state: State,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn round_trips_a_struct() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <instance>
              <displayName>web &amp; db</displayName>
              <cpu> 4 </cpu>
              <description nil="true"/>
              <note>hello <![CDATA[<world>]]></note>
              <roles><role>admin</role><role>viewer</role></roles>
              <admin><email>a@example.com</email><loginCount>7</loginCount></admin>
              <state>Running</state>
              <!-- comment --><?pi ignored?>
            </instance>"#;
        let instance: Instance = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(
            instance,
            Instance {
                display_name: "web & db".into(),
                cpu: 4,
                description: None,
                note: Some("hello <world>".into()),
                label: None,
                roles: vec!["admin".into(), "viewer".into()],
                admin: Admin {
                    email: "a@example.com".into(),
                    login_count: 7
                },
                state: State::Running,
                tags: vec![],
            }
        );
    }

    #[test]
    fn round_trips_rendered_json() {
        let value = json!({
            "displayName": "x < y", "cpu": 2, "description": null, "note": "n",
            "label": "l", "roles": [], "admin": {"email": "e", "loginCount": 0},
            "state": "Stopped", "tags": ["a"]
        });
        let xml = to_xml(&value, None);
        let instance: Instance = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(instance.display_name, "x < y");
        assert_eq!(instance.description, None);
        assert_eq!(instance.label.as_deref(), Some("l"));
        assert!(instance.roles.is_empty());
        assert_eq!(instance.tags, vec!["a".to_string()]);
        assert_eq!(instance.state, State::Stopped);
        let expected: Instance = serde_json::from_value(value).unwrap();
        assert_eq!(instance, expected);
    }

    #[test]
    fn deny_unknown_fields_rejects_unknown_element() {
        let xml = "<instance><displayName>a</displayName><bogus>1</bogus></instance>";
        let err = from_slice::<Instance>(xml.as_bytes()).unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert!(err.message.contains("unknown field `bogus`"), "{err}");
    }

    #[test]
    fn missing_field_is_data_error() {
        let err = from_slice::<Admin>(b"<admin><email>e</email></admin>").unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert!(err.message.contains("missing field `loginCount`"), "{err}");
        assert_eq!(err.path, None);
    }

    #[test]
    fn type_error_carries_path() {
        #[derive(Debug, Deserialize)]
        struct Spec {
            #[allow(dead_code)]
            cpu: u32,
        }
        let err = from_slice::<Spec>(b"<instance><cpu>abc</cpu></instance>").unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert_eq!(err.path.as_deref(), Some("cpu"));
        assert_eq!(
            err.message,
            "invalid type: expected u32, found text \"abc\""
        );
        assert_eq!(
            err.to_string(),
            "invalid type: expected u32, found text \"abc\" (at `cpu`)"
        );

        let xml = "<instance><displayName>a</displayName><cpu>1</cpu>\
                   <description nil=\"true\"/><note>n</note>\
                   <roles><role>a</role><role><x>1</x></role></roles></instance>";
        let err = from_slice::<Instance>(xml.as_bytes()).unwrap_err();
        assert_eq!(err.path.as_deref(), Some("roles[1]"));

        let xml = "<instance><displayName>a</displayName><cpu>1</cpu>\
                   <description/><note/><roles/><admin><email><b/></email></admin></instance>";
        let err = from_slice::<Instance>(xml.as_bytes()).unwrap_err();
        assert_eq!(err.path.as_deref(), Some("admin.email"));
        assert!(err.message.contains("expected string"), "{err}");
    }

    #[test]
    fn repeated_element_is_data_error() {
        let err =
            from_slice::<Admin>(b"<admin><email>a</email><email>b</email></admin>").unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert_eq!(err.message, "repeated element `email`");
        let err =
            from_slice::<BTreeMap<String, String>>(b"<m><a>1</a><b/><a>2</a></m>").unwrap_err();
        assert_eq!(err.message, "repeated element `a`");
    }

    #[test]
    fn scalar_types() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct All {
            b: bool,
            i8: i8,
            i64: i64,
            u8: u8,
            u64: u64,
            i128: i128,
            f32: f32,
            f64: f64,
            c: char,
            s: String,
            unit: (),
            tuple: (u8, String),
            bytes: serde_json::Value,
        }
        let xml =
            "<x><b> true </b><i8>-8</i8><i64>-64</i64><u8>8</u8><u64>18446744073709551615</u64>\
                   <i128>-170141183460469231731687303715884105728</i128><f32>1.5</f32>\
                   <f64>-2.5e3</f64><c>é</c><s>  spaced  </s><unit/>\
                   <tuple><a>1</a><b>x</b></tuple><bytes>raw</bytes></x>";
        let all: All = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(
            all,
            All {
                b: true,
                i8: -8,
                i64: -64,
                u8: 8,
                u64: u64::MAX,
                i128: i128::MIN,
                f32: 1.5,
                f64: -2500.0,
                c: 'é',
                s: "  spaced  ".into(),
                unit: (),
                tuple: (1, "x".into()),
                bytes: json!("raw"),
            }
        );

        for (xml, message) in [
            ("<v><b>yes</b></v>", "expected bool, found text \"yes\""),
            ("<v><u8>256</u8></v>", "expected u8, found text \"256\""),
            ("<v><u8>-1</u8></v>", "expected u8, found text \"-1\""),
            ("<v><f64>NaN</f64></v>", "expected f64, found text \"NaN\""),
            (
                "<v><f32>1e39</f32></v>",
                "expected f32, found text \"1e39\"",
            ),
            (
                "<v><c>ab</c></v>",
                "expected a character, found text \"ab\"",
            ),
            ("<v><s nil=\"true\"/></v>", "expected string, found nil"),
            (
                "<v><unit>x</unit></v>",
                "expected an empty element, found text \"x\"",
            ),
        ] {
            #[derive(Debug, Deserialize)]
            #[allow(dead_code)]
            struct V {
                b: Option<bool>,
                u8: Option<u8>,
                f64: Option<f64>,
                f32: Option<f32>,
                c: Option<char>,
                s: Option<()>,
                unit: Option<()>,
            }
            #[derive(Debug, Deserialize)]
            #[allow(dead_code)]
            struct S {
                s: String,
            }
            let err = if xml.contains("<s ") {
                from_slice::<S>(xml.as_bytes()).unwrap_err()
            } else {
                from_slice::<V>(xml.as_bytes()).unwrap_err()
            };
            assert_eq!(err.kind, XmlErrorKind::Data, "{xml}");
            assert!(err.message.contains(message), "{xml}: {err}");
        }
    }

    #[test]
    fn bytes_and_newtypes() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Id(String);
        #[derive(Debug, PartialEq, Deserialize)]
        struct Marker;
        #[derive(Debug, PartialEq, Deserialize)]
        struct W {
            id: Id,
            marker: Marker,
            #[serde(with = "bytes_as_vec")]
            raw: Vec<u8>,
        }
        mod bytes_as_vec {
            pub fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Vec<u8>, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Vec<u8>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                        Ok(v.to_vec())
                    }
                }
                d.deserialize_bytes(V)
            }
        }
        let w: W = from_slice(b"<w><id>i-1</id><marker/><raw>abc</raw></w>").unwrap();
        assert_eq!(
            w,
            W {
                id: Id("i-1".into()),
                marker: Marker,
                raw: b"abc".to_vec()
            }
        );
    }

    #[test]
    fn enums() {
        #[derive(Debug, PartialEq, Deserialize)]
        #[serde(rename_all = "camelCase")]
        enum Action {
            Start,
            Resize(u32),
            Move { zone: String },
            Pair(u8, u8),
        }
        #[derive(Debug, Deserialize)]
        struct Req {
            action: Action,
        }
        let parse = |xml: &str| from_slice::<Req>(xml.as_bytes()).map(|r| r.action);
        assert_eq!(
            parse("<r><action> start </action></r>").unwrap(),
            Action::Start
        );
        assert_eq!(
            parse("<r><action><start/></action></r>").unwrap(),
            Action::Start
        );
        assert_eq!(
            parse("<r><action><resize>4</resize></action></r>").unwrap(),
            Action::Resize(4)
        );
        assert_eq!(
            parse("<r><action><move><zone>z1</zone></move></action></r>").unwrap(),
            Action::Move { zone: "z1".into() }
        );
        assert_eq!(
            parse("<r><action><pair><i>1</i><i>2</i></pair></action></r>").unwrap(),
            Action::Pair(1, 2)
        );
        let err = parse("<r><action>fly</action></r>").unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert!(err.message.contains("unknown variant `fly`"), "{err}");
        assert_eq!(err.path.as_deref(), Some("action"));
        assert!(parse("<r><action><resize>x</resize></action></r>").is_err());
        assert!(parse("<r><action><a/><b/></action></r>").is_err());
        assert!(parse("<r><action>resize</action></r>").is_err());
        assert!(parse("<r><action nil=\"true\"/></r>").is_err());
    }

    #[test]
    fn defaults_and_maps() {
        #[derive(Debug, PartialEq, Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Opts {
            max_count: u32,
            names: Vec<String>,
            labels: BTreeMap<String, String>,
            ports: BTreeMap<u16, bool>,
        }
        let opts: Opts = from_slice(b"<opts/>").unwrap();
        assert_eq!(opts, Opts::default());
        let xml =
            "<opts>\n  <labels><env>prod</env><entry key=\"team name\">core</entry></labels>\n\
                   <ports><entry key=\"80\">true</entry></ports></opts>";
        let opts: Opts = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(opts.labels.get("env").map(String::as_str), Some("prod"));
        assert_eq!(
            opts.labels.get("team name").map(String::as_str),
            Some("core")
        );
        assert_eq!(opts.ports.get(&80), Some(&true));
        let err = from_slice::<Opts>(b"<opts><names>text</names></opts>").unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert_eq!(err.path.as_deref(), Some("names"));
    }

    #[test]
    fn value_target() {
        let xml = "<instance><name>a</name><cpu>4</cpu><gone nil=\"true\"/>\
                   <roles><role>admin</role></roles><tags><t>x</t><t>y</t></tags>\
                   <meta><a>1</a><b/></meta><empty/></instance>";
        let value: Value = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(
            value,
            json!({"name": "a", "cpu": "4", "gone": null, "roles": ["admin"],
                   "tags": ["x", "y"], "meta": {"a": "1", "b": ""}, "empty": ""})
        );
        // Rendering and parsing back gives the same shape (scalars become text).
        let original =
            json!({"errors": [{"code": "1", "context": {"expectedStates": ["A", "B"]}}]});
        let parsed: Value = from_slice(to_xml(&original, None).as_bytes()).unwrap();
        assert_eq!(parsed, original);
        let repeated = from_slice::<Value>(b"<x><a>1</a><b/><a>2</a></x>").unwrap_err();
        assert_eq!(repeated.message, "repeated element `a`");
    }

    #[test]
    fn root_name_is_not_checked_and_root_may_be_nil() {
        let admin: Admin =
            from_slice(b"<whatever><email>e</email><loginCount>1</loginCount></whatever>").unwrap();
        assert_eq!(admin.login_count, 1);
        let none: Option<Admin> = from_slice(b"<admin nil=\"true\"/>").unwrap();
        assert_eq!(none, None);
        let err = from_slice::<Admin>(b"<admin>text</admin>").unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Data);
        assert_eq!(err.path, None);
    }

    #[test]
    fn entities_and_bom() {
        let s: BTreeMap<String, String> =
            from_slice("\u{FEFF}<x><a>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</a></x>".as_bytes())
                .unwrap();
        assert_eq!(s["a"], "<>&\"'AB");
    }

    fn syntax_error(input: &[u8]) -> XmlError {
        let err = from_slice::<Value>(input).unwrap_err();
        assert_eq!(err.kind, XmlErrorKind::Syntax, "{input:?}: {err}");
        assert_eq!(err.path, None);
        err
    }

    #[test]
    fn doctype_is_rejected() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        let err = syntax_error(xml.as_bytes());
        assert!(err.message.contains("DOCTYPE"), "{err}");
        syntax_error(b"<x>&a;</x>");
    }

    #[test]
    fn syntax_errors() {
        for (input, fragment) in [
            (&b""[..], "no root element"),
            (b"   ", "no root element"),
            (b"<a/><b/>", "more than one root"),
            (b"<a></a><b></b>", "more than one root"),
            (b"text<a/>", "text outside"),
            (b"<a/>text", "text outside"),
            (b"<a/><![CDATA[x]]>", "CDATA outside"),
            (b"<a><b></a>", "malformed"),
            (b"<a>", "not closed"),
            (b"<a><b>", "not closed"),
            (b"</a>", "malformed"),
            (b"<a b></a>", "attribute"),
            (b"<a b=\"1\" b=\"2\"/>", "attribute"),
            (b"<a>\xff</a>", "UTF-8"),
            (b"<a>x<b/></a>", "mixes text"),
            (
                b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
                "encoding",
            ),
        ] {
            let err = syntax_error(input);
            assert!(
                err.message.contains(fragment),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn nesting_limit() {
        let ok = format!("{}{}", "<a>".repeat(64), "</a>".repeat(64));
        assert!(from_slice::<Value>(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "<a>".repeat(65), "</a>".repeat(65));
        let err = syntax_error(deep.as_bytes());
        assert!(err.message.contains("deeper than 64"), "{err}");
        let deep_empty = format!("{}<a/>{}", "<a>".repeat(64), "</a>".repeat(64));
        syntax_error(deep_empty.as_bytes());
        let huge = "<a>".repeat(100_000);
        syntax_error(huge.as_bytes());
    }

    #[test]
    fn whitespace_between_elements_is_ignored() {
        let roles: Vec<String> =
            from_slice(b"\n<roles>\n  <role>a</role>\n  <role> b </role>\n</roles>\n").unwrap();
        assert_eq!(roles, vec!["a".to_string(), " b ".to_string()]);
        let empty: Vec<String> = from_slice(b"<roles>\n</roles>").unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples: Vec<Vec<u8>> = vec![
            b"<".to_vec(),
            b"<a".to_vec(),
            b"<a><".to_vec(),
            b"<a></".to_vec(),
            b"<a x=".to_vec(),
            b"<a x='".to_vec(),
            b"<!--".to_vec(),
            b"<![CDATA[".to_vec(),
            b"<?xml".to_vec(),
            b"<!DOCTYPE".to_vec(),
            b"&amp;".to_vec(),
            b"<a>&#0;</a>".to_vec(),
            b"<a>&#xD800;</a>".to_vec(),
            b"<a>&#99999999999;</a>".to_vec(),
            b"<a>&</a>".to_vec(),
            b"\x00\x01\x02".to_vec(),
            vec![0xfe, 0xff, 0, b'<'],
            b"<a><b nil=\"true\">x</b></a>".to_vec(),
        ];
        let full = r#"<?xml version="1.0"?><instance><displayName>a</displayName><cpu>1</cpu><description nil="true"/><note><![CDATA[x]]></note><roles><role>a</role></roles><admin><email>e</email><loginCount>2</loginCount></admin><state>Running</state></instance>"#;
        assert!(from_slice::<Instance>(full.as_bytes()).is_ok());
        let mut inputs = samples;
        for end in 0..full.len() {
            inputs.push(full.as_bytes()[..end].to_vec());
        }
        // Deterministic pseudo-random byte soup and mutations of a valid document.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"<>/=\"'&;!?[]-ab x\n#CDATA";
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let soup: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            inputs.push(soup);
            let mut mutated = full.as_bytes().to_vec();
            let at = (next() % mutated.len() as u64) as usize;
            mutated[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            inputs.push(mutated);
        }
        for input in &inputs {
            let _ = from_slice::<Value>(input);
            let _ = from_slice::<Instance>(input);
            let _ = from_slice::<Vec<State>>(input);
            let _ = from_slice::<(u8, Option<String>)>(input);
        }
    }

    #[test]
    fn large_documents_stay_linear() {
        let mut xml = String::from("<m>");
        for i in 0..50_000 {
            xml.push_str(&format!("<k{i}>v</k{i}>"));
        }
        xml.push_str("</m>");
        let map: BTreeMap<String, String> = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(map.len(), 50_000);
        let value: Value = from_slice(xml.as_bytes()).unwrap();
        assert_eq!(value.as_object().map(serde_json::Map::len), Some(50_000));
    }

    #[test]
    fn error_display() {
        let err = syntax_error(b"<a>");
        assert!(err.to_string().starts_with("invalid XML: "), "{err}");
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(!boxed.to_string().is_empty());
    }
}
