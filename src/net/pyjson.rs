//! JSON decoded straight into Python objects: a direct recursive-descent
//! parser over the bytes (no intermediate tree). ASCII strings without
//! escapes are copied into a new str in one step, lists are created at their
//! final size, and dict keys are interned in a per-document cache since API
//! payloads repeat the same keys in every element. Accepts what Python's
//! `json.loads` accepts (including NaN and Infinity); errors are ValueError
//! with the byte position.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};

const MAX_DEPTH: usize = 512;

/// A small, fast hasher for short dict keys (FxHash's mixing).
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut v = [0u8; 8];
            v[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(v))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

struct Parser<'a, 'py> {
    py: Python<'py>,
    s: &'a [u8],
    i: usize,
    depth: usize,
    keys: HashMap<&'a [u8], Bound<'py, PyString>, BuildHasherDefault<Fx>>,
    /// Items of the arrays being parsed, innermost last: one buffer for the
    /// whole document instead of a Vec per array.
    stack: Vec<Bound<'py, PyAny>>,
}

fn err(pos: usize, what: &str) -> PyErr {
    PyValueError::new_err(format!("invalid JSON at byte {pos}: {what}"))
}

impl<'a, 'py> Parser<'a, 'py> {
    #[inline]
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> PyResult<Bound<'py, PyAny>> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(self.string()?.into_any()),
            Some(b't') => self.literal(
                b"true",
                pyo3::types::PyBool::new(self.py, true)
                    .to_owned()
                    .into_any(),
            ),
            Some(b'f') => self.literal(
                b"false",
                pyo3::types::PyBool::new(self.py, false)
                    .to_owned()
                    .into_any(),
            ),
            Some(b'n') => self.literal(b"null", self.py.None().into_bound(self.py)),
            Some(b'N') => self.literal(b"NaN", PyFloat::new(self.py, f64::NAN).into_any()),
            Some(b'I') => {
                self.literal(b"Infinity", PyFloat::new(self.py, f64::INFINITY).into_any())
            }
            Some(b'-') if self.s[self.i..].starts_with(b"-Infinity") => self.literal(
                b"-Infinity",
                PyFloat::new(self.py, f64::NEG_INFINITY).into_any(),
            ),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(err(self.i, "unexpected character")),
            None => Err(err(self.i, "unexpected end of data")),
        }
    }

    fn literal(&mut self, word: &[u8], v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(err(self.i, "unexpected character"))
        }
    }

    fn enter(&mut self) -> PyResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.i, "nested too deeply"));
        }
        Ok(())
    }

    fn object(&mut self) -> PyResult<Bound<'py, PyAny>> {
        self.enter()?;
        self.i += 1;
        let dict = PyDict::new(self.py);
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(dict.into_any());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(err(self.i, "expected a string key"));
            }
            let key = self.key()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(err(self.i, "expected ':'"));
            }
            self.i += 1;
            let v = self.value()?;
            dict.set_item(key, v)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(dict.into_any());
                }
                _ => return Err(err(self.i, "expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self) -> PyResult<Bound<'py, PyAny>> {
        self.enter()?;
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(PyList::empty(self.py).into_any());
        }
        let base = self.stack.len();
        loop {
            let v = self.value()?;
            self.stack.push(v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(list_from(self.py, self.stack.drain(base..))?.into_any());
                }
                _ => return Err(err(self.i, "expected ',' or ']'")),
            }
        }
    }

    /// Scans a string body from after the opening quote: (end, ascii, escaped).
    #[inline]
    fn scan(&self, start: usize) -> PyResult<(usize, bool, bool)> {
        let s = self.s;
        let mut j = start;
        let mut ascii = true;
        // eight bytes at a time while none of them is '"', '\\', a control
        // character or non-ASCII (SWAR: a zero byte of x ^ c, or a byte < 0x20,
        // sets that byte's high bit in `hit`)
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while j + 8 <= s.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&s[j..j + 8]);
            let x = u64::from_le_bytes(w);
            let quote = x ^ (ONES * b'"' as u64);
            let slash = x ^ (ONES * b'\\' as u64);
            let hit = (quote.wrapping_sub(ONES) & !quote)
                | (slash.wrapping_sub(ONES) & !slash)
                | x.wrapping_sub(ONES * 0x20)
                | x;
            if hit & HIGH != 0 {
                break;
            }
            j += 8;
        }
        while j < s.len() {
            let b = s[j];
            if b == b'"' {
                return Ok((j, ascii, false));
            }
            if b == b'\\' {
                return Ok((j, ascii, true));
            }
            if b < 0x20 {
                return Err(err(j, "control character in string"));
            }
            ascii &= b < 0x80;
            j += 1;
        }
        Err(err(start, "unterminated string"))
    }

    fn key(&mut self) -> PyResult<Bound<'py, PyString>> {
        let start = self.i + 1;
        let (end, ascii, escaped) = self.scan(start)?;
        if !escaped {
            let raw = &self.s[start..end];
            if let Some(k) = self.keys.get(raw) {
                self.i = end + 1;
                return Ok(k.clone());
            }
            let mut k = self.plain(raw, ascii, start)?;
            // intern: equal keys across documents share one object
            intern(&mut k);
            if self.keys.len() < 4096 {
                self.keys.insert(raw, k.clone());
            }
            self.i = end + 1;
            return Ok(k);
        }
        self.string()
    }

    /// A string without escapes.
    #[inline]
    fn plain(&self, raw: &[u8], ascii: bool, pos: usize) -> PyResult<Bound<'py, PyString>> {
        if ascii {
            return Ok(ascii_str(self.py, raw));
        }
        let s = std::str::from_utf8(raw).map_err(|_| err(pos, "invalid UTF-8"))?;
        Ok(PyString::new(self.py, s))
    }

    fn string(&mut self) -> PyResult<Bound<'py, PyString>> {
        let start = self.i + 1;
        let (end, ascii, escaped) = self.scan(start)?;
        if !escaped {
            self.i = end + 1;
            return self.plain(&self.s[start..end], ascii, start);
        }
        // with escapes: decode into a String
        let mut out: Vec<u8> = Vec::with_capacity(end - start + 16);
        let mut j = start;
        loop {
            let (e, _, esc) = self.scan(j)?;
            out.extend_from_slice(&self.s[j..e]);
            if !esc {
                self.i = e + 1;
                break;
            }
            let c = *self
                .s
                .get(e + 1)
                .ok_or_else(|| err(e, "unterminated escape"))?;
            j = e + 2;
            match c {
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'/' => out.push(b'/'),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let mut cp = self.hex4(j)?;
                    j += 4;
                    if (0xD800..0xDC00).contains(&cp) && self.s[j..].starts_with(b"\\u") {
                        let lo = self.hex4(j + 2)?;
                        if (0xDC00..0xE000).contains(&lo) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            j += 6;
                        }
                    }
                    // lone surrogates are kept as Python's json does (via surrogatepass)
                    match char::from_u32(cp) {
                        Some(ch) => {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        None => {
                            let s =
                                String::from_utf8(out).map_err(|_| err(start, "invalid UTF-8"))?;
                            return self.with_surrogate(s, cp, j);
                        }
                    }
                }
                _ => return Err(err(e, "invalid escape")),
            }
        }
        let s = String::from_utf8(out).map_err(|_| err(start, "invalid UTF-8"))?;
        Ok(PyString::new(self.py, &s))
    }

    /// Rare path: a lone surrogate; let Python build the string.
    fn with_surrogate(
        &mut self,
        prefix: String,
        cp: u32,
        j: usize,
    ) -> PyResult<Bound<'py, PyString>> {
        // re-decode the whole string with Python's json for exactness
        let start_quote = self.s[..j].iter().rposition(|b| *b == b'"').unwrap_or(0);
        let _ = (prefix, cp);
        let mut k = j;
        loop {
            let (e, _, esc) = self.scan(k)?;
            if !esc {
                self.i = e + 1;
                break;
            }
            k = e + 2;
        }
        let text = std::str::from_utf8(&self.s[start_quote..self.i])
            .map_err(|_| err(start_quote, "invalid UTF-8"))?;
        let json = self.py.import("json")?;
        Ok(json
            .call_method1("loads", (text,))?
            .cast_into::<PyString>()?)
    }

    fn hex4(&self, at: usize) -> PyResult<u32> {
        let h = self
            .s
            .get(at..at + 4)
            .ok_or_else(|| err(at, "short \\u escape"))?;
        let t = std::str::from_utf8(h).map_err(|_| err(at, "bad \\u escape"))?;
        u32::from_str_radix(t, 16).map_err(|_| err(at, "bad \\u escape"))
    }

    fn number(&mut self) -> PyResult<Bound<'py, PyAny>> {
        let start = self.i;
        let s = self.s;
        let mut j = start;
        if s[j] == b'-' {
            j += 1;
        }
        let int_start = j;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if j == int_start {
            return Err(err(start, "expected a digit"));
        }
        if s[int_start] == b'0' && j - int_start > 1 {
            return Err(err(start, "leading zero"));
        }
        let mut float = false;
        if j < s.len() && s[j] == b'.' {
            float = true;
            j += 1;
            let f0 = j;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            if j == f0 {
                return Err(err(j, "expected a digit after '.'"));
            }
        }
        if j < s.len() && (s[j] == b'e' || s[j] == b'E') {
            float = true;
            j += 1;
            if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
                j += 1;
            }
            let e0 = j;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            if j == e0 {
                return Err(err(j, "expected an exponent"));
            }
        }
        self.i = j;
        if float {
            let v = match fast_float(&s[start..j]) {
                Some(v) => v,
                None => std::str::from_utf8(&s[start..j])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| err(start, "bad number"))?,
            };
            return Ok(PyFloat::new(self.py, v).into_any());
        }
        if j - int_start <= 18 {
            let mut v: i64 = 0;
            for &d in &s[int_start..j] {
                v = v * 10 + (d - b'0') as i64;
            }
            if s[start] == b'-' {
                v = -v;
            }
            return Ok(v.into_pyobject(self.py)?.into_any());
        }
        // big integers: exact, as Python's json gives
        let text = std::str::from_utf8(&s[start..j]).map_err(|_| err(start, "bad number"))?;
        let int = self.py.import("builtins")?.getattr("int")?;
        int.call1((text,))
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Clinger's fast path: when the decimal mantissa fits in 53 bits and the
/// power of ten is at most 22, `m * 10^e` (or `m / 10^-e`) is one correctly
/// rounded IEEE operation on exact operands, so the result is exact to the
/// last bit. Anything else goes to the full parser.
#[inline]
fn fast_float(t: &[u8]) -> Option<f64> {
    let (neg, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    let mut m: u64 = 0;
    let mut digits = 0u32;
    let mut frac = 0i32;
    let mut i = 0;
    let mut seen_dot = false;
    while i < t.len() {
        let b = t[i];
        if b.is_ascii_digit() {
            if digits > 0 || b != b'0' {
                digits += 1;
            }
            if digits > 15 {
                return None;
            }
            m = m * 10 + (b - b'0') as u64;
            if seen_dot {
                frac += 1;
            }
        } else if b == b'.' {
            seen_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    let mut exp: i32 = 0;
    if i < t.len() {
        // exponent
        i += 1;
        let mut eneg = false;
        if i < t.len() && (t[i] == b'+' || t[i] == b'-') {
            eneg = t[i] == b'-';
            i += 1;
        }
        while i < t.len() {
            exp = exp.checked_mul(10)?.checked_add((t[i] - b'0') as i32)?;
            if exp > 400 {
                return None;
            }
            i += 1;
        }
        if eneg {
            exp = -exp;
        }
    }
    let e = exp - frac;
    let v = m as f64;
    let r = if e >= 0 {
        if e > 22 {
            return None;
        }
        v * POW10[e as usize]
    } else {
        if -e > 22 {
            return None;
        }
        v / POW10[(-e) as usize]
    };
    Some(if neg { -r } else { r })
}

/// A list made at its final size, taking over the items' references.
fn list_from<'py>(
    py: Python<'py>,
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: PyList_New(n) returns a new list with n NULL slots (or NULL
    // with an exception set, turned into an error by from_owned_ptr_or_err).
    // Each slot is filled exactly once with a strong reference that
    // PyList_SET_ITEM steals (`into_ptr` gives ours up), before the list is
    // visible to any other code. The GIL is held.
    unsafe {
        let list = pyo3::ffi::PyList_New(items.len() as pyo3::ffi::Py_ssize_t);
        let list = Bound::from_owned_ptr_or_err(py, list)?;
        for (i, item) in items.into_iter().enumerate() {
            pyo3::ffi::PyList_SET_ITEM(list.as_ptr(), i as pyo3::ffi::Py_ssize_t, item.into_ptr());
        }
        Ok(list.cast_into_unchecked::<PyList>())
    }
}

/// A str from ASCII bytes in one allocation and one copy.
#[inline]
fn ascii_str<'py>(py: Python<'py>, raw: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: PyUnicode_New(len, 127) returns a new compact ASCII string
    // (or NULL on memory error, handled by PyO3's from_owned_ptr_or_err
    // below) whose 1-byte data buffer holds exactly `len` bytes; we fill it
    // with `raw`, which is verified ASCII (< 0x80), before anyone else can
    // see the object. The GIL is held (we have `py`).
    unsafe {
        let obj = pyo3::ffi::PyUnicode_New(raw.len() as pyo3::ffi::Py_ssize_t, 127);
        if obj.is_null() {
            return PyString::new(py, std::str::from_utf8_unchecked(raw));
        }
        std::ptr::copy_nonoverlapping(
            raw.as_ptr(),
            pyo3::ffi::PyUnicode_1BYTE_DATA(obj),
            raw.len(),
        );
        Bound::from_owned_ptr(py, obj).cast_into_unchecked::<PyString>()
    }
}

/// Interns a freshly made key string in place.
fn intern(s: &mut Bound<'_, PyString>) {
    let py = s.py();
    let mut ptr = s.clone().into_ptr();
    // SAFETY: `ptr` is a new strong reference to an exact str owned by us;
    // PyUnicode_InternInPlace may replace it with the interned object,
    // adjusting reference counts as documented; we take the result back as
    // an owned reference.
    unsafe {
        pyo3::ffi::PyUnicode_InternInPlace(&mut ptr);
        *s = Bound::from_owned_ptr(py, ptr).cast_into_unchecked::<PyString>();
    }
}

/// Pauses Python's cyclic garbage collector while alive (if it was on).
struct GcPause(bool);

impl GcPause {
    fn new() -> GcPause {
        // SAFETY: PyGC_Disable only flips the interpreter's "enabled" flag
        // and returns the previous state; the caller holds the GIL (we are
        // called with a `Python` token).
        GcPause(unsafe { pyo3::ffi::PyGC_Disable() } == 1)
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: as in `new`; the GIL is still held (the guard lives
            // inside `loads`, which holds a `Python` token throughout).
            unsafe {
                pyo3::ffi::PyGC_Enable();
            }
        }
    }
}

/// Parses JSON bytes into Python objects.
pub fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut p = Parser {
        py,
        s: data,
        i: 0,
        depth: 0,
        keys: HashMap::default(),
        stack: Vec::with_capacity(64),
    };
    // No cycle can form while a document is decoded, yet every list and dict
    // made counts towards the cyclic GC's next pass, which would then walk the
    // half-built tree again and again: pause it for the parse.
    let _gc = GcPause::new();
    let v = p.value()?;
    p.ws();
    if p.i != data.len() {
        return Err(err(p.i, "extra data"));
    }
    Ok(v)
}
