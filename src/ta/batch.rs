//! Running a state machine over whole arrays, and the compute (rayon) pool.

use std::sync::Arc;

use parking_lot::Mutex;

use super::kernels::{
    Bar, BbandsG, Kernel, MacdEma, PoG, ScalarK, StochG, I_C, I_H, I_L, I_O, I_V,
};
use super::ma::{Ma, Sma};
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

    /// The bars from `begin` to `n` (every column is at least `n` long).
    #[inline(always)]
    pub fn range(&self, begin: usize, n: usize) -> Cols<'a> {
        Cols {
            o: &self.o[begin..n],
            h: &self.h[begin..n],
            l: &self.l[begin..n],
            c: &self.c[begin..n],
            v: &self.v[begin..n],
            n: n - begin,
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
/// Bars per NaN check (fits the L2 cache with five inputs).
const CHUNK_SCAN: usize = 1 << 14;

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

fn column_has_nan(c: &[f64]) -> bool {
    // A fold (not `any`) so that it vectorises.
    c.iter().fold(false, |acc, v| acc | v.is_nan())
}

/// The NaN-free loop over bars `i..end`, specialised for one output.
#[inline(always)]
fn clean_span<K: Kernel>(k: &mut K, c: &Cols<'_>, out: &mut OutRows<'_>, i: usize, end: usize) {
    let (o, h, l, cl, v) = (
        &c.o[..end],
        &c.h[..end],
        &c.l[..end],
        &c.c[..end],
        &c.v[..end],
    );
    if out.rows.len() == 1 {
        let row = &mut out.rows[0][..end];
        for j in i..end {
            let b = Bar {
                o: o[j],
                h: h[j],
                l: l[j],
                c: cl[j],
                v: v[j],
            };
            row[j] = match k.next(&b) {
                Some(r) => r[0],
                None => f64::NAN,
            };
        }
    } else if out.rows.len() == 2 {
        let [r0, r1] = &mut out.rows[..] else { return };
        let (r0, r1) = (&mut r0[..end], &mut r1[..end]);
        for j in i..end {
            let b = Bar {
                o: o[j],
                h: h[j],
                l: l[j],
                c: cl[j],
                v: v[j],
            };
            match k.next(&b) {
                Some(r) => {
                    r0[j] = r[0];
                    r1[j] = r[1];
                }
                None => {
                    r0[j] = f64::NAN;
                    r1[j] = f64::NAN;
                }
            }
        }
    } else if out.rows.len() == 3 {
        let [r0, r1, r2] = &mut out.rows[..] else {
            return;
        };
        let (r0, r1, r2) = (&mut r0[..end], &mut r1[..end], &mut r2[..end]);
        for j in i..end {
            let b = Bar {
                o: o[j],
                h: h[j],
                l: l[j],
                c: cl[j],
                v: v[j],
            };
            match k.next(&b) {
                Some(r) => {
                    r0[j] = r[0];
                    r1[j] = r[1];
                    r2[j] = r[2];
                }
                None => {
                    r0[j] = f64::NAN;
                    r1[j] = f64::NAN;
                    r2[j] = f64::NAN;
                }
            }
        }
    } else {
        for j in i..end {
            let b = Bar {
                o: o[j],
                h: h[j],
                l: l[j],
                c: cl[j],
                v: v[j],
            };
            out.put(j, k.next(&b));
        }
    }
}

/// True when the CPU has fused multiply-add instructions and AVX2: the loops
/// are then compiled with them (the kernels use `mul_add`, which is exactly
/// rounded either way, and AVX2 only widens vectorised element-wise loops,
/// whose IEEE operations round the same; results do not depend on this).
pub fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FMA.get_or_init(|| {
            std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("avx2")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

fn run_typed<K: Kernel + Clone>(
    k: &mut K,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU supports FMA and AVX2 (checked above).
        return unsafe { run_typed_fma(k, mask, cols, out, cancelled) };
    }
    run_typed_body(k, mask, cols, out, cancelled)
}

/// # Safety
/// The CPU must support FMA and AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
unsafe fn run_typed_fma<K: Kernel + Clone>(
    k: &mut K,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    run_typed_body(k, mask, cols, out, cancelled)
}

#[inline(always)]
fn run_typed_body<K: Kernel + Clone>(
    k: &mut K,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    // Work on a local copy: its fields stay in registers across the loop
    // (through `k` they would be stored and reloaded at every bar).
    let mut local = k.clone();
    let done = run_local(&mut local, mask, cols, out, cancelled);
    *k = local;
    done
}

#[inline(always)]
fn run_local<K: Kernel>(
    k: &mut K,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    let n = cols.n;
    assert!(out.rows.iter().all(|r| r.len() >= n));
    assert!([cols.o, cols.h, cols.l, cols.c, cols.v]
        .iter()
        .all(|c| c.len() >= n));
    // A bar with NaN in any input the indicator reads is skipped: its output
    // is NaN and the state does not change. Leading NaNs are the common case
    // (TA-Lib skips them the same way).
    let used = [
        (I_O, cols.o),
        (I_H, cols.h),
        (I_L, cols.l),
        (I_C, cols.c),
        (I_V, cols.v),
    ];
    let mut i = 0;
    while i < n {
        if cancelled() {
            return false;
        }
        let end = (i + CHUNK_SCAN).min(n);
        // Checked per chunk, which is still in cache when the loop runs.
        let any_nan = used
            .iter()
            .any(|(bit, c)| mask & bit != 0 && column_has_nan(&c[i..end]));
        if !any_nan {
            clean_span(k, cols, out, i, end);
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

#[derive(Clone)]
struct CopyK;

impl Kernel for CopyK {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<[f64; 4]> {
        Some([b.c, 0.0, 0.0, 0.0])
    }
}

/// Runs `k` over the series; false when cancelled midway. Averages inside
/// the common kernels are taken out of their enum first, so that the loop
/// runs on concrete types (the arithmetic, and so the result, is the same).
pub fn run(
    k: &mut AnyK,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    run_state(k, mask, cols, out, cancelled)
}

/// Like [`run`] for a kernel that is discarded afterwards: NaN-free series
/// (after any leading NaNs) go through a specialised loop where one exists.
pub fn run_fresh(
    k: &mut AnyK,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    let n = cols.n;
    // Leading NaNs are skipped here; a NaN further on is noticed by the
    // specialised loop as it reads the data, and the series is then run
    // through the state machine instead.
    let begin = (0..n).find(|&i| !cols.has_nan(i, mask)).unwrap_or(n);
    if out.rows.iter().all(|r| r.len() >= n) {
        let sub = cols.range(begin, n);
        let mut rows: Vec<&mut [f64]> = out.rows.iter_mut().map(|r| &mut r[begin..n]).collect();
        if super::fast::run(k, &sub, &mut rows) == Some(false) {
            for r in out.rows.iter_mut() {
                r[..begin].fill(f64::NAN);
            }
            return true;
        }
    }
    run_state(k, mask, cols, out, cancelled)
}

fn run_state(
    k: &mut AnyK,
    mask: u8,
    cols: &Cols<'_>,
    out: &mut OutRows<'_>,
    cancelled: &dyn Fn() -> bool,
) -> bool {
    macro_rules! go {
        ($kern:expr, |$kk:ident| $back:expr) => {{
            let mut $kk = $kern;
            let done = run_typed(&mut $kk, mask, cols, out, cancelled);
            $back;
            done
        }};
    }
    macro_rules! sc {
        ($s:expr) => {{
            let s = $s;
            go!(ScalarK(s.clone()), |kk| *s = kk.0)
        }};
    }
    match k {
        AnyK::Ma(m) => match &mut m.ma {
            Ma::Copy => run_typed(&mut CopyK, mask, cols, out, cancelled),
            Ma::Sma(s) => sc!(s),
            Ma::Ema(s) => sc!(s),
            Ma::Wma(s) => sc!(s),
            Ma::Dema(s) => sc!(s),
            Ma::Tema(s) => sc!(s),
            Ma::Trima(s) => sc!(s),
            Ma::Kama(s) => sc!(s),
            Ma::Mama(s) => sc!(&mut **s),
            Ma::T3(s) => sc!(s),
        },
        AnyK::Macd(m) => {
            let m = &mut **m;
            let (mode, fskip, sskip) = (m.mode, m.fast.skip, m.slow.skip);
            let ppo = mode == 2;
            let super::kernels::Macd {
                fast, slow, signal, ..
            } = m;
            match (mode, &mut fast.ma, &mut slow.ma, signal) {
                (0, Ma::Ema(f), Ma::Ema(sl), Some(Ma::Ema(sig))) if sskip == 0 => go!(
                    MacdEma {
                        skip: fskip,
                        fast: f.clone(),
                        slow: sl.clone(),
                        sig: sig.clone(),
                    },
                    |kk| {
                        fast.skip = kk.skip;
                        *f = kk.fast;
                        *sl = kk.slow;
                        *sig = kk.sig;
                    }
                ),
                (1 | 2, Ma::Ema(f), Ma::Ema(sl), _) if fskip == 0 && sskip == 0 => go!(
                    PoG {
                        fast: f.clone(),
                        slow: sl.clone(),
                        ppo
                    },
                    |kk| {
                        *f = kk.fast;
                        *sl = kk.slow;
                    }
                ),
                (1 | 2, Ma::Sma(f), Ma::Sma(sl), _) if fskip == 0 && sskip == 0 => go!(
                    PoG {
                        fast: f.clone(),
                        slow: sl.clone(),
                        ppo
                    },
                    |kk| {
                        *f = kk.fast;
                        *sl = kk.slow;
                    }
                ),
                _ => run_typed(m, mask, cols, out, cancelled),
            }
        }
        AnyK::Stoch(st) => {
            let st = &mut **st;
            let super::kernels::Stoch { k: fk, ma1, ma2 } = st;
            match (ma1, ma2) {
                (Ma::Sma(a), Some(Ma::Sma(b))) => go!(
                    StochG {
                        k: fk.clone(),
                        ma1: a.clone(),
                        ma2: Some(b.clone()),
                    },
                    |kk| {
                        *fk = kk.k;
                        *a = kk.ma1;
                        if let Some(x) = kk.ma2 {
                            *b = x;
                        }
                    }
                ),
                (Ma::Sma(a), None) => go!(
                    StochG::<Sma, Sma> {
                        k: fk.clone(),
                        ma1: a.clone(),
                        ma2: None,
                    },
                    |kk| {
                        *fk = kk.k;
                        *a = kk.ma1;
                    }
                ),
                _ => run_typed(st, mask, cols, out, cancelled),
            }
        }
        AnyK::Bbands(bb) => {
            let bb = &mut **bb;
            let (up, dn) = (bb.up, bb.dn);
            let super::kernels::Bbands { ma, var, .. } = bb;
            match ma {
                Ma::Sma(a) => go!(
                    BbandsG {
                        ma: a.clone(),
                        var: var.clone(),
                        up,
                        dn
                    },
                    |kk| {
                        *a = kk.ma;
                        *var = kk.var;
                    }
                ),
                Ma::Ema(a) => go!(
                    BbandsG {
                        ma: a.clone(),
                        var: var.clone(),
                        up,
                        dn
                    },
                    |kk| {
                        *a = kk.ma;
                        *var = kk.var;
                    }
                ),
                _ => run_typed(bb, mask, cols, out, cancelled),
            }
        }
        AnyK::StochRsi(b) => run_typed(&mut **b, mask, cols, out, cancelled),
        AnyK::Keltner(b) => run_typed(&mut **b, mask, cols, out, cancelled),
        AnyK::Ichimoku(b) => run_typed(&mut **b, mask, cols, out, cancelled),
        _ => crate::with_kernel!(k, kk => run_typed(kk, mask, cols, out, cancelled)),
    }
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
