//! `tornado_tls_*` and the TLS calls on streams: client options, a server
//! configuration from PEM files, and `start_tls` on either side.

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;

use super::future::{tornado_future, CValue};
use super::stream::{spawn_c, stream_ref, tornado_iostream};
use super::{c_str, guard_code, guard_value, non_null, tornado_code};
use crate::error::{Error, Result};
use crate::tls::{client_config, server_config_from_pem_files, server_name, TlsClientOptions};

/// TLS client settings: certificate validation (on by default), a CA file,
/// a client certificate, ALPN protocols. Made by `tornado_tls_options_new`,
/// released by `tornado_tls_options_free`; calls that take one copy what
/// they need, so it may be freed or reused right after.
pub struct tornado_tls_options {
    options: TlsClientOptions,
}

/// A TLS server's certificate and key (and ALPN protocols). Made by
/// `tornado_tls_server_config_new`, released by
/// `tornado_tls_server_config_free`; streams and servers that use it keep
/// their own reference, so it may be freed right after.
pub struct tornado_tls_server_config {
    pub(crate) config: Arc<ServerConfig>,
}

/// New client options with the defaults: validate certificates against the
/// system's trust store (see `tornado_tls_options_set_ca_file`), no client
/// certificate, no ALPN.
#[no_mangle]
pub extern "C" fn tornado_tls_options_new() -> *mut tornado_tls_options {
    guard_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(tornado_tls_options {
            options: TlsClientOptions::default(),
        })))
    })
}

/// Frees options made by `tornado_tls_options_new`. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_tls_options_free(options: *mut tornado_tls_options) {
    guard_value((), || {
        if !options.is_null() {
            // SAFETY: from `Box::into_raw` in `tornado_tls_options_new`; freed once.
            drop(unsafe { Box::from_raw(options) });
        }
        Ok(())
    })
}

/// # Safety
/// `ptr` must be NULL or live options.
unsafe fn options_mut<'a>(ptr: *mut tornado_tls_options) -> Result<&'a mut TlsClientOptions> {
    non_null(ptr, "options")?;
    // SAFETY: non-NULL and live per the contract; not shared across threads.
    Ok(unsafe { &mut (*ptr).options })
}

/// Turns certificate validation on (the default: against the system's trust
/// store, see `tornado_tls_options_set_ca_file`) or off. Off accepts any
/// certificate, so the connection is encrypted but not authenticated: for
/// tests and self-signed servers only.
#[no_mangle]
pub extern "C" fn tornado_tls_options_set_validate_cert(
    options: *mut tornado_tls_options,
    validate: bool,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes live options or NULL.
        unsafe { options_mut(options) }?.validate_cert = validate;
        Ok(())
    })
}

/// Trusts the CA certificates in the PEM file `path` instead of the
/// system's trust store (read when a connection starts). NULL restores the
/// default, the system's store, as curl and Python's `ssl` read it: the
/// file `SSL_CERT_FILE` and the hashed directories in `SSL_CERT_DIR`
/// (colon-separated) when either is set, and then only those; otherwise
/// the platform's store (on Linux /etc/ssl/certs, what
/// `update-ca-certificates` installs). Mozilla's roots built into the
/// library are used only where the variables are unset and the system
/// store yields no certificate. The store is read once, at the first
/// connection that needs it, and kept for the life of the process.
#[no_mangle]
pub extern "C" fn tornado_tls_options_set_ca_file(
    options: *mut tornado_tls_options,
    path: *const c_char,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes live options or NULL.
        let options = unsafe { options_mut(options) }?;
        options.ca_file = if path.is_null() {
            None
        } else {
            // SAFETY: caller passes a NUL-terminated string.
            Some(PathBuf::from(unsafe { c_str(path, "path") }?))
        };
        Ok(())
    })
}

/// Presents the certificate chain in the PEM file `cert_file`, with the key
/// in `key_file`, to servers that ask for a client certificate.
#[no_mangle]
pub extern "C" fn tornado_tls_options_set_client_cert(
    options: *mut tornado_tls_options,
    cert_file: *const c_char,
    key_file: *const c_char,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes live options or NULL.
        let options = unsafe { options_mut(options) }?;
        // SAFETY: caller passes NUL-terminated strings or NULL.
        let cert = unsafe { c_str(cert_file, "cert_file") }?;
        // SAFETY: as above.
        let key = unsafe { c_str(key_file, "key_file") }?;
        options.client_cert = Some((cert.into(), key.into()));
        Ok(())
    })
}

/// Adds an ALPN protocol to offer (e.g. "http/1.1"), after those added before.
#[no_mangle]
pub extern "C" fn tornado_tls_options_add_alpn(
    options: *mut tornado_tls_options,
    protocol: *const c_char,
) -> tornado_code {
    guard_code(|| {
        // SAFETY: caller passes live options or NULL.
        let options = unsafe { options_mut(options) }?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let protocol = unsafe { c_str(protocol, "protocol") }?;
        if protocol.is_empty() || protocol.len() > 255 {
            return Err(Error::invalid("an ALPN protocol is 1 to 255 bytes"));
        }
        options.alpn.push(protocol.as_bytes().to_vec());
        Ok(())
    })
}

/// A server configuration from a PEM certificate chain file and a PEM
/// private key file. NULL on failure (unreadable file, no certificate, a
/// key that does not match).
#[no_mangle]
pub extern "C" fn tornado_tls_server_config_new(
    cert_file: *const c_char,
    key_file: *const c_char,
) -> *mut tornado_tls_server_config {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: caller passes NUL-terminated strings or NULL.
        let cert = unsafe { c_str(cert_file, "cert_file") }?;
        // SAFETY: as above.
        let key = unsafe { c_str(key_file, "key_file") }?;
        let config = server_config_from_pem_files(cert.as_ref(), key.as_ref(), &[])?;
        Ok(Box::into_raw(Box::new(tornado_tls_server_config {
            config,
        })))
    })
}

/// Adds an ALPN protocol the server accepts, after those added before.
#[no_mangle]
pub extern "C" fn tornado_tls_server_config_add_alpn(
    config: *mut tornado_tls_server_config,
    protocol: *const c_char,
) -> tornado_code {
    guard_code(|| {
        non_null(config, "config")?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let protocol = unsafe { c_str(protocol, "protocol") }?;
        if protocol.is_empty() || protocol.len() > 255 {
            return Err(Error::invalid("an ALPN protocol is 1 to 255 bytes"));
        }
        // SAFETY: non-NULL and live per the contract.
        let config = unsafe { &mut (*config).config };
        Arc::make_mut(config)
            .alpn_protocols
            .push(protocol.as_bytes().to_vec());
        Ok(())
    })
}

/// Frees a server configuration. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_tls_server_config_free(config: *mut tornado_tls_server_config) {
    guard_value((), || {
        if !config.is_null() {
            // SAFETY: from `Box::into_raw` in `tornado_tls_server_config_new`; freed once.
            drop(unsafe { Box::from_raw(config) });
        }
        Ok(())
    })
}

/// # Safety
/// `ptr` must be NULL or live options.
pub(crate) unsafe fn options_or_default(ptr: *const tornado_tls_options) -> TlsClientOptions {
    if ptr.is_null() {
        TlsClientOptions::default()
    } else {
        // SAFETY: non-NULL and live per the contract.
        unsafe { (*ptr).options.clone() }
    }
}

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
    guard_value(std::ptr::null_mut(), || {
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
    guard_value(std::ptr::null_mut(), || {
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
    guard_value(0, || {
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
    guard_value(0, || {
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
    guard_value(0, || {
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
    guard_value(-1, || {
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
    guard_value(false, || Ok(unsafe { stream_ref(stream) }?.is_tls()))
}
