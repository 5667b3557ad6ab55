//! The C callback types, and the loop's raw callbacks under their C names.
//!
//! The loop defines what it stores (`crate::ioloop::raw`: a function pointer
//! and a `*mut c_void`); this module only names the C typedefs and packs C
//! arguments into those shapes.

use std::ffi::c_void;
use std::os::raw::c_int;

/// A one-shot or repeated callback: `void (*)(void *userdata)`.
pub type tornado_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// An fd handler: `void (*)(int fd, uint32_t events, void *userdata)`.
pub type tornado_fd_callback =
    Option<unsafe extern "C" fn(fd: c_int, events: u32, userdata: *mut c_void)>;

/// Releases a value or a userdata: `void (*)(void *value)`.
pub type tornado_drop_fn = Option<unsafe extern "C" fn(value: *mut c_void)>;

pub(crate) use crate::ioloop::raw::{
    RawCall as CCall, RawCallDrop as CCallDrop, RawFdCall as CFdCall, UserData,
};

/// Packs a C callback for the loop: two words without a drop function, a box
/// with one.
pub(crate) fn c_callback(
    cb: unsafe extern "C" fn(*mut c_void),
    ptr: *mut c_void,
    drop_fn: tornado_drop_fn,
) -> crate::ioloop::Callback {
    match drop_fn {
        None => crate::ioloop::Callback::Raw(CCall::new(cb, ptr)),
        Some(_) => crate::ioloop::Callback::RawDrop(Box::new(CCallDrop::new(
            cb,
            UserData::new(ptr, drop_fn),
        ))),
    }
}
