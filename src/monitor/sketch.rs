//! Lock-free HDR-style sketches for percentiles.
//!
//! Values are counted in log-linear buckets: below `2^bits` units each unit
//! has its own bucket; above, every power of two is split into `2^(bits-1)`
//! equal buckets, so a bucket's width is at most `1/2^(bits-1)` of its lower
//! bound and the midpoint reported for it is within `1/2^bits` of any value it
//! holds (bits = 11: 0.05 %, three significant digits). With the default unit
//! of 1 µs and ceiling of 1 h that is 23,552 buckets, allocated lazily in
//! chunks of 256 as values land in them. Recording is a few atomic adds; a
//! percentile query walks chunk totals, then one chunk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use parking_lot::Mutex;

const CHUNK: usize = 256;

/// An f64 stored in an AtomicU64.
#[derive(Debug)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn new(v: f64) -> Self {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }
    #[inline]
    pub fn load(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    #[inline]
    pub fn store(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed)
    }
    #[inline]
    pub fn add(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(x) => cur = x,
            }
        }
    }
    #[inline]
    pub fn fetch_min(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        while v < f64::from_bits(cur) {
            match self.0.compare_exchange_weak(
                cur,
                v.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(x) => cur = x,
            }
        }
    }
    #[inline]
    pub fn fetch_max(&self, v: f64) {
        let mut cur = self.0.load(Ordering::Relaxed);
        while v > f64::from_bits(cur) {
            match self.0.compare_exchange_weak(
                cur,
                v.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(x) => cur = x,
            }
        }
    }
}

/// Range and precision of a sketch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SketchOpts {
    /// The smallest distinguishable value (default 1e-6: 1 µs in seconds).
    pub unit: f64,
    /// The largest tracked value; larger values count at the top bucket
    /// (the exact maximum is kept separately). Default 3600 (1 h).
    pub highest: f64,
    /// Sub-bucket bits: 11 gives three significant digits.
    pub bits: u32,
}

impl Default for SketchOpts {
    fn default() -> Self {
        SketchOpts {
            unit: 1e-6,
            highest: 3600.0,
            bits: 11,
        }
    }
}

pub struct Sketch {
    opts: SketchOpts,
    max_units: u64,
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    chunk_counts: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicF64,
    min: AtomicF64,
    max: AtomicF64,
}

impl Sketch {
    pub fn new(opts: SketchOpts) -> Self {
        let max_units = (opts.highest / opts.unit).ceil().max(1.0) as u64;
        let n = index_of(max_units, opts.bits) + 1;
        let n_chunks = n.div_ceil(CHUNK);
        Sketch {
            opts,
            max_units,
            chunks: (0..n_chunks).map(|_| OnceLock::new()).collect(),
            chunk_counts: (0..n_chunks).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicF64::new(0.0),
            min: AtomicF64::new(f64::INFINITY),
            max: AtomicF64::new(f64::NEG_INFINITY),
        }
    }

    #[inline]
    pub fn record(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let units = if value <= 0.0 {
            0
        } else {
            let u = value / self.opts.unit;
            if u >= self.max_units as f64 {
                self.max_units
            } else {
                u.round() as u64
            }
        };
        let idx = index_of(units, self.opts.bits);
        let c = idx / CHUNK;
        let chunk = self.chunks[c].get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        chunk[idx % CHUNK].fetch_add(1, Ordering::Relaxed);
        self.chunk_counts[c].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.add(value);
        self.min.fetch_min(value);
        self.max.fetch_max(value);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    pub fn sum(&self) -> f64 {
        self.sum.load()
    }
    pub fn min(&self) -> f64 {
        if self.count() == 0 {
            f64::NAN
        } else {
            self.min.load()
        }
    }
    pub fn max(&self) -> f64 {
        if self.count() == 0 {
            f64::NAN
        } else {
            self.max.load()
        }
    }
    pub fn mean(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            f64::NAN
        } else {
            self.sum() / n as f64
        }
    }

    /// The value at quantile `q` (0..=1); NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 || q.is_nan() {
            return f64::NAN;
        }
        let q = q.clamp(0.0, 1.0);
        if q <= 0.0 {
            return self.min();
        }
        if q >= 1.0 {
            return self.max();
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut cum = 0u64;
        for (c, cc) in self.chunk_counts.iter().enumerate() {
            let n = cc.load(Ordering::Relaxed);
            if cum + n < rank {
                cum += n;
                continue;
            }
            if let Some(chunk) = self.chunks[c].get() {
                for (i, b) in chunk.iter().enumerate() {
                    cum += b.load(Ordering::Relaxed);
                    if cum >= rank {
                        let idx = c * CHUNK + i;
                        if idx >= index_of(self.max_units, self.opts.bits) {
                            // the top bucket holds everything above `highest`
                            return self.max();
                        }
                        let v = value_of(idx, self.opts.bits) * self.opts.unit;
                        return v.clamp(self.min(), self.max());
                    }
                }
            }
        }
        self.max()
    }

    pub fn reset(&self) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            if let Some(chunk) = chunk.get() {
                for b in chunk.iter() {
                    b.store(0, Ordering::Relaxed);
                }
            }
            self.chunk_counts[c].store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.sum.store(0.0);
        self.min.store(f64::INFINITY);
        self.max.store(f64::NEG_INFINITY);
    }

    /// Bytes held by allocated chunks (for memory accounting).
    pub fn allocated_bytes(&self) -> usize {
        self.chunks.iter().filter(|c| c.get().is_some()).count() * CHUNK * 8
            + self.chunks.len() * 16
    }
}

/// Bucket index of a value in units.
#[inline]
pub fn index_of(units: u64, bits: u32) -> usize {
    let s = 1u64 << bits;
    if units < s {
        return units as usize;
    }
    let half = s >> 1;
    let msb = 63 - units.leading_zeros();
    let shift = msb - (bits - 1);
    (s + (shift as u64 - 1) * half + ((units >> shift) - half)) as usize
}

/// Midpoint (in units) of the values counted at `idx`.
#[inline]
pub fn value_of(idx: usize, bits: u32) -> f64 {
    let s = 1usize << bits;
    if idx < s {
        return idx as f64;
    }
    let half = s >> 1;
    let k = idx - s;
    let shift = (k / half + 1) as u32;
    let sub = (k % half + half) as u64;
    let lower = sub << shift;
    let width = 1u64 << shift;
    lower as f64 + (width as f64 - 1.0) / 2.0
}

/// A sliding window of `slots` sketches, one per `slot_seconds`.
pub struct WindowSketch {
    slot_seconds: u64,
    slots: Box<[(AtomicU64, Sketch)]>,
    rotate: Mutex<()>,
    origin: Instant,
}

impl WindowSketch {
    pub fn new(minutes: u32, opts: SketchOpts) -> Self {
        let n = minutes.max(1) as usize + 1;
        WindowSketch {
            slot_seconds: 60,
            slots: (0..n)
                .map(|_| (AtomicU64::new(u64::MAX), Sketch::new(opts)))
                .collect(),
            rotate: Mutex::new(()),
            origin: Instant::now(),
        }
    }

    fn epoch(&self) -> u64 {
        self.origin.elapsed().as_secs() / self.slot_seconds
    }

    #[inline]
    pub fn record(&self, value: f64) {
        let e = self.epoch();
        let (tag, sketch) = &self.slots[(e % self.slots.len() as u64) as usize];
        if tag.load(Ordering::Acquire) != e {
            let _g = self.rotate.lock();
            if tag.load(Ordering::Acquire) != e {
                sketch.reset();
                tag.store(e, Ordering::Release);
            }
        }
        sketch.record(value);
    }

    pub fn reset(&self) {
        let _g = self.rotate.lock();
        for (tag, sketch) in self.slots.iter() {
            sketch.reset();
            tag.store(u64::MAX, Ordering::Release);
        }
    }

    /// Sketches covering the last `slots - 1` full minutes plus the current one.
    fn live(&self) -> Vec<&Sketch> {
        let e = self.epoch();
        let keep = self.slots.len() as u64 - 1;
        self.slots
            .iter()
            .filter(|(tag, _)| {
                let t = tag.load(Ordering::Acquire);
                t != u64::MAX && t <= e && e - t < keep
            })
            .map(|(_, s)| s)
            .collect()
    }

    pub fn summary(&self, quantiles: &[f64]) -> WindowSummary {
        let live = self.live();
        let count: u64 = live.iter().map(|s| s.count()).sum();
        // + 0.0 turns the -0.0 of an empty sum into 0.0
        let sum: f64 = live.iter().map(|s| s.sum()).sum::<f64>() + 0.0;
        let max = live
            .iter()
            .filter(|s| s.count() > 0)
            .map(|s| s.max())
            .fold(f64::NAN, f64::max);
        let min = live
            .iter()
            .filter(|s| s.count() > 0)
            .map(|s| s.min())
            .fold(f64::NAN, f64::min);
        let mut qs = Vec::with_capacity(quantiles.len());
        for &q in quantiles {
            qs.push(merged_quantile(&live, count, q, min, max));
        }
        WindowSummary {
            count,
            sum,
            min,
            max,
            quantiles: qs,
        }
    }
}

pub struct WindowSummary {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub quantiles: Vec<f64>,
}

fn merged_quantile(live: &[&Sketch], total: u64, q: f64, min: f64, max: f64) -> f64 {
    if total == 0 || live.is_empty() {
        return f64::NAN;
    }
    if q <= 0.0 {
        return min;
    }
    if q >= 1.0 {
        return max;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let first = live[0];
    let n_chunks = first.chunks.len();
    let mut cum = 0u64;
    for c in 0..n_chunks {
        let n: u64 = live
            .iter()
            .map(|s| s.chunk_counts[c].load(Ordering::Relaxed))
            .sum();
        if cum + n < rank {
            cum += n;
            continue;
        }
        for i in 0..CHUNK {
            for s in live {
                if let Some(ch) = s.chunks[c].get() {
                    cum += ch[i].load(Ordering::Relaxed);
                }
            }
            if cum >= rank {
                let idx = c * CHUNK + i;
                if idx >= index_of(first.max_units, first.opts.bits) {
                    // the top bucket holds everything above `highest`
                    return max;
                }
                let v = value_of(idx, first.opts.bits) * first.opts.unit;
                return v.clamp(min, max);
            }
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_monotonic_and_continuous() {
        let bits = 11;
        let mut last = 0;
        for u in 0..200_000u64 {
            let i = index_of(u, bits);
            assert!(i == last || i == last + 1, "u={u} i={i} last={last}");
            last = i;
        }
        // 1 h in µs lands below the 23,552 buckets the module docs promise
        assert!(index_of(3_600_000_000, 11) < 23_552);
        assert_eq!(index_of(2048, 11), 2048);
        assert_eq!(index_of(4095, 11), 2048 + 1023);
    }

    #[test]
    fn three_significant_digits() {
        let bits = 11;
        for &u in &[1_500u64, 12_345, 999_999, 7_654_321, 3_599_999_999] {
            let v = value_of(index_of(u, bits), bits);
            let rel = ((v - u as f64) / u as f64).abs();
            assert!(rel < 0.0005, "u={u} v={v} rel={rel}");
        }
    }

    #[test]
    fn quantiles_of_uniform_values() {
        let s = Sketch::new(SketchOpts::default());
        for i in 1..=100_000u64 {
            s.record(i as f64 * 1e-5); // 10 µs .. 1 s
        }
        assert_eq!(s.count(), 100_000);
        for &(q, expect) in &[(0.5, 0.5), (0.9, 0.9), (0.99, 0.99), (0.999, 0.999)] {
            let got = s.quantile(q);
            assert!(((got - expect) / expect).abs() < 0.001, "q={q} got={got}");
        }
        assert_eq!(s.quantile(1.0), 1.0);
        assert_eq!(s.quantile(0.0), 1e-5);
        assert!((s.mean() - 0.500005).abs() < 1e-9);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let s = Sketch::new(SketchOpts::default());
        s.record(-1.0);
        s.record(1e9);
        s.record(f64::NAN);
        assert_eq!(s.count(), 2);
        assert_eq!(s.max(), 1e9);
        assert_eq!(s.quantile(0.99), 1e9);
    }

    #[test]
    fn window_summary_counts_recent_values() {
        let w = WindowSketch::new(
            5,
            SketchOpts {
                bits: 8,
                ..SketchOpts::default()
            },
        );
        for i in 1..=1000 {
            w.record(i as f64 * 1e-3);
        }
        let s = w.summary(&[0.5, 0.99]);
        assert_eq!(s.count, 1000);
        assert!(
            (s.quantiles[0] - 0.5).abs() / 0.5 < 0.01,
            "{}",
            s.quantiles[0]
        );
        assert!(
            (s.quantiles[1] - 0.99).abs() / 0.99 < 0.01,
            "{}",
            s.quantiles[1]
        );
    }
}
