//! The asyncio bridge: the only place where Rust futures become Python
//! awaitables.
//!
//! * [`FerrotickFuture`] is a future-like object (it passes
//!   `asyncio.isfuture()` and implements the Future API), so `asyncio.gather`
//!   and `asyncio.wait` take it without wrapping it in a Task.
//! * A result known at once is returned already done: awaiting it raises
//!   `StopIteration(value)` on the first `__next__`, with no loop round trip.
//! * A pending result is computed by a tokio task. When it finishes, the task
//!   stores the Rust value in the future's [`Link`] and pushes the link onto
//!   the completion queue of the future's event loop, without taking the GIL.
//!   The queue wakes its loop through an eventfd watched with `add_reader`
//!   only when it goes from empty to non-empty, so one wake-up delivers a
//!   whole batch; the loop thread then turns values into Python objects and
//!   runs the done callbacks.
//! * Cancelling the Python side aborts the tokio task at once; so does
//!   dropping a pending future nobody waits for, and closing its loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyWeakrefReference};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::errors::{FtError, FtResult};

/// Turns a Rust value into a Python object; runs on the loop thread.
pub type Converter = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
/// What a tokio task hands to the loop.
pub type Outcome = Result<Converter, FtError>;

// ---------------------------------------------------------------------------
// Cached Python objects
// ---------------------------------------------------------------------------

struct PyRefs {
    get_running_loop: Py<PyAny>,
    cancelled_error: Py<PyAny>,
    invalid_state_error: Py<PyAny>,
}

static REFS: PyOnceLock<PyRefs> = PyOnceLock::new();

fn refs(py: Python<'_>) -> PyResult<&PyRefs> {
    REFS.get_or_try_init(py, || {
        let events = py.import("asyncio.events")?;
        let exceptions = py.import("asyncio.exceptions")?;
        Ok::<_, PyErr>(PyRefs {
            get_running_loop: events.getattr("_get_running_loop")?.unbind(),
            cancelled_error: exceptions.getattr("CancelledError")?.unbind(),
            invalid_state_error: exceptions.getattr("InvalidStateError")?.unbind(),
        })
    })
}

/// The running loop of this thread, if any.
pub fn running_loop<'py>(py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let l = refs(py)?.get_running_loop.bind(py).call0()?;
    Ok(if l.is_none() { None } else { Some(l) })
}

mod future;
mod queue;
mod slots;

pub use future::FerrotickFuture;
use future::{FutState, Step};
pub use queue::*;
pub use slots::install_await_slots;

// ---------------------------------------------------------------------------
// The link between a tokio task and its Python future
// ---------------------------------------------------------------------------

#[derive(Default)]
struct LinkState {
    outcome: Option<Outcome>,
    /// The queue to push to once someone waits.
    queue: Option<Arc<LoopQueue>>,
    /// A strong reference to the Python future while callbacks wait on it,
    /// so that it (and the tasks waiting on it) stay alive as asyncio keeps
    /// futures alive through its loop.
    waiter: Option<Py<FerrotickFuture>>,
}

pub struct Link {
    state: Mutex<LinkState>,
    /// Set when the Python future is cancelled, so that work completed by a
    /// [`Completer`] (a kernel batch) can stop early.
    cancelled: std::sync::atomic::AtomicBool,
}

impl Link {
    fn finish(self: Arc<Self>, outcome: Outcome) {
        let queue = {
            let mut s = self.state.lock();
            s.outcome = Some(outcome);
            if s.waiter.is_some() {
                s.queue.clone()
            } else {
                None
            }
        };
        if let Some(q) = queue {
            q.push(self);
        }
    }
}

// ---------------------------------------------------------------------------
// Public entry points for the domains
// ---------------------------------------------------------------------------

/// Completes a future made by [`pending`] from any thread, without a tokio
/// task: the result goes straight into the loop's completion queue.
pub struct Completer {
    link: Arc<Link>,
}

impl Completer {
    pub fn complete(self, outcome: Outcome) {
        self.link.finish(outcome);
    }

    /// True once the Python future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.link.cancelled.load(Ordering::Acquire)
    }

    /// A flag that turns true when the Python future is cancelled.
    pub fn cancel_flag(&self) -> CancelFlag {
        CancelFlag {
            link: self.link.clone(),
        }
    }

    /// True once nobody can observe the result any more (the Python future
    /// is gone and nothing waits on it).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.link) == 1 && self.link.state.lock().waiter.is_none()
    }
}

/// Observes the cancellation of a [`pending`] future from any thread.
#[derive(Clone)]
pub struct CancelFlag {
    link: Arc<Link>,
}

impl CancelFlag {
    pub fn is_set(&self) -> bool {
        self.link.cancelled.load(Ordering::Acquire)
    }
}

/// A pending awaitable completed by whoever holds the [`Completer`]
/// (for example the timer thread). Cancelling it just stops waiting.
pub fn pending(py: Python<'_>) -> PyResult<(Bound<'_, FerrotickFuture>, Completer)> {
    let link = Arc::new(Link {
        state: Mutex::new(LinkState::default()),
        cancelled: std::sync::atomic::AtomicBool::new(false),
    });
    let mut f = FerrotickFuture::new_state(FutState::Pending);
    f.link = Some(link.clone());
    if let Some(l) = running_loop(py)? {
        f.bind_loop(py, &l)?;
    }
    Ok((Bound::new(py, f)?, Completer { link }))
}

/// An awaitable that is already done with `value`.
pub fn ready(py: Python<'_>, value: Py<PyAny>) -> PyResult<Bound<'_, FerrotickFuture>> {
    // The loop is bound lazily (get_loop / add_done_callback): awaiting a
    // done future never needs it.
    Bound::new(py, FerrotickFuture::new_state(FutState::Done(value)))
}

/// An awaitable that is already done with an error.
pub fn failed(py: Python<'_>, err: PyErr) -> PyResult<Bound<'_, FerrotickFuture>> {
    Bound::new(py, FerrotickFuture::new_state(FutState::Failed(err)))
}

/// An awaitable that yields to the loop exactly once (`sleep(0)`).
pub fn yield_once(py: Python<'_>) -> PyResult<Bound<'_, FerrotickFuture>> {
    let mut f = FerrotickFuture::new_state(FutState::YieldOnce);
    if let Some(l) = running_loop(py)? {
        f.loop_ = Some(l.unbind());
    }
    Bound::new(py, f)
}

struct Unfinished(Option<Arc<Link>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(link) = self.0.take() {
            // Dropped without the GIL: PyO3 defers the decref safely.
            let waiter = link.state.lock().waiter.take();
            drop(waiter);
        }
    }
}

/// Runs `fut` on the runtime and returns an awaitable for its outcome. The
/// future is bound to the running loop of the calling thread (or, if there
/// is none, to the loop that first awaits it).
pub fn spawn<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, FerrotickFuture>>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let handle = match crate::runtime::handle() {
        Ok(h) => h,
        Err(_) if crate::runtime::is_finalizing() => {
            // The interpreter is exiting (a daemon thread's loop still runs):
            // hand back a future that simply never completes, as the thread
            // itself is about to be frozen, instead of raising into it.
            let mut f = FerrotickFuture::new_state(FutState::Pending);
            if let Some(l) = running_loop(py)? {
                f.loop_ = Some(l.unbind());
            }
            return Bound::new(py, f);
        }
        Err(e) => return Err(e.into()),
    };
    let link = Arc::new(Link {
        state: Mutex::new(LinkState::default()),
        cancelled: std::sync::atomic::AtomicBool::new(false),
    });
    let mut f = FerrotickFuture::new_state(FutState::Pending);
    let loop_ = running_loop(py)?;
    if let Some(l) = &loop_ {
        f.link = Some(link.clone());
        f.bind_loop(py, l)?;
    }
    let queue = f.queue.clone();
    let task_link = link.clone();
    let join = handle.spawn(async move {
        // If this task ends without a result (its loop closed, the runtime
        // shut down), release the future's self-reference so that it and
        // the tasks waiting on it can be collected.
        let mut guard = Unfinished(Some(task_link.clone()));
        let mut fut = std::pin::pin!(fut);
        let closed = queue.as_ref().map(|q| q.closed.notified());
        let mut closed = std::pin::pin!(closed);
        if let (Some(n), Some(q)) = (closed.as_mut().as_pin_mut(), &queue) {
            n.enable();
            if !q.is_alive() {
                return;
            }
        }
        let outcome = std::future::poll_fn(|cx| {
            if let Some(n) = closed.as_mut().as_pin_mut() {
                if n.poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                Ok(Poll::Ready(o)) => Poll::Ready(Some(o)),
                Ok(Poll::Pending) => Poll::Pending,
                Err(p) => Poll::Ready(Some(Err(FtError::internal(format!(
                    "internal error (a bug in ferrotick, please report it): {}",
                    crate::runtime::panic_message(p)
                ))))),
            }
        })
        .await;
        if let Some(o) = outcome {
            guard.0.take();
            task_link.finish(o);
        }
    });
    f.abort = Some(join.abort_handle());
    if f.link.is_none() {
        f.link = Some(link);
    }
    Bound::new(py, f)
}

/// Like [`spawn`] for a future producing a value that converts to Python.
pub fn spawn_value<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, FerrotickFuture>>
where
    F: Future<Output = FtResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    spawn(py, async move {
        fut.await.map(|v| -> Converter {
            Box::new(move |py: Python<'_>| {
                v.into_pyobject(py)
                    .map(|b| pyo3::BoundObject::into_bound(b).into_any().unbind())
                    .map_err(Into::into)
            })
        })
    })
}
