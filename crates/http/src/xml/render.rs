//! Rendering a JSON document as XML, by the mapping of [`super`].

use serde_json::Value;

use super::{ENTRY, ITEM};

/// The XML declaration every rendered document starts with.
pub(super) const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

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
