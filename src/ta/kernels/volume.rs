//! Volume indicators: OBV, AD, ADOSC and VWAP.

use serde::{Deserialize, Serialize};

use super::base::{o1, Bar, Kernel, Out};
use crate::ta::ma::Ring;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Obv {
    pub started: bool,
    pub obv: f64,
    pub prev: f64,
}

impl Kernel for Obv {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        if !self.started {
            self.started = true;
            self.obv = b.v;
            self.prev = b.c;
            return Some(o1(self.obv));
        }
        if b.c > self.prev {
            self.obv += b.v;
        } else if b.c < self.prev {
            self.obv -= b.v;
        }
        self.prev = b.c;
        Some(o1(self.obv))
    }
}

/// The accumulation/distribution line's running sum, from bar 2 on two
/// bars at a time, `ad[i] = ad[i-2] + (inc[i-1] + inc[i])`: each value
/// waits on the one two bars back, so whole-array loops run the even and
/// the odd bars as two chains (the rounding differs from one addition a bar
/// in the last bits; the 1e-10 tolerance against TA-Lib holds).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdSum {
    /// The last value and the one before it.
    pub ad: f64,
    pub prev: f64,
    pub inc_prev: f64,
    pub n: u64,
}

impl AdSum {
    #[inline(always)]
    pub fn push(&mut self, inc: f64) -> f64 {
        let ad = if self.n < 2 {
            self.ad + inc
        } else {
            self.prev + (self.inc_prev + inc)
        };
        (self.prev, self.ad, self.inc_prev) = (self.ad, ad, inc);
        self.n += 1;
        ad
    }
}

/// A bar's money-flow volume (0 where high - low is not positive).
#[inline(always)]
pub fn ad_inc(h: f64, l: f64, c: f64, v: f64) -> f64 {
    let t = h - l;
    let x = (((c - l) - (h - c)) / t) * v;
    if t > 0.0 {
        x
    } else {
        0.0
    }
}

/// ADOSC's EMA step from bar 2 on, two bars at once:
/// `e[i] = e[i-2]·c² + (x[i-1]·k·c + x[i]·k)` with `c = 1 - k` (each
/// value waits on the one two bars back, as [`AdSum`]).
#[inline(always)]
pub fn ema_two(k: f64, two_back: f64, x_prev: f64, x: f64) -> f64 {
    let c = 1.0 - k;
    (c * c).mul_add(two_back, c.mul_add(k * x_prev, k * x))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ad {
    pub ad: AdSum,
}

impl Kernel for Ad {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        Some(o1(self.ad.push(ad_inc(b.h, b.l, b.c, b.v))))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adosc {
    pub ad: AdSum,
    pub n: usize,
    pub lookback: usize,
    pub fk: f64,
    pub sk: f64,
    /// The averages of the last bar and the one before it.
    pub fast: [f64; 2],
    pub slow: [f64; 2],
}

impl Adosc {
    /// One bar: the line, then its two averages (seeded with the first
    /// value, one step for the second bar, two at once after it).
    #[inline(always)]
    pub fn step(&mut self, inc: f64) -> f64 {
        let ad_prev = self.ad.ad;
        let ad = self.ad.push(inc);
        let (fast, slow) = match self.n {
            0 => (ad, ad),
            1 => (
                (1.0 - self.fk).mul_add(self.fast[0], self.fk * ad),
                (1.0 - self.sk).mul_add(self.slow[0], self.sk * ad),
            ),
            _ => (
                ema_two(self.fk, self.fast[1], ad_prev, ad),
                ema_two(self.sk, self.slow[1], ad_prev, ad),
            ),
        };
        self.fast = [fast, self.fast[0]];
        self.slow = [slow, self.slow[0]];
        self.n += 1;
        fast - slow
    }
}

impl Kernel for Adosc {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let m = self.n;
        let v = self.step(ad_inc(b.h, b.l, b.c, b.v));
        if m < self.lookback {
            return None;
        }
        Some(o1(v))
    }
}

/// VWAP of the typical price: cumulative from the first bar (period 0) or
/// over a rolling window of `period` bars. Without volume (in total, or in
/// the window) the last value stays, 0 before any volume (TA-Lib 0.8).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vwap {
    pub p: usize,
    pub n: usize,
    pub pv: f64,
    pub vol: f64,
    pub ring_pv: Ring,
    pub ring_v: Ring,
    /// The last value (0 before any volume).
    #[serde(default)]
    pub last: f64,
    /// Bars without volume in a row, up to the period: a window of only
    /// such bars has sums of exactly 0 (they held the residue of the
    /// values that left).
    #[serde(default)]
    pub null_run: usize,
}

impl Kernel for Vwap {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let tp = (b.h + b.l + b.c) / 3.0;
        let pv = tp * b.v;
        self.pv += pv;
        self.vol += b.v;
        if self.p > 0 {
            let old_pv = self.ring_pv.push(pv);
            let old_v = self.ring_v.push(b.v);
            if self.n >= self.p {
                self.pv -= old_pv;
                self.vol -= old_v;
            }
            self.null_run = if b.v == 0.0 {
                (self.null_run + 1).min(self.p)
            } else {
                0
            };
            if self.null_run >= self.p {
                self.pv = 0.0;
                self.vol = 0.0;
            }
            if self.n + 1 < self.p {
                self.n += 1;
                return None;
            }
        }
        self.n += 1;
        if self.vol > 0.0 {
            self.last = self.pv / self.vol;
        }
        Some(o1(self.last))
    }
}
