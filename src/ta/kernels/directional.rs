//! The directional movement family: PLUS_DM, MINUS_DM, PLUS_DI, MINUS_DI,
//! DX, ADX and ADXR.

use serde::{Deserialize, Serialize};

use super::base::{o1, true_range, Bar, Kernel, Out};
use crate::ta::ma::{is_zero, Ring};

/// DX from the smoothed +DM, -DM and true range, or None where TA-Lib has
/// none (DX then repeats its last value, ADX skips the bar): a true range
/// of exactly 0 (a sum of non-negative ranges has no rounding residue, and
/// after a move it only decays, so the ratios hold through a flat stretch at
/// any price level), or +DI + -DI inside TA-Lib's absolute 1e-14 band (it
/// is in percent, whatever the prices' scale).
#[inline(always)]
pub fn dx_value(pdm: f64, mdm: f64, tr: f64) -> Option<f64> {
    if tr == 0.0 {
        return None;
    }
    let minus = 100.0 * (mdm / tr);
    let plus = 100.0 * (pdm / tr);
    let s = minus + plus;
    if is_zero(s) {
        return None;
    }
    Some(100.0 * ((minus - plus).abs() / s))
}

/// +DI or -DI from the smoothed movement and true range: 0 where the true
/// range is exactly 0 (see `dx_value`).
#[inline(always)]
pub fn di_value(dm: f64, tr: f64) -> f64 {
    if tr != 0.0 {
        100.0 * (dm / tr)
    } else {
        0.0
    }
}

/// The directional movement family: PLUS_DM, MINUS_DM, PLUS_DI, MINUS_DI,
/// DX, ADX, ADXR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dmi {
    pub p: usize,
    pub pf: f64,
    /// 0 +DM, 1 -DM, 2 +DI, 3 -DI, 4 DX, 5 ADX, 6 ADXR.
    pub mode: u8,
    pub n: usize,
    pub prev_h: f64,
    pub prev_l: f64,
    pub prev_c: f64,
    pub pdm: f64,
    pub mdm: f64,
    pub tr: f64,
    pub last_dx: f64,
    pub sum_dx: f64,
    pub adx: f64,
    pub adx_hist: Ring,
}

impl Dmi {
    pub fn new(p: usize, mode: u8) -> Self {
        Dmi {
            p,
            pf: p as f64,
            mode,
            n: 0,
            prev_h: 0.0,
            prev_l: 0.0,
            prev_c: 0.0,
            pdm: 0.0,
            mdm: 0.0,
            tr: 0.0,
            last_dx: 0.0,
            sum_dx: 0.0,
            adx: 0.0,
            adx_hist: Ring::new(p.max(2) - 1),
        }
    }

    #[inline(always)]
    fn dx_value(&self) -> Option<f64> {
        dx_value(self.pdm, self.mdm, self.tr)
    }

    /// `m`: index of this bar (the first bar is 0).
    #[inline(always)]
    fn adx_step(&mut self, m: usize) -> Option<f64> {
        let p = self.p;
        if m < 2 * p {
            // bars p ..= 2p-1 accumulate the first DX values
            if let Some(dx) = self.dx_value() {
                self.sum_dx += dx;
            }
            if m < 2 * p - 1 {
                return None;
            }
            self.adx = self.sum_dx / self.pf;
            return Some(self.adx);
        }
        if let Some(dx) = self.dx_value() {
            self.adx = self
                .adx
                .mul_add((self.pf - 1.0) / self.pf, dx * (1.0 / self.pf));
        }
        Some(self.adx)
    }
}

impl Kernel for Dmi {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (h, l, c) = (b.h, b.l, b.c);
        if self.n == 0 {
            self.prev_h = h;
            self.prev_l = l;
            self.prev_c = c;
            self.n = 1;
            return None;
        }
        let diff_p = h - self.prev_h;
        self.prev_h = h;
        let diff_m = self.prev_l - l;
        self.prev_l = l;
        let p = self.p;
        let dm_only = self.mode <= 1;
        // Period 1 for DM/DI: the one-bar values, no smoothing.
        if p == 1 && self.mode <= 3 {
            self.n += 1;
            let out = match self.mode {
                0 => {
                    if diff_p > 0.0 && diff_p > diff_m {
                        diff_p
                    } else {
                        0.0
                    }
                }
                1 => {
                    if diff_m > 0.0 && diff_p < diff_m {
                        diff_m
                    } else {
                        0.0
                    }
                }
                _ => {
                    let tr = true_range(h, l, self.prev_c);
                    self.prev_c = c;
                    let dm = if self.mode == 2 {
                        if diff_p > 0.0 && diff_p > diff_m {
                            diff_p
                        } else {
                            0.0
                        }
                    } else if diff_m > 0.0 && diff_p < diff_m {
                        diff_m
                    } else {
                        0.0
                    };
                    if dm > 0.0 && tr != 0.0 {
                        dm / tr
                    } else {
                        0.0
                    }
                }
            };
            return Some(o1(out));
        }
        let m = self.n; // index of this bar
        self.n += 1;
        if m < p {
            // initial sums over bars 1..p-1 (DM: then output at p-1)
            if diff_m > 0.0 && diff_p < diff_m {
                self.mdm += diff_m;
            } else if diff_p > 0.0 && diff_p > diff_m {
                self.pdm += diff_p;
            }
            if !dm_only {
                self.tr += true_range(h, l, self.prev_c);
                self.prev_c = c;
            }
            if dm_only && m == p - 1 {
                return Some(o1(if self.mode == 0 { self.pdm } else { self.mdm }));
            }
            return None;
        }
        let c1 = (self.pf - 1.0) / self.pf;
        let (mut dm_m, mut dm_p) = (0.0, 0.0);
        if diff_m > 0.0 && diff_p < diff_m {
            dm_m = diff_m;
        } else if diff_p > 0.0 && diff_p > diff_m {
            dm_p = diff_p;
        }
        self.mdm = self.mdm.mul_add(c1, dm_m);
        self.pdm = self.pdm.mul_add(c1, dm_p);
        if dm_only {
            return Some(o1(if self.mode == 0 { self.pdm } else { self.mdm }));
        }
        let tr = true_range(h, l, self.prev_c);
        self.tr = self.tr.mul_add(c1, tr);
        self.prev_c = c;
        match self.mode {
            2 | 3 => {
                let dm = if self.mode == 2 { self.pdm } else { self.mdm };
                Some(o1(di_value(dm, self.tr)))
            }
            4 => {
                let v = match self.dx_value() {
                    Some(v) => v,
                    None => {
                        if m == p {
                            0.0
                        } else {
                            self.last_dx
                        }
                    }
                };
                self.last_dx = v;
                Some(o1(v))
            }
            5 => self.adx_step(m).map(o1),
            _ => {
                let a = self.adx_step(m)?;
                // ADXR: mean of ADX now and p-1 bars ago.
                let full = self.adx_hist.is_full();
                let old = self.adx_hist.push(a);
                if !full {
                    return None;
                }
                Some(o1((a + old) / 2.0))
            }
        }
    }
}
