//! The server's HTML pages, written as maud templates: the API reference
//! (`/docs`), the notary's certificate and its public verification page.
//!
//! maud escapes every interpolated value, so text from the spec, a file
//! name or a hash cannot become markup; `PreEscaped` appears only around
//! the constant style sheets. Every page is one self-contained document
//! (inline CSS, no script, nothing from another host), served with a
//! Content-Security-Policy that allows exactly its own style sheet.

pub mod docs;
pub mod links;
pub mod notary;
pub mod signin;

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{header, HeaderValue, StatusCode};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};

/// A rendered page with the style sheet it was rendered with, so the
/// response can name that sheet (and nothing else) in its CSP.
#[derive(Debug, Clone)]
pub struct Page {
    html: String,
    csp: HeaderValue,
}

impl Page {
    /// The page's markup, as sent.
    pub fn as_str(&self) -> &str {
        &self.html
    }

    /// Lets the page's forms end at `origin` too: a browser applies
    /// `form-action` to the redirects after a form's submission, and a
    /// sign-in form's answer redirects to the application.
    pub fn allowing_form_redirect_to(mut self, style: &'static Style, origin: &str) -> Page {
        if let Ok(csp) = HeaderValue::from_str(&style.policy(&format!("'self' {origin}"))) {
            self.csp = csp;
        }
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::OK, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        response
    }
}

/// One inline style sheet and the CSP that allows it by hash.
pub struct Style {
    css: &'static str,
    csp: OnceLock<HeaderValue>,
}

impl Style {
    pub const fn new(css: &'static str) -> Self {
        Style {
            css,
            csp: OnceLock::new(),
        }
    }

    /// `default-src 'none'`: no script, no frame, no request to any
    /// host; only this sheet, and forms that post back to this origin.
    fn csp(&'static self) -> &'static HeaderValue {
        self.csp.get_or_init(|| {
            HeaderValue::from_str(&self.policy("'self'"))
                .unwrap_or(HeaderValue::from_static("default-src 'none'"))
        })
    }

    /// The policy, with forms allowed to post to `form_action`.
    fn policy(&self, form_action: &str) -> String {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(self.css));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action {form_action}; \
             base-uri 'none'; frame-ancestors 'none'"
        )
    }
}

/// A complete document: doctype, head with the title and the sheet, body.
pub fn document(title: &str, style: &'static Style, body: Markup) -> Page {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(style.css)) }
            }
            body { (body) }
        }
    };
    Page {
        html: html.into_string(),
        csp: style.csp().clone(),
    }
}

/// A text run in which balanced `` `code` `` spans become `<code>`; an
/// unpaired last backtick stays literal.
pub fn inline_text(text: &str) -> Markup {
    let parts: Vec<&str> = text.split('`').collect();
    let last = parts.len() - 1;
    html! {
        @for (i, part) in parts.iter().enumerate() {
            @if i % 2 == 0 { (part) }
            @else if i == last { "`" (part) }
            @else { code { (part) } }
        }
    }
}

/// Text split on blank lines into paragraphs of [`inline_text`].
pub fn paragraphs(text: &str, class: Option<&str>) -> Markup {
    let mut blocks: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(current.join("\n").trim().to_owned());
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    html! { @for block in &blocks { p class=[class] { (inline_text(block)) } } }
}

/// Parts joined by a separator (text, escaped like any other).
pub fn join(parts: impl IntoIterator<Item = Markup>, separator: &str) -> Markup {
    html! {
        @for (i, part) in parts.into_iter().enumerate() {
            @if i > 0 { (separator) }
            (part)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_code_spans_are_escaped() {
        let text = |s| inline_text(s).into_string();
        assert_eq!(text("use `<x>` now"), "use <code>&lt;x&gt;</code> now");
        assert_eq!(text("odd ` tick"), "odd ` tick");
        assert_eq!(text("`a` and `b"), "<code>a</code> and `b");
    }

    #[test]
    fn paragraphs_split_on_blank_lines() {
        assert_eq!(
            paragraphs("one\ntwo\n\n  \nthree\r\n\r\nfour", None).into_string(),
            "<p>one\ntwo</p><p>three</p><p>four</p>"
        );
        assert_eq!(paragraphs("\n\n", Some("x")).into_string(), "");
        assert_eq!(
            paragraphs("a", Some("x")).into_string(),
            "<p class=\"x\">a</p>"
        );
    }

    static TEST_STYLE: Style = Style::new("p{color:red}");

    #[test]
    fn a_document_escapes_its_title_and_allows_only_its_sheet() {
        let page = document("a<b>&\"c\"", &TEST_STYLE, html! { p { "x" } });
        let html = page.as_str();
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(html.contains("<title>a&lt;b&gt;&amp;&quot;c&quot;</title>"));
        assert!(html.contains("<style>p{color:red}</style>"));
        let csp = page.csp.to_str().unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest("p{color:red}"));
        assert!(csp.starts_with("default-src 'none'; "));
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")));
    }
}
