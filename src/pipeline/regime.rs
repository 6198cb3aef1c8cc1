//! Market regime per bar, from a fixed rule set over ADX, ±DI, ATR and closes.
//!
//! The rules, in order (thresholds in [`RegimeParams`]):
//! 1. No ADX or close yet (warm-up, NaN) → `UNKNOWN`, confidence NaN.
//! 2. Volatility: NATR = ATR / close × 100. Once `vol_window` NATR values are
//!    held, the current value's percentile p (the share of the window below
//!    it, ties counted half, so a flat ATR sits at 0.5) ≥ `vol_high` →
//!    `VOLATILE`, confidence p.
//! 3. ADX ≥ `adx_trend` → `TRENDING_UP` when +DI > −DI, else `TRENDING_DOWN`;
//!    confidence 0.5 at the threshold rising to 1 at twice it.
//! 4. ADX ≤ `adx_range` → `RANGING`; confidence 0.5 at the threshold rising to 1
//!    at ADX 0.
//! 5. Between the two, Kaufman's efficiency ratio over `er_period` closes
//!    breaks the tie: ER ≥ `er_trend` → trending by the DI sign, else ranging;
//!    confidence 0.25 + 0.25 × ER (trend) or 0.25 + 0.25 × (1 − ER) (range).
//!
//! The classifier is one state machine: the batch function runs `update` over
//! every bar, so incremental and batch results are equal bit for bit. Each
//! update is O(er_period) for the ratio and O(log vol_window) to rank the NATR
//! (a binary search in a sorted copy of the window; inserting and removing
//! shift at most `vol_window` floats).

use std::collections::VecDeque;

pub const UNKNOWN: u8 = 0;
pub const TRENDING_UP: u8 = 1;
pub const TRENDING_DOWN: u8 = 2;
pub const RANGING: u8 = 3;
pub const VOLATILE: u8 = 4;

/// The names of the codes above, by code.
pub const NAMES: [&str; 5] = [
    "unknown",
    "trending_up",
    "trending_down",
    "ranging",
    "volatile",
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegimeParams {
    pub adx_trend: f64,
    pub adx_range: f64,
    pub vol_window: usize,
    pub vol_high: f64,
    pub er_period: usize,
    pub er_trend: f64,
}

impl Default for RegimeParams {
    fn default() -> Self {
        RegimeParams {
            adx_trend: 25.0,
            adx_range: 20.0,
            vol_window: 100,
            vol_high: 0.9,
            er_period: 10,
            er_trend: 0.3,
        }
    }
}

impl RegimeParams {
    /// The first setting that is out of range, with why.
    pub fn check(&self) -> Result<(), String> {
        let finite_pos = |v: f64| v.is_finite() && v > 0.0;
        if !finite_pos(self.adx_trend) || self.adx_trend > 100.0 {
            return Err(format!(
                "adx_trend: expected 0 < x <= 100, got {}",
                self.adx_trend
            ));
        }
        if !(self.adx_range.is_finite()
            && self.adx_range >= 0.0
            && self.adx_range <= self.adx_trend)
        {
            return Err(format!(
                "adx_range: expected 0 <= x <= adx_trend ({}), got {}",
                self.adx_trend, self.adx_range
            ));
        }
        if self.vol_window < 2 {
            return Err(format!(
                "vol_window: expected >= 2, got {}",
                self.vol_window
            ));
        }
        if !(self.vol_high > 0.0 && self.vol_high <= 1.0) {
            return Err(format!(
                "vol_high: expected 0 < x <= 1, got {}",
                self.vol_high
            ));
        }
        if self.er_period < 1 {
            return Err(format!("er_period: expected >= 1, got {}", self.er_period));
        }
        if !(self.er_trend >= 0.0 && self.er_trend <= 1.0) {
            return Err(format!(
                "er_trend: expected 0 <= x <= 1, got {}",
                self.er_trend
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct RegimeState {
    p: RegimeParams,
    natr: VecDeque<f64>,
    sorted: Vec<f64>,
    closes: VecDeque<f64>,
    pub last: (u8, f64),
}

impl RegimeState {
    pub fn new(p: RegimeParams) -> Result<Self, String> {
        p.check()?;
        Ok(RegimeState {
            natr: VecDeque::with_capacity(p.vol_window + 1),
            sorted: Vec::with_capacity(p.vol_window + 1),
            closes: VecDeque::with_capacity(p.er_period + 2),
            p,
            last: (UNKNOWN, f64::NAN),
        })
    }

    pub fn params(&self) -> RegimeParams {
        self.p
    }

    fn push_natr(&mut self, v: f64) {
        if self.natr.len() == self.p.vol_window {
            if let Some(old) = self.natr.pop_front() {
                let i = self.sorted.partition_point(|&x| x < old);
                if i < self.sorted.len() {
                    self.sorted.remove(i);
                }
            }
        }
        self.natr.push_back(v);
        let i = self.sorted.partition_point(|&x| x < v);
        self.sorted.insert(i, v);
    }

    /// The share of the window below `v`, values equal to it counted half.
    fn percentile(&self, v: f64) -> f64 {
        let below = self.sorted.partition_point(|&x| x < v);
        let at_or_below = self.sorted.partition_point(|&x| x <= v);
        (below as f64 + 0.5 * (at_or_below - below) as f64) / self.sorted.len() as f64
    }

    fn efficiency(&self) -> Option<f64> {
        if self.closes.len() <= self.p.er_period {
            return None;
        }
        let first = *self.closes.front()?;
        let last = *self.closes.back()?;
        let mut path = 0.0;
        let mut prev = first;
        for &c in self.closes.iter().skip(1) {
            path += (c - prev).abs();
            prev = c;
        }
        Some(if path > 0.0 {
            (last - first).abs() / path
        } else {
            0.0
        })
    }

    /// Classifies one bar.
    pub fn update(
        &mut self,
        adx: f64,
        plus_di: f64,
        minus_di: f64,
        atr: f64,
        close: f64,
    ) -> (u8, f64) {
        if close.is_finite() {
            self.closes.push_back(close);
            if self.closes.len() > self.p.er_period + 1 {
                self.closes.pop_front();
            }
        }
        let natr = atr / close * 100.0;
        let mut pct = f64::NAN;
        if natr.is_finite() && close > 0.0 {
            self.push_natr(natr);
            if self.natr.len() == self.p.vol_window {
                pct = self.percentile(natr);
            }
        }
        self.last = self.classify(adx, plus_di, minus_di, close, pct);
        self.last
    }

    fn classify(&self, adx: f64, plus_di: f64, minus_di: f64, close: f64, pct: f64) -> (u8, f64) {
        let p = &self.p;
        if adx.is_nan() || close.is_nan() {
            return (UNKNOWN, f64::NAN);
        }
        if pct >= p.vol_high {
            return (VOLATILE, pct);
        }
        let up = if plus_di > minus_di {
            TRENDING_UP
        } else {
            TRENDING_DOWN
        };
        if adx >= p.adx_trend {
            return (up, (0.5 + 0.5 * (adx - p.adx_trend) / p.adx_trend).min(1.0));
        }
        if adx <= p.adx_range {
            let conf = if p.adx_range > 0.0 {
                0.5 + 0.5 * (p.adx_range - adx) / p.adx_range
            } else {
                1.0
            };
            return (RANGING, conf.min(1.0));
        }
        match self.efficiency() {
            Some(er) if er >= p.er_trend => (up, 0.25 + 0.25 * er),
            Some(er) => (RANGING, 0.25 + 0.25 * (1.0 - er)),
            None => (UNKNOWN, f64::NAN),
        }
    }
}

/// Inputs of the classifier, one value per bar in each column.
pub struct RegimeInputs<'a> {
    pub adx: &'a [f64],
    pub plus_di: &'a [f64],
    pub minus_di: &'a [f64],
    pub atr: &'a [f64],
    pub close: &'a [f64],
}

/// Classifies every bar; also returns the state after the last bar so that
/// later bars continue from it.
pub fn classify(
    x: &RegimeInputs<'_>,
    p: RegimeParams,
) -> Result<(Vec<u8>, Vec<f64>, RegimeState), String> {
    let n = x.close.len();
    for (name, col) in [
        ("adx", x.adx),
        ("plus_di", x.plus_di),
        ("minus_di", x.minus_di),
        ("atr", x.atr),
    ] {
        if col.len() != n {
            return Err(format!("{name}: {} values, close has {n}", col.len()));
        }
    }
    let mut s = RegimeState::new(p)?;
    let mut codes = Vec::with_capacity(n);
    let mut conf = Vec::with_capacity(n);
    for i in 0..n {
        let (c, k) = s.update(x.adx[i], x.plus_di[i], x.minus_di[i], x.atr[i], x.close[i]);
        codes.push(c);
        conf.push(k);
    }
    Ok((codes, conf, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RegimeState {
        RegimeState::new(RegimeParams {
            vol_window: 4,
            vol_high: 0.85,
            er_period: 3,
            ..RegimeParams::default()
        })
        .unwrap()
    }

    #[test]
    fn warm_up_is_unknown() {
        let mut s = state();
        assert_eq!(s.update(f64::NAN, 1.0, 2.0, 1.0, 100.0).0, UNKNOWN);
    }

    #[test]
    fn strong_adx_is_a_trend_in_the_di_direction() {
        let mut s = state();
        assert_eq!(s.update(30.0, 30.0, 10.0, 1.0, 100.0).0, TRENDING_UP);
        let (code, conf) = s.update(50.0, 10.0, 30.0, 1.0, 100.0);
        assert_eq!((code, conf), (TRENDING_DOWN, 1.0));
    }

    #[test]
    fn weak_adx_is_ranging() {
        let mut s = state();
        let (code, conf) = s.update(10.0, 20.0, 10.0, 1.0, 100.0);
        assert_eq!(code, RANGING);
        assert_eq!(conf, 0.75);
    }

    #[test]
    fn an_atr_spike_is_volatile_once_the_window_is_full() {
        let mut s = state();
        for _ in 0..3 {
            assert_eq!(s.update(10.0, 1.0, 2.0, 1.0, 100.0).0, RANGING);
        }
        // the fourth value fills the window and is its largest: 3.5 of 4 below
        let (code, conf) = s.update(10.0, 1.0, 2.0, 5.0, 100.0);
        assert_eq!((code, conf), (VOLATILE, 0.875));
        // the window slides: three old values and a smaller one
        assert_eq!(s.update(10.0, 1.0, 2.0, 0.5, 100.0).0, RANGING);
    }

    #[test]
    fn efficiency_breaks_the_tie() {
        let mut s = state();
        for c in [100.0, 101.0, 102.0] {
            s.update(22.0, 30.0, 10.0, 1.0, c);
        }
        // a straight line: ER 1
        assert_eq!(s.update(22.0, 30.0, 10.0, 1.0, 103.0), (TRENDING_UP, 0.5));
        let mut s = state();
        for c in [100.0, 101.0, 100.0] {
            s.update(22.0, 30.0, 10.0, 1.0, c);
        }
        // back and forth: ER 1/3 >= 0.3 → trend
        assert_eq!(s.update(22.0, 30.0, 10.0, 1.0, 101.0).0, TRENDING_UP);
        let mut s = state();
        for c in [100.0, 101.0, 102.0] {
            s.update(22.0, 30.0, 10.0, 1.0, c);
        }
        // up and back to the start: ER 0 → range
        assert_eq!(s.update(22.0, 30.0, 10.0, 1.0, 100.0), (RANGING, 0.5));
    }

    #[test]
    fn batch_equals_incremental_bit_for_bit() {
        let n = 2000;
        let f = |i: usize, k: f64| 20.0 + 15.0 * ((i as f64) * k).sin();
        let adx: Vec<f64> = (0..n).map(|i| f(i, 0.013)).collect();
        let pdi: Vec<f64> = (0..n).map(|i| f(i, 0.021)).collect();
        let mdi: Vec<f64> = (0..n).map(|i| f(i, 0.017)).collect();
        let atr: Vec<f64> = (0..n).map(|i| 1.0 + f(i, 0.05) / 10.0).collect();
        let close: Vec<f64> = (0..n).map(|i| 100.0 + f(i, 0.011)).collect();
        let p = RegimeParams::default();
        let inputs = RegimeInputs {
            adx: &adx[..1500],
            plus_di: &pdi[..1500],
            minus_di: &mdi[..1500],
            atr: &atr[..1500],
            close: &close[..1500],
        };
        let (_, _, mut s) = classify(&inputs, p).unwrap();
        let all = RegimeInputs {
            adx: &adx,
            plus_di: &pdi,
            minus_di: &mdi,
            atr: &atr,
            close: &close,
        };
        let (codes, conf, _) = classify(&all, p).unwrap();
        for i in 1500..n {
            let (c, k) = s.update(adx[i], pdi[i], mdi[i], atr[i], close[i]);
            assert_eq!(c, codes[i]);
            assert_eq!(k.to_bits(), conf[i].to_bits());
        }
        assert!(codes.contains(&VOLATILE));
        assert!(codes.contains(&RANGING));
    }

    #[test]
    fn bad_params_are_named() {
        let e = RegimeState::new(RegimeParams {
            adx_range: 30.0,
            ..RegimeParams::default()
        })
        .unwrap_err();
        assert!(e.starts_with("adx_range"));
    }
}
