//! Which TCP connections this process holds open, read from the OS.
//!
//! reqwest keeps its pool private: it neither counts connections nor says
//! when one closes. Each response carries the (local, remote) addresses of
//! the connection that served it; the client remembers those per host, and
//! `open_pairs()` tells which of them are still sockets of this process (on
//! Linux: the sockets behind /proc/self/fd, looked up in /proc/net/tcp and
//! tcp6). A connection is open until this process closes its socket,
//! whatever state the peer left it in.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use parking_lot::Mutex;

/// (local, remote) with IPv4-mapped IPv6 addresses folded to IPv4.
pub type Pair = (SocketAddr, SocketAddr);

pub fn normalize(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// The connections a client's pool opened, as (local, remote) pairs; the
/// ones this process has closed are dropped at each `retain_open`.
#[derive(Default)]
pub struct Registry {
    pairs: Mutex<HashSet<Pair>>,
}

impl Registry {
    pub fn add(&self, local: SocketAddr, remote: SocketAddr) {
        let pair = (normalize(local), normalize(remote));
        let mut g = self.pairs.lock();
        if !g.contains(&pair) {
            g.insert(pair);
        }
    }

    /// Forgets the connections closed since; returns the open ones, or None
    /// where the OS doesn't say.
    pub fn retain_open(&self) -> Option<Vec<Pair>> {
        let now = open_pairs()?;
        let mut g = self.pairs.lock();
        g.retain(|p| now.contains(p));
        Some(g.iter().copied().collect())
    }
}

/// A layer around reqwest's connector that records each new connection's
/// addresses (from the `HttpInfo` the TCP connector attaches) in a Registry.
#[derive(Clone)]
pub struct CountingLayer(pub Arc<Registry>);

impl<S> tower_layer::Layer<S> for CountingLayer {
    type Service = Counting<S>;
    fn layer(&self, inner: S) -> Counting<S> {
        Counting {
            inner,
            registry: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counting<S> {
    inner: S,
    registry: Arc<Registry>,
}

type ConnectFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, R> tower_service::Service<R> for Counting<S>
where
    S: tower_service::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ConnectFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let fut = self.inner.call(req);
        let registry = self.registry.clone();
        Box::pin(async move {
            let conn = fut.await?;
            let mut ext = http::Extensions::new();
            conn.connected().get_extras(&mut ext);
            if let Some(info) = ext.get::<HttpInfo>() {
                registry.add(info.local_addr(), info.remote_addr());
            }
            Ok(conn)
        })
    }
}

/// The open TCP connections of this process, or None where the OS doesn't
/// say (not Linux, or /proc unreadable).
pub fn open_pairs() -> Option<HashSet<Pair>> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let mut inodes: HashSet<u64> = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                if let Ok(i) = n.parse() {
                    inodes.insert(i);
                }
            }
        }
    }
    let mut out = HashSet::new();
    let mut any = false;
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        any = true;
        for line in text.lines().skip(1) {
            if let Some((pair, inode)) = parse_line(line) {
                if inodes.contains(&inode) {
                    out.insert(pair);
                }
            }
        }
    }
    any.then_some(out)
}

/// One row of /proc/net/tcp{,6}: local and remote address, and the inode.
fn parse_line(line: &str) -> Option<(Pair, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if f.len() < 10 {
        return None;
    }
    let local = parse_addr(f[1])?;
    let remote = parse_addr(f[2])?;
    let inode: u64 = f[9].parse().ok()?;
    if inode == 0 {
        return None;
    }
    Some(((normalize(local), normalize(remote)), inode))
}

/// "0100007F:1F90" (IPv4) or 32 hex digits ":port" (IPv6): the address is
/// the kernel's in-memory words printed in host byte order.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_rows() {
        let row = "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 20 4 30 10 -1";
        let ((l, r), inode) = parse_line(row).expect("parses");
        if cfg!(target_endian = "little") {
            assert_eq!(l, "127.0.0.1:8080".parse().expect("addr"));
            assert_eq!(r, "127.0.0.1:54321".parse().expect("addr"));
        }
        assert_eq!(inode, 123456);
        // IPv4-mapped IPv6 folds to IPv4
        let row6 = "   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 99 1";
        let ((l, _), _) = parse_line(row6).expect("parses");
        if cfg!(target_endian = "little") {
            assert_eq!(l, "127.0.0.1:8080".parse().expect("addr"));
        }
    }

    #[test]
    fn sees_its_own_connection() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let c = std::net::TcpStream::connect(addr).expect("connect");
        let pair = (c.local_addr().expect("local"), c.peer_addr().expect("peer"));
        let open = open_pairs().expect("proc readable");
        assert!(open.contains(&pair));
        drop(c);
        let open = open_pairs().expect("proc readable");
        assert!(!open.contains(&pair));
    }
}
