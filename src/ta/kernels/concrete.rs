//! The batch path's kernels: the common indicators with their averages as
//! concrete types instead of `Ma` (no dispatch per bar). The arithmetic is
//! the enum-based kernels', so the values are the same.

use super::base::{o1, Bar, Kernel, Out};
use super::momentum::FastK;
use super::overlap::{bands, DelayedVar};
use crate::ta::ma::{is_zero, Dema, Ema, Kama, Mama, Sma, Tema, Trima, Wma, T3};

/// A moving average of one series, as a concrete type (no per-bar dispatch).
pub trait ConcreteAverage {
    fn push(&mut self, x: f64) -> Option<f64>;
}

macro_rules! concrete_average {
    ($($t:ty),*) => {$(
        impl ConcreteAverage for $t {
            #[inline(always)]
            fn push(&mut self, x: f64) -> Option<f64> {
                <$t>::push(self, x)
            }
        }
    )*};
}

concrete_average!(Sma, Ema, Wma, Dema, Tema, Trima, Kama, T3);

impl ConcreteAverage for Mama {
    #[inline(always)]
    fn push(&mut self, x: f64) -> Option<f64> {
        self.push2(x).map(|v| v.0)
    }
}

/// Runs a concrete average over the close.
#[derive(Clone)]
pub struct ConcreteMa<S: ConcreteAverage>(pub S);

impl<S: ConcreteAverage> Kernel for ConcreteMa<S> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.0.push(b.c).map(o1)
    }
}

/// MACD with its three EMAs as concrete types (the batch path).
#[derive(Clone)]
pub struct MacdEma {
    pub skip: usize,
    pub fast: Ema,
    pub slow: Ema,
    pub sig: Ema,
}

impl Kernel for MacdEma {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let f = if self.skip > 0 {
            self.skip -= 1;
            None
        } else {
            self.fast.push(b.c)
        };
        let s = self.slow.push(b.c);
        let (f, s) = (f?, s?);
        let m = f - s;
        let sig = self.sig.push(m)?;
        Some([m, sig, m - sig, 0.0])
    }
}

/// APO/PPO with concrete averages (the batch path).
#[derive(Clone)]
pub struct ConcretePriceOscillator<A: ConcreteAverage> {
    pub fast: A,
    pub slow: A,
    pub ppo: bool,
}

impl<A: ConcreteAverage> Kernel for ConcretePriceOscillator<A> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let f = self.fast.push(b.c);
        let s = self.slow.push(b.c);
        let (f, s) = (f?, s?);
        if self.ppo {
            Some(o1(if !is_zero(s) {
                ((f - s) / s) * 100.0
            } else {
                0.0
            }))
        } else {
            Some(o1(f - s))
        }
    }
}

/// STOCH / STOCHF with concrete averages (the batch path).
#[derive(Clone)]
pub struct ConcreteStoch<A: ConcreteAverage, B: ConcreteAverage> {
    pub k: FastK,
    pub ma1: A,
    pub ma2: Option<B>,
}

impl<A: ConcreteAverage, B: ConcreteAverage> Kernel for ConcreteStoch<A, B> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let k = self.k.push(b.h, b.l, b.c)?;
        let a = self.ma1.push(k)?;
        match &mut self.ma2 {
            Some(m) => {
                let d = m.push(a)?;
                Some([a, d, 0.0, 0.0])
            }
            None => Some([k, a, 0.0, 0.0]),
        }
    }
}

/// BBANDS with a concrete middle average (the batch path).
#[derive(Clone)]
pub struct ConcreteBbands<A: ConcreteAverage> {
    pub ma: A,
    pub var: DelayedVar,
    pub up: f64,
    pub dn: f64,
}

impl<A: ConcreteAverage> Kernel for ConcreteBbands<A> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let x = b.c;
        let v = self.var.push(x);
        let mid = self.ma.push(x)?;
        let v = v?;
        Some(bands(mid, v, self.up, self.dn))
    }
}
