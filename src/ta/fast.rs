//! Specialised whole-array loops for fresh indicators over NaN-free data.
//!
//! Each loop performs exactly the floating-point operations of the
//! indicator's state machine, in the same order, so its output is bit for
//! bit the stream's; only the bookkeeping differs (plain locals and direct
//! array reads instead of ring buffers and per-bar warm-up checks).

#![allow(clippy::needless_range_loop)] // index arithmetic mirrors the state machines

use super::cols::{has_fma, Cols};
use super::kernels::{wilder_step, Lag};
use super::ma::Ma;
use super::registry::AnyK;

#[inline(always)]
fn nan_fill(out: &mut [f64], upto: usize) {
    let k = upto.min(out.len());
    out[..k].fill(f64::NAN);
}

use super::ma::{big, small};

/// Outputs at least this long go around the caches in the loops that
/// stream them (a million-bar result is 8 MB, past any cache it could stay
/// in, and an ordinary store first reads each line it writes).
#[cfg(target_arch = "x86_64")]
const STREAM_MIN: usize = 1 << 17;

/// TRANGE with non-temporal stores, four bars at a time (`pc`: the
/// previous closes; the same selects as the plain loop); returns whether
/// an input was NaN (or infinities cancelled in their sum).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn trange_stream(h: &[f64], l: &[f64], pc: &[f64], out: &mut [f64]) -> bool {
    use std::arch::x86_64::*;
    let n = out.len().min(h.len()).min(l.len()).min(pc.len());
    let one = |i: usize| {
        let (h, l, pc) = (h[i], l[i], pc[i]);
        (
            sel_max(sel_max(h - l, (h - pc).abs()), (l - pc).abs()),
            (h + l + pc).is_nan(),
        )
    };
    let mut nan = false;
    let mut i = 0;
    while i < n && (out.as_ptr() as usize + 8 * i) % 32 != 0 {
        let (v, bad) = one(i);
        (out[i], nan) = (v, nan | bad);
        i += 1;
    }
    let sign = _mm256_set1_pd(-0.0);
    let mut unordered = _mm256_setzero_pd();
    while i + 4 <= n {
        // SAFETY: i + 4 <= n, within every slice; out + i is 32-byte
        // aligned (the loop above, and i moves by 4 values = 32 bytes).
        let (hv, lv, cv) = (
            _mm256_loadu_pd(h.as_ptr().add(i)),
            _mm256_loadu_pd(l.as_ptr().add(i)),
            _mm256_loadu_pd(pc.as_ptr().add(i)),
        );
        let hc = _mm256_andnot_pd(sign, _mm256_sub_pd(hv, cv));
        let lc = _mm256_andnot_pd(sign, _mm256_sub_pd(lv, cv));
        // max_pd(a, b) is `a > b ? a : b`, sel_max's select
        let tr = _mm256_max_pd(_mm256_max_pd(_mm256_sub_pd(hv, lv), hc), lc);
        let probe = _mm256_add_pd(_mm256_add_pd(hv, lv), cv);
        unordered = _mm256_or_pd(unordered, _mm256_cmp_pd(probe, probe, _CMP_UNORD_Q));
        _mm256_stream_pd(out.as_mut_ptr().add(i), tr);
        i += 4;
    }
    // the streamed stores ordered before anything that follows
    _mm_sfence();
    nan |= _mm256_movemask_pd(unordered) != 0;
    while i < n {
        let (v, bad) = one(i);
        (out[i], nan) = (v, nan | bad);
        i += 1;
    }
    nan
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

#[inline(always)]
fn pick<const MAX: bool>(a: f64, b: f64) -> f64 {
    if MAX {
        big(a, b)
    } else {
        small(a, b)
    }
}

/// `kernels::true_range` with `big` (NaN-free data only).
#[inline(always)]
fn true_range(h: f64, l: f64, pc: f64) -> f64 {
    big(big(h - l, (h - pc).abs()), (l - pc).abs())
}

/// Calls `f(i, max_or_min)` for every window of `p` values ending at
/// `i >= p - 1` (van Herk / Gil-Werman: the suffix extremes of the previous
/// block and a running prefix extreme of the current one; O(1) per value,
/// branch-free, O(p) memory). The prefix of a block and its suffix (for the
/// next block) are two independent chains computed in the same loop.
#[inline(always)]
fn rolling<const MAX: bool>(x: &[f64], p: usize, bad: &mut bool, mut f: impl FnMut(usize, f64)) {
    let n = x.len();
    if n < p || p == 0 {
        *bad |= x.iter().fold(false, |a, v| a | v.is_nan());
        return;
    }
    if p <= SCAN1_MAX {
        scan1::<MAX>(x, p, bad, f);
        return;
    }
    // one slot more than a block: a sentinel that no value beats (the
    // window ending at a block's last value is that block's prefix alone),
    // so the loop below has no branch for it
    let edge = if MAX {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let mut prev_suf = vec![edge; p + 1];
    let mut cur_suf = vec![edge; p + 1];
    let mut nan = false;
    {
        let block = &x[..p];
        let (mut m, mut sx) = (block[0], block[p - 1]);
        for j in 0..p {
            m = pick::<MAX>(m, block[j]);
            let jj = p - 1 - j;
            sx = pick::<MAX>(block[jj], sx);
            prev_suf[jj] = sx;
            nan |= block[j].is_nan();
        }
        f(p - 1, m);
    }
    let mut start = p;
    while start < n {
        let end = (start + p).min(n);
        let block = &x[start..end];
        let mut m = block[0];
        if end - start == p {
            let mut sx = block[p - 1];
            for j in 0..p {
                m = pick::<MAX>(m, block[j]);
                let jj = p - 1 - j;
                sx = pick::<MAX>(block[jj], sx);
                cur_suf[jj] = sx;
                f(start + j, pick::<MAX>(prev_suf[j + 1], m));
            }
            // NaN check off the chains' loop: a vectorised pass over the block
            // while it is in L1
            nan |= block.iter().fold(false, |a, v| a | v.is_nan());
            std::mem::swap(&mut prev_suf, &mut cur_suf);
        } else {
            for (j, &v) in block.iter().enumerate() {
                m = pick::<MAX>(m, v);
                nan |= v.is_nan();
                f(start + j, pick::<MAX>(prev_suf[j + 1], m));
            }
        }
        start = end;
    }
    *bad |= nan;
}

/// Windows up to this long are scanned whole, eight windows at a time in
/// vector registers (`scan2`), instead of van Herk / Gil-Werman: 2p compares
/// per window, but no chain and no scratch rows; for two extremes that
/// measured faster up to about 24 values (2.6x at 6, 1.5x at 14, TA-Lib's
/// MIDPOINT, MIDPRICE and WILLR default).
const SCAN_MAX: usize = 22;

/// Plain selects (they vectorise to maxpd / minpd; NaN-free data only).
#[inline(always)]
fn sel_max(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn sel_min(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// Windows `scan2` computes at once.
const L2: usize = 8;

/// What `rolling2` calls with each window's highest `hi` and lowest `lo`:
/// `one` for window `i`, or `block` for the `L2` windows from `i` on (a
/// closure takes them one by one; an indicator whose per-window arithmetic
/// vectorises takes the block).
trait Windows2 {
    fn one(&mut self, i: usize, hh: f64, ll: f64);

    #[inline(always)]
    fn block(&mut self, i: usize, hh: &[f64; L2], ll: &[f64; L2]) {
        for j in 0..L2 {
            self.one(i + j, hh[j], ll[j]);
        }
    }
}

impl<F: FnMut(usize, f64, f64)> Windows2 for F {
    #[inline(always)]
    fn one(&mut self, i: usize, hh: f64, ll: f64) {
        self(i, hh, ll)
    }
}

/// `rolling2` for short windows (see SCAN_MAX): each window's extremes from
/// all its values. The same values come out (an extreme is one of the inputs;
/// only the sign of a zero tie could differ, which no comparison sees).
#[inline(always)]
fn scan2(hi: &[f64], lo: &[f64], p: usize, bad: &mut bool, mut f: impl Windows2) {
    const L: usize = L2;
    let n = hi.len().min(lo.len());
    let (hi, lo) = (&hi[..n], &lo[..n]);
    // every value is checked once: the first p - 1 here, then each as the
    // newest of its window
    let mut nan = hi[..p - 1]
        .iter()
        .chain(&lo[..p - 1])
        .fold(false, |a, v| a | v.is_nan());
    let mut i = p - 1;
    while i + L <= n {
        let b = i + 1 - p;
        let mut h: [f64; L] = [0.0; L];
        let mut l: [f64; L] = [0.0; L];
        h.copy_from_slice(&hi[b..b + L]);
        l.copy_from_slice(&lo[b..b + L]);
        for k in 1..p {
            let (vh, vl) = (&hi[b + k..b + k + L], &lo[b + k..b + k + L]);
            for j in 0..L {
                h[j] = sel_max(h[j], vh[j]);
                l[j] = sel_min(l[j], vl[j]);
            }
        }
        let (nh, nl) = (&hi[i..i + L], &lo[i..i + L]);
        let mut m = false;
        for j in 0..L {
            m |= nh[j].is_nan() | nl[j].is_nan();
        }
        nan |= m;
        f.block(i, &h, &l);
        i += L;
    }
    while i < n {
        let b = i + 1 - p;
        let (mut a, mut c) = (hi[b], lo[b]);
        for k in 1..p {
            a = sel_max(a, hi[b + k]);
            c = sel_min(c, lo[b + k]);
        }
        nan |= hi[i].is_nan() | lo[i].is_nan();
        f.one(i, a, c);
        i += 1;
    }
    *bad |= nan;
}

/// One extreme's windows up to this long are scanned whole (see SCAN_MAX;
/// van Herk / Gil-Werman costs less per window for one extreme than for
/// two, and measured as fast from about 10 values on: 1.9x slower at 3).
const SCAN1_MAX: usize = 8;

/// `rolling` for short windows (see SCAN1_MAX and scan2).
#[inline(always)]
fn scan1<const MAX: bool>(x: &[f64], p: usize, bad: &mut bool, mut f: impl FnMut(usize, f64)) {
    const L: usize = 8;
    let n = x.len();
    let sel = |a: f64, b: f64| if MAX { sel_max(a, b) } else { sel_min(a, b) };
    let mut nan = x[..p - 1].iter().fold(false, |a, v| a | v.is_nan());
    let mut i = p - 1;
    while i + L <= n {
        let b = i + 1 - p;
        let mut h: [f64; L] = [0.0; L];
        h.copy_from_slice(&x[b..b + L]);
        for k in 1..p {
            let v = &x[b + k..b + k + L];
            for j in 0..L {
                h[j] = sel(h[j], v[j]);
            }
        }
        let nv = &x[i..i + L];
        let mut m = false;
        for j in 0..L {
            m |= nv[j].is_nan();
        }
        nan |= m;
        for j in 0..L {
            f(i + j, h[j]);
        }
        i += L;
    }
    while i < n {
        let b = i + 1 - p;
        let mut a = x[b];
        for k in 1..p {
            a = sel(a, x[b + k]);
        }
        nan |= x[i].is_nan();
        f(i, a);
        i += 1;
    }
    *bad |= nan;
}

/// Two sliding extremes at once (highest of `hi`, lowest of `lo`).
#[inline(always)]
fn rolling2(hi: &[f64], lo: &[f64], p: usize, bad: &mut bool, mut f: impl Windows2) {
    let n = hi.len().min(lo.len());
    if n < p || p == 0 {
        *bad |= hi.iter().chain(lo).fold(false, |a, v| a | v.is_nan());
        return;
    }
    if p <= SCAN_MAX {
        scan2(hi, lo, p, bad, f);
        return;
    }
    // a sentinel slot past each block's suffixes (see `rolling`)
    let (lo_edge, hi_edge) = (f64::NEG_INFINITY, f64::INFINITY);
    let (mut ph, mut pl) = (vec![lo_edge; p + 1], vec![hi_edge; p + 1]);
    let (mut ch, mut cl) = (vec![lo_edge; p + 1], vec![hi_edge; p + 1]);
    let mut nan = false;
    {
        let (bh, bl) = (&hi[..p], &lo[..p]);
        let (mut a, mut b) = (bh[0], bl[0]);
        let (mut sa, mut sb) = (bh[p - 1], bl[p - 1]);
        for j in 0..p {
            a = big(a, bh[j]);
            b = small(b, bl[j]);
            let jj = p - 1 - j;
            sa = big(bh[jj], sa);
            sb = small(bl[jj], sb);
            ph[jj] = sa;
            pl[jj] = sb;
            nan |= bh[j].is_nan() | bl[j].is_nan();
        }
        f.one(p - 1, a, b);
    }
    let mut start = p;
    while start < n {
        let end = (start + p).min(n);
        let (bh, bl) = (&hi[start..end], &lo[start..end]);
        let (mut a, mut b) = (bh[0], bl[0]);
        if end - start == p {
            let (mut sa, mut sb) = (bh[p - 1], bl[p - 1]);
            for j in 0..p {
                a = big(a, bh[j]);
                b = small(b, bl[j]);
                let jj = p - 1 - j;
                sa = big(bh[jj], sa);
                sb = small(bl[jj], sb);
                ch[jj] = sa;
                cl[jj] = sb;
                nan |= bh[j].is_nan() | bl[j].is_nan();
                f.one(start + j, big(ph[j + 1], a), small(pl[j + 1], b));
            }
            std::mem::swap(&mut ph, &mut ch);
            std::mem::swap(&mut pl, &mut cl);
        } else {
            for j in 0..bh.len() {
                a = big(a, bh[j]);
                b = small(b, bl[j]);
                nan |= bh[j].is_nan() | bl[j].is_nan();
                f.one(start + j, big(ph[j + 1], a), small(pl[j + 1], b));
            }
        }
        start = end;
    }
    *bad |= nan;
}

/// WILLR's outputs from the windows' extremes and the closes, a block of
/// windows at a time in vector registers (the per-window arithmetic is
/// branch-free); `cnan`: whether a close read was NaN.
struct WillrOut<'a> {
    c: &'a [f64],
    out: &'a mut [f64],
    cnan: bool,
}

impl Windows2 for &mut WillrOut<'_> {
    #[inline(always)]
    fn one(&mut self, i: usize, hh: f64, ll: f64) {
        let c = self.c[i];
        self.cnan |= c.is_nan();
        self.out[i] = super::kernels::willr_value(hh, ll, c);
    }

    #[inline(always)]
    fn block(&mut self, i: usize, hh: &[f64; L2], ll: &[f64; L2]) {
        let (c, out) = (&self.c[i..i + L2], &mut self.out[i..i + L2]);
        let mut nan = false;
        for j in 0..L2 {
            nan |= c[j].is_nan();
            out[j] = super::kernels::willr_value(hh[j], ll[j], c[j]);
        }
        self.cnan |= nan;
    }
}

/// `j` when `take`, else `i`, without a branch (the condition is data: a
/// conditional jump would mispredict on half the bars).
#[inline(always)]
fn sel(take: bool, j: usize, i: usize) -> usize {
    i ^ ((i ^ j) & 0usize.wrapping_sub(take as usize))
}

/// Calls `f(i, hi_age, lo_age)` for every window of `w` bars ending at
/// `i >= w - 1`: the bars since the highest `hi` and since the lowest `lo` of
/// the window, the most recent bar winning a tie (TA-Lib's AROON). Van Herk /
/// Gil-Werman with positions: per block, the forward prefix extremes and the
/// backward suffix extremes of the previous block; O(1) per bar, branch-free.
#[inline(always)]
fn rolling_args(
    hi: &[f64],
    lo: &[f64],
    w: usize,
    bad: &mut bool,
    mut f: impl FnMut(usize, usize, usize),
) {
    let n = hi.len().min(lo.len());
    if n < w || w == 0 {
        *bad |= hi.iter().chain(lo).fold(false, |a, v| a | v.is_nan());
        return;
    }
    // suffix extremes (value, position) of the previous block and of this
    // one, with a sentinel slot past the block that the prefix always beats
    // (see `rolling`)
    let mut prev = (
        vec![f64::NEG_INFINITY; w + 1],
        vec![0usize; w + 1],
        vec![f64::INFINITY; w + 1],
        vec![0usize; w + 1],
    );
    let mut cur = prev.clone();
    let mut nan = false;
    let mut start = 0;
    while start < n {
        let end = (start + w).min(n);
        let full = end - start == w;
        if full {
            // backward: a tie keeps the later bar (seen first)
            let (sh, shi, sl, sli) = (&mut cur.0, &mut cur.1, &mut cur.2, &mut cur.3);
            let (mut bh, mut bhi) = (hi[end - 1], end - 1);
            let (mut bl, mut bli) = (lo[end - 1], end - 1);
            for j in (0..w).rev() {
                let i = start + j;
                let (vh, vl) = (hi[i], lo[i]);
                bhi = sel(vh > bh, i, bhi);
                bh = big(vh, bh);
                bli = sel(vl < bl, i, bli);
                bl = small(vl, bl);
                nan |= vh.is_nan() | vl.is_nan();
                sh[j] = bh;
                shi[j] = bhi;
                sl[j] = bl;
                sli[j] = bli;
            }
        } else {
            for i in start..end {
                nan |= hi[i].is_nan() | lo[i].is_nan();
            }
        }
        if start == 0 {
            // the first window is the first block
            f(w - 1, w - 1 - cur.1[0], w - 1 - cur.3[0]);
        } else {
            // forward: a tie goes to the later bar
            let (sh, shi, sl, sli) = (&prev.0, &prev.1, &prev.2, &prev.3);
            let (mut ph, mut phi) = (hi[start], start);
            let (mut pl, mut pli) = (lo[start], start);
            for i in start..end {
                let j = i - start;
                let (vh, vl) = (hi[i], lo[i]);
                phi = sel(vh >= ph, i, phi);
                ph = big(ph, vh);
                pli = sel(vl <= pl, i, pli);
                pl = small(pl, vl);
                // the window: the previous block's suffix from j + 1, then
                // this block's prefix, which is later and wins a tie
                let ah = sel(ph >= sh[j + 1], phi, shi[j + 1]);
                let al = sel(pl <= sl[j + 1], pli, sli[j + 1]);
                f(i, i - ah, i - al);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
        start = end;
    }
    *bad |= nan;
}

/// All ones when `b`, else zero (a bit mask for branch-free selects).
#[inline(always)]
fn mask(b: bool) -> u64 {
    0u64.wrapping_sub(b as u64)
}

/// MFI over NaN-free data: the state machine's operations in its order
/// (`kernels::money_flow`, `kernels::mfi_value`), with plain locals.
fn mfi(c: &Cols<'_>, p: usize, bad: &mut bool, out: &mut [f64]) {
    use super::kernels::{mfi_value, money_flow};
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
            inc[k] = super::kernels::ad_inc(h, l, cl, v);
        }
        for k in 0..len {
            f(start + k, inc[k]);
        }
        start += len;
    }
    *bad |= nan;
}

/// Parabolic SAR over NaN-free data: the state machine (`kernels::Sar`)
/// with plain locals; its clamps as maxsd/minsd (the operands ordered so that
/// a tie keeps the same value, as the state machine's `if`s do) and the
/// acceleration step as selects, leaving one branch per bar: the reversal.
fn sar(c: &Cols<'_>, acc: f64, max: f64, bad: &mut bool, out: &mut [f64]) {
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

fn rolling_extreme(x: &[f64], p: usize, max: bool, bad: &mut bool, out: &mut [f64]) {
    if max {
        rolling::<true>(x, p, bad, |i, v| out[i] = v)
    } else {
        rolling::<false>(x, p, bad, |i, v| out[i] = v)
    }
}

/// Runs `k` with a specialised loop if it has one; false otherwise. `cols`
/// and `rows` start at the first bar (no NaN anywhere in the used inputs).
pub fn run(k: &AnyK, cols: &Cols<'_>, rows: &mut [&mut [f64]]) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU supports FMA and AVX2 (checked above).
        return unsafe { run_fma(k, cols, rows) };
    }
    run_local(k, cols, rows)
}

/// # Safety
/// The CPU must support FMA and AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
unsafe fn run_fma(k: &AnyK, cols: &Cols<'_>, rows: &mut [&mut [f64]]) -> Option<bool> {
    run_local(k, cols, rows)
}

/// The NaN flag is a local of this (inlined) frame, so the loops keep it in
/// a register.
#[inline(always)]
fn run_local(k: &AnyK, cols: &Cols<'_>, rows: &mut [&mut [f64]]) -> Option<bool> {
    let mut bad = false;
    let done = run_inner(k, cols, rows, &mut bad);
    done.then_some(bad)
}

/// Marks `bad` when `v` is NaN (the loops read each input once; this
/// replaces a separate pass over the data).
#[inline(always)]
fn chk(bad: &mut bool, v: f64) -> f64 {
    *bad |= v.is_nan();
    v
}

#[inline(always)]
fn run_inner(k: &AnyK, cols: &Cols<'_>, rows: &mut [&mut [f64]], bad: &mut bool) -> bool {
    let n = cols.n;
    match k {
        AnyK::Ma(m) => match &m.ma {
            Ma::Sma(s) => {
                sma(cols.c, s_period_sma(s), bad, &mut *rows[0]);
                true
            }
            Ma::Wma(w) => {
                wma(cols.c, w.p, bad, &mut *rows[0]);
                true
            }
            Ma::Ema(e) => {
                let mut e = e.clone();
                emas(cols.c, &mut [&mut e], bad, &mut *rows[0], |v| v[0]);
                true
            }
            Ma::Dema(d) => {
                let (mut a, mut b) = (d.e1.clone(), d.e2.clone());
                emas(cols.c, &mut [&mut a, &mut b], bad, &mut *rows[0], |v| {
                    (2.0 * v[0]) - v[1]
                });
                true
            }
            Ma::Tema(t) => {
                let (mut a, mut b, mut c) = (t.e1.clone(), t.e2.clone(), t.e3.clone());
                emas(
                    cols.c,
                    &mut [&mut a, &mut b, &mut c],
                    bad,
                    &mut *rows[0],
                    |v| {
                        let mut o = v[2];
                        o += (3.0 * v[0]) - (3.0 * v[1]);
                        o
                    },
                );
                true
            }
            Ma::T3(t3) => {
                let mut t3 = t3.clone();
                t3.run_array(cols.c, &mut *rows[0], bad);
                true
            }
            Ma::Kama(km) => {
                kama(cols.c, km.p, bad, &mut *rows[0]);
                true
            }
            Ma::Trima(t) => {
                let (n1, n2) = t.periods();
                trima(cols.c, n1, n2, bad, &mut *rows[0]);
                true
            }
            _ => false,
        },
        AnyK::Mama(m) => {
            let (fast, slow) = m.m.limits();
            let (a, b) = rows.split_at_mut(1);
            mama(cols.c, fast, slow, bad, &mut *a[0], &mut *b[0]);
            true
        }
        AnyK::LinReg(lr) => {
            linreg(cols.c, lr.p, lr.slope, bad, &mut *rows[0]);
            true
        }
        AnyK::Obv(_) => {
            let out = &mut *rows[0];
            if n == 0 {
                return true;
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
                let step =
                    (vi.to_bits() & up) | ((-vi).to_bits() & down) | (neg_zero & !(up | down));
                obv += f64::from_bits(step);
                prev = ci;
                out[i] = obv;
            }
            true
        }
        AnyK::Adosc(a) => {
            // Adosc::step with its state in locals: the first two bars by
            // the state machine, then the two-bar form with its constants
            // hoisted (the same values: 1 - k and its square are the same
            // products every bar, and k·ad[i-1] is the last bar's k·ad)
            let out = &mut *rows[0];
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
            true
        }
        AnyK::Dmi(d) if d.p > 1 => {
            let out = &mut *rows[0];
            match d.mode {
                0 => dmi::<0>(cols, d.p, bad, out),
                1 => dmi::<1>(cols, d.p, bad, out),
                2 => dmi::<2>(cols, d.p, bad, out),
                3 => dmi::<3>(cols, d.p, bad, out),
                4 => dmi::<4>(cols, d.p, bad, out),
                5 => dmi::<5>(cols, d.p, bad, out),
                _ => dmi::<6>(cols, d.p, bad, out),
            }
            true
        }
        AnyK::Trix(t) => {
            let (mut a, mut b, mut c) = (t.e1.clone(), t.e2.clone(), t.e3.clone());
            let out = &mut *rows[0];
            // 1-bar rate of change of the third EMA.
            let mut prev: Option<f64> = None;
            emas(cols.c, &mut [&mut a, &mut b, &mut c], bad, out, |v| {
                let cur = v[2];
                let r = match prev {
                    Some(p) if p != 0.0 => ((cur / p) - 1.0) * 100.0,
                    Some(_) => 0.0,
                    None => f64::NAN,
                };
                prev = Some(cur);
                r
            });
            true
        }
        AnyK::Ultosc(u) => {
            ultosc(cols, u.p, bad, &mut *rows[0]);
            true
        }
        AnyK::Sum(su) => {
            sum(cols.c, su.s.period(), bad, &mut *rows[0]);
            true
        }
        AnyK::MaxMin(m) => {
            let out = &mut *rows[0];
            nan_fill(out, m.p - 1);
            rolling_extreme(cols.c, m.p, m.is_max(), bad, out);
            true
        }
        AnyK::Mid(m) => {
            let (hi, lo) = if m.price {
                (cols.h, cols.l)
            } else {
                (cols.c, cols.c)
            };
            let out = &mut *rows[0];
            nan_fill(out, m.p - 1);
            rolling2(hi, lo, m.p, bad, |i: usize, a: f64, b: f64| {
                out[i] = (a + b) / 2.0
            });
            true
        }
        AnyK::Aroon(a) => {
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
        AnyK::Mfi(m) => {
            mfi(cols, m.p, bad, &mut *rows[0]);
            true
        }
        AnyK::Sar(k) if k.n == 0 => {
            sar(cols, k.acc, k.max, bad, &mut *rows[0]);
            true
        }
        AnyK::StochRsi(k) => {
            // RSI (into the %D row, as scratch), %K over it (sliding
            // extremes) into the %K row, then %K's SMA into the %D row: the
            // state machines' values, stage by stage
            let sp = match &k.ma {
                Ma::Sma(s) => s_period_sma(s),
                _ => return false,
            };
            let [ko, dout] = match rows {
                [a, b] => [a, b],
                _ => return false,
            };
            ko.fill(f64::NAN);
            let mut rsi = k.rsi.clone();
            let mut first = None;
            for i in 0..n {
                dout[i] = f64::NAN;
                if let Some(v) = rsi.push(chk(bad, cols.c[i])) {
                    dout[i] = v;
                    first.get_or_insert(i);
                }
            }
            let Some(f0) = first else { return true };
            let fk = k.k.p;
            let mut unused = false;
            {
                let (rr, kk) = (&dout[f0..], &mut ko[f0..]);
                rolling2(rr, rr, fk, &mut unused, |i: usize, hh: f64, ll: f64| {
                    kk[i] = super::kernels::fastk_value(hh, ll, rr[i]);
                });
            }
            dout.fill(f64::NAN);
            let at = f0 + fk - 1;
            if at < n {
                sma(&ko[at..], sp, &mut unused, &mut dout[at..]);
                // %K shows from %D's first value on
                let shown = (at + sp - 1).min(n);
                ko[..shown].fill(f64::NAN);
            }
            true
        }
        AnyK::Willr(w) => {
            let out = &mut *rows[0];
            nan_fill(out, w.p - 1);
            let c = cols.c;
            let cnan = c[..(w.p - 1).min(n)]
                .iter()
                .fold(false, |a, v| a | v.is_nan());
            let mut sink = WillrOut { c, out, cnan };
            rolling2(cols.h, cols.l, w.p, bad, &mut sink);
            *bad |= sink.cnan;
            true
        }
        AnyK::Donchian(d) => {
            let [up, mid, low] = match rows {
                [a, b, c] => [a, b, c],
                _ => return false,
            };
            nan_fill(up, d.p - 1);
            nan_fill(low, d.p - 1);
            nan_fill(mid, d.p - 1);
            rolling2(cols.h, cols.l, d.p, bad, |i: usize, a: f64, b: f64| {
                up[i] = a;
                low[i] = b;
                mid[i] = (a + b) / 2.0;
            });
            true
        }
        AnyK::Lag(l) => {
            lag(cols.c, l, bad, &mut *rows[0]);
            true
        }
        AnyK::Atr(a) => {
            atr(cols, a.p, a.mode, bad, &mut *rows[0]);
            true
        }
        AnyK::TypPrice(_) => {
            // In blocks that stay in L1: the arithmetic vectorises (no flag
            // in the loop), then the block's outputs are checked for NaN, which
            // they hold exactly when an input was NaN (or inf - inf: either
            // way the state machine redoes it).
            let out = &mut rows[0][..n];
            let (h, l, c) = (&cols.h[..n], &cols.l[..n], &cols.c[..n]);
            #[cfg(target_arch = "x86_64")]
            if n >= STREAM_MIN && has_fma() {
                // SAFETY: the CPU supports AVX2 (checked above).
                *bad |= unsafe { typprice_stream(h, l, c, out) };
                return true;
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
            true
        }
        AnyK::Bop(_) => {
            // slices of one length (no bounds checks) and the quotient
            // computed for every bar, then selected: the division vectorises
            // with plain loads (a conditional one became masked loads,
            // slow on AMD); a NaN input is looked for in the sum of the two
            // differences (a bar without range hides it from the result;
            // infinities that cancel there also send the array to the
            // state machine, which is merely slower)
            let out = &mut rows[0][..n];
            let (o, h, l, c) = (&cols.o[..n], &cols.h[..n], &cols.l[..n], &cols.c[..n]);
            let mut nan = false;
            for i in 0..n {
                nan |= ((h[i] - l[i]) + (c[i] - o[i])).is_nan();
                out[i] = super::kernels::bop_value(o[i], h[i], l[i], c[i]);
            }
            *bad |= nan;
            true
        }
        AnyK::Ad(_) => {
            let out = &mut *rows[0];
            let mut ad = super::kernels::AdSum::default();
            ad_chunks(cols, bad, |i, inc| out[i] = ad.push(inc));
            true
        }
        AnyK::Stoch(st) => {
            let (a, b) = match (&st.ma1, &st.ma2) {
                (Ma::Sma(a), Some(Ma::Sma(b))) => (a.period(), Some(b.period())),
                (Ma::Sma(a), None) => (a.period(), None),
                _ => return false,
            };
            stoch(cols, st.k.p, a, b, bad, rows)
        }
        AnyK::Bbands(bb) => match &bb.ma {
            Ma::Sma(m) if bb.var.skip == 0 => {
                bbands_sma(cols.c, m.period(), bb.up, bb.dn, bad, rows);
                true
            }
            _ => false,
        },
        AnyK::Var(v) => {
            if v.stddev {
                var::<true>(cols.c, v.var.p, v.dev, bad, &mut *rows[0]);
            } else {
                var::<false>(cols.c, v.var.p, v.dev, bad, &mut *rows[0]);
            }
            true
        }
        _ => false,
    }
}

#[inline(always)]
fn sum(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
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

#[inline(always)]
fn s_period_sma(s: &super::ma::Sma) -> usize {
    s.period()
}

#[inline(always)]
fn sma(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
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

#[inline(always)]
fn lag(x: &[f64], l: &Lag, bad: &mut bool, out: &mut [f64]) {
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

#[inline(always)]
fn atr(c: &Cols<'_>, p: usize, mode: u8, bad: &mut bool, out: &mut [f64]) {
    let n = c.n;
    if n == 0 {
        return;
    }
    out[0] = f64::NAN;
    // NaN anywhere: every loop below reads h[i], l[i], c[i - 1] for all
    // i >= 1 between them; the rest is checked here.
    let mut nan = c.h[0].is_nan() | c.l[0].is_nan() | c.c[n - 1].is_nan();
    let (hh, ll, cc) = (&c.h[..n], &c.l[..n], &c.c[..n]);
    if mode == 0 || p == 1 {
        #[cfg(target_arch = "x86_64")]
        if n >= STREAM_MIN && has_fma() {
            // SAFETY: the CPU supports AVX2 (checked above).
            nan |= unsafe { trange_stream(&hh[1..], &ll[1..], &cc[..n - 1], &mut out[1..n]) };
            *bad |= nan;
            return;
        }
        // plain selects: this loop has no chain and vectorises (vmaxpd), which
        // the scalar maxsd intrinsic of `big` would prevent
        for i in 1..n {
            let (h, l, pc) = (hh[i], ll[i], cc[i - 1]);
            nan |= h.is_nan() | l.is_nan() | pc.is_nan();
            out[i] = sel_max(sel_max(h - l, (h - pc).abs()), (l - pc).abs());
        }
        *bad |= nan;
        return;
    }
    nan_fill(out, p);
    if n <= p {
        return;
    }
    let pf = p as f64;
    // The first value is the SMA of the first p true ranges.
    let mut sum = 0.0;
    for i in 1..p {
        nan |= hh[i].is_nan() | ll[i].is_nan() | cc[i - 1].is_nan();
        sum += true_range(hh[i], ll[i], cc[i - 1]);
    }
    nan |= hh[p].is_nan() | ll[p].is_nan() | cc[p - 1].is_nan();
    sum += true_range(hh[p], ll[p], cc[p - 1]);
    let a = sum * (1.0 / pf); // as the SMA state machine computes it
    let out = &mut out[..n];
    nan |= if mode == 2 {
        atr_smooth::<true>(hh, ll, cc, p, a, out)
    } else {
        atr_smooth::<false>(hh, ll, cc, p, a, out)
    };
    *bad |= nan;
}

/// ATR / NATR from the seed `a` (the average of the first `p` true ranges,
/// bar `p`) on: [`super::kernels::Atr::smooth`]'s operations, one step for
/// bar `p + 1`, two steps at once after it, so the even and the odd bars
/// are two chains that overlap. Returns whether a NaN was read (an overflow
/// to infinities can also say so: the caller then takes the general path,
/// which is merely slower).
#[inline(always)]
fn atr_smooth<const NATR: bool>(
    hh: &[f64],
    ll: &[f64],
    cc: &[f64],
    p: usize,
    a: f64,
    out: &mut [f64],
) -> bool {
    let n = out.len();
    let (hh, ll, cc) = (&hh[..n], &ll[..n], &cc[..n]);
    let norm = |a: f64, close: f64| -> f64 {
        if NATR {
            if close != 0.0 {
                (a / close) * 100.0
            } else {
                0.0
            }
        } else {
            a
        }
    };
    out[p] = norm(a, cc[p]);
    let i0 = p + 1;
    if i0 >= n {
        return false;
    }
    let pf = p as f64;
    let c = super::kernels::atr_powers(pf);
    let c1 = c[0];
    let inv_p = 1.0 / pf;
    let tr_at = |i: usize| -> f64 {
        let (h, l, pc) = (hh[i], ll[i], cc[i - 1]);
        big(big(h - l, (h - pc).abs()), (l - pc).abs())
    };
    // the first smoothed bars, from the seed, as Atr::smooth's first steps
    let mut nan = false;
    let mut back = [a; 4]; // newest first
    let mut u_back = [0.0f64; 3];
    let mut i = i0;
    while i < n && i < i0 + 4 {
        nan |= hh[i].is_nan() | ll[i].is_nan() | cc[i - 1].is_nan();
        let v = wilder_step(&mut back, &mut u_back, (i - i0) as u8, tr_at(i) * inv_p, c);
        out[i] = norm(v, cc[i]);
        i += 1;
    }
    // Then in chunks of a multiple of four bars: first, vectorised, every
    // bar's part that does not depend on the averages (the Horner sum of
    // the last four `u = tr / p`); then the four chains, one multiply-add a
    // bar; NATR's normalisation last while the chunk is in L1 (its division
    // vectorises there). A NaN input makes its bar's `u` NaN (plus zero
    // times the sum of the bar's inputs: exactly nothing for finite ones),
    // which then stays in its chain to the end.
    const C: usize = 512;
    let mut uu = [0.0f64; C + 3];
    let mut w = [0.0f64; C];
    // oldest chain value first: chain k of a group of four is back[3 - k]
    let mut chains = [back[3], back[2], back[1], back[0]];
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        let len = (n - i) & !3;
        let mut prev = [0.0, u_back[2], u_back[1], u_back[0]];
        // SAFETY: the CPU supports FMA and AVX2 (checked above).
        unsafe {
            atr_groups_fma::<NATR>(
                (&hh[i..i + len], &ll[i..i + len], &cc[i - 1..i + len]),
                &mut out[i..i + len],
                inv_p,
                c,
                &mut prev,
                &mut chains,
            )
        };
        if len > 0 {
            u_back = [prev[3], prev[2], prev[1]];
        }
        i += len;
    }
    loop {
        let len = (n - i).min(C) & !3;
        if len == 0 {
            break;
        }
        let (h, l, pc) = (&hh[i..i + len], &ll[i..i + len], &cc[i - 1..i - 1 + len]);
        (uu[0], uu[1], uu[2]) = (u_back[2], u_back[1], u_back[0]);
        for (k, v) in uu[3..3 + len].iter_mut().enumerate() {
            let (h, l, pc) = (h[k], l[k], pc[k]);
            let tr = sel_max(sel_max(h - l, (h - pc).abs()), (l - pc).abs());
            *v = 0.0f64.mul_add(h + l + pc, tr * inv_p);
        }
        for (k, v) in w[..len].iter_mut().enumerate() {
            *v = uu[k]
                .mul_add(c1, uu[k + 1])
                .mul_add(c1, uu[k + 2])
                .mul_add(c1, uu[k + 3]);
        }
        let o = &mut out[i..i + len];
        for (o, w) in o.chunks_exact_mut(4).zip(w[..len].chunks_exact(4)) {
            for k in 0..4 {
                chains[k] = chains[k].mul_add(c[3], w[k]);
            }
            o.copy_from_slice(&chains);
        }
        if NATR {
            for (o, &c) in o.iter_mut().zip(&cc[i..i + len]) {
                *o = norm(*o, c);
            }
        }
        u_back = [uu[len + 2], uu[len + 1], uu[len]];
        i += len;
    }
    nan |= chains.iter().fold(false, |f, v| f | v.is_nan());
    // the last bars (fewer than four), one at a time
    back = [chains[3], chains[2], chains[1], chains[0]];
    while i < n {
        nan |= hh[i].is_nan() | ll[i].is_nan() | cc[i - 1].is_nan();
        let v = wilder_step(&mut back, &mut u_back, 4, tr_at(i) * inv_p, c);
        out[i] = norm(v, cc[i]);
        i += 1;
    }
    nan
}

/// The whole-array ATR/NATR loop's chunks in one pass, four bars at a
/// time in the lanes of a register: the true ranges, the Horner sums of the
/// last four `u = tr / p` (the previous group's lanes shifted in), the four
/// chains and NATR's normalisation, the same operations lane by lane as the
/// chunked loop (one pass keeps the three inputs streaming in and the
/// output out without pauses: the chunked passes left the memory idle
/// while the chains ran). `hlc.2` is the close from one bar before the
/// first on (`len + 1` values); `prev` holds the last group's `u` (lanes
/// 1..3 used), `chains` the last group's averages.
///
/// # Safety
/// The CPU must support FMA and AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
unsafe fn atr_groups_fma<const NATR: bool>(
    hlc: (&[f64], &[f64], &[f64]),
    out: &mut [f64],
    inv_p: f64,
    c: [f64; 4],
    prev: &mut [f64; 4],
    chains: &mut [f64; 4],
) {
    use std::arch::x86_64::*;
    let (h, l, cc) = hlc;
    let groups = out.len() / 4;
    // every pointer below reads or writes 4 values at 4 * g (and the close
    // at 4 * g + 1 as well): in bounds for g < groups
    assert!(h.len() >= groups * 4 && l.len() >= groups * 4 && cc.len() > groups * 4);
    let sign = _mm256_set1_pd(-0.0);
    let (vc1, vc4, vinv) = (
        _mm256_set1_pd(c[0]),
        _mm256_set1_pd(c[3]),
        _mm256_set1_pd(inv_p),
    );
    let zero = _mm256_setzero_pd();
    let hundred = _mm256_set1_pd(100.0);
    // SAFETY: `prev` and `chains` hold 4 values each.
    let (mut pv, mut ch) = (
        _mm256_loadu_pd(prev.as_ptr()),
        _mm256_loadu_pd(chains.as_ptr()),
    );
    for g in 0..groups {
        let at = 4 * g;
        // SAFETY: at + 4 <= groups * 4 <= the inputs' lengths (asserted),
        // and at + 5 <= cc.len(); `out` has groups * 4 values.
        let (hv, lv, pcv) = (
            _mm256_loadu_pd(h.as_ptr().add(at)),
            _mm256_loadu_pd(l.as_ptr().add(at)),
            _mm256_loadu_pd(cc.as_ptr().add(at)),
        );
        let hl = _mm256_sub_pd(hv, lv);
        let hc = _mm256_andnot_pd(sign, _mm256_sub_pd(hv, pcv));
        let lc = _mm256_andnot_pd(sign, _mm256_sub_pd(lv, pcv));
        // max_pd(a, b) is `a > b ? a : b`, sel_max's select
        let tr = _mm256_max_pd(_mm256_max_pd(hl, hc), lc);
        let probe = _mm256_add_pd(_mm256_add_pd(hv, lv), pcv);
        let u = _mm256_fmadd_pd(zero, probe, _mm256_mul_pd(tr, vinv));
        // [u-2, u-1, u0, u1], [u-1, u0, u1, u2], [u-3, u-2, u-1, u0]
        let s2 = _mm256_permute2f128_pd(pv, u, 0x21);
        let s1 = _mm256_shuffle_pd(s2, u, 0b0101);
        let s3 = _mm256_shuffle_pd(pv, s2, 0b0101);
        let w = _mm256_fmadd_pd(
            _mm256_fmadd_pd(_mm256_fmadd_pd(s3, vc1, s2), vc1, s1),
            vc1,
            u,
        );
        ch = _mm256_fmadd_pd(ch, vc4, w);
        let v = if NATR {
            let cv = _mm256_loadu_pd(cc.as_ptr().add(at + 1));
            // 0 where the close is exactly 0 (not for NaN: as `norm`)
            let z = _mm256_cmp_pd(cv, zero, _CMP_EQ_OQ);
            let r = _mm256_mul_pd(_mm256_div_pd(ch, cv), hundred);
            _mm256_blendv_pd(r, zero, z)
        } else {
            ch
        };
        _mm256_storeu_pd(out.as_mut_ptr().add(at), v);
        pv = u;
    }
    _mm256_storeu_pd(prev.as_mut_ptr(), pv);
    _mm256_storeu_pd(chains.as_mut_ptr(), ch);
}

/// Whether a window of one value may end at a bar of `i..end`: such a
/// window holds `need` (`flat_run`) values in a row each equal to the one
/// before, and among any `need` consecutive bars one is a multiple of
/// `need`, so only those bars (from `need - 1` before `i`) are compared
/// with their predecessors: a handful of compares per stretch, not one per
/// bar.
#[inline(always)]
fn may_be_flat(x: &[f64], i: usize, end: usize, need: usize) -> bool {
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
fn run_before(x: &[f64], i: usize, need: usize) -> usize {
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
    use super::ma::{flat_run, next_run, var_floor};
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
        if i >= p && since >= super::ma::RESYNC {
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
            .max(i + super::ma::RESYNC.saturating_sub(since))
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

/// STOCH (slowk, slowd) or STOCHF (fastk, fastd) with SMA averages, in one
/// pass over the data.
#[inline(always)]
fn stoch(
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
    let mut m1 = super::ma::Sma::new(p1);
    let mut m2 = p2.map(super::ma::Sma::new);
    rolling2(c.h, c.l, fk, bad, |i: usize, hh: f64, ll: f64| {
        cnan |= close[i].is_nan();
        let k = super::kernels::fastk_value(hh, ll, close[i]);
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
    use super::ma::{flat_run, next_run};
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
            if i >= p && since >= super::ma::RESYNC {
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

/// KAMA's exact sum of |differences| over the window ending at bar `b`
/// (what `kama_fix` falls back to).
fn kama_exact(x: &[f64], p: usize, b: usize) -> f64 {
    let mut s = 0.0;
    let mut pv = x[b - p];
    for &v in &x[b + 1 - p..b] {
        s += (v - pv).abs();
        pv = v;
    }
    s + (x[b] - pv).abs()
}

/// `kama_fix`'s threshold test for bar `b` once its window is known not to
/// be flat (cold: only a sum that is small against the chunk's largest
/// magnitude gets here).
#[cold]
#[inline(never)]
fn kama_fix_at(x: &[f64], p: usize, b: usize, sum: f64) -> f64 {
    // a non-zero count: only the threshold test applies
    super::ma::kama_fix(sum, 1, p, x[b], x[b - p], x[b - 1], || kama_exact(x, p, b))
}

/// KAMA's two chains for the pairs of bars `k, k + 1` from `k` on, while no
/// sum falls below `thr`: `dd`, `aa` and `bb` hold the previous bar at
/// index 0 (pair `k` reads their `k..k + 3`), `st` the sums and averages
/// two and one bars back. Returns where it stopped (a pair whose sum needs
/// `kama_fix_at`, or the end). Operations and order as `Kama::push`.
type KamaPairs =
    unsafe fn(&[f64], &[f64], &[f64], &mut [f64], &mut [f64], usize, f64, &mut [f64; 4]) -> usize;

#[allow(clippy::too_many_arguments)]
fn kama_pairs_plain(
    dd: &[f64],
    aa: &[f64],
    bb: &[f64],
    s: &mut [f64],
    o: &mut [f64],
    mut k: usize,
    thr: f64,
    st: &mut [f64; 4],
) -> usize {
    let m = kama_pairs_end(dd, aa, bb, s, o);
    let [mut s0, mut s1, mut k0, mut k1] = *st;
    while k + 1 < m {
        let (n0, n1) = (s0 + (dd[k] + dd[k + 1]), s1 + (dd[k + 1] + dd[k + 2]));
        if (n0 < thr) | (n1 < thr) {
            break;
        }
        (s[k], s[k + 1], s0, s1) = (n0, n1, n0, n1);
        let (a0, a1, a2) = (aa[k], aa[k + 1], aa[k + 2]);
        k0 = k0.mul_add(a1 * a0, a1.mul_add(bb[k], bb[k + 1]));
        k1 = k1.mul_add(a2 * a1, a2.mul_add(bb[k + 1], bb[k + 2]));
        (o[k], o[k + 1]) = (k0, k1);
        k += 2;
    }
    *st = [s0, s1, k0, k1];
    k
}

/// The bars `kama_pairs_*` may write: every slice index they use is below
/// it (`dd`, `aa`, `bb` one more).
fn kama_pairs_end(dd: &[f64], aa: &[f64], bb: &[f64], s: &[f64], o: &[f64]) -> usize {
    let one_less = |v: &[f64]| v.len().saturating_sub(1);
    one_less(dd)
        .min(one_less(aa))
        .min(one_less(bb))
        .min(s.len())
        .min(o.len())
}

/// `kama_pairs_plain` with the even and the odd bar in the two lanes of a
/// register (same operations lane by lane: fused multiply-adds round once
/// either way, so both give the same bits).
///
/// # Safety
/// The CPU must support FMA and AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn kama_pairs_fma(
    dd: &[f64],
    aa: &[f64],
    bb: &[f64],
    s: &mut [f64],
    o: &mut [f64],
    mut k: usize,
    thr: f64,
    st: &mut [f64; 4],
) -> usize {
    use std::arch::x86_64::*;
    let m = kama_pairs_end(dd, aa, bb, s, o);
    // SAFETY (every load and store below): while `k + 1 < m`, the loads
    // read `dd`, `aa`, `bb` at `k..k + 3` (< m + 1 <= their length) and the
    // stores write `s` and `o` at `k..k + 2` (<= m <= their length), all
    // unaligned-access intrinsics on in-bounds slice memory; `st` has 4.
    let (mut sv, mut kv) = (_mm_loadu_pd(st.as_ptr()), _mm_loadu_pd(st.as_ptr().add(2)));
    let tv = _mm_set1_pd(thr);
    while k + 1 < m {
        let d2 = _mm_add_pd(
            _mm_loadu_pd(dd.as_ptr().add(k)),
            _mm_loadu_pd(dd.as_ptr().add(k + 1)),
        );
        let sn = _mm_add_pd(sv, d2);
        if _mm_movemask_pd(_mm_cmplt_pd(sn, tv)) != 0 {
            break;
        }
        _mm_storeu_pd(s.as_mut_ptr().add(k), sn);
        sv = sn;
        let (a0, a1) = (
            _mm_loadu_pd(aa.as_ptr().add(k)),
            _mm_loadu_pd(aa.as_ptr().add(k + 1)),
        );
        let (b0, b1) = (
            _mm_loadu_pd(bb.as_ptr().add(k)),
            _mm_loadu_pd(bb.as_ptr().add(k + 1)),
        );
        kv = _mm_fmadd_pd(kv, _mm_mul_pd(a1, a0), _mm_fmadd_pd(a1, b0, b1));
        _mm_storeu_pd(o.as_mut_ptr().add(k), kv);
        k += 2;
    }
    _mm_storeu_pd(st.as_mut_ptr(), sv);
    _mm_storeu_pd(st.as_mut_ptr().add(2), kv);
    k
}

fn kama_pairs_fn() -> KamaPairs {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        return kama_pairs_fma;
    }
    kama_pairs_plain
}

/// KAMA over a whole array, in chunks of C bars, each in three passes:
/// (1) vectorised, every bar's change of the running sum, the chunk's
/// count of zero differences and its largest magnitude; (2) the chains,
/// two bars at a time, for this chunk's sums and the previous chunk's
/// averages side by side (`kama_pairs_*`, called through a pointer: inlined
/// here the register allocator kept its two chains on the stack, 1.5x
/// slower); (3) vectorised, the chunk's coefficients from its sums.
/// Same values as `Kama::push`, bit for bit. Flat windows: a chunk whose
/// windows may hold p zero differences runs the sums bar by bar with the
/// state machine's non-zero count instead.
#[inline(always)]
fn kama(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
    use super::ma::kama_coef;
    let n = x.len();
    nan_fill(out, p);
    let head = n.min(p + 2);
    let mut nan = x[..head].iter().fold(false, |a, v| a | v.is_nan());
    if n <= p {
        *bad |= nan;
        return;
    }
    let pf = p as f64;
    // bars up to p + 1 as the state machine
    let mut sum = 0.0;
    let mut nonzero = 0u32;
    for b in 1..=p {
        let d = (x[b - 1] - x[b]).abs();
        sum += d;
        nonzero += (d != 0.0) as u32;
    }
    let fix = |sum: f64, nonzero: u32, b: usize| {
        super::ma::kama_fix(sum, nonzero, p, x[b], x[b - p], x[b - 1], || {
            kama_exact(x, p, b)
        })
    };
    let s_p = fix(sum, nonzero, p);
    let (a, bx) = kama_coef(s_p, x[p] - x[0], x[p]);
    let k_p = x[p - 1].mul_add(a, bx);
    out[p] = k_p;
    if n == p + 1 {
        *bad |= nan;
        return;
    }
    let b = p + 1;
    let (d_in, d_out) = ((x[b] - x[b - 1]).abs(), (x[b - p - 1] - x[b - p]).abs());
    let dd_p1 = d_in - d_out;
    nonzero = (nonzero + (d_in != 0.0) as u32).saturating_sub((d_out != 0.0) as u32);
    let s_p1 = fix(s_p + dd_p1, nonzero, b);
    let (a_p1, b_p1) = kama_coef(s_p1, x[b] - x[b - p], x[b]);
    let k_p1 = k_p.mul_add(a_p1, b_p1);
    out[b] = k_p1;
    // sums and averages two and one bars back
    let mut st = [s_p, s_p1, k_p, k_p1];
    const C: usize = 256;
    // index 0: the previous bar's (the pairs read one bar back)
    let mut dd = [0.0f64; C + 1];
    let mut aa = [0.0f64; C + 1];
    let mut bb = [0.0f64; C + 1];
    let mut sums = [0.0f64; C];
    (dd[0], aa[0], bb[0]) = (dd_p1, a_p1, b_p1);
    let pairs = std::hint::black_box(kama_pairs_fn());
    // zero differences among x[1..=end], at the end of each chunk so far:
    // a bound on any window's count without a running count per bar
    let mut zero_total = (1..=p + 1)
        .filter(|&i| (x[i] - x[i - 1]).abs() == 0.0)
        .count();
    let mut zero_at: Vec<usize> = Vec::with_capacity((n - p) / C + 2);
    let first_start = p + 2;
    // the previous chunk, whose averages this round completes
    let (mut prev_start, mut prev_len) = (first_start, 0usize);
    let mut start = first_start;
    loop {
        let len = (n.max(start) - start).min(C);
        // (1) changes of the sum, zero differences, largest magnitude
        let xs = &x[start..start + len];
        let x1 = &x[start - 1..start - 1 + len];
        let xp = &x[start - p..start - p + len];
        let xq = &x[start - p - 1..start - p - 1 + len];
        let mut zeros = 0usize;
        let mut top = 0i64;
        for (k, d) in dd[1..=len].iter_mut().enumerate() {
            let (xb, back_p) = (xs[k], xp[k]);
            nan |= xb.is_nan();
            let (d_in, d_out) = ((xb - x1[k]).abs(), (xq[k] - back_p).abs());
            *d = d_in - d_out;
            zeros += (d_in == 0.0) as usize;
            // magnitudes compare as their bit patterns (no sign bit);
            // a NaN sends the array back to the state machine anyway
            top = top
                .max(xb.abs().to_bits() as i64)
                .max(back_p.abs().to_bits() as i64);
        }
        // every window of this chunk reads differences from start - p + 1
        // on: those since the start of the chunk holding that one bound its
        // zero count
        let from = (start + 1 - p).saturating_sub(first_start) / C;
        let before = if from == 0 { 0 } else { zero_at[from - 1] };
        let flat_possible = zero_total + zeros - before >= p;
        zero_total += zeros;
        zero_at.push(zero_total);
        // (2) this chunk's sums, the previous chunk's averages
        let scale = sel_max(f64::from_bits(top as u64), x[start - 1].abs());
        let thr = 1e-12 * scale * pf;
        let m = len.min(prev_len);
        let o = &mut out[prev_start..prev_start + prev_len];
        let mut k = 0;
        if !flat_possible {
            loop {
                // SAFETY: `pairs` is kama_pairs_plain, or kama_pairs_fma
                // when the CPU has FMA and AVX2 (kama_pairs_fn checks).
                k = unsafe {
                    pairs(
                        &dd[..=m],
                        &aa[..=m],
                        &bb[..=m],
                        &mut sums[..m],
                        o,
                        k,
                        thr,
                        &mut st,
                    )
                };
                if k + 1 >= m {
                    break;
                }
                // a sum below the chunk's bound: this pair by the full rule
                let s0 = kama_fix_at(x, p, start + k, st[0] + (dd[k] + dd[k + 1]));
                let s1 = kama_fix_at(x, p, start + k + 1, st[1] + (dd[k + 1] + dd[k + 2]));
                (sums[k], sums[k + 1], st[0], st[1]) = (s0, s1, s0, s1);
                let (a0, a1, a2) = (aa[k], aa[k + 1], aa[k + 2]);
                st[2] = st[2].mul_add(a1 * a0, a1.mul_add(bb[k], bb[k + 1]));
                st[3] = st[3].mul_add(a2 * a1, a2.mul_add(bb[k + 1], bb[k + 2]));
                (o[k], o[k + 1]) = (st[2], st[3]);
                k += 2;
            }
            for j in k..len {
                let mut s_new = st[0] + (dd[j] + dd[j + 1]);
                if s_new < thr {
                    s_new = kama_fix_at(x, p, start + j, s_new);
                }
                sums[j] = s_new;
                (st[0], st[1]) = (st[1], s_new);
            }
        } else {
            // the window's non-zero count, then bar by bar as the state
            // machine
            let mut nz = (start - p..start)
                .filter(|&i| (x[i] - x[i - 1]).abs() != 0.0)
                .count() as u32;
            for j in 0..len {
                let b = start + j;
                let (d_in, d_out) = ((x[b] - x[b - 1]).abs(), (x[b - p - 1] - x[b - p]).abs());
                nz = (nz + (d_in != 0.0) as u32).saturating_sub((d_out != 0.0) as u32);
                let s_new = fix(st[0] + (dd[j] + dd[j + 1]), nz, b);
                sums[j] = s_new;
                (st[0], st[1]) = (st[1], s_new);
            }
        }
        for j in k..prev_len {
            let kn = st[2].mul_add(aa[j + 1] * aa[j], aa[j + 1].mul_add(bb[j], bb[j + 1]));
            o[j] = kn;
            (st[2], st[3]) = (st[3], kn);
        }
        if len == 0 {
            break;
        }
        // (3) this chunk's coefficients
        (dd[0], aa[0], bb[0]) = (dd[len], aa[prev_len], bb[prev_len]);
        for (j, (a, b)) in aa[1..=len].iter_mut().zip(&mut bb[1..=len]).enumerate() {
            (*a, *b) = kama_coef(sums[j], xs[j] - xp[j], xs[j]);
        }
        (prev_start, prev_len) = (start, len);
        start += len;
    }
    *bad |= nan;
}

/// MAMA over a whole array: the state machine itself on the stack (the
/// indicator's copy is boxed, reached through memory at every bar; a local
/// one keeps its carried values in registers), so the same values bit for
/// bit.
#[inline(always)]
fn mama(x: &[f64], fast: f64, slow: f64, bad: &mut bool, om: &mut [f64], of: &mut [f64]) {
    let mut m = super::ma::Mama::new(fast, slow, 0);
    let mut nan = false;
    for ((&v, a), f) in x.iter().zip(om.iter_mut()).zip(of.iter_mut()) {
        nan |= v.is_nan();
        (*a, *f) = m.push2(v).unwrap_or((f64::NAN, f64::NAN));
    }
    *bad |= nan;
}

#[inline(always)]
fn linreg(x: &[f64], p: usize, slope: bool, bad: &mut bool, out: &mut [f64]) {
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

/// The directional movement family for period > 1 (modes as in `Dmi`).
#[inline(always)]
fn dmi<const MODE: u8>(c: &Cols<'_>, p: usize, bad: &mut bool, out: &mut [f64]) {
    let mode = MODE;
    let n = c.n;
    out.fill(f64::NAN);
    if n == 0 {
        return;
    }
    chk(bad, c.h[0]);
    chk(bad, c.l[0]);
    if mode > 1 {
        chk(bad, c.c[0]);
    }
    let pf = p as f64;
    let dm_only = mode <= 1;
    let (mut prev_h, mut prev_l, mut prev_c) = (c.h[0], c.l[0], c.c[0]);
    let (mut pdm, mut mdm, mut tr) = (0.0, 0.0, 0.0);
    let (mut last_dx, mut sum_dx, mut adx) = (0.0, 0.0, 0.0);
    let c1 = (pf - 1.0) / pf;
    let mut hist = vec![0.0; p - 1];
    let (mut hpos, mut hlen) = (0usize, 0usize);
    use super::kernels::{di_value, dx_value};
    for m in 1..n {
        let (h, l) = (chk(bad, c.h[m]), chk(bad, c.l[m]));
        let cl = if mode > 1 { chk(bad, c.c[m]) } else { c.c[m] };
        let diff_p = h - prev_h;
        prev_h = h;
        let diff_m = prev_l - l;
        prev_l = l;
        // Branch-free selection of the one-bar movements (same values as
        // the state machine's if / else-if).
        let (dm_p, dm_m) = super::ma::dm_select(diff_p, diff_m);
        if m < p {
            let minus = (diff_m > 0.0) & (diff_p < diff_m);
            let plus = !minus & (diff_p > 0.0) & (diff_p > diff_m);
            if minus {
                mdm += diff_m;
            } else if plus {
                pdm += diff_p;
            }
            if !dm_only {
                tr += true_range(h, l, prev_c);
                prev_c = cl;
            }
            if dm_only && m == p - 1 {
                out[m] = if mode == 0 { pdm } else { mdm };
            }
            continue;
        }
        mdm = mdm.mul_add(c1, dm_m);
        pdm = pdm.mul_add(c1, dm_p);
        if dm_only {
            out[m] = if mode == 0 { pdm } else { mdm };
            continue;
        }
        let t1 = true_range(h, l, prev_c);
        tr = tr.mul_add(c1, t1);
        prev_c = cl;
        match mode {
            2 | 3 => {
                let dm = if mode == 2 { pdm } else { mdm };
                out[m] = di_value(dm, tr);
            }
            4 => {
                let v = match dx_value(pdm, mdm, tr) {
                    Some(v) => v,
                    None => {
                        if m == p {
                            0.0
                        } else {
                            last_dx
                        }
                    }
                };
                last_dx = v;
                out[m] = v;
            }
            _ => {
                // ADX (mode 5) and ADXR (mode 6)
                let a;
                if m < 2 * p {
                    if let Some(dx) = dx_value(pdm, mdm, tr) {
                        sum_dx += dx;
                    }
                    if m < 2 * p - 1 {
                        continue;
                    }
                    adx = sum_dx / pf;
                    a = adx;
                } else {
                    if let Some(dx) = dx_value(pdm, mdm, tr) {
                        adx = adx.mul_add((pf - 1.0) / pf, dx * (1.0 / pf));
                    }
                    a = adx;
                }
                if mode == 5 {
                    out[m] = a;
                } else {
                    let full = hlen == p - 1;
                    let old = hist[hpos];
                    hist[hpos] = a;
                    hpos += 1;
                    if hpos == p - 1 {
                        hpos = 0;
                    }
                    if hlen < p - 1 {
                        hlen += 1;
                    }
                    if full {
                        out[m] = (a + old) / 2.0;
                    }
                }
            }
        }
    }
}

/// ULTOSC over sorted periods `p` (shortest first), as `Ultosc` computes it.
#[inline(always)]
fn ultosc(c: &Cols<'_>, p: [usize; 3], bad: &mut bool, out: &mut [f64]) {
    use super::kernels::{ultosc_empty, ultosc_value};
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

/// A chain of EMAs (each fed the previous one's output from its first
/// value), combined by `combine` once all are warm: EMA, DEMA, TEMA. The
/// state machines warm up; the steady state runs on locals with the same
/// arithmetic.
#[inline(always)]
fn emas<const K: usize>(
    x: &[f64],
    chain: &mut [&mut super::ma::Ema; K],
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
                prev[j] = super::ma::Ema::step(prev[j], u, k[j]);
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
