//! The constructor of each indicator's state machine from the function
//! table's parameters, the enum that holds any of them, and lookbacks.

use serde::{Deserialize, Serialize};

use super::kernels::*;
use super::ma::{Delayed, Ema, Extreme, Ma, Mama, Ring, Sum, Var};
use super::specs::{check_params, Spec};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AnyKernel {
    Ma(MaKernel),
    Mama(MamaKernel),
    Bbands(Box<Bbands>),
    Sar(Sar),
    Mid(Mid),
    Rsi(RsiKernel),
    Macd(Box<Macd>),
    Stoch(Box<Stoch>),
    StochRsi(Box<StochRsi>),
    Dmi(Dmi),
    Cci(Cci),
    Mfi(Mfi),
    Lag(Lag),
    Willr(Willr),
    Aroon(Aroon),
    Ultosc(Ultosc),
    Trix(Trix),
    Bop(Bop),
    Atr(Atr),
    Obv(Obv),
    Ad(Ad),
    Adosc(Adosc),
    Var(VarKernel),
    LinReg(LinReg),
    MaxMin(MaxMin),
    Sum(SumKernel),
    TypPrice(TypPrice),
    Vwap(Vwap),
    Keltner(Box<Keltner>),
    Donchian(Donchian),
    Ichimoku(Box<Ichimoku>),
}

/// Runs `$body` with `$k` bound to the concrete kernel inside `$any`.
#[macro_export]
macro_rules! with_kernel {
    ($any:expr, $k:ident => $body:expr) => {
        match $any {
            $crate::ta::registry::AnyKernel::Ma($k) => $body,
            $crate::ta::registry::AnyKernel::Mama($k) => $body,
            $crate::ta::registry::AnyKernel::Bbands($k) => $body,
            $crate::ta::registry::AnyKernel::Sar($k) => $body,
            $crate::ta::registry::AnyKernel::Mid($k) => $body,
            $crate::ta::registry::AnyKernel::Rsi($k) => $body,
            $crate::ta::registry::AnyKernel::Macd($k) => $body,
            $crate::ta::registry::AnyKernel::Stoch($k) => $body,
            $crate::ta::registry::AnyKernel::StochRsi($k) => $body,
            $crate::ta::registry::AnyKernel::Dmi($k) => $body,
            $crate::ta::registry::AnyKernel::Cci($k) => $body,
            $crate::ta::registry::AnyKernel::Mfi($k) => $body,
            $crate::ta::registry::AnyKernel::Lag($k) => $body,
            $crate::ta::registry::AnyKernel::Willr($k) => $body,
            $crate::ta::registry::AnyKernel::Aroon($k) => $body,
            $crate::ta::registry::AnyKernel::Ultosc($k) => $body,
            $crate::ta::registry::AnyKernel::Trix($k) => $body,
            $crate::ta::registry::AnyKernel::Bop($k) => $body,
            $crate::ta::registry::AnyKernel::Atr($k) => $body,
            $crate::ta::registry::AnyKernel::Obv($k) => $body,
            $crate::ta::registry::AnyKernel::Ad($k) => $body,
            $crate::ta::registry::AnyKernel::Adosc($k) => $body,
            $crate::ta::registry::AnyKernel::Var($k) => $body,
            $crate::ta::registry::AnyKernel::LinReg($k) => $body,
            $crate::ta::registry::AnyKernel::MaxMin($k) => $body,
            $crate::ta::registry::AnyKernel::Sum($k) => $body,
            $crate::ta::registry::AnyKernel::TypPrice($k) => $body,
            $crate::ta::registry::AnyKernel::Vwap($k) => $body,
            $crate::ta::registry::AnyKernel::Keltner($k) => $body,
            $crate::ta::registry::AnyKernel::Donchian($k) => $body,
            $crate::ta::registry::AnyKernel::Ichimoku($k) => $body,
        }
    };
}

impl AnyKernel {
    #[inline]
    pub fn next(&mut self, b: &Bar) -> Option<Out> {
        with_kernel!(self, k => k.next(b))
    }
}

fn ma_k(p: usize, matype: u32) -> AnyKernel {
    AnyKernel::Ma(MaKernel {
        ma: Ma::new(p, matype, 0),
    })
}

fn ema_exact(p: usize) -> Ma {
    Ma::Ema(Ema::new(p))
}

/// Builds the state machine of `name` with validated parameters.
pub fn build(s: &Spec, params: &[f64]) -> Result<AnyKernel, String> {
    check_params(s, params)?;
    let pi = |i: usize| params[i] as usize;
    let pm = |i: usize| params[i] as u32;
    let k = match s.name {
        "SMA" => ma_k(pi(0), 0),
        "EMA" => ma_k(pi(0), 1),
        "WMA" => ma_k(pi(0), 2),
        "DEMA" => ma_k(pi(0), 3),
        "TEMA" => ma_k(pi(0), 4),
        "TRIMA" => ma_k(pi(0), 5),
        "KAMA" => ma_k(pi(0), 6),
        "T3" => AnyKernel::Ma(MaKernel {
            ma: if pi(0) == 1 {
                Ma::Copy
            } else {
                Ma::T3(super::ma::T3::new(pi(0), params[1]))
            },
        }),
        "MA" => ma_k(pi(0), pm(1)),
        "MAMA" => AnyKernel::Mama(MamaKernel {
            m: Box::new(Mama::new(params[0], params[1], 0)),
        }),
        "BBANDS" => {
            let (p, mt) = (pi(0), pm(3));
            let lb = Ma::lookback(p, mt);
            AnyKernel::Bbands(Box::new(Bbands {
                ma: Ma::new(p, mt, 0),
                sma: mt == 0,
                ring: Ring::new(p),
                n: 0,
                p,
                s2: 0.0,
                var: DelayedVar {
                    skip: lb.saturating_sub(p - 1),
                    var: Var::new(p),
                },
                up: params[1],
                dn: params[2],
            }))
        }
        "SAR" => AnyKernel::Sar(Sar::new(params[0], params[1])),
        "MIDPOINT" | "MIDPRICE" => AnyKernel::Mid(Mid {
            hi: Extreme::new(pi(0), true),
            lo: Extreme::new(pi(0), false),
            n: 0,
            p: pi(0),
            price: s.name == "MIDPRICE",
        }),
        "RSI" => AnyKernel::Rsi(RsiKernel {
            r: Rsi::new(pi(0), false),
        }),
        "CMO" => AnyKernel::Rsi(RsiKernel {
            r: Rsi::new(pi(0), true),
        }),
        "MACD" => {
            let (mut f, mut sl) = (pi(0), pi(1));
            if sl < f {
                std::mem::swap(&mut f, &mut sl);
            }
            AnyKernel::Macd(Box::new(Macd {
                fast: Delayed::from_ma(ema_exact(f), sl - f),
                slow: Delayed::from_ma(ema_exact(sl), 0),
                signal: Some(ema_exact(pi(2))),
                mode: 0,
            }))
        }
        "MACDEXT" => {
            let (mut f, mut fm, mut sl, mut sm) = (pi(0), pm(1), pi(2), pm(3));
            if sl < f {
                std::mem::swap(&mut f, &mut sl);
                std::mem::swap(&mut fm, &mut sm);
            }
            let (lf, ls) = (Ma::lookback(f, fm), Ma::lookback(sl, sm));
            let largest = lf.max(ls);
            AnyKernel::Macd(Box::new(Macd {
                fast: Delayed::new(f, fm, largest - lf),
                slow: Delayed::new(sl, sm, largest - ls),
                signal: Some(Ma::new(pi(4), pm(5), 0)),
                mode: 0,
            }))
        }
        "APO" | "PPO" => {
            let (mut f, mut sl, mt) = (pi(0), pi(1), pm(2));
            if sl < f {
                std::mem::swap(&mut f, &mut sl);
            }
            // TA-Lib 0.8 starts both averages on the first bar (unlike
            // MACD, whose fast EMA starts late to align with the slow one).
            AnyKernel::Macd(Box::new(Macd {
                fast: Delayed::new(f, mt, 0),
                slow: Delayed::new(sl, mt, 0),
                signal: None,
                mode: if s.name == "APO" { 1 } else { 2 },
            }))
        }
        "STOCH" => AnyKernel::Stoch(Box::new(Stoch {
            k: FastK::new(pi(0)),
            ma1: Ma::new(pi(1), pm(2), 0),
            ma2: Some(Ma::new(pi(3), pm(4), 0)),
        })),
        "STOCHF" => AnyKernel::Stoch(Box::new(Stoch {
            k: FastK::new(pi(0)),
            ma1: Ma::new(pi(1), pm(2), 0),
            ma2: None,
        })),
        "STOCHRSI" => AnyKernel::StochRsi(Box::new(StochRsi {
            rsi: Rsi::new(pi(0), false),
            k: FastK::new(pi(1)),
            ma: Ma::new(pi(2), pm(3), 0),
        })),
        "PLUS_DM" => AnyKernel::Dmi(Dmi::new(pi(0), 0)),
        "MINUS_DM" => AnyKernel::Dmi(Dmi::new(pi(0), 1)),
        "PLUS_DI" => AnyKernel::Dmi(Dmi::new(pi(0), 2)),
        "MINUS_DI" => AnyKernel::Dmi(Dmi::new(pi(0), 3)),
        "DX" => AnyKernel::Dmi(Dmi::new(pi(0), 4)),
        "ADX" => AnyKernel::Dmi(Dmi::new(pi(0), 5)),
        "ADXR" => AnyKernel::Dmi(Dmi::new(pi(0), 6)),
        "CCI" => AnyKernel::Cci(Cci {
            p: pi(0),
            buf: vec![0.0; pi(0)],
            idx: 0,
            n: 0,
        }),
        "MFI" => AnyKernel::Mfi(Mfi {
            p: pi(0),
            n: 0,
            prev: 0.0,
            pos: Ring::new(pi(0)),
            neg: Ring::new(pi(0)),
            pos_sum: 0.0,
            neg_sum: 0.0,
            null_run: 0,
        }),
        "MOM" | "ROC" | "ROCP" => AnyKernel::Lag(Lag {
            ring: Ring::new(pi(0)),
            n: 0,
            p: pi(0),
            mode: match s.name {
                "MOM" => 0,
                "ROC" => 1,
                _ => 2,
            },
        }),
        "WILLR" => AnyKernel::Willr(Willr {
            hi: Extreme::new(pi(0), true),
            lo: Extreme::new(pi(0), false),
            n: 0,
            p: pi(0),
        }),
        "AROON" | "AROONOSC" => AnyKernel::Aroon(Aroon {
            hi: Extreme::new(pi(0) + 1, true),
            lo: Extreme::new(pi(0) + 1, false),
            n: 0,
            p: pi(0),
            osc: s.name == "AROONOSC",
        }),
        "ULTOSC" => {
            let mut p = [pi(0), pi(1), pi(2)];
            p.sort_unstable();
            AnyKernel::Ultosc(Ultosc {
                p,
                n: 0,
                prev_c: 0.0,
                a: Ring::new(p[2]),
                bterm: Ring::new(p[2]),
                sa: [0.0; 3],
                sb: [0.0; 3],
                null_run: 0,
            })
        }
        "TRIX" => AnyKernel::Trix(Trix {
            e1: Ema::new(pi(0)),
            e2: Ema::new(pi(0)),
            e3: Ema::new(pi(0)),
            prev: None,
        }),
        "BOP" => AnyKernel::Bop(Bop),
        "TRANGE" | "ATR" | "NATR" => {
            let p = if s.params.is_empty() { 1 } else { pi(0) };
            AnyKernel::Atr(Atr::new(
                p,
                match s.name {
                    "TRANGE" => 0,
                    "ATR" => 1,
                    _ => 2,
                },
            ))
        }
        "OBV" => AnyKernel::Obv(Obv {
            started: false,
            obv: 0.0,
            prev: 0.0,
        }),
        "AD" => AnyKernel::Ad(Ad {
            ad: AdSum::default(),
        }),
        "ADOSC" => {
            let (f, sl) = (pi(0), pi(1));
            AnyKernel::Adosc(Adosc {
                ad: AdSum::default(),
                n: 0,
                lookback: f.max(sl) - 1,
                fk: 2.0 / ((f + 1) as f64),
                sk: 2.0 / ((sl + 1) as f64),
                fast: [0.0; 2],
                slow: [0.0; 2],
            })
        }
        "STDDEV" | "VAR" => AnyKernel::Var(VarKernel {
            var: Var::new(pi(0)),
            dev: params[1],
            stddev: s.name == "STDDEV",
        }),
        "LINEARREG" | "LINEARREG_SLOPE" => {
            AnyKernel::LinReg(LinReg::new(pi(0), s.name == "LINEARREG_SLOPE"))
        }
        "MAX" | "MIN" => AnyKernel::MaxMin(MaxMin {
            e: Extreme::new(pi(0), s.name == "MAX"),
            n: 0,
            p: pi(0),
        }),
        "SUM" => AnyKernel::Sum(SumKernel { s: Sum::new(pi(0)) }),
        "TYPPRICE" => AnyKernel::TypPrice(TypPrice),
        "VWAP" => AnyKernel::Vwap(Vwap {
            p: pi(0),
            n: 0,
            pv: 0.0,
            vol: 0.0,
            ring_pv: Ring::new(pi(0)),
            ring_v: Ring::new(pi(0)),
            last: 0.0,
            null_run: 0,
        }),
        "KELTNER" => AnyKernel::Keltner(Box::new(Keltner {
            ma: Ma::new(pi(0), pm(3), 0),
            atr: Atr::new(pi(1), 1),
            mult: params[2],
        })),
        "DONCHIAN" => AnyKernel::Donchian(donchian(pi(0))),
        "ICHIMOKU" => AnyKernel::Ichimoku(Box::new(Ichimoku {
            t: donchian(pi(0)),
            k: donchian(pi(1)),
            s: donchian(pi(2)),
            n: 0,
            lookback: pi(0).max(pi(1)).max(pi(2)) - 1,
        })),
        other => return Err(format!("unknown indicator {other:?}")),
    };
    Ok(k)
}

fn donchian(p: usize) -> Donchian {
    Donchian {
        hi: Extreme::new(p, true),
        lo: Extreme::new(p, false),
        n: 0,
        p,
    }
}

/// Number of bars before the first output (TA-Lib's lookback), found by
/// running the state machine on a synthetic series.
pub fn lookback(s: &Spec, params: &[f64]) -> Result<usize, String> {
    let mut k = build(s, params)?;
    let mut i = 0usize;
    loop {
        let x = 100.0 + (i % 7) as f64;
        let b = Bar {
            o: x,
            h: x + 1.0,
            l: x - 1.0,
            c: x,
            v: 1000.0,
        };
        if k.next(&b).is_some() {
            return Ok(i);
        }
        i += 1;
        if i > 10_000_000 {
            return Err(format!("{}: no output after 10,000,000 bars", s.name));
        }
    }
}
