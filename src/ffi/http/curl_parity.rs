//! The C functions of what curl users look for first (issue 19): Unix
//! domain sockets, the cookie jar and the DNS cache. brotli, zstd and
//! SOCKS need no function of their own: decoding follows
//! `tornado_http_request_set_decompress_response`, and a SOCKS proxy is a
//! proxy URL given to `tornado_http_request_set_proxy`.

use std::ffi::c_char;
use std::path::{Path, PathBuf};

use super::client::{client_ref, tornado_http_client};
use super::options::{tornado_http_client_options, with_options};
use super::request::{optional_str, tornado_http_request, with_request};
use crate::error::{Error, Result};
use crate::ffi::{c_str, seconds, tornado_code};
use crate::http::cookies::CookieJar;

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
        req.unix_socket = path.map(PathBuf::from);
        Ok(())
    })
}

/// Turns the client's cookie jar on or off (default off, as in Tornado).
/// With it on, the `Set-Cookie` lines of every response (redirects
/// included) are kept by RFC 6265's rules and sent back as a `Cookie`
/// header to the URLs they match, across redirects and fetches of that
/// client. A cookie for another domain than the host that set it is
/// refused (and logged). Load and save a jar with
/// `tornado_http_client_load_cookies` / `_save_cookies`.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_cookies(
    options: *mut tornado_http_client_options,
    enabled: bool,
) -> tornado_code {
    with_options(options, |o| {
        o.cookies = enabled;
        Ok(())
    })
}

/// How long the threaded resolver keeps an answer, in seconds (default
/// 60, as curl's DNS cache). 0 turns the cache off: every new connection
/// asks the system's resolver. NaN, negative or infinite is
/// `TORNADO_ERR_INVALID`. Hostname mappings and IP literals are never
/// looked up, and a resolver given by `tornado_http_client_options_set_resolver`
/// is asked every time (it keeps its own cache, if any).
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_dns_cache_ttl(
    options: *mut tornado_http_client_options,
    seconds_: f64,
) -> tornado_code {
    with_options(options, |o| {
        let ttl = seconds(seconds_, "seconds")?;
        o.dns_cache_ttl = (!ttl.is_zero()).then_some(ttl);
        Ok(())
    })
}

/// # Safety
/// `client` must be NULL or live; `path` NULL or a NUL-terminated string.
unsafe fn jar_and_path<'a>(
    client: *const tornado_http_client,
    path: *const c_char,
) -> Result<(std::rc::Rc<CookieJar>, &'a Path)> {
    // SAFETY: per the contract.
    let client = unsafe { client_ref(client) }?;
    // SAFETY: per the contract.
    let path = Path::new(unsafe { c_str(path, "path") }?);
    let jar = client.cookie_jar().ok_or_else(|| {
        Error::invalid("the client's cookies are off (tornado_http_client_options_set_cookies)")
    })?;
    Ok((jar, path))
}

/// Adds the cookies of a curl (Netscape) cookie file at `path` to the
/// client's jar, replacing held cookies of the same domain, path and name;
/// expired ones in the file are skipped. A malformed line fails the whole
/// load (`TORNADO_ERR_INVALID`, the message naming the line) and the jar is
/// left as it was; an unreadable file is `TORNADO_ERR_IO`. Cookies off is
/// `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_http_client_load_cookies(
    client: *mut tornado_http_client,
    path: *const c_char,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: per the contract.
        let (jar, path) = unsafe { jar_and_path(client, path) }?;
        jar.load_netscape(path).map(|_| ())
    })
}

/// Writes the client's unexpired cookies to `path` as a curl (Netscape)
/// cookie file (session cookies with expiry 0, as curl writes them),
/// through a temporary file renamed into place: a failed save
/// (`TORNADO_ERR_IO`) leaves an older file whole. Cookies off is
/// `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_http_client_save_cookies(
    client: *mut tornado_http_client,
    path: *const c_char,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: per the contract.
        let (jar, path) = unsafe { jar_and_path(client, path) }?;
        jar.save_netscape(path)
    })
}

/// The number of unexpired cookies in the client's jar; 0 when cookies
/// are off, and for a NULL client or one used from another thread (with
/// `tornado_last_error` set).
#[no_mangle]
pub extern "C" fn tornado_http_client_cookie_count(client: *const tornado_http_client) -> usize {
    entry!(0, || {
        // SAFETY: per the contract.
        let client = unsafe { client_ref(client) }?;
        Ok(client.cookie_jar().map_or(0, |jar| jar.len()))
    })
}

/// Empties the client's cookie jar. Cookies off is `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_http_client_clear_cookies(
    client: *mut tornado_http_client,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: per the contract.
        let client = unsafe { client_ref(client) }?;
        let jar = client.cookie_jar().ok_or_else(|| {
            Error::invalid("the client's cookies are off (tornado_http_client_options_set_cookies)")
        })?;
        jar.clear();
        Ok(())
    })
}
