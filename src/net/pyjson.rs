//! JSON decoded straight into Python objects (no intermediate tree): a serde
//! visitor that builds dicts, lists, str, int, float, bool and None as it
//! parses. Dict keys are interned in a small per-document cache, since API
//! payloads repeat the same keys in every element.

use std::collections::HashMap;
use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

struct Ctx<'py> {
    py: Python<'py>,
    keys: HashMap<String, Py<PyString>>,
    err: Option<PyErr>,
}

struct Value<'a, 'py>(&'a mut Ctx<'py>);

fn fail<E: de::Error>(ctx: &mut Ctx<'_>, e: PyErr) -> E {
    ctx.err = Some(e);
    E::custom("python error")
}

impl<'de, 'py> DeserializeSeed<'de> for Value<'_, 'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for Value<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(pyo3::types::PyBool::new(self.0.py, v).to_owned().into_any())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match v.into_pyobject(self.0.py) {
            Ok(b) => Ok(b.into_any()),
            Err(never) => match never {},
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match v.into_pyobject(self.0.py) {
            Ok(b) => Ok(b.into_any()),
            Err(never) => match never {},
        }
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        match v.into_pyobject(self.0.py) {
            Ok(b) => Ok(b.into_any()),
            Err(never) => match never {},
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        match v.into_pyobject(self.0.py) {
            Ok(b) => Ok(b.into_any()),
            Err(never) => match never {},
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0.py, v).into_any())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0.py, v).into_any())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.py.None().into_bound(self.0.py))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let py = self.0.py;
        let list = PyList::empty(py);
        while let Some(v) = seq.next_element_seed(Value(self.0))? {
            list.append(v).map_err(|e| fail(self.0, e))?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let py = self.0.py;
        let dict = PyDict::new(py);
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let key = match self.0.keys.get(k.as_ref()) {
                Some(s) => s.bind(py).clone(),
                None => {
                    let s = PyString::intern(py, &k);
                    if self.0.keys.len() < 4096 {
                        self.0.keys.insert(k.into_owned(), s.clone().unbind());
                    }
                    s
                }
            };
            let v = map.next_value_seed(Value(self.0))?;
            dict.set_item(key, v).map_err(|e| fail(self.0, e))?;
        }
        Ok(dict.into_any())
    }
}

/// Parses JSON bytes into Python objects; errors are ValueError-compatible
/// (`json.JSONDecodeError` is a ValueError) with the position.
pub fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut ctx = Ctx {
        py,
        keys: HashMap::new(),
        err: None,
    };
    let mut de = serde_json::Deserializer::from_slice(data);
    let out = Value(&mut ctx).deserialize(&mut de);
    match out {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "invalid JSON: {e}"
            ))),
        },
        Err(e) => match ctx.err.take() {
            Some(pe) => Err(pe),
            None => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "invalid JSON: {e}"
            ))),
        },
    }
}
