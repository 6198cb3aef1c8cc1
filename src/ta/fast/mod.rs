//! Specialised whole-array loops for fresh indicators over NaN-free data.
//!
//! Each loop performs exactly the floating-point operations of the
//! indicator's state machine, in the same order, so its output is bit for
//! bit the stream's; only the bookkeeping differs (plain locals and direct
//! array reads instead of ring buffers and per-bar warm-up checks).
//!
//! One file a family, as in `kernels`: `overlap` (with `kama`), `momentum`,
//! `directional`, `volatility`, `volume` and `stats`; `extremes` holds the
//! sliding highest/lowest values several families share, `common` the
//! small helpers of every loop. This file picks the loop for a kernel (and
//! holds STOCHRSI's, see there).

#![allow(clippy::needless_range_loop)] // index arithmetic mirrors the state machines

mod common;
mod directional;
mod extremes;
mod kama;
mod momentum;
mod overlap;
mod stats;
mod volatility;
mod volume;

use super::cols::{has_fma, Cols};
use super::ma::Ma;
use super::registry::AnyKernel;

/// Runs `k` with a specialised loop if it has one; false otherwise. `cols`
/// and `rows` start at the first bar (no NaN anywhere in the used inputs).
pub fn run(k: &AnyKernel, cols: &Cols<'_>, rows: &mut [&mut [f64]]) -> Option<bool> {
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
unsafe fn run_fma(k: &AnyKernel, cols: &Cols<'_>, rows: &mut [&mut [f64]]) -> Option<bool> {
    run_local(k, cols, rows)
}

/// The NaN flag is a local of this (inlined) frame, so the loops keep it in
/// a register.
#[inline(always)]
fn run_local(k: &AnyKernel, cols: &Cols<'_>, rows: &mut [&mut [f64]]) -> Option<bool> {
    let mut bad = false;
    let done = run_inner(k, cols, rows, &mut bad);
    done.then_some(bad)
}

/// The loop of `k`, if it has one (every loop is inlined here, so that it
/// is compiled with the CPU features `run_fma` enables).
#[inline(always)]
fn run_inner(k: &AnyKernel, cols: &Cols<'_>, rows: &mut [&mut [f64]], bad: &mut bool) -> bool {
    match k {
        AnyKernel::Ma(m) => overlap::ma(&m.ma, cols.c, bad, &mut *rows[0]),
        AnyKernel::Mama(m) => {
            let (fast, slow) = m.m.limits();
            let (a, b) = rows.split_at_mut(1);
            overlap::mama(cols.c, fast, slow, bad, &mut *a[0], &mut *b[0]);
            true
        }
        AnyKernel::LinReg(lr) => {
            stats::linreg(cols.c, lr.p, lr.slope, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Obv(_) => {
            volume::obv(cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Adosc(a) => {
            volume::adosc(a, cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Dmi(d) if d.p > 1 => {
            directional::dmi(d.mode, cols, d.p, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Trix(t) => {
            momentum::trix(t, cols.c, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Ultosc(u) => {
            momentum::ultosc(cols, u.p, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Sum(su) => {
            stats::sum(cols.c, su.s.period(), bad, &mut *rows[0]);
            true
        }
        AnyKernel::MaxMin(m) => {
            stats::max_min(cols.c, m.p, m.is_max(), bad, &mut *rows[0]);
            true
        }
        AnyKernel::Mid(m) => {
            overlap::mid(m, cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Aroon(a) => momentum::aroon(a, cols, bad, rows),
        AnyKernel::Mfi(m) => {
            momentum::mfi(cols, m.p, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Sar(k) if k.n == 0 => {
            overlap::sar(cols, k.acc, k.max, bad, &mut *rows[0]);
            true
        }
        AnyKernel::StochRsi(k) => {
            // STOCHRSI with an SMA %D: RSI (into the %D row, as scratch), %K
            // over it (sliding extremes) into the %K row, then %K's SMA into
            // the %D row: the state machines' values, stage by stage. Written
            // here rather than as a function in `momentum`: there, inlined all
            // the same, its sliding extremes compiled to compares and blends
            // instead of vmaxpd/vminpd, and STOCHRSI took 1.6x as long.
            let n = cols.n;
            let sp = match &k.ma {
                Ma::Sma(s) => s.period(),
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
                if let Some(v) = rsi.push(common::chk(bad, cols.c[i])) {
                    dout[i] = v;
                    first.get_or_insert(i);
                }
            }
            let Some(f0) = first else { return true };
            let fk = k.k.p;
            let mut unused = false;
            {
                let (rr, kk) = (&dout[f0..], &mut ko[f0..]);
                extremes::rolling2(rr, rr, fk, &mut unused, |i: usize, hh: f64, ll: f64| {
                    kk[i] = super::kernels::fastk_value(hh, ll, rr[i]);
                });
            }
            dout.fill(f64::NAN);
            let at = f0 + fk - 1;
            if at < n {
                overlap::sma(&ko[at..], sp, &mut unused, &mut dout[at..]);
                // %K shows from %D's first value on
                let shown = (at + sp - 1).min(n);
                ko[..shown].fill(f64::NAN);
            }
            true
        }
        AnyKernel::Willr(w) => {
            momentum::willr(w.p, cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Donchian(d) => volatility::donchian(d.p, cols, bad, rows),
        AnyKernel::Lag(l) => {
            momentum::lag(cols.c, l, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Atr(a) => {
            volatility::atr(cols, a.p, a.mode, bad, &mut *rows[0]);
            true
        }
        AnyKernel::TypPrice(_) => {
            stats::typprice(cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Bop(_) => {
            momentum::bop(cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Ad(_) => {
            volume::ad(cols, bad, &mut *rows[0]);
            true
        }
        AnyKernel::Stoch(st) => momentum::stoch(st, cols, bad, rows),
        AnyKernel::Bbands(bb) => overlap::bbands(bb, cols.c, bad, rows),
        AnyKernel::Var(v) => {
            stats::variance(v, cols.c, bad, &mut *rows[0]);
            true
        }
        _ => false,
    }
}
