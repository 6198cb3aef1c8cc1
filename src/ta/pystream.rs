//! Python bindings of the indicator streams: one indicator (`Stream`) or
//! many of one symbol (`Bundle`) updated bar by bar in O(1).

use numpy::{PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::batch;
use super::cols::{Cols, OutRows};
use super::kernels::{Bar, Out, I_C, I_H, I_L, I_O, I_V};
use super::py::{alloc_out, build, check_lengths, find_spec, guarded, input_err};
use super::registry::AnyKernel;
use super::specs::{self, input_bit, Spec};

fn bar_from(spec: &Spec, vals: [f64; 4]) -> (Bar, bool) {
    let mut b = Bar::default();
    let mut nan = false;
    for (i, iname) in spec.inputs.iter().enumerate() {
        let v = vals[i];
        nan |= v.is_nan();
        match input_bit(iname) {
            I_O => b.o = v,
            I_H => b.h = v,
            I_L => b.l = v,
            I_V => b.v = v,
            _ => b.c = v,
        }
    }
    (b, nan)
}

fn out_obj(py: Python<'_>, nout: usize, r: Option<Out>) -> PyResult<Py<PyAny>> {
    let v = r.unwrap_or([f64::NAN; 4]);
    if nout == 1 {
        return Ok(v[0].into_pyobject(py)?.into_any().unbind());
    }
    Ok(PyTuple::new(py, &v[..nout])?.into_any().unbind())
}

/// One indicator updated bar by bar in O(1); equal to the batch function
/// at every bar.
#[pyclass(module = "ferrotick.ta.stream", name = "Stream")]
#[derive(Clone)]
pub struct Stream {
    spec: &'static Spec,
    params: Vec<f64>,
    k: AnyKernel,
    last: Option<Out>,
    count: u64,
}

impl Stream {
    fn push(&mut self, vals: [f64; 4]) -> Option<Out> {
        let (b, nan) = bar_from(self.spec, vals);
        if nan {
            return None;
        }
        self.count += 1;
        let r = self.k.next(&b);
        if r.is_some() {
            self.last = r;
        }
        r
    }

    fn arity(&self, given: usize) -> PyResult<()> {
        if given != self.spec.inputs.len() {
            return Err(input_err(format!(
                "{} stream takes {} values per bar ({}), got {}",
                self.spec.name,
                self.spec.inputs.len(),
                self.spec.inputs.join(", "),
                given
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Stream {
    #[new]
    fn new(name: &str, params: Vec<f64>) -> PyResult<Self> {
        let spec = find_spec(name)?;
        let k = build(spec, &params)?;
        Ok(Stream {
            spec,
            params,
            k,
            last: None,
            count: 0,
        })
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.spec.name
    }

    #[getter]
    fn params(&self) -> Vec<f64> {
        self.params.clone()
    }

    /// True once the stream has produced an output.
    #[getter]
    fn ready(&self) -> bool {
        self.last.is_some()
    }

    /// Bars committed (NaN bars are skipped and not counted).
    #[getter]
    fn count(&self) -> u64 {
        self.count
    }

    /// The latest output (NaN before the first).
    #[getter]
    fn value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        out_obj(py, self.spec.outputs.len(), self.last)
    }

    /// Commits one bar and returns the new output (NaN while warming up).
    #[pyo3(signature = (a, b=None, c=None, d=None))]
    fn update(
        &mut self,
        py: Python<'_>,
        a: f64,
        b: Option<f64>,
        c: Option<f64>,
        d: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let given = 1 + b.is_some() as usize + c.is_some() as usize + d.is_some() as usize;
        if given != self.spec.inputs.len() {
            self.arity(given)?;
        }
        let r = self.push([a, b.unwrap_or(0.0), c.unwrap_or(0.0), d.unwrap_or(0.0)]);
        out_obj(py, self.spec.outputs.len(), r)
    }

    /// The output with a forming bar, without committing it.
    #[pyo3(signature = (a, b=None, c=None, d=None))]
    fn peek(
        &self,
        py: Python<'_>,
        a: f64,
        b: Option<f64>,
        c: Option<f64>,
        d: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let given = 1 + b.is_some() as usize + c.is_some() as usize + d.is_some() as usize;
        self.arity(given)?;
        let (bar, nan) = bar_from(
            self.spec,
            [a, b.unwrap_or(0.0), c.unwrap_or(0.0), d.unwrap_or(0.0)],
        );
        if nan {
            return out_obj(py, self.spec.outputs.len(), None);
        }
        let mut k = self.k.clone();
        let r = k.next(&bar);
        out_obj(py, self.spec.outputs.len(), r)
    }

    /// Commits every bar of the arrays; returns the outputs (one array per
    /// output), as the batch function would for these bars.
    fn update_many<'py>(
        &mut self,
        py: Python<'py>,
        inputs: Vec<PyReadonlyArray1<'py, f64>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let lens: Vec<usize> = inputs.iter().map(|a| a.len()).collect();
        let n = check_lengths(self.spec, &lens)?;
        let mut slices: Vec<(u8, &[f64])> = Vec::with_capacity(inputs.len());
        for (a, iname) in inputs.iter().zip(self.spec.inputs) {
            let s = a.as_slice().map_err(|_| {
                input_err(format!("{}: {iname} must be contiguous", self.spec.name))
            })?;
            slices.push((input_bit(iname), s));
        }
        let outs = alloc_out(py, self.spec.outputs.len(), n);
        let mut rows: Vec<&mut [f64]> = Vec::with_capacity(outs.len());
        for o in &outs {
            // SAFETY: freshly created arrays, not yet visible to Python.
            rows.push(unsafe { o.as_slice_mut() }.map_err(|e| input_err(e.to_string()))?);
        }
        let mask = specs::mask(self.spec);
        let k = &mut self.k;
        let name = self.spec.name;
        py.detach(|| {
            guarded(name, || {
                let cols = Cols::new(&slices);
                let mut out = OutRows { rows };
                batch::run(k, mask, &cols, &mut out, &|| false);
            })
        })?;
        // Bookkeeping from the outputs: the last non-NaN row is the value.
        let nout = self.spec.outputs.len();
        for i in (0..n).rev() {
            // SAFETY: the arrays were created above and are not yet visible
            // to Python; the kernel that wrote them has returned.
            let v0 = unsafe { outs[0].as_slice() }.map_err(|e| input_err(e.to_string()))?[i];
            if !v0.is_nan() {
                let mut v = [0.0; 4];
                for (j, o) in outs.iter().enumerate().take(nout) {
                    // SAFETY: read-only access to arrays owned by this call.
                    v[j] = unsafe { o.as_slice() }.map_err(|e| input_err(e.to_string()))?[i];
                }
                self.last = Some(v);
                break;
            }
        }
        let valid = (0..n)
            .filter(|&i| !slices.iter().any(|(_, s)| s[i].is_nan()))
            .count();
        self.count += valid as u64;
        PyTuple::new(py, outs)
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    fn __getnewargs__(&self) -> (&'static str, Vec<f64>) {
        (self.spec.name, self.params.clone())
    }

    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let state = (&self.k, &self.last, self.count);
        let bytes = bincode::serialize(&state)
            .map_err(|e| input_err(format!("could not pickle the stream: {e}")))?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __setstate__(&mut self, state: &[u8]) -> PyResult<()> {
        let (k, last, count): (AnyKernel, Option<Out>, u64) = bincode::deserialize(state)
            .map_err(|e| input_err(format!("could not unpickle the stream: {e}")))?;
        self.k = k;
        self.last = last;
        self.count = count;
        Ok(())
    }

    fn __repr__(&self) -> String {
        let ps: Vec<String> = self
            .spec
            .params
            .iter()
            .zip(&self.params)
            .map(|(p, v)| {
                if p.int {
                    format!("{}={}", p.name, *v as i64)
                } else {
                    format!("{}={}", p.name, v)
                }
            })
            .collect();
        format!(
            "<ferrotick.ta.stream.{}({}) bars={}>",
            self.spec.name,
            ps.join(", "),
            self.count
        )
    }
}

/// Many indicators of one symbol, updated together from one bar.
#[pyclass(module = "ferrotick.ta.stream", name = "Bundle")]
#[derive(Clone)]
pub struct Bundle {
    streams: Vec<Stream>,
    labels: Vec<String>,
    need: u8,
}

impl Bundle {
    fn bar(
        &self,
        close: f64,
        high: Option<f64>,
        low: Option<f64>,
        open: Option<f64>,
        volume: Option<f64>,
    ) -> PyResult<Bar> {
        let get = |v: Option<f64>, bit: u8, name: &str| -> PyResult<f64> {
            match v {
                Some(x) => Ok(x),
                None if self.need & bit != 0 => {
                    Err(input_err(format!("this bundle needs {name} for every bar")))
                }
                None => Ok(f64::NAN),
            }
        };
        Ok(Bar {
            c: close,
            h: get(high, I_H, "high")?,
            l: get(low, I_L, "low")?,
            o: get(open, I_O, "open")?,
            v: get(volume, I_V, "volume")?,
        })
    }

    fn step(py: Python<'_>, streams: &mut [Stream], b: &Bar) -> PyResult<Py<PyAny>> {
        let mut items: Vec<Py<PyAny>> = Vec::with_capacity(streams.len());
        for s in streams.iter_mut() {
            let mask = specs::mask(s.spec);
            let nan = (mask & I_O != 0 && b.o.is_nan())
                || (mask & I_H != 0 && b.h.is_nan())
                || (mask & I_L != 0 && b.l.is_nan())
                || (mask & I_C != 0 && b.c.is_nan())
                || (mask & I_V != 0 && b.v.is_nan());
            let r = if nan {
                None
            } else {
                s.count += 1;
                let r = s.k.next(b);
                if r.is_some() {
                    s.last = r;
                }
                r
            };
            items.push(out_obj(py, s.spec.outputs.len(), r)?);
        }
        Ok(PyTuple::new(py, items)?.into_any().unbind())
    }
}

#[pymethods]
impl Bundle {
    /// `indicators`: specs as ``ferrotick.ta.batch`` takes them ("RSI",
    /// ("SMA", {"timeperiod": 20}), {"name": "EMA", "label": "fast", ...}).
    #[new]
    fn new(py: Python<'_>, indicators: Vec<Bound<'_, PyAny>>) -> PyResult<Self> {
        let norm = py
            .import("ferrotick.ta._common")?
            .getattr("normalize_spec")?;
        let mut streams = Vec::with_capacity(indicators.len());
        let mut labels: Vec<String> = Vec::with_capacity(indicators.len());
        let mut need = 0;
        for item in indicators {
            let (label, name, params): (String, String, Vec<f64>) =
                norm.call1((item,))?.extract()?;
            if labels.contains(&label) {
                return Err(input_err(format!(
                    "Bundle: two indicators share the label {label:?}; give one a 'label'"
                )));
            }
            let s = Stream::new(&name, params)?;
            need |= specs::mask(s.spec);
            streams.push(s);
            labels.push(label);
        }
        Ok(Bundle {
            streams,
            labels,
            need,
        })
    }

    #[getter]
    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    /// Commits one bar to every indicator; returns a tuple with each
    /// indicator's output (a float, or a tuple for several outputs).
    #[pyo3(signature = (close, high=None, low=None, open=None, volume=None))]
    fn update(
        &mut self,
        py: Python<'_>,
        close: f64,
        high: Option<f64>,
        low: Option<f64>,
        open: Option<f64>,
        volume: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let b = self.bar(close, high, low, open, volume)?;
        Self::step(py, &mut self.streams, &b)
    }

    #[pyo3(signature = (close, high=None, low=None, open=None, volume=None))]
    fn peek(
        &self,
        py: Python<'_>,
        close: f64,
        high: Option<f64>,
        low: Option<f64>,
        open: Option<f64>,
        volume: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let b = self.bar(close, high, low, open, volume)?;
        let mut copy = self.streams.clone();
        Self::step(py, &mut copy, &b)
    }

    #[getter]
    fn value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let items: Vec<Py<PyAny>> = self
            .streams
            .iter()
            .map(|s| out_obj(py, s.spec.outputs.len(), s.last))
            .collect::<PyResult<_>>()?;
        Ok(PyTuple::new(py, items)?.into_any().unbind())
    }

    fn streams(&self) -> Vec<Stream> {
        self.streams.clone()
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>,)> {
        let l = PyList::empty(py);
        for (s, label) in self.streams.iter().zip(&self.labels) {
            let d = PyDict::new(py);
            d.set_item("name", s.spec.name)?;
            d.set_item("label", label)?;
            for (p, v) in s.spec.params.iter().zip(&s.params) {
                d.set_item(p.name, *v)?;
            }
            l.append(d)?;
        }
        Ok((l,))
    }

    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let state: Vec<(&AnyKernel, &Option<Out>, u64)> = self
            .streams
            .iter()
            .map(|s| (&s.k, &s.last, s.count))
            .collect();
        let bytes = bincode::serialize(&state)
            .map_err(|e| input_err(format!("could not pickle the bundle: {e}")))?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __setstate__(&mut self, state: &[u8]) -> PyResult<()> {
        let st: Vec<(AnyKernel, Option<Out>, u64)> = bincode::deserialize(state)
            .map_err(|e| input_err(format!("could not unpickle the bundle: {e}")))?;
        if st.len() != self.streams.len() {
            return Err(input_err("bundle state does not match its indicators"));
        }
        for (s, (k, last, count)) in self.streams.iter_mut().zip(st) {
            s.k = k;
            s.last = last;
            s.count = count;
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.streams.len()
    }

    fn __repr__(&self) -> String {
        format!("<ferrotick.ta.stream.Bundle {}>", self.labels.join(", "))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Stream>()?;
    m.add_class::<Bundle>()?;
    Ok(())
}
