//! Extractors that fail in the contract's shape: bodies (JSON or XML, with
//! 413/415/400/422), query strings, paths, `If-Match`, pagination.

use crate::error::HttpError;
use crate::state::AppState;
use crate::xml;
use axum::body::Body as AxumBody;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use nephele_common::page::PageRequest;
use nephele_common::{Error, ErrorCode, FieldError, Precondition};
use serde::de::DeserializeOwned;

/// The media types a request body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Xml,
    Form,
}

/// Classifies a `Content-Type`; `None` means not one we read.
pub fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime: mime::Mime = ct.parse().ok()?;
    match (
        mime.type_().as_str(),
        mime.subtype().as_str(),
        mime.suffix(),
    ) {
        ("application", "json", _) | ("application", _, Some(mime::JSON)) => Some(BodyKind::Json),
        ("application" | "text", "xml", _) | ("application", _, Some(mime::XML)) => {
            Some(BodyKind::Xml)
        }
        ("application", "x-www-form-urlencoded", _) => Some(BodyKind::Form),
        _ => None,
    }
}

pub fn unsupported_media_type() -> Error {
    Error::new(
        ErrorCode::UnsupportedMediaType,
        "Request bodies must be application/json or application/xml",
    )
}

pub fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("The request body exceeds the limit of {limit} bytes"),
    )
    .with("limit", limit as u64)
}

/// Reads a whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(body: AxumBody, limit: usize) -> Result<bytes::Bytes, Error> {
    // A declared length over the limit is refused before a byte is read.
    if http_body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(e) if crate::limits::timed_out(e.as_ref()) => {
            Err(crate::limits::body_timeout_error(&e))
        }
        Err(e) => Err(Error::malformed(format!(
            "Could not read the request body: {e}"
        ))),
    }
}

/// Turns a serde failure on field `path` into the contract's error: an
/// unknown or invalid field is a 422 naming it; a value of the wrong type
/// is a malformed request (400), also naming it.
fn data_error(path: Option<String>, message: &str) -> Error {
    let field = path.unwrap_or_default();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or("");
        let full = if field.is_empty() || field == name {
            name.to_owned()
        } else {
            format!("{field}.{name}").replace(&format!(".{name}.{name}"), &format!(".{name}"))
        };
        return Error::validation(vec![FieldError::new(full, "is not a known field")]);
    }
    let e = Error::malformed(format!("Invalid request body: {message}"));
    if field.is_empty() {
        e
    } else {
        e.with("field", field)
    }
}

/// Deserializes a request body of the given kind.
pub fn parse_body<T: DeserializeOwned>(kind: BodyKind, bytes: &[u8]) -> Result<T, Error> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        // An empty body is an empty object: every required field is then
        // reported missing in one 422.
        match kind {
            BodyKind::Xml => b"<request/>",
            _ => b"{}",
        }
    } else {
        bytes
    };
    // serde reads a struct from an array too (`[]` as every field left
    // out); every body of this API is an object.
    if kind == BodyKind::Json && bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::malformed("The request body must be a JSON object"));
    }
    match kind {
        BodyKind::Json | BodyKind::Form => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                match inner.classify() {
                    serde_json::error::Category::Data => {
                        data_error(Some(path).filter(|p| p != "."), &inner.to_string())
                    }
                    _ => Error::malformed(format!("Malformed JSON: {inner}")),
                }
            })?;
            de.end()
                .map_err(|e| Error::malformed(format!("Malformed JSON: {e}")))?;
            Ok(value)
        }
        BodyKind::Xml => xml::from_slice(bytes).map_err(|e| match e.kind {
            xml::XmlErrorKind::Syntax => Error::malformed(format!("Malformed XML: {}", e.message)),
            xml::XmlErrorKind::Data => data_error(e.path, &e.message),
        }),
    }
}

/// A request body, JSON or XML by its `Content-Type`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let limit = state.options.max_body_bytes;
        let kind = body_kind(req.headers());
        let bytes = read_body(req.into_body(), limit).await?;
        let kind = match kind {
            Some(k @ (BodyKind::Json | BodyKind::Xml)) => k,
            // No body at all needs no type.
            None if bytes.is_empty() => BodyKind::Json,
            _ => return Err(unsupported_media_type().into()),
        };
        Ok(Body(parse_body(kind, &bytes)?))
    }
}

/// A query string; a value of the wrong type is a malformed request.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                data_error(Some(path).filter(|p| p != "."), &e.into_inner().to_string()).into()
            })
    }
}

fn query_value<'a>(q: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .last()
}

/// `?limit=` and `?pageToken=`.
#[derive(Debug)]
pub struct Paging(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(Paging(nephele_common::page::parse(
            query_value(q, "limit").as_deref(),
            query_value(q, "pageToken").as_deref(),
        )?))
    }
}

/// The `If-Match` precondition of a PUT, PATCH or DELETE.
#[derive(Debug)]
pub struct IfMatch(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(Precondition::None)),
            Some(v) => {
                let s = v.to_str().map_err(|_| {
                    Error::malformed("If-Match must be ASCII").with("header", "If-Match")
                })?;
                Ok(IfMatch(Precondition::parse_if_match(s)?))
            }
        }
    }
}

/// A path parameter that must be a UUID; anything else names no resource.
pub fn parse_path_id<T: std::str::FromStr>(resource_type: &str, raw: &str) -> Result<T, Error> {
    raw.parse::<T>()
        .map_err(|_| Error::not_found(resource_type, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct T {
        #[allow(dead_code)]
        cpu: Option<u32>,
    }

    #[test]
    fn body_errors_are_classified() {
        let e = parse_body::<T>(BodyKind::Json, b"{\"cpu\":").unwrap_err();
        assert_eq!(e.status(), 400);
        let e = parse_body::<T>(BodyKind::Json, b"{\"cpu\":\"x\"}").unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.details()[0].context["field"], "cpu");
        let e = parse_body::<T>(BodyKind::Json, b"{\"bogus\":1}").unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(e.details()[0].context["field"], "bogus");
        assert!(parse_body::<T>(BodyKind::Json, b"").is_ok());
        assert_eq!(
            parse_body::<T>(BodyKind::Json, b"{} {}")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_body::<T>(BodyKind::Json, b"\xff\xfe")
                .unwrap_err()
                .status(),
            400
        );
    }
}
