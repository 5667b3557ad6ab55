//! C callback types and the wrappers that let the core store and call them.

use std::ffi::c_void;
use std::os::raw::c_int;

/// A one-shot or repeated callback: `void (*)(void *userdata)`.
pub type tornado_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// An fd handler: `void (*)(int fd, uint32_t events, void *userdata)`.
pub type tornado_fd_callback =
    Option<unsafe extern "C" fn(fd: c_int, events: u32, userdata: *mut c_void)>;

/// Releases a value or a userdata: `void (*)(void *value)`.
pub type tornado_drop_fn = Option<unsafe extern "C" fn(value: *mut c_void)>;

/// A caller's `userdata` pointer with its optional drop function, which runs
/// exactly once when this value is dropped.
pub(crate) struct UserData {
    ptr: *mut c_void,
    drop_fn: tornado_drop_fn,
}

impl UserData {
    pub fn new(ptr: *mut c_void, drop_fn: tornado_drop_fn) -> Self {
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

// SAFETY: a CCall only crosses threads through `tornado_loop_add_callback`
// from another thread, whose contract hands the pointer to the loop thread.
unsafe impl Send for CCall {}

// SAFETY: a UserData only crosses threads through `tornado_loop_add_callback`
// from another thread, whose contract hands the pointer to the loop thread.
unsafe impl Send for UserData {}

/// A C callback and its userdata, with no drop function: two words, so the
/// loop's queue and timer slots stay small.
pub(crate) struct CCall {
    cb: unsafe extern "C" fn(*mut c_void),
    ptr: *mut c_void,
}

impl CCall {
    pub fn new(cb: unsafe extern "C" fn(*mut c_void), ptr: *mut c_void) -> Self {
        CCall { cb, ptr }
    }

    /// Calls the callback once.
    #[inline]
    pub fn call(self) {
        // SAFETY: `cb` was supplied by the C caller together with this userdata
        // and is called on the loop thread, as the API documents.
        unsafe { (self.cb)(self.ptr) };
    }
}

/// A C callback whose userdata has a drop function (the `_full` calls).
pub(crate) struct CCallDrop {
    cb: unsafe extern "C" fn(*mut c_void),
    data: UserData,
}

impl CCallDrop {
    pub fn new(cb: unsafe extern "C" fn(*mut c_void), data: UserData) -> Self {
        CCallDrop { cb, data }
    }

    /// Calls the callback once, then releases the userdata.
    pub fn call(self) {
        self.call_keep();
    }

    /// Calls the callback and keeps the userdata (a periodic callback).
    pub fn call_keep(&self) {
        // SAFETY: as in `CCall::call`.
        unsafe { (self.cb)(self.data.ptr()) };
    }

    pub fn disarm(self) {
        self.data.disarm();
    }

    pub fn into_userdata(self) -> UserData {
        self.data
    }
}

/// Packs a C callback for the loop: two words without a drop function, a box
/// with one.
pub(crate) fn c_callback(
    cb: unsafe extern "C" fn(*mut c_void),
    ptr: *mut c_void,
    drop_fn: tornado_drop_fn,
) -> crate::ioloop::Callback {
    match drop_fn {
        None => crate::ioloop::Callback::C(CCall::new(cb, ptr)),
        Some(_) => crate::ioloop::Callback::CDrop(Box::new(CCallDrop::new(
            cb,
            UserData::new(ptr, drop_fn),
        ))),
    }
}

/// A C fd handler with its userdata.
pub(crate) struct CFdCall {
    cb: unsafe extern "C" fn(c_int, u32, *mut c_void),
    data: UserData,
}

/// A copy of a handler's function and pointer, called after the loop's
/// state is released (the handler may remove itself meanwhile).
#[derive(Clone, Copy)]
pub(crate) struct CFdCallRef {
    cb: unsafe extern "C" fn(c_int, u32, *mut c_void),
    ptr: *mut c_void,
}

impl CFdCall {
    pub fn new(cb: unsafe extern "C" fn(c_int, u32, *mut c_void), data: UserData) -> Self {
        CFdCall { cb, data }
    }

    pub fn into_userdata(self) -> UserData {
        self.data
    }

    pub fn by_ref(&self) -> CFdCallRef {
        CFdCallRef {
            cb: self.cb,
            ptr: self.data.ptr(),
        }
    }

    pub fn disarm(self) {
        self.data.disarm();
    }
}

impl CFdCallRef {
    pub fn call(self, fd: c_int, events: u32) {
        // SAFETY: the handler is still registered when this copy is made, and
        // the userdata is released only after the current callback returns
        // (removal defers the drop function to a later callback).
        unsafe { (self.cb)(fd, events, self.ptr) };
    }
}
