//! Bench-only comparison module (`ferrotick._core._bench`, built with the
//! `bench` cargo feature). Not part of the public API.
//!
//! `pending_noop()` returns an awaitable whose Rust future is really pending
//! at its first poll and is completed by another tokio task (the completer),
//! with no spin-waiting. `pending_noop_pyo3()` awaits the same future through
//! pyo3-async-runtimes' `future_into_py`, the baseline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use pyo3::prelude::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::bridge::{self, Converter, FerrotickFuture};

#[derive(Default)]
struct Shared {
    done: bool,
    waker: Option<Waker>,
}

type Completer = UnboundedSender<Arc<Mutex<Shared>>>;

static COMPLETER: Mutex<Option<(u64, Completer)>> = Mutex::new(None);

fn completer() -> PyResult<Completer> {
    let gen = super::fork_generation();
    let mut g = COMPLETER.lock();
    if let Some((g0, tx)) = g.as_ref() {
        if *g0 == gen && !tx.is_closed() {
            return Ok(tx.clone());
        }
    }
    let handle = super::handle()?;
    let (tx, mut rx) = unbounded_channel::<Arc<Mutex<Shared>>>();
    handle.spawn(async move {
        while let Some(shared) = rx.recv().await {
            let w = {
                let mut s = shared.lock();
                s.done = true;
                s.waker.take()
            };
            if let Some(w) = w {
                w.wake();
            }
        }
    });
    *g = Some((gen, tx.clone()));
    Ok(tx)
}

/// Pending at its first poll; completed by the completer task afterwards.
struct PendingNoop {
    tx: Completer,
    shared: Option<Arc<Mutex<Shared>>>,
}

impl Future for PendingNoop {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.shared {
            None => {
                let shared = Arc::new(Mutex::new(Shared {
                    done: false,
                    waker: Some(cx.waker().clone()),
                }));
                let _ = self.tx.send(shared.clone());
                self.shared = Some(shared);
                Poll::Pending
            }
            Some(shared) => {
                let mut s = shared.lock();
                if s.done {
                    Poll::Ready(())
                } else {
                    s.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}

#[pyfunction]
fn pending_noop(py: Python<'_>) -> PyResult<Bound<'_, FerrotickFuture>> {
    let tx = completer()?;
    bridge::spawn(py, async move {
        PendingNoop { tx, shared: None }.await;
        Ok(Box::new(|py: Python<'_>| Ok(py.None())) as Converter)
    })
}

#[pyfunction]
fn pending_noop_pyo3(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let tx = completer()?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        PendingNoop { tx, shared: None }.await;
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let sub = PyModule::new(m.py(), "_bench")?;
    sub.add_function(wrap_pyfunction!(pending_noop, &sub)?)?;
    sub.add_function(wrap_pyfunction!(pending_noop_pyo3, &sub)?)?;
    m.add_submodule(&sub)?;
    Ok(())
}
