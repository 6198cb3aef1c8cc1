//! Python wrappers for the runtime: configure, runtime_stats, sleep, echo,
//! their blocking twins, logging level sync and the exit hook.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::bridge::{self, Converter, FerrotickFuture};
use super::{blocking, logging};
use crate::args::{duration_arg, float_arg, opt_int_arg};
use crate::errors::FtError;

fn threads_arg(name: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    match opt_int_arg(name, v)? {
        None => Ok(None),
        Some(n) if n < 1 => Err(crate::errors::config_err(format!(
            "{name} must be between 1 and 1024, got {n}"
        ))),
        Some(n) => Ok(Some(n as usize)),
    }
}

fn config_dict<'py>(
    py: Python<'py>,
    cfg: &super::RuntimeConfig,
    started: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("started", started)?;
    d.set_item("worker_threads", cfg.effective_worker_threads())?;
    d.set_item(
        "max_blocking_threads",
        cfg.max_blocking_threads.unwrap_or(512),
    )?;
    d.set_item(
        "compute_threads",
        cfg.compute_threads
            .unwrap_or_else(|| cfg.effective_worker_threads()),
    )?;
    d.set_item(
        "shutdown_timeout",
        cfg.shutdown_timeout_ms.unwrap_or(250) as f64 / 1000.0,
    )?;
    Ok(d)
}

/// Sets runtime options before the runtime starts; ConfigError afterwards.
#[pyfunction]
#[pyo3(signature = (*, worker_threads=None, max_blocking_threads=None, compute_threads=None, shutdown_timeout=None))]
pub fn configure<'py>(
    py: Python<'py>,
    worker_threads: Option<Bound<'py, PyAny>>,
    max_blocking_threads: Option<Bound<'py, PyAny>>,
    compute_threads: Option<Bound<'py, PyAny>>,
    shutdown_timeout: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let worker_threads = threads_arg("worker_threads", worker_threads.as_ref())?;
    let max_blocking_threads = threads_arg("max_blocking_threads", max_blocking_threads.as_ref())?;
    let compute_threads = threads_arg("compute_threads", compute_threads.as_ref())?;
    let shutdown_timeout = match shutdown_timeout.as_ref() {
        Some(v) if !v.is_none() => Some(float_arg("shutdown_timeout", v)?),
        _ => None,
    };
    let cfg = super::configure(|c| {
        if let Some(n) = worker_threads {
            c.worker_threads = Some(super::check_threads("worker_threads", n)?);
        }
        if let Some(n) = max_blocking_threads {
            c.max_blocking_threads = Some(super::check_threads("max_blocking_threads", n)?);
        }
        if let Some(n) = compute_threads {
            c.compute_threads = Some(super::check_threads("compute_threads", n)?);
        }
        if let Some(s) = shutdown_timeout {
            let d = duration_arg("shutdown_timeout", s)?;
            c.shutdown_timeout_ms = Some(d.as_millis().min(60_000) as u64);
        }
        Ok(())
    })?;
    let cfg = cfg.with_env()?;
    config_dict(py, &cfg, false)
}

/// A snapshot of the runtime and the bridge.
#[pyfunction]
pub fn runtime_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let running = super::running_config();
    let started = running.is_some();
    let cfg = match running {
        Some(c) => c,
        None => super::pending_config().with_env().unwrap_or_default(),
    };
    let d = config_dict(py, &cfg, started)?;
    d.set_item("pid", std::process::id())?;
    d.set_item("alive_tasks", super::alive_tasks())?;
    let loops = PyList::empty(py);
    let (mut pending, mut depth, mut completions, mut wakeups) = (0usize, 0usize, 0u64, 0u64);
    for q in bridge::queue_stats() {
        pending += q.pending;
        depth += q.queue_depth;
        completions += q.completions;
        wakeups += q.wakeups;
        let e = PyDict::new(py);
        e.set_item("loop_id", q.loop_id)?;
        e.set_item("pending", q.pending)?;
        e.set_item("queue_depth", q.queue_depth)?;
        e.set_item("completions", q.completions)?;
        e.set_item("wakeups", q.wakeups)?;
        e.set_item("wake", q.mode)?;
        loops.append(e)?;
    }
    d.set_item("loops", loops)?;
    d.set_item("pending_futures", pending)?;
    d.set_item("queue_depth", depth)?;
    d.set_item("completions", completions)?;
    d.set_item("wakeups", wakeups)?;
    d.set_item("log_level", logging::current_rank())?;
    Ok(d)
}

fn none_converter() -> Converter {
    Box::new(|py: Python<'_>| Ok(py.None()))
}

/// `await sleep(seconds)` on a Rust timer; `sleep(0)` yields to the loop once.
#[pyfunction]
pub fn sleep<'py>(
    py: Python<'py>,
    seconds: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, FerrotickFuture>> {
    let d = duration_arg("seconds", float_arg("seconds", seconds)?)?;
    if d.is_zero() {
        return bridge::yield_once(py);
    }
    bridge::spawn(py, async move {
        tokio::time::sleep(d).await;
        Ok(none_converter())
    })
}

/// `await echo(value, delay)` returns `value` after `delay` seconds; with no
/// delay the awaitable is done at once.
#[pyfunction]
#[pyo3(signature = (value, delay=None))]
pub fn echo<'py>(
    py: Python<'py>,
    value: Py<PyAny>,
    delay: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, FerrotickFuture>> {
    let delay = match &delay {
        Some(d) => float_arg("delay", d)?,
        None => 0.0,
    };
    let d = duration_arg("delay", delay)?;
    if d.is_zero() {
        return bridge::ready(py, value);
    }
    bridge::spawn(py, async move {
        tokio::time::sleep(d).await;
        Ok(Box::new(move |_py: Python<'_>| Ok(value)) as Converter)
    })
}

/// Blocking twin of `sleep` (GIL released while waiting).
#[pyfunction]
pub fn sleep_sync(py: Python<'_>, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
    let d = duration_arg("seconds", float_arg("seconds", seconds)?)?;
    blocking::block_on(py, "sleep_sync()", async move {
        tokio::time::sleep(d).await;
        Ok(())
    })
}

/// Blocking twin of `echo`.
#[pyfunction]
#[pyo3(signature = (value, delay=None))]
pub fn echo_sync(
    py: Python<'_>,
    value: Py<PyAny>,
    delay: Option<Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let delay = match &delay {
        Some(d) => float_arg("delay", d)?,
        None => 0.0,
    };
    let d = duration_arg("delay", delay)?;
    blocking::block_on(py, "echo_sync()", async move {
        tokio::time::sleep(d).await;
        Ok(value)
    })
}

/// An awaitable that fails with ferrotick's error of `kind` carrying
/// `message` (after `delay`); documents and tests the error path.
#[pyfunction]
#[pyo3(signature = (kind, message, delay=0.0))]
pub fn _raise_after<'py>(
    py: Python<'py>,
    kind: &str,
    message: String,
    delay: f64,
) -> PyResult<Bound<'py, FerrotickFuture>> {
    let kind = crate::errors::ErrorKind::from_class_name(kind)
        .ok_or_else(|| crate::errors::config_err(format!("kind: unknown error kind {kind:?}")))?;
    let d = duration_arg("delay", delay)?;
    let mut err = FtError::new(kind, message);
    err.retry_after = Some(1.5);
    err.status = Some(503);
    err.code = Some(-1021);
    if d.is_zero() {
        return bridge::failed(py, err.to_pyerr(py));
    }
    bridge::spawn(py, async move {
        tokio::time::sleep(d).await;
        Err(err)
    })
}

/// Sets the Rust-side log filter from a Python logging level (called by the
/// package whenever the `ferrotick` loggers' levels change).
#[pyfunction]
pub fn _set_log_level(level: i64) {
    logging::set_rank(logging::rank_for_python_level(level));
}

/// Emits a tracing event from Rust (used by tests and the self-check),
/// optionally from a tokio worker thread.
#[pyfunction]
#[pyo3(signature = (level, message, from_worker=false))]
pub fn _log(py: Python<'_>, level: &str, message: String, from_worker: bool) -> PyResult<bool> {
    if !from_worker {
        return Ok(logging::emit(level, &message));
    }
    let level = level.to_string();
    blocking::block_on(
        py,
        "_log()",
        async move { Ok(logging::emit(&level, &message)) },
    )
}

/// Shuts the runtime down at interpreter exit (registered with atexit).
#[pyfunction]
pub fn _shutdown(py: Python<'_>) {
    py.detach(super::shutdown_for_exit);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FerrotickFuture>()?;
    bridge::install_await_slots(m.py())?;
    m.add_class::<bridge::LoopWaker>()?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_stats, m)?)?;
    m.add_function(wrap_pyfunction!(sleep, m)?)?;
    m.add_function(wrap_pyfunction!(echo, m)?)?;
    m.add_function(wrap_pyfunction!(sleep_sync, m)?)?;
    m.add_function(wrap_pyfunction!(echo_sync, m)?)?;
    m.add_function(wrap_pyfunction!(_raise_after, m)?)?;
    m.add_function(wrap_pyfunction!(_set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(_log, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    logging::install();
    Ok(())
}
