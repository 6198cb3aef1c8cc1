//! The request-weight and order budget, checked before a request is sent.
//!
//! Binance counts weight per IP in fixed one-minute windows of its own clock
//! and orders per account in ten-second windows. A request reserves its
//! weight (known in advance from the endpoint table below) and waits while
//! the window's confirmed use plus the reservations in flight would pass the
//! limit. Each response's `X-MBX-USED-WEIGHT-1M` / `X-MBX-ORDER-COUNT-10S`
//! raise the confirmed use to what the exchange counted (traffic from other
//! processes on the same IP included). A 429 or 418 stops every request for
//! its Retry-After, whether or not the budget is enabled.
//!
//! Two slower windows are kept the same way: RAW_REQUESTS (every request
//! counts 1 per five minutes) and the daily ORDERS count (corrected by
//! `X-MBX-ORDER-COUNT-1D`). Both are unlimited until `/exchangeInfo` states them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::errors::{ErrorKind, FtError, FtResult};

const WEIGHT_WINDOW_MS: i64 = 60_000;
const ORDER_WINDOW_MS: i64 = 10_000;
/// RAW_REQUESTS: every request counts 1, per five minutes.
const RAW_WINDOW_MS: i64 = 300_000;
/// The daily ORDERS limit's window.
const DAY_WINDOW_MS: i64 = 86_400_000;
/// Waiting for a new window goes this far past the estimated boundary, so a
/// clock estimate a little early does not land in the old window.
const BOUNDARY_MARGIN_MS: i64 = 150;

/// A request's weight as Binance documents it for spot REST endpoints;
/// `None` for an endpoint the table does not know (it is then counted as 1
/// in advance and corrected by the response headers).
pub fn endpoint_weight(method: &str, path: &str, params: &[(String, String)]) -> Option<u64> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let n_symbols = get("symbols").map(|s| s.matches(',').count() + 1);
    let has_symbol = get("symbol").is_some();
    Some(match (method, path) {
        (_, "/api/v3/ping") | (_, "/api/v3/time") => 1,
        (_, "/api/v3/exchangeInfo") => 20,
        (_, "/api/v3/klines") | (_, "/api/v3/uiKlines") | (_, "/api/v3/avgPrice") => 2,
        (_, "/api/v3/depth") => match get("limit").and_then(|l| l.parse::<u64>().ok()) {
            None | Some(0..=100) => 5,
            Some(101..=500) => 25,
            Some(501..=1000) => 50,
            Some(_) => 250,
        },
        (_, "/api/v3/trades") => 25,
        (_, "/api/v3/ticker/price") | (_, "/api/v3/ticker/bookTicker") => {
            if has_symbol || n_symbols == Some(1) {
                2
            } else {
                4
            }
        }
        (_, "/api/v3/ticker/24hr") => match (has_symbol, n_symbols) {
            (true, _) => 2,
            (false, None) => 80,
            (false, Some(1..=20)) => 2,
            (false, Some(21..=100)) => 40,
            (false, Some(_)) => 80,
        },
        (_, "/api/v3/account") => 20,
        ("GET", "/api/v3/order") => 4,
        (_, "/api/v3/order") | (_, "/api/v3/order/test") => 1,
        (_, "/api/v3/openOrders") => {
            if has_symbol {
                6
            } else {
                80
            }
        }
        (_, "/api/v3/allOrders") => 20,
        (_, "/api/v3/myTrades") => {
            if get("orderId").is_some() {
                5
            } else {
                20
            }
        }
        _ => return None,
    })
}

/// The local clock's milliseconds since the epoch.
pub fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug)]
struct State {
    enabled: bool,
    weight_limit: u64,
    orders_limit: u64,
    window: i64,
    confirmed: u64,
    pending: u64,
    order_window: i64,
    orders_confirmed: u64,
    orders_pending: u64,
    raw_limit: u64,
    raw_window: i64,
    raw_used: u64,
    day_limit: u64,
    day_window: i64,
    day_used: u64,
    blocked_until: Option<Instant>,
}

impl State {
    fn roll(&mut self, server_ms: i64) {
        let r = server_ms.div_euclid(RAW_WINDOW_MS);
        if r > self.raw_window {
            self.raw_window = r;
            self.raw_used = 0;
        }
        let d = server_ms.div_euclid(DAY_WINDOW_MS);
        if d > self.day_window {
            self.day_window = d;
            self.day_used = 0;
        }
        let w = server_ms.div_euclid(WEIGHT_WINDOW_MS);
        if w > self.window {
            self.window = w;
            self.confirmed = 0;
        }
        let o = server_ms.div_euclid(ORDER_WINDOW_MS);
        if o > self.order_window {
            self.order_window = o;
            self.orders_confirmed = 0;
        }
    }
}

/// A snapshot of the budget for callers and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub enabled: bool,
    pub weight_limit: u64,
    pub orders_limit: u64,
    pub weight_used: u64,
    pub weight_pending: u64,
    pub orders_used: u64,
    pub orders_pending: u64,
    pub raw_limit: u64,
    pub raw_used: u64,
    pub orders_day_limit: u64,
    pub orders_day_used: u64,
    pub blocked_for: f64,
    pub waits: u64,
}

pub struct Budget {
    st: Mutex<State>,
    changed: Notify,
    /// Server time minus local time, in ms.
    pub offset_ms: AtomicI64,
    waits: std::sync::atomic::AtomicU64,
}

impl Budget {
    pub fn new(enabled: bool, weight_limit: u64, orders_limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            st: Mutex::new(State {
                enabled,
                weight_limit,
                orders_limit,
                window: i64::MIN,
                confirmed: 0,
                pending: 0,
                order_window: i64::MIN,
                orders_confirmed: 0,
                orders_pending: 0,
                raw_limit: u64::MAX,
                raw_window: i64::MIN,
                raw_used: 0,
                day_limit: u64::MAX,
                day_window: i64::MIN,
                day_used: 0,
                blocked_until: None,
            }),
            changed: Notify::new(),
            offset_ms: AtomicI64::new(0),
            waits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The exchange's clock as estimated here.
    pub fn server_ms(&self) -> i64 {
        local_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Lowers the limits (never raises them past what was configured).
    pub fn set_limits(&self, weight_limit: u64, orders_limit: u64) {
        let mut st = self.st.lock();
        st.weight_limit = weight_limit;
        st.orders_limit = orders_limit;
        drop(st);
        self.changed.notify_waiters();
    }

    /// The RAW_REQUESTS (per five minutes) and daily ORDERS limits.
    pub fn set_slow_limits(&self, raw: Option<u64>, orders_per_day: Option<u64>) {
        let mut st = self.st.lock();
        st.raw_limit = raw.unwrap_or(u64::MAX);
        st.day_limit = orders_per_day.unwrap_or(u64::MAX);
        drop(st);
        self.changed.notify_waiters();
    }

    pub fn limits(&self) -> (u64, u64) {
        let st = self.st.lock();
        (st.weight_limit, st.orders_limit)
    }

    /// Stops all sending for `d` (a 429 or 418's Retry-After).
    pub fn block(&self, d: Duration, weight_exhausted: bool) {
        let mut st = self.st.lock();
        let until = Instant::now() + d;
        st.blocked_until = Some(st.blocked_until.map_or(until, |u| u.max(until)));
        if weight_exhausted {
            st.confirmed = st.confirmed.max(st.weight_limit);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut st = self.st.lock();
        st.roll(self.server_ms());
        let now = Instant::now();
        Snapshot {
            enabled: st.enabled,
            weight_limit: st.weight_limit,
            orders_limit: st.orders_limit,
            weight_used: st.confirmed,
            weight_pending: st.pending,
            orders_used: st.orders_confirmed,
            orders_pending: st.orders_pending,
            raw_limit: st.raw_limit,
            raw_used: st.raw_used,
            orders_day_limit: st.day_limit,
            orders_day_used: st.day_used,
            blocked_for: st
                .blocked_until
                .map_or(0.0, |u| u.saturating_duration_since(now).as_secs_f64()),
            waits: self.waits.load(Ordering::Relaxed),
        }
    }

    /// Waits until `weight` and `orders` fit in the current windows and
    /// reserves them. Dropping the future while it waits reserves nothing.
    pub async fn reserve(self: &Arc<Self>, weight: u64, orders: u64) -> FtResult<Reservation> {
        let mut counted_wait = false;
        loop {
            let notified = self.changed.notified();
            let wait = {
                let mut st = self.st.lock();
                let server = self.server_ms();
                st.roll(server);
                let now = Instant::now();
                if let Some(u) = st.blocked_until.filter(|u| *u > now) {
                    u - now
                } else if !st.enabled {
                    st.pending += weight;
                    st.orders_pending += orders;
                    st.raw_used += 1;
                    st.day_used += orders;
                    return Ok(self.reservation(weight, orders, &st));
                } else {
                    if weight > st.weight_limit || orders > st.orders_limit {
                        return Err(FtError::new(
                            ErrorKind::Exchange,
                            format!(
                                "a request of weight {weight} cannot fit the budget of {} per minute",
                                st.weight_limit
                            ),
                        ));
                    }
                    let w_ok = st.confirmed + st.pending + weight <= st.weight_limit;
                    let o_ok = orders == 0
                        || st.orders_confirmed + st.orders_pending + orders <= st.orders_limit;
                    let r_ok = st.raw_used < st.raw_limit;
                    let d_ok = orders == 0 || st.day_used.saturating_add(orders) <= st.day_limit;
                    if w_ok && o_ok && r_ok && d_ok {
                        st.pending += weight;
                        st.orders_pending += orders;
                        st.raw_used += 1;
                        st.day_used += orders;
                        return Ok(self.reservation(weight, orders, &st));
                    }
                    let to = |len: i64| {
                        let next = (server.div_euclid(len) + 1) * len + BOUNDARY_MARGIN_MS;
                        Duration::from_millis((next - server).max(1) as u64)
                    };
                    if !d_ok {
                        to(DAY_WINDOW_MS)
                    } else if !r_ok {
                        to(RAW_WINDOW_MS)
                    } else if !w_ok {
                        to(WEIGHT_WINDOW_MS)
                    } else {
                        to(ORDER_WINDOW_MS)
                    }
                }
            };
            if !counted_wait {
                counted_wait = true;
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            // a released reservation or new limits may let this one through
            // before the window ends
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn reservation(self: &Arc<Self>, weight: u64, orders: u64, st: &State) -> Reservation {
        Reservation {
            budget: self.clone(),
            weight,
            orders,
            window: st.window,
            raw_window: st.raw_window,
            day_window: st.day_window,
            sent: false,
            settled: false,
        }
    }
}

/// Weight and orders held for one request. Dropped before `sent()`, it is
/// returned whole; after sending it stays counted until a response's headers
/// correct the window's use (`settle`).
pub struct Reservation {
    budget: Arc<Budget>,
    weight: u64,
    orders: u64,
    window: i64,
    raw_window: i64,
    day_window: i64,
    sent: bool,
    settled: bool,
}

impl Reservation {
    pub fn sent(&mut self) {
        self.sent = true;
    }

    /// The response arrived: `used_weight`, `order_count` (10 s) and
    /// `day_orders` are the exchange's headers, when present.
    pub fn settle(
        mut self,
        used_weight: Option<u64>,
        order_count: Option<u64>,
        day_orders: Option<u64>,
    ) {
        self.settled = true;
        let mut st = self.budget.st.lock();
        if let Some(d) = day_orders {
            if st.day_window == self.day_window {
                st.day_used = st.day_used.max(d);
            }
        }
        st.pending = st.pending.saturating_sub(self.weight);
        st.orders_pending = st.orders_pending.saturating_sub(self.orders);
        let same_window = st.window == self.window;
        match used_weight {
            Some(u) if same_window => st.confirmed = st.confirmed.max(u),
            Some(_) => {}
            None if same_window => st.confirmed += self.weight,
            None => {}
        }
        match order_count {
            Some(c) => st.orders_confirmed = st.orders_confirmed.max(c),
            None => st.orders_confirmed += self.orders,
        }
        drop(st);
        self.budget.changed.notify_waiters();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut st = self.budget.st.lock();
        st.pending = st.pending.saturating_sub(self.weight);
        st.orders_pending = st.orders_pending.saturating_sub(self.orders);
        if self.sent && st.window == self.window {
            // sent without an answer: the exchange may have counted it
            st.confirmed += self.weight;
            st.orders_confirmed += self.orders;
        }
        if !self.sent {
            // never sent: the slow windows get their count back
            if st.raw_window == self.raw_window {
                st.raw_used = st.raw_used.saturating_sub(1);
            }
            if st.day_window == self.day_window {
                st.day_used = st.day_used.saturating_sub(self.orders);
            }
        }
        drop(st);
        self.budget.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn raw_requests_and_daily_orders_are_windows_too() {
        let b = Budget::new(true, 6000, 100);
        b.set_slow_limits(Some(3), Some(2));
        let r1 = b.reserve(1, 1).await.unwrap();
        let r2 = b.reserve(1, 1).await.unwrap();
        // the third order would pass the day's 2; a plain request still fits
        let waiting = tokio::time::timeout(Duration::from_millis(30), b.reserve(1, 1)).await;
        assert!(waiting.is_err());
        let r3 = b.reserve(1, 0).await.unwrap();
        // four requests would pass RAW_REQUESTS' 3 per five minutes
        let waiting = tokio::time::timeout(Duration::from_millis(30), b.reserve(1, 0)).await;
        assert!(waiting.is_err());
        // a reservation dropped unsent gives its count back
        drop(r3);
        let s = b.snapshot();
        assert_eq!((s.raw_used, s.orders_day_used), (2, 2));
        let _r4 = b.reserve(1, 0).await.unwrap();
        r1.settle(None, None, Some(5));
        assert_eq!(b.snapshot().orders_day_used, 5);
        drop(r2);
    }

    #[test]
    fn weights_follow_the_documented_table() {
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(endpoint_weight("GET", "/api/v3/klines", &[]), Some(2));
        assert_eq!(
            endpoint_weight("GET", "/api/v3/depth", &p("limit", "5000")),
            Some(250)
        );
        assert_eq!(endpoint_weight("GET", "/api/v3/depth", &[]), Some(5));
        assert_eq!(endpoint_weight("GET", "/api/v3/ticker/24hr", &[]), Some(80));
        assert_eq!(endpoint_weight("GET", "/api/v3/order", &[]), Some(4));
        assert_eq!(endpoint_weight("POST", "/api/v3/order", &[]), Some(1));
        assert_eq!(endpoint_weight("GET", "/nope", &[]), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unsent_reservation_is_returned_and_sent_one_stays() {
        let b = Budget::new(true, 10, 5);
        let r = b.reserve(6, 0).await.unwrap();
        assert_eq!(b.snapshot().weight_pending, 6);
        drop(r);
        assert_eq!(b.snapshot().weight_pending, 0);
        assert_eq!(b.snapshot().weight_used, 0);
        let mut r = b.reserve(6, 1).await.unwrap();
        r.sent();
        drop(r);
        let s = b.snapshot();
        assert_eq!((s.weight_used, s.orders_used), (6, 1));
        // the headers correct the use upward (another process's traffic)
        let r = b.reserve(2, 0).await.unwrap();
        r.settle(Some(9), None, None);
        assert_eq!(b.snapshot().weight_used, 9);
        // a request that no longer fits waits rather than being sent
        let waiting = tokio::time::timeout(Duration::from_millis(30), b.reserve(2, 0)).await;
        assert!(waiting.is_err());
        assert_eq!(b.snapshot().weight_pending, 0);
        assert!(b.reserve(11, 0).await.is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn block_stops_even_a_disabled_budget() {
        let b = Budget::new(false, 10, 5);
        b.block(Duration::from_millis(80), false);
        let t = Instant::now();
        drop(b.reserve(1, 0).await.unwrap());
        assert!(t.elapsed() >= Duration::from_millis(70));
    }
}
