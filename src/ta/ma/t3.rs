//! T3, Tillson's average of six chained EMAs.

use serde::{Deserialize, Serialize};

/// One of T3's EMA steps, `e + k·(x - e)`: a subtraction and a
/// multiply-add (`(1-k)·e + k·x` is a multiply and a multiply-add, and with
/// six EMAs and the combination a bar the multiply-add units were the
/// bottleneck; subtractions run on the adders).
#[inline(always)]
fn t3_ema(k: f64, e: f64, x: f64) -> f64 {
    k.mul_add(x - e, e)
}

/// T3 (Tillson) with TA-Lib's staged seeding of its six EMAs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct T3 {
    p: usize,
    k: f64,
    omk: f64,
    e: [f64; 6],
    stage: usize,
    cnt: usize,
    acc: f64,
    c: [f64; 4],
}

impl T3 {
    pub fn new(p: usize, v: f64) -> Self {
        let p = p.max(1);
        let k = 2.0 / (p as f64 + 1.0);
        let t = v * v;
        let c1 = -(t * v);
        let c2 = 3.0 * (t - c1);
        let c3 = -6.0 * t - 3.0 * (v - c1);
        let c4 = 1.0 + 3.0 * v - c1 + 3.0 * t;
        T3 {
            p,
            k,
            omk: 1.0 - k,
            e: [0.0; 6],
            stage: 1,
            cnt: 0,
            acc: 0.0,
            c: [c1, c2, c3, c4],
        }
    }

    #[inline(always)]
    fn update(&mut self, x: f64, upto: usize) {
        let k = self.k;
        self.e[0] = t3_ema(k, self.e[0], x);
        for j in 1..upto {
            self.e[j] = t3_ema(k, self.e[j], self.e[j - 1]);
        }
    }

    fn advance(&mut self) {
        loop {
            self.stage += 1;
            self.cnt = 0;
            if self.stage > 6 {
                return;
            }
            self.acc = self.e[self.stage - 2];
            if self.p > 1 {
                return;
            }
            self.e[self.stage - 1] = self.acc / self.p as f64;
        }
    }

    /// Runs over `x` writing one output per bar (NaN while warming up):
    /// the state machine until it is warm, then the same arithmetic on
    /// locals.
    #[inline(always)]
    pub fn run_array(&mut self, x: &[f64], out: &mut [f64], nan: &mut bool) {
        let n = x.len().min(out.len());
        let mut i = 0;
        while i < n && self.stage != 7 {
            *nan |= x[i].is_nan();
            out[i] = self.push(x[i]).unwrap_or(f64::NAN);
            i += 1;
        }
        let k = self.k;
        let [c1, c2, c3, c4] = self.c;
        let mut e = self.e;
        for j in i..n {
            let xv = x[j];
            *nan |= xv.is_nan();
            e[0] = t3_ema(k, e[0], xv);
            e[1] = t3_ema(k, e[1], e[0]);
            e[2] = t3_ema(k, e[2], e[1]);
            e[3] = t3_ema(k, e[3], e[2]);
            e[4] = t3_ema(k, e[4], e[3]);
            e[5] = t3_ema(k, e[5], e[4]);
            out[j] = T3::combine([c1, c2, c3, c4], &e);
        }
        self.e = e;
    }

    /// c1*e6 + c2*e5 + c3*e4 + c4*e3 as three multiply-adds (four
    /// instructions where TA-Lib spends seven; within an ulp or two of it).
    #[inline(always)]
    fn combine(c: [f64; 4], e: &[f64; 6]) -> f64 {
        c[0].mul_add(e[5], c[1].mul_add(e[4], c[2].mul_add(e[3], c[3] * e[2])))
    }

    #[inline(always)]
    fn out(&self) -> f64 {
        T3::combine(self.c, &self.e)
    }

    #[inline(always)]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        match self.stage {
            7 => {
                self.update(x, 6);
                Some(self.out())
            }
            1 => {
                if self.cnt == 0 {
                    self.acc = x;
                } else {
                    self.acc += x;
                }
                self.cnt += 1;
                if self.cnt == self.p {
                    self.e[0] = self.acc / self.p as f64;
                    self.advance();
                }
                (self.stage == 7).then(|| self.out())
            }
            s => {
                self.update(x, s - 1);
                self.acc += self.e[s - 2];
                self.cnt += 1;
                if self.cnt == self.p - 1 {
                    self.e[s - 1] = self.acc / self.p as f64;
                    self.advance();
                }
                (self.stage == 7).then(|| self.out())
            }
        }
    }
}
