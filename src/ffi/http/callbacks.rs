//! The request's callbacks: streaming and header callbacks, body producers,
//! and their asynchronous forms (`tornado_http_body_writer_*`).

use std::ffi::{c_char, c_void};
use std::rc::Rc;

use super::request::{tornado_http_request, with_request};
use crate::error::{Error, Result};
use crate::ffi::future::{from_raw, into_raw, tornado_future, CFuture, CValue};
use crate::ffi::types::{tornado_drop_fn, UserData};
use crate::ffi::{non_null, tornado_code};
use crate::future::Future;
use crate::http::request::{BodyProducer, BodyWriter, StreamingCallback};

/// Receives body chunks as they arrive (decoded); the body is then not
/// buffered. `data` is borrowed for the call.
pub type tornado_http_chunk_fn =
    Option<unsafe extern "C" fn(data: *const u8, len: usize, userdata: *mut c_void)>;

/// Receives each response header line (status line first, then each header,
/// then the empty line), `len` bytes exactly as received: with its line end
/// (CRLF, or LF where the server sent a bare LF), and bytes that are not
/// UTF-8 (a Latin-1 value) unchanged. A NUL follows the `len` bytes; the
/// line is borrowed for the call.
pub type tornado_http_header_fn =
    Option<unsafe extern "C" fn(line: *const c_char, len: usize, userdata: *mut c_void)>;

/// Writes up to `cap` bytes of the upload into `buf`; returns how many
/// (0: the body is complete; < 0: fail the fetch).
pub type tornado_http_body_producer_fn =
    Option<unsafe extern "C" fn(buf: *mut u8, cap: usize, userdata: *mut c_void) -> i64>;

/// A C function pointer with its userdata, shared by the request and its
/// copies; `drop(userdata)` runs when the last one goes.
pub(crate) struct CHook<F> {
    pub(crate) f: F,
    pub(crate) data: UserData,
}

impl<F> CHook<F> {
    /// The hook for `cb`, or None for a NULL `cb` (whose userdata then
    /// stays the caller's: its drop function is not called).
    pub(crate) fn new(
        cb: Option<F>,
        userdata: *mut c_void,
        drop: tornado_drop_fn,
    ) -> Option<CHook<F>> {
        let data = UserData::new(userdata, drop);
        match cb {
            Some(f) => Some(CHook { f, data }),
            None => {
                data.disarm();
                None
            }
        }
    }
}

/// Delivers the body in chunks to `cb` instead of buffering it (NULL cb:
/// buffer again). `drop(userdata)` (may be NULL) runs once when the request
/// and every fetch of it are done with it.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_streaming_callback(
    r: *mut tornado_http_request,
    cb: tornado_http_chunk_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    with_request(r, |req| {
        let Some(hook) = CHook::new(cb, userdata, drop) else {
            req.streaming_callback = None;
            return Ok(());
        };
        req.streaming_callback = Some(StreamingCallback::new(move |chunk: &[u8]| {
            // SAFETY: the callback and userdata were registered together; the
            // chunk is borrowed for the call.
            unsafe { (hook.f)(chunk.as_ptr(), chunk.len(), hook.data.ptr()) }
        }));
        Ok(())
    })
}

/// Calls `cb` with each header line of the final response (NULL cb: none).
/// `drop(userdata)` as for the streaming callback.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_header_callback(
    r: *mut tornado_http_request,
    cb: tornado_http_header_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    with_request(r, |req| {
        let Some(hook) = CHook::new(cb, userdata, drop) else {
            req.header_callback = None;
            return Ok(());
        };
        req.header_callback = Some(Rc::new(move |line: &[u8]| {
            // The line's bytes unchanged, plus a NUL for C string functions
            // (a head holds no NUL: httparse refuses it).
            let mut text = Vec::with_capacity(line.len() + 1);
            text.extend_from_slice(line);
            text.push(0);
            // SAFETY: registered together; the line is borrowed for the call.
            unsafe { (hook.f)(text.as_ptr().cast(), line.len(), hook.data.ptr()) }
        }));
        Ok(())
    })
}

/// Streams the upload from `cb` with chunked transfer encoding (replaces a
/// body set before). A producer runs once: a 307 or 308 redirect, which
/// would send the body again, is then the response. `drop(userdata)` as
/// for the streaming callback.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_body_producer(
    r: *mut tornado_http_request,
    cb: tornado_http_body_producer_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    with_request(r, |req| {
        let Some(hook) = CHook::new(cb, userdata, drop) else {
            req.body_producer = None;
            return Ok(());
        };
        req.body = None;
        req.body_producer = Some(BodyProducer::pull(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // SAFETY: registered together; `buf` has `len` writable bytes.
            let n = unsafe { (hook.f)(buf.as_mut_ptr(), buf.len(), hook.data.ptr()) };
            match n {
                0 => Ok(None),
                n if n < 0 => Err(crate::http::fetch_error(
                    crate::http::FetchErrorKind::InvalidRequest,
                    "the body producer failed",
                )),
                n => {
                    buf.truncate((n as usize).min(64 * 1024));
                    Ok(Some(buf))
                }
            }
        }));
        Ok(())
    })
}

// ---- asynchronous producers and consumers ----

/// A future a C callback handed back (its reference is ours now), as the
/// `Future<()>` the HTTP client waits on: done when it is, failed with its
/// error. NULL: nothing to wait for. A future of another thread's loop is
/// refused (and leaked: its count is not ours to touch).
///
/// # Safety
/// `ptr` must be NULL or a future reference the caller gives up.
unsafe fn wait_on_c_future(ptr: *mut tornado_future) -> Result<Option<Future<()>>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: per the contract, one reference passes to us.
    let c_future: CFuture = unsafe { from_raw(ptr) }?;
    if let Err(e) = c_future.loop_ref().check_thread() {
        std::mem::forget(c_future);
        return Err(e);
    }
    let waited = Future::new(c_future.loop_ref());
    let completing = waited.clone();
    c_future.add_done_callback(move |done| {
        let outcome = done.with_outcome(|o| match o {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Error::invalid("a done future without an outcome")),
        });
        let _ = completing.complete(outcome);
    })?;
    Ok(Some(waited))
}

/// Receives a body chunk (borrowed for the call) and may pause the body
/// read: NULL goes on at once; a future (one reference, which passes to the
/// library) holds reading back until it is done, and its error fails the
/// fetch. As Tornado's coroutine `streaming_callback`. The future must be
/// of the fetch's loop (one of another thread's loop fails the fetch; one
/// of another loop on this thread is waited for only while that loop runs).
pub type tornado_http_chunk_async_fn = Option<
    unsafe extern "C" fn(data: *const u8, len: usize, userdata: *mut c_void) -> *mut tornado_future,
>;

/// Delivers the body in chunks (decoded, at most 64 KiB each) to `cb`,
/// which may pause the read by returning a future: the client reads no
/// more from the server until that future is done, so a slow consumer
/// bounds memory (the server is held back by TCP). Replaces a streaming
/// callback set before; NULL cb: buffer again. `drop(userdata)` (may be
/// NULL) runs once when the request and every fetch of it are done with
/// it. A paused read still counts against request_timeout.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_streaming_callback_async(
    r: *mut tornado_http_request,
    cb: tornado_http_chunk_async_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    with_request(r, |req| {
        let Some(hook) = CHook::new(cb, userdata, drop) else {
            req.streaming_callback = None;
            return Ok(());
        };
        req.streaming_callback = Some(StreamingCallback::pausing(move |chunk: &[u8]| {
            // SAFETY: registered together; the chunk is borrowed for the call.
            let returned = unsafe { (hook.f)(chunk.as_ptr(), chunk.len(), hook.data.ptr()) };
            // SAFETY: the callback hands over a reference or NULL.
            unsafe { wait_on_c_future(returned) }
        }));
        Ok(())
    })
}

/// The writer a `tornado_http_body_write_fn` producer writes the upload
/// with. Released with `tornado_http_body_writer_free` (it stays valid until
/// then; writes fail once the upload is over).
pub struct tornado_http_body_writer {
    writer: BodyWriter,
}

/// Tornado's `body_producer(write)`: called once per send of the request
/// with a writer (owned by the producer: release it with
/// `tornado_http_body_writer_free`). It writes with
/// `tornado_http_body_writer_write`, now or from later callbacks, and
/// returns a future (one reference, which passes to the library) that is
/// done when the body is complete (its error fails the fetch), or NULL when
/// the body is complete on return.
pub type tornado_http_body_write_fn = Option<
    unsafe extern "C" fn(
        writer: *mut tornado_http_body_writer,
        userdata: *mut c_void,
    ) -> *mut tornado_future,
>;

/// Streams the upload from an asynchronous producer (replaces a body or
/// producer set before; NULL cb: none). With a Content-Length header the
/// bytes go unframed and must add up to it, else chunk-framed. A request
/// with a producer is not retried or replayed. `drop(userdata)` as for the
/// streaming callback.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_body_producer_async(
    r: *mut tornado_http_request,
    cb: tornado_http_body_write_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    with_request(r, |req| {
        let Some(hook) = CHook::new(cb, userdata, drop) else {
            req.body_producer = None;
            return Ok(());
        };
        req.body = None;
        req.body_producer = Some(BodyProducer::writer(move |writer: BodyWriter| {
            let lp = writer.loop_ref().clone();
            let handle = Box::into_raw(Box::new(tornado_http_body_writer { writer }));
            // SAFETY: registered together; the writer handle is the producer's now.
            let returned = unsafe { (hook.f)(handle, hook.data.ptr()) };
            // SAFETY: the producer hands over a reference or NULL.
            match unsafe { wait_on_c_future(returned) } {
                Ok(Some(produced)) => produced,
                Ok(None) => Future::ready(&lp, ()),
                Err(e) => {
                    let failed = Future::new(&lp);
                    let _ = failed.set_error(e);
                    failed
                }
            }
        }));
        Ok(())
    })
}

/// Writes `len` bytes (copied) of the upload. Returns a new future (the
/// caller's reference) that is done once the bytes reached the socket
/// (over HTTP/2: once the stream's flow-control window let them go), which
/// is when a producer that respects flow control writes the next part; it fails when the upload is over (the producer's future is done
/// or the fetch ended: then it is done on return, with
/// `TORNADO_ERR_CLOSED`), for bytes past the request's Content-Length (that
/// also fails the fetch), or when the connection failed. NULL when the call
/// itself is invalid (NULL writer, NULL data with a length, wrong thread).
#[no_mangle]
pub extern "C" fn tornado_http_body_writer_write(
    writer: *mut tornado_http_body_writer,
    data: *const u8,
    len: usize,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        non_null(writer, "writer")?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            non_null(data, "data")?;
            // SAFETY: the caller passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        // SAFETY: non-NULL and live per the contract.
        let writer = unsafe { &(*writer).writer };
        let lp = writer.loop_ref();
        lp.check_thread()?;
        let written = writer.write(bytes);
        let result: CFuture = Future::new(lp);
        let outcome_of = |done: &Future<()>| {
            done.with_outcome(|o| {
                o.map(|outcome| match outcome {
                    Ok(()) => Ok(CValue::null()),
                    Err(e) => Err(e.clone()),
                })
            })
        };
        // Refused at once (the upload is over): done on return.
        match outcome_of(&written) {
            Some(outcome) => {
                let _ = result.complete(outcome);
            }
            None => {
                let completing = result.clone();
                written.add_done_callback(move |done| {
                    if let Some(outcome) = outcome_of(&done) {
                        let _ = completing.complete(outcome);
                    }
                })?;
            }
        }
        Ok(into_raw(result))
    })
}

/// Releases a writer handed to a producer. NULL is a no-op. The upload is
/// not ended by this (the producer's future says when it is).
#[no_mangle]
pub extern "C" fn tornado_http_body_writer_free(writer: *mut tornado_http_body_writer) {
    entry!((), || {
        if !writer.is_null() {
            // SAFETY: from `Box::into_raw` when the producer was called; freed once.
            let writer = unsafe { Box::from_raw(writer) };
            if let Err(e) = writer.writer.loop_ref().check_thread() {
                // Its counts are not atomic: leak it rather than race.
                std::mem::forget(writer);
                return Err(e);
            }
        }
        Ok(())
    })
}
