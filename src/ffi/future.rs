//! `tornado_future_*`: reference-counted futures whose values are C pointers
//! with drop functions.

use std::ffi::{c_char, c_void};
use std::mem::ManuallyDrop;
use std::rc::Rc;

use super::loop_api::{loop_ref, tornado_loop};
use super::types::{tornado_drop_fn, UserData};
use super::{non_null, tornado_code, TORNADO_OK};
use crate::error::{Code, Error, Result};
use crate::future::{Future, FutureCell};
use crate::ioloop::LoopRef;

/// A future (Tornado's `Future`), reference counted. Made by
/// `tornado_future_new` and the calls that return one; each reference is
/// released with `tornado_future_unref`.
pub struct tornado_future {
    _opaque: [u8; 0],
}

/// A C future's value: the caller's pointer, released with its drop function
/// when the last reference to the future goes. `keep_alive` holds the future
/// a borrowed value came from (`tornado_with_timeout`).
pub(crate) struct CValue {
    data: UserData,
    _keep_alive: Option<CFuture>,
}

impl CValue {
    pub fn null() -> CValue {
        CValue::owned(std::ptr::null_mut(), None)
    }

    pub fn owned(ptr: *mut c_void, drop: tornado_drop_fn) -> CValue {
        CValue {
            data: UserData::new(ptr, drop),
            _keep_alive: None,
        }
    }

    /// The value of `source`, borrowed: valid while `source` lives, which
    /// this value keeps alive.
    pub fn borrowed_from(source: &CFuture) -> Result<CValue> {
        source.with_outcome(|outcome| match outcome {
            Some(Ok(value)) => Ok(CValue {
                data: UserData::new(value.ptr(), None),
                _keep_alive: Some(source.clone()),
            }),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Error::new(Code::NOT_DONE, "the future is not done")),
        })
    }

    pub fn ptr(&self) -> *mut c_void {
        self.data.ptr()
    }

    fn disarm(self) {
        self.data.disarm();
    }
}

pub(crate) type CFuture = Future<CValue>;

/// Hands a future to C with one reference.
pub(crate) fn into_raw(future: CFuture) -> *mut tornado_future {
    Rc::into_raw(future.cell) as *mut tornado_future
}

/// The C pointer of a future, without changing its count.
pub(crate) fn as_raw(future: &CFuture) -> *mut tornado_future {
    Rc::as_ptr(&future.cell) as *mut tornado_future
}

/// Takes over one reference owned by C.
///
/// # Safety
/// `ptr` must come from `into_raw` and own a reference that the caller gives up.
pub(crate) unsafe fn from_raw(ptr: *mut tornado_future) -> Result<CFuture> {
    non_null(ptr, "future")?;
    // SAFETY: per the contract, `ptr` came from `Rc::into_raw` of a
    // `FutureCell<CValue>` and carries one reference that moves to us.
    let cell = unsafe { Rc::from_raw(ptr as *const FutureCell<CValue>) };
    Ok(Future { cell })
}

/// Borrows a future for the duration of a call, checking the thread.
///
/// # Safety
/// `ptr` must be NULL or a live future (at least one reference held).
pub(crate) unsafe fn borrow(ptr: *const tornado_future) -> Result<ManuallyDrop<CFuture>> {
    non_null(ptr, "future")?;
    // SAFETY: `ptr` is a live `Rc<FutureCell<CValue>>`; ManuallyDrop keeps the
    // count unchanged when the borrow ends.
    let future = ManuallyDrop::new(Future {
        cell: unsafe { Rc::from_raw(ptr as *const FutureCell<CValue>) },
    });
    future.loop_ref().check_thread()?;
    Ok(future)
}

/// Refuses (`TORNADO_ERR_INVALID`) a future bound to another loop than
/// `lp`: its done callbacks run on its own loop, so a call that waits on it
/// from `lp` (run_sync, multi, with_timeout, a coroutine's yield) would
/// depend on another loop being run.
pub(crate) fn check_same_loop(lp: &LoopRef, future: &CFuture) -> Result<()> {
    if future.loop_ref().same_loop(lp) {
        Ok(())
    } else {
        Err(Error::invalid("the future belongs to another loop"))
    }
}

/// A new pending future bound to `loop`, with one reference for the caller.
/// NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_future_new(r#loop: *mut tornado_loop) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        if lp.is_closed() {
            return Err(Error::closed());
        }
        Ok(into_raw(Future::new(lp)))
    })
}

/// Adds a reference and returns `future` (NULL on failure: NULL argument or
/// wrong thread).
#[no_mangle]
pub extern "C" fn tornado_future_ref(future: *mut tornado_future) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live future or NULL.
        let borrowed = unsafe { borrow(future) }?;
        std::mem::forget(Future::clone(&borrowed));
        Ok(future)
    })
}

/// Releases a reference; the future (and its value, through its drop
/// function) is freed when the last one goes. NULL is a no-op. From a thread
/// other than the loop's it does nothing but log an error (the reference leaks).
#[no_mangle]
pub extern "C" fn tornado_future_unref(future: *mut tornado_future) {
    if future.is_null() {
        return;
    }
    entry!((), || {
        // SAFETY: caller passes a live future holding the reference it gives up.
        let borrowed = unsafe { borrow(future) };
        if let Err(e) = borrowed {
            crate::log::error(&format!("tornado_future_unref: {e}; the reference leaks"));
            return Err(e);
        }
        // SAFETY: the caller gives up one reference, which we drop.
        drop(unsafe { from_raw(future) }?);
        Ok(())
    })
}

/// True when the future has a result, an error or was cancelled. False for
/// NULL or a wrong-thread call.
#[no_mangle]
pub extern "C" fn tornado_future_done(future: *const tornado_future) -> bool {
    // SAFETY: caller passes a live future or NULL.
    entry!(false, || Ok(unsafe { borrow(future) }?.done()))
}

/// Completes the future with `value`, which it owns from now on: `drop(value)`
/// (may be NULL) runs when the last reference goes. Done callbacks are
/// scheduled on the loop, in registration order. `TORNADO_ERR_ALREADY_DONE`
/// if it is done: then `value` stays the caller's.
#[no_mangle]
pub extern "C" fn tornado_future_set_result(
    future: *mut tornado_future,
    value: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        let value = CValue::owned(value, drop);
        if future.done() {
            value.disarm();
            return Err(Error::new(Code::ALREADY_DONE, "the future is already done"));
        }
        future.set_result(value)
    })
}

/// Completes the future with an error: `code` is any non-zero code (codes
/// from `TORNADO_ERR_USER` up are free for applications); `message` (UTF-8,
/// may be NULL) is copied. `TORNADO_ERR_ALREADY_DONE` if it is done.
#[no_mangle]
pub extern "C" fn tornado_future_set_error(
    future: *mut tornado_future,
    code: tornado_code,
    message: *const c_char,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        let error = error_from_c(code, message)?;
        future.set_error(error)
    })
}

/// An error from a C code and optional message.
pub(crate) fn error_from_c(code: tornado_code, message: *const c_char) -> Result<Error> {
    if code == TORNADO_OK {
        return Err(Error::invalid("an error code must not be TORNADO_OK"));
    }
    let text = if message.is_null() {
        Code(code).name().to_string()
    } else {
        // SAFETY: non-NULL; the caller passes a NUL-terminated string.
        unsafe { super::c_str(message, "message") }?.to_string()
    };
    Ok(Error::new(Code(code), text))
}

/// Cancels a pending future: it completes with `TORNADO_ERR_CANCELLED`.
/// `TORNADO_ERR_ALREADY_DONE` if it is done.
#[no_mangle]
pub extern "C" fn tornado_future_cancel(future: *mut tornado_future) -> tornado_code {
    // SAFETY: caller passes a live future or NULL.
    entry!(code, || unsafe { borrow(future) }?.cancel())
}

/// The value set by `tornado_future_set_result`, borrowed: valid while the
/// future lives. NULL unless the future is done with a value (and for a NULL
/// or wrong-thread argument).
#[no_mangle]
pub extern "C" fn tornado_future_result(future: *const tornado_future) -> *mut c_void {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        Ok(future.with_outcome(|o| match o {
            Some(Ok(value)) => value.ptr(),
            _ => std::ptr::null_mut(),
        }))
    })
}

/// The operating system's error number behind a failed future's error (as
/// ECONNREFUSED for a fetch whose connect was refused), so a binding can
/// raise its native error; 0 when it has none, is pending, succeeded, or
/// on a bad argument.
#[no_mangle]
pub extern "C" fn tornado_future_os_error(future: *const tornado_future) -> std::ffi::c_int {
    entry!(0, || {
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        Ok(future.with_outcome(|o| match o {
            Some(Err(e)) => e.os_error().unwrap_or(0),
            _ => 0,
        }))
    })
}

/// The future's outcome: `TORNADO_OK` when it succeeded, its error code when
/// it failed (`TORNADO_ERR_CANCELLED` if cancelled), `TORNADO_ERR_NOT_DONE`
/// while pending. If `message` is not NULL it receives the error message
/// (owned by the future, valid while it lives), or NULL on success.
#[no_mangle]
pub extern "C" fn tornado_future_error(
    future: *const tornado_future,
    message: *mut *const c_char,
) -> tornado_code {
    let mut text: *const c_char = std::ptr::null();
    let code = entry!(code, || {
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        future.with_outcome(|o| match o {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => {
                text = e.message_cstr().as_ptr();
                Err(e.clone())
            }
            None => {
                text = c"the future is not done".as_ptr();
                Err(Error::new(Code::NOT_DONE, "the future is not done"))
            }
        })
    });
    if !message.is_null() {
        // SAFETY: the caller passes a writable `const char *` slot or NULL.
        unsafe { *message = text };
    }
    code
}

/// Called once the future is done, with the future borrowed for the call.
pub type tornado_future_callback =
    Option<unsafe extern "C" fn(future: *mut tornado_future, userdata: *mut c_void)>;

/// Calls `cb(future, userdata)` from the loop once the future is done — on
/// the next iteration if it already is, never inside this call — exactly
/// once, in registration order with the other done callbacks. If the loop is
/// freed first it is dropped uncalled. `userdata` stays the caller's (see
/// `tornado_future_add_done_callback_full` to have it released).
#[no_mangle]
pub extern "C" fn tornado_future_add_done_callback(
    future: *mut tornado_future,
    cb: tornado_future_callback,
    userdata: *mut c_void,
) -> tornado_code {
    tornado_future_add_done_callback_full(future, cb, userdata, None)
}

/// As `tornado_future_add_done_callback`, and the library owns `userdata`
/// from a successful call on: `drop_userdata(userdata)` (may be NULL) is
/// called exactly once, on the loop's thread — right after `cb` returns, or,
/// when `cb` never runs, when the callback is released: the future freed
/// while pending (its last reference released), or the loop freed first.
/// On an error code neither `cb` nor `drop_userdata` is called: `userdata`
/// stays the caller's.
#[no_mangle]
pub extern "C" fn tornado_future_add_done_callback_full(
    future: *mut tornado_future,
    cb: tornado_future_callback,
    userdata: *mut c_void,
    drop_userdata: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        let cb = cb.ok_or_else(|| Error::invalid("callback is NULL"))?;
        if future.loop_ref().is_closed() {
            // Checked before `userdata` is taken: the registration below
            // fails only for a closed loop, and drops what it was given.
            return Err(Error::closed());
        }
        let data = UserData::new(userdata, drop_userdata);
        future.add_done_callback(move |done| {
            // SAFETY: the caller registered `cb` for this userdata; the future
            // is kept alive by `done` for the duration of the call. `data`
            // (and its drop function) goes when this closure returns.
            unsafe { cb(as_raw(&done), data.ptr()) };
        })
    })
}
