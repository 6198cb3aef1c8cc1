//! Binance spot REST on the shared HTTP client: signed requests with the
//! server-time offset, the weight budget before each send, retries of reads,
//! order placement that never re-sends an order of unknown outcome, and
//! klines pagination.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Deserialize;

use super::budget::{endpoint_weight, local_ms, Budget};
use super::klines::{self, Columns};
use super::sign;
use crate::errors::{ErrorKind, FtError, FtResult};
use crate::net::client::{parse_retry_after, Client, PoolConfig, RequestSpec};

/// Binance's page size for klines.
pub const KLINES_PAGE: usize = 1000;
/// Samples of /time taken to estimate the clock offset.
const TIME_SAMPLES: usize = 5;

/// Every setting, each required (the defaults live in `BinanceConfig`).
#[derive(Clone)]
pub struct Settings {
    pub base_url: url::Url,
    pub api_key: Option<String>,
    pub api_secret: Option<Vec<u8>>,
    pub recv_window_ms: u64,
    pub timeout: Duration,
    pub max_retries: u32,
    pub retry_delay: Duration,
    pub rate_limiting: bool,
    /// The configured caps: weight per minute and orders per second.
    pub weight_per_minute: Option<u64>,
    pub orders_per_second: Option<u64>,
    /// This process's share of the per-IP budget (several workers on one IP).
    pub weight_share: f64,
    pub pool_size: usize,
    pub exchange_info_ttl: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("api_secret", &self.api_secret.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

#[derive(Default, Debug)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub time_syncs: AtomicU64,
    pub order_lookups: AtomicU64,
    pub rate_limited: AtomicU64,
}

pub struct Exchange {
    http: Client,
    pub s: Settings,
    pub budget: Arc<Budget>,
    synced: AtomicBool,
    limits_loaded: AtomicBool,
    info: Mutex<Option<(Instant, Bytes)>>,
    sync_lock: tokio::sync::Mutex<()>,
    order_seq: AtomicU64,
    pub stats: Stats,
}

#[derive(Deserialize)]
struct ApiError {
    code: i64,
    msg: String,
}

fn exchange_err(code: Option<i64>, status: Option<u16>, msg: String) -> FtError {
    let mut e = FtError::new(ErrorKind::Exchange, msg);
    e.code = code;
    e.status = status;
    e
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether an order's outcome is unknown after this error: sent, and no
/// verdict came back.
fn outcome_unknown(e: &FtError) -> bool {
    match e.kind {
        ErrorKind::RequestTimeout | ErrorKind::Connect | ErrorKind::Http => true,
        ErrorKind::Exchange => {
            e.code == Some(-1007) || e.status.is_some_and(|s| s >= 500) || e.code.is_none()
        }
        _ => false,
    }
}

impl Exchange {
    pub fn new(s: Settings) -> FtResult<Exchange> {
        if !(s.weight_share > 0.0 && s.weight_share <= 1.0) {
            return Err(FtError::config(format!(
                "weight_share: a fraction in (0, 1], got {}",
                s.weight_share
            )));
        }
        let http = Client::new(PoolConfig {
            limit: s.pool_size,
            limit_per_host: s.pool_size,
            timeout_total: Some(s.timeout),
            timeout_connect: Some(s.timeout),
            timeout_read: None,
            pool_timeout: None,
            keepalive: Some(Duration::from_secs(60)),
            deadline: None,
            verify: true,
            ca_pem: None,
            proxy: None,
            trust_env: false,
            cookies: false,
            max_redirects: 0,
            default_headers: Vec::new(),
            user_agent: crate::net::client::default_user_agent(),
            breaker: None,
        })?;
        // Binance's published defaults until /exchangeInfo is read
        let (w, o) = Self::capped(&s, 6000, 100);
        let budget = Budget::new(s.rate_limiting, w, o);
        Ok(Exchange {
            http,
            s,
            budget,
            synced: AtomicBool::new(false),
            limits_loaded: AtomicBool::new(false),
            info: Mutex::new(None),
            sync_lock: tokio::sync::Mutex::new(()),
            order_seq: AtomicU64::new(0),
            stats: Stats::default(),
        })
    }

    /// The exchange's limits capped by the configured ones and scaled by
    /// this process's share: (weight per minute, orders per 10 s).
    fn capped(s: &Settings, weight: u64, orders_10s: u64) -> (u64, u64) {
        let w = s.weight_per_minute.map_or(weight, |c| c.min(weight));
        let o = s
            .orders_per_second
            .map_or(orders_10s, |c| (c * 10).min(orders_10s));
        let share = |x: u64| ((x as f64 * s.weight_share).floor() as u64).max(1);
        (share(w), share(o))
    }

    pub fn close(&self) {
        self.http.close();
    }

    /// One request through the budget; returns the body of a 2xx answer.
    /// Reads (GET) are retried on transport errors, 5xx and malformed
    /// bodies; a signed request refused with -1021 re-syncs the clock and is
    /// sent once more.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(String, String)],
        signed: bool,
        orders: u64,
    ) -> FtResult<Bytes> {
        let weight = endpoint_weight(method.as_str(), path, params).unwrap_or(1);
        let idempotent = method == reqwest::Method::GET;
        let mut attempt = 0u32;
        let mut resynced = false;
        loop {
            if signed {
                self.ensure_synced().await?;
            }
            let r = self
                .once(method.clone(), path, params, signed, weight, orders)
                .await;
            match r {
                Ok(b) => return Ok(b),
                Err(e) if signed && e.code == Some(-1021) && !resynced => {
                    resynced = true;
                    self.sync_time().await?;
                }
                Err(e) => {
                    let transient = matches!(
                        e.kind,
                        ErrorKind::RequestTimeout | ErrorKind::Connect | ErrorKind::Http
                    ) || (e.kind == ErrorKind::Exchange
                        && (e.status.is_some_and(|s| s >= 500) || e.code.is_none())
                        && e.status != Some(429)
                        && e.status != Some(418));
                    if !(idempotent && transient && attempt < self.s.max_retries) {
                        return Err(e);
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let d = self.s.retry_delay.as_secs_f64() * 2f64.powi(attempt.min(10) as i32);
                    tokio::time::sleep(Duration::from_secs_f64(d.min(5.0))).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn once(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(String, String)],
        signed: bool,
        weight: u64,
        orders: u64,
    ) -> FtResult<Bytes> {
        let mut reservation = self.budget.reserve(weight, orders).await?;
        let mut query = sign::encode(params);
        let mut headers = Vec::new();
        if let Some(k) = &self.s.api_key {
            headers.push(("X-MBX-APIKEY".to_string(), k.clone()));
        }
        if signed {
            let Some(secret) = &self.s.api_secret else {
                return Err(FtError::config(format!(
                    "api_secret: {path} is a signed endpoint and no secret is configured"
                )));
            };
            if self.s.api_key.is_none() {
                return Err(FtError::config(format!(
                    "api_key: {path} is a signed endpoint and no key is configured"
                )));
            }
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!(
                "recvWindow={}&timestamp={}",
                self.s.recv_window_ms,
                self.budget.server_ms()
            ));
            let sig = sign::signature(secret, &query);
            query.push_str("&signature=");
            query.push_str(&sig);
        }
        let mut url = self
            .s
            .base_url
            .join(path.trim_start_matches('/'))
            .map_err(|e| FtError::config(format!("path: {path:?}: {e}")))?;
        if !query.is_empty() {
            url.set_query(Some(&query));
        }
        let spec = RequestSpec {
            method,
            url,
            headers,
            body: None,
            timeouts: None,
            retry: None,
            stream: false,
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        reservation.sent();
        let resp = self.http.execute(spec).await.map_err(|mut e| {
            // the transport's message may hold the signed URL
            e.message = crate::errors::redact(&e.message);
            e
        })?;
        let used = header(&resp.headers, "x-mbx-used-weight-1m").and_then(|v| v.parse().ok());
        let orders_used =
            header(&resp.headers, "x-mbx-order-count-10s").and_then(|v| v.parse().ok());
        let day_orders = header(&resp.headers, "x-mbx-order-count-1d").and_then(|v| v.parse().ok());
        reservation.settle(used, orders_used, day_orders);
        let body = match resp.body {
            crate::net::client::Body::Full(b) => b,
            crate::net::client::Body::Stream(_) => Bytes::new(),
        };
        let status = resp.status;
        if status == 429 || status == 418 {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let ra = header(&resp.headers, "retry-after")
                .and_then(parse_retry_after)
                .unwrap_or(Duration::from_secs(60));
            self.budget.block(ra, true);
            let mut e = self.api_error(status, &body);
            e.retry_after = Some(ra.as_secs_f64());
            return Err(e);
        }
        if !(200..300).contains(&status) {
            return Err(self.api_error(status, &body));
        }
        Ok(body)
    }

    fn api_error(&self, status: u16, body: &[u8]) -> FtError {
        match serde_json::from_slice::<ApiError>(body) {
            Ok(a) => exchange_err(
                Some(a.code),
                Some(status),
                // the exchange's own message: `.msg` and `.code` as sent
                a.msg,
            ),
            Err(_) => exchange_err(
                None,
                Some(status),
                format!("HTTP {status} with an unreadable body"),
            ),
        }
    }

    /// A JSON body checked to parse (a truncated or garbled one fails here,
    /// as a retryable exchange error without a code).
    pub async fn call_json(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(String, String)],
        signed: bool,
    ) -> FtResult<Bytes> {
        let mut tries = 0;
        loop {
            let b = self.call(method.clone(), path, params, signed, 0).await?;
            match serde_json::from_slice::<serde::de::IgnoredAny>(&b) {
                Ok(_) => return Ok(b),
                Err(e) if method != reqwest::Method::GET || tries >= self.s.max_retries => {
                    return Err(exchange_err(
                        None,
                        Some(200),
                        format!("malformed response from {path}: {e}"),
                    ))
                }
                Err(_) => {
                    tries += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn ensure_synced(&self) -> FtResult<()> {
        if !self.synced.load(Ordering::Acquire) {
            let _g = self.sync_lock.lock().await;
            if !self.synced.load(Ordering::Acquire) {
                self.sync_time().await?;
            }
        }
        Ok(())
    }

    /// One /time answer, retried like a read (without going through
    /// `call`, which itself syncs the clock for signed requests).
    async fn time_sample(&self) -> FtResult<Bytes> {
        let mut attempt = 0;
        loop {
            match self
                .once(reqwest::Method::GET, "/api/v3/time", &[], false, 1, 0)
                .await
            {
                Ok(b) => return Ok(b),
                Err(e)
                    if attempt < self.s.max_retries
                        && e.status != Some(429)
                        && e.status != Some(418) =>
                {
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.s.retry_delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Estimates server time minus local time from several /time samples:
    /// each sample's server time against the midpoint of its round trip,
    /// the median of the samples kept. Returns the offset in ms.
    pub async fn sync_time(&self) -> FtResult<i64> {
        #[derive(Deserialize)]
        struct T {
            #[serde(rename = "serverTime")]
            server_time: i64,
        }
        let mut offs = Vec::with_capacity(TIME_SAMPLES);
        for _ in 0..TIME_SAMPLES {
            let t0 = local_ms();
            let b = self.time_sample().await?;
            let t1 = local_ms();
            let t: T = serde_json::from_slice(&b).map_err(|e| {
                exchange_err(None, Some(200), format!("malformed /time response: {e}"))
            })?;
            offs.push(t.server_time - (t0 + t1) / 2);
        }
        offs.sort_unstable();
        let off = offs[offs.len() / 2];
        self.budget.offset_ms.store(off, Ordering::Relaxed);
        self.synced.store(true, Ordering::Release);
        self.stats.time_syncs.fetch_add(1, Ordering::Relaxed);
        Ok(off)
    }

    /// /exchangeInfo, cached for the configured TTL; its rate limits (capped
    /// by the configured ones) become the budget's on the first read.
    pub async fn exchange_info(&self) -> FtResult<Bytes> {
        if let Some((at, b)) = &*self.info.lock() {
            if at.elapsed() < self.s.exchange_info_ttl {
                return Ok(b.clone());
            }
        }
        let b = self
            .call_json(reqwest::Method::GET, "/api/v3/exchangeInfo", &[], false)
            .await?;
        self.apply_limits(&b);
        *self.info.lock() = Some((Instant::now(), b.clone()));
        Ok(b)
    }

    fn apply_limits(&self, info: &[u8]) {
        #[derive(Deserialize)]
        struct Limit {
            #[serde(rename = "rateLimitType")]
            kind: String,
            interval: String,
            #[serde(rename = "intervalNum")]
            num: u64,
            limit: u64,
        }
        #[derive(Deserialize)]
        struct Info {
            #[serde(rename = "rateLimits", default)]
            limits: Vec<Limit>,
        }
        let Ok(info) = serde_json::from_slice::<Info>(info) else {
            return;
        };
        let mut weight = None;
        let mut orders = None;
        let mut raw = None;
        let mut day_orders = None;
        for l in info.limits {
            let secs = l.num
                * match l.interval.as_str() {
                    "SECOND" => 1,
                    "MINUTE" => 60,
                    "DAY" => 86_400,
                    _ => 0,
                };
            match (l.kind.as_str(), secs) {
                ("REQUEST_WEIGHT", 60) => weight = Some(l.limit),
                // an ORDERS limit per N seconds, as orders per 10 s
                ("ORDERS", 1..=10) => orders = Some(l.limit * 10 / secs),
                ("ORDERS", 86_400) => day_orders = Some(l.limit),
                ("RAW_REQUESTS", 300) => raw = Some(l.limit),
                _ => {}
            }
        }
        self.budget.set_slow_limits(raw, day_orders);
        let (w, o) = Self::capped(&self.s, weight.unwrap_or(6000), orders.unwrap_or(100));
        self.budget.set_limits(w, o);
        self.limits_loaded.store(true, Ordering::Release);
    }

    /// Reads the exchange's limits once (before the first weighed burst).
    pub async fn ensure_limits(&self) -> FtResult<()> {
        if !self.limits_loaded.load(Ordering::Acquire) {
            self.exchange_info().await?;
        }
        Ok(())
    }

    /// Klines from `start` to `end` (ms, inclusive), or the latest `limit`
    /// bars, fetched in pages of 1000.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: &str,
        start: Option<i64>,
        end: Option<i64>,
        limit: Option<usize>,
    ) -> FtResult<Columns> {
        let step = klines::interval_ms(interval).ok_or_else(|| {
            FtError::config(format!(
                "interval: {interval:?} is not one of {}",
                klines::INTERVALS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if symbol.is_empty() {
            return Err(FtError::config("symbol: must not be empty"));
        }
        if limit == Some(0) {
            return Err(FtError::config("limit: must be at least 1"));
        }
        let want = limit.unwrap_or(if start.is_some() { usize::MAX } else { 500 });
        let mut start = start;
        if start.is_none() && want > KLINES_PAGE {
            // the latest `want` bars: begin far enough back, then walk forward
            let last = end.unwrap_or_else(|| self.budget.server_ms());
            start = Some(last - step * want as i64);
        }
        let mut out = Columns::default();
        loop {
            let page = (want - out.len()).min(KLINES_PAGE);
            let mut p = vec![
                ("symbol".to_string(), symbol.to_string()),
                ("interval".to_string(), interval.to_string()),
            ];
            if let Some(s) = start {
                p.push(("startTime".into(), s.to_string()));
            }
            if let Some(e) = end {
                p.push(("endTime".into(), e.to_string()));
            }
            p.push(("limit".into(), page.to_string()));
            let cols = self.klines_page(&p).await?;
            let n = cols.len();
            let last_open = cols.open_time.last().copied();
            out.append(cols);
            if n < page || out.len() >= want || start.is_none() {
                break;
            }
            start = last_open.map(|t| t + 1);
        }
        if out.len() > want {
            let extra = out.len() - want;
            out.drop_head(extra);
        }
        Ok(out)
    }

    async fn klines_page(&self, p: &[(String, String)]) -> FtResult<Columns> {
        let mut tries = 0;
        loop {
            let b = self
                .call(reqwest::Method::GET, "/api/v3/klines", p, false, 0)
                .await?;
            match klines::parse(&b) {
                Ok(c) => return Ok(c),
                Err(e) if tries >= self.s.max_retries => return Err(e),
                Err(_) => {
                    tries += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A client order id: unique per process and call, within Binance's
    /// 36-character alphabet.
    pub fn client_order_id(&self) -> String {
        let n = self.order_seq.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        format!("ft{:x}{:x}{n:x}", t, std::process::id())
    }

    /// Places one order. `newClientOrderId` is set when the caller did not;
    /// if the outcome is unknown (timeout, reset, 5xx or -1007 after
    /// sending), the order is looked up by that id instead of sent again:
    /// found, its state is returned; not found (-2013), the original error.
    pub async fn create_order(&self, mut params: Vec<(String, String)>) -> FtResult<Bytes> {
        let symbol = params
            .iter()
            .find(|(k, _)| k == "symbol")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| FtError::config("symbol: every order needs one"))?;
        let cid = match params.iter().find(|(k, _)| k == "newClientOrderId") {
            Some((_, v)) => v.clone(),
            None => {
                let id = self.client_order_id();
                params.push(("newClientOrderId".into(), id.clone()));
                id
            }
        };
        let first = self
            .call(reqwest::Method::POST, "/api/v3/order", &params, true, 1)
            .await;
        let err = match first {
            Ok(b) if serde_json::from_slice::<serde::de::IgnoredAny>(&b).is_ok() => return Ok(b),
            Ok(_) => exchange_err(None, Some(200), "malformed order response".into()),
            Err(e) => e,
        };
        if !outcome_unknown(&err) {
            return Err(err);
        }
        self.stats.order_lookups.fetch_add(1, Ordering::Relaxed);
        let q = vec![
            ("symbol".to_string(), symbol),
            ("origClientOrderId".to_string(), cid.clone()),
        ];
        match self
            .call_json(reqwest::Method::GET, "/api/v3/order", &q, true)
            .await
        {
            Ok(b) => Ok(b),
            Err(e) if e.code == Some(-2013) => {
                let mut e = err;
                e.message = format!(
                    "{}; order {cid} was looked up and not found: not placed",
                    e.message
                );
                Err(e)
            }
            Err(e) => Err(exchange_err(
                e.code,
                e.status,
                format!(
                    "order {cid}: outcome unknown ({}), and its lookup failed: {}",
                    err.message, e.message
                ),
            )),
        }
    }
}
