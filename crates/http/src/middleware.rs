//! Cross-cutting request handling inside the router: the access log and
//! metrics, the first-run gate, `Prefer: return=minimal`, and idempotency
//! keys.

use crate::audit;
use crate::error::error_response;
use crate::extract::read_body;
use crate::reply::Reply;
use crate::request::{client_ip, Principal, PrincipalSlot, RequestContext};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use http_body_util::BodyExt;
use nephele_app::access::AuditScope;
use nephele_app::idempotency::{self, Begun, StoredResponse};
use nephele_common::{Error, FieldError};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Instant;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_AGENT_ID: HeaderName = HeaderName::from_static("x-agent-id");
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

fn header_str(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

/// Marks a successful POST that changes nothing worth an audit event: a
/// machine's token request (counted in metrics instead) or an
/// introspection. Failures are audited regardless.
#[derive(Debug, Clone, Copy)]
pub struct NotAudited;

/// One log line and one metric sample per request.
pub async fn access_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ctx = RequestContext {
        request_id: header_str(req.headers(), &X_REQUEST_ID).unwrap_or_default(),
        agent_id: header_str(req.headers(), &X_AGENT_ID),
        client_addr: peer,
        client_ip: client_ip(
            peer.map(|p| p.ip()),
            req.headers(),
            &state.options.trusted_proxies,
        ),
    };
    let principal = PrincipalSlot::default();
    let scope = AuditScope::default();
    let mutating = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && route != "unmatched";
    // Only a change's audit event needs the path (for its target id).
    let path = if mutating {
        req.uri().path().to_owned()
    } else {
        String::new()
    };
    req.extensions_mut().insert(ctx.clone());
    req.extensions_mut().insert(principal.clone());
    req.extensions_mut().insert(scope.clone());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let principal = principal.0.get();
    let failed_auth = principal.is_some_and(|p| p.failed);
    let unaudited = resp.extensions().get::<NotAudited>().is_some();
    if (mutating || failed_auth) && status != 420 && !unaudited {
        let event = audit::event(
            &state.app,
            audit::Request {
                method: &method,
                route: &route,
                path: &path,
                ctx: &ctx,
                principal,
                scope: &scope,
                location: resp.headers().get(header::LOCATION),
                status,
            },
        );
        if let Err(e) = state.app.record(event).await {
            tracing::error!(request_id = %ctx.request_id, error = %e, "audit event lost");
        }
    }
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_request(method.as_str(), &route, status, elapsed);
    // Values the client chose are written quoted and escaped (`?`), so
    // none can end the line or forge a field.
    tracing::info!(
        target: "nephele::access",
        request_id = ?ctx.request_id,
        agent_id = ?ctx.agent_id.as_deref().unwrap_or("-"),
        principal = ?principal.map(Principal::log_name).as_deref().unwrap_or("-"),
        client = %ctx.client_addr.map(|a| a.to_string()).unwrap_or_default(),
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

/// Whether an incoming `X-Request-Id` is kept: 1–128 visible ASCII
/// characters. Anything else could forge log lines or audit fields.
fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The request's id (SPEC §3): its `X-Request-Id` when that is one
/// acceptable value, otherwise a new UUID, which replaces whatever came.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(&X_REQUEST_ID).iter();
    if let (Some(only), None) = (values.next(), values.next()) {
        if acceptable_request_id(only) {
            return only.clone();
        }
    }
    // A hyphenated UUID is always a valid header value.
    let id = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()).unwrap_or(
        HeaderValue::from_static("00000000-0000-0000-0000-000000000000"),
    );
    headers.insert(X_REQUEST_ID, id.clone());
    id
}

/// Until the platform is set up, only setup, operations and the API's
/// documentation answer (SPEC §2).
pub async fn setup_gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let exempt = path.starts_with("/occm/setup/")
        || matches!(
            path,
            "/healthz" | "/readyz" | "/metrics" | "/docs" | "/api/openapi.json"
        );
    if !exempt {
        match state.app.is_initialized().await {
            Ok(true) => {}
            Ok(false) => return error_response(&Error::not_set_up()),
            Err(e) => return error_response(&e),
        }
    }
    next.run(req).await
}

/// `Prefer: return=minimal` on an update: 204 and no body (RFC 7240).
pub async fn prefer_minimal(req: Request, next: Next) -> Response {
    let wants_minimal = matches!(*req.method(), Method::PUT | Method::PATCH)
        && req
            .headers()
            .get_all(HeaderName::from_static("prefer"))
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"));
    let resp = next.run(req).await;
    if !wants_minimal || resp.status() != StatusCode::OK {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    parts.status = StatusCode::NO_CONTENT;
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        HeaderName::from_static("preference-applied"),
        HeaderValue::from_static("return=minimal"),
    );
    Response::from_parts(parts, Body::empty())
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex_string(&h.finalize())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Idempotency-Key` on a POST: the first response is kept for 24 h; a
/// repeat with the same key and request gets it again, a repeat with a
/// different request gets 422 (3006). Keys are scoped to the principal
/// (SPEC §3), so one caller can never replay another's response.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The OAuth2 endpoints answer `no-store`: a token is never kept to be
    // replayed. Notary uploads stream (a body of gigabytes is not kept to
    // compare), and storing a file twice is harmless: two records.
    let path = req.uri().path();
    if req.method() != Method::POST
        || path.starts_with("/api/2/idp/")
        || path.starts_with("/api/notary/")
    {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k.to_owned(),
        _ => {
            return error_response(&Error::validation(vec![FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )]))
        }
    };
    let (mut parts, body) = req.into_parts();
    // Unauthenticated POSTs (setup) share one space.
    let has_credentials = parts.headers.contains_key(header::AUTHORIZATION)
        || parts.headers.contains_key("mc-api-key");
    let actor = if has_credentials {
        match crate::auth::authenticate(&parts, &state).await {
            Ok(actor) => Some(actor),
            Err(e) => return error_response(&e),
        }
    } else {
        None
    };
    let key = idempotency::key_of(actor.as_ref(), &key);
    if let Some(actor) = actor {
        parts.extensions.insert(crate::auth::Authenticated(actor));
    }
    let bytes = match read_body(body, state.options.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let request_hash = sha256_hex(&[target.as_bytes(), content_type, &bytes]);
    let key = match state.app.begin_idempotent(key, &request_hash).await {
        Err(e) => return error_response(&e),
        Ok(Begun::Replay(stored)) => return replay(stored),
        Ok(Begun::Task(task)) => {
            let mut resp = match Reply::accepted(task) {
                Ok(r) => r.into_response(),
                Err(e) => return error_response(&e),
            };
            resp.headers_mut().insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
            return resp;
        }
        Ok(Begun::Fresh(key)) => key,
    };
    parts.extensions.insert(key.clone());
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if resp.status().is_server_error() {
        if let Err(e) = state.app.abandon_idempotent(&key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return resp;
    }
    let (resp_parts, body) = resp.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&Error::internal(format!("response body: {e}"))),
    };
    let header_text = |name| {
        resp_parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let stored = StoredResponse {
        status: resp_parts.status.as_u16(),
        content_type: header_text(header::CONTENT_TYPE),
        location: header_text(header::LOCATION),
        body: body.to_vec(),
    };
    if let Err(e) = state.app.finish_idempotent(&key, stored).await {
        tracing::warn!(error = %e, "could not record an idempotent response");
    }
    Response::from_parts(resp_parts, Body::from(body))
}

fn replay(stored: StoredResponse) -> Response {
    let mut resp = Response::new(Body::from(stored.body));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    if let Some(ct) = stored
        .content_type
        .and_then(|v| HeaderValue::try_from(v).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(loc) = stored.location.and_then(|v| HeaderValue::try_from(v).ok()) {
        headers.insert(header::LOCATION, loc);
    }
    headers.insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    resp
}

/// The client's address as the access log records it (a trusted proxy's
/// `Forwarded` or `X-Forwarded-For`, else the peer).
pub fn client_address(request: &axum::extract::Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<RequestContext>()
        .and_then(|c| c.client_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_visible_ascii_of_a_bounded_length() {
        let ok = |s: &str| acceptable_request_id(&HeaderValue::from_str(s).unwrap());
        assert!(ok("3f2a-req_1.2:abc"));
        assert!(ok(&"x".repeat(128)));
        assert!(!ok(&"x".repeat(129)));
        assert!(!ok(""));
        assert!(!ok("a b"));
        assert!(!ok("a\tb"));
        assert!(!acceptable_request_id(
            &HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()
        ));
    }

    #[test]
    fn a_request_has_one_acceptable_id() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("abc-1"));
        assert_eq!(ensure_request_id(&mut headers), "abc-1");
        headers.append(X_REQUEST_ID, HeaderValue::from_static("abc-2"));
        let id = ensure_request_id(&mut headers);
        assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
        assert_eq!(headers.get_all(&X_REQUEST_ID).iter().count(), 1);
        assert_eq!(headers[&X_REQUEST_ID], id);
        let mut none = HeaderMap::new();
        let id = ensure_request_id(&mut none);
        assert_eq!(none[&X_REQUEST_ID], id);
    }
}
