//! Python wrappers for the metrics registry and the operation tracker.
//!
//! The prometheus_client-compatible classes (`Counter`, `Gauge`, ...) and
//! `AsyncPerformanceMonitor` live in `ferrotick.monitor` (Python) and
//! bind their hot methods straight to the objects defined here, so that a
//! call like `histogram.observe(v)` goes from Python to Rust with no Python
//! frame in between.

use std::sync::Arc;
use std::time::Instant;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::expo::{self, Family, Sample, QUANTILES};
use super::registry::{Kind, Metric, MetricSpec, Registry, Series};
use super::sketch::SketchOpts;
use crate::errors::{config_err, FtError};
use crate::runtime::bridge;

fn kind_from(s: &str) -> PyResult<Kind> {
    Ok(match s {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        "histogram" => Kind::Histogram,
        "summary" => Kind::Summary,
        other => return Err(config_err(format!("kind: unknown metric kind {other:?}"))),
    })
}

/// Extracts label values: each must be a str (or something with a str()).
fn label_values(values: &Bound<'_, PyTuple>) -> PyResult<Vec<String>> {
    let mut out = Vec::with_capacity(values.len());
    for v in values.iter() {
        if let Ok(s) = v.cast::<PyString>() {
            out.push(s.to_str()?.to_owned());
        } else {
            out.push(v.str()?.to_str()?.to_owned());
        }
    }
    Ok(out)
}

/// One metric (all its label sets).
#[pyclass(module = "ferrotick._core", name = "Metric", frozen)]
pub struct PyMetric {
    pub inner: Arc<Metric>,
}

#[pymethods]
impl PyMetric {
    #[new]
    #[pyo3(signature = (kind, name, documentation, labelnames=Vec::new(), buckets=None, max_series=1000, percentiles=None, window_minutes=5, lowest=1e-6, highest=3600.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: &str,
        name: &str,
        documentation: &str,
        labelnames: Vec<String>,
        buckets: Option<Vec<f64>>,
        max_series: usize,
        percentiles: Option<bool>,
        window_minutes: u32,
        lowest: f64,
        highest: f64,
    ) -> PyResult<Self> {
        let kind = kind_from(kind)?;
        let mut spec = MetricSpec::new(name, documentation, kind);
        spec.label_names = labelnames;
        if let Some(b) = buckets {
            spec.buckets = b;
        }
        spec.max_series = max_series;
        if let Some(p) = percentiles {
            spec.percentiles = p;
        }
        spec.window_minutes = window_minutes.min(24 * 60);
        if !(lowest.is_finite() && lowest > 0.0 && highest.is_finite() && highest > lowest) {
            return Err(config_err(format!(
                "lowest/highest: need 0 < lowest < highest (finite), got {lowest} and {highest}"
            )));
        }
        if highest / lowest > 1e15 {
            return Err(config_err("highest / lowest must not exceed 1e15"));
        }
        spec.sketch = SketchOpts {
            unit: lowest,
            highest,
            bits: 11,
        };
        let m = Metric::new(spec)?;
        Ok(PyMetric { inner: Arc::new(m) })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }

    #[getter]
    fn documentation(&self) -> &str {
        &self.inner.help
    }

    #[getter]
    fn labelnames(&self) -> Vec<String> {
        self.inner.label_names.to_vec()
    }

    #[getter]
    fn buckets(&self) -> Vec<f64> {
        self.inner.bounds.to_vec()
    }

    #[getter]
    fn dropped(&self) -> u64 {
        self.inner
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    #[getter]
    fn series_count(&self) -> usize {
        self.inner.series_count()
    }

    /// The child (series) for a tuple of label values.
    fn child(&self, values: &Bound<'_, PyTuple>) -> PyResult<Child> {
        let vals = label_values(values)?;
        let series = self.inner.series(&vals)?;
        Ok(Child {
            metric: self.inner.clone(),
            series,
        })
    }

    fn remove(&self, values: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let vals = label_values(values)?;
        Ok(self.inner.remove(&vals)?)
    }

    fn clear(&self) {
        self.inner.clear();
    }

    /// [(label values, child)] for every series.
    fn children(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let out = PyList::empty(py);
        for s in self.inner.all_series() {
            let labels = PyTuple::new(py, s.labels.iter())?;
            let child = Child {
                metric: self.inner.clone(),
                series: s,
            };
            out.append((labels, Bound::new(py, child)?))?;
        }
        Ok(out.unbind())
    }
}

/// One series of a metric: the object behind `metric.labels(...)`.
#[pyclass(module = "ferrotick._core", name = "MetricChild", frozen)]
pub struct Child {
    metric: Arc<Metric>,
    series: Arc<Series>,
}

fn check_finite(name: &str, v: f64) -> PyResult<()> {
    if v.is_nan() {
        return Err(config_err(format!("{name}: NaN cannot be recorded")));
    }
    Ok(())
}

#[pymethods]
impl Child {
    #[pyo3(signature = (amount=1.0))]
    fn inc(&self, amount: f64) -> PyResult<()> {
        match self.metric.kind {
            Kind::Counter => {
                if amount.is_nan() || amount < 0.0 {
                    return Err(config_err(format!(
                        "amount: counters can only be incremented by non-negative amounts, got {amount}"
                    )));
                }
            }
            Kind::Gauge => check_finite("amount", amount)?,
            _ => return Err(PyTypeError::new_err("inc() is for counters and gauges")),
        }
        self.series.inc(amount);
        Ok(())
    }

    #[pyo3(signature = (amount=1.0))]
    fn dec(&self, amount: f64) -> PyResult<()> {
        if self.metric.kind != Kind::Gauge {
            return Err(PyTypeError::new_err("dec() is for gauges"));
        }
        check_finite("amount", amount)?;
        self.series.inc(-amount);
        Ok(())
    }

    fn set(&self, value: f64) -> PyResult<()> {
        if self.metric.kind != Kind::Gauge {
            return Err(PyTypeError::new_err("set() is for gauges"));
        }
        self.series.set(value);
        Ok(())
    }

    fn observe(&self, amount: f64) -> PyResult<()> {
        match self.metric.kind {
            Kind::Histogram | Kind::Summary => {
                check_finite("amount", amount)?;
                self.series.observe(&self.metric, amount);
                Ok(())
            }
            _ => Err(PyTypeError::new_err(
                "observe() is for histograms and summaries",
            )),
        }
    }

    /// Counter/gauge value, or the sum of a histogram/summary.
    fn get(&self) -> f64 {
        self.series.get()
    }

    fn reset(&self) {
        self.series.reset();
    }

    #[getter]
    fn count(&self) -> u64 {
        self.series.count()
    }

    #[getter]
    fn sum(&self) -> f64 {
        self.series.get()
    }

    #[getter]
    fn labels(&self) -> Vec<String> {
        self.series.labels.to_vec()
    }

    /// Cumulative bucket counts [(le, count)].
    fn buckets(&self) -> Vec<(f64, u64)> {
        self.metric
            .bounds
            .iter()
            .copied()
            .zip(self.series.cumulative_buckets())
            .collect()
    }

    /// The value at quantile q (0..1) over everything recorded (NaN if empty).
    fn quantile(&self, q: f64) -> PyResult<f64> {
        if !(0.0..=1.0).contains(&q) {
            return Err(config_err(format!(
                "q: quantile must be within [0, 1], got {q}"
            )));
        }
        Ok(self
            .series
            .sketch
            .as_ref()
            .map(|s| s.quantile(q))
            .unwrap_or(f64::NAN))
    }

    /// count, sum, mean, min, max, p50, p90, p99, p999 (cumulative), and the
    /// same over the sliding window under "window".
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        summary_dict(py, &self.series)
    }
}

fn summary_dict<'py>(py: Python<'py>, s: &Series) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("count", s.count())?;
    d.set_item("sum", s.get())?;
    if let Some(sk) = &s.sketch {
        d.set_item("mean", sk.mean())?;
        d.set_item("min", sk.min())?;
        d.set_item("max", sk.max())?;
        for (k, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            d.set_item(k, sk.quantile(q))?;
        }
    }
    if let Some(w) = &s.window {
        let ws = w.summary(&[0.5, 0.9, 0.99, 0.999]);
        let wd = PyDict::new(py);
        wd.set_item("count", ws.count)?;
        wd.set_item("sum", ws.sum)?;
        wd.set_item(
            "mean",
            if ws.count > 0 {
                ws.sum / ws.count as f64
            } else {
                f64::NAN
            },
        )?;
        wd.set_item("min", ws.min)?;
        wd.set_item("max", ws.max)?;
        for (k, v) in ["p50", "p90", "p99", "p999"].iter().zip(&ws.quantiles) {
            wd.set_item(*k, *v)?;
        }
        d.set_item("window", wd)?;
    }
    Ok(d)
}

/// A set of metrics exposed together.
#[pyclass(module = "ferrotick._core", name = "Registry", frozen)]
pub struct PyRegistry {
    inner: Arc<Registry>,
}

fn families_from_py(fams: &Bound<'_, PyList>) -> PyResult<Vec<Family>> {
    let mut out = Vec::with_capacity(fams.len());
    for f in fams.iter() {
        let name: String = f.get_item("name")?.extract()?;
        if !super::registry::valid_metric_name(&name) {
            return Err(config_err(format!(
                "name: invalid metric name {name:?} from a collector"
            )));
        }
        let kind: String = f.get_item("type")?.extract()?;
        let help: String = f.get_item("help")?.extract().unwrap_or_default();
        let mut samples = Vec::new();
        for s in f.get_item("samples")?.try_iter()? {
            let s = s?;
            let (suffix, labels, value): (String, Bound<'_, PyAny>, f64) = s.extract()?;
            let mut lv = Vec::new();
            if !labels.is_none() {
                let labels = labels.cast::<PyDict>()?;
                for (k, v) in labels.iter() {
                    let k: String = k.extract()?;
                    if !super::registry::valid_label_name(&k) && k != "le" && k != "quantile" {
                        return Err(config_err(format!(
                            "labels: invalid label name {k:?} in {name:?}"
                        )));
                    }
                    lv.push((k, v.str()?.to_string()));
                }
            }
            samples.push(Sample {
                suffix,
                labels: lv,
                value,
            });
        }
        out.push(Family {
            name,
            kind: kind_from(&kind)?,
            help,
            samples,
        });
    }
    Ok(out)
}

#[pymethods]
impl PyRegistry {
    #[new]
    fn new() -> Self {
        PyRegistry {
            inner: Arc::new(Registry::new()),
        }
    }

    fn register(&self, metric: &Bound<'_, PyMetric>) -> PyResult<()> {
        Ok(self.inner.register(metric.get().inner.clone())?)
    }

    fn unregister(&self, name: &str) -> bool {
        self.inner.unregister(name)
    }

    fn names(&self) -> Vec<String> {
        self.inner
            .metrics()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    /// Renders every metric plus `extra` families (a list of dicts with
    /// name, type, help and samples [(suffix, labels dict, value)]).
    /// With `runtime`, the bridge's `runtime_stats()` figures are included.
    #[pyo3(signature = (openmetrics=false, extra=None, runtime=false))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        openmetrics: bool,
        extra: Option<&Bound<'py, PyList>>,
        runtime: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut fams = match extra {
            Some(l) => families_from_py(l)?,
            None => Vec::new(),
        };
        if runtime {
            fams.extend(runtime_families());
        }
        let metrics = self.inner.metrics();
        let text = py.detach(|| expo::render(&metrics, &fams, openmetrics));
        Ok(PyBytes::new(py, text.as_bytes()))
    }

    /// A JSON-ready snapshot: {name: {type, help, series: [...]}}.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for m in self.inner.metrics() {
            let md = PyDict::new(py);
            md.set_item("type", m.kind.as_str())?;
            md.set_item("help", &m.help)?;
            md.set_item("labelnames", m.label_names.to_vec())?;
            let series = PyList::empty(py);
            for s in m.all_series() {
                let labels = PyDict::new(py);
                for (k, v) in m.label_names.iter().zip(s.labels.iter()) {
                    labels.set_item(k, v)?;
                }
                let sd = match m.kind {
                    Kind::Counter | Kind::Gauge => {
                        let d = PyDict::new(py);
                        d.set_item("value", s.get())?;
                        d
                    }
                    Kind::Histogram | Kind::Summary => {
                        let d = summary_dict(py, &s)?;
                        if m.kind == Kind::Histogram {
                            let b = PyList::empty(py);
                            for (le, c) in m.bounds.iter().zip(s.cumulative_buckets()) {
                                let mut les = String::new();
                                expo::fmt_float(&mut les, *le);
                                b.append((les, c))?;
                            }
                            d.set_item("buckets", b)?;
                        }
                        d
                    }
                };
                sd.set_item("labels", labels)?;
                series.append(sd)?;
            }
            md.set_item("series", series)?;
            md.set_item(
                "dropped_series",
                m.dropped.load(std::sync::atomic::Ordering::Relaxed),
            )?;
            out.set_item(
                if m.kind == Kind::Counter {
                    format!("{}_total", m.name)
                } else {
                    m.name.clone()
                },
                md,
            )?;
        }
        Ok(out)
    }

    fn get(&self, name: &str) -> Option<PyMetric> {
        self.inner.get(name).map(|inner| PyMetric { inner })
    }
}

// ---------------------------------------------------------------------------
// Operation tracking (the core of AsyncPerformanceMonitor)
// ---------------------------------------------------------------------------

/// The metrics behind `track_operation` / `track_async_function`.
#[pyclass(module = "ferrotick._core", name = "OperationMetrics", frozen)]
pub struct OperationMetrics {
    duration: Arc<Metric>,
    errors: Arc<Metric>,
    cancelled: Arc<Metric>,
    in_flight: Arc<Metric>,
    active: Arc<Series>,
    cancelled_error: Py<PyAny>,
}

#[pymethods]
impl OperationMetrics {
    /// Takes the four metrics (Metric objects) it records into:
    /// a histogram and three labelled by `operation_type`.
    #[new]
    fn new(
        py: Python<'_>,
        duration: &Bound<'_, PyMetric>,
        errors: &Bound<'_, PyMetric>,
        cancelled: &Bound<'_, PyMetric>,
        in_flight: &Bound<'_, PyMetric>,
    ) -> PyResult<Self> {
        let in_flight = in_flight.get().inner.clone();
        let active = in_flight.series::<&str>(&[])?;
        let cancelled_error = py
            .import("asyncio.exceptions")?
            .getattr("CancelledError")?
            .unbind();
        Ok(OperationMetrics {
            duration: duration.get().inner.clone(),
            errors: errors.get().inner.clone(),
            cancelled: cancelled.get().inner.clone(),
            in_flight,
            active,
            cancelled_error,
        })
    }

    /// Starts timing `name` now; the returned tracker is also an (async)
    /// context manager.
    fn track(&self, py: Python<'_>, name: &str) -> PyResult<Tracker> {
        let series = self.duration.series(&[name])?;
        Ok(Tracker {
            duration: self.duration.clone(),
            series,
            errors: self.errors.clone(),
            cancelled: self.cancelled.clone(),
            active: self.active.clone(),
            cancelled_error: self.cancelled_error.clone_ref(py),
            name: name.to_string(),
            start: parking_lot::Mutex::new(None),
        })
    }

    #[getter]
    fn in_flight(&self) -> f64 {
        self.active.get()
    }

    #[getter]
    fn in_flight_metric(&self) -> PyMetric {
        PyMetric {
            inner: self.in_flight.clone(),
        }
    }
}

/// Times one operation. `ok()` / `fail(exc)` finish it; as a context
/// manager (`with` or `async with`) it starts on enter and finishes on exit.
#[pyclass(module = "ferrotick._core", name = "OperationTracker", frozen)]
pub struct Tracker {
    duration: Arc<Metric>,
    series: Arc<Series>,
    errors: Arc<Metric>,
    cancelled: Arc<Metric>,
    active: Arc<Series>,
    cancelled_error: Py<PyAny>,
    name: String,
    start: parking_lot::Mutex<Option<Instant>>,
}

impl Tracker {
    fn begin(&self) {
        *self.start.lock() = Some(Instant::now());
        self.active.inc(1.0);
    }

    /// Records the elapsed time; returns false if the tracker was not running.
    fn finish(&self) -> bool {
        let Some(start) = self.start.lock().take() else {
            return false;
        };
        self.series
            .observe(&self.duration, start.elapsed().as_secs_f64());
        self.active.inc(-1.0);
        true
    }

    fn classify(&self, py: Python<'_>, exc_type: &Bound<'_, PyAny>) -> PyResult<()> {
        if exc_type.is_none() {
            return Ok(());
        }
        let is_cancel = match exc_type.cast::<pyo3::types::PyType>() {
            Ok(t) => t.is_subclass(self.cancelled_error.bind(py))?,
            Err(_) => false,
        };
        if is_cancel {
            self.cancelled.series(&[self.name.as_str()])?.inc(1.0);
        } else {
            let tname: String = exc_type
                .getattr(pyo3::intern!(py, "__name__"))
                .and_then(|n| n.extract())
                .unwrap_or_else(|_| "Exception".to_string());
            self.errors
                .series(&[self.name.as_str(), tname.as_str()])?
                .inc(1.0);
        }
        Ok(())
    }
}

#[pymethods]
impl Tracker {
    /// Starts (or restarts) the clock.
    fn start(&self) {
        self.begin();
    }

    /// Finishes successfully; returns the elapsed seconds recorded.
    fn ok(&self) -> bool {
        self.finish()
    }

    /// Finishes with an exception (CancelledError counts as cancelled).
    fn fail(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<bool> {
        let done = self.finish();
        let t = if exc.is_instance_of::<pyo3::types::PyType>() {
            exc.clone()
        } else {
            exc.get_type().into_any()
        };
        self.classify(py, &t)?;
        Ok(done)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf.get().begin();
        slf
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.finish();
        if let Some(t) = exc_type {
            self.classify(py, &t)?;
        }
        Ok(false)
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, bridge::FerrotickFuture>> {
        slf.get().begin();
        let py = slf.py();
        bridge::ready(py, slf.into_any().unbind())
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc_type: Option<Bound<'py, PyAny>>,
        _exc: Option<Bound<'py, PyAny>>,
        _tb: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, bridge::FerrotickFuture>> {
        self.finish();
        if let Some(t) = exc_type {
            self.classify(py, &t)?;
        }
        bridge::ready(
            py,
            pyo3::types::PyBool::new(py, false)
                .to_owned()
                .into_any()
                .unbind(),
        )
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }
}

// ---------------------------------------------------------------------------
// Process figures
// ---------------------------------------------------------------------------

/// (resident bytes, peak resident bytes) of this process, from /proc.
#[pyfunction]
pub fn process_memory() -> PyResult<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        FtError::with_cause(
            crate::errors::ErrorKind::Ferrotick,
            "cannot read /proc/self/status",
            &e,
        )
    })?;
    let mut rss = 0u64;
    let mut hwm = 0u64;
    for line in status.lines() {
        let kb = |l: &str| -> u64 {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        if line.starts_with("VmRSS:") {
            rss = kb(line);
        } else if line.starts_with("VmHWM:") {
            hwm = kb(line);
        }
    }
    Ok((rss, hwm.max(rss)))
}

/// Prometheus families for the runtime and bridge (`runtime_stats()`).
pub fn runtime_families() -> Vec<Family> {
    let mut fams = Vec::new();
    let g = |name: &str, help: &str, kind: Kind, v: f64| Family {
        name: name.to_string(),
        kind,
        help: help.to_string(),
        samples: vec![Sample {
            suffix: if kind == Kind::Counter {
                "_total".into()
            } else {
                String::new()
            },
            labels: vec![],
            value: v,
        }],
    };
    let started = crate::runtime::running_config().is_some();
    fams.push(g(
        "ferrotick_runtime_started",
        "1 when the tokio runtime runs in this process.",
        Kind::Gauge,
        if started { 1.0 } else { 0.0 },
    ));
    fams.push(g(
        "ferrotick_runtime_alive_tasks",
        "Live tokio tasks.",
        Kind::Gauge,
        crate::runtime::alive_tasks() as f64,
    ));
    let qs = bridge::queue_stats();
    let per_loop =
        |name: &str, help: &str, kind: Kind, f: &dyn Fn(&bridge::QueueStats) -> f64| Family {
            name: name.to_string(),
            kind,
            help: help.to_string(),
            samples: qs
                .iter()
                .map(|q| Sample {
                    suffix: if kind == Kind::Counter {
                        "_total".into()
                    } else {
                        String::new()
                    },
                    labels: vec![("loop".to_string(), format!("{:#x}", q.loop_id))],
                    value: f(q),
                })
                .collect(),
        };
    fams.push(per_loop(
        "ferrotick_bridge_pending_futures",
        "Bridge futures awaiting a result, per event loop.",
        Kind::Gauge,
        &|q| q.pending as f64,
    ));
    fams.push(per_loop(
        "ferrotick_bridge_queue_depth",
        "Completions queued for delivery, per event loop.",
        Kind::Gauge,
        &|q| q.queue_depth as f64,
    ));
    fams.push(per_loop(
        "ferrotick_bridge_completions",
        "Completions delivered, per event loop.",
        Kind::Counter,
        &|q| q.completions as f64,
    ));
    fams.push(per_loop(
        "ferrotick_bridge_wakeups",
        "Loop wake-ups (one per delivered batch), per event loop.",
        Kind::Counter,
        &|q| q.wakeups as f64,
    ));
    fams
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMetric>()?;
    m.add_class::<Child>()?;
    m.add_class::<PyRegistry>()?;
    m.add_class::<OperationMetrics>()?;
    m.add_class::<Tracker>()?;
    m.add_function(wrap_pyfunction!(process_memory, m)?)?;
    m.add("CONTENT_TYPE_LATEST", expo::CONTENT_TYPE_LATEST)?;
    m.add("CONTENT_TYPE_OPENMETRICS", expo::CONTENT_TYPE_OPENMETRICS)?;
    m.add("QUANTILES", QUANTILES.to_vec())?;
    Ok(())
}
