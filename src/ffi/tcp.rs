//! `tornado_tcp_*`: TCP connects (plain or TLS) and a TCP server through
//! the C ABI. Connects return futures whose value is a `tornado_iostream *`.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use rustls::ServerConfig;

use super::future::tornado_future;
use super::loop_api::{loop_ref, tornado_loop};
use super::stream::{spawn_c, stream_into_raw, stream_value, tornado_iostream};
use super::tls::{options_or_default, tornado_tls_options, tornado_tls_server_config};
use super::types::{tornado_drop_fn, UserData};
use super::{c_str, non_null, seconds, tornado_code};
use crate::error::{Error, Result};
use crate::iostream::IOStream;
use crate::tcpclient::{connect, ConnectOptions};
use crate::tcpserver::TCPServer;
use crate::tls::{client_config, server_name, TlsConnect};

/// Connects to `host` (a name, resolved off the loop thread, or an IP
/// literal) and `port`, trying IPv6 and IPv4 addresses with Happy Eyeballs;
/// fails with `TORNADO_ERR_TIMEOUT` after `timeout_s` seconds (0: no limit;
/// it covers the lookup and the connect). The future's value is a
/// `tornado_iostream *` owned by the future: take your own reference with
/// `tornado_iostream_ref`. NULL on failure (also for port 0).
#[no_mangle]
pub extern "C" fn tornado_tcp_connect(
    r#loop: *mut tornado_loop,
    host: *const c_char,
    port: u16,
    timeout_s: f64,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let host = unsafe { c_str(host, "host") }?.to_string();
        let port = destination_port(port)?;
        let timeout = seconds(timeout_s, "timeout_s")?;
        let options = ConnectOptions {
            timeout: Some(timeout),
            ..Default::default()
        };
        let task_lp = lp.clone();
        spawn_c(lp, async move {
            let (stream, _addr) = connect(&task_lp, &host, port, &options).await?;
            Ok(stream_value(stream))
        })
    })
}

/// Connects to `host`:`port` and starts TLS as a client, all within
/// `timeout_s` seconds (0: no limit; the timeout covers the connect and the
/// handshake). `host` is also the name checked against the certificate.
/// The stream has `TCP_NODELAY` on (set before the handshake, as curl
/// does; `tornado_iostream_set_nodelay` turns it off again).
/// `options` may be NULL (validation on). The future's value is a
/// `tornado_iostream *` owned by the future (take your own reference with
/// `tornado_iostream_ref`). NULL when the call itself is invalid.
#[no_mangle]
pub extern "C" fn tornado_tcp_connect_tls(
    r#loop: *mut tornado_loop,
    host: *const c_char,
    port: u16,
    timeout_s: f64,
    options: *const tornado_tls_options,
) -> *mut tornado_future {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let host = unsafe { c_str(host, "host") }?.to_string();
        let port = destination_port(port)?;
        let server_name = server_name(&host)?;
        let timeout = seconds(timeout_s, "timeout_s")?;
        // SAFETY: caller passes live options or NULL.
        let config = client_config(&unsafe { options_or_default(options) })?;
        let options = ConnectOptions {
            timeout: Some(timeout),
            tls: Some(TlsConnect {
                config,
                server_name,
            }),
            ..Default::default()
        };
        let task_lp = lp.clone();
        spawn_c(lp, async move {
            let (stream, _addr) = connect(&task_lp, &host, port, &options).await?;
            Ok(stream_value(stream))
        })
    })
}

/// Port 0 names no destination: refused at the call, as an invalid argument.
pub(super) fn destination_port(port: u16) -> Result<u16> {
    if port == 0 {
        return Err(Error::invalid("port 0 is not a destination port"));
    }
    Ok(port)
}

/// Called for each accepted connection with a new stream handle that the
/// callee owns (release it with `tornado_iostream_unref`), and the peer's
/// address as text (borrowed for the call).
pub type tornado_accept_fn = Option<
    unsafe extern "C" fn(stream: *mut tornado_iostream, peer: *const c_char, userdata: *mut c_void),
>;

/// A listening TCP server. Made by `tornado_tcp_server_new`, released by
/// `tornado_tcp_server_free`.
pub struct tornado_tcp_server {
    server: TCPServer,
    target: Rc<AcceptTarget>,
}

struct AcceptTarget {
    cb: unsafe extern "C" fn(*mut tornado_iostream, *const c_char, *mut c_void),
    data: UserData,
    /// Set by `tornado_tcp_server_set_tls`: handshake before handing over.
    tls: RefCell<Option<Arc<ServerConfig>>>,
}

impl AcceptTarget {
    fn accept(self: &Rc<Self>, stream: IOStream, peer: SocketAddr) {
        let Some(config) = self.tls.borrow().clone() else {
            self.hand_over(stream, peer);
            return;
        };
        let target = self.clone();
        let lp = stream.loop_ref().clone();
        let spawned = lp.spawn(async move {
            match stream.start_tls_server(config).await {
                Ok(()) => target.hand_over(stream, peer),
                Err(e) => crate::log::warn(&format!("TLS handshake with {peer} failed: {e}")),
            }
        });
        if let Err(e) = spawned {
            crate::log::warn(&format!("cannot start a TLS handshake: {e}"));
        }
    }

    fn hand_over(&self, stream: IOStream, peer: SocketAddr) {
        let text = std::ffi::CString::new(peer.to_string()).unwrap_or_default();
        // SAFETY: the callback and userdata were registered together; the
        // stream handle is a new reference handed to the callee.
        unsafe { (self.cb)(stream_into_raw(stream), text.as_ptr(), self.data.ptr()) };
    }
}

/// Listens on `host` (an IP address literal; "0.0.0.0" or "::" for all) and
/// `port` (0: an ephemeral port, see `tornado_tcp_server_port`), with
/// `backlog` (0: the default, 128), and calls `cb` from the loop for each
/// accepted connection. `drop(userdata)` (may be NULL) runs once when the
/// server is freed. NULL on failure (then `drop` is not called).
#[no_mangle]
pub extern "C" fn tornado_tcp_server_new(
    r#loop: *mut tornado_loop,
    host: *const c_char,
    port: u16,
    backlog: c_int,
    cb: tornado_accept_fn,
    userdata: *mut c_void,
    drop: tornado_drop_fn,
) -> *mut tornado_tcp_server {
    entry!(std::ptr::null_mut(), || {
        // SAFETY: caller passes a live loop or NULL.
        let lp = unsafe { loop_ref(r#loop) }?;
        lp.check_thread()?;
        // SAFETY: caller passes a NUL-terminated string or NULL.
        let ip = crate::util::parse_ip(unsafe { c_str(host, "host") }?)?;
        let cb = cb.ok_or_else(|| Error::invalid("accept callback is NULL"))?;
        if backlog < 0 {
            return Err(Error::invalid("backlog must be >= 0"));
        }
        let backlog = if backlog == 0 {
            crate::tcpserver::DEFAULT_BACKLOG
        } else {
            backlog
        };
        let server = TCPServer::bind(lp, SocketAddr::new(ip, port), backlog)?;
        let target = Rc::new(AcceptTarget {
            cb,
            data: UserData::new(userdata, drop),
            tls: RefCell::new(None),
        });
        let accepting = target.clone();
        server.start(move |stream, peer| accepting.accept(stream, peer))?;
        Ok(Box::into_raw(Box::new(tornado_tcp_server {
            server,
            target,
        })))
    })
}

/// # Safety
/// `ptr` must be NULL or a live server.
unsafe fn server_ref<'a>(ptr: *const tornado_tcp_server) -> Result<&'a TCPServer> {
    non_null(ptr, "server")?;
    // SAFETY: non-NULL and live per the contract.
    Ok(unsafe { &(*ptr).server })
}

/// The port the server listens on (the real one when bound to port 0); 0 on error.
#[no_mangle]
pub extern "C" fn tornado_tcp_server_port(server: *const tornado_tcp_server) -> u16 {
    // SAFETY: caller passes a live server or NULL.
    entry!(0, || Ok(unsafe { server_ref(server) }?.local_addr().port()))
}

/// Makes the server a TLS server: each accepted connection completes a TLS
/// handshake with `config` before the accept callback sees it (connections
/// whose handshake fails are closed and logged). `config` may be freed
/// right after; NULL turns TLS off for later connections.
#[no_mangle]
pub extern "C" fn tornado_tcp_server_set_tls(
    server: *mut tornado_tcp_server,
    config: *const tornado_tls_server_config,
) -> tornado_code {
    entry!(code, || {
        non_null(server, "server")?;
        // SAFETY: non-NULL and live per the contract.
        let server = unsafe { &*server };
        server.server.loop_ref().check_thread()?;
        // SAFETY: caller passes a live config or NULL.
        let config = (!config.is_null()).then(|| unsafe { (*config).config.clone() });
        *server.target.tls.borrow_mut() = config;
        Ok(())
    })
}

/// Stops listening; accepted streams stay open.
#[no_mangle]
pub extern "C" fn tornado_tcp_server_stop(server: *mut tornado_tcp_server) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live server or NULL.
        let server = unsafe { server_ref(server) }?;
        server.loop_ref().check_thread()?;
        server.stop();
        Ok(())
    })
}

/// Stops listening and frees the server; the accept callback's drop function
/// runs (from the loop, or now if the loop is gone). Accepted streams stay open.
#[no_mangle]
pub extern "C" fn tornado_tcp_server_free(server: *mut tornado_tcp_server) -> tornado_code {
    entry!(code, || {
        // SAFETY: caller passes a live server or NULL.
        unsafe { server_ref(server) }?.loop_ref().check_thread()?;
        // SAFETY: from `Box::into_raw` in `tornado_tcp_server_new`; freed once.
        drop(unsafe { Box::from_raw(server) });
        Ok(())
    })
}
