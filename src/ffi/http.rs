//! `tornado_http_*`: the HTTP client, its requests and responses through
//! the C ABI (Tornado's `AsyncHTTPClient`, `HTTPRequest`, `HTTPResponse`).

use std::cell::OnceCell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::net::IpAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, UNIX_EPOCH};

use super::future::{from_raw, into_raw, tornado_future, CFuture, CValue};
use super::loop_api::{loop_ref, tornado_loop};
use super::types::{tornado_drop_fn, UserData};
use super::{c_str, guard_code, guard_value, non_null, seconds, tornado_code};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::http::body_pool::BodyPool;
use crate::http::client::{AsyncHTTPClient, ClientOptions};
use crate::http::request::{AuthMode, BodyProducer, BodyWriter, HTTPRequest, StreamingCallback};
use crate::http::response::HTTPResponse;
use crate::util::current_thread_id;

// ---- client options ----

/// Client-wide settings for `tornado_http_client_new`. Made by
/// `tornado_http_client_options_new` (with Tornado's defaults), released by
/// `tornado_http_client_options_free`; the client copies them, so they may
/// be freed right after. They belong to the thread that made them (their
/// callbacks, such as a resolver, are shared with the clients made from
/// them without atomics): setters, `tornado_http_client_new` with them and
/// their free from another thread are refused (`TORNADO_ERR_WRONG_THREAD`;
/// the free logs an error and leaks them).
pub struct tornado_http_client_options {
    options: ClientOptions,
    /// `current_thread_id()` of the thread that made them.
    owner: u64,
}

/// Checks options are non-NULL and this is their thread.
///
/// # Safety
/// `ptr` must be NULL or live options.
unsafe fn check_options(ptr: *const tornado_http_client_options) -> Result<()> {
    non_null(ptr, "options")?;
    // SAFETY: non-NULL and live per the contract; `owner` is written once.
    check_owner(unsafe { (*ptr).owner }, "client options belong")
}

/// `TORNADO_ERR_WRONG_THREAD` unless this is the `owner` thread (handles
/// whose insides are shared without atomics: requests, client options).
fn check_owner(owner: u64, what: &str) -> Result<()> {
    if owner != current_thread_id() {
        return Err(Error::new(
            crate::error::Code::WRONG_THREAD,
            format!("{what} to the thread that made them"),
        ));
    }
    Ok(())
}

/// New options with the defaults: max_clients 10, max_buffer_size and
/// max_body_size 100 MiB, max_header_size 64 KiB, idle connections kept
/// 60 s, as many per origin as max_clients (whatever it is set to).
#[no_mangle]
pub extern "C" fn tornado_http_client_options_new() -> *mut tornado_http_client_options {
    guard_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(tornado_http_client_options {
            options: ClientOptions::default(),
            owner: current_thread_id(),
        })))
    })
}

/// Frees options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_free(options: *mut tornado_http_client_options) {
    guard_value((), || {
        if !options.is_null() {
            // SAFETY: caller passes live options.
            if let Err(e) = unsafe { check_options(options) } {
                crate::log::error(&format!(
                    "tornado_http_client_options_free: {e}; the options leak"
                ));
                return Err(e);
            }
            // SAFETY: from `Box::into_raw` in `tornado_http_client_options_new`; freed once.
            drop(unsafe { Box::from_raw(options) });
        }
        Ok(())
    })
}

pub(crate) fn with_options(
    options: *mut tornado_http_client_options,
    f: impl FnOnce(&mut ClientOptions) -> Result<()>,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes live options or NULL.
        unsafe { check_options(options) }?;
        // SAFETY: live, and on their thread (checked).
        f(unsafe { &mut (*options).options })
    })
}

fn positive(value: u64, what: &str) -> Result<u64> {
    if value == 0 {
        return Err(Error::invalid(format!("{what} must be positive")));
    }
    Ok(value)
}

/// Fetches in flight at once (>= 1); the rest wait in a FIFO queue.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_max_clients(
    options: *mut tornado_http_client_options,
    max_clients: usize,
) -> tornado_code {
    with_options(options, |o| {
        o.max_clients = positive(max_clients as u64, "max_clients")? as usize;
        Ok(())
    })
}

/// The most a connection's read buffer may hold (> 0).
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_max_buffer_size(
    options: *mut tornado_http_client_options,
    bytes: usize,
) -> tornado_code {
    with_options(options, |o| {
        o.max_buffer_size = positive(bytes as u64, "max_buffer_size")? as usize;
        Ok(())
    })
}

/// The most a response head may take (> 0); more ends the fetch with
/// `header_too_large`.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_max_header_size(
    options: *mut tornado_http_client_options,
    bytes: usize,
) -> tornado_code {
    with_options(options, |o| {
        o.max_header_size = positive(bytes as u64, "max_header_size")? as usize;
        Ok(())
    })
}

/// The most a response body may take after decompression (> 0); more ends
/// the fetch with `body_too_large`.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_max_body_size(
    options: *mut tornado_http_client_options,
    bytes: u64,
) -> tornado_code {
    with_options(options, |o| {
        o.max_body_size = positive(bytes, "max_body_size")?;
        Ok(())
    })
}

/// How long an idle keep-alive connection is kept (seconds, > 0).
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_idle_timeout(
    options: *mut tornado_http_client_options,
    seconds_: f64,
) -> tornado_code {
    with_options(options, |o| {
        let idle = seconds(seconds_, "idle_timeout")?;
        if idle.is_zero() {
            return Err(Error::invalid("idle_timeout must be > 0"));
        }
        o.idle_timeout = idle;
        Ok(())
    })
}

/// Idle connections kept per origin (0: no keep-alive pooling). Default:
/// max_clients, so fetches to one keep-alive origin never open more than
/// max_clients connections; a smaller value closes the surplus of a burst.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_max_idle_per_host(
    options: *mut tornado_http_client_options,
    count: usize,
) -> tornado_code {
    with_options(options, |o| {
        o.max_idle_per_host = Some(count);
        Ok(())
    })
}

/// Resolves `host` to the IP address `address` instead of asking DNS
/// (Tornado's hostname_mapping). Repeat to add more addresses for a host.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_add_hostname_mapping(
    options: *mut tornado_http_client_options,
    host: *const c_char,
    address: *const c_char,
) -> tornado_code {
    with_options(options, |o| {
        // SAFETY: caller passes NUL-terminated strings or NULL.
        let host = unsafe { c_str(host, "host") }?.to_ascii_lowercase();
        // SAFETY: as above.
        let ip = parse_ip(unsafe { c_str(address, "address") }?)?;
        match o.hostname_mapping.iter_mut().find(|(h, _)| *h == host) {
            Some((_, addrs)) => addrs.push(ip),
            None => o.hostname_mapping.push((host, vec![ip])),
        }
        Ok(())
    })
}

/// Default request values (Tornado's `defaults`): requests made with
/// `tornado_http_client_request_new` start as a copy of `request` (copied
/// now; its URL is ignored). NULL removes the defaults.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_defaults(
    options: *mut tornado_http_client_options,
    request: *const tornado_http_request,
) -> tornado_code {
    with_options(options, |o| {
        o.defaults = if request.is_null() {
            None
        } else {
            let shared = request_snapshot(request)?;
            Some(HTTPRequest::clone(&shared))
        };
        Ok(())
    })
}

fn parse_ip(text: &str) -> Result<IpAddr> {
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| Error::invalid(format!("{text:?} is not an IP address")))
}

// ---- the client ----

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
    guard_value(std::ptr::null_mut(), || {
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
unsafe fn client_ref<'a>(ptr: *const tornado_http_client) -> Result<&'a AsyncHTTPClient> {
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
    guard_code(|| {
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
    guard_code(|| {
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
    guard_value(0, || Ok(unsafe { client_ref(client) }?.queued()))
}

/// Fetches holding one of the max_clients slots now (connecting,
/// exchanging, following redirects), as Tornado's `len(client.active)`
/// (0 on error).
#[no_mangle]
pub extern "C" fn tornado_http_client_active(client: *const tornado_http_client) -> usize {
    // SAFETY: caller passes a live client or NULL.
    guard_value(0, || Ok(unsafe { client_ref(client) }?.active()))
}

/// Idle keep-alive connections the client holds now (0 on error).
#[no_mangle]
pub extern "C" fn tornado_http_client_idle_connections(
    client: *const tornado_http_client,
) -> usize {
    // SAFETY: caller passes a live client or NULL.
    guard_value(0, || Ok(unsafe { client_ref(client) }?.idle_connections()))
}

// ---- requests ----

/// A request (Tornado's `HTTPRequest`) with Tornado's defaults. Made by
/// `tornado_http_request_new`, released by `tornado_http_request_free`. A
/// fetch copies it, so it may be freed or changed right after the call.
/// It belongs to the thread that made it: its setters, fetches of it and
/// `tornado_http_client_options_set_defaults` from any other thread return
/// `TORNADO_ERR_WRONG_THREAD`, and its free there only logs an error.
pub struct tornado_http_request {
    /// Shared with the fetches made from it; a setter called while one is
    /// in flight changes a copy (copy on write), so a fetch sees the
    /// request as it was when fetched, without a copy per fetch. The share
    /// (and the callbacks' own `Rc`s) is counted without atomics: only the
    /// `owner` thread may touch it (issue 12 #14).
    request: Rc<HTTPRequest>,
    /// `current_thread_id()` of the thread that made the handle.
    owner: u64,
}

fn new_request_handle(request: HTTPRequest) -> *mut tornado_http_request {
    Box::into_raw(Box::new(tornado_http_request {
        request: Rc::new(request),
        owner: current_thread_id(),
    }))
}

/// Checks `ptr` is a request and that this is its owner thread.
///
/// # Safety
/// `ptr` must be NULL or a live request.
unsafe fn check_request(ptr: *const tornado_http_request) -> Result<()> {
    non_null(ptr, "request")?;
    // SAFETY: non-NULL and live per the contract; `owner` is written once,
    // before the pointer is handed out, so any thread may read it.
    check_owner(unsafe { (*ptr).owner }, "requests belong")
}

/// A GET request for `url` with the defaults (connect and request timeouts
/// 20 s, redirects followed up to 5, gzip accepted, certificates
/// validated). The URL is checked when fetched. NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_http_request_new(url: *const c_char) -> *mut tornado_http_request {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let url = unsafe { c_str(url, "url") }?;
        Ok(new_request_handle(HTTPRequest::new(url)))
    })
}

/// A GET request for `url` that starts from the client's default request
/// values (see `tornado_http_client_options_set_defaults`). Released by
/// `tornado_http_request_free`. NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_http_client_request_new(
    client: *const tornado_http_client,
    url: *const c_char,
) -> *mut tornado_http_request {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live client or NULL.
        let client = unsafe { client_ref(client) }?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let url = unsafe { c_str(url, "url") }?;
        Ok(new_request_handle(client.request(url)))
    })
}

/// Frees a request (and, once no fetch uses them, its callbacks' userdata
/// through their drop functions). NULL is a no-op. From a thread other than
/// the one that made it, it does nothing but log an error (the request
/// leaks): its share with fetches in flight is not thread-safe.
#[no_mangle]
pub extern "C" fn tornado_http_request_free(request: *mut tornado_http_request) {
    guard_value((), || {
        if !request.is_null() {
            // SAFETY: caller passes a live request.
            if let Err(e) = unsafe { check_request(request) } {
                crate::log::error(&format!(
                    "tornado_http_request_free: {e}; the request leaks"
                ));
                return Err(e);
            }
            // SAFETY: from `Box::into_raw` in `new_request_handle`; freed once.
            drop(unsafe { Box::from_raw(request) });
        }
        Ok(())
    })
}

fn with_request(
    request: *mut tornado_http_request,
    f: impl FnOnce(&mut HTTPRequest) -> Result<()>,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes a live request or NULL.
        unsafe { check_request(request) }?;
        // SAFETY: live, and on its owner thread (checked).
        f(Rc::make_mut(unsafe { &mut (*request).request }))
    })
}

/// A string setter: NULL clears the field where it is optional.
fn optional_str(value: *const c_char, what: &str) -> Result<Option<String>> {
    if value.is_null() {
        return Ok(None);
    }
    // SAFETY: caller passes a NUL-terminated string.
    Ok(Some(unsafe { c_str(value, what) }?.to_string()))
}

/// The method, e.g. "POST" (default "GET"). Methods other than GET, HEAD,
/// POST, PUT, DELETE, PATCH and OPTIONS need allow_nonstandard_methods.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_method(
    r: *mut tornado_http_request,
    method: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        // SAFETY: caller passes a NUL-terminated string or NULL.
        req.method = unsafe { c_str(method, "method") }?.to_string();
        Ok(())
    })
}

/// Adds a header line; repeatable, order kept. A CR, LF or NUL in the name
/// or value makes the fetch fail with `invalid_request` before anything is sent.
#[no_mangle]
pub extern "C" fn tornado_http_request_add_header(
    r: *mut tornado_http_request,
    name: *const c_char,
    value: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        // SAFETY: caller passes NUL-terminated strings or NULL.
        let name = unsafe { c_str(name, "name") }?;
        // SAFETY: as above.
        let value = unsafe { c_str(value, "value") }?;
        req.headers.add(name, value);
        Ok(())
    })
}

/// Adds a header whose value is `len` bytes (copied), sent exactly as
/// given: a value that is not UTF-8 (Latin-1, as Tornado encodes header
/// values) is allowed. The name is a NUL-terminated token (copied too). A name that is
/// not a token, or a CR, LF or NUL in the value, is refused here
/// (`TORNADO_ERR_INVALID`): it could inject a header. `value` may be NULL
/// when `len` is 0.
#[no_mangle]
pub extern "C" fn tornado_http_request_add_header_bytes(
    r: *mut tornado_http_request,
    name: *const c_char,
    value: *const u8,
    len: usize,
) -> tornado_code {
    with_request(r, |req| {
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let name = unsafe { c_str(name, "name") }?;
        let value: &[u8] = if len == 0 {
            &[]
        } else {
            non_null(value, "value")?;
            // SAFETY: the caller passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(value, len) }
        };
        if !crate::http::wire::is_token(name) {
            return Err(Error::invalid(format!("bad header name {name:?}")));
        }
        if value.iter().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(Error::invalid(format!(
                "CR, LF or NUL in the value of {name}"
            )));
        }
        match std::str::from_utf8(value) {
            Ok(text) => req.headers.add(name, text),
            Err(_) => req.headers.add_latin1(name, value),
        }
        Ok(())
    })
}

/// The body (copied). `data` may be NULL when `len` is 0 (an empty body).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_body(
    r: *mut tornado_http_request,
    data: *const u8,
    len: usize,
) -> tornado_code {
    with_request(r, |req| {
        let body = if len == 0 {
            Vec::new()
        } else {
            non_null(data, "data")?;
            // SAFETY: the caller passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
        };
        req.body = Some(body);
        Ok(())
    })
}

fn timeout_secs(value: f64, what: &str) -> Result<Option<Duration>> {
    let duration = seconds(value, what)?;
    Ok((!duration.is_zero()).then_some(duration))
}

/// Seconds allowed for resolve + connect + TLS handshake (default 20; 0: none).
/// Running out fails the fetch with `TORNADO_ERR_TIMEOUT`, the message saying
/// which step ran out: "timeout: Timeout while resolving <host>", "timeout:
/// Timeout while connecting", or "timeout: Timeout during TLS handshake with
/// <host>:<port>" (Tornado's words).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_connect_timeout(
    r: *mut tornado_http_request,
    seconds_: f64,
) -> tornado_code {
    with_request(r, |req| {
        req.connect_timeout = timeout_secs(seconds_, "connect_timeout")?;
        Ok(())
    })
}

/// Seconds allowed for the whole exchange (default 20; 0: none).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_request_timeout(
    r: *mut tornado_http_request,
    seconds_: f64,
) -> tornado_code {
    with_request(r, |req| {
        req.request_timeout = timeout_secs(seconds_, "request_timeout")?;
        Ok(())
    })
}

/// Follow redirects (default true).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_follow_redirects(
    r: *mut tornado_http_request,
    follow: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.follow_redirects = follow;
        Ok(())
    })
}

/// The most redirects followed (default 5; >= 0).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_max_redirects(
    r: *mut tornado_http_request,
    max: c_int,
) -> tornado_code {
    with_request(r, |req| {
        req.max_redirects =
            u32::try_from(max).map_err(|_| Error::invalid("max_redirects must be >= 0"))?;
        Ok(())
    })
}

/// The User-Agent header (default "tornado_rs/<version>"; NULL restores it).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_user_agent(
    r: *mut tornado_http_request,
    user_agent: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.user_agent = optional_str(user_agent, "user_agent")?;
        Ok(())
    })
}

/// Basic authentication (NULL username: none; NULL password: empty). Never sent to another
/// origin after a redirect.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_auth(
    r: *mut tornado_http_request,
    username: *const c_char,
    password: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.auth_username = optional_str(username, "username")?;
        req.auth_password = optional_str(password, "password")?;
        Ok(())
    })
}

/// How the credentials of `tornado_http_request_set_auth` are sent, as
/// Tornado's `auth_mode`: "basic" (the default: `Authorization: Basic` on
/// every request) or "digest" (RFC 7616, MD5 or SHA-256: the request goes
/// without credentials, and once more answering the server's 401
/// challenge; the challenge response is not shown to the callbacks). A
/// request with a body producer is not sent twice: its 401 is the
/// response. Anything else is `TORNADO_ERR_INVALID`. `mode` is read during
/// the call only.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_auth_mode(
    r: *mut tornado_http_request,
    mode: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let mode = unsafe { c_str(mode, "mode") }?;
        req.auth_mode = match mode {
            "basic" => AuthMode::Basic,
            "digest" => AuthMode::Digest,
            other => return Err(Error::invalid(format!("unknown auth_mode {other:?}"))),
        };
        Ok(())
    })
}

/// Ask for and decode gzip/deflate bodies (default true).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_decompress_response(
    r: *mut tornado_http_request,
    decompress: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.decompress_response = decompress;
        Ok(())
    })
}

/// Validate the server's TLS certificate (default true), against `ca_certs`
/// or else the system's trust store.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_validate_cert(
    r: *mut tornado_http_request,
    validate: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.validate_cert = validate;
        Ok(())
    })
}

/// Trust the CAs in this PEM file instead of the system's trust store
/// (NULL: the system's store; see `tornado_tls_options_set_ca_file`).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_ca_certs(
    r: *mut tornado_http_request,
    path: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.ca_certs = optional_str(path, "path")?.map(Into::into);
        Ok(())
    })
}

/// A client certificate chain and key (PEM files, read when a connection
/// starts; both NULL: none; one without the other: `TORNADO_ERR_INVALID`).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_client_cert(
    r: *mut tornado_http_request,
    cert_file: *const c_char,
    key_file: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        let cert = optional_str(cert_file, "cert_file")?;
        let key = optional_str(key_file, "key_file")?;
        if cert.is_some() != key.is_some() {
            return Err(Error::invalid(
                "a client certificate needs both cert_file and key_file (or neither)",
            ));
        }
        if cert.is_some() {
            req.client_cert_pem = None; // one client certificate: the last set
        }
        req.client_cert = cert.map(Into::into);
        req.client_key = key.map(Into::into);
        Ok(())
    })
}

// ---- TLS options beyond Tornado's fields (its ssl_options) ----

/// `len` bytes at `data` (NULL with `len` 0: none), borrowed for the call.
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes.
unsafe fn pem_arg<'a>(data: *const u8, len: usize, what: &str) -> Result<Option<&'a [u8]>> {
    if data.is_null() && len == 0 {
        return Ok(None);
    }
    non_null(data, what)?;
    // SAFETY: non-NULL, and the caller passes `len` readable bytes.
    Ok(Some(unsafe { std::slice::from_raw_parts(data, len) }))
}

/// Checked here, so a C caller learns of malformed PEM when setting it.
fn invalid_pem(e: Error) -> Error {
    Error::invalid(e.message().trim_start_matches("tls: "))
}

/// Trusts the CA certificates in `len` bytes of PEM at `pem` (copied; the
/// caller keeps its buffer) instead of the system's trust store, together
/// with those of `tornado_http_request_set_ca_certs`' file if one is set
/// (Python's `load_verify_locations(cadata=...)`). PEM with no certificate
/// or a malformed one is `TORNADO_ERR_INVALID` here, the request unchanged.
/// NULL with `len` 0 removes it.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_ca_pem(
    r: *mut tornado_http_request,
    pem: *const u8,
    len: usize,
) -> tornado_code {
    with_request(r, |req| {
        // SAFETY: the caller passes `len` readable bytes or NULL.
        let pem = unsafe { pem_arg(pem, len, "pem") }?;
        if let Some(pem) = pem {
            crate::tls::certs_from_pem(pem, "CA").map_err(invalid_pem)?;
        }
        req.ca_pem = pem.map(Into::into);
        Ok(())
    })
}

/// A client certificate chain and its private key as PEM bytes (both
/// copied; the caller keeps its buffers), shown to servers that ask for
/// one; it replaces files given to `tornado_http_request_set_client_cert`
/// (one client certificate per request: the last set). Malformed PEM, no
/// certificate, no key, or one without the other is `TORNADO_ERR_INVALID`
/// here, the request unchanged; a key that does not match the certificate
/// fails the fetch with a `tls` error. Both NULL with lengths 0: none.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_client_cert_pem(
    r: *mut tornado_http_request,
    cert: *const u8,
    cert_len: usize,
    key: *const u8,
    key_len: usize,
) -> tornado_code {
    with_request(r, |req| {
        // SAFETY: the caller passes readable bytes or NULL, as documented.
        let cert = unsafe { pem_arg(cert, cert_len, "cert") }?;
        // SAFETY: as above.
        let key = unsafe { pem_arg(key, key_len, "key") }?;
        req.client_cert_pem = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                crate::tls::certs_from_pem(cert, "client certificate").map_err(invalid_pem)?;
                crate::tls::key_from_pem(key).map_err(invalid_pem)?;
                req.client_cert = None;
                req.client_key = None;
                Some((cert.into(), key.into()))
            }
            _ => {
                return Err(Error::invalid(
                    "a client certificate needs both cert and key (or neither)",
                ))
            }
        };
        Ok(())
    })
}

/// The lowest TLS version accepted: "1.2" (the default) or "1.3" (Python's
/// `minimum_version`, curl's `--tlsv1.3`); a server that cannot speak it
/// fails the fetch with a `tls` error. Anything else is
/// `TORNADO_ERR_INVALID`; NULL restores the default. The string is copied.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_min_tls_version(
    r: *mut tornado_http_request,
    version: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.min_tls_version = optional_str(version, "version")?
            .map(|v| crate::tls::TlsVersion::parse(&v))
            .transpose()?;
        Ok(())
    })
}

/// The ALPN protocols offered, in order of preference: `count`
/// NUL-terminated names (each 1 to 255 bytes; the array and the names are
/// copied). The client speaks HTTP/1.1 only: a server that picks another
/// protocol (say "h2") fails the fetch with a `protocol` error; one that
/// picks none is spoken to in HTTP/1.1. NULL with `count` 0 restores the
/// default ("http/1.1" alone); a non-NULL array with `count` 0 offers none.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_alpn(
    r: *mut tornado_http_request,
    protocols: *const *const c_char,
    count: usize,
) -> tornado_code {
    with_request(r, |req| {
        if protocols.is_null() && count == 0 {
            req.alpn_protocols = None;
            return Ok(());
        }
        non_null(protocols, "protocols")?;
        // SAFETY: the caller passes `count` readable pointers.
        let names = unsafe { std::slice::from_raw_parts(protocols, count) };
        let mut offered = Vec::with_capacity(count);
        for &name in names {
            non_null(name, "protocol")?;
            // SAFETY: non-NULL, and NUL-terminated per the contract.
            let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
            if name.is_empty() || name.len() > 255 {
                return Err(Error::invalid("an ALPN protocol has 1 to 255 bytes"));
            }
            offered.push(name.to_vec());
        }
        req.alpn_protocols = Some(offered.into());
        Ok(())
    })
}

/// The name sent as SNI and checked against the server's certificate
/// instead of the URL's host (Python's `server_hostname`): fetch
/// https://127.0.0.1:PORT/ from a server whose certificate names
/// "mtls.test". The address connected to and the Host header still come
/// from the URL. A name that is neither a DNS name nor an IP address is
/// `TORNADO_ERR_INVALID`; NULL restores the URL's host. The string is copied.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_server_name(
    r: *mut tornado_http_request,
    name: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        let name = optional_str(name, "name")?;
        if let Some(name) = &name {
            crate::tls::server_name(name)?;
        }
        req.tls_server_name = name.map(Into::into);
        Ok(())
    })
}

/// Allow IPv6 addresses (default true; false: IPv4 only).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_allow_ipv6(
    r: *mut tornado_http_request,
    allow: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.allow_ipv6 = allow;
        Ok(())
    })
}

/// Connect from this local IP address (NULL: any).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_network_interface(
    r: *mut tornado_http_request,
    address: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.network_interface = optional_str(address, "address")?
            .map(|a| parse_ip(&a))
            .transpose()?;
        Ok(())
    })
}

/// Sends If-Modified-Since with this time (seconds since the Unix epoch; < 0: none).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_if_modified_since(
    r: *mut tornado_http_request,
    unix_time: f64,
) -> tornado_code {
    with_request(r, |req| {
        req.if_modified_since = if unix_time < 0.0 {
            None
        } else {
            Some(UNIX_EPOCH + seconds(unix_time, "unix_time")?)
        };
        Ok(())
    })
}

/// Fetch through an HTTP proxy (NULL host: none; port 0: 8080): plain
/// requests for http URLs, a CONNECT tunnel for https. Username and
/// password may be NULL.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_proxy(
    r: *mut tornado_http_request,
    host: *const c_char,
    port: u16,
    username: *const c_char,
    password: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.proxy_host = optional_str(host, "host")?;
        req.proxy_port = (port != 0).then_some(port);
        req.proxy_username = optional_str(username, "username")?;
        req.proxy_password = optional_str(password, "password")?;
        Ok(())
    })
}

/// Allow any method, and a body on any method (default false).
#[no_mangle]
pub extern "C" fn tornado_http_request_set_allow_nonstandard_methods(
    r: *mut tornado_http_request,
    allow: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.allow_nonstandard_methods = allow;
        Ok(())
    })
}

/// Send `Expect: 100-continue` and the body only once the server agrees.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_expect_100_continue(
    r: *mut tornado_http_request,
    expect: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.expect_100_continue = expect;
        Ok(())
    })
}

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
/// caller's reference) that is done once the bytes reached the socket,
/// which is when a producer that respects flow control writes the next
/// part; it fails when the upload is over (the producer's future is done
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
    guard_value(std::ptr::null_mut(), || {
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
    guard_value((), || {
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

// ---- responses ----

/// A freed response gives its body's buffer back to its client's pool.
impl Drop for tornado_http_response {
    fn drop(&mut self) {
        if let Some(pool) = self.body_pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.response.body).into_buffer());
        }
    }
}

/// Moves the response out of a finished fetch's future, which nothing else
/// reads: the body is not copied.
fn take_response(done: &Future<HTTPResponse>) -> Option<Result<HTTPResponse>> {
    done.with_outcome_mut(|outcome| {
        outcome.map(|outcome| match outcome {
            Ok(response) => Ok(std::mem::replace(response, HTTPResponse::taken())),
            Err(e) => Err(e.clone()),
        })
    })
}

/// A response (Tornado's `HTTPResponse`): owned by the fetch future that
/// holds it, or borrowed for the duration of a fetch callback.
pub struct tornado_http_response {
    response: HTTPResponse,
    /// Where the body's buffer goes back when the response is freed.
    body_pool: Weak<BodyPool>,
    /// C strings made on first use (most callers read only code and body).
    text: OnceCell<ResponseText>,
    /// Every header field as "Name: value\r\n", made on first use.
    header_block: OnceCell<Vec<u8>>,
}

/// The response's strings as C strings, borrowed out by the accessors.
struct ResponseText {
    reason: CString,
    effective_url: CString,
    error: Option<CString>,
    headers: Vec<(CString, CString)>,
    /// The received bytes (and a NUL) of each value that was not UTF-8,
    /// by header index; the others' bytes are their C strings'.
    raw_values: Vec<(usize, Vec<u8>)>,
}

fn c_string(text: &str) -> CString {
    CString::new(text).unwrap_or_else(|_| CString::new(text.replace('\0', "")).unwrap_or_default())
}

impl tornado_http_response {
    fn new(response: HTTPResponse, body_pool: Weak<BodyPool>) -> tornado_http_response {
        tornado_http_response {
            response,
            body_pool,
            text: OnceCell::new(),
            header_block: OnceCell::new(),
        }
    }

    fn text(&self) -> &ResponseText {
        self.text.get_or_init(|| {
            let r = &self.response;
            ResponseText {
                reason: c_string(&r.reason),
                effective_url: c_string(&r.effective_url),
                error: r.error.as_ref().map(|e| c_string(e.message())),
                headers: r
                    .headers
                    .iter()
                    .map(|(n, v)| (c_string(n), c_string(v)))
                    .collect(),
                raw_values: (0..r.headers.len())
                    .filter_map(|i| match r.headers.value_bytes_at(i)? {
                        std::borrow::Cow::Owned(mut raw) => {
                            raw.push(0);
                            Some((i, raw))
                        }
                        std::borrow::Cow::Borrowed(_) => None,
                    })
                    .collect(),
            }
        })
    }
}

/// Curl's timings of a fetch, in seconds from its start. Each stage ends
/// no earlier than the one before; on a reused keep-alive connection
/// namelookup, connect (and appconnect for https) end with the queue, and
/// appconnect is 0 for plain http, as curl reports them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct tornado_http_time_info {
    /// Waiting for a free slot among max_clients.
    pub queue: f64,
    /// Name resolution done.
    pub namelookup: f64,
    /// TCP connected.
    pub connect: f64,
    /// TLS handshake done.
    pub appconnect: f64,
    /// About to send the request.
    pub pretransfer: f64,
    /// The first response byte arrived.
    pub starttransfer: f64,
    /// All done.
    pub total: f64,
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
    guard_value(std::ptr::null_mut(), || {
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
fn request_snapshot(request: *const tornado_http_request) -> Result<Rc<HTTPRequest>> {
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
    guard_code(|| {
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

/// # Safety
/// `ptr` must be NULL or a live response.
unsafe fn response_ref<'a>(ptr: *const tornado_http_response) -> Result<&'a tornado_http_response> {
    non_null(ptr, "response")?;
    // SAFETY: non-NULL and live per the contract.
    Ok(unsafe { &*ptr })
}

/// The status code (599 when no response was received; 0 on a NULL response).
#[no_mangle]
pub extern "C" fn tornado_http_response_code(r: *const tornado_http_response) -> c_int {
    // SAFETY: caller passes a live response or NULL.
    guard_value(0, || {
        Ok(c_int::from(unsafe { response_ref(r) }?.response.code))
    })
}

/// The reason phrase (borrowed from the response; "" when none).
#[no_mangle]
pub extern "C" fn tornado_http_response_reason(r: *const tornado_http_response) -> *const c_char {
    // SAFETY: caller passes a live response or NULL.
    guard_value(std::ptr::null(), || {
        Ok(unsafe { response_ref(r) }?.text().reason.as_ptr())
    })
}

/// The body, borrowed from the response: valid while the response is
/// (until its future is released, or until the fetch callback returns).
/// `len` receives its length. Empty when a streaming callback took it. A non-empty body of known
/// length that was neither decoded nor streamed starts 64-byte aligned
/// (read in place: the kernel copies into it faster).
#[no_mangle]
pub extern "C" fn tornado_http_response_body(
    r: *const tornado_http_response,
    len: *mut usize,
) -> *const u8 {
    let (ptr, n) = guard_value((std::ptr::null(), 0), || {
        // SAFETY: caller passes a live response or NULL.
        let body = &unsafe { response_ref(r) }?.response.body;
        Ok((body.as_ptr(), body.len()))
    });
    if !len.is_null() {
        // SAFETY: the caller passes a writable size_t or NULL.
        unsafe { *len = n };
    }
    ptr
}

/// The first value of header `name` (case-insensitive), borrowed from the
/// response; NULL when absent.
#[no_mangle]
pub extern "C" fn tornado_http_response_header(
    r: *const tornado_http_response,
    name: *const c_char,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller passes a live response or NULL.
        let response = unsafe { response_ref(r) }?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let name = unsafe { c_str(name, "name") }?;
        Ok(response
            .text()
            .headers
            .iter()
            .find(|(n, _)| n.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map_or(std::ptr::null(), |(_, v)| v.as_ptr()))
    })
}

/// How many header lines the response has (repeats counted).
#[no_mangle]
pub extern "C" fn tornado_http_response_header_count(r: *const tornado_http_response) -> usize {
    // SAFETY: caller passes a live response or NULL.
    guard_value(0, || Ok(unsafe { response_ref(r) }?.response.headers.len()))
}

/// The `i`-th header in received order: name (as received) and value,
/// borrowed from the response (either out pointer may be NULL).
/// `TORNADO_ERR_NOT_FOUND` past the end.
#[no_mangle]
pub extern "C" fn tornado_http_response_header_at(
    r: *const tornado_http_response,
    i: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes a live response or NULL.
        let response = unsafe { response_ref(r) }?;
        let (n, v) =
            response.text().headers.get(i).ok_or_else(|| {
                Error::new(crate::error::Code::NOT_FOUND, format!("no header #{i}"))
            })?;
        if !name.is_null() {
            // SAFETY: the caller passes a writable pointer or NULL.
            unsafe { *name = n.as_ptr() };
        }
        if !value.is_null() {
            // SAFETY: as above.
            unsafe { *value = v.as_ptr() };
        }
        Ok(())
    })
}

/// The `i`-th header's value as the server sent it, byte for byte: `*value`
/// gets its bytes (borrowed from the response; a NUL follows them) and
/// `*len` their count. `tornado_http_response_header_at` gives the same
/// value as UTF-8 text, where bytes that are not UTF-8 were read as
/// Latin-1 ("caf\xe9" becomes "café"); this gives "caf\xe9" back.
/// `name` may be NULL. `TORNADO_ERR_NOT_FOUND` past the end,
/// `TORNADO_ERR_INVALID` for a NULL response, `value` or `len`.
#[no_mangle]
pub extern "C" fn tornado_http_response_header_bytes_at(
    r: *const tornado_http_response,
    i: usize,
    name: *mut *const c_char,
    value: *mut *const u8,
    len: *mut usize,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes a live response or NULL.
        let response = unsafe { response_ref(r) }?;
        non_null(value, "value")?;
        non_null(len, "len")?;
        let text = response.text();
        let (n, v) = text
            .headers
            .get(i)
            .ok_or_else(|| Error::new(crate::error::Code::NOT_FOUND, format!("no header #{i}")))?;
        let bytes = match text.raw_values.iter().find(|(at, _)| *at == i) {
            Some((_, raw)) => &raw[..raw.len() - 1],
            None => v.to_bytes(),
        };
        if !name.is_null() {
            // SAFETY: the caller passes a writable pointer or NULL.
            unsafe { *name = n.as_ptr() };
        }
        // SAFETY: both checked non-NULL; the caller passes writable pointers.
        unsafe {
            *value = bytes.as_ptr();
            *len = bytes.len();
        }
        Ok(())
    })
}

/// Every header field in received order as one block of "Name: value\r\n"
/// lines, values byte for byte as sent (as `tornado_http_response_header_bytes_at`
/// gives them), for a binding that reads all headers in one call.
/// `*len` gets its length; the block (NUL-terminated) is borrowed from the
/// response. NULL (and `*len` 0) for a NULL response.
#[no_mangle]
pub extern "C" fn tornado_http_response_header_block(
    r: *const tornado_http_response,
    len: *mut usize,
) -> *const u8 {
    let (ptr, n) = guard_value((std::ptr::null(), 0), || {
        // SAFETY: caller passes a live response or NULL.
        let response = unsafe { response_ref(r) }?;
        let block = response.header_block.get_or_init(|| {
            let headers = &response.response.headers;
            let mut block = Vec::with_capacity(headers.text_len() + 4 * headers.len() + 1);
            for (name, value) in headers.iter_bytes() {
                block.extend_from_slice(name.as_bytes());
                block.extend_from_slice(b": ");
                block.extend_from_slice(&value);
                block.extend_from_slice(b"\r\n");
            }
            block.push(0);
            block
        });
        Ok((block.as_ptr(), block.len() - 1))
    });
    if !len.is_null() {
        // SAFETY: the caller passes a writable size_t or NULL.
        unsafe { *len = n };
    }
    ptr
}

/// The URL of the final response, after redirects (borrowed).
#[no_mangle]
pub extern "C" fn tornado_http_response_effective_url(
    r: *const tornado_http_response,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller passes a live response or NULL.
        Ok(unsafe { response_ref(r) }?.text().effective_url.as_ptr())
    })
}

/// Seconds the fetch took, not counting time queued (Tornado's
/// request_time); -1 on a NULL response.
#[no_mangle]
pub extern "C" fn tornado_http_response_request_time(r: *const tornado_http_response) -> f64 {
    // SAFETY: caller passes a live response or NULL.
    guard_value(-1.0, || {
        Ok(unsafe { response_ref(r) }?.response.request_time)
    })
}

/// When the fetch started, in seconds since the Unix epoch; -1 on a NULL
/// response.
#[no_mangle]
pub extern "C" fn tornado_http_response_start_time(r: *const tornado_http_response) -> f64 {
    guard_value(-1.0, || {
        // SAFETY: caller passes a live response or NULL.
        let start = unsafe { response_ref(r) }?.response.start_time;
        Ok(start
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()))
    })
}

/// Copies the fetch's timings into `*out`.
#[no_mangle]
pub extern "C" fn tornado_http_response_time_info(
    r: *const tornado_http_response,
    out: *mut tornado_http_time_info,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes a live response or NULL.
        let t = &unsafe { response_ref(r) }?.response.time_info;
        non_null(out, "out")?;
        // SAFETY: non-NULL and writable per the contract.
        unsafe {
            *out = tornado_http_time_info {
                queue: t.queue,
                namelookup: t.namelookup,
                connect: t.connect,
                appconnect: t.appconnect,
                pretransfer: t.pretransfer,
                starttransfer: t.starttransfer,
                total: t.total,
            }
        };
        Ok(())
    })
}

/// The error ("kind: detail", the kind being one of resolve, connect,
/// timeout, tls, protocol, closed, body_too_large, header_too_large,
/// too_many_redirects, invalid_url, invalid_request, cancelled), borrowed;
/// NULL when a response was received without error. A response can carry
/// one: the last 3xx when max_redirects ran out (too_many_redirects).
#[no_mangle]
pub extern "C" fn tornado_http_response_error(r: *const tornado_http_response) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller passes a live response or NULL.
        Ok(unsafe { response_ref(r) }?
            .text()
            .error
            .as_ref()
            .map_or(std::ptr::null(), |e| e.as_ptr()))
    })
}

/// The operating system's error number behind the response's error
/// (ECONNREFUSED for a refused connect, ECONNRESET for a reset, ...), so a
/// binding can raise its native error; 0 when there is none (no error, a
/// timeout, a protocol error) or on a NULL response.
#[no_mangle]
pub extern "C" fn tornado_http_response_os_error(r: *const tornado_http_response) -> c_int {
    guard_value(0, || {
        // SAFETY: caller passes a live response or NULL.
        let response = unsafe { response_ref(r) }?;
        Ok(response
            .response
            .error
            .as_ref()
            .and_then(|e| e.os_error())
            .unwrap_or(0))
    })
}

/// The error's code (`TORNADO_OK` when there is none).
#[no_mangle]
pub extern "C" fn tornado_http_response_error_code(
    r: *const tornado_http_response,
) -> tornado_code {
    guard_value(super::TORNADO_ERR_INVALID, || {
        // SAFETY: caller passes a live response or NULL.
        Ok(unsafe { response_ref(r) }?
            .response
            .error
            .as_ref()
            .map_or(0, |e| e.code().0))
    })
}
