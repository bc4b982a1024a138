//! The notary's pages: the human-readable certificate (`Accept:
//! text/html`), the same facts as the JSON and how to check them without
//! the server; and the public verification page, where anyone asks
//! whether a file was notarized.

use crate::docs::escape as esc;
use nephele_api_types::{Certificate, StoredFile, Verification};

/// Where anyone checks a file (`GET` the form, `POST` it).
pub const VERIFY_PATH: &str = "/api/notary/v2/verify";

const STYLE: &str = "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}\
th{text-align:left;padding-right:1em;vertical-align:top}code{word-break:break-all}</style>";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title}</title>{STYLE}</head><body>{body}</body></html>\n",
        title = esc(title),
    )
}

/// The form: a file (hashed by the server, never kept) or its SHA-256.
pub fn verify_form() -> String {
    page(
        "Verify a notarized file",
        &format!(
            "<h1>Verify a notarized file</h1>\
<p>Was this file notarized, and when? The file is hashed and forgotten: it is not stored.</p>\
<form method=\"post\" action=\"{VERIFY_PATH}\" enctype=\"multipart/form-data\">\
<p><label>File <input type=\"file\" name=\"file\" required></label> \
<button type=\"submit\">Verify the file</button></p></form>\
<form method=\"post\" action=\"{VERIFY_PATH}\" enctype=\"multipart/form-data\">\
<p><label>Or its SHA-256 <input name=\"sha256\" required size=\"64\" \
pattern=\"[0-9A-Fa-f]{{64}}\" autocomplete=\"off\" spellcheck=\"false\"></label> \
<button type=\"submit\">Verify the hash</button></p></form>"
        ),
    )
}

/// The answer to the form.
pub fn verification(answer: &Verification) -> String {
    let sha256 = format!("<code>{}</code>", esc(&answer.sha256));
    let body =
        match (&answer.certificate, answer.notarized_at) {
            (Some(cert), at) => {
                let head = &cert.signed_tree_head;
                format!(
                "<h1>Notarized</h1><p>The content with SHA-256 {sha256} was notarized{at}: it is \
leaf {leaf} of the notary's log, proven to the root of a tree of {size} signed at {signed} by \
key {key}.</p><p>The certificate (the JSON answer of <code>POST {VERIFY_PATH}</code>) can be \
checked with no server: <code>nephele notary verify FILE --certificate CERT.json --keys \
KEYS.json</code>, with the keys of <code>GET /api/notary/v2/keys</code>.</p>",
                at = at.map(|t| format!(" at {}", t.to_rfc3339())).unwrap_or_default(),
                leaf = cert.leaf_index,
                size = head.tree_size,
                signed = esc(&head.timestamp),
                key = esc(&head.key_id),
            )
            }
            (None, _) => format!(
                "<h1>Not notarized</h1><p>No content with SHA-256 {sha256} has been notarized \
(or its batch is not in yet).</p>"
            ),
        };
    page(
        "Verification",
        &format!("{body}<p><a href=\"{VERIFY_PATH}\">Verify another file</a></p>"),
    )
}

pub fn certificate(file: &StoredFile, cert: &Certificate) -> String {
    let head = &cert.signed_tree_head;
    let proof: String = cert
        .inclusion_proof
        .iter()
        .map(|h| format!("<li><code>{}</code></li>", esc(h)))
        .collect();
    let rows = [
        ("File", esc(&file.name)),
        ("Stored file id", file.id.to_string()),
        ("SHA-256", format!("<code>{}</code>", esc(&cert.sha256))),
        (
            "Notarized at",
            file.notarized_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
        ),
        ("Leaf index", cert.leaf_index.to_string()),
        (
            "Leaf hash",
            format!("<code>{}</code>", esc(&cert.leaf_hash)),
        ),
        ("Tree size", head.tree_size.to_string()),
        (
            "Root hash",
            format!("<code>{}</code>", esc(&head.root_hash)),
        ),
        ("Tree head signed at", esc(&head.timestamp)),
        (
            "Signing key",
            format!("{} ({})", esc(&head.key_id), esc(&head.algorithm)),
        ),
        (
            "Signature",
            format!("<code>{}</code>", esc(&head.signature)),
        ),
    ];
    let rows: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect();
    page(
        &format!("Notarization certificate: {}", file.name),
        &format!(
            "<h1>Notarization certificate</h1>\
<p>The SHA-256 of <strong>{name}</strong> is leaf {leaf} of the notary's append-only \
Merkle log (RFC 9162 hashing). The inclusion proof below leads from that leaf to the root of a \
tree head signed with the notary's key.</p>\
<table>{rows}</table><h2>Inclusion proof</h2><ol>{proof}</ol>\
<h2>Check it yourself</h2><p>Save the JSON certificate (<code>Accept: application/json</code>) \
and the notary's keys (<code>GET /api/notary/v2/keys</code>), then, with no server: \
<code>nephele notary verify FILE --certificate CERT.json --keys KEYS.json</code>. \
Or ask the notary's <a href=\"{VERIFY_PATH}\">public verification page</a>.</p>",
            name = esc(&file.name),
            leaf = cert.leaf_index,
        ),
    )
}
