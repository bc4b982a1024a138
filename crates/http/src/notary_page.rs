//! The human-readable certificate page (`Accept: text/html`): the same
//! facts as the JSON, and how to check them without the server.

use crate::docs::escape as esc;
use nephele_api_types::{Certificate, StoredFile};

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
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Notarization certificate: {name}</title>\
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
th{{text-align:left;padding-right:1em;vertical-align:top}}code{{word-break:break-all}}</style>\
</head><body><h1>Notarization certificate</h1>\
<p>The SHA-256 of <strong>{name}</strong> is leaf {leaf} of the notary's append-only \
Merkle log (RFC 9162 hashing). The inclusion proof below leads from that leaf to the root of a \
tree head signed with the notary's key.</p>\
<table>{rows}</table><h2>Inclusion proof</h2><ol>{proof}</ol>\
<h2>Check it yourself</h2><p>Save the JSON certificate (<code>Accept: application/json</code>) \
and the notary's keys (<code>GET /api/notary/v2/keys</code>), then, with no server: \
<code>nephele notary verify FILE --certificate CERT.json --keys KEYS.json</code>.</p>\
</body></html>\n",
        name = esc(&file.name),
        leaf = cert.leaf_index,
    )
}
