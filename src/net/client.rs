//! The pooled HTTP client on reqwest (rustls): connection limits (global and
//! per host, waited for with an optional pool timeout and counted in stats),
//! retries with backoff and Retry-After, per-host circuit breakers and a
//! deadline across retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::breaker::{Admit, Breaker};
use super::limiter::{SlidingWindow, Slot};
use super::sockets;
use crate::errors::{ErrorKind, FtError, FtResult};
use crate::monitor::registry::Metric;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Total concurrent requests (connections in use); 0 = unlimited.
    pub limit: usize,
    /// Concurrent requests per host; 0 = unlimited.
    pub limit_per_host: usize,
    /// Per attempt, from sending to the end of the body.
    pub timeout_total: Option<Duration>,
    pub timeout_connect: Option<Duration>,
    pub timeout_read: Option<Duration>,
    /// How long to wait for a free connection slot; None = wait forever.
    pub pool_timeout: Option<Duration>,
    pub keepalive: Option<Duration>,
    /// Across all attempts of one logical request.
    pub deadline: Option<Duration>,
    pub verify: bool,
    pub ca_pem: Option<Vec<u8>>,
    pub proxy: Option<String>,
    pub trust_env: bool,
    pub cookies: bool,
    pub max_redirects: usize,
    pub default_headers: Vec<(String, String)>,
    pub user_agent: String,
    pub breaker: Option<(u32, Duration)>,
}

/// The User-Agent sent when the caller sets none.
pub fn default_user_agent() -> String {
    format!("ferrotick/{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Exponential,
    Linear,
    Fixed,
}

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub strategy: Strategy,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub jitter: bool,
    pub retry_on_status: Vec<u16>,
    pub retry_connect: bool,
    pub retry_timeout: bool,
    pub retry_non_idempotent: bool,
}

impl RetryPolicy {
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self.base_delay.as_secs_f64();
        let d = match self.strategy {
            Strategy::Exponential => base * 2f64.powi(retry.min(30) as i32),
            Strategy::Linear => base * (retry as f64 + 1.0),
            Strategy::Fixed => base,
        };
        let mut d = d.min(self.max_delay.as_secs_f64());
        if self.jitter {
            // full jitter in [d/2, d]: spreads retries of many clients
            let r = (SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|x| x.subsec_nanos())
                .unwrap_or(0)
                % 1000) as f64
                / 1000.0;
            d = d * 0.5 + d * 0.5 * r;
        }
        Duration::from_secs_f64(d.max(0.0))
    }
}

/// Parses Retry-After (seconds or an HTTP-date).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(1e9)));
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[derive(Clone, Debug)]
pub struct Timeouts {
    pub total: Option<Duration>,
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
}

#[derive(Debug)]
pub struct RequestSpec {
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub timeouts: Option<Timeouts>,
    pub retry: Option<RetryPolicy>,
    pub stream: bool,
}

/// A response: the head, and either the whole body or a stream holding the
/// connection slot until it is read or dropped.
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub url: String,
    pub version: String,
    pub body: Body,
    pub attempts: u32,
}

pub enum Body {
    Full(Bytes),
    Stream(Box<Streaming>),
}

pub struct Streaming {
    pub resp: reqwest::Response,
    pub permits: Permits,
    pub read_timeout: Option<Duration>,
    /// End of the attempt's total timeout: reading the body is bounded too.
    pub deadline: Option<tokio::time::Instant>,
}

/// Connection slots held by a request.
pub struct Permits {
    _global: Option<OwnedSemaphorePermit>,
    _host: Option<OwnedSemaphorePermit>,
    host: Arc<HostStats>,
}

impl Drop for Permits {
    fn drop(&mut self) {
        self.host.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default, Debug)]
pub struct HostStats {
    pub in_flight: AtomicU64,
    pub limiter_waits: AtomicU64,
    pub limiter_wait_us: AtomicU64,
    pub waiting: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub errors: AtomicU64,
    pub pool_waits: AtomicU64,
    pub pool_wait_us: AtomicU64,
}

struct Host {
    sem: Option<Arc<Semaphore>>,
    stats: Arc<HostStats>,
    breaker: Option<Arc<Breaker>>,
    /// Remote addresses that served this host's responses: the pool's
    /// connections to them count as this host's.
    remotes: Mutex<std::collections::HashSet<SocketAddr>>,
}

/// A rate limiter attached to the client for the requests it matches; each
/// attempt (retries included: each one reaches the server) takes `weight`
/// from it before it takes a connection slot.
#[derive(Clone)]
pub struct LimitRule {
    pub limiter: Arc<SlidingWindow>,
    /// "host" or "host:port"
    pub host: Option<String>,
    /// A path prefix, matched on segment boundaries ("/api/v3/order" matches
    /// "/api/v3/order" and "/api/v3/order/test", not "/api/v3/orders").
    pub route: Option<String>,
    pub methods: Option<Vec<reqwest::Method>>,
    pub weight: u64,
}

impl LimitRule {
    fn matches(&self, key: &str, url: &url::Url, method: &reqwest::Method) -> bool {
        if let Some(h) = &self.host {
            let host_ok = h.eq_ignore_ascii_case(key)
                || url.host_str().is_some_and(|x| x.eq_ignore_ascii_case(h));
            if !host_ok {
                return false;
            }
        }
        if let Some(r) = &self.route {
            let path = url.path();
            let ok = path == r
                || (path.starts_with(r.as_str())
                    && (r.ends_with('/') || path.as_bytes().get(r.len()) == Some(&b'/')));
            if !ok {
                return false;
            }
        }
        if let Some(ms) = &self.methods {
            if !ms.contains(method) {
                return false;
            }
        }
        true
    }
}

/// Where each logical request is reported: the performance monitor's
/// duration histogram and error counter (labelled by operation, and by
/// operation and error type).
pub struct MonitorHook {
    pub duration: Arc<Metric>,
    pub errors: Arc<Metric>,
}

pub struct Client {
    /// Taken on close: the pool (and its idle connections) goes away when the
    /// requests still running finish.
    http: parking_lot::RwLock<Option<reqwest::Client>>,
    cfg: PoolConfig,
    global: Option<Arc<Semaphore>>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    pub closed: std::sync::atomic::AtomicBool,
    limits: parking_lot::RwLock<Arc<Vec<LimitRule>>>,
    monitor: parking_lot::RwLock<Option<Arc<MonitorHook>>>,
    /// Every connection the pool opened (see `sockets`).
    conns: Arc<sockets::Registry>,
}

static CRYPTO: Once = Once::new();

fn install_crypto() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn cfg_err(msg: impl Into<String>) -> FtError {
    FtError::config(msg)
}

impl Client {
    pub fn new(cfg: PoolConfig) -> FtResult<Client> {
        install_crypto();
        let conns = Arc::new(sockets::Registry::default());
        let mut b = reqwest::Client::builder()
            .connector_layer(sockets::CountingLayer(conns.clone()))
            .user_agent(cfg.user_agent.clone())
            .redirect(if cfg.max_redirects == 0 {
                reqwest::redirect::Policy::none()
            } else {
                reqwest::redirect::Policy::limited(cfg.max_redirects)
            })
            .tcp_nodelay(true)
            .cookie_store(cfg.cookies)
            .pool_idle_timeout(cfg.keepalive);
        if cfg.limit_per_host > 0 {
            b = b.pool_max_idle_per_host(cfg.limit_per_host);
        } else if cfg.limit > 0 {
            b = b.pool_max_idle_per_host(cfg.limit);
        }
        if let Some(t) = cfg.timeout_connect {
            b = b.connect_timeout(t);
        }
        if let Some(t) = cfg.timeout_read {
            b = b.read_timeout(t);
        }
        if !cfg.verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &cfg.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| cfg_err(format!("ca: cannot read the CA bundle: {e}")))?;
            if certs.is_empty() {
                return Err(cfg_err("ca: the CA bundle holds no certificate"));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(p) = &cfg.proxy {
            let proxy = reqwest::Proxy::all(p).map_err(|e| cfg_err(format!("proxy: {e}")))?;
            b = b.proxy(proxy);
        } else if !cfg.trust_env {
            b = b.no_proxy();
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &cfg.default_headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| cfg_err(format!("headers: invalid header name {k:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| cfg_err(format!("headers: invalid value for header {k:?}")))?;
            headers.append(name, value);
        }
        b = b.default_headers(headers);
        let http = b.build().map_err(|e| {
            FtError::with_cause(ErrorKind::Config, "could not build the HTTP client", &e)
        })?;
        Ok(Client {
            http: parking_lot::RwLock::new(Some(http)),
            global: (cfg.limit > 0).then(|| Arc::new(Semaphore::new(cfg.limit))),
            cfg,
            hosts: Mutex::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            limits: parking_lot::RwLock::new(Arc::new(Vec::new())),
            monitor: parking_lot::RwLock::new(None),
            conns,
        })
    }

    /// Refuses new requests and releases the pool once running ones finish.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.http.write().take();
    }

    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    /// Attaches a rate limiter to the requests `rule` matches.
    pub fn add_limit(&self, rule: LimitRule) {
        let mut g = self.limits.write();
        let mut v: Vec<LimitRule> = g.as_ref().clone();
        v.push(rule);
        *g = Arc::new(v);
    }

    /// Detaches every rule using `limiter`; returns how many were removed.
    pub fn remove_limit(&self, limiter: &Arc<SlidingWindow>) -> usize {
        let mut g = self.limits.write();
        let before = g.len();
        let kept: Vec<LimitRule> = g
            .iter()
            .filter(|r| !Arc::ptr_eq(&r.limiter, limiter))
            .cloned()
            .collect();
        let removed = before - kept.len();
        *g = Arc::new(kept);
        removed
    }

    pub fn set_monitor(&self, hook: Option<MonitorHook>) {
        *self.monitor.write() = hook.map(Arc::new);
    }

    /// Waits for the slots of every limiter attached to this request.
    async fn wait_limits(&self, host: &Host, key: &str, spec: &RequestSpec) -> FtResult<()> {
        let rules = {
            let g = self.limits.read();
            if g.is_empty() {
                return Ok(());
            }
            g.clone()
        };
        // gives a reservation back if the request is cancelled while waiting
        struct Reserved<'a>(&'a SlidingWindow, Option<u64>);
        impl Drop for Reserved<'_> {
            fn drop(&mut self) {
                if let Some(id) = self.1.take() {
                    self.0.cancel(id);
                }
            }
        }
        for rule in rules.iter() {
            if !rule.matches(key, &spec.url, &spec.method) {
                continue;
            }
            match rule.limiter.reserve(rule.weight)? {
                Slot::Now => {}
                Slot::At(at, id) => {
                    let mut guard = Reserved(&rule.limiter, Some(id));
                    let started = std::time::Instant::now();
                    host.stats.limiter_waits.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    guard.1 = None;
                    host.stats
                        .limiter_wait_us
                        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    fn host(&self, key: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock();
        hosts
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Host {
                    sem: (self.cfg.limit_per_host > 0)
                        .then(|| Arc::new(Semaphore::new(self.cfg.limit_per_host))),
                    stats: Arc::new(HostStats::default()),
                    breaker: self.cfg.breaker.map(|(n, d)| Arc::new(Breaker::new(n, d))),
                    remotes: Mutex::new(std::collections::HashSet::new()),
                })
            })
            .clone()
    }

    async fn acquire(&self, host: &Arc<Host>) -> FtResult<Permits> {
        let stats = host.stats.clone();
        let need_wait = self
            .global
            .as_ref()
            .is_some_and(|s| s.available_permits() == 0)
            || host
                .sem
                .as_ref()
                .is_some_and(|s| s.available_permits() == 0);
        let started = std::time::Instant::now();
        if need_wait {
            stats.waiting.fetch_add(1, Ordering::Relaxed);
            stats.pool_waits.fetch_add(1, Ordering::Relaxed);
        }
        struct Waiting<'a>(&'a HostStats, bool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.waiting.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        let _w = Waiting(&stats, need_wait);
        let get = async {
            let h = match &host.sem {
                Some(s) => Some(
                    s.clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| FtError::internal("pool closed"))?,
                ),
                None => None,
            };
            let g = match &self.global {
                Some(s) => Some(
                    s.clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| FtError::internal("pool closed"))?,
                ),
                None => None,
            };
            Ok::<_, FtError>((g, h))
        };
        let (g, h) = match self.cfg.pool_timeout {
            Some(t) => tokio::time::timeout(t, get).await.map_err(|_| {
                FtError::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "timed out after {:.3}s waiting for a free connection (pool limit reached)",
                        t.as_secs_f64()
                    ),
                )
            })??,
            None => get.await?,
        };
        if need_wait {
            stats
                .pool_wait_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Permits {
            _global: g,
            _host: h,
            host: stats.clone(),
        })
    }

    /// One logical request: breaker, retries, deadline.
    pub async fn execute(&self, spec: RequestSpec) -> FtResult<Response> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(FtError::new(ErrorKind::Http, "the client is closed"));
        }
        let key = host_key(&spec.url);
        let host = self.host(&key);
        let hook = self.monitor.read().clone();
        let Some(hook) = hook else {
            return self.execute_on(&host, &key, spec).await;
        };
        let op = format!("http {} {key}", spec.method);
        let started = std::time::Instant::now();
        let result = self.execute_on(&host, &key, spec).await;
        if let Ok(series) = hook.duration.series(&[op.as_str()]) {
            series.observe(&hook.duration, started.elapsed().as_secs_f64());
        }
        if let Err(e) = &result {
            if let Ok(series) = hook.errors.series(&[op.as_str(), e.kind.class_name()]) {
                series.inc(1.0);
            }
        }
        result
    }

    async fn execute_on(
        &self,
        host: &Arc<Host>,
        key: &str,
        spec: RequestSpec,
    ) -> FtResult<Response> {
        let trial = match &host.breaker {
            Some(b) => match b.admit() {
                Admit::Yes { trial } => trial,
                Admit::No { retry_after } => {
                    let mut e = FtError::new(
                        ErrorKind::CircuitOpen,
                        format!("circuit for {key} is open; retry after {retry_after:.3}s"),
                    );
                    e.retry_after = Some(retry_after);
                    return Err(e);
                }
            },
            None => false,
        };
        host.stats.requests.fetch_add(1, Ordering::Relaxed);
        // If this request is cancelled (its future dropped) before a verdict,
        // a half-open trial slot must be given back.
        struct Verdict<'a>(Option<&'a Breaker>, bool);
        impl Drop for Verdict<'_> {
            fn drop(&mut self) {
                if let Some(b) = self.0.take() {
                    b.neutral(self.1);
                }
            }
        }
        let mut pending_verdict = Verdict(host.breaker.as_deref(), trial);
        let run = self.with_retries(host, key, spec);
        let result = match self.cfg.deadline {
            Some(d) => match tokio::time::timeout(d, run).await {
                Ok(r) => r,
                Err(_) => Err(FtError::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "deadline of {:.3}s across retries exceeded",
                        d.as_secs_f64()
                    ),
                )),
            },
            None => run.await,
        };
        pending_verdict.0 = None;
        if let Some(b) = &host.breaker {
            match &result {
                Ok(r) if r.status >= 500 => b.failure(trial),
                Ok(_) => b.success(trial),
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::Connect | ErrorKind::RequestTimeout | ErrorKind::Http
                    ) =>
                {
                    b.failure(trial)
                }
                Err(_) => b.neutral(trial),
            }
        }
        if result.is_err() {
            host.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn with_retries(
        &self,
        host: &Arc<Host>,
        key: &str,
        spec: RequestSpec,
    ) -> FtResult<Response> {
        let Some(policy) = spec.retry.clone() else {
            // no retry policy: one attempt, any status comes back as a response
            return self.attempt(host, key, &spec).await.map_err(|a| a.err);
        };
        let idempotent = matches!(
            spec.method,
            reqwest::Method::GET
                | reqwest::Method::HEAD
                | reqwest::Method::OPTIONS
                | reqwest::Method::PUT
                | reqwest::Method::DELETE
                | reqwest::Method::TRACE
        ) || policy.retry_non_idempotent;
        let mut attempt: u32 = 0;
        loop {
            let outcome = self.attempt(host, key, &spec).await;
            let retries_left = attempt < policy.max_retries;
            match outcome {
                Ok(mut resp) => {
                    resp.attempts = attempt + 1;
                    let retryable_status = policy.retry_on_status.contains(&resp.status)
                        && (resp.status == 429 || resp.status == 503 || idempotent);
                    if !retryable_status {
                        return Ok(resp);
                    }
                    let retry_after = resp
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                        .and_then(|(_, v)| parse_retry_after(v));
                    if let Some(ra) = retry_after {
                        if ra > policy.max_delay && (resp.status == 429 || resp.status == 503) {
                            let mut e = FtError::new(
                                ErrorKind::RateLimitExceeded,
                                format!(
                                    "{} {}: server asked to retry after {:.3}s, above max_delay {:.3}s",
                                    resp.status,
                                    resp.reason,
                                    ra.as_secs_f64(),
                                    policy.max_delay.as_secs_f64()
                                ),
                            );
                            e.retry_after = Some(ra.as_secs_f64());
                            e.status = Some(resp.status);
                            return Err(e);
                        }
                    }
                    if !retries_left {
                        if resp.status == 429 {
                            let mut e = FtError::new(
                                ErrorKind::RateLimitExceeded,
                                format!("429 Too Many Requests after {} attempt(s)", attempt + 1),
                            );
                            e.retry_after = retry_after.map(|d| d.as_secs_f64());
                            e.status = Some(429);
                            return Err(e);
                        }
                        return Ok(resp);
                    }
                    drop(resp);
                    let delay = retry_after.unwrap_or_else(|| policy.backoff(attempt));
                    host.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target: "ferrotick::net", "retrying {} after {:?} (status)", spec.url, delay);
                    tokio::time::sleep(delay).await;
                }
                Err(AttemptError { err, sent }) => {
                    let allowed = match err.kind {
                        ErrorKind::Connect => policy.retry_connect && (!sent || idempotent),
                        ErrorKind::RequestTimeout => policy.retry_timeout && (!sent || idempotent),
                        _ => false,
                    };
                    if !allowed || !retries_left {
                        return Err(err);
                    }
                    let delay = policy.backoff(attempt);
                    host.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target: "ferrotick::net", "retrying {} after {:?}: {}", spec.url, delay, err);
                    tokio::time::sleep(delay).await;
                }
            }
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        host: &Arc<Host>,
        key: &str,
        spec: &RequestSpec,
    ) -> Result<Response, AttemptError> {
        self.wait_limits(host, key, spec)
            .await
            .map_err(|err| AttemptError { err, sent: false })?;
        let permits = self
            .acquire(host)
            .await
            .map_err(|err| AttemptError { err, sent: false })?;
        let Some(http) = self.http.read().clone() else {
            return Err(AttemptError {
                err: FtError::new(ErrorKind::Http, "the client is closed"),
                sent: false,
            });
        };
        let mut rb = http.request(spec.method.clone(), spec.url.clone());
        for (k, v) in &spec.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &spec.body {
            rb = rb.body(b.clone());
        }
        let timeouts = spec.timeouts.clone().unwrap_or(Timeouts {
            total: self.cfg.timeout_total,
            connect: self.cfg.timeout_connect,
            read: self.cfg.timeout_read,
        });
        let total = timeouts.total;
        let started = std::time::Instant::now();
        let send = rb.send();
        let resp = match total {
            Some(t) => match tokio::time::timeout(t, send).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(AttemptError {
                        err: FtError::new(
                            ErrorKind::RequestTimeout,
                            format!(
                                "{} {}: no response within {:.3}s",
                                spec.method,
                                spec.url,
                                t.as_secs_f64()
                            ),
                        ),
                        sent: true,
                    })
                }
            },
            None => send.await,
        }
        .map_err(|e| classify(e, &spec.method, &spec.url))?;
        if let Some(info) = resp
            .extensions()
            .get::<hyper_util::client::legacy::connect::HttpInfo>()
        {
            let remote = sockets::normalize(info.remote_addr());
            self.conns.add(info.local_addr(), remote);
            let mut remotes = host.remotes.lock();
            if !remotes.contains(&remote) {
                remotes.insert(remote);
            }
        }
        let status = resp.status();
        let head = Head {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            headers: resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            url: resp.url().to_string(),
            version: format!("{:?}", resp.version()),
        };
        if spec.stream {
            return Ok(head.into_response(Body::Stream(Box::new(Streaming {
                resp,
                permits,
                read_timeout: timeouts.read,
                deadline: total.map(|t| tokio::time::Instant::from_std(started) + t),
            }))));
        }
        let left = total.map(|t| t.saturating_sub(started.elapsed()));
        let read = resp.bytes();
        let bytes = match left {
            Some(t) => match tokio::time::timeout(t, read).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(AttemptError {
                        err: FtError::new(
                            ErrorKind::RequestTimeout,
                            format!(
                                "{} {}: body not read within the total timeout",
                                spec.method, spec.url
                            ),
                        ),
                        sent: true,
                    })
                }
            },
            None => read.await,
        }
        .map_err(|e| classify(e, &spec.method, &spec.url))?;
        drop(permits);
        Ok(head.into_response(Body::Full(bytes)))
    }

    /// Per-host figures, and the connections the pool holds open whichever
    /// host (None where the OS doesn't say); the OS is read once.
    pub fn stats(&self) -> (Vec<(String, HostSnapshot)>, Option<u64>) {
        let hosts: Vec<(String, Arc<Host>)> = self
            .hosts
            .lock()
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        let open_now = self.conns.retain_open();
        let total_open = open_now.as_ref().map(|v| v.len() as u64);
        let per_host = hosts
            .iter()
            .map(|(k, h)| {
                let s = &h.stats;
                let in_flight = s.in_flight.load(Ordering::Relaxed);
                let open = open_now.as_ref().map(|now| {
                    let remotes = h.remotes.lock();
                    now.iter().filter(|(_, r)| remotes.contains(r)).count() as u64
                });
                (
                    k.clone(),
                    HostSnapshot {
                        open,
                        idle: open.map(|o| o.saturating_sub(in_flight)),
                        limiter_waits: s.limiter_waits.load(Ordering::Relaxed),
                        limiter_wait_seconds: s.limiter_wait_us.load(Ordering::Relaxed) as f64
                            / 1e6,
                        in_flight,
                        waiting: s.waiting.load(Ordering::Relaxed),
                        requests: s.requests.load(Ordering::Relaxed),
                        retries: s.retries.load(Ordering::Relaxed),
                        errors: s.errors.load(Ordering::Relaxed),
                        pool_waits: s.pool_waits.load(Ordering::Relaxed),
                        pool_wait_seconds: s.pool_wait_us.load(Ordering::Relaxed) as f64 / 1e6,
                        breaker: h.breaker.as_ref().map(|b| b.state().as_str()),
                    },
                )
            })
            .collect();
        (per_host, total_open)
    }

    pub fn global_available(&self) -> Option<usize> {
        self.global.as_ref().map(|s| s.available_permits())
    }
}

#[derive(Clone, Debug)]
pub struct HostSnapshot {
    /// Connections to the host this process holds open (None where the OS
    /// doesn't say), and those of them not serving a request.
    pub open: Option<u64>,
    pub idle: Option<u64>,
    pub limiter_waits: u64,
    pub limiter_wait_seconds: f64,
    pub in_flight: u64,
    pub waiting: u64,
    pub requests: u64,
    pub retries: u64,
    pub errors: u64,
    pub pool_waits: u64,
    pub pool_wait_seconds: f64,
    pub breaker: Option<&'static str>,
}

struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    url: String,
    version: String,
}

impl Head {
    fn into_response(self, body: Body) -> Response {
        Response {
            status: self.status,
            reason: self.reason,
            headers: self.headers,
            url: self.url,
            version: self.version,
            body,
            attempts: 1,
        }
    }
}

struct AttemptError {
    err: FtError,
    /// Whether the request may have reached the server.
    sent: bool,
}

fn host_key(url: &url::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn classify(e: reqwest::Error, method: &reqwest::Method, url: &url::Url) -> AttemptError {
    let ctx = format!("{method} {url}");
    if e.is_connect() {
        AttemptError {
            err: FtError::with_cause(ErrorKind::Connect, &ctx, &e),
            sent: false,
        }
    } else if e.is_timeout() {
        AttemptError {
            err: FtError::with_cause(ErrorKind::RequestTimeout, &ctx, &e),
            sent: true,
        }
    } else if e.is_request() || e.is_body() || e.is_decode() {
        // the connection broke during the exchange (reset, closed early)
        AttemptError {
            err: FtError::with_cause(ErrorKind::Connect, &ctx, &e),
            sent: true,
        }
    } else if e.is_redirect() {
        AttemptError {
            err: FtError::with_cause(ErrorKind::Http, &ctx, &e),
            sent: true,
        }
    } else if e.is_builder() {
        AttemptError {
            err: FtError::with_cause(ErrorKind::Config, &ctx, &e),
            sent: false,
        }
    } else {
        AttemptError {
            err: FtError::with_cause(ErrorKind::Http, &ctx, &e),
            sent: true,
        }
    }
}

/// Reads the next chunk of a streaming body (None at the end).
pub async fn next_chunk(s: &mut Streaming) -> FtResult<Option<Bytes>> {
    let now = tokio::time::Instant::now();
    let mut limit = s
        .read_timeout
        .map(|t| (now + t, "no body data within the read timeout"));
    if let Some(d) = s.deadline {
        if limit.is_none_or(|(l, _)| d < l) {
            limit = Some((d, "the response body was not read within the total timeout"));
        }
    }
    let fut = s.resp.chunk();
    let r = match limit {
        Some((at, why)) => tokio::time::timeout_at(at, fut)
            .await
            .map_err(|_| FtError::new(ErrorKind::RequestTimeout, why))?,
        None => fut.await,
    };
    r.map_err(|e| FtError::with_cause(ErrorKind::Connect, "reading the response body", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&future).expect("date");
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_strategies() {
        let mut p = RetryPolicy {
            max_retries: 3,
            strategy: Strategy::Exponential,
            jitter: false,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            retry_on_status: vec![429, 500, 502, 503, 504],
            retry_connect: true,
            retry_timeout: true,
            retry_non_idempotent: false,
        };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(400));
        assert_eq!(p.backoff(5), Duration::from_millis(500));
        p.strategy = Strategy::Linear;
        assert_eq!(p.backoff(2), Duration::from_millis(300));
        p.strategy = Strategy::Fixed;
        assert_eq!(p.backoff(7), Duration::from_millis(100));
        p.jitter = true;
        let d = p.backoff(0);
        assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
    }
}
