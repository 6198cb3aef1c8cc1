//! `FerrotickFuture`: the future-like Python object, its state machine and
//! its done callbacks.

use super::*;

pub(super) enum Step {
    Yield(Py<PyAny>),
    Return(Py<PyAny>),
}

pub(super) enum FutState {
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
    pub(super) state: FutState,
    pub(super) loop_: Option<Py<PyAny>>,
    pub(super) queue: Option<Arc<LoopQueue>>,
    pub(super) link: Option<Arc<Link>>,
    pub(super) abort: Option<AbortHandle>,
    pub(super) callbacks: Vec<(Py<PyAny>, Option<Py<PyAny>>)>,
    #[pyo3(get, set, name = "_asyncio_future_blocking")]
    pub(super) blocking: bool,
    pub(super) counted: bool,
    /// Fork generation of the tokio task behind `abort`.
    pub(super) generation: u64,
}

impl FerrotickFuture {
    pub(super) fn new_state(state: FutState) -> Self {
        FerrotickFuture {
            state,
            loop_: None,
            queue: None,
            link: None,
            abort: None,
            callbacks: Vec::new(),
            blocking: false,
            counted: false,
            generation: crate::runtime::fork_generation(),
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
    pub(super) fn bind_loop(&mut self, py: Python<'_>, loop_: &Bound<'_, PyAny>) -> PyResult<()> {
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
    pub(super) fn complete(
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
    pub(super) fn step(slf: &Bound<'_, Self>) -> PyResult<Step> {
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
            if f.generation == crate::runtime::fork_generation() {
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
            if self.generation == crate::runtime::fork_generation() {
                a.abort();
            } else {
                std::mem::forget(a);
            }
        }
        if self.generation == crate::runtime::fork_generation() {
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
