//! Offline HTML reference page for the OpenAPI document (`GET /docs`).
//!
//! The spec is serialized with serde and walked as a JSON tree, so the page
//! follows exactly what `/openapi.json` publishes. The tree keeps the order
//! in which utoipa serialized object keys (schema properties in declaration
//! order), which `serde_json::Value` without its `preserve_order` feature
//! would not.
//!
//! The page is one self-contained document: inline CSS, no JavaScript, no
//! fonts, images or links to other hosts. Every string taken from the spec
//! is HTML-escaped, every anchor is a sanitized, unique id, and a link is
//! only emitted when its target exists on the page. Same spec, same bytes.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// HTTP methods in the order operations of one path are listed.
const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

/// How deep inline schemas are expanded before the rendering gives up with `…`.
const MAX_DEPTH: usize = 6;

/// How many `$ref` hops are followed for components other than schemas.
const MAX_REF_HOPS: usize = 8;

/// Tag group for operations that have no tag.
const UNTAGGED: &str = "Other";

/// Renders the OpenAPI document as one self-contained HTML page.
pub fn render(spec: &utoipa::openapi::OpenApi) -> String {
    let tree = serde_json::to_string(spec).and_then(|json| serde_json::from_str::<Node>(&json));
    match tree {
        Ok(doc) => Page::new(&doc).render(),
        Err(err) => error_page(&err.to_string()),
    }
}

/// The page shown when the spec cannot be serialized.
fn error_page(reason: &str) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>API reference unavailable</title>\n");
    out.push_str("<style>");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n<main>\n<h1>API reference unavailable</h1>\n");
    out.push_str("<p>The OpenAPI document could not be serialized: ");
    out.push_str(&escape(reason));
    out.push_str("</p>\n</main>\n</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------
// JSON tree that keeps object key order.

/// A JSON value whose objects keep their keys in document order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    /// A number, kept as serde_json prints it.
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Items of the array under `key`, empty when absent.
    fn arr_at(&self, key: &str) -> &[Node] {
        match self.get(key) {
            Some(Node::Arr(items)) => items,
            _ => &[],
        }
    }

    /// Entries of the object under `key`, empty when absent.
    fn entries_at(&self, key: &str) -> &[(String, Node)] {
        match self.get(key) {
            Some(node) => node.entries(),
            None => &[],
        }
    }

    fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Obj(entries) => entries,
            _ => &[],
        }
    }

    fn is_true(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Node::Bool(true)))
    }

    /// Compact JSON text of this value.
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Indented JSON text of this value.
    fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(|n| Node::Num(n.to_string()))
            .unwrap_or(Node::Null))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            entries.push((key, value));
        }
        Ok(Node::Obj(entries))
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Num(n) => match n.parse::<serde_json::Number>() {
                Ok(number) => number.serialize(serializer),
                Err(_) => serializer.serialize_str(n),
            },
            Node::Str(s) => serializer.serialize_str(s),
            Node::Arr(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Obj(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Text helpers.

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a text run, turning balanced `` `code` `` spans into `<code>`.
fn inline_text(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let mut out = String::with_capacity(text.len());
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(&escape(part));
        } else if i + 1 == parts.len() {
            // The last backtick has no partner: keep it literal.
            out.push('`');
            out.push_str(&escape(part));
        } else {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        }
    }
    out
}

/// Splits text on blank lines into `<p>` paragraphs of escaped text.
fn paragraphs(text: &str, class: &str) -> String {
    let mut out = String::new();
    let mut current: Vec<&str> = Vec::new();
    let lines = text.lines().chain(std::iter::once(""));
    for line in lines {
        if line.trim().is_empty() {
            if !current.is_empty() {
                let joined = current.join("\n");
                out.push_str("<p");
                if !class.is_empty() {
                    out.push_str(" class=\"");
                    out.push_str(class);
                    out.push('"');
                }
                out.push('>');
                out.push_str(&inline_text(joined.trim()));
                out.push_str("</p>\n");
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    out
}

/// Keeps ASCII letters, digits and the given extra characters; everything
/// else becomes `-`, runs of `-` collapse and edge dashes are trimmed.
fn slug(text: &str, keep: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || keep.contains(&c) {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Decodes one JSON-pointer segment (`~1` is `/`, `~0` is `~`).
fn pointer_unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Hands out ids that are unique on the page.
#[derive(Default)]
struct Ids {
    used: BTreeSet<String>,
}

impl Ids {
    fn claim(&mut self, base: &str) -> String {
        if self.used.insert(base.to_owned()) {
            return base.to_owned();
        }
        let mut n = 2usize;
        loop {
            let candidate = format!("{base}-{n}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Page model.

/// One operation of the spec, with its place on the page.
struct Operation<'a> {
    method: &'static str,
    path: &'a str,
    item: &'a Node,
    op: &'a Node,
    id: String,
    tag: String,
}

struct Page<'a> {
    doc: &'a Node,
    ops: Vec<Operation<'a>>,
    /// Schema name → anchor id.
    schema_ids: BTreeMap<String, String>,
    /// Security scheme name → anchor id.
    security_ids: BTreeMap<String, String>,
}

impl<'a> Page<'a> {
    fn new(doc: &'a Node) -> Self {
        let mut ids = Ids::default();
        for fixed in ["top", "contents", "operations", "schemas", "security"] {
            ids.claim(fixed);
        }
        let mut ops = Vec::new();
        for (path, item) in doc.entries_at("paths") {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                if !matches!(op, Node::Obj(_)) {
                    continue;
                }
                let path_slug = match slug(path, &['_']) {
                    s if s.is_empty() => "root".to_owned(),
                    s => s,
                };
                let id = ids.claim(&format!("op-{method}-{path_slug}"));
                let tag = op
                    .arr_at("tags")
                    .iter()
                    .find_map(Node::as_str)
                    .unwrap_or(UNTAGGED)
                    .to_owned();
                ops.push(Operation {
                    method,
                    path,
                    item,
                    op,
                    id,
                    tag,
                });
            }
        }
        let components = doc.get("components");
        let mut schema_ids = BTreeMap::new();
        for (name, _) in components.map_or(&[][..], |c| c.entries_at("schemas")) {
            let base = match slug(name, &['_', '.']) {
                s if s.is_empty() => "schema".to_owned(),
                s => format!("schema-{s}"),
            };
            schema_ids.insert(name.clone(), ids.claim(&base));
        }
        let mut security_ids = BTreeMap::new();
        for (name, _) in components.map_or(&[][..], |c| c.entries_at("securitySchemes")) {
            let base = match slug(name, &['_', '.']) {
                s if s.is_empty() => "security-scheme".to_owned(),
                s => format!("security-{s}"),
            };
            security_ids.insert(name.clone(), ids.claim(&base));
        }
        Page {
            doc,
            ops,
            schema_ids,
            security_ids,
        }
    }

    fn components(&self, kind: &str) -> &'a [(String, Node)] {
        match self.doc.get("components") {
            Some(c) => c.entries_at(kind),
            None => &[],
        }
    }

    /// Follows local `$ref`s (`#/components/...`) to the object they name.
    /// Returns the node itself when it is no reference or the target is missing.
    fn resolve(&self, node: &'a Node) -> &'a Node {
        let mut current = node;
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = current.str_at("$ref") else {
                return current;
            };
            match self.pointer(reference) {
                Some(target) => current = target,
                None => return current,
            }
        }
        current
    }

    fn pointer(&self, reference: &str) -> Option<&'a Node> {
        let path = reference.strip_prefix("#/")?;
        let mut current = self.doc;
        for segment in path.split('/') {
            let key = pointer_unescape(segment);
            current = match current {
                Node::Obj(_) => current.get(&key)?,
                Node::Arr(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    fn render(&self) -> String {
        let info = self.doc.get("info");
        let title = info
            .and_then(|i| i.str_at("title"))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("API");
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        out.push_str("<title>");
        out.push_str(&escape(title));
        out.push_str(" API reference</title>\n<style>");
        out.push_str(CSS);
        out.push_str("</style>\n</head>\n<body>\n<main>\n");
        self.header(&mut out, title);
        self.contents(&mut out);
        self.shared_errors(&mut out);
        self.operations(&mut out);
        self.schemas(&mut out);
        self.security(&mut out);
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }

    fn header(&self, out: &mut String, title: &str) {
        let info = self.doc.get("info");
        out.push_str("<header id=\"top\">\n<h1>");
        out.push_str(&escape(title));
        out.push_str(" <span class=\"muted\">API reference</span></h1>\n");
        let mut meta = Vec::new();
        if let Some(version) = info.and_then(|i| i.str_at("version")) {
            meta.push(format!("Version <code>{}</code>", escape(version)));
        }
        meta.push(format!(
            "OpenAPI <code>{}</code>",
            escape(self.doc.str_at("openapi").unwrap_or("3.1"))
        ));
        if let Some(license) = info.and_then(|i| i.get("license")) {
            if let Some(name) = license.str_at("name").filter(|n| !n.trim().is_empty()) {
                meta.push(format!("License: {}", escape(name)));
            }
        }
        if let Some(contact) = info.and_then(|i| i.get("contact")) {
            let parts: Vec<String> = ["name", "email", "url"]
                .iter()
                .filter_map(|k| contact.str_at(k))
                .filter(|v| !v.trim().is_empty())
                .map(escape)
                .collect();
            if !parts.is_empty() {
                meta.push(format!("Contact: {}", parts.join(", ")));
            }
        }
        out.push_str("<p class=\"meta\">");
        out.push_str(&meta.join(" · "));
        out.push_str("</p>\n");
        if let Some(summary) = info.and_then(|i| i.str_at("summary")) {
            out.push_str(&paragraphs(summary, "summary"));
        }
        if let Some(description) = info.and_then(|i| i.str_at("description")) {
            out.push_str("<div class=\"desc\">\n");
            out.push_str(&paragraphs(description, ""));
            out.push_str("</div>\n");
        }
        let servers = self.doc.arr_at("servers");
        if !servers.is_empty() {
            out.push_str("<p class=\"meta\">Servers:</p>\n<ul class=\"servers\">\n");
            for server in servers {
                out.push_str("<li><code>");
                out.push_str(&escape(server.str_at("url").unwrap_or("")));
                out.push_str("</code>");
                if let Some(d) = server.str_at("description") {
                    out.push_str(" — ");
                    out.push_str(&inline_text(d));
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</header>\n");
    }

    /// Tag groups in page order: declared tags first (in declaration order),
    /// then undeclared tags by first use, then the untagged group.
    fn tag_groups(&self) -> Vec<(String, Vec<&Operation<'a>>)> {
        let mut order: Vec<String> = Vec::new();
        for tag in self.doc.arr_at("tags") {
            if let Some(name) = tag.str_at("name") {
                if name != UNTAGGED
                    && !order.iter().any(|o| o == name)
                    && self.ops.iter().any(|op| op.tag == name)
                {
                    order.push(name.to_owned());
                }
            }
        }
        for op in &self.ops {
            if op.tag != UNTAGGED && !order.contains(&op.tag) {
                order.push(op.tag.clone());
            }
        }
        if self.ops.iter().any(|op| op.tag == UNTAGGED) {
            order.push(UNTAGGED.to_owned());
        }
        order
            .into_iter()
            .map(|tag| {
                let ops = self.ops.iter().filter(|op| op.tag == tag).collect();
                (tag, ops)
            })
            .collect()
    }

    fn contents(&self, out: &mut String) {
        out.push_str("<nav id=\"contents\">\n<h2>Contents</h2>\n");
        if self.ops.is_empty() {
            out.push_str("<p class=\"muted\">This API has no operations.</p>\n");
        }
        for (tag, ops) in self.tag_groups() {
            out.push_str("<h3>");
            out.push_str(&escape(&tag));
            out.push_str("</h3>\n");
            let tag_description = self
                .doc
                .arr_at("tags")
                .iter()
                .find(|t| t.str_at("name") == Some(tag.as_str()))
                .and_then(|t| t.str_at("description"));
            if let Some(d) = tag_description {
                out.push_str(&paragraphs(d, "muted"));
            }
            out.push_str("<ul class=\"toc\">\n");
            for op in ops {
                out.push_str("<li><a href=\"#");
                out.push_str(&op.id);
                out.push_str("\">");
                out.push_str(&method_badge(op.method));
                out.push_str(" <code class=\"path\">");
                out.push_str(&escape(op.path));
                out.push_str("</code></a>");
                if let Some(summary) = op.op.str_at("summary") {
                    out.push_str(" — ");
                    out.push_str(&inline_text(summary));
                }
                if op.op.is_true("deprecated") {
                    out.push_str(" <span class=\"badge deprecated\">deprecated</span>");
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        let mut extra = Vec::new();
        if !self.schema_ids.is_empty() {
            extra.push("<a href=\"#schemas\">Schemas</a>");
        }
        if !self.security_ids.is_empty() {
            extra.push("<a href=\"#security\">Security schemes</a>");
        }
        if !extra.is_empty() {
            out.push_str("<p>");
            out.push_str(&extra.join(" · "));
            out.push_str("</p>\n");
        }
        out.push_str("</nav>\n");
    }

    fn operations(&self, out: &mut String) {
        if self.ops.is_empty() {
            return;
        }
        out.push_str("<section id=\"operations\">\n<h2>Operations</h2>\n");
        for op in &self.ops {
            self.operation(out, op);
        }
        out.push_str("</section>\n");
    }

    fn operation(&self, out: &mut String, op: &Operation<'a>) {
        let node = op.op;
        out.push_str("<section class=\"op\" id=\"");
        out.push_str(&op.id);
        out.push_str("\">\n<h3>");
        out.push_str(&method_badge(op.method));
        out.push_str(" <code class=\"path\">");
        out.push_str(&escape(op.path));
        out.push_str("</code>");
        if node.is_true("deprecated") {
            out.push_str(" <span class=\"badge deprecated\">deprecated</span>");
        }
        out.push_str("</h3>\n");
        if let Some(summary) = node.str_at("summary") {
            out.push_str(&paragraphs(summary, "summary"));
        }
        let mut meta = Vec::new();
        if let Some(id) = node.str_at("operationId") {
            meta.push(format!("Operation ID <code>{}</code>", escape(id)));
        }
        let tags: Vec<String> = node
            .arr_at("tags")
            .iter()
            .filter_map(Node::as_str)
            .map(escape)
            .collect();
        if !tags.is_empty() {
            meta.push(format!("Tags: {}", tags.join(", ")));
        }
        if let Some(security) = self.operation_security(node) {
            meta.push(security);
        }
        if !meta.is_empty() {
            out.push_str("<p class=\"meta\">");
            out.push_str(&meta.join(" · "));
            out.push_str("</p>\n");
        }
        if let Some(description) = node.str_at("description") {
            out.push_str("<div class=\"desc\">\n");
            out.push_str(&paragraphs(description, ""));
            out.push_str("</div>\n");
        }
        self.parameters(out, op);
        if let Some(body) = node.get("requestBody") {
            self.request_body(out, self.resolve(body));
        }
        self.responses(out, node);
        out.push_str("<p class=\"top\"><a href=\"#contents\">↑ Contents</a></p>\n");
        out.push_str("</section>\n");
    }

    /// "Security: …" for an operation, falling back to the document default.
    fn operation_security(&self, op: &Node) -> Option<String> {
        let (requirements, inherited) = match op.get("security") {
            Some(Node::Arr(reqs)) => (reqs.as_slice(), false),
            _ => (self.doc.arr_at("security"), true),
        };
        if requirements.is_empty() {
            return if inherited {
                None
            } else {
                Some("Security: none".to_owned())
            };
        }
        let alternatives: Vec<String> = requirements
            .iter()
            .map(|req| {
                let schemes: Vec<String> = req
                    .entries()
                    .iter()
                    .map(|(name, scopes)| {
                        let mut s = self.security_link(name);
                        let scopes: Vec<String> = match scopes {
                            Node::Arr(items) => items
                                .iter()
                                .filter_map(Node::as_str)
                                .map(|x| format!("<code>{}</code>", escape(x)))
                                .collect(),
                            _ => Vec::new(),
                        };
                        if !scopes.is_empty() {
                            s.push_str(" (");
                            s.push_str(&scopes.join(", "));
                            s.push(')');
                        }
                        s
                    })
                    .collect();
                if schemes.is_empty() {
                    "none".to_owned()
                } else {
                    schemes.join(" and ")
                }
            })
            .collect();
        Some(format!("Security: {}", alternatives.join(" or ")))
    }

    fn security_link(&self, name: &str) -> String {
        match self.security_ids.get(name) {
            Some(id) => format!("<a href=\"#{id}\">{}</a>", escape(name)),
            None => escape(name),
        }
    }

    fn parameters(&self, out: &mut String, op: &Operation<'a>) {
        // Operation parameters override path-level ones with the same name and location.
        let mut params: Vec<&Node> = Vec::new();
        let key = |p: &Node| {
            (
                p.str_at("name").unwrap_or("").to_owned(),
                p.str_at("in").unwrap_or("").to_owned(),
            )
        };
        let own: Vec<&Node> = op
            .op
            .arr_at("parameters")
            .iter()
            .map(|p| self.resolve(p))
            .collect();
        for shared in op.item.arr_at("parameters").iter().map(|p| self.resolve(p)) {
            if !own.iter().any(|p| key(p) == key(shared)) {
                params.push(shared);
            }
        }
        params.extend(own);
        if params.is_empty() {
            return;
        }
        out.push_str("<h4>Parameters</h4>\n<table>\n<thead><tr><th>Name</th><th>In</th><th>Required</th><th>Type</th><th>Description</th></tr></thead>\n<tbody>\n");
        for param in params {
            let location = param.str_at("in").unwrap_or("");
            let required = param.is_true("required") || location == "path";
            let schema = param.get("schema").or_else(|| {
                param
                    .entries_at("content")
                    .first()
                    .and_then(|(_, media)| media.get("schema"))
            });
            out.push_str("<tr><td><code>");
            out.push_str(&escape(param.str_at("name").unwrap_or("")));
            out.push_str("</code></td><td>");
            out.push_str(&escape(location));
            out.push_str("</td><td>");
            out.push_str(yes_no(required));
            out.push_str("</td><td>");
            out.push_str(&schema.map_or_else(|| "any".to_owned(), |s| self.type_html(s, 0, true)));
            out.push_str("</td><td>");
            let mut notes = schema.map(|s| self.notes(s)).unwrap_or_default();
            if param.is_true("deprecated") && !notes.iter().any(|n| n.contains("deprecated")) {
                notes.insert(
                    0,
                    "<span class=\"badge deprecated\">deprecated</span>".to_owned(),
                );
            }
            if let Some(example) = param.get("example") {
                notes.push(format!(
                    "Example: <code>{}</code>",
                    escape(&example.to_json())
                ));
            }
            out.push_str(&self.description_cell(param.str_at("description"), &notes));
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }

    fn request_body(&self, out: &mut String, body: &Node) {
        out.push_str("<h4>Request body");
        out.push_str(if body.is_true("required") {
            " <span class=\"badge\">required</span>"
        } else {
            " <span class=\"badge optional\">optional</span>"
        });
        out.push_str("</h4>\n");
        if let Some(description) = body.str_at("description") {
            out.push_str(&paragraphs(description, ""));
        }
        let content = body.entries_at("content");
        if content.is_empty() {
            return;
        }
        out.push_str("<ul class=\"content\">\n");
        for (media_type, media) in content {
            out.push_str("<li><code>");
            out.push_str(&escape(media_type));
            out.push_str("</code>");
            if let Some(schema) = media.get("schema") {
                out.push_str(": ");
                out.push_str(&self.type_html(schema, 0, true));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }

    /// The errors every operation may answer, once (see
    /// [`crate::openapi::shared_errors`]); nothing when the document has none.
    fn shared_errors(&self, out: &mut String) {
        let shared = crate::openapi::shared_errors();
        let used: Vec<&(&str, &str)> = shared
            .iter()
            .filter(|(status, description)| self.any_operation_answers(status, description))
            .collect();
        if used.is_empty() {
            return;
        }
        out.push_str(
            "<section id=\"shared-errors\">\n<h2>Errors every operation may answer</h2>\n",
        );
        out.push_str("<p>Beside its own responses, each operation may answer these, in the <code>errors</code> envelope (<code>ErrorBody</code>); 401 and 403 only where credentials are taken.</p>\n");
        out.push_str(
            "<table>\n<thead><tr><th>Status</th><th>Description</th></tr></thead>\n<tbody>\n",
        );
        for (status, description) in used {
            out.push_str("<tr><td><code class=\"status ");
            out.push_str(status_class(status));
            out.push_str("\">");
            out.push_str(&escape(status));
            out.push_str("</code></td><td>");
            out.push_str(&escape(description));
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn any_operation_answers(&self, status: &str, description: &str) -> bool {
        self.doc.entries_at("paths").iter().any(|(_, item)| {
            item.entries().iter().any(|(_, op)| {
                op.entries_at("responses").iter().any(|(s, r)| {
                    s == status && self.resolve(r).str_at("description") == Some(description)
                })
            })
        })
    }

    fn responses(&self, out: &mut String, op: &Node) {
        let shared = crate::openapi::shared_errors();
        let (common, responses): (Vec<_>, Vec<_>) =
            op.entries_at("responses")
                .iter()
                .partition(|(status, response)| {
                    let description = self.resolve(response).str_at("description");
                    shared
                        .iter()
                        .any(|(s, d)| s == status && Some(*d) == description)
                });
        if responses.is_empty() && common.is_empty() {
            return;
        }
        out.push_str("<h4>Responses</h4>\n<table>\n<thead><tr><th>Status</th><th>Description</th><th>Content</th></tr></thead>\n<tbody>\n");
        for (status, response) in responses {
            let response = self.resolve(response);
            out.push_str("<tr><td><code class=\"status ");
            out.push_str(status_class(status));
            out.push_str("\">");
            out.push_str(&escape(status));
            out.push_str("</code></td><td>");
            let headers: Vec<String> = response
                .entries_at("headers")
                .iter()
                .map(|(name, header)| {
                    let header = self.resolve(header);
                    let ty = header
                        .get("schema")
                        .map_or_else(|| "any".to_owned(), |s| self.type_html(s, 0, true));
                    format!("<code>{}</code>: {ty}", escape(name))
                })
                .collect();
            let notes = if headers.is_empty() {
                Vec::new()
            } else {
                vec![format!("Headers: {}", headers.join(", "))]
            };
            out.push_str(&self.description_cell(response.str_at("description"), &notes));
            out.push_str("</td><td>");
            let content = response.entries_at("content");
            if content.is_empty() {
                out.push_str("<span class=\"muted\">—</span>");
            }
            for (i, (media_type, media)) in content.iter().enumerate() {
                if i > 0 {
                    out.push_str("<br>");
                }
                out.push_str("<code>");
                out.push_str(&escape(media_type));
                out.push_str("</code>");
                if let Some(schema) = media.get("schema") {
                    out.push_str(": ");
                    out.push_str(&self.type_html(schema, 0, true));
                }
            }
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        if !common.is_empty() {
            let statuses: Vec<String> = common.iter().map(|(s, _)| escape(s)).collect();
            out.push_str(
                "<p class=\"muted\">And the <a href=\"#shared-errors\">shared errors</a>: ",
            );
            out.push_str(&statuses.join(", "));
            out.push_str(".</p>\n");
        }
    }

    fn schemas(&self, out: &mut String) {
        let schemas = self.components("schemas");
        if schemas.is_empty() {
            return;
        }
        out.push_str("<section id=\"schemas\">\n<h2>Schemas</h2>\n<ul class=\"toc schemas\">\n");
        for (name, _) in schemas {
            out.push_str("<li>");
            out.push_str(&self.schema_link(name));
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
        for (name, schema) in schemas {
            let Some(id) = self.schema_ids.get(name) else {
                continue;
            };
            out.push_str("<section class=\"schema\" id=\"");
            out.push_str(id);
            out.push_str("\">\n<h3><code>");
            out.push_str(&escape(name));
            out.push_str("</code>");
            if schema.is_true("deprecated") {
                out.push_str(" <span class=\"badge deprecated\">deprecated</span>");
            }
            out.push_str("</h3>\n");
            self.schema_body(out, schema, 0);
            out.push_str("<p class=\"top\"><a href=\"#contents\">↑ Contents</a></p>\n");
            out.push_str("</section>\n");
        }
        out.push_str("</section>\n");
    }

    /// Description, type, properties, composition and enum values of a schema.
    fn schema_body(&self, out: &mut String, schema: &Node, depth: usize) {
        if let Some(description) = schema.str_at("description") {
            out.push_str("<div class=\"desc\">\n");
            out.push_str(&paragraphs(description, ""));
            out.push_str("</div>\n");
        }
        let has_props = !schema.entries_at("properties").is_empty();
        let composed = ["oneOf", "anyOf", "allOf"]
            .iter()
            .any(|k| !schema.arr_at(k).is_empty());
        if !has_props && !composed {
            out.push_str("<p>Type: ");
            out.push_str(&self.type_html(schema, depth, false));
            out.push_str("</p>\n");
        }
        let notes = self.notes(schema);
        let notes: Vec<&String> = notes.iter().filter(|n| !n.contains("deprecated")).collect();
        if !notes.is_empty() {
            out.push_str("<p class=\"meta\">");
            for (i, note) in notes.iter().enumerate() {
                if i > 0 {
                    out.push_str(" · ");
                }
                out.push_str(note);
            }
            out.push_str("</p>\n");
        }
        if let Some(property) = schema
            .get("discriminator")
            .and_then(|d| d.str_at("propertyName"))
        {
            out.push_str("<p class=\"meta\">Discriminator: <code>");
            out.push_str(&escape(property));
            out.push_str("</code></p>\n");
        }
        if has_props {
            self.properties_table(out, schema, depth);
        }
        if let Some(extra) = schema.get("additionalProperties") {
            if has_props {
                match extra {
                    Node::Bool(false) => {
                        out.push_str("<p class=\"meta\">No additional properties.</p>\n")
                    }
                    Node::Bool(true) => {
                        out.push_str("<p class=\"meta\">Additional properties: any.</p>\n")
                    }
                    other => {
                        out.push_str("<p class=\"meta\">Additional properties: ");
                        out.push_str(&self.type_html(other, depth + 1, true));
                        out.push_str("</p>\n");
                    }
                }
            }
        }
        for (key, label) in [
            ("allOf", "All of"),
            ("oneOf", "One of"),
            ("anyOf", "Any of"),
        ] {
            let parts = schema.arr_at(key);
            if parts.is_empty() {
                continue;
            }
            out.push_str("<p>");
            out.push_str(label);
            out.push_str(":</p>\n<ul class=\"variants\">\n");
            for part in parts {
                out.push_str("<li>");
                if part.get("$ref").is_some() || depth >= MAX_DEPTH {
                    out.push_str(&self.type_html(part, depth + 1, true));
                } else {
                    if let Some(label) = variant_label(part) {
                        out.push_str("<p><strong>");
                        out.push_str(&label);
                        out.push_str("</strong></p>\n");
                    }
                    self.schema_body(out, part, depth + 1);
                }
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        let values = schema.arr_at("enum");
        if !values.is_empty() {
            out.push_str("<p>Allowed values:</p>\n<ul class=\"enum\">\n");
            for value in values {
                out.push_str("<li><code>");
                out.push_str(&escape(&value.to_json()));
                out.push_str("</code></li>\n");
            }
            out.push_str("</ul>\n");
        }
        let mut examples: Vec<&Node> = schema.get("example").into_iter().collect();
        examples.extend(schema.arr_at("examples"));
        if depth == 0 {
            for example in examples {
                out.push_str("<p>Example:</p>\n<pre>");
                out.push_str(&escape(&example.to_pretty_json()));
                out.push_str("</pre>\n");
            }
        }
    }

    fn properties_table(&self, out: &mut String, schema: &Node, depth: usize) {
        let required: BTreeSet<&str> = schema
            .arr_at("required")
            .iter()
            .filter_map(Node::as_str)
            .collect();
        out.push_str("<table>\n<thead><tr><th>Property</th><th>Type</th><th>Required</th><th>Description</th></tr></thead>\n<tbody>\n");
        for (name, property) in schema.entries_at("properties") {
            out.push_str("<tr><td><code>");
            out.push_str(&escape(name));
            out.push_str("</code></td><td>");
            out.push_str(&self.type_html(property, depth + 1, true));
            out.push_str("</td><td>");
            out.push_str(yes_no(required.contains(name.as_str())));
            out.push_str("</td><td>");
            let notes = self.notes(property);
            out.push_str(&self.description_cell(schema_description(property), &notes));
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }

    fn description_cell(&self, description: Option<&str>, notes: &[String]) -> String {
        let mut cell = description.map(|d| paragraphs(d, "")).unwrap_or_default();
        if !notes.is_empty() {
            cell.push_str("<p class=\"note\">");
            cell.push_str(&notes.join(" · "));
            cell.push_str("</p>");
        }
        if cell.is_empty() {
            cell.push_str("<span class=\"muted\">—</span>");
        }
        cell
    }

    /// Flags, default value and constraints of a schema, as HTML snippets.
    fn notes(&self, schema: &Node) -> Vec<String> {
        let mut notes = Vec::new();
        if schema.is_true("deprecated") {
            notes.push("<span class=\"badge deprecated\">deprecated</span>".to_owned());
        }
        if schema.is_true("readOnly") {
            notes.push("<span class=\"badge\">read-only</span>".to_owned());
        }
        if schema.is_true("writeOnly") {
            notes.push("<span class=\"badge\">write-only</span>".to_owned());
        }
        if let Some(default) = schema.get("default") {
            notes.push(format!(
                "Default: <code>{}</code>",
                escape(&default.to_json())
            ));
        }
        let constraints: Vec<String> = [
            ("minimum", "minimum"),
            ("exclusiveMinimum", "exclusive minimum"),
            ("maximum", "maximum"),
            ("exclusiveMaximum", "exclusive maximum"),
            ("multipleOf", "multiple of"),
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("pattern", "pattern"),
            ("minItems", "min items"),
            ("maxItems", "max items"),
            ("uniqueItems", "unique items"),
            ("minProperties", "min properties"),
            ("maxProperties", "max properties"),
        ]
        .iter()
        .filter_map(|(key, label)| {
            let value = schema.get(key)?;
            let text = match value {
                Node::Str(s) => s.clone(),
                other => other.to_json(),
            };
            Some(format!("{label} <code>{}</code>", escape(&text)))
        })
        .collect();
        if !constraints.is_empty() {
            notes.push(format!("Constraints: {}", constraints.join(", ")));
        }
        notes
    }

    fn schema_link(&self, name: &str) -> String {
        match self.schema_ids.get(name) {
            Some(id) => format!(
                "<a class=\"ref\" href=\"#{id}\"><code>{}</code></a>",
                escape(name)
            ),
            None => format!("<code>{}</code>", escape(name)),
        }
    }

    fn ref_html(&self, reference: &str) -> String {
        if let Some(name) = reference.strip_prefix("#/components/schemas/") {
            return self.schema_link(&pointer_unescape(name));
        }
        let name = reference.rsplit('/').next().unwrap_or(reference);
        format!("<code>{}</code>", escape(&pointer_unescape(name)))
    }

    /// Compact, one-line rendering of a schema's type.
    /// `inline_enum` lists enum values after the type.
    fn type_html(&self, schema: &Node, depth: usize, inline_enum: bool) -> String {
        if depth > MAX_DEPTH {
            return "…".to_owned();
        }
        let schema = match schema {
            Node::Bool(true) => return "any".to_owned(),
            Node::Bool(false) => return "nothing".to_owned(),
            Node::Obj(_) => schema,
            _ => return "any".to_owned(),
        };
        if let Some(reference) = schema.str_at("$ref") {
            return self.ref_html(reference);
        }
        for (key, label, joiner) in [
            ("oneOf", "one of", " | "),
            ("anyOf", "any of", " | "),
            ("allOf", "all of", " &amp; "),
        ] {
            let parts = schema.arr_at(key);
            if parts.is_empty() {
                continue;
            }
            let nullable = parts.iter().any(is_null_schema);
            let rest: Vec<&Node> = parts.iter().filter(|p| !is_null_schema(p)).collect();
            let mut text = match rest.as_slice() {
                [] => "null".to_owned(),
                [only] => self.type_html(only, depth + 1, inline_enum),
                many => {
                    let rendered: Vec<String> = many
                        .iter()
                        .map(|p| self.type_html(p, depth + 1, inline_enum))
                        .collect();
                    format!("{label} ({})", rendered.join(joiner))
                }
            };
            if nullable && !rest.is_empty() {
                text.push_str(" <span class=\"muted\">or null</span>");
            }
            return text;
        }

        let mut types: Vec<&str> = match schema.get("type") {
            Some(Node::Str(t)) => vec![t.as_str()],
            Some(Node::Arr(ts)) => ts.iter().filter_map(Node::as_str).collect(),
            _ => Vec::new(),
        };
        let mut nullable = schema.is_true("nullable");
        if types.contains(&"null") {
            nullable = true;
            types.retain(|t| *t != "null");
            if types.is_empty() {
                return "null".to_owned();
            }
        }
        if types.is_empty() {
            if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
                types.push("object");
            } else if schema.get("items").is_some() {
                types.push("array");
            }
        }
        let format = schema
            .str_at("format")
            .map(|f| format!(" <span class=\"fmt\">({})</span>", escape(f)))
            .unwrap_or_default();
        let rendered: Vec<String> = types
            .iter()
            .map(|t| match *t {
                "array" => {
                    let items = schema
                        .get("items")
                        .map_or_else(|| "any".to_owned(), |i| self.type_html(i, depth + 1, true));
                    format!("array of {items}")
                }
                "object" => self.object_html(schema, depth),
                other => format!("{}{format}", escape(other)),
            })
            .collect();
        let mut text = if rendered.is_empty() {
            if let Some(value) = schema.get("const") {
                format!("const <code>{}</code>", escape(&value.to_json()))
            } else if schema.get("enum").is_some() {
                "enum".to_owned()
            } else {
                "any".to_owned()
            }
        } else {
            rendered.join(" | ")
        };
        if inline_enum {
            let values = schema.arr_at("enum");
            if !values.is_empty() {
                let values: Vec<String> = values
                    .iter()
                    .map(|v| format!("<code>{}</code>", escape(&v.to_json())))
                    .collect();
                text.push_str(", one of: ");
                text.push_str(&values.join(", "));
            }
        }
        if nullable {
            text.push_str(" <span class=\"muted\">or null</span>");
        }
        text
    }

    /// `object {a: T, b?: U}` or `map of string to T`.
    fn object_html(&self, schema: &Node, depth: usize) -> String {
        let properties = schema.entries_at("properties");
        let extra = schema.get("additionalProperties");
        if properties.is_empty() {
            return match extra {
                Some(Node::Bool(false)) | None => "object".to_owned(),
                Some(other) => format!(
                    "map of string to {}",
                    self.type_html(other, depth + 1, true)
                ),
            };
        }
        if depth >= MAX_DEPTH {
            return "object {…}".to_owned();
        }
        let required: BTreeSet<&str> = schema
            .arr_at("required")
            .iter()
            .filter_map(Node::as_str)
            .collect();
        let fields: Vec<String> = properties
            .iter()
            .map(|(name, property)| {
                let optional = if required.contains(name.as_str()) {
                    ""
                } else {
                    "?"
                };
                format!(
                    "{}{optional}: {}",
                    escape(name),
                    self.type_html(property, depth + 1, true)
                )
            })
            .collect();
        format!("object {{{}}}", fields.join(", "))
    }
}

/// A heading for one inline `oneOf`/`anyOf`/`allOf` part: its title, or the
/// property that pins it down with a single allowed value (a serde tag).
fn variant_label(part: &Node) -> Option<String> {
    if let Some(title) = part.str_at("title") {
        return Some(escape(title));
    }
    part.entries_at("properties")
        .iter()
        .find_map(|(name, property)| {
            let value = match property.arr_at("enum") {
                [only] => only,
                _ => property.get("const")?,
            };
            Some(format!(
                "<code>{}</code> = <code>{}</code>",
                escape(name),
                escape(&value.to_json())
            ))
        })
}

/// A schema's description; for a `oneOf`/`anyOf`/`allOf` wrapper without one
/// (utoipa's `Option<Ref>` shape), the description written beside a `$ref` part.
fn schema_description(schema: &Node) -> Option<&str> {
    schema.str_at("description").or_else(|| {
        ["oneOf", "anyOf", "allOf"].iter().find_map(|key| {
            schema
                .arr_at(key)
                .iter()
                .filter(|part| part.get("$ref").is_some())
                .find_map(|part| part.str_at("description"))
        })
    })
}

fn is_null_schema(schema: &Node) -> bool {
    match schema.get("type") {
        Some(Node::Str(t)) => t == "null",
        Some(Node::Arr(ts)) => matches!(ts.as_slice(), [only] if only.as_str() == Some("null")),
        _ => false,
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

fn method_badge(method: &str) -> String {
    format!(
        "<span class=\"method m-{}\">{}</span>",
        escape(method),
        escape(&method.to_ascii_uppercase())
    )
}

fn status_class(status: &str) -> &'static str {
    match status.as_bytes().first() {
        Some(b'1') => "s-info",
        Some(b'2') => "s-ok",
        Some(b'3') => "s-redirect",
        Some(b'4') => "s-client",
        Some(b'5') => "s-server",
        _ => "s-other",
    }
}

impl Page<'_> {
    fn security(&self, out: &mut String) {
        let schemes = self.components("securitySchemes");
        if schemes.is_empty() {
            return;
        }
        out.push_str("<section id=\"security\">\n<h2>Security schemes</h2>\n<table>\n<thead><tr><th>Name</th><th>Type</th><th>Scheme</th><th>Description</th></tr></thead>\n<tbody>\n");
        for (name, scheme) in schemes {
            let scheme = self.resolve(scheme);
            let id = self.security_ids.get(name).map_or("", String::as_str);
            out.push_str("<tr id=\"");
            out.push_str(id);
            out.push_str("\"><td><code>");
            out.push_str(&escape(name));
            out.push_str("</code></td><td>");
            out.push_str(&escape(scheme.str_at("type").unwrap_or("")));
            out.push_str("</td><td>");
            let mut details = Vec::new();
            if let Some(s) = scheme.str_at("scheme") {
                details.push(format!("<code>{}</code>", escape(s)));
            }
            if let Some(f) = scheme.str_at("bearerFormat") {
                details.push(format!("bearer format <code>{}</code>", escape(f)));
            }
            if let (Some(location), Some(key)) = (scheme.str_at("in"), scheme.str_at("name")) {
                details.push(format!(
                    "<code>{}</code> in {}",
                    escape(key),
                    escape(location)
                ));
            }
            if let Some(url) = scheme.str_at("openIdConnectUrl") {
                details.push(format!("discovery <code>{}</code>", escape(url)));
            }
            for (flow, spec) in scheme.entries_at("flows") {
                let mut flow_text = format!("flow <code>{}</code>", escape(flow));
                for key in ["authorizationUrl", "tokenUrl", "refreshUrl"] {
                    if let Some(url) = spec.str_at(key) {
                        flow_text.push_str(&format!(", {key} <code>{}</code>", escape(url)));
                    }
                }
                let scopes: Vec<String> = spec
                    .entries_at("scopes")
                    .iter()
                    .map(|(scope, _)| format!("<code>{}</code>", escape(scope)))
                    .collect();
                if !scopes.is_empty() {
                    flow_text.push_str(&format!(", scopes {}", scopes.join(" ")));
                }
                details.push(flow_text);
            }
            if details.is_empty() {
                out.push_str("<span class=\"muted\">—</span>");
            } else {
                out.push_str(&details.join("<br>"));
            }
            out.push_str("</td><td>");
            out.push_str(&self.description_cell(scheme.str_at("description"), &[]));
            out.push_str("</td></tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
}

const CSS: &str = "
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa;--link:#0550ae}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}
main{max-width:62rem;margin:0 auto;padding:1.5rem 1rem 4rem}
h1{font-size:2rem;margin:.5rem 0}
h2{font-size:1.5rem;margin:2.5rem 0 1rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.15rem;margin:1.25rem 0 .5rem}
h4{font-size:1rem;margin:1.25rem 0 .4rem}
a{color:var(--link);text-decoration:none}
a:hover{text-decoration:underline}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\",monospace;font-size:.9em}
code{background:var(--soft);padding:.05em .3em;border-radius:4px}
pre{background:var(--soft);padding:.75rem;border-radius:6px;overflow-x:auto}
code.path{background:none;padding:0;font-weight:600;word-break:break-all}
.muted,.meta{color:var(--muted)}
.meta{font-size:.9rem}
.summary{font-size:1.05rem;font-weight:500}
.fmt{color:var(--muted)}
.note{font-size:.85rem;color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.92rem}
th,td{border:1px solid var(--line);padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td p{margin:0 0 .3rem}
td p:last-child{margin-bottom:0}
ul.toc{list-style:none;padding-left:0;margin:.25rem 0 1rem}
ul.toc li{margin:.2rem 0}
ul.schemas{columns:3 12rem}
.op,.schema{border:1px solid var(--line);border-radius:8px;padding:.25rem 1rem .5rem;margin:1rem 0}
.op>h3,.schema>h3{margin-top:.75rem}
.method{display:inline-block;min-width:4.2em;text-align:center;border-radius:4px;padding:.05em .4em;font:700 .8rem/1.6 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#fff;background:#6e7781;vertical-align:middle}
.m-get{background:#0969da}
.m-post{background:#1a7f37}
.m-put{background:#9a6700}
.m-patch{background:#8250df}
.m-delete{background:#cf222e}
.m-head,.m-options,.m-trace{background:#6e7781}
.badge{display:inline-block;border:1px solid var(--line);border-radius:999px;padding:0 .5em;font-size:.75rem;font-weight:500;color:var(--muted);vertical-align:middle}
.badge.deprecated{color:#9a6700;border-color:#d4a72c}
.status{font-weight:700}
.s-ok{color:#1a7f37}
.s-redirect{color:#0969da}
.s-client{color:#9a6700}
.s-server{color:#cf222e}
.top{font-size:.85rem;text-align:right;margin:.5rem 0 0}
";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

    /// A role grants a set of <b>permissions</b> to its members.
    ///
    /// Roles are scoped to one tenant.
    #[derive(Serialize, Deserialize, ToSchema)]
    struct Role {
        /// Stable identifier.
        #[schema(format = Uuid, value_type = String)]
        id: String,
        /// Display name, unique per tenant.
        #[schema(min_length = 1, max_length = 64)]
        name: String,
        /// Free text; may contain `<script>` which must stay inert.
        description: Option<String>,
        permissions: Vec<Permission>,
        /// The role this one inherits from.
        parent: Option<RoleRef>,
        #[schema(read_only)]
        member_count: u32,
    }

    /// A pointer to another role.
    #[derive(Serialize, Deserialize, ToSchema)]
    struct RoleRef {
        id: String,
    }

    /// What a role allows.
    #[derive(Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum Permission {
        ReadRoles,
        WriteRoles,
        /// Everything.
        Admin,
    }

    /// A change event.
    #[derive(Serialize, Deserialize, ToSchema)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum RoleEvent {
        Created { role: Role },
        Deleted { id: String },
    }

    #[derive(Serialize, Deserialize, ToSchema)]
    struct CreateRole {
        name: String,
        #[serde(default)]
        permissions: Vec<Permission>,
    }

    /// A page of items.
    #[derive(Serialize, Deserialize, ToSchema)]
    struct Page<T> {
        items: Vec<T>,
        next: Option<String>,
    }

    /// Problem details.
    #[derive(Serialize, Deserialize, ToSchema)]
    struct Problem {
        title: String,
        status: u16,
    }

    #[derive(Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    #[allow(dead_code)]
    struct ListQuery {
        /// Page number, starting at 1.
        page: Option<u32>,
        /// Items per page.
        per_page: Option<u32>,
    }

    /// List roles.
    ///
    /// Returns roles sorted by name. Use <b>page</b> & `per_page`.
    #[utoipa::path(
        get,
        path = "/api/v2/roles",
        tag = "roles",
        operation_id = "listRoles",
        params(ListQuery),
        responses(
            (status = 200, description = "One page of roles", body = Page<Role>),
            (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = []))
    )]
    #[allow(dead_code)]
    async fn list_roles() {}

    /// Create a role.
    #[utoipa::path(
        post,
        path = "/api/v2/roles",
        tag = "roles",
        request_body(content = CreateRole, description = "The new role"),
        responses(
            (status = 201, description = "Created", body = Role),
            (status = 422, description = "Invalid", body = Problem),
        )
    )]
    #[allow(dead_code)]
    async fn create_role() {}

    /// Fetch one role.
    #[utoipa::path(
        get,
        path = "/api/v2/roles/{id}",
        tag = "roles",
        params(("id" = String, Path, description = "Role id")),
        responses((status = 200, description = "The role", body = Role), (status = 404, description = "No such role"))
    )]
    #[allow(dead_code)]
    async fn get_role() {}

    /// Delete one role.
    #[utoipa::path(
        delete,
        path = "/api/v2/roles/{id}",
        tag = "roles",
        params(("id" = String, Path, description = "Role id")),
        responses((status = 204, description = "Deleted"))
    )]
    #[allow(dead_code)]
    #[deprecated]
    async fn delete_role() {}

    /// Stream of role events.
    #[utoipa::path(
        get,
        path = "/api/v2/roles/events",
        tag = "events",
        responses((status = 200, description = "Events", body = Vec<RoleEvent>))
    )]
    #[allow(dead_code)]
    async fn role_events() {}

    /// Liveness probe.
    #[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = String)))]
    #[allow(dead_code)]
    async fn healthz() {}

    struct Bearer;

    impl Modify for Bearer {
        fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
            let components = openapi.components.get_or_insert_with(Default::default);
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("opaque")
                        .build(),
                ),
            );
        }
    }

    #[derive(OpenApi)]
    #[openapi(
        info(
            title = "Nephele",
            version = "2.1.0",
            description = "Manage <b>roles</b> & \"users\".\n\nSecond paragraph."
        ),
        paths(list_roles, create_role, get_role, delete_role, role_events, healthz),
        components(schemas(Role, RoleRef, Permission, RoleEvent, CreateRole, Page<Role>, Problem)),
        tags((name = "roles", description = "Role management")),
        modifiers(&Bearer)
    )]
    struct ApiDoc;

    fn page() -> String {
        render(&ApiDoc::openapi())
    }

    /// Renders a hand-written spec (for shapes the derive macros do not produce).
    fn render_json(spec: serde_json::Value) -> String {
        let doc: Node = serde_json::from_str(&spec.to_string()).unwrap();
        super::Page::new(&doc).render()
    }

    /// Values of every `attr="…"` in the page.
    fn attr_values(html: &str, attr: &str) -> Vec<String> {
        let needle = format!(" {attr}=\"");
        let mut values = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find(&needle) {
            rest = &rest[at + needle.len()..];
            let end = rest.find('"').expect("unterminated attribute");
            values.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
        values
    }

    /// Asserts every `href` is a fragment that names an id on the page.
    fn assert_links_resolve(html: &str) {
        let ids: BTreeSet<String> = attr_values(html, "id").into_iter().collect();
        let hrefs = attr_values(html, "href");
        assert!(!hrefs.is_empty());
        for href in hrefs {
            let target = href
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-fragment link {href:?}"));
            assert!(ids.contains(target), "link #{target} has no anchor");
        }
    }

    fn position(html: &str, needle: &str) -> usize {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not on the page"))
    }

    #[test]
    fn page_is_a_complete_html_document() {
        let html = page();
        assert!(html.starts_with("<!DOCTYPE html>\n"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>Nephele API reference</title>"));
        assert!(html.contains("<style>") && html.contains("</style>"));
        assert!(html.contains("Version <code>2.1.0</code>"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn every_operation_is_shown_with_method_and_anchor() {
        let html = page();
        for (method, path, id) in [
            ("GET", "/api/v2/roles", "op-get-api-v2-roles"),
            ("POST", "/api/v2/roles", "op-post-api-v2-roles"),
            ("GET", "/api/v2/roles/{id}", "op-get-api-v2-roles-id"),
            ("DELETE", "/api/v2/roles/{id}", "op-delete-api-v2-roles-id"),
            ("GET", "/api/v2/roles/events", "op-get-api-v2-roles-events"),
            ("GET", "/healthz", "op-get-healthz"),
        ] {
            assert!(html.contains(&format!("<code class=\"path\">{path}</code>")));
            assert!(html.contains(&format!(">{method}</span>")));
            assert!(html.contains(&format!("<section class=\"op\" id=\"{id}\">")));
            assert!(
                html.contains(&format!("<a href=\"#{id}\">")),
                "no TOC entry for {id}"
            );
        }
        assert!(html.contains("— List roles."));
        assert!(html.contains("Operation ID <code>listRoles</code>"));
        assert!(html.contains("<span class=\"badge deprecated\">deprecated</span>"));
    }

    #[test]
    fn operations_follow_path_order_then_method_order() {
        let html = page();
        let sections = &html[position(&html, "<section id=\"operations\">")..];
        let order = [
            "id=\"op-get-api-v2-roles\"",
            "id=\"op-post-api-v2-roles\"",
            "id=\"op-get-api-v2-roles-events\"",
            "id=\"op-get-api-v2-roles-id\"",
            "id=\"op-delete-api-v2-roles-id\"",
            "id=\"op-get-healthz\"",
        ];
        let positions: Vec<usize> = order.iter().map(|n| position(sections, n)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }

    #[test]
    fn contents_group_by_first_tag_with_untagged_last() {
        let html = page();
        let nav = &html[position(&html, "<nav id=\"contents\">")..position(&html, "</nav>")];
        let roles = position(nav, "<h3>roles</h3>");
        let events = position(nav, "<h3>events</h3>");
        let other = position(nav, "<h3>Other</h3>");
        assert!(roles < events && events < other);
        assert!(nav.contains("Role management"), "tag description shown");
        assert!(position(nav, "#op-get-healthz") > other);
        assert!(position(nav, "#op-get-api-v2-roles-events") > events);
        assert!(position(nav, "#op-delete-api-v2-roles-id") < events);
    }

    #[test]
    fn schemas_are_anchored_by_name() {
        let html = page();
        for name in [
            "CreateRole",
            "Page_Role",
            "Permission",
            "Problem",
            "Role",
            "RoleEvent",
            "RoleRef",
        ] {
            assert!(
                html.contains(&format!(
                    "<section class=\"schema\" id=\"schema-{name}\">\n<h3><code>{name}</code>"
                )),
                "schema {name}"
            );
        }
    }

    #[test]
    fn parameters_table_lists_name_location_required_and_type() {
        let html = page();
        assert!(html.contains(
            "<tr><td><code>page</code></td><td>query</td><td>no</td><td>integer <span class=\"fmt\">(int32)</span></td><td><p>Page number, starting at 1.</p>"
        ));
        assert!(html.contains("<code>per_page</code></td><td>query</td><td>no</td>"));
        assert!(html.contains(
            "<tr><td><code>id</code></td><td>path</td><td>yes</td><td>string</td><td><p>Role id</p>"
        ));
    }

    #[test]
    fn operations_link_to_their_schemas() {
        let html = page();
        let ops = &html[position(&html, "<section id=\"operations\">")
            ..position(&html, "<section id=\"schemas\">")];
        for target in [
            "schema-Page_Role",
            "schema-Problem",
            "schema-CreateRole",
            "schema-Role",
            "schema-RoleEvent",
        ] {
            assert!(
                ops.contains(&format!("href=\"#{target}\"")),
                "operations do not link {target}"
            );
        }
        assert!(ops.contains(
            "<code>application/problem+json</code>: <a class=\"ref\" href=\"#schema-Problem\">"
        ));
        assert!(ops.contains("array of <a class=\"ref\" href=\"#schema-RoleEvent\">"));
        assert!(ops.contains("<h4>Request body <span class=\"badge\">required</span></h4>"));
        assert!(
            ops.contains("<code class=\"status s-client\">404</code></td><td><p>No such role</p>")
        );
        assert_links_resolve(&html);
    }

    #[test]
    fn ids_are_unique_and_safe() {
        let html = page();
        let ids = attr_values(&html, "id");
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate ids: {ids:?}");
        for id in &ids {
            assert!(
                !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
                "unsafe id {id:?}"
            );
        }
    }

    #[test]
    fn page_is_self_contained() {
        let html = page();
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"));
        assert!(!lower.contains("<link"));
        assert!(!lower.contains("<img"));
        assert!(!lower.contains("<iframe"));
        assert!(!lower.contains(" src="));
        assert!(!lower.contains("@import"));
        assert!(!lower.contains("url("));
        assert!(!lower.contains("http://"));
        assert!(!lower.contains("https://"));
        assert!(attr_values(&html, "href")
            .iter()
            .all(|h| h.starts_with('#')));
    }

    #[test]
    fn urls_in_the_spec_are_text_not_links() {
        let mut spec = ApiDoc::openapi();
        spec.servers = Some(vec![utoipa::openapi::Server::new(
            "https://api.example.test/v2",
        )]);
        let html = render(&spec);
        assert!(html.contains("<code>https://api.example.test/v2</code>"));
        assert!(attr_values(&html, "href")
            .iter()
            .all(|h| h.starts_with('#')));
        assert!(!html.to_ascii_lowercase().contains(" src="));
    }

    #[test]
    fn text_from_the_spec_is_escaped() {
        let html = page();
        assert!(html.contains(
            "<p>Manage &lt;b&gt;roles&lt;/b&gt; &amp; &quot;users&quot;.</p>\n<p>Second paragraph.</p>"
        ));
        assert!(html.contains("Use &lt;b&gt;page&lt;/b&gt; &amp; <code>per_page</code>."));
        assert!(html.contains("A role grants a set of &lt;b&gt;permissions&lt;/b&gt;"));
        assert!(html.contains("may contain <code>&lt;script&gt;</code> which"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn schema_properties_show_types_requiredness_and_descriptions() {
        let html = page();
        let role = &html[position(&html, "id=\"schema-Role\"")..];
        let role = &role[..position(role, "</section>")];
        // Declaration order is kept.
        let order = [
            "id",
            "name",
            "description",
            "permissions",
            "parent",
            "member_count",
        ]
        .map(|p| position(role, &format!("<tr><td><code>{p}</code>")));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(role.contains(
            "<tr><td><code>id</code></td><td>string <span class=\"fmt\">(uuid)</span></td><td>yes</td><td><p>Stable identifier.</p>"
        ));
        assert!(role.contains(
            "<code>description</code></td><td>string <span class=\"muted\">or null</span></td><td>no</td>"
        ));
        assert!(role.contains(
            "<code>permissions</code></td><td>array of <a class=\"ref\" href=\"#schema-Permission\"><code>Permission</code></a></td><td>yes</td>"
        ));
        assert!(role.contains(
            "<code>parent</code></td><td><a class=\"ref\" href=\"#schema-RoleRef\"><code>RoleRef</code></a> <span class=\"muted\">or null</span></td><td>no</td><td><p>The role this one inherits from.</p>"
        ));
        assert!(role.contains("min length <code>1</code>, max length <code>64</code>"));
        assert!(role.contains("<span class=\"badge\">read-only</span>"));
    }

    #[test]
    fn enums_and_one_of_are_readable() {
        let html = page();
        let permission = &html[position(&html, "id=\"schema-Permission\"")..];
        let permission = &permission[..position(permission, "</section>")];
        assert!(permission.contains("<p>Type: string</p>"));
        for value in ["read_roles", "write_roles", "admin"] {
            assert!(permission.contains(&format!("<li><code>&quot;{value}&quot;</code></li>")));
        }
        let event = &html[position(&html, "id=\"schema-RoleEvent\"")..];
        let event = &event[..position(event, "<p class=\"top\">")];
        assert!(event.contains("<p>One of:</p>"));
        assert!(event.contains("<code>kind</code> = <code>&quot;created&quot;</code>"));
        assert!(event.contains("<code>kind</code> = <code>&quot;deleted&quot;</code>"));
        assert!(event.contains("<code>role</code></td><td><a class=\"ref\" href=\"#schema-Role\">"));
    }

    #[test]
    fn security_schemes_and_requirements_are_shown() {
        let html = page();
        assert!(html.contains(
            "<tr id=\"security-bearer\"><td><code>bearer</code></td><td>http</td><td><code>bearer</code><br>bearer format <code>opaque</code></td>"
        ));
        assert!(html.contains("Security: <a href=\"#security-bearer\">bearer</a>"));
    }

    #[test]
    fn output_is_deterministic() {
        let first = page();
        for _ in 0..3 {
            assert_eq!(first, page());
        }
        assert_eq!(first, render(&ApiDoc::openapi()));
    }

    #[test]
    fn empty_spec_renders_a_page() {
        let spec = utoipa::openapi::OpenApiBuilder::new()
            .info(utoipa::openapi::Info::new("", "0.0.0"))
            .build();
        let html = render(&spec);
        assert!(html.contains("<title>API API reference</title>"));
        assert!(html.contains("This API has no operations."));
        assert!(!html.contains("id=\"schemas\""));
        assert!(!html.contains("href="));
    }

    #[test]
    fn hostile_names_are_escaped_and_ids_stay_safe() {
        let html = render_json(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T<i>\"'", "version": "1"},
            "paths": {
                "/x/{a\"b}": {"get": {"tags": ["<t>"], "summary": "s<", "responses": {
                    "200": {"description": "ok", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Evil\"<x>"}
                    }}}
                }}}
            },
            "components": {"schemas": {"Evil\"<x>": {"type": "string", "enum": ["<a>", 1, null]}}}
        }));
        assert!(html.contains("<title>T&lt;i&gt;&quot;&#39; API reference</title>"));
        assert!(html.contains("<code class=\"path\">/x/{a&quot;b}</code>"));
        assert!(html.contains("id=\"op-get-x-a-b\""));
        assert!(html.contains("<h3>&lt;t&gt;</h3>"));
        assert!(html.contains("— s&lt;"));
        assert!(html.contains("<section class=\"schema\" id=\"schema-Evil-x\">"));
        assert!(html.contains(
            "<a class=\"ref\" href=\"#schema-Evil-x\"><code>Evil&quot;&lt;x&gt;</code></a>"
        ));
        assert!(html.contains("<li><code>&quot;&lt;a&gt;&quot;</code></li>"));
        assert!(html.contains("<li><code>1</code></li>"));
        assert!(html.contains("<li><code>null</code></li>"));
        assert!(!html.contains("<i>") && !html.contains("<x>") && !html.contains("<t>"));
        assert_links_resolve(&html);
    }

    #[test]
    fn colliding_anchors_get_distinct_ids() {
        let html = render_json(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T", "version": "1"},
            "paths": {
                "/": {"get": {"responses": {}}},
                "/a/b": {"get": {"responses": {}}},
                "/a-b": {"get": {"responses": {}}},
                "/a/{b}": {"get": {"responses": {}}}
            },
            "components": {"schemas": {"A b": {"type": "string"}, "A-b": {"type": "string"}}}
        }));
        for id in [
            "op-get-root",
            "op-get-a-b",
            "op-get-a-b-2",
            "op-get-a-b-3",
            "schema-A-b",
            "schema-A-b-2",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        let ids = attr_values(&html, "id");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
        assert_links_resolve(&html);
    }

    #[test]
    fn references_resolve_or_degrade_to_text() {
        let html = render_json(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T", "version": "1"},
            "security": [{"key": []}],
            "paths": {
                "/items/{id}": {
                    "parameters": [
                        {"name": "id", "in": "path", "description": "shared", "schema": {"type": "integer", "format": "int64"}},
                        {"name": "trace", "in": "header", "description": "path-level", "schema": {"type": "string"}}
                    ],
                    "get": {
                        "parameters": [
                            {"$ref": "#/components/parameters/Limit"},
                            {"name": "trace", "in": "header", "required": true, "description": "overridden", "schema": {"type": "string"}}
                        ],
                        "responses": {
                            "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ghost"}}}},
                            "404": {"$ref": "#/components/responses/NotFound"}
                        }
                    },
                    "put": {
                        "security": [{}],
                        "requestBody": {"$ref": "#/components/requestBodies/Item"},
                        "responses": {"204": {"description": "done"}}
                    }
                }
            },
            "components": {
                "parameters": {"Limit": {"name": "limit", "in": "query", "description": "at most", "schema": {"type": "integer", "default": 20, "maximum": 100}}},
                "responses": {"NotFound": {"description": "not found here", "headers": {"X-Reason": {"schema": {"type": "string"}}}}},
                "requestBodies": {"Item": {"required": false, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["n"],
                    "properties": {"n": {"type": "integer"}, "tags": {"type": "object", "additionalProperties": {"type": "string"}}}
                }}}}},
                "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}}
            }
        }));
        let get = &html
            [position(&html, "id=\"op-get-items-id\"")..position(&html, "id=\"op-put-items-id\"")];
        assert!(get.contains("<code>id</code></td><td>path</td><td>yes</td><td>integer <span class=\"fmt\">(int64)</span></td><td><p>shared</p>"));
        assert!(get.contains("<code>limit</code></td><td>query</td><td>no</td><td>integer</td><td><p>at most</p>\n<p class=\"note\">Default: <code>20</code> · Constraints: maximum <code>100</code></p>"));
        assert!(get.contains("<code>trace</code></td><td>header</td><td>yes</td>"));
        assert!(get.contains("overridden") && !get.contains("path-level"));
        assert!(
            get.contains("<code>application/json</code>: <code>Ghost</code>"),
            "missing schema is plain text"
        );
        assert!(get.contains(
            "<p>not found here</p>\n<p class=\"note\">Headers: <code>X-Reason</code>: string</p>"
        ));
        assert!(get.contains("Security: <a href=\"#security-key\">key</a>"));
        let put = &html[position(&html, "id=\"op-put-items-id\"")..];
        assert!(put.contains("Security: none"));
        assert!(
            put.contains("<h4>Request body <span class=\"badge optional\">optional</span></h4>")
        );
        assert!(put.contains("object {n: integer, tags?: map of string to string}"));
        assert!(html.contains("<td><code>X-Key</code> in header</td>"));
        assert_links_resolve(&html);
    }

    #[test]
    fn composite_types_render_readably() {
        let html = render_json(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T", "version": "1"},
            "paths": {},
            "components": {"schemas": {
                "A": {"type": "object", "properties": {"x": {"type": "string"}}},
                "B": {"allOf": [{"$ref": "#/components/schemas/A"}, {"type": "object", "properties": {"y": {"type": ["array", "null"], "items": {"type": "integer"}}}}]},
                "C": {"oneOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}], "discriminator": {"propertyName": "kind"}},
                "D": {"type": "object", "properties": {"u": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "c": {"const": "fixed"}, "any": {}}},
                "E": {"type": "array", "items": {"$ref": "#/components/schemas/A"}, "example": [{"x": "<y>"}]}
            }}
        }));
        let b = &html[position(&html, "id=\"schema-B\"")..position(&html, "id=\"schema-C\"")];
        assert!(b.contains("<p>All of:</p>"));
        assert!(b.contains("<li><a class=\"ref\" href=\"#schema-A\"><code>A</code></a></li>"));
        assert!(b.contains("<code>y</code></td><td>array of integer <span class=\"muted\">or null</span></td><td>no</td>"));
        let c = &html[position(&html, "id=\"schema-C\"")..position(&html, "id=\"schema-D\"")];
        assert!(c.contains("Discriminator: <code>kind</code>"));
        assert!(c.contains("<p>One of:</p>"));
        let d = &html[position(&html, "id=\"schema-D\"")..position(&html, "id=\"schema-E\"")];
        assert!(d.contains("<code>u</code></td><td>any of (string | integer)</td>"));
        assert!(d.contains("<code>c</code></td><td>const <code>&quot;fixed&quot;</code></td>"));
        assert!(d.contains("<code>any</code></td><td>any</td>"));
        let e = &html[position(&html, "id=\"schema-E\"")..];
        assert!(e.contains(
            "<p>Type: array of <a class=\"ref\" href=\"#schema-A\"><code>A</code></a></p>"
        ));
        assert!(e.contains("<pre>[\n  {\n    &quot;x&quot;: &quot;&lt;y&gt;&quot;\n  }\n]</pre>"));
        assert_links_resolve(&html);
    }

    #[test]
    fn deeply_nested_inline_schemas_are_cut_off() {
        let mut schema = serde_json::json!({"type": "string"});
        for _ in 0..50 {
            schema = serde_json::json!({"type": "array", "items": schema});
        }
        let html = render_json(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T", "version": "1"},
            "paths": {},
            "components": {"schemas": {"Deep": schema}}
        }));
        assert!(html.contains("array of array of"));
        assert!(html.contains('…'));
    }

    #[test]
    fn escape_handles_all_special_characters() {
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
        assert_eq!(escape("plain ✓"), "plain ✓");
    }

    #[test]
    fn inline_code_spans_are_escaped() {
        assert_eq!(
            inline_text("use `<x>` now"),
            "use <code>&lt;x&gt;</code> now"
        );
        assert_eq!(inline_text("odd ` tick"), "odd ` tick");
        assert_eq!(inline_text("`a` and `b"), "<code>a</code> and `b");
    }

    #[test]
    fn paragraphs_split_on_blank_lines() {
        assert_eq!(
            paragraphs("one\ntwo\n\n  \nthree\r\n\r\nfour", ""),
            "<p>one\ntwo</p>\n<p>three</p>\n<p>four</p>\n"
        );
        assert_eq!(paragraphs("\n\n", "x"), "");
    }

    #[test]
    fn slugs_keep_only_safe_characters() {
        assert_eq!(slug("/api/v2/roles/{id}", &['_']), "api-v2-roles-id");
        assert_eq!(slug("Page<Role>", &['_', '.']), "Page-Role");
        assert_eq!(slug("--", &[]), "");
    }

    #[test]
    fn node_keeps_key_order_and_numbers() {
        let node: Node = serde_json::from_str(r#"{"b":1,"a":[2.5,-3,true,null,"s"]}"#).unwrap();
        let keys: Vec<&str> = node.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(node.to_json(), r#"{"b":1,"a":[2.5,-3,true,null,"s"]}"#);
    }

    #[test]
    fn error_page_escapes_the_reason() {
        let html = error_page("bad <thing> & \"more\"");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("bad &lt;thing&gt; &amp; &quot;more&quot;"));
    }
}
