//! The numeric rules every kernel shares: TA-Lib's zero tests, and the
//! branch-free larger/smaller and directional-movement selects.

/// TA-Lib's `TA_EPSILON` (0.8.x; earlier releases used 1e-8).
pub const EPSILON: f64 = 0.00000000000001;

/// TA-Lib's `TA_IS_ZERO`: an absolute band, which 0.8 keeps only where the
/// value has no price scale (the directional indicators' sum, in percent)
/// and in PPO.
#[inline(always)]
pub fn is_zero(v: f64) -> bool {
    -EPSILON < v && v < EPSILON
}

/// TA-Lib 0.8's `TA_IS_ZERO_SCALED`: `v`, a difference of prices, is no more
/// than 1e-14 of `s`, the magnitude of what was subtracted (a dead zone of
/// about 90 ulp for the rounding of equal prices, the same at any price
/// level; exactly `v == 0` when `s` is 0). False for NaN.
#[inline(always)]
pub fn is_zero_scaled(v: f64, s: f64) -> bool {
    v.abs() <= EPSILON * s
}

/// The larger of two values with one `maxsd` (f64::max also sorts out NaN,
/// at three instructions and twice the latency): for NaN-free data, where
/// both give the same value. Written with the SSE2 intrinsic: as a plain
/// `if a > b`, the compiler sometimes emits a conditional jump instead, which
/// mispredicts on half the bars of a random walk.
#[inline(always)]
pub fn big(a: f64, b: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cvtsd_f64, _mm_max_sd, _mm_set_sd};
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { _mm_cvtsd_f64(_mm_max_sd(_mm_set_sd(a), _mm_set_sd(b))) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    if a > b {
        a
    } else {
        b
    }
}

/// The smaller of two values with one `minsd` (see `big`).
#[inline(always)]
pub fn small(a: f64, b: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cvtsd_f64, _mm_min_sd, _mm_set_sd};
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe { _mm_cvtsd_f64(_mm_min_sd(_mm_set_sd(a), _mm_set_sd(b))) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    if a < b {
        a
    } else {
        b
    }
}

/// The one-bar directional movements (+DM, -DM) from the high's rise
/// `diff_p` and the low's fall `diff_m`: -DM when the fall is positive and
/// larger than the rise, else +DM when the rise is positive and larger than
/// the fall, else neither (TA-Lib's rule). Compare-and-mask in SSE2 on
/// x86_64: the compiler turns a bool mask back into jumps, which mispredict
/// on market data.
#[inline(always)]
pub fn dm_select(diff_p: f64, diff_m: f64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_and_pd, _mm_andnot_pd, _mm_cmplt_sd, _mm_cvtsd_f64, _mm_set_sd, _mm_setzero_pd,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline: every x86_64 CPU has it.
        unsafe {
            let (p, m, z) = (_mm_set_sd(diff_p), _mm_set_sd(diff_m), _mm_setzero_pd());
            let minus = _mm_and_pd(_mm_cmplt_sd(z, m), _mm_cmplt_sd(p, m));
            let plus = _mm_andnot_pd(minus, _mm_and_pd(_mm_cmplt_sd(z, p), _mm_cmplt_sd(m, p)));
            (
                _mm_cvtsd_f64(_mm_and_pd(plus, p)),
                _mm_cvtsd_f64(_mm_and_pd(minus, m)),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let minus = (diff_m > 0.0) & (diff_p < diff_m);
        let plus = !minus & (diff_p > 0.0) & (diff_p > diff_m);
        (
            if plus { diff_p } else { 0.0 },
            if minus { diff_m } else { 0.0 },
        )
    }
}
