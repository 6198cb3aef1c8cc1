//! Overlap studies over whole arrays: the moving averages, MAMA, BBANDS
//! with an SMA middle band, SAR, MIDPOINT/MIDPRICE.

use super::common::{chk, nan_fill};
use super::extremes::rolling2;
use super::kama::kama;
use super::stats::{may_be_flat, run_before};
use crate::ta::cols::Cols;
use crate::ta::kernels::{Bbands, Mid};
use crate::ta::ma::{big, small, Ma};

/// The moving averages of the close that have a whole-array loop; false
/// for the others.
#[inline(always)]
pub(super) fn ma(ma: &Ma, x: &[f64], bad: &mut bool, out: &mut [f64]) -> bool {
    match ma {
        Ma::Sma(s) => {
            sma(x, s.period(), bad, out);
            true
        }
        Ma::Wma(w) => {
            wma(x, w.p, bad, out);
            true
        }
        Ma::Ema(e) => {
            let mut e = e.clone();
            emas(x, &mut [&mut e], bad, out, |v| v[0]);
            true
        }
        Ma::Dema(d) => {
            let (mut a, mut b) = (d.e1.clone(), d.e2.clone());
            emas(x, &mut [&mut a, &mut b], bad, out, |v| (2.0 * v[0]) - v[1]);
            true
        }
        Ma::Tema(t) => {
            let (mut a, mut b, mut c) = (t.e1.clone(), t.e2.clone(), t.e3.clone());
            emas(x, &mut [&mut a, &mut b, &mut c], bad, out, |v| {
                let mut o = v[2];
                o += (3.0 * v[0]) - (3.0 * v[1]);
                o
            });
            true
        }
        Ma::T3(t3) => {
            let mut t3 = t3.clone();
            t3.run_array(x, out, bad);
            true
        }
        Ma::Kama(km) => {
            kama(x, km.p, bad, out);
            true
        }
        Ma::Trima(t) => {
            let (n1, n2) = t.periods();
            trima(x, n1, n2, bad, out);
            true
        }
        _ => false,
    }
}

/// BBANDS with an SMA middle band started on the first bar; false for the
/// others.
#[inline(always)]
pub(super) fn bbands(bb: &Bbands, x: &[f64], bad: &mut bool, rows: &mut [&mut [f64]]) -> bool {
    match &bb.ma {
        Ma::Sma(m) if bb.var.skip == 0 => {
            bbands_sma(x, m.period(), bb.up, bb.dn, bad, rows);
            true
        }
        _ => false,
    }
}

/// MIDPOINT (of the close) or MIDPRICE (of high and low).
#[inline(always)]
pub(super) fn mid(m: &Mid, cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let (hi, lo) = if m.price {
        (cols.h, cols.l)
    } else {
        (cols.c, cols.c)
    };
    nan_fill(out, m.p - 1);
    rolling2(hi, lo, m.p, bad, |i: usize, a: f64, b: f64| {
        out[i] = (a + b) / 2.0
    });
}

#[inline(always)]
pub(super) fn sma(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
    let n = x.len();
    nan_fill(out, p - 1);
    if n < p {
        return;
    }
    let pf = p as f64;
    let mut sum = 0.0;
    for &v in &x[..p] {
        sum += chk(bad, v);
    }
    out[p - 1] = sum * (1.0 / pf);
    for i in p..n {
        sum += chk(bad, x[i]) - x[i - p];
        out[i] = sum * (1.0 / pf);
    }
}

/// SMA of an SMA in one pass; the same sums, in the same order, as two
/// chained running SMAs.
#[inline(always)]
fn trima(x: &[f64], n1: usize, n2: usize, bad: &mut bool, out: &mut [f64]) {
    let n = x.len();
    let lb = n1 + n2 - 2;
    nan_fill(out, lb);
    if n <= lb {
        return;
    }
    let (p1, p2) = (n1 as f64, n2 as f64);
    let mut ring = vec![0.0; n2];
    let mut pos = 0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in &x[..n1 - 1] {
        s1 += chk(bad, v);
    }
    for i in n1 - 1..n {
        // first SMA (as Sma::add: p values one by one, then x - leaving)
        if i < n1 {
            s1 += chk(bad, x[i]);
        } else {
            s1 += chk(bad, x[i]) - x[i - n1];
        }
        let a = s1 * (1.0 / p1);
        // second SMA over the first one's outputs
        let k = i + 1 - n1; // index of `a` among the first SMA's outputs
        if k < n2 {
            s2 += a;
        } else {
            s2 += a - ring[pos];
        }
        ring[pos] = a;
        pos += 1;
        if pos == n2 {
            pos = 0;
        }
        if k + 1 < n2 {
            continue;
        }
        out[i] = s2 * (1.0 / p2);
    }
}

#[inline(always)]
fn wma(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
    let n = x.len();
    nan_fill(out, p - 1);
    if n < p {
        return;
    }
    let divider = ((p * (p + 1)) >> 1) as f64;
    let pf = p as f64;
    let (mut sub, mut sum, mut trailing) = (0.0, 0.0, 0.0);
    for (i, &v) in x[..p - 1].iter().enumerate() {
        let v = chk(bad, v);
        sub += v;
        sum += v * ((i + 1) as f64);
    }
    for i in p - 1..n {
        let v = chk(bad, x[i]);
        sub += v;
        sub -= trailing;
        sum += v * pf;
        trailing = x[i + 1 - p];
        out[i] = sum * (1.0 / divider);
        sum -= sub;
    }
}

/// A chain of EMAs (each fed the previous one's output from its first
/// value), combined by `combine` once all are warm: EMA, DEMA, TEMA. The
/// state machines warm up; the steady state runs on locals with the same
/// arithmetic.
#[inline(always)]
pub(super) fn emas<const K: usize>(
    x: &[f64],
    chain: &mut [&mut crate::ta::ma::Ema; K],
    bad: &mut bool,
    out: &mut [f64],
    mut combine: impl FnMut([f64; K]) -> f64,
) {
    let n = x.len();
    let mut nan = false;
    let mut i = 0;
    // Warm-up through the state machines.
    while i < n && !chain.iter().all(|e| e.ready()) {
        let xv = x[i];
        nan |= xv.is_nan();
        let mut v = Some(xv);
        let mut vals = [0.0; K];
        for (j, e) in chain.iter_mut().enumerate() {
            v = v.and_then(|u| e.push(u));
            if let Some(u) = v {
                vals[j] = u;
            }
        }
        out[i] = if v.is_some() { combine(vals) } else { f64::NAN };
        i += 1;
    }
    if i < n {
        let mut prev = [0.0; K];
        let mut k = [0.0; K];
        for j in 0..K {
            let (p, kk) = chain[j].state();
            prev[j] = p;
            k[j] = kk;
        }
        for t in i..n {
            let xv = x[t];
            nan |= xv.is_nan();
            let mut u = xv;
            for j in 0..K {
                prev[j] = crate::ta::ma::Ema::step(prev[j], u, k[j]);
                u = prev[j];
            }
            out[t] = combine(prev);
        }
        for j in 0..K {
            chain[j].set_prev(prev[j]);
        }
    }
    *bad |= nan;
}

/// MAMA over a whole array: the state machine itself on the stack (the
/// indicator's copy is boxed, reached through memory at every bar; a local
/// one keeps its carried values in registers), so the same values bit for
/// bit.
#[inline(always)]
pub(super) fn mama(
    x: &[f64],
    fast: f64,
    slow: f64,
    bad: &mut bool,
    om: &mut [f64],
    of: &mut [f64],
) {
    let mut m = crate::ta::ma::Mama::new(fast, slow, 0);
    let mut nan = false;
    for ((&v, a), f) in x.iter().zip(om.iter_mut()).zip(of.iter_mut()) {
        nan |= v.is_nan();
        (*a, *f) = m.push2(v).unwrap_or((f64::NAN, f64::NAN));
    }
    *bad |= nan;
}

/// BBANDS with an SMA middle band: the SMA's running sum and the anchored
/// variance of `var`, fused.
#[inline(always)]
fn bbands_sma(x: &[f64], p: usize, up: f64, dn: f64, bad: &mut bool, rows: &mut [&mut [f64]]) {
    let [ru, rm, rl] = rows else { return };
    let n = x.len();
    nan_fill(ru, p - 1);
    nan_fill(rm, p - 1);
    nan_fill(rl, p - 1);
    if n == 0 {
        return;
    }
    use crate::ta::ma::{flat_run, next_run};
    let pf = p as f64;
    let mut sum = 0.0;
    let mut k = x[0];
    let (mut s1, mut s2) = (0.0, 0.0);
    let mut since = 0usize;
    let need = flat_run(p);
    let mut run = 0usize;
    // One bar of both state machines; `$track`: a window of one value may
    // end in the block (else the run count and its test are left out)
    macro_rules! step {
        ($i:expr, $track:expr) => {{
            let i = $i;
            let xi = chk(bad, x[i]);
            // variance state machine
            if $track && i > 0 {
                run = next_run(run, xi, x[i - 1], need);
            }
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
            if $track && run >= need {
                // a window of one value (see `Var`)
                k = xi;
                s1 = 0.0;
                s2 = 0.0;
            }
            let v = xi - k;
            since += 1;
            // SMA state machine (Sma::add)
            if i < p {
                sum += xi;
            } else {
                sum += xi - x[i - p];
            }
            if i + 1 < p {
                s1 += v;
                s2 += v * v;
                continue;
            }
            let mid = sum * (1.0 / pf);
            let m1 = (s1 + v) * (1.0 / pf);
            let m2 = (s2 + v * v) * (1.0 / pf);
            let o = x[i + 1 - p] - k;
            s1 += v - o;
            s2 += v * v - o * o;
            let var = m2 - m1 * m1;
            let sd = if var > 0.0 { var.sqrt() } else { 0.0 };
            if up == dn {
                let t = sd * up;
                ru[i] = mid + t;
                rl[i] = mid - t;
            } else {
                ru[i] = mid + up * sd;
                rl[i] = mid - dn * sd;
            }
            rm[i] = mid;
        }};
    }
    // blocks of 64 bars, each checked first (`may_be_flat`; cold on
    // market data)
    let mut b = 0;
    while b < n {
        let end = (b + 64).min(n);
        if !may_be_flat(x, b, end, need) {
            for i in b..end {
                step!(i, false);
            }
        } else {
            run = run_before(x, b, need);
            for i in b..end {
                step!(i, true);
            }
        }
        b = end;
    }
}

/// Parabolic SAR over NaN-free data: the state machine (`kernels::Sar`)
/// with plain locals; its clamps as maxsd/minsd (the operands ordered so that
/// a tie keeps the same value, as the state machine's `if`s do) and the
/// acceleration step as selects, leaving one branch per bar: the reversal.
pub(super) fn sar(c: &Cols<'_>, acc: f64, max: f64, bad: &mut bool, out: &mut [f64]) {
    let n = c.n;
    if n == 0 {
        return;
    }
    out[0] = f64::NAN;
    let (hh, ll) = (&c.h[..n], &c.l[..n]);
    let mut nan = hh[0].is_nan() | ll[0].is_nan();
    if n == 1 {
        *bad |= nan;
        return;
    }
    // direction from the one-bar -DM between the first two bars
    let diff_p = hh[1] - hh[0];
    let diff_m = ll[0] - ll[1];
    let minus_dm = if diff_m > 0.0 && diff_p < diff_m {
        diff_m
    } else {
        0.0
    };
    let mut long = minus_dm <= 0.0;
    let (mut ep, mut s) = if long { (hh[1], ll[0]) } else { (ll[1], hh[0]) };
    let mut af = acc;
    let (mut prev_low, mut prev_high) = (ll[1], hh[1]);
    for i in 1..n {
        let (new_high, new_low) = (hh[i], ll[i]);
        nan |= new_high.is_nan() | new_low.is_nan();
        let o;
        if long {
            if new_low <= s {
                long = false;
                s = big(new_high, big(prev_high, ep));
                o = s;
                af = acc;
                ep = new_low;
                s += af * (ep - s);
                s = big(new_high, big(prev_high, s));
            } else {
                o = s;
                let up = new_high > ep;
                ep = big(new_high, ep);
                let raised = small(max, af + acc);
                af = if up { raised } else { af };
                s += af * (ep - s);
                s = small(new_low, small(prev_low, s));
            }
        } else if new_high >= s {
            long = true;
            s = small(new_low, small(prev_low, ep));
            o = s;
            af = acc;
            ep = new_high;
            s += af * (ep - s);
            s = small(new_low, small(prev_low, s));
        } else {
            o = s;
            let down = new_low < ep;
            ep = small(new_low, ep);
            let raised = small(max, af + acc);
            af = if down { raised } else { af };
            s += af * (ep - s);
            s = big(new_high, big(prev_high, s));
        }
        out[i] = o;
        prev_low = new_low;
        prev_high = new_high;
    }
    *bad |= nan;
}
