//! The market driver: one task that advances every symbol's market on a
//! short tick — trades from the price process at the configured rate, book
//! updates, resting-order fills — and publishes the serialised events of the
//! streams someone watches.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::book::Diff;
use super::config::Stats;
use super::orders::Trade;
use super::price::{fmt8, Interval, INTERVALS};
use super::state::{Event, Kind, Market, Shared};

const TICK: Duration = Duration::from_millis(1);
/// The book moves at most this often (wall time), however fast the clock.
const BOOK_EVERY: Duration = Duration::from_millis(20);
/// In-progress kline updates are pushed at most this often (wall time).
const KLINE_WALL_EVERY: Duration = Duration::from_millis(250);
/// Trades generated per symbol per tick at most (bounds one tick's work).
const MAX_TRADES_PER_TICK: f64 = 20_000.0;

pub async fn run(sh: Arc<Shared>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = sh.shutdown.subscribe();
    let mut carry = vec![0.0f64; sh.specs.len()];
    let mut last = Instant::now();
    let mut last_book = Instant::now() - BOOK_EVERY;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = super::state::stopping(&mut shutdown) => return,
        }
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        if sh.frozen.load(Ordering::Acquire) {
            continue;
        }
        let book_due = last_book.elapsed() >= BOOK_EVERY;
        if book_due {
            last_book = Instant::now();
        }
        let now = sh.clock.now_ms();
        for (i, c) in carry.iter_mut().enumerate() {
            *c = (*c + sh.cfg.trade_rate * dt).min(MAX_TRADES_PER_TICK);
            let n = c.floor();
            *c -= n;
            step(&sh, i, now, n as u64, book_due);
        }
    }
}

fn publish(sh: &Shared, symbol: usize, kind: Kind, json: String) {
    let _ = sh.events.send(Arc::new(Event::new(symbol, kind, json)));
}

/// Serialises and publishes one public trade (and its aggTrade).
#[allow(clippy::too_many_arguments)]
fn emit_trade(
    sh: &Shared,
    i: usize,
    m: &mut Market,
    id: u64,
    price: i64,
    qty: i64,
    ms: i64,
    maker: bool,
) {
    let s = &sh.specs[i];
    m.agg_id += 1;
    if sh.is_wanted(i, Kind::Trade) {
        publish(
            sh,
            i,
            Kind::Trade,
            format!(
                "{{\"e\":\"trade\",\"E\":{ms},\"s\":\"{}\",\"t\":{id},\"p\":\"{}\",\"q\":\"{}\",\"T\":{ms},\"m\":{maker},\"M\":true}}",
                s.name,
                fmt8(price),
                fmt8(qty)
            ),
        );
    }
    if sh.is_wanted(i, Kind::AggTrade) {
        publish(
            sh,
            i,
            Kind::AggTrade,
            format!(
                "{{\"e\":\"aggTrade\",\"E\":{ms},\"s\":\"{}\",\"a\":{},\"p\":\"{}\",\"q\":\"{}\",\"f\":{id},\"l\":{id},\"T\":{ms},\"m\":{maker},\"M\":true}}",
                s.name,
                m.agg_id,
                fmt8(price),
                fmt8(qty)
            ),
        );
    }
    Stats::inc(&sh.stats.trades);
}

/// Publishes the public side of fills made by users' orders.
pub fn emit_user_trades(
    sh: &Shared,
    i: usize,
    m: &mut Market,
    trades: &[(i64, i64, u64, bool)],
    ms: i64,
) {
    for (price, qty, id, buyer_taker) in trades {
        emit_trade(sh, i, m, *id, *price, *qty, ms, !*buyer_taker);
        m.last_price = *price;
    }
}

/// Records book changes for the depth streams.
pub fn absorb(m: &mut Market, d: Diff) {
    if d.first == 0 {
        return;
    }
    m.pending_100.absorb(d.clone());
    m.pending_1000.absorb(d);
}

fn levels_json(out: &mut String, levels: &[(i64, i64)]) {
    out.push('[');
    for (k, (p, q)) in levels.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "[\"{}\",\"{}\"]", fmt8(*p), fmt8(*q));
    }
    out.push(']');
}

fn flush_depth(sh: &Shared, i: usize, kind: Kind, d: Diff, now: i64) {
    if d.first == 0 || !sh.is_wanted(i, kind) {
        return;
    }
    if sh.dice.hit(sh.faults.read().depth_skip_rate) {
        Stats::inc(&sh.stats.injected_depth_skips);
        return;
    }
    let mut out = format!(
        "{{\"e\":\"depthUpdate\",\"E\":{now},\"s\":\"{}\",\"U\":{},\"u\":{},\"b\":",
        sh.specs[i].name, d.first, d.last
    );
    // bids best first, as Binance lists them
    let bids: Vec<(i64, i64)> = d.bids.iter().rev().copied().collect();
    levels_json(&mut out, &bids);
    out.push_str(",\"a\":");
    levels_json(&mut out, &d.asks);
    out.push('}');
    publish(sh, i, kind, out);
}

/// 24-hour rolling statistics of a symbol at simulated time `now`.
pub struct Ticker {
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub last: i64,
    pub volume: i64,
    pub quote_volume: i64,
    pub trades: i64,
    pub open_time: i64,
}

pub fn ticker(sh: &Shared, i: usize, now: i64) -> Ticker {
    let s = &sh.specs[i];
    let end = now.div_euclid(1000) + 1;
    let b = sh.prices.range_bar(s, end - 86_400, end);
    Ticker {
        open: b.open,
        high: b.high,
        low: b.low,
        last: sh.prices.price_at(s, now),
        volume: b.volume,
        quote_volume: b.quote_volume,
        trades: b.trades,
        open_time: (end - 86_400) * 1000,
    }
}

fn pct(change: i64, open: i64) -> String {
    format!("{:.3}", change as f64 * 100.0 / open.max(1) as f64)
}

fn emit_ticker(sh: &Shared, i: usize, m: &Market, now: i64) {
    let s = &sh.specs[i];
    let t = ticker(sh, i, now);
    let (bb, bq) = m.book.best_bid().unwrap_or((0, 0));
    let (ba, aq) = m.book.best_ask().unwrap_or((0, 0));
    let w = if t.volume > 0 {
        (t.quote_volume as i128 * super::price::UNIT as i128 / t.volume as i128) as i64
    } else {
        t.last
    };
    let count = t.trades.max(1) as u64;
    publish(
        sh,
        i,
        Kind::Ticker,
        format!(
            "{{\"e\":\"24hrTicker\",\"E\":{now},\"s\":\"{}\",\"p\":\"{}\",\"P\":\"{}\",\"w\":\"{}\",\"x\":\"{}\",\"c\":\"{}\",\"Q\":\"{}\",\"b\":\"{}\",\"B\":\"{}\",\"a\":\"{}\",\"A\":\"{}\",\"o\":\"{}\",\"h\":\"{}\",\"l\":\"{}\",\"v\":\"{}\",\"q\":\"{}\",\"O\":{},\"C\":{now},\"F\":{},\"L\":{},\"n\":{count}}}",
            s.name,
            fmt8(t.last - t.open),
            pct(t.last - t.open, t.open),
            fmt8(w),
            fmt8(t.open),
            fmt8(t.last),
            fmt8(s.step),
            fmt8(bb),
            fmt8(bq),
            fmt8(ba),
            fmt8(aq),
            fmt8(t.open),
            fmt8(t.high.max(t.last)),
            fmt8(t.low.min(t.last)),
            fmt8(t.volume),
            fmt8(t.quote_volume),
            t.open_time,
            m.trade_id.saturating_sub(count - 1),
            m.trade_id
        ),
    );
}

/// The JSON of the kline of `interval` containing simulated time `now`
/// (the object under `"k"`), open until its end.
pub fn kline_object(
    sh: &Shared,
    i: usize,
    iv: usize,
    now: i64,
    first_id: u64,
    last_id: u64,
) -> String {
    let s = &sh.specs[i];
    let interval = Interval::parse(INTERVALS[iv]).expect("known interval");
    let sec = now.div_euclid(1000);
    let start = interval.floor(sec);
    let next = interval.next(start);
    let b = sh.prices.range_bar(s, start, sec + 1);
    format!(
        "{{\"t\":{},\"T\":{},\"s\":\"{}\",\"i\":\"{}\",\"f\":{first_id},\"L\":{last_id},\"o\":\"{}\",\"c\":\"{}\",\"h\":\"{}\",\"l\":\"{}\",\"v\":\"{}\",\"n\":{},\"x\":{},\"q\":\"{}\",\"V\":\"{}\",\"Q\":\"{}\",\"B\":\"0\"}}",
        start * 1000,
        next * 1000 - 1,
        s.name,
        INTERVALS[iv],
        fmt8(b.open),
        fmt8(b.close),
        fmt8(b.high),
        fmt8(b.low),
        fmt8(b.volume),
        b.trades,
        sec + 1 >= next,
        fmt8(b.quote_volume),
        fmt8(b.taker_base),
        fmt8(b.taker_quote)
    )
}

fn step(sh: &Shared, i: usize, now: i64, n: u64, book_due: bool) {
    let s = &sh.specs[i];
    let mut m = sh.markets[i].lock();
    if sh.frozen.load(Ordering::Acquire) {
        return;
    }
    let from = m.last_ms;
    for k in 0..n {
        let ms = from + ((now - from) as i128 * (k + 1) as i128 / n as i128) as i64;
        let price = sh.prices.price_at(s, ms);
        let qty = sh.prices.trade_qty(s, ms, m.trade_id);
        m.trade_id += 1;
        let id = m.trade_id;
        let maker =
            price < m.last_price || (price == m.last_price && super::price::hash(&[id]) & 1 == 0);
        emit_trade(sh, i, &mut m, id, price, qty, ms, maker);
        m.last_price = price;
    }
    m.last_ms = now;
    if n == 0 {
        m.last_price = sh.prices.price_at(s, now);
    }
    if book_due {
        let price = m.last_price;
        let d = m.book.update(s, price);
        absorb(&mut m, d);
        let (bb, ba) = (
            m.book.best_bid().map(|x| x.0).unwrap_or(0),
            m.book.best_ask().map(|x| x.0).unwrap_or(i64::MAX),
        );
        let mut tid = m.trade_id;
        let fills: Vec<Trade> = sh.accounts.lock().match_resting(s, bb, ba, &mut tid, now);
        m.trade_id = tid;
        for t in fills {
            Stats::inc(&sh.stats.orders_filled);
            emit_trade(sh, i, &mut m, t.id, t.price, t.qty, now, t.is_buyer);
        }
        if sh.is_wanted(i, Kind::BookTicker) {
            let (bb, bq) = m.book.best_bid().unwrap_or((0, 0));
            let (ba, aq) = m.book.best_ask().unwrap_or((0, 0));
            {
                publish(
                    sh,
                    i,
                    Kind::BookTicker,
                    format!(
                        "{{\"u\":{},\"s\":\"{}\",\"b\":\"{}\",\"B\":\"{}\",\"a\":\"{}\",\"A\":\"{}\"}}",
                        m.book.last_update_id,
                        s.name,
                        fmt8(bb),
                        fmt8(bq),
                        fmt8(ba),
                        fmt8(aq)
                    ),
                );
            }
        }
    }
    if now - m.last_flush_100 >= 100 {
        m.last_flush_100 = now;
        let d = std::mem::take(&mut m.pending_100);
        flush_depth(sh, i, Kind::Depth100, d, now);
    }
    if now - m.last_flush_1000 >= 1000 {
        m.last_flush_1000 = now;
        let d = std::mem::take(&mut m.pending_1000);
        flush_depth(sh, i, Kind::Depth, d, now);
    }
    if now - m.last_ticker_push >= 1000 {
        m.last_ticker_push = now;
        if sh.is_wanted(i, Kind::Ticker) {
            emit_ticker(sh, i, &m, now);
        }
    }
    push_klines(sh, i, &mut m, now, n);
}

/// Kline stream events: each bar's final event (`"x": true`) as soon as the
/// clock passes its end, and in-progress updates every simulated second but
/// at most every `KLINE_WALL_EVERY` of wall time (at a high `time_scale` a
/// simulated second is a few wall milliseconds).
fn push_klines(sh: &Shared, i: usize, m: &mut Market, now: i64, n: u64) {
    let s = &sh.specs[i];
    let sec = now.div_euclid(1000);
    let first = m.trade_id.saturating_sub(n);
    for (iv, name) in INTERVALS.iter().enumerate() {
        if !sh.is_wanted(i, Kind::Kline(iv as u8)) {
            m.kline_bar[iv] = -1;
            continue;
        }
        let Some(interval) = Interval::parse(name) else {
            continue;
        };
        let start = interval.floor(sec);
        let prev = m.kline_bar[iv];
        if prev >= 0 && prev < start {
            // the bar ended between two pushes: its final event, at its last ms
            let end_ms = interval.next(prev) * 1000 - 1;
            let k = kline_object(sh, i, iv, end_ms, first, m.trade_id);
            publish_kline(sh, i, iv, &s.name, end_ms, k);
        }
        m.kline_bar[iv] = start;
    }
    let wall_due = m.last_kline_wall.elapsed() >= KLINE_WALL_EVERY;
    if now - m.last_kline_push >= 1000 && wall_due {
        m.last_kline_push = now;
        m.last_kline_wall = Instant::now();
        for iv in 0..INTERVALS.len() {
            if m.kline_bar[iv] >= 0 {
                let k = kline_object(sh, i, iv, now, first, m.trade_id);
                publish_kline(sh, i, iv, &s.name, now, k);
            }
        }
    }
}

fn publish_kline(sh: &Shared, i: usize, iv: usize, name: &str, now: i64, k: String) {
    publish(
        sh,
        i,
        Kind::Kline(iv as u8),
        format!("{{\"e\":\"kline\",\"E\":{now},\"s\":\"{name}\",\"k\":{k}}}"),
    );
}

/// Stops and restarts the market (tests comparing the book with the
/// streams freeze it so that nothing changes in between). Freezing flushes
/// pending depth changes so the streams end at the book's last update id.
pub fn freeze(sh: &Shared, on: bool) {
    sh.frozen.store(on, Ordering::Release);
    if on {
        let now = sh.clock.now_ms();
        for i in 0..sh.specs.len() {
            let mut m = sh.markets[i].lock();
            let d = std::mem::take(&mut m.pending_100);
            flush_depth(sh, i, Kind::Depth100, d, now);
            let d = std::mem::take(&mut m.pending_1000);
            flush_depth(sh, i, Kind::Depth, d, now);
        }
    }
}
