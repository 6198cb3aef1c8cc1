//! Statistics, math operators and price transforms: VAR/STDDEV,
//! LINEARREG/LINEARREG_SLOPE, MAX/MIN, SUM and TYPPRICE.

use serde::{Deserialize, Serialize};

use super::base::{o1, Bar, Kernel, Out};
use crate::ta::ma::{Extreme, Ring, Sum, Var};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VarKernel {
    pub var: Var,
    pub dev: f64,
    pub stddev: bool,
}

impl Kernel for VarKernel {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let v = self.var.push(b.c)?;
        if !self.stddev {
            return Some(o1(v));
        }
        Some(o1(if v > 0.0 { v.sqrt() * self.dev } else { 0.0 }))
    }
}

/// LINEARREG and LINEARREG_SLOPE with running sums of y and age·y, recomputed
/// exactly (TA-Lib's loop) every 64 bars.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinReg {
    pub p: usize,
    pub ring: Ring,
    pub n: usize,
    pub slope: bool,
    pub sum_y: f64,
    pub sum_xy: f64,
    pub since: usize,
}

impl LinReg {
    pub fn new(p: usize, slope: bool) -> Self {
        LinReg {
            p,
            ring: Ring::new(p),
            n: 0,
            slope,
            sum_y: 0.0,
            sum_xy: 0.0,
            since: 0,
        }
    }

    #[inline(always)]
    fn exact(&mut self) {
        let mut sum_xy = 0.0;
        let mut sum_y = 0.0;
        let mut i = self.p;
        while i != 0 {
            i -= 1;
            let v = self.ring.back(i);
            sum_y += v;
            sum_xy += (i as f64) * v;
        }
        self.sum_y = sum_y;
        self.sum_xy = sum_xy;
        self.since = 0;
    }
}

impl Kernel for LinReg {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let y = b.c;
        let pf = self.p as f64;
        if self.n < self.p {
            self.ring.push(y);
            self.n += 1;
            if self.n < self.p {
                return None;
            }
            self.exact();
        } else {
            // one addition on each sum's chain (the terms combined first)
            let old = self.ring.push(y);
            self.sum_xy += self.sum_y - pf * old;
            self.sum_y += y - old;
            self.since += 1;
            if self.since >= 64 {
                self.exact();
            }
        }
        let sum_x = pf * (pf - 1.0) * 0.5;
        let p = self.p as u128;
        let sum_x_sqr = ((p * (p - 1) * (2 * p - 1)) / 6) as f64;
        let divisor = sum_x * sum_x - pf * sum_x_sqr;
        let m = (pf * self.sum_xy - sum_x * self.sum_y) / divisor;
        if self.slope {
            return Some(o1(m));
        }
        let bb = (self.sum_y - m * sum_x) / pf;
        Some(o1(bb + m * (pf - 1.0)))
    }
}

/// MAX, MIN over a window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaxMin {
    pub e: Extreme,
    pub n: usize,
    pub p: usize,
}

impl MaxMin {
    pub fn is_max(&self) -> bool {
        self.e.is_max()
    }
}

impl Kernel for MaxMin {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        let (v, _) = self.e.push(b.c);
        if self.n + 1 < self.p {
            self.n += 1;
            return None;
        }
        Some(o1(v))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SumKernel {
    pub s: Sum,
}

impl Kernel for SumKernel {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        self.s.push(b.c).map(o1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TypPrice;

impl Kernel for TypPrice {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        Some(o1((b.h + b.l + b.c) / 3.0))
    }
}
