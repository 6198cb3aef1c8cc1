//! Running a state machine over whole arrays, and the compute (rayon) pool.

use std::sync::Arc;

use parking_lot::Mutex;

use super::kernels::{Bar, Kernel, I_C, I_H, I_L, I_O, I_V};
use super::registry::AnyK;
use crate::errors::{FtError, FtResult};

/// The input columns of one series. Columns an indicator does not read
/// alias one it does, so that every slice is valid for `n` bars.
#[derive(Clone, Copy)]
pub struct Cols<'a> {
    pub o: &'a [f64],
    pub h: &'a [f64],
    pub l: &'a [f64],
    pub c: &'a [f64],
    pub v: &'a [f64],
    pub n: usize,
}

impl<'a> Cols<'a> {
    /// Builds the columns from (bit, slice) pairs; all slices have length `n`.
    pub fn new(cols: &[(u8, &'a [f64])]) -> Self {
        let first: &'a [f64] = cols.first().map(|c| c.1).unwrap_or(&[]);
        let pick = |bit: u8| -> &'a [f64] {
            cols.iter()
                .find(|(b, _)| *b & bit != 0)
                .map(|c| c.1)
                .unwrap_or(first)
        };
        Cols {
            o: pick(I_O),
            h: pick(I_H),
            l: pick(I_L),
            c: pick(I_C),
            v: pick(I_V),
            n: first.len(),
        }
    }

    #[inline(always)]
    fn bar(&self, i: usize) -> Bar {
        Bar {
            o: self.o[i],
            h: self.h[i],
            l: self.l[i],
            c: self.c[i],
            v: self.v[i],
        }
    }

    #[inline(always)]
    fn has_nan(&self, i: usize, mask: u8) -> bool {
        (mask & I_O != 0 && self.o[i].is_nan())
            || (mask & I_H != 0 && self.h[i].is_nan())
            || (mask & I_L != 0 && self.l[i].is_nan())
            || (mask & I_C != 0 && self.c[i].is_nan())
            || (mask & I_V != 0 && self.v[i].is_nan())
    }
}

/// Bars checked between two looks at the cancellation flag.
pub const CHUNK: usize = 1 << 16;

/// Output rows of one series: `nout` slices of length `n`.
pub struct OutRows<'a> {
    pub rows: Vec<&'a mut [f64]>,
}

impl OutRows<'_> {
    #[inline(always)]
    fn put(&mut self, i: usize, r: Option<[f64; 4]>) {
        match r {
            Some(v) => {
                for (j, row) in self.rows.iter_mut().enumerate() {
                    row[i] = v[j];
                }
            }
            None => {
                for row in self.rows.iter_mut() {
                    row[i] = f64::NAN;
                }
            }
        }
    }
}

fn run_typed<K: Kernel>(
    k: &mut K,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    let n = cols.n;
    // A bar with NaN in any input the indicator reads is skipped: its output
    // is NaN and the state does not change. Leading NaNs are the common case
    // (TA-Lib skips them the same way); a fast loop serves NaN-free spans.
    let mut i = 0;
    while i < n {
        if cancelled() {
            return false;
        }
        let end = (i + CHUNK).min(n);
        let clean = !(i..end).any(|j| cols.has_nan(j, mask));
        if clean {
            for j in i..end {
                let b = cols.bar(j);
                out.put(j, k.next(&b));
            }
        } else {
            for j in i..end {
                if cols.has_nan(j, mask) {
                    out.put(j, None);
                } else {
                    let b = cols.bar(j);
                    out.put(j, k.next(&b));
                }
            }
        }
        i = end;
    }
    true
}

/// Runs `k` over the series; false when cancelled midway.
pub fn run(
    k: &mut AnyK,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    crate::with_kernel!(k, kk => run_typed(kk, mask, cols, out, cancelled))
}

struct PoolState {
    generation: u64,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<PoolState>> = Mutex::new(None);

/// The compute pool, sized by `configure(compute_threads=)` or
/// `FERROTICK_COMPUTE_THREADS` (default: the number of CPUs). Rebuilt in a
/// forked child, whose copy has no threads.
pub fn pool() -> FtResult<Arc<rayon::ThreadPool>> {
    let gen = crate::runtime::fork_generation();
    let mut g = POOL.lock();
    if let Some(p) = g.as_ref() {
        if p.generation == gen {
            return Ok(p.pool.clone());
        }
    }
    if let Some(old) = g.take() {
        // The parent's pool has no threads here; dropping it would wait
        // for them. Leak it instead.
        std::mem::forget(old);
    }
    let cfg = crate::runtime::pending_config().with_env()?;
    let n = cfg.compute_threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .thread_name(|i| format!("ferrotick-compute-{i}"))
        .build()
        .map_err(|e| FtError::internal(format!("could not start the compute pool: {e}")))?;
    let pool = Arc::new(pool);
    *g = Some(PoolState {
        generation: gen,
        pool: pool.clone(),
    });
    Ok(pool)
}

pub fn pool_threads() -> usize {
    POOL.lock()
        .as_ref()
        .map(|p| p.pool.current_num_threads())
        .unwrap_or(0)
}
