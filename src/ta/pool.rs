//! Recycled output buffers. Large results are fresh memory pages, and the
//! kernel zeroes every page on first touch; that costs as much as many
//! indicators themselves. Arrays returned to Python keep their buffer alive
//! through a small owner object; when Python frees the array, the buffer
//! goes back to this pool (up to a byte limit) and the next result of a
//! similar size reuses it, already mapped.

use std::sync::atomic::{AtomicUsize, Ordering};

use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::{PyArray1, PyArray2};
use parking_lot::Mutex;
use pyo3::prelude::*;

/// Default limit of the bytes kept for reuse (see `set_limit`).
pub const DEFAULT_LIMIT: usize = 1 << 30;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);

struct Pool {
    bufs: Vec<Vec<f64>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bufs: Vec::new(),
    bytes: 0,
});

/// Buffers under this many values are left to the allocator, which reuses
/// small blocks well on its own.
const MIN_LEN: usize = 1 << 14;

pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
    let mut p = POOL.lock();
    while p.bytes > bytes {
        match p.bufs.pop() {
            Some(b) => p.bytes -= b.capacity() * 8,
            None => break,
        }
    }
}

pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

pub fn held_bytes() -> usize {
    POOL.lock().bytes
}

/// A buffer of `len` values whose contents are unspecified; the caller
/// writes every slot before reading any.
#[allow(clippy::uninit_vec)] // see the SAFETY notes: every slot is written before any read
pub fn take(len: usize) -> Vec<f64> {
    if len >= MIN_LEN {
        let mut p = POOL.lock();
        // Best fit between len and 2 * len.
        // The most recently returned buffer that fits (last in, first out):
        // its lines are likely still in cache, where an older one would make
        // every store of the result miss (and wait for its line to load).
        let found = p
            .bufs
            .iter()
            .rposition(|b| b.capacity() >= len && b.capacity() <= 2 * len);
        if let Some(i) = found {
            let c = p.bufs[i].capacity();
            let mut v = p.bufs.remove(i);
            p.bytes -= c * 8;
            drop(p);
            // SAFETY: len <= capacity, and every slot below the capacity
            // holds an f64 written by an earlier result (any bit pattern is
            // a valid f64); the caller overwrites them all.
            unsafe { v.set_len(len) };
            return v;
        }
    }
    let mut v = Vec::with_capacity(len);
    // SAFETY: f64 has no invalid bit patterns and no drop glue; the caller
    // writes every slot before the buffer is read or handed to Python, and
    // drops it unread otherwise. Untouched pages are faulted in by the
    // threads that write them, in parallel.
    unsafe { v.set_len(len) };
    v
}

fn give(mut v: Vec<f64>) {
    let cap = v.capacity();
    if cap < MIN_LEN {
        return;
    }
    let mut p = POOL.lock();
    if p.bytes + cap * 8 <= limit() {
        v.clear();
        p.bytes += cap * 8;
        p.bufs.push(v);
    }
}

/// Owns the buffer behind arrays handed to Python.
#[pyclass(module = "ferrotick.ta", name = "_Buffer", frozen)]
pub struct Buffer {
    v: Mutex<Vec<f64>>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        give(std::mem::take(self.v.get_mut()));
    }
}

fn owner(py: Python<'_>, v: Vec<f64>) -> PyResult<(Bound<'_, Buffer>, *const f64)> {
    let ptr = v.as_ptr();
    let b = Bound::new(py, Buffer { v: Mutex::new(v) })?;
    Ok((b, ptr))
}

/// A 1-D array over `v` (length `v.len()`).
pub fn array1(py: Python<'_>, v: Vec<f64>) -> PyResult<Bound<'_, PyArray1<f64>>> {
    let n = v.len();
    let (b, ptr) = owner(py, v)?;
    // SAFETY: `ptr` points to `n` initialised f64 owned by `b`'s buffer,
    // which is never reallocated or touched until `b` is dropped; `b`
    // becomes the array's base object, so it outlives the array.
    unsafe {
        let view = ArrayView1::from_shape_ptr(n, ptr);
        Ok(PyArray1::borrow_from_array(&view, b.into_any()))
    }
}

/// A C-contiguous 2-D array (rows x cols) over `v`.
pub fn array2(
    py: Python<'_>,
    v: Vec<f64>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<f64>>> {
    assert_eq!(v.len(), rows * cols);
    let (b, ptr) = owner(py, v)?;
    // SAFETY: as in `array1`; rows * cols values are initialised.
    unsafe {
        let view = ArrayView2::from_shape_ptr((rows, cols), ptr);
        Ok(PyArray2::borrow_from_array(&view, b.into_any()))
    }
}
