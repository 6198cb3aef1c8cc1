//! The directional movement family over whole arrays (PLUS_DM, MINUS_DM,
//! PLUS_DI, MINUS_DI, DX, ADX, ADXR), for period > 1.

use super::common::{chk, true_range};
use crate::ta::cols::Cols;

/// The indicator of `mode` (as in `Dmi`), each mode a loop of its own.
#[inline(always)]
pub(super) fn dmi(mode: u8, c: &Cols<'_>, p: usize, bad: &mut bool, out: &mut [f64]) {
    match mode {
        0 => dmi_mode::<0>(c, p, bad, out),
        1 => dmi_mode::<1>(c, p, bad, out),
        2 => dmi_mode::<2>(c, p, bad, out),
        3 => dmi_mode::<3>(c, p, bad, out),
        4 => dmi_mode::<4>(c, p, bad, out),
        5 => dmi_mode::<5>(c, p, bad, out),
        _ => dmi_mode::<6>(c, p, bad, out),
    }
}

/// The directional movement family for period > 1 (modes as in `Dmi`).
#[inline(always)]
fn dmi_mode<const MODE: u8>(c: &Cols<'_>, p: usize, bad: &mut bool, out: &mut [f64]) {
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
    use crate::ta::kernels::{di_value, dx_value};
    for m in 1..n {
        let (h, l) = (chk(bad, c.h[m]), chk(bad, c.l[m]));
        let cl = if mode > 1 { chk(bad, c.c[m]) } else { c.c[m] };
        let diff_p = h - prev_h;
        prev_h = h;
        let diff_m = prev_l - l;
        prev_l = l;
        // Branch-free selection of the one-bar movements (same values as
        // the state machine's if / else-if).
        let (dm_p, dm_m) = crate::ta::ma::dm_select(diff_p, diff_m);
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
