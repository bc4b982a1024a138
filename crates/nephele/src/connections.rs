//! How many connections the server keeps open: in all, and from one
//! address. A connection over either cap is closed as it is accepted,
//! before a byte of it is read, so a client that opens connections and
//! sends nothing cannot take the server's memory or file descriptors.

use axum_server::accept::Accept;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The acceptor that counts connections; clones share the counts.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    inner: Arc<Counts>,
}

#[derive(Debug)]
struct Counts {
    max_total: usize,
    max_per_address: usize,
    /// Addresses not held to the per-address cap (trusted proxies, whose
    /// connections carry many clients).
    exempt: Vec<ipnet::IpNet>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl ConnectionLimit {
    pub fn new(max_total: usize, max_per_address: usize, exempt: Vec<ipnet::IpNet>) -> Self {
        ConnectionLimit {
            inner: Arc::new(Counts {
                max_total,
                max_per_address,
                exempt,
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// A place for a connection from `address`, or `None` when a cap is
    /// reached.
    fn admit(&self, address: Option<IpAddr>) -> Option<Slot> {
        let counts = &self.inner;
        let mut open = counts.open.lock().ok()?;
        if open.total >= counts.max_total {
            return None;
        }
        let address = address.map(canonical);
        let counted = address.filter(|a| !counts.exempt.iter().any(|n| n.contains(a)));
        if let Some(a) = counted {
            let n = open.by_address.entry(a).or_default();
            if *n >= counts.max_per_address {
                return None;
            }
            *n += 1;
        }
        open.total += 1;
        Some(Slot {
            limit: self.clone(),
            address: counted,
        })
    }

    fn release(&self, address: Option<IpAddr>) {
        let Ok(mut open) = self.inner.open.lock() else {
            return;
        };
        open.total = open.total.saturating_sub(1);
        if let Some(a) = address {
            if let Some(n) = open.by_address.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    open.by_address.remove(&a);
                }
            }
        }
    }
}

/// An IPv4 client seen through an IPv6 socket is the same client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A connection's place in the counts, given back when it closes.
#[derive(Debug)]
struct Slot {
    limit: ConnectionLimit,
    address: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limit.release(self.address);
    }
}

impl<S> Accept<TcpStream, S> for ConnectionLimit {
    type Stream = Counted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let address = stream.peer_addr().ok().map(|a| a.ip());
        std::future::ready(match self.admit(address) {
            Some(slot) => Ok((
                Counted {
                    stream,
                    _slot: slot,
                },
                service,
            )),
            None => {
                // Debug, not warn: a flood of refused connections must not
                // become a flood of log lines.
                tracing::debug!(client = ?address, "connection refused: too many open connections");
                Err(io::Error::other("too many open connections"))
            }
        })
    }
}

/// An accepted connection that holds its place in the counts while open.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_address_and_in_all_and_places_come_back() {
        let proxy: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let limit = ConnectionLimit::new(4, 2, vec![proxy]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let a_mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p: IpAddr = "10.1.1.1".parse().unwrap();
        let first = limit.admit(Some(a)).unwrap();
        let _second = limit.admit(Some(a_mapped)).unwrap();
        assert!(limit.admit(Some(a)).is_none(), "a third from one address");
        let _other = limit.admit(Some(b)).unwrap();
        // The proxy is not held to the per-address cap, only to the total.
        let _proxied = limit.admit(Some(p)).unwrap();
        assert!(limit.admit(Some(p)).is_none(), "over the total");
        drop(first);
        let _again = limit.admit(Some(a)).unwrap();
    }
}
