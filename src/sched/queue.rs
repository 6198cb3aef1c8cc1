//! The scheduler's run queue: jobs ordered by their next run time.
//!
//! A binary min-heap of (run time, insertion order) keyed entries, each
//! carrying the job's version at the time it was queued and the job object.
//! `pop_due` hands Python every entry due at an instant in one call, which is
//! what a wake-up serving a thousand simultaneous run times needs: Python's
//! `heapq` pops tuples whose first elements tie and compares them element by
//! element in the interpreter (~0.7 µs an entry), here it is a few tens of
//! nanoseconds.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::errors::{FtError, FtResult};

/// An entry's place in the queue: run time, then queueing order.
#[derive(Clone, Copy, Debug)]
struct Key {
    t: f64,
    seq: u64,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    // reversed: BinaryHeap is a max-heap, the earliest run time (then the
    // earliest queued) must come out first
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

struct Entry<T> {
    key: Key,
    version: i64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// Items (the scheduler's jobs) by next run time, each with the version it
/// was queued at.
pub struct RunQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        RunQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> RunQueue<T> {
    /// Queues `item` (at `version`) to run at unix time `t`.
    pub fn push(&mut self, t: f64, version: i64, item: T) -> FtResult<()> {
        if !t.is_finite() {
            return Err(FtError::config(format!(
                "t: expected a finite unix time, got {t}"
            )));
        }
        self.seq += 1;
        self.heap.push(Entry {
            key: Key { t, seq: self.seq },
            version,
            item,
        });
        Ok(())
    }

    /// Removes every entry due at `now` (run time <= now) and hands each to
    /// `f` as (version, item), in run time order then queueing order.
    pub fn pop_due<E>(
        &mut self,
        now: f64,
        mut f: impl FnMut(i64, T) -> Result<(), E>,
    ) -> Result<(), E> {
        while self.heap.peek().is_some_and(|e| e.key.t <= now) {
            if let Some(e) = self.heap.pop() {
                f(e.version, e.item)?;
            }
        }
        Ok(())
    }

    /// The earliest entry as (run time, version, item).
    pub fn peek(&self) -> Option<(f64, i64, &T)> {
        self.heap.peek().map(|e| (e.key.t, e.version, &e.item))
    }

    /// Removes the earliest entry.
    pub fn pop(&mut self) {
        self.heap.pop();
    }

    /// When to wake up for the earliest run time: at the latest run time
    /// within `slack` seconds after it (at most 64 entries looked at), so that
    /// one wake-up serves them all, none is run early and none more than
    /// `slack` late; a run time with no other in its window is woken for
    /// exactly. None when the queue is empty.
    pub fn batch_end(&self, slack: f64) -> Option<f64> {
        let items = self.heap.as_slice();
        let first = items.first()?.key.t;
        if slack.is_nan() || slack <= 0.0 {
            return Some(first);
        }
        let limit = first + slack;
        // the entries at or before `limit` form a subtree at the root
        let mut latest = first;
        let mut stack = [0usize; 130];
        let mut top = 0usize;
        stack[top] = 1;
        stack[top + 1] = 2;
        top += 2;
        let mut seen = 0;
        while top > 0 && seen < 64 {
            top -= 1;
            let i = stack[top];
            let Some(e) = items.get(i) else { continue };
            if e.key.t > limit {
                continue;
            }
            seen += 1;
            if e.key.t > latest {
                latest = e.key.t;
            }
            if top + 2 <= stack.len() {
                stack[top] = 2 * i + 1;
                stack[top + 1] = 2 * i + 2;
                top += 2;
            }
        }
        Some(latest)
    }

    /// How many entries run at or before `t`, counting at most `cap` (the
    /// entries at or before `t` form a subtree at the root: O(cap)).
    pub fn count_until(&self, t: f64, cap: usize) -> usize {
        let items = self.heap.as_slice();
        let mut stack = vec![0usize];
        let mut seen = 0;
        while seen < cap {
            let Some(i) = stack.pop() else { break };
            let Some(e) = items.get(i) else { continue };
            if e.key.t > t {
                continue;
            }
            seen += 1;
            stack.push(2 * i + 1);
            stack.push(2 * i + 2);
        }
        seen
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Every queued item, in no particular order.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.heap.iter().map(|e| &e.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_then_first_queued_comes_out_first() {
        let mut h = BinaryHeap::new();
        for (i, t) in [3.0, 1.0, 2.0, 1.0, 0.5].iter().enumerate() {
            h.push(Key {
                t: *t,
                seq: i as u64,
            });
        }
        let order: Vec<(f64, u64)> = std::iter::from_fn(|| h.pop().map(|k| (k.t, k.seq))).collect();
        assert_eq!(
            order,
            vec![(0.5, 4), (1.0, 1), (1.0, 3), (2.0, 2), (3.0, 0)]
        );
    }

    #[test]
    fn due_entries_and_batch_windows() {
        let mut q = RunQueue::default();
        for (t, v) in [(5.0, 1), (1.0, 2), (1.2, 3), (9.0, 4)] {
            q.push(t, v, t as i64).unwrap();
        }
        assert!(q.push(f64::NAN, 0, 0).is_err());
        assert_eq!(q.batch_end(0.5), Some(1.2));
        assert_eq!(q.batch_end(0.0), Some(1.0));
        assert_eq!(q.count_until(5.0, 100), 3);
        let mut got = Vec::new();
        q.pop_due(2.0, |v, _| {
            got.push(v);
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(got, vec![2, 3]);
        assert_eq!(q.peek().map(|e| e.1), Some(1));
        assert_eq!(q.len(), 2);
    }
}
