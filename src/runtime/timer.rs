//! A precise timer for wall-clock deadlines.
//!
//! tokio's timer wheel ticks in whole milliseconds; schedulers need better.
//! One thread ("ferrotick-timer") keeps the pending deadlines in a heap and
//! waits on a condition variable until the earliest one (a futex wait with
//! nanosecond timeout: wake-ups land within tens of microseconds). Deadlines
//! are wall-clock instants and the thread re-reads the wall clock at least
//! every 250 ms, so a clock step (NTP, suspend) fires due deadlines instead
//! of sleeping through them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

const RECHECK: Duration = Duration::from_millis(250);

/// What to wake when a deadline passes.
enum Wake {
    Channel(oneshot::Sender<()>),
    /// A Python awaitable, completed straight into its loop's queue.
    Future(super::bridge::Completer),
}

impl Wake {
    fn abandoned(&self) -> bool {
        match self {
            Wake::Channel(tx) => tx.is_closed(),
            Wake::Future(c) => c.is_abandoned(),
        }
    }

    fn fire(self) {
        match self {
            Wake::Channel(tx) => {
                let _ = tx.send(());
            }
            Wake::Future(c) => c.complete(Ok(Box::new(|py: pyo3::Python<'_>| Ok(py.None())))),
        }
    }
}

struct Entry {
    deadline_us: i64,
    seq: u64,
    wake: Wake,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline_us, self.seq) == (o.deadline_us, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.deadline_us, self.seq).cmp(&(o.deadline_us, o.seq))
    }
}

struct Shared {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    cv: Condvar,
}

struct Timer {
    generation: u64,
    shared: Arc<Shared>,
}

static TIMER: Mutex<Option<Timer>> = Mutex::new(None);

pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

fn run(shared: Arc<Shared>) {
    let mut guard = match shared.heap.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let mut due: Vec<Wake> = Vec::new();
    loop {
        let now = now_us();
        while let Some(Reverse(top)) = guard.0.peek() {
            if top.deadline_us > now {
                break;
            }
            if let Some(Reverse(e)) = guard.0.pop() {
                due.push(e.wake);
            }
        }
        if !due.is_empty() {
            // wake outside the lock: a completion may write to a loop's eventfd
            drop(guard);
            for w in due.drain(..) {
                w.fire();
            }
            guard = match shared.heap.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            continue;
        }
        // drop entries whose waiter went away (cancelled sleeps)
        if guard.0.len() > 64
            && guard
                .0
                .iter()
                .filter(|Reverse(e)| e.wake.abandoned())
                .count()
                > guard.0.len() / 2
        {
            let kept: Vec<_> = std::mem::take(&mut guard.0)
                .into_iter()
                .filter(|Reverse(e)| !e.wake.abandoned())
                .collect();
            guard.0 = kept.into_iter().collect();
        }
        let wait = match guard.0.peek() {
            Some(Reverse(top)) => {
                Duration::from_micros((top.deadline_us - now).max(0) as u64).min(RECHECK)
            }
            None => RECHECK,
        };
        guard = match shared.cv.wait_timeout(guard, wait) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

fn shared() -> Arc<Shared> {
    let gen = super::fork_generation();
    let mut t = match TIMER.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if let Some(timer) = t.as_ref() {
        if timer.generation == gen {
            return timer.shared.clone();
        }
    }
    if let Some(old) = t.take() {
        // inherited from the parent: its thread does not exist here
        std::mem::forget(old);
    }
    let shared = Arc::new(Shared {
        heap: Mutex::new((BinaryHeap::new(), 0)),
        cv: Condvar::new(),
    });
    let s2 = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("ferrotick-timer".into())
        .spawn(move || run(s2));
    if spawned.is_err() {
        tracing::error!(target: "ferrotick::runtime", "could not start the timer thread");
    }
    *t = Some(Timer {
        generation: gen,
        shared: shared.clone(),
    });
    shared
}

fn schedule(deadline_us: i64, wake: Wake) {
    let s = shared();
    let mut g = match s.heap.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    g.1 += 1;
    let seq = g.1;
    let earliest = g.0.peek().map(|Reverse(e)| e.deadline_us);
    g.0.push(Reverse(Entry {
        deadline_us,
        seq,
        wake,
    }));
    drop(g);
    if earliest.is_none_or(|e| deadline_us < e) {
        s.cv.notify_one();
    }
}

/// Resolves when the wall clock reaches `deadline_us` (unix microseconds).
pub fn until(deadline_us: i64) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    if deadline_us <= now_us() {
        let _ = tx.send(());
        return rx;
    }
    schedule(deadline_us, Wake::Channel(tx));
    rx
}

/// Completes a Python awaitable at `deadline_us`, from the timer thread
/// straight into its loop's queue (no tokio task per sleep).
pub fn complete_at(deadline_us: i64, completer: super::bridge::Completer) {
    schedule(deadline_us, Wake::Future(completer));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_and_on_time() {
        let start = now_us();
        let late = until(start + 30_000);
        let early = until(start + 10_000);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            early.await.expect("fires");
            let t1 = now_us();
            assert!(t1 - start >= 10_000, "not early");
            late.await.expect("fires");
            let t2 = now_us();
            assert!(t2 - start >= 30_000, "not early");
            assert!(t2 - start < 200_000, "on time");
        });
        // a past deadline resolves at once
        assert!(until(start - 1).try_recv().is_ok());
    }
}
