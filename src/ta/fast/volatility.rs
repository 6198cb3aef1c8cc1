//! Volatility indicators over whole arrays: TRANGE, ATR, NATR and the
//! Donchian channel.

use super::common::{nan_fill, sel_max, true_range, STREAM_MIN};
use super::extremes::rolling2;
use crate::ta::cols::{has_fma, Cols};
use crate::ta::kernels::wilder_step;
use crate::ta::ma::big;

/// The Donchian channel (upper, middle, lower rows); false for a row count
/// that does not fit.
#[inline(always)]
pub(super) fn donchian(p: usize, cols: &Cols<'_>, bad: &mut bool, rows: &mut [&mut [f64]]) -> bool {
    let [up, mid, low] = match rows {
        [a, b, c] => [a, b, c],
        _ => return false,
    };
    nan_fill(up, p - 1);
    nan_fill(low, p - 1);
    nan_fill(mid, p - 1);
    rolling2(cols.h, cols.l, p, bad, |i: usize, a: f64, b: f64| {
        up[i] = a;
        low[i] = b;
        mid[i] = (a + b) / 2.0;
    });
    true
}

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

#[inline(always)]
pub(super) fn atr(c: &Cols<'_>, p: usize, mode: u8, bad: &mut bool, out: &mut [f64]) {
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
/// bar `p`) on: [`crate::ta::kernels::Atr::smooth`]'s operations, one step for
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
    let c = crate::ta::kernels::atr_powers(pf);
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
