//! `tornado_websocket_*`: the WebSocket client through the C ABI (Tornado's
//! `websocket_connect` and `WebSocketClientConnection`).

use std::cell::OnceCell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::rc::Rc;

use super::future::{into_raw, tornado_future, CFuture, CValue};
use super::http::{client_ref, request_snapshot, tornado_http_client, tornado_http_request};
use super::types::{tornado_drop_fn, UserData};
use super::{c_str, non_null, seconds, tornado_code};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::websocket::{
    websocket_connect, CompressionOptions, Message, WebSocket, WebSocketOptions,
};

// ---- options ----

/// What `tornado_websocket_connect` asks for beyond the request (Tornado's
/// `websocket_connect` arguments). Made by `tornado_websocket_options_new`
/// with Tornado's defaults, released by `tornado_websocket_options_free`;
/// connect copies them, so they may be freed right after. Plain data: any
/// thread may use them (one at a time).
pub struct tornado_websocket_options {
    options: WebSocketOptions,
}

/// New options: no subprotocols, max_message_size 10 MiB, no compression,
/// no pings, max_write_buffer 16 MiB, close_timeout 5 s.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_new() -> *mut tornado_websocket_options {
    entry!(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(tornado_websocket_options {
            options: WebSocketOptions::default(),
        })))
    })
}

/// Frees options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_free(options: *mut tornado_websocket_options) {
    if !options.is_null() {
        entry!((), || {
            // SAFETY: from `Box::into_raw` in `tornado_websocket_options_new`; freed once.
            drop(unsafe { Box::from_raw(options) });
            Ok(())
        })
    }
}

fn with_options(
    options: *mut tornado_websocket_options,
    f: impl FnOnce(&mut WebSocketOptions) -> Result<()>,
) -> tornado_code {
    entry!(code, || {
        non_null(options, "options")?;
        // SAFETY: non-NULL and live per the contract.
        f(unsafe { &mut (*options).options })
    })
}

/// Offers `name` (an HTTP token, copied) in `Sec-WebSocket-Protocol`, after
/// those added before; the server may choose one
/// (`tornado_websocket_subprotocol`). `TORNADO_ERR_INVALID` for NULL or a
/// name that is not a token.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_add_subprotocol(
    options: *mut tornado_websocket_options,
    name: *const c_char,
) -> tornado_code {
    with_options(options, |o| {
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let name = unsafe { c_str(name, "name") }?;
        crate::websocket::handshake::check_subprotocol(name)?;
        o.subprotocols.push(name.to_string());
        Ok(())
    })
}

/// The largest message accepted, after decompression (> 0; 10 MiB). A
/// larger one ends the connection with close code 1009 and a
/// `TORNADO_ERR_TOO_LARGE` "message_too_large: ..." error; it is refused
/// from its frame header, before it is buffered.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_max_message_size(
    options: *mut tornado_websocket_options,
    bytes: usize,
) -> tornado_code {
    with_options(options, |o| {
        if bytes == 0 {
            return Err(Error::invalid("max_message_size must be positive"));
        }
        o.max_message_size = bytes;
        Ok(())
    })
}

/// Offers permessage-deflate (RFC 7692) with zlib `level` 0-9 for the
/// messages sent (Tornado's default is 6); -1 turns compression off (the
/// default). Other values: `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_compression(
    options: *mut tornado_websocket_options,
    level: c_int,
) -> tornado_code {
    with_options(options, |o| {
        match level {
            -1 => o.compression = None,
            0..=9 => {
                o.compression
                    .get_or_insert_with(CompressionOptions::default)
                    .compression_level = level as u32
            }
            _ => {
                return Err(Error::invalid(format!(
                    "compression level {level} is not -1 or 0-9"
                )))
            }
        }
        Ok(())
    })
}

/// With compression on: ask that the client (`client`) and/or the server
/// (`server`) start every message with an empty window (less memory per
/// connection, less compression). The client's is always honoured; the
/// server may keep its context. `TORNADO_ERR_INVALID` if compression is off.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_no_context_takeover(
    options: *mut tornado_websocket_options,
    client: bool,
    server: bool,
) -> tornado_code {
    with_options(options, |o| {
        let c = compression_on(o)?;
        c.client_no_context_takeover = client;
        c.server_no_context_takeover = server;
        Ok(())
    })
}

/// With compression on: ask the server to compress with a window of at
/// most 2^`bits` bytes (8-15), or 0 to ask nothing (the default). The
/// client's own window: `tornado_websocket_options_set_client_max_window_bits`.
/// `TORNADO_ERR_INVALID` for other values or if compression is off.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_server_max_window_bits(
    options: *mut tornado_websocket_options,
    bits: c_int,
) -> tornado_code {
    with_options(options, |o| {
        let c = compression_on(o)?;
        c.server_max_window_bits = match bits {
            0 => None,
            8..=15 => Some(bits as u8),
            _ => {
                return Err(Error::invalid(format!(
                    "window bits {bits} are not 0 or 8-15"
                )))
            }
        };
        Ok(())
    })
}

/// With compression on: compress the messages sent with a window of at
/// most 2^`bits` bytes (8-15; less memory, less compression), offered as
/// `client_max_window_bits=bits`, or 0 for the default: offered without a
/// value, a 32 KiB window unless the server asks for less. A server's
/// smaller value is always honoured (8 is sent as stored blocks).
/// `TORNADO_ERR_INVALID` for other values or if compression is off.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_client_max_window_bits(
    options: *mut tornado_websocket_options,
    bits: c_int,
) -> tornado_code {
    with_options(options, |o| {
        let c = compression_on(o)?;
        c.client_max_window_bits = match bits {
            0 => None,
            8..=15 => Some(bits as u8),
            _ => {
                return Err(Error::invalid(format!(
                    "window bits {bits} are not 0 or 8-15"
                )))
            }
        };
        Ok(())
    })
}

fn compression_on(o: &mut WebSocketOptions) -> Result<&mut CompressionOptions> {
    o.compression.as_mut().ok_or_else(|| {
        Error::invalid("compression is off: tornado_websocket_options_set_compression first")
    })
}

/// Sends a ping every `interval_s` seconds (0: never, the default) and
/// closes the connection when no pong came `timeout_s` seconds after one
/// (0: the interval; never longer than it, as Tornado): reads then fail
/// with `TORNADO_ERR_TIMEOUT` "timeout: no pong ...". NaN, negative or
/// infinite: `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_ping(
    options: *mut tornado_websocket_options,
    interval_s: f64,
    timeout_s: f64,
) -> tornado_code {
    with_options(options, |o| {
        let interval = seconds(interval_s, "interval_s")?;
        let timeout = seconds(timeout_s, "timeout_s")?;
        o.ping_interval = (!interval.is_zero()).then_some(interval);
        o.ping_timeout = (!timeout.is_zero()).then_some(timeout);
        Ok(())
    })
}

/// Bytes written but not yet on the wire past which
/// `tornado_websocket_write_message` fails with `TORNADO_ERR_TOO_LARGE`
/// (> 0; 16 MiB). A message is always accepted when nothing waits.
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_max_write_buffer(
    options: *mut tornado_websocket_options,
    bytes: usize,
) -> tornado_code {
    with_options(options, |o| {
        if bytes == 0 {
            return Err(Error::invalid("max_write_buffer must be positive"));
        }
        o.max_write_buffer = bytes;
        Ok(())
    })
}

/// How long `tornado_websocket_close` waits for the server's close frame
/// (seconds, > 0; 5 as Tornado).
#[no_mangle]
pub extern "C" fn tornado_websocket_options_set_close_timeout(
    options: *mut tornado_websocket_options,
    timeout_s: f64,
) -> tornado_code {
    with_options(options, |o| {
        let timeout = seconds(timeout_s, "timeout_s")?;
        if timeout.is_zero() {
            return Err(Error::invalid("timeout_s must be positive"));
        }
        o.close_timeout = timeout;
        Ok(())
    })
}

// ---- the connection ----

/// An open WebSocket connection, reference-counted: the connect future's
/// value is one reference owned by the future (take your own with
/// `tornado_websocket_ref`); `tornado_websocket_unref` releases one and the
/// last closes the connection at once (no close handshake: call
/// `tornado_websocket_close` first for one). It belongs to its loop's
/// thread: every call from another thread is refused
/// (`TORNADO_ERR_WRONG_THREAD`).
pub struct tornado_websocket {
    ws: WebSocket,
    subprotocol: Option<CString>,
    extensions: Option<CString>,
    close_reason: OnceCell<Option<CString>>,
    /// The done future that writes already on the wire return (see `write_future`).
    sent: OnceCell<CFuture>,
}

/// The last reference gone: the callbacks are removed (not called), pending
/// reads and close futures fail with `TORNADO_ERR_CLOSED`, the stream closes.
impl Drop for tornado_websocket {
    fn drop(&mut self) {
        // The callbacks go first (their userdata is dropped): none may be
        // called with a handle that is going away.
        let _ = self.ws.set_message_callback(None);
        let _ = self.ws.set_ping_callback(None);
        self.ws.abort();
    }
}

/// A message received: the value of a read future (owned by it), or
/// borrowed for the duration of a message callback.
pub struct tornado_websocket_message {
    binary: bool,
    /// The payload and a NUL after it (so text can be used as a C string).
    data: Vec<u8>,
}

impl tornado_websocket_message {
    fn new(message: Message) -> tornado_websocket_message {
        let binary = message.is_binary();
        let mut data = match message {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(data) => data,
        };
        data.push(0);
        tornado_websocket_message { binary, data }
    }
}

/// Borrows a handle for the call, checking the thread.
///
/// # Safety
/// `ptr` must be NULL or a live handle.
unsafe fn ws_ref<'a>(ptr: *const tornado_websocket) -> Result<&'a tornado_websocket> {
    non_null(ptr, "websocket")?;
    // SAFETY: non-NULL and live per the contract (an `Rc` allocation).
    let handle = unsafe { &*ptr };
    handle.ws.loop_ref().check_thread()?;
    Ok(handle)
}

unsafe extern "C" fn drop_ws_value(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: a connect future's value is one reference from `Rc::into_raw`.
        drop(unsafe { Rc::from_raw(value as *const tornado_websocket) });
    }
}

unsafe extern "C" fn drop_message_value(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: a read future's value comes from `Box::into_raw` below.
        drop(unsafe { Box::from_raw(value as *mut tornado_websocket_message) });
    }
}

fn optional_c_string(text: Option<&str>) -> Option<CString> {
    text.map(|t| CString::new(t.replace('\0', "")).unwrap_or_default())
}

/// Opens a WebSocket to the request's URL (`ws://` or `wss://`) through
/// `client`'s connections (its resolver, mappings and limits). The
/// request (copied) gives the handshake's headers, auth, TLS options and
/// validation, proxy (a CONNECT tunnel for wss) and connect/request
/// timeouts; its method, body and redirect settings are not used (GET, no
/// body, a redirect is not followed: as in Tornado). `options` may be NULL
/// (the defaults). The future's value is a `tornado_websocket *` owned by
/// the future (see `tornado_websocket`); it fails with the fetch's error
/// (connect, tls, timeout, ...) or `TORNADO_ERR_PROTOCOL` when the server
/// does not switch protocols ("protocol: the server refused the WebSocket
/// handshake: HTTP 404 Not Found") or answers the handshake wrongly (a bad
/// Sec-WebSocket-Accept, a subprotocol or extension not offered).
/// Cancelling the future aborts the handshake. NULL when the call itself
/// is invalid (NULL client or request, a URL that is not ws/wss:
/// `TORNADO_ERR_INVALID_URL`, another thread).
#[no_mangle]
pub extern "C" fn tornado_websocket_connect(
    client: *mut tornado_http_client,
    request: *const tornado_http_request,
    options: *const tornado_websocket_options,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live client or NULL.
        let client = unsafe { client_ref(client) }?;
        let request = request_snapshot(request)?;
        let options = if options.is_null() {
            WebSocketOptions::default()
        } else {
            // SAFETY: non-NULL and live per the contract.
            unsafe { (*options).options.clone() }
        };
        let connecting = websocket_connect(client, (*request).clone(), options)?;
        let result: CFuture = Future::new(client.loop_ref());
        let completing = result.clone();
        connecting.add_done_callback(move |done| {
            let outcome = done.result().expect("done").map(|ws| {
                let handle = tornado_websocket {
                    subprotocol: optional_c_string(ws.subprotocol()),
                    extensions: optional_c_string(ws.extensions()),
                    close_reason: OnceCell::new(),
                    sent: OnceCell::new(),
                    ws,
                };
                let raw = Rc::into_raw(Rc::new(handle)) as *mut c_void;
                CValue::owned(raw, Some(drop_ws_value))
            });
            let _ = completing.complete(outcome);
        })?;
        result.add_done_callback(move |_| {
            let _ = connecting.cancel();
        })?;
        Ok(into_raw(result))
    })
}

/// Takes another reference to the connection; returns it (NULL on error).
#[no_mangle]
pub extern "C" fn tornado_websocket_ref(ws: *mut tornado_websocket) -> *mut tornado_websocket {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live handle or NULL.
        unsafe { ws_ref(ws) }?;
        // SAFETY: a live `Rc` allocation from `tornado_websocket_connect`.
        unsafe { Rc::increment_strong_count(ws as *const tornado_websocket) };
        Ok(ws)
    })
}

/// Releases a reference; the last one closes the connection at once (no
/// close handshake; pending reads fail with `TORNADO_ERR_CLOSED`; the
/// message and ping callbacks are removed without being called, their
/// userdata dropped). NULL is
/// a no-op; from another thread it is refused and the reference leaks (an
/// error is logged).
#[no_mangle]
pub extern "C" fn tornado_websocket_unref(ws: *mut tornado_websocket) {
    if ws.is_null() {
        return;
    }
    entry!((), || {
        // SAFETY: caller passes a live handle holding the reference it gives up.
        if let Err(e) = unsafe { ws_ref(ws) } {
            crate::log::error(&format!(
                "tornado_websocket_unref: {e}; the reference leaks"
            ));
            return Err(e);
        }
        // SAFETY: as above; the count drops by one.
        drop(unsafe { Rc::from_raw(ws as *const tornado_websocket) });
        Ok(())
    })
}

/// Reads the next message. The future's value is a
/// `tornado_websocket_message *` owned by the future, or NULL once the
/// connection closed cleanly (a close handshake, from either side; see
/// `tornado_websocket_close_code`). It fails when the connection ended
/// otherwise: `TORNADO_ERR_PROTOCOL` ("protocol: ... (closed with 1002)",
/// 1007 for invalid UTF-8) when the server broke the protocol,
/// `TORNADO_ERR_TOO_LARGE` over max_message_size (1009),
/// `TORNADO_ERR_TIMEOUT` for a ping timeout, `TORNADO_ERR_CLOSED` when the
/// connection ended without a close frame. Messages already received are
/// read first; the server is not read from while one waits unread. With a
/// message callback set, the value is NULL. NULL on a bad call.
#[no_mangle]
pub extern "C" fn tornado_websocket_read_message(
    ws: *mut tornado_websocket,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        let read = handle.ws.read_message()?;
        let result: CFuture = Future::new(handle.ws.loop_ref());
        let completing = result.clone();
        read.add_done_callback(move |done| {
            let outcome = done.with_outcome_mut(|o| match o.expect("done") {
                Ok(message) => Ok(match message.take() {
                    Some(message) => {
                        let raw = Box::into_raw(Box::new(tornado_websocket_message::new(message)));
                        CValue::owned(raw as *mut c_void, Some(drop_message_value))
                    }
                    None => CValue::null(),
                }),
                Err(e) => Err(e.clone()),
            });
            let _ = completing.complete(outcome);
        })?;
        Ok(into_raw(result))
    })
}

/// True for a binary message, false for text (and for NULL).
#[no_mangle]
pub extern "C" fn tornado_websocket_message_is_binary(
    message: *const tornado_websocket_message,
) -> bool {
    // SAFETY: NULL or a live message per the contract.
    entry!(false, || Ok(
        !message.is_null() && unsafe { (*message).binary }
    ))
}

/// The message's bytes (text: UTF-8, with a NUL after them, so it may be
/// used as a C string when it has no NUL of its own); `len` (may be NULL)
/// receives the length without that NUL. Borrowed: valid while the future
/// holding the message lives, or during the callback. NULL message: NULL
/// and length 0.
#[no_mangle]
pub extern "C" fn tornado_websocket_message_data(
    message: *const tornado_websocket_message,
    len: *mut usize,
) -> *const u8 {
    let (ptr, n) = entry!((std::ptr::null(), 0), || {
        if message.is_null() {
            return Ok((std::ptr::null(), 0));
        }
        // SAFETY: a live message per the contract.
        let data = unsafe { &(*message).data };
        Ok((data.as_ptr(), data.len() - 1))
    });
    if !len.is_null() {
        // SAFETY: the caller passes a writable size_t or NULL.
        unsafe { *len = n };
    }
    ptr
}

/// Called with each message (borrowed for the call), then once with NULL
/// when the connection ends (cleanly or not: see `tornado_websocket_error`).
pub type tornado_websocket_message_fn =
    Option<unsafe extern "C" fn(message: *const tornado_websocket_message, userdata: *mut c_void)>;

/// Calls `cb` from the loop with each message from now on (those already
/// received first), then with NULL when the connection ends (Tornado's
/// `on_message_callback`); reads then resolve NULL. NULL `cb` goes back to
/// `tornado_websocket_read_message`. The library owns `userdata` from a
/// successful call on: `drop_userdata(userdata)` (may be NULL) is called
/// once when the callback is replaced or the connection's last reference
/// goes. On an error code `userdata` stays the caller's.
#[no_mangle]
pub extern "C" fn tornado_websocket_set_message_callback(
    ws: *mut tornado_websocket,
    cb: tornado_websocket_message_fn,
    userdata: *mut c_void,
    drop_userdata: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        let Some(cb) = cb else {
            handle.ws.set_message_callback(None)?;
            return Ok(());
        };
        if handle.ws.loop_ref().is_closed() {
            return Err(Error::closed());
        }
        // Nothing below fails on this thread with the loop open.
        let data = UserData::new(userdata, drop_userdata);
        let callback = move |message: Option<Message>| {
            let message = message.map(tornado_websocket_message::new);
            let ptr = message
                .as_ref()
                .map_or(std::ptr::null(), |m| m as *const tornado_websocket_message);
            // SAFETY: registered together; the message is borrowed for the call.
            unsafe { cb(ptr, data.ptr()) };
        };
        handle.ws.set_message_callback(Some(Rc::new(callback)))
    })
}

/// Called with a ping's payload (borrowed for the call).
pub type tornado_websocket_ping_fn =
    Option<unsafe extern "C" fn(data: *const u8, len: usize, userdata: *mut c_void)>;

/// Calls `cb` from the loop with each ping's payload, after the pong is
/// queued (Tornado's `on_ping`). NULL `cb` removes it. `userdata` as in
/// `tornado_websocket_set_message_callback`.
#[no_mangle]
pub extern "C" fn tornado_websocket_set_ping_callback(
    ws: *mut tornado_websocket,
    cb: tornado_websocket_ping_fn,
    userdata: *mut c_void,
    drop_userdata: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        let Some(cb) = cb else {
            return handle.ws.set_ping_callback(None);
        };
        // Nothing below fails: the thread was checked.
        let data = UserData::new(userdata, drop_userdata);
        handle
            .ws
            .set_ping_callback(Some(Rc::new(move |payload: &[u8]| {
                // SAFETY: registered together; the payload is borrowed for the call.
                unsafe { cb(payload.as_ptr(), payload.len(), data.ptr()) };
            })))
    })
}

/// Reads `len` bytes at `data` for the call (NULL only with `len` 0).
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes.
unsafe fn bytes<'a>(data: *const u8, len: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(data, "data")?;
    // SAFETY: `len` readable bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// A C future for the connection's `written`. One that is done already
/// (the frame went out at once: the usual case) becomes the handle's one
/// shared done future, so that a write costs no future or callback of its own.
fn write_future(handle: &tornado_websocket, written: Future<()>) -> Result<*mut tornado_future> {
    let lp = handle.ws.loop_ref();
    if written.done() && written.error().is_none() {
        let sent = handle
            .sent
            .get_or_init(|| Future::ready(lp, CValue::null()));
        return Ok(into_raw(sent.clone()));
    }
    let result: CFuture = Future::new(lp);
    let completing = result.clone();
    written.add_done_callback(move |done| {
        let _ = completing.complete(match done.error() {
            None => Ok(CValue::null()),
            Some(e) => Err(e),
        });
    })?;
    Ok(into_raw(result))
}

/// Sends a message: binary, or text (`data` must then be UTF-8:
/// `TORNADO_ERR_INVALID` otherwise), compressed when permessage-deflate
/// was agreed, masked with a fresh key. `data` (`len` bytes; NULL only
/// with `len` 0) is read during the call only: the frame is built from a
/// copy. Messages go out in call order. The
/// future (value NULL) resolves once the frame is on the wire. NULL on a
/// bad call: `TORNADO_ERR_CLOSED` once the connection is closing or
/// closed, `TORNADO_ERR_TOO_LARGE` when max_write_buffer bytes are already
/// waiting to be sent (wait for earlier futures and retry).
#[no_mangle]
pub extern "C" fn tornado_websocket_write_message(
    ws: *mut tornado_websocket,
    data: *const u8,
    len: usize,
    binary: bool,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        // SAFETY: `len` readable bytes per the contract.
        let payload = unsafe { bytes(data, len) }?;
        let written = if binary {
            handle.ws.write_binary(payload)?
        } else {
            let text = std::str::from_utf8(payload)
                .map_err(|_| Error::invalid("a text message must be UTF-8"))?;
            handle.ws.write_text(text)?
        };
        write_future(handle, written)
    })
}

/// Sends a ping with `len` (at most 125) bytes of payload (`data`, read
/// during the call only; NULL only with `len` 0); the future
/// resolves once it is on the wire (the pong goes to no callback: see
/// the ping options for liveness). NULL on a bad call (over 125 bytes:
/// `TORNADO_ERR_INVALID`; closing or closed: `TORNADO_ERR_CLOSED`).
#[no_mangle]
pub extern "C" fn tornado_websocket_ping(
    ws: *mut tornado_websocket,
    data: *const u8,
    len: usize,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        // SAFETY: `len` readable bytes per the contract.
        let payload = unsafe { bytes(data, len) }?;
        write_future(handle, handle.ws.ping(payload)?)
    })
}

/// Starts the close handshake with `code` (0: a close frame without one;
/// otherwise 1000-1003, 1007-1014 or 3000-4999) and `reason` (NULL or
/// UTF-8, at most 123 bytes, only with a code; read during the call
/// only). The future (value NULL)
/// resolves once the server's close frame came and the connection is
/// closed; it fails with `TORNADO_ERR_TIMEOUT` when the server does not
/// answer within the close timeout (the connection is closed anyway), or
/// with the error that ended the connection first. Calling it again waits
/// for the same end. Messages received before stay readable; once closing,
/// one that arrives while another waits unread is dropped (the server's
/// close is read past it). NULL on a bad call.
#[no_mangle]
pub extern "C" fn tornado_websocket_close(
    ws: *mut tornado_websocket,
    code: c_int,
    reason: *const c_char,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        let reason = if reason.is_null() {
            ""
        } else {
            // SAFETY: a NUL-terminated string per the contract.
            unsafe { c_str(reason, "reason") }?
        };
        let code = match code {
            0 => None,
            1..=65535 => Some(code as u16),
            _ => return Err(Error::invalid(format!("{code} is not a close code"))),
        };
        let closing = handle.ws.close(code, reason)?;
        write_future(handle, closing)
    })
}

/// The code of the server's close frame: 0 before one came, when it had
/// none, and for NULL or a call from another thread.
#[no_mangle]
pub extern "C" fn tornado_websocket_close_code(ws: *const tornado_websocket) -> c_int {
    entry!(0, || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        Ok(handle.ws.close_code().map_or(0, c_int::from))
    })
}

/// The reason of the server's close frame (UTF-8; "" when it gave none),
/// or NULL before one came. Owned by the handle.
#[no_mangle]
pub extern "C" fn tornado_websocket_close_reason(ws: *const tornado_websocket) -> *const c_char {
    entry!(std::ptr::null(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        let Some(reason) = handle.ws.close_reason() else {
            return Ok(std::ptr::null());
        };
        let cached = handle
            .close_reason
            .get_or_init(|| optional_c_string(Some(&reason)));
        Ok(cached.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
    })
}

/// The subprotocol the server chose, or NULL when it chose none. Owned by the handle.
#[no_mangle]
pub extern "C" fn tornado_websocket_subprotocol(ws: *const tornado_websocket) -> *const c_char {
    entry!(std::ptr::null(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        Ok(handle
            .subprotocol
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()))
    })
}

/// The extensions agreed (the server's Sec-WebSocket-Extensions, e.g.
/// "permessage-deflate"), or NULL when none. Owned by the handle.
#[no_mangle]
pub extern "C" fn tornado_websocket_extensions(ws: *const tornado_websocket) -> *const c_char {
    entry!(std::ptr::null(), || {
        // SAFETY: caller passes a live handle or NULL.
        let handle = unsafe { ws_ref(ws) }?;
        Ok(handle
            .extensions
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()))
    })
}

/// True once the connection ended, cleanly or not (false for NULL).
#[no_mangle]
pub extern "C" fn tornado_websocket_is_closed(ws: *const tornado_websocket) -> bool {
    entry!(false, || {
        // SAFETY: caller passes a live handle or NULL.
        Ok(unsafe { ws_ref(ws) }?.ws.is_closed())
    })
}

/// Why the connection ended when it did not close cleanly: `TORNADO_OK`
/// while it is open or after a clean close; otherwise the error's code
/// (as the failed read's), its "kind: detail" message then in
/// `tornado_last_error()`. `TORNADO_ERR_INVALID` for NULL,
/// `TORNADO_ERR_WRONG_THREAD` from another thread.
#[no_mangle]
pub extern "C" fn tornado_websocket_error(ws: *const tornado_websocket) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live handle or NULL.
        match unsafe { ws_ref(ws) }?.ws.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// Bytes written and not yet on the wire (0 for NULL).
#[no_mangle]
pub extern "C" fn tornado_websocket_buffered_amount(ws: *const tornado_websocket) -> usize {
    entry!(0, || {
        // SAFETY: caller passes a live handle or NULL.
        Ok(unsafe { ws_ref(ws) }?.ws.buffered_amount())
    })
}
