//! ferrotick's native core, imported as `ferrotick._core`.
//!
//! This file only registers each domain's Python classes and functions.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod args;
pub mod errors;
pub mod exchange;
#[cfg(test)]
mod layering;
pub mod monitor;
pub mod net;
pub mod pipeline;
pub mod runtime;
pub mod sched;
pub mod sim;
pub mod store;
pub mod ta;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::py::register(m)?;
    runtime::py::register(m)?;
    monitor::py::register(m)?;
    sched::py::register(m)?;
    net::py::register(m)?;
    net::pyclient::register(m)?;
    ta::py::register(m)?;
    ta::pystream::register(m)?;
    store::py::register(m)?;
    sim::py::register(m)?;
    exchange::py::register(m)?;
    pipeline::py::register(m)?;
    #[cfg(feature = "bench")]
    runtime::bench::register(m)?;
    Ok(())
}
