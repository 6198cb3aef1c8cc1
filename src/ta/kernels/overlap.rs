//! Overlap studies: the moving averages of the close (any matype, MAMA),
//! BBANDS, SAR, MIDPOINT/MIDPRICE and the Ichimoku lines.

use serde::{Deserialize, Serialize};

use super::base::{o1, Bar, Kernel, Out};
use super::volatility::Donchian;
use crate::ta::ma::{Extreme, Ma, Mama, Ring, Var};

/// A moving average of the close (SMA, EMA, ..., MA with any matype).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaKernel {
    pub ma: Ma,
}

impl Kernel for MaKernel {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.ma.push(b.c).map(o1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MamaKernel {
    pub m: Box<Mama>,
}

impl Kernel for MamaKernel {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.m.push2(b.c).map(|(a, f)| [a, f, 0.0, 0.0])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bbands {
    pub ma: Ma,
    pub sma: bool,
    /// SMA: running sum of squares over the window (TA-Lib's precalc path).
    pub ring: Ring,
    pub n: usize,
    pub p: usize,
    pub s2: f64,
    /// Other matypes: STDDEV started where TA-Lib starts it.
    pub var: DelayedVar,
    pub up: f64,
    pub dn: f64,
}

/// A variance that skips its first `skip` inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DelayedVar {
    pub skip: usize,
    pub var: Var,
}

impl DelayedVar {
    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        self.var.push(x)
    }
}

/// Upper, middle, lower band from the middle value and the variance.
#[inline(always)]
pub(super) fn bands(mid: f64, var: f64, up: f64, dn: f64) -> Out {
    let sd = if var > 0.0 { var.sqrt() } else { 0.0 };
    let (upper, lower) = if up == dn {
        let t = sd * up;
        (mid + t, mid - t)
    } else {
        (mid + up * sd, mid - dn * sd)
    };
    [upper, mid, lower, 0.0]
}

impl Kernel for Bbands {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let x = b.c;
        let v = self.var.push(x);
        let mid = self.ma.push(x)?;
        let v = v?;
        Some(bands(mid, v, self.up, self.dn))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sar {
    pub acc: f64,
    pub max: f64,
    pub n: usize,
    pub long: bool,
    pub sar: f64,
    pub ep: f64,
    pub af: f64,
    pub new_high: f64,
    pub new_low: f64,
    pub first_h: f64,
    pub first_l: f64,
}

impl Sar {
    pub fn new(acc: f64, max: f64) -> Self {
        let acc = if acc > max { max } else { acc };
        Sar {
            acc,
            max,
            n: 0,
            long: true,
            sar: 0.0,
            ep: 0.0,
            af: acc,
            new_high: 0.0,
            new_low: 0.0,
            first_h: 0.0,
            first_l: 0.0,
        }
    }
}

impl Kernel for Sar {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        if self.n == 0 {
            self.first_h = b.h;
            self.first_l = b.l;
            self.n = 1;
            return None;
        }
        if self.n == 1 {
            // Direction from the one-bar -DM between the first two bars.
            let diff_p = b.h - self.first_h;
            let diff_m = self.first_l - b.l;
            let minus_dm = if diff_m > 0.0 && diff_p < diff_m {
                diff_m
            } else {
                0.0
            };
            self.long = minus_dm <= 0.0;
            if self.long {
                self.ep = b.h;
                self.sar = self.first_l;
            } else {
                self.ep = b.l;
                self.sar = self.first_h;
            }
            self.new_low = b.l;
            self.new_high = b.h;
            self.n = 2;
        }
        let prev_low = self.new_low;
        let prev_high = self.new_high;
        let new_low = b.l;
        let new_high = b.h;
        self.new_low = new_low;
        self.new_high = new_high;
        let out;
        if self.long {
            if new_low <= self.sar {
                self.long = false;
                self.sar = self.ep;
                if self.sar < prev_high {
                    self.sar = prev_high;
                }
                if self.sar < new_high {
                    self.sar = new_high;
                }
                out = self.sar;
                self.af = self.acc;
                self.ep = new_low;
                self.sar += self.af * (self.ep - self.sar);
                if self.sar < prev_high {
                    self.sar = prev_high;
                }
                if self.sar < new_high {
                    self.sar = new_high;
                }
            } else {
                out = self.sar;
                if new_high > self.ep {
                    self.ep = new_high;
                    self.af += self.acc;
                    if self.af > self.max {
                        self.af = self.max;
                    }
                }
                self.sar += self.af * (self.ep - self.sar);
                if self.sar > prev_low {
                    self.sar = prev_low;
                }
                if self.sar > new_low {
                    self.sar = new_low;
                }
            }
        } else if new_high >= self.sar {
            self.long = true;
            self.sar = self.ep;
            if self.sar > prev_low {
                self.sar = prev_low;
            }
            if self.sar > new_low {
                self.sar = new_low;
            }
            out = self.sar;
            self.af = self.acc;
            self.ep = new_high;
            self.sar += self.af * (self.ep - self.sar);
            if self.sar > prev_low {
                self.sar = prev_low;
            }
            if self.sar > new_low {
                self.sar = new_low;
            }
        } else {
            out = self.sar;
            if new_low < self.ep {
                self.ep = new_low;
                self.af += self.acc;
                if self.af > self.max {
                    self.af = self.max;
                }
            }
            self.sar += self.af * (self.ep - self.sar);
            if self.sar < prev_high {
                self.sar = prev_high;
            }
            if self.sar < new_high {
                self.sar = new_high;
            }
        }
        Some(o1(out))
    }
}

/// MIDPOINT (one series) and MIDPRICE (high/low).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mid {
    pub hi: Extreme,
    pub lo: Extreme,
    pub n: usize,
    pub p: usize,
    pub price: bool,
}

impl Kernel for Mid {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (h, l) = if self.price { (b.h, b.l) } else { (b.c, b.c) };
        let (hh, _) = self.hi.push(h);
        let (ll, _) = self.lo.push(l);
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        Some(o1((hh + ll) / 2.0))
    }
}

/// Ichimoku lines on the bar they are computed (not shifted forward).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ichimoku {
    pub t: Donchian,
    pub k: Donchian,
    pub s: Donchian,
    pub n: usize,
    pub lookback: usize,
}

impl Kernel for Ichimoku {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let t = self.t.next(b);
        let k = self.k.next(b);
        let s = self.s.next(b);
        let m = self.n;
        self.n += 1;
        if m < self.lookback {
            return None;
        }
        let (t, k, s) = (t?[1], k?[1], s?[1]);
        Some([t, k, (t + k) / 2.0, s])
    }
}
