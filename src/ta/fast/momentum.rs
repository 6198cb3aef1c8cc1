//! Momentum indicators over whole arrays: MOM/ROC/ROCP, TRIX, the
//! stochastics, WILLR, AROON, ULTOSC, BOP and MFI.

use super::common::{nan_fill, sel_max, sel_min, true_range};
use super::extremes::{rolling2, rolling_args, HighLowSink, SCAN_BLOCK};
use super::overlap::emas;
use crate::ta::cols::Cols;
use crate::ta::kernels::{Aroon, Lag, Stoch, Trix};
use crate::ta::ma::{small, Ma};

/// TRIX: the 1-bar rate of change of the third EMA.
#[inline(always)]
pub(super) fn trix(t: &Trix, x: &[f64], bad: &mut bool, out: &mut [f64]) {
    let (mut a, mut b, mut c) = (t.e1.clone(), t.e2.clone(), t.e3.clone());
    let mut prev: Option<f64> = None;
    emas(x, &mut [&mut a, &mut b, &mut c], bad, out, |v| {
        let cur = v[2];
        let r = match prev {
            Some(p) if p != 0.0 => ((cur / p) - 1.0) * 100.0,
            Some(_) => 0.0,
            None => f64::NAN,
        };
        prev = Some(cur);
        r
    });
}

/// STOCH or STOCHF with SMA averages; false for other averages.
#[inline(always)]
pub(super) fn stoch(st: &Stoch, cols: &Cols<'_>, bad: &mut bool, rows: &mut [&mut [f64]]) -> bool {
    let (a, b) = match (&st.ma1, &st.ma2) {
        (Ma::Sma(a), Some(Ma::Sma(b))) => (a.period(), Some(b.period())),
        (Ma::Sma(a), None) => (a.period(), None),
        _ => return false,
    };
    stoch_sma(cols, st.k.p, a, b, bad, rows)
}

/// WILLR over windows of `p` bars.
#[inline(always)]
pub(super) fn willr(p: usize, cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let n = cols.n;
    nan_fill(out, p - 1);
    let c = cols.c;
    let cnan = c[..(p - 1).min(n)]
        .iter()
        .fold(false, |a, v| a | v.is_nan());
    let mut sink = WillrOut { c, out, cnan };
    rolling2(cols.h, cols.l, p, bad, &mut sink);
    *bad |= sink.cnan;
}

/// AROON (down and up rows) or AROONOSC (one row); false for a row count
/// that does not fit.
#[inline(always)]
pub(super) fn aroon(a: &Aroon, cols: &Cols<'_>, bad: &mut bool, rows: &mut [&mut [f64]]) -> bool {
    let p = a.p;
    let factor = 100.0 / p as f64;
    let pi = p as i64;
    if a.osc {
        let out = &mut *rows[0];
        nan_fill(out, p);
        rolling_args(cols.h, cols.l, p + 1, bad, |i, ah, al| {
            out[i] = factor * (al as i64 - ah as i64) as f64;
        });
    } else {
        let [down, up] = match rows {
            [a, b] => [a, b],
            _ => return false,
        };
        nan_fill(down, p);
        nan_fill(up, p);
        rolling_args(cols.h, cols.l, p + 1, bad, |i, ah, al| {
            down[i] = factor * (pi - al as i64) as f64;
            up[i] = factor * (pi - ah as i64) as f64;
        });
    }
    true
}

/// BOP. Slices of one length (no bounds checks) and the quotient computed
/// for every bar, then selected: the division vectorises with plain loads
/// (a conditional one became masked loads, slow on AMD); a NaN input is
/// looked for in the sum of the two differences (a bar without range hides
/// it from the result; infinities that cancel there also send the array to
/// the state machine, which is merely slower).
#[inline(always)]
pub(super) fn bop(cols: &Cols<'_>, bad: &mut bool, out: &mut [f64]) {
    let n = cols.n;
    let out = &mut out[..n];
    let (o, h, l, c) = (&cols.o[..n], &cols.h[..n], &cols.l[..n], &cols.c[..n]);
    let mut nan = false;
    for i in 0..n {
        nan |= ((h[i] - l[i]) + (c[i] - o[i])).is_nan();
        out[i] = crate::ta::kernels::bop_value(o[i], h[i], l[i], c[i]);
    }
    *bad |= nan;
}

#[inline(always)]
pub(super) fn lag(x: &[f64], l: &Lag, bad: &mut bool, out: &mut [f64]) {
    let n = x.len();
    let p = l.p;
    nan_fill(out, p);
    if n <= p {
        return;
    }
    let mut nan = x[..p].iter().fold(false, |a, v| a | v.is_nan());
    match l.mode {
        0 => {
            for ((o, &a), &b) in out[p..].iter_mut().zip(&x[p..]).zip(&x[..n - p]) {
                *o = a - b;
                nan |= a.is_nan();
            }
            *bad |= nan;
            return;
        }
        // the quotient computed for every bar and then selected: a
        // conditional one vectorised into masked loads (slow on AMD)
        1 => {
            for ((o, &a), &old) in out[p..].iter_mut().zip(&x[p..]).zip(&x[..n - p]) {
                let q = ((a / old) - 1.0) * 100.0;
                *o = if old != 0.0 { q } else { 0.0 };
            }
        }
        _ => {
            for ((o, &a), &old) in out[p..].iter_mut().zip(&x[p..]).zip(&x[..n - p]) {
                let q = (a - old) / old;
                *o = if old != 0.0 { q } else { 0.0 };
            }
        }
    }
    *bad |= nan | x[p..].iter().fold(false, |a, v| a | v.is_nan());
}

/// STOCH (slowk, slowd) or STOCHF (fastk, fastd) with SMA averages, in one
/// pass over the data.
#[inline(always)]
fn stoch_sma(
    c: &Cols<'_>,
    fk: usize,
    p1: usize,
    p2: Option<usize>,
    bad: &mut bool,
    rows: &mut [&mut [f64]],
) -> bool {
    let [r0, r1] = rows else { return false };
    let n = c.n;
    r0.fill(f64::NAN);
    r1.fill(f64::NAN);
    let close = c.c;
    let mut cnan = close[..(fk - 1).min(n)]
        .iter()
        .fold(false, |a, v| a | v.is_nan());
    // The state machine's own SMA (same sums as the stream).
    let mut m1 = crate::ta::ma::Sma::new(p1);
    let mut m2 = p2.map(crate::ta::ma::Sma::new);
    rolling2(c.h, c.l, fk, bad, |i: usize, hh: f64, ll: f64| {
        cnan |= close[i].is_nan();
        let k = crate::ta::kernels::fastk_value(hh, ll, close[i]);
        let Some(a) = m1.push(k) else { return };
        match &mut m2 {
            Some(m) => {
                if let Some(d) = m.push(a) {
                    r0[i] = a;
                    r1[i] = d;
                }
            }
            None => {
                r0[i] = k;
                r1[i] = a;
            }
        }
    });
    *bad |= cnan;
    true
}

/// WILLR's outputs from the windows' extremes and the closes, a block of
/// windows at a time in vector registers (the per-window arithmetic is
/// branch-free); `cnan`: whether a close read was NaN.
struct WillrOut<'a> {
    c: &'a [f64],
    out: &'a mut [f64],
    cnan: bool,
}

impl HighLowSink for &mut WillrOut<'_> {
    #[inline(always)]
    fn one(&mut self, i: usize, hh: f64, ll: f64) {
        let c = self.c[i];
        self.cnan |= c.is_nan();
        self.out[i] = crate::ta::kernels::willr_value(hh, ll, c);
    }

    #[inline(always)]
    fn block(&mut self, i: usize, hh: &[f64; SCAN_BLOCK], ll: &[f64; SCAN_BLOCK]) {
        let (c, out) = (&self.c[i..i + SCAN_BLOCK], &mut self.out[i..i + SCAN_BLOCK]);
        let mut nan = false;
        for j in 0..SCAN_BLOCK {
            nan |= c[j].is_nan();
            out[j] = crate::ta::kernels::willr_value(hh[j], ll[j], c[j]);
        }
        self.cnan |= nan;
    }
}

/// ULTOSC over sorted periods `p` (shortest first), as `Ultosc` computes it.
#[inline(always)]
pub(super) fn ultosc(c: &Cols<'_>, p: [usize; 3], bad: &mut bool, out: &mut [f64]) {
    use crate::ta::kernels::{ultosc_empty, ultosc_value};
    let n = c.n;
    let longest = p[2];
    nan_fill(out, longest);
    if n == 0 {
        return;
    }
    let (h, l, cl) = (c.h, c.l, c.c);
    let mut nan = cl[0].is_nan();
    let term = |m: usize| -> (f64, f64) {
        let pc = cl[m - 1];
        let true_low = small(l[m], pc);
        (cl[m] - true_low, true_range(h[m], l[m], pc))
    };
    let (mut sa, mut sb) = ([0.0f64; 3], [0.0f64; 3]);
    // Terms by bar: the `longest` bars before a chunk, then the chunk's (so
    // that leaving terms are read, not recomputed). The first `longest` are
    // bars 0 (none: 0) to longest - 1.
    const C: usize = 256;
    let w = longest;
    let mut ta = vec![0.0f64; w + C];
    let mut tb = vec![0.0f64; w + C];
    // bars without range or move in a row (as `Ultosc::null_run`)
    let mut null_run = 0usize;
    // warm-up: the terms of the first windows
    for m in 1..n.min(longest) {
        nan |= h[m].is_nan() | l[m].is_nan() | cl[m].is_nan();
        let (a, b) = term(m);
        ta[m] = a;
        tb[m] = b;
        for j in 0..3 {
            if m + p[j] > longest {
                sa[j] += a;
                sb[j] += b;
            }
        }
        null_run = if (a == 0.0) & (b == 0.0) {
            (null_run + 1).min(longest)
        } else {
            0
        };
        ultosc_empty(&mut sa, &mut sb, p, null_run);
    }
    // Then, a chunk at a time: (1) every bar's terms into a row that also
    // keeps the `longest` terms before the chunk (vectorises: selects, no
    // chain); (2) the running sums bar by bar, kept per bar, with the
    // leaving terms read from that row; (3) the output from the kept sums,
    // which vectorises its three divisions per bar. Same operations, same
    // order as the state machine: where a sum is zero its term adds +0.0
    // instead of nothing, which leaves the total as it is (it starts at +0.0
    // and so never holds -0.0).
    let mut ba = [[0.0f64; C]; 3];
    let mut bb = [[0.0f64; C]; 3];
    let mut m0 = longest;
    while m0 < n {
        let len = (n - m0).min(C);
        let null_chunk = {
            let (hh, ll, cc) = (&h[m0..m0 + len], &l[m0..m0 + len], &cl[m0 - 1..m0 + len]);
            let (xa, xb) = (&mut ta[w..w + len], &mut tb[w..w + len]);
            let mut bad_chunk = false;
            let mut null_chunk = false;
            for k in 0..len {
                let (hv, lv, pc, cv) = (hh[k], ll[k], cc[k], cc[k + 1]);
                bad_chunk |= hv.is_nan() | lv.is_nan() | cv.is_nan();
                let (a, b) = (
                    cv - sel_min(lv, pc),
                    sel_max(sel_max(hv - lv, (hv - pc).abs()), (lv - pc).abs()),
                );
                null_chunk |= (a == 0.0) & (b == 0.0);
                xa[k] = a;
                xb[k] = b;
            }
            nan |= bad_chunk;
            null_chunk
        };
        if !null_chunk {
            // no bar without range or move: every run ends, no window
            // empties (the hot path)
            null_run = 0;
            for k in 0..len {
                let (a, b) = (ta[w + k], tb[w + k]);
                for j in 0..3 {
                    sa[j] += a;
                    sb[j] += b;
                    ba[j][k] = sa[j];
                    bb[j][k] = sb[j];
                }
                for j in 0..3 {
                    // the term of bar m + 1 - p[j], age p[j] - 1
                    let at = w + k + 1 - p[j];
                    sa[j] -= ta[at];
                    sb[j] -= tb[at];
                }
            }
        } else {
            // the same with the state machine's run count (cold)
            for k in 0..len {
                let (a, b) = (ta[w + k], tb[w + k]);
                for j in 0..3 {
                    sa[j] += a;
                    sb[j] += b;
                }
                null_run = if (a == 0.0) & (b == 0.0) {
                    (null_run + 1).min(longest)
                } else {
                    0
                };
                ultosc_empty(&mut sa, &mut sb, p, null_run);
                for j in 0..3 {
                    ba[j][k] = sa[j];
                    bb[j][k] = sb[j];
                    let at = w + k + 1 - p[j];
                    sa[j] -= ta[at];
                    sb[j] -= tb[at];
                }
            }
        }
        let o = &mut out[m0..m0 + len];
        for k in 0..len {
            o[k] = ultosc_value(
                [ba[0][k], ba[1][k], ba[2][k]],
                [bb[0][k], bb[1][k], bb[2][k]],
            );
        }
        // keep the last `w` terms at the head for the next chunk
        ta.copy_within(len..len + w, 0);
        tb.copy_within(len..len + w, 0);
        m0 += len;
    }
    *bad |= nan;
}

/// MFI over NaN-free data: the state machine's operations in its order
/// (`kernels::money_flow`, `kernels::mfi_value`), with plain locals.
pub(super) fn mfi(c: &Cols<'_>, p: usize, bad: &mut bool, out: &mut [f64]) {
    use crate::ta::kernels::{mfi_value, money_flow};
    let n = c.n;
    nan_fill(out, p);
    if n == 0 {
        return;
    }
    let (hh, ll, cc, vv) = (&c.h[..n], &c.l[..n], &c.c[..n], &c.v[..n]);
    let mut nan = hh[0].is_nan() | ll[0].is_nan() | cc[0].is_nan() | vv[0].is_nan();
    let mut prev = (hh[0] + ll[0] + cc[0]) / 3.0;
    let (mut pr, mut nr) = (vec![0.0f64; p], vec![0.0f64; p]);
    let (mut ps, mut ns) = (0.0f64, 0.0f64);
    let mut null_run = 0usize;
    let mut slot = 0usize;
    for i in 1..n {
        let (h, l, cl, v) = (hh[i], ll[i], cc[i], vv[i]);
        nan |= h.is_nan() | l.is_nan() | cl.is_nan() | v.is_nan();
        let tp = (h + l + cl) / 3.0;
        let (pv, nv) = money_flow(tp, prev, v);
        prev = tp;
        if i > p {
            ps -= pr[slot];
            ns -= nr[slot];
        }
        ps += pv;
        ns += nv;
        pr[slot] = pv;
        nr[slot] = nv;
        null_run = if (pv == 0.0) & (nv == 0.0) {
            null_run + 1
        } else {
            0
        };
        if null_run >= p {
            null_run = p;
            ps = 0.0;
            ns = 0.0;
        }
        slot += 1;
        if slot == p {
            slot = 0;
        }
        if i >= p {
            out[i] = mfi_value(ps, ns);
        }
    }
    *bad |= nan;
}
