//! Checks of the arguments users pass, shared by every domain: each names
//! the argument in its error, and none lets a bool stand for a number.
//!
//! The checks on plain values (`duration_arg`, `weight_arg`) return
//! [`FtError`] and are used by pure-Rust code too; the extractors of Python
//! objects (`float_arg`, `opt_int_arg`) are for the binding files.

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::errors::{FtError, FtResult};

/// The longest duration a user can ask for; longer ones are clamped (a timer
/// ten years away is the same as never for a running process).
const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

/// Seconds given by a user as a Duration: finite and >= 0, clamped to ten
/// years.
pub fn duration_arg(name: &str, seconds: f64) -> FtResult<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(FtError::config(format!(
            "{name} must be a finite number of seconds >= 0, got {seconds}"
        )));
    }
    Duration::try_from_secs_f64(seconds.min(MAX_SECONDS))
        .map_err(|_| FtError::config(format!("{name} is out of range: {seconds}")))
}

/// An optional number of seconds as an optional Duration.
pub fn opt_duration_arg(name: &str, seconds: Option<f64>) -> FtResult<Option<Duration>> {
    seconds.map(|s| duration_arg(name, s)).transpose()
}

/// A request weight: at least 1.
pub fn weight_arg(weight: i64) -> FtResult<u64> {
    u64::try_from(weight)
        .ok()
        .filter(|w| *w >= 1)
        .ok_or_else(|| FtError::config(format!("weight: must be at least 1, got {weight}")))
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// A real number argument; a TypeError naming `name` otherwise.
pub fn float_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected a number of seconds, got bool"
        )));
    }
    v.extract::<f64>().map_err(|_| {
        PyTypeError::new_err(format!("{name}: expected a number, got {}", type_name(v)))
    })
}

/// An integer argument (None allowed); a TypeError naming `name` otherwise.
pub fn opt_int_arg(name: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) if v.is_instance_of::<PyBool>() => Err(PyTypeError::new_err(format!(
            "{name}: expected an integer, got bool"
        ))),
        Some(v) => v.extract::<i64>().map(Some).map_err(|_| {
            PyTypeError::new_err(format!("{name}: expected an integer, got {}", type_name(v)))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_weights() {
        assert_eq!(
            duration_arg("t", 1.5).ok(),
            Some(Duration::from_millis(1500))
        );
        assert!(duration_arg("t", -1.0).is_err());
        assert!(duration_arg("t", f64::NAN).is_err());
        assert!(duration_arg("t", f64::INFINITY)
            .unwrap_err()
            .message
            .starts_with("t must be"));
        assert_eq!(
            duration_arg("t", 1e300).ok(),
            Some(Duration::from_secs_f64(MAX_SECONDS))
        );
        assert_eq!(opt_duration_arg("t", None).ok(), Some(None));
        assert_eq!(weight_arg(3).ok(), Some(3));
        assert!(weight_arg(0).is_err() && weight_arg(-5).is_err());
    }
}
