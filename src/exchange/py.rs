//! Python wrappers: `ferrotick._core.ExchangeClient` (the REST core; the
//! seed's `OptimizedBinanceClient` in `ferrotick.exchange` wraps it) and
//! `Klines`, the columnar klines result.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::book::{parse_diff, parse_snapshot, Applied, Book};
use super::klines::Columns;
use super::rest::{Exchange, Settings};
use super::stream::{Policy, Stream, StreamConfig};
use crate::args::duration_arg;
use crate::errors::config_err;
use crate::net::pyjson;
use crate::runtime::bridge::{self, Converter, FerrotickFuture};

fn json_converter(b: Bytes) -> Converter {
    Box::new(move |py: Python<'_>| pyjson::loads(py, &b).map(|o| o.unbind()))
}

fn method_of(m: &str) -> PyResult<reqwest::Method> {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Ok(reqwest::Method::GET),
        "POST" => Ok(reqwest::Method::POST),
        "PUT" => Ok(reqwest::Method::PUT),
        "DELETE" => Ok(reqwest::Method::DELETE),
        _ => Err(config_err(format!(
            "method: one of GET, POST, PUT, DELETE, got {m:?}"
        ))),
    }
}

/// Klines as columns (numpy arrays owning the parsed data).
#[pyclass(module = "ferrotick._core", name = "Klines", frozen)]
pub struct PyKlines {
    #[pyo3(get)]
    symbol: String,
    #[pyo3(get)]
    interval: String,
    #[pyo3(get)]
    open_time: Py<PyArray1<i64>>,
    #[pyo3(get)]
    open: Py<PyArray1<f64>>,
    #[pyo3(get)]
    high: Py<PyArray1<f64>>,
    #[pyo3(get)]
    low: Py<PyArray1<f64>>,
    #[pyo3(get)]
    close: Py<PyArray1<f64>>,
    #[pyo3(get)]
    volume: Py<PyArray1<f64>>,
    #[pyo3(get)]
    close_time: Py<PyArray1<i64>>,
    #[pyo3(get)]
    quote_volume: Py<PyArray1<f64>>,
    #[pyo3(get)]
    trades: Py<PyArray1<i64>>,
    #[pyo3(get)]
    taker_buy_base: Py<PyArray1<f64>>,
    #[pyo3(get)]
    taker_buy_quote: Py<PyArray1<f64>>,
    len: usize,
}

const KLINE_COLUMNS: [&str; 11] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
];

impl PyKlines {
    fn build(py: Python<'_>, symbol: String, interval: String, c: Columns) -> PyKlines {
        let len = c.len();
        // the vectors move into the arrays: no copy
        PyKlines {
            symbol,
            interval,
            open_time: PyArray1::from_vec(py, c.open_time).unbind(),
            open: PyArray1::from_vec(py, c.open).unbind(),
            high: PyArray1::from_vec(py, c.high).unbind(),
            low: PyArray1::from_vec(py, c.low).unbind(),
            close: PyArray1::from_vec(py, c.close).unbind(),
            volume: PyArray1::from_vec(py, c.volume).unbind(),
            close_time: PyArray1::from_vec(py, c.close_time).unbind(),
            quote_volume: PyArray1::from_vec(py, c.quote_volume).unbind(),
            trades: PyArray1::from_vec(py, c.trades).unbind(),
            taker_buy_base: PyArray1::from_vec(py, c.taker_buy_base).unbind(),
            taker_buy_quote: PyArray1::from_vec(py, c.taker_buy_quote).unbind(),
            len,
        }
    }
}

#[pymethods]
impl PyKlines {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!(
            "Klines(symbol={:?}, interval={:?}, bars={})",
            self.symbol, self.interval, self.len
        )
    }

    /// The column names, in the exchange's order.
    #[classattr]
    fn columns() -> Vec<&'static str> {
        KLINE_COLUMNS.to_vec()
    }

    /// `{name: numpy array}` for every column (the arrays, not copies).
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let d = PyDict::new(py);
        for name in KLINE_COLUMNS {
            d.set_item(name, slf.getattr(name)?)?;
        }
        Ok(d)
    }

    /// A pandas DataFrame of the columns.
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let pd = slf.py().import("pandas")?;
        pd.getattr("DataFrame")?.call1((Self::to_dict(slf)?,))
    }

    /// A polars DataFrame of the columns.
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let pl = slf.py().import("polars")?;
        pl.getattr("DataFrame")?.call1((Self::to_dict(slf)?,))
    }
}

/// The REST core of the Binance client: signing, the weight budget, clock
/// offset, retries. Every setting is required (defaults live in
/// `ferrotick.exchange.BinanceConfig`).
#[pyclass(module = "ferrotick._core", name = "ExchangeClient", frozen)]
pub struct PyExchange {
    ex: Arc<Exchange>,
}

#[pymethods]
impl PyExchange {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, base_url, api_key, api_secret, recv_window, timeout, max_retries,
        retry_delay, rate_limiting, weight_per_minute, orders_per_second, weight_share,
        pool_size, exchange_info_ttl))]
    fn new(
        base_url: &str,
        api_key: Option<String>,
        api_secret: Option<String>,
        recv_window: u64,
        timeout: f64,
        max_retries: u32,
        retry_delay: f64,
        rate_limiting: bool,
        weight_per_minute: Option<u64>,
        orders_per_second: Option<u64>,
        weight_share: f64,
        pool_size: usize,
        exchange_info_ttl: f64,
    ) -> PyResult<Self> {
        let mut base = url::Url::parse(base_url)
            .map_err(|e| config_err(format!("base_url: {base_url:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_err("base_url: must be an http or https URL"));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        if !(1..=60_000).contains(&recv_window) {
            return Err(config_err(format!(
                "recv_window: between 1 and 60000 ms, got {recv_window}"
            )));
        }
        if api_key
            .as_deref()
            .is_some_and(|k| k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(config_err(
                "api_key: must be printable ASCII without spaces",
            ));
        }
        if weight_per_minute == Some(0) {
            return Err(config_err(
                "rate_limit_requests_per_minute: must be at least 1",
            ));
        }
        if orders_per_second == Some(0) {
            return Err(config_err(
                "rate_limit_orders_per_second: must be at least 1",
            ));
        }
        let s = Settings {
            base_url: base,
            api_key,
            api_secret: api_secret.map(String::into_bytes),
            recv_window_ms: recv_window,
            timeout: duration_arg("timeout", timeout)?,
            max_retries,
            retry_delay: duration_arg("retry_delay", retry_delay)?,
            rate_limiting,
            weight_per_minute,
            orders_per_second,
            weight_share,
            pool_size,
            exchange_info_ttl: Duration::from_secs_f64(
                duration_arg("exchange_info_ttl", exchange_info_ttl)?.as_secs_f64(),
            ),
        };
        // the pool lives on the runtime
        let handle = crate::runtime::handle()?;
        let _enter = handle.enter();
        Ok(PyExchange {
            ex: Arc::new(Exchange::new(s)?),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "ExchangeClient(base_url={:?}, api_key={})",
            crate::errors::redact_url(self.ex.s.base_url.as_str()),
            if self.ex.s.api_key.is_some() {
                "'***'"
            } else {
                "None"
            }
        )
    }

    /// One request; resolves to the parsed JSON body. `params` are
    /// `(name, value)` pairs sent in order.
    #[pyo3(signature = (method, path, params=Vec::new(), signed=false))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: String,
        params: Vec<(String, String)>,
        signed: bool,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        let m = method_of(method)?;
        if !path.starts_with('/') {
            return Err(config_err(format!(
                "path: must start with '/', got {path:?}"
            )));
        }
        let ex = self.ex.clone();
        bridge::spawn(py, async move {
            ex.call_json(m, &path, &params, signed)
                .await
                .map(json_converter)
        })
    }

    /// Re-estimates the server-time offset; resolves to it in ms.
    fn sync_time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FerrotickFuture>> {
        let ex = self.ex.clone();
        bridge::spawn_value(py, async move { ex.sync_time().await })
    }

    /// /exchangeInfo (cached with the TTL); its limits feed the budget.
    fn exchange_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FerrotickFuture>> {
        let ex = self.ex.clone();
        bridge::spawn(
            py,
            async move { ex.exchange_info().await.map(json_converter) },
        )
    }

    /// Klines, paginated past 1000 bars; resolves to a `Klines`.
    #[pyo3(signature = (symbol, interval, start=None, end=None, limit=None))]
    fn klines<'py>(
        &self,
        py: Python<'py>,
        symbol: String,
        interval: String,
        start: Option<i64>,
        end: Option<i64>,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        let limit = match limit {
            Some(n) if n < 1 => {
                return Err(config_err(format!("limit: must be at least 1, got {n}")))
            }
            Some(n) => Some(n as usize),
            None => None,
        };
        let ex = self.ex.clone();
        bridge::spawn(py, async move {
            let c = ex.klines(&symbol, &interval, start, end, limit).await?;
            Ok(Box::new(move |py: Python<'_>| {
                Ok(Py::new(py, PyKlines::build(py, symbol, interval, c))?.into_any())
            }) as Converter)
        })
    }

    /// Places one order (see `create_order` in the Rust core for the
    /// unknown-outcome lookup); resolves to the exchange's order JSON.
    fn create_order<'py>(
        &self,
        py: Python<'py>,
        params: Vec<(String, String)>,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        let ex = self.ex.clone();
        bridge::spawn(py, async move {
            ex.create_order(params).await.map(json_converter)
        })
    }

    /// A fresh client order id.
    fn client_order_id(&self) -> String {
        self.ex.client_order_id()
    }

    /// The weight budget's state.
    fn budget<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.ex.budget.snapshot();
        let d = PyDict::new(py);
        d.set_item("enabled", s.enabled)?;
        d.set_item("weight_limit", s.weight_limit)?;
        d.set_item("orders_limit_10s", s.orders_limit)?;
        d.set_item("weight_used", s.weight_used)?;
        d.set_item("weight_pending", s.weight_pending)?;
        d.set_item("orders_used", s.orders_used)?;
        d.set_item("orders_pending", s.orders_pending)?;
        // unlimited until /exchangeInfo states the limit
        let known = |v: u64| (v != u64::MAX).then_some(v);
        d.set_item("raw_requests_limit_5m", known(s.raw_limit))?;
        d.set_item("raw_requests_used", s.raw_used)?;
        d.set_item("orders_limit_1d", known(s.orders_day_limit))?;
        d.set_item("orders_used_1d", s.orders_day_used)?;
        d.set_item("blocked_for", s.blocked_for)?;
        d.set_item("waits", s.waits)?;
        d.set_item(
            "offset_ms",
            self.ex.budget.offset_ms.load(Ordering::Relaxed),
        )?;
        Ok(d)
    }

    /// Counters: requests, retries, time_syncs, order_lookups, rate_limited.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.ex.stats;
        let d = PyDict::new(py);
        for (k, v) in [
            ("requests", &s.requests),
            ("retries", &s.retries),
            ("time_syncs", &s.time_syncs),
            ("order_lookups", &s.order_lookups),
            ("rate_limited", &s.rate_limited),
        ] {
            d.set_item(k, v.load(Ordering::Relaxed))?;
        }
        Ok(d)
    }

    /// Closes the connection pool.
    fn close(&self) {
        self.ex.close();
    }
}

type DepthArrays<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

/// A local order book fed with `/depth` snapshots and `@depth` diff frames
/// (raw bytes, parsed in Rust) by Binance's `U`/`u` rules.
#[pyclass(module = "ferrotick._core", name = "OrderBook")]
pub struct PyOrderBook {
    book: Book,
}

fn applied_name(a: Applied) -> &'static str {
    match a {
        Applied::Applied => "applied",
        Applied::Buffered => "buffered",
        Applied::Stale => "stale",
        Applied::Gap => "gap",
    }
}

#[pymethods]
impl PyOrderBook {
    #[new]
    #[pyo3(signature = (max_depth=1000, max_buffer=10_000))]
    fn new(max_depth: i64, max_buffer: i64) -> PyResult<Self> {
        if !(1..=100_000).contains(&max_depth) {
            return Err(config_err(format!(
                "max_depth: between 1 and 100000 levels, got {max_depth}"
            )));
        }
        if !(1..=10_000_000).contains(&max_buffer) {
            return Err(config_err(format!(
                "max_buffer: between 1 and 1e7 events, got {max_buffer}"
            )));
        }
        Ok(PyOrderBook {
            book: Book::new(max_depth as usize, max_buffer as usize),
        })
    }

    /// Loads a `/depth` body; "applied", or "gap" if the buffered diffs
    /// do not connect to it (fetch a newer one).
    fn apply_snapshot(&mut self, py: Python<'_>, body: &[u8]) -> PyResult<&'static str> {
        let (id, b, a) = py.detach(|| parse_snapshot(body))?;
        Ok(applied_name(self.book.snapshot(id, &b, &a)))
    }

    /// One diff frame: "applied", "buffered", "stale" or "gap" (the book
    /// was dropped: load a new snapshot).
    fn apply_diff(&mut self, body: &[u8]) -> PyResult<&'static str> {
        let d = parse_diff(body)?;
        Ok(applied_name(self.book.diff(d)))
    }

    /// Many diff frames; returns how many were applied, stopping at a gap
    /// (the frames after it are buffered for the next snapshot).
    fn apply_diffs(&mut self, py: Python<'_>, frames: Vec<Vec<u8>>) -> PyResult<(usize, bool)> {
        let book = &mut self.book;
        py.detach(|| {
            let mut n = 0;
            let mut gap = false;
            for f in &frames {
                match book.diff(parse_diff(f)?) {
                    Applied::Applied => n += 1,
                    Applied::Gap => gap = true,
                    _ => {}
                }
            }
            Ok((n, gap))
        })
    }

    fn best_bid(&self) -> Option<(f64, f64)> {
        self.book.best_bid()
    }

    fn best_ask(&self) -> Option<(f64, f64)> {
        self.book.best_ask()
    }

    fn mid(&self) -> Option<f64> {
        self.book.mid()
    }

    /// The best `n` levels a side as two (k, 2) float64 arrays of
    /// (price, quantity), best first.
    fn depth<'py>(&self, py: Python<'py>, n: usize) -> PyResult<DepthArrays<'py>> {
        let (b, a) = self.book.depth(n);
        let arr = |v: Vec<(f64, f64)>| -> PyResult<Bound<'py, PyArray2<f64>>> {
            let rows: Vec<Vec<f64>> = v.into_iter().map(|(p, q)| vec![p, q]).collect();
            if rows.is_empty() {
                return Ok(numpy::PyArray2::zeros(py, [0, 2], false));
            }
            Ok(PyArray2::from_vec2(py, &rows)?)
        };
        Ok((arr(b)?, arr(a)?))
    }

    #[getter]
    fn last_update_id(&self) -> Option<u64> {
        self.book.last_update_id()
    }

    #[getter]
    fn synced(&self) -> bool {
        self.book.is_synced()
    }

    #[getter]
    fn gaps(&self) -> u64 {
        self.book.gaps
    }

    #[getter]
    fn buffered(&self) -> usize {
        self.book.buffered()
    }

    #[getter]
    fn levels_applied(&self) -> u64 {
        self.book.levels_applied
    }

    fn __len__(&self) -> usize {
        let (b, a) = self.book.len();
        b + a
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyExchange>()?;
    m.add_class::<PyKlines>()?;
    m.add_class::<PyOrderBook>()?;
    register_streams(m)?;
    Ok(())
}

/// A market-data subscription (combined streams) with its own connection,
/// reconnects and bounded buffer; `ferrotick.exchange` iterates it.
#[pyclass(module = "ferrotick._core", name = "MarketStream", frozen)]
pub struct PyStream {
    s: Arc<Stream>,
}

#[pymethods]
impl PyStream {
    #[new]
    #[pyo3(signature = (*, ws_url, streams, buffer, overflow, max_backoff, watchdog, max_frame, ca_pem=None, rotate_after=84_600.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        ws_url: String,
        streams: Vec<String>,
        buffer: usize,
        overflow: &str,
        max_backoff: f64,
        watchdog: f64,
        max_frame: usize,
        ca_pem: Option<Vec<u8>>,
        rotate_after: f64,
    ) -> PyResult<Self> {
        let cfg = StreamConfig {
            ws_url,
            streams,
            capacity: buffer,
            policy: Policy::parse(overflow)?,
            max_backoff: duration_arg("max_backoff", max_backoff)?,
            watchdog: duration_arg("watchdog", watchdog)?,
            max_frame: max_frame.max(1024),
            ca_pem,
            rotate_after: duration_arg("rotate_after", rotate_after)?,
        };
        let handle = crate::runtime::handle()?;
        Ok(PyStream {
            s: Stream::start(cfg, &handle)?,
        })
    }

    /// Up to `max` messages (dicts, parsed in Rust), waiting for the first;
    /// resolves to None once the stream is closed. A frame that is not JSON
    /// is counted (`malformed`) and skipped.
    #[pyo3(signature = (max=1024))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        max: usize,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        let s = self.s.clone();
        bridge::spawn(py, async move {
            let batch = s.next_batch(max).await;
            Ok(Box::new(move |py: Python<'_>| {
                let Some(frames) = batch else {
                    return Ok(py.None());
                };
                let out = pyo3::types::PyList::empty(py);
                for f in &frames {
                    match pyjson::loads(py, f) {
                        Ok(v) => out.append(v)?,
                        Err(_) => {
                            s.counters.malformed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(out.into_any().unbind())
            }) as Converter)
        })
    }

    fn close(&self) {
        self.s.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.s.is_closed()
    }

    /// received, delivered, dropped, reconnects, connects, malformed,
    /// buffered, and the last connection error.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.s.counters;
        let d = PyDict::new(py);
        for (k, v) in [
            ("received", &c.received),
            ("delivered", &c.delivered),
            ("dropped", &c.dropped),
            ("reconnects", &c.reconnects),
            ("connects", &c.connects),
            ("malformed", &c.malformed),
            ("rotations", &c.rotations),
            ("duplicates", &c.duplicates),
        ] {
            d.set_item(k, v.load(Ordering::Relaxed))?;
        }
        d.set_item("buffered", self.s.buffered())?;
        d.set_item("last_error", self.s.last_error())?;
        Ok(d)
    }
}

pub fn register_streams(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStream>()
}
