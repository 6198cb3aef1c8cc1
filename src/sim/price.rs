//! The seeded price process, symbol specifications and klines.
//!
//! Prices are a pure function of (seed, symbol, simulated time): the minute
//! path is fractal value noise over the minute index (octaves of doubling
//! length whose amplitudes grow like a random walk's spread), seconds are
//! placed between the minute's open and close with seeded noise, and every
//! bar is aggregated bottom-up from the level below, so a 1h bar's high is the
//! highest of its 1m bars and of their 1s bars. All prices and quantities are
//! integers in units of 1e-8 (Binance's eight-decimal strings), rounded to the
//! symbol's tick and step.

use std::collections::HashMap;

use parking_lot::Mutex;

/// Units of price and quantity per 1.0.
pub const UNIT: i64 = 100_000_000;

/// SplitMix64 finaliser: a fast, well-mixed hash of one word.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of several words.
pub fn hash(words: &[u64]) -> u64 {
    words.iter().fold(0x5151_5151_u64, |h, w| mix(h ^ mix(*w)))
}

/// A hash mapped onto [0, 1).
pub fn unit(words: &[u64]) -> f64 {
    (hash(words) >> 11) as f64 / (1u64 << 53) as f64
}

fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Formats an amount in 1e-8 units with eight decimals, as Binance does.
pub fn fmt8(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:08}", a / UNIT as u64, a % UNIT as u64)
}

/// Parses a decimal string into 1e-8 units; `None` for malformed input or
/// more than eight decimals.
pub fn parse8(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 8 {
        return None;
    }
    let i: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10i64.pow(8 - frac.len() as u32)
    };
    let v = i.checked_mul(UNIT)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

const QUOTES: &[&str] = &[
    "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY",
];

/// A rough price in USDT of well-known assets, so that simulated markets
/// look familiar; other assets get a seeded price.
fn usd_price(asset: &str) -> Option<f64> {
    Some(match asset {
        "BTC" => 60_000.0,
        "ETH" => 3_000.0,
        "BNB" => 550.0,
        "SOL" => 150.0,
        "XRP" => 0.6,
        "ADA" => 0.45,
        "DOGE" => 0.15,
        "LTC" => 80.0,
        "DOT" => 7.0,
        "LINK" => 15.0,
        "AVAX" => 35.0,
        "USDT" | "USDC" | "FDUSD" | "BUSD" | "TUSD" => 1.0,
        "EUR" => 1.08,
        "TRY" => 0.03,
        _ => return None,
    })
}

/// One tradable symbol: names, precisions and filters.
#[derive(Clone, Debug)]
pub struct SymbolSpec {
    pub index: usize,
    pub name: String,
    pub lower: String,
    pub base: String,
    pub quote: String,
    pub key: u64,
    /// Reference price in 1e-8 units of the quote asset.
    pub ref_price: i64,
    /// Price tick and quantity step in 1e-8 units.
    pub tick: i64,
    pub step: i64,
    pub min_qty: i64,
    pub max_qty: i64,
    pub min_price: i64,
    pub max_price: i64,
    pub min_notional: i64,
    /// Typical volume of one minute, in 1e-8 units of the base asset.
    pub minute_volume: i64,
}

fn pow10(e: i32) -> i64 {
    // amounts in 1e-8 units: 10^e of the asset is 10^(e+8) units
    let e = (e + 8).clamp(0, 17);
    10i64.pow(e as u32)
}

impl SymbolSpec {
    /// Builds the specification of `name` (e.g. `BTCUSDT`); `None` if it is
    /// not an upper-case symbol ending in a known quote asset.
    pub fn new(index: usize, name: &str, seed: u64) -> Option<SymbolSpec> {
        if name.len() < 5
            || name.len() > 20
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return None;
        }
        let quote = QUOTES
            .iter()
            .find(|q| name.ends_with(*q) && name.len() > q.len() + 1)?;
        let base = &name[..name.len() - quote.len()];
        let key = str_hash(name);
        let base_usd = usd_price(base).unwrap_or_else(|| 0.5 + 200.0 * unit(&[seed, key, 1]));
        let quote_usd = usd_price(quote).unwrap_or(1.0);
        let price = (base_usd / quote_usd).max(1e-6);
        // about seven significant digits of price; a step worth 0.1 to 1 USD
        let mag = price.log10().floor() as i32;
        let tick = pow10(mag - 6).max(1);
        let step = pow10((-(price * quote_usd).log10()).floor() as i32).max(1);
        let ref_price = ((price * UNIT as f64) as i64 / tick).max(1) * tick;
        let min_notional = ((5.0 / quote_usd) * UNIT as f64) as i64;
        let minute_volume =
            (((20_000.0 / (price * quote_usd)) * UNIT as f64) as i64 / step).max(1) * step;
        Some(SymbolSpec {
            index,
            name: name.to_string(),
            lower: name.to_ascii_lowercase(),
            base: base.to_string(),
            quote: quote.to_string(),
            key,
            ref_price,
            tick,
            step,
            min_qty: step,
            max_qty: 9_000_000 * UNIT,
            min_price: tick,
            max_price: 1_000_000 * UNIT,
            min_notional,
            minute_volume,
        })
    }

    /// Decimal places of the tick and step (precisions in exchangeInfo).
    pub fn price_decimals(&self) -> u32 {
        8 - self.tick.ilog10()
    }
    pub fn qty_decimals(&self) -> u32 {
        8 - self.step.ilog10()
    }
}

/// An OHLCV bar in 1e-8 units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    pub quote_volume: i64,
    pub trades: i64,
    pub taker_base: i64,
    pub taker_quote: i64,
}

impl Bar {
    fn merge(&mut self, o: &Bar) {
        self.high = self.high.max(o.high);
        self.low = self.low.min(o.low);
        self.close = o.close;
        self.volume += o.volume;
        self.quote_volume += o.quote_volume;
        self.trades += o.trades;
        self.taker_base += o.taker_base;
        self.taker_quote += o.taker_quote;
    }
}

fn notional(price: i64, qty: i64) -> i64 {
    (price as i128 * qty as i128 / UNIT as i128) as i64
}

const OCTAVES: u32 = 18;
/// Spread of the minute-to-minute log return.
const SIGMA: f64 = 0.0006;

/// The seeded price process of every symbol, with a cache of hour bars.
pub struct PriceModel {
    seed: u64,
    hours: Mutex<HashMap<(usize, i64), Bar>>,
}

impl PriceModel {
    pub fn new(seed: u64) -> PriceModel {
        PriceModel {
            seed,
            hours: Mutex::new(HashMap::new()),
        }
    }

    fn snap(&self, s: &SymbolSpec, v: f64) -> i64 {
        let t = ((v / s.tick as f64).round() as i64).max(1);
        t * s.tick
    }

    /// Log-price offset at the start of minute `m` (fractal value noise).
    fn minute_log(&self, s: &SymbolSpec, m: i64) -> f64 {
        let mut acc = 0.0;
        for k in 0..OCTAVES {
            let len = 1i64 << k;
            let i = m.div_euclid(len);
            let f = m.rem_euclid(len) as f64 / len as f64;
            let a = unit(&[self.seed, s.key, k as u64, i as u64]) * 2.0 - 1.0;
            let b = unit(&[self.seed, s.key, k as u64, (i + 1) as u64]) * 2.0 - 1.0;
            acc += (a + (b - a) * f) * SIGMA * (len as f64).sqrt();
        }
        acc
    }

    fn minute_open(&self, s: &SymbolSpec, m: i64) -> i64 {
        self.snap(s, s.ref_price as f64 * self.minute_log(s, m).exp())
    }

    /// The price at the start of second `sec` of minute `m` (0..=60; 60 is
    /// the next minute's open), and the minute's high and low.
    fn minute_frame(&self, s: &SymbolSpec, m: i64) -> MinuteFrame {
        let open = self.minute_open(s, m);
        let close = self.minute_open(s, m + 1);
        let w = |k: u64| unit(&[self.seed, s.key, 100 + k, m as u64]);
        let span = (open.max(close) as f64) * SIGMA * 0.6;
        let high = self.snap(s, open.max(close) as f64 + span * w(0));
        let low = self.snap(s, (open.min(close) as f64 - span * w(1)).max(s.tick as f64));
        let hi_at = 1 + (hash(&[self.seed, s.key, 102, m as u64]) % 59) as i64;
        let mut lo_at = 1 + (hash(&[self.seed, s.key, 103, m as u64]) % 59) as i64;
        if lo_at == hi_at {
            lo_at = if hi_at == 59 { 1 } else { hi_at + 1 };
        }
        MinuteFrame {
            minute: m,
            open,
            close,
            high,
            low,
            hi_at,
            lo_at,
        }
    }

    fn second_price(&self, s: &SymbolSpec, f: &MinuteFrame, sec: i64) -> i64 {
        match sec {
            0 => f.open,
            60 => f.close,
            x if x == f.hi_at => f.high,
            x if x == f.lo_at => f.low,
            _ => {
                let lin = f.open as f64 + (f.close - f.open) as f64 * sec as f64 / 60.0;
                let n = unit(&[self.seed, s.key, 200, f.minute as u64, sec as u64]) * 2.0 - 1.0;
                let v = lin + n * (f.high - f.low) as f64 * 0.5;
                self.snap(s, v).clamp(f.low, f.high)
            }
        }
    }

    fn minute_volume(&self, s: &SymbolSpec, m: i64) -> (i64, i64, i64) {
        let u = unit(&[self.seed, s.key, 300, m as u64]);
        let vol = ((s.minute_volume as f64 * (0.3 + 1.4 * u)) as i64 / s.step).max(1) * s.step;
        let trades = 20 + (hash(&[self.seed, s.key, 301, m as u64]) % 400) as i64;
        let taker = ((vol as f64 * (0.3 + 0.4 * unit(&[self.seed, s.key, 302, m as u64]))) as i64
            / s.step)
            * s.step;
        (vol, trades, taker)
    }

    /// The bar of one whole minute.
    pub fn minute_bar(&self, s: &SymbolSpec, m: i64) -> Bar {
        let f = self.minute_frame(s, m);
        let (vol, trades, taker) = self.minute_volume(s, m);
        let mid = (f.open + f.close) / 2;
        Bar {
            open: f.open,
            high: f.high,
            low: f.low,
            close: f.close,
            volume: vol,
            quote_volume: notional(mid, vol),
            trades,
            taker_base: taker,
            taker_quote: notional(mid, taker),
        }
    }

    /// The bars of seconds `from..to` (0..=60) of minute `m`, merged into one.
    fn seconds_bar(&self, s: &SymbolSpec, m: i64, from: i64, to: i64) -> Bar {
        let f = self.minute_frame(s, m);
        let (vol, trades, taker) = self.minute_volume(s, m);
        let weights: Vec<f64> = (0..60)
            .map(|k| 0.2 + unit(&[self.seed, s.key, 400, m as u64, k as u64]))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut bar: Option<Bar> = None;
        for sec in from..to {
            let o = self.second_price(s, &f, sec);
            let c = self.second_price(s, &f, sec + 1);
            let share = weights[sec as usize] / total;
            let v = ((vol as f64 * share) as i64 / s.step) * s.step;
            let tb = ((taker as f64 * share) as i64 / s.step) * s.step;
            let mid = (o + c) / 2;
            let b = Bar {
                open: o,
                high: o.max(c),
                low: o.min(c),
                close: c,
                volume: v,
                quote_volume: notional(mid, v),
                trades: (trades as f64 * share).round() as i64,
                taker_base: tb,
                taker_quote: notional(mid, tb),
            };
            match &mut bar {
                None => bar = Some(b),
                Some(x) => x.merge(&b),
            }
        }
        bar.expect("seconds_bar needs a non-empty range")
    }

    fn hour_bar(&self, s: &SymbolSpec, h: i64) -> Bar {
        if let Some(b) = self.hours.lock().get(&(s.index, h)) {
            return *b;
        }
        let mut bar = self.minute_bar(s, h * 60);
        for m in 1..60 {
            bar.merge(&self.minute_bar(s, h * 60 + m));
        }
        let mut cache = self.hours.lock();
        if cache.len() > 2_000_000 {
            cache.clear();
        }
        cache.insert((s.index, h), bar);
        bar
    }

    /// The bar of simulated seconds `[a, b)` (seconds since 1970), built from
    /// the coarsest aligned blocks: whole hours, whole minutes, seconds.
    pub fn range_bar(&self, s: &SymbolSpec, a: i64, b: i64) -> Bar {
        assert!(b > a, "empty range");
        let mut out: Option<Bar> = None;
        let mut push = |x: Bar| match &mut out {
            None => out = Some(x),
            Some(o) => o.merge(&x),
        };
        let mut t = a;
        while t < b {
            if t % 3600 == 0 && t + 3600 <= b {
                push(self.hour_bar(s, t.div_euclid(3600)));
                t += 3600;
            } else if t % 60 == 0 && t + 60 <= b {
                push(self.minute_bar(s, t.div_euclid(60)));
                t += 60;
            } else {
                let m = t.div_euclid(60);
                let end = b.min((m + 1) * 60);
                push(self.seconds_bar(s, m, t - m * 60, end - m * 60));
                t = end;
            }
        }
        out.expect("non-empty range")
    }

    /// The frame of minute `m`, from a one-entry cache per thread: the
    /// streams ask for many prices within one minute in a row.
    fn minute_frame_cached(&self, s: &SymbolSpec, m: i64) -> MinuteFrame {
        thread_local! {
            static LAST: std::cell::Cell<Option<(u64, u64, MinuteFrame)>> =
                const { std::cell::Cell::new(None) };
        }
        if let Some((seed, key, f)) = LAST.get() {
            if seed == self.seed && key == s.key && f.minute == m {
                return f;
            }
        }
        let f = self.minute_frame(s, m);
        LAST.set(Some((self.seed, s.key, f)));
        f
    }

    /// The traded price at simulated time `ms`: inside its second's range.
    pub fn price_at(&self, s: &SymbolSpec, ms: i64) -> i64 {
        let sec = ms.div_euclid(1000);
        let m = sec.div_euclid(60);
        let f = self.minute_frame_cached(s, m);
        let o = self.second_price(s, &f, sec - m * 60);
        let c = self.second_price(s, &f, sec - m * 60 + 1);
        let frac = ms.rem_euclid(1000) as f64 / 1000.0;
        let noise = unit(&[self.seed, s.key, 500, ms as u64]) - 0.5;
        let v = o as f64 + (c - o) as f64 * frac + noise * (c - o).abs() as f64 * 0.5;
        self.snap(s, v).clamp(o.min(c), o.max(c))
    }

    /// A seeded quantity for a trade at `ms` (a few steps to a few thousand).
    pub fn trade_qty(&self, s: &SymbolSpec, ms: i64, n: u64) -> i64 {
        let u = unit(&[self.seed, s.key, 600, ms as u64, n]);
        let q = (s.minute_volume as f64 / 400.0) * (0.05 + 2.0 * u * u);
        ((q as i64) / s.step).max(1) * s.step
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
}

#[derive(Clone, Copy)]
struct MinuteFrame {
    minute: i64,
    open: i64,
    close: i64,
    high: i64,
    low: i64,
    hi_at: i64,
    lo_at: i64,
}

// ---------------------------------------------------------------------------
// Kline intervals
// ---------------------------------------------------------------------------

/// A kline interval: fixed length in seconds, or calendar months.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Secs(i64),
    Month,
}

pub const INTERVALS: &[&str] = &[
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    "1M",
];

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        Some(match s {
            "1s" => Interval::Secs(1),
            "1m" => Interval::Secs(60),
            "3m" => Interval::Secs(180),
            "5m" => Interval::Secs(300),
            "15m" => Interval::Secs(900),
            "30m" => Interval::Secs(1800),
            "1h" => Interval::Secs(3600),
            "2h" => Interval::Secs(7200),
            "4h" => Interval::Secs(14400),
            "6h" => Interval::Secs(21600),
            "8h" => Interval::Secs(28800),
            "12h" => Interval::Secs(43200),
            "1d" => Interval::Secs(86400),
            "3d" => Interval::Secs(259200),
            "1w" => Interval::Secs(604800),
            "1M" => Interval::Month,
            _ => return None,
        })
    }

    /// Start (seconds) of the bar containing second `t`. Weeks start on
    /// Monday 00:00 UTC, like Binance's; 1970-01-01 was a Thursday.
    pub fn floor(self, t: i64) -> i64 {
        match self {
            Interval::Secs(604800) => (t - 4 * 86400).div_euclid(604800) * 604800 + 4 * 86400,
            Interval::Secs(d) => t.div_euclid(d) * d,
            Interval::Month => {
                let (y, m, _) = civil_from_days(t.div_euclid(86400));
                days_from_civil(y, m, 1) * 86400
            }
        }
    }

    /// Start of the bar after the one starting at `start`.
    pub fn next(self, start: i64) -> i64 {
        match self {
            Interval::Secs(d) => start + d,
            Interval::Month => {
                let (y, m, _) = civil_from_days(start.div_euclid(86400));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) * 86400
            }
        }
    }

    /// Start of the bar before the one starting at `start`.
    pub fn prev(self, start: i64) -> i64 {
        match self {
            Interval::Secs(d) => start - d,
            Interval::Month => self.floor(start - 1),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// One kline row as Binance serialises it.
pub fn kline_json(out: &mut String, open_ms: i64, close_ms: i64, b: &Bar) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "[{open_ms},\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",{close_ms},\"{}\",{},\"{}\",\"{}\",\"0\"]",
        fmt8(b.open),
        fmt8(b.high),
        fmt8(b.low),
        fmt8(b.close),
        fmt8(b.volume),
        fmt8(b.quote_volume),
        b.trades,
        fmt8(b.taker_base),
        fmt8(b.taker_quote)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> SymbolSpec {
        SymbolSpec::new(0, "BTCUSDT", 7).unwrap()
    }

    #[test]
    fn decimals_round_trip() {
        assert_eq!(fmt8(123_456_789), "1.23456789");
        assert_eq!(fmt8(-5), "-0.00000005");
        assert_eq!(parse8("1.23456789"), Some(123_456_789));
        assert_eq!(parse8("0.1"), Some(10_000_000));
        assert_eq!(parse8("1.000000000"), Some(UNIT));
        assert_eq!(parse8("1.123456789"), None);
        assert_eq!(parse8("1e5"), None);
        assert_eq!(parse8(""), None);
        assert_eq!(parse8("."), None);
    }

    #[test]
    fn symbols_split_and_filters_are_sane() {
        let s = btc();
        assert_eq!((s.base.as_str(), s.quote.as_str()), ("BTC", "USDT"));
        assert_eq!(s.tick, 1_000_000); // 0.01
        assert_eq!(s.price_decimals(), 2);
        assert!(s.step <= 100_000);
        assert!(SymbolSpec::new(0, "btcusdt", 1).is_none());
        assert!(SymbolSpec::new(0, "USDT", 1).is_none());
        let x = SymbolSpec::new(1, "FOOBTC", 1).unwrap();
        assert_eq!(x.quote, "BTC");
        assert!(x.ref_price % x.tick == 0);
    }

    #[test]
    fn bars_aggregate_consistently_and_deterministically() {
        let s = btc();
        let p = PriceModel::new(7);
        let t0 = 1_700_000_000 / 3600 * 3600;
        let hour = p.range_bar(&s, t0, t0 + 3600);
        let mut from_minutes = p.minute_bar(&s, t0 / 60);
        for m in 1..60 {
            from_minutes.merge(&p.minute_bar(&s, t0 / 60 + m));
        }
        assert_eq!(hour, from_minutes);
        // a minute equals the merge of its seconds in price
        let m = p.minute_bar(&s, t0 / 60 + 5);
        let secs = p.range_bar(&s, t0 + 300, t0 + 360);
        assert_eq!(
            (m.open, m.high, m.low, m.close),
            (secs.open, secs.high, secs.low, secs.close)
        );
        let q = PriceModel::new(7);
        assert_eq!(
            q.range_bar(&s, t0, t0 + 86400),
            p.range_bar(&s, t0, t0 + 86400)
        );
        assert_ne!(
            PriceModel::new(8).minute_bar(&s, t0 / 60),
            p.minute_bar(&s, t0 / 60)
        );
        let px = p.price_at(&s, t0 * 1000 + 1234);
        assert!(px > s.ref_price / 2 && px < s.ref_price * 2);
        assert_eq!(px % s.tick, 0);
    }

    #[test]
    fn intervals_align_like_binance() {
        let t = 1_700_000_123; // 2023-11-14 22:15:23 UTC, a Tuesday
        assert_eq!(Interval::parse("1w").unwrap().floor(t), 1_699_833_600); // Mon 13th
        let mo = Interval::parse("1M").unwrap();
        assert_eq!(mo.floor(t), 1_698_796_800); // 2023-11-01
        assert_eq!(mo.next(1_698_796_800), 1_701_388_800); // 2023-12-01
        assert_eq!(mo.prev(1_698_796_800), 1_696_118_400); // 2023-10-01
        assert!(Interval::parse("2m").is_none());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19675), (2023, 11, 14));
    }
}
