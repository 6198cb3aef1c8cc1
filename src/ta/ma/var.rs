//! The windowed population variance (VAR, STDDEV and the bands' deviation)
//! with its flat-window rules.

use serde::{Deserialize, Serialize};

use super::window::Ring;

/// Population variance over a window: running sums of deviations from an
/// anchor (a recent value), re-anchored and recomputed exactly every 64
/// bars, so the sums never lose the digits that plain sums of squares lose
/// when the mean is large against the spread. O(1) amortised. A window of
/// one value is re-anchored on it (sums of exactly 0): its variance is
/// exactly 0, as TA-Lib 0.8's, not the residue of the values that left.
/// Never negative (`var_floor`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Var {
    pub p: usize,
    n: usize,
    ring: Ring,
    k: f64,
    s1: f64,
    s2: f64,
    since: usize,
    /// Values equal to the one before, in a row, up to `flat_run(p)`.
    #[serde(default)]
    run: usize,
}

pub const RESYNC: usize = 64;

/// The run of values equal to the one before at which a window of `p` is
/// one value (at least 1: a window of one value is always that, and needs
/// no re-anchoring).
#[inline(always)]
pub fn flat_run(p: usize) -> usize {
    (p.max(1) - 1).max(1)
}

/// The run count after `x` (see `flat_run`): one more when `x` equals the
/// value before it, else 0.
#[inline(always)]
pub fn next_run(run: usize, x: f64, before: f64, need: usize) -> usize {
    if x == before {
        (run + 1).min(need)
    } else {
        0
    }
}

/// A variance clamped at 0: rounding can leave a nearly flat window's
/// slightly below (the sums' residue of large values that left, -6e-8 at
/// 1e6 after moves of 1e3); TA-Lib's is never negative. NaN passes.
#[inline(always)]
pub fn var_floor(v: f64) -> f64 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

impl Var {
    pub fn new(p: usize) -> Self {
        let p = p.max(1);
        Var {
            p,
            n: 0,
            ring: Ring::new(p),
            k: 0.0,
            s1: 0.0,
            s2: 0.0,
            since: 0,
            run: 0,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.n == 0 {
            self.k = x;
        } else {
            let need = flat_run(self.p);
            self.run = next_run(self.run, x, self.ring.back(0), need);
            if self.n >= self.p && self.since >= RESYNC {
                self.resync();
            }
            if self.run >= need {
                self.k = x;
                self.s1 = 0.0;
                self.s2 = 0.0;
            }
        }
        self.ring.push(x);
        let v = x - self.k;
        self.since += 1;
        if self.n + 1 < self.p {
            self.s1 += v;
            self.s2 += v * v;
            self.n += 1;
            return None;
        }
        if self.n < self.p {
            self.n += 1;
        }
        // One division per series, not two per bar (1 ulp apart at most).
        let inv = 1.0 / self.p as f64;
        let m1 = (self.s1 + v) * inv;
        let m2 = (self.s2 + v * v) * inv;
        // the sums of the values that stay: one addition per bar on each
        // (the entering and leaving terms combined off the chain)
        let o = self.ring.oldest() - self.k;
        self.s1 += v - o;
        self.s2 += v * v - o * o;
        Some(var_floor(m2 - m1 * m1))
    }

    #[inline(always)]
    fn resync(&mut self) {
        // Anchor on the previous value; sums over the p-1 values that stay.
        let k = self.ring.back(0);
        self.k = k;
        self.s1 = 0.0;
        self.s2 = 0.0;
        for age in (0..self.p - 1).rev() {
            let v = self.ring.back(age) - k;
            self.s1 += v;
            self.s2 += v * v;
        }
        self.since = 0;
    }
}
