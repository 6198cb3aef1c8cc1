//! Statistics, math operators and price transforms over whole arrays:
//! SUM, VAR/STDDEV, LINEARREG/LINEARREG_SLOPE, MAX/MIN and TYPPRICE.

use super::common::{chk, nan_fill, STREAM_MIN};
use super::extremes::rolling;
use crate::ta::cols::{has_fma, Cols};
use crate::ta::kernels::VarKernel;

/// VAR, or STDDEV times its deviation multiplier.
#[inline(always)]
pub(super) fn variance(v: &VarKernel, x: &[f64], bad: &mut bool, out: &mut [f64]) {
    if v.stddev {
        var::<true>(x, v.var.p, v.dev, bad, out);
    } else {
        var::<false>(x, v.var.p, v.dev, bad, out);
    }
}

/// MAX or MIN over windows of `p` values.
#[inline(always)]
pub(super) fn max_min(x: &[f64], p: usize, max: bool, bad: &mut bool, out: &mut [f64]) {
    nan_fill(out, p - 1);
    rolling_extreme(x, p, max, bad, out);
}

/// The sliding extreme, left to the compiler's inlining (as its own
/// function, outside `run_fma`'s CPU features, it measured a fifth faster
/// than inlined there).
fn rolling_extreme(x: &[f64], p: usize, max: bool, bad: &mut bool, out: &mut [f64]) {
    if max {
        rolling::<true>(x, p, bad, |i, v| out[i] = v)
    } else {
        rolling::<false>(x, p, bad, |i, v| out[i] = v)
    }
}

/// TYPPRICE in blocks that stay in L1: the arithmetic vectorises (no flag
/// in the loop), then the block's outputs are checked for NaN, which they
/// hold exactly when an input was NaN (or inf - inf: either way the state
/// machine redoes it).
#[inline(always)]
pub(super) fn typprice(cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let n = cols.n;
    let out = &mut out[..n];
    let (h, l, c) = (&cols.h[..n], &cols.l[..n], &cols.c[..n]);
    #[cfg(target_arch = "x86_64")]
    if n >= STREAM_MIN && has_fma() {
        // SAFETY: the CPU supports AVX2 (checked above).
        *bad |= unsafe { typprice_stream(h, l, c, out) };
        return;
    }
    let mut nan = false;
    for (b, o) in out.chunks_mut(512).enumerate() {
        let at = b * 512;
        let (h, l, c) = (
            &h[at..at + o.len()],
            &l[at..at + o.len()],
            &c[at..at + o.len()],
        );
        for j in 0..o.len() {
            o[j] = (h[j] + l[j] + c[j]) / 3.0;
        }
        nan |= o.iter().fold(false, |a, v| a | v.is_nan());
    }
    *bad |= nan;
}

#[inline(always)]
pub(super) fn sum(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
    let n = x.len();
    nan_fill(out, p - 1);
    if n < p {
        return;
    }
    let mut total = 0.0;
    for &v in &x[..p] {
        total += chk(bad, v);
    }
    out[p - 1] = total;
    for i in p..n {
        total += chk(bad, x[i]) - x[i - p];
        out[i] = total;
    }
}

/// Whether a window of one value may end at a bar of `i..end`: such a
/// window holds `need` (`flat_run`) values in a row each equal to the one
/// before, and among any `need` consecutive bars one is a multiple of
/// `need`, so only those bars (from `need - 1` before `i`) are compared
/// with their predecessors: a handful of compares per stretch, not one per
/// bar.
#[inline(always)]
pub(super) fn may_be_flat(x: &[f64], i: usize, end: usize, need: usize) -> bool {
    let mut m = (i + 1).saturating_sub(need).max(1).next_multiple_of(need);
    let mut eq = false;
    while m < end {
        eq |= x[m] == x[m - 1];
        m += need;
    }
    eq
}

/// `Var::run` after bar `i - 1`: the values up to it equal to the one
/// before, in a row, at most `need`.
#[inline(always)]
pub(super) fn run_before(x: &[f64], i: usize, need: usize) -> usize {
    let mut run = 0;
    let mut m = i.saturating_sub(1);
    while m >= 1 && run < need && x[m] == x[m - 1] {
        run += 1;
        m -= 1;
    }
    run
}

#[inline(always)]
fn var<const SD: bool>(x: &[f64], p: usize, dev: f64, bad: &mut bool, out: &mut [f64]) {
    use crate::ta::ma::{flat_run, next_run, var_floor};
    let n = x.len();
    nan_fill(out, p - 1);
    if n == 0 {
        return;
    }
    let pf = p as f64;
    let mut k = x[0];
    let (mut s1, mut s2) = (0.0, 0.0);
    // values equal to the one before in a row make a window of one value
    let need = flat_run(p);
    // the warm-up bars
    let warm = (p - 1).min(n);
    for &xi in &x[..warm] {
        let v = chk(bad, xi) - k;
        s1 += v;
        s2 += v * v;
    }
    // then stretches without a check between the state machine's resyncs
    // (at bar p or later, once RESYNC bars went by since the last)
    let mut since = warm;
    let mut i = warm;
    while i < n {
        if i >= p && since >= crate::ta::ma::RESYNC {
            k = x[i - 1];
            s1 = 0.0;
            s2 = 0.0;
            for &w in &x[i + 1 - p..i] {
                let v = w - k;
                s1 += v;
                s2 += v * v;
            }
            since = 0;
        }
        let next = p
            .max(i + crate::ta::ma::RESYNC.saturating_sub(since))
            .max(i + 1);
        let end = next.min(n);
        // The stretch without the run count, noting whether a value
        // equalled the one before: their bits are the same but for the
        // sign (integer operations, off the floating-point units the loop
        // keeps busy; never missed, a false alarm for x, -x). A stretch
        // where a window of one value may end (`may_be_flat`) is then run
        // again from its start with the run count (cold on market data:
        // repeated values).
        let (k0, s10, s20) = (k, s1, s2);
        let mut bp = if i > 0 {
            x[i - 1].to_bits()
        } else {
            !x[0].to_bits()
        };
        let mut same = 0u64;
        let rows = x[i..end]
            .iter()
            .zip(&x[i + 1 - p..end + 1 - p])
            .zip(&mut out[i..end]);
        for ((&xj, &xo), out) in rows {
            let b = xj.to_bits();
            same |= (((b ^ bp) << 1) == 0) as u64;
            bp = b;
            let v = xj - k;
            let m1 = (s1 + v) * (1.0 / pf);
            let m2 = (s2 + v * v) * (1.0 / pf);
            let o = xo - k;
            s1 += v - o;
            s2 += v * v - o * o;
            let r = m2 - m1 * m1;
            // `Var`'s clamp at 0 (STDDEV's square root pass tests > 0)
            *out = if SD { r } else { var_floor(r) };
        }
        // A NaN or infinite value read here left a sum NaN or infinite to
        // the stretch's end (nothing resets them within): one check, not
        // one a bar (the state machine then redoes the array)
        *bad |= !(s1.is_finite() && s2.is_finite());
        if same != 0 && may_be_flat(x, i, end, need) {
            (k, s1, s2) = (k0, s10, s20);
            let mut run = run_before(x, i, need);
            for j in i..end {
                if j > 0 {
                    run = next_run(run, x[j], x[j - 1], need);
                }
                if run >= need {
                    // the window is one value: anchored on it, sums of 0
                    k = x[j];
                    s1 = 0.0;
                    s2 = 0.0;
                }
                let v = chk(bad, x[j]) - k;
                let m1 = (s1 + v) * (1.0 / pf);
                let m2 = (s2 + v * v) * (1.0 / pf);
                let o = x[j + 1 - p] - k;
                s1 += v - o;
                s2 += v * v - o * o;
                let r = m2 - m1 * m1;
                out[j] = if SD { r } else { var_floor(r) };
            }
        }
        since += end - i;
        i = end;
    }
    if SD && n >= p {
        // A separate pass vectorises the square roots (same operations).
        for o in out[p - 1..n].iter_mut() {
            let r = *o;
            *o = if r > 0.0 { r.sqrt() * dev } else { 0.0 };
        }
    }
}

#[inline(always)]
pub(super) fn linreg(x: &[f64], p: usize, slope: bool, bad: &mut bool, out: &mut [f64]) {
    let n = x.len();
    nan_fill(out, p - 1);
    if n < p {
        *bad |= x.iter().fold(false, |a, v| a | v.is_nan());
        return;
    }
    let mut nan = x[..p].iter().fold(false, |a, v| a | v.is_nan());
    let pf = p as f64;
    let sum_x = pf * (pf - 1.0) * 0.5;
    let pu = p as u128;
    let sum_x_sqr = ((pu * (pu - 1) * (2 * pu - 1)) / 6) as f64;
    let divisor = sum_x * sum_x - pf * sum_x_sqr;
    let exact = |t: usize| -> (f64, f64) {
        let (mut sy, mut sxy) = (0.0, 0.0);
        let mut i = p;
        while i != 0 {
            i -= 1;
            let v = x[t - i];
            sy += v;
            sxy += (i as f64) * v;
        }
        (sy, sxy)
    };
    let (mut sum_y, mut sum_xy) = exact(p - 1);
    let mut since = 0usize;
    // In chunks: the running sums bar by bar (LinReg's operations), then
    // the chunk's outputs in a vectorised pass (two divisions a bar, which
    // bounded the loop when done alongside the sums).
    const C: usize = 256;
    let (mut sy, mut sxy) = ([0.0f64; C], [0.0f64; C]);
    let mut t = p - 1;
    while t < n {
        let len = (n - t).min(C);
        let mut k = 0;
        if t == p - 1 {
            // bar p - 1: the window's exact sums
            (sy[0], sxy[0]) = (sum_y, sum_xy);
            k = 1;
        }
        // stretches up to the next resync (every 64 bars) with no check
        // inside
        while k < len {
            let stop = len.min(k + (64 - since));
            for j in k..stop {
                let b = t + j;
                let y = x[b];
                nan |= y.is_nan();
                let old = x[b - p];
                sum_xy += sum_y - pf * old;
                sum_y += y - old;
                (sy[j], sxy[j]) = (sum_y, sum_xy);
            }
            since += stop - k;
            if since >= 64 {
                (sum_y, sum_xy) = exact(t + stop - 1);
                (sy[stop - 1], sxy[stop - 1]) = (sum_y, sum_xy);
                since = 0;
            }
            k = stop;
        }
        let o = &mut out[t..t + len];
        for ((o, &sy), &sxy) in o.iter_mut().zip(&sy[..len]).zip(&sxy[..len]) {
            let m = (pf * sxy - sum_x * sy) / divisor;
            *o = if slope {
                m
            } else {
                let b = (sy - m * sum_x) / pf;
                b + m * (pf - 1.0)
            };
        }
        t += len;
    }
    *bad |= nan;
}

/// TYPPRICE with non-temporal stores, four bars at a time (the same
/// operations: `(h + l + c) / 3`); returns whether a result was NaN (an
/// input was NaN, or infinities cancelled: either way the state machine
/// redoes it).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn typprice_stream(h: &[f64], l: &[f64], c: &[f64], out: &mut [f64]) -> bool {
    use std::arch::x86_64::*;
    let n = out.len().min(h.len()).min(l.len()).min(c.len());
    let one = |i: usize| (h[i] + l[i] + c[i]) / 3.0;
    let mut nan = false;
    let mut i = 0;
    while i < n && (out.as_ptr() as usize + 8 * i) % 32 != 0 {
        out[i] = one(i);
        nan |= out[i].is_nan();
        i += 1;
    }
    let three = _mm256_set1_pd(3.0);
    let mut unordered = _mm256_setzero_pd();
    while i + 4 <= n {
        // SAFETY: i + 4 <= n, within every slice; out + i is 32-byte
        // aligned (the loop above, and i moves by 4 values = 32 bytes).
        let v = _mm256_div_pd(
            _mm256_add_pd(
                _mm256_add_pd(
                    _mm256_loadu_pd(h.as_ptr().add(i)),
                    _mm256_loadu_pd(l.as_ptr().add(i)),
                ),
                _mm256_loadu_pd(c.as_ptr().add(i)),
            ),
            three,
        );
        unordered = _mm256_or_pd(unordered, _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
        _mm256_stream_pd(out.as_mut_ptr().add(i), v);
        i += 4;
    }
    // the streamed stores ordered before anything that follows
    _mm_sfence();
    nan |= _mm256_movemask_pd(unordered) != 0;
    while i < n {
        out[i] = one(i);
        nan |= out[i].is_nan();
        i += 1;
    }
    nan
}
