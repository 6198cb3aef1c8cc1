//! Python bindings of the indicator kernels: array functions, multi-symbol
//! batches on the compute pool and their awaitable variants (the streams
//! are in `pystream.rs`).

use std::sync::Arc;

use numpy::ndarray::{ArrayView1, ArrayView2};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyTuple};

use super::batch::{self, run_plan, BatchPlan, OwnedOrBorrowed, OwnedSeries, RowPtr};
use super::buffers;
use super::cols::{Cols, OutRows};
use super::registry::{self, AnyKernel};
use super::specs::{self, input_bit, Spec};
use crate::errors::{ErrorKind, FtError};
use crate::runtime::bridge;

pub(super) fn input_err(msg: impl Into<String>) -> PyErr {
    FtError::new(ErrorKind::IndicatorInput, msg).into()
}

/// Runs kernel code, turning a panic (a bug: inputs are validated first)
/// into a FerrotickError instead of unwinding into Python or the pool.
pub(super) fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, FtError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        FtError::new(
            ErrorKind::Ferrotick,
            format!(
                "{what}: internal error: {}",
                crate::runtime::panic_message(p)
            ),
        )
    })
}

pub(super) fn find_spec(name: &str) -> PyResult<&'static Spec> {
    specs::spec(name).ok_or_else(|| input_err(format!("unknown indicator {name:?}")))
}

pub(super) fn build(spec: &Spec, params: &[f64]) -> PyResult<AnyKernel> {
    registry::build(spec, params).map_err(input_err)
}

/// Owns the buffer behind arrays handed to Python.
#[pyclass(module = "ferrotick.ta", name = "_Buffer", frozen)]
pub struct Buffer {
    v: Mutex<Vec<f64>>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        buffers::give(std::mem::take(self.v.get_mut()));
    }
}

fn owner(py: Python<'_>, v: Vec<f64>) -> PyResult<(Bound<'_, Buffer>, *const f64)> {
    let ptr = v.as_ptr();
    let b = Bound::new(py, Buffer { v: Mutex::new(v) })?;
    Ok((b, ptr))
}

/// A 1-D array over `v` (length `v.len()`).
pub fn array1(py: Python<'_>, v: Vec<f64>) -> PyResult<Bound<'_, PyArray1<f64>>> {
    let n = v.len();
    let (b, ptr) = owner(py, v)?;
    // SAFETY: `ptr` points to `n` initialised f64 owned by `b`'s buffer,
    // which is never reallocated or touched until `b` is dropped; `b`
    // becomes the array's base object, so it outlives the array.
    unsafe {
        let view = ArrayView1::from_shape_ptr(n, ptr);
        Ok(PyArray1::borrow_from_array(&view, b.into_any()))
    }
}

/// A C-contiguous 2-D array (rows x cols) over `v`.
pub fn array2(
    py: Python<'_>,
    v: Vec<f64>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<f64>>> {
    assert_eq!(v.len(), rows * cols);
    let (b, ptr) = owner(py, v)?;
    // SAFETY: as in `array1`; rows * cols values are initialised.
    unsafe {
        let view = ArrayView2::from_shape_ptr((rows, cols), ptr);
        Ok(PyArray2::borrow_from_array(&view, b.into_any()))
    }
}

/// The function table for the Python layer.
#[pyfunction]
fn ta_specs(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let out = PyList::empty(py);
    for s in specs::SPECS {
        let d = PyDict::new(py);
        d.set_item("name", s.name)?;
        d.set_item("group", s.group)?;
        d.set_item("title", s.title)?;
        d.set_item("inputs", s.inputs.to_vec())?;
        d.set_item("outputs", s.outputs.to_vec())?;
        let ps = PyList::empty(py);
        for p in s.params {
            let pd = PyDict::new(py);
            pd.set_item("name", p.name)?;
            if p.int {
                pd.set_item("default", p.default as i64)?;
            } else {
                pd.set_item("default", p.default)?;
            }
            pd.set_item("min", p.min)?;
            pd.set_item("max", p.max)?;
            pd.set_item("int", p.int)?;
            ps.append(pd)?;
        }
        d.set_item("params", ps)?;
        out.append(d)?;
    }
    Ok(out)
}

#[pyfunction]
fn ta_lookback(name: &str, params: Vec<f64>) -> PyResult<usize> {
    let s = find_spec(name)?;
    registry::lookback(s, &params).map_err(input_err)
}

pub(super) fn check_lengths(spec: &Spec, lens: &[usize]) -> PyResult<usize> {
    if lens.len() != spec.inputs.len() {
        return Err(input_err(format!(
            "{} takes {} input arrays ({}), got {}",
            spec.name,
            spec.inputs.len(),
            spec.inputs.join(", "),
            lens.len()
        )));
    }
    let n = lens.first().copied().unwrap_or(0);
    if lens.iter().any(|l| *l != n) {
        let parts: Vec<String> = spec
            .inputs
            .iter()
            .zip(lens)
            .map(|(i, l)| format!("{i}={l}"))
            .collect();
        return Err(input_err(format!(
            "{}: {} must have the same length (got {})",
            spec.name,
            spec.inputs.join(", "),
            parts.join(", ")
        )));
    }
    Ok(n)
}

/// Allocates `nout` uninitialised float64 arrays of length `n`.
pub(super) fn alloc_out<'py>(
    py: Python<'py>,
    nout: usize,
    n: usize,
) -> Vec<Bound<'py, PyArray1<f64>>> {
    (0..nout)
        .map(|_| {
            // SAFETY: every element is written by the kernel run (an output or
            // NaN for each bar) before the array is returned to Python.
            unsafe { PyArray1::<f64>::new(py, n, false) }
        })
        .collect()
}

/// `name(*inputs, *params)` on whole arrays; the GIL is released meanwhile.
#[pyfunction]
fn ta_run<'py>(
    py: Python<'py>,
    name: &str,
    inputs: Vec<PyReadonlyArray1<'py, f64>>,
    params: Vec<f64>,
) -> PyResult<Bound<'py, PyTuple>> {
    let outs = run_arrays(py, name, &inputs, &params)?;
    PyTuple::new(py, outs)
}

/// Below this many bars a kernel runs in less time than releasing and
/// taking back the GIL costs, so it keeps the GIL.
const DETACH_MIN: usize = 2048;

/// The function API's common case in one call: every input a 1-D float64
/// numpy array and every parameter a Python int or float. Returns the
/// output array (a tuple of them for several outputs) as the Python layer's
/// `call` would, or None when anything needs its conversions (pandas or
/// polars inputs, other dtypes or dimensions, strided views, numpy scalars
/// or bools as parameters), which then also give the error messages.
#[pyfunction]
fn ta_call<'py>(
    py: Python<'py>,
    name: &str,
    inputs: &Bound<'py, PyTuple>,
    params: &Bound<'py, PyTuple>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut arrays: Vec<PyReadonlyArray1<'py, f64>> = Vec::with_capacity(inputs.len());
    for x in inputs.iter() {
        let Ok(a) = x.cast::<PyArray1<f64>>() else {
            return Ok(None);
        };
        if !a.is_c_contiguous() {
            return Ok(None);
        }
        let Ok(r) = a.try_readonly() else {
            return Ok(None);
        };
        arrays.push(r);
    }
    let mut ps: Vec<f64> = Vec::with_capacity(params.len());
    for v in params.iter() {
        if v.is_exact_instance_of::<PyFloat>() || v.is_exact_instance_of::<PyInt>() {
            match v.extract::<f64>() {
                Ok(f) => ps.push(f),
                Err(_) => return Ok(None),
            }
        } else {
            return Ok(None);
        }
    }
    let mut outs = run_arrays(py, name, &arrays, &ps)?;
    Ok(Some(if outs.len() == 1 {
        outs.swap_remove(0).into_any()
    } else {
        PyTuple::new(py, outs)?.into_any()
    }))
}

fn run_arrays<'py>(
    py: Python<'py>,
    name: &str,
    inputs: &[PyReadonlyArray1<'py, f64>],
    params: &[f64],
) -> PyResult<Vec<Bound<'py, PyArray1<f64>>>> {
    let spec = find_spec(name)?;
    let mut k = build(spec, params)?;
    let lens: Vec<usize> = inputs.iter().map(|a| a.len()).collect();
    let n = check_lengths(spec, &lens)?;
    let mut slices: Vec<(u8, &[f64])> = Vec::with_capacity(inputs.len());
    for (a, iname) in inputs.iter().zip(spec.inputs) {
        let s = a
            .as_slice()
            .map_err(|_| input_err(format!("{}: {iname} must be contiguous", spec.name)))?;
        slices.push((input_bit(iname), s));
    }
    let mut bufs: Vec<Vec<f64>> = (0..spec.outputs.len()).map(|_| buffers::take(n)).collect();
    let mask = specs::mask(spec);
    let mut work = || {
        guarded(spec.name, || {
            let cols = Cols::new(&slices);
            let rows: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            let mut out = OutRows { rows };
            batch::run_fresh(&mut k, mask, &cols, &mut out, &|| false);
        })
    };
    if n < DETACH_MIN {
        work()?;
    } else {
        py.detach(work)?;
    }
    bufs.into_iter()
        .map(|b| array1(py, b))
        .collect::<PyResult<_>>()
}

/// The awaitable twin of [`ta_run`]: runs on the compute pool.
#[pyfunction]
fn ta_run_async<'py>(
    py: Python<'py>,
    name: &str,
    inputs: Vec<PyReadonlyArray1<'py, f64>>,
    params: Vec<f64>,
) -> PyResult<Bound<'py, bridge::FerrotickFuture>> {
    let spec = find_spec(name)?;
    let mut k = build(spec, &params)?;
    let lens: Vec<usize> = inputs.iter().map(|a| a.len()).collect();
    let n = check_lengths(spec, &lens)?;
    let mut cols = Vec::with_capacity(inputs.len());
    for (a, iname) in inputs.iter().zip(spec.inputs) {
        cols.push((input_bit(iname), a.as_array().to_vec()));
    }
    let series = OwnedSeries { cols, n };
    let nout = spec.outputs.len();
    let mask = specs::mask(spec);
    let pool = batch::pool()?;
    let (fut, completer) = bridge::pending(py)?;
    let cancel = completer.cancel_flag();
    pool.spawn(move || {
        let mut bufs: Vec<Vec<f64>> = (0..nout).map(|_| buffers::take(n)).collect();
        let done = guarded(spec.name, || {
            let rows: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            let mut out = OutRows { rows };
            let c = series.cols();
            batch::run_fresh(&mut k, mask, &c, &mut out, &|| cancel.is_set())
        });
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                completer.complete(Err(e));
                return;
            }
        };
        if !done {
            completer.complete(Err(FtError::new(ErrorKind::Ferrotick, "cancelled")));
            return;
        }
        completer.complete(Ok(Box::new(move |py: Python<'_>| {
            let arrs: Vec<Bound<'_, PyArray1<f64>>> = bufs
                .into_iter()
                .map(|b| PyArray1::from_vec(py, b))
                .collect();
            Ok(PyTuple::new(py, arrs)?.into_any().unbind())
        })));
    });
    Ok(fut)
}

type SpecArg = (String, Vec<f64>);

/// One input of a batch: a C-contiguous 2-D float64 array (a series per
/// row, no per-row Python objects) or a list of 1-D arrays.
enum SeriesSource<'py> {
    Rows {
        _arr: numpy::PyReadonlyArray2<'py, f64>,
        ptr: usize,
        nrows: usize,
        ncols: usize,
    },
    List(Vec<PyReadonlyArray1<'py, f64>>),
}

impl<'py> SeriesSource<'py> {
    fn from_py(key: &str, obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(a) = obj.extract::<numpy::PyReadonlyArray2<'py, f64>>() {
            let shape = a.shape().to_vec();
            let ptr = a
                .as_slice()
                .map_err(|_| input_err(format!("input {key:?} must be C-contiguous")))?
                .as_ptr() as usize;
            return Ok(SeriesSource::Rows {
                _arr: a,
                ptr,
                nrows: shape[0],
                ncols: shape[1],
            });
        }
        let v: Vec<PyReadonlyArray1<'py, f64>> = obj.extract().map_err(|_| {
            input_err(format!(
                "input {key:?} must be a 2-D float64 array or a list of 1-D float64 arrays"
            ))
        })?;
        Ok(SeriesSource::List(v))
    }

    fn len(&self) -> usize {
        match self {
            SeriesSource::Rows { nrows, .. } => *nrows,
            SeriesSource::List(v) => v.len(),
        }
    }

    /// (pointer, length) of series `si`.
    fn row(&self, key: &str, si: usize) -> PyResult<(usize, usize)> {
        match self {
            SeriesSource::Rows {
                ptr, nrows, ncols, ..
            } => {
                if si >= *nrows {
                    return Err(input_err(format!(
                        "input {key:?} has fewer series than the others"
                    )));
                }
                Ok((ptr + si * ncols * std::mem::size_of::<f64>(), *ncols))
            }
            SeriesSource::List(v) => {
                let a = v.get(si).ok_or_else(|| {
                    input_err(format!("input {key:?} has fewer series than the others"))
                })?;
                let s = a
                    .as_slice()
                    .map_err(|_| input_err(format!("input {key:?} must be contiguous")))?;
                Ok((s.as_ptr() as usize, s.len()))
            }
        }
    }
}

fn read_inputs<'py>(
    inputs: Vec<(String, Bound<'py, PyAny>)>,
) -> PyResult<Vec<(String, SeriesSource<'py>)>> {
    inputs
        .into_iter()
        .map(|(k, o)| {
            let src = SeriesSource::from_py(&k, &o)?;
            Ok((k, src))
        })
        .collect()
}

fn plan_kernels(specs: &[SpecArg]) -> PyResult<PlannedKernels> {
    specs
        .iter()
        .map(|(name, params)| {
            let s = find_spec(name)?;
            Ok((build(s, params)?, specs::mask(s), s.outputs.len(), s))
        })
        .collect()
}

/// Columns of one series for the inputs `spec` needs, from the mapping
/// input name -> per-series arrays.
fn columns_for(
    spec: &Spec,
    inputs: &[(String, SeriesSource<'_>)],
    si: usize,
) -> PyResult<Vec<(u8, usize, usize)>> {
    let mut v = Vec::new();
    for iname in spec.inputs {
        let key = if *iname == "real" { "close" } else { iname };
        let src = inputs
            .iter()
            .find(|(k, _)| k == key || (key == "close" && k == "real"))
            .map(|(_, a)| a)
            .ok_or_else(|| {
                input_err(format!(
                    "{} needs the input {key:?}, which the batch does not have",
                    spec.name
                ))
            })?;
        let (ptr, len) = src.row(key, si)?;
        v.push((input_bit(iname), ptr, len));
    }
    let n = v.first().map(|c| c.2).unwrap_or(0);
    if v.iter().any(|c| c.2 != n) {
        return Err(input_err(format!(
            "{}: the inputs of series {si} have different lengths",
            spec.name
        )));
    }
    Ok(v)
}

/// The columns of every series for all the indicators of a batch (the union
/// of their inputs), each series' length, and where each series' rows start
/// in the flat output buffers.
struct SeriesPlan {
    cols: Vec<Vec<(u8, usize, usize)>>,
    lens: Vec<usize>,
    offsets: Vec<usize>,
}

type PlannedKernels = Vec<(AnyKernel, u8, usize, &'static Spec)>;

fn plan_series(ks: &PlannedKernels, inputs: &[(String, SeriesSource<'_>)]) -> PyResult<SeriesPlan> {
    let nser = inputs.first().map(|(_, a)| a.len()).unwrap_or(0);
    if inputs.iter().any(|(_, a)| a.len() != nser) {
        return Err(input_err("every input must have the same number of series"));
    }
    let mut lens = Vec::with_capacity(nser);
    let mut cols = Vec::with_capacity(nser);
    for si in 0..nser {
        let mut union: Vec<(u8, usize, usize)> = Vec::new();
        for (_, _, _, s) in ks {
            for c in columns_for(s, inputs, si)? {
                if !union.iter().any(|u| u.0 == c.0) {
                    union.push(c);
                }
            }
        }
        let n = union.first().map(|c| c.2).unwrap_or(0);
        if union.iter().any(|c| c.2 != n) {
            return Err(input_err(format!(
                "the inputs of series {si} have different lengths"
            )));
        }
        lens.push(n);
        cols.push(union);
    }
    let mut offsets = Vec::with_capacity(nser);
    let mut acc = 0;
    for l in &lens {
        offsets.push(acc);
        acc += l;
    }
    Ok(SeriesPlan {
        cols,
        lens,
        offsets,
    })
}

/// Many indicators over many series in parallel on the compute pool.
///
/// `inputs`: (input name, one 1-D float64 array per series). Returns, per
/// spec, a tuple with one 2-D array (series x bars) per output when all
/// series have the same length, else a tuple of lists of 1-D arrays.
#[pyfunction]
fn ta_batch<'py>(
    py: Python<'py>,
    specs: Vec<SpecArg>,
    inputs: Vec<(String, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyList>> {
    let ks = plan_kernels(&specs)?;
    let inputs = read_inputs(inputs)?;
    let SeriesPlan {
        cols: series_cols,
        lens,
        offsets,
    } = plan_series(&ks, &inputs)?;
    let equal = lens.iter().all(|l| Some(l) == lens.first());
    let total: usize = lens.iter().sum();
    // One flat buffer per (indicator, output).
    let mut bufs: Vec<Vec<Vec<f64>>> = ks
        .iter()
        .map(|(_, _, nout, _)| (0..*nout).map(|_| buffers::take(total)).collect())
        .collect();
    let ptrs: Vec<Vec<RowPtr>> = bufs
        .iter_mut()
        .map(|outs| outs.iter_mut().map(|b| RowPtr(b.as_mut_ptr())).collect())
        .collect();
    let mut plan = BatchPlan {
        kernels: ks.iter().map(|(k, m, n, _)| (k.clone(), *m, *n)).collect(),
        series: series_cols
            .into_iter()
            .map(OwnedOrBorrowed::Borrowed)
            .collect(),
    };
    let pool = batch::pool()?;
    py.detach(|| {
        guarded("batch", || {
            pool.install(|| run_plan(&mut plan, &ptrs, &offsets, &|| false))
        })
    })?;
    drop(inputs);
    assemble(py, bufs, &lens, equal)
}

fn assemble<'py>(
    py: Python<'py>,
    bufs: Vec<Vec<Vec<f64>>>,
    lens: &[usize],
    equal: bool,
) -> PyResult<Bound<'py, PyList>> {
    let res = PyList::empty(py);
    let n = lens.first().copied().unwrap_or(0);
    for outs in bufs {
        let mut items: Vec<Bound<'py, PyAny>> = Vec::with_capacity(outs.len());
        for b in outs {
            if equal {
                items.push(array2(py, b, lens.len(), n)?.into_any());
            } else {
                let l = PyList::empty(py);
                let mut off = 0;
                for len in lens {
                    l.append(PyArray1::from_slice(py, &b[off..off + len]))?;
                    off += len;
                }
                items.push(l.into_any());
            }
        }
        res.append(PyTuple::new(py, items)?)?;
    }
    Ok(res)
}

/// The awaitable twin of [`ta_batch`]; cancelling it stops the work at the
/// next chunk boundary.
#[pyfunction]
fn ta_batch_async<'py>(
    py: Python<'py>,
    specs: Vec<SpecArg>,
    inputs: Vec<(String, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, bridge::FerrotickFuture>> {
    let ks = plan_kernels(&specs)?;
    let inputs = read_inputs(inputs)?;
    let SeriesPlan {
        cols,
        lens,
        offsets,
    } = plan_series(&ks, &inputs)?;
    let owned = cols
        .into_iter()
        .zip(&lens)
        .map(|(union, &n)| {
            let cols = union
                .into_iter()
                .map(|(b, p, len)| {
                    (
                        b,
                        // SAFETY: the arrays are borrowed read-only for this
                        // call and copied before it returns.
                        unsafe { std::slice::from_raw_parts(p as *const f64, len) }.to_vec(),
                    )
                })
                .collect();
            OwnedOrBorrowed::Owned(OwnedSeries { cols, n })
        })
        .collect();
    drop(inputs);
    let equal = lens.iter().all(|l| Some(l) == lens.first());
    let total: usize = lens.iter().sum();
    let mut plan = BatchPlan {
        kernels: ks.iter().map(|(k, m, n, _)| (k.clone(), *m, *n)).collect(),
        series: owned,
    };
    let nouts: Vec<usize> = ks.iter().map(|(_, _, n, _)| *n).collect();
    let pool = batch::pool()?;
    let pool2 = pool.clone();
    let (fut, completer) = bridge::pending(py)?;
    let cancel = completer.cancel_flag();
    pool.spawn(move || {
        let mut bufs: Vec<Vec<Vec<f64>>> = nouts
            .iter()
            .map(|nout| (0..*nout).map(|_| buffers::take(total)).collect())
            .collect();
        let ptrs: Vec<Vec<RowPtr>> = bufs
            .iter_mut()
            .map(|outs| outs.iter_mut().map(|b| RowPtr(b.as_mut_ptr())).collect())
            .collect();
        let ok = guarded("batch", || {
            pool2.install(|| run_plan(&mut plan, &ptrs, &offsets, &|| cancel.is_set()))
        });
        let ok = match ok {
            Ok(v) => v,
            Err(e) => {
                completer.complete(Err(e));
                return;
            }
        };
        if !ok {
            completer.complete(Err(FtError::new(ErrorKind::Ferrotick, "cancelled")));
            return;
        }
        completer.complete(Ok(Box::new(move |py: Python<'_>| {
            Ok(assemble(py, bufs, &lens, equal)?.into_any().unbind())
        })));
    });
    Ok(fut)
}

/// Sets the bytes of result buffers kept for reuse (0 disables); returns
/// the previous limit.
#[pyfunction]
fn ta_buffer_pool(limit: Option<usize>) -> (usize, usize) {
    let prev = buffers::limit();
    if let Some(l) = limit {
        buffers::set_limit(l);
    }
    (prev, buffers::held_bytes())
}

#[pyfunction]
fn ta_pool_threads() -> PyResult<usize> {
    Ok(batch::pool()?.current_num_threads())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ta_specs, m)?)?;
    m.add_function(wrap_pyfunction!(ta_lookback, m)?)?;
    m.add_function(wrap_pyfunction!(ta_run, m)?)?;
    m.add_function(wrap_pyfunction!(ta_call, m)?)?;
    m.add_function(wrap_pyfunction!(ta_run_async, m)?)?;
    m.add_function(wrap_pyfunction!(ta_batch, m)?)?;
    m.add_function(wrap_pyfunction!(ta_batch_async, m)?)?;
    m.add_function(wrap_pyfunction!(ta_pool_threads, m)?)?;
    m.add_function(wrap_pyfunction!(ta_buffer_pool, m)?)?;
    m.add_class::<Buffer>()?;
    let _ = Arc::new(());
    Ok(())
}
