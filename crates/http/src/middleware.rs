//! Cross-cutting request handling inside the router: the access log and
//! metrics, the first-run gate, `Prefer: return=minimal`, and idempotency
//! keys.

use crate::audit;
use crate::error::error_response;
use crate::extract::read_body;
use crate::reply::Reply;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use http_body_util::BodyExt;
use nephele_app::access::AuditScope;
use nephele_common::ids::OrganizationId;
use nephele_common::{Error, ErrorCode, FieldError};
use nephele_store::idempotency::{Claim, IdempotencyKey, StoredResponse};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_AGENT_ID: HeaderName = HeaderName::from_static("x-agent-id");
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Who asked, from where, under which request id: for logs, audit and tasks.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub agent_id: Option<String>,
    /// The TCP peer.
    pub client_addr: Option<SocketAddr>,
    /// The client: the peer, or, when the peer is a trusted proxy, the
    /// address `X-Forwarded-For` names (the rightmost one not itself a
    /// trusted proxy).
    pub client_ip: Option<IpAddr>,
}

/// The client's address, seen through trusted proxies.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // RFC 7239 `Forwarded` when the proxy sends it, else the de facto
    // `X-Forwarded-For`; a hop that is not an address (`unknown`, an
    // obfuscated name, garbage) makes the whole header count as none.
    let forwarded: Vec<IpAddr> = if headers.contains_key(header::FORWARDED) {
        headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(forwarded_for)
            .collect::<Option<_>>()
            .unwrap_or_default()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Option<_>>()
            .unwrap_or_default()
    };
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

/// The `for=` address of one `Forwarded` element (RFC 7239 §4): `None`
/// when the element has no `for`, `Some(None)` when its node is not an
/// address. `192.0.2.1`, `"192.0.2.1:4711"`, `"[2001:db8::1]:4711"`.
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    let node = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim())
    })?;
    let node = node.trim_matches('"');
    let host = match node.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => match node.split_once(':') {
            // One colon: an IPv4 address and a port.
            Some((v4, port)) if !port.contains(':') => v4,
            _ => node,
        },
    };
    Some(host.parse().ok())
}

/// Who authentication found (or failed to find), for the access log and
/// the audit log.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    /// `user`, or for a failed attempt the scheme tried (`basic`, `api_key`,
    /// `bearer`).
    pub kind: &'static str,
    pub id: Option<String>,
    /// The login, or for a failed HTTP Basic attempt the name given.
    pub name: Option<String>,
    pub organization_id: Option<OrganizationId>,
    /// Authentication was attempted and failed.
    pub failed: bool,
}

impl Principal {
    fn log_name(&self) -> String {
        match (&self.id, self.failed) {
            (Some(id), false) => format!("{}:{id}", self.kind),
            _ => format!("failed:{}", self.kind),
        }
    }
}

/// Where authentication records the principal.
#[derive(Debug, Clone, Default)]
pub struct PrincipalSlot(pub std::sync::Arc<std::sync::OnceLock<Principal>>);

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
    // Keys belong to the principal, not to the credential shown: a retry
    // with a refreshed token, another API key or Basic is the same caller.
    // Unauthenticated POSTs (setup) share one space.
    let has_credentials = parts.headers.contains_key(header::AUTHORIZATION)
        || parts.headers.contains_key("mc-api-key");
    let scope = if has_credentials {
        match crate::auth::authenticate(&parts, &state).await {
            Ok(actor) => {
                let scope = format!("{}:{}", actor.principal.kind(), actor.principal);
                parts.extensions.insert(crate::auth::Authenticated(actor));
                scope
            }
            Err(e) => return error_response(&e),
        }
    } else {
        "anonymous".to_owned()
    };
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
    let store = state.app.store();
    let now = state.app.clock().now();
    let node = match state.app.engine() {
        Ok(engine) => engine.node().to_string(),
        Err(e) => return error_response(&e),
    };
    match store
        .claim_idempotency_key(&scope, &key, &request_hash, &node, now)
        .await
    {
        Err(e) => return error_response(&e),
        Ok(Claim::Task(task)) => {
            // The first request queued this task but died before it could
            // record its response: the response is the task's 202.
            let reply = task
                .parse::<uuid::Uuid>()
                .map_err(|_| Error::internal(format!("corrupt task id {task:?}")))
                .and_then(Reply::accepted);
            let mut resp = match reply {
                Ok(r) => r.into_response(),
                Err(e) => return error_response(&e),
            };
            resp.headers_mut().insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
            return resp;
        }
        Ok(Claim::Mismatch) => {
            return error_response(&Error::new(
                ErrorCode::IdempotencyKeyReused,
                "This Idempotency-Key was used with a different request",
            ))
        }
        Ok(Claim::InProgress) => {
            return error_response(&Error::new(
                ErrorCode::OperationInProgress,
                "A request with this Idempotency-Key is still in progress",
            ))
        }
        Ok(Claim::Replay(mut stored)) => {
            stored.body = match state
                .app
                .open_record(&stored.body, &format!("{scope}/{key}"))
            {
                Ok(body) => body,
                Err(e) => return error_response(&e),
            };
            return replay(stored);
        }
        Ok(Claim::Started) => {}
    }
    parts.extensions.insert(IdempotencyKey {
        scope: scope.clone(),
        key: key.clone(),
    });
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if resp.status().is_server_error() {
        if let Err(e) = store.release_idempotency_key(&scope, &key).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return resp;
    }
    let (resp_parts, body) = resp.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&Error::internal(format!("response body: {e}"))),
    };
    let stored = StoredResponse {
        status: resp_parts.status.as_u16(),
        content_type: resp_parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        location: resp_parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        // Sealed: a replayed creation can carry a secret (an API key's, a
        // client's), which must not lie in the database in clear.
        body: match state.app.seal_record(&body, &format!("{scope}/{key}")) {
            Ok(sealed) => sealed,
            Err(e) => return error_response(&e),
        },
    };
    if let Err(e) = store.complete_idempotency_key(&scope, &key, &stored).await {
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

    #[test]
    fn the_client_is_seen_through_trusted_proxies_only() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.1.2.3".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        // The rightmost address that is not a trusted proxy.
        assert_eq!(
            client_ip(Some(proxy), &headers, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(Some(stranger), &headers, &trusted),
            Some(stranger)
        );
        assert_eq!(client_ip(Some(proxy), &headers, &[]), Some(proxy));
        // Garbage in the header: the proxy itself.
        headers.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some(proxy));
    }

    #[test]
    fn rfc_7239_forwarded_is_read_like_x_forwarded_for_and_preferred() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let seen = |forwarded: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", "192.0.2.200".parse().unwrap());
            headers.insert("forwarded", forwarded.parse().unwrap());
            client_ip(Some(proxy), &headers, &trusted)
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            seen("for=203.0.113.9, for=198.51.100.7;proto=https, for=10.1.2.3"),
            ip("198.51.100.7")
        );
        assert_eq!(
            seen("for=\"198.51.100.7:4711\";by=10.0.0.1"),
            ip("198.51.100.7")
        );
        assert_eq!(
            seen("For=\"[2001:db8:cafe::17]:4711\""),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(seen("for=\"[2001:db8::1]\""), ip("2001:db8::1"));
        // A hop that is no address: the header counts as none.
        assert_eq!(seen("for=unknown, for=198.51.100.7"), Some(proxy));
        assert_eq!(seen("for=_hidden"), Some(proxy));
        // Without Forwarded, X-Forwarded-For as before.
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "192.0.2.200".parse().unwrap());
        assert_eq!(
            client_ip(Some(proxy), &headers, &trusted),
            ip("192.0.2.200")
        );
    }
}
