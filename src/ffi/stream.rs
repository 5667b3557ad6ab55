//! `tornado_iostream_*`: streams through the C ABI, plain or TLS. Reads,
//! writes and handshakes return futures. (TCP connects and servers, which
//! make streams, are in `tcp`; TLS options and configurations in `tls`.)

use std::ffi::{c_char, c_int, c_void};
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::rc::Rc;

use super::future::{into_raw, tornado_future, CValue};
use super::loop_api::{loop_ref, tornado_loop};
use super::tls::{options_or_default, tornado_tls_options, tornado_tls_server_config};
use super::types::{tornado_callback, tornado_drop_fn, CCallDrop, UserData};
use super::{c_str, non_null, tornado_code};
use crate::error::{Code, Error, Result};
use crate::gen;
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;
use crate::tls::{client_config, server_name};

/// A stream (Tornado's `IOStream`), reference counted: `tornado_iostream_ref`
/// adds a reference, `tornado_iostream_unref` releases one, and the stream
/// closes when the last is released (or earlier by `tornado_iostream_close`).
pub struct tornado_iostream {
    stream: IOStream,
}

impl Drop for tornado_iostream {
    fn drop(&mut self) {
        self.stream.close(None);
    }
}

/// Bytes read from a stream: the value of a read future, owned by it.
pub struct tornado_buffer {
    data: Vec<u8>,
}

type StreamRc = Rc<tornado_iostream>;

pub(super) fn stream_into_raw(stream: IOStream) -> *mut tornado_iostream {
    Rc::into_raw(Rc::new(tornado_iostream { stream })) as *mut tornado_iostream
}

/// Borrows a stream handle for the call, checking the thread.
///
/// # Safety
/// `ptr` must be NULL or a live stream handle.
pub(crate) unsafe fn stream_ref<'a>(ptr: *const tornado_iostream) -> Result<&'a IOStream> {
    non_null(ptr, "stream")?;
    // SAFETY: non-NULL and live per the contract (an `Rc` allocation).
    let stream = unsafe { &(*ptr).stream };
    stream.loop_ref().check_thread()?;
    Ok(stream)
}

unsafe extern "C" fn drop_stream_value(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: a stream future's value is one reference from `stream_into_raw`.
        drop(unsafe { Rc::from_raw(value as *const tornado_iostream) });
    }
}

unsafe extern "C" fn drop_buffer_value(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: a read future's value comes from `Box::into_raw` below.
        drop(unsafe { Box::from_raw(value as *mut tornado_buffer) });
    }
}

fn buffer_value(data: Vec<u8>) -> CValue {
    let raw = Box::into_raw(Box::new(tornado_buffer { data }));
    CValue::owned(raw as *mut c_void, Some(drop_buffer_value))
}

pub(crate) fn stream_value(stream: IOStream) -> CValue {
    CValue::owned(
        stream_into_raw(stream) as *mut c_void,
        Some(drop_stream_value),
    )
}

/// Runs `body` as a task whose outcome completes the returned future.
pub(crate) fn spawn_c(
    lp: &LoopRef,
    body: impl std::future::Future<Output = Result<CValue>> + 'static,
) -> Result<*mut tornado_future> {
    Ok(into_raw(gen::spawn(lp, body)?))
}

/// The bytes of a buffer (borrowed: valid while the future that holds it
/// lives); `len` receives the length. NULL buffer: NULL and length 0.
#[no_mangle]
pub extern "C" fn tornado_buffer_data(buffer: *const tornado_buffer, len: *mut usize) -> *const u8 {
    let (ptr, n) = entry!((std::ptr::null(), 0), || {
        if buffer.is_null() {
            return Ok((std::ptr::null(), 0));
        }
        // SAFETY: a live buffer per the contract.
        let data = unsafe { &(*buffer).data };
        Ok((data.as_ptr(), data.len()))
    });
    if !len.is_null() {
        // SAFETY: the caller passes a writable size_t or NULL.
        unsafe { *len = n };
    }
    ptr
}

/// Wraps an open fd (a socket, a pipe: anything epoll can watch) in a
/// stream, which owns the fd from now on and closes it. Returns a handle
/// with one reference, or NULL on failure (then the fd stays the caller's).
#[no_mangle]
pub extern "C" fn tornado_iostream_new_fd(
    r#loop: *mut tornado_loop,
    fd: c_int,
) -> *mut tornado_iostream {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        // SAFETY: F_GETFD only queries the fd.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(Error::new(Code::BAD_FD, format!("fd {fd} is not open")));
        }
        // SAFETY: the fd is open and the caller hands over its ownership;
        // if the stream cannot take it, it is handed back (forgotten) below.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let stream = IOStream::try_from_fd(lp, owned).map_err(|(e, fd)| {
            std::mem::forget(fd);
            e
        })?;
        Ok(stream_into_raw(stream))
    })
}

/// Adds a reference; returns `stream` (NULL on a NULL or wrong-thread call).
#[no_mangle]
pub extern "C" fn tornado_iostream_ref(stream: *mut tornado_iostream) -> *mut tornado_iostream {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        unsafe { stream_ref(stream) }?;
        // SAFETY: a live `Rc` allocation from `stream_into_raw`.
        unsafe { Rc::increment_strong_count(stream as *const tornado_iostream) };
        Ok(stream)
    })
}

/// Releases a reference; the last one closes the stream. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_iostream_unref(stream: *mut tornado_iostream) {
    if stream.is_null() {
        return;
    }
    entry!((), || {
        // SAFETY: caller passes a live stream holding the reference it gives up.
        unsafe { stream_ref(stream) }?;
        // SAFETY: as above; the count drops by one.
        drop(unsafe { StreamRc::from_raw(stream as *const tornado_iostream) });
        Ok(())
    })
}

/// Closes the stream (its fd too): pending reads and writes fail with
/// `TORNADO_ERR_CLOSED`; the close callback runs from the loop. The handle
/// stays valid until unref'd.
#[no_mangle]
pub extern "C" fn tornado_iostream_close(stream: *mut tornado_iostream) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live stream or NULL.
        unsafe { stream_ref(stream) }?.close(None);
        Ok(())
    })
}

/// True once the stream is closed (false for NULL).
#[no_mangle]
pub extern "C" fn tornado_iostream_closed(stream: *const tornado_iostream) -> bool {
    // SAFETY: caller passes a live stream or NULL.
    entry!(false, || Ok(unsafe { stream_ref(stream) }?.closed()))
}

/// Why the stream closed: `TORNADO_OK` when open or closed cleanly, else the
/// error code, with its message in `*message` (valid until the next call on
/// this thread) when `message` is not NULL.
#[no_mangle]
pub extern "C" fn tornado_iostream_error(
    stream: *const tornado_iostream,
    message: *mut *const c_char,
) -> tornado_code {
    let code = entry!(code, || {
        // SAFETY: caller passes a live stream or NULL.
        match unsafe { stream_ref(stream) }?.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    if !message.is_null() {
        let text = if code == super::TORNADO_OK {
            std::ptr::null()
        } else {
            super::tornado_last_error()
        };
        // SAFETY: the caller passes a writable `const char *` slot or NULL.
        unsafe { *message = text };
    }
    code
}

/// The stream's fd (owned by the stream), or -1 once closed or on error.
#[no_mangle]
pub extern "C" fn tornado_iostream_fd(stream: *const tornado_iostream) -> c_int {
    // SAFETY: caller passes a live stream or NULL.
    entry!(-1, || Ok(unsafe { stream_ref(stream) }?.fd().unwrap_or(-1)))
}

/// The most a read may buffer (default 100 MiB); a read that would need more
/// fails and closes the stream.
#[no_mangle]
pub extern "C" fn tornado_iostream_set_max_buffer_size(
    stream: *mut tornado_iostream,
    bytes: usize,
) -> tornado_code {
    // SAFETY: caller passes a live stream or NULL.
    entry!(code, || unsafe { stream_ref(stream) }?
        .set_max_buffer_size(bytes))
}

/// Sets `TCP_NODELAY` (TCP streams only). Unless this was called,
/// `tornado_iostream_start_tls_client` turns it on before the handshake.
#[no_mangle]
pub extern "C" fn tornado_iostream_set_nodelay(
    stream: *mut tornado_iostream,
    nodelay: bool,
) -> tornado_code {
    // SAFETY: caller passes a live stream or NULL.
    entry!(code, || unsafe { stream_ref(stream) }?.set_nodelay(nodelay))
}

/// Calls `cb(userdata)` from the loop once the stream closes (on the next
/// iteration if it already has). `drop(userdata)` (may be NULL) runs once
/// after `cb`, or when the callback is replaced or can no longer run.
#[no_mangle]
pub extern "C" fn tornado_iostream_set_close_callback(
    stream: *mut tornado_iostream,
    cb: tornado_callback,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live stream or NULL.
        let stream = unsafe { stream_ref(stream) }?;
        let cb = cb.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let call = CCallDrop::new(cb, UserData::new(userdata, drop));
        stream.set_close_callback(move || call.call());
        Ok(())
    })
}

/// Reads up to and including `delimiter` (`delimiter_len` > 0 bytes, copied).
/// `max_bytes` 0 means no limit; otherwise a delimiter not found within it
/// fails the read and closes the stream. The future's value is a
/// `tornado_buffer *` owned by the future. Only one read may be pending
/// (`TORNADO_ERR_RUNNING` otherwise, as the future's error). NULL on failure.
#[no_mangle]
pub extern "C" fn tornado_iostream_read_until(
    stream: *mut tornado_iostream,
    delimiter: *const u8,
    delimiter_len: usize,
    max_bytes: usize,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?.clone();
        non_null(delimiter, "delimiter")?;
        if delimiter_len == 0 {
            return Err(Error::invalid("delimiter_len is 0"));
        }
        // SAFETY: the caller passes `delimiter_len` readable bytes.
        let delimiter = unsafe { std::slice::from_raw_parts(delimiter, delimiter_len) }.to_vec();
        let limit = (max_bytes > 0).then_some(max_bytes);
        let lp = s.loop_ref().clone();
        spawn_c(&lp, async move {
            Ok(buffer_value(s.read_until(&delimiter, limit).await?))
        })
    })
}

/// Reads `n` bytes; with `partial`, completes as soon as any (at most `n`)
/// are there. The value is a `tornado_buffer *` owned by the future.
#[no_mangle]
pub extern "C" fn tornado_iostream_read_bytes(
    stream: *mut tornado_iostream,
    n: usize,
    partial: bool,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?.clone();
        let lp = s.loop_ref().clone();
        spawn_c(&lp, async move {
            Ok(buffer_value(s.read_bytes(n, partial).await?))
        })
    })
}

/// Reads until the peer closes; the value is a `tornado_buffer *` with
/// everything read, owned by the future.
#[no_mangle]
pub extern "C" fn tornado_iostream_read_until_close(
    stream: *mut tornado_iostream,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?.clone();
        let lp = s.loop_ref().clone();
        spawn_c(
            &lp,
            async move { Ok(buffer_value(s.read_until_close().await?)) },
        )
    })
}

/// Queues `len` bytes (copied) for writing; the future (value NULL) is done
/// when they have left the stream's buffer, or fails if the stream closes
/// first. Writes are coalesced. NULL on failure (e.g. a closed stream).
#[no_mangle]
pub extern "C" fn tornado_iostream_write(
    stream: *mut tornado_iostream,
    data: *const u8,
    len: usize,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?;
        let bytes = if len == 0 {
            &[][..]
        } else {
            non_null(data, "data")?;
            // SAFETY: the caller passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        let sent = s.write(bytes)?;
        let lp = s.loop_ref().clone();
        spawn_c(&lp, async move {
            sent.value().await?;
            Ok(CValue::null())
        })
    })
}

// ---- TLS on a stream (Tornado's SSLIOStream) ----

/// Starts TLS as a client on a connected stream (Tornado's `start_tls`):
/// `server_name` is checked against the certificate and sent as SNI (an IP
/// address is checked against the certificate's IP entries); `options` may
/// be NULL for the defaults (validation on). No read may be pending and no
/// write queued. Turns `TCP_NODELAY` on before the handshake, as curl does,
/// unless `tornado_iostream_set_nodelay` was called on the stream. The
/// future (value NULL) is done when the handshake is;
/// on failure the stream is closed and the future fails with
/// `TORNADO_ERR_TLS`. NULL when the call itself is invalid.
#[no_mangle]
pub extern "C" fn tornado_iostream_start_tls_client(
    stream: *mut tornado_iostream,
    server_name_: *const c_char,
    options: *const tornado_tls_options,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?.clone();
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let name = server_name(unsafe { c_str(server_name_, "server_name") }?)?;
        // SAFETY: caller passes live options or NULL.
        let config = client_config(&unsafe { options_or_default(options) })?;
        let lp = s.loop_ref().clone();
        spawn_c(&lp, async move {
            s.start_tls_client(config, name).await?;
            Ok(CValue::null())
        })
    })
}

/// Starts TLS as a server on an accepted stream with `config` (which may be
/// freed right after). The future (value NULL) is done when the handshake
/// is; on failure the stream is closed and the future fails.
#[no_mangle]
pub extern "C" fn tornado_iostream_start_tls_server(
    stream: *mut tornado_iostream,
    config: *const tornado_tls_server_config,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?.clone();
        non_null(config, "config")?;
        // SAFETY: non-NULL and live per the contract.
        let config = unsafe { (*config).config.clone() };
        let lp = s.loop_ref().clone();
        spawn_c(&lp, async move {
            s.start_tls_server(config).await?;
            Ok(CValue::null())
        })
    })
}

/// Copies the ALPN protocol agreed in the handshake into `buf` (`cap`
/// bytes, NUL-terminated, truncated if needed) and returns its full length;
/// 0 when none was agreed, TLS has not started, or on error.
#[no_mangle]
pub extern "C" fn tornado_iostream_alpn_protocol(
    stream: *const tornado_iostream,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    entry!(0, || {
        // SAFETY: caller passes a live stream or NULL.
        let s = unsafe { stream_ref(stream) }?;
        let protocol = s.alpn_protocol().unwrap_or_default();
        // SAFETY: the caller passes `cap` writable bytes at `buf` (or NULL).
        Ok(unsafe { copy_out(&protocol, buf, cap) })
    })
}

/// Copies `bytes` into `buf` (`cap` bytes, NUL-terminated, truncated if
/// needed; nothing when `buf` is NULL or `cap` is 0) and returns their full
/// length.
///
/// # Safety
/// `buf` must be NULL or point to `cap` writable bytes.
unsafe fn copy_out(bytes: &[u8], buf: *mut c_char, cap: usize) -> usize {
    if !buf.is_null() && cap > 0 {
        let n = bytes.len().min(cap - 1);
        // SAFETY: the caller passes `cap` writable bytes at `buf`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
            *buf.add(n) = 0;
        }
    }
    bytes.len()
}

/// Copies the TLS version the handshake agreed ("TLSv1.2" or "TLSv1.3")
/// into `buf` (`cap` bytes, NUL-terminated, truncated if needed) and
/// returns its full length; 0 before the handshake is done, on a plain
/// stream, or on error (a NULL stream).
#[no_mangle]
pub extern "C" fn tornado_iostream_tls_version(
    stream: *const tornado_iostream,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    entry!(0, || {
        // SAFETY: caller passes a live stream or NULL.
        let version = unsafe { stream_ref(stream) }?.tls_version().unwrap_or("");
        // SAFETY: the caller passes `cap` writable bytes at `buf` (or NULL).
        Ok(unsafe { copy_out(version.as_bytes(), buf, cap) })
    })
}

/// Copies the cipher suite the handshake agreed, by its IANA name (e.g.
/// "TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
/// into `buf` (`cap` bytes, NUL-terminated, truncated if needed) and
/// returns its full length; 0 before the handshake is done, on a plain
/// stream, or on error (a NULL stream).
#[no_mangle]
pub extern "C" fn tornado_iostream_tls_cipher(
    stream: *const tornado_iostream,
    buf: *mut c_char,
    cap: usize,
) -> usize {
    entry!(0, || {
        // SAFETY: caller passes a live stream or NULL.
        let cipher = unsafe { stream_ref(stream) }?.tls_cipher().unwrap_or("");
        // SAFETY: the caller passes `cap` writable bytes at `buf` (or NULL).
        Ok(unsafe { copy_out(cipher.as_bytes(), buf, cap) })
    })
}

/// 1 when the stream's TLS handshake resumed an earlier session, 0 when it
/// was a full handshake, -1 before the handshake is done, on a plain
/// stream, or on error (a NULL stream).
#[no_mangle]
pub extern "C" fn tornado_iostream_tls_resumed(stream: *const tornado_iostream) -> i32 {
    entry!(-1, || {
        // SAFETY: caller passes a live stream or NULL.
        Ok(match unsafe { stream_ref(stream) }?.tls_resumed() {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        })
    })
}

/// True when TLS has started on the stream (false on error).
#[no_mangle]
pub extern "C" fn tornado_iostream_is_tls(stream: *const tornado_iostream) -> bool {
    // SAFETY: caller passes a live stream or NULL.
    entry!(false, || Ok(unsafe { stream_ref(stream) }?.is_tls()))
}
