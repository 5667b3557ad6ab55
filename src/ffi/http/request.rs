//! `tornado_http_request_*`: a request's fields (Tornado's `HTTPRequest`),
//! TLS options beyond Tornado's fields included.

use std::ffi::{c_char, c_int};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use super::client::{client_ref, tornado_http_client};
use super::options::check_owner;
use crate::error::{Error, Result};
use crate::ffi::{c_str, non_null, seconds, tornado_code};
use crate::http::request::{AuthMode, HTTPRequest};
use crate::util::current_thread_id;
use crate::util::parse_ip;

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
    pub(super) request: Rc<HTTPRequest>,
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
pub(super) unsafe fn check_request(ptr: *const tornado_http_request) -> Result<()> {
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
    entry!(std::ptr::null_mut(), || {
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
    entry!(std::ptr::null_mut(), || {
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
    entry!((), || {
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

pub(super) fn with_request(
    request: *mut tornado_http_request,
    f: impl FnOnce(&mut HTTPRequest) -> Result<()>,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live request or NULL.
        unsafe { check_request(request) }?;
        // SAFETY: live, and on its owner thread (checked).
        f(Rc::make_mut(unsafe { &mut (*request).request }))
    })
}

/// A string setter: NULL clears the field where it is optional.
pub(super) fn optional_str(value: *const c_char, what: &str) -> Result<Option<String>> {
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
        if !crate::http::validate::is_token(name) {
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
    Ok(crate::gen::limit_of(Some(seconds(value, what)?)))
}

/// Seconds allowed for resolve + connect + TLS handshake (default 20; 0: none).
/// Running out fails the fetch with `TORNADO_ERR_TIMEOUT`, the message saying
/// which step ran out: `"timeout: Timeout while resolving <host>"`,
/// `"timeout: Timeout while connecting"`, or
/// `"timeout: Timeout during TLS handshake with <host>:<port>"` (Tornado's
/// words).
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

/// The User-Agent header (default `"tornado_rs/<version>"`; NULL restores it).
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

/// Ask for and decode compressed bodies (default true): `Accept-Encoding:
/// gzip, deflate, br, zstd` is sent (unless the request has its own) and
/// gzip, deflate, brotli and zstd bodies are decoded, whatever was asked,
/// counted against max_body_size after decoding (a bomb ends with
/// `body_too_large`); a zstd frame whose window is over 8 MiB is refused
/// (RFC 9659) with a `protocol` error, as is a broken stream. false: no
/// Accept-Encoding, bodies as sent.
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
    Error::invalid(e.detail())
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
/// copied). The client speaks HTTP/1.1 and HTTP/2 ("h2"): a server that
/// picks another protocol fails the fetch with a `protocol` error; one that
/// picks none is spoken to in HTTP/1.1. NULL with `count` 0 restores the
/// default (what `tornado_http_request_set_http_version` offers: "h2" and
/// "http/1.1" unless it says otherwise); a non-NULL array with `count` 0
/// offers none.
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

/// Fetch through a proxy (NULL host: none). `host` is an HTTP proxy's
/// host (port 0: 8080): plain requests for http URLs, a CONNECT tunnel for
/// https. Or it is a proxy URL, as curl's `--proxy`: `http://host:port`,
/// `https://host:port` (TLS to the proxy itself, port 0 and none in the
/// URL: 443; its certificate is checked against the system's store unless
/// `tornado_http_request_set_proxy_ca_certs` or
/// `tornado_http_request_set_proxy_validate_cert` say otherwise; https URLs
/// then get TLS to the target inside the proxy's TLS connection),
/// `socks4://`, `socks4a://`, `socks5://` or `socks5h://host:port` (port 0
/// and none in the URL: 1080); the 4a and 5h kinds have the proxy resolve
/// the URL's host, the others resolve it here; https URLs go through TLS
/// inside the SOCKS tunnel. Username and password may be NULL (SOCKS ones
/// may also be in the URL: `socks5h://user:pass@host:port`). An unknown
/// scheme, a bad port or credentials in an `http://` or `https://` URL are
/// `TORNADO_ERR_INVALID` here. A request with a Unix socket uses no proxy.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_proxy(
    r: *mut tornado_http_request,
    host: *const c_char,
    port: u16,
    username: *const c_char,
    password: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        let proxy_host = optional_str(host, "host")?;
        let proxy_port = (port != 0).then_some(port);
        let proxy_username = optional_str(username, "username")?;
        let proxy_password = optional_str(password, "password")?;
        if let Some(host) = &proxy_host {
            crate::http::proxy::parse(
                host,
                proxy_port,
                proxy_username.as_deref(),
                proxy_password.as_deref(),
            )
            .map_err(|e| Error::invalid(e.detail()))?;
        }
        req.proxy_host = proxy_host;
        req.proxy_port = proxy_port;
        req.proxy_username = proxy_username;
        req.proxy_password = proxy_password;
        Ok(())
    })
}

/// Check an https:// proxy's certificate chain and name (default true;
/// false is curl's `--proxy-insecure`, for tests only). Only the
/// connection to the proxy: the target's certificate follows
/// `tornado_http_request_set_validate_cert`. Part of the pool's key.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_proxy_validate_cert(
    r: *mut tornado_http_request,
    validate: bool,
) -> tornado_code {
    with_request(r, |req| {
        req.proxy_validate_cert = validate;
        Ok(())
    })
}

/// Trust the CAs in this PEM file for an https:// proxy instead of the
/// system's trust store (curl's `--proxy-cacert`; NULL: the system's
/// store). `path` is copied; the file is read when a connection to the
/// proxy starts (an unreadable or malformed file fails that fetch with a
/// `tls` error). The target's CAs are `tornado_http_request_set_ca_certs`'.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_proxy_ca_certs(
    r: *mut tornado_http_request,
    path: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        req.proxy_ca_certs = optional_str(path, "path")?.map(Into::into);
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

/// The HTTP versions this fetch may use: a `TORNADO_HTTP_VERSION_*` value;
/// anything else is `TORNADO_ERR_INVALID`. A request on which this is not
/// called uses the client's default. A redirect keeps the choice; its hop
/// may still change version (https picks by ALPN per connection).
/// `tornado_http_response_version` tells which one a response came over.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_http_version(
    r: *mut tornado_http_request,
    version: u32,
) -> tornado_code {
    with_request(r, |req| {
        req.http_version = Some(super::options::http_version(version)?);
        Ok(())
    })
}

/// Send `Expect: 100-continue` and the body only once the server agrees
/// (HTTP/1.1; over HTTP/2 the body goes at once without the field).
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

/// The longest Unix socket path (`sun_path` is 108 bytes with its NUL).
const MAX_UNIX_PATH: usize = 107;

/// Connect to the Unix domain socket at `path` instead of the URL's host
/// and port, as curl's `--unix-socket` (Docker's API, local daemons); NULL
/// connects by the URL again. The URL still gives the Host header, the
/// path and, for https, the TLS server name; no proxy is used. Connections
/// are pooled by socket path. `path` is copied; empty, or longer than 107
/// bytes, is `TORNADO_ERR_INVALID` (the request unchanged). A socket that
/// does not exist or refuses fails the fetch with a `connect` error.
#[no_mangle]
pub extern "C" fn tornado_http_request_set_unix_socket(
    r: *mut tornado_http_request,
    path: *const c_char,
) -> tornado_code {
    with_request(r, |req| {
        let path = optional_str(path, "path")?;
        if let Some(path) = &path {
            if path.is_empty() || path.len() > MAX_UNIX_PATH || path.contains('\0') {
                return Err(Error::invalid(format!(
                    "a Unix socket path has 1 to {MAX_UNIX_PATH} bytes"
                )));
            }
        }
        req.unix_socket = path.map(std::path::PathBuf::from);
        Ok(())
    })
}
