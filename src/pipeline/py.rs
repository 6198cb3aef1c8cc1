//! Python wrappers of the pipeline kernels: resampling (one series, a matrix of
//! symbols, incremental) and the regime classifier.

use numpy::ndarray::Array2;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rayon::prelude::*;

use super::regime::{self, RegimeParams, RegimeState};
use super::resample::{self, Acc, Bars, Ohlcv, ResampleError, Resampler, Rule};
use crate::errors::{config_err, ErrorKind, FtError};

/// Series at least this long are resampled with the GIL released.
const DETACH_MIN: usize = 4096;

fn data_err(e: ResampleError) -> PyErr {
    match e {
        ResampleError::BadRule(_) => config_err(e.to_string()),
        _ => FtError::new(ErrorKind::MarketData, e.to_string()).into(),
    }
}

fn contiguous<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    name: &str,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| config_err(format!("{name}: must be a contiguous 1-D array")))
}

fn rule_of(
    width: Option<i64>,
    origin: i64,
    edges: Option<PyReadonlyArray1<'_, i64>>,
) -> PyResult<Rule> {
    let rule = match (width, edges) {
        (Some(w), None) => Rule::Fixed { width: w, origin },
        (None, Some(e)) => Rule::Edges(contiguous(&e, "edges")?.to_vec()),
        _ => return Err(config_err("rule: give width or edges, not both")),
    };
    rule.check().map_err(data_err)?;
    Ok(rule)
}

/// The columns of `b` as a tuple: open_time, open, high, low, close, volume,
/// count, last_partial.
fn bars_tuple<'py>(py: Python<'py>, b: Bars) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyArray1::from_vec(py, b.open_time).into_any(),
            PyArray1::from_vec(py, b.open).into_any(),
            PyArray1::from_vec(py, b.high).into_any(),
            PyArray1::from_vec(py, b.low).into_any(),
            PyArray1::from_vec(py, b.close).into_any(),
            PyArray1::from_vec(py, b.volume).into_any(),
            PyArray1::from_vec(py, b.count).into_any(),
            pyo3::types::PyBool::new(py, b.last_partial)
                .to_owned()
                .into_any(),
        ],
    )
}

/// Resamples one series. `width` (ms) and `origin` make fixed buckets; `edges`
/// gives explicit ones. `interval` is the input bar length (ms) for the
/// partial-last-bar flag.
#[pyfunction]
#[pyo3(signature = (open_time, open, high, low, close, volume, *, width=None, origin=0, edges=None, fill_empty=false, interval=None))]
#[allow(clippy::too_many_arguments)]
fn pipeline_resample<'py>(
    py: Python<'py>,
    open_time: PyReadonlyArray1<'py, i64>,
    open: PyReadonlyArray1<'py, f64>,
    high: PyReadonlyArray1<'py, f64>,
    low: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    volume: PyReadonlyArray1<'py, f64>,
    width: Option<i64>,
    origin: i64,
    edges: Option<PyReadonlyArray1<'py, i64>>,
    fill_empty: bool,
    interval: Option<i64>,
) -> PyResult<Bound<'py, PyTuple>> {
    let rule = rule_of(width, origin, edges)?;
    let t = contiguous(&open_time, "open_time")?;
    let x = Ohlcv {
        open: contiguous(&open, "open")?,
        high: contiguous(&high, "high")?,
        low: contiguous(&low, "low")?,
        close: contiguous(&close, "close")?,
        volume: contiguous(&volume, "volume")?,
    };
    let work = || resample::resample(t, x, &rule, fill_empty, interval);
    let bars = if t.len() < DETACH_MIN {
        work()
    } else {
        py.detach(work)
    }
    .map_err(data_err)?;
    bars_tuple(py, bars)
}

fn rows<'a>(
    a: &'a PyReadonlyArray2<'_, f64>,
    name: &str,
    shape: [usize; 2],
) -> PyResult<&'a [f64]> {
    if a.shape() != shape {
        return Err(FtError::new(
            ErrorKind::MarketData,
            format!("{name}: shape {:?}, open has {:?}", a.shape(), shape),
        )
        .into());
    }
    a.as_slice()
        .map_err(|_| config_err(format!("{name}: must be a C-contiguous 2-D array")))
}

/// Resamples a matrix of symbols (rows) sharing one time axis (columns), the
/// rows in parallel on the compute threads. Returns open_time, the five 2-D
/// columns, count and last_partial.
#[pyfunction]
#[pyo3(signature = (open_time, open, high, low, close, volume, *, width=None, origin=0, edges=None, interval=None))]
#[allow(clippy::too_many_arguments)]
fn pipeline_resample_matrix<'py>(
    py: Python<'py>,
    open_time: PyReadonlyArray1<'py, i64>,
    open: PyReadonlyArray2<'py, f64>,
    high: PyReadonlyArray2<'py, f64>,
    low: PyReadonlyArray2<'py, f64>,
    close: PyReadonlyArray2<'py, f64>,
    volume: PyReadonlyArray2<'py, f64>,
    width: Option<i64>,
    origin: i64,
    edges: Option<PyReadonlyArray1<'py, i64>>,
    interval: Option<i64>,
) -> PyResult<Bound<'py, PyTuple>> {
    let rule = rule_of(width, origin, edges)?;
    let t = contiguous(&open_time, "open_time")?;
    let shape = [open.shape()[0], open.shape()[1]];
    let (m, n) = (shape[0], shape[1]);
    if n != t.len() {
        return Err(FtError::new(
            ErrorKind::MarketData,
            format!("open: {n} columns, open_time has {}", t.len()),
        )
        .into());
    }
    let cols = [
        rows(&open, "open", shape)?,
        rows(&high, "high", shape)?,
        rows(&low, "low", shape)?,
        rows(&close, "close", shape)?,
        rows(&volume, "volume", shape)?,
    ];
    let segs = resample::segments(t, &rule).map_err(data_err)?;
    let k = segs.len();
    let last_close = t.last().zip(interval).map(|(t, d)| t + d);
    let last_partial = match (segs.last(), last_close) {
        (Some(s), Some(lc)) => lc < s.bucket_end,
        _ => false,
    };
    let mut bufs: Vec<Vec<f64>> = (0..5).map(|_| vec![0.0; m * k]).collect();
    if k > 0 {
        let [o, h, l, c, v] = &mut bufs[..] else {
            return Err(FtError::internal("five output columns").into());
        };
        // each worker writes its rows of the five matrices in place
        py.detach(|| {
            o.par_chunks_mut(k)
                .zip(h.par_chunks_mut(k))
                .zip(l.par_chunks_mut(k))
                .zip(c.par_chunks_mut(k))
                .zip(v.par_chunks_mut(k))
                .enumerate()
                .for_each(|(r, ((((o, h), l), c), v))| {
                    let span = r * n..(r + 1) * n;
                    let x = Ohlcv {
                        open: &cols[0][span.clone()],
                        high: &cols[1][span.clone()],
                        low: &cols[2][span.clone()],
                        close: &cols[3][span.clone()],
                        volume: &cols[4][span],
                    };
                    let out = resample::OhlcvOut {
                        open: o,
                        high: h,
                        low: l,
                        close: c,
                        volume: v,
                    };
                    resample::aggregate_into(&segs, x, out);
                })
        });
    }
    let opens: Vec<i64> = segs.iter().map(|s| s.open_time).collect();
    let counts: Vec<u32> = segs.iter().map(|s| (s.end - s.start) as u32).collect();
    let mut items: Vec<Bound<'py, PyAny>> = vec![PyArray1::from_vec(py, opens).into_any()];
    for buf in bufs {
        let mat = Array2::from_shape_vec((m, k), buf)
            .map_err(|e| FtError::internal(format!("matrix shape: {e}")))?;
        items.push(PyArray2::from_owned_array(py, mat).into_any());
    }
    items.push(PyArray1::from_vec(py, counts).into_any());
    items.push(
        pyo3::types::PyBool::new(py, last_partial)
            .to_owned()
            .into_any(),
    );
    PyTuple::new(py, items)
}

/// Incremental resampling into several timeframes (see `resample::Resampler`).
#[pyclass(module = "ferrotick._core", name = "Resampler")]
#[derive(Clone)]
pub struct PyResampler {
    inner: Resampler,
}

#[pymethods]
impl PyResampler {
    /// `rules`: one `(width_ms, origin_ms)` pair or an int64 array of edges per
    /// target timeframe; `interval`: the input bars' length in ms.
    #[new]
    fn new(interval: i64, rules: Vec<Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut parsed = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            if let Ok((w, o)) = r.extract::<(i64, i64)>() {
                parsed.push(Rule::Fixed {
                    width: w,
                    origin: o,
                });
            } else if let Ok(e) = r.extract::<PyReadonlyArray1<'_, i64>>() {
                parsed.push(Rule::Edges(contiguous(&e, "edges")?.to_vec()));
            } else {
                return Err(config_err(format!(
                    "rules[{i}]: expected (width_ms, origin_ms) or an int64 array of edges"
                )));
            }
        }
        let inner = Resampler::new(interval, parsed).map_err(data_err)?;
        Ok(PyResampler { inner })
    }

    /// Adds one bar; returns how many timeframe bars it closed.
    fn update(
        &mut self,
        open_time: i64,
        open: f64,
        high: f64,
        low: f64,
        close: f64,
        volume: f64,
    ) -> usize {
        self.inner.update(open_time, open, high, low, close, volume)
    }

    /// Adds many bars (1-D arrays); returns how many timeframe bars closed.
    #[allow(clippy::too_many_arguments)]
    fn update_many(
        &mut self,
        py: Python<'_>,
        open_time: PyReadonlyArray1<'_, i64>,
        open: PyReadonlyArray1<'_, f64>,
        high: PyReadonlyArray1<'_, f64>,
        low: PyReadonlyArray1<'_, f64>,
        close: PyReadonlyArray1<'_, f64>,
        volume: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<usize> {
        let t = contiguous(&open_time, "open_time")?;
        let x = Ohlcv {
            open: contiguous(&open, "open")?,
            high: contiguous(&high, "high")?,
            low: contiguous(&low, "low")?,
            close: contiguous(&close, "close")?,
            volume: contiguous(&volume, "volume")?,
        };
        x.check(t.len()).map_err(data_err)?;
        let inner = &mut self.inner;
        let mut work = || {
            let mut closed = 0;
            for (i, &ti) in t.iter().enumerate() {
                closed += inner.update(ti, x.open[i], x.high[i], x.low[i], x.close[i], x.volume[i]);
            }
            closed
        };
        Ok(if t.len() < DETACH_MIN {
            work()
        } else {
            py.detach(work)
        })
    }

    /// The closed bars of timeframe `i` since the last call, as
    /// (open_time, open, high, low, close, volume, count, False).
    fn drain<'py>(&mut self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyTuple>> {
        if i >= self.inner.targets() {
            return Err(config_err(format!(
                "i: no timeframe {i} (there are {})",
                self.inner.targets()
            )));
        }
        bars_tuple(py, self.inner.drain(i))
    }

    /// The bar being built for timeframe `i`:
    /// (open_time, open, high, low, close, volume, count), or None.
    fn current(&self, i: usize) -> Option<(i64, f64, f64, f64, f64, f64, u32)> {
        self.inner
            .current(i)
            .map(|(t, a): (i64, Acc)| (t, a.open, a.high, a.low, a.close, a.volume, a.count))
    }

    /// Bars dropped because they were not after the previous bar.
    #[getter]
    fn dropped(&self) -> u64 {
        self.inner.dropped
    }

    fn copy(&self) -> Self {
        self.clone()
    }
}

fn params_of(
    adx_trend: f64,
    adx_range: f64,
    vol_window: usize,
    vol_high: f64,
    er_period: usize,
    er_trend: f64,
) -> PyResult<RegimeParams> {
    let p = RegimeParams {
        adx_trend,
        adx_range,
        vol_window,
        vol_high,
        er_period,
        er_trend,
    };
    p.check().map_err(config_err)?;
    Ok(p)
}

/// The regime state machine; `update` classifies one bar.
#[pyclass(module = "ferrotick._core", name = "RegimeClassifier")]
#[derive(Clone)]
pub struct PyRegimeClassifier {
    inner: RegimeState,
}

#[pymethods]
impl PyRegimeClassifier {
    #[new]
    #[pyo3(signature = (*, adx_trend=25.0, adx_range=20.0, vol_window=100, vol_high=0.9, er_period=10, er_trend=0.3))]
    fn new(
        adx_trend: f64,
        adx_range: f64,
        vol_window: usize,
        vol_high: f64,
        er_period: usize,
        er_trend: f64,
    ) -> PyResult<Self> {
        let p = params_of(
            adx_trend, adx_range, vol_window, vol_high, er_period, er_trend,
        )?;
        let inner = RegimeState::new(p).map_err(config_err)?;
        Ok(PyRegimeClassifier { inner })
    }

    /// Classifies one bar: (regime code, confidence).
    fn update(&mut self, adx: f64, plus_di: f64, minus_di: f64, atr: f64, close: f64) -> (u8, f64) {
        self.inner.update(adx, plus_di, minus_di, atr, close)
    }

    /// The last bar's (code, confidence).
    #[getter]
    fn last(&self) -> (u8, f64) {
        self.inner.last
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    /// The regime names by code.
    #[classattr]
    fn names() -> Vec<&'static str> {
        regime::NAMES.to_vec()
    }
}

/// Codes, confidences and the state after the last bar.
type RegimeOut<'py> = (
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray1<f64>>,
    PyRegimeClassifier,
);

/// Classifies every bar: (codes uint8, confidence float64, the state after the
/// last bar as a RegimeClassifier).
#[pyfunction]
#[pyo3(signature = (adx, plus_di, minus_di, atr, close, *, adx_trend=25.0, adx_range=20.0, vol_window=100, vol_high=0.9, er_period=10, er_trend=0.3))]
#[allow(clippy::too_many_arguments)]
fn pipeline_regime<'py>(
    py: Python<'py>,
    adx: PyReadonlyArray1<'py, f64>,
    plus_di: PyReadonlyArray1<'py, f64>,
    minus_di: PyReadonlyArray1<'py, f64>,
    atr: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    adx_trend: f64,
    adx_range: f64,
    vol_window: usize,
    vol_high: f64,
    er_period: usize,
    er_trend: f64,
) -> PyResult<RegimeOut<'py>> {
    let p = params_of(
        adx_trend, adx_range, vol_window, vol_high, er_period, er_trend,
    )?;
    let x = regime::RegimeInputs {
        adx: contiguous(&adx, "adx")?,
        plus_di: contiguous(&plus_di, "plus_di")?,
        minus_di: contiguous(&minus_di, "minus_di")?,
        atr: contiguous(&atr, "atr")?,
        close: contiguous(&close, "close")?,
    };
    let work = || regime::classify(&x, p);
    let (codes, conf, state) = if x.close.len() < DETACH_MIN {
        work()
    } else {
        py.detach(work)
    }
    .map_err(|m| FtError::new(ErrorKind::MarketData, m))?;
    Ok((
        PyArray1::from_vec(py, codes),
        PyArray1::from_vec(py, conf),
        PyRegimeClassifier { inner: state },
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pipeline_resample, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline_resample_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline_regime, m)?)?;
    m.add_class::<PyResampler>()?;
    m.add_class::<PyRegimeClassifier>()?;
    Ok(())
}
