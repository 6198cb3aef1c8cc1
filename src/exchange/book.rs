//! A local order book from a `/depth` snapshot and `@depth` diff events, by
//! Binance's rules for managing one:
//!
//! - diffs that arrive before the snapshot are buffered;
//! - diffs with `u` <= the snapshot's `lastUpdateId` are stale and dropped;
//! - the first diff applied must have `U` <= lastUpdateId + 1 <= `u`;
//! - after that each diff's `U` must be the previous `u` + 1, otherwise
//!   updates were missed and the book must be rebuilt from a new snapshot;
//! - a quantity of 0 removes the level.
//!
//! Prices are kept as fixed-point integers (8 decimals, as the exchange
//! sends them) so levels compare exactly; the book holds at most `max_depth`
//! levels a side (the ones farthest from the touch are dropped), which
//! bounds its memory.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::errors::{ErrorKind, FtError, FtResult};

const SCALE: f64 = 1e8;

/// Levels of one side: (fixed-point price, quantity).
pub type Levels = Vec<(i64, f64)>;
/// Levels of one side as floats, best first: (price, quantity).
pub type FloatLevels = Vec<(f64, f64)>;

/// A decimal string with at most 8 decimals as an integer count of 1e-8.
pub fn parse_fixed(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 8 || int.is_empty() && frac.is_empty() {
        return None;
    }
    let neg = int.starts_with('-');
    let digits = int.trim_start_matches('-');
    let mut v: i64 = 0;
    for c in digits.bytes().chain(frac.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    for _ in frac.len()..8 {
        v = v.checked_mul(10)?;
    }
    Some(if neg { -v } else { v })
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    pub first: u64,
    pub last: u64,
    pub bids: Vec<(i64, f64)>,
    pub asks: Vec<(i64, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied to the book.
    Applied,
    /// Held until a snapshot arrives.
    Buffered,
    /// Older than the book; ignored.
    Stale,
    /// Updates were missed: the book is cleared and needs a new snapshot.
    Gap,
}

#[derive(Debug, Default)]
pub struct Book {
    bids: BTreeMap<i64, f64>,
    asks: BTreeMap<i64, f64>,
    last_id: Option<u64>,
    buffer: Vec<Diff>,
    max_depth: usize,
    max_buffer: usize,
    pub gaps: u64,
    pub applied: u64,
    pub levels_applied: u64,
}

fn levels(raw: &[(String, String)], what: &str) -> FtResult<Vec<(i64, f64)>> {
    raw.iter()
        .map(|(p, q)| {
            let price = parse_fixed(p);
            let qty = q.parse::<f64>().ok().filter(|q| q.is_finite() && *q >= 0.0);
            match (price, qty) {
                (Some(p), Some(q)) => Ok((p, q)),
                _ => Err(FtError::new(
                    ErrorKind::Exchange,
                    format!("malformed {what} level [{p:?}, {q:?}]"),
                )),
            }
        })
        .collect()
}

/// A `/depth` body: (lastUpdateId, bids, asks).
pub fn parse_snapshot(body: &[u8]) -> FtResult<(u64, Levels, Levels)> {
    #[derive(Deserialize)]
    struct S {
        #[serde(rename = "lastUpdateId")]
        last: u64,
        bids: Vec<(String, String)>,
        asks: Vec<(String, String)>,
    }
    let s: S = serde_json::from_slice(body).map_err(|e| {
        FtError::new(
            ErrorKind::Exchange,
            format!("malformed depth snapshot: {e}"),
        )
    })?;
    Ok((s.last, levels(&s.bids, "bid")?, levels(&s.asks, "ask")?))
}

/// A `depthUpdate` event (bare or wrapped in a combined stream's `data`).
pub fn parse_diff(frame: &[u8]) -> FtResult<Diff> {
    #[derive(Deserialize)]
    struct D {
        #[serde(rename = "U")]
        first: u64,
        #[serde(rename = "u")]
        last: u64,
        #[serde(rename = "b")]
        bids: Vec<(String, String)>,
        #[serde(rename = "a")]
        asks: Vec<(String, String)>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        Wrapped { data: D },
        Bare(D),
    }
    let d = match serde_json::from_slice::<F>(frame) {
        Ok(F::Wrapped { data }) | Ok(F::Bare(data)) => data,
        Err(e) => {
            return Err(FtError::new(
                ErrorKind::Exchange,
                format!("malformed depth update: {e}"),
            ))
        }
    };
    if d.first > d.last {
        return Err(FtError::new(
            ErrorKind::Exchange,
            format!("malformed depth update: U {} > u {}", d.first, d.last),
        ));
    }
    Ok(Diff {
        first: d.first,
        last: d.last,
        bids: levels(&d.bids, "bid")?,
        asks: levels(&d.asks, "ask")?,
    })
}

impl Book {
    /// A book of at most `max_depth` levels a side, buffering at most
    /// `max_buffer` diffs while it waits for a snapshot.
    pub fn new(max_depth: usize, max_buffer: usize) -> Book {
        Book {
            max_depth: max_depth.max(1),
            max_buffer: max_buffer.max(1),
            ..Book::default()
        }
    }

    pub fn last_update_id(&self) -> Option<u64> {
        self.last_id
    }

    pub fn is_synced(&self) -> bool {
        self.last_id.is_some()
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn set(side: &mut BTreeMap<i64, f64>, levels: &[(i64, f64)]) {
        for &(p, q) in levels {
            if q == 0.0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }

    fn trim(&mut self) {
        while self.bids.len() > self.max_depth {
            self.bids.pop_first();
        }
        while self.asks.len() > self.max_depth {
            self.asks.pop_last();
        }
    }

    fn apply(&mut self, d: &Diff) {
        Self::set(&mut self.bids, &d.bids);
        Self::set(&mut self.asks, &d.asks);
        self.trim();
        self.last_id = Some(d.last);
        self.applied += 1;
        self.levels_applied += (d.bids.len() + d.asks.len()) as u64;
    }

    fn gap(&mut self) -> Applied {
        self.bids.clear();
        self.asks.clear();
        self.last_id = None;
        self.gaps += 1;
        Applied::Gap
    }

    /// Loads a snapshot and applies the buffered diffs that follow it.
    /// Returns `Gap` if the buffer does not connect to it (a newer snapshot
    /// is needed), else `Applied`.
    pub fn snapshot(&mut self, last_id: u64, bids: &[(i64, f64)], asks: &[(i64, f64)]) -> Applied {
        self.bids.clear();
        self.asks.clear();
        Self::set(&mut self.bids, bids);
        Self::set(&mut self.asks, asks);
        self.trim();
        self.last_id = Some(last_id);
        let buffered = std::mem::take(&mut self.buffer);
        for (i, d) in buffered.iter().enumerate() {
            if self.diff(d.clone()) == Applied::Gap {
                // keep the failed diff and the ones after it for the next snapshot
                self.buffer = buffered[i..].to_vec();
                return Applied::Gap;
            }
        }
        Applied::Applied
    }

    /// One diff event.
    pub fn diff(&mut self, d: Diff) -> Applied {
        let Some(last) = self.last_id else {
            if self.buffer.len() >= self.max_buffer {
                self.buffer.remove(0);
            }
            self.buffer.push(d);
            return Applied::Buffered;
        };
        if d.last <= last {
            return Applied::Stale;
        }
        if d.first > last + 1 {
            // missed updates: later diffs are kept for the next snapshot
            self.gap();
            self.buffer.push(d);
            return Applied::Gap;
        }
        self.apply(&d);
        Applied::Applied
    }

    pub fn best_bid(&self) -> Option<(f64, f64)> {
        self.bids
            .last_key_value()
            .map(|(p, q)| (*p as f64 / SCALE, *q))
    }

    pub fn best_ask(&self) -> Option<(f64, f64)> {
        self.asks
            .first_key_value()
            .map(|(p, q)| (*p as f64 / SCALE, *q))
    }

    pub fn mid(&self) -> Option<f64> {
        Some((self.best_bid()?.0 + self.best_ask()?.0) / 2.0)
    }

    /// The best `n` levels a side, best first: (bids, asks) of (price, qty).
    pub fn depth(&self, n: usize) -> (FloatLevels, FloatLevels) {
        let b = self
            .bids
            .iter()
            .rev()
            .take(n)
            .map(|(p, q)| (*p as f64 / SCALE, *q))
            .collect();
        let a = self
            .asks
            .iter()
            .take(n)
            .map(|(p, q)| (*p as f64 / SCALE, *q))
            .collect();
        (b, a)
    }

    pub fn len(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(first: u64, last: u64, bids: &[(i64, f64)], asks: &[(i64, f64)]) -> Diff {
        Diff {
            first,
            last,
            bids: bids.to_vec(),
            asks: asks.to_vec(),
        }
    }

    #[test]
    fn fixed_point_prices() {
        assert_eq!(parse_fixed("0.01634790"), Some(1_634_790));
        assert_eq!(parse_fixed("42000"), Some(4_200_000_000_000));
        assert_eq!(parse_fixed("1.5"), Some(150_000_000));
        assert_eq!(parse_fixed("1.123456789"), None);
        assert_eq!(parse_fixed("x"), None);
        assert_eq!(parse_fixed(""), None);
    }

    #[test]
    fn buffer_stale_apply_and_gap_by_the_u_rules() {
        let mut b = Book::new(100, 1000);
        // before the snapshot: buffered
        assert_eq!(b.diff(d(95, 99, &[(100, 1.0)], &[])), Applied::Buffered);
        assert_eq!(
            b.diff(d(100, 104, &[(101, 2.0)], &[(105, 1.0)])),
            Applied::Buffered
        );
        assert_eq!(b.diff(d(105, 106, &[(100, 0.0)], &[])), Applied::Buffered);
        // snapshot at 101: the first diff is stale, the second straddles 102
        let r = b.snapshot(101, &[(100, 5.0), (99, 1.0)], &[(106, 1.0)]);
        assert_eq!(r, Applied::Applied);
        assert_eq!(b.last_update_id(), Some(106));
        assert_eq!(b.best_bid(), Some((101e-8, 2.0)));
        assert_eq!(b.best_ask(), Some((105e-8, 1.0)));
        assert_eq!(b.depth(5).0, vec![(101e-8, 2.0), (99e-8, 1.0)]);
        assert_eq!(b.diff(d(100, 106, &[], &[])), Applied::Stale);
        assert_eq!(b.diff(d(107, 107, &[(102, 1.0)], &[])), Applied::Applied);
        // a skipped diff: the book is dropped and waits for a new snapshot
        assert_eq!(b.diff(d(109, 110, &[], &[])), Applied::Gap);
        assert!(!b.is_synced() && b.gaps == 1);
        assert_eq!(b.diff(d(111, 112, &[(103, 1.0)], &[])), Applied::Buffered);
        assert_eq!(
            b.snapshot(110, &[(90, 1.0)], &[(200, 1.0)]),
            Applied::Applied
        );
        assert_eq!(b.last_update_id(), Some(112));
        assert_eq!(b.best_bid(), Some((103e-8, 1.0)));
        // a snapshot older than the buffered diffs' start is a gap
        let mut c = Book::new(10, 10);
        c.diff(d(50, 60, &[], &[]));
        assert_eq!(c.snapshot(40, &[], &[]), Applied::Gap);
    }

    #[test]
    fn depth_is_bounded() {
        let mut b = Book::new(3, 10);
        let bids: Vec<_> = (1..=10).map(|p| (p, 1.0)).collect();
        let asks: Vec<_> = (11..=20).map(|p| (p, 1.0)).collect();
        b.snapshot(1, &bids, &asks);
        assert_eq!(b.len(), (3, 3));
        assert_eq!(b.best_bid().unwrap().0, 10e-8);
        assert_eq!(b.depth(10).1.last().unwrap().0, 13e-8);
        assert!(b.mid().is_some());
    }

    #[test]
    fn parses_events() {
        let f = br#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}"#;
        let d = parse_diff(f).unwrap();
        assert_eq!((d.first, d.last), (157, 160));
        assert_eq!(d.bids, vec![(240_000, 10.0)]);
        assert!(parse_diff(b"{\"U\":3,\"u\":2,\"b\":[],\"a\":[]}").is_err());
        let (id, b, a) =
            parse_snapshot(br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}"#)
                .unwrap();
        assert_eq!((id, b.len(), a[0].0), (1027024, 1, 400_000_200));
        assert!(parse_snapshot(b"{\"lastUpdateId\":1").is_err());
    }
}
