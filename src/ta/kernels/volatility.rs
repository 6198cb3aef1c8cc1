//! Volatility indicators: TRANGE/ATR/NATR, Keltner and Donchian channels.

use serde::{Deserialize, Serialize};

use super::base::{o1, true_range, Bar, Kernel, Out};
use crate::ta::ma::{Extreme, Ma, Sma};

/// TRANGE, ATR, NATR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Atr {
    pub p: usize,
    pub n: usize,
    pub prev_c: f64,
    pub sma: Sma,
    pub atr: f64,
    /// 0 TRANGE, 1 ATR, 2 NATR.
    pub mode: u8,
    /// The last four averages, newest first, and the last three weighted
    /// true ranges; `steps`: smoothed bars so far, up to 4 (see
    /// [`Atr::smooth`]).
    pub back: [f64; 4],
    pub u_back: [f64; 3],
    pub steps: u8,
}

impl Atr {
    pub fn new(p: usize, mode: u8) -> Self {
        Atr {
            p,
            n: 0,
            prev_c: 0.0,
            sma: Sma::new(p),
            atr: 0.0,
            mode,
            back: [0.0; 4],
            u_back: [0.0; 3],
            steps: 0,
        }
    }

    /// Wilder's smoothing `a[i] = a[i-1]·c + u[i]` (`c = (p-1)/p`,
    /// `u = tr/p`) unrolled to four steps,
    /// `a[i] = a[i-4]·c⁴ + (((u[i-3]·c + u[i-2])·c + u[i-1])·c + u[i])`
    /// (multiply-adds), fewer for the first smoothed bars, which all start
    /// from the seed: each value then waits on the one four bars back, so
    /// whole-array loops run four interleaved chains (a quarter of the
    /// latency of one) and a stream computes the very same operations with
    /// O(1) state. The rounding differs from the one-step form by a few
    /// units in the last place (the test tolerance against TA-Lib is 1e-10
    /// relative).
    #[inline(always)]
    pub fn smooth(&mut self, tr: f64) -> f64 {
        let pf = self.p as f64;
        let a = wilder_step(
            &mut self.back,
            &mut self.u_back,
            self.steps,
            tr * (1.0 / pf),
            atr_powers(pf),
        );
        self.steps = (self.steps + 1).min(4);
        self.atr = a;
        a
    }
}

/// One bar of [`Atr::smooth`] from its carried values (`back`: the last
/// four averages, newest first; `u_back`: the last three `u`; `steps`:
/// smoothed bars before this one), which it moves on; also the whole-array
/// loop's first and last bars.
#[inline(always)]
pub fn wilder_step(
    back: &mut [f64; 4],
    u_back: &mut [f64; 3],
    steps: u8,
    u: f64,
    c: [f64; 4],
) -> f64 {
    let [u1, u2, u3] = *u_back;
    let a = match steps {
        0 => back[0].mul_add(c[0], u),
        1 => back[1].mul_add(c[1], u1.mul_add(c[0], u)),
        2 => back[2].mul_add(c[2], u2.mul_add(c[0], u1).mul_add(c[0], u)),
        _ => back[3].mul_add(
            c[3],
            u3.mul_add(c[0], u2).mul_add(c[0], u1).mul_add(c[0], u),
        ),
    };
    *u_back = [u, u1, u2];
    *back = [a, back[0], back[1], back[2]];
    a
}

/// `(p-1)/p` and its square, cube and fourth power, as [`Atr::smooth`]
/// and the whole-array loop compute them.
#[inline(always)]
pub fn atr_powers(pf: f64) -> [f64; 4] {
    let c1 = (pf - 1.0) / pf;
    let c2 = c1 * c1;
    [c1, c2, c2 * c1, c2 * c2]
}

impl Kernel for Atr {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        if self.n == 0 {
            self.prev_c = b.c;
            self.n = 1;
            return None;
        }
        let tr = true_range(b.h, b.l, self.prev_c);
        self.prev_c = b.c;
        if self.mode == 0 || self.p == 1 {
            // NATR with period 1 is TA-Lib's TRANGE, not normalised.
            return Some(o1(tr));
        }
        if self.n < self.p {
            self.n += 1;
            self.sma.push(tr);
            return None;
        }
        if self.n == self.p {
            self.n += 1;
            self.atr = self.sma.push(tr)?;
            self.back = [self.atr; 4];
            self.steps = 0;
        } else {
            self.smooth(tr);
        }
        Some(o1(if self.mode == 2 {
            // TA-Lib 0.8 divides by any close but exactly 0
            if b.c != 0.0 {
                (self.atr / b.c) * 100.0
            } else {
                0.0
            }
        } else {
            self.atr
        }))
    }
}

/// Keltner channels: an average of the close ± multiplier × ATR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Keltner {
    pub ma: Ma,
    pub atr: Atr,
    pub mult: f64,
}

impl Kernel for Keltner {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let a = self.atr.next(b).map(|o| o[0]);
        let m = self.ma.push(b.c);
        let (a, m) = (a?, m?);
        let w = self.mult * a;
        Some([m + w, m, m - w, 0.0])
    }
}

/// Donchian channels: highest high, midpoint, lowest low.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Donchian {
    pub hi: Extreme,
    pub lo: Extreme,
    pub n: usize,
    pub p: usize,
}

impl Kernel for Donchian {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (hh, _) = self.hi.push(b.h);
        let (ll, _) = self.lo.push(b.l);
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        Some([hh, (hh + ll) / 2.0, ll, 0.0])
    }
}
