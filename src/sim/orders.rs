//! Accounts, orders and the matching model.
//!
//! The model is deliberately simple: a taker order (MARKET, or the crossing
//! part of a LIMIT) walks the simulated book and consumes its levels; the
//! rest of a GTC LIMIT order rests outside the public book and fills whole,
//! as maker, at its own price once the market's best price reaches it.
//! Commissions are zero. Funds of resting orders are locked.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::book::{Book, Diff, Fill};
use super::limits::OrderCounts;
use super::price::{fmt8, SymbolSpec, UNIT};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
    LimitMaker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tif {
    Gtc,
    Ioc,
    Fok,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

impl OrderType {
    pub fn name(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
            OrderType::LimitMaker => "LIMIT_MAKER",
        }
    }
}

impl Tif {
    pub fn name(self) -> &'static str {
        match self {
            Tif::Gtc => "GTC",
            Tif::Ioc => "IOC",
            Tif::Fok => "FOK",
        }
    }
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::PartiallyFilled => "PARTIALLY_FILLED",
            Status::Filled => "FILLED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }

    fn is_open(self) -> bool {
        matches!(self, Status::New | Status::PartiallyFilled)
    }
}

#[derive(Clone, Debug)]
pub struct Order {
    pub symbol: usize,
    pub id: u64,
    pub client_id: String,
    pub side: Side,
    pub kind: OrderType,
    pub tif: Option<Tif>,
    pub price: i64,
    pub orig_qty: i64,
    pub orig_quote: i64,
    pub executed: i64,
    pub cum_quote: i64,
    pub status: Status,
    pub time: i64,
    pub update_time: i64,
    /// Funds still locked for the open part (quote for buys, base for sells).
    locked: i64,
}

#[derive(Clone, Debug)]
pub struct Trade {
    pub symbol: usize,
    pub id: u64,
    pub order_id: u64,
    pub price: i64,
    pub qty: i64,
    pub time: i64,
    pub is_buyer: bool,
    pub is_maker: bool,
}

#[derive(Default)]
pub struct Account {
    balances: BTreeMap<String, (i64, i64)>,
    orders: BTreeMap<u64, Order>,
    trades: Vec<Trade>,
    pub counts: OrderCounts,
}

/// A validated new order.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub symbol: usize,
    pub side: Side,
    pub kind: OrderType,
    pub tif: Option<Tif>,
    pub qty: Option<i64>,
    pub quote_qty: Option<i64>,
    pub price: Option<i64>,
    pub client_id: Option<String>,
}

/// An order refused: Binance's code and message.
#[derive(Clone, Debug, PartialEq)]
pub struct Reject(pub i64, pub String);

fn notional(p: i64, q: i64) -> i64 {
    (p as i128 * q as i128 / UNIT as i128) as i64
}

fn filter(name: &str) -> Reject {
    Reject(-1013, format!("Filter failure: {name}"))
}

fn insufficient() -> Reject {
    Reject(
        -2010,
        "Account has insufficient balance for requested action.".into(),
    )
}

/// Checks PRICE_FILTER, LOT_SIZE and NOTIONAL as exchangeInfo states them.
pub fn check_filters(s: &SymbolSpec, o: &NewOrder, ref_price: i64) -> Result<(), Reject> {
    if let Some(p) = o.price {
        if p < s.min_price || p > s.max_price || (p - s.min_price) % s.tick != 0 {
            return Err(filter("PRICE_FILTER"));
        }
    }
    if let Some(q) = o.qty {
        if q < s.min_qty || q > s.max_qty || (q - s.min_qty) % s.step != 0 {
            return Err(filter("LOT_SIZE"));
        }
    }
    let value = match (o.qty, o.quote_qty) {
        (_, Some(qq)) => qq,
        (Some(q), None) => notional(o.price.unwrap_or(ref_price), q),
        (None, None) => 0,
    };
    if value < s.min_notional {
        return Err(filter("NOTIONAL"));
    }
    Ok(())
}

/// What placing an order did: the order, its fills (with trade ids) and
/// the book's changes.
pub struct Placed {
    pub order: Order,
    pub fills: Vec<(Fill, u64)>,
    pub diff: Diff,
}

/// Every account, by API key.
pub struct Accounts {
    by_key: HashMap<String, Account>,
    start_balances: Vec<(String, i64)>,
    next_order_id: u64,
}

impl Accounts {
    pub fn new(keys: &[String], start_balances: Vec<(String, i64)>) -> Accounts {
        let mut a = Accounts {
            by_key: HashMap::new(),
            start_balances,
            next_order_id: 1,
        };
        for k in keys {
            a.account(k);
        }
        a
    }

    pub fn account(&mut self, key: &str) -> &mut Account {
        let start = &self.start_balances;
        self.by_key
            .entry(key.to_string())
            .or_insert_with(|| Account {
                balances: start.iter().map(|(a, v)| (a.clone(), (*v, 0))).collect(),
                ..Account::default()
            })
    }

    /// Places an order for `key` against `book`; `trade_id` is the
    /// symbol's trade id counter (shared with the public streams).
    #[allow(clippy::too_many_arguments)]
    pub fn place(
        &mut self,
        key: &str,
        s: &SymbolSpec,
        book: &mut Book,
        trade_id: &mut u64,
        o: NewOrder,
        now: i64,
    ) -> Result<Placed, Reject> {
        let buy = o.side == Side::Buy;
        let best = if buy {
            book.best_ask()
        } else {
            book.best_bid()
        };
        let ref_price = best.map(|b| b.0).unwrap_or(s.ref_price);
        check_filters(s, &o, ref_price)?;
        let id = self.next_order_id;
        let acct = self.account(key);
        let free = |acct: &Account, asset: &str| acct.balances.get(asset).map(|b| b.0).unwrap_or(0);
        let qty = o.qty.unwrap_or(i64::MAX);
        // funds: estimate what a taker walk would cost, read-only
        let walk = |limit: Option<i64>, want: i64| -> (i64, i64) {
            let mut left = want;
            let mut cost = 0i64;
            let levels: Box<dyn Iterator<Item = (&i64, &i64)>> = if buy {
                Box::new(book.asks.iter())
            } else {
                Box::new(book.bids.iter().rev())
            };
            for (p, q) in levels {
                if left <= 0 || limit.is_some_and(|l| (buy && *p > l) || (!buy && *p < l)) {
                    break;
                }
                let t = (*q).min(left);
                cost += notional(*p, t);
                left -= t;
            }
            (want - left, cost)
        };
        match (o.kind, buy) {
            (OrderType::Market, true) => {
                let need = match o.quote_qty {
                    Some(qq) => qq,
                    None => walk(None, qty).1,
                };
                if need > free(acct, &s.quote) {
                    return Err(insufficient());
                }
            }
            (OrderType::Market, false) => {
                if qty > free(acct, &s.base) {
                    return Err(insufficient());
                }
            }
            (_, true) => {
                if notional(o.price.unwrap_or(0), qty) > free(acct, &s.quote) {
                    return Err(insufficient());
                }
            }
            (_, false) => {
                if qty > free(acct, &s.base) {
                    return Err(insufficient());
                }
            }
        }
        let price = o.price.unwrap_or(0);
        if o.kind == OrderType::LimitMaker && walk(Some(price), s.step).0 > 0 {
            return Err(Reject(
                -2010,
                "Order would immediately match and take.".into(),
            ));
        }
        self.next_order_id += 1;
        let mut order = Order {
            symbol: s.index,
            id,
            client_id: o
                .client_id
                .clone()
                .unwrap_or_else(|| format!("sim{:016x}", super::price::mix(id))),
            side: o.side,
            kind: o.kind,
            tif: o.tif,
            price,
            orig_qty: o.qty.unwrap_or(0),
            orig_quote: o.quote_qty.unwrap_or(0),
            executed: 0,
            cum_quote: 0,
            status: Status::New,
            time: now,
            update_time: now,
            locked: 0,
        };
        let fok_short = o.tif == Some(Tif::Fok) && walk(Some(price), qty).0 < qty;
        let (fills, diff) = match o.kind {
            OrderType::LimitMaker => (Vec::new(), Diff::default()),
            _ if fok_short => (Vec::new(), Diff::default()),
            OrderType::Market => book.take(buy, None, qty, o.quote_qty.map(|q| q as i128), s.step),
            OrderType::Limit => book.take(buy, Some(price), qty, None, s.step),
        };
        let acct = self.account(key);
        let mut with_ids = Vec::new();
        for f in fills {
            *trade_id += 1;
            settle(acct, s, buy, f.price, f.qty, false);
            order.executed += f.qty;
            order.cum_quote += notional(f.price, f.qty);
            acct.trades.push(Trade {
                symbol: s.index,
                id: *trade_id,
                order_id: id,
                price: f.price,
                qty: f.qty,
                time: now,
                is_buyer: buy,
                is_maker: false,
            });
            with_ids.push((f, *trade_id));
        }
        let done = match (o.quote_qty, o.kind) {
            (Some(qq), OrderType::Market) => qq - order.cum_quote < notional(ref_price, s.step),
            _ => order.executed >= order.orig_qty,
        };
        order.status = if done {
            Status::Filled
        } else if o.kind == OrderType::Market
            || o.tif != Some(Tif::Gtc) && o.kind == OrderType::Limit
        {
            Status::Expired
        } else if order.executed > 0 {
            Status::PartiallyFilled
        } else {
            Status::New
        };
        if order.status.is_open() {
            let rest = order.orig_qty - order.executed;
            let (asset, amount) = if buy {
                (&s.quote, notional(price, rest))
            } else {
                (&s.base, rest)
            };
            let b = acct.balances.entry(asset.clone()).or_default();
            b.0 -= amount;
            b.1 += amount;
            order.locked = amount;
        }
        acct.orders.insert(id, order.clone());
        Ok(Placed {
            order,
            fills: with_ids,
            diff,
        })
    }

    /// Fills resting orders of symbol `s` that the market reached; returns
    /// the trades made (for the public stream).
    pub fn match_resting(
        &mut self,
        s: &SymbolSpec,
        best_bid: i64,
        best_ask: i64,
        trade_id: &mut u64,
        now: i64,
    ) -> Vec<Trade> {
        let mut out = Vec::new();
        for acct in self.by_key.values_mut() {
            let ready: Vec<u64> = acct
                .orders
                .values()
                .filter(|o| {
                    o.symbol == s.index
                        && o.status.is_open()
                        && match o.side {
                            Side::Buy => best_ask <= o.price,
                            Side::Sell => best_bid >= o.price,
                        }
                })
                .map(|o| o.id)
                .collect();
            for id in ready {
                let Some(mut o) = acct.orders.remove(&id) else {
                    continue;
                };
                let buy = o.side == Side::Buy;
                let rest = o.orig_qty - o.executed;
                let asset = if buy { &s.quote } else { &s.base };
                if let Some(b) = acct.balances.get_mut(asset) {
                    b.1 -= o.locked;
                    b.0 += o.locked;
                }
                o.locked = 0;
                settle(acct, s, buy, o.price, rest, true);
                *trade_id += 1;
                o.executed += rest;
                o.cum_quote += notional(o.price, rest);
                o.status = Status::Filled;
                o.update_time = now;
                let t = Trade {
                    symbol: s.index,
                    id: *trade_id,
                    order_id: id,
                    price: o.price,
                    qty: rest,
                    time: now,
                    is_buyer: buy,
                    is_maker: true,
                };
                acct.trades.push(t.clone());
                out.push(t);
                acct.orders.insert(id, o);
            }
        }
        out
    }

    pub fn find(
        &mut self,
        key: &str,
        symbol: usize,
        id: Option<u64>,
        client: Option<&str>,
    ) -> Option<Order> {
        let acct = self.account(key);
        acct.orders
            .values()
            .find(|o| {
                o.symbol == symbol
                    && (id.is_none_or(|i| o.id == i))
                    && (client.is_none_or(|c| o.client_id == c))
            })
            .cloned()
    }

    pub fn cancel(&mut self, key: &str, s: &SymbolSpec, id: u64, now: i64) -> Option<Order> {
        let acct = self.account(key);
        let o = acct.orders.get_mut(&id)?;
        if o.symbol != s.index || !o.status.is_open() {
            return None;
        }
        let asset = if o.side == Side::Buy {
            &s.quote
        } else {
            &s.base
        };
        if let Some(b) = acct.balances.get_mut(asset) {
            b.1 -= o.locked;
            b.0 += o.locked;
        }
        o.locked = 0;
        o.status = Status::Canceled;
        o.update_time = now;
        Some(o.clone())
    }

    pub fn open_orders(&mut self, key: &str, symbol: Option<usize>) -> Vec<Order> {
        self.account(key)
            .orders
            .values()
            .filter(|o| o.status.is_open() && symbol.is_none_or(|s| o.symbol == s))
            .cloned()
            .collect()
    }

    pub fn all_orders(&mut self, key: &str, symbol: usize) -> Vec<Order> {
        self.account(key)
            .orders
            .values()
            .filter(|o| o.symbol == symbol)
            .cloned()
            .collect()
    }

    pub fn trades(&mut self, key: &str, symbol: usize) -> Vec<Trade> {
        self.account(key)
            .trades
            .iter()
            .filter(|t| t.symbol == symbol)
            .cloned()
            .collect()
    }

    pub fn balances(&mut self, key: &str) -> Vec<(String, i64, i64)> {
        self.account(key)
            .balances
            .iter()
            .map(|(a, (f, l))| (a.clone(), *f, *l))
            .collect()
    }
}

fn settle(acct: &mut Account, s: &SymbolSpec, buy: bool, price: i64, qty: i64, from_locked: bool) {
    let value = notional(price, qty);
    let (pay, pay_amt, get, get_amt) = if buy {
        (&s.quote, value, &s.base, qty)
    } else {
        (&s.base, qty, &s.quote, value)
    };
    if !from_locked {
        acct.balances.entry(pay.clone()).or_default().0 -= pay_amt;
    }
    acct.balances.entry(get.clone()).or_default().0 += get_amt;
}

// ---------------------------------------------------------------------------
// JSON shapes
// ---------------------------------------------------------------------------

fn common(out: &mut String, s: &SymbolSpec, o: &Order) {
    let _ = write!(
        out,
        "\"symbol\":\"{}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":\"{}\",\"price\":\"{}\",\"origQty\":\"{}\",\"executedQty\":\"{}\",\"origQuoteOrderQty\":\"{}\",\"cummulativeQuoteQty\":\"{}\",\"status\":\"{}\",\"timeInForce\":\"{}\",\"type\":\"{}\",\"side\":\"{}\"",
        s.name,
        o.id,
        o.client_id,
        fmt8(o.price),
        fmt8(o.orig_qty),
        fmt8(o.executed),
        fmt8(o.orig_quote),
        fmt8(o.cum_quote),
        o.status.name(),
        o.tif.unwrap_or(Tif::Gtc).name(),
        o.kind.name(),
        o.side.name()
    );
}

/// The response of POST /order (`newOrderRespType` ACK, RESULT or FULL).
pub fn placed_json(s: &SymbolSpec, p: &Placed, resp: &str) -> String {
    let o = &p.order;
    let mut out = String::from("{");
    if resp == "ACK" {
        let _ = write!(
            out,
            "\"symbol\":\"{}\",\"orderId\":{},\"orderListId\":-1,\"clientOrderId\":\"{}\",\"transactTime\":{}}}",
            s.name, o.id, o.client_id, o.time
        );
        return out;
    }
    common(&mut out, s, o);
    let _ = write!(
        out,
        ",\"transactTime\":{},\"workingTime\":{},\"selfTradePreventionMode\":\"NONE\"",
        o.time, o.time
    );
    if resp == "FULL" {
        out.push_str(",\"fills\":[");
        for (i, (f, tid)) in p.fills.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let asset = if o.side == Side::Buy {
                &s.base
            } else {
                &s.quote
            };
            let _ = write!(
                out,
                "{{\"price\":\"{}\",\"qty\":\"{}\",\"commission\":\"0.00000000\",\"commissionAsset\":\"{}\",\"tradeId\":{}}}",
                fmt8(f.price),
                fmt8(f.qty),
                asset,
                tid
            );
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// The shape of GET /order and /openOrders entries.
pub fn order_json(out: &mut String, s: &SymbolSpec, o: &Order) {
    out.push('{');
    common(out, s, o);
    let _ = write!(
        out,
        ",\"stopPrice\":\"0.00000000\",\"icebergQty\":\"0.00000000\",\"time\":{},\"updateTime\":{},\"isWorking\":true,\"workingTime\":{},\"selfTradePreventionMode\":\"NONE\"}}",
        o.time, o.update_time, o.time
    );
}

/// The response of DELETE /order.
pub fn canceled_json(s: &SymbolSpec, o: &Order, now: i64) -> String {
    let mut out = String::from("{");
    let _ = write!(out, "\"origClientOrderId\":\"{}\",", o.client_id);
    common(&mut out, s, o);
    let _ = write!(
        out,
        ",\"transactTime\":{now},\"selfTradePreventionMode\":\"NONE\"}}"
    );
    out
}

pub fn trade_json(out: &mut String, s: &SymbolSpec, t: &Trade) {
    let asset = if t.is_buyer { &s.base } else { &s.quote };
    let _ = write!(
        out,
        "{{\"symbol\":\"{}\",\"id\":{},\"orderId\":{},\"orderListId\":-1,\"price\":\"{}\",\"qty\":\"{}\",\"quoteQty\":\"{}\",\"commission\":\"0.00000000\",\"commissionAsset\":\"{}\",\"time\":{},\"isBuyer\":{},\"isMaker\":{},\"isBestMatch\":true}}",
        s.name,
        t.id,
        t.order_id,
        fmt8(t.price),
        fmt8(t.qty),
        fmt8(notional(t.price, t.qty)),
        asset,
        t.time,
        t.is_buyer,
        t.is_maker
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SymbolSpec, Book, Accounts) {
        let s = SymbolSpec::new(0, "BTCUSDT", 1).unwrap();
        let mut b = Book::new(1, 100, 0);
        b.update(&s, s.ref_price);
        let a = Accounts::new(
            &["k".into()],
            vec![("USDT".into(), 100_000 * UNIT), ("BTC".into(), UNIT)],
        );
        (s, b, a)
    }

    fn order(kind: OrderType, side: Side, qty: i64, price: Option<i64>) -> NewOrder {
        NewOrder {
            symbol: 0,
            side,
            kind,
            tif: (kind == OrderType::Limit).then_some(Tif::Gtc),
            qty: Some(qty),
            quote_qty: None,
            price,
            client_id: None,
        }
    }

    #[test]
    fn market_buy_fills_and_moves_balances() {
        let (s, mut b, mut a) = setup();
        let mut tid = 10;
        let p = a
            .place(
                "k",
                &s,
                &mut b,
                &mut tid,
                order(OrderType::Market, Side::Buy, s.step * 100, None),
                5,
            )
            .unwrap();
        assert_eq!(p.order.status, Status::Filled);
        assert_eq!(p.order.executed, s.step * 100);
        assert!(tid > 10);
        let bal = a.balances("k");
        let btc = bal.iter().find(|x| x.0 == "BTC").unwrap();
        assert_eq!(btc.1, UNIT + s.step * 100);
    }

    #[test]
    fn filters_and_balance_rejections() {
        let (s, mut b, mut a) = setup();
        let mut tid = 0;
        let mut place = |o| a.place("k", &s, &mut b, &mut tid, o, 0);
        let px = s.ref_price - 100 * s.tick;
        let r = place(order(
            OrderType::Limit,
            Side::Buy,
            s.step / 2 + s.step,
            Some(px),
        ));
        assert_eq!(r.err().unwrap(), filter("LOT_SIZE"));
        let r = place(order(
            OrderType::Limit,
            Side::Buy,
            s.step * 100,
            Some(px + 1),
        ));
        assert_eq!(r.err().unwrap(), filter("PRICE_FILTER"));
        let r = place(order(OrderType::Limit, Side::Buy, s.step, Some(px)));
        assert_eq!(r.err().unwrap(), filter("NOTIONAL"));
        let r = place(order(OrderType::Limit, Side::Sell, 2 * UNIT, Some(px)));
        assert_eq!(r.err().unwrap().0, -2010);
    }

    #[test]
    fn resting_limit_fills_when_the_market_reaches_it() {
        let (s, mut b, mut a) = setup();
        let mut tid = 0;
        let px = s.ref_price - 1000 * s.tick;
        let q = s.step * 1000;
        let p = a
            .place(
                "k",
                &s,
                &mut b,
                &mut tid,
                order(OrderType::Limit, Side::Buy, q, Some(px)),
                1,
            )
            .unwrap();
        assert_eq!(p.order.status, Status::New);
        let usdt = |a: &mut Accounts| a.balances("k").into_iter().find(|x| x.0 == "USDT").unwrap();
        assert_eq!(usdt(&mut a).2, notional(px, q));
        assert_eq!(a.open_orders("k", Some(0)).len(), 1);
        assert!(a
            .match_resting(&s, px - 2 * s.tick, px + s.tick, &mut tid, 2)
            .is_empty());
        let t = a.match_resting(&s, px - 2 * s.tick, px, &mut tid, 3);
        assert_eq!(t.len(), 1);
        assert!(t[0].is_maker);
        assert_eq!(usdt(&mut a).2, 0);
        assert_eq!(
            a.find("k", 0, Some(p.order.id), None).unwrap().status,
            Status::Filled
        );
        assert!(a.cancel("k", &s, p.order.id, 4).is_none());
    }
}
