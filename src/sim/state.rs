//! The state one simulated exchange shares between its tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::book::{Book, Diff};
use super::config::{Clock, Dice, Faults, SimConfig, Stats};
use super::limits::IpState;
use super::orders::Accounts;
use super::price::{PriceModel, SymbolSpec};

/// The kinds of market stream, per symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Trade,
    AggTrade,
    /// Index into `price::INTERVALS`.
    Kline(u8),
    Ticker,
    BookTicker,
    Depth,
    Depth100,
}

pub const KINDS: usize = 7 + 15;

impl Kind {
    fn slot(self) -> usize {
        match self {
            Kind::Trade => 0,
            Kind::AggTrade => 1,
            Kind::Ticker => 2,
            Kind::BookTicker => 3,
            Kind::Depth => 4,
            Kind::Depth100 => 5,
            Kind::Kline(i) => 6 + i as usize,
        }
    }

    /// The stream's name after `<symbol>@`.
    pub fn suffix(self) -> String {
        match self {
            Kind::Trade => "trade".into(),
            Kind::AggTrade => "aggTrade".into(),
            Kind::Ticker => "ticker".into(),
            Kind::BookTicker => "bookTicker".into(),
            Kind::Depth => "depth".into(),
            Kind::Depth100 => "depth@100ms".into(),
            Kind::Kline(i) => format!("kline_{}", super::price::INTERVALS[i as usize]),
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "trade" => Kind::Trade,
            "aggTrade" => Kind::AggTrade,
            "ticker" => Kind::Ticker,
            "bookTicker" => Kind::BookTicker,
            "depth" | "depth@1000ms" => Kind::Depth,
            "depth@100ms" => Kind::Depth100,
            _ => {
                let i = s.strip_prefix("kline_")?;
                Kind::Kline(super::price::INTERVALS.iter().position(|x| *x == i)? as u8)
            }
        })
    }
}

/// One serialised market event.
pub struct Event {
    pub symbol: usize,
    pub kind: Kind,
    pub raw: Utf8Bytes,
    combined: OnceLock<Utf8Bytes>,
}

impl Event {
    pub fn new(symbol: usize, kind: Kind, raw: String) -> Event {
        Event {
            symbol,
            kind,
            raw: raw.into(),
            combined: OnceLock::new(),
        }
    }

    /// `{"stream":"<name>","data":<raw>}`, built once for all connections.
    pub fn combined(&self, name: &str) -> Utf8Bytes {
        self.combined
            .get_or_init(|| {
                format!("{{\"stream\":\"{name}\",\"data\":{}}}", self.raw.as_str()).into()
            })
            .clone()
    }
}

/// The mutable market of one symbol.
pub struct Market {
    pub book: Book,
    pub trade_id: u64,
    pub agg_id: u64,
    pub last_price: i64,
    pub last_ms: i64,
    /// Book changes not yet sent on `@depth@100ms` / `@depth`.
    pub pending_100: Diff,
    pub pending_1000: Diff,
    pub last_flush_100: i64,
    pub last_flush_1000: i64,
    pub last_kline_push: i64,
    /// Wall time of the last in-progress kline push (pushes are at most every
    /// `KLINE_WALL_EVERY` of wall time, however fast the clock runs).
    pub last_kline_wall: std::time::Instant,
    /// Per interval, the open time (s) of the bar last pushed; -1 while the
    /// interval has no subscriber.
    pub kline_bar: Vec<i64>,
    pub last_ticker_push: i64,
}

pub struct Shared {
    pub cfg: SimConfig,
    pub clock: Clock,
    pub specs: Vec<SymbolSpec>,
    pub by_name: HashMap<String, usize>,
    pub prices: PriceModel,
    pub markets: Vec<Mutex<Market>>,
    pub accounts: Mutex<Accounts>,
    pub secrets: HashMap<String, String>,
    pub ips: Mutex<HashMap<IpAddr, IpState>>,
    pub faults: RwLock<Faults>,
    pub stats: Stats,
    pub dice: Dice,
    pub events: broadcast::Sender<Arc<Event>>,
    /// Subscribers per (symbol, kind), so unwatched streams cost nothing.
    wanted: Vec<AtomicUsize>,
    pub frozen: AtomicBool,
    /// Set once to stop everything; tasks wait with `wait_for` (not `changed`),
    /// so a task that subscribes after the stop still sees it.
    pub shutdown: watch::Sender<bool>,
    pub klines_cache: Mutex<HashMap<String, Bytes>>,
    /// Frames sent by replay connections (pre-serialised).
    pub replay: RwLock<Arc<Vec<Bytes>>>,
}

impl Shared {
    pub fn new(cfg: SimConfig) -> Result<Shared, String> {
        let mut specs = Vec::new();
        let mut by_name = HashMap::new();
        for name in &cfg.symbols {
            if by_name.contains_key(name) {
                continue;
            }
            let spec = SymbolSpec::new(specs.len(), name, cfg.seed).ok_or_else(|| {
                format!("symbol {name:?} is not an upper-case symbol ending in a known quote asset (USDT, BTC, ...)")
            })?;
            by_name.insert(name.clone(), spec.index);
            specs.push(spec);
        }
        if specs.is_empty() {
            return Err("symbols must name at least one symbol".into());
        }
        let clock = Clock::new(cfg.epoch_ms, cfg.time_scale);
        let prices = PriceModel::new(cfg.seed);
        let now = clock.now_ms();
        let markets = specs
            .iter()
            .map(|s| {
                let price = prices.price_at(s, now);
                let first = 1_000_000 + super::price::hash(&[cfg.seed, s.key]) % 1_000_000;
                let mut book = Book::new(cfg.seed, cfg.book_levels, first * 1000);
                book.update(s, price);
                Mutex::new(Market {
                    book,
                    trade_id: first * 10,
                    agg_id: first * 5,
                    last_price: price,
                    last_ms: now,
                    pending_100: Diff::default(),
                    pending_1000: Diff::default(),
                    last_flush_100: now,
                    last_flush_1000: now,
                    last_kline_push: now,
                    last_kline_wall: std::time::Instant::now(),
                    kline_bar: vec![-1; super::price::INTERVALS.len()],
                    last_ticker_push: now,
                })
            })
            .collect();
        let keys: Vec<String> = cfg.api_keys.iter().map(|(k, _)| k.clone()).collect();
        let accounts = Mutex::new(Accounts::new(&keys, cfg.balances.clone()));
        let secrets = cfg.api_keys.iter().cloned().collect();
        let (events, _) = broadcast::channel(1 << 16);
        let (shutdown, _) = watch::channel(false);
        let wanted = (0..specs.len() * KINDS)
            .map(|_| AtomicUsize::new(0))
            .collect();
        Ok(Shared {
            faults: RwLock::new(cfg.faults.clone()),
            dice: Dice::new(cfg.seed),
            cfg,
            clock,
            specs,
            by_name,
            prices,
            markets,
            accounts,
            secrets,
            ips: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            events,
            wanted,
            frozen: AtomicBool::new(false),
            shutdown,
            klines_cache: Mutex::new(HashMap::new()),
            replay: RwLock::new(Arc::new(Vec::new())),
        })
    }

    /// The server's clock: simulated time plus the clock-offset fault.
    pub fn server_ms(&self) -> i64 {
        self.clock.now_ms() + self.faults.read().clock_offset_ms
    }

    pub fn is_wanted(&self, symbol: usize, kind: Kind) -> bool {
        self.wanted[symbol * KINDS + kind.slot()].load(Ordering::Relaxed) > 0
    }

    pub fn want(&self, symbol: usize, kind: Kind, on: bool) {
        let c = &self.wanted[symbol * KINDS + kind.slot()];
        if on {
            c.fetch_add(1, Ordering::Relaxed);
        } else {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Parses `<symbol lower-case>@<kind>`.
    pub fn parse_stream(&self, name: &str) -> Option<(usize, Kind)> {
        let (sym, kind) = name.split_once('@')?;
        if sym.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let idx = *self.by_name.get(&sym.to_ascii_uppercase())?;
        Some((idx, Kind::parse(kind)?))
    }

    pub fn stream_name(&self, symbol: usize, kind: Kind) -> String {
        format!("{}@{}", self.specs[symbol].lower, kind.suffix())
    }
}

/// Resolves once the exchange is stopping, also when it stopped before the
/// receiver was made (unlike `changed()`).
pub async fn stopping(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
