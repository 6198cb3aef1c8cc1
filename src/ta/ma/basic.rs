//! The basic averages: SMA (and the running SUM on it), EMA, WMA, DEMA,
//! TEMA and TRIMA.

use serde::{Deserialize, Serialize};

use super::window::Ring;

/// Simple moving average (TA-Lib's running total, subtracting after output).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sma {
    p: usize,
    ring: Vec<f64>,
    pos: usize,
    n: usize,
    sum: f64,
    pf: f64,
}

impl Sma {
    pub fn period(&self) -> usize {
        self.p
    }

    pub fn new(p: usize) -> Self {
        let p = p.max(1);
        Sma {
            p,
            ring: vec![0.0; p],
            pos: 0,
            n: 0,
            sum: 0.0,
            pf: p as f64,
        }
    }

    /// Adds `x` to the window's sum: the first `p` values one by one, then
    /// `x - leaving` (one addition on the running sum per bar, where TA-Lib
    /// adds and subtracts: the same sum within an ulp, half the latency).
    /// Whole-array loops in `fast` repeat exactly these operations.
    #[inline(always)]
    pub fn add(&mut self, x: f64) -> bool {
        let leaving = self.ring[self.pos];
        self.ring[self.pos] = x;
        self.pos += 1;
        if self.pos == self.p {
            self.pos = 0;
        }
        if self.n < self.p {
            self.sum += x;
            self.n += 1;
            self.n == self.p
        } else {
            self.sum += x - leaving;
            true
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        // Multiplying by the reciprocal (hoisted out of whole-array loops)
        // instead of dividing at every bar: at most 1 ulp from TA-Lib.
        self.add(x).then(|| self.sum * (1.0 / self.pf))
    }
}

/// Running sum over a window (TA-Lib's SUM).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sum {
    inner: Sma,
}

impl Sum {
    pub fn period(&self) -> usize {
        self.inner.p
    }

    pub fn new(p: usize) -> Self {
        Sum { inner: Sma::new(p) }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        self.inner.add(x).then_some(self.inner.sum)
    }
}

/// Exponential moving average seeded with the mean of the first `p` values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ema {
    p: usize,
    k: f64,
    n: usize,
    prev: f64,
}

impl Ema {
    pub fn new(p: usize) -> Self {
        Self::with_k(p, 2.0 / ((p + 1) as f64))
    }

    pub fn with_k(p: usize, k: f64) -> Self {
        Ema {
            p: p.max(1),
            k,
            n: 0,
            prev: 0.0,
        }
    }

    /// Whether the seed (the mean of the first `p` values) is complete.
    #[inline(always)]
    pub fn ready(&self) -> bool {
        self.n >= self.p
    }

    /// One step once `ready` (the same arithmetic as `push`).
    #[inline(always)]
    pub fn step(prev: f64, x: f64, k: f64) -> f64 {
        // prev * (1 - k) + k * x: the recurrence waits on one fused
        // multiply-add per bar (k * x and 1 - k are off the chain), where
        // TA-Lib's (x - prev) * k + prev waits on a subtraction and a
        // multiply-add. Within a few ulps of it; EMA forgets the difference.
        prev.mul_add(1.0 - k, k * x)
    }

    #[inline(always)]
    pub fn state(&self) -> (f64, f64) {
        (self.prev, self.k)
    }

    #[inline(always)]
    pub fn set_prev(&mut self, prev: f64) {
        self.prev = prev;
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        if self.n < self.p {
            self.prev += x;
            self.n += 1;
            if self.n < self.p {
                return None;
            }
            self.prev /= self.p as f64;
            return Some(self.prev);
        }
        self.prev = Ema::step(self.prev, x, self.k);
        Some(self.prev)
    }
}

/// Weighted moving average (TA-Lib's sum/sub formulation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Wma {
    pub p: usize,
    n: usize,
    sub: f64,
    sum: f64,
    trailing: f64,
    ring: Ring,
    divider: f64,
}

impl Wma {
    pub fn new(p: usize) -> Self {
        let p = p.max(1);
        Wma {
            p,
            n: 0,
            sub: 0.0,
            sum: 0.0,
            trailing: 0.0,
            ring: Ring::new(p),
            divider: ((p * (p + 1)) >> 1) as f64,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        self.ring.push(x);
        if self.n + 1 < self.p {
            self.n += 1;
            self.sub += x;
            self.sum += x * (self.n as f64);
            return None;
        }
        self.sub += x;
        self.sub -= self.trailing;
        self.sum += x * (self.p as f64);
        self.trailing = self.ring.oldest();
        let out = self.sum * (1.0 / self.divider);
        self.sum -= self.sub;
        Some(out)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dema {
    pub e1: Ema,
    pub e2: Ema,
}

impl Dema {
    pub fn new(p: usize) -> Self {
        Dema {
            e1: Ema::new(p),
            e2: Ema::new(p),
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.push(x)?;
        let b = self.e2.push(a)?;
        Some((2.0 * a) - b)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tema {
    pub e1: Ema,
    pub e2: Ema,
    pub e3: Ema,
}

impl Tema {
    pub fn new(p: usize) -> Self {
        Tema {
            e1: Ema::new(p),
            e2: Ema::new(p),
            e3: Ema::new(p),
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.push(x)?;
        let b = self.e2.push(a)?;
        let c = self.e3.push(b)?;
        let mut out = c;
        out += (3.0 * a) - (3.0 * b);
        Some(out)
    }
}

/// Triangular moving average as an SMA of an SMA (weights 1,2,..,2,1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trima {
    a: Sma,
    b: Sma,
}

impl Trima {
    pub fn periods(&self) -> (usize, usize) {
        (self.a.period(), self.b.period())
    }

    pub fn new(p: usize) -> Self {
        let (n1, n2) = if p % 2 == 1 {
            (p.div_ceil(2), p.div_ceil(2))
        } else {
            (p / 2, p / 2 + 1)
        };
        Trima {
            a: Sma::new(n1),
            b: Sma::new(n2),
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let a = self.a.push(x)?;
        self.b.push(a)
    }
}
