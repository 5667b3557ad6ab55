//! `tornado_loop_*`: the IOLoop through the C ABI.

use std::ffi::{c_int, c_void};

use super::future::{borrow, check_same_loop, tornado_future};
use super::types::{
    c_callback, tornado_callback, tornado_drop_fn, tornado_fd_callback, CCall, CFdCall, UserData,
};
use super::{non_null, seconds, tornado_code, TORNADO_OK};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::ioloop::{Callback, Handler, IOLoop, LoopRef, TimeoutId};

/// Readable (`EPOLLIN`).
pub const TORNADO_READ: u32 = 0x001;
/// Writable (`EPOLLOUT`).
pub const TORNADO_WRITE: u32 = 0x004;
/// Error or hang-up (`EPOLLERR | EPOLLHUP`); always reported, asked for or not.
pub const TORNADO_ERROR: u32 = 0x008;

/// An event loop (Tornado's `IOLoop`). Made by `tornado_loop_new`, released by
/// `tornado_loop_free`. It belongs to the thread that created it.
pub struct tornado_loop {
    lp: IOLoop,
}

/// Borrows the loop behind a C pointer.
///
/// # Safety
/// `ptr` must be NULL or a loop from `tornado_loop_new` not yet freed.
pub(crate) unsafe fn loop_ref<'a>(ptr: *const tornado_loop) -> Result<&'a LoopRef> {
    non_null(ptr, "loop")?;
    // SAFETY: non-NULL and, per the contract, a live loop. Only thread-safe
    // parts are touched before the owner-thread checks inside `LoopRef`.
    Ok(unsafe { &(*ptr).lp })
}

fn callback_fn(cb: tornado_callback) -> Result<unsafe extern "C" fn(*mut c_void)> {
    cb.ok_or_else(|| Error::invalid("callback is NULL"))
}

/// Creates a loop owned by the calling thread, which must be the thread that
/// runs it. Returns NULL on failure (see `tornado_last_error`). Release it
/// with `tornado_loop_free`.
#[no_mangle]
pub extern "C" fn tornado_loop_new() -> *mut tornado_loop {
    entry!(std::ptr::null_mut(), || {
        let lp = IOLoop::new()?;
        Ok(Box::into_raw(Box::new(tornado_loop { lp })))
    })
}

/// Frees a loop. Pending callbacks, timeouts, fd handlers and coroutines are
/// released without being called; the drop functions of `_full`
/// registrations run, once each, before this returns. fds registered with
/// `tornado_loop_add_handler` are not closed (they belong to the caller).
/// Futures and periodic callbacks of this loop stay valid objects until
/// released, but any further registration on them fails with
/// `TORNADO_ERR_CLOSED`. A future still pending stays pending (a
/// coroutine's result future never completes); completing it with
/// `tornado_future_set_result`/`_set_error` still works (`TORNADO_OK`, no
/// callback runs). Returns `TORNADO_ERR_RUNNING` (and frees nothing)
/// when called from inside the running loop; `TORNADO_ERR_WRONG_THREAD` from
/// another thread. NULL is `TORNADO_ERR_INVALID`. No other thread may use the
/// pointer once this returns `TORNADO_OK`.
#[no_mangle]
pub extern "C" fn tornado_loop_free(r#loop: *mut tornado_loop) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        // SAFETY: the pointer came from `Box::into_raw` in `tornado_loop_new`.
        let owned = unsafe { &*r#loop };
        owned.lp.close()?;
        // SAFETY: closed successfully on the owner thread; reclaim the box once.
        drop(unsafe { Box::from_raw(r#loop) });
        Ok(())
    })
}

/// Runs the loop until `tornado_loop_stop`. A stop requested before start
/// makes start run one non-blocking iteration and return (Tornado's rule).
/// `TORNADO_ERR_RUNNING` if the loop is already running.
#[no_mangle]
pub extern "C" fn tornado_loop_start(r#loop: *mut tornado_loop) -> tornado_code {
    // SAFETY: caller passes a live loop or NULL.
    entry!(code, || unsafe { loop_ref(r#loop) }?.start())
}

/// Makes `tornado_loop_start` return after the current iteration. Any thread
/// may call this; it wakes a sleeping loop.
#[no_mangle]
pub extern "C" fn tornado_loop_stop(r#loop: *mut tornado_loop) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live loop or NULL; `stop` is thread-safe.
        unsafe { loop_ref(r#loop) }?.thread_safe_stop();
        Ok(())
    })
}

/// Runs one iteration, waiting at most `max_wait_s` seconds for I/O or a
/// timer (0: do not block; INFINITY: until something happens). For hosts that
/// drive the loop from their own poller (see `tornado_loop_backend_fd`).
#[no_mangle]
pub extern "C" fn tornado_loop_run_once(
    r#loop: *mut tornado_loop,
    max_wait_s: f64,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        let wait = if max_wait_s == f64::INFINITY {
            None
        } else {
            Some(seconds(max_wait_s, "max_wait_s")?)
        };
        lp.run_once(wait)
    })
}

/// Runs the loop until `future` is done, or `timeout_s` seconds pass (0: no
/// limit). Returns `TORNADO_OK` if the future succeeded, its error code if it
/// failed, `TORNADO_ERR_TIMEOUT` if the time ran out first, and
/// `TORNADO_ERR_NOT_DONE` if `tornado_loop_stop` ended the run first.
/// `TORNADO_ERR_RUNNING` when called from inside the running loop,
/// `TORNADO_ERR_INVALID` for a future of another loop. The caller's
/// reference to `future` is not consumed.
#[no_mangle]
pub extern "C" fn tornado_loop_run_sync(
    r#loop: *mut tornado_loop,
    future: *mut tornado_future,
    timeout_s: f64,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        // SAFETY: caller passes a live future or NULL.
        let future = unsafe { borrow(future) }?;
        check_same_loop(lp, &future)?;
        let limit = crate::gen::limit_of(Some(seconds(timeout_s, "timeout_s")?));
        let watched = Future::clone(&future);
        lp.run_until(move || watched.done(), limit)?;
        match future.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// A pollable fd (the epoll fd): readable when I/O is ready or the loop was
/// woken (a callback queued from another thread, or a registration made
/// between iterations that moved the next due time earlier). Owned by the
/// loop: never close it. -1 for NULL or a freed loop's pointer.
#[no_mangle]
pub extern "C" fn tornado_loop_backend_fd(r#loop: *const tornado_loop) -> c_int {
    // SAFETY: caller passes a live loop or NULL.
    entry!(-1, || Ok(unsafe { loop_ref(r#loop) }?.backend_fd()))
}

/// Seconds until the next timer or callback is due: 0 when something is due
/// now, -1 when nothing is scheduled (and also for NULL or a wrong-thread
/// call, with `tornado_last_error` set).
#[no_mangle]
pub extern "C" fn tornado_loop_backend_timeout(r#loop: *const tornado_loop) -> f64 {
    entry!(-1.0, || {
        // SAFETY: caller passes a live loop or NULL.
        Ok(unsafe { loop_ref(r#loop) }?
            .backend_timeout()?
            .unwrap_or(-1.0))
    })
}

/// Monotonic time in seconds (`CLOCK_MONOTONIC`), the clock of
/// `tornado_loop_call_at`. -1 for NULL.
#[no_mangle]
pub extern "C" fn tornado_loop_time(r#loop: *const tornado_loop) -> f64 {
    // SAFETY: caller passes a live loop or NULL.
    entry!(-1.0, || Ok(unsafe { loop_ref(r#loop) }?.time()))
}

/// Calls `cb(userdata)` on the next iteration, exactly once (unless the loop
/// is freed first: then it is dropped uncalled). Callbacks run in the order
/// they were added; one added while callbacks run waits for the next
/// iteration. Any thread may call this; from another thread it wakes the
/// loop. `userdata` stays the caller's; see `tornado_loop_add_callback_full`
/// to learn when the library is done with it.
#[no_mangle]
pub extern "C" fn tornado_loop_add_callback(
    r#loop: *mut tornado_loop,
    cb: tornado_callback,
    userdata: *mut c_void,
) -> tornado_code {
    // The fast path stays outside the guard: nothing in it can panic (NULL
    // checks, a thread compare, a borrow that is tried, a push into a queue
    // with room), and inside catch_unwind it cost W1 (a callback chain)
    // 13 % more instructions. Everything else goes through `entry!`.
    if queue_fast(r#loop, cb, userdata) {
        return TORNADO_OK;
    }
    add_callback_guarded(r#loop, cb, userdata)
}

/// The rest of `tornado_loop_add_callback`, out of line so the fast path
/// above needs no stack frame.
#[cold]
#[inline(never)]
fn add_callback_guarded(
    r#loop: *mut tornado_loop,
    cb: tornado_callback,
    userdata: *mut c_void,
) -> tornado_code {
    entry!(code, || add_callback(r#loop, cb, userdata, None))
}

/// The hot path of a callback chain, taken outside the panic guard because
/// nothing in it can panic: NULL checks, a thread compare, a borrow that is
/// tried, a push into a queue with room (no allocation). Whatever it does
/// not take (another thread, an error to report, a full queue, a loop that
/// is not running) goes to the guarded path, which sees the same arguments.
#[inline(always)]
fn queue_fast(r#loop: *mut tornado_loop, cb: tornado_callback, userdata: *mut c_void) -> bool {
    let Some(cb) = cb else { return false };
    // SAFETY: caller passes a live loop or NULL; only its (thread-checked)
    // owner state is touched.
    let Some(handle) = (unsafe { r#loop.as_ref() }) else {
        return false;
    };
    handle.lp.try_queue_running(CCall::new(cb, userdata))
}

/// As `tornado_loop_add_callback`; `drop(userdata)` (may be NULL) runs once on
/// the loop thread after `cb` returned, or when the loop is freed before it
/// ran. On failure neither `cb` nor `drop` is ever called. Any thread.
#[no_mangle]
pub extern "C" fn tornado_loop_add_callback_full(
    r#loop: *mut tornado_loop,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || add_callback(r#loop, cb, userdata, drop))
}

/// The body of both `add_callback` entry points (the hot path of a callback
/// chain, so inlined into each).
#[inline(always)]
fn add_callback(
    r#loop: *mut tornado_loop,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> Result<()> {
    {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        let callback = c_callback(callback_fn(cb)?, userdata, drop);
        if let Some(on) = lp.try_owner_token() {
            lp.queue_on(on, callback).map_err(|(e, cb)| {
                cb.disarm();
                e
            })
        } else {
            let remote = callback
                .into_remote()
                .expect("a C callback has a remote form");
            lp.thread_safe_push(remote).map_err(|(e, cb)| {
                Callback::from(cb).disarm();
                e
            })
        }
    }
}

fn schedule(
    r#loop: *mut tornado_loop,
    when_ns: impl FnOnce(&LoopRef) -> Result<u64>,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> Result<u64> {
    // SAFETY: caller passes a live loop or NULL.
    let lp = unsafe { loop_ref(r#loop) }?;
    lp.check_thread()?;
    let when = when_ns(lp)?;
    lp.schedule_at_ns(when, c_callback(callback_fn(cb)?, userdata, drop))
        .map(TimeoutId::to_raw)
        .map_err(|(e, cb)| {
            cb.disarm();
            e
        })
}

/// Calls `cb(userdata)` once, `delay_s` seconds from now (finite, >= 0).
/// Timeouts due at the same time run in the order they were scheduled.
/// Returns an id for `tornado_loop_remove_timeout`, or 0 on failure.
/// `userdata` stays the caller's (see `_full`).
#[no_mangle]
pub extern "C" fn tornado_loop_call_later(
    r#loop: *mut tornado_loop,
    delay_s: f64,
    cb: tornado_callback,
    userdata: *mut c_void,
) -> u64 {
    tornado_loop_call_later_full(r#loop, delay_s, cb, userdata, None)
}

/// As `tornado_loop_call_later`; `drop(userdata)` (may be NULL) runs once on
/// the loop thread after `cb` returned, after the timeout was removed, or
/// when the loop is freed. On failure (0) nothing is ever called.
#[no_mangle]
pub extern "C" fn tornado_loop_call_later_full(
    r#loop: *mut tornado_loop,
    delay_s: f64,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> u64 {
    entry!(0, || {
        let delay = |_: &LoopRef| -> Result<u64> {
            let delay = seconds(delay_s, "delay_s")?;
            Ok(crate::util::monotonic_ns()
                .saturating_add(delay.as_nanos().min(u64::MAX as u128) as u64))
        };
        schedule(r#loop, delay, cb, userdata, drop)
    })
}

/// Calls `cb(userdata)` once at `when`, in `tornado_loop_time` seconds
/// (finite, >= 0; a time in the past runs on the next iteration). Returns an
/// id, or 0 on failure. `userdata` stays the caller's (see `_full`).
#[no_mangle]
pub extern "C" fn tornado_loop_call_at(
    r#loop: *mut tornado_loop,
    when: f64,
    cb: tornado_callback,
    userdata: *mut c_void,
) -> u64 {
    tornado_loop_call_at_full(r#loop, when, cb, userdata, None)
}

/// As `tornado_loop_call_at`, with a drop function as in `_call_later_full`.
#[no_mangle]
pub extern "C" fn tornado_loop_call_at_full(
    r#loop: *mut tornado_loop,
    when: f64,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> u64 {
    entry!(0, || {
        let at = |_: &LoopRef| -> Result<u64> {
            Ok(seconds(when, "when")?.as_nanos().min(u64::MAX as u128) as u64)
        };
        schedule(r#loop, at, cb, userdata, drop)
    })
}

/// Cancels a timeout: its callback will never run, also when it was due in
/// the current iteration. `TORNADO_ERR_NOT_FOUND` if it already ran or was
/// removed. A `_full` drop function runs on a later iteration.
#[no_mangle]
pub extern "C" fn tornado_loop_remove_timeout(
    r#loop: *mut tornado_loop,
    timeout: u64,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live loop or NULL.
        unsafe { loop_ref(r#loop) }?.remove_timeout(TimeoutId::from_raw(timeout))
    })
}

/// Calls `cb(fd, events, userdata)` on every iteration in which `fd` is ready
/// for `events` (`TORNADO_READ | TORNADO_WRITE`; `TORNADO_ERROR` is always
/// reported). Level-triggered: a handler that leaves data unread is called
/// again on the next iteration. The fd stays the caller's; remove the handler
/// before closing it. `TORNADO_ERR_EXISTS` if `fd` already has a handler,
/// `TORNADO_ERR_BAD_FD` if it is negative, not open or cannot be polled,
/// `TORNADO_ERR_INVALID` for unknown event bits. `userdata` stays the
/// caller's (see `_full`).
#[no_mangle]
pub extern "C" fn tornado_loop_add_handler(
    r#loop: *mut tornado_loop,
    fd: c_int,
    events: u32,
    cb: tornado_fd_callback,
    userdata: *mut c_void,
) -> tornado_code {
    tornado_loop_add_handler_full(r#loop, fd, events, cb, userdata, None)
}

/// As `tornado_loop_add_handler`; `drop(userdata)` (may be NULL) runs once on
/// the loop thread after the handler is removed (on a later iteration, so a
/// handler may remove itself), or when the loop is freed. On failure nothing
/// is ever called.
#[no_mangle]
pub extern "C" fn tornado_loop_add_handler_full(
    r#loop: *mut tornado_loop,
    fd: c_int,
    events: u32,
    cb: tornado_fd_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        let cb = cb.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let handler = Handler::Raw(CFdCall::new(cb, UserData::new(userdata, drop)));
        lp.add_handler_raw(fd, events, handler)
            .map_err(|(e, handler)| {
                if let Handler::Raw(call) = handler {
                    call.disarm();
                }
                e
            })
    })
}

/// Changes the events `fd`'s handler waits for. `TORNADO_ERR_NOT_FOUND` if
/// it has none.
#[no_mangle]
pub extern "C" fn tornado_loop_update_handler(
    r#loop: *mut tornado_loop,
    fd: c_int,
    events: u32,
) -> tornado_code {
    // SAFETY: caller passes a live loop or NULL.
    entry!(code, || unsafe { loop_ref(r#loop) }?
        .update_handler(fd, events))
}

/// Removes `fd`'s handler (the fd is not closed). A handler removed by
/// another handler in the same iteration is not called. `TORNADO_ERR_NOT_FOUND`
/// if it has none. An fd closed while registered (a caller error) still has
/// its handler removed: `TORNADO_OK`.
#[no_mangle]
pub extern "C" fn tornado_loop_remove_handler(
    r#loop: *mut tornado_loop,
    fd: c_int,
) -> tornado_code {
    // SAFETY: caller passes a live loop or NULL.
    entry!(code, || unsafe { loop_ref(r#loop) }?.remove_handler(fd))
}
