//! WebSocket market streams (Binance's combined `/stream?streams=a/b`):
//! one task per subscription that connects, reads frames into a bounded
//! buffer and reconnects with backoff and jitter when the connection drops
//! or goes silent (a watchdog), so a consumer never sees the stream end
//! until it closes it.
//!
//! The buffer's policy decides what an overflow does: `Block` stops reading
//! (the socket's own buffers then fill), `DropOldest` and `DropNewest`
//! discard a frame and count it. The stream goes on in every case.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::errors::{ErrorKind, FtError, FtResult};

/// The hashes of the frames a connection delivered lately (a ring of
/// `OVERLAP_FRAMES`), so that its replacement's repeats can be dropped.
#[derive(Default)]
struct Recent {
    order: VecDeque<u64>,
    set: std::collections::HashMap<u64, u32>,
}

impl Recent {
    fn remember(&mut self, frame: &[u8]) {
        let h = frame_hash(frame);
        self.order.push_back(h);
        *self.set.entry(h).or_insert(0) += 1;
        if self.order.len() > OVERLAP_FRAMES {
            if let Some(old) = self.order.pop_front() {
                if let Some(n) = self.set.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.set.remove(&old);
                    }
                }
            }
        }
    }

    fn seen(&self, frame: &[u8]) -> bool {
        self.set.contains_key(&frame_hash(frame))
    }

    fn clear(&mut self) {
        self.order.clear();
        self.set.clear();
    }
}

/// The TLS connector for `wss://`: rustls with ring (the HTTP client's
/// provider), trusting `ca_pem` when given, else the platform's store.
fn tls_connector(ca_pem: Option<&[u8]>) -> FtResult<tokio_rustls::TlsConnector> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = match ca_pem {
        Some(pem) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| FtError::config(format!("ca: cannot read the bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| FtError::config(format!("ca: {e}")))?;
            }
            if roots.is_empty() {
                return Err(FtError::config("ca: the CA bundle holds no certificate"));
            }
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier()
                .map_err(|e| FtError::config(format!("ca: the platform trust store: {e}")))?
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Block,
    DropOldest,
    DropNewest,
}

impl Policy {
    pub fn parse(s: &str) -> FtResult<Policy> {
        match s {
            "block" => Ok(Policy::Block),
            "drop_oldest" => Ok(Policy::DropOldest),
            "drop_newest" => Ok(Policy::DropNewest),
            _ => Err(FtError::config(format!(
                "overflow: one of 'block', 'drop_oldest', 'drop_newest', got {s:?}"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// `ws://host:port` or `wss://host:port` (the combined-stream path is added).
    pub ws_url: String,
    pub streams: Vec<String>,
    pub capacity: usize,
    pub policy: Policy,
    pub max_backoff: Duration,
    /// No frame (data or ping) for this long: the connection is replaced.
    pub watchdog: Duration,
    pub max_frame: usize,
    /// PEM CA bundle trusted for `wss://` instead of the platform's store.
    pub ca_pem: Option<Vec<u8>>,
    /// A connection older than this is replaced by a new one before the
    /// exchange ends it (Binance closes connections after 24 hours).
    pub rotate_after: Duration,
}

#[derive(Default, Debug)]
pub struct Counters {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub reconnects: AtomicU64,
    pub connects: AtomicU64,
    pub malformed: AtomicU64,
    /// Planned connection replacements (see `rotate_after`).
    pub rotations: AtomicU64,
    /// Frames the replacing connection repeated from the old one, dropped.
    pub duplicates: AtomicU64,
}

/// A socket under the WebSocket: plain TCP or TLS.
enum Conn {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<Conn>;

/// What ended a connection's reading.
enum Ended {
    /// The stream was closed by its owner.
    Closed,
    /// The connection reached `rotate_after`.
    Rotate,
}

/// How many of the old connection's frames during an overlap are remembered
/// (their hashes) to drop the replacing connection's repeats of them.
const OVERLAP_FRAMES: usize = 8192;
/// How long an overlap waits for the old connection to catch up.
const OVERLAP_WAIT: Duration = Duration::from_secs(5);

fn frame_hash(b: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(b)
}

pub struct Stream {
    cfg: StreamConfig,
    q: Mutex<VecDeque<Bytes>>,
    readable: Notify,
    space: Notify,
    closed: AtomicBool,
    /// Wakes the connection task on close (a stored permit if it is busy).
    closing: Notify,
    pub counters: Counters,
    last_error: Mutex<Option<String>>,
}

/// The combined-stream URL for `cfg`.
pub fn stream_url(cfg: &StreamConfig) -> FtResult<String> {
    let base = url::Url::parse(&cfg.ws_url)
        .map_err(|e| FtError::config(format!("ws_url: {:?}: {e}", cfg.ws_url)))?;
    if base.scheme() != "ws" && base.scheme() != "wss" {
        return Err(FtError::config(format!(
            "ws_url: expected ws:// or wss://, got {}",
            base.scheme()
        )));
    }
    if cfg.streams.is_empty() {
        return Err(FtError::config("streams: at least one stream name"));
    }
    for s in &cfg.streams {
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@_-!".contains(&b))
        {
            return Err(FtError::config(format!(
                "streams: invalid stream name {s:?}"
            )));
        }
    }
    Ok(format!(
        "{}/stream?streams={}",
        cfg.ws_url.trim_end_matches('/'),
        cfg.streams.join("/")
    ))
}

fn jitter(d: Duration) -> Duration {
    let r = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|x| x.subsec_nanos())
        .unwrap_or(0)
        % 1000;
    // between half and all of d: reconnecting clients spread out
    d.mul_f64(0.5 + r as f64 / 2000.0)
}

impl Stream {
    /// Starts the subscription on the runtime.
    pub fn start(cfg: StreamConfig, handle: &tokio::runtime::Handle) -> FtResult<Arc<Stream>> {
        let url = stream_url(&cfg)?;
        if cfg.capacity == 0 {
            return Err(FtError::config("buffer: at least 1 message"));
        }
        if let Some(pem) = &cfg.ca_pem {
            // a bad bundle is the caller's mistake: say so now, not on every reconnect
            tls_connector(Some(pem))?;
        }
        let s = Arc::new(Stream {
            cfg,
            q: Mutex::new(VecDeque::new()),
            readable: Notify::new(),
            space: Notify::new(),
            closed: AtomicBool::new(false),
            closing: Notify::new(),
            counters: Counters::default(),
            last_error: Mutex::new(None),
        });
        let task = s.clone();
        handle.spawn(async move { task.run(url).await });
        Ok(s)
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_one();
        self.readable.notify_waiters();
        self.space.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn buffered(&self) -> usize {
        self.q.lock().len()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    async fn run(self: Arc<Self>, url: String) {
        let mut backoff = Duration::from_millis(100);
        while !self.is_closed() {
            let seen = self.counters.received.load(Ordering::Relaxed);
            let outcome = self.connection(&url).await;
            if self.counters.received.load(Ordering::Relaxed) > seen {
                // the connection worked before it dropped: reconnect promptly
                backoff = Duration::from_millis(100);
            }
            match outcome {
                Ok(()) => {}
                Err(e) => {
                    *self.last_error.lock() = Some(e.message.clone());
                    tracing::warn!(target: "ferrotick::exchange", "stream {}: {}", self.cfg.streams.join(","), e);
                }
            }
            if self.is_closed() {
                break;
            }
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
        self.readable.notify_waiters();
    }

    /// Opens one WebSocket connection (TCP, TLS for `wss://`, handshake).
    async fn open(&self, url: &str) -> FtResult<Ws> {
        let parsed = url::Url::parse(url).map_err(|e| FtError::config(format!("ws_url: {e}")))?;
        let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| FtError::new(ErrorKind::Connect, "stream connect timed out"))?
        .map_err(|e| FtError::with_cause(ErrorKind::Connect, "stream connect", &e))?;
        let _ = tcp.set_nodelay(true);
        let conn = if parsed.scheme() == "wss" {
            let tls = tls_connector(self.cfg.ca_pem.as_deref())?;
            let name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|e| FtError::config(format!("ws_url: host {host:?}: {e}")))?;
            let stream = tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp))
                .await
                .map_err(|_| FtError::new(ErrorKind::Connect, "stream TLS handshake timed out"))?
                .map_err(|e| FtError::with_cause(ErrorKind::Connect, "stream TLS handshake", &e))?;
            Conn::Tls(Box::new(stream))
        } else {
            Conn::Plain(tcp)
        };
        let mut wcfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
        wcfg.max_frame_size = Some(self.cfg.max_frame);
        wcfg.max_message_size = Some(self.cfg.max_frame);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, conn, Some(wcfg))
            .await
            .map_err(|e| FtError::with_cause(ErrorKind::Connect, "stream handshake", &e))?;
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        Ok(ws)
    }

    /// Connections one after the other, until one drops, goes silent or the
    /// stream closes. A connection reaching `rotate_after` is replaced without a
    /// gap: the new one is opened while the old one is still read, and once the
    /// new one delivers, the old one is closed and the new one's repeats of
    /// frames already delivered are dropped.
    async fn connection(&self, url: &str) -> FtResult<()> {
        let mut ws = self.open(url).await?;
        let mut recent = Recent::default();
        loop {
            let deadline = tokio::time::Instant::now() + self.cfg.rotate_after;
            match self.drive(&mut ws, deadline).await? {
                Ended::Closed => return Ok(()),
                Ended::Rotate => match self.open(url).await {
                    Ok(new) => {
                        ws = self.overlap(ws, new, &mut recent).await?;
                        self.counters.rotations.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // the old connection still works: keep it, try again later
                        *self.last_error.lock() = Some(e.message.clone());
                    }
                },
            }
        }
    }

    /// Reads `ws` into the buffer until the stream closes (Closed), the
    /// deadline passes (Rotate) or the connection fails (Err).
    async fn drive(&self, ws: &mut Ws, deadline: tokio::time::Instant) -> FtResult<Ended> {
        loop {
            if self.is_closed() {
                let _ = ws.close(None).await;
                return Ok(Ended::Closed);
            }
            let next = tokio::select! {
                m = tokio::time::timeout(self.cfg.watchdog, ws.next()) => m,
                _ = tokio::time::sleep_until(deadline) => return Ok(Ended::Rotate),
                _ = self.closing.notified() => {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Closed);
                }
            };
            if let Some(frame) = self.frame_of(ws, next).await? {
                self.push(frame).await;
            }
        }
    }

    /// Reads both connections until the old one has delivered everything the
    /// new one started with, then closes the old one and returns the new one.
    ///
    /// Both connections carry the same events in the same order. The new one's
    /// frames are held back until the old one delivers the first of them (then
    /// nothing before it is missing); the held frames the old one already
    /// delivered are dropped as repeats, and the rest delivered. Only frames the
    /// old connection delivers here can repeat, so only those are remembered.
    /// If the old connection ends or lags past `OVERLAP_WAIT`, the held frames
    /// are delivered as they are.
    async fn overlap(&self, mut old: Ws, mut new: Ws, recent: &mut Recent) -> FtResult<Ws> {
        let mut held: VecDeque<Bytes> = VecDeque::new();
        let give_up = tokio::time::Instant::now() + OVERLAP_WAIT;
        loop {
            if self.is_closed() {
                break;
            }
            if let Some(first) = held.front() {
                if recent.seen(first) {
                    break; // the old connection reached the new one's start
                }
            }
            tokio::select! {
                m = tokio::time::timeout(self.cfg.watchdog, old.next()) => {
                    match self.frame_of(&mut old, m).await {
                        Ok(Some(frame)) => {
                            recent.remember(&frame);
                            self.push(frame).await;
                        }
                        Ok(None) => {}
                        Err(_) => break, // the old one ended: the new one takes over
                    }
                }
                m = tokio::time::timeout(self.cfg.watchdog, new.next()) => {
                    if let Some(frame) = self.frame_of(&mut new, m).await? {
                        held.push_back(frame);
                        if held.len() >= OVERLAP_FRAMES {
                            break;
                        }
                    }
                }
                _ = tokio::time::sleep_until(give_up) => break,
            }
        }
        let _ = old.close(None).await;
        let mut checking = true;
        for frame in held {
            if checking && recent.seen(&frame) {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // past the first frame the old one never sent, every frame is new
            checking = false;
            self.push(frame).await;
        }
        recent.clear();
        Ok(new)
    }

    /// One read's outcome: a data frame, nothing (control frames), or the
    /// connection's end as an error.
    async fn frame_of(
        &self,
        ws: &mut Ws,
        next: Result<
            Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
            tokio::time::error::Elapsed,
        >,
    ) -> FtResult<Option<Bytes>> {
        let msg = match next {
            Err(_) => {
                return Err(FtError::new(
                    ErrorKind::Exchange,
                    "stream silent past the watchdog; reconnecting",
                ))
            }
            Ok(None) => {
                return Err(FtError::new(
                    ErrorKind::Exchange,
                    "stream closed by the server",
                ))
            }
            Ok(Some(Err(e))) => return Err(FtError::with_cause(ErrorKind::Exchange, "stream", &e)),
            Ok(Some(Ok(m))) => m,
        };
        Ok(match msg {
            Message::Text(t) => Some(Bytes::from(t.as_str().to_owned())),
            Message::Binary(b) => Some(b),
            Message::Ping(_) => {
                // tungstenite queues the pong itself when it reads a ping;
                // flushing sends it now (a second, explicit pong would count
                // twice against the exchange's incoming-message limit)
                let _ = ws.flush().await;
                None
            }
            Message::Close(_) => {
                return Err(FtError::new(
                    ErrorKind::Exchange,
                    "stream closed by the server",
                ))
            }
            _ => None,
        })
    }

    async fn push(&self, frame: Bytes) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        loop {
            let space = self.space.notified();
            {
                let mut q = self.q.lock();
                if q.len() < self.cfg.capacity {
                    q.push_back(frame);
                    break;
                }
                match self.cfg.policy {
                    Policy::DropOldest => {
                        q.pop_front();
                        q.push_back(frame);
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Policy::DropNewest => {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Policy::Block => {}
                }
            }
            if self.is_closed() {
                return;
            }
            space.await;
        }
        self.readable.notify_one();
    }

    /// Up to `max` frames, waiting for the first; `None` once closed.
    pub async fn next_batch(&self, max: usize) -> Option<Vec<Bytes>> {
        loop {
            let readable = self.readable.notified();
            {
                let mut q = self.q.lock();
                if !q.is_empty() {
                    let n = q.len().min(max.max(1));
                    let out: Vec<Bytes> = q.drain(..n).collect();
                    drop(q);
                    self.counters
                        .delivered
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                    self.space.notify_waiters();
                    return Some(out);
                }
            }
            if self.is_closed() {
                return None;
            }
            readable.await;
        }
    }
}
