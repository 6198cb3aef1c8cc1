//! The REST API: Binance spot's endpoints, JSON shapes and `{"code","msg"}`
//! errors, with the limits of `limits.rs` and the REST fault knobs.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::config::{Faults, Stats};
use super::limits::{rate_limits_json, weight, Admit, WeightArgs};
use super::market::{absorb, emit_user_trades, ticker};
use super::orders::{
    canceled_json, order_json, placed_json, trade_json, NewOrder, OrderType, Side, Tif,
};
use super::price::{fmt8, kline_json, parse8, Interval};
use super::sign;
use super::state::Shared;

/// A response body: whole, or one that fails after its first part (a
/// connection reset mid-response).
pub enum SimBody {
    Full(Option<Bytes>),
    Broken(Option<Bytes>),
}

impl hyper::body::Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            SimBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Broken(b) => match b.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )))),
            },
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            SimBody::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            _ => hyper::body::SizeHint::default(),
        }
    }
}

/// A Binance error: HTTP status, code, message.
#[derive(Debug)]
pub struct ApiErr {
    pub status: u16,
    pub code: i64,
    pub msg: String,
}

fn err(code: i64, msg: impl Into<String>) -> ApiErr {
    let status = match code {
        -2014 | -2015 => 401,
        -1003 | -1015 => 429,
        _ => 400,
    };
    ApiErr {
        status,
        code,
        msg: msg.into(),
    }
}

fn mandatory(name: &str) -> ApiErr {
    err(
        -1102,
        format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

fn bad_symbol() -> ApiErr {
    err(-1121, "Invalid symbol.")
}

fn error_json(code: i64, msg: &str) -> String {
    format!(
        "{{\"code\":{code},\"msg\":{}}}",
        serde_json::Value::from(msg)
    )
}

type ApiResult = Result<String, ApiErr>;

/// The request's parameters (query string and form body).
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    fn parse(query: &str, body: &str) -> Result<Params, ApiErr> {
        let mut map = HashMap::new();
        for src in [query, body] {
            for (k, v) in url::form_urlencoded::parse(src.as_bytes()) {
                if map.insert(k.to_string(), v.to_string()).is_some() {
                    return Err(err(-1101, "Duplicate values for a parameter detected."));
                }
            }
        }
        Ok(Params { map })
    }

    fn get(&self, k: &str) -> Result<Option<&str>, ApiErr> {
        match self.map.get(k) {
            None => Ok(None),
            Some(v) if v.is_empty() => Err(err(-1105, format!("Parameter '{k}' was empty."))),
            Some(v) => Ok(Some(v.as_str())),
        }
    }

    fn req(&self, k: &str) -> Result<&str, ApiErr> {
        self.get(k)?.ok_or_else(|| mandatory(k))
    }

    fn int(&self, k: &str) -> Result<Option<i64>, ApiErr> {
        let Some(v) = self.get(k)? else {
            return Ok(None);
        };
        if v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                -1100,
                format!("Illegal characters found in parameter '{k}'; legal range is '^[0-9]{{1,20}}$'."),
            ));
        }
        v.parse::<i64>().map(Some).map_err(|_| {
            err(
                -1100,
                format!("Illegal characters found in parameter '{k}'."),
            )
        })
    }

    fn decimal(&self, k: &str) -> Result<Option<i64>, ApiErr> {
        let Some(v) = self.get(k)? else {
            return Ok(None);
        };
        let shape_ok = v.len() <= 42
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && v.bytes().filter(|b| *b == b'.').count() <= 1
            && v.bytes().any(|b| b.is_ascii_digit());
        if !shape_ok {
            return Err(err(
                -1100,
                format!("Illegal characters found in parameter '{k}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."),
            ));
        }
        match parse8(v) {
            Some(x) => Ok(Some(x)),
            None => Err(err(
                -1111,
                format!("Parameter '{k}' has too much precision."),
            )),
        }
    }

    fn symbol(&self, sh: &Shared) -> Result<Option<usize>, ApiErr> {
        match self.get("symbol")? {
            None => Ok(None),
            Some(s) => sh.by_name.get(s).copied().map(Some).ok_or_else(bad_symbol),
        }
    }

    /// `symbols=["A","B"]`.
    fn symbols(&self, sh: &Shared) -> Result<Option<Vec<usize>>, ApiErr> {
        let Some(v) = self.get("symbols")? else {
            return Ok(None);
        };
        let names: Vec<String> = serde_json::from_str(v).map_err(|_| {
            err(-1100, "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.")
        })?;
        if names.is_empty() {
            return Err(err(-1130, "Invalid data sent for a parameter."));
        }
        names
            .iter()
            .map(|n| sh.by_name.get(n).copied().ok_or_else(bad_symbol))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Response headers beyond the defaults.
#[derive(Default)]
struct Extra {
    retry_after: Option<u64>,
    order_counts: Option<(u64, u64)>,
}

pub async fn handle(sh: Arc<Shared>, peer: IpAddr, req: Request<Incoming>) -> Response<SimBody> {
    Stats::inc(&sh.stats.http_requests);
    let faults: Faults = sh.faults.read().clone();
    if faults.maintenance {
        Stats::inc(&sh.stats.injected_maintenance);
        return respond(
            503,
            error_json(
                -1016,
                "This service is no longer available: system maintenance.",
            ),
            0,
            Extra::default(),
            &sh,
            false,
        );
    }
    let delay = faults.latency_ms + faults.jitter_ms * sh.dice.roll();
    if delay > 0.0 {
        Stats::inc(&sh.stats.injected_latency);
        tokio::time::sleep(std::time::Duration::from_secs_f64(delay / 1000.0)).await;
    }
    if sh.dice.hit(faults.error_rate) {
        Stats::inc(&sh.stats.injected_5xx);
        let r = sh.dice.roll();
        let (status, body) = if r < 0.4 {
            (
                500,
                error_json(
                    -1000,
                    "An unknown error occurred while processing the request.",
                ),
            )
        } else if r < 0.7 {
            (503, error_json(-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."))
        } else {
            (
                502,
                "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string(),
            )
        };
        return respond(status, body, 0, Extra::default(), &sh, false);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let api_key = req
        .headers()
        .get("x-mbx-apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return respond(
                400,
                error_json(-1101, "Too many parameters; the request body is too large."),
                0,
                Extra::default(),
                &sh,
                false,
            )
        }
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let params = match Params::parse(&query, &body) {
        Ok(p) => p,
        Err(e) => return api_error(&sh, e, 0, Extra::default()),
    };
    let args = WeightArgs {
        symbol: params.map.contains_key("symbol"),
        symbols: params
            .map
            .get("symbols")
            .map(|s| s.matches(',').count() + 1)
            .unwrap_or(0),
        limit: params.map.get("limit").and_then(|l| l.parse().ok()),
        order_id: params.map.contains_key("orderId"),
    };
    let Some(w) = weight(method.as_str(), &path, args) else {
        return respond(
            404,
            error_json(-1099, "Not found, unauthenticated, or unauthorized."),
            0,
            Extra::default(),
            &sh,
            false,
        );
    };
    let now = sh.clock.now_ms();
    let admit = sh
        .ips
        .lock()
        .entry(peer)
        .or_default()
        .admit(now, w, &sh.cfg.limits);
    let used = match admit {
        Admit::Ok { used } => used,
        Admit::TooMuchWeight { used, retry_ms } => {
            Stats::inc(&sh.stats.http_429);
            let msg = format!(
                "Too much request weight used; current limit is {} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                sh.cfg.limits.weight_1m
            );
            let extra = Extra {
                retry_after: Some(sh.clock.retry_after_secs(retry_ms)),
                ..Extra::default()
            };
            return respond(429, error_json(-1003, &msg), used, extra, &sh, false);
        }
        Admit::Banned { used, until_ms } => {
            Stats::inc(&sh.stats.http_418);
            let msg = format!(
                "Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for live updates to avoid bans."
            );
            let extra = Extra {
                retry_after: Some(sh.clock.retry_after_secs(until_ms - now)),
                ..Extra::default()
            };
            return respond(418, error_json(-1003, &msg), used, extra, &sh, false);
        }
    };
    let mut extra = Extra::default();
    let result = route(
        &sh,
        &method,
        &path,
        &query,
        &body,
        &params,
        api_key.as_deref(),
        &mut extra,
        &faults,
    );
    match result {
        Ok(json) => respond(200, json, used, extra, &sh, true),
        Err(e) => api_error(&sh, e, used, extra),
    }
}

fn api_error(sh: &Shared, e: ApiErr, used: u64, extra: Extra) -> Response<SimBody> {
    if (400..500).contains(&e.status) {
        Stats::inc(&sh.stats.http_errors_4xx);
    }
    respond(e.status, error_json(e.code, &e.msg), used, extra, sh, false)
}

fn respond(
    status: u16,
    json: impl Into<Bytes>,
    used: u64,
    extra: Extra,
    sh: &Shared,
    body_faults: bool,
) -> Response<SimBody> {
    let mut bytes: Bytes = json.into();
    let mut broken = false;
    if body_faults {
        let f = sh.faults.read();
        let (reset, trunc, bad) = (f.reset_rate, f.truncate_rate, f.malformed_rate);
        drop(f);
        if sh.dice.hit(reset) {
            Stats::inc(&sh.stats.injected_resets);
            broken = true;
        } else if sh.dice.hit(trunc) {
            Stats::inc(&sh.stats.injected_truncated);
            bytes = bytes.slice(..bytes.len() / 2);
        } else if sh.dice.hit(bad) {
            Stats::inc(&sh.stats.injected_malformed);
            let mut v = bytes.to_vec();
            v.insert(v.len() / 2, b'<');
            v.insert(0, b'}');
            bytes = Bytes::from(v);
        }
    }
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json;charset=UTF-8")
        .header("x-mbx-used-weight", used)
        .header("x-mbx-used-weight-1m", used);
    if let Some(r) = extra.retry_after {
        b = b.header("retry-after", r);
    }
    if let Some((t, d)) = extra.order_counts {
        b = b
            .header("x-mbx-order-count-10s", t)
            .header("x-mbx-order-count-1d", d);
    }
    let body = if broken {
        b = b.header("content-length", bytes.len());
        SimBody::Broken(Some(bytes.slice(..bytes.len() / 2)))
    } else {
        SimBody::Full(Some(bytes))
    };
    b.body(body)
        .unwrap_or_else(|_| Response::new(SimBody::Full(None)))
}

#[allow(clippy::too_many_arguments)]
fn route(
    sh: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &str,
    p: &Params,
    api_key: Option<&str>,
    extra: &mut Extra,
    faults: &Faults,
) -> Result<Bytes, ApiErr> {
    let signed = matches!(
        path,
        "/api/v3/account"
            | "/api/v3/order"
            | "/api/v3/order/test"
            | "/api/v3/openOrders"
            | "/api/v3/allOrders"
            | "/api/v3/myTrades"
    );
    let key = if signed {
        Some(authenticate(sh, query, body, p, api_key)?)
    } else {
        None
    };
    let key = key.as_deref().unwrap_or("");
    if *method == Method::GET && matches!(path, "/api/v3/klines" | "/api/v3/uiKlines") {
        return klines(sh, p, query);
    }
    let r: ApiResult = match (method.as_str(), path) {
        ("GET", "/api/v3/ping") => Ok("{}".into()),
        ("GET", "/api/v3/time") => Ok(format!("{{\"serverTime\":{}}}", sh.server_ms())),
        ("GET", "/sapi/v1/system/status") => Ok("{\"status\":0,\"msg\":\"normal\"}".into()),
        ("GET", "/api/v3/exchangeInfo") => exchange_info(sh, p),
        ("GET", "/api/v3/depth") => depth(sh, p),
        ("GET", "/api/v3/avgPrice") => {
            let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
            let now = sh.clock.now_ms();
            let sec = now.div_euclid(1000);
            let b = sh.prices.range_bar(&sh.specs[i], sec - 300, sec);
            let avg = if b.volume > 0 {
                (b.quote_volume as i128 * super::price::UNIT as i128 / b.volume as i128) as i64
            } else {
                b.close
            };
            Ok(format!(
                "{{\"mins\":5,\"price\":\"{}\",\"closeTime\":{}}}",
                fmt8(avg),
                sec * 1000
            ))
        }
        ("GET", "/api/v3/ticker/price") => tickers(sh, p, |sh, i, _| {
            let px = sh.prices.price_at(&sh.specs[i], sh.clock.now_ms());
            format!(
                "{{\"symbol\":\"{}\",\"price\":\"{}\"}}",
                sh.specs[i].name,
                fmt8(px)
            )
        }),
        ("GET", "/api/v3/ticker/bookTicker") => tickers(sh, p, |sh, i, _| {
            let m = sh.markets[i].lock();
            let (b, bq) = m.book.best_bid().unwrap_or((0, 0));
            let (a, aq) = m.book.best_ask().unwrap_or((0, 0));
            format!(
                "{{\"symbol\":\"{}\",\"bidPrice\":\"{}\",\"bidQty\":\"{}\",\"askPrice\":\"{}\",\"askQty\":\"{}\"}}",
                sh.specs[i].name,
                fmt8(b),
                fmt8(bq),
                fmt8(a),
                fmt8(aq)
            )
        }),
        ("GET", "/api/v3/ticker/24hr") => tickers(sh, p, ticker_24h),
        ("GET", "/api/v3/account") => account(sh, key, p),
        ("POST", "/api/v3/order") => new_order(sh, key, p, extra, faults, false),
        ("POST", "/api/v3/order/test") => new_order(sh, key, p, extra, faults, true),
        ("GET", "/api/v3/order") => {
            let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
            let (id, client) = order_ref(p)?;
            let o = sh
                .accounts
                .lock()
                .find(key, i, id, client.as_deref())
                .ok_or_else(|| err(-2013, "Order does not exist."))?;
            let mut out = String::new();
            order_json(&mut out, &sh.specs[i], &o);
            Ok(out)
        }
        ("DELETE", "/api/v3/order") => {
            let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
            let (id, client) = order_ref(p)?;
            let now = sh.clock.now_ms();
            let mut accts = sh.accounts.lock();
            let found = accts.find(key, i, id, client.as_deref());
            let o = found
                .and_then(|o| accts.cancel(key, &sh.specs[i], o.id, now))
                .ok_or_else(|| err(-2011, "Unknown order sent."))?;
            Ok(canceled_json(&sh.specs[i], &o, now))
        }
        ("GET", "/api/v3/openOrders") | ("GET", "/api/v3/allOrders") => {
            let sym = p.symbol(sh)?;
            let all = path.ends_with("allOrders");
            if all && sym.is_none() {
                return Err(mandatory("symbol"));
            }
            let mut accts = sh.accounts.lock();
            let orders = if all {
                accts.all_orders(key, sym.unwrap_or(0))
            } else {
                accts.open_orders(key, sym)
            };
            let mut out = String::from("[");
            for (k, o) in orders.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                order_json(&mut out, &sh.specs[o.symbol], o);
            }
            out.push(']');
            Ok(out)
        }
        ("GET", "/api/v3/myTrades") => {
            let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
            let limit = p.int("limit")?.unwrap_or(500);
            if !(1..=1000).contains(&limit) {
                return Err(err(-1130, "Invalid data sent for a parameter."));
            }
            let order_id = p.int("orderId")?;
            let from_id = p.int("fromId")?;
            let start = p.int("startTime")?;
            let end = p.int("endTime")?;
            let trades = sh.accounts.lock().trades(key, i);
            let mut out = String::from("[");
            let chosen = trades
                .iter()
                .filter(|t| {
                    order_id.is_none_or(|o| t.order_id == o as u64)
                        && from_id.is_none_or(|f| t.id >= f as u64)
                        && start.is_none_or(|s| t.time >= s)
                        && end.is_none_or(|e| t.time <= e)
                })
                .take(limit as usize);
            for (n, t) in chosen.enumerate() {
                if n > 0 {
                    out.push(',');
                }
                trade_json(&mut out, &sh.specs[i], t);
            }
            out.push(']');
            Ok(out)
        }
        _ => Err(ApiErr {
            status: 405,
            code: -1000,
            msg: format!("Method {method} is not allowed on {path}."),
        }),
    };
    r.map(Bytes::from)
}

/// Checks the API key, the signature and the timing of a SIGNED request;
/// returns the API key.
fn authenticate(
    sh: &Shared,
    query: &str,
    body: &str,
    p: &Params,
    api_key: Option<&str>,
) -> Result<String, ApiErr> {
    let key = match api_key {
        Some(k)
            if !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            k
        }
        _ => return Err(err(-2014, "API-key format invalid.")),
    };
    let Some(secret) = sh.secrets.get(key) else {
        return Err(err(
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    };
    let ts = p.int("timestamp")?.ok_or_else(|| mandatory("timestamp"))?;
    let window = p.int("recvWindow")?.unwrap_or(5000);
    if window > 60_000 {
        return Err(err(-1131, "recvWindow must be less than 60000"));
    }
    let (payload, sig) = sign::total_params(query, body);
    let sig = sig
        .filter(|s| !s.is_empty())
        .ok_or_else(|| mandatory("signature"))?;
    if !sign::verify(secret.as_bytes(), &payload, &sig) {
        return Err(err(-1022, "Signature for this request is not valid."));
    }
    let server = sh.server_ms();
    if ts >= server + 1000 {
        return Err(err(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if server - ts > window {
        return Err(err(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(key.to_string())
}

fn order_ref(p: &Params) -> Result<(Option<u64>, Option<String>), ApiErr> {
    let id = p.int("orderId")?.map(|x| x as u64);
    let client = p.get("origClientOrderId")?.map(str::to_string);
    if id.is_none() && client.is_none() {
        return Err(err(
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        ));
    }
    Ok((id, client))
}

fn symbol_info(out: &mut String, sh: &Shared, i: usize) {
    let s = &sh.specs[i];
    let _ = write!(
        out,
        concat!(
            "{{\"symbol\":\"{}\",\"status\":\"TRADING\",\"baseAsset\":\"{}\",\"baseAssetPrecision\":8,",
            "\"quoteAsset\":\"{}\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,",
            "\"baseCommissionPrecision\":8,\"quoteCommissionPrecision\":8,",
            "\"orderTypes\":[\"LIMIT\",\"LIMIT_MAKER\",\"MARKET\"],\"icebergAllowed\":false,",
            "\"ocoAllowed\":false,\"otoAllowed\":false,\"quoteOrderQtyMarketAllowed\":true,",
            "\"allowTrailingStop\":false,\"cancelReplaceAllowed\":false,\"isSpotTradingAllowed\":true,",
            "\"isMarginTradingAllowed\":false,\"filters\":[",
            "{{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"{}\",\"maxPrice\":\"{}\",\"tickSize\":\"{}\"}},",
            "{{\"filterType\":\"LOT_SIZE\",\"minQty\":\"{}\",\"maxQty\":\"{}\",\"stepSize\":\"{}\"}},",
            "{{\"filterType\":\"NOTIONAL\",\"minNotional\":\"{}\",\"applyMinToMarket\":true,",
            "\"maxNotional\":\"9000000.00000000\",\"applyMaxToMarket\":false,\"avgPriceMins\":5}}],",
            "\"permissions\":[],\"permissionSets\":[[\"SPOT\"]],\"defaultSelfTradePreventionMode\":\"NONE\",",
            "\"allowedSelfTradePreventionModes\":[\"NONE\"]}}"
        ),
        s.name,
        s.base,
        s.quote,
        fmt8(s.min_price),
        fmt8(s.max_price),
        fmt8(s.tick),
        fmt8(s.min_qty),
        fmt8(s.max_qty),
        fmt8(s.step),
        fmt8(s.min_notional)
    );
}

fn exchange_info(sh: &Shared, p: &Params) -> ApiResult {
    let chosen: Vec<usize> = match (p.symbol(sh)?, p.symbols(sh)?) {
        (Some(_), Some(_)) => {
            return Err(err(-1106, "Parameter 'symbols' sent when not required."))
        }
        (Some(i), None) => vec![i],
        (None, Some(v)) => v,
        (None, None) => (0..sh.specs.len()).collect(),
    };
    let mut out = format!(
        "{{\"timezone\":\"UTC\",\"serverTime\":{},\"rateLimits\":{},\"exchangeFilters\":[],\"symbols\":[",
        sh.server_ms(),
        rate_limits_json(&sh.cfg.limits)
    );
    for (k, i) in chosen.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        symbol_info(&mut out, sh, *i);
    }
    out.push_str("]}");
    Ok(out)
}

fn klines(sh: &Shared, p: &Params, query: &str) -> Result<Bytes, ApiErr> {
    let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
    let iv_name = p.req("interval")?;
    let iv = Interval::parse(iv_name).ok_or_else(|| err(-1120, "Invalid interval."))?;
    let limit = p.int("limit")?.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(err(-1130, "Invalid data sent for a parameter."));
    }
    let start = p.int("startTime")?;
    let end = p.int("endTime")?;
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(err(-1130, "Invalid data sent for a parameter."));
        }
    }
    let limit_secs = 253_402_300_799; // 9999-12-31
    let now_sec = sh.clock.now_ms().div_euclid(1000);
    let start_sec = start.map(|s| (s / 1000).min(limit_secs));
    let end_sec = end
        .map(|e| (e / 1000).min(limit_secs))
        .unwrap_or(now_sec)
        .min(now_sec);
    let mut starts: Vec<i64> = Vec::with_capacity(limit as usize);
    match start_sec {
        Some(ss) => {
            let mut t = iv.floor(ss);
            if t * 1000 < start.unwrap_or(0) {
                t = iv.next(t);
            }
            while starts.len() < limit as usize && t <= end_sec {
                starts.push(t);
                t = iv.next(t);
            }
        }
        None => {
            let mut t = iv.floor(end_sec);
            while starts.len() < limit as usize && t >= 0 {
                starts.push(t);
                t = iv.prev(t);
            }
            starts.reverse();
        }
    }
    let partial = starts.last().is_some_and(|t| iv.next(*t) > now_sec);
    let cache_key = if partial {
        format!("{query}#{now_sec}")
    } else {
        query.to_string()
    };
    if let Some(b) = sh.klines_cache.lock().get(&cache_key) {
        Stats::inc(&sh.stats.klines_cache_hits);
        return Ok(b.clone());
    }
    let s = &sh.specs[i];
    let mut out = String::with_capacity(starts.len() * 200 + 2);
    out.push('[');
    for (k, t) in starts.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let next = iv.next(*t);
        let b = sh.prices.range_bar(s, *t, next.min(now_sec + 1));
        kline_json(&mut out, t * 1000, next * 1000 - 1, &b);
    }
    out.push(']');
    Stats::inc(&sh.stats.klines_generated);
    let mut cache = sh.klines_cache.lock();
    if cache.len() >= 4096 {
        cache.clear();
    }
    let out = Bytes::from(out);
    cache.insert(cache_key, out.clone());
    Ok(out)
}

fn depth(sh: &Shared, p: &Params) -> ApiResult {
    let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
    let limit = p.int("limit")?.unwrap_or(100);
    if limit < 1 {
        return Err(err(-1130, "Invalid data sent for a parameter."));
    }
    // as documented: a limit over 5000 returns 5000 levels
    let limit = limit.min(5000) as usize;
    let m = sh.markets[i].lock();
    let mut out = format!("{{\"lastUpdateId\":{},\"bids\":[", m.book.last_update_id);
    for (k, (px, q)) in m.book.bids.iter().rev().take(limit).enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{}\",\"{}\"]", fmt8(*px), fmt8(*q));
    }
    out.push_str("],\"asks\":[");
    for (k, (px, q)) in m.book.asks.iter().take(limit).enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{}\",\"{}\"]", fmt8(*px), fmt8(*q));
    }
    out.push_str("]}");
    Ok(out)
}

fn tickers(sh: &Shared, p: &Params, one: impl Fn(&Shared, usize, i64) -> String) -> ApiResult {
    let now = sh.clock.now_ms();
    match (p.symbol(sh)?, p.symbols(sh)?) {
        (Some(_), Some(_)) => Err(err(-1106, "Parameter 'symbols' sent when not required.")),
        (Some(i), None) => Ok(one(sh, i, now)),
        (None, list) => {
            let list = list.unwrap_or_else(|| (0..sh.specs.len()).collect());
            let mut out = String::from("[");
            for (k, i) in list.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&one(sh, *i, now));
            }
            out.push(']');
            Ok(out)
        }
    }
}

fn ticker_24h(sh: &Shared, i: usize, now: i64) -> String {
    let s = &sh.specs[i];
    let t = ticker(sh, i, now);
    let m = sh.markets[i].lock();
    let (b, bq) = m.book.best_bid().unwrap_or((0, 0));
    let (a, aq) = m.book.best_ask().unwrap_or((0, 0));
    let w = if t.volume > 0 {
        (t.quote_volume as i128 * super::price::UNIT as i128 / t.volume as i128) as i64
    } else {
        t.last
    };
    let count = t.trades.max(1) as u64;
    format!(
        "{{\"symbol\":\"{}\",\"priceChange\":\"{}\",\"priceChangePercent\":\"{:.3}\",\"weightedAvgPrice\":\"{}\",\"prevClosePrice\":\"{}\",\"lastPrice\":\"{}\",\"lastQty\":\"{}\",\"bidPrice\":\"{}\",\"bidQty\":\"{}\",\"askPrice\":\"{}\",\"askQty\":\"{}\",\"openPrice\":\"{}\",\"highPrice\":\"{}\",\"lowPrice\":\"{}\",\"volume\":\"{}\",\"quoteVolume\":\"{}\",\"openTime\":{},\"closeTime\":{now},\"firstId\":{},\"lastId\":{},\"count\":{count}}}",
        s.name,
        fmt8(t.last - t.open),
        (t.last - t.open) as f64 * 100.0 / t.open.max(1) as f64,
        fmt8(w),
        fmt8(t.open),
        fmt8(t.last),
        fmt8(s.step),
        fmt8(b),
        fmt8(bq),
        fmt8(a),
        fmt8(aq),
        fmt8(t.open),
        fmt8(t.high.max(t.last)),
        fmt8(t.low.min(t.last)),
        fmt8(t.volume),
        fmt8(t.quote_volume),
        t.open_time,
        m.trade_id.saturating_sub(count - 1),
        m.trade_id
    )
}

fn account(sh: &Shared, key: &str, p: &Params) -> ApiResult {
    let omit = p.get("omitZeroBalances")? == Some("true");
    let balances = sh.accounts.lock().balances(key);
    let mut out = String::from(concat!(
        "{\"makerCommission\":0,\"takerCommission\":0,\"buyerCommission\":0,\"sellerCommission\":0,",
        "\"commissionRates\":{\"maker\":\"0.00000000\",\"taker\":\"0.00000000\",\"buyer\":\"0.00000000\",\"seller\":\"0.00000000\"},",
        "\"canTrade\":true,\"canWithdraw\":true,\"canDeposit\":true,\"brokered\":false,",
        "\"requireSelfTradePrevention\":false,\"preventSor\":false,"
    ));
    let _ = write!(
        out,
        "\"updateTime\":{},\"accountType\":\"SPOT\",\"balances\":[",
        sh.server_ms()
    );
    let mut first = true;
    for (asset, free, locked) in balances {
        if omit && free == 0 && locked == 0 {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(
            out,
            "{{\"asset\":\"{asset}\",\"free\":\"{}\",\"locked\":\"{}\"}}",
            fmt8(free),
            fmt8(locked)
        );
    }
    out.push_str("],\"permissions\":[\"SPOT\"],\"uid\":1}");
    Ok(out)
}

fn new_order(
    sh: &Shared,
    key: &str,
    p: &Params,
    extra: &mut Extra,
    faults: &Faults,
    test: bool,
) -> ApiResult {
    let i = p.symbol(sh)?.ok_or_else(|| mandatory("symbol"))?;
    let side = match p.req("side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(err(-1117, "Invalid side.")),
    };
    let kind = match p.req("type")? {
        "MARKET" => OrderType::Market,
        "LIMIT" => OrderType::Limit,
        "LIMIT_MAKER" => OrderType::LimitMaker,
        _ => return Err(err(-1116, "Invalid orderType.")),
    };
    let tif = match p.get("timeInForce")? {
        None => None,
        Some("GTC") => Some(Tif::Gtc),
        Some("IOC") => Some(Tif::Ioc),
        Some("FOK") => Some(Tif::Fok),
        Some(_) => return Err(err(-1115, "Invalid timeInForce.")),
    };
    let qty = p.decimal("quantity")?;
    let quote_qty = p.decimal("quoteOrderQty")?;
    let price = p.decimal("price")?;
    let resp = p.get("newOrderRespType")?.unwrap_or(match kind {
        OrderType::Market | OrderType::Limit => "FULL",
        OrderType::LimitMaker => "ACK",
    });
    if !matches!(resp, "ACK" | "RESULT" | "FULL") {
        return Err(err(-1130, "Invalid data sent for a parameter."));
    }
    match kind {
        OrderType::Market => {
            if price.is_some() {
                return Err(err(-1106, "Parameter 'price' sent when not required."));
            }
            if tif.is_some() {
                return Err(err(
                    -1106,
                    "Parameter 'timeInForce' sent when not required.",
                ));
            }
            match (qty, quote_qty) {
                (None, None) => return Err(err(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )),
                (Some(_), Some(_)) => {
                    return Err(err(
                        -1106,
                        "Parameter 'quoteOrderQty' sent when not required.",
                    ))
                }
                (None, Some(_)) if side == Side::Sell => {
                    return Err(err(
                        -1106,
                        "Parameter 'quoteOrderQty' sent when not required.",
                    ))
                }
                _ => {}
            }
        }
        OrderType::Limit | OrderType::LimitMaker => {
            if kind == OrderType::Limit && tif.is_none() {
                return Err(mandatory("timeInForce"));
            }
            if qty.is_none() {
                return Err(mandatory("quantity"));
            }
            if price.is_none() {
                return Err(mandatory("price"));
            }
            if quote_qty.is_some() {
                return Err(err(
                    -1106,
                    "Parameter 'quoteOrderQty' sent when not required.",
                ));
            }
        }
    }
    let client_id = p.get("newClientOrderId")?.map(str::to_string);
    if let Some(c) = &client_id {
        if c.len() > 36
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(err(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_.]{1,36}$'."));
        }
    }
    let order = NewOrder {
        symbol: i,
        side,
        kind,
        tif,
        qty,
        quote_qty,
        price,
        client_id: client_id.clone(),
    };
    let s = &sh.specs[i];
    if test {
        let m = sh.markets[i].lock();
        let r = m.book.best_ask().map(|x| x.0).unwrap_or(s.ref_price);
        super::orders::check_filters(s, &order, r).map_err(|e| err(e.0, e.1))?;
        return Ok("{}".into());
    }
    let now = sh.clock.now_ms();
    let counts = {
        let mut accts = sh.accounts.lock();
        let acct = accts.account(key);
        acct.counts.add(now, &sh.cfg.limits)
    };
    let counts = counts.map_err(|(limit, per)| {
        err(
            -1015,
            format!("Too many new orders; current limit is {limit} orders per {per}."),
        )
    })?;
    extra.order_counts = Some(counts);
    if let Some(c) = &client_id {
        if sh
            .accounts
            .lock()
            .open_orders(key, Some(i))
            .iter()
            .any(|o| &o.client_id == c)
        {
            return Err(err(-2010, "Duplicate order sent."));
        }
    }
    let unknown = sh.dice.hit(faults.unknown_status_rate);
    if unknown {
        Stats::inc(&sh.stats.injected_unknown_status);
        // half of these orders never reach the matching engine
        if sh.dice.roll() < 0.5 {
            return Err(unknown_status());
        }
    }
    let mut m = sh.markets[i].lock();
    let mut tid = m.trade_id;
    let placed = sh
        .accounts
        .lock()
        .place(key, s, &mut m.book, &mut tid, order, now)
        .map_err(|e| err(e.0, e.1));
    m.trade_id = tid;
    let placed = placed?;
    Stats::inc(&sh.stats.orders_placed);
    let public: Vec<(i64, i64, u64, bool)> = placed
        .fills
        .iter()
        .map(|(f, id)| (f.price, f.qty, *id, side == Side::Buy))
        .collect();
    emit_user_trades(sh, i, &mut m, &public, now);
    absorb(&mut m, placed.diff.clone());
    drop(m);
    if unknown {
        return Err(unknown_status());
    }
    Ok(placed_json(s, &placed, resp))
}

fn unknown_status() -> ApiErr {
    ApiErr {
        status: 503,
        code: -1007,
        msg: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.".into(),
    }
}
