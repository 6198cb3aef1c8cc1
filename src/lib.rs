//! ferrotick's native core, imported as `ferrotick._core`.
//!
//! This file only registers each domain's Python classes and functions.

pub mod errors;
pub mod monitor;
pub mod net;
pub mod runtime;
pub mod sched;
pub mod ta;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let types = errors::exception_types(py)?;
    for (name, t) in [
        ("FerrotickError", &types.ferrotick),
        ("ConfigError", &types.config),
        ("IndicatorInputError", &types.indicator_input),
        ("HTTPError", &types.http),
        ("ConnectError", &types.connect),
        ("RequestTimeout", &types.request_timeout),
        ("HTTPStatusError", &types.http_status),
        ("CircuitOpenError", &types.circuit_open),
        ("RateLimitExceeded", &types.rate_limit_exceeded),
        ("SchedulerError", &types.scheduler),
        ("ServiceContainerError", &types.service_container),
        ("ExchangeError", &types.exchange),
        ("BlockingCallError", &types.blocking_call),
    ] {
        m.add(name, t.clone_ref(py))?;
    }
    runtime::py::register(m)?;
    monitor::py::register(m)?;
    sched::py::register(m)?;
    net::py::register(m)?;
    net::pyclient::register(m)?;
    ta::py::register(m)?;
    #[cfg(feature = "bench")]
    runtime::bench::register(m)?;
    Ok(())
}
