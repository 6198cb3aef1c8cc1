//! Moving averages as O(1) state machines over one series.
//!
//! Each average performs the same floating-point operations, in the same
//! order, as TA-Lib's batch function does for the same bar, so the stream
//! and the batch output agree bit for bit and agree with TA-Lib to rounding.

use serde::{Deserialize, Serialize};

/// TA-Lib's `TA_EPSILON` (0.8.x; earlier releases used 1e-8).
pub const EPSILON: f64 = 0.00000000000001;

/// TA-Lib's `TA_IS_ZERO`: an absolute band, which 0.8 keeps only where the
/// value has no price scale (the directional indicators' sum, in percent)
/// and in PPO.
#[inline(always)]
pub fn is_zero(v: f64) -> bool {
    -EPSILON < v && v < EPSILON
}

/// TA-Lib 0.8's `TA_IS_ZERO_SCALED`: `v`, a difference of prices, is no more
/// than 1e-14 of `s`, the magnitude of what was subtracted (a dead zone of
/// about 90 ulp for the rounding of equal prices, the same at any price
/// level; exactly `v == 0` when `s` is 0). False for NaN.
#[inline(always)]
pub fn is_zero_scaled(v: f64, s: f64) -> bool {
    v.abs() <= EPSILON * s
}

/// The last `cap` values of a series; `push` returns the value it evicts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ring {
    buf: Vec<f64>,
    pos: usize,
    len: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Ring {
            buf: vec![0.0; cap.max(1)],
            pos: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> f64 {
        let old = self.buf[self.pos];
        self.buf[self.pos] = x;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        if self.len < self.buf.len() {
            self.len += 1;
        }
        old
    }

    /// The oldest value held (valid once the ring is full).
    #[inline(always)]
    pub fn oldest(&self) -> f64 {
        self.buf[self.pos]
    }

    /// The value pushed `age` pushes ago (0 = the newest).
    #[inline(always)]
    pub fn back(&self, age: usize) -> f64 {
        let n = self.buf.len();
        debug_assert!(age < n);
        let mut i = self.pos + n - 1 - age.min(n - 1);
        if i >= n {
            i -= n;
        }
        self.buf[i]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }
}

/// Sliding extreme (max or min) over the last `period` pushes, with the age
/// of the most recent bar holding it (TA-Lib's tie rule). The extreme is
/// kept until it leaves the window, then the window is rescanned: O(1)
/// amortised on market data, O(period) at worst. The window is stored twice
/// in a row so that it is always one contiguous slice.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Extreme {
    period: usize,
    max: bool,
    buf: Vec<f64>,
    pos: usize,
    best: f64,
    age: usize,
    count: usize,
}

impl Extreme {
    pub fn is_max(&self) -> bool {
        self.max
    }

    pub fn new(period: usize, max: bool) -> Self {
        let period = period.max(1);
        Extreme {
            period,
            max,
            buf: vec![0.0; 2 * period],
            pos: 0,
            best: 0.0,
            age: 0,
            count: 0,
        }
    }

    /// Pushes `x` and returns (extreme, bars since it occurred).
    #[inline(always)]
    pub fn push(&mut self, x: f64) -> (f64, u64) {
        let p = self.period;
        self.buf[self.pos] = x;
        self.buf[self.pos + p] = x;
        self.pos += 1;
        if self.pos == p {
            self.pos = 0;
        }
        if self.count == 0 {
            self.count = 1;
            self.best = x;
            self.age = 0;
            return (x, 0);
        }
        if self.count < p {
            self.count += 1;
        }
        self.age += 1;
        let better = if self.max {
            x >= self.best
        } else {
            x <= self.best
        };
        if better {
            self.best = x;
            self.age = 0;
        } else if self.age >= p {
            self.rescan();
        }
        (self.best, self.age as u64)
    }

    #[inline(always)]
    fn rescan(&mut self) {
        // The window (oldest first) is buf[pos .. pos + p] once full.
        let p = self.period;
        let w = &self.buf[self.pos..self.pos + p];
        let mut best = w[0];
        let mut idx = 0;
        // Branch-free scans (ties go to the most recent bar).
        if self.max {
            for (i, &v) in w.iter().enumerate().skip(1) {
                let take = v >= best;
                best = if take { v } else { best };
                idx = if take { i } else { idx };
            }
        } else {
            for (i, &v) in w.iter().enumerate().skip(1) {
                let take = v <= best;
                best = if take { v } else { best };
                idx = if take { i } else { idx };
            }
        }
        self.best = best;
        self.age = p - 1 - idx;
    }
}

/// Simple moving average (TA-Lib's running total, subtracting after output).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sma {
    p: usize,
    ring: Vec<f64>,
    pos: usize,
    n: usize,
    sum: f64,
    pf: f64,
}

impl Sma {
    pub fn period(&self) -> usize {
        self.p
    }

    pub fn new(p: usize) -> Self {
        let p = p.max(1);
        Sma {
            p,
            ring: vec![0.0; p],
            pos: 0,
            n: 0,
            sum: 0.0,
            pf: p as f64,
        }
    }

    /// Adds `x` to the window's sum: the first `p` values one by one, then
    /// `x - leaving` (one addition on the running sum per bar, where TA-Lib
    /// adds and subtracts: the same sum within an ulp, half the latency).
    /// Whole-array loops in `fast` repeat exactly these operations.
    #[inline(always)]
    pub fn add(&mut self, x: f64) -> bool {
        let leaving = self.ring[self.pos];
        self.ring[self.pos] = x;
        self.pos += 1;
        if self.pos == self.p {
            self.pos = 0;
        }
        if self.n < self.p {
            self.sum += x;
            self.n += 1;
            self.n == self.p
        } else {
            self.sum += x - leaving;
            true
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        // Multiplying by the reciprocal (hoisted out of whole-array loops)
        // instead of dividing at every bar: at most 1 ulp from TA-Lib.
        self.add(x).then(|| self.sum * (1.0 / self.pf))
    }
}

/// Running sum over a window (TA-Lib's SUM).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sum {
    inner: Sma,
}

impl Sum {
    pub fn period(&self) -> usize {
        self.inner.p
    }

    pub fn new(p: usize) -> Self {
        Sum { inner: Sma::new(p) }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        self.inner.add(x).then_some(self.inner.sum)
    }
}

/// Exponential moving average seeded with the mean of the first `p` values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ema {
    p: usize,
    k: f64,
    n: usize,
    prev: f64,
}

impl Ema {
    pub fn new(p: usize) -> Self {
        Self::with_k(p, 2.0 / ((p + 1) as f64))
    }

    pub fn with_k(p: usize, k: f64) -> Self {
        Ema {
            p: p.max(1),
            k,
            n: 0,
            prev: 0.0,
        }
    }

    /// Whether the seed (the mean of the first `p` values) is complete.
    #[inline(always)]
    pub fn ready(&self) -> bool {
        self.n >= self.p
    }

    /// One step once `ready` (the same arithmetic as `push`).
    #[inline(always)]
    pub fn step(prev: f64, x: f64, k: f64) -> f64 {
        // prev * (1 - k) + k * x: the recurrence waits on one fused
        // multiply-add per bar (k * x and 1 - k are off the chain), where
        // TA-Lib's (x - prev) * k + prev waits on a subtraction and a
        // multiply-add. Within a few ulps of it; EMA forgets the difference.
        prev.mul_add(1.0 - k, k * x)
    }

    #[inline(always)]
    pub fn state(&self) -> (f64, f64) {
        (self.prev, self.k)
    }

    #[inline(always)]
    pub fn set_prev(&mut self, prev: f64) {
        self.prev = prev;
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.n < self.p {
            self.prev += x;
            self.n += 1;
            if self.n < self.p {
                return None;
            }
            self.prev /= self.p as f64;
            return Some(self.prev);
        }
        self.prev = Ema::step(self.prev, x, self.k);
        Some(self.prev)
    }
}

/// Weighted moving average (TA-Lib's sum/sub formulation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Wma {
    pub p: usize,
    n: usize,
    sub: f64,
    sum: f64,
    trailing: f64,
    ring: Ring,
    divider: f64,
}

impl Wma {
    pub fn new(p: usize) -> Self {
        let p = p.max(1);
        Wma {
            p,
            n: 0,
            sub: 0.0,
            sum: 0.0,
            trailing: 0.0,
            ring: Ring::new(p),
            divider: ((p * (p + 1)) >> 1) as f64,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        self.ring.push(x);
        if self.n + 1 < self.p {
            self.n += 1;
            self.sub += x;
            self.sum += x * (self.n as f64);
            return None;
        }
        self.sub += x;
        self.sub -= self.trailing;
        self.sum += x * (self.p as f64);
        self.trailing = self.ring.oldest();
        let out = self.sum * (1.0 / self.divider);
        self.sum -= self.sub;
        Some(out)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dema {
    pub e1: Ema,
    pub e2: Ema,
}

impl Dema {
    pub fn new(p: usize) -> Self {
        Dema {
            e1: Ema::new(p),
            e2: Ema::new(p),
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.push(x)?;
        let b = self.e2.push(a)?;
        Some((2.0 * a) - b)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tema {
    pub e1: Ema,
    pub e2: Ema,
    pub e3: Ema,
}

impl Tema {
    pub fn new(p: usize) -> Self {
        Tema {
            e1: Ema::new(p),
            e2: Ema::new(p),
            e3: Ema::new(p),
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.push(x)?;
        let b = self.e2.push(a)?;
        let c = self.e3.push(b)?;
        let mut out = c;
        out += (3.0 * a) - (3.0 * b);
        Some(out)
    }
}

/// Triangular moving average as an SMA of an SMA (weights 1,2,..,2,1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trima {
    a: Sma,
    b: Sma,
}

impl Trima {
    pub fn periods(&self) -> (usize, usize) {
        (self.a.period(), self.b.period())
    }

    pub fn new(p: usize) -> Self {
        let (n1, n2) = if p % 2 == 1 {
            (p.div_ceil(2), p.div_ceil(2))
        } else {
            (p / 2, p / 2 + 1)
        };
        Trima {
            a: Sma::new(n1),
            b: Sma::new(n2),
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let a = self.a.push(x)?;
        self.b.push(a)
    }
}

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

/// The larger of two values with one `maxsd` (f64::max also sorts out NaN,
/// at three instructions and twice the latency): for NaN-free data, where
/// both give the same value. Written with the SSE2 intrinsic: as a plain
/// `if a > b`, the compiler sometimes emits a conditional jump instead, which
/// mispredicts on half the bars of a random walk.
#[inline(always)]
pub fn big(a: f64, b: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cvtsd_f64, _mm_max_sd, _mm_set_sd};
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { _mm_cvtsd_f64(_mm_max_sd(_mm_set_sd(a), _mm_set_sd(b))) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    if a > b {
        a
    } else {
        b
    }
}

/// The smaller of two values with one `minsd` (see `big`).
#[inline(always)]
pub fn small(a: f64, b: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cvtsd_f64, _mm_min_sd, _mm_set_sd};
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { _mm_cvtsd_f64(_mm_min_sd(_mm_set_sd(a), _mm_set_sd(b))) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    if a < b {
        a
    } else {
        b
    }
}

/// The one-bar directional movements (+DM, -DM) from the high's rise
/// `diff_p` and the low's fall `diff_m`: -DM when the fall is positive and
/// larger than the rise, else +DM when the rise is positive and larger than
/// the fall, else neither (TA-Lib's rule). Compare-and-mask in SSE2 on
/// x86_64: the compiler turns a bool mask back into jumps, which mispredict
/// on market data.
#[inline(always)]
pub fn dm_select(diff_p: f64, diff_m: f64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_and_pd, _mm_andnot_pd, _mm_cmplt_sd, _mm_cvtsd_f64, _mm_set_sd, _mm_setzero_pd,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe {
            let (p, m, z) = (_mm_set_sd(diff_p), _mm_set_sd(diff_m), _mm_setzero_pd());
            let minus = _mm_and_pd(_mm_cmplt_sd(z, m), _mm_cmplt_sd(p, m));
            let plus = _mm_andnot_pd(minus, _mm_and_pd(_mm_cmplt_sd(z, p), _mm_cmplt_sd(m, p)));
            (
                _mm_cvtsd_f64(_mm_and_pd(plus, p)),
                _mm_cvtsd_f64(_mm_and_pd(minus, m)),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let minus = (diff_m > 0.0) & (diff_p < diff_m);
        let plus = !minus & (diff_p > 0.0) & (diff_p > diff_m);
        (
            if plus { diff_p } else { 0.0 },
            if minus { diff_m } else { 0.0 },
        )
    }
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

/// One of T3's EMA steps, `e + k·(x - e)`: a subtraction and a
/// multiply-add (`(1-k)·e + k·x` is a multiply and a multiply-add, and with
/// six EMAs and the combination a bar the multiply-add units were the
/// bottleneck; subtractions run on the adders).
#[inline(always)]
fn t3_ema(k: f64, e: f64, x: f64) -> f64 {
    k.mul_add(x - e, e)
}

/// T3 (Tillson) with TA-Lib's staged seeding of its six EMAs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct T3 {
    p: usize,
    k: f64,
    omk: f64,
    e: [f64; 6],
    stage: usize,
    cnt: usize,
    acc: f64,
    c: [f64; 4],
}

impl T3 {
    pub fn new(p: usize, v: f64) -> Self {
        let p = p.max(1);
        let k = 2.0 / (p as f64 + 1.0);
        let t = v * v;
        let c1 = -(t * v);
        let c2 = 3.0 * (t - c1);
        let c3 = -6.0 * t - 3.0 * (v - c1);
        let c4 = 1.0 + 3.0 * v - c1 + 3.0 * t;
        T3 {
            p,
            k,
            omk: 1.0 - k,
            e: [0.0; 6],
            stage: 1,
            cnt: 0,
            acc: 0.0,
            c: [c1, c2, c3, c4],
        }
    }

    #[inline(always)]
    fn update(&mut self, x: f64, upto: usize) {
        let k = self.k;
        self.e[0] = t3_ema(k, self.e[0], x);
        for j in 1..upto {
            self.e[j] = t3_ema(k, self.e[j], self.e[j - 1]);
        }
    }

    fn advance(&mut self) {
        loop {
            self.stage += 1;
            self.cnt = 0;
            if self.stage > 6 {
                return;
            }
            self.acc = self.e[self.stage - 2];
            if self.p > 1 {
                return;
            }
            self.e[self.stage - 1] = self.acc / self.p as f64;
        }
    }

    /// Runs over `x` writing one output per bar (NaN while warming up):
    /// the state machine until it is warm, then the same arithmetic on
    /// locals.
    #[inline(always)]
    pub fn run_array(&mut self, x: &[f64], out: &mut [f64], nan: &mut bool) {
        let n = x.len().min(out.len());
        let mut i = 0;
        while i < n && self.stage != 7 {
            *nan |= x[i].is_nan();
            out[i] = self.push(x[i]).unwrap_or(f64::NAN);
            i += 1;
        }
        let k = self.k;
        let [c1, c2, c3, c4] = self.c;
        let mut e = self.e;
        for j in i..n {
            let xv = x[j];
            *nan |= xv.is_nan();
            e[0] = t3_ema(k, e[0], xv);
            e[1] = t3_ema(k, e[1], e[0]);
            e[2] = t3_ema(k, e[2], e[1]);
            e[3] = t3_ema(k, e[3], e[2]);
            e[4] = t3_ema(k, e[4], e[3]);
            e[5] = t3_ema(k, e[5], e[4]);
            out[j] = T3::combine([c1, c2, c3, c4], &e);
        }
        self.e = e;
    }

    /// c1*e6 + c2*e5 + c3*e4 + c4*e3 as three multiply-adds (four
    /// instructions where TA-Lib spends seven; within an ulp or two of it).
    #[inline(always)]
    fn combine(c: [f64; 4], e: &[f64; 6]) -> f64 {
        c[0].mul_add(e[5], c[1].mul_add(e[4], c[2].mul_add(e[3], c[3] * e[2])))
    }

    #[inline(always)]
    fn out(&self) -> f64 {
        T3::combine(self.c, &self.e)
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        match self.stage {
            7 => {
                self.update(x, 6);
                Some(self.out())
            }
            1 => {
                if self.cnt == 0 {
                    self.acc = x;
                } else {
                    self.acc += x;
                }
                self.cnt += 1;
                if self.cnt == self.p {
                    self.e[0] = self.acc / self.p as f64;
                    self.advance();
                }
                (self.stage == 7).then(|| self.out())
            }
            s => {
                self.update(x, s - 1);
                self.acc += self.e[s - 2];
                self.cnt += 1;
                if self.cnt == self.p - 1 {
                    self.e[s - 1] = self.acc / self.p as f64;
                    self.advance();
                }
                (self.stage == 7).then(|| self.out())
            }
        }
    }
}

/// MESA adaptive moving average: (mama, fama). `parity` is the index of the
/// first bar this average sees, counted from the start of the series (TA-Lib
/// alternates two Hilbert-transform buffers on even and odd indexes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mama {
    fast: f64,
    slow: f64,
    today: u64,
    n: usize,
    wma_sub: f64,
    wma_sum: f64,
    trailing_wma: f64,
    last3: [f64; 3],
    hilbert_idx: usize,
    // [even, odd] buffers and carried values of the four transforms.
    det: [[f64; 3]; 2],
    det_prev: [f64; 2],
    det_prev_in: [f64; 2],
    q1b: [[f64; 3]; 2],
    q1_prev: [f64; 2],
    q1_prev_in: [f64; 2],
    jib: [[f64; 3]; 2],
    ji_prev: [f64; 2],
    ji_prev_in: [f64; 2],
    jqb: [[f64; 3]; 2],
    jq_prev: [f64; 2],
    jq_prev_in: [f64; 2],
    period: f64,
    prev_q2: f64,
    prev_i2: f64,
    re: f64,
    im: f64,
    i1_odd_prev2: f64,
    i1_odd_prev3: f64,
    i1_even_prev2: f64,
    i1_even_prev3: f64,
    prev_phase: f64,
    mama: f64,
    fama: f64,
}

const MAMA_A: f64 = 0.0962;
const MAMA_B: f64 = 0.5769;

/// TA-Lib's Hilbert transform step, `(a*x - buf[idx] - prev + b*prev_in) * adj`,
/// with the terms that do not depend on `x` summed first: from `x` to the
/// result a multiply, an add and a multiply (MAMA's period feeds back into
/// the next bar through four of these in a row). `a*x` is rounded before
/// the add, as the value kept in `buf`: on a constant series the two then
/// cancel exactly (a fused multiply-add would leave the product's rounding
/// error, and a zero-or-not test downstream would see it).
#[inline(always)]
fn hilbert(
    buf: &mut [f64; 3],
    prev: &mut f64,
    prev_in: &mut f64,
    idx: usize,
    input: f64,
    adj: f64,
) -> f64 {
    let next_prev = MAMA_B * *prev_in;
    let rest = (next_prev - *prev) - buf[idx];
    let t = MAMA_A * input;
    buf[idx] = t;
    *prev = next_prev;
    *prev_in = input;
    (t + rest) * adj
}

/// Arctangent in a fixed number of steps, without a library call, for
/// MAMA's two per bar (its period's feedback loop runs through one: libm's
/// call, its branches and the registers it clobbers were a third of MAMA's
/// time). Within 2 ulp of the exact value (a test checks it against libm).
///
/// `|x|` up to 2 is split into 33 intervals centred on `k/16`; on each, the
/// Taylor series of atan around the centre, to degree 11 (the remainder is
/// below 1e-19 for `|h| <= 1/32`: the coefficients shrink as
/// `(1 + c^2)^(-j/2) / j`), evaluated by Estrin's scheme (a short dependency
/// chain). Above 2, `atan(x) = pi/2 - atan(1/x)`.
#[inline(always)]
pub fn atan(x: f64) -> f64 {
    atan_sel::<false>(x)
}

/// `atan` with `SELECT`: the reciprocal computed for every argument and
/// chosen without a branch (for arguments above 2 as often as not; the
/// plain version branches, for a chain where they are rare). Same result.
#[inline(always)]
pub fn atan_sel<const SELECT: bool>(x: f64) -> f64 {
    let t = atan_table();
    let a = x.abs();
    let far = a > 2.0;
    let a = if SELECT {
        let inv = 1.0 / a;
        if far {
            inv
        } else {
            a
        }
    } else if far {
        1.0 / a
    } else {
        a
    };
    // 16a rounded to an integer by adding 1.5 * 2^52 (whose unit in the
    // last place is 1): the integer is in the low bits, and subtracting the
    // constant back is exact. NaN picks some row and stays NaN.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let m = a.mul_add(16.0, ROUND);
    let row = ((m.to_bits() & 63) as usize).min(ATAN_ROWS - 1);
    // exact: a and the centre are within a factor of two of each other
    // (or the centre is 0)
    let h = (m - ROUND).mul_add(-1.0 / 16.0, a);
    let c = &t[row];
    let h2 = h * h;
    let h4 = h2 * h2;
    let h8 = h4 * h4;
    let e0 = c[1].mul_add(h, c[0]);
    let e1 = c[3].mul_add(h, c[2]);
    let e2 = c[5].mul_add(h, c[4]);
    let e3 = c[7].mul_add(h, c[6]);
    let e4 = c[9].mul_add(h, c[8]);
    let e5 = c[11].mul_add(h, c[10]);
    let d0 = e1.mul_add(h2, e0);
    let d1 = e3.mul_add(h2, e2);
    let d2 = e5.mul_add(h2, e4);
    let v = d2.mul_add(h8, d1.mul_add(h4, d0));
    // pi/2 as a rounded value plus what it lacks
    let w = (std::f64::consts::FRAC_PI_2 - v) + 6.123_233_995_736_766e-17;
    if far { w } else { v }.copysign(x)
}

const ATAN_ROWS: usize = 33;

/// Row k: atan's Taylor coefficients around k/16, constant term first.
fn atan_table() -> &'static [[f64; 12]; ATAN_ROWS] {
    static T: std::sync::OnceLock<[[f64; 12]; ATAN_ROWS]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t = [[0.0; 12]; ATAN_ROWS];
        for (k, row) in t.iter_mut().enumerate() {
            let c = k as f64 / 16.0;
            let q0 = 1.0 + c * c;
            // 1/(1 + (c + h)^2) = sum u_m h^m, from
            // (q0 + 2c h + h^2) * sum u_m h^m = 1; atan's are u_(j-1) / j
            let (mut u1, mut u0) = (0.0, 1.0 / q0);
            row[0] = c.atan();
            row[1] = u0;
            for (j, coef) in row.iter_mut().enumerate().skip(2) {
                let u = -(2.0 * c * u0 + u1) / q0;
                (u1, u0) = (u0, u);
                *coef = u / j as f64;
            }
        }
        t
    })
}

/// Degrees per radian (TA-Lib's `180 / (4 * atan(1))`: 4 * atan(1) is pi
/// exactly in binary64).
const RAD2DEG: f64 = 180.0 / std::f64::consts::PI;

impl Mama {
    pub fn new(fast: f64, slow: f64, parity: u64) -> Self {
        Mama {
            fast,
            slow,
            today: parity,
            n: 0,
            wma_sub: 0.0,
            wma_sum: 0.0,
            trailing_wma: 0.0,
            last3: [0.0; 3],
            hilbert_idx: 0,
            det: [[0.0; 3]; 2],
            det_prev: [0.0; 2],
            det_prev_in: [0.0; 2],
            q1b: [[0.0; 3]; 2],
            q1_prev: [0.0; 2],
            q1_prev_in: [0.0; 2],
            jib: [[0.0; 3]; 2],
            ji_prev: [0.0; 2],
            ji_prev_in: [0.0; 2],
            jqb: [[0.0; 3]; 2],
            jq_prev: [0.0; 2],
            jq_prev_in: [0.0; 2],
            period: 0.0,
            prev_q2: 0.0,
            prev_i2: 0.0,
            re: 0.0,
            im: 0.0,
            i1_odd_prev2: 0.0,
            i1_odd_prev3: 0.0,
            i1_even_prev2: 0.0,
            i1_even_prev3: 0.0,
            prev_phase: 0.0,
            mama: 0.0,
            fama: 0.0,
        }
    }

    /// The fast and slow limits.
    pub fn limits(&self) -> (f64, f64) {
        (self.fast, self.slow)
    }

    #[inline(always)]
    fn smooth_step(&mut self, x: f64) -> f64 {
        self.wma_sub += x;
        self.wma_sub -= self.trailing_wma;
        self.wma_sum += x * 4.0;
        // x[t-3]: the oldest of the last three values before x.
        let n = self.n;
        self.trailing_wma = self.last3[n % 3];
        let smoothed = self.wma_sum * 0.1;
        self.wma_sum -= self.wma_sub;
        smoothed
    }

    #[inline(always)]
    pub fn push2(&mut self, x: f64) -> Option<(f64, f64)> {
        let n = self.n;
        if n < 3 {
            self.wma_sub += x;
            self.wma_sum += x * (n as f64 + 1.0);
            self.last3[n % 3] = x;
            self.n += 1;
            self.today += 1;
            return None;
        }
        if n < 12 {
            self.smooth_step(x);
            self.last3[n % 3] = x;
            self.n += 1;
            self.today += 1;
            return None;
        }
        let adj = 0.075f64.mul_add(self.period, 0.54);
        let smoothed = self.smooth_step(x);
        self.last3[n % 3] = x;
        let hi = self.hilbert_idx;
        let tr2;
        if self.today % 2 == 0 {
            let e = 0;
            let det = hilbert(
                &mut self.det[e],
                &mut self.det_prev[e],
                &mut self.det_prev_in[e],
                hi,
                smoothed,
                adj,
            );
            let q1 = hilbert(
                &mut self.q1b[e],
                &mut self.q1_prev[e],
                &mut self.q1_prev_in[e],
                hi,
                det,
                adj,
            );
            let i1p3 = self.i1_even_prev3;
            let ji = hilbert(
                &mut self.jib[e],
                &mut self.ji_prev[e],
                &mut self.ji_prev_in[e],
                hi,
                i1p3,
                adj,
            );
            let jq = hilbert(
                &mut self.jqb[e],
                &mut self.jq_prev[e],
                &mut self.jq_prev_in[e],
                hi,
                q1,
                adj,
            );
            self.hilbert_idx += 1;
            if self.hilbert_idx == 3 {
                self.hilbert_idx = 0;
            }
            let q2 = 0.2f64.mul_add(q1 + ji, 0.8 * self.prev_q2);
            let i2 = 0.2f64.mul_add(i1p3 - jq, 0.8 * self.prev_i2);
            self.i1_odd_prev3 = self.i1_odd_prev2;
            self.i1_odd_prev2 = det;
            tr2 = if i1p3 != 0.0 {
                atan_sel::<true>(q1 / i1p3) * RAD2DEG
            } else {
                0.0
            };
            self.finish(x, q2, i2, tr2);
        } else {
            let o = 1;
            let det = hilbert(
                &mut self.det[o],
                &mut self.det_prev[o],
                &mut self.det_prev_in[o],
                hi,
                smoothed,
                adj,
            );
            let q1 = hilbert(
                &mut self.q1b[o],
                &mut self.q1_prev[o],
                &mut self.q1_prev_in[o],
                hi,
                det,
                adj,
            );
            let i1p3 = self.i1_odd_prev3;
            let ji = hilbert(
                &mut self.jib[o],
                &mut self.ji_prev[o],
                &mut self.ji_prev_in[o],
                hi,
                i1p3,
                adj,
            );
            let jq = hilbert(
                &mut self.jqb[o],
                &mut self.jq_prev[o],
                &mut self.jq_prev_in[o],
                hi,
                q1,
                adj,
            );
            let q2 = 0.2f64.mul_add(q1 + ji, 0.8 * self.prev_q2);
            let i2 = 0.2f64.mul_add(i1p3 - jq, 0.8 * self.prev_i2);
            self.i1_even_prev3 = self.i1_even_prev2;
            self.i1_even_prev2 = det;
            tr2 = if i1p3 != 0.0 {
                atan_sel::<true>(q1 / i1p3) * RAD2DEG
            } else {
                0.0
            };
            self.finish(x, q2, i2, tr2);
        }
        self.n += 1;
        self.today += 1;
        if n >= 32 {
            Some((self.mama, self.fama))
        } else {
            None
        }
    }

    #[inline(always)]
    fn finish(&mut self, x: f64, q2: f64, i2: f64, tr2: f64) {
        // TA-Lib's alpha: a phase change under 1 degree counts as 1
        // (alpha = fast), otherwise fast / change, at least slow. Written
        // with selects: the comparisons go either way from bar to bar
        // (mispredicted branches were a large part of MAMA's time); fast / 1
        // is fast exactly.
        let delta = self.prev_phase - tr2;
        self.prev_phase = tr2;
        let moved = delta > 1.0;
        let q = self.fast / if moved { delta } else { 1.0 };
        let mut t = if moved & (q < self.slow) {
            self.slow
        } else {
            q
        };
        self.mama = t * x + (1.0 - t) * self.mama;
        t *= 0.5;
        self.fama = t * self.mama + (1.0 - t) * self.fama;
        // the period's chain: multiply-adds from i2 and q2 to re and im
        let re_sum = i2.mul_add(self.prev_i2, q2 * self.prev_q2);
        let im_sum = i2.mul_add(self.prev_q2, -(q2 * self.prev_i2));
        self.re = 0.2f64.mul_add(re_sum, 0.8 * self.re);
        self.im = 0.2f64.mul_add(im_sum, 0.8 * self.im);
        self.prev_q2 = q2;
        self.prev_i2 = i2;
        let prev_period = self.period;
        if self.im != 0.0 && self.re != 0.0 {
            // 360 / (atan(im/re) in degrees)
            self.period = (360.0 / RAD2DEG) / atan(self.im / self.re);
        }
        // TA-Lib: within [0.67, 1.5] x the previous period, then within
        // [6, 50]. The bounds merged first (the same result while 0.67 x the
        // previous period is at most 50, and the period never leaves
        // [0, 50]): two selects on the chain instead of four.
        let (up, lo) = (1.5 * prev_period, 0.67 * prev_period);
        let up = if up > 50.0 { 50.0 } else { up };
        let lo = if lo < 6.0 { 6.0 } else { lo };
        let p = self.period;
        let p = if p > up { up } else { p };
        self.period = if p < lo { lo } else { p };
        self.period = 0.2f64.mul_add(self.period, 0.8 * prev_period);
    }
}

/// Any of TA-Lib's nine moving-average types (`matype` 0..8).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Ma {
    Copy,
    Sma(Sma),
    Ema(Ema),
    Wma(Wma),
    Dema(Dema),
    Tema(Tema),
    Trima(Trima),
    Kama(Kama),
    Mama(Box<Mama>),
    T3(T3),
}

impl Ma {
    /// `parity`: index of the first bar this average sees (MAMA only).
    pub fn new(p: usize, matype: u32, parity: u64) -> Self {
        if p == 1 {
            return Ma::Copy;
        }
        match matype {
            1 => Ma::Ema(Ema::new(p)),
            2 => Ma::Wma(Wma::new(p)),
            3 => Ma::Dema(Dema::new(p)),
            4 => Ma::Tema(Tema::new(p)),
            5 => Ma::Trima(Trima::new(p)),
            6 => Ma::Kama(Kama::new(p)),
            7 => Ma::Mama(Box::new(Mama::new(0.5, 0.05, parity))),
            8 => Ma::T3(T3::new(p, 0.7)),
            _ => Ma::Sma(Sma::new(p)),
        }
    }

    pub fn lookback(p: usize, matype: u32) -> usize {
        if p == 1 {
            return 0;
        }
        match matype {
            3 => 2 * (p - 1),
            4 => 3 * (p - 1),
            6 => p,
            7 => 32,
            8 => 6 * (p - 1),
            _ => p - 1,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        match self {
            Ma::Copy => Some(x),
            Ma::Sma(s) => s.push(x),
            Ma::Ema(s) => s.push(x),
            Ma::Wma(s) => s.push(x),
            Ma::Dema(s) => s.push(x),
            Ma::Tema(s) => s.push(x),
            Ma::Trima(s) => s.push(x),
            Ma::Kama(s) => s.push(x),
            Ma::Mama(s) => s.push2(x).map(|v| v.0),
            Ma::T3(s) => s.push(x),
        }
    }
}

/// A moving average that ignores its first `skip` inputs: TA-Lib starts an
/// inner average later when another average of the same function needs a
/// longer warm-up (MACD's fast EMA, APO/PPO, MACDEXT).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delayed {
    pub skip: usize,
    pub ma: Ma,
}

impl Delayed {
    pub fn new(p: usize, matype: u32, skip: usize) -> Self {
        Delayed {
            skip,
            ma: Ma::new(p, matype, skip as u64),
        }
    }

    pub fn from_ma(ma: Ma, skip: usize) -> Self {
        Delayed { skip, ma }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        self.ma.push(x)
    }
}

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

#[cfg(test)]
mod tests {
    use super::atan;

    /// Distance in units in the last place (same sign, finite).
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn atan_within_two_ulp_of_libm() {
        // a deterministic spread over every interval and far beyond
        let mut worst = 0;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..400_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let x = match i % 4 {
                0 => u * 2.2,                       // the table's range
                1 => (u * 60.0 - 30.0).exp(),       // 1e-13 .. 1e13
                2 => -(u * 2.2),                    // negative
                _ => (i as f64 / 16.0) + u * 1e-12, // near the centres
            };
            let (ours, libm) = (atan(x), x.atan());
            let d = ulps(ours, libm);
            assert!(d <= 2, "atan({x:e}): {ours:e} vs {libm:e} ({d} ulp)");
            worst = worst.max(d);
        }
        assert!(worst <= 2);
        assert_eq!(atan(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(atan(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(atan(f64::INFINITY), std::f64::consts::FRAC_PI_2);
        assert_eq!(atan(f64::NEG_INFINITY), -std::f64::consts::FRAC_PI_2);
        assert!(atan(f64::NAN).is_nan());
        // the edges between the table and the reciprocal
        for x in [
            2.0,
            2.0f64.next_up(),
            1.0 / 32.0,
            2.0 - 1.0 / 32.0,
            1e-300,
            1e300,
        ] {
            assert!(ulps(atan(x), x.atan()) <= 2, "{x:e}");
        }
    }
}
