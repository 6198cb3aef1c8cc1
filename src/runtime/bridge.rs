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

// ---------------------------------------------------------------------------
// Completion queues, one per event loop
// ---------------------------------------------------------------------------

enum Wake {
    /// An eventfd registered with `loop.add_reader`.
    Fd(libc::c_int),
    /// `loop.call_soon_threadsafe(waker)` once per batch, for loops without
    /// `add_reader` (e.g. the proactor loop).
    Threadsafe { loop_: Py<PyAny>, waker: Py<PyAny> },
}

struct QueueInner {
    items: Vec<Arc<Link>>,
    alive: bool,
    wake: Option<Wake>,
}

/// The completion queue of one event loop.
pub struct LoopQueue {
    inner: Mutex<QueueInner>,
    /// Woken when the loop closes so that tokio tasks bound to it stop.
    closed: Notify,
    loop_id: usize,
    loop_ref: Py<PyAny>,
    /// Fork generation the queue was made in; a forked child never touches
    /// the locks of a queue inherited from its parent.
    generation: u64,
    pending: AtomicUsize,
    completions: AtomicU64,
    wakeups: AtomicU64,
}

impl LoopQueue {
    fn is_alive(&self) -> bool {
        self.inner.lock().alive
    }

    /// Called from any thread (a tokio worker) without the GIL.
    fn push(&self, link: Arc<Link>) {
        let mut threadsafe = false;
        {
            let mut g = self.inner.lock();
            if !g.alive {
                drop(g);
                drop(link);
                return;
            }
            let was_empty = g.items.is_empty();
            g.items.push(link);
            if was_empty {
                match &g.wake {
                    Some(Wake::Fd(fd)) => {
                        let one: u64 = 1;
                        // SAFETY: `fd` is an eventfd owned by this queue; it is
                        // closed only under this same lock after `alive` is
                        // cleared, so it is open here. The buffer is a valid
                        // 8-byte u64 as eventfd requires.
                        unsafe {
                            libc::write(*fd, (&one as *const u64).cast(), 8);
                        }
                    }
                    Some(Wake::Threadsafe { .. }) => {
                        // Needs the GIL: done below, after the lock is released.
                        threadsafe = true;
                    }
                    None => {}
                }
            }
        }
        if threadsafe && !super::is_finalizing() {
            let _ = Python::try_attach(|py| {
                let g = self.inner.lock();
                if let Some(Wake::Threadsafe { loop_, waker }) = &g.wake {
                    let l = loop_.clone_ref(py);
                    let w = waker.clone_ref(py);
                    drop(g);
                    // A closed loop raises RuntimeError: nothing to deliver to.
                    let _ = l.call_method1(py, "call_soon_threadsafe", (w,));
                }
            });
        }
    }

    /// Marks the queue dead (its loop closed): wakes no one again, releases
    /// the eventfd and stops the tokio tasks bound to it.
    fn detach(&self) {
        let items = {
            let mut g = self.inner.lock();
            g.alive = false;
            if let Some(Wake::Fd(fd)) = g.wake.take() {
                // SAFETY: the fd was created by this queue and is closed
                // exactly once, here, under the lock that `push` holds while
                // writing to it.
                unsafe {
                    libc::close(fd);
                }
            }
            std::mem::take(&mut g.items)
        };
        drop(items);
        self.closed.notify_waiters();
    }

    /// Runs on the loop thread: delivers every queued completion.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        let batch = {
            let mut g = self.inner.lock();
            if let Some(Wake::Fd(fd)) = &g.wake {
                let mut buf: u64 = 0;
                // SAFETY: reading 8 bytes into a u64 from our own non-blocking
                // eventfd, which is open while `alive` (we hold the lock).
                unsafe {
                    libc::read(*fd, (&mut buf as *mut u64).cast(), 8);
                }
            }
            std::mem::take(&mut g.items)
        };
        let mut iter = batch.into_iter();
        while let Some(link) = iter.next() {
            let (outcome, waiter) = {
                let mut s = link.state.lock();
                (s.outcome.take(), s.waiter.take())
            };
            // No waiter: nobody registered a callback (or cancel() took it).
            let Some(waiter) = waiter else {
                continue;
            };
            self.completions.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = FerrotickFuture::complete(py, waiter.bind(py), outcome, true) {
                // KeyboardInterrupt / SystemExit from a callback: put the rest
                // back so that nothing is lost, then let it propagate.
                let rest: Vec<Arc<Link>> = iter.collect();
                if !rest.is_empty() {
                    let mut g = self.inner.lock();
                    let was_empty = g.items.is_empty();
                    let mut rest = rest;
                    rest.append(&mut g.items);
                    g.items = rest;
                    if was_empty {
                        if let Some(Wake::Fd(fd)) = &g.wake {
                            let one: u64 = 1;
                            // SAFETY: as in `push`.
                            unsafe {
                                libc::write(*fd, (&one as *const u64).cast(), 8);
                            }
                        }
                    }
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for LoopQueue {
    fn drop(&mut self) {
        let g = self.inner.get_mut();
        if let Some(Wake::Fd(fd)) = g.wake.take() {
            // SAFETY: closing our own eventfd once; no other reference to
            // the queue exists any more.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// The callable registered with `loop.add_reader`; its loop owns it, so it
/// is released when the loop closes, which detaches the queue.
#[pyclass(module = "ferrotick._core", name = "_LoopWaker", frozen)]
pub struct LoopWaker {
    queue: Arc<LoopQueue>,
}

#[pymethods]
impl LoopWaker {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        if self.queue.generation != super::fork_generation() {
            return Ok(());
        }
        self.queue.drain(py)
    }
}

impl Drop for LoopWaker {
    fn drop(&mut self) {
        if self.queue.generation == super::fork_generation() {
            self.queue.detach();
        }
    }
}

struct Registry {
    by_loop: std::collections::HashMap<usize, Weak<LoopQueue>>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

thread_local! {
    static LAST: std::cell::RefCell<Option<Arc<LoopQueue>>> = const { std::cell::RefCell::new(None) };
}

/// Drops what a forked child inherited: the parent's loops and queues.
pub fn after_fork() {
    let mut reg = REGISTRY.lock();
    if let Some(r) = reg.take() {
        std::mem::forget(r);
    }
    LAST.with(|l| {
        if let Some(q) = l.borrow_mut().take() {
            std::mem::forget(q);
        }
    });
}

fn queue_matches(py: Python<'_>, q: &LoopQueue, loop_: &Bound<'_, PyAny>) -> bool {
    if q.loop_id != loop_.as_ptr() as usize {
        return false;
    }
    let referent = match q.loop_ref.bind(py).cast::<PyWeakrefReference>() {
        Ok(w) => w.upgrade(),
        // strong reference (loop type without weakref support)
        Err(_) => Some(q.loop_ref.bind(py).clone()),
    };
    match referent {
        Some(r) => r.is(loop_) && q.is_alive(),
        None => false,
    }
}

/// The completion queue of `loop_`, created and registered on first use.
pub fn queue_for(py: Python<'_>, loop_: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    let cached = LAST.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|q| queue_matches(py, q, loop_))
            .cloned()
    });
    if let Some(q) = cached {
        return Ok(q);
    }
    let id = loop_.as_ptr() as usize;
    let found = {
        let reg = REGISTRY.lock();
        reg.as_ref()
            .and_then(|r| r.by_loop.get(&id))
            .and_then(|w| w.upgrade())
    };
    let q = match found {
        Some(q) if queue_matches(py, &q, loop_) => q,
        _ => create_queue(py, loop_)?,
    };
    LAST.with(|l| *l.borrow_mut() = Some(q.clone()));
    Ok(q)
}

fn create_queue(py: Python<'_>, loop_: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    let loop_ref: Py<PyAny> = match PyWeakrefReference::new(loop_) {
        Ok(w) => w.into_any().unbind(),
        Err(_) => loop_.clone().unbind(),
    };
    // SAFETY: eventfd with valid flags has no memory-safety preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(PyRuntimeError::new_err(format!(
            "ferrotick could not create an eventfd: {}",
            std::io::Error::last_os_error()
        )));
    }
    let queue = Arc::new(LoopQueue {
        inner: Mutex::new(QueueInner {
            items: Vec::new(),
            alive: true,
            wake: Some(Wake::Fd(fd)),
        }),
        closed: Notify::new(),
        loop_id: loop_.as_ptr() as usize,
        loop_ref,
        generation: super::fork_generation(),
        pending: AtomicUsize::new(0),
        completions: AtomicU64::new(0),
        wakeups: AtomicU64::new(0),
    });
    let waker = Bound::new(
        py,
        LoopWaker {
            queue: queue.clone(),
        },
    )?;
    match loop_.call_method1("add_reader", (fd, waker.clone())) {
        Ok(_) => {}
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyNotImplementedError>(py) => {
            // No add_reader on this loop: wake it with call_soon_threadsafe.
            let mut g = queue.inner.lock();
            if let Some(Wake::Fd(fd)) = g.wake.take() {
                // SAFETY: our own eventfd, never registered, closed once.
                unsafe {
                    libc::close(fd);
                }
            }
            g.wake = Some(Wake::Threadsafe {
                loop_: loop_.clone().unbind(),
                waker: waker.into_any().unbind(),
            });
        }
        Err(e) => return Err(e),
    }
    let mut reg = REGISTRY.lock();
    let r = reg.get_or_insert_with(|| Registry {
        by_loop: std::collections::HashMap::new(),
    });
    r.by_loop.retain(|_, w| w.strong_count() > 0);
    r.by_loop.insert(queue.loop_id, Arc::downgrade(&queue));
    Ok(queue)
}

/// Per-loop figures for `runtime_stats()`.
pub struct QueueStats {
    pub loop_id: usize,
    pub pending: usize,
    pub queue_depth: usize,
    pub completions: u64,
    pub wakeups: u64,
    pub mode: &'static str,
}

pub fn queue_stats() -> Vec<QueueStats> {
    let queues: Vec<Arc<LoopQueue>> = {
        let reg = REGISTRY.lock();
        reg.as_ref()
            .map(|r| r.by_loop.values().filter_map(|w| w.upgrade()).collect())
            .unwrap_or_default()
    };
    queues
        .into_iter()
        .filter_map(|q| {
            let g = q.inner.lock();
            if !g.alive {
                return None;
            }
            Some(QueueStats {
                loop_id: q.loop_id,
                pending: q.pending.load(Ordering::Relaxed),
                queue_depth: g.items.len(),
                completions: q.completions.load(Ordering::Relaxed),
                wakeups: q.wakeups.load(Ordering::Relaxed),
                mode: match g.wake {
                    Some(Wake::Fd(_)) => "eventfd",
                    Some(Wake::Threadsafe { .. }) => "call_soon_threadsafe",
                    None => "closed",
                },
            })
        })
        .collect()
}

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
// The Python future
// ---------------------------------------------------------------------------

enum Step {
    Yield(Py<PyAny>),
    Return(Py<PyAny>),
}

enum FutState {
    Pending,
    /// `sleep(0)`: the first `__next__` yields a bare None (one loop turn).
    YieldOnce,
    Done(Py<PyAny>),
    Failed(PyErr),
    Cancelled(Option<String>),
}

/// A future-like object completed by ferrotick's tokio runtime.
#[pyclass(module = "ferrotick", name = "FerrotickFuture", weakref)]
pub struct FerrotickFuture {
    state: FutState,
    loop_: Option<Py<PyAny>>,
    queue: Option<Arc<LoopQueue>>,
    link: Option<Arc<Link>>,
    abort: Option<AbortHandle>,
    callbacks: Vec<(Py<PyAny>, Option<Py<PyAny>>)>,
    #[pyo3(get, set, name = "_asyncio_future_blocking")]
    blocking: bool,
    counted: bool,
    /// Fork generation of the tokio task behind `abort`.
    generation: u64,
}

impl FerrotickFuture {
    fn new_state(state: FutState) -> Self {
        FerrotickFuture {
            state,
            loop_: None,
            queue: None,
            link: None,
            abort: None,
            callbacks: Vec::new(),
            blocking: false,
            counted: false,
            generation: super::fork_generation(),
        }
    }

    fn is_pending(&self) -> bool {
        matches!(self.state, FutState::Pending | FutState::YieldOnce)
    }

    fn uncount(&mut self) {
        if self.counted {
            self.counted = false;
            if let Some(q) = &self.queue {
                q.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Binds the future to `loop_` (the running loop) if it is not bound.
    fn bind_loop(&mut self, py: Python<'_>, loop_: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.loop_.is_some() {
            return Ok(());
        }
        self.loop_ = Some(loop_.clone().unbind());
        if self.link.is_some() && self.is_pending() {
            let q = queue_for(py, loop_)?;
            q.pending.fetch_add(1, Ordering::Relaxed);
            self.counted = true;
            self.queue = Some(q);
        }
        Ok(())
    }

    fn ensure_loop(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.loop_.is_some() {
            return Ok(());
        }
        if let Some(l) = running_loop(py)? {
            return self.bind_loop(py, &l);
        }
        let l = py.import("asyncio")?.call_method0("get_event_loop")?;
        self.bind_loop(py, &l)
    }

    /// Moves a finished tokio outcome into the Python state, if there is one.
    /// Returns true when the future left the pending state.
    fn sync_from_link(&mut self, py: Python<'_>) -> bool {
        if !matches!(self.state, FutState::Pending) {
            return false;
        }
        let outcome = match &self.link {
            Some(link) => link.state.lock().outcome.take(),
            None => None,
        };
        match outcome {
            Some(o) => {
                self.set_outcome(py, o);
                true
            }
            None => false,
        }
    }

    fn set_outcome(&mut self, py: Python<'_>, outcome: Outcome) {
        self.state = match outcome {
            Ok(conv) => match conv(py) {
                Ok(v) => FutState::Done(v),
                Err(e) => FutState::Failed(e),
            },
            Err(e) => FutState::Failed(e.to_pyerr(py)),
        };
        self.abort = None;
        self.uncount();
    }

    /// Completes `fut` from the loop thread and runs its callbacks. With
    /// `direct`, callbacks are called right here (we are a loop callback
    /// already); errors they raise go to the loop's exception handler.
    /// `outcome` is None when `done()`/`result()` already moved it into
    /// the Python state; the callbacks still have to run.
    fn complete(
        py: Python<'_>,
        fut: &Bound<'_, FerrotickFuture>,
        outcome: Option<Outcome>,
        direct: bool,
    ) -> PyResult<()> {
        let (callbacks, loop_) = {
            let mut f = fut.try_borrow_mut()?;
            if let Some(outcome) = outcome {
                if matches!(f.state, FutState::Pending) {
                    f.set_outcome(py, outcome);
                }
            }
            if f.is_pending() {
                return Ok(());
            }
            (
                std::mem::take(&mut f.callbacks),
                f.loop_.as_ref().map(|l| l.clone_ref(py)),
            )
        };
        run_callbacks(py, fut.as_any(), callbacks, loop_, direct)
    }

    fn cancelled_error(py: Python<'_>, msg: &Option<String>) -> PyErr {
        match refs(py) {
            Ok(r) => {
                let args = match msg {
                    Some(m) => PyTuple::new(py, [m.as_str()]).map(|t| t.into_any()),
                    None => Ok(PyTuple::empty(py).into_any()),
                };
                match args.and_then(|a| r.cancelled_error.bind(py).call1(a.cast_into::<PyTuple>()?))
                {
                    Ok(inst) => PyErr::from_value(inst),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        }
    }

    fn invalid_state(py: Python<'_>, msg: &str) -> PyErr {
        match refs(py).and_then(|r| r.invalid_state_error.bind(py).call1((msg,))) {
            Ok(inst) => PyErr::from_value(inst),
            Err(e) => e,
        }
    }

    /// One step of the await protocol: yield self (pending), yield None
    /// once (`sleep(0)`), return the value, or raise.
    fn step(slf: &Bound<'_, Self>) -> PyResult<Step> {
        let py = slf.py();
        let mut f = slf.try_borrow_mut()?;
        loop {
            return match &f.state {
                FutState::Done(v) => Ok(Step::Return(v.clone_ref(py))),
                FutState::Failed(e) => Err(e.clone_ref(py)),
                FutState::Cancelled(msg) => Err(Self::cancelled_error(py, msg)),
                FutState::YieldOnce => {
                    if f.loop_.is_none() {
                        f.ensure_loop(py)?;
                    }
                    f.state = FutState::Done(py.None());
                    Ok(Step::Yield(py.None()))
                }
                FutState::Pending => {
                    if f.sync_from_link(py) {
                        continue;
                    }
                    if f.loop_.is_none() {
                        f.ensure_loop(py)?;
                    }
                    f.blocking = true;
                    Ok(Step::Yield(slf.clone().into_any().unbind()))
                }
            };
        }
    }

    fn take_waiter(&mut self) -> Option<Py<FerrotickFuture>> {
        self.link
            .as_ref()
            .and_then(|l| l.state.lock().waiter.take())
    }
}

fn run_callbacks(
    py: Python<'_>,
    fut: &Bound<'_, PyAny>,
    callbacks: Vec<(Py<PyAny>, Option<Py<PyAny>>)>,
    loop_: Option<Py<PyAny>>,
    direct: bool,
) -> PyResult<()> {
    if callbacks.is_empty() {
        return Ok(());
    }
    if !direct {
        let Some(loop_) = loop_ else {
            return Ok(());
        };
        let loop_ = loop_.bind(py);
        for (cb, ctx) in callbacks {
            let kwargs = PyDict::new(py);
            if let Some(ctx) = ctx {
                kwargs.set_item("context", ctx)?;
            }
            loop_.call_method("call_soon", (cb, fut), Some(&kwargs))?;
        }
        return Ok(());
    }
    let mut iter = callbacks.into_iter();
    while let Some((cb, ctx)) = iter.next() {
        let res = match &ctx {
            Some(ctx) => ctx
                .bind(py)
                .call_method1(pyo3::intern!(py, "run"), (cb.bind(py), fut)),
            None => cb.bind(py).call1((fut,)),
        };
        if let Err(err) = res {
            if err.is_instance_of::<pyo3::exceptions::PyException>(py) {
                report_callback_error(py, fut, &cb, err, loop_.as_ref());
            } else {
                // BaseException (KeyboardInterrupt, SystemExit): schedule the
                // remaining callbacks so none is lost, then propagate.
                if let Some(l) = &loop_ {
                    let l = l.bind(py);
                    for (cb, ctx) in iter {
                        let kwargs = PyDict::new(py);
                        if let Some(ctx) = ctx {
                            let _ = kwargs.set_item("context", ctx);
                        }
                        let _ = l.call_method("call_soon", (cb, fut), Some(&kwargs));
                    }
                }
                return Err(err);
            }
        }
    }
    Ok(())
}

fn report_callback_error(
    py: Python<'_>,
    fut: &Bound<'_, PyAny>,
    cb: &Py<PyAny>,
    err: PyErr,
    loop_: Option<&Py<PyAny>>,
) {
    let ctx = PyDict::new(py);
    let _ = ctx.set_item(
        "message",
        format!(
            "Exception in callback {}",
            cb.bind(py)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default()
        ),
    );
    let _ = ctx.set_item("exception", err.value(py));
    let _ = ctx.set_item("future", fut);
    let handled = loop_
        .map(|l| {
            l.bind(py)
                .call_method1("call_exception_handler", (ctx,))
                .is_ok()
        })
        .unwrap_or(false);
    if !handled {
        err.restore(py);
        // SAFETY-free: PyErr_WriteUnraisable via PyO3.
        if let Some(e) = PyErr::take(py) {
            e.write_unraisable(py, Some(fut));
        }
    }
}

#[pymethods]
impl FerrotickFuture {
    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyAny>>> {
        match Self::step(slf)? {
            Step::Yield(v) => Ok(Some(v)),
            Step::Return(v) => Err(stop_iteration(slf.py(), v)),
        }
    }

    fn done(&mut self, py: Python<'_>) -> bool {
        self.sync_from_link(py);
        !self.is_pending()
    }

    fn cancelled(&self) -> bool {
        matches!(self.state, FutState::Cancelled(_))
    }

    fn result(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.sync_from_link(py);
        match &self.state {
            FutState::Done(v) => Ok(v.clone_ref(py)),
            FutState::Failed(e) => Err(e.clone_ref(py)),
            FutState::Cancelled(msg) => Err(Self::cancelled_error(py, msg)),
            FutState::Pending | FutState::YieldOnce => {
                Err(Self::invalid_state(py, "Result is not set."))
            }
        }
    }

    fn exception(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.sync_from_link(py);
        match &self.state {
            FutState::Done(_) => Ok(None),
            FutState::Failed(e) => Ok(Some(e.value(py).clone().into_any().unbind())),
            FutState::Cancelled(msg) => Err(Self::cancelled_error(py, msg)),
            FutState::Pending | FutState::YieldOnce => {
                Err(Self::invalid_state(py, "Exception is not set."))
            }
        }
    }

    #[pyo3(signature = (fn_, *, context = None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        fn_: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let mut f = slf.try_borrow_mut()?;
        if f.loop_.is_none() {
            f.ensure_loop(py)?;
        }
        match f.state {
            FutState::Pending => {
                let first = f.callbacks.is_empty();
                f.callbacks.push((fn_, context));
                if first {
                    if let Some(link) = f.link.clone() {
                        let finished = {
                            let mut s = link.state.lock();
                            s.waiter = Some(slf.clone().unbind());
                            s.queue = f.queue.clone();
                            s.outcome.is_some()
                        };
                        if finished {
                            // Finished before anyone waited: deliver through
                            // the loop's queue like any other completion, so
                            // that callbacks run on a later loop iteration and
                            // many of them share one wake-up.
                            let queue = f.queue.clone();
                            drop(f);
                            match queue {
                                Some(q) => q.push(link),
                                None => {
                                    let waiter = link.state.lock().waiter.take();
                                    drop(waiter);
                                    let mut f = slf.try_borrow_mut()?;
                                    f.sync_from_link(py);
                                    let cbs = std::mem::take(&mut f.callbacks);
                                    let l = f.loop_.as_ref().map(|l| l.clone_ref(py));
                                    drop(f);
                                    return run_callbacks(py, slf.as_any(), cbs, l, false);
                                }
                            }
                        }
                    }
                }
                Ok(())
            }
            FutState::YieldOnce => {
                // Someone waits on sleep(0) without driving it: complete it on
                // the next loop iteration.
                f.state = FutState::Done(py.None());
                let l = f.loop_.as_ref().map(|l| l.clone_ref(py));
                drop(f);
                run_callbacks(py, slf.as_any(), vec![(fn_, context)], l, false)
            }
            _ => {
                let l = f.loop_.as_ref().map(|l| l.clone_ref(py));
                drop(f);
                run_callbacks(py, slf.as_any(), vec![(fn_, context)], l, false)
            }
        }
    }

    fn remove_done_callback(&mut self, py: Python<'_>, fn_: Py<PyAny>) -> PyResult<usize> {
        let before = self.callbacks.len();
        let mut kept = Vec::with_capacity(before);
        for (cb, ctx) in std::mem::take(&mut self.callbacks) {
            if cb.bind(py).eq(fn_.bind(py))? {
                continue;
            }
            kept.push((cb, ctx));
        }
        let removed = before - kept.len();
        self.callbacks = kept;
        if self.callbacks.is_empty() && removed > 0 {
            // Nobody waits any more: release the strong self-reference.
            drop(self.take_waiter());
        }
        Ok(removed)
    }

    #[pyo3(signature = (msg = None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<Py<PyAny>>) -> PyResult<bool> {
        let py = slf.py();
        let mut f = slf.borrow_mut();
        f.sync_from_link(py);
        if !f.is_pending() {
            return Ok(false);
        }
        let msg = match msg {
            Some(m) if !m.is_none(py) => Some(m.bind(py).str()?.to_string()),
            _ => None,
        };
        f.state = FutState::Cancelled(msg);
        if let Some(link) = &f.link {
            link.cancelled.store(true, Ordering::Release);
        }
        if let Some(a) = f.abort.take() {
            if f.generation == super::fork_generation() {
                a.abort();
            } else {
                std::mem::forget(a);
            }
        }
        f.uncount();
        let waiter = f.take_waiter();
        let cbs = std::mem::take(&mut f.callbacks);
        let l = f.loop_.as_ref().map(|l| l.clone_ref(py));
        drop(f);
        drop(waiter);
        run_callbacks(py, slf.as_any(), cbs, l, false)?;
        Ok(true)
    }

    /// Used by asyncio.gather/Task for cancelled children (3.11+).
    fn _make_cancelled_error(&self, py: Python<'_>) -> Py<PyAny> {
        let msg = match &self.state {
            FutState::Cancelled(m) => m.clone(),
            _ => None,
        };
        Self::cancelled_error(py, &msg)
            .value(py)
            .clone()
            .into_any()
            .unbind()
    }

    #[getter]
    fn _cancel_message(&self) -> Option<String> {
        match &self.state {
            FutState::Cancelled(m) => m.clone(),
            _ => None,
        }
    }

    #[setter(_cancel_message)]
    fn set_cancel_message(&mut self, msg: Option<String>) {
        if let FutState::Cancelled(m) = &mut self.state {
            *m = msg;
        }
    }

    /// asyncio clears this after an exception was retrieved; nothing to log here.
    #[getter]
    fn _log_traceback(&self) -> bool {
        false
    }

    #[setter(_log_traceback)]
    fn set_log_traceback(&mut self, _v: bool) {}

    fn get_loop(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.ensure_loop(py)?;
        match &self.loop_ {
            Some(l) => Ok(l.clone_ref(py)),
            None => Err(PyRuntimeError::new_err(
                "future is not bound to an event loop",
            )),
        }
    }

    // The future is part of reference cycles (task -> future -> callbacks
    // -> task): let Python's collector see what it holds.
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Some(l) = &self.loop_ {
            visit.call(l)?;
        }
        for (cb, ctx) in &self.callbacks {
            visit.call(cb)?;
            if let Some(c) = ctx {
                visit.call(c)?;
            }
        }
        if let FutState::Done(v) = &self.state {
            visit.call(v)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.callbacks.clear();
        self.loop_ = None;
        if matches!(self.state, FutState::Done(_)) {
            self.state = FutState::Cancelled(None);
        }
    }

    fn __repr__(&mut self, py: Python<'_>) -> String {
        self.sync_from_link(py);
        match &self.state {
            FutState::Pending | FutState::YieldOnce => "<FerrotickFuture pending>".to_string(),
            FutState::Done(v) => {
                let r = v.bind(py).repr().map(|r| r.to_string()).unwrap_or_default();
                let r: String = r.chars().take(80).collect();
                format!("<FerrotickFuture finished result={r}>")
            }
            FutState::Failed(e) => {
                let r = e
                    .value(py)
                    .repr()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                format!("<FerrotickFuture finished exception={r}>")
            }
            FutState::Cancelled(_) => "<FerrotickFuture cancelled>".to_string(),
        }
    }
}

impl Drop for FerrotickFuture {
    fn drop(&mut self) {
        // A pending future nobody can await any more: stop its work. In a
        // forked child the task belongs to the parent's abandoned runtime,
        // whose locks must not be touched.
        if let Some(a) = self.abort.take() {
            if self.generation == super::fork_generation() {
                a.abort();
            } else {
                std::mem::forget(a);
            }
        }
        if self.generation == super::fork_generation() {
            self.uncount();
        } else if let Some(q) = self.queue.take() {
            std::mem::forget(q);
        }
    }
}

fn stop_iteration(py: Python<'_>, value: Py<PyAny>) -> PyErr {
    // A tuple or an exception instance would be taken apart by
    // StopIteration's constructor: wrap those in a 1-tuple. Any other value
    // is passed as is, which lets CPython skip building the exception.
    let b = value.bind(py);
    if b.is_instance_of::<PyTuple>() || b.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        match PyTuple::new(py, [b]) {
            Ok(t) => PyStopIteration::new_err(t.unbind()),
            Err(e) => e,
        }
    } else {
        PyStopIteration::new_err(value)
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
    let handle = match super::handle() {
        Ok(h) => h,
        Err(_) if super::is_finalizing() => {
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
                    super::panic_message(p)
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

// ---------------------------------------------------------------------------
// Native await slots
// ---------------------------------------------------------------------------

/// `am_await`: the future is its own iterator.
unsafe extern "C" fn am_await(slf: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls this slot with a valid, borrowed `slf` while
    // the caller holds the GIL; returning a new reference to it is the
    // slot's contract.
    unsafe {
        pyo3::ffi::Py_INCREF(slf);
    }
    slf
}

/// `am_send`: lets `await` get the result as a return value (PYGEN_RETURN)
/// instead of through a StopIteration exception.
unsafe extern "C" fn am_send(
    slf: *mut pyo3::ffi::PyObject,
    _arg: *mut pyo3::ffi::PyObject,
    result: *mut *mut pyo3::ffi::PyObject,
) -> pyo3::ffi::PySendResult {
    use pyo3::ffi::PySendResult;
    // SAFETY: CPython calls am_send with the GIL held, `slf` a valid borrowed
    // reference to an instance of the type the slot was installed on
    // (FerrotickFuture, which cannot be subclassed) and `result` a valid
    // out-pointer. We write a new reference (or NULL with an exception set)
    // into `result` as the slot's contract requires, and no panic crosses
    // the FFI boundary.
    unsafe {
        let py = Python::assume_attached();
        let obj = Bound::from_borrowed_ptr(py, slf);
        let fut = obj.cast_unchecked::<FerrotickFuture>();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| FerrotickFuture::step(fut)));
        match outcome {
            Ok(Ok(Step::Return(v))) => {
                *result = v.into_ptr();
                PySendResult::PYGEN_RETURN
            }
            Ok(Ok(Step::Yield(v))) => {
                *result = v.into_ptr();
                PySendResult::PYGEN_NEXT
            }
            Ok(Err(e)) => {
                e.restore(py);
                *result = std::ptr::null_mut();
                PySendResult::PYGEN_ERROR
            }
            Err(p) => {
                PyRuntimeError::new_err(format!(
                    "internal error in ferrotick's await: {}",
                    super::panic_message(p)
                ))
                .restore(py);
                *result = std::ptr::null_mut();
                PySendResult::PYGEN_ERROR
            }
        }
    }
}

/// Installs the native `am_await`/`am_send` slots on the future type.
pub fn install_await_slots(py: Python<'_>) -> PyResult<()> {
    use pyo3::PyTypeInfo;
    let tp = FerrotickFuture::type_object(py);
    let raw = tp.as_type_ptr();
    // SAFETY: FerrotickFuture is a heap type created by PyO3 with an
    // `__await__` method, so `tp_as_async` points at the PyAsyncMethods
    // stored inside its own PyHeapTypeObject, which lives as long as the
    // type. We fill two slots of that struct once, at module initialisation
    // with the GIL held, before any instance exists, and then tell CPython
    // the type changed. Both functions follow the slots' contracts.
    unsafe {
        let am = (*raw).tp_as_async;
        if am.is_null() {
            return Err(PyRuntimeError::new_err(
                "FerrotickFuture has no async slots (PyO3 layout changed)",
            ));
        }
        (*am).am_await = Some(am_await);
        (*am).am_send = Some(am_send);
        pyo3::ffi::PyType_Modified(raw);
    }
    Ok(())
}
