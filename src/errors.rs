//! The error type shared by every domain and its mapping onto ferrotick's
//! Python exception tree.
//!
//! Domain code (no PyO3) returns [`FtError`]. The Python side builds the
//! exception classes once per interpreter (see [`exception_types`]) and turns
//! an `FtError` into an instance of the matching class, with the message
//! passed through [`redact`] first so that no query string, signature, token
//! or auth header ever reaches a Python message.

use std::fmt;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// Which class of the Python exception tree an error maps onto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Ferrotick,
    Config,
    IndicatorInput,
    Http,
    Connect,
    RequestTimeout,
    HttpStatus,
    CircuitOpen,
    RateLimitExceeded,
    Scheduler,
    ServiceContainer,
    Exchange,
    BlockingCall,
}

impl ErrorKind {
    /// The Python exception class this kind is raised as.
    pub fn class_name(&self) -> &'static str {
        match self {
            ErrorKind::Ferrotick => "FerrotickError",
            ErrorKind::Config => "ConfigError",
            ErrorKind::IndicatorInput => "IndicatorInputError",
            ErrorKind::Http => "HTTPError",
            ErrorKind::Connect => "ConnectError",
            ErrorKind::RequestTimeout => "RequestTimeout",
            ErrorKind::HttpStatus => "HTTPStatusError",
            ErrorKind::CircuitOpen => "CircuitOpenError",
            ErrorKind::RateLimitExceeded => "RateLimitExceeded",
            ErrorKind::Scheduler => "SchedulerError",
            ErrorKind::ServiceContainer => "ServiceContainerError",
            ErrorKind::Exchange => "ExchangeError",
            ErrorKind::BlockingCall => "BlockingCallError",
        }
    }
}

/// One error value for every domain. Optional fields carry the attributes
/// that some exception classes expose (`.status`, `.retry_after`, `.code`).
#[derive(Clone, Debug, PartialEq)]
pub struct FtError {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after: Option<f64>,
    pub status: Option<u16>,
    pub code: Option<i64>,
}

impl FtError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FtError {
            kind,
            message: message.into(),
            retry_after: None,
            status: None,
            code: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Ferrotick, message)
    }

    /// Wraps an error with context, keeping the original cause in the message.
    pub fn with_cause(kind: ErrorKind, context: &str, cause: &dyn std::error::Error) -> Self {
        let mut msg = format!("{context}: {cause}");
        let mut src = cause.source();
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        Self::new(kind, msg)
    }
}

impl fmt::Display for FtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.message))
    }
}

impl std::error::Error for FtError {}

pub type FtResult<T> = Result<T, FtError>;

// ---------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------

/// Keys whose values never appear in a message (compared case-insensitively,
/// with `-` and `_` ignored).
const SECRET_KEYS: &[&str] = &[
    "signature",
    "sig",
    "token",
    "accesstoken",
    "refreshtoken",
    "apikey",
    "key",
    "secret",
    "apisecret",
    "secretkey",
    "password",
    "passwd",
    "pass",
    "auth",
    "authorization",
    "proxyauthorization",
    "xmbxapikey",
    "cookie",
    "setcookie",
    "session",
    "sessionid",
    "listenkey",
    "privatekey",
    "bearer",
];

fn normalise_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(|c| c.to_lowercase())
        .collect()
}

fn is_secret_key(key: &str) -> bool {
    let k = normalise_key(key.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace()));
    SECRET_KEYS.contains(&k.as_str())
}

const MASK: &str = "[redacted]";

/// Removes secrets from a message: query strings of URLs (absolute, and paths
/// like `/api/v3/order?...`), userinfo in URLs, and the value of every
/// `key: value`, `key=value` or `"key": "value"` whose key names a secret
/// (headers such as `Authorization` and `X-MBX-APIKEY` included, wherever
/// they stand in the line), with `Bearer`/`Basic`/`token` schemes masked
/// together with their credential. Everything else is kept so that the
/// cause stays readable.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&redact_pairs(&redact_urls(line)));
    }
    out
}

const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "apikey"];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Masks the values of secret keys.
fn redact_pairs(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let n = chars.len();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < n {
        if !is_ident(chars[i]) || (i > 0 && is_ident(chars[i - 1])) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // an identifier starts at i
        let start = i;
        while i < n && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push_str(&word);
        if !is_secret_key(&word) {
            continue;
        }
        // optional closing quote, spaces, then ':' or '='
        let mut j = i;
        if j < n && (chars[j] == '"' || chars[j] == '\'') {
            j += 1;
        }
        while j < n && chars[j] == ' ' {
            j += 1;
        }
        if j >= n || (chars[j] != ':' && chars[j] != '=') {
            continue;
        }
        j += 1;
        while j < n && chars[j] == ' ' {
            j += 1;
        }
        let quote = if j < n && (chars[j] == '"' || chars[j] == '\'') {
            Some(chars[j])
        } else {
            None
        };
        // copy the separator and opening quote as they are
        let sep: String = chars[i..j + usize::from(quote.is_some())].iter().collect();
        out.push_str(&sep);
        let mut k = j + usize::from(quote.is_some());
        let value_start = k;
        let ends = |c: char| -> bool {
            match quote {
                Some(q) => c == q,
                None => c.is_whitespace() || matches!(c, ',' | ';' | '&' | '}' | ')' | ']'),
            }
        };
        while k < n && !ends(chars[k]) {
            k += 1;
        }
        let value: String = chars[value_start..k].iter().collect();
        // "Bearer xyz": the credential follows the scheme
        if quote.is_none() && SCHEMES.contains(&value.to_ascii_lowercase().as_str()) {
            let mut m = k;
            while m < n && chars[m] == ' ' {
                m += 1;
            }
            let cred_start = m;
            while m < n && !chars[m].is_whitespace() && !matches!(chars[m], ',' | ';') {
                m += 1;
            }
            if m > cred_start {
                k = m;
            }
        }
        if k > value_start {
            out.push_str(MASK);
        }
        i = k;
    }
    // "Bearer <token>" anywhere (e.g. a quoted header value)
    mask_schemes(&out)
}

fn mask_schemes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let lower = rest.to_ascii_lowercase();
        let found = ["bearer ", "basic "]
            .iter()
            .filter_map(|p| lower.find(p).map(|at| (at, p.len())))
            .filter(|(at, _)| *at == 0 || !is_ident(rest[..*at].chars().last().unwrap_or(' ')))
            .min();
        let Some((at, plen)) = found else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + plen]);
        let after = &rest[at + plen..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}' | ')'))
            .unwrap_or(after.len());
        if end > 0 && !after.starts_with(MASK) {
            out.push_str(MASK);
        } else {
            out.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
}

/// Strips query strings, fragments and userinfo from URLs and URL paths.
fn redact_urls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&redact_url_token(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn redact_url_token(token: &str) -> String {
    // a leading "(" or quote is kept: find where the URL or path begins
    let begin = token
        .find("://")
        .map(|p| {
            token[..p]
                .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '.' && c != '-')
                .map_or(0, |q| q + 1)
        })
        .or_else(|| {
            token.find('/').filter(|p| {
                token[*p..].contains('?') && token[..*p].chars().all(|c| !c.is_ascii_alphanumeric())
            })
        });
    let Some(b) = begin else {
        return token.to_string();
    };
    let (prefix, url) = token.split_at(b);
    let trailing_len = url
        .chars()
        .rev()
        .take_while(|c| matches!(c, '\'' | '"' | ')' | ']' | ',' | '.' | ';' | '>' | ':'))
        .map(|c| c.len_utf8())
        .sum::<usize>();
    let (body, trailing) = url.split_at(url.len() - trailing_len);
    let mut body = body.to_string();
    if let Some(scheme_end) = body.find("://") {
        let (head, tail) = body.split_at(scheme_end + 3);
        let mut tail = tail.to_string();
        let authority_end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
        if let Some(at) = tail[..authority_end].rfind('@') {
            tail = format!("{MASK}@{}", &tail[at + 1..]);
        }
        body = format!("{head}{tail}");
    }
    if let Some(q) = body.find('?') {
        body.truncate(q);
        body.push_str("?[query redacted]");
    } else if let Some(f) = body.find('#') {
        body.truncate(f);
    }
    format!("{prefix}{body}{trailing}")
}

// ---------------------------------------------------------------------------
// Python exception tree
// ---------------------------------------------------------------------------

/// The classes of the exception tree, created once per interpreter.
pub struct ExceptionTypes {
    pub ferrotick: Py<PyType>,
    pub config: Py<PyType>,
    pub indicator_input: Py<PyType>,
    pub http: Py<PyType>,
    pub connect: Py<PyType>,
    pub request_timeout: Py<PyType>,
    pub http_status: Py<PyType>,
    pub circuit_open: Py<PyType>,
    pub rate_limit_exceeded: Py<PyType>,
    pub scheduler: Py<PyType>,
    pub service_container: Py<PyType>,
    pub exchange: Py<PyType>,
    pub blocking_call: Py<PyType>,
}

static TYPES: PyOnceLock<ExceptionTypes> = PyOnceLock::new();

fn make_type<'py>(
    py: Python<'py>,
    name: &str,
    bases: &[Bound<'py, PyAny>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let builtins = py.import("builtins")?;
    let type_fn = builtins.getattr("type")?;
    let ns = PyDict::new(py);
    ns.set_item("__module__", "ferrotick")?;
    ns.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let cls = type_fn.call1((name, bases, ns))?;
    Ok(cls.cast_into::<PyType>()?.unbind())
}

/// Returns the exception classes, creating them on first use.
pub fn exception_types(py: Python<'_>) -> PyResult<&ExceptionTypes> {
    TYPES.get_or_try_init(py, || {
        let builtins = py.import("builtins")?;
        let exc = builtins.getattr("Exception")?;
        let value_error = builtins.getattr("ValueError")?;
        let connection_error = builtins.getattr("ConnectionError")?;
        let timeout_error = builtins.getattr("TimeoutError")?;
        let runtime_error = builtins.getattr("RuntimeError")?;

        let ferrotick = make_type(
            py,
            "FerrotickError",
            &[exc],
            "Base of every ferrotick error.",
        )?;
        let base = ferrotick.bind(py).clone().into_any();
        let config = make_type(
            py,
            "ConfigError",
            &[base.clone(), value_error.clone()],
            "Bad arguments or bad configuration.",
        )?;
        let indicator_input = make_type(
            py,
            "IndicatorInputError",
            &[base.clone(), value_error],
            "Bad indicator input: dtype, shape, period.",
        )?;
        let http = make_type(
            py,
            "HTTPError",
            std::slice::from_ref(&base),
            "An HTTP request failed.",
        )?;
        let http_b = http.bind(py).clone().into_any();
        let connect = make_type(
            py,
            "ConnectError",
            &[http_b.clone(), connection_error],
            "The connection could not be made or was lost before a response.",
        )?;
        let request_timeout = make_type(
            py,
            "RequestTimeout",
            &[http_b.clone(), timeout_error],
            "A request ran out of time.",
        )?;
        let http_status = make_type(
            py,
            "HTTPStatusError",
            &[http_b],
            "The server answered with an error status (.status, .headers, .body).",
        )?;
        let circuit_open = make_type(
            py,
            "CircuitOpenError",
            std::slice::from_ref(&base),
            "A circuit breaker is open (.retry_after seconds until it half-opens).",
        )?;
        let rate_limit_exceeded = make_type(
            py,
            "RateLimitExceeded",
            std::slice::from_ref(&base),
            "A rate limit was exceeded (.retry_after seconds).",
        )?;
        let scheduler = make_type(
            py,
            "SchedulerError",
            std::slice::from_ref(&base),
            "A scheduler error.",
        )?;
        let service_container = make_type(
            py,
            "ServiceContainerError",
            std::slice::from_ref(&base),
            "A service container error.",
        )?;
        let exchange = make_type(
            py,
            "ExchangeError",
            std::slice::from_ref(&base),
            "An exchange rejected a request (.code and .msg as the exchange sent them).",
        )?;
        let blocking_call = make_type(
            py,
            "BlockingCallError",
            &[base, runtime_error],
            "A blocking call was made on a thread whose event loop is running.",
        )?;
        Ok::<_, PyErr>(ExceptionTypes {
            ferrotick,
            config,
            indicator_input,
            http,
            connect,
            request_timeout,
            http_status,
            circuit_open,
            rate_limit_exceeded,
            scheduler,
            service_container,
            exchange,
            blocking_call,
        })
    })
}

impl ExceptionTypes {
    pub fn for_kind(&self, kind: ErrorKind) -> &Py<PyType> {
        match kind {
            ErrorKind::Ferrotick => &self.ferrotick,
            ErrorKind::Config => &self.config,
            ErrorKind::IndicatorInput => &self.indicator_input,
            ErrorKind::Http => &self.http,
            ErrorKind::Connect => &self.connect,
            ErrorKind::RequestTimeout => &self.request_timeout,
            ErrorKind::HttpStatus => &self.http_status,
            ErrorKind::CircuitOpen => &self.circuit_open,
            ErrorKind::RateLimitExceeded => &self.rate_limit_exceeded,
            ErrorKind::Scheduler => &self.scheduler,
            ErrorKind::ServiceContainer => &self.service_container,
            ErrorKind::Exchange => &self.exchange,
            ErrorKind::BlockingCall => &self.blocking_call,
        }
    }
}

impl FtError {
    /// Builds the Python exception instance (redacted message, attributes).
    pub fn to_pyerr(&self, py: Python<'_>) -> PyErr {
        match self.build(py) {
            Ok(e) => e,
            Err(e) => e,
        }
    }

    fn build(&self, py: Python<'_>) -> PyResult<PyErr> {
        let types = exception_types(py)?;
        let cls = types.for_kind(self.kind).bind(py);
        let inst = cls.call1((redact(&self.message),))?;
        match self.kind {
            ErrorKind::CircuitOpen | ErrorKind::RateLimitExceeded => {
                inst.setattr("retry_after", self.retry_after)?;
            }
            ErrorKind::HttpStatus => {
                inst.setattr("status", self.status)?;
            }
            ErrorKind::Exchange => {
                inst.setattr("code", self.code)?;
                inst.setattr("msg", redact(&self.message))?;
            }
            _ => {}
        }
        Ok(PyErr::from_value(inst))
    }
}

impl From<FtError> for PyErr {
    fn from(e: FtError) -> PyErr {
        Python::attach(|py| e.to_pyerr(py))
    }
}

/// Shorthand for a ConfigError naming an argument.
pub fn config_err(message: impl Into<String>) -> PyErr {
    FtError::config(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_query_strings() {
        let m = redact("error sending request for url (https://api.example.com/api/v3/order?symbol=BTC&signature=abc123): connection reset");
        assert!(!m.contains("abc123"), "{m}");
        assert!(!m.contains("symbol=BTC"), "{m}");
        assert!(
            m.contains("https://api.example.com/api/v3/order?[query redacted]"),
            "{m}"
        );
        assert!(m.contains("connection reset"), "{m}");
    }

    #[test]
    fn masks_secret_pairs_and_headers() {
        let m = redact("bad request: signature=deadbeef&timestamp=1 api_key=XYZ");
        assert!(!m.contains("deadbeef") && !m.contains("XYZ"), "{m}");
        assert!(m.contains("timestamp=1"), "{m}");
        let m = redact(
            "headers:\nX-MBX-APIKEY: supersecret\nAuthorization: Bearer tok.en\nContent-Type: json",
        );
        assert!(!m.contains("supersecret") && !m.contains("tok.en"), "{m}");
        assert!(m.contains("Content-Type: json"), "{m}");
        let m = redact("sent Bearer abc.def.ghi to host");
        assert!(!m.contains("abc.def.ghi") && m.contains("to host"), "{m}");
    }

    #[test]
    fn masks_userinfo_and_keeps_plain_text() {
        let m = redact("connect to http://user:pw@127.0.0.1:8080/x failed");
        assert!(!m.contains("pw@"), "{m}");
        assert!(m.contains("127.0.0.1:8080/x failed"), "{m}");
        assert_eq!(
            redact("timer fired late by 3 ms"),
            "timer fired late by 3 ms"
        );
    }

    #[test]
    fn secrets_anywhere_in_a_line() {
        for (msg, secret) in [
            ("request failed; X-MBX-APIKEY: k123", "k123"),
            ("request failed, sent Authorization: token tok123", "tok123"),
            (
                "403 Forbidden, headers={'X-MBX-APIKEY': 'k123', 'Accept': 'json'}",
                "k123",
            ),
            (
                "request headers: {\"Authorization\": \"Bearer tok123\"}",
                "tok123",
            ),
            (
                "POST /api/v3/order?symbol=BTC&signature=abc failed",
                "symbol=BTC",
            ),
            ("POST /api/v3/order?symbol=BTC&signature=abc failed", "abc"),
            ("password=hunter2 user=bob", "hunter2"),
        ] {
            let r = redact(msg);
            assert!(!r.contains(secret), "{msg:?} -> {r:?}");
        }
        let r = redact("403 Forbidden, headers={'X-MBX-APIKEY': 'k123', 'Accept': 'json'}");
        assert!(r.contains("'Accept': 'json'"), "{r}");
        assert_eq!(
            redact("POST /api/v3/order failed: 400"),
            "POST /api/v3/order failed: 400"
        );
    }

    #[test]
    fn cause_chain_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = FtError::with_cause(ErrorKind::Connect, "connect failed", &io);
        assert_eq!(e.to_string(), "connect failed: refused");
    }
}
