//! Python wrappers: RateLimiter and the circuit breaker core.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use super::breaker::{Admit, Breaker};
use super::limiter::{SlidingWindow, Slot};
use crate::args::{duration_arg, weight_arg};
use crate::errors::{config_err, ErrorKind, FtError};
use crate::runtime::blocking;
use crate::runtime::bridge::{self, Converter, FerrotickFuture};

/// Gives a reservation back if its waiter is dropped before the slot.
struct Reservation {
    limiter: Arc<SlidingWindow>,
    id: u64,
    done: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.cancel(self.id);
        }
    }
}

/// Sliding-window rate limiter: never more than `max_requests` (by weight)
/// in any span of `time_window` seconds, the first included.
#[pyclass(module = "ferrotick", name = "RateLimiter", frozen, subclass)]
pub struct RateLimiter {
    pub(crate) inner: Arc<SlidingWindow>,
}

#[pymethods]
impl RateLimiter {
    #[new]
    #[pyo3(signature = (max_requests, time_window=1.0))]
    fn new(max_requests: i64, time_window: f64) -> PyResult<Self> {
        if max_requests < 1 {
            return Err(config_err(format!(
                "max_requests: must be at least 1, got {max_requests}"
            )));
        }
        let window = duration_arg("time_window", time_window)?;
        let inner = SlidingWindow::new(max_requests as u64, window)?;
        Ok(RateLimiter {
            inner: Arc::new(inner),
        })
    }

    /// Waits until `weight` fits in the window; done at once when it does.
    #[pyo3(signature = (weight=1))]
    fn acquire<'py>(&self, py: Python<'py>, weight: i64) -> PyResult<Bound<'py, FerrotickFuture>> {
        let w = weight_arg(weight)?;
        match self.inner.reserve(w)? {
            Slot::Now => bridge::ready(py, py.None()),
            Slot::At(at, id) => {
                let guard = Reservation {
                    limiter: self.inner.clone(),
                    id,
                    done: false,
                };
                bridge::spawn(py, async move {
                    // move the whole guard in (not just the field it writes)
                    let mut guard = guard;
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    guard.done = true;
                    Ok(Box::new(|py: Python<'_>| Ok(py.None())) as Converter)
                })
            }
        }
    }

    /// Takes `weight` if it fits now; never waits.
    #[pyo3(signature = (weight=1))]
    fn try_acquire(&self, weight: i64) -> PyResult<bool> {
        let w = weight_arg(weight)?;
        Ok(self.inner.try_acquire(w)?)
    }

    /// Blocking twin of `acquire` (GIL released while waiting).
    #[pyo3(signature = (weight=1))]
    fn acquire_sync(&self, py: Python<'_>, weight: i64) -> PyResult<()> {
        blocking::ensure_no_running_loop(py, "RateLimiter.acquire_sync()")?;
        let w = weight_arg(weight)?;
        match self.inner.reserve(w)? {
            Slot::Now => Ok(()),
            Slot::At(at, id) => {
                let guard = Reservation {
                    limiter: self.inner.clone(),
                    id,
                    done: false,
                };
                blocking::block_on(py, "RateLimiter.acquire_sync()", async move {
                    let mut guard = guard;
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    guard.done = true;
                    Ok(())
                })
            }
        }
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, FerrotickFuture>> {
        slf.get().acquire(slf.py(), 1)
    }

    #[pyo3(signature = (*_args))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _args: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        bridge::ready(py, py.None())
    }

    #[getter]
    fn max_requests(&self) -> u64 {
        self.inner.max()
    }

    #[getter]
    fn time_window(&self) -> f64 {
        self.inner.window().as_secs_f64()
    }

    /// Weight granted in the window ending now.
    fn current(&self) -> u64 {
        self.inner.current()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("granted", s.granted)?;
        d.set_item("waited", s.waited)?;
        d.set_item("wait_seconds", s.wait_seconds)?;
        d.set_item("rejected", s.rejected)?;
        d.set_item("cancelled", s.cancelled)?;
        d.set_item("in_window", self.inner.current())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "RateLimiter(max_requests={}, time_window={})",
            self.inner.max(),
            self.inner.window().as_secs_f64()
        )
    }
}

/// The state machine behind `CircuitBreaker` (the Python class adds the
/// config object, the state enum, `call` and the decorator form).
#[pyclass(
    module = "ferrotick._core",
    name = "CircuitBreakerCore",
    frozen,
    subclass
)]
pub struct CircuitBreakerCore {
    inner: Arc<Breaker>,
    expected: Py<PyAny>,
    cancelled_error: Py<PyAny>,
    /// Who holds the half-open trial: the admitting task (or thread).
    trial_owner: parking_lot::Mutex<Option<usize>>,
    current_task: Py<PyAny>,
}

impl CircuitBreakerCore {
    fn caller_id(&self, py: Python<'_>) -> usize {
        match self.current_task.bind(py).call0() {
            Ok(t) if !t.is_none() => t.as_ptr() as usize,
            _ => {
                // no running task: the calling thread
                let id = std::thread::current().id();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&id, &mut h);
                std::hash::Hasher::finish(&h) as usize | 1
            }
        }
    }

    /// Whether the caller ending a call now holds the trial (and releases it).
    fn take_trial(&self, py: Python<'_>) -> bool {
        let mut owner = self.trial_owner.lock();
        match *owner {
            Some(o) if o == self.caller_id(py) => {
                *owner = None;
                true
            }
            _ => false,
        }
    }

    fn verdict(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let trial = self.take_trial(py);
        match exc_type {
            None => self.inner.success(trial),
            Some(t) if t.is_none() => self.inner.success(trial),
            Some(t) => {
                let is_cancel = t
                    .cast::<PyType>()
                    .map(|t| {
                        t.is_subclass(self.cancelled_error.bind(py))
                            .unwrap_or(false)
                    })
                    .unwrap_or(false);
                let counted = match exc {
                    Some(e) if !e.is_none() => e.is_instance(self.expected.bind(py))?,
                    _ => match t.cast::<PyType>() {
                        Ok(tt) => tt.is_subclass(self.expected.bind(py)).unwrap_or(false),
                        Err(_) => false,
                    },
                };
                if is_cancel || !counted {
                    self.inner.neutral(trial);
                } else {
                    self.inner.failure(trial);
                }
            }
        }
        Ok(())
    }
}

#[pymethods]
impl CircuitBreakerCore {
    #[new]
    #[pyo3(signature = (failure_threshold=5, recovery_timeout=60.0, expected_exception=None))]
    fn new(
        py: Python<'_>,
        failure_threshold: i64,
        recovery_timeout: f64,
        expected_exception: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if failure_threshold < 1 {
            return Err(config_err(format!(
                "failure_threshold: must be at least 1, got {failure_threshold}"
            )));
        }
        let recovery = duration_arg("recovery_timeout", recovery_timeout)?;
        let expected = match expected_exception {
            Some(e) => {
                // must be an exception class or a tuple of them
                let probe = py.import("builtins")?.getattr("ValueError")?.call0()?;
                if probe.is_instance(e.bind(py)).is_err() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "expected_exception: must be an exception class or a tuple of exception classes",
                    ));
                }
                e
            }
            None => py.import("builtins")?.getattr("Exception")?.unbind(),
        };
        Ok(CircuitBreakerCore {
            inner: Arc::new(Breaker::new(
                failure_threshold as u32,
                recovery.max(Duration::ZERO),
            )),
            expected,
            cancelled_error: py
                .import("asyncio.exceptions")?
                .getattr("CancelledError")?
                .unbind(),
            trial_owner: parking_lot::Mutex::new(None),
            current_task: py.import("asyncio")?.getattr("current_task")?.unbind(),
        })
    }

    /// Raises CircuitOpenError (with retry_after) when calls are not admitted.
    fn before_call(&self, py: Python<'_>) -> PyResult<()> {
        match self.inner.admit() {
            Admit::Yes { trial: false } => Ok(()),
            Admit::Yes { trial: true } => {
                *self.trial_owner.lock() = Some(self.caller_id(py));
                Ok(())
            }
            Admit::No { retry_after } => {
                let mut e = FtError::new(
                    ErrorKind::CircuitOpen,
                    format!("circuit is open; retry after {retry_after:.3}s"),
                );
                e.retry_after = Some(retry_after);
                Err(e.to_pyerr(py))
            }
        }
    }

    /// Records the outcome of a call (exc None = success).
    #[pyo3(signature = (exc_type=None, exc=None))]
    fn after_call(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        exc: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.verdict(py, exc_type.as_ref(), exc.as_ref())
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, FerrotickFuture>> {
        let py = slf.py();
        slf.get().before_call(py)?;
        bridge::ready(py, slf.clone().into_any().unbind())
    }

    #[pyo3(signature = (exc_type=None, exc=None, _tb=None))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc_type: Option<Bound<'py, PyAny>>,
        exc: Option<Bound<'py, PyAny>>,
        _tb: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, FerrotickFuture>> {
        self.verdict(py, exc_type.as_ref(), exc.as_ref())?;
        bridge::ready(
            py,
            pyo3::types::PyBool::new(py, false)
                .to_owned()
                .into_any()
                .unbind(),
        )
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.get().before_call(slf.py())?;
        Ok(slf.clone())
    }

    #[pyo3(signature = (exc_type=None, exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.verdict(py, exc_type.as_ref(), exc.as_ref())?;
        Ok(false)
    }

    #[getter]
    fn _state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    #[getter]
    fn failure_count(&self) -> u32 {
        self.inner.failures()
    }

    #[getter]
    fn expected_exception(&self, py: Python<'_>) -> Py<PyAny> {
        self.expected.clone_ref(py)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (opens, rejected) = self.inner.counts();
        let d = PyDict::new(py);
        d.set_item("state", self.inner.state().as_str())?;
        d.set_item("failures", self.inner.failures())?;
        d.set_item("opens", opens)?;
        d.set_item("rejected", rejected)?;
        Ok(d)
    }

    fn reset(&self) {
        self.inner.reset();
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RateLimiter>()?;
    m.add_class::<CircuitBreakerCore>()?;
    Ok(())
}
