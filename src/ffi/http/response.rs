//! `tornado_http_response_*`: what a fetch gives back (Tornado's
//! `HTTPResponse`).

use std::cell::OnceCell;
use std::ffi::{c_char, c_int, CString};
use std::rc::Weak;
use std::time::UNIX_EPOCH;

use crate::error::{Error, Result};
use crate::ffi::{c_str, non_null, tornado_code};
use crate::future::Future;
use crate::http::body_pool::BodyPool;
use crate::http::response::HTTPResponse;

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
pub(super) fn take_response(done: &Future<HTTPResponse>) -> Option<Result<HTTPResponse>> {
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
    pub(super) fn new(response: HTTPResponse, body_pool: Weak<BodyPool>) -> tornado_http_response {
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
    entry!(0, || {
        Ok(c_int::from(unsafe { response_ref(r) }?.response.code))
    })
}

/// The HTTP version the response came over: 10 (HTTP/1.0), 11 (HTTP/1.1)
/// or 20 (HTTP/2); 0 when no response was received (code 599) and on a
/// NULL response.
#[no_mangle]
pub extern "C" fn tornado_http_response_version(r: *const tornado_http_response) -> c_int {
    // SAFETY: caller passes a live response or NULL.
    entry!(0, || {
        Ok(c_int::from(unsafe { response_ref(r) }?.response.version))
    })
}

/// The reason phrase (borrowed from the response; "" when none).
#[no_mangle]
pub extern "C" fn tornado_http_response_reason(r: *const tornado_http_response) -> *const c_char {
    // SAFETY: caller passes a live response or NULL.
    entry!(std::ptr::null(), || {
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
    let (ptr, n) = entry!((std::ptr::null(), 0), || {
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
    entry!(std::ptr::null(), || {
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
    entry!(0, || Ok(unsafe { response_ref(r) }?.response.headers.len()))
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
    entry!(code, || {
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
    entry!(code, || {
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
    let (ptr, n) = entry!((std::ptr::null(), 0), || {
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
    entry!(std::ptr::null(), || {
        // SAFETY: caller passes a live response or NULL.
        Ok(unsafe { response_ref(r) }?.text().effective_url.as_ptr())
    })
}

/// Seconds the fetch took, not counting time queued (Tornado's
/// request_time); -1 on a NULL response.
#[no_mangle]
pub extern "C" fn tornado_http_response_request_time(r: *const tornado_http_response) -> f64 {
    // SAFETY: caller passes a live response or NULL.
    entry!(-1.0, || {
        Ok(unsafe { response_ref(r) }?.response.request_time)
    })
}

/// When the fetch started, in seconds since the Unix epoch; -1 on a NULL
/// response.
#[no_mangle]
pub extern "C" fn tornado_http_response_start_time(r: *const tornado_http_response) -> f64 {
    entry!(-1.0, || {
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
    entry!(code, || {
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
    entry!(std::ptr::null(), || {
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
    entry!(0, || {
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
    entry!(crate::ffi::TORNADO_ERR_INVALID, || {
        // SAFETY: caller passes a live response or NULL.
        Ok(unsafe { response_ref(r) }?
            .response
            .error
            .as_ref()
            .map_or(0, |e| e.code().0))
    })
}
