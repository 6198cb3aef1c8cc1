//! Python wrappers: line-protocol encoding of dict points and numpy columns.

use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};

use super::line::{LineBuf, Precision, Target};
use crate::errors::config_err;

fn target(v2: bool) -> Target {
    if v2 {
        Target::V2
    } else {
        Target::V1
    }
}

fn precision(p: &str) -> PyResult<Precision> {
    Precision::parse(p).ok_or_else(|| {
        config_err(format!(
            "precision: expected 'ns', 'us', 'ms' or 's', got {p:?}"
        ))
    })
}

/// A short repr of a bad point for error messages.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into());
    if r.chars().count() > 200 {
        let cut: String = r.chars().take(200).collect();
        format!("{cut}...")
    } else {
        r
    }
}

/// A timestamp in `prec` units: an int is taken as already in them, a float
/// as Unix seconds, a datetime through its POSIX time and microseconds.
fn timestamp(t: &Bound<'_, PyAny>, prec: Precision) -> Result<Option<i64>, String> {
    if t.is_none() {
        return Ok(None);
    }
    if t.is_instance_of::<PyBool>() {
        return Err(format!("time: expected an int, float or datetime, got {t}"));
    }
    if t.is_instance_of::<PyInt>() {
        return t
            .extract::<i64>()
            .map(Some)
            .map_err(|_| format!("time {t} does not fit in 64 bits"));
    }
    if let Ok(f) = t.cast::<PyFloat>() {
        let v = f.value();
        let scaled = (v * prec.per_second() as f64).round();
        if !scaled.is_finite() || scaled.abs() > 9.2e18 {
            return Err(format!("time {v} is not a finite Unix time"));
        }
        return Ok(Some(scaled as i64));
    }
    if t.hasattr("timestamp").unwrap_or(false) && t.hasattr("microsecond").unwrap_or(false) {
        let ts: f64 = t
            .call_method0("timestamp")
            .and_then(|x| x.extract())
            .map_err(|e| format!("time {}: {e}", describe(t)))?;
        let micro: i64 = t
            .getattr("microsecond")
            .and_then(|x| x.extract())
            .map_err(|e| format!("time: {e}"))?;
        let secs = (ts - micro as f64 * 1e-6).round() as i64;
        let ns = secs as i128 * 1_000_000_000 + micro as i128 * 1000;
        let v = ns / (1_000_000_000 / prec.per_second() as i128);
        return i64::try_from(v)
            .map(Some)
            .map_err(|_| format!("time {} out of range", describe(t)));
    }
    Err(format!(
        "time: expected an int, float or datetime, got {}",
        describe(t)
    ))
}

fn key_str<'a>(k: &'a Bound<'_, PyAny>, what: &str) -> Result<std::borrow::Cow<'a, str>, String> {
    k.cast::<PyString>()
        .map_err(|_| format!("{what}: expected a string, got {}", describe(k)))?
        .to_cow()
        .map_err(|e| format!("{what}: {e}"))
}

fn field(b: &mut LineBuf, key: &str, v: &Bound<'_, PyAny>) -> Result<(), String> {
    if let Ok(x) = v.cast::<PyBool>() {
        return b.field_bool(key, x.is_true());
    }
    if let Ok(x) = v.cast::<PyFloat>() {
        return b.field_f64(key, x.value());
    }
    if v.is_instance_of::<PyInt>() {
        let i = v
            .extract::<i64>()
            .map_err(|_| format!("field {key:?}: {v} does not fit in a signed 64-bit integer"))?;
        return b.field_i64(key, i);
    }
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_cow().map_err(|e| format!("field {key:?}: {e}"))?;
        return b.field_str(key, &s);
    }
    // numpy scalars and other numbers: bool, then integer (__index__), then float
    let tname = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    if tname == "bool_" || tname == "bool" {
        if let Ok(x) = v.extract::<bool>() {
            return b.field_bool(key, x);
        }
    }
    if v.hasattr("__index__").unwrap_or(false) {
        if let Ok(i) = v.extract::<i64>() {
            return b.field_i64(key, i);
        }
    }
    if v.hasattr("__float__").unwrap_or(false) {
        if let Ok(f) = v.extract::<f64>() {
            return b.field_f64(key, f);
        }
    }
    Err(format!(
        "field {key:?}: expected a number, bool or string, got {}",
        describe(v)
    ))
}

/// A (key, value) item of a dict.
type Pair<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// The items of a tags dict sorted by key (the order the server keeps them in).
fn tags_sorted<'py>(tags: &Bound<'py, PyAny>) -> Result<Vec<Pair<'py>>, String> {
    if tags.is_none() {
        return Ok(Vec::new());
    }
    let d = tags
        .cast::<PyDict>()
        .map_err(|_| format!("tags: expected a dict, got {}", describe(tags)))?;
    let mut v: Vec<Pair<'py>> = d.iter().collect();
    if v.len() > 1 {
        let mut keyed: Vec<(String, usize)> = Vec::with_capacity(v.len());
        for (i, (k, _)) in v.iter().enumerate() {
            keyed.push((key_str(k, "tag key")?.into_owned(), i));
        }
        keyed.sort();
        let mut out = Vec::with_capacity(v.len());
        let mut slots: Vec<Option<Pair<'py>>> = v.drain(..).map(Some).collect();
        for (_, i) in keyed {
            out.push(slots[i].take().expect("each index once"));
        }
        return Ok(out);
    }
    Ok(v)
}

fn one_point(
    b: &mut LineBuf,
    measurement: &str,
    fields: &Bound<'_, PyAny>,
    tags: &Bound<'_, PyAny>,
    time: Option<&Bound<'_, PyAny>>,
    prec: Precision,
) -> Result<(), String> {
    b.begin(measurement)?;
    for (k, v) in tags_sorted(tags)? {
        let k = key_str(&k, "tag key")?;
        let v = v
            .cast::<PyString>()
            .map_err(|_| format!("tag {k:?}: expected a string value, got {}", describe(&v)))?;
        b.tag(&k, &v.to_cow().map_err(|e| format!("tag {k:?}: {e}"))?)?;
    }
    let fd = fields
        .cast::<PyDict>()
        .map_err(|_| format!("fields: expected a dict, got {}", describe(fields)))?;
    for (k, v) in fd.iter() {
        let k = key_str(&k, "field key")?;
        field(b, &k, &v)?;
    }
    let ts = match time {
        Some(t) => timestamp(t, prec)?,
        None => None,
    };
    b.end(ts)
}

/// Encodes one point; returns its line (with the trailing newline).
#[pyfunction]
#[pyo3(signature = (measurement, fields, tags=None, time=None, precision="ns", v2=false))]
fn lp_encode_point<'py>(
    py: Python<'py>,
    measurement: &str,
    fields: &Bound<'py, PyAny>,
    tags: Option<&Bound<'py, PyAny>>,
    time: Option<&Bound<'py, PyAny>>,
    precision: &str,
    v2: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let prec = self::precision(precision)?;
    let mut b = LineBuf::new(target(v2), 128);
    let none = py.None().into_bound(py);
    one_point(
        &mut b,
        measurement,
        fields,
        tags.unwrap_or(&none),
        time,
        prec,
    )
    .map_err(|e| config_err(format!("point {measurement:?}: {e}")))?;
    Ok(PyBytes::new(py, &b.buf))
}

/// Encodes a list of dict points (`measurement`, `fields`, optional `tags` and
/// `time`); returns (lines, count). A bad point raises ConfigError naming its
/// index and content; nothing is returned for the batch then.
#[pyfunction]
#[pyo3(signature = (points, precision="ns", v2=false, measurement=None))]
fn lp_encode_points<'py>(
    py: Python<'py>,
    points: &Bound<'py, PyAny>,
    precision: &str,
    v2: bool,
    measurement: Option<&str>,
) -> PyResult<(Bound<'py, PyBytes>, usize)> {
    let prec = self::precision(precision)?;
    let n = points.len().unwrap_or(0);
    let mut b = LineBuf::new(target(v2), 96 * n.max(1));
    let none = py.None().into_bound(py);
    let k_meas = pyo3::intern!(py, "measurement");
    let k_fields = pyo3::intern!(py, "fields");
    let k_tags = pyo3::intern!(py, "tags");
    let k_time = pyo3::intern!(py, "time");
    for (i, p) in points.try_iter()?.enumerate() {
        let p = p?;
        let fail = |e: String| config_err(format!("points[{i}] {}: {e}", describe(&p)));
        let d = p
            .cast::<PyDict>()
            .map_err(|_| fail("expected a dict".into()))?;
        let m_obj = d.get_item(k_meas)?;
        let m_cow;
        let m: &str = match (&m_obj, measurement) {
            (Some(o), _) => {
                m_cow = key_str(o, "measurement").map_err(fail)?;
                &m_cow
            }
            (None, Some(m)) => m,
            (None, None) => return Err(fail("no \"measurement\"".into())),
        };
        let fields = d
            .get_item(k_fields)?
            .ok_or_else(|| fail("no \"fields\"".into()))?;
        let tags = d.get_item(k_tags)?;
        let time = d.get_item(k_time)?;
        if let Err(e) = one_point(
            &mut b,
            m,
            &fields,
            tags.as_ref().unwrap_or(&none),
            time.as_ref(),
            prec,
        ) {
            b.abort();
            return Err(fail(e));
        }
    }
    let lines = b.lines;
    Ok((PyBytes::new(py, &b.buf), lines))
}

enum Col<'py> {
    F(PyReadonlyArray1<'py, f64>),
    I(PyReadonlyArray1<'py, i64>),
    B(PyReadonlyArray1<'py, bool>),
}

/// Encodes columns: one line per row of `time` (int64 in `precision` units),
/// with constant `tags` and one field per array of `fields` (float64, int64 or
/// bool, each as long as `time`).
#[pyfunction]
#[pyo3(signature = (measurement, fields, time, tags=None, precision="ns", v2=false))]
fn lp_encode_columns<'py>(
    py: Python<'py>,
    measurement: &str,
    fields: &Bound<'py, PyDict>,
    time: PyReadonlyArray1<'py, i64>,
    tags: Option<&Bound<'py, PyAny>>,
    precision: &str,
    v2: bool,
) -> PyResult<(Bound<'py, PyBytes>, usize)> {
    self::precision(precision)?;
    let n = time.len();
    let mut cols: Vec<(String, Col<'py>)> = Vec::new();
    for (k, v) in fields.iter() {
        let k = key_str(&k, "field key").map_err(config_err)?.into_owned();
        let col = if let Ok(a) = v.extract::<PyReadonlyArray1<'py, f64>>() {
            Col::F(a)
        } else if let Ok(a) = v.extract::<PyReadonlyArray1<'py, i64>>() {
            Col::I(a)
        } else if let Ok(a) = v.extract::<PyReadonlyArray1<'py, bool>>() {
            Col::B(a)
        } else {
            return Err(config_err(format!(
                "fields[{k:?}]: expected a 1-D float64, int64 or bool array"
            )));
        };
        let len = match &col {
            Col::F(a) => a.len(),
            Col::I(a) => a.len(),
            Col::B(a) => a.len(),
        };
        if len != n {
            return Err(config_err(format!(
                "fields[{k:?}]: {len} values for {n} timestamps"
            )));
        }
        cols.push((k, col));
    }
    if cols.is_empty() {
        return Err(config_err("fields: a point needs at least one field"));
    }
    // the measurement and tags are the same on every line: encode them once
    let mut head = LineBuf::new(target(v2), 128);
    let none = py.None().into_bound(py);
    head.begin(measurement)
        .map_err(|e| config_err(format!("point {measurement:?}: {e}")))?;
    for (k, v) in tags_sorted(tags.unwrap_or(&none)).map_err(config_err)? {
        let k = key_str(&k, "tag key").map_err(config_err)?;
        let v = key_str(&v, "tag value").map_err(config_err)?;
        head.tag(&k, &v).map_err(config_err)?;
    }
    let prefix = head.buf;
    let times = time.as_array();
    let views: Vec<_> = cols
        .iter()
        .map(|(k, c)| {
            (
                k.as_str(),
                match c {
                    Col::F(a) => ColView::F(a.as_array()),
                    Col::I(a) => ColView::I(a.as_array()),
                    Col::B(a) => ColView::B(a.as_array()),
                },
            )
        })
        .collect();
    let mut b = LineBuf::new(target(v2), (prefix.len() + 24 * (views.len() + 1)) * n);
    for (row, t) in times.iter().enumerate() {
        b.begin_raw(&prefix);
        for (k, c) in &views {
            let r = match c {
                ColView::F(a) => b.field_f64(k, a[row]),
                ColView::I(a) => b.field_i64(k, a[row]),
                ColView::B(a) => b.field_bool(k, a[row]),
            };
            r.map_err(|e| config_err(format!("row {row}: {e}")))?;
        }
        b.end(Some(*t)).map_err(config_err)?;
    }
    let lines = b.lines;
    Ok((PyBytes::new(py, &b.buf), lines))
}

enum ColView<'a> {
    F(numpy::ndarray::ArrayView1<'a, f64>),
    I(numpy::ndarray::ArrayView1<'a, i64>),
    B(numpy::ndarray::ArrayView1<'a, bool>),
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lp_encode_point, m)?)?;
    m.add_function(wrap_pyfunction!(lp_encode_points, m)?)?;
    m.add_function(wrap_pyfunction!(lp_encode_columns, m)?)?;
    Ok(())
}
