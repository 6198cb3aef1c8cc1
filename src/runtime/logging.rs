//! `tracing` events from Rust reach Python's `logging` under the logger
//! `ferrotick` (children named after the emitting module: `ferrotick.net`).
//!
//! The Rust-side filter is an atomic level that the Python package keeps
//! equal to the effective level of the `ferrotick` loggers (it hooks the
//! logging manager's cache invalidation, which every `setLevel` and
//! `logging.disable` goes through). Callsites of disabled levels are cached
//! as "never" by tracing, so they cost one atomic load. Nothing is emitted
//! once the interpreter is finalizing.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// 0 = off, 1 = error, 2 = warn, 3 = info, 4 = debug, 5 = trace.
static LEVEL: AtomicU8 = AtomicU8::new(2);
static INSTALL: Once = Once::new();
static GET_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Maps a Python logging threshold (effective level) onto our rank.
pub fn rank_for_python_level(py_level: i64) -> u8 {
    match py_level {
        i64::MIN..=5 => 5,
        6..=10 => 4,
        11..=20 => 3,
        21..=30 => 2,
        31..=40 => 1,
        _ => 0,
    }
}

fn python_level(level: &Level) -> i64 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

pub fn current_rank() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Sets the filter; rebuilds tracing's interest cache when it changes.
pub fn set_rank(rank: u8) {
    let old = LEVEL.swap(rank, Ordering::Relaxed);
    if old != rank {
        tracing::callsite::rebuild_interest_cache();
    }
}

fn enabled_rank(level: &Level) -> bool {
    rank(level) <= LEVEL.load(Ordering::Relaxed)
}

/// Logger name for a tracing target: `ferrotick::net::pool` → `ferrotick.net`,
/// `hyper_util::client` → `ferrotick.hyper_util`.
pub fn logger_name(target: &str) -> String {
    let mut parts = target.split("::");
    let first = parts.next().unwrap_or("");
    if first == "ferrotick" {
        match parts.next() {
            Some(domain) if !domain.is_empty() => format!("ferrotick.{domain}"),
            _ => "ferrotick".to_string(),
        }
    } else if first.is_empty() {
        "ferrotick".to_string()
    } else {
        format!("ferrotick.{first}")
    }
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: String,
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// Formats an event as the line Python receives (redacted).
pub fn format_event(event: &Event<'_>) -> String {
    let mut c = Collect::default();
    event.record(&mut c);
    crate::errors::redact(&format!("{}{}", c.message, c.fields))
}

struct PythonLayer;

impl<S: Subscriber> Layer<S> for PythonLayer {
    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if enabled_rank(metadata.level()) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        enabled_rank(metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match LEVEL.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if super::is_finalizing() {
            return;
        }
        let meta = event.metadata();
        let line = format_event(event);
        let name = logger_name(meta.target());
        let level = python_level(meta.level());
        let _ = Python::try_attach(|py| -> PyResult<()> {
            if super::is_finalizing() {
                return Ok(());
            }
            let get_logger = GET_LOGGER.get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("logging")?.getattr("getLogger")?.unbind())
            })?;
            let logger = get_logger.bind(py).call1((name,))?;
            logger.call_method1("log", (level, line))?;
            Ok(())
        });
    }
}

/// Installs the bridge as the global tracing subscriber (once).
pub fn install() {
    INSTALL.call_once(|| {
        let _ = tracing_subscriber::registry().with(PythonLayer).try_init();
    });
}

/// Emits one event at `level` (used by the tests and the self-check).
pub fn emit(level: &str, message: &str) -> bool {
    match level.to_ascii_lowercase().as_str() {
        "error" => tracing::error!(target: "ferrotick::runtime", "{message}"),
        "warning" | "warn" => tracing::warn!(target: "ferrotick::runtime", "{message}"),
        "info" => tracing::info!(target: "ferrotick::runtime", "{message}"),
        "debug" => tracing::debug!(target: "ferrotick::runtime", "{message}"),
        "trace" => tracing::trace!(target: "ferrotick::runtime", "{message}"),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_levels_and_names() {
        assert_eq!(rank_for_python_level(10), 4);
        assert_eq!(rank_for_python_level(30), 2);
        assert_eq!(rank_for_python_level(50), 0);
        assert_eq!(rank_for_python_level(1), 5);
        assert_eq!(logger_name("ferrotick::net::pool"), "ferrotick.net");
        assert_eq!(logger_name("ferrotick"), "ferrotick");
        assert_eq!(logger_name("hyper_util::client"), "ferrotick.hyper_util");
    }
}
