//! Momentum indicators: RSI/CMO, MACD/MACDEXT/APO/PPO, the stochastics,
//! CCI, MFI, MOM/ROC/ROCP, WILLR, AROON, ULTOSC, TRIX and BOP (the
//! directional movement family is in `directional`).

use serde::{Deserialize, Serialize};

use super::base::{o1, Bar, Kernel, Out};
use crate::ta::ma::{is_zero, is_zero_scaled, Delayed, Ema, Extreme, Ma, Ring};

/// RSI and CMO: Wilder-smoothed gains and losses seeded by their mean.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rsi {
    pub p: usize,
    pub n: usize,
    pub prev: f64,
    pub gain: f64,
    pub loss: f64,
    pub cmo: bool,
}

impl Rsi {
    pub fn new(p: usize, cmo: bool) -> Self {
        Rsi {
            p,
            n: 0,
            prev: 0.0,
            gain: 0.0,
            loss: 0.0,
            cmo,
        }
    }

    /// 0 only when gains and losses are both exactly 0 (a series that
    /// never moved): both averages decay by the same factor on unchanged
    /// bars, so after a move their ratio holds through any flat stretch, as
    /// TA-Lib 0.8's exact test keeps it. Both are non-negative: `!= 0` is
    /// TA-Lib's `> 0`, and lets a NaN through.
    #[inline(always)]
    fn value(&self) -> f64 {
        let s = self.gain + self.loss;
        if s == 0.0 {
            0.0
        } else if self.cmo {
            100.0 * ((self.gain - self.loss) / s)
        } else {
            100.0 * (self.gain / s)
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.n == 0 {
            self.prev = x;
            self.n = 1;
            return None;
        }
        let d = x - self.prev;
        self.prev = x;
        let pf = self.p as f64;
        if self.n <= self.p {
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            self.n += 1;
            if self.n <= self.p {
                return None;
            }
            self.loss /= pf;
            self.gain /= pf;
            return Some(self.value());
        }
        // Wilder's smoothing as prev*(p-1)/p + v/p: no division on the
        // dependency chain (TA-Lib 0.8 also reorders it; 1e-15 apart).
        let c1 = (pf - 1.0) / pf;
        let c2 = 1.0 / pf;
        let (g, l) = if d < 0.0 { (0.0, -d) } else { (d, 0.0) };
        self.gain = self.gain.mul_add(c1, g * c2);
        self.loss = self.loss.mul_add(c1, l * c2);
        Some(self.value())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RsiKernel {
    pub r: Rsi,
}

impl Kernel for RsiKernel {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.r.push(b.c).map(o1)
    }
}

/// MACD, MACDEXT, APO, PPO: two averages of the close, the fast one
/// started so that both produce their first value on the same bar.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Macd {
    pub fast: Delayed,
    pub slow: Delayed,
    pub signal: Option<Ma>,
    /// 0: MACD triple, 1: APO, 2: PPO.
    pub mode: u8,
}

impl Kernel for Macd {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let f = self.fast.push(b.c);
        let s = self.slow.push(b.c);
        let (f, s) = (f?, s?);
        match self.mode {
            1 => Some(o1(f - s)),
            2 => Some(o1(if !is_zero(s) {
                ((f - s) / s) * 100.0
            } else {
                0.0
            })),
            _ => {
                let m = f - s;
                let sig = self.signal.as_mut()?.push(m)?;
                Some([m, sig, m - sig, 0.0])
            }
        }
    }
}

/// Fast %K over high/low/close.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FastK {
    pub hi: Extreme,
    pub lo: Extreme,
    pub n: usize,
    pub p: usize,
}

impl FastK {
    pub fn new(p: usize) -> Self {
        FastK {
            hi: Extreme::new(p, true),
            lo: Extreme::new(p, false),
            n: 0,
            p,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, h: f64, l: f64, c: f64) -> Option<f64> {
        let (hh, _) = self.hi.push(h);
        let (ll, _) = self.lo.push(l);
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        Some(fastk_value(hh, ll, c))
    }
}

/// Fast %K from the window's highest high, lowest low and the close: 0 when
/// the range is within 1e-14 of the extremes' magnitude (a flat window, or
/// one whose range is rounding drift, such as an RSI holding still), else
/// the close's position in the range in percent.
#[inline(always)]
pub fn fastk_value(hh: f64, ll: f64, c: f64) -> f64 {
    let diff = hh - ll;
    if is_zero_scaled(diff, hh.abs() + ll.abs()) {
        0.0
    } else {
        ((c - ll) / diff) * 100.0
    }
}

/// Williams' %R from the window's highest high, lowest low and the close:
/// 0 for a range within 1e-14 of the extremes' magnitude (as `fastk_value`),
/// else the close's distance below the high in percent of the range,
/// negated and clamped into [-100, 0] (a close outside its bars' range).
#[inline(always)]
pub fn willr_value(hh: f64, ll: f64, c: f64) -> f64 {
    let diff = hh - ll;
    let v = (((hh - c) / diff) * -100.0).clamp(-100.0, 0.0);
    if is_zero_scaled(diff, hh.abs() + ll.abs()) {
        0.0
    } else {
        v
    }
}

/// STOCH (slow: two averages after %K) and STOCHF (one average).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stoch {
    pub k: FastK,
    pub ma1: Ma,
    pub ma2: Option<Ma>,
}

impl Kernel for Stoch {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let k = self.k.push(b.h, b.l, b.c)?;
        let a = self.ma1.push(k)?;
        match &mut self.ma2 {
            Some(m) => {
                let d = m.push(a)?;
                Some([a, d, 0.0, 0.0])
            }
            None => Some([k, a, 0.0, 0.0]),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StochRsi {
    pub rsi: Rsi,
    pub k: FastK,
    pub ma: Ma,
}

impl Kernel for StochRsi {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let r = self.rsi.push(b.c)?;
        let k = self.k.push(r, r, r)?;
        let d = self.ma.push(k)?;
        Some([k, d, 0.0, 0.0])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cci {
    pub p: usize,
    pub buf: Vec<f64>,
    pub idx: usize,
    pub n: usize,
}

impl Kernel for Cci {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let last = (b.h + b.l + b.c) / 3.0;
        self.buf[self.idx] = last;
        self.idx += 1;
        if self.idx == self.p {
            self.idx = 0;
        }
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        let pf = self.p as f64;
        let mut avg = 0.0;
        for v in &self.buf {
            avg += *v;
        }
        avg /= pf;
        let mut dev = 0.0;
        for v in &self.buf {
            dev += (*v - avg).abs();
        }
        let t = last - avg;
        let md = dev / pf;
        // 0 when the last typical price or the mean deviation is within
        // 1e-14 of the average's magnitude: on a flat window both are the
        // rounding residue of equal prices (their ratio is noise, ±66.67
        // at period 14)
        let scale = avg.abs();
        Some(o1(
            if is_zero_scaled(t, scale) || is_zero_scaled(md, scale) {
                0.0
            } else {
                t / (0.015 * md)
            },
        ))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mfi {
    pub p: usize,
    pub n: usize,
    pub prev: f64,
    pub pos: Ring,
    pub neg: Ring,
    pub pos_sum: f64,
    pub neg_sum: f64,
    /// Consecutive bars without money flow (a whole period of them: the
    /// window is empty and its sums are exactly zero).
    #[serde(default)]
    pub null_run: usize,
}

/// One bar's money flow split into (positive, negative), TA-Lib 0.8's rule:
/// none when the typical price moved by no more than 1e-14 of the two prices'
/// magnitudes (a dead zone for rounding), else the flow goes to the side of
/// the move. Bit masks, not branches: the side is a coin flip on market data.
#[inline(always)]
pub fn money_flow(tp: f64, prev: f64, v: f64) -> (f64, f64) {
    let d = tp - prev;
    let dead = d.abs() <= 1e-14 * (tp.abs() + prev.abs());
    let mf = if dead { 0.0 } else { tp * v };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_and_pd, _mm_andnot_pd, _mm_cmplt_sd, _mm_cvtsd_f64, _mm_set_sd, _mm_setzero_pd,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has
        // it. (Written with the intrinsics: the compiler turned the integer
        // mask form back into a jump, which mispredicts on every other bar.)
        unsafe {
            let down = _mm_cmplt_sd(_mm_set_sd(d), _mm_setzero_pd());
            let m = _mm_set_sd(mf);
            (
                _mm_cvtsd_f64(_mm_andnot_pd(down, m)),
                _mm_cvtsd_f64(_mm_and_pd(down, m)),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let down = 0u64.wrapping_sub((d < 0.0) as u64);
        let m = mf.to_bits();
        (f64::from_bits(m & !down), f64::from_bits(m & down))
    }
}

/// MFI's output from its sums: 0 for an empty or non-positive total, else the
/// positive share (clamped into [0, total] against rounding drift) in percent.
#[inline(always)]
pub fn mfi_value(pos_sum: f64, neg_sum: f64) -> f64 {
    let t = pos_sum + neg_sum;
    if t <= 0.0 {
        return 0.0;
    }
    let pc = if pos_sum < 0.0 {
        0.0
    } else if pos_sum > t {
        t
    } else {
        pos_sum
    };
    100.0 * (pc / t)
}

impl Kernel for Mfi {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let tp = (b.h + b.l + b.c) / 3.0;
        if self.n == 0 {
            self.prev = tp;
            self.n = 1;
            return None;
        }
        let (pv, nv) = money_flow(tp, self.prev, b.v);
        self.prev = tp;
        if self.n > self.p {
            self.pos_sum -= self.pos.oldest();
            self.neg_sum -= self.neg.oldest();
        }
        self.pos_sum += pv;
        self.neg_sum += nv;
        self.pos.push(pv);
        self.neg.push(nv);
        self.null_run = if (pv == 0.0) & (nv == 0.0) {
            self.null_run + 1
        } else {
            0
        };
        if self.null_run >= self.p {
            self.null_run = self.p;
            self.pos_sum = 0.0;
            self.neg_sum = 0.0;
        }
        self.n += 1;
        if self.n <= self.p {
            return None;
        }
        Some(o1(mfi_value(self.pos_sum, self.neg_sum)))
    }
}

/// MOM, ROC, ROCP, ROCR, ROCR100 over a lag of `p` bars.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lag {
    pub ring: Ring,
    pub n: usize,
    pub p: usize,
    /// 0 MOM, 1 ROC, 2 ROCP.
    pub mode: u8,
}

impl Kernel for Lag {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let x = b.c;
        let old = self.ring.push(x);
        if self.n < self.p {
            self.n += 1;
            return None;
        }
        Some(o1(match self.mode {
            0 => x - old,
            1 => {
                if old != 0.0 {
                    ((x / old) - 1.0) * 100.0
                } else {
                    0.0
                }
            }
            _ => {
                if old != 0.0 {
                    (x - old) / old
                } else {
                    0.0
                }
            }
        }))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Willr {
    pub hi: Extreme,
    pub lo: Extreme,
    pub n: usize,
    pub p: usize,
}

impl Kernel for Willr {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (hh, _) = self.hi.push(b.h);
        let (ll, _) = self.lo.push(b.l);
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        Some(o1(willr_value(hh, ll, b.c)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Aroon {
    pub hi: Extreme,
    pub lo: Extreme,
    pub n: usize,
    pub p: usize,
    pub osc: bool,
}

impl Kernel for Aroon {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (_, ah) = self.hi.push(b.h);
        let (_, al) = self.lo.push(b.l);
        if self.n < self.p {
            self.n += 1;
            return None;
        }
        let factor = 100.0 / self.p as f64;
        let p = self.p as i64;
        if self.osc {
            // factor * (highestIdx - lowestIdx)
            let v = al as i64 - ah as i64;
            return Some(o1(factor * v as f64));
        }
        let down = factor * (p - al as i64) as f64;
        let up = factor * (p - ah as i64) as f64;
        Some([down, up, 0.0, 0.0])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ultosc {
    pub p: [usize; 3],
    pub n: usize,
    pub prev_c: f64,
    pub a: Ring,
    pub bterm: Ring,
    pub sa: [f64; 3],
    pub sb: [f64; 3],
    /// Consecutive bars without range or move (both terms 0), up to the
    /// longest period: a window made only of such bars is empty, and its
    /// sums are set to exactly 0 (they held the residue of the terms that
    /// left).
    #[serde(default)]
    pub null_run: usize,
}

/// One bar's ULTOSC terms: the close less the true low (the lower of the
/// low and the previous close) and the true range.
#[inline(always)]
pub fn ultosc_terms(h: f64, l: f64, c: f64, pc: f64) -> (f64, f64) {
    let true_low = if l < pc { l } else { pc };
    let mut tr = h - l;
    let t = (pc - h).abs();
    if t > tr {
        tr = t;
    }
    let t = (pc - l).abs();
    if t > tr {
        tr = t;
    }
    (c - true_low, tr)
}

/// ULTOSC from its three windows' sums (shortest first): a window whose
/// true-range sum is above 0 (an exact test, as TA-Lib 0.8) adds its ratio
/// weighted 4, 2, 1; the others add nothing (+0.0: the total starts at +0.0,
/// so the sum is the same as leaving them out), and the total is not
/// renormalised. The ratios are computed either way, then selected.
#[inline(always)]
pub fn ultosc_value(sa: [f64; 3], sb: [f64; 3]) -> f64 {
    let t = [4.0 * (sa[0] / sb[0]), 2.0 * (sa[1] / sb[1]), sa[2] / sb[2]];
    let mut v = 0.0;
    for j in 0..3 {
        v += if sb[j] <= 0.0 { 0.0 } else { t[j] };
    }
    100.0 * (v / 7.0)
}

impl Kernel for Ultosc {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        if self.n == 0 {
            self.prev_c = b.c;
            self.n = 1;
            return None;
        }
        let pc = self.prev_c;
        self.prev_c = b.c;
        let (cmtl, tr) = ultosc_terms(b.h, b.l, b.c, pc);
        let m = self.n; // this bar's index (>= 1)
        self.n += 1;
        let longest = self.p[2];
        // Bar m enters window j once m > longest - p_j (TA-Lib starts each
        // running total p_j - 1 bars before the first output at `longest`).
        for j in 0..3 {
            if m + self.p[j] > longest {
                self.sa[j] += cmtl;
                self.sb[j] += tr;
            }
        }
        self.a.push(cmtl);
        self.bterm.push(tr);
        self.null_run = if (cmtl == 0.0) & (tr == 0.0) {
            (self.null_run + 1).min(longest)
        } else {
            0
        };
        ultosc_empty(&mut self.sa, &mut self.sb, self.p, self.null_run);
        if m < longest {
            return None;
        }
        let out = ultosc_value(self.sa, self.sb);
        // Remove the oldest bar of each window.
        for j in 0..3 {
            let age = self.p[j] - 1;
            self.sa[j] -= self.a.back(age);
            self.sb[j] -= self.bterm.back(age);
        }
        Some(o1(out))
    }
}

/// Sets to exactly 0 the sums of each window (periods `p`) that holds only
/// bars without range or move (`null_run` of them in a row end here).
#[inline(always)]
pub fn ultosc_empty(sa: &mut [f64; 3], sb: &mut [f64; 3], p: [usize; 3], null_run: usize) {
    for j in 0..3 {
        if null_run >= p[j] {
            sa[j] = 0.0;
            sb[j] = 0.0;
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trix {
    pub e1: Ema,
    pub e2: Ema,
    pub e3: Ema,
    pub prev: Option<f64>,
}

impl Kernel for Trix {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let a = self.e1.push(b.c)?;
        let bb = self.e2.push(a)?;
        let c = self.e3.push(bb)?;
        let prev = self.prev.replace(c)?;
        Some(o1(if prev != 0.0 {
            ((c / prev) - 1.0) * 100.0
        } else {
            0.0
        }))
    }
}

/// BOP of one bar: (close - open) / (high - low), 0 where high - low is 0
/// or below (an exact test, as TA-Lib 0.8: a range of one ulp is a range at
/// any price level; NaN passes). The quotient is computed either way, then
/// selected (the whole-array loop's division vectorises so).
#[inline(always)]
pub fn bop_value(o: f64, h: f64, l: f64, c: f64) -> f64 {
    let t = h - l;
    let q = (c - o) / t;
    if t <= 0.0 {
        0.0
    } else {
        q
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bop;

impl Kernel for Bop {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        Some(o1(bop_value(b.o, b.h, b.l, b.c)))
    }
}
