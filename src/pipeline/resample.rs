//! OHLCV resampling: bars to wider bars, in one pass over sorted open times.
//!
//! A target timeframe is a [`Rule`]: fixed-width buckets (seconds to weeks, from
//! an origin) or explicit bucket edges (calendar months, or days and weeks in a
//! time zone, whose lengths vary; the Python side computes those edges). A bar
//! belongs to the bucket containing its open time, and a bucket is labelled by
//! its own open time. Aggregation skips NaN: open is the first non-NaN open, high
//! the largest high, low the smallest low, close the last non-NaN close, volume
//! the sum of the non-NaN volumes; a bucket with no number in a column gets NaN
//! there.
//!
//! Buckets with no input bars are left out unless `fill_empty` asks for them
//! (then open = high = low = close = the previous close, volume 0). The last
//! bucket is *partial* when the last input bar closes before the bucket ends.

use std::fmt;

/// Milliseconds from 1970-01-01 (a Thursday) to 1970-01-05, the first Monday:
/// the origin of week buckets, so weeks start on Monday 00:00 UTC.
pub const MONDAY_ORIGIN_MS: i64 = 4 * 86_400_000;

/// How open times map to buckets.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Buckets `[origin + k * width, origin + (k + 1) * width)`.
    Fixed { width: i64, origin: i64 },
    /// Buckets `[edges[i], edges[i + 1])`; edges strictly increase.
    Edges(Vec<i64>),
}

#[derive(Debug, PartialEq)]
pub enum ResampleError {
    /// Open times must strictly increase; `index` is the first that does not.
    NotIncreasing { index: usize },
    /// Column `name` has a different length from the open times.
    Length {
        name: &'static str,
        len: usize,
        expected: usize,
    },
    /// An open time outside the edges given.
    OutsideEdges { index: usize },
    /// A rule that cannot make buckets.
    BadRule(&'static str),
}

impl fmt::Display for ResampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResampleError::NotIncreasing { index } => write!(
                f,
                "open_time: must strictly increase; element {index} is not after the one before"
            ),
            ResampleError::Length {
                name,
                len,
                expected,
            } => write!(f, "{name}: {len} values, open_time has {expected}"),
            ResampleError::OutsideEdges { index } => {
                write!(
                    f,
                    "open_time: element {index} lies outside the bucket edges"
                )
            }
            ResampleError::BadRule(why) => write!(f, "rule: {why}"),
        }
    }
}

impl Rule {
    pub fn check(&self) -> Result<(), ResampleError> {
        match self {
            Rule::Fixed { width, .. } if *width <= 0 => {
                Err(ResampleError::BadRule("width must be positive"))
            }
            Rule::Edges(e) if e.len() < 2 => Err(ResampleError::BadRule("at least two edges")),
            Rule::Edges(e) if e.windows(2).any(|w| w[0] >= w[1]) => {
                Err(ResampleError::BadRule("edges must strictly increase"))
            }
            _ => Ok(()),
        }
    }

    /// The bucket holding `t`: its index in the rule's sequence and its
    /// `[open, end)` span. `None` outside the edges.
    #[inline]
    pub fn bucket(&self, t: i64) -> Option<(i64, i64, i64)> {
        match self {
            Rule::Fixed { width, origin } => {
                let k = (t - origin).div_euclid(*width);
                let open = origin + k * width;
                Some((k, open, open + width))
            }
            Rule::Edges(e) => {
                let i = e.partition_point(|&x| x <= t);
                if i == 0 || i >= e.len() {
                    return None;
                }
                Some(((i - 1) as i64, e[i - 1], e[i]))
            }
        }
    }

    /// The bucket after the one with index `k` (for filling gaps).
    fn next(&self, k: i64) -> Option<(i64, i64, i64)> {
        match self {
            Rule::Fixed { width, origin } => {
                let open = origin + (k + 1) * width;
                Some((k + 1, open, open + width))
            }
            Rule::Edges(e) => {
                let i = usize::try_from(k + 1).ok()?;
                (i + 1 < e.len()).then(|| (k + 1, e[i], e[i + 1]))
            }
        }
    }
}

/// One run of input bars in the same bucket: `[start, end)` indices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub key: i64,
    pub open_time: i64,
    pub bucket_end: i64,
}

/// Splits sorted open times into buckets. Checks the order once, so several
/// series sharing the open times (a matrix of symbols) reuse the split.
pub fn segments(open_time: &[i64], rule: &Rule) -> Result<Vec<Segment>, ResampleError> {
    rule.check()?;
    let mut out: Vec<Segment> = Vec::new();
    let mut prev = i64::MIN;
    for (i, &t) in open_time.iter().enumerate() {
        if i > 0 && t <= prev {
            return Err(ResampleError::NotIncreasing { index: i });
        }
        prev = t;
        if let Some(last) = out.last_mut() {
            if t < last.bucket_end {
                last.end = i + 1;
                continue;
            }
        }
        let (key, open, end) = rule
            .bucket(t)
            .ok_or(ResampleError::OutsideEdges { index: i })?;
        out.push(Segment {
            start: i,
            end: i + 1,
            key,
            open_time: open,
            bucket_end: end,
        });
    }
    Ok(out)
}

/// Resampled bars as columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bars {
    pub open_time: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    /// Input bars per output bar (0 for a filled gap).
    pub count: Vec<u32>,
    /// The last bar's bucket is not complete.
    pub last_partial: bool,
}

impl Bars {
    pub fn len(&self) -> usize {
        self.open_time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open_time.is_empty()
    }

    fn push(&mut self, open_time: i64, b: &Acc) {
        self.open_time.push(open_time);
        self.open.push(b.open);
        self.high.push(b.high);
        self.low.push(b.low);
        self.close.push(b.close);
        self.volume.push(b.volume);
        self.count.push(b.count);
    }
}

/// One bucket being aggregated.
#[derive(Clone, Copy, Debug)]
pub struct Acc {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub count: u32,
    /// Whether `volume` has had a number added (a bucket of NaN volumes is NaN).
    has_volume: bool,
}

impl Acc {
    pub const EMPTY: Acc = Acc {
        open: f64::NAN,
        high: f64::NAN,
        low: f64::NAN,
        close: f64::NAN,
        volume: f64::NAN,
        count: 0,
        has_volume: false,
    };

    /// Adds one bar. `f64::max`/`min` return the other operand when one is NaN,
    /// so NaN highs and lows are skipped without a branch.
    #[inline]
    pub fn add(&mut self, o: f64, h: f64, l: f64, c: f64, v: f64) {
        if self.open.is_nan() {
            self.open = o;
        }
        self.high = self.high.max(h);
        self.low = self.low.min(l);
        if !c.is_nan() {
            self.close = c;
        }
        if !v.is_nan() {
            self.volume = if self.has_volume { self.volume + v } else { v };
            self.has_volume = true;
        }
        self.count += 1;
    }

    fn flat(price: f64) -> Acc {
        Acc {
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0.0,
            count: 0,
            has_volume: true,
        }
    }
}

/// The columns of one series.
#[derive(Clone, Copy)]
pub struct Ohlcv<'a> {
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
}

impl Ohlcv<'_> {
    pub fn check(&self, n: usize) -> Result<(), ResampleError> {
        for (name, col) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("volume", self.volume),
        ] {
            if col.len() != n {
                return Err(ResampleError::Length {
                    name,
                    len: col.len(),
                    expected: n,
                });
            }
        }
        Ok(())
    }
}

/// Aggregates one series over precomputed segments. `last_close` is the close
/// time of the last input bar (its open time plus the input interval).
pub fn aggregate(
    segs: &[Segment],
    x: Ohlcv<'_>,
    rule: &Rule,
    fill_empty: bool,
    last_close: Option<i64>,
) -> Bars {
    let mut out = Bars::default();
    let cap = segs.len();
    out.open_time.reserve(cap);
    out.open.reserve(cap);
    out.high.reserve(cap);
    out.low.reserve(cap);
    out.close.reserve(cap);
    out.volume.reserve(cap);
    out.count.reserve(cap);
    let mut prev: Option<(i64, f64)> = None;
    for s in segs {
        if fill_empty {
            if let Some((mut k, price)) = prev {
                while k + 1 < s.key {
                    let Some((nk, open, _)) = rule.next(k) else {
                        break;
                    };
                    out.push(open, &Acc::flat(price));
                    k = nk;
                }
            }
        }
        let mut a = Acc::EMPTY;
        for i in s.start..s.end {
            a.add(x.open[i], x.high[i], x.low[i], x.close[i], x.volume[i]);
        }
        out.push(s.open_time, &a);
        let carry = if a.close.is_nan() {
            prev.map_or(f64::NAN, |p| p.1)
        } else {
            a.close
        };
        prev = Some((s.key, carry));
    }
    if let (Some(s), Some(lc)) = (segs.last(), last_close) {
        out.last_partial = lc < s.bucket_end;
    }
    out
}

/// Columns to write one series' buckets into (one value per segment each).
pub struct OhlcvOut<'a> {
    pub open: &'a mut [f64],
    pub high: &'a mut [f64],
    pub low: &'a mut [f64],
    pub close: &'a mut [f64],
    pub volume: &'a mut [f64],
}

/// [`aggregate`] without gap filling, writing straight into `out` (a row of
/// a symbols × buckets matrix): the same additions in the same order, so the
/// same bits.
pub fn aggregate_into(segs: &[Segment], x: Ohlcv<'_>, out: OhlcvOut<'_>) {
    for (j, s) in segs.iter().enumerate() {
        let mut a = Acc::EMPTY;
        for i in s.start..s.end {
            a.add(x.open[i], x.high[i], x.low[i], x.close[i], x.volume[i]);
        }
        out.open[j] = a.open;
        out.high[j] = a.high;
        out.low[j] = a.low;
        out.close[j] = a.close;
        out.volume[j] = a.volume;
    }
}

/// Resamples one series: `open_time` sorted, strictly increasing.
/// `interval` is the input bars' length in ms (for the partial-last-bar flag).
pub fn resample(
    open_time: &[i64],
    x: Ohlcv<'_>,
    rule: &Rule,
    fill_empty: bool,
    interval: Option<i64>,
) -> Result<Bars, ResampleError> {
    x.check(open_time.len())?;
    let segs = segments(open_time, rule)?;
    let last_close = open_time.last().zip(interval).map(|(t, d)| t + d);
    Ok(aggregate(&segs, x, rule, fill_empty, last_close))
}

/// Incremental resampling into several timeframes at once.
///
/// Each `update` adds one input bar to every target. A target's bar is emitted
/// (moved to its `closed` list) as soon as it is complete: when an input bar
/// reaches the bucket's end (open time + `interval` ≥ bucket end), or when a bar
/// of a later bucket arrives (the bucket ended in a gap). A bar that is not
/// after the previous one is dropped and counted in `dropped`.
#[derive(Clone, Debug)]
pub struct Resampler {
    interval: i64,
    targets: Vec<Target>,
    last: Option<i64>,
    pub dropped: u64,
}

#[derive(Clone, Debug)]
struct Target {
    rule: Rule,
    current: Option<(i64, i64, i64, Acc)>,
    closed: Bars,
}

impl Resampler {
    pub fn new(interval: i64, rules: Vec<Rule>) -> Result<Self, ResampleError> {
        if interval <= 0 {
            return Err(ResampleError::BadRule("interval must be positive"));
        }
        for r in &rules {
            r.check()?;
        }
        Ok(Resampler {
            interval,
            targets: rules
                .into_iter()
                .map(|rule| Target {
                    rule,
                    current: None,
                    closed: Bars::default(),
                })
                .collect(),
            last: None,
            dropped: 0,
        })
    }

    pub fn targets(&self) -> usize {
        self.targets.len()
    }

    /// Adds one bar; returns how many target bars it closed. A bar outside a
    /// target's edges is dropped for that target.
    #[inline]
    pub fn update(&mut self, t: i64, o: f64, h: f64, l: f64, c: f64, v: f64) -> usize {
        if self.last.is_some_and(|p| t <= p) {
            self.dropped += 1;
            return 0;
        }
        self.last = Some(t);
        let bar_close = t + self.interval;
        let mut closed = 0;
        for tg in &mut self.targets {
            if let Some((_, open, end, acc)) = &tg.current {
                if t >= *end {
                    tg.closed.push(*open, acc);
                    tg.current = None;
                    closed += 1;
                }
            }
            if tg.current.is_none() {
                match tg.rule.bucket(t) {
                    Some((k, open, end)) => tg.current = Some((k, open, end, Acc::EMPTY)),
                    None => continue,
                }
            }
            if let Some((_, open, end, acc)) = &mut tg.current {
                acc.add(o, h, l, c, v);
                if bar_close >= *end {
                    tg.closed.push(*open, acc);
                    tg.current = None;
                    closed += 1;
                }
            }
        }
        closed
    }

    /// The bar being built for target `i` (open time and values), if any.
    pub fn current(&self, i: usize) -> Option<(i64, Acc)> {
        self.targets
            .get(i)
            .and_then(|t| t.current.map(|(_, open, _, acc)| (open, acc)))
    }

    /// Takes the closed bars of target `i`.
    pub fn drain(&mut self, i: usize) -> Bars {
        self.targets
            .get_mut(i)
            .map(|t| std::mem::take(&mut t.closed))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn series(n: usize, start: i64, step: i64) -> (Vec<i64>, Vec<f64>) {
        let t = (0..n as i64).map(|i| start + i * step).collect();
        let p = (0..n).map(|i| 100.0 + ((i * 7919) % 13) as f64).collect();
        (t, p)
    }

    fn x(p: &[f64]) -> Ohlcv<'_> {
        Ohlcv {
            open: p,
            high: p,
            low: p,
            close: p,
            volume: p,
        }
    }

    #[test]
    fn five_minute_buckets_are_labelled_by_open_time() {
        let (t, p) = series(12, 2 * MIN, MIN);
        let r = Rule::Fixed {
            width: 5 * MIN,
            origin: 0,
        };
        let b = resample(&t, x(&p), &r, false, Some(MIN)).unwrap();
        assert_eq!(b.open_time, vec![0, 5 * MIN, 10 * MIN]);
        assert_eq!(b.count, vec![3, 5, 4]);
        assert_eq!(b.open[0], p[0]);
        assert_eq!(b.close[1], p[7]);
        assert_eq!(b.high[1], p[3..8].iter().cloned().fold(f64::MIN, f64::max));
        assert_eq!(b.volume[2], p[8..12].iter().sum::<f64>());
        // 10m..15m holds 10..13 only: partial
        assert!(b.last_partial);
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2024-01-03 (a Wednesday) 00:00 UTC
        let wed = 1_704_240_000_000;
        let r = Rule::Fixed {
            width: 7 * 86_400_000,
            origin: MONDAY_ORIGIN_MS,
        };
        let (_, open, _) = r.bucket(wed).unwrap();
        // 2024-01-01 is a Monday
        assert_eq!(open, 1_704_067_200_000);
    }

    #[test]
    fn gaps_are_skipped_or_filled() {
        let t = vec![0, MIN, 11 * MIN];
        let p = vec![1.0, 2.0, 3.0];
        let r = Rule::Fixed {
            width: 5 * MIN,
            origin: 0,
        };
        let b = resample(&t, x(&p), &r, false, Some(MIN)).unwrap();
        assert_eq!(b.open_time, vec![0, 10 * MIN]);
        let f = resample(&t, x(&p), &r, true, Some(MIN)).unwrap();
        assert_eq!(f.open_time, vec![0, 5 * MIN, 10 * MIN]);
        assert_eq!(f.count, vec![2, 0, 1]);
        assert_eq!((f.open[1], f.close[1], f.volume[1]), (2.0, 2.0, 0.0));
    }

    #[test]
    fn nan_is_skipped() {
        let t = vec![0, MIN, 2 * MIN];
        let o = vec![f64::NAN, 2.0, 3.0];
        let h = vec![5.0, f64::NAN, 4.0];
        let c = vec![1.0, 2.0, f64::NAN];
        let v = vec![f64::NAN, f64::NAN, f64::NAN];
        let r = Rule::Fixed {
            width: 5 * MIN,
            origin: 0,
        };
        let b = resample(
            &t,
            Ohlcv {
                open: &o,
                high: &h,
                low: &h,
                close: &c,
                volume: &v,
            },
            &r,
            false,
            None,
        )
        .unwrap();
        assert_eq!(
            (b.open[0], b.high[0], b.low[0], b.close[0]),
            (2.0, 5.0, 4.0, 2.0)
        );
        assert!(b.volume[0].is_nan());
    }

    #[test]
    fn bad_input_is_an_error() {
        let r = Rule::Fixed {
            width: 5 * MIN,
            origin: 0,
        };
        let p = [1.0, 2.0, 3.0];
        assert_eq!(
            resample(&[0, MIN, MIN], x(&p), &r, false, None),
            Err(ResampleError::NotIncreasing { index: 2 })
        );
        assert!(matches!(
            resample(&[0, MIN], x(&p), &r, false, None),
            Err(ResampleError::Length { .. })
        ));
        let e = Rule::Edges(vec![MIN, 2 * MIN]);
        assert_eq!(
            resample(&[0, MIN, 2 * MIN], x(&p), &e, false, None),
            Err(ResampleError::OutsideEdges { index: 0 })
        );
    }

    #[test]
    fn edges_make_uneven_buckets() {
        // a 23-hour day then a 25-hour day, as around a DST change
        let h = 3_600_000;
        let e = Rule::Edges(vec![0, 23 * h, 48 * h]);
        let (t, p) = series(48, 0, h);
        let b = resample(&t, x(&p), &e, false, Some(h)).unwrap();
        assert_eq!(b.count, vec![23, 25]);
        assert!(!b.last_partial);
    }

    #[test]
    fn incremental_equals_batch_bit_for_bit() {
        let (t, p) = series(5000, 7 * MIN, MIN);
        let p2: Vec<f64> = p.iter().map(|v| v * 1.000_1 + 0.37).collect();
        let rules = vec![
            Rule::Fixed {
                width: 5 * MIN,
                origin: 0,
            },
            Rule::Fixed {
                width: 60 * MIN,
                origin: 0,
            },
            Rule::Fixed {
                width: 7 * 86_400_000,
                origin: MONDAY_ORIGIN_MS,
            },
        ];
        let mut inc = Resampler::new(MIN, rules.clone()).unwrap();
        for i in 0..t.len() {
            inc.update(t[i], p[i], p2[i], p[i], p2[i], p[i]);
        }
        let xs = Ohlcv {
            open: &p,
            high: &p2,
            low: &p,
            close: &p2,
            volume: &p,
        };
        for (k, r) in rules.iter().enumerate() {
            let batch = resample(&t, xs, r, false, Some(MIN)).unwrap();
            let mut got = inc.drain(k);
            let complete = batch.len() - usize::from(batch.last_partial);
            assert_eq!(got.len(), complete);
            if let Some((open, acc)) = inc.current(k) {
                got.push(open, &acc);
            }
            assert_eq!(got.open_time, batch.open_time);
            for (a, b) in [
                (&got.open, &batch.open),
                (&got.high, &batch.high),
                (&got.low, &batch.low),
                (&got.close, &batch.close),
                (&got.volume, &batch.volume),
            ] {
                let a: Vec<u64> = a.iter().map(|v| v.to_bits()).collect();
                let b: Vec<u64> = b.iter().map(|v| v.to_bits()).collect();
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn incremental_drops_out_of_order_bars() {
        let r = Rule::Fixed {
            width: 5 * MIN,
            origin: 0,
        };
        let mut inc = Resampler::new(MIN, vec![r]).unwrap();
        inc.update(0, 1.0, 1.0, 1.0, 1.0, 1.0);
        inc.update(0, 9.0, 9.0, 9.0, 9.0, 9.0);
        assert_eq!(inc.dropped, 1);
        for i in 1..5 {
            inc.update(i * MIN, 2.0, 2.0, 2.0, 2.0, 1.0);
        }
        let b = inc.drain(0);
        assert_eq!((b.open[0], b.high[0], b.volume[0]), (1.0, 2.0, 5.0));
    }
}
