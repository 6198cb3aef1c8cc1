//! Which TCP connections this process holds open, read from the OS.
//!
//! reqwest keeps its pool private: it neither counts connections nor says
//! when one closes. Each response carries the (local, remote) addresses of
//! the connection that served it; the client remembers those per host, and
//! `open_pairs()` tells which of them are still sockets of this process (on
//! Linux: each descriptor in /proc/self/fd asked for its addresses). A
//! connection is open until this process closes its socket, whatever state
//! the peer left it in.

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
        if self.pairs.lock().is_empty() {
            // nothing to look up (still None where the OS wouldn't say)
            return cfg!(target_os = "linux").then(Vec::new);
        }
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
/// say. Each descriptor listed in /proc/self/fd is asked for its own and its
/// peer's address (two system calls each; no system-wide table is read, so
/// the cost follows this process's descriptors, not the machine's sockets).
pub fn open_pairs() -> Option<HashSet<Pair>> {
    #[cfg(target_os = "linux")]
    {
        let mut out = HashSet::new();
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if let (Some(local), Some(remote)) = (sock_addr(fd, false), sock_addr(fd, true)) {
                out.insert((normalize(local), normalize(remote)));
            }
        }
        Some(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The local (or, with `peer`, the remote) address of descriptor `fd` when it
/// is a connected IPv4/IPv6 socket.
#[cfg(target_os = "linux")]
fn sock_addr(fd: i32, peer: bool) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data, valid all-zero; the kernel
    // writes at most `len` bytes into it and updates `len`. A descriptor that
    // is not a socket (or closed meanwhile) makes the call fail: no write.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
    // SAFETY: `p` and `len` describe our own sockaddr_storage (see above).
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if rc != 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which
            // fits in sockaddr_storage; read by value.
            let a: libc::sockaddr_in = unsafe { std::ptr::read(p.cast()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: libc::sockaddr_in6 = unsafe { std::ptr::read(p.cast()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
