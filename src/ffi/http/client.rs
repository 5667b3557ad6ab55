//! `tornado_http_client_*`: the client itself (Tornado's `AsyncHTTPClient`)
//! and its fetches.

use std::ffi::c_void;
use std::rc::Rc;

use super::options::{check_options, tornado_http_client_options};
use super::request::{check_request, tornado_http_request};
use super::response::{take_response, tornado_http_response};
use crate::error::{Error, Result};
use crate::ffi::future::{into_raw, tornado_future, CValue};
use crate::ffi::loop_api::{loop_ref, tornado_loop};
use crate::ffi::types::{tornado_drop_fn, UserData};
use crate::ffi::{non_null, tornado_code};
use crate::future::Future;
use crate::http::client::{AsyncHTTPClient, ClientOptions};
use crate::http::request::HTTPRequest;
use crate::http::response::HTTPResponse;

/// An HTTP client (Tornado's `AsyncHTTPClient`) with keep-alive. Made by
/// `tornado_http_client_new`, released by `tornado_http_client_free`.
pub struct tornado_http_client {
    client: AsyncHTTPClient,
}

/// A client on `loop`; `options` may be NULL for the defaults (copied).
/// NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_http_client_new(
    r#loop: *mut tornado_loop,
    options: *const tornado_http_client_options,
) -> *mut tornado_http_client {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        // Checked before the options' shared parts are cloned.
        lp.check_thread()?;
        let options = if options.is_null() {
            ClientOptions::default()
        } else {
            // SAFETY: caller passes live options.
            unsafe { check_options(options) }?;
            // SAFETY: live, and on their thread (checked).
            unsafe { (*options).options.clone() }
        };
        let client = AsyncHTTPClient::new(lp, options)?;
        Ok(Box::into_raw(Box::new(tornado_http_client { client })))
    })
}

/// # Safety
/// `ptr` must be NULL or a live client.
pub(crate) unsafe fn client_ref<'a>(
    ptr: *const tornado_http_client,
) -> Result<&'a AsyncHTTPClient> {
    non_null(ptr, "client")?;
    // SAFETY: non-NULL and live per the contract.
    let client = unsafe { &(*ptr).client };
    client.loop_ref().check_thread()?;
    Ok(client)
}

/// Frees the client. Fetches in flight or queued end with a `closed` error
/// (their futures fail, their callbacks are called, from the loop); pooled
/// connections are closed.
#[no_mangle]
pub extern "C" fn tornado_http_client_free(client: *mut tornado_http_client) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live client or NULL.
        unsafe { client_ref(client) }?.close();
        // SAFETY: from `Box::into_raw` in `tornado_http_client_new`; freed once.
        drop(unsafe { Box::from_raw(client) });
        Ok(())
    })
}

/// Ends every fetch in flight or queued with a `cancelled` error.
#[no_mangle]
pub extern "C" fn tornado_http_client_cancel_all(client: *mut tornado_http_client) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live client or NULL.
        unsafe { client_ref(client) }?.cancel_all();
        Ok(())
    })
}

/// Fetches waiting for a slot among max_clients now, as Tornado's
/// `len(client.queue)` (0 on error).
#[no_mangle]
pub extern "C" fn tornado_http_client_queued(client: *const tornado_http_client) -> usize {
    // SAFETY: caller passes a live client or NULL.
    entry!(0, || Ok(unsafe { client_ref(client) }?.queued()))
}

/// Fetches holding one of the max_clients slots now (connecting,
/// exchanging, following redirects), as Tornado's `len(client.active)`
/// (0 on error).
#[no_mangle]
pub extern "C" fn tornado_http_client_active(client: *const tornado_http_client) -> usize {
    // SAFETY: caller passes a live client or NULL.
    entry!(0, || Ok(unsafe { client_ref(client) }?.active()))
}

/// Idle keep-alive connections the client holds now (0 on error).
#[no_mangle]
pub extern "C" fn tornado_http_client_idle_connections(
    client: *const tornado_http_client,
) -> usize {
    // SAFETY: caller passes a live client or NULL.
    entry!(0, || Ok(unsafe { client_ref(client) }?.idle_connections()))
}

/// Connections the client has opened so far, HTTP/1.1 and HTTP/2 alike
/// (0 on error): an HTTP/2 connection carries many fetches, so this tells
/// how many connections a batch of fetches took.
#[no_mangle]
pub extern "C" fn tornado_http_client_connections_opened(
    client: *const tornado_http_client,
) -> u64 {
    // SAFETY: caller passes a live client or NULL.
    entry!(
        0,
        || Ok(unsafe { client_ref(client) }?.connections_opened()),
    )
}

/// Open HTTP/2 connections the client holds now, each serving any number
/// of fetches (0 on error).
#[no_mangle]
pub extern "C" fn tornado_http_client_http2_connections(
    client: *const tornado_http_client,
) -> usize {
    // SAFETY: caller passes a live client or NULL.
    entry!(0, || Ok(unsafe { client_ref(client) }?.http2_connections()))
}

unsafe extern "C" fn drop_response(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: a fetch future's value comes from `Box::into_raw` below.
        drop(unsafe { Box::from_raw(value as *mut tornado_http_response) });
    }
}

/// Fetches `request` (copied: it may be freed right after). The future's
/// value is a `tornado_http_response *` owned by the future; it resolves
/// for every HTTP status, and fails (with the error's code and
/// "kind: detail" message) only when no response was received. When
/// max_redirects runs out it resolves with the last 3xx response (its code,
/// headers, body and effective URL), whose `tornado_http_response_error` is
/// "too_many_redirects: ..." (`TORNADO_ERR_TOO_MANY_REDIRECTS`): a binding
/// can return or raise it as Tornado's clients do. Cancelling the future
/// aborts the fetch. NULL when the call itself is invalid.
#[no_mangle]
pub extern "C" fn tornado_http_client_fetch(
    client: *mut tornado_http_client,
    request: *const tornado_http_request,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live client or NULL.
        let client = unsafe { client_ref(client) }?;
        let request = request_snapshot(request)?;
        let fetched = client.fetch_shared(request)?;
        let body_pool = client.body_pool();
        let result: Future<CValue> = Future::new(client.loop_ref());
        let completing = result.clone();
        fetched.add_done_callback(move |done| {
            let outcome = match take_response(&done) {
                Some(Ok(response)) if response.code == 599 && response.error.is_some() => {
                    Err(response.error.clone().expect("checked"))
                }
                Some(Ok(response)) => {
                    let response = tornado_http_response::new(response, body_pool);
                    let raw = Box::into_raw(Box::new(response));
                    Ok(CValue::owned(raw as *mut c_void, Some(drop_response)))
                }
                Some(Err(e)) => Err(e),
                None => return,
            };
            let _ = completing.complete(outcome);
        })?;
        // Cancelling the C future aborts the fetch.
        result.add_done_callback(move |_| {
            let _ = fetched.cancel();
        })?;
        Ok(into_raw(result))
    })
}

/// The request as it is now: shared with the handle until either side is
/// changed (see `tornado_http_request`), which is what "copied" means to C.
pub(crate) fn request_snapshot(request: *const tornado_http_request) -> Result<Rc<HTTPRequest>> {
    // SAFETY: caller passes a live request or NULL.
    unsafe { check_request(request) }?;
    // SAFETY: live, and on its owner thread (checked).
    Ok(unsafe { (*request).request.clone() })
}

/// Called once per `tornado_http_client_fetch_cb` with the response,
/// borrowed for the call (code 599 and an error when none was received).
pub type tornado_http_fetch_fn =
    Option<unsafe extern "C" fn(response: *const tornado_http_response, userdata: *mut c_void)>;

/// Fetches `request` (copied) and calls `cb` exactly once, from the loop,
/// with the response: for every HTTP status, and with code 599 and an error
/// when no response was received (also when the client is freed first).
/// Not called if the loop is freed first. `TORNADO_OK`, or an error code
/// when the call itself is invalid (then `cb` is never called). `userdata`
/// stays the caller's (see `tornado_http_client_fetch_cb_full`).
#[no_mangle]
pub extern "C" fn tornado_http_client_fetch_cb(
    client: *mut tornado_http_client,
    request: *const tornado_http_request,
    cb: tornado_http_fetch_fn,
    userdata: *mut c_void,
) -> tornado_code {
    tornado_http_client_fetch_cb_full(client, request, cb, userdata, None)
}

/// As `tornado_http_client_fetch_cb`, and the library owns `userdata` from
/// a successful call on: `drop_userdata(userdata)` (may be NULL) is called
/// exactly once, on the loop's thread — right after `cb` returns, or, when
/// `cb` never runs, when the fetch is released: the loop freed before the
/// callback ran (then at the latest by `tornado_http_client_free`, or by
/// `tornado_loop_free` if the client was freed first). On an error code
/// neither `cb` nor `drop_userdata` is called: `userdata` stays the caller's.
#[no_mangle]
pub extern "C" fn tornado_http_client_fetch_cb_full(
    client: *mut tornado_http_client,
    request: *const tornado_http_request,
    cb: tornado_http_fetch_fn,
    userdata: *mut c_void,
    drop_userdata: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live client or NULL.
        let client = unsafe { client_ref(client) }?;
        let cb = cb.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let request = request_snapshot(request)?;
        let fetched = client.fetch_shared(request.clone())?;
        let body_pool = client.body_pool();
        // Taken only now: nothing below fails on this thread (the fetch
        // started, so the loop is open and the callback registers).
        let data = UserData::new(userdata, drop_userdata);
        fetched.add_done_callback(move |done| {
            let response = match take_response(&done) {
                Some(Ok(response)) => response,
                Some(Err(e)) => HTTPResponse::error_response(&request.url, e),
                None => return,
            };
            let response = tornado_http_response::new(response, body_pool);
            // SAFETY: registered together; the response is borrowed for the
            // call. `data` (and its drop function) goes when this returns.
            unsafe { cb(&response, data.ptr()) };
        })?;
        Ok(())
    })
}
