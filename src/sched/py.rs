//! Python wrappers: time zones, cron schedules, the precise sleep, the run
//! queue and the wall-clock timer.

use pyo3::prelude::*;

use pyo3::types::{PyList, PyTuple};

use super::cron::CronSpec;
use super::queue::RunQueue;
use super::tz::{Local, Zone};
use super::walltimer::WallTimer;
use crate::errors::config_err;
use crate::runtime::bridge::{self, FerrotickFuture};
use crate::runtime::timer;

/// A time zone read from TZif data (what `zoneinfo` reads for the same key).
#[pyclass(module = "ferrotick._core", name = "Zone", frozen)]
#[derive(Clone)]
pub struct PyZone {
    pub zone: Zone,
}

#[pymethods]
impl PyZone {
    #[new]
    fn new(name: &str, data: &[u8]) -> PyResult<Self> {
        Ok(PyZone {
            zone: Zone::from_tzif(name, data)?,
        })
    }

    #[staticmethod]
    fn utc() -> Self {
        PyZone { zone: Zone::utc() }
    }

    #[staticmethod]
    fn fixed(offset_seconds: i32) -> PyResult<Self> {
        if offset_seconds.abs() > 26 * 3600 {
            return Err(crate::errors::config_err(format!(
                "offset_seconds: {offset_seconds} is not a UTC offset"
            )));
        }
        Ok(PyZone {
            zone: Zone::fixed(offset_seconds)?,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.zone.name
    }

    /// UTC offset (seconds) at a unix instant.
    fn offset_at(&self, unix: i64) -> i64 {
        self.zone.offset_at(unix)
    }

    /// ("single", t) | ("fold", first, second) | ("gap", transition) for a
    /// wall-clock time given as local seconds since 1970-01-01.
    fn resolve(&self, wall: i64) -> (&'static str, i64, i64) {
        match self.zone.resolve(wall) {
            Local::Single(t) => ("single", t, t),
            Local::Fold(a, b) => ("fold", a, b),
            Local::Gap(t) => ("gap", t, t),
        }
    }

    fn __repr__(&self) -> String {
        format!("Zone({:?})", self.zone.name)
    }
}

/// A cron schedule in a time zone.
#[pyclass(module = "ferrotick._core", name = "CronSchedule", frozen)]
pub struct CronSchedule {
    spec: CronSpec,
    zone: Zone,
}

#[pymethods]
impl CronSchedule {
    /// A crontab line (5 fields, 6 with seconds first, or a macro).
    #[staticmethod]
    fn parse(expr: &str, zone: &PyZone) -> PyResult<Self> {
        Ok(CronSchedule {
            spec: CronSpec::parse(expr)?,
            zone: zone.zone.clone(),
        })
    }

    /// APScheduler's keyword form (each field a string).
    #[staticmethod]
    #[pyo3(signature = (zone, year=None, month=None, day=None, week=None, day_of_week=None, hour=None, minute=None, second=None))]
    #[allow(clippy::too_many_arguments)]
    fn fields(
        zone: &PyZone,
        year: Option<&str>,
        month: Option<&str>,
        day: Option<&str>,
        week: Option<&str>,
        day_of_week: Option<&str>,
        hour: Option<&str>,
        minute: Option<&str>,
        second: Option<&str>,
    ) -> PyResult<Self> {
        Ok(CronSchedule {
            spec: CronSpec::from_fields(year, month, day, week, day_of_week, hour, minute, second)?,
            zone: zone.zone.clone(),
        })
    }

    /// Calendar helper: at hour:minute:second on the given weekdays
    /// (Python numbering, 0 = Monday) or day of month (with clamp), or
    /// every hour at minute:second.
    #[staticmethod]
    #[pyo3(signature = (zone, hour, minute, second=0, weekdays=None, day=None, clamp=false, every_hour=false))]
    #[allow(clippy::too_many_arguments)]
    fn calendar(
        zone: &PyZone,
        hour: u32,
        minute: u32,
        second: u32,
        weekdays: Option<Vec<u32>>,
        day: Option<u32>,
        clamp: bool,
        every_hour: bool,
    ) -> PyResult<Self> {
        let mask = match weekdays {
            None => None,
            Some(days) => {
                let mut m = 0u8;
                for d in days {
                    if d > 6 {
                        return Err(crate::errors::config_err(format!(
                            "day: weekday {d} is out of range 0-6 (0 = Monday)"
                        )));
                    }
                    m |= 1 << ((d + 1) % 7);
                }
                Some(m)
            }
        };
        Ok(CronSchedule {
            spec: CronSpec::calendar(
                hour,
                minute,
                second,
                mask,
                day.map(|d| (d, clamp)),
                every_hour,
            )?,
            zone: zone.zone.clone(),
        })
    }

    /// First fire time (unix seconds) strictly after `after`, or None.
    fn next_after(&self, py: Python<'_>, after: i64) -> Option<i64> {
        py.detach(|| self.spec.next_after(after, &self.zone))
    }

    #[getter]
    fn hour_specific(&self) -> bool {
        self.spec.hour_specific
    }

    #[getter]
    fn expression(&self) -> &str {
        &self.spec.source
    }

    #[getter]
    fn zone(&self) -> PyZone {
        PyZone {
            zone: self.zone.clone(),
        }
    }
}

/// Awaitable that resolves when the wall clock reaches `unix_seconds`, on
/// the runtime's precise timer thread (sub-millisecond punctuality).
#[pyfunction]
pub fn sleep_until(py: Python<'_>, unix_seconds: f64) -> PyResult<Bound<'_, FerrotickFuture>> {
    if !unix_seconds.is_finite() {
        return Err(crate::errors::config_err(format!(
            "unix_seconds: must be a finite time, got {unix_seconds}"
        )));
    }
    let deadline = (unix_seconds * 1e6).round() as i64;
    if deadline <= timer::now_us() {
        return bridge::ready(py, py.None());
    }
    let (fut, completer) = bridge::pending(py)?;
    timer::complete_at(deadline, completer);
    Ok(fut)
}

/// Jobs by next run time (the scheduler's heap); see [`RunQueue`].
#[pyclass(module = "ferrotick._core", name = "RunQueue")]
#[derive(Default)]
pub struct PyRunQueue {
    queue: RunQueue<Py<PyAny>>,
}

#[pymethods]
impl PyRunQueue {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Queues `job` (at `version`) to run at unix time `t`.
    fn push(&mut self, t: f64, version: i64, job: Py<PyAny>) -> PyResult<()> {
        Ok(self.queue.push(t, version, job)?)
    }

    /// Removes and returns every entry due at `now` (run time <= now), in run
    /// time order then queueing order, as a list of (version, job).
    fn pop_due<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        self.queue.pop_due(now, |version, job| {
            let item = PyTuple::new(
                py,
                [version.into_pyobject(py)?.into_any(), job.into_bound(py)],
            )?;
            out.append(item)
        })?;
        Ok(out)
    }

    /// The earliest entry as (run time, version, job), or None.
    fn peek(&self, py: Python<'_>) -> Option<(f64, i64, Py<PyAny>)> {
        self.queue
            .peek()
            .map(|(t, version, job)| (t, version, job.clone_ref(py)))
    }

    /// Removes the earliest entry (a stale one, found by `peek`).
    fn pop(&mut self) {
        self.queue.pop();
    }

    /// When to wake up for the earliest run time (see [`RunQueue::batch_end`]).
    fn batch_end(&self, slack: f64) -> Option<f64> {
        self.queue.batch_end(slack)
    }

    /// How many entries run at or before `t`, counting at most `cap`.
    fn count_until(&self, t: f64, cap: usize) -> usize {
        self.queue.count_until(t, cap)
    }

    fn clear(&mut self) {
        self.queue.clear();
    }

    fn __len__(&self) -> usize {
        self.queue.len()
    }

    fn __bool__(&self) -> bool {
        !self.queue.is_empty()
    }

    // jobs refer back to their scheduler, which holds this queue: let
    // Python's collector see the jobs held here
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for job in self.queue.items() {
            visit.call(job)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.queue.clear();
    }
}

/// The scheduler loop's wall-clock timer; see [`WallTimer`].
#[pyclass(module = "ferrotick._core", name = "WallTimer")]
pub struct PyWallTimer {
    timer: WallTimer,
}

#[pymethods]
impl PyWallTimer {
    #[new]
    fn new() -> PyResult<Self> {
        match WallTimer::new() {
            Ok(timer) => Ok(PyWallTimer { timer }),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Err(
                pyo3::exceptions::PyNotImplementedError::new_err(e.to_string()),
            ),
            Err(e) => Err(e.into()),
        }
    }

    fn fileno(&self) -> i32 {
        self.timer.fileno()
    }

    /// Fires at `unix_seconds` (wall clock); an instant already past fires
    /// at once. Replaces any earlier instant.
    fn arm(&self, unix_seconds: f64) -> PyResult<()> {
        if !unix_seconds.is_finite() {
            return Err(config_err(format!(
                "unix_seconds: must be a finite time, got {unix_seconds}"
            )));
        }
        if self.timer.closed() {
            return Err(config_err("the timer is closed"));
        }
        Ok(self.timer.arm(unix_seconds)?)
    }

    /// Stops a pending instant.
    fn disarm(&self) -> PyResult<()> {
        Ok(self.timer.disarm()?)
    }

    /// Acknowledges a wake-up: True when the instant passed or the wall
    /// clock was set (re-evaluate), False when nothing happened (spurious).
    fn consume(&self) -> bool {
        self.timer.consume()
    }

    fn close(&mut self) {
        self.timer.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.timer.closed()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyZone>()?;
    m.add_class::<CronSchedule>()?;
    m.add_function(wrap_pyfunction!(sleep_until, m)?)?;
    m.add_class::<PyWallTimer>()?;
    m.add_class::<PyRunQueue>()?;
    Ok(())
}
