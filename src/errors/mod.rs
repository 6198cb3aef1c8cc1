//! The error type every domain returns, and the table that maps it onto
//! ferrotick's Python exception tree.
//!
//! Domain code (no PyO3) returns [`FtError`]. Its [`ErrorKind`] names one
//! class of the tree; the classes themselves are Python classes defined in
//! `ferrotick/_errors.py` (typed, documented, seen by IDEs), which `py.rs`
//! looks up by name once per interpreter. Every message passes through
//! [`redact`] before it reaches Python.
//!
//! Adding an exception raised from Rust: one class in `_errors.py` and one
//! line in the table below.

pub mod py;
pub mod redact;

use std::fmt;

pub use py::config_err;
pub use redact::{redact, redact_url};

/// Declares [`ErrorKind`] and its table of Python class names from one list.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident => $class:literal,)+) => {
        /// Which class of the Python exception tree an error maps onto.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)+
        }

        impl ErrorKind {
            /// Every kind, in table order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)+];

            /// The name of the class in `ferrotick._errors` this kind is raised as.
            pub const fn class_name(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $class,)+
                }
            }
        }
    };
}

error_kinds! {
    /// `FerrotickError`: an internal failure with no more specific class.
    Ferrotick => "FerrotickError",
    Config => "ConfigError",
    IndicatorInput => "IndicatorInputError",
    MarketData => "MarketDataError",
    Http => "HTTPError",
    Connect => "ConnectError",
    RequestTimeout => "RequestTimeout",
    HttpStatus => "HTTPStatusError",
    CircuitOpen => "CircuitOpenError",
    RateLimitExceeded => "RateLimitExceeded",
    Scheduler => "SchedulerError",
    ServiceContainer => "ServiceContainerError",
    Exchange => "ExchangeError",
    BlockingCall => "BlockingCallError",
}

impl ErrorKind {
    /// The kind whose class has this name.
    pub fn from_class_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|k| k.class_name() == name)
    }

    /// This kind's position in [`ErrorKind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One error value for every domain. Optional fields carry the attributes
/// that some exception classes declare (`.status`, `.retry_after`, `.code`);
/// each is set on the Python instance when the class declares it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_with_unique_names() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(ErrorKind::from_class_name(k.class_name()), Some(*k));
        }
        assert_eq!(ErrorKind::from_class_name("NoSuchError"), None);
    }
}
