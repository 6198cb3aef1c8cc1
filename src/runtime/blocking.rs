//! Blocking twins: run a Rust future to completion from a thread without a
//! running event loop (Flask views, scripts), with the GIL released.

use std::future::Future;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::Duration;

use pyo3::prelude::*;

use super::bridge::running_loop;
use super::CatchPanic;
use crate::errors::{ErrorKind, FtError, FtResult};

/// How often a blocked caller wakes to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Raises BlockingCallError when this thread runs an event loop.
pub fn ensure_no_running_loop(py: Python<'_>, what: &str) -> PyResult<()> {
    if running_loop(py)?.is_some() {
        return Err(FtError::new(
            ErrorKind::BlockingCall,
            format!(
                "{what} blocks the calling thread, but this thread runs an event loop; await the async version instead"
            ),
        )
        .to_pyerr(py));
    }
    Ok(())
}

/// Parks the calling (daemon) thread for good during interpreter exit.
fn park_forever(py: Python<'_>) -> ! {
    loop {
        py.detach(|| std::thread::sleep(Duration::from_secs(3600)));
    }
}

/// Runs `fut` on the runtime and waits for it with the GIL released. A
/// signal (KeyboardInterrupt) aborts the Rust work and propagates.
pub fn block_on<T, F>(py: Python<'_>, what: &str, fut: F) -> PyResult<T>
where
    F: Future<Output = FtResult<T>> + Send + 'static,
    T: Send + 'static,
{
    ensure_no_running_loop(py, what)?;
    if super::is_finalizing() {
        // Called from a daemon thread while the interpreter exits: park
        // like daemon threads do at exit rather than raise into the thread.
        park_forever(py);
    }
    let handle = super::handle().map_err(|e| e.to_pyerr(py))?;
    let (tx, rx) = sync_channel::<FtResult<T>>(1);
    let join = handle.spawn(async move {
        let r = CatchPanic(fut).await;
        let _ = tx.send(r);
    });
    let mut rx = rx;
    loop {
        let (back, r) = py.detach(move || {
            let r = rx.recv_timeout(SIGNAL_CHECK);
            (rx, r)
        });
        rx = back;
        match r {
            Ok(r) => return r.map_err(|e| e.to_pyerr(py)),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    join.abort();
                    return Err(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) if super::is_finalizing() => {
                // The interpreter is exiting and dropped the work; only daemon
                // threads are left at this point.
                park_forever(py);
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(FtError::internal(format!(
                    "{what}: the runtime dropped the work (it is shutting down)"
                ))
                .to_pyerr(py))
            }
        }
    }
}
