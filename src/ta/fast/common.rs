//! The small helpers every whole-array loop uses: warm-up fills, the NaN
//! flag, plain selects and the streaming-store threshold.

use crate::ta::ma::big;

#[inline(always)]
pub(super) fn nan_fill(out: &mut [f64], upto: usize) {
    let k = upto.min(out.len());
    out[..k].fill(f64::NAN);
}

/// Outputs at least this long go around the caches in the loops that
/// stream them (a million-bar result is 8 MB, past any cache it could stay
/// in, and an ordinary store first reads each line it writes).
#[cfg(target_arch = "x86_64")]
pub(super) const STREAM_MIN: usize = 1 << 17;

/// `kernels::true_range` with `big` (NaN-free data only).
#[inline(always)]
pub(super) fn true_range(h: f64, l: f64, pc: f64) -> f64 {
    big(big(h - l, (h - pc).abs()), (l - pc).abs())
}

/// Plain selects (they vectorise to maxpd / minpd; NaN-free data only).
#[inline(always)]
pub(super) fn sel_max(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
pub(super) fn sel_min(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// All ones when `b`, else zero (a bit mask for branch-free selects).
#[inline(always)]
pub(super) fn mask(b: bool) -> u64 {
    0u64.wrapping_sub(b as u64)
}

/// Marks `bad` when `v` is NaN (the loops read each input once; this
/// replaces a separate pass over the data).
#[inline(always)]
pub(super) fn chk(bad: &mut bool, v: f64) -> f64 {
    *bad |= v.is_nan();
    v
}
