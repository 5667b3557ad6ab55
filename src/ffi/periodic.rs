//! `tornado_periodic_*`: Tornado's `PeriodicCallback` through the C ABI.

use std::ffi::c_void;

use super::loop_api::{loop_ref, tornado_loop};
use super::types::{tornado_callback, tornado_drop_fn, CCallDrop, UserData};
use super::{non_null, seconds, tornado_code};
use crate::error::{Error, Result};
use crate::ioloop::PeriodicCallback;

/// A periodic callback. Made by `tornado_periodic_new`, released by
/// `tornado_periodic_free`; belongs to its loop's thread.
pub struct tornado_periodic {
    periodic: PeriodicCallback,
}

/// # Safety
/// `ptr` must be NULL or a live periodic callback.
unsafe fn periodic_ref<'a>(ptr: *const tornado_periodic) -> Result<&'a PeriodicCallback> {
    non_null(ptr, "periodic")?;
    // SAFETY: non-NULL and live per the contract.
    let periodic = unsafe { &(*ptr).periodic };
    periodic.check_thread()?;
    Ok(periodic)
}

/// A stopped periodic callback calling `cb(userdata)` every `interval_s`
/// seconds (finite, > 0) once started. Runs that were missed (the loop was
/// busy) are skipped, as in Tornado. `drop(userdata)` (may be NULL) runs once
/// when the periodic callback is freed (after `cb` returns, if it frees itself
/// from inside `cb`). NULL on failure (then `drop` is not called).
#[no_mangle]
pub extern "C" fn tornado_periodic_new(
    r#loop: *mut tornado_loop,
    interval_s: f64,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> *mut tornado_periodic {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        let interval = seconds(interval_s, "interval_s")?;
        let cb = cb.ok_or_else(|| Error::invalid("callback is NULL"))?;
        if interval.is_zero() {
            return Err(Error::invalid("interval_s must be > 0"));
        }
        lp.check_thread()?;
        let call = CCallDrop::new(cb, UserData::new(userdata, drop));
        let periodic = PeriodicCallback::new(lp, interval, move || call.call_keep())?;
        Ok(Box::into_raw(Box::new(tornado_periodic { periodic })))
    })
}

/// Sets the jitter: each interval is multiplied by
/// `1 + jitter * (random - 0.5)`, with 0 <= jitter <= 1.
#[no_mangle]
pub extern "C" fn tornado_periodic_set_jitter(
    periodic: *mut tornado_periodic,
    jitter: f64,
) -> tornado_code {
    // SAFETY: caller passes a live periodic callback or NULL.
    entry!(code, || unsafe { periodic_ref(periodic) }?
        .set_jitter(jitter))
}

/// Starts calling back; the first call is one interval from now. Starting a
/// started one does nothing.
#[no_mangle]
pub extern "C" fn tornado_periodic_start(periodic: *mut tornado_periodic) -> tornado_code {
    // SAFETY: caller passes a live periodic callback or NULL.
    entry!(code, || unsafe { periodic_ref(periodic) }?.start())
}

/// Stops calling back (may be called from inside the callback).
#[no_mangle]
pub extern "C" fn tornado_periodic_stop(periodic: *mut tornado_periodic) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live periodic callback or NULL.
        unsafe { periodic_ref(periodic) }?.stop();
        Ok(())
    })
}

/// True while started. False for NULL or a wrong-thread call.
#[no_mangle]
pub extern "C" fn tornado_periodic_is_running(periodic: *const tornado_periodic) -> bool {
    // SAFETY: caller passes a live periodic callback or NULL.
    entry!(
        false,
        || Ok(unsafe { periodic_ref(periodic) }?.is_running()),
    )
}

/// Stops and frees the periodic callback; its drop function runs once (after
/// the callback returns, if called from inside it). Valid after its loop was
/// freed. NULL is `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_periodic_free(periodic: *mut tornado_periodic) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live periodic callback or NULL.
        unsafe { periodic_ref(periodic) }?;
        // SAFETY: from `Box::into_raw` in `tornado_periodic_new`; freed once.
        drop(unsafe { Box::from_raw(periodic) });
        Ok(())
    })
}
