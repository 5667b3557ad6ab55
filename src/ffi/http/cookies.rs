//! The client's cookie jar (`tornado_http_client_options_set_cookies`,
//! `tornado_http_client_{load,save,clear}_cookies`, `_cookie_count`).

use std::ffi::c_char;
use std::path::Path;

use super::client::{client_ref, tornado_http_client};
use super::options::{tornado_http_client_options, with_options};
use crate::error::{Error, Result};
use crate::ffi::{c_str, tornado_code};
use crate::http::cookies::CookieJar;

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

/// The public suffix list the cookie jar refuses `Domain=` cookies for
/// (RFC 6265 5.3 step 5: `Domain=co.uk` is refused, `Domain=example.co.uk`
/// kept): a file in the list's own format (publicsuffix.org's
/// `public_suffix_list.dat`; Debian's package publicsuffix installs a fresh
/// one in /usr/share/publicsuffix/). NULL: the snapshot built in (the
/// default). `path` is copied; the file is read when the client is made,
/// and a file that cannot be read or is no such list (one without `com`)
/// makes `tornado_http_client_new` fail. Used only with cookies on.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_public_suffix_file(
    options: *mut tornado_http_client_options,
    path: *const c_char,
) -> tornado_code {
    with_options(options, |o| {
        o.public_suffix_file = crate::ffi::http::optional_str(path, "path")?.map(Into::into);
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
/// `TORNADO_ERR_INVALID`. `path` stays the caller's: it is read during the
/// call only.
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
/// `path` stays the caller's: it is read during the call only.
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
