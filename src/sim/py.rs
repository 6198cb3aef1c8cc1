//! Python wrapper of the simulated exchange: `ferrotick._core.SimServer`.
//! `ferrotick.sim.SimulatedExchange` holds the defaults and the context
//! managers.

use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::config::{Faults, SimConfig};
use super::limits::LimitConfig;
use super::price::parse8;
use super::server::Sim;
use crate::errors::config_err;
use crate::runtime::blocking::block_on;
use crate::runtime::bridge::{self, FerrotickFuture};

fn faults_from(base: &Faults, faults: Option<&Bound<'_, PyDict>>) -> PyResult<Faults> {
    let mut f = base.clone();
    if let Some(d) = faults {
        for (k, v) in d.iter() {
            let name: String = k.extract()?;
            let value: f64 = if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
                if b.is_true() {
                    1.0
                } else {
                    0.0
                }
            } else {
                crate::args::float_arg(&name, &v)?
            };
            f.set(&name, value)?;
        }
    }
    Ok(f)
}

/// A running simulated exchange (started by the constructor).
#[pyclass(module = "ferrotick._core", name = "SimServer", frozen)]
pub struct PySimServer {
    sim: Arc<Sim>,
}

#[pymethods]
impl PySimServer {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, symbols, seed, epoch_ms, time_scale, host, port, api_keys, balances,
        limits_enabled, weight_limit, raw_limit, orders_10s, orders_1d, ban_after, book_levels,
        trade_rate, ws_ping_interval, ws_pong_timeout, ws_lifetime, ws_max_streams,
        ws_max_incoming, faults))]
    fn new(
        py: Python<'_>,
        symbols: Vec<String>,
        seed: u64,
        epoch_ms: i64,
        time_scale: f64,
        host: String,
        port: u16,
        api_keys: Vec<(String, String)>,
        balances: Vec<(String, String)>,
        limits_enabled: bool,
        weight_limit: u64,
        raw_limit: u64,
        orders_10s: u64,
        orders_1d: u64,
        ban_after: u32,
        book_levels: usize,
        trade_rate: f64,
        ws_ping_interval: f64,
        ws_pong_timeout: f64,
        ws_lifetime: f64,
        ws_max_streams: usize,
        ws_max_incoming: u32,
        faults: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let balances = balances
            .into_iter()
            .map(|(a, v)| {
                parse8(&v)
                    .filter(|x| *x >= 0)
                    .map(|x| (a.clone(), x))
                    .ok_or_else(|| config_err(format!("balances[{a:?}]: {v:?} is not a non-negative amount with at most 8 decimals")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        if !(1..=super::book::MAX_LEVELS).contains(&book_levels) {
            return Err(config_err(format!(
                "book_levels: between 1 and 5000, got {book_levels}"
            )));
        }
        if !(trade_rate.is_finite() && (0.0..=10_000_000.0).contains(&trade_rate)) {
            return Err(config_err(format!(
                "trade_rate: between 0 and 1e7 trades/s, got {trade_rate}"
            )));
        }
        for (name, v) in [
            ("ws_ping_interval", ws_ping_interval),
            ("ws_pong_timeout", ws_pong_timeout),
            ("ws_lifetime", ws_lifetime),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1e9) {
                return Err(config_err(format!(
                    "{name}: a positive number of seconds, got {v}"
                )));
            }
        }
        for (k, s) in &api_keys {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric()) || s.is_empty() {
                return Err(config_err(format!(
                    "api_keys: {k:?} must be a non-empty alphanumeric key with a non-empty secret"
                )));
            }
        }
        let cfg = SimConfig {
            symbols,
            seed,
            epoch_ms,
            time_scale,
            host,
            port,
            api_keys,
            balances,
            limits: LimitConfig {
                enabled: limits_enabled,
                weight_1m: weight_limit,
                raw_5m: raw_limit,
                orders_10s,
                orders_1d,
                ban_after,
            },
            book_levels,
            trade_rate,
            ws_ping_interval_ms: (ws_ping_interval * 1000.0) as i64,
            ws_pong_timeout_ms: (ws_pong_timeout * 1000.0) as i64,
            ws_lifetime_ms: (ws_lifetime * 1000.0) as i64,
            ws_max_streams,
            ws_max_incoming_per_s: ws_max_incoming,
            faults: faults_from(&Faults::default(), faults)?,
        };
        let sim = py.detach(|| Sim::start(cfg))?;
        Ok(PySimServer { sim: Arc::new(sim) })
    }

    #[getter]
    fn host(&self) -> String {
        self.sim.addr.ip().to_string()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.sim.addr.port()
    }

    /// Stops the server (idempotent).
    fn stop(&self) {
        self.sim.stop();
    }

    /// An awaitable that completes when the listener has closed.
    fn closed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FerrotickFuture>> {
        let fut = self.sim.closed();
        bridge::spawn_value(py, async move {
            fut.await;
            Ok(())
        })
    }

    /// Blocks until the listener has closed.
    fn closed_sync(&self, py: Python<'_>) -> PyResult<()> {
        let fut = self.sim.closed();
        block_on(py, "SimServer.closed_sync()", async move {
            fut.await;
            Ok(())
        })
    }

    /// Changes fault knobs live; returns every knob's value.
    #[pyo3(signature = (**faults))]
    fn set_faults<'py>(
        &self,
        py: Python<'py>,
        faults: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let sh = &self.sim.shared;
        let new = faults_from(&sh.faults.read(), faults)?;
        *sh.faults.write() = new;
        self.faults(py)
    }

    fn faults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.sim.shared.faults.read().values() {
            match k {
                "maintenance" => d.set_item(k, v != 0.0)?,
                "clock_offset_ms" => d.set_item(k, v as i64)?,
                _ => d.set_item(k, v)?,
            }
        }
        Ok(d)
    }

    /// Counters of what was served and injected.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.sim.shared.stats.snapshot() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The server's clock (simulated ms, with the clock-offset fault).
    fn server_time(&self) -> i64 {
        self.sim.shared.server_ms()
    }

    /// Stops (True) or restarts (False) the market; freezing flushes the
    /// depth streams so they end at the book's last update id.
    fn freeze(&self, on: bool) {
        super::market::freeze(&self.sim.shared, on);
    }

    /// The frames the `/replay` endpoint sends (empty: generated trades).
    fn set_replay(&self, frames: Vec<Vec<u8>>) -> PyResult<()> {
        for f in &frames {
            if std::str::from_utf8(f).is_err() {
                return Err(config_err("replay frames must be UTF-8 text"));
            }
        }
        *self.sim.shared.replay.write() = Arc::new(frames.into_iter().map(Bytes::from).collect());
        Ok(())
    }

    /// Seconds of the simulated clock per wall second.
    #[getter]
    fn time_scale(&self) -> f64 {
        self.sim.shared.clock.scale()
    }

    #[getter]
    fn fault_names(&self) -> Vec<&'static str> {
        super::config::FAULT_NAMES.to_vec()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySimServer>()?;
    Ok(())
}
