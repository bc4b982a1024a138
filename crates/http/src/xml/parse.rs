//! Parsing a request body into a tree of elements, refusing what the
//! mapping does not allow (a DTD, several roots, excessive nesting).

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::{XmlError, ENTRY};

/// Maximum element nesting accepted in a request body (the root is depth 1).
const MAX_DEPTH: usize = 64;

/// One element of a parsed request body.
#[derive(Debug, Default)]
pub(super) struct Node {
    /// The element's name (for `<entry key="k">`, the key `k`).
    pub(super) name: String,
    /// `nil="true"` was present.
    pub(super) nil: bool,
    /// Character data (entities decoded, CDATA included); empty when the
    /// element has child elements.
    pub(super) text: String,
    pub(super) children: Vec<Node>,
}

impl Node {
    pub(super) fn has_children(&self) -> bool {
        !self.children.is_empty()
    }

    /// No child elements and only whitespace as text.
    pub(super) fn is_blank(&self) -> bool {
        !self.has_children() && is_xml_whitespace(&self.text)
    }
}

fn is_xml_whitespace(text: &str) -> bool {
    text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

pub(super) fn trim_xml(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// a single well-formed UTF-8 element without DTD.
pub(super) fn parse_tree(bytes: &[u8]) -> Result<Node, XmlError> {
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
