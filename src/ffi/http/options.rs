//! `tornado_http_client_options_*`: the client's settings (Tornado's
//! `AsyncHTTPClient.configure` keywords), made before the client.

use std::ffi::{c_char, c_void};

use super::callbacks::CHook;
use super::client::request_snapshot;
use super::request::tornado_http_request;
use crate::error::{Error, Result};
use crate::ffi::resolve::{c_resolve_hook, tornado_http_resolve_fn};
use crate::ffi::types::tornado_drop_fn;
use crate::ffi::{c_str, non_null, seconds, tornado_code};
use crate::http::client::ClientOptions;
use crate::http::request::HTTPRequest;
use crate::http::HttpVersion;
use crate::util::{current_thread_id, parse_ip};

/// Client-wide settings for `tornado_http_client_new`. Made by
/// `tornado_http_client_options_new` (with Tornado's defaults), released by
/// `tornado_http_client_options_free`; the client copies them, so they may
/// be freed right after. They belong to the thread that made them (their
/// callbacks, such as a resolver, are shared with the clients made from
/// them without atomics): setters, `tornado_http_client_new` with them and
/// their free from another thread are refused (`TORNADO_ERR_WRONG_THREAD`;
/// the free logs an error and leaks them).
pub struct tornado_http_client_options {
    pub(super) options: ClientOptions,
    /// `current_thread_id()` of the thread that made them.
    owner: u64,
}

/// Checks options are non-NULL and this is their thread.
///
/// # Safety
/// `ptr` must be NULL or live options.
pub(super) unsafe fn check_options(ptr: *const tornado_http_client_options) -> Result<()> {
    non_null(ptr, "options")?;
    // SAFETY: non-NULL and live per the contract; `owner` is written once.
    check_owner(unsafe { (*ptr).owner }, "client options belong")
}

/// `TORNADO_ERR_WRONG_THREAD` unless this is the `owner` thread (handles
/// whose insides are shared without atomics: requests, client options).
pub(super) fn check_owner(owner: u64, what: &str) -> Result<()> {
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
    entry!(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(tornado_http_client_options {
            options: ClientOptions::default(),
            owner: current_thread_id(),
        })))
    })
}

/// Frees options. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_free(options: *mut tornado_http_client_options) {
    entry!((), || {
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
    entry!(code, || {
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

/// Which HTTP versions a fetch may use (the values of
/// `tornado_http_request_set_http_version` and
/// `tornado_http_client_options_set_http_version`, as curl's
/// `CURL_HTTP_VERSION_*`). ANY, the default: https offers `h2` and
/// `http/1.1` by ALPN and uses what the server picks; plain http is
/// HTTP/1.1.
pub const TORNADO_HTTP_VERSION_ANY: u32 = 0;
/// HTTP/1.1 only (ALPN offers `http/1.1` alone).
pub const TORNADO_HTTP_VERSION_1_1: u32 = 1;
/// HTTP/2 over TLS by ALPN, HTTP/1.1 when the server does not pick `h2`;
/// for plain http the same as ANY.
pub const TORNADO_HTTP_VERSION_2: u32 = 2;
/// HTTP/2 without negotiation, also over plain TCP (h2c): a server that
/// does not speak it fails the fetch (`protocol` or `closed`).
pub const TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE: u32 = 3;

/// A `TORNADO_HTTP_VERSION_*` value as the library's choice.
pub(super) fn http_version(value: u32) -> Result<HttpVersion> {
    match value {
        TORNADO_HTTP_VERSION_ANY => Ok(HttpVersion::Any),
        TORNADO_HTTP_VERSION_1_1 => Ok(HttpVersion::Http1Only),
        TORNADO_HTTP_VERSION_2 => Ok(HttpVersion::Http2),
        TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE => Ok(HttpVersion::Http2PriorKnowledge),
        other => Err(Error::invalid(format!(
            "{other} is not a TORNADO_HTTP_VERSION_* value (0 to 3)"
        ))),
    }
}

/// The HTTP versions a request may use unless it chooses
/// (`tornado_http_request_set_http_version`): a `TORNADO_HTTP_VERSION_*`
/// value (default ANY); anything else is `TORNADO_ERR_INVALID`.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_http_version(
    options: *mut tornado_http_client_options,
    version: u32,
) -> tornado_code {
    with_options(options, |o| {
        o.http_version = http_version(version)?;
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

/// Resolves names with `cb` instead of the library's threaded resolver
/// (Tornado's `resolver=`); hostname and endpoint mappings still apply
/// first. Addresses of another family than asked for are dropped, as are
/// repeats; no address at all is a `resolve` error, as is a failed reply.
/// A reply that never comes ends in the connect timeout. NULL cb: the
/// threaded resolver again. `drop(userdata)` (may be NULL) runs once, when
/// the options and every client made from them are freed.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_resolver(
    options: *mut tornado_http_client_options,
    cb: tornado_http_resolve_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    with_options(options, |o| {
        let Some(hook) = CHook::new(cb, userdata, drop) else {
            o.resolver = None;
            return Ok(());
        };
        o.resolver = Some(c_resolve_hook(hook));
        Ok(())
    })
}

/// Resolves (`host`, `port`) as (`to_host`, `to_port`) (an IP literal or a
/// name, then resolved as usual), as Tornado's OverrideResolver with a
/// (host, port) key and curl's `--connect-to`: the request keeps its URL,
/// Host header and TLS server name. Host names are case-insensitive; a
/// later mapping of the same (host, port) replaces the earlier one. Both
/// strings are copied.
#[no_mangle]
pub extern "C" fn tornado_http_client_options_add_endpoint_mapping(
    options: *mut tornado_http_client_options,
    host: *const c_char,
    port: u16,
    to_host: *const c_char,
    to_port: u16,
) -> tornado_code {
    with_options(options, |o| {
        // SAFETY: caller passes NUL-terminated strings or NULL.
        let host = unsafe { c_str(host, "host") }?.to_ascii_lowercase();
        // SAFETY: as above.
        let to_host = unsafe { c_str(to_host, "to_host") }?.to_string();
        if host.is_empty() || to_host.is_empty() {
            return Err(Error::invalid("an empty host name"));
        }
        o.endpoint_mapping
            .retain(|((h, p), _)| !(*h == host && *p == port));
        o.endpoint_mapping.push(((host, port), (to_host, to_port)));
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
        o.dns_cache_ttl = crate::gen::limit_of(Some(ttl));
        Ok(())
    })
}

/// HTTP/2 liveness: a pooled HTTP/2 connection idle at least `idle_s`
/// seconds answers a PING before a fetch reuses it; no answer within
/// `timeout_s` seconds and it is dropped, the fetch opening another
/// (defaults 5 and 2). `idle_s` 0 turns the check off. NaN, negative or
/// infinite values, and a `timeout_s` of 0, are `TORNADO_ERR_INVALID`
/// (the options unchanged).
#[no_mangle]
pub extern "C" fn tornado_http_client_options_set_http2_ping(
    options: *mut tornado_http_client_options,
    idle_s: f64,
    timeout_s: f64,
) -> tornado_code {
    with_options(options, |o| {
        let idle = seconds(idle_s, "idle_s")?;
        let timeout = seconds(timeout_s, "timeout_s")?;
        if timeout.is_zero() {
            return Err(Error::invalid("timeout_s must be > 0"));
        }
        o.http2_ping_after_idle = crate::gen::limit_of(Some(idle));
        o.http2_ping_timeout = timeout;
        Ok(())
    })
}
