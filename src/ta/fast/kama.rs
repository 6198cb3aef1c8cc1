//! KAMA over a whole array: chunked passes around its two chains.

use super::common::{nan_fill, sel_max};
use crate::ta::cols::has_fma;

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
    crate::ta::ma::kama_fix(sum, 1, p, x[b], x[b - p], x[b - 1], || kama_exact(x, p, b))
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
pub(super) fn kama(x: &[f64], p: usize, bad: &mut bool, out: &mut [f64]) {
    use crate::ta::ma::kama_coef;
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
        crate::ta::ma::kama_fix(sum, nonzero, p, x[b], x[b - p], x[b - 1], || {
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
