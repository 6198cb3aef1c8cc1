//! Completion queues, one per event loop: tokio tasks push finished links
//! without the GIL; the loop drains a batch per wake-up.

use super::*;

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
    pub(super) closed: Notify,
    pub(super) loop_id: usize,
    pub(super) loop_ref: Py<PyAny>,
    /// Fork generation the queue was made in; a forked child never touches
    /// the locks of a queue inherited from its parent.
    pub(super) generation: u64,
    pub(super) pending: AtomicUsize,
    pub(super) completions: AtomicU64,
    pub(super) wakeups: AtomicU64,
}

/// Makes the loop's selector see its eventfd readable. Called with the
/// queue's lock held and the queue alive: the eventfd is closed only under
/// that lock after `alive` is cleared, so `fd` is open.
fn signal(fd: libc::c_int) {
    let one: u64 = 1;
    // SAFETY: `fd` is this queue's open eventfd (see above); the buffer is a
    // valid 8-byte u64 as eventfd requires.
    unsafe {
        libc::write(fd, (&one as *const u64).cast(), 8);
    }
}

impl LoopQueue {
    pub(super) fn is_alive(&self) -> bool {
        self.inner.lock().alive
    }

    /// Called from any thread (a tokio worker) without the GIL.
    pub(super) fn push(&self, link: Arc<Link>) {
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
                    Some(Wake::Fd(fd)) => signal(*fd),
                    Some(Wake::Threadsafe { .. }) => {
                        // Needs the GIL: done below, after the lock is released.
                        threadsafe = true;
                    }
                    None => {}
                }
            }
        }
        if threadsafe && !crate::runtime::is_finalizing() {
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
    pub(super) fn detach(&self) {
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
    pub(super) fn drain(&self, py: Python<'_>) -> PyResult<()> {
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
                            signal(*fd);
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
        if self.queue.generation != crate::runtime::fork_generation() {
            return Ok(());
        }
        self.queue.drain(py)
    }
}

impl Drop for LoopWaker {
    fn drop(&mut self) {
        if self.queue.generation == crate::runtime::fork_generation() {
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
        generation: crate::runtime::fork_generation(),
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
