//! Moving averages as O(1) state machines over one series, and the
//! building blocks the indicators share with them.
//!
//! Each average performs the same floating-point operations, in the same
//! order, as TA-Lib's batch function does for the same bar, so the stream
//! and the batch output agree bit for bit and agree with TA-Lib to rounding.
//!
//! One file a family: `num` (zero tests, branch-free selects), `window`
//! (ring buffer, sliding extreme), `basic` (SMA, SUM, EMA, WMA, DEMA, TEMA,
//! TRIMA), `kama`, `t3`, `mama`, `var` (windowed variance). This file holds
//! `Ma`, any of TA-Lib's nine average types, and `Delayed`.

use serde::{Deserialize, Serialize};

mod basic;
mod kama;
mod mama;
mod num;
mod t3;
mod var;
mod window;

pub use basic::{Dema, Ema, Sma, Sum, Tema, Trima, Wma};
pub use kama::{kama_coef, kama_fix, Kama, KAMA_CONST_MAX};
pub use mama::{atan, atan_sel, Mama};
pub use num::{big, dm_select, is_zero, is_zero_scaled, small, EPSILON};
pub use t3::T3;
pub use var::{flat_run, next_run, var_floor, Var, RESYNC};
pub use window::{Extreme, Ring};

/// Any of TA-Lib's nine moving-average types (`matype` 0..8).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Ma {
    Copy,
    Sma(Sma),
    Ema(Ema),
    Wma(Wma),
    Dema(Dema),
    Tema(Tema),
    Trima(Trima),
    Kama(Kama),
    Mama(Box<Mama>),
    T3(T3),
}

impl Ma {
    /// `parity`: index of the first bar this average sees (MAMA only).
    pub fn new(p: usize, matype: u32, parity: u64) -> Self {
        if p == 1 {
            return Ma::Copy;
        }
        match matype {
            1 => Ma::Ema(Ema::new(p)),
            2 => Ma::Wma(Wma::new(p)),
            3 => Ma::Dema(Dema::new(p)),
            4 => Ma::Tema(Tema::new(p)),
            5 => Ma::Trima(Trima::new(p)),
            6 => Ma::Kama(Kama::new(p)),
            7 => Ma::Mama(Box::new(Mama::new(0.5, 0.05, parity))),
            8 => Ma::T3(T3::new(p, 0.7)),
            _ => Ma::Sma(Sma::new(p)),
        }
    }

    pub fn lookback(p: usize, matype: u32) -> usize {
        if p == 1 {
            return 0;
        }
        match matype {
            3 => 2 * (p - 1),
            4 => 3 * (p - 1),
            6 => p,
            7 => 32,
            8 => 6 * (p - 1),
            _ => p - 1,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        match self {
            Ma::Copy => Some(x),
            Ma::Sma(s) => s.push(x),
            Ma::Ema(s) => s.push(x),
            Ma::Wma(s) => s.push(x),
            Ma::Dema(s) => s.push(x),
            Ma::Tema(s) => s.push(x),
            Ma::Trima(s) => s.push(x),
            Ma::Kama(s) => s.push(x),
            Ma::Mama(s) => s.push2(x).map(|v| v.0),
            Ma::T3(s) => s.push(x),
        }
    }
}

/// A moving average that ignores its first `skip` inputs: TA-Lib starts an
/// inner average later when another average of the same function needs a
/// longer warm-up (MACD's fast EMA, APO/PPO, MACDEXT).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delayed {
    pub skip: usize,
    pub ma: Ma,
}

impl Delayed {
    pub fn new(p: usize, matype: u32, skip: usize) -> Self {
        Delayed {
            skip,
            ma: Ma::new(p, matype, skip as u64),
        }
    }

    pub fn from_ma(ma: Ma, skip: usize) -> Self {
        Delayed { skip, ma }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        self.ma.push(x)
    }
}
