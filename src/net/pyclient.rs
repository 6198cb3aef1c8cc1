//! Python wrappers for the HTTP client: `HttpClient`, `Response` and the
//! retry policy. The aiohttp-style API (`AsyncHTTPClient`, context managers,
//! case-insensitive headers) is in `ferrotick.http`.

use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::client::default_user_agent;
use super::client::{
    self, Body, Client, PoolConfig, RequestSpec, RetryPolicy, Strategy, Streaming, Timeouts,
};
use super::py::RateLimiter;
use super::pyjson;
use crate::args::{duration_arg, opt_duration_arg, weight_arg};
use crate::errors::{config_err, ErrorKind, FtError};
use crate::monitor::py::PyMetric;
use crate::runtime::blocking;
use crate::runtime::bridge::{self, Converter, FerrotickFuture};

/// How a request is retried (built from `ferrotick.RetryConfig`).
#[pyclass(module = "ferrotick._core", name = "RetryPolicy", frozen)]
#[derive(Clone)]
pub struct PyRetryPolicy {
    inner: RetryPolicy,
}

#[pymethods]
impl PyRetryPolicy {
    #[new]
    #[pyo3(signature = (*, max_retries, strategy, base_delay, max_delay, jitter, retry_on_status, retry_connect, retry_timeout, retry_non_idempotent))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_retries: i64,
        strategy: &str,
        base_delay: f64,
        max_delay: f64,
        jitter: bool,
        retry_on_status: Vec<u16>,
        retry_connect: bool,
        retry_timeout: bool,
        retry_non_idempotent: bool,
    ) -> PyResult<Self> {
        if !(0..=100).contains(&max_retries) {
            return Err(config_err(format!(
                "max_retries: must be between 0 and 100, got {max_retries}"
            )));
        }
        let strategy = match strategy {
            "exponential" | "exponential_backoff" => Strategy::Exponential,
            "linear" | "linear_backoff" => Strategy::Linear,
            "fixed" | "fixed_delay" => Strategy::Fixed,
            other => {
                return Err(config_err(format!(
                    "strategy: unknown retry strategy {other:?}"
                )))
            }
        };
        Ok(PyRetryPolicy {
            inner: RetryPolicy {
                max_retries: max_retries as u32,
                strategy,
                base_delay: duration_arg("base_delay", base_delay)?,
                max_delay: duration_arg("max_delay", max_delay)?,
                jitter,
                retry_on_status,
                retry_connect,
                retry_timeout,
                retry_non_idempotent,
            },
        })
    }
}

/// The pooled client (one per `AsyncHTTPClient`).
#[pyclass(module = "ferrotick._core", name = "HttpClient", frozen)]
pub struct HttpClient {
    inner: std::mem::ManuallyDrop<Arc<Client>>,
    generation: u64,
}

/// A response: head at once, body read (eager) or streamed.
#[pyclass(module = "ferrotick._core", name = "Response", frozen)]
pub struct PyResponse {
    #[pyo3(get)]
    status: u16,
    #[pyo3(get)]
    reason: String,
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    version: String,
    #[pyo3(get)]
    attempts: u32,
    headers: Vec<(String, String)>,
    full: parking_lot::Mutex<Option<Bytes>>,
    stream: Arc<tokio::sync::Mutex<Option<Box<Streaming>>>>,
}

fn into_py_response(r: client::Response) -> PyResponse {
    let (full, stream) = match r.body {
        Body::Full(b) => (Some(b), None),
        Body::Stream(s) => (None, Some(s)),
    };
    PyResponse {
        status: r.status,
        reason: r.reason,
        url: r.url,
        version: r.version,
        attempts: r.attempts,
        headers: r.headers,
        full: parking_lot::Mutex::new(full),
        stream: Arc::new(tokio::sync::Mutex::new(stream)),
    }
}

fn response_converter(r: client::Response) -> Converter {
    Box::new(move |py: Python<'_>| Ok(Bound::new(py, into_py_response(r))?.into_any().unbind()))
}

async fn read_rest(
    stream: Arc<tokio::sync::Mutex<Option<Box<Streaming>>>>,
) -> Result<Bytes, FtError> {
    let mut guard = stream.lock().await;
    let Some(s) = guard.as_mut() else {
        return Err(FtError::new(
            ErrorKind::Http,
            "the response body was released",
        ));
    };
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = client::next_chunk(s).await? {
        buf.extend_from_slice(&chunk);
    }
    // body complete: give the connection back
    guard.take();
    Ok(buf.freeze())
}

#[pymethods]
impl PyResponse {
    /// Header pairs as received (names lower-case).
    #[getter]
    fn raw_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// The whole body as bytes.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FerrotickFuture>> {
        if let Some(b) = self.full.lock().as_ref() {
            return bridge::ready(py, PyBytes::new(py, b).into_any().unbind());
        }
        let stream = self.stream.clone();
        bridge::spawn(py, async move {
            let b = read_rest(stream).await?;
            Ok(
                Box::new(move |py: Python<'_>| Ok(PyBytes::new(py, &b).into_any().unbind()))
                    as Converter,
            )
        })
    }

    /// The body decoded from JSON straight into Python objects.
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FerrotickFuture>> {
        if let Some(b) = self.full.lock().clone() {
            return match pyjson::loads(py, &b) {
                Ok(v) => bridge::ready(py, v.unbind()),
                Err(e) => bridge::failed(py, e),
            };
        }
        let stream = self.stream.clone();
        bridge::spawn(py, async move {
            let b = read_rest(stream).await?;
            Ok(
                Box::new(move |py: Python<'_>| pyjson::loads(py, &b).map(|v| v.unbind()))
                    as Converter,
            )
        })
    }

    /// The next chunk of a streamed body (b"" at the end).
    fn chunk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FerrotickFuture>> {
        if let Some(b) = self.full.lock().take() {
            return bridge::ready(py, PyBytes::new(py, &b).into_any().unbind());
        }
        let stream = self.stream.clone();
        bridge::spawn(py, async move {
            let mut guard = stream.lock().await;
            let chunk = match guard.as_mut() {
                None => None,
                Some(s) => client::next_chunk(s).await?,
            };
            if chunk.is_none() {
                guard.take();
            }
            let b = chunk.unwrap_or_default();
            Ok(
                Box::new(move |py: Python<'_>| Ok(PyBytes::new(py, &b).into_any().unbind()))
                    as Converter,
            )
        })
    }

    /// Returns the connection to the pool (drops an unread streamed body).
    fn release(&self) {
        if let Ok(mut g) = self.stream.try_lock() {
            g.take();
        } else {
            // a read is in progress on another task; it releases when done
            let s = self.stream.clone();
            if let Some(h) = crate::runtime::handle_if_running() {
                h.spawn(async move {
                    s.lock().await.take();
                });
            }
        }
    }

    #[getter]
    fn is_streaming(&self) -> bool {
        self.full.lock().is_none()
    }
}

#[allow(clippy::too_many_arguments)]
fn build_spec(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeouts: (Option<f64>, Option<f64>, Option<f64>),
    retry: Option<RetryPolicy>,
    stream: bool,
) -> PyResult<RequestSpec> {
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| config_err(format!("method: invalid HTTP method {method:?}")))?;
    let url = url::Url::parse(url).map_err(|e| config_err(format!("url: invalid URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        s => {
            return Err(config_err(format!(
                "url: unsupported scheme {s:?} (http and https only)"
            )))
        }
    }
    if url.host_str().is_none_or(|h| h.is_empty()) {
        return Err(config_err("url: the URL has no host"));
    }
    for (k, v) in &headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(config_err(format!("headers: invalid header name {k:?}")));
        }
        if reqwest::header::HeaderValue::from_str(v).is_err() {
            return Err(config_err(format!(
                "headers: invalid value for header {k:?}"
            )));
        }
    }
    let (total, connect, read) = timeouts;
    let t = if total.is_some() || connect.is_some() || read.is_some() {
        Some(Timeouts {
            total: opt_duration_arg("timeout", total)?,
            connect: opt_duration_arg("timeout.connect", connect)?,
            read: opt_duration_arg("timeout.read", read)?,
        })
    } else {
        None
    };
    Ok(RequestSpec {
        method,
        url,
        headers,
        body: body.map(Bytes::from),
        timeouts: t,
        retry,
        stream,
    })
}

#[pymethods]
impl HttpClient {
    #[new]
    #[pyo3(signature = (*, limit, limit_per_host, timeout_total, timeout_connect, timeout_read, pool_timeout, keepalive, deadline, verify, ca_pem, proxy, trust_env, cookies, max_redirects, headers, user_agent, breaker_threshold, breaker_recovery))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        limit: usize,
        limit_per_host: usize,
        timeout_total: Option<f64>,
        timeout_connect: Option<f64>,
        timeout_read: Option<f64>,
        pool_timeout: Option<f64>,
        keepalive: Option<f64>,
        deadline: Option<f64>,
        verify: bool,
        ca_pem: Option<Vec<u8>>,
        proxy: Option<String>,
        trust_env: bool,
        cookies: bool,
        max_redirects: usize,
        headers: Vec<(String, String)>,
        user_agent: Option<String>,
        breaker_threshold: Option<u32>,
        breaker_recovery: f64,
    ) -> PyResult<Self> {
        let mut cfg = PoolConfig {
            limit,
            limit_per_host,
            timeout_total: opt_duration_arg("timeout_total", timeout_total)?,
            timeout_connect: opt_duration_arg("timeout_connect", timeout_connect)?,
            timeout_read: opt_duration_arg("timeout_read", timeout_read)?,
            pool_timeout: opt_duration_arg("pool_timeout", pool_timeout)?,
            keepalive: opt_duration_arg("keepalive_timeout", keepalive)?,
            deadline: opt_duration_arg("deadline", deadline)?,
            verify,
            ca_pem,
            proxy,
            trust_env,
            cookies,
            max_redirects,
            default_headers: headers,
            user_agent: user_agent.unwrap_or_else(default_user_agent),
            breaker: None,
        };
        if let Some(n) = breaker_threshold {
            if n == 0 {
                return Err(config_err("breaker_threshold: must be at least 1"));
            }
            cfg.breaker = Some((n, duration_arg("breaker_recovery", breaker_recovery)?));
        }
        // the client's pool lives on the runtime: start it now
        let handle = crate::runtime::handle()?;
        let _enter = handle.enter();
        let client = Client::new(cfg)?;
        Ok(HttpClient {
            inner: std::mem::ManuallyDrop::new(Arc::new(client)),
            generation: crate::runtime::fork_generation(),
        })
    }

    /// Sends a request; resolves to a Response.
    #[pyo3(signature = (method, url, headers=Vec::new(), body=None, timeout=None, connect_timeout=None, read_timeout=None, retry=None, stream=false))]
    #[allow(clippy::too_many_arguments)]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        timeout: Option<f64>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        retry: Option<PyRef<'py, PyRetryPolicy>>,
        stream: bool,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        self.check_fork(py)?;
        let spec = build_spec(
            method,
            url,
            headers,
            body,
            (timeout, connect_timeout, read_timeout),
            retry.map(|r| r.inner.clone()),
            stream,
        )?;
        let client = Arc::clone(&self.inner);
        bridge::spawn(py, async move {
            let r = client.execute(spec).await?;
            Ok(response_converter(r))
        })
    }

    /// Checks method, URL and headers without sending anything.
    #[pyo3(signature = (method, url, headers=Vec::new()))]
    fn validate(&self, method: &str, url: &str, headers: Vec<(String, String)>) -> PyResult<()> {
        build_spec(method, url, headers, None, (None, None, None), None, false).map(|_| ())
    }

    /// Blocking twin of `request` (GIL released while waiting).
    #[pyo3(signature = (method, url, headers=Vec::new(), body=None, timeout=None, connect_timeout=None, read_timeout=None, retry=None))]
    #[allow(clippy::too_many_arguments)]
    fn request_sync(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        timeout: Option<f64>,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        retry: Option<PyRef<'_, PyRetryPolicy>>,
    ) -> PyResult<PyResponse> {
        self.check_fork(py)?;
        let spec = build_spec(
            method,
            url,
            headers,
            body,
            (timeout, connect_timeout, read_timeout),
            retry.map(|r| r.inner.clone()),
            false,
        )?;
        let client = Arc::clone(&self.inner);
        let r = blocking::block_on(
            py,
            "request_sync()",
            async move { client.execute(spec).await },
        )?;
        Ok(into_py_response(r))
    }

    /// Per-host figures: in flight, waiting for a connection slot, requests,
    /// retries, errors, pool waits, breaker state; plus free global slots.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let hosts = PyDict::new(py);
        let (mut in_flight, mut waiting) = (0u64, 0u64);
        let (mut open, mut idle): (Option<u64>, Option<u64>) = (None, None);
        let (per_host, total_open) = self.inner.stats();
        for (host, s) in per_host {
            in_flight += s.in_flight;
            waiting += s.waiting;
            if let Some(o) = s.open {
                open = Some(open.unwrap_or(0) + o);
            }
            if let Some(i) = s.idle {
                idle = Some(idle.unwrap_or(0) + i);
            }
            let h = PyDict::new(py);
            h.set_item("open", s.open)?;
            h.set_item("idle", s.idle)?;
            h.set_item("limiter_waits", s.limiter_waits)?;
            h.set_item("limiter_wait_seconds", s.limiter_wait_seconds)?;
            h.set_item("in_flight", s.in_flight)?;
            h.set_item("waiting", s.waiting)?;
            h.set_item("requests", s.requests)?;
            h.set_item("retries", s.retries)?;
            h.set_item("errors", s.errors)?;
            h.set_item("pool_waits", s.pool_waits)?;
            h.set_item("pool_wait_seconds", s.pool_wait_seconds)?;
            h.set_item("breaker", s.breaker)?;
            hosts.set_item(host, h)?;
        }
        d.set_item("hosts", hosts)?;
        // every connection of the pool, including any not yet attributed to a
        // host (opened in a race for a request that got an idle one instead)
        let open = total_open.or(open);
        let idle = open.map(|o| o.saturating_sub(in_flight)).or(idle);
        d.set_item("open", open)?;
        d.set_item("idle", idle)?;
        d.set_item("in_flight", in_flight)?;
        d.set_item("waiting", waiting)?;
        d.set_item("limit", self.inner.config().limit)?;
        d.set_item("limit_per_host", self.inner.config().limit_per_host)?;
        d.set_item("free_slots", self.inner.global_available())?;
        d.set_item(
            "closed",
            self.inner.closed.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        Ok(d)
    }

    /// Attaches `limiter` to the requests it matches: `host` ("host" or
    /// "host:port"), `route` (a path prefix on segment boundaries),
    /// `methods`; each attempt takes `weight`.
    #[pyo3(signature = (limiter, host=None, route=None, methods=None, weight=1))]
    fn add_limit(
        &self,
        limiter: &Bound<'_, RateLimiter>,
        host: Option<String>,
        route: Option<String>,
        methods: Option<Vec<String>>,
        weight: i64,
    ) -> PyResult<()> {
        let inner = limiter.get().inner.clone();
        let w = weight_arg(weight)?;
        if w > inner.max() {
            return Err(config_err(format!(
                "weight: {w} exceeds the limiter's max_requests ({}); it could never be granted",
                inner.max()
            )));
        }
        if let Some(h) = &host {
            if h.is_empty() || h.contains('/') || h.contains(char::is_whitespace) {
                return Err(config_err(format!(
                    "host: expected a host name or host:port, got {h:?}"
                )));
            }
        }
        if let Some(r) = &route {
            if !r.starts_with('/') {
                return Err(config_err(format!(
                    "route: expected a path starting with '/', got {r:?}"
                )));
            }
        }
        let methods = match methods {
            None => None,
            Some(ms) => {
                let mut out = Vec::with_capacity(ms.len());
                for m in ms {
                    let up = m.to_ascii_uppercase();
                    let method = reqwest::Method::from_bytes(up.as_bytes())
                        .map_err(|_| config_err(format!("methods: invalid method {m:?}")))?;
                    out.push(method);
                }
                Some(out)
            }
        };
        self.inner.add_limit(client::LimitRule {
            limiter: inner,
            host: host.map(|h| h.to_ascii_lowercase()),
            route,
            methods,
            weight: w,
        });
        Ok(())
    }

    /// Detaches `limiter` from every rule; returns how many were removed.
    fn remove_limit(&self, limiter: &Bound<'_, RateLimiter>) -> usize {
        self.inner.remove_limit(&limiter.get().inner)
    }

    /// Reports every logical request to a duration histogram and an error
    /// counter (the performance monitor's), or stops reporting (None).
    #[pyo3(signature = (duration=None, errors=None))]
    fn set_monitor(
        &self,
        duration: Option<&Bound<'_, PyMetric>>,
        errors: Option<&Bound<'_, PyMetric>>,
    ) -> PyResult<()> {
        let hook = match (duration, errors) {
            (Some(d), Some(e)) => Some(client::MonitorHook {
                duration: d.get().inner.clone(),
                errors: e.get().inner.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(config_err(
                    "monitor: pass both the duration and the errors metric, or neither",
                ))
            }
        };
        self.inner.set_monitor(hook);
        Ok(())
    }

    /// Refuses new requests; pooled idle connections close with the client.
    fn close(&self) {
        self.inner.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl HttpClient {
    fn check_fork(&self, py: Python<'_>) -> PyResult<()> {
        if self.generation != crate::runtime::fork_generation() {
            return Err(FtError::new(
                ErrorKind::Http,
                "this client was created before os.fork(); create a new one in the child (get_http_client() does)",
            )
            .to_pyerr(py));
        }
        Ok(())
    }
}

impl Drop for HttpClient {
    fn drop(&mut self) {
        // In a forked child the client belongs to the parent's abandoned
        // runtime: leak it rather than touch its sockets and locks.
        if self.generation == crate::runtime::fork_generation() {
            // SAFETY: `inner` is dropped exactly once, here, and never used
            // again (this is the object's destructor).
            unsafe { std::mem::ManuallyDrop::drop(&mut self.inner) };
        }
    }
}

/// `json.loads` in Rust, for benchmarks and users who have bytes already.
#[pyfunction]
pub fn json_loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    pyjson::loads(py, data)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HttpClient>()?;
    m.add_class::<PyResponse>()?;
    m.add_class::<PyRetryPolicy>()?;
    m.add_function(wrap_pyfunction!(json_loads, m)?)?;
    Ok(())
}
