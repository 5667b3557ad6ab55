//! The HTTP client's name resolution from C: a resolver the caller supplies
//! (Tornado's `resolver=`), answered asynchronously through a reply handle,
//! and (host, port) → (host, port) mappings (Tornado's OverrideResolver).

use std::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;
use std::rc::Rc;

use super::http::CHook;
use super::{c_str, non_null, tornado_code};
use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::resolver::{AddressFamily, ResolveHook};

/// One name lookup the library asked a `tornado_http_resolve_fn` for. The
/// resolver owns it until it completes it, exactly once, with
/// `tornado_resolve_reply_done` or `tornado_resolve_reply_fail` (which
/// release it); before that it adds addresses with
/// `tornado_resolve_reply_add`. It may be completed later, from any
/// callback on the loop's thread; a reply completed after its fetch ended
/// is simply released.
pub struct tornado_resolve_reply {
    result: Future<Vec<SocketAddr>>,
    addrs: Vec<SocketAddr>,
}

/// Resolves `host` (a name or an IP literal, as Tornado's resolvers get
/// them; hosts of the hostname mapping never come here) for `port` in
/// `family` (AF_UNSPEC, AF_INET or AF_INET6), and answers through `reply`,
/// now or later. `host` is borrowed for the call.
pub type tornado_http_resolve_fn = Option<
    unsafe extern "C" fn(
        host: *const c_char,
        port: u16,
        family: c_int,
        reply: *mut tornado_resolve_reply,
        userdata: *mut c_void,
    ),
>;

/// The resolver hook that calls a C `tornado_http_resolve_fn` (for
/// `tornado_http_client_options_set_resolver`).
pub(crate) fn c_resolve_hook(hook: CHook<ResolveFnPtr>) -> ResolveHook {
    ResolveHook(Rc::new(move |lp, host: &str, port, family| {
        let result = Future::new(lp);
        let reply = Box::into_raw(Box::new(tornado_resolve_reply {
            result: result.clone(),
            addrs: Vec::new(),
        }));
        let family = match family {
            AddressFamily::Any => libc::AF_UNSPEC,
            AddressFamily::V4 => libc::AF_INET,
            AddressFamily::V6 => libc::AF_INET6,
        };
        match std::ffi::CString::new(host) {
            // SAFETY: registered together; the name is borrowed for the
            // call and the reply is the resolver's until it completes it.
            Ok(name) => unsafe { (hook.f)(name.as_ptr(), port, family, reply, hook.data.ptr()) },
            Err(_) => {
                // SAFETY: just made, not handed out.
                std::mem::drop(unsafe { Box::from_raw(reply) });
                let _ = result.set_error(Error::invalid("a host name with a NUL"));
            }
        }
        result
    }))
}

/// The function pointer inside a `tornado_http_resolve_fn`.
pub(crate) type ResolveFnPtr =
    unsafe extern "C" fn(*const c_char, u16, c_int, *mut tornado_resolve_reply, *mut c_void);

/// Checks `reply` is non-NULL and this is its loop's thread.
///
/// # Safety
/// `reply` must be NULL or a reply not yet completed.
unsafe fn check_reply(reply: *mut tornado_resolve_reply) -> Result<()> {
    non_null(reply, "reply")?;
    // SAFETY: non-NULL and live per the contract.
    unsafe { &*reply }.result.loop_ref().check_thread()
}

/// Adds one address (an IP literal, IPv6 with or without brackets) and
/// port to the answer. `TORNADO_ERR_INVALID` for a NULL reply or an
/// address that is not an IP literal (the reply stays open). `address` is
/// read during the call only.
#[no_mangle]
pub extern "C" fn tornado_resolve_reply_add(
    reply: *mut tornado_resolve_reply,
    address: *const c_char,
    port: u16,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes an open reply or NULL.
        unsafe { check_reply(reply) }?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let text = unsafe { c_str(address, "address") }?;
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        let ip = bare
            .parse()
            .map_err(|_| Error::invalid(format!("not an IP address: {text:?}")))?;
        // SAFETY: checked live above; only this thread touches it.
        unsafe { &mut *reply }.addrs.push(SocketAddr::new(ip, port));
        Ok(())
    })
}

/// Completes the lookup with the addresses added (none: a `resolve` error)
/// and releases `reply`.
#[no_mangle]
pub extern "C" fn tornado_resolve_reply_done(reply: *mut tornado_resolve_reply) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes an open reply or NULL.
        unsafe { check_reply(reply) }?;
        // SAFETY: from `Box::into_raw` when the lookup began; completed once.
        let done = unsafe { Box::from_raw(reply) };
        let _ = done.result.set_result(done.addrs);
        Ok(())
    })
}

/// Fails the lookup (the fetch fails with a `resolve` error carrying
/// `message`, which may be NULL) and releases `reply` (also when `message`
/// is not UTF-8: it is then replaced by the code's name).
#[no_mangle]
pub extern "C" fn tornado_resolve_reply_fail(
    reply: *mut tornado_resolve_reply,
    code: tornado_code,
    message: *const c_char,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes an open reply or NULL.
        unsafe { check_reply(reply) }?;
        // SAFETY: a NUL-terminated string or NULL.
        let text = match unsafe { c_str(message, "message") } {
            Ok(text) => text.to_string(),
            Err(_) => Code(code).name().to_string(),
        };
        // SAFETY: from `Box::into_raw` when the lookup began; completed once.
        let failed = unsafe { Box::from_raw(reply) };
        let _ = failed.result.set_error(Error::new(Code(code), text));
        Ok(())
    })
}
