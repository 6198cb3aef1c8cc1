//! A wall-clock timer a loop's selector waits on directly (Linux timerfd).
//!
//! The scheduler sleeps until one instant at a time. Parking a timer thread
//! to that instant and waking the loop from it costs two thread wake-ups per
//! firing (the timer thread for each new deadline, then the loop), each a
//! context switch that costs far more than the firing itself on a virtual
//! machine. A timerfd armed for an absolute CLOCK_REALTIME instant makes
//! the kernel wake the loop's own `epoll_wait` at that instant (hrtimer
//! precision, not the select timeout's milliseconds): one wake-up, no
//! thread. TFD_TIMER_CANCEL_ON_SET makes a wall-clock step (NTP, `date
//! -s`) wake the loop too, so due times are re-evaluated instead of slept
//! through; an instant passed during a suspend fires on resume.

use std::io;

/// `timerfd` for the scheduler's loop: `fileno()` goes to `add_reader`,
/// `arm(t)` sets the instant, `consume()` acknowledges a wake-up. The
/// caller checks that the timer is open and the instant finite.
pub struct WallTimer {
    fd: i32,
}

#[cfg(target_os = "linux")]
fn timespec(unix_seconds: f64) -> libc::timespec {
    let secs = unix_seconds.floor();
    let nanos = ((unix_seconds - secs) * 1e9)
        .round()
        .clamp(0.0, 999_999_999.0);
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos as libc::c_long,
    }
}

impl WallTimer {
    pub fn new() -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: timerfd_create takes two integer flags and returns a
            // new descriptor or -1; nothing else is touched.
            let fd = unsafe {
                libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(WallTimer { fd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "WallTimer needs Linux's timerfd",
            ))
        }
    }

    pub fn fileno(&self) -> i32 {
        self.fd
    }

    /// Fires at `unix_seconds` (wall clock); an instant already past fires
    /// at once. Replaces any earlier instant.
    pub fn arm(&self, unix_seconds: f64) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let mut value = timespec(unix_seconds);
            if value.tv_sec <= 0 && value.tv_nsec == 0 {
                value.tv_nsec = 1; // all zeros would disarm it
            }
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: value,
            };
            // SAFETY: `spec` is a valid itimerspec on our stack; the old
            // value is not requested (null); `fd` is our open timerfd.
            let rc = unsafe {
                libc::timerfd_settime(
                    self.fd,
                    libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
                    &spec,
                    std::ptr::null_mut(),
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Stops a pending instant.
    pub fn disarm(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.fd >= 0 {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let spec = libc::itimerspec {
                it_interval: zero,
                it_value: zero,
            };
            // SAFETY: as in `arm`; an all-zero value disarms.
            let rc = unsafe { libc::timerfd_settime(self.fd, 0, &spec, std::ptr::null_mut()) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Acknowledges a wake-up: True when the instant passed or the wall
    /// clock was set (re-evaluate), False when nothing happened (spurious).
    pub fn consume(&self) -> bool {
        #[cfg(target_os = "linux")]
        if self.fd >= 0 {
            let mut buf = [0u8; 8];
            // SAFETY: reads at most 8 bytes into our 8-byte buffer from our
            // non-blocking timerfd.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), 8) };
            if n == 8 {
                return true;
            }
            return io::Error::last_os_error().raw_os_error() == Some(libc::ECANCELED);
        }
        false
    }

    pub fn close(&mut self) {
        if self.fd >= 0 {
            // SAFETY: closes our own descriptor once; -1 marks it closed.
            unsafe { libc::close(self.fd) };
            self.fd = -1;
        }
    }

    pub fn closed(&self) -> bool {
        self.fd < 0
    }
}

impl Drop for WallTimer {
    fn drop(&mut self) {
        self.close();
    }
}
