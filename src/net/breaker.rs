//! Circuit breaker: CLOSED counts consecutive failures; at the threshold it
//! OPENs and fails fast for `recovery_timeout`; then HALF_OPEN lets one trial
//! through, whose success closes it and whose failure opens it again.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: State,
    failures: u32,
    opened_at: Option<Instant>,
    trial_in_flight: bool,
    opens: u64,
    rejected: u64,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    recovery: Duration,
    inner: Mutex<Inner>,
}

/// What the caller may do.
#[derive(Debug, PartialEq)]
pub enum Admit {
    /// Go ahead (`trial` is true for the half-open probe).
    Yes { trial: bool },
    /// Fail fast; seconds until a trial is allowed.
    No { retry_after: f64 },
}

impl Breaker {
    pub fn new(threshold: u32, recovery: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            recovery,
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: 0,
                opened_at: None,
                trial_in_flight: false,
                opens: 0,
                rejected: 0,
            }),
        }
    }

    pub fn admit(&self) -> Admit {
        let mut g = self.inner.lock();
        match g.state {
            State::Closed => Admit::Yes { trial: false },
            State::Open => {
                let since = g.opened_at.map(|t| t.elapsed()).unwrap_or_default();
                if since >= self.recovery {
                    g.state = State::HalfOpen;
                    g.trial_in_flight = true;
                    Admit::Yes { trial: true }
                } else {
                    g.rejected += 1;
                    Admit::No {
                        retry_after: (self.recovery - since).as_secs_f64(),
                    }
                }
            }
            State::HalfOpen => {
                if g.trial_in_flight {
                    g.rejected += 1;
                    Admit::No { retry_after: 0.0 }
                } else {
                    g.trial_in_flight = true;
                    Admit::Yes { trial: true }
                }
            }
        }
    }

    /// Records a success. Outside the trial, a call admitted before the
    /// breaker opened (a stale call) cannot close it.
    pub fn success(&self, trial: bool) {
        let mut g = self.inner.lock();
        if trial {
            g.state = State::Closed;
            g.trial_in_flight = false;
            g.opened_at = None;
            g.failures = 0;
        } else if g.state == State::Closed {
            g.failures = 0;
        }
    }

    pub fn failure(&self, trial: bool) {
        let mut g = self.inner.lock();
        if !trial && g.state != State::Closed {
            // a stale call failing while open or half-open changes nothing
            return;
        }
        g.failures = g.failures.saturating_add(1);
        if trial || g.failures >= self.threshold {
            if g.state != State::Open {
                g.opens += 1;
            }
            g.state = State::Open;
            g.opened_at = Some(Instant::now());
            g.trial_in_flight = false;
        }
    }

    /// The call ended without a verdict (cancelled, or an exception the
    /// breaker does not count): a half-open trial slot is released.
    pub fn neutral(&self, trial: bool) {
        if trial {
            let mut g = self.inner.lock();
            g.trial_in_flight = false;
        }
    }

    pub fn state(&self) -> State {
        let g = self.inner.lock();
        if g.state == State::Open && g.opened_at.is_some_and(|t| t.elapsed() >= self.recovery) {
            // reported as half-open once a trial would be admitted
            return State::HalfOpen;
        }
        g.state
    }

    pub fn failures(&self) -> u32 {
        self.inner.lock().failures
    }

    pub fn counts(&self) -> (u64, u64) {
        let g = self.inner.lock();
        (g.opens, g.rejected)
    }

    pub fn reset(&self) {
        let mut g = self.inner.lock();
        g.state = State::Closed;
        g.failures = 0;
        g.opened_at = None;
        g.trial_in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_half_opens_and_closes() {
        let b = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            assert_eq!(b.admit(), Admit::Yes { trial: false });
            b.failure(false);
        }
        assert_eq!(b.state(), State::Closed);
        b.success(false);
        assert_eq!(b.failures(), 0);
        for _ in 0..3 {
            b.failure(false);
        }
        assert_eq!(b.state(), State::Open);
        assert!(matches!(b.admit(), Admit::No { .. }));
        std::thread::sleep(Duration::from_millis(35));
        assert_eq!(b.admit(), Admit::Yes { trial: true });
        assert!(matches!(b.admit(), Admit::No { .. }), "one trial at a time");
        b.failure(true);
        assert!(
            matches!(b.admit(), Admit::No { .. }),
            "failed trial reopens"
        );
        std::thread::sleep(Duration::from_millis(35));
        assert_eq!(b.admit(), Admit::Yes { trial: true });
        b.success(true);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.counts().0, 2);
    }
}
