//! `tornado_tls_*`: TLS client options and a server configuration from PEM
//! files (the calls that start TLS on a stream are in `stream`, those that
//! connect with TLS in `tcp`).

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;

use super::{c_str, non_null, tornado_code};
use crate::error::{Error, Result};
use crate::tls::{server_config_from_pem_files, TlsClientOptions};

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
    entry!(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(tornado_tls_options {
            options: TlsClientOptions::default(),
        })))
    })
}

/// Frees options made by `tornado_tls_options_new`. NULL is a no-op.
#[no_mangle]
pub extern "C" fn tornado_tls_options_free(options: *mut tornado_tls_options) {
    entry!((), || {
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
    entry!(code, || {
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
    entry!(code, || {
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
    entry!(code, || {
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
    entry!(code, || {
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
    entry!(std::ptr::null_mut(), || {
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
    entry!(code, || {
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
    entry!((), || {
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
