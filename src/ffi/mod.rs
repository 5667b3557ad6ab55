//! The C ABI. Every `unsafe` pointer conversion of the library lives here;
//! every entry point contains panics (`TORNADO_ERR_PANIC`) and reports
//! failures through its return value and `tornado_last_error()`.

#![allow(non_camel_case_types)]
// Entry points take raw pointers from C by design: each one checks what can
// be checked (NULL, thread, state) and documents what the caller guarantees,
// and every dereference sits in an `unsafe` block with its SAFETY reason.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

/// The entry guard every `extern "C"` function of the library runs its body
/// through (as hyper's `ffi_fn!`), the fast paths included: a panic never
/// unwinds into C, it becomes `TORNADO_ERR_PANIC` (or `on_error`) with its
/// message kept for `tornado_last_error`; an `Err` becomes its code (or
/// `on_error`) and its message is kept the same way.
///
/// - `entry!(code, || -> Result<()> { ... })` returns a `tornado_code`;
/// - `entry!(on_error, || -> Result<T> { ... })` returns the `T`, or
///   `on_error` when the body fails.
///
/// `tests/ffi_entry.rs` checks that every C function's body is one `entry!`
/// (or a call of another C function, which has its own).
macro_rules! entry {
    (code, $body:expr $(,)?) => {
        $crate::ffi::guard_code($body)
    };
    ($on_error:expr, $body:expr $(,)?) => {
        $crate::ffi::guard_value($on_error, $body)
    };
}

pub mod coroutine;
pub mod future;
pub mod http;
pub mod loop_api;
pub mod periodic;
pub mod resolve;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod types;
pub mod websocket;

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{Code, Error, Result};
use crate::log;

/// A status code: `TORNADO_OK` (0) or one of the `TORNADO_ERR_*` values.
/// Taken as a plain integer: any value may come in from C.
pub type tornado_code = i32;

/// The `TORNADO_*` status codes for Rust callers of the C ABI, from the
/// table in `status_codes.rs` (build.rs writes the same rows into the
/// header as `#define`s).
macro_rules! status_codes {
    ($($name:ident = $value:literal, $c_name:ident, $doc:literal;)*) => {
        $(#[doc = $doc] pub const $c_name: tornado_code = $value;)*
    };
}
include!("../status_codes.rs");

/// The library version these declarations come from (see
/// `tornado_version` for the library actually loaded). The ABI promise:
/// within one major version (one SONAME, `libtornado_rs.so.0`), functions,
/// types and constants are only ever added, never changed or removed.
pub const TORNADO_VERSION_MAJOR: i32 = 0;
/// The minor version: new functions and constants (backward compatible).
pub const TORNADO_VERSION_MINOR: i32 = 1;
/// The patch version: fixes only.
pub const TORNADO_VERSION_PATCH: i32 = 0;
/// MAJOR * 10000 + MINOR * 100 + PATCH, for `#if` comparisons.
pub const TORNADO_VERSION_NUMBER: i32 = 100;

/// The loaded library's version as text, e.g. "0.1.0" (static: never free it).
#[no_mangle]
pub extern "C" fn tornado_version() -> *const c_char {
    entry!(std::ptr::null(), || Ok(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
    ))
}

/// The loaded library's version as MAJOR * 10000 + MINOR * 100 + PATCH:
/// compare with `TORNADO_VERSION_NUMBER` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn tornado_version_number() -> i32 {
    entry!(0, || Ok(TORNADO_VERSION_NUMBER))
}

/// Log levels passed to a `tornado_log_fn`.
pub const TORNADO_LOG_ERROR: i32 = 1;
/// Something went wrong but the library carried on (e.g. a failed TLS handshake of an accepted connection).
pub const TORNADO_LOG_WARNING: i32 = 2;
/// Informational.
pub const TORNADO_LOG_INFO: i32 = 3;
/// Detail for debugging.
pub const TORNADO_LOG_DEBUG: i32 = 4;

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

#[cold]
pub(crate) fn set_last_error(error: &Error) {
    let text = format!("{}: {}", error.code().name(), error.message());
    let text = CString::new(text.replace('\0', "")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(text));
}

#[cold]
fn panic_error(payload: &(dyn std::any::Any + Send)) -> Error {
    let error = Error::new(
        Code::PANIC,
        format!("internal panic: {}", log::panic_message(payload)),
    );
    log::error(error.message());
    error
}

/// Runs an entry point that returns a code.
#[inline(always)]
#[doc(hidden)]
pub(crate) fn guard_code(f: impl FnOnce() -> Result<()>) -> tornado_code {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => TORNADO_OK,
        Ok(Err(error)) => {
            set_last_error(&error);
            error.code().0
        }
        Err(payload) => {
            set_last_error(&panic_error(payload.as_ref()));
            TORNADO_ERR_PANIC
        }
    }
}

/// Runs an entry point that returns a value, with `on_error` on failure.
pub(crate) fn guard_value<T>(on_error: T, f: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            set_last_error(&error);
            on_error
        }
        Err(payload) => {
            set_last_error(&panic_error(payload.as_ref()));
            on_error
        }
    }
}

/// A NULL check with a message naming the argument.
pub(crate) fn non_null<T>(ptr: *const T, what: &str) -> Result<*const T> {
    if ptr.is_null() {
        Err(Error::invalid(format!("{what} is NULL")))
    } else {
        Ok(ptr)
    }
}

/// A NUL-terminated UTF-8 string from C; NULL allowed when `optional`.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    non_null(ptr, what)?;
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Converts seconds from C to a duration, refusing NaN, infinities and negatives.
pub(crate) fn seconds(value: f64, what: &str) -> Result<std::time::Duration> {
    crate::util::seconds_to_ns(value)
        .map(std::time::Duration::from_nanos)
        .ok_or_else(|| Error::invalid(format!("{what} must be a finite number >= 0 (got {value})")))
}

/// The name of a code, e.g. `"TORNADO_ERR_TIMEOUT"`; `"TORNADO_ERR_USER"` for
/// codes >= 1000 and `"TORNADO_ERR_UNKNOWN"` for other unknown values.
/// The string is static: never free it.
#[no_mangle]
pub extern "C" fn tornado_code_name(code: tornado_code) -> *const c_char {
    entry!(std::ptr::null(), || Ok(Code(code).c_name().as_ptr()))
}

/// The message of the last failed call on this thread, or NULL if none failed
/// yet. Owned by the library; valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn tornado_last_error() -> *const c_char {
    // Not through `entry!`: a failure in here would overwrite the very
    // text asked for. Nothing below can panic (a borrow of a thread-local
    // that no caller holds across this call).
    LAST_ERROR.with(|slot| match slot.borrow().as_ref() {
        Some(text) => text.as_ptr(),
        None => std::ptr::null(),
    })
}

/// Receives the library's log lines: `level` is a `TORNADO_LOG_*` value,
/// `message` is borrowed for the duration of the call.
pub type tornado_log_fn =
    Option<unsafe extern "C" fn(level: i32, message: *const c_char, userdata: *mut c_void)>;

struct LogTarget {
    cb: unsafe extern "C" fn(i32, *const c_char, *mut c_void),
    userdata: *mut c_void,
}

impl LogTarget {
    fn emit(&self, level: log::Level, message: &str) {
        let text = CString::new(message.replace('\0', "")).unwrap_or_default();
        // SAFETY: the callback and userdata were registered together by the
        // caller, who keeps them valid while registered.
        unsafe { (self.cb)(level as i32, text.as_ptr(), self.userdata) };
    }
}

// SAFETY: the caller of `tornado_set_log_callback` accepts that the callback
// is called, with its userdata, from whichever thread logs.
unsafe impl Send for LogTarget {}
// SAFETY: as above; the target is only read.
unsafe impl Sync for LogTarget {}

/// Sends the library's log lines to `cb` (NULL: back to the default, warnings
/// and errors on stderr). Any thread may call this, and `cb` may be called
/// from any thread that logs; it must not block. `userdata` belongs to the
/// caller and must stay valid until the callback is replaced.
#[no_mangle]
pub extern "C" fn tornado_set_log_callback(
    cb: tornado_log_fn,
    userdata: *mut c_void,
) -> tornado_code {
    entry!(code, || {
        let sink: Option<log::Sink> = cb.map(|cb| {
            let target = LogTarget { cb, userdata };
            Arc::new(move |level: log::Level, message: &str| target.emit(level, message))
                as log::Sink
        });
        log::set_sink(sink);
        Ok(())
    })
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn version_constants_match_the_crate() {
        let parts: Vec<i32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            parts,
            [
                super::TORNADO_VERSION_MAJOR,
                super::TORNADO_VERSION_MINOR,
                super::TORNADO_VERSION_PATCH
            ]
        );
        assert_eq!(
            super::TORNADO_VERSION_NUMBER,
            parts[0] * 10000 + parts[1] * 100 + parts[2]
        );
    }
}
