//! Python wrappers: time zones, cron schedules and the precise sleep.

use pyo3::prelude::*;

use super::cron::CronSpec;
use super::tz::{Local, Zone};
use crate::errors::FtError;
use crate::runtime::bridge::{self, FerrotickFuture};
use crate::runtime::timer;

fn ft(py: Python<'_>, e: FtError) -> PyErr {
    e.to_pyerr(py)
}

/// A time zone read from TZif data (what `zoneinfo` reads for the same key).
#[pyclass(module = "ferrotick._core", name = "Zone", frozen)]
#[derive(Clone)]
pub struct PyZone {
    pub zone: Zone,
}

#[pymethods]
impl PyZone {
    #[new]
    fn new(py: Python<'_>, name: &str, data: &[u8]) -> PyResult<Self> {
        Ok(PyZone {
            zone: Zone::from_tzif(name, data).map_err(|e| ft(py, e))?,
        })
    }

    #[staticmethod]
    fn utc() -> Self {
        PyZone { zone: Zone::utc() }
    }

    #[staticmethod]
    fn fixed(py: Python<'_>, offset_seconds: i32) -> PyResult<Self> {
        if offset_seconds.abs() > 26 * 3600 {
            return Err(crate::errors::config_err(format!(
                "offset_seconds: {offset_seconds} is not a UTC offset"
            )));
        }
        Ok(PyZone {
            zone: Zone::fixed(offset_seconds).map_err(|e| ft(py, e))?,
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
    fn parse(py: Python<'_>, expr: &str, zone: &PyZone) -> PyResult<Self> {
        Ok(CronSchedule {
            spec: CronSpec::parse(expr).map_err(|e| ft(py, e))?,
            zone: zone.zone.clone(),
        })
    }

    /// APScheduler's keyword form (each field a string).
    #[staticmethod]
    #[pyo3(signature = (zone, year=None, month=None, day=None, week=None, day_of_week=None, hour=None, minute=None, second=None))]
    #[allow(clippy::too_many_arguments)]
    fn fields(
        py: Python<'_>,
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
            spec: CronSpec::from_fields(year, month, day, week, day_of_week, hour, minute, second)
                .map_err(|e| ft(py, e))?,
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
        py: Python<'_>,
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
            )
            .map_err(|e| ft(py, e))?,
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyZone>()?;
    m.add_class::<CronSchedule>()?;
    m.add_function(wrap_pyfunction!(sleep_until, m)?)?;
    m.add_class::<super::walltimer::WallTimer>()?;
    m.add_class::<super::queue::RunQueue>()?;
    Ok(())
}
