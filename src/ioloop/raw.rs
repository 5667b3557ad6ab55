//! Raw callbacks: a function pointer and a `*mut c_void`, the shape every
//! foreign caller (the C ABI in `ffi`, or any other binding) hands the loop.
//!
//! The loop stores and calls them without knowing who made them; the C layer
//! only aliases these types and converts its arguments into them. A raw
//! callback costs two words and no allocation, so the ready queue and the
//! timer slots stay small.

use std::ffi::c_void;
use std::os::raw::c_int;

/// `void (*)(void *userdata)`: a one-shot or repeated callback.
pub(crate) type RawFn = unsafe extern "C" fn(userdata: *mut c_void);

/// `void (*)(int fd, uint32_t events, void *userdata)`: an fd handler.
pub(crate) type RawFdFn = unsafe extern "C" fn(fd: c_int, events: u32, userdata: *mut c_void);

/// `void (*)(void *value)`, optional: releases a userdata.
pub(crate) type RawDropFn = Option<unsafe extern "C" fn(value: *mut c_void)>;

/// A caller's `userdata` pointer with its optional drop function, which runs
/// exactly once when this value is dropped.
pub(crate) struct UserData {
    ptr: *mut c_void,
    drop_fn: RawDropFn,
}

impl UserData {
    pub fn new(ptr: *mut c_void, drop_fn: RawDropFn) -> Self {
        UserData { ptr, drop_fn }
    }

    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }

    pub fn has_drop(&self) -> bool {
        self.drop_fn.is_some()
    }

    /// Gives the pointer back without calling the drop function: for a
    /// registration that failed, whose userdata still belongs to the caller.
    pub fn disarm(mut self) {
        self.drop_fn = None;
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(drop_fn) = self.drop_fn.take() {
            // SAFETY: the caller registered `drop_fn` for exactly this pointer and
            // promised it may be called once, when the library releases it.
            unsafe { drop_fn(self.ptr) };
        }
    }
}

// SAFETY: a RawCall only crosses threads through `tornado_loop_add_callback`
// from another thread, whose contract hands the pointer to the loop thread.
unsafe impl Send for RawCall {}

// SAFETY: a UserData only crosses threads through `tornado_loop_add_callback`
// from another thread, whose contract hands the pointer to the loop thread.
unsafe impl Send for UserData {}

/// A raw callback and its userdata, with no drop function: two words.
pub(crate) struct RawCall {
    cb: RawFn,
    ptr: *mut c_void,
}

impl RawCall {
    pub fn new(cb: RawFn, ptr: *mut c_void) -> Self {
        RawCall { cb, ptr }
    }

    /// Calls the callback once.
    #[inline]
    pub fn call(self) {
        // SAFETY: `cb` was supplied by the caller together with this userdata
        // and is called on the loop thread, as the API documents.
        unsafe { (self.cb)(self.ptr) };
    }
}

/// A raw callback whose userdata has a drop function (the C `_full` calls).
pub(crate) struct RawCallDrop {
    cb: RawFn,
    data: UserData,
}

impl RawCallDrop {
    pub fn new(cb: RawFn, data: UserData) -> Self {
        RawCallDrop { cb, data }
    }

    /// Calls the callback once, then releases the userdata.
    pub fn call(self) {
        self.call_keep();
    }

    /// Calls the callback and keeps the userdata (a periodic callback).
    pub fn call_keep(&self) {
        // SAFETY: as in `RawCall::call`.
        unsafe { (self.cb)(self.data.ptr()) };
    }

    pub fn disarm(self) {
        self.data.disarm();
    }

    pub fn into_userdata(self) -> UserData {
        self.data
    }
}

/// A raw fd handler with its userdata.
pub(crate) struct RawFdCall {
    cb: RawFdFn,
    data: UserData,
}

/// A copy of a handler's function and pointer, called after the loop's
/// state is released (the handler may remove itself meanwhile).
#[derive(Clone, Copy)]
pub(crate) struct RawFdCallRef {
    cb: RawFdFn,
    ptr: *mut c_void,
}

impl RawFdCall {
    pub fn new(cb: RawFdFn, data: UserData) -> Self {
        RawFdCall { cb, data }
    }

    pub fn into_userdata(self) -> UserData {
        self.data
    }

    pub fn by_ref(&self) -> RawFdCallRef {
        RawFdCallRef {
            cb: self.cb,
            ptr: self.data.ptr(),
        }
    }

    pub fn disarm(self) {
        self.data.disarm();
    }
}

impl RawFdCallRef {
    pub fn call(self, fd: c_int, events: u32) {
        // SAFETY: the handler is still registered when this copy is made, and
        // the userdata is released only after the current callback returns
        // (removal defers the drop function to a later callback).
        unsafe { (self.cb)(fd, events, self.ptr) };
    }
}
