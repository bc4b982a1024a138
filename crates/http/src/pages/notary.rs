//! The notary's pages: the human-readable certificate (`Accept:
//! text/html`), the same facts as the JSON and how to check them without
//! the server; and the public verification page, where anyone asks
//! whether a file was notarized.

use maud::{html, Markup};
use nephele_api_types::{Certificate, StoredFile, Verification};

use super::{document, Page, Style};

/// Where anyone checks a file (`GET` the form, `POST` it).
pub const VERIFY_PATH: &str = "/api/notary/v2/verify";

static STYLE: Style = Style::new(
    ":root{color-scheme:light dark}\
body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.5}\
th{text-align:left;padding-right:1em;vertical-align:top}code{word-break:break-all}\
input,button{font:inherit}:focus-visible{outline:2px solid;outline-offset:2px}",
);

/// How to check a certificate with no server.
fn offline_check() -> Markup {
    html! { code { "nephele notary verify FILE --certificate CERT.json --keys KEYS.json" } }
}

/// The form: a file (hashed by the server, never kept) or its SHA-256.
pub fn verify_form() -> Page {
    document(
        "Verify a notarized file",
        &STYLE,
        html! {
            main {
                h1 { "Verify a notarized file" }
                p { "Was this file notarized, and when? The file is hashed and forgotten: it is not stored." }
                form method="post" action=(VERIFY_PATH) enctype="multipart/form-data" {
                    p {
                        label { "File " input type="file" name="file" required; }
                        " " button type="submit" { "Verify the file" }
                    }
                }
                form method="post" action=(VERIFY_PATH) enctype="multipart/form-data" {
                    p {
                        label {
                            "Or its SHA-256 "
                            input name="sha256" required size="64" pattern="[0-9A-Fa-f]{64}"
                                autocomplete="off" spellcheck="false";
                        }
                        " " button type="submit" { "Verify the hash" }
                    }
                }
            }
        },
    )
}

/// The answer to the form.
pub fn verification(answer: &Verification) -> Page {
    let sha256 = html! { code { (answer.sha256) } };
    let body = match &answer.certificate {
        Some(cert) => {
            let head = &cert.signed_tree_head;
            html! {
                h1 { "Notarized" }
                p {
                    "The content with SHA-256 " (sha256) " was notarized"
                    @if let Some(at) = answer.notarized_at { " at " (at.to_rfc3339()) }
                    ": it is leaf " (cert.leaf_index) " of the notary's log, proven to the root of a tree of "
                    (head.tree_size) " signed at " (head.timestamp) " by key " (head.key_id) "."
                }
                p {
                    "The certificate (the JSON answer of " code { "POST " (VERIFY_PATH) } ") can be checked with no server: "
                    (offline_check()) ", with the keys of " code { "GET /api/notary/v2/keys" } "."
                }
            }
        }
        None => html! {
            h1 { "Not notarized" }
            p { "No content with SHA-256 " (sha256) " has been notarized (or its batch is not in yet)." }
        },
    };
    document(
        "Verification",
        &STYLE,
        html! {
            main {
                (body)
                p { a href=(VERIFY_PATH) { "Verify another file" } }
            }
        },
    )
}

pub fn certificate(file: &StoredFile, cert: &Certificate) -> Page {
    let head = &cert.signed_tree_head;
    let rows: [(&str, Markup); 11] = [
        ("File", html! { (file.name) }),
        ("Stored file id", html! { (file.id) }),
        ("SHA-256", html! { code { (cert.sha256) } }),
        (
            "Notarized at",
            html! { @if let Some(at) = file.notarized_at { (at.to_rfc3339()) } },
        ),
        ("Leaf index", html! { (cert.leaf_index) }),
        ("Leaf hash", html! { code { (cert.leaf_hash) } }),
        ("Tree size", html! { (head.tree_size) }),
        ("Root hash", html! { code { (head.root_hash) } }),
        ("Tree head signed at", html! { (head.timestamp) }),
        (
            "Signing key",
            html! { (head.key_id) " (" (head.algorithm) ")" },
        ),
        ("Signature", html! { code { (head.signature) } }),
    ];
    document(
        &format!("Notarization certificate: {}", file.name),
        &STYLE,
        html! {
            main {
                h1 { "Notarization certificate" }
                p {
                    "The SHA-256 of " strong { (file.name) } " is leaf " (cert.leaf_index)
                    " of the notary's append-only Merkle log (RFC 9162 hashing). The inclusion proof below \
                     leads from that leaf to the root of a tree head signed with the notary's key."
                }
                table { @for (name, value) in rows { tr { th { (name) } td { (value) } } } }
                h2 { "Inclusion proof" }
                ol { @for hash in &cert.inclusion_proof { li { code { (hash) } } } }
                h2 { "Check it yourself" }
                p {
                    "Save the JSON certificate (" code { "Accept: application/json" } ") and the notary's keys ("
                    code { "GET /api/notary/v2/keys" } "), then, with no server: " (offline_check())
                    ". Or ask the notary's " a href=(VERIFY_PATH) { "public verification page" } "."
                }
            }
        },
    )
}
