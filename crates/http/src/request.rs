//! Who asked, from where, under which request id: what the edge learns
//! about a request and authentication fills in, read by the access log,
//! the audit log and the handlers.

use axum::http::{header, HeaderMap};
use nephele_common::ids::OrganizationId;
use std::net::{IpAddr, SocketAddr};

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
    pub(crate) fn log_name(&self) -> String {
        match (&self.id, self.failed) {
            (Some(id), false) => format!("{}:{id}", self.kind),
            _ => format!("failed:{}", self.kind),
        }
    }
}

/// Where authentication records the principal.
#[derive(Debug, Clone, Default)]
pub struct PrincipalSlot(pub std::sync::Arc<std::sync::OnceLock<Principal>>);

#[cfg(test)]
mod tests {
    use super::*;

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
