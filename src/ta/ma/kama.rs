//! KAMA, Kaufman's adaptive moving average, with the coefficient and the
//! running-sum rules that the whole-array loop shares.

use serde::{Deserialize, Serialize};

use super::num::big;
use super::window::Ring;

/// Kaufman adaptive moving average (fast 2, slow 30, as TA-Lib).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kama {
    pub p: usize,
    n: usize,
    ring: Ring,
    sum_roc1: f64,
    /// How many of the window's |differences| are not zero: a flat window
    /// (0) has a sum of exactly 0, whatever the running sum kept.
    nonzero: u32,
    prev: f64,
    prev_kama: f64,
    trailing: f64,
    /// From bar p + 2 on, both chains step two bars at a time (even and odd
    /// bars as two independent chains, so the whole-array loop runs them
    /// side by side): the sum two bars back and the last change of the sum,
    /// the average two bars back and the last bar's coefficients.
    sum_prev: f64,
    dd_last: f64,
    kama_prev: f64,
    a_last: f64,
    b_last: f64,
}

pub const KAMA_CONST_MAX: f64 = 2.0 / (30.0 + 1.0);

/// KAMA's coefficients for a bar from its running sum and its change over
/// the period: the average moves to `prev * a + b` (TA-Lib's
/// `prev + sc * (x - prev)` with one multiply-add on the chain).
#[inline(always)]
pub fn kama_coef(sum_roc1: f64, period_roc: f64, x: f64) -> (f64, f64) {
    let const_diff = 2.0 / (2.0 + 1.0) - KAMA_CONST_MAX;
    // the efficiency ratio is 1 for a window without movement (an exact
    // test, as TA-Lib 0.8's: an absolute band would take any window of
    // prices below 1e-14 for flat; a flat window's sum is exactly 0, see
    // `kama_fix`) or when the sum is not above the change
    let mut t = if sum_roc1 <= period_roc || sum_roc1 <= 0.0 {
        1.0
    } else {
        (period_roc / sum_roc1).abs()
    };
    t = (t * const_diff) + KAMA_CONST_MAX;
    let sc = t * t;
    (1.0 - sc, sc * x)
}

/// KAMA's running sum of |differences|, corrected where rounding matters: a
/// flat window (`nonzero == 0`) sums to exactly 0, and a sum that is a
/// rounding residue against the window's magnitude (the bar, the one
/// leaving, the previous one) is recomputed exactly by `exact`. Plain
/// comparisons, no NaN handling: a NaN bar sends the whole-array loop back
/// to the state machine anyway.
#[inline(always)]
pub fn kama_fix(
    sum_roc1: f64,
    nonzero: u32,
    p: usize,
    x: f64,
    back_p: f64,
    prev: f64,
    exact: impl FnOnce() -> f64,
) -> f64 {
    if nonzero == 0 {
        return 0.0;
    }
    let scale = big(big(x.abs(), back_p.abs()), prev.abs());
    if sum_roc1 < 1e-12 * scale * p as f64 {
        exact()
    } else {
        sum_roc1
    }
}

impl Kama {
    pub fn new(p: usize) -> Self {
        let p = p.max(1);
        Kama {
            p,
            n: 0,
            ring: Ring::new(p),
            sum_roc1: 0.0,
            nonzero: 0,
            prev: 0.0,
            prev_kama: 0.0,
            trailing: 0.0,
            sum_prev: 0.0,
            dd_last: 0.0,
            kama_prev: 0.0,
            a_last: 0.0,
            b_last: 0.0,
        }
    }

    /// One bar. The sum of |differences| and the average are updated one
    /// bar at a time up to bar p + 1, then two bars at a time:
    /// `sum[b] = sum[b-2] + (dd[b-1] + dd[b])` and
    /// `kama[b] = kama[b-2] * (a[b] * a[b-1]) + (a[b] * b[b-1] + b[b])`,
    /// which is `kama[b-1] * a[b] + b[b]` unrolled (the whole-array kernel
    /// runs the even and the odd bars as two chains; both give the same
    /// values bit for bit).
    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.n < self.p {
            if self.n > 0 {
                let d = (self.prev - x).abs();
                self.sum_roc1 += d;
                self.nonzero += (d != 0.0) as u32;
            }
            self.n += 1;
            self.prev = x;
            self.ring.push(x);
            return None;
        }
        let back_p = self.ring.oldest(); // x[b - p]
        let b = self.n;
        let mut dd = 0.0;
        let sum = if b == self.p {
            // The last of the initial differences, then the first output.
            let d = (self.prev - x).abs();
            self.nonzero += (d != 0.0) as u32;
            self.prev_kama = self.prev;
            self.sum_roc1 + d
        } else {
            let (d_in, d_out) = ((x - self.prev).abs(), (self.trailing - back_p).abs());
            dd = d_in - d_out;
            self.nonzero =
                (self.nonzero + (d_in != 0.0) as u32).saturating_sub((d_out != 0.0) as u32);
            if b == self.p + 1 {
                self.sum_roc1 + dd
            } else {
                self.sum_prev + (self.dd_last + dd)
            }
        };
        self.n += 1;
        let (ring, p) = (&self.ring, self.p);
        let sum = kama_fix(sum, self.nonzero, p, x, back_p, self.prev, || {
            let mut s = 0.0;
            let mut prev = back_p;
            for age in (0..p - 1).rev() {
                let v = ring.back(age);
                s += (v - prev).abs();
                prev = v;
            }
            s + (x - prev).abs()
        });
        let (a, bx) = kama_coef(sum, x - back_p, x);
        let kama = if b <= self.p + 1 {
            self.prev_kama.mul_add(a, bx)
        } else {
            self.kama_prev
                .mul_add(a * self.a_last, a.mul_add(self.b_last, bx))
        };
        self.sum_prev = self.sum_roc1;
        self.sum_roc1 = sum;
        self.dd_last = dd;
        self.kama_prev = self.prev_kama;
        self.prev_kama = kama;
        self.a_last = a;
        self.b_last = bx;
        self.trailing = back_p;
        self.prev = x;
        self.ring.push(x);
        Some(kama)
    }
}
