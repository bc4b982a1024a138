//! The offline API reference (`GET /docs`), rendered from the OpenAPI
//! document.
//!
//! The spec is serialized with serde and walked as a `serde_json::Value`,
//! so the page follows exactly what `/openapi.json` publishes; the
//! workspace builds serde_json with `preserve_order`, so schema properties
//! keep their declaration order. Every anchor is a sanitized, unique id,
//! and a link is only emitted when its target exists on the page. Same
//! spec, same bytes.

use std::collections::{BTreeMap, BTreeSet};

use maud::{html, Markup};
use serde_json::{Map, Value};

use super::{document, inline_text, join, paragraphs, Page, Style};

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
pub fn render(spec: &utoipa::openapi::OpenApi) -> Page {
    match serde_json::to_value(spec) {
        Ok(doc) => Reference::new(&doc).render(),
        Err(err) => error_page(&err.to_string()),
    }
}

/// The page shown when the spec cannot be serialized.
fn error_page(reason: &str) -> Page {
    document(
        "API reference unavailable",
        &STYLE,
        html! {
            main {
                h1 { "API reference unavailable" }
                p { "The OpenAPI document could not be serialized: " (reason) }
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Reading the spec.

/// Lookups on a spec node that read as absent when the shape is not the
/// one expected.
trait Node {
    fn str_at(&self, key: &str) -> Option<&str>;
    fn arr_at(&self, key: &str) -> &[Value];
    fn entries_at(&self, key: &str) -> Vec<(&str, &Value)>;
    fn entries(&self) -> Vec<(&str, &Value)>;
    fn is_true(&self, key: &str) -> bool;
}

impl Node for Value {
    fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    fn arr_at(&self, key: &str) -> &[Value] {
        self.get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn entries_at(&self, key: &str) -> Vec<(&str, &Value)> {
        self.get(key).map(Node::entries).unwrap_or_default()
    }

    fn entries(&self) -> Vec<(&str, &Value)> {
        self.as_object()
            .map(Map::iter)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }

    fn is_true(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Value::Bool(true)))
    }
}

/// Compact JSON text of a value.
fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
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
        (2usize..)
            .map(|n| format!("{base}-{n}"))
            .find(|candidate| self.used.insert(candidate.clone()))
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// The page model.

/// One operation of the spec, with its place on the page.
struct Operation<'a> {
    method: &'static str,
    path: &'a str,
    item: &'a Value,
    op: &'a Value,
    id: String,
    tag: String,
}

struct Reference<'a> {
    doc: &'a Value,
    ops: Vec<Operation<'a>>,
    /// Schema name → anchor id.
    schema_ids: BTreeMap<String, String>,
    /// Security scheme name → anchor id.
    security_ids: BTreeMap<String, String>,
}

impl<'a> Reference<'a> {
    fn new(doc: &'a Value) -> Self {
        let mut ids = Ids::default();
        for fixed in ["top", "contents", "operations", "schemas", "security"] {
            ids.claim(fixed);
        }
        let mut ops = Vec::new();
        for (path, item) in doc.entries_at("paths") {
            for method in METHODS {
                let Some(op) = item.get(method).filter(|op| op.is_object()) else {
                    continue;
                };
                let path_slug = match slug(path, &['_']) {
                    s if s.is_empty() => "root".to_owned(),
                    s => s,
                };
                let tag = op
                    .arr_at("tags")
                    .iter()
                    .find_map(Value::as_str)
                    .unwrap_or(UNTAGGED)
                    .to_owned();
                ops.push(Operation {
                    method,
                    path,
                    item,
                    op,
                    id: ids.claim(&format!("op-{method}-{path_slug}")),
                    tag,
                });
            }
        }
        let mut anchors = |kind: &str, prefix: &str, bare: &str| -> BTreeMap<String, String> {
            doc.get("components")
                .map(|c| c.entries_at(kind))
                .unwrap_or_default()
                .into_iter()
                .map(|(name, _)| {
                    let base = match slug(name, &['_', '.']) {
                        s if s.is_empty() => bare.to_owned(),
                        s => format!("{prefix}-{s}"),
                    };
                    (name.to_owned(), ids.claim(&base))
                })
                .collect()
        };
        let schema_ids = anchors("schemas", "schema", "schema");
        let security_ids = anchors("securitySchemes", "security", "security-scheme");
        Reference {
            doc,
            ops,
            schema_ids,
            security_ids,
        }
    }

    fn components(&self, kind: &str) -> Vec<(&'a str, &'a Value)> {
        self.doc
            .get("components")
            .map(|c| c.entries_at(kind))
            .unwrap_or_default()
    }

    /// Follows local `$ref`s (`#/components/...`) to the object they name.
    /// Returns the node itself when it is no reference or the target is missing.
    fn resolve(&self, node: &'a Value) -> &'a Value {
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

    fn pointer(&self, reference: &str) -> Option<&'a Value> {
        let path = reference.strip_prefix("#/")?;
        let mut current = self.doc;
        for segment in path.split('/') {
            let key = pointer_unescape(segment);
            current = match current {
                Value::Object(map) => map.get(&key)?,
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    fn render(&self) -> Page {
        let title = self
            .doc
            .get("info")
            .and_then(|i| i.str_at("title"))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("API");
        document(
            &format!("{title} API reference"),
            &STYLE,
            html! {
                main {
                    (self.header(title))
                    (self.contents())
                    (self.shared_errors())
                    (self.operations())
                    (self.schemas())
                    (self.security())
                }
            },
        )
    }

    fn header(&self, title: &str) -> Markup {
        let info = self.doc.get("info").unwrap_or(&Value::Null);
        let mut meta = Vec::new();
        if let Some(version) = info.str_at("version") {
            meta.push(html! { "Version " code { (version) } });
        }
        meta.push(html! { "OpenAPI " code { (self.doc.str_at("openapi").unwrap_or("3.1")) } });
        if let Some(name) = info
            .get("license")
            .and_then(|l| l.str_at("name"))
            .filter(|n| !n.trim().is_empty())
        {
            meta.push(html! { "License: " (name) });
        }
        if let Some(contact) = info.get("contact") {
            let parts: Vec<&str> = ["name", "email", "url"]
                .iter()
                .filter_map(|k| contact.str_at(k))
                .filter(|v| !v.trim().is_empty())
                .collect();
            if !parts.is_empty() {
                meta.push(html! { "Contact: " (parts.join(", ")) });
            }
        }
        let servers = self.doc.arr_at("servers");
        html! {
            header #top {
                h1 { (title) " " span.muted { "API reference" } }
                p.meta { (join(meta, " · ")) }
                @if let Some(summary) = info.str_at("summary") { (paragraphs(summary, Some("summary"))) }
                @if let Some(description) = info.str_at("description") {
                    div.desc { (paragraphs(description, None)) }
                }
                @if !servers.is_empty() {
                    p.meta { "Servers:" }
                    ul.servers {
                        @for server in servers {
                            li {
                                code { (server.str_at("url").unwrap_or("")) }
                                @if let Some(d) = server.str_at("description") { " — " (inline_text(d)) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Tag groups in page order: declared tags first (in declaration order),
    /// then undeclared tags by first use, then the untagged group.
    fn tag_groups(&self) -> Vec<(String, Vec<&Operation<'a>>)> {
        let mut order: Vec<String> = Vec::new();
        for name in self
            .doc
            .arr_at("tags")
            .iter()
            .filter_map(|t| t.str_at("name"))
        {
            if name != UNTAGGED
                && !order.iter().any(|o| o == name)
                && self.ops.iter().any(|op| op.tag == name)
            {
                order.push(name.to_owned());
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

    fn contents(&self) -> Markup {
        let mut extra = Vec::new();
        if !self.schema_ids.is_empty() {
            extra.push(html! { a href="#schemas" { "Schemas" } });
        }
        if !self.security_ids.is_empty() {
            extra.push(html! { a href="#security" { "Security schemes" } });
        }
        html! {
            nav #contents {
                h2 { "Contents" }
                @if self.ops.is_empty() { p.muted { "This API has no operations." } }
                @for (tag, ops) in self.tag_groups() {
                    h3 { (tag) }
                    @if let Some(d) = self.doc.arr_at("tags").iter()
                        .find(|t| t.str_at("name") == Some(tag.as_str()))
                        .and_then(|t| t.str_at("description")) {
                        (paragraphs(d, Some("muted")))
                    }
                    ul.toc {
                        @for op in ops {
                            li {
                                a href={ "#" (op.id) } { (method_badge(op.method)) " " code.path { (op.path) } }
                                @if let Some(summary) = op.op.str_at("summary") { " — " (inline_text(summary)) }
                                @if op.op.is_true("deprecated") { " " (deprecated()) }
                            }
                        }
                    }
                }
                @if !extra.is_empty() { p { (join(extra, " · ")) } }
            }
        }
    }

    fn operations(&self) -> Markup {
        html! {
            @if !self.ops.is_empty() {
                section #operations {
                    h2 { "Operations" }
                    @for op in &self.ops { (self.operation(op)) }
                }
            }
        }
    }

    fn operation(&self, op: &Operation<'a>) -> Markup {
        let node = op.op;
        let mut meta = Vec::new();
        if let Some(id) = node.str_at("operationId") {
            meta.push(html! { "Operation ID " code { (id) } });
        }
        let tags: Vec<&str> = node
            .arr_at("tags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !tags.is_empty() {
            meta.push(html! { "Tags: " (tags.join(", ")) });
        }
        if let Some(security) = self.operation_security(node) {
            meta.push(security);
        }
        html! {
            section.op id=(op.id) {
                h3 {
                    (method_badge(op.method)) " " code.path { (op.path) }
                    @if node.is_true("deprecated") { " " (deprecated()) }
                }
                @if let Some(summary) = node.str_at("summary") { (paragraphs(summary, Some("summary"))) }
                @if !meta.is_empty() { p.meta { (join(meta, " · ")) } }
                @if let Some(description) = node.str_at("description") {
                    div.desc { (paragraphs(description, None)) }
                }
                (self.parameters(op))
                @if let Some(body) = node.get("requestBody") { (self.request_body(self.resolve(body))) }
                (self.responses(node))
                (to_contents())
            }
        }
    }

    /// "Security: …" for an operation, falling back to the document default.
    fn operation_security(&self, op: &Value) -> Option<Markup> {
        let (requirements, inherited) = match op.get("security") {
            Some(Value::Array(reqs)) => (reqs.as_slice(), false),
            _ => (self.doc.arr_at("security"), true),
        };
        if requirements.is_empty() {
            return (!inherited).then(|| html! { "Security: none" });
        }
        let alternatives = requirements.iter().map(|req| {
            let schemes: Vec<Markup> = req
                .entries()
                .into_iter()
                .map(|(name, scopes)| {
                    let scopes: Vec<Markup> = scopes
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|scope| html! { code { (scope) } })
                        .collect();
                    html! {
                        (self.security_link(name))
                        @if !scopes.is_empty() { " (" (join(scopes, ", ")) ")" }
                    }
                })
                .collect();
            if schemes.is_empty() {
                html! { "none" }
            } else {
                join(schemes, " and ")
            }
        });
        Some(html! { "Security: " (join(alternatives, " or ")) })
    }

    fn security_link(&self, name: &str) -> Markup {
        html! {
            @match self.security_ids.get(name) {
                Some(id) => a href={ "#" (id) } { (name) },
                None => (name),
            }
        }
    }

    fn parameters(&self, op: &Operation<'a>) -> Markup {
        // Operation parameters override path-level ones with the same name and location.
        let key = |p: &Value| {
            (
                p.str_at("name").unwrap_or("").to_owned(),
                p.str_at("in").unwrap_or("").to_owned(),
            )
        };
        let own: Vec<&Value> = op
            .op
            .arr_at("parameters")
            .iter()
            .map(|p| self.resolve(p))
            .collect();
        let mut params: Vec<&Value> = op
            .item
            .arr_at("parameters")
            .iter()
            .map(|p| self.resolve(p))
            .filter(|shared| !own.iter().any(|p| key(p) == key(shared)))
            .collect();
        params.extend(own);
        if params.is_empty() {
            return html! {};
        }
        html! {
            h4 { "Parameters" }
            table {
                thead { tr { th { "Name" } th { "In" } th { "Required" } th { "Type" } th { "Description" } } }
                tbody {
                    @for param in params { (self.parameter(param)) }
                }
            }
        }
    }

    fn parameter(&self, param: &Value) -> Markup {
        let location = param.str_at("in").unwrap_or("");
        let required = param.is_true("required") || location == "path";
        let schema = param.get("schema").or_else(|| {
            param
                .entries_at("content")
                .first()
                .and_then(|(_, media)| media.get("schema"))
        });
        let mut notes = schema.map(|s| notes_of(s, true)).unwrap_or_default();
        if param.is_true("deprecated") && !schema.is_some_and(|s| s.is_true("deprecated")) {
            notes.insert(0, deprecated());
        }
        if let Some(example) = param.get("example") {
            notes.push(html! { "Example: " code { (json(example)) } });
        }
        html! {
            tr {
                td { code { (param.str_at("name").unwrap_or("")) } }
                td { (location) }
                td { (yes_no(required)) }
                td {
                    @match schema {
                        Some(s) => (self.type_of(s, 0, true)),
                        None => "any",
                    }
                }
                td { (description_cell(param.str_at("description"), notes)) }
            }
        }
    }

    fn request_body(&self, body: &Value) -> Markup {
        let content = body.entries_at("content");
        html! {
            h4 {
                "Request body "
                @if body.is_true("required") { span.badge { "required" } }
                @else { span.badge.optional { "optional" } }
            }
            @if let Some(description) = body.str_at("description") { (paragraphs(description, None)) }
            @if !content.is_empty() {
                ul.content {
                    @for (media_type, media) in content {
                        li { (self.media(media_type, media)) }
                    }
                }
            }
        }
    }

    /// `media/type: Type`.
    fn media(&self, media_type: &str, media: &Value) -> Markup {
        html! {
            code { (media_type) }
            @if let Some(schema) = media.get("schema") { ": " (self.type_of(schema, 0, true)) }
        }
    }

    /// The errors every operation may answer, once (see
    /// [`crate::openapi::shared_errors`]); nothing when the document has none.
    fn shared_errors(&self) -> Markup {
        let used: Vec<(&str, &str)> = crate::openapi::shared_errors()
            .into_iter()
            .filter(|(status, description)| self.any_operation_answers(status, description))
            .collect();
        html! {
            @if !used.is_empty() {
                section #shared-errors {
                    h2 { "Errors every operation may answer" }
                    p {
                        "Beside its own responses, each operation may answer these, in the "
                        code { "errors" } " envelope (" code { "ErrorBody" } "); 401 and 403 only where credentials are taken."
                    }
                    table {
                        thead { tr { th { "Status" } th { "Description" } } }
                        tbody {
                            @for (status, description) in used {
                                tr { td { (status_code(status)) } td { (description) } }
                            }
                        }
                    }
                }
            }
        }
    }

    fn any_operation_answers(&self, status: &str, description: &str) -> bool {
        self.doc.entries_at("paths").iter().any(|(_, item)| {
            item.entries().iter().any(|(_, op)| {
                op.entries_at("responses").iter().any(|(s, r)| {
                    *s == status && self.resolve(r).str_at("description") == Some(description)
                })
            })
        })
    }

    fn responses(&self, op: &Value) -> Markup {
        let shared = crate::openapi::shared_errors();
        let (common, responses): (Vec<_>, Vec<_>) = op
            .entries_at("responses")
            .into_iter()
            .partition(|(status, response)| {
                let description = self.resolve(response).str_at("description");
                shared
                    .iter()
                    .any(|(s, d)| s == status && Some(*d) == description)
            });
        if responses.is_empty() && common.is_empty() {
            return html! {};
        }
        html! {
            h4 { "Responses" }
            table {
                thead { tr { th { "Status" } th { "Description" } th { "Content" } } }
                tbody {
                    @for (status, response) in responses { (self.response(status, self.resolve(response))) }
                }
            }
            @if !common.is_empty() {
                p.muted {
                    "And the " a href="#shared-errors" { "shared errors" } ": "
                    (common.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")) "."
                }
            }
        }
    }

    fn response(&self, status: &str, response: &Value) -> Markup {
        let headers: Vec<Markup> = response
            .entries_at("headers")
            .into_iter()
            .map(|(name, header)| {
                let header = self.resolve(header);
                html! {
                    code { (name) } ": "
                    @match header.get("schema") {
                        Some(s) => (self.type_of(s, 0, true)),
                        None => "any",
                    }
                }
            })
            .collect();
        let notes = if headers.is_empty() {
            Vec::new()
        } else {
            vec![html! { "Headers: " (join(headers, ", ")) }]
        };
        let content = response.entries_at("content");
        html! {
            tr {
                td { (status_code(status)) }
                td { (description_cell(response.str_at("description"), notes)) }
                td {
                    @if content.is_empty() { span.muted { "—" } }
                    @for (i, (media_type, media)) in content.into_iter().enumerate() {
                        @if i > 0 { br; }
                        (self.media(media_type, media))
                    }
                }
            }
        }
    }

    fn schemas(&self) -> Markup {
        let schemas = self.components("schemas");
        html! {
            @if !schemas.is_empty() {
                section #schemas {
                    h2 { "Schemas" }
                    ul.toc.schemas { @for (name, _) in &schemas { li { (self.schema_link(name)) } } }
                    @for (name, schema) in &schemas {
                        @if let Some(id) = self.schema_ids.get(*name) {
                            section.schema id=(id) {
                                h3 {
                                    code { (name) }
                                    @if schema.is_true("deprecated") { " " (deprecated()) }
                                }
                                (self.schema_body(schema, 0))
                                (to_contents())
                            }
                        }
                    }
                }
            }
        }
    }

    /// Description, type, properties, composition and enum values of a schema.
    fn schema_body(&self, schema: &Value, depth: usize) -> Markup {
        let has_props = !schema.entries_at("properties").is_empty();
        let composed = ["oneOf", "anyOf", "allOf"]
            .iter()
            .any(|k| !schema.arr_at(k).is_empty());
        let notes: Vec<Markup> = notes_of(schema, false);
        let examples: Vec<&Value> = schema
            .get("example")
            .into_iter()
            .chain(schema.arr_at("examples"))
            .collect();
        let values = schema.arr_at("enum");
        html! {
            @if let Some(description) = schema.str_at("description") {
                div.desc { (paragraphs(description, None)) }
            }
            @if !has_props && !composed { p { "Type: " (self.type_of(schema, depth, false)) } }
            @if !notes.is_empty() { p.meta { (join(notes, " · ")) } }
            @if let Some(property) = schema.get("discriminator").and_then(|d| d.str_at("propertyName")) {
                p.meta { "Discriminator: " code { (property) } }
            }
            @if has_props {
                (self.properties_table(schema, depth))
                @match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => p.meta { "No additional properties." },
                    Some(Value::Bool(true)) => p.meta { "Additional properties: any." },
                    Some(other) => p.meta { "Additional properties: " (self.type_of(other, depth + 1, true)) },
                    None => {},
                }
            }
            @for (key, label) in [("allOf", "All of"), ("oneOf", "One of"), ("anyOf", "Any of")] {
                @let parts = schema.arr_at(key);
                @if !parts.is_empty() {
                    p { (label) ":" }
                    ul.variants {
                        @for part in parts {
                            li {
                                @if part.get("$ref").is_some() || depth >= MAX_DEPTH {
                                    (self.type_of(part, depth + 1, true))
                                } @else {
                                    @if let Some(label) = variant_label(part) { p { strong { (label) } } }
                                    (self.schema_body(part, depth + 1))
                                }
                            }
                        }
                    }
                }
            }
            @if !values.is_empty() {
                p { "Allowed values:" }
                ul.enum { @for value in values { li { code { (json(value)) } } } }
            }
            @if depth == 0 {
                @for example in examples {
                    p { "Example:" }
                    pre { (serde_json::to_string_pretty(example).unwrap_or_default()) }
                }
            }
        }
    }

    fn properties_table(&self, schema: &Value, depth: usize) -> Markup {
        let required: BTreeSet<&str> = schema
            .arr_at("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        html! {
            table {
                thead { tr { th { "Property" } th { "Type" } th { "Required" } th { "Description" } } }
                tbody {
                    @for (name, property) in schema.entries_at("properties") {
                        tr {
                            td { code { (name) } }
                            td { (self.type_of(property, depth + 1, true)) }
                            td { (yes_no(required.contains(name))) }
                            td { (description_cell(schema_description(property), notes_of(property, true))) }
                        }
                    }
                }
            }
        }
    }

    fn schema_link(&self, name: &str) -> Markup {
        html! {
            @match self.schema_ids.get(name) {
                Some(id) => a.ref href={ "#" (id) } { code { (name) } },
                None => code { (name) },
            }
        }
    }

    fn ref_link(&self, reference: &str) -> Markup {
        if let Some(name) = reference.strip_prefix("#/components/schemas/") {
            return self.schema_link(&pointer_unescape(name));
        }
        let name = reference.rsplit('/').next().unwrap_or(reference);
        html! { code { (pointer_unescape(name)) } }
    }

    /// Compact, one-line rendering of a schema's type.
    /// `inline_enum` lists enum values after the type.
    fn type_of(&self, schema: &Value, depth: usize, inline_enum: bool) -> Markup {
        if depth > MAX_DEPTH {
            return html! { "…" };
        }
        let schema = match schema {
            Value::Bool(false) => return html! { "nothing" },
            Value::Object(_) => schema,
            _ => return html! { "any" },
        };
        if let Some(reference) = schema.str_at("$ref") {
            return self.ref_link(reference);
        }
        for (key, label, joiner) in [
            ("oneOf", "one of", " | "),
            ("anyOf", "any of", " | "),
            ("allOf", "all of", " & "),
        ] {
            let parts = schema.arr_at(key);
            if parts.is_empty() {
                continue;
            }
            let nullable = parts.iter().any(is_null_schema);
            let rest: Vec<&Value> = parts.iter().filter(|p| !is_null_schema(p)).collect();
            return html! {
                @match rest.as_slice() {
                    [] => "null",
                    [only] => (self.type_of(only, depth + 1, inline_enum)),
                    many => {
                        (label) " (" (join(many.iter().map(|p| self.type_of(p, depth + 1, inline_enum)), joiner)) ")"
                    },
                }
                @if nullable && !rest.is_empty() { " " span.muted { "or null" } }
            };
        }

        let mut types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut nullable = schema.is_true("nullable");
        if types.contains(&"null") {
            nullable = true;
            types.retain(|t| *t != "null");
            if types.is_empty() {
                return html! { "null" };
            }
        }
        if types.is_empty() {
            if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
                types.push("object");
            } else if schema.get("items").is_some() {
                types.push("array");
            }
        }
        let format = schema.str_at("format");
        let rendered: Vec<Markup> = types
            .iter()
            .map(|t| match *t {
                "array" => html! {
                    "array of "
                    @match schema.get("items") {
                        Some(items) => (self.type_of(items, depth + 1, true)),
                        None => "any",
                    }
                },
                "object" => self.object_type(schema, depth),
                other => html! {
                    (other)
                    @if let Some(format) = format { " " span.fmt { "(" (format) ")" } }
                },
            })
            .collect();
        let values = if inline_enum {
            schema.arr_at("enum")
        } else {
            &[]
        };
        html! {
            @if rendered.is_empty() {
                @if let Some(value) = schema.get("const") { "const " code { (json(value)) } }
                @else if schema.get("enum").is_some() { "enum" }
                @else { "any" }
            } @else {
                (join(rendered, " | "))
            }
            @if !values.is_empty() {
                ", one of: " (join(values.iter().map(|v| html! { code { (json(v)) } }), ", "))
            }
            @if nullable { " " span.muted { "or null" } }
        }
    }

    /// `object {a: T, b?: U}` or `map of string to T`.
    fn object_type(&self, schema: &Value, depth: usize) -> Markup {
        let properties = schema.entries_at("properties");
        if properties.is_empty() {
            return match schema.get("additionalProperties") {
                Some(Value::Bool(false)) | None => html! { "object" },
                Some(other) => {
                    html! { "map of string to " (self.type_of(other, depth + 1, true)) }
                }
            };
        }
        if depth >= MAX_DEPTH {
            return html! { "object {…}" };
        }
        let required: BTreeSet<&str> = schema
            .arr_at("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let fields = properties.into_iter().map(|(name, property)| {
            html! {
                (name) @if !required.contains(name) { "?" } ": "
                (self.type_of(property, depth + 1, true))
            }
        });
        html! { "object {" (join(fields, ", ")) "}" }
    }

    fn security(&self) -> Markup {
        let schemes = self.components("securitySchemes");
        html! {
            @if !schemes.is_empty() {
                section #security {
                    h2 { "Security schemes" }
                    table {
                        thead { tr { th { "Name" } th { "Type" } th { "Scheme" } th { "Description" } } }
                        tbody {
                            @for (name, scheme) in schemes {
                                @let scheme = self.resolve(scheme);
                                @let details = scheme_details(scheme);
                                tr id=(self.security_ids.get(name).map_or("", String::as_str)) {
                                    td { code { (name) } }
                                    td { (scheme.str_at("type").unwrap_or("")) }
                                    td {
                                        @if details.is_empty() { span.muted { "—" } }
                                        @for (i, detail) in details.into_iter().enumerate() {
                                            @if i > 0 { br; }
                                            (detail)
                                        }
                                    }
                                    td { (description_cell(scheme.str_at("description"), Vec::new())) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a security scheme is used: its HTTP scheme, key location, flows.
fn scheme_details(scheme: &Value) -> Vec<Markup> {
    let mut details = Vec::new();
    if let Some(s) = scheme.str_at("scheme") {
        details.push(html! { code { (s) } });
    }
    if let Some(f) = scheme.str_at("bearerFormat") {
        details.push(html! { "bearer format " code { (f) } });
    }
    if let (Some(location), Some(key)) = (scheme.str_at("in"), scheme.str_at("name")) {
        details.push(html! { code { (key) } " in " (location) });
    }
    if let Some(url) = scheme.str_at("openIdConnectUrl") {
        details.push(html! { "discovery " code { (url) } });
    }
    for (flow, spec) in scheme.entries_at("flows") {
        let scopes = spec.entries_at("scopes");
        details.push(html! {
            "flow " code { (flow) }
            @for key in ["authorizationUrl", "tokenUrl", "refreshUrl"] {
                @if let Some(url) = spec.str_at(key) { ", " (key) " " code { (url) } }
            }
            @if !scopes.is_empty() {
                ", scopes " (join(scopes.into_iter().map(|(scope, _)| html! { code { (scope) } }), " "))
            }
        });
    }
    details
}

fn description_cell(description: Option<&str>, notes: Vec<Markup>) -> Markup {
    let empty = description.is_none() && notes.is_empty();
    html! {
        @if let Some(d) = description { (paragraphs(d, None)) }
        @if !notes.is_empty() { p.note { (join(notes, " · ")) } }
        @if empty { span.muted { "—" } }
    }
}

/// Flags, default value and constraints of a schema; `deprecated` only
/// where the caller shows no badge of its own.
fn notes_of(schema: &Value, with_deprecated: bool) -> Vec<Markup> {
    let mut notes = Vec::new();
    if with_deprecated && schema.is_true("deprecated") {
        notes.push(deprecated());
    }
    if schema.is_true("readOnly") {
        notes.push(html! { span.badge { "read-only" } });
    }
    if schema.is_true("writeOnly") {
        notes.push(html! { span.badge { "write-only" } });
    }
    if let Some(default) = schema.get("default") {
        notes.push(html! { "Default: " code { (json(default)) } });
    }
    let constraints: Vec<Markup> = [
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
    .into_iter()
    .filter_map(|(key, label)| {
        let text = match schema.get(key)? {
            Value::String(s) => s.clone(),
            other => json(other),
        };
        Some(html! { (label) " " code { (text) } })
    })
    .collect();
    if !constraints.is_empty() {
        notes.push(html! { "Constraints: " (join(constraints, ", ")) });
    }
    notes
}

/// A heading for one inline `oneOf`/`anyOf`/`allOf` part: its title, or the
/// property that pins it down with a single allowed value (a serde tag).
fn variant_label(part: &Value) -> Option<Markup> {
    if let Some(title) = part.str_at("title") {
        return Some(html! { (title) });
    }
    part.entries_at("properties")
        .into_iter()
        .find_map(|(name, property)| {
            let value = match property.arr_at("enum") {
                [only] => only,
                _ => property.get("const")?,
            };
            Some(html! { code { (name) } " = " code { (json(value)) } })
        })
}

/// A schema's description; for a `oneOf`/`anyOf`/`allOf` wrapper without one
/// (utoipa's `Option<Ref>` shape), the description written beside a `$ref` part.
fn schema_description(schema: &Value) -> Option<&str> {
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

fn is_null_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => matches!(ts.as_slice(), [only] if only.as_str() == Some("null")),
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

fn deprecated() -> Markup {
    html! { span.badge.deprecated { "deprecated" } }
}

fn to_contents() -> Markup {
    html! { p.top { a href="#contents" { "↑ Contents" } } }
}

fn method_badge(method: &str) -> Markup {
    html! { span class={ "method m-" (method) } { (method.to_ascii_uppercase()) } }
}

fn status_code(status: &str) -> Markup {
    let class = match status.as_bytes().first() {
        Some(b'1') => "s-info",
        Some(b'2') => "s-ok",
        Some(b'3') => "s-redirect",
        Some(b'4') => "s-client",
        Some(b'5') => "s-server",
        _ => "s-other",
    };
    html! { code class={ "status " (class) } { (status) } }
}

static STYLE: Style = Style::new(
    "
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa;--link:#0550ae}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--bg:#0d1117;--soft:#151b23;--link:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}
main{max-width:62rem;margin:0 auto;padding:1.5rem 1rem 4rem}
h1{font-size:2rem;margin:.5rem 0}
h2{font-size:1.5rem;margin:2.5rem 0 1rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.15rem;margin:1.25rem 0 .5rem}
h4{font-size:1rem;margin:1.25rem 0 .4rem}
a{color:var(--link);text-decoration:none}
a:hover{text-decoration:underline}
a:focus-visible{outline:2px solid var(--link);outline-offset:2px}
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
",
);
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
        render(&ApiDoc::openapi()).as_str().to_owned()
    }

    /// Renders a hand-written spec (for shapes the derive macros do not produce).
    fn render_json(spec: serde_json::Value) -> String {
        super::Reference::new(&spec).render().as_str().to_owned()
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
        assert!(html.starts_with("<!DOCTYPE html>"));
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
                    "<section class=\"schema\" id=\"schema-{name}\"><h3><code>{name}</code>"
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
        let html = render(&spec).as_str().to_owned();
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
            "<p>Manage &lt;b&gt;roles&lt;/b&gt; &amp; &quot;users&quot;.</p><p>Second paragraph.</p>"
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
        assert_eq!(first, render(&ApiDoc::openapi()).as_str());
    }

    #[test]
    fn empty_spec_renders_a_page() {
        let spec = utoipa::openapi::OpenApiBuilder::new()
            .info(utoipa::openapi::Info::new("", "0.0.0"))
            .build();
        let html = render(&spec).as_str().to_owned();
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
        assert!(html.contains("<title>T&lt;i&gt;&quot;' API reference</title>"));
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
        assert!(get.contains("<code>limit</code></td><td>query</td><td>no</td><td>integer</td><td><p>at most</p><p class=\"note\">Default: <code>20</code> · Constraints: maximum <code>100</code></p>"));
        assert!(get.contains("<code>trace</code></td><td>header</td><td>yes</td>"));
        assert!(get.contains("overridden") && !get.contains("path-level"));
        assert!(
            get.contains("<code>application/json</code>: <code>Ghost</code>"),
            "missing schema is plain text"
        );
        assert!(get.contains(
            "<p>not found here</p><p class=\"note\">Headers: <code>X-Reason</code>: string</p>"
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
    fn slugs_keep_only_safe_characters() {
        assert_eq!(slug("/api/v2/roles/{id}", &['_']), "api-v2-roles-id");
        assert_eq!(slug("Page<Role>", &['_', '.']), "Page-Role");
        assert_eq!(slug("--", &[]), "");
    }

    #[test]
    fn error_page_escapes_the_reason() {
        let page = error_page("bad <thing> & \"more\"");
        let html = page.as_str();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("bad &lt;thing&gt; &amp; &quot;more&quot;"));
    }
}
