//! MAMA and FAMA, the MESA adaptive moving averages, with their
//! Hilbert-transform steps and the arctangent they run on.

use serde::{Deserialize, Serialize};

/// MESA adaptive moving average: (mama, fama). `parity` is the index of the
/// first bar this average sees, counted from the start of the series (TA-Lib
/// alternates two Hilbert-transform buffers on even and odd indexes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mama {
    fast: f64,
    slow: f64,
    today: u64,
    n: usize,
    wma_sub: f64,
    wma_sum: f64,
    trailing_wma: f64,
    last3: [f64; 3],
    hilbert_idx: usize,
    // [even, odd] buffers and carried values of the four transforms.
    det: [[f64; 3]; 2],
    det_prev: [f64; 2],
    det_prev_in: [f64; 2],
    q1b: [[f64; 3]; 2],
    q1_prev: [f64; 2],
    q1_prev_in: [f64; 2],
    jib: [[f64; 3]; 2],
    ji_prev: [f64; 2],
    ji_prev_in: [f64; 2],
    jqb: [[f64; 3]; 2],
    jq_prev: [f64; 2],
    jq_prev_in: [f64; 2],
    period: f64,
    prev_q2: f64,
    prev_i2: f64,
    re: f64,
    im: f64,
    i1_odd_prev2: f64,
    i1_odd_prev3: f64,
    i1_even_prev2: f64,
    i1_even_prev3: f64,
    prev_phase: f64,
    mama: f64,
    fama: f64,
}

const MAMA_A: f64 = 0.0962;

const MAMA_B: f64 = 0.5769;

/// TA-Lib's Hilbert transform step, `(a*x - buf[idx] - prev + b*prev_in) * adj`,
/// with the terms that do not depend on `x` summed first: from `x` to the
/// result a multiply, an add and a multiply (MAMA's period feeds back into
/// the next bar through four of these in a row). `a*x` is rounded before
/// the add, as the value kept in `buf`: on a constant series the two then
/// cancel exactly (a fused multiply-add would leave the product's rounding
/// error, and a zero-or-not test downstream would see it).
#[inline(always)]
fn hilbert(
    buf: &mut [f64; 3],
    prev: &mut f64,
    prev_in: &mut f64,
    idx: usize,
    input: f64,
    adj: f64,
) -> f64 {
    let next_prev = MAMA_B * *prev_in;
    let rest = (next_prev - *prev) - buf[idx];
    let t = MAMA_A * input;
    buf[idx] = t;
    *prev = next_prev;
    *prev_in = input;
    (t + rest) * adj
}

/// Arctangent in a fixed number of steps, without a library call, for
/// MAMA's two per bar (its period's feedback loop runs through one: libm's
/// call, its branches and the registers it clobbers were a third of MAMA's
/// time). Within 2 ulp of the exact value (a test checks it against libm).
///
/// `|x|` up to 2 is split into 33 intervals centred on `k/16`; on each, the
/// Taylor series of atan around the centre, to degree 11 (the remainder is
/// below 1e-19 for `|h| <= 1/32`: the coefficients shrink as
/// `(1 + c^2)^(-j/2) / j`), evaluated by Estrin's scheme (a short dependency
/// chain). Above 2, `atan(x) = pi/2 - atan(1/x)`.
#[inline(always)]
pub fn atan(x: f64) -> f64 {
    atan_sel::<false>(x)
}

/// `atan` with `SELECT`: the reciprocal computed for every argument and
/// chosen without a branch (for arguments above 2 as often as not; the
/// plain version branches, for a chain where they are rare). Same result.
#[inline(always)]
pub fn atan_sel<const SELECT: bool>(x: f64) -> f64 {
    let t = atan_table();
    let a = x.abs();
    let far = a > 2.0;
    let a = if SELECT {
        let inv = 1.0 / a;
        if far {
            inv
        } else {
            a
        }
    } else if far {
        1.0 / a
    } else {
        a
    };
    // 16a rounded to an integer by adding 1.5 * 2^52 (whose unit in the
    // last place is 1): the integer is in the low bits, and subtracting the
    // constant back is exact. NaN picks some row and stays NaN.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let m = a.mul_add(16.0, ROUND);
    let row = ((m.to_bits() & 63) as usize).min(ATAN_ROWS - 1);
    // exact: a and the centre are within a factor of two of each other
    // (or the centre is 0)
    let h = (m - ROUND).mul_add(-1.0 / 16.0, a);
    let c = &t[row];
    let h2 = h * h;
    let h4 = h2 * h2;
    let h8 = h4 * h4;
    let e0 = c[1].mul_add(h, c[0]);
    let e1 = c[3].mul_add(h, c[2]);
    let e2 = c[5].mul_add(h, c[4]);
    let e3 = c[7].mul_add(h, c[6]);
    let e4 = c[9].mul_add(h, c[8]);
    let e5 = c[11].mul_add(h, c[10]);
    let d0 = e1.mul_add(h2, e0);
    let d1 = e3.mul_add(h2, e2);
    let d2 = e5.mul_add(h2, e4);
    let v = d2.mul_add(h8, d1.mul_add(h4, d0));
    // pi/2 as a rounded value plus what it lacks
    let w = (std::f64::consts::FRAC_PI_2 - v) + 6.123_233_995_736_766e-17;
    if far { w } else { v }.copysign(x)
}

const ATAN_ROWS: usize = 33;

/// Row k: atan's Taylor coefficients around k/16, constant term first.
fn atan_table() -> &'static [[f64; 12]; ATAN_ROWS] {
    static T: std::sync::OnceLock<[[f64; 12]; ATAN_ROWS]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t = [[0.0; 12]; ATAN_ROWS];
        for (k, row) in t.iter_mut().enumerate() {
            let c = k as f64 / 16.0;
            let q0 = 1.0 + c * c;
            // 1/(1 + (c + h)^2) = sum u_m h^m, from
            // (q0 + 2c h + h^2) * sum u_m h^m = 1; atan's are u_(j-1) / j
            let (mut u1, mut u0) = (0.0, 1.0 / q0);
            row[0] = c.atan();
            row[1] = u0;
            for (j, coef) in row.iter_mut().enumerate().skip(2) {
                let u = -(2.0 * c * u0 + u1) / q0;
                (u1, u0) = (u0, u);
                *coef = u / j as f64;
            }
        }
        t
    })
}

/// Degrees per radian (TA-Lib's `180 / (4 * atan(1))`: 4 * atan(1) is pi
/// exactly in binary64).
const RAD2DEG: f64 = 180.0 / std::f64::consts::PI;

impl Mama {
    pub fn new(fast: f64, slow: f64, parity: u64) -> Self {
        Mama {
            fast,
            slow,
            today: parity,
            n: 0,
            wma_sub: 0.0,
            wma_sum: 0.0,
            trailing_wma: 0.0,
            last3: [0.0; 3],
            hilbert_idx: 0,
            det: [[0.0; 3]; 2],
            det_prev: [0.0; 2],
            det_prev_in: [0.0; 2],
            q1b: [[0.0; 3]; 2],
            q1_prev: [0.0; 2],
            q1_prev_in: [0.0; 2],
            jib: [[0.0; 3]; 2],
            ji_prev: [0.0; 2],
            ji_prev_in: [0.0; 2],
            jqb: [[0.0; 3]; 2],
            jq_prev: [0.0; 2],
            jq_prev_in: [0.0; 2],
            period: 0.0,
            prev_q2: 0.0,
            prev_i2: 0.0,
            re: 0.0,
            im: 0.0,
            i1_odd_prev2: 0.0,
            i1_odd_prev3: 0.0,
            i1_even_prev2: 0.0,
            i1_even_prev3: 0.0,
            prev_phase: 0.0,
            mama: 0.0,
            fama: 0.0,
        }
    }

    /// The fast and slow limits.
    pub fn limits(&self) -> (f64, f64) {
        (self.fast, self.slow)
    }

    #[inline(always)]
    fn smooth_step(&mut self, x: f64) -> f64 {
        self.wma_sub += x;
        self.wma_sub -= self.trailing_wma;
        self.wma_sum += x * 4.0;
        // x[t-3]: the oldest of the last three values before x.
        let n = self.n;
        self.trailing_wma = self.last3[n % 3];
        let smoothed = self.wma_sum * 0.1;
        self.wma_sum -= self.wma_sub;
        smoothed
    }

    #[inline(always)]
    pub fn push2(&mut self, x: f64) -> Option<(f64, f64)> {
        let n = self.n;
        if n < 3 {
            self.wma_sub += x;
            self.wma_sum += x * (n as f64 + 1.0);
            self.last3[n % 3] = x;
            self.n += 1;
            self.today += 1;
            return None;
        }
        if n < 12 {
            self.smooth_step(x);
            self.last3[n % 3] = x;
            self.n += 1;
            self.today += 1;
            return None;
        }
        let adj = 0.075f64.mul_add(self.period, 0.54);
        let smoothed = self.smooth_step(x);
        self.last3[n % 3] = x;
        let hi = self.hilbert_idx;
        let tr2;
        if self.today % 2 == 0 {
            let e = 0;
            let det = hilbert(
                &mut self.det[e],
                &mut self.det_prev[e],
                &mut self.det_prev_in[e],
                hi,
                smoothed,
                adj,
            );
            let q1 = hilbert(
                &mut self.q1b[e],
                &mut self.q1_prev[e],
                &mut self.q1_prev_in[e],
                hi,
                det,
                adj,
            );
            let i1p3 = self.i1_even_prev3;
            let ji = hilbert(
                &mut self.jib[e],
                &mut self.ji_prev[e],
                &mut self.ji_prev_in[e],
                hi,
                i1p3,
                adj,
            );
            let jq = hilbert(
                &mut self.jqb[e],
                &mut self.jq_prev[e],
                &mut self.jq_prev_in[e],
                hi,
                q1,
                adj,
            );
            self.hilbert_idx += 1;
            if self.hilbert_idx == 3 {
                self.hilbert_idx = 0;
            }
            let q2 = 0.2f64.mul_add(q1 + ji, 0.8 * self.prev_q2);
            let i2 = 0.2f64.mul_add(i1p3 - jq, 0.8 * self.prev_i2);
            self.i1_odd_prev3 = self.i1_odd_prev2;
            self.i1_odd_prev2 = det;
            tr2 = if i1p3 != 0.0 {
                atan_sel::<true>(q1 / i1p3) * RAD2DEG
            } else {
                0.0
            };
            self.finish(x, q2, i2, tr2);
        } else {
            let o = 1;
            let det = hilbert(
                &mut self.det[o],
                &mut self.det_prev[o],
                &mut self.det_prev_in[o],
                hi,
                smoothed,
                adj,
            );
            let q1 = hilbert(
                &mut self.q1b[o],
                &mut self.q1_prev[o],
                &mut self.q1_prev_in[o],
                hi,
                det,
                adj,
            );
            let i1p3 = self.i1_odd_prev3;
            let ji = hilbert(
                &mut self.jib[o],
                &mut self.ji_prev[o],
                &mut self.ji_prev_in[o],
                hi,
                i1p3,
                adj,
            );
            let jq = hilbert(
                &mut self.jqb[o],
                &mut self.jq_prev[o],
                &mut self.jq_prev_in[o],
                hi,
                q1,
                adj,
            );
            let q2 = 0.2f64.mul_add(q1 + ji, 0.8 * self.prev_q2);
            let i2 = 0.2f64.mul_add(i1p3 - jq, 0.8 * self.prev_i2);
            self.i1_even_prev3 = self.i1_even_prev2;
            self.i1_even_prev2 = det;
            tr2 = if i1p3 != 0.0 {
                atan_sel::<true>(q1 / i1p3) * RAD2DEG
            } else {
                0.0
            };
            self.finish(x, q2, i2, tr2);
        }
        self.n += 1;
        self.today += 1;
        if n >= 32 {
            Some((self.mama, self.fama))
        } else {
            None
        }
    }

    #[inline(always)]
    fn finish(&mut self, x: f64, q2: f64, i2: f64, tr2: f64) {
        // TA-Lib's alpha: a phase change under 1 degree counts as 1
        // (alpha = fast), otherwise fast / change, at least slow. Written
        // with selects: the comparisons go either way from bar to bar
        // (mispredicted branches were a large part of MAMA's time); fast / 1
        // is fast exactly.
        let delta = self.prev_phase - tr2;
        self.prev_phase = tr2;
        let moved = delta > 1.0;
        let q = self.fast / if moved { delta } else { 1.0 };
        let mut t = if moved & (q < self.slow) {
            self.slow
        } else {
            q
        };
        self.mama = t * x + (1.0 - t) * self.mama;
        t *= 0.5;
        self.fama = t * self.mama + (1.0 - t) * self.fama;
        // the period's chain: multiply-adds from i2 and q2 to re and im
        let re_sum = i2.mul_add(self.prev_i2, q2 * self.prev_q2);
        let im_sum = i2.mul_add(self.prev_q2, -(q2 * self.prev_i2));
        self.re = 0.2f64.mul_add(re_sum, 0.8 * self.re);
        self.im = 0.2f64.mul_add(im_sum, 0.8 * self.im);
        self.prev_q2 = q2;
        self.prev_i2 = i2;
        let prev_period = self.period;
        if self.im != 0.0 && self.re != 0.0 {
            // 360 / (atan(im/re) in degrees)
            self.period = (360.0 / RAD2DEG) / atan(self.im / self.re);
        }
        // TA-Lib: within [0.67, 1.5] x the previous period, then within
        // [6, 50]. The bounds merged first (the same result while 0.67 x the
        // previous period is at most 50, and the period never leaves
        // [0, 50]): two selects on the chain instead of four.
        let (up, lo) = (1.5 * prev_period, 0.67 * prev_period);
        let up = if up > 50.0 { 50.0 } else { up };
        let lo = if lo < 6.0 { 6.0 } else { lo };
        let p = self.period;
        let p = if p > up { up } else { p };
        self.period = if p < lo { lo } else { p };
        self.period = 0.2f64.mul_add(self.period, 0.8 * prev_period);
    }
}

#[cfg(test)]
mod tests {
    use super::atan;

    /// Distance in units in the last place (same sign, finite).
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn atan_within_two_ulp_of_libm() {
        // a deterministic spread over every interval and far beyond
        let mut worst = 0;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..400_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let x = match i % 4 {
                0 => u * 2.2,                       // the table's range
                1 => (u * 60.0 - 30.0).exp(),       // 1e-13 .. 1e13
                2 => -(u * 2.2),                    // negative
                _ => (i as f64 / 16.0) + u * 1e-12, // near the centres
            };
            let (ours, libm) = (atan(x), x.atan());
            let d = ulps(ours, libm);
            assert!(d <= 2, "atan({x:e}): {ours:e} vs {libm:e} ({d} ulp)");
            worst = worst.max(d);
        }
        assert!(worst <= 2);
        assert_eq!(atan(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(atan(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(atan(f64::INFINITY), std::f64::consts::FRAC_PI_2);
        assert_eq!(atan(f64::NEG_INFINITY), -std::f64::consts::FRAC_PI_2);
        assert!(atan(f64::NAN).is_nan());
        // the edges between the table and the reciprocal
        for x in [
            2.0,
            2.0f64.next_up(),
            1.0 / 32.0,
            2.0 - 1.0 / 32.0,
            1e-300,
            1e300,
        ] {
            assert!(ulps(atan(x), x.atan()) <= 2, "{x:e}");
        }
    }
}
