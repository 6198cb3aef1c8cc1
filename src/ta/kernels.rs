//! Every indicator as an O(1)-per-bar state machine over OHLCV bars.
//!
//! The batch functions run these same machines over arrays, so a stream and
//! the batch output agree bit for bit at every bar, warm-up included.

use serde::{Deserialize, Serialize};

use super::ma::{is_zero, is_zero_scaled, Delayed, Ema, Extreme, Ma, Mama, Ring, Sma, Sum, Var};

pub const MAXOUT: usize = 4;
pub type Out = [f64; MAXOUT];

#[derive(Clone, Copy, Debug, Default)]
pub struct Bar {
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
}

/// Input bits.
pub const I_O: u8 = 1;
pub const I_H: u8 = 2;
pub const I_L: u8 = 4;
pub const I_C: u8 = 8;
pub const I_V: u8 = 16;

pub trait Kernel {
    /// Pushes one bar; returns the outputs once warmed up.
    fn next(&mut self, b: &Bar) -> Option<Out>;
}

impl<K: Kernel + ?Sized> Kernel for Box<K> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        (**self).next(b)
    }
}

#[inline(always)]
fn o1(v: f64) -> Out {
    [v, 0.0, 0.0, 0.0]
}

/// TA-Lib's true range: the largest of high-low, |high-prev close| and
/// |low-prev close| (branch-free; inputs are never NaN here).
#[inline(always)]
pub fn true_range(h: f64, l: f64, pc: f64) -> f64 {
    (h - l).max((h - pc).abs()).max((l - pc).abs())
}

// ---------------------------------------------------------------------------
// Overlap studies
// ---------------------------------------------------------------------------

/// A moving average of the close (SMA, EMA, ..., MA with any matype).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaK {
    pub ma: Ma,
}

/// A moving average of one series, as a concrete type (no per-bar dispatch).
pub trait Scalar {
    fn push(&mut self, x: f64) -> Option<f64>;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            #[inline(always)]
            fn push(&mut self, x: f64) -> Option<f64> {
                <$t>::push(self, x)
            }
        }
    )*};
}
scalar!(
    super::ma::Sma,
    super::ma::Ema,
    super::ma::Wma,
    super::ma::Dema,
    super::ma::Tema,
    super::ma::Trima,
    super::ma::Kama,
    super::ma::T3
);

impl Scalar for Mama {
    #[inline(always)]
    fn push(&mut self, x: f64) -> Option<f64> {
        self.push2(x).map(|v| v.0)
    }
}

/// Runs a concrete average over the close.
#[derive(Clone)]
pub struct ScalarK<S: Scalar>(pub S);

impl<S: Scalar> Kernel for ScalarK<S> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.0.push(b.c).map(o1)
    }
}

impl Kernel for MaK {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.ma.push(b.c).map(o1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MamaK {
    pub m: Box<Mama>,
}

impl Kernel for MamaK {
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
    pub var: Delayed2,
    pub up: f64,
    pub dn: f64,
}

/// A variance that skips its first `skip` inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delayed2 {
    pub skip: usize,
    pub var: Var,
}

impl Delayed2 {
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
fn bands(mid: f64, var: f64, up: f64, dn: f64) -> Out {
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

// ---------------------------------------------------------------------------
// Momentum
// ---------------------------------------------------------------------------

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
pub struct RsiK {
    pub r: Rsi,
}

impl Kernel for RsiK {
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

/// MACD with its three EMAs as concrete types (the batch path).
#[derive(Clone)]
pub struct MacdEma {
    pub skip: usize,
    pub fast: Ema,
    pub slow: Ema,
    pub sig: Ema,
}

impl Kernel for MacdEma {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let f = if self.skip > 0 {
            self.skip -= 1;
            None
        } else {
            self.fast.push(b.c)
        };
        let s = self.slow.push(b.c);
        let (f, s) = (f?, s?);
        let m = f - s;
        let sig = self.sig.push(m)?;
        Some([m, sig, m - sig, 0.0])
    }
}

/// APO/PPO with concrete averages (the batch path).
#[derive(Clone)]
pub struct PoG<A: Scalar> {
    pub fast: A,
    pub slow: A,
    pub ppo: bool,
}

impl<A: Scalar> Kernel for PoG<A> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let f = self.fast.push(b.c);
        let s = self.slow.push(b.c);
        let (f, s) = (f?, s?);
        if self.ppo {
            Some(o1(if !is_zero(s) {
                ((f - s) / s) * 100.0
            } else {
                0.0
            }))
        } else {
            Some(o1(f - s))
        }
    }
}

/// STOCH / STOCHF with concrete averages (the batch path).
#[derive(Clone)]
pub struct StochG<A: Scalar, B: Scalar> {
    pub k: FastK,
    pub ma1: A,
    pub ma2: Option<B>,
}

impl<A: Scalar, B: Scalar> Kernel for StochG<A, B> {
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

/// BBANDS with a concrete middle average (the batch path).
#[derive(Clone)]
pub struct BbandsG<A: Scalar> {
    pub ma: A,
    pub var: Delayed2,
    pub up: f64,
    pub dn: f64,
}

impl<A: Scalar> Kernel for BbandsG<A> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let x = b.c;
        let v = self.var.push(x);
        let mid = self.ma.push(x)?;
        let v = v?;
        Some(bands(mid, v, self.up, self.dn))
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

/// DX from the smoothed +DM, -DM and true range, or None where TA-Lib has
/// none (DX then repeats its last value, ADX skips the bar): a true range
/// of exactly 0 (a sum of non-negative ranges has no rounding residue, and
/// after a move it only decays, so the ratios hold through a flat stretch at
/// any price level), or +DI + -DI inside TA-Lib's absolute 1e-14 band (it
/// is in percent, whatever the prices' scale).
#[inline(always)]
pub fn dx_value(pdm: f64, mdm: f64, tr: f64) -> Option<f64> {
    if tr == 0.0 {
        return None;
    }
    let minus = 100.0 * (mdm / tr);
    let plus = 100.0 * (pdm / tr);
    let s = minus + plus;
    if is_zero(s) {
        return None;
    }
    Some(100.0 * ((minus - plus).abs() / s))
}

/// +DI or -DI from the smoothed movement and true range: 0 where the true
/// range is exactly 0 (see `dx_value`).
#[inline(always)]
pub fn di_value(dm: f64, tr: f64) -> f64 {
    if tr != 0.0 {
        100.0 * (dm / tr)
    } else {
        0.0
    }
}

/// The directional movement family: PLUS_DM, MINUS_DM, PLUS_DI, MINUS_DI,
/// DX, ADX, ADXR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dmi {
    pub p: usize,
    pub pf: f64,
    /// 0 +DM, 1 -DM, 2 +DI, 3 -DI, 4 DX, 5 ADX, 6 ADXR.
    pub mode: u8,
    pub n: usize,
    pub prev_h: f64,
    pub prev_l: f64,
    pub prev_c: f64,
    pub pdm: f64,
    pub mdm: f64,
    pub tr: f64,
    pub last_dx: f64,
    pub sum_dx: f64,
    pub adx: f64,
    pub adx_hist: Ring,
}

impl Dmi {
    pub fn new(p: usize, mode: u8) -> Self {
        Dmi {
            p,
            pf: p as f64,
            mode,
            n: 0,
            prev_h: 0.0,
            prev_l: 0.0,
            prev_c: 0.0,
            pdm: 0.0,
            mdm: 0.0,
            tr: 0.0,
            last_dx: 0.0,
            sum_dx: 0.0,
            adx: 0.0,
            adx_hist: Ring::new(p.max(2) - 1),
        }
    }

    #[inline(always)]
    fn dx_value(&self) -> Option<f64> {
        dx_value(self.pdm, self.mdm, self.tr)
    }

    /// `m`: index of this bar (the first bar is 0).
    #[inline(always)]
    fn adx_step(&mut self, m: usize) -> Option<f64> {
        let p = self.p;
        if m < 2 * p {
            // bars p ..= 2p-1 accumulate the first DX values
            if let Some(dx) = self.dx_value() {
                self.sum_dx += dx;
            }
            if m < 2 * p - 1 {
                return None;
            }
            self.adx = self.sum_dx / self.pf;
            return Some(self.adx);
        }
        if let Some(dx) = self.dx_value() {
            self.adx = self
                .adx
                .mul_add((self.pf - 1.0) / self.pf, dx * (1.0 / self.pf));
        }
        Some(self.adx)
    }
}

impl Kernel for Dmi {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (h, l, c) = (b.h, b.l, b.c);
        if self.n == 0 {
            self.prev_h = h;
            self.prev_l = l;
            self.prev_c = c;
            self.n = 1;
            return None;
        }
        let diff_p = h - self.prev_h;
        self.prev_h = h;
        let diff_m = self.prev_l - l;
        self.prev_l = l;
        let p = self.p;
        let dm_only = self.mode <= 1;
        // Period 1 for DM/DI: the one-bar values, no smoothing.
        if p == 1 && self.mode <= 3 {
            self.n += 1;
            let out = match self.mode {
                0 => {
                    if diff_p > 0.0 && diff_p > diff_m {
                        diff_p
                    } else {
                        0.0
                    }
                }
                1 => {
                    if diff_m > 0.0 && diff_p < diff_m {
                        diff_m
                    } else {
                        0.0
                    }
                }
                _ => {
                    let tr = true_range(h, l, self.prev_c);
                    self.prev_c = c;
                    let dm = if self.mode == 2 {
                        if diff_p > 0.0 && diff_p > diff_m {
                            diff_p
                        } else {
                            0.0
                        }
                    } else if diff_m > 0.0 && diff_p < diff_m {
                        diff_m
                    } else {
                        0.0
                    };
                    if dm > 0.0 && tr != 0.0 {
                        dm / tr
                    } else {
                        0.0
                    }
                }
            };
            return Some(o1(out));
        }
        let m = self.n; // index of this bar
        self.n += 1;
        if m < p {
            // initial sums over bars 1..p-1 (DM: then output at p-1)
            if diff_m > 0.0 && diff_p < diff_m {
                self.mdm += diff_m;
            } else if diff_p > 0.0 && diff_p > diff_m {
                self.pdm += diff_p;
            }
            if !dm_only {
                self.tr += true_range(h, l, self.prev_c);
                self.prev_c = c;
            }
            if dm_only && m == p - 1 {
                return Some(o1(if self.mode == 0 { self.pdm } else { self.mdm }));
            }
            return None;
        }
        let c1 = (self.pf - 1.0) / self.pf;
        let (mut dm_m, mut dm_p) = (0.0, 0.0);
        if diff_m > 0.0 && diff_p < diff_m {
            dm_m = diff_m;
        } else if diff_p > 0.0 && diff_p > diff_m {
            dm_p = diff_p;
        }
        self.mdm = self.mdm.mul_add(c1, dm_m);
        self.pdm = self.pdm.mul_add(c1, dm_p);
        if dm_only {
            return Some(o1(if self.mode == 0 { self.pdm } else { self.mdm }));
        }
        let tr = true_range(h, l, self.prev_c);
        self.tr = self.tr.mul_add(c1, tr);
        self.prev_c = c;
        match self.mode {
            2 | 3 => {
                let dm = if self.mode == 2 { self.pdm } else { self.mdm };
                Some(o1(di_value(dm, self.tr)))
            }
            4 => {
                let v = match self.dx_value() {
                    Some(v) => v,
                    None => {
                        if m == p {
                            0.0
                        } else {
                            self.last_dx
                        }
                    }
                };
                self.last_dx = v;
                Some(o1(v))
            }
            5 => self.adx_step(m).map(o1),
            _ => {
                let a = self.adx_step(m)?;
                // ADXR: mean of ADX now and p-1 bars ago.
                let full = self.adx_hist.is_full();
                let old = self.adx_hist.push(a);
                if !full {
                    return None;
                }
                Some(o1((a + old) / 2.0))
            }
        }
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

// ---------------------------------------------------------------------------
// Volatility and volume
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Statistics and price transforms
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VarK {
    pub var: Var,
    pub dev: f64,
    pub stddev: bool,
}

impl Kernel for VarK {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let v = self.var.push(b.c)?;
        if !self.stddev {
            return Some(o1(v));
        }
        Some(o1(if v > 0.0 { v.sqrt() * self.dev } else { 0.0 }))
    }
}

/// LINEARREG and LINEARREG_SLOPE with running sums of y and age·y, recomputed
/// exactly (TA-Lib's loop) every 64 bars.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinReg {
    pub p: usize,
    pub ring: Ring,
    pub n: usize,
    pub slope: bool,
    pub sum_y: f64,
    pub sum_xy: f64,
    pub since: usize,
}

impl LinReg {
    pub fn new(p: usize, slope: bool) -> Self {
        LinReg {
            p,
            ring: Ring::new(p),
            n: 0,
            slope,
            sum_y: 0.0,
            sum_xy: 0.0,
            since: 0,
        }
    }

    #[inline(always)]
    fn exact(&mut self) {
        let mut sum_xy = 0.0;
        let mut sum_y = 0.0;
        let mut i = self.p;
        while i != 0 {
            i -= 1;
            let v = self.ring.back(i);
            sum_y += v;
            sum_xy += (i as f64) * v;
        }
        self.sum_y = sum_y;
        self.sum_xy = sum_xy;
        self.since = 0;
    }
}

impl Kernel for LinReg {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let y = b.c;
        let pf = self.p as f64;
        if self.n < self.p {
            self.ring.push(y);
            self.n += 1;
            if self.n < self.p {
                return None;
            }
            self.exact();
        } else {
            // one addition on each sum's chain (the terms combined first)
            let old = self.ring.push(y);
            self.sum_xy += self.sum_y - pf * old;
            self.sum_y += y - old;
            self.since += 1;
            if self.since >= 64 {
                self.exact();
            }
        }
        let sum_x = pf * (pf - 1.0) * 0.5;
        let p = self.p as u128;
        let sum_x_sqr = ((p * (p - 1) * (2 * p - 1)) / 6) as f64;
        let divisor = sum_x * sum_x - pf * sum_x_sqr;
        let m = (pf * self.sum_xy - sum_x * self.sum_y) / divisor;
        if self.slope {
            return Some(o1(m));
        }
        let bb = (self.sum_y - m * sum_x) / pf;
        Some(o1(bb + m * (pf - 1.0)))
    }
}

/// MAX, MIN over a window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaxMin {
    pub e: Extreme,
    pub n: usize,
    pub p: usize,
}

impl MaxMin {
    pub fn is_max(&self) -> bool {
        self.e.is_max()
    }
}

impl Kernel for MaxMin {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (v, _) = self.e.push(b.c);
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        Some(o1(v))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SumK {
    pub s: Sum,
}

impl Kernel for SumK {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.s.push(b.c).map(o1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TypPrice;

impl Kernel for TypPrice {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        Some(o1((b.h + b.l + b.c) / 3.0))
    }
}

// ---------------------------------------------------------------------------
// Beyond TA-Lib
// ---------------------------------------------------------------------------

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

pub fn ema_stage(p: usize) -> Ema {
    Ema::new(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(x: f64) -> Bar {
        Bar {
            o: x,
            h: x,
            l: x,
            c: x,
            v: 1000.0,
        }
    }

    /// 200 bars of a walk on a 0.01 grid without a zero move, then `flat`
    /// bars at its last price.
    fn walk_then_flat(flat: usize) -> Vec<f64> {
        let mut x = 100.0f64;
        let mut out = Vec::new();
        for i in 0..200u64 {
            let up = (i.wrapping_mul(0x9e37_79b9) >> 7) % 2 == 0;
            x = ((x + if up { 0.01 } else { -0.01 }) * 100.0).round() / 100.0;
            out.push(x);
        }
        out.extend(std::iter::repeat_n(x, flat));
        out
    }

    fn run(k: &mut impl Kernel, xs: &[f64]) -> Vec<Option<Out>> {
        xs.iter().map(|&x| k.next(&bar(x))).collect()
    }

    #[test]
    fn cci_of_a_flat_window_is_zero() {
        for p in [2, 3, 14] {
            let mut k = Cci {
                p,
                buf: vec![0.0; p],
                idx: 0,
                n: 0,
            };
            let out = run(&mut k, &walk_then_flat(300));
            for o in &out[200 + p..] {
                assert_eq!(o.map(|o| o[0]), Some(0.0), "period {p}");
            }
        }
    }

    #[test]
    fn rsi_cmo_keep_their_ratio_through_a_flat_stretch() {
        let xs = walk_then_flat(2000);
        for cmo in [false, true] {
            let mut r = Rsi::new(14, cmo);
            let out: Vec<f64> = xs.iter().filter_map(|&x| r.push(x)).collect();
            let (before, last) = (out[199 - 14], out[out.len() - 1]);
            assert!(last != 0.0 && (last - before).abs() <= 1e-9 * before.abs());
        }
        let mut r = Rsi::new(14, false);
        assert!(std::iter::repeat_n(7.0, 50)
            .filter_map(|x| r.push(x))
            .all(|v| v == 0.0));
    }

    #[test]
    fn fastk_and_willr_dead_zone_and_clamp() {
        let (hh, ll) = (1e6 + 1e-8, 1e6); // 1e-14 of the level, within the zone
        assert_eq!(fastk_value(hh, ll, hh), 0.0);
        assert_eq!(willr_value(hh, ll, ll), 0.0);
        let hh = 1e6 + 1e-7;
        assert_eq!(fastk_value(hh, ll, hh), 100.0);
        assert_eq!(willr_value(hh, ll, ll), -100.0);
        assert_eq!(willr_value(101.0, 100.0, 102.0), 0.0); // close above the range
        assert_eq!(willr_value(101.0, 100.0, 99.0), -100.0);
        assert_eq!(fastk_value(0.0, 0.0, 0.0), 0.0);
    }

    #[test]
    fn variance_of_a_flat_window_is_exactly_zero() {
        for p in [2, 3, 5, 14] {
            for stddev in [false, true] {
                let mut v = VarK {
                    var: Var::new(p),
                    dev: 1.0,
                    stddev,
                };
                let out = run(&mut v, &walk_then_flat(200));
                for o in &out[200 + p..] {
                    assert_eq!(o.map(|o| o[0]), Some(0.0), "period {p}");
                }
            }
        }
    }

    #[test]
    fn dmi_ratios_hold_at_tiny_prices() {
        // a walk scaled to 1e-16: true ranges far below 1e-14
        let xs: Vec<f64> = walk_then_flat(0).iter().map(|x| x * 1e-18).collect();
        for mode in [2, 4, 5] {
            let mut d = Dmi::new(14, mode);
            let mut big = Dmi::new(14, mode);
            for (i, &x) in xs.iter().enumerate() {
                let b = Bar {
                    h: x * 1.001,
                    l: x * 0.999,
                    ..bar(x)
                };
                let s = 1e18;
                let b2 = Bar {
                    h: b.h * s,
                    l: b.l * s,
                    c: b.c * s,
                    ..b
                };
                let (a, e) = (d.next(&b), big.next(&b2));
                if let (Some(a), Some(e)) = (a, e) {
                    assert!(
                        (a[0] - e[0]).abs() <= 1e-9 * e[0].abs().max(1.0),
                        "{mode} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn vwap_without_volume_keeps_the_last_value() {
        for p in [0, 3] {
            let mut k = Vwap {
                p,
                n: 0,
                pv: 0.0,
                vol: 0.0,
                ring_pv: Ring::new(p),
                ring_v: Ring::new(p),
                last: 0.0,
                null_run: 0,
            };
            let vols = [0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0];
            let out: Vec<Option<f64>> = vols
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    k.next(&Bar {
                        v,
                        ..bar(10.0 + i as f64)
                    })
                    .map(|o| o[0])
                })
                .collect();
            let shown: Vec<f64> = out.into_iter().flatten().collect();
            let want: &[f64] = if p == 0 {
                &[0.0, 0.0, 0.0, 13.0, 13.0, 13.0, 13.0, 13.0]
            } else {
                &[0.0, 13.0, 13.0, 13.0, 13.0, 13.0]
            };
            assert_eq!(shown, want, "period {p}");
        }
    }
}
