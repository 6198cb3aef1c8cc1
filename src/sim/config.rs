//! The simulated exchange's settings, its clock, fault knobs and counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::limits::LimitConfig;

/// Everything a simulated exchange is started with. Defaults live in the
/// Python class users see (`ferrotick.sim.SimulatedExchange`).
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub symbols: Vec<String>,
    pub seed: u64,
    /// Simulated time (ms since 1970) at start.
    pub epoch_ms: i64,
    /// Simulated milliseconds per wall millisecond.
    pub time_scale: f64,
    pub host: String,
    pub port: u16,
    /// API key → secret.
    pub api_keys: Vec<(String, String)>,
    /// Starting balances of every account: asset → amount in 1e-8 units.
    pub balances: Vec<(String, i64)>,
    pub limits: LimitConfig,
    /// Levels per side of each book (at most 5000).
    pub book_levels: usize,
    /// Trades per wall second per symbol on the streams.
    pub trade_rate: f64,
    /// Simulated durations of the WebSocket rules.
    pub ws_ping_interval_ms: i64,
    pub ws_pong_timeout_ms: i64,
    pub ws_lifetime_ms: i64,
    pub ws_max_streams: usize,
    pub ws_max_incoming_per_s: u32,
    pub faults: Faults,
}

/// Injected faults; settable at start and changed live.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Added to every REST response, in wall milliseconds.
    pub latency_ms: f64,
    /// A uniform extra delay in [0, jitter_ms).
    pub jitter_ms: f64,
    /// Fraction of REST requests answered with a 5xx before being processed.
    pub error_rate: f64,
    /// Fraction of orders answered 503 -1007 "execution status unknown"
    /// (half of them were executed, half not).
    pub unknown_status_rate: f64,
    /// Fraction of responses whose connection is reset mid-body.
    pub reset_rate: f64,
    /// Fraction of responses whose JSON body is cut short.
    pub truncate_rate: f64,
    /// Fraction of responses whose body is not JSON.
    pub malformed_rate: f64,
    /// Fraction of WebSocket messages after which the connection drops.
    pub ws_drop_rate: f64,
    /// Fraction of depth diff events not sent (leaving an id gap).
    pub depth_skip_rate: f64,
    /// Added to the server's clock (`/time`, timestamps, recvWindow checks).
    pub clock_offset_ms: i64,
    /// 503 on every request and refused WebSocket upgrades.
    pub maintenance: bool,
}

/// The simulated clock: `epoch` at start, running `scale` times wall time.
pub struct Clock {
    epoch_ms: i64,
    start: Instant,
    scale: f64,
}

impl Clock {
    pub fn new(epoch_ms: i64, scale: f64) -> Clock {
        Clock {
            epoch_ms,
            start: Instant::now(),
            scale,
        }
    }

    /// Simulated milliseconds since 1970 (without any fault offset).
    pub fn now_ms(&self) -> i64 {
        self.epoch_ms + (self.start.elapsed().as_secs_f64() * 1000.0 * self.scale) as i64
    }

    /// The wall time that `sim_ms` simulated milliseconds take.
    pub fn wall(&self, sim_ms: i64) -> Duration {
        Duration::from_secs_f64((sim_ms.max(0) as f64 / 1000.0) / self.scale)
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// `Retry-After` in whole wall seconds (at least 1) for a simulated wait.
    pub fn retry_after_secs(&self, sim_ms: i64) -> u64 {
        (self.wall(sim_ms).as_secs_f64().ceil() as u64).max(1)
    }
}

/// Declares the counters read by `stats()`.
macro_rules! counters {
    ($($name:ident),+ $(,)?) => {
        /// What the server served and what it injected.
        #[derive(Default)]
        pub struct Stats {
            $(pub $name: AtomicU64,)+
        }

        impl Stats {
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)+]
            }
        }
    };
}

counters! {
    http_requests,
    http_errors_4xx,
    http_429,
    http_418,
    orders_placed,
    orders_filled,
    trades,
    klines_generated,
    klines_cache_hits,
    ws_connections,
    ws_open,
    ws_messages_sent,
    ws_messages_received,
    ws_lagged,
    ws_pings,
    ws_pong_timeouts,
    ws_lifetime_closes,
    ws_rate_closes,
    replay_frames,
    injected_latency,
    injected_5xx,
    injected_unknown_status,
    injected_resets,
    injected_truncated,
    injected_malformed,
    injected_ws_drops,
    injected_depth_skips,
    injected_maintenance,
}

impl Stats {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A shared pseudo-random source for fault decisions, seeded.
pub struct Dice(AtomicU64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(AtomicU64::new(seed ^ 0xD1CE))
    }

    /// A number in [0, 1).
    pub fn roll(&self) -> f64 {
        let n = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        super::price::unit(&[n])
    }

    /// True with probability `p`.
    pub fn hit(&self, p: f64) -> bool {
        p > 0.0 && self.roll() < p
    }
}

/// The names `set_faults()` takes.
pub const FAULT_NAMES: &[&str] = &[
    "latency_ms",
    "jitter_ms",
    "error_rate",
    "unknown_status_rate",
    "reset_rate",
    "truncate_rate",
    "malformed_rate",
    "ws_drop_rate",
    "depth_skip_rate",
    "clock_offset_ms",
    "maintenance",
];

impl Faults {
    /// Sets one knob by name; rates must lie in [0, 1], delays be >= 0.
    pub fn set(&mut self, name: &str, value: f64) -> crate::errors::FtResult<()> {
        use crate::errors::FtError;
        if !value.is_finite() {
            return Err(FtError::config(format!(
                "{name}: must be a finite number, got {value}"
            )));
        }
        let rate = |v: f64| -> crate::errors::FtResult<f64> {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(FtError::config(format!(
                    "{name}: a fraction between 0 and 1 is expected, got {v}"
                )))
            }
        };
        let delay = |v: f64| -> crate::errors::FtResult<f64> {
            if (0.0..=600_000.0).contains(&v) {
                Ok(v)
            } else {
                Err(FtError::config(format!(
                    "{name}: milliseconds between 0 and 600000 are expected, got {v}"
                )))
            }
        };
        match name {
            "latency_ms" => self.latency_ms = delay(value)?,
            "jitter_ms" => self.jitter_ms = delay(value)?,
            "error_rate" => self.error_rate = rate(value)?,
            "unknown_status_rate" => self.unknown_status_rate = rate(value)?,
            "reset_rate" => self.reset_rate = rate(value)?,
            "truncate_rate" => self.truncate_rate = rate(value)?,
            "malformed_rate" => self.malformed_rate = rate(value)?,
            "ws_drop_rate" => self.ws_drop_rate = rate(value)?,
            "depth_skip_rate" => self.depth_skip_rate = rate(value)?,
            "clock_offset_ms" => self.clock_offset_ms = value as i64,
            "maintenance" => self.maintenance = value != 0.0,
            _ => {
                return Err(FtError::config(format!(
                    "unknown fault {name:?}; known: {}",
                    FAULT_NAMES.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// Every knob by name, as numbers (maintenance as 0 or 1).
    pub fn values(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("latency_ms", self.latency_ms),
            ("jitter_ms", self.jitter_ms),
            ("error_rate", self.error_rate),
            ("unknown_status_rate", self.unknown_status_rate),
            ("reset_rate", self.reset_rate),
            ("truncate_rate", self.truncate_rate),
            ("malformed_rate", self.malformed_rate),
            ("ws_drop_rate", self.ws_drop_rate),
            ("depth_skip_rate", self.depth_skip_rate),
            ("clock_offset_ms", self.clock_offset_ms as f64),
            ("maintenance", if self.maintenance { 1.0 } else { 0.0 }),
        ]
    }
}
