//! Running a state machine over whole arrays, and the compute (rayon) pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rayon::prelude::*;

use super::cols::{has_fma, Cols, OutRows};
use super::kernels::{
    Bar, ConcreteBbands, ConcreteMa, ConcretePriceOscillator, ConcreteStoch, Kernel, MacdEma, I_C,
    I_H, I_L, I_O, I_V,
};
use super::ma::{Ma, Sma};
use super::registry::AnyKernel;
use crate::errors::{FtError, FtResult};

/// Bars per NaN check (fits the L2 cache with five inputs).
const CHUNK_SCAN: usize = 1 << 14;

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
struct CopyKernel;

impl Kernel for CopyKernel {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<[f64; 4]> {
        Some([b.c, 0.0, 0.0, 0.0])
    }
}

/// Runs `k` over the series; false when cancelled midway. Averages inside
/// the common kernels are taken out of their enum first, so that the loop
/// runs on concrete types (the arithmetic, and so the result, is the same).
pub fn run(
    k: &mut AnyKernel,
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
    k: &mut AnyKernel,
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
    k: &mut AnyKernel,
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
            go!(ConcreteMa(s.clone()), |kk| *s = kk.0)
        }};
    }
    match k {
        AnyKernel::Ma(m) => match &mut m.ma {
            Ma::Copy => run_typed(&mut CopyKernel, mask, cols, out, cancelled),
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
        AnyKernel::Macd(m) => {
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
                    ConcretePriceOscillator {
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
                    ConcretePriceOscillator {
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
        AnyKernel::Stoch(st) => {
            let st = &mut **st;
            let super::kernels::Stoch { k: fk, ma1, ma2 } = st;
            match (ma1, ma2) {
                (Ma::Sma(a), Some(Ma::Sma(b))) => go!(
                    ConcreteStoch {
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
                    ConcreteStoch::<Sma, Sma> {
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
        AnyKernel::Bbands(bb) => {
            let bb = &mut **bb;
            let (up, dn) = (bb.up, bb.dn);
            let super::kernels::Bbands { ma, var, .. } = bb;
            match ma {
                Ma::Sma(a) => go!(
                    ConcreteBbands {
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
                    ConcreteBbands {
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
        AnyKernel::StochRsi(b) => run_typed(&mut **b, mask, cols, out, cancelled),
        AnyKernel::Keltner(b) => run_typed(&mut **b, mask, cols, out, cancelled),
        AnyKernel::Ichimoku(b) => run_typed(&mut **b, mask, cols, out, cancelled),
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
// ---------------------------------------------------------------------------
// Batch plans: many indicators over many series on the compute pool
// ---------------------------------------------------------------------------

/// Owned copy of one series' inputs (async calls copy their inputs, so the
/// caller may change its arrays while the work runs).
pub(crate) struct OwnedSeries {
    pub(crate) cols: Vec<(u8, Vec<f64>)>,
    pub(crate) n: usize,
}

impl OwnedSeries {
    pub(crate) fn cols(&self) -> Cols<'_> {
        let v: Vec<(u8, &[f64])> = self.cols.iter().map(|(b, c)| (*b, c.as_slice())).collect();
        let mut c = Cols::new(&v);
        c.n = self.n;
        c
    }
}

/// Raw pointer to an output buffer shared by the pool's threads; each task
/// writes a disjoint row.
#[derive(Clone, Copy)]
pub(crate) struct RowPtr(pub(crate) *mut f64);
// SAFETY: tasks write disjoint rows (one task per (indicator, series) pair,
// each row belongs to exactly one pair) and the buffers outlive the
// parallel loop, which joins before they are read.
unsafe impl Send for RowPtr {}
// SAFETY: as for Send: no two threads touch the same row.
unsafe impl Sync for RowPtr {}

pub(crate) struct BatchPlan {
    pub(crate) kernels: Vec<(AnyKernel, u8, usize)>,
    pub(crate) series: Vec<OwnedOrBorrowed>,
}

pub(crate) enum OwnedOrBorrowed {
    Owned(OwnedSeries),
    Borrowed(Vec<(u8, usize, usize)>), // (bit, ptr, len) of arrays kept alive by the caller
}

impl OwnedOrBorrowed {
    pub(crate) fn n(&self) -> usize {
        match self {
            OwnedOrBorrowed::Owned(s) => s.n,
            OwnedOrBorrowed::Borrowed(v) => v.first().map(|c| c.2).unwrap_or(0),
        }
    }
}

/// Runs every (indicator, series) pair; `outs[i][o]` is one buffer of
/// `nseries * stride` values (row-major) per indicator output.
pub(crate) fn run_plan(
    plan: &mut BatchPlan,
    outs: &[Vec<RowPtr>],
    offsets: &[usize],
    cancel: &(dyn Fn() -> bool + Sync),
) -> bool {
    let nser = plan.series.len();
    let stop = AtomicBool::new(false);
    let kernels = &plan.kernels;
    let series = &plan.series;
    (0..kernels.len() * nser).into_par_iter().for_each(|task| {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if cancel() {
            stop.store(true, Ordering::Relaxed);
            return;
        }
        let (ki, si) = (task / nser, task % nser);
        let (proto, mask, nout) = &kernels[ki];
        let mut k = proto.clone();
        let s = &series[si];
        let n = s.n();
        let mut rows: Vec<&mut [f64]> = Vec::with_capacity(*nout);
        for ptr in outs[ki].iter().take(*nout) {
            let base = ptr.0;
            // SAFETY: row `si` of output `o` of indicator `ki` is written by
            // this task only; offsets[si] + n is within the buffer.
            rows.push(unsafe { std::slice::from_raw_parts_mut(base.add(offsets[si]), n) });
        }
        let mut out = OutRows { rows };
        let ok = match s {
            OwnedOrBorrowed::Owned(o) => {
                let c = o.cols();
                run_fresh(&mut k, *mask, &c, &mut out, cancel)
            }
            OwnedOrBorrowed::Borrowed(v) => {
                let sl: Vec<(u8, &[f64])> = v
                    .iter()
                    .map(|(b, p, len)| {
                        // SAFETY: the caller keeps the arrays alive (and
                        // borrowed read-only) until the loop has joined.
                        (*b, unsafe {
                            std::slice::from_raw_parts(*p as *const f64, *len)
                        })
                    })
                    .collect();
                let c = Cols::new(&sl);
                run_fresh(&mut k, *mask, &c, &mut out, cancel)
            }
        };
        if !ok {
            stop.store(true, Ordering::Relaxed);
        }
    });
    !stop.load(Ordering::Relaxed)
}
