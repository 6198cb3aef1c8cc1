//! Volume indicators over whole arrays: OBV, AD and ADOSC.

use super::common::{chk, mask, nan_fill};
use crate::ta::cols::Cols;
use crate::ta::kernels::Adosc;

/// OBV.
#[inline(always)]
pub(super) fn obv(cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let n = cols.n;
    if n == 0 {
        return;
    }
    let (c, v) = (cols.c, cols.v);
    let mut obv = chk(bad, v[0]);
    let mut prev = chk(bad, c[0]);
    out[0] = obv;
    let neg_zero = (-0.0f64).to_bits();
    for i in 1..n {
        let (ci, vi) = (chk(bad, c[i]), chk(bad, v[i]));
        // branch-free (the direction is a coin flip on market data):
        // + v up, + (-v) down (a - b is exactly a + -b), + (-0.0) flat,
        // which leaves every value as it is, -0.0 included
        let up = mask(ci > prev);
        let down = mask(ci < prev);
        let step = (vi.to_bits() & up) | ((-vi).to_bits() & down) | (neg_zero & !(up | down));
        obv += f64::from_bits(step);
        prev = ci;
        out[i] = obv;
    }
}

/// AD, the running sum of the increments.
#[inline(always)]
pub(super) fn ad(cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let mut ad = crate::ta::kernels::AdSum::default();
    ad_chunks(cols, bad, |i, inc| out[i] = ad.push(inc));
}

/// ADOSC: `Adosc::step` with its state in locals. The first two bars by
/// the state machine, then the two-bar form with its constants hoisted
/// (the same values: 1 - k and its square are the same products every bar,
/// and k·ad[i-1] is the last bar's k·ad).
#[inline(always)]
pub(super) fn adosc(a: &Adosc, cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let n = cols.n;
    let lookback = a.lookback;
    nan_fill(out, lookback);
    let mut st = a.clone();
    // the first two bars (the state machine's own steps)
    let head = n.min(2);
    let mut first = [0.0f64; 2];
    ad_chunks(&cols.range(0, head), bad, |i, inc| first[i] = st.step(inc));
    for (i, &v) in first[..head].iter().enumerate() {
        if i >= lookback {
            out[i] = v;
        }
    }
    let (fk, sk) = (a.fk, a.sk);
    let (cf, cs) = (1.0 - fk, 1.0 - sk);
    let (cf2, cs2) = (cf * cf, cs * cs);
    let (mut ad2, mut ad1, mut inc1) = (st.ad.prev, st.ad.ad, st.ad.inc_prev);
    let (mut f1, mut f2, mut s1, mut s2) = (st.fast[0], st.fast[1], st.slow[0], st.slow[1]);
    let (mut kf1, mut ks1) = (fk * ad1, sk * ad1);
    if n > 2 {
        ad_chunks(&cols.range(2, n), bad, |j, inc| {
            let ad = ad2 + (inc1 + inc);
            let (kf, ks) = (fk * ad, sk * ad);
            let fast = cf2.mul_add(f2, cf.mul_add(kf1, kf));
            let slow = cs2.mul_add(s2, cs.mul_add(ks1, ks));
            (ad2, ad1, inc1, kf1, ks1) = (ad1, ad, inc, kf, ks);
            (f2, f1, s2, s1) = (f1, fast, s1, slow);
            if j + 2 >= lookback {
                out[j + 2] = fast - slow;
            }
        });
    }
}

/// Calls `f(i, increment)` with each bar's accumulation/distribution
/// increment, ((c - l) - (h - c)) / (h - l) * v, or 0 where h - l <= 0 (the
/// state machine then adds nothing; the AD line never holds -0.0, so adding
/// +0.0 leaves it as it is). The increments of 256 bars are computed first,
/// off the running sum's chain (the division vectorises).
#[inline(always)]
fn ad_chunks(c: &Cols<'_>, bad: &mut bool, mut f: impl FnMut(usize, f64)) {
    const C: usize = 256;
    let n = c.n;
    let (hh, ll, cc, vv) = (&c.h[..n], &c.l[..n], &c.c[..n], &c.v[..n]);
    let mut inc = [0.0f64; C];
    let mut nan = false;
    let mut start = 0;
    while start < n {
        let len = (n - start).min(C);
        for k in 0..len {
            let i = start + k;
            let (h, l, cl, v) = (hh[i], ll[i], cc[i], vv[i]);
            nan |= h.is_nan() | l.is_nan() | cl.is_nan() | v.is_nan();
            inc[k] = crate::ta::kernels::ad_inc(h, l, cl, v);
        }
        for k in 0..len {
            f(start + k, inc[k]);
        }
        start += len;
    }
    *bad |= nan;
}
