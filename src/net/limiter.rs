//! A sliding-window rate limiter: never more than `max` weight in any span of
//! `window`, the first request included (no burst above the rate at start).
//!
//! Each grant is recorded with the time it takes effect. A caller that does
//! not fit now reserves the earliest time at which it fits; reservations
//! keep first-come first-served order, and a cancelled waiter gives its
//! reservation back.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::errors::{FtError, FtResult};

#[derive(Debug)]
struct Grant {
    at: Instant,
    weight: u64,
    id: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct LimiterStats {
    pub granted: u64,
    pub waited: u64,
    pub wait_seconds: f64,
    pub rejected: u64,
    pub cancelled: u64,
}

pub struct SlidingWindow {
    max: u64,
    window: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    grants: VecDeque<Grant>,
    /// Sum of the weights in `grants`.
    total: u64,
    next_id: u64,
    stats: LimiterStats,
}

/// The outcome of asking for a slot.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot {
    /// Granted now.
    Now,
    /// Reserved: wait until `at`; `id` cancels the reservation.
    At(Instant, u64),
}

impl SlidingWindow {
    pub fn new(max: u64, window: Duration) -> FtResult<Self> {
        if max == 0 {
            return Err(FtError::config("max_requests: must be at least 1"));
        }
        if window.is_zero() {
            return Err(FtError::config("time_window: must be positive"));
        }
        Ok(SlidingWindow {
            max,
            window,
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn check_weight(&self, weight: u64) -> FtResult<()> {
        if weight == 0 {
            return Err(FtError::config("weight: must be at least 1"));
        }
        if weight > self.max {
            return Err(FtError::config(format!(
                "weight: {weight} exceeds max_requests ({}); it could never be granted",
                self.max
            )));
        }
        Ok(())
    }

    fn expire(&self, g: &mut Inner, now: Instant) {
        while let Some(front) = g.grants.front() {
            if front.at + self.window <= now {
                g.total -= front.weight;
                g.grants.pop_front();
            } else {
                break;
            }
        }
    }

    /// The earliest time >= max(now, last grant) at which `weight` fits.
    /// Expired grants are gone (see `expire`), so when nothing is reserved
    /// ahead this is O(1): everything left counts.
    fn earliest(&self, g: &Inner, now: Instant, weight: u64) -> Instant {
        let mut t = g.grants.back().map_or(now, |b| b.at.max(now));
        let mut in_window = g.total;
        let mut i = 0;
        while i < g.grants.len() {
            let e = &g.grants[i];
            if e.at + self.window <= t {
                in_window -= e.weight;
            } else if in_window + weight > self.max {
                t = e.at + self.window;
                in_window -= e.weight;
            } else {
                break;
            }
            i += 1;
        }
        t
    }

    /// Grants now or reserves the earliest slot.
    pub fn reserve(&self, weight: u64) -> FtResult<Slot> {
        self.check_weight(weight)?;
        let now = Instant::now();
        let mut g = self.inner.lock();
        self.expire(&mut g, now);
        let t = self.earliest(&g, now, weight);
        g.next_id += 1;
        let id = g.next_id;
        g.grants.push_back(Grant { at: t, weight, id });
        g.total += weight;
        g.stats.granted += 1;
        if t <= now {
            Ok(Slot::Now)
        } else {
            g.stats.waited += 1;
            g.stats.wait_seconds += (t - now).as_secs_f64();
            Ok(Slot::At(t, id))
        }
    }

    /// Grants only if `weight` fits now.
    pub fn try_acquire(&self, weight: u64) -> FtResult<bool> {
        self.check_weight(weight)?;
        let now = Instant::now();
        let mut g = self.inner.lock();
        self.expire(&mut g, now);
        if self.earliest(&g, now, weight) <= now {
            g.next_id += 1;
            let id = g.next_id;
            g.grants.push_back(Grant {
                at: now,
                weight,
                id,
            });
            g.total += weight;
            g.stats.granted += 1;
            Ok(true)
        } else {
            g.stats.rejected += 1;
            Ok(false)
        }
    }

    /// Gives back a reservation whose waiter went away.
    pub fn cancel(&self, id: u64) {
        let mut g = self.inner.lock();
        if let Some(pos) = g.grants.iter().position(|e| e.id == id) {
            if let Some(e) = g.grants.remove(pos) {
                g.total -= e.weight;
                g.stats.granted -= 1;
                g.stats.cancelled += 1;
            }
        }
    }

    /// Weight granted within the window ending now.
    pub fn current(&self) -> u64 {
        let now = Instant::now();
        let mut g = self.inner.lock();
        self.expire(&mut g, now);
        g.grants
            .iter()
            .filter(|e| e.at <= now)
            .map(|e| e.weight)
            .sum()
    }

    pub fn stats(&self) -> LimiterStats {
        self.inner.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_max_in_any_window() {
        let w = SlidingWindow::new(5, Duration::from_millis(100)).expect("valid");
        let mut times = Vec::new();
        for _ in 0..23 {
            let before = Instant::now();
            match w.reserve(1).expect("ok") {
                // an immediate grant takes effect no earlier than `before`
                Slot::Now => times.push(before),
                Slot::At(t, _) => times.push(t),
            }
        }
        // any 6 consecutive grants span at least one window
        for win in times.windows(6) {
            assert!(win[5] - win[0] >= Duration::from_millis(100));
        }
        // the first 5 are immediate, the sixth waits a full window
        assert!(times[5] - times[0] >= Duration::from_millis(100));
    }

    #[test]
    fn weights_and_errors() {
        let w = SlidingWindow::new(10, Duration::from_secs(1)).expect("valid");
        assert!(w.reserve(11).is_err());
        assert!(w.reserve(0).is_err());
        assert!(w.try_acquire(7).expect("ok"));
        assert!(!w.try_acquire(4).expect("ok"));
        assert!(w.try_acquire(3).expect("ok"));
        assert_eq!(w.current(), 10);
        match w.reserve(2).expect("ok") {
            Slot::At(_, id) => w.cancel(id),
            Slot::Now => panic!("must wait"),
        }
        assert_eq!(w.stats().cancelled, 1);
        assert!(SlidingWindow::new(0, Duration::from_secs(1)).is_err());
    }
}
