//! Native await slots: `await` on a `FerrotickFuture` goes through the
//! type's `am_send` slot, with no exception object for a ready result.

use super::*;

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
                    crate::runtime::panic_message(p)
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
