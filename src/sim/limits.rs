//! Binance spot's request limits, in one table, and the per-IP and
//! per-account counters that enforce them.
//!
//! Source: Binance Spot API documentation, "REST API → LIMITS" (IP limits,
//! 429/418, Retry-After, X-MBX-USED-WEIGHT-1M, X-MBX-ORDER-COUNT-*), the
//! `rateLimits` of `exchangeInfo`, and the "Weight" line of each endpoint, as
//! published on 2026-11. The values below are the documented defaults:
//!
//! | limit | value |
//! |---|---|
//! | REQUEST_WEIGHT | 6000 per 1 minute, per IP |
//! | RAW_REQUESTS | 61000 per 5 minutes, per IP |
//! | ORDERS | 100 per 10 seconds and 200000 per day, per account |
//! | 418 bans | 2 minutes, doubling for repeat offenders, at most 3 days |
//!
//! Windows are fixed and aligned on the simulated clock (a minute window
//! resets at each whole simulated minute), and the simulated clock runs at
//! `time_scale` times wall time, so every window and ban is `time_scale`
//! times shorter in wall time.

use std::collections::VecDeque;

pub const REQUEST_WEIGHT_1M: u64 = 6000;
pub const RAW_REQUESTS_5M: u64 = 61000;
pub const ORDERS_10S: u64 = 100;
pub const ORDERS_1D: u64 = 200_000;
/// The first ban lasts two minutes; each later one twice the one before.
pub const BAN_FIRST_MS: i64 = 120_000;
pub const BAN_MAX_MS: i64 = 3 * 86_400_000;
/// Violations (429s, and requests sent while a 429's Retry-After runs)
/// counted over this window for the ban.
pub const VIOLATION_WINDOW_MS: i64 = 60_000;

/// What a request's weight depends on.
#[derive(Clone, Copy, Debug, Default)]
pub struct WeightArgs {
    /// `symbol` was sent.
    pub symbol: bool,
    /// Number of symbols in `symbols=[...]` (0 when not sent).
    pub symbols: usize,
    /// `limit` (for /depth), if sent.
    pub limit: Option<u64>,
    /// `orderId` was sent (myTrades).
    pub order_id: bool,
}

/// The weight of one request, per endpoint (`METHOD /path`). `None` for a
/// path the table does not know (it then weighs 1).
pub fn weight(method: &str, path: &str, a: WeightArgs) -> Option<u64> {
    Some(match (method, path) {
        (_, "/api/v3/ping") | (_, "/api/v3/time") => 1,
        (_, "/api/v3/exchangeInfo") => 20,
        (_, "/api/v3/klines") | (_, "/api/v3/uiKlines") => 2,
        (_, "/api/v3/avgPrice") => 2,
        (_, "/api/v3/depth") => match a.limit.unwrap_or(100) {
            0..=100 => 5,
            101..=500 => 25,
            501..=1000 => 50,
            _ => 250,
        },
        (_, "/api/v3/trades") => 25,
        (_, "/api/v3/ticker/price") | (_, "/api/v3/ticker/bookTicker") => {
            if a.symbol || a.symbols == 1 {
                2
            } else {
                4
            }
        }
        (_, "/api/v3/ticker/24hr") => {
            if a.symbol {
                2
            } else if a.symbols == 0 {
                80
            } else {
                match a.symbols {
                    1..=20 => 2,
                    21..=100 => 40,
                    _ => 80,
                }
            }
        }
        (_, "/api/v3/account") => 20,
        ("POST", "/api/v3/order") => 1,
        ("DELETE", "/api/v3/order") => 1,
        ("GET", "/api/v3/order") => 4,
        ("POST", "/api/v3/order/test") => 1,
        (_, "/api/v3/openOrders") => {
            if a.symbol {
                6
            } else {
                80
            }
        }
        (_, "/api/v3/allOrders") => 20,
        (_, "/api/v3/myTrades") => {
            if a.order_id {
                5
            } else {
                20
            }
        }
        (_, "/sapi/v1/system/status") => 1,
        _ => return None,
    })
}

/// The outcome of admitting a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Admit {
    /// Served; the weight used in the current minute after this request.
    Ok { used: u64 },
    /// 429 with -1003; `retry_ms` simulated milliseconds to wait.
    TooMuchWeight { used: u64, retry_ms: i64 },
    /// 418 with -1003; banned until `until_ms` (simulated).
    Banned { used: u64, until_ms: i64 },
}

/// The limit settings (the documented defaults unless a test changes them).
#[derive(Clone, Copy, Debug)]
pub struct LimitConfig {
    pub enabled: bool,
    pub weight_1m: u64,
    pub raw_5m: u64,
    pub orders_10s: u64,
    pub orders_1d: u64,
    /// Violations within a minute that earn a ban.
    pub ban_after: u32,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            enabled: true,
            weight_1m: REQUEST_WEIGHT_1M,
            raw_5m: RAW_REQUESTS_5M,
            orders_10s: ORDERS_10S,
            orders_1d: ORDERS_1D,
            ban_after: 3,
        }
    }
}

/// Fixed-window counter.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    index: i64,
    count: u64,
}

impl Window {
    fn current(&mut self, now: i64, len: i64) -> &mut u64 {
        let i = now.div_euclid(len);
        if i != self.index {
            self.index = i;
            self.count = 0;
        }
        &mut self.count
    }

    fn peek(&self, now: i64, len: i64) -> u64 {
        if now.div_euclid(len) == self.index {
            self.count
        } else {
            0
        }
    }
}

/// The counters of one IP address.
#[derive(Debug, Default)]
pub struct IpState {
    weight: Window,
    raw: Window,
    retry_until: i64,
    violations: VecDeque<i64>,
    ban_until: i64,
    bans: u32,
}

impl IpState {
    pub fn used_weight(&self, now: i64) -> u64 {
        self.weight.peek(now, 60_000)
    }

    fn violate(&mut self, now: i64, cfg: &LimitConfig) -> Option<i64> {
        self.violations.push_back(now);
        while self
            .violations
            .front()
            .is_some_and(|t| *t <= now - VIOLATION_WINDOW_MS)
        {
            self.violations.pop_front();
        }
        if self.violations.len() as u32 >= cfg.ban_after.max(1) {
            self.violations.clear();
            self.bans += 1;
            let len = BAN_FIRST_MS
                .saturating_mul(1i64 << (self.bans - 1).min(20))
                .min(BAN_MAX_MS);
            self.ban_until = now + len;
            return Some(self.ban_until);
        }
        None
    }

    /// Admits a request of `weight` at simulated time `now`.
    pub fn admit(&mut self, now: i64, weight: u64, cfg: &LimitConfig) -> Admit {
        if !cfg.enabled {
            let used = self.weight.current(now, 60_000);
            *used += weight;
            return Admit::Ok { used: *used };
        }
        if now < self.ban_until {
            return Admit::Banned {
                used: self.used_weight(now),
                until_ms: self.ban_until,
            };
        }
        if now < self.retry_until {
            let used = self.used_weight(now);
            return match self.violate(now, cfg) {
                Some(until_ms) => Admit::Banned { used, until_ms },
                None => Admit::TooMuchWeight {
                    used,
                    retry_ms: self.retry_until - now,
                },
            };
        }
        let raw = {
            let r = self.raw.current(now, 300_000);
            *r += 1;
            *r
        };
        let used = {
            let w = self.weight.current(now, 60_000);
            *w += weight;
            *w
        };
        let over_weight = used > cfg.weight_1m;
        let over_raw = raw > cfg.raw_5m;
        if over_weight || over_raw {
            let len = if over_raw { 300_000 } else { 60_000 };
            self.retry_until = (now.div_euclid(len) + 1) * len;
            return match self.violate(now, cfg) {
                Some(until_ms) => Admit::Banned { used, until_ms },
                None => Admit::TooMuchWeight {
                    used,
                    retry_ms: self.retry_until - now,
                },
            };
        }
        Admit::Ok { used }
    }
}

/// The order counters of one account.
#[derive(Debug, Default)]
pub struct OrderCounts {
    ten_s: Window,
    day: Window,
}

impl OrderCounts {
    /// Counts a new order; `Err((limit, interval))` names the limit broken.
    pub fn add(&mut self, now: i64, cfg: &LimitConfig) -> Result<(u64, u64), (u64, &'static str)> {
        let t = *self.ten_s.current(now, 10_000);
        let d = *self.day.current(now, 86_400_000);
        if cfg.enabled {
            if t >= cfg.orders_10s {
                return Err((cfg.orders_10s, "10 SECOND"));
            }
            if d >= cfg.orders_1d {
                return Err((cfg.orders_1d, "1 DAY"));
            }
        }
        *self.ten_s.current(now, 10_000) += 1;
        *self.day.current(now, 86_400_000) += 1;
        Ok((t + 1, d + 1))
    }

    pub fn current(&self, now: i64) -> (u64, u64) {
        (self.ten_s.peek(now, 10_000), self.day.peek(now, 86_400_000))
    }
}

/// `exchangeInfo`'s `rateLimits` array.
pub fn rate_limits_json(cfg: &LimitConfig) -> String {
    format!(
        concat!(
            "[{{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":{}}},",
            "{{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":{}}},",
            "{{\"rateLimitType\":\"ORDERS\",\"interval\":\"DAY\",\"intervalNum\":1,\"limit\":{}}},",
            "{{\"rateLimitType\":\"RAW_REQUESTS\",\"interval\":\"MINUTE\",\"intervalNum\":5,\"limit\":{}}}]"
        ),
        cfg.weight_1m, cfg.orders_10s, cfg.orders_1d, cfg.raw_5m
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_table() {
        let w = |m, p, a| weight(m, p, a).unwrap();
        let d = WeightArgs::default();
        assert_eq!(w("GET", "/api/v3/klines", d), 2);
        assert_eq!(w("GET", "/api/v3/exchangeInfo", d), 20);
        for (l, x) in [
            (5, 5),
            (100, 5),
            (101, 25),
            (500, 25),
            (1000, 50),
            (5000, 250),
        ] {
            let a = WeightArgs {
                limit: Some(l),
                ..d
            };
            assert_eq!(w("GET", "/api/v3/depth", a), x);
        }
        let sym = WeightArgs { symbol: true, ..d };
        assert_eq!(w("GET", "/api/v3/ticker/price", sym), 2);
        assert_eq!(w("GET", "/api/v3/ticker/price", d), 4);
        assert_eq!(w("GET", "/api/v3/ticker/24hr", sym), 2);
        assert_eq!(w("GET", "/api/v3/ticker/24hr", d), 80);
        let n = |k| WeightArgs { symbols: k, ..d };
        assert_eq!(w("GET", "/api/v3/ticker/24hr", n(20)), 2);
        assert_eq!(w("GET", "/api/v3/ticker/24hr", n(21)), 40);
        assert_eq!(w("GET", "/api/v3/ticker/24hr", n(101)), 80);
        assert_eq!(w("GET", "/api/v3/openOrders", sym), 6);
        assert_eq!(w("GET", "/api/v3/openOrders", d), 80);
        assert_eq!(w("GET", "/api/v3/account", d), 20);
        assert_eq!(w("GET", "/api/v3/order", d), 4);
        assert_eq!(w("POST", "/api/v3/order", d), 1);
        assert!(weight("GET", "/nope", d).is_none());
    }

    #[test]
    fn over_the_limit_then_violations_then_doubling_bans() {
        let cfg = LimitConfig::default();
        let mut ip = IpState::default();
        let t = 1_000 * 60_000 + 10_000;
        assert_eq!(ip.admit(t, 5990, &cfg), Admit::Ok { used: 5990 });
        assert_eq!(ip.admit(t, 10, &cfg), Admit::Ok { used: 6000 });
        assert_eq!(
            ip.admit(t + 1, 1, &cfg),
            Admit::TooMuchWeight {
                used: 6001,
                retry_ms: 49_999
            }
        );
        assert!(matches!(
            ip.admit(t + 2, 1, &cfg),
            Admit::TooMuchWeight { .. }
        ));
        assert_eq!(
            ip.admit(t + 3, 1, &cfg),
            Admit::Banned {
                used: 6001,
                until_ms: t + 3 + 120_000
            }
        );
        assert!(matches!(
            ip.admit(t + 60_000, 1, &cfg),
            Admit::Banned { .. }
        ));
        // after the ban, the next offence bans for twice as long
        let t2 = t + 3 + 120_000;
        assert!(matches!(ip.admit(t2, 1, &cfg), Admit::Ok { .. }));
        assert!(matches!(
            ip.admit(t2, 7000, &cfg),
            Admit::TooMuchWeight { .. }
        ));
        assert!(matches!(
            ip.admit(t2 + 1, 1, &cfg),
            Admit::TooMuchWeight { .. }
        ));
        assert_eq!(
            ip.admit(t2 + 2, 1, &cfg),
            Admit::Banned {
                used: 7001,
                until_ms: t2 + 2 + 240_000
            }
        );
        // bans are capped at three days
        ip.bans = 30;
        ip.ban_until = 0;
        ip.retry_until = i64::MAX;
        ip.violations.clear();
        ip.admit(t2 + 1_000_000, 1, &cfg);
        ip.admit(t2 + 1_000_001, 1, &cfg);
        match ip.admit(t2 + 1_000_002, 1, &cfg) {
            Admit::Banned { until_ms, .. } => assert_eq!(until_ms, t2 + 1_000_002 + BAN_MAX_MS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_counts_per_ten_seconds() {
        let cfg = LimitConfig {
            orders_10s: 3,
            ..LimitConfig::default()
        };
        let mut c = OrderCounts::default();
        for i in 1..=3 {
            assert_eq!(c.add(20_000, &cfg), Ok((i, i)));
        }
        assert_eq!(c.add(20_001, &cfg), Err((3, "10 SECOND")));
        assert_eq!(c.add(30_000, &cfg), Ok((1, 4)));
    }
}
