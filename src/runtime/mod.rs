//! The process-wide tokio runtime: started lazily, configured once, rebuilt
//! in a forked child, shut down before the interpreter finalizes.
//!
//! Everything here is plain Rust; `py.rs` holds the Python wrappers and
//! `bridge.rs` turns Rust futures into Python awaitables.

pub mod blocking;
pub mod bridge;
pub mod logging;
pub mod py;
pub mod timer;

#[cfg(feature = "bench")]
pub mod bench;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};

use crate::errors::{FtError, FtResult};

/// Settings read when the runtime starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeConfig {
    /// tokio worker threads; `None` means the number of CPUs.
    pub worker_threads: Option<usize>,
    /// Upper bound on tokio's blocking pool.
    pub max_blocking_threads: Option<usize>,
    /// Threads of the compute (rayon) pool used by the indicator kernels.
    pub compute_threads: Option<usize>,
    /// Time allowed to in-flight work at interpreter exit before it is dropped.
    pub shutdown_timeout_ms: Option<u64>,
}

impl RuntimeConfig {
    /// Applies `FERROTICK_WORKER_THREADS` (and friends) to fields not set by
    /// `configure()`.
    pub fn with_env(mut self) -> FtResult<Self> {
        if self.worker_threads.is_none() {
            self.worker_threads = env_usize("FERROTICK_WORKER_THREADS")?;
        }
        if self.max_blocking_threads.is_none() {
            self.max_blocking_threads = env_usize("FERROTICK_MAX_BLOCKING_THREADS")?;
        }
        if self.compute_threads.is_none() {
            self.compute_threads = env_usize("FERROTICK_COMPUTE_THREADS")?;
        }
        Ok(self)
    }

    pub fn effective_worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(default_threads)
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn env_usize(name: &str) -> FtResult<Option<usize>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(Some(n)),
            _ => Err(FtError::config(format!(
                "{name} must be an integer between 1 and 1024, got {v:?}"
            ))),
        },
        Err(_) => Ok(None),
    }
}

/// Validates a thread count given to `configure()`.
pub fn check_threads(name: &str, n: usize) -> FtResult<usize> {
    if (1..=1024).contains(&n) {
        Ok(n)
    } else {
        Err(FtError::config(format!(
            "{name} must be between 1 and 1024, got {n}"
        )))
    }
}

struct Live {
    /// Fork generation the runtime was built in.
    generation: u64,
    runtime: Option<Runtime>,
    handle: Handle,
    config: RuntimeConfig,
}

struct State {
    config: RuntimeConfig,
    live: Option<Live>,
    shut_down: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    config: RuntimeConfig {
        worker_threads: None,
        max_blocking_threads: None,
        compute_threads: None,
        shutdown_timeout_ms: None,
    },
    live: None,
    shut_down: false,
});

/// Bumped in the child of every `fork()` (from a pthread_atfork handler,
/// which only touches an atomic and is therefore async-signal-safe).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// Set when the interpreter is exiting: no thread of ours may touch Python.
static FINALIZING: AtomicBool = AtomicBool::new(false);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn install_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registering a handler with pthread_atfork has no
        // preconditions; the handler only performs an atomic increment,
        // which is async-signal-safe as required in a forked child.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_child));
        }
    });
}

pub fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

pub fn is_finalizing() -> bool {
    FINALIZING.load(Ordering::Acquire)
}

/// Forgets a runtime inherited from the parent process. Its threads do not
/// exist in the child and dropping it would wait for them forever.
fn abandon_if_forked(state: &mut State) {
    let gen = fork_generation();
    if let Some(live) = &state.live {
        if live.generation != gen {
            if let Some(old) = state.live.take() {
                std::mem::forget(old);
            }
            bridge::after_fork();
        }
    }
}

/// Stores settings for the runtime; an error once it runs.
pub fn configure(
    update: impl FnOnce(&mut RuntimeConfig) -> FtResult<()>,
) -> FtResult<RuntimeConfig> {
    install_atfork();
    let mut state = STATE.lock();
    abandon_if_forked(&mut state);
    if state.live.is_some() {
        return Err(FtError::config(
            "configure() must be called before the runtime starts (it starts on the first awaitable ferrotick creates)",
        ));
    }
    let mut cfg = state.config.clone();
    update(&mut cfg)?;
    state.config = cfg.clone();
    Ok(cfg)
}

/// Returns the runtime's handle, starting the runtime on first use (and
/// again in a forked child).
pub fn handle() -> FtResult<Handle> {
    let gen = fork_generation();
    let mut state = STATE.lock();
    if let Some(live) = &state.live {
        if live.generation == gen {
            return Ok(live.handle.clone());
        }
    }
    abandon_if_forked(&mut state);
    if state.shut_down && gen == 0 {
        return Err(FtError::internal(
            "the ferrotick runtime has been shut down (interpreter exit)",
        ));
    }
    install_atfork();
    let cfg = state.config.clone().with_env()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(cfg.effective_worker_threads())
        .thread_name("ferrotick-worker")
        .enable_all();
    if let Some(n) = cfg.max_blocking_threads {
        builder.max_blocking_threads(n);
    }
    let runtime = builder.build().map_err(|e| {
        FtError::with_cause(
            crate::errors::ErrorKind::Ferrotick,
            "could not start the tokio runtime",
            &e,
        )
    })?;
    let handle = runtime.handle().clone();
    state.live = Some(Live {
        generation: gen,
        runtime: Some(runtime),
        handle: handle.clone(),
        config: cfg,
    });
    state.shut_down = false;
    Ok(handle)
}

/// The configuration the runtime was started with, if it runs.
pub fn running_config() -> Option<RuntimeConfig> {
    let state = STATE.lock();
    state
        .live
        .as_ref()
        .filter(|l| l.generation == fork_generation())
        .map(|l| l.config.clone())
}

/// The configuration that will be used when the runtime starts.
pub fn pending_config() -> RuntimeConfig {
    STATE.lock().config.clone()
}

/// The handle if the runtime is already running in this process.
pub fn handle_if_running() -> Option<Handle> {
    let state = STATE.lock();
    state
        .live
        .as_ref()
        .filter(|l| l.generation == fork_generation())
        .map(|l| l.handle.clone())
}

/// Stops the runtime at interpreter exit: marks the process as finalizing
/// (so no thread of ours touches Python again), then drops in-flight work,
/// waiting at most `shutdown_timeout_ms` for worker threads to stop.
/// Must be called without holding the GIL (see `py.rs`).
pub fn shutdown_for_exit() {
    FINALIZING.store(true, Ordering::Release);
    let taken = {
        let mut state = STATE.lock();
        state.shut_down = true;
        let gen = fork_generation();
        match state.live.take() {
            Some(mut live) if live.generation == gen => {
                let ms = live.config.shutdown_timeout_ms.unwrap_or(250);
                live.runtime.take().map(|rt| (rt, ms))
            }
            Some(other) => {
                std::mem::forget(other);
                None
            }
            None => None,
        }
    };
    if let Some((rt, ms)) = taken {
        rt.shutdown_timeout(Duration::from_millis(ms));
    }
}

/// Live tokio tasks (0 when the runtime has not started).
pub fn alive_tasks() -> usize {
    handle_if_running()
        .map(|h| h.metrics().num_alive_tasks())
        .unwrap_or(0)
}

/// Polls a future, turning a panic inside it into an internal error instead
/// of unwinding through the runtime.
pub struct CatchPanic<F>(pub F);

impl<F, T> std::future::Future for CatchPanic<F>
where
    F: std::future::Future<Output = FtResult<T>>,
{
    type Output = FtResult<T>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // SAFETY: structural pinning of the only field; `self` is never moved
        // out of and `F` is never accessed unpinned.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(p) => std::task::Poll::Ready(Err(FtError::internal(format!(
                "internal error (a bug in ferrotick, please report it): {}",
                panic_message(p)
            )))),
        }
    }
}

pub fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_parsing_rejects_garbage() {
        std::env::set_var("FERROTICK_TEST_THREADS", "abc");
        assert!(env_usize("FERROTICK_TEST_THREADS").is_err());
        std::env::set_var("FERROTICK_TEST_THREADS", "0");
        assert!(env_usize("FERROTICK_TEST_THREADS").is_err());
        std::env::set_var("FERROTICK_TEST_THREADS", " 3 ");
        assert_eq!(env_usize("FERROTICK_TEST_THREADS").ok().flatten(), Some(3));
        std::env::remove_var("FERROTICK_TEST_THREADS");
        assert_eq!(env_usize("FERROTICK_TEST_THREADS").ok().flatten(), None);
    }

    #[test]
    fn thread_counts_are_checked() {
        assert!(check_threads("worker_threads", 0).is_err());
        assert!(check_threads("worker_threads", 4).is_ok());
        assert!(check_threads("worker_threads", 5000).is_err());
    }

    #[test]
    fn runtime_starts_and_runs_tasks() {
        let h = handle().expect("runtime starts");
        let (tx, rx) = std::sync::mpsc::channel();
        h.spawn(async move {
            let _ = tx.send(41 + 1);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).ok(), Some(42));
        // a second call returns the same runtime
        assert!(handle().is_ok());
        assert!(configure(|_| Ok(())).is_err());
    }
}
