//! Every indicator as an O(1)-per-bar state machine over OHLCV bars.
//!
//! The batch functions run these same machines over arrays, so a stream and
//! the batch output agree bit for bit at every bar, warm-up included.
//!
//! One file a family, as TA-Lib groups the functions: `overlap`,
//! `momentum` (the directional movement family apart, in `directional`),
//! `volatility`, `volume` and `stats` (statistics, math operators, price
//! transforms). `base` holds the bar, the outputs and the `Kernel` trait;
//! `concrete` the batch path's kernels with concrete averages.

mod base;
mod concrete;
mod directional;
mod momentum;
mod overlap;
mod stats;
mod volatility;
mod volume;

pub use base::{true_range, Bar, Kernel, Out, I_C, I_H, I_L, I_O, I_V, MAXOUT};
pub use concrete::{
    ConcreteAverage, ConcreteBbands, ConcreteMa, ConcretePriceOscillator, ConcreteStoch, MacdEma,
};
pub use directional::{di_value, dx_value, Dmi};
pub use momentum::{
    bop_value, fastk_value, mfi_value, money_flow, ultosc_empty, ultosc_terms, ultosc_value,
    willr_value, Aroon, Bop, Cci, FastK, Lag, Macd, Mfi, Rsi, RsiKernel, Stoch, StochRsi, Trix,
    Ultosc, Willr,
};
pub use overlap::{Bbands, DelayedVar, Ichimoku, MaKernel, MamaKernel, Mid, Sar};
pub use stats::{LinReg, MaxMin, SumKernel, TypPrice, VarKernel};
pub use volatility::{atr_powers, wilder_step, Atr, Donchian, Keltner};
pub use volume::{ad_inc, ema_two, Ad, AdSum, Adosc, Obv, Vwap};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ta::ma::{Ring, Var};

    fn bar(x: f64) -> Bar {
        Bar {
            o: x,
            h: x,
            l: x,
            c: x,
            v: 1000.0,
        }
    }

    /// 200 bars of a walk on a 0.01 grid without a zero move, then `flat`
    /// bars at its last price.
    fn walk_then_flat(flat: usize) -> Vec<f64> {
        let mut x = 100.0f64;
        let mut out = Vec::new();
        for i in 0..200u64 {
            let up = (i.wrapping_mul(0x9e37_79b9) >> 7) % 2 == 0;
            x = ((x + if up { 0.01 } else { -0.01 }) * 100.0).round() / 100.0;
            out.push(x);
        }
        out.extend(std::iter::repeat_n(x, flat));
        out
    }

    fn run(k: &mut impl Kernel, xs: &[f64]) -> Vec<Option<Out>> {
        xs.iter().map(|&x| k.next(&bar(x))).collect()
    }

    #[test]
    fn cci_of_a_flat_window_is_zero() {
        for p in [2, 3, 14] {
            let mut k = Cci {
                p,
                buf: vec![0.0; p],
                idx: 0,
                n: 0,
            };
            let out = run(&mut k, &walk_then_flat(300));
            for o in &out[200 + p..] {
                assert_eq!(o.map(|o| o[0]), Some(0.0), "period {p}");
            }
        }
    }

    #[test]
    fn rsi_cmo_keep_their_ratio_through_a_flat_stretch() {
        let xs = walk_then_flat(2000);
        for cmo in [false, true] {
            let mut r = Rsi::new(14, cmo);
            let out: Vec<f64> = xs.iter().filter_map(|&x| r.push(x)).collect();
            let (before, last) = (out[199 - 14], out[out.len() - 1]);
            assert!(last != 0.0 && (last - before).abs() <= 1e-9 * before.abs());
        }
        let mut r = Rsi::new(14, false);
        assert!(std::iter::repeat_n(7.0, 50)
            .filter_map(|x| r.push(x))
            .all(|v| v == 0.0));
    }

    #[test]
    fn fastk_and_willr_dead_zone_and_clamp() {
        let (hh, ll) = (1e6 + 1e-8, 1e6); // 1e-14 of the level, within the zone
        assert_eq!(fastk_value(hh, ll, hh), 0.0);
        assert_eq!(willr_value(hh, ll, ll), 0.0);
        let hh = 1e6 + 1e-7;
        assert_eq!(fastk_value(hh, ll, hh), 100.0);
        assert_eq!(willr_value(hh, ll, ll), -100.0);
        assert_eq!(willr_value(101.0, 100.0, 102.0), 0.0); // close above the range
        assert_eq!(willr_value(101.0, 100.0, 99.0), -100.0);
        assert_eq!(fastk_value(0.0, 0.0, 0.0), 0.0);
    }

    #[test]
    fn variance_of_a_flat_window_is_exactly_zero() {
        for p in [2, 3, 5, 14] {
            for stddev in [false, true] {
                let mut v = VarKernel {
                    var: Var::new(p),
                    dev: 1.0,
                    stddev,
                };
                let out = run(&mut v, &walk_then_flat(200));
                for o in &out[200 + p..] {
                    assert_eq!(o.map(|o| o[0]), Some(0.0), "period {p}");
                }
            }
        }
    }

    #[test]
    fn dmi_ratios_hold_at_tiny_prices() {
        // a walk scaled to 1e-16: true ranges far below 1e-14
        let xs: Vec<f64> = walk_then_flat(0).iter().map(|x| x * 1e-18).collect();
        for mode in [2, 4, 5] {
            let mut d = Dmi::new(14, mode);
            let mut big = Dmi::new(14, mode);
            for (i, &x) in xs.iter().enumerate() {
                let b = Bar {
                    h: x * 1.001,
                    l: x * 0.999,
                    ..bar(x)
                };
                let s = 1e18;
                let b2 = Bar {
                    h: b.h * s,
                    l: b.l * s,
                    c: b.c * s,
                    ..b
                };
                let (a, e) = (d.next(&b), big.next(&b2));
                if let (Some(a), Some(e)) = (a, e) {
                    assert!(
                        (a[0] - e[0]).abs() <= 1e-9 * e[0].abs().max(1.0),
                        "{mode} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn vwap_without_volume_keeps_the_last_value() {
        for p in [0, 3] {
            let mut k = Vwap {
                p,
                n: 0,
                pv: 0.0,
                vol: 0.0,
                ring_pv: Ring::new(p),
                ring_v: Ring::new(p),
                last: 0.0,
                null_run: 0,
            };
            let vols = [0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0];
            let out: Vec<Option<f64>> = vols
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    k.next(&Bar {
                        v,
                        ..bar(10.0 + i as f64)
                    })
                    .map(|o| o[0])
                })
                .collect();
            let shown: Vec<f64> = out.into_iter().flatten().collect();
            let want: &[f64] = if p == 0 {
                &[0.0, 0.0, 0.0, 13.0, 13.0, 13.0, 13.0, 13.0]
            } else {
                &[0.0, 13.0, 13.0, 13.0, 13.0, 13.0]
            };
            assert_eq!(shown, want, "period {p}");
        }
    }
}
