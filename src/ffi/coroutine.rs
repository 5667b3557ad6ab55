//! Coroutines for C (Tornado's `gen.coroutine` Runner) and the `tornado.gen`
//! helpers. A C coroutine is a step function that the runner calls again each
//! time the future it yielded is done; it runs as an ordinary loop task.

use std::ffi::{c_char, c_void};

use super::future::{
    as_raw, borrow, check_same_loop, error_from_c, from_raw, into_raw, tornado_future, CFuture,
    CValue,
};
use super::loop_api::{loop_ref, tornado_loop};
use super::types::{tornado_drop_fn, UserData};
use super::{non_null, seconds, tornado_code};
use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::gen;
use crate::ioloop::LoopRef;

/// A running coroutine, as its step function sees it. Owned by the runner;
/// valid only during a call of the step function.
pub struct tornado_coroutine {
    lp: LoopRef,
    outcome: Option<Result<CValue>>,
}

/// A coroutine's step: called first with `resumed == NULL`, then with the
/// future it last returned, once that is done (borrowed for the call: read
/// its result or error there). Returns a future to wait on — the runner takes
/// over that one reference — or NULL to finish, after
/// `tornado_coroutine_return` or `tornado_coroutine_raise` (finishing without
/// either gives a NULL result).
pub type tornado_coroutine_fn = Option<
    unsafe extern "C" fn(
        co: *mut tornado_coroutine,
        resumed: *mut tornado_future,
        userdata: *mut c_void,
    ) -> *mut tornado_future,
>;

/// Starts a coroutine: `step` first runs on the next loop iteration (never
/// inside this call). Returns the coroutine's result future with one
/// reference for the caller, or NULL on failure (then `drop_userdata` is not
/// called). `drop_userdata(userdata)` (may be NULL) runs once when the
/// coroutine has finished, or when the loop is freed before that.
///
/// A yielded future that is already done resumes the step at once, without
/// a loop iteration (except `tornado_moment`, which is done on the next one).
/// A yielded future of another loop fails the coroutine with
/// `TORNADO_ERR_INVALID` (the step is not called again).
#[no_mangle]
pub extern "C" fn tornado_coroutine_spawn(
    r#loop: *mut tornado_loop,
    step: tornado_coroutine_fn,
    userdata: *mut c_void,
    drop_userdata: tornado_drop_fn,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        let step = step.ok_or_else(|| Error::invalid("step function is NULL"))?;
        if lp.is_closed() {
            return Err(Error::closed());
        }
        let result: CFuture = Future::new(lp);
        let out = result.clone();
        let runner_lp = lp.clone();
        // Owned by the task from here on: dropped (drop_userdata called) when
        // the coroutine finishes, or with the task if the loop is freed first.
        let data = UserData::new(userdata, drop_userdata);
        lp.spawn(async move {
            let outcome = run_steps(runner_lp, step, &data).await;
            let _ = out.complete(outcome);
            drop(data);
        })?;
        Ok(into_raw(result))
    })
}

type StepFn = unsafe extern "C" fn(
    *mut tornado_coroutine,
    *mut tornado_future,
    *mut c_void,
) -> *mut tornado_future;

/// Tornado's `Runner.run`: step, wait for the yielded future, step again.
async fn run_steps(lp: LoopRef, step: StepFn, data: &UserData) -> Result<CValue> {
    let mut co = Box::new(tornado_coroutine { lp, outcome: None });
    let mut resumed: Option<CFuture> = None;
    loop {
        let resumed_ptr = resumed.as_ref().map_or(std::ptr::null_mut(), as_raw);
        // SAFETY: `step` and `userdata` were registered together by the
        // caller; `co` and `resumed` stay valid for the duration of the call.
        let yielded = unsafe { step(&mut *co, resumed_ptr, data.ptr()) };
        drop(resumed.take());
        let yielded = if yielded.is_null() {
            None
        } else {
            // SAFETY: the step hands over one reference to a live future.
            Some(unsafe { from_raw(yielded) }?)
        };
        if let Some(outcome) = co.outcome.take() {
            return outcome;
        }
        let Some(future) = yielded else {
            return Ok(CValue::null());
        };
        check_same_loop(&co.lp, &future)?;
        if !future.done() {
            future.wait().await;
        }
        resumed = Some(future);
    }
}

fn set_outcome(
    co: *mut tornado_coroutine,
    outcome: impl FnOnce() -> Result<Result<CValue>>,
) -> Result<()> {
    non_null(co, "coroutine")?;
    // SAFETY: per the contract, `co` is the pointer passed to the step
    // function that is running now, which the runner keeps alive.
    let co = unsafe { &mut *co };
    co.lp.check_thread()?;
    if co.outcome.is_some() {
        return Err(Error::new(
            Code::ALREADY_DONE,
            "the coroutine already returned or raised",
        ));
    }
    co.outcome = Some(outcome()?);
    Ok(())
}

/// Sets the coroutine's result (Tornado's `return value`): its future
/// completes with `value`, which it owns from now on (`drop(value)` runs
/// when the last reference goes). Call from the step function, then return
/// NULL. `TORNADO_ERR_ALREADY_DONE` if already returned or raised (then
/// `value` stays the caller's).
#[no_mangle]
pub extern "C" fn tornado_coroutine_return(
    co: *mut tornado_coroutine,
    value: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        let mut value = Some(CValue::owned(value, drop));
        let result = set_outcome(co, || Ok(Ok(value.take().expect("taken once"))));
        if let Some(unused) = value {
            // Not stored: the value stays the caller's.
            std::mem::forget(unused);
        }
        result
    })
}

/// Fails the coroutine (Tornado's `raise`): its future completes with `code`
/// (non-zero) and a copy of `message` (UTF-8, may be NULL). Call from the
/// step function, then return NULL.
#[no_mangle]
pub extern "C" fn tornado_coroutine_raise(
    co: *mut tornado_coroutine,
    code: tornado_code,
    message: *const c_char,
) -> tornado_code {
    entry!(code, || set_outcome(co, || Ok(Err(error_from_c(
        code, message
    )?))))
}

/// A future done when all `count` futures are (the array and the futures
/// are borrowed; the result keeps its own references). Its value is NULL:
/// read each input's result. It fails with the first error, in completion
/// order; the other futures keep running. NULL on failure, and for a future
/// of another loop (`TORNADO_ERR_INVALID`).
#[no_mangle]
pub extern "C" fn tornado_multi(
    r#loop: *mut tornado_loop,
    futures: *const *mut tornado_future,
    count: usize,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        let inputs: Vec<CFuture> = if count == 0 {
            Vec::new()
        } else {
            non_null(futures, "futures")?;
            // SAFETY: the caller passes an array of `count` future pointers.
            let raw = unsafe { std::slice::from_raw_parts(futures, count) };
            raw.iter()
                // SAFETY: each element is NULL (refused) or a live future.
                .map(|&f| unsafe { borrow(f) }.map(|b| CFuture::clone(&b)))
                .collect::<Result<_>>()?
        };
        for input in &inputs {
            check_same_loop(lp, input)?;
        }
        Ok(into_raw(gen::multi_with(lp, &inputs, CValue::null)?))
    })
}

/// A future that completes as `future` does, or fails with
/// `TORNADO_ERR_TIMEOUT` after `timeout_s` seconds; `future` is not
/// cancelled then (as in Tornado). Its value is `future`'s value, borrowed
/// (the new future keeps `future` alive). The caller's reference to `future`
/// is not consumed. NULL on failure, and for a future of another loop
/// (`TORNADO_ERR_INVALID`).
#[no_mangle]
pub extern "C" fn tornado_with_timeout(
    r#loop: *mut tornado_loop,
    future: *mut tornado_future,
    timeout_s: f64,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        // SAFETY: caller passes a live future or NULL.
        let inner = unsafe { borrow(future) }?;
        check_same_loop(lp, &inner)?;
        let timeout = seconds(timeout_s, "timeout_s")?;
        let outer = gen::with_timeout_map(lp, &inner, timeout, CValue::borrowed_from)?;
        Ok(into_raw(outer))
    })
}

/// A future done (value NULL) after `seconds` (finite, >= 0). NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_sleep(r#loop: *mut tornado_loop, seconds_: f64) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        let delay = seconds(seconds_, "seconds")?;
        Ok(into_raw(gen::sleep_with(lp, delay, CValue::null)?))
    })
}

/// A future done (value NULL) on the next loop iteration: yielding it lets
/// other callbacks run (Tornado's `gen.moment`). NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_moment(r#loop: *mut tornado_loop) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        Ok(into_raw(gen::moment_with(lp, CValue::null)?))
    })
}
