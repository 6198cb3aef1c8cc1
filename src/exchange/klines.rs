//! Klines parsed from the response body straight into columns: one pass over
//! the bytes, no intermediate JSON values.
//!
//! A body is `[[openTime, "open", "high", "low", "close", "volume",
//! closeTime, "quoteVolume", trades, "takerBuyBase", "takerBuyQuote",
//! "ignore"], ...]` as Binance documents it.

use crate::errors::{ErrorKind, FtError, FtResult};

/// Kline intervals Binance accepts, with their length in ms (a month counted
/// as 31 days: only used to size pages).
pub const INTERVALS: &[(&str, i64)] = &[
    ("1s", 1_000),
    ("1m", 60_000),
    ("3m", 180_000),
    ("5m", 300_000),
    ("15m", 900_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("4h", 14_400_000),
    ("6h", 21_600_000),
    ("8h", 28_800_000),
    ("12h", 43_200_000),
    ("1d", 86_400_000),
    ("3d", 259_200_000),
    ("1w", 604_800_000),
    ("1M", 2_678_400_000),
];

pub fn interval_ms(interval: &str) -> Option<i64> {
    INTERVALS
        .iter()
        .find(|(n, _)| *n == interval)
        .map(|(_, ms)| *ms)
}

#[derive(Default, Debug, Clone, PartialEq)]
pub struct Columns {
    pub open_time: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    pub close_time: Vec<i64>,
    pub quote_volume: Vec<f64>,
    pub trades: Vec<i64>,
    pub taker_buy_base: Vec<f64>,
    pub taker_buy_quote: Vec<f64>,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.open_time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open_time.is_empty()
    }

    pub fn append(&mut self, mut o: Columns) {
        self.open_time.append(&mut o.open_time);
        self.open.append(&mut o.open);
        self.high.append(&mut o.high);
        self.low.append(&mut o.low);
        self.close.append(&mut o.close);
        self.volume.append(&mut o.volume);
        self.close_time.append(&mut o.close_time);
        self.quote_volume.append(&mut o.quote_volume);
        self.trades.append(&mut o.trades);
        self.taker_buy_base.append(&mut o.taker_buy_base);
        self.taker_buy_quote.append(&mut o.taker_buy_quote);
    }

    /// Keeps rows `from..` (drops the head).
    pub fn drop_head(&mut self, n: usize) {
        let n = n.min(self.len());
        self.open_time.drain(..n);
        self.open.drain(..n);
        self.high.drain(..n);
        self.low.drain(..n);
        self.close.drain(..n);
        self.volume.drain(..n);
        self.close_time.drain(..n);
        self.quote_volume.drain(..n);
        self.trades.drain(..n);
        self.taker_buy_base.drain(..n);
        self.taker_buy_quote.drain(..n);
    }
}

fn malformed(at: usize) -> FtError {
    FtError::new(
        ErrorKind::Exchange,
        format!("malformed klines response (at byte {at})"),
    )
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> FtResult<()> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(malformed(self.i))
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// A number, bare or quoted, as its text.
    fn token(&mut self) -> FtResult<&str> {
        self.ws();
        let quoted = self.b.get(self.i) == Some(&b'"');
        if quoted {
            self.i += 1;
        }
        let start = self.i;
        while self.i < self.b.len()
            && matches!(
                self.b[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
            )
        {
            self.i += 1;
        }
        let end = self.i;
        if quoted {
            if self.b.get(self.i) != Some(&b'"') {
                return Err(malformed(self.i));
            }
            self.i += 1;
        }
        if start == end {
            return Err(malformed(start));
        }
        // the bytes matched above are ASCII
        std::str::from_utf8(&self.b[start..end]).map_err(|_| malformed(start))
    }

    fn f64(&mut self) -> FtResult<f64> {
        let at = self.i;
        self.token()?.parse().map_err(|_| malformed(at))
    }

    fn i64(&mut self) -> FtResult<i64> {
        let at = self.i;
        self.token()?.parse().map_err(|_| malformed(at))
    }

    /// Skips one JSON scalar (string or number).
    fn skip(&mut self) -> FtResult<()> {
        self.ws();
        if self.b.get(self.i) == Some(&b'"') {
            self.i += 1;
            while self.i < self.b.len() && self.b[self.i] != b'"' {
                self.i += if self.b[self.i] == b'\\' { 2 } else { 1 };
            }
            return self.eat(b'"');
        }
        let start = self.i;
        while self.i < self.b.len() && !matches!(self.b[self.i], b',' | b']' | b' ') {
            self.i += 1;
        }
        if start == self.i {
            return Err(malformed(start));
        }
        Ok(())
    }
}

/// Parses a klines body into columns.
pub fn parse(body: &[u8]) -> FtResult<Columns> {
    let mut p = P { b: body, i: 0 };
    let mut c = Columns::default();
    let n = body.len() / 120;
    for v in [&mut c.open_time, &mut c.close_time, &mut c.trades] {
        v.reserve(n);
    }
    p.eat(b'[')?;
    if p.peek() == Some(b']') {
        p.i += 1;
    } else {
        loop {
            p.eat(b'[')?;
            c.open_time.push(p.i64()?);
            p.eat(b',')?;
            c.open.push(p.f64()?);
            p.eat(b',')?;
            c.high.push(p.f64()?);
            p.eat(b',')?;
            c.low.push(p.f64()?);
            p.eat(b',')?;
            c.close.push(p.f64()?);
            p.eat(b',')?;
            c.volume.push(p.f64()?);
            p.eat(b',')?;
            c.close_time.push(p.i64()?);
            p.eat(b',')?;
            c.quote_volume.push(p.f64()?);
            p.eat(b',')?;
            c.trades.push(p.i64()?);
            p.eat(b',')?;
            c.taker_buy_base.push(p.f64()?);
            p.eat(b',')?;
            c.taker_buy_quote.push(p.f64()?);
            // any further fields ("ignore")
            while p.peek() == Some(b',') {
                p.i += 1;
                p.skip()?;
            }
            p.eat(b']')?;
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b']') => {
                    p.i += 1;
                    break;
                }
                _ => return Err(malformed(p.i)),
            }
        }
    }
    p.ws();
    if p.i != body.len() {
        return Err(malformed(p.i));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]"#;

    #[test]
    fn documented_row_parses() {
        let c = parse(format!("[{ROW}, {ROW}]").as_bytes()).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.open_time[1], 1499040000000);
        assert_eq!(c.high[0], 0.8);
        assert_eq!(c.close_time[0], 1499644799999);
        assert_eq!(c.trades[0], 308);
        assert_eq!(c.taker_buy_quote[0], 28.46694368);
        assert!(parse(b" [ ] ").unwrap().is_empty());
    }

    #[test]
    fn truncated_or_garbled_bodies_fail() {
        let full = format!("[{ROW},{ROW}]");
        for cut in [1, 10, full.len() / 2, full.len() - 1] {
            let e = parse(&full.as_bytes()[..cut]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Exchange);
        }
        assert!(parse(format!("}}[{ROW}]").as_bytes()).is_err());
        assert!(parse(b"{\"code\":-1121}").is_err());
        assert!(parse(format!("[{ROW}]x").as_bytes()).is_err());
    }
}
