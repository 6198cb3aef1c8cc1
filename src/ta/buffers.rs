//! The result-buffer pool. Large results are fresh memory pages, and the
//! kernel zeroes every page on first touch; that costs as much as many
//! indicators themselves. Arrays returned to Python keep their buffer alive
//! through a small owner object (in `py.rs`); when Python frees the array,
//! the buffer comes back here through [`give`] (up to a byte limit) and the
//! next result of a similar size reuses it, already mapped.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

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

pub fn give(mut v: Vec<f64>) {
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
