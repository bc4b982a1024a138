//! Content negotiation (SPEC §3): JSON by default, XML by `Accept` or by a
//! `.xml` path suffix (`.json` forces JSON). This layer sits in front of the
//! router: it strips the suffix before routing, and renders the JSON body a
//! handler produced as XML on the way out — so every route, present and
//! future, speaks both without doing anything.

use crate::error::error_response;
use crate::reply::XmlListItem;
use crate::xml;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use nephele_common::{Error, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
    /// Only where a route renders a page of its own (a notary
    /// certificate); everywhere else HTML is not on offer.
    Html,
}

/// Endpoints with a fixed representation of their own.
fn is_operational(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/docs" | "/api/openapi.json"
    )
}

/// Answers that come as XML when asked.
pub(crate) fn serves_xml(path: &str) -> bool {
    !is_operational(path) && !is_download(path)
}

/// A notary certificate and a verification, which also come as pages.
pub(crate) fn offers_html(path: &str) -> bool {
    path.starts_with("/api/notary/v2/stored-files/") && path.ends_with("/certificate")
        || path == crate::pages::notary::VERIFY_PATH
}

/// Stored content, which comes as it was stored, whatever is asked.
fn is_download(path: &str) -> bool {
    path.starts_with("/api/notary/v2/stored-files/") && path.ends_with("/content")
}

/// Each media range of an `Accept` header, lower-cased, with its q
/// (1 when absent, clamped to 0–1, 0 when unreadable).
fn media_ranges(accept: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    accept.split(',').map(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0_f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
        }
        (media, q)
    })
}

/// Does `accept` rank `text/html` at least as high as anything else?
fn prefers_html(accept: &str) -> bool {
    let mut html = 0.0_f32;
    let mut best_other = 0.0_f32;
    for (media, q) in media_ranges(accept) {
        match media.as_str() {
            "text/html" => html = html.max(q),
            // Browsers add these at lower q; they do not outrank the page.
            "*/*" | "text/*" => {}
            _ => best_other = best_other.max(q),
        }
    }
    html > 0.0 && html >= best_other
}

/// Picks a representation from an `Accept` header: the highest q wins, a
/// named type beats a wildcard at equal q, and JSON wins a full tie. A
/// browser's `Accept` — one that ranks `text/html` above XML — gets JSON
/// when it takes JSON at all (SPEC §3): XML is for clients that ask for it
/// first. `None`: the client accepts neither.
pub fn choose(accept: &str) -> Option<Format> {
    let mut best_json = (0.0_f32, 0_u8);
    let mut best_xml = (0.0_f32, 0_u8);
    let mut html = 0.0_f32;
    for (media, q) in media_ranges(accept) {
        if media == "text/html" {
            html = html.max(q);
        }
        let (json_spec, xml_spec) = match media.as_str() {
            "*/*" => (1, 1),
            "application/*" => (2, 2),
            "text/*" => (0, 2),
            "application/json" => (3, 0),
            "application/xml" | "text/xml" => (0, 3),
            _ => (0, 0),
        };
        if json_spec > best_json.1 {
            best_json = (q, json_spec);
        }
        if xml_spec > best_xml.1 {
            best_xml = (q, xml_spec);
        }
    }
    let (jq, js) = best_json;
    let (xq, xs) = best_xml;
    if jq <= 0.0 && xq <= 0.0 {
        return None;
    }
    if jq > 0.0 && html > xq {
        return Some(Format::Json);
    }
    if xq > jq || (xq == jq && xs > js) {
        Some(Format::Xml)
    } else {
        Some(Format::Json)
    }
}

fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_operational(&path) || is_download(&path) {
        let resp = next.run(req).await;
        return finish(resp, Format::Json, &Method::GET).await;
    }
    let mut format = None;
    for (suffix, f) in [(".xml", Format::Xml), (".json", Format::Json)] {
        if let Some(stripped) = path.strip_suffix(suffix) {
            if let Some(uri) = with_path(req.uri(), stripped) {
                *req.uri_mut() = uri;
                format = Some(f);
            }
            break;
        }
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = match format {
        Some(f) => f,
        None if offers_html(&path) && accept.is_some_and(prefers_html) => Format::Html,
        None => match req.headers().get(header::ACCEPT).map(|v| v.to_str()) {
            None => Format::Json,
            Some(Ok(accept)) => match choose(accept) {
                Some(f) => f,
                None => return error_response(&not_acceptable()),
            },
            Some(Err(_)) => return error_response(&not_acceptable()),
        },
    };
    req.extensions_mut().insert(format);
    let method = req.method().clone();
    let resp = next.run(req).await;
    finish(resp, format, &method).await
}

fn not_acceptable() -> Error {
    Error::new(
        ErrorCode::NotAcceptable,
        "This resource is available as application/json or application/xml",
    )
}

/// Fills the bodies axum leaves empty (405) and renders XML when asked.
async fn finish(resp: Response, format: Format, _method: &Method) -> Response {
    let resp = if resp.status() == StatusCode::METHOD_NOT_ALLOWED && is_empty(&resp) {
        method_not_allowed(resp)
    } else {
        resp
    };
    if format == Format::Xml && is_json(&resp) {
        to_xml_response(resp).await
    } else {
        resp
    }
}

fn is_empty(resp: &Response) -> bool {
    use http_body::Body as _;
    resp.body().size_hint().exact() == Some(0)
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

fn method_not_allowed(resp: Response) -> Response {
    let allow = resp.headers().get(header::ALLOW).cloned();
    let allowed: Vec<serde_json::Value> = allow
        .as_ref()
        .and_then(|a| a.to_str().ok())
        .map(|a| {
            a.split(',')
                .map(|m| serde_json::Value::from(m.trim()))
                .collect()
        })
        .unwrap_or_default();
    let e = Error::new(
        ErrorCode::MethodNotAllowed,
        "This method is not allowed on this resource",
    )
    .with("allowedMethods", allowed);
    let mut out = error_response(&e);
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

async fn to_xml_response(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&Error::internal(format!("response body: {e}"))),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return error_response(&Error::internal(format!("response not JSON: {e}"))),
    };
    let item = parts.extensions.get::<XmlListItem>().map(|i| i.0);
    let out = xml::to_xml(&value, item);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        assert_eq!(choose("*/*"), Some(Format::Json));
        assert_eq!(choose("application/xml"), Some(Format::Xml));
        assert_eq!(choose("text/xml"), Some(Format::Xml));
        assert_eq!(choose("application/xml, */*"), Some(Format::Xml));
        assert_eq!(
            choose("application/json;q=0.5, application/xml"),
            Some(Format::Xml)
        );
        assert_eq!(
            choose("application/xml;q=0.1, application/json"),
            Some(Format::Json)
        );
        assert_eq!(choose("text/html"), None);
        assert_eq!(choose("application/json;q=0"), None);
        assert_eq!(choose("text/html, application/*;q=0.2"), Some(Format::Json));
        assert_eq!(choose("image/png, text/*"), Some(Format::Xml));
        // Browsers rank the page above XML: they get JSON.
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(choose(firefox), Some(Format::Json));
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                      image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        assert_eq!(choose(chrome), Some(Format::Json));
        // Unless JSON is not on their list at all.
        assert_eq!(
            choose("text/html, application/xml;q=0.5"),
            Some(Format::Xml)
        );
        // Asking for XML first still gets XML.
        assert_eq!(
            choose("application/xml, text/html;q=0.9"),
            Some(Format::Xml)
        );
    }
}
