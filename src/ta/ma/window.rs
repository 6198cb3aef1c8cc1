//! Windows over one series: the last values (`Ring`) and a sliding extreme
//! with its age (`Extreme`).

use serde::{Deserialize, Serialize};

/// The last `cap` values of a series; `push` returns the value it evicts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ring {
    buf: Vec<f64>,
    pos: usize,
    len: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Ring {
            buf: vec![0.0; cap.max(1)],
            pos: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> f64 {
        let old = self.buf[self.pos];
        self.buf[self.pos] = x;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        if self.len < self.buf.len() {
            self.len += 1;
        }
        old
    }

    /// The oldest value held (valid once the ring is full).
    #[inline(always)]
    pub fn oldest(&self) -> f64 {
        self.buf[self.pos]
    }

    /// The value pushed `age` pushes ago (0 = the newest).
    #[inline(always)]
    pub fn back(&self, age: usize) -> f64 {
        let n = self.buf.len();
        debug_assert!(age < n);
        let mut i = self.pos + n - 1 - age.min(n - 1);
        if i >= n {
            i -= n;
        }
        self.buf[i]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }
}

/// Sliding extreme (max or min) over the last `period` pushes, with the age
/// of the most recent bar holding it (TA-Lib's tie rule). The extreme is
/// kept until it leaves the window, then the window is rescanned: O(1)
/// amortised on market data, O(period) at worst. The window is stored twice
/// in a row so that it is always one contiguous slice.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Extreme {
    period: usize,
    max: bool,
    buf: Vec<f64>,
    pos: usize,
    best: f64,
    age: usize,
    count: usize,
}

impl Extreme {
    pub fn is_max(&self) -> bool {
        self.max
    }

    pub fn new(period: usize, max: bool) -> Self {
        let period = period.max(1);
        Extreme {
            period,
            max,
            buf: vec![0.0; 2 * period],
            pos: 0,
            best: 0.0,
            age: 0,
            count: 0,
        }
    }

    /// Pushes `x` and returns (extreme, bars since it occurred).
    #[inline(always)]
    pub fn push(&mut self, x: f64) -> (f64, u64) {
        let p = self.period;
        self.buf[self.pos] = x;
        self.buf[self.pos + p] = x;
        self.pos += 1;
        if self.pos == p {
            self.pos = 0;
        }
        if self.count == 0 {
            self.count = 1;
            self.best = x;
            self.age = 0;
            return (x, 0);
        }
        if self.count < p {
            self.count += 1;
        }
        self.age += 1;
        let better = if self.max {
            x >= self.best
        } else {
            x <= self.best
        };
        if better {
            self.best = x;
            self.age = 0;
        } else if self.age >= p {
            self.rescan();
        }
        (self.best, self.age as u64)
    }

    #[inline(always)]
    fn rescan(&mut self) {
        // The window (oldest first) is buf[pos .. pos + p] once full.
        let p = self.period;
        let w = &self.buf[self.pos..self.pos + p];
        let mut best = w[0];
        let mut idx = 0;
        // Branch-free scans (ties go to the most recent bar).
        if self.max {
            for (i, &v) in w.iter().enumerate().skip(1) {
                let take = v >= best;
                best = if take { v } else { best };
                idx = if take { i } else { idx };
            }
        } else {
            for (i, &v) in w.iter().enumerate().skip(1) {
                let take = v <= best;
                best = if take { v } else { best };
                idx = if take { i } else { idx };
            }
        }
        self.best = best;
        self.age = p - 1 - idx;
    }
}
