//! The Python side of [`FtError`]: the exception classes looked up once from
//! `ferrotick._errors`, and the one conversion from an `FtError` to a `PyErr`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::{redact, redact_url, ErrorKind, FtError};

/// The classes of the exception tree, in [`ErrorKind::ALL`] order.
static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// The exception classes, looked up on first use.
fn exception_types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    TYPES.get_or_try_init(py, || {
        let module = py.import("ferrotick._errors")?;
        ErrorKind::ALL
            .iter()
            .map(|k| {
                Ok(module
                    .getattr(k.class_name())?
                    .cast_into::<PyType>()?
                    .unbind())
            })
            .collect()
    })
}

/// The Python class an error kind is raised as.
pub fn exception_type(py: Python<'_>, kind: ErrorKind) -> PyResult<&Py<PyType>> {
    exception_types(py)?
        .get(kind.index())
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("exception table out of sync"))
}

impl FtError {
    /// Builds the Python exception instance: the redacted message, and each
    /// of `retry_after`, `status` and `code` that is known and that the
    /// class declares.
    pub fn to_pyerr(&self, py: Python<'_>) -> PyErr {
        match self.build(py) {
            Ok(e) | Err(e) => e,
        }
    }

    fn build(&self, py: Python<'_>) -> PyResult<PyErr> {
        let cls = exception_type(py, self.kind)?.bind(py);
        let inst = cls.call1((redact(&self.message),))?;
        if let Some(v) = self.retry_after {
            set_declared(cls, &inst, "retry_after", v)?;
        }
        if let Some(v) = self.status {
            set_declared(cls, &inst, "status", v)?;
        }
        if let Some(v) = self.code {
            set_declared(cls, &inst, "code", v)?;
        }
        Ok(PyErr::from_value(inst))
    }
}

/// Sets `name` on the instance when its class declares that attribute.
fn set_declared<'py, V: IntoPyObject<'py>>(
    cls: &Bound<'py, PyType>,
    inst: &Bound<'py, PyAny>,
    name: &str,
    value: V,
) -> PyResult<()> {
    if cls.hasattr(name)? {
        inst.setattr(name, value)?;
    }
    Ok(())
}

/// The one conversion from a domain error to a Python exception: `?` on an
/// `FtResult` inside a function returning `PyResult` goes through it.
impl From<FtError> for PyErr {
    fn from(e: FtError) -> PyErr {
        Python::attach(|py| e.to_pyerr(py))
    }
}

/// Shorthand for a ConfigError naming an argument.
pub fn config_err(message: impl Into<String>) -> PyErr {
    FtError::config(message).into()
}

/// The message with secrets removed, as ferrotick's exceptions show it.
#[pyfunction(name = "redact")]
fn py_redact(message: &str) -> String {
    redact(message)
}

/// The URL without user info, query string or fragment.
#[pyfunction(name = "redact_url")]
fn py_redact_url(url: &str) -> String {
    redact_url(url)
}

/// Adds the exception classes (as `_core.ConfigError`, ...) and the
/// redaction functions to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for kind in ErrorKind::ALL {
        m.add(kind.class_name(), exception_type(py, *kind)?.clone_ref(py))?;
    }
    m.add_function(wrap_pyfunction!(py_redact, m)?)?;
    m.add_function(wrap_pyfunction!(py_redact_url, m)?)?;
    Ok(())
}
