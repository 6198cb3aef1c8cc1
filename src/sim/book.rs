//! The simulated order book of one symbol.
//!
//! The book follows the price process: the best bid sits one tick under the
//! current price and the best ask one tick over it, with `levels` levels a
//! tick apart on each side (at most 5000, so `/depth?limit=5000` is the whole
//! book). Quantities are seeded: the top 20 levels change on every update,
//! a few deeper ones at random, and market orders consume levels. Every
//! change bumps the update id, so `/depth`'s `lastUpdateId` and the streams'
//! `U`/`u` ids describe one sequence.

use std::collections::BTreeMap;

use super::price::{hash, unit, SymbolSpec};

/// The largest number of levels per side.
pub const MAX_LEVELS: usize = 5000;
const TOP_REFRESH: i64 = 20;
const DEEP_REFRESH: u64 = 4;

/// One batch of level changes, with the update ids it spans (`U`..=`u`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    pub first: u64,
    pub last: u64,
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    /// Folds a later diff into this one (latest quantity per price wins).
    pub fn absorb(&mut self, later: Diff) {
        if self.first == 0 {
            self.first = later.first;
        }
        self.last = later.last;
        merge_side(&mut self.bids, later.bids);
        merge_side(&mut self.asks, later.asks);
    }
}

fn merge_side(into: &mut Vec<(i64, i64)>, later: Vec<(i64, i64)>) {
    if into.is_empty() {
        *into = later;
        return;
    }
    let mut m: BTreeMap<i64, i64> = into.drain(..).collect();
    for (p, q) in later {
        m.insert(p, q);
    }
    into.extend(m);
}

fn level_qty(seed: u64, s: &SymbolSpec, price: i64, salt: u64) -> i64 {
    let base = (s.minute_volume / 40).max(s.step);
    let u = unit(&[seed, s.key, 700, price as u64, salt]);
    ((base as f64 * (0.05 + 1.95 * u)) as i64 / s.step).max(1) * s.step
}

pub struct Book {
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
    pub last_update_id: u64,
    levels: i64,
    generation: u64,
    seed: u64,
    /// Set when a taker consumed levels: the next update refills the whole
    /// window instead of only the prices the window moved onto.
    holes: bool,
    window: Option<(i64, i64)>,
}

/// A fill of a taker order against the book.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fill {
    pub price: i64,
    pub qty: i64,
}

impl Book {
    pub fn new(seed: u64, levels: usize, first_id: u64) -> Book {
        Book {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_update_id: first_id,
            levels: levels.clamp(1, MAX_LEVELS) as i64,
            generation: 0,
            seed,
            holes: true,
            window: None,
        }
    }

    fn level_qty(&self, s: &SymbolSpec, price: i64, salt: u64) -> i64 {
        level_qty(self.seed, s, price, salt)
    }

    pub fn best_bid(&self) -> Option<(i64, i64)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    pub fn best_ask(&self) -> Option<(i64, i64)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    fn finish(&mut self, bids: Vec<(i64, i64)>, asks: Vec<(i64, i64)>) -> Diff {
        if bids.is_empty() && asks.is_empty() {
            return Diff::default();
        }
        let n = (bids.len() + asks.len()) as u64;
        let first = self.last_update_id + 1;
        self.last_update_id += n;
        Diff {
            first,
            last: self.last_update_id,
            bids,
            asks,
        }
    }

    /// Moves the book to the current price and refreshes levels; returns
    /// the changes (possibly empty of levels, but always a new id range).
    pub fn update(&mut self, s: &SymbolSpec, price: i64) -> Diff {
        self.generation += 1;
        let g = self.generation;
        let best_bid = (price - s.tick).max(s.tick);
        let best_ask = price + s.tick;
        let bid_lo = (best_bid - (self.levels - 1) * s.tick).max(s.tick);
        let ask_hi = best_ask + (self.levels - 1) * s.tick;
        let mut bid_ch: BTreeMap<i64, i64> = BTreeMap::new();
        let mut ask_ch: BTreeMap<i64, i64> = BTreeMap::new();

        // levels outside the new windows go
        let gone: Vec<i64> = self
            .bids
            .keys()
            .filter(|p| **p > best_bid || **p < bid_lo)
            .copied()
            .collect();
        for p in gone {
            self.bids.remove(&p);
            bid_ch.insert(p, 0);
        }
        let gone: Vec<i64> = self
            .asks
            .keys()
            .filter(|p| **p < best_ask || **p > ask_hi)
            .copied()
            .collect();
        for p in gone {
            self.asks.remove(&p);
            ask_ch.insert(p, 0);
        }
        // fill the windows; the loops only visit missing prices when the
        // windows are full, as walks from each end stop at the first present
        // level, except after a jump or a consumed top level
        // fill the windows: all of them after a taker left holes or a jump,
        // otherwise only the prices the windows moved onto
        let full = self.holes
            || self
                .window
                .is_none_or(|(ob, _)| (ob - best_bid).abs() >= self.levels * s.tick);
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        if full {
            ranges.push((bid_lo, ask_hi));
        } else if let Some((old_bid, _)) = self.window {
            // the top where the sides swapped, and each far end by the move
            let d = (best_bid - old_bid).abs() + s.tick;
            ranges.push((
                old_bid.min(best_bid) - s.tick,
                old_bid.max(best_bid) + 3 * s.tick,
            ));
            ranges.push((bid_lo, bid_lo + d));
            ranges.push((ask_hi - d, ask_hi));
        }
        for (lo, hi) in ranges {
            let mut p = lo.max(bid_lo);
            while p <= hi {
                let side = if p <= best_bid {
                    Some((&mut self.bids, &mut bid_ch))
                } else if p >= best_ask {
                    Some((&mut self.asks, &mut ask_ch))
                } else {
                    None
                };
                if let Some((levels, changes)) = side {
                    if p >= bid_lo && p <= ask_hi && !levels.contains_key(&p) {
                        let q = level_qty(self.seed, s, p, g);
                        levels.insert(p, q);
                        changes.insert(p, q);
                    }
                }
                p += s.tick;
            }
        }
        self.holes = false;
        self.window = Some((best_bid, best_ask));
        // refresh the top levels and a few deep ones
        for i in 0..TOP_REFRESH.min(self.levels) {
            let bp = best_bid - i * s.tick;
            if bp >= bid_lo && hash(&[self.seed, s.key, 710, g, i as u64]) % 3 == 0 {
                let q = self.level_qty(s, bp, g);
                self.bids.insert(bp, q);
                bid_ch.insert(bp, q);
            }
            let ap = best_ask + i * s.tick;
            if hash(&[self.seed, s.key, 711, g, i as u64]) % 3 == 0 {
                let q = self.level_qty(s, ap, g);
                self.asks.insert(ap, q);
                ask_ch.insert(ap, q);
            }
        }
        for k in 0..DEEP_REFRESH {
            let depth = (hash(&[self.seed, s.key, 712, g, k]) % self.levels as u64) as i64;
            let (bp, ap) = (best_bid - depth * s.tick, best_ask + depth * s.tick);
            if bp >= bid_lo {
                let q = self.level_qty(s, bp, g);
                self.bids.insert(bp, q);
                bid_ch.insert(bp, q);
            }
            let q = self.level_qty(s, ap, g);
            self.asks.insert(ap, q);
            ask_ch.insert(ap, q);
        }
        self.finish(bid_ch.into_iter().collect(), ask_ch.into_iter().collect())
    }

    /// Takes liquidity for a taker order: a buy walks the asks up to
    /// `limit` (or without bound), a sell the bids down. `max_qty` bounds the
    /// base quantity, `max_quote` the quote amount spent (market buys by
    /// `quoteOrderQty`). Returns the fills and the book's changes.
    pub fn take(
        &mut self,
        buy: bool,
        limit: Option<i64>,
        mut max_qty: i64,
        mut max_quote: Option<i128>,
        step: i64,
    ) -> (Vec<Fill>, Diff) {
        let mut fills = Vec::new();
        let mut changes = Vec::new();
        loop {
            if max_qty <= 0 {
                break;
            }
            let level = if buy {
                self.best_ask()
            } else {
                self.best_bid()
            };
            let Some((price, avail)) = level else { break };
            if let Some(l) = limit {
                if (buy && price > l) || (!buy && price < l) {
                    break;
                }
            }
            let mut q = avail.min(max_qty);
            if let Some(mq) = max_quote {
                let affordable = (mq * super::price::UNIT as i128 / price as i128) as i64;
                q = q.min(affordable / step * step);
            }
            if q <= 0 {
                break;
            }
            fills.push(Fill { price, qty: q });
            max_qty -= q;
            if let Some(mq) = &mut max_quote {
                *mq -= price as i128 * q as i128 / super::price::UNIT as i128;
            }
            let side = if buy { &mut self.asks } else { &mut self.bids };
            if q == avail {
                side.remove(&price);
                changes.push((price, 0));
            } else {
                side.insert(price, avail - q);
                changes.push((price, avail - q));
            }
        }
        if !changes.is_empty() {
            self.holes = true;
        }
        let diff = if changes.is_empty() {
            Diff::default()
        } else if buy {
            self.finish(Vec::new(), changes)
        } else {
            self.finish(changes, Vec::new())
        };
        (fills, diff)
    }

    /// Applies a diff to a copy of levels, as a client following the
    /// streams would (used by tests).
    pub fn apply(levels: &mut BTreeMap<i64, i64>, changes: &[(i64, i64)]) {
        for (p, q) in changes {
            if *q == 0 {
                levels.remove(p);
            } else {
                levels.insert(*p, *q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_reproduce_the_book_and_ids_are_contiguous() {
        let s = SymbolSpec::new(0, "ETHUSDT", 3).unwrap();
        let mut b = Book::new(3, 200, 1000);
        let first = b.update(&s, s.ref_price);
        let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
        Book::apply(&mut bids, &first.bids);
        Book::apply(&mut asks, &first.asks);
        assert_eq!(first.first, 1001);
        let mut last = first.last;
        let mut price = s.ref_price;
        for i in 0..300 {
            price += s.tick * ((i % 7) - 3) * if i % 50 == 0 { 400 } else { 1 };
            let d = if i % 10 == 3 {
                b.take(i % 20 == 3, None, s.minute_volume / 10, None, s.step)
                    .1
            } else {
                b.update(&s, price)
            };
            if d.first == 0 {
                continue;
            }
            assert_eq!(d.first, last + 1);
            last = d.last;
            Book::apply(&mut bids, &d.bids);
            Book::apply(&mut asks, &d.asks);
            assert_eq!(bids, b.bids);
            assert_eq!(asks, b.asks);
            assert!(b.bids.len() <= 200 && b.asks.len() <= 200);
        }
        let (bb, _) = b.best_bid().unwrap();
        let (ba, _) = b.best_ask().unwrap();
        assert!(bb < ba);
    }

    #[test]
    fn taking_walks_levels_and_respects_limits() {
        let s = SymbolSpec::new(0, "BTCUSDT", 3).unwrap();
        let mut b = Book::new(3, 50, 0);
        b.update(&s, s.ref_price);
        let (ask, q0) = b.best_ask().unwrap();
        let (fills, d) = b.take(true, Some(ask), q0 * 10, None, s.step);
        assert_eq!(
            fills,
            vec![Fill {
                price: ask,
                qty: q0
            }]
        );
        assert_eq!(d.asks, vec![(ask, 0)]);
        let (fills, _) = b.take(false, None, s.step, None, s.step);
        assert_eq!(fills.len(), 1);
    }
}
