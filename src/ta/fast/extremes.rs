//! Sliding extremes over whole arrays: the highest and lowest value of
//! every window (van Herk / Gil-Werman, or a whole scan for short windows),
//! one series or two at once, and with their ages (AROON).

use super::common::{sel_max, sel_min};
use crate::ta::ma::{big, small};

#[inline(always)]
fn pick<const MAX: bool>(a: f64, b: f64) -> f64 {
    if MAX {
        big(a, b)
    } else {
        small(a, b)
    }
}

/// Calls `f(i, max_or_min)` for every window of `p` values ending at
/// `i >= p - 1` (van Herk / Gil-Werman: the suffix extremes of the previous
/// block and a running prefix extreme of the current one; O(1) per value,
/// branch-free, O(p) memory). The prefix of a block and its suffix (for the
/// next block) are two independent chains computed in the same loop.
#[inline(always)]
pub(super) fn rolling<const MAX: bool>(
    x: &[f64],
    p: usize,
    bad: &mut bool,
    mut f: impl FnMut(usize, f64),
) {
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

/// Windows `scan2` computes at once.
pub(super) const SCAN_BLOCK: usize = 8;

/// What `rolling2` calls with each window's highest `hi` and lowest `lo`:
/// `one` for window `i`, or `block` for the `SCAN_BLOCK` windows from `i`
/// on (a closure takes them one by one; an indicator whose per-window
/// arithmetic vectorises takes the block).
pub(super) trait HighLowSink {
    fn one(&mut self, i: usize, hh: f64, ll: f64);

    #[inline(always)]
    fn block(&mut self, i: usize, hh: &[f64; SCAN_BLOCK], ll: &[f64; SCAN_BLOCK]) {
        for j in 0..SCAN_BLOCK {
            self.one(i + j, hh[j], ll[j]);
        }
    }
}

impl<F: FnMut(usize, f64, f64)> HighLowSink for F {
    #[inline(always)]
    fn one(&mut self, i: usize, hh: f64, ll: f64) {
        self(i, hh, ll)
    }
}

/// `rolling2` for short windows (see SCAN_MAX): each window's extremes from
/// all its values. The same values come out (an extreme is one of the inputs;
/// only the sign of a zero tie could differ, which no comparison sees).
#[inline(always)]
fn scan2(hi: &[f64], lo: &[f64], p: usize, bad: &mut bool, mut f: impl HighLowSink) {
    const L: usize = SCAN_BLOCK;
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
pub(super) fn rolling2(hi: &[f64], lo: &[f64], p: usize, bad: &mut bool, mut f: impl HighLowSink) {
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
pub(super) fn rolling_args(
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
