//! Tornado's `HTTPRequest`: one field per option, Tornado's defaults.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::headers::Headers;
use crate::error::Result;
use crate::future::Future;
pub use crate::tls::{CertKeyPem, TlsVersion};

pub use super::upload::{BodyProducer, BodyWriter};

/// A streaming callback that takes each chunk and goes on.
pub type ChunkCallback = dyn Fn(&[u8]);
/// A streaming callback that may pause the read (see [`StreamingCallback`]).
pub type PausingCallback = dyn Fn(&[u8]) -> Result<Option<Future<()>>>;

/// Receives the body in chunks as it arrives (it is then not buffered):
/// decoded, at most 64 KiB each.
#[derive(Clone)]
pub enum StreamingCallback {
    /// Called with each chunk; reading goes on at once.
    Plain(Rc<ChunkCallback>),
    /// Tornado's coroutine streaming_callback: a returned future pauses the
    /// body read until it is done (its error, or an error returned here,
    /// fails the fetch), so a slow consumer holds the server back instead
    /// of filling memory.
    Pausing(Rc<PausingCallback>),
}

impl StreamingCallback {
    pub fn new(f: impl Fn(&[u8]) + 'static) -> StreamingCallback {
        StreamingCallback::Plain(Rc::new(f))
    }

    pub fn pausing(f: impl Fn(&[u8]) -> Result<Option<Future<()>>> + 'static) -> StreamingCallback {
        StreamingCallback::Pausing(Rc::new(f))
    }

    /// Hands on one chunk; a future to wait for before reading more.
    pub(crate) fn call(&self, chunk: &[u8]) -> Result<Option<Future<()>>> {
        match self {
            StreamingCallback::Plain(f) => {
                f(chunk);
                Ok(None)
            }
            StreamingCallback::Pausing(f) => f(chunk),
        }
    }
}
/// Receives each header line as received (bytes, not necessarily UTF-8):
/// the status line first, each with its line end, then the empty line.
pub type HeaderCallback = Rc<dyn Fn(&[u8])>;

/// How `auth_username` / `auth_password` are sent (Tornado's `auth_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// `Authorization: Basic` on every request (the default).
    #[default]
    Basic,
    /// RFC 7616 Digest: sent without credentials first, then once more
    /// answering the server's 401 challenge (see [`super::digest`]).
    Digest,
}

/// Tornado's defaults for both timeouts.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// A request. `None` timeouts mean no limit (Tornado's 0).
#[derive(Clone)]
pub struct HTTPRequest {
    pub url: String,
    pub method: String,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    pub body_producer: Option<BodyProducer>,
    /// Resolve + connect + TLS handshake. None or zero: no limit (Tornado's 0).
    /// Running out is a `timeout` error that says which step ran out:
    /// "Timeout while resolving <host>", "Timeout while connecting", or
    /// "Timeout during TLS handshake with <host>:<port>" (Tornado's words).
    pub connect_timeout: Option<Duration>,
    /// The whole exchange, per hop. None or zero: no limit (Tornado's 0).
    pub request_timeout: Option<Duration>,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub user_agent: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_mode: AuthMode,
    pub decompress_response: bool,
    pub validate_cert: bool,
    pub ca_certs: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// TLS options beyond Tornado's own fields, as its `ssl_options`
    /// (an `ssl.SSLContext`) and curl set them; all `None` by default.
    /// Part of the connection pool's key: a connection made with other
    /// values is never reused.
    ///
    /// CA certificates as PEM bytes (`cadata`), trusted together with
    /// `ca_certs`' file instead of the system's store. Malformed PEM fails
    /// the fetch with a `tls` error.
    pub ca_pem: Option<Arc<[u8]>>,
    /// A client certificate chain and its key as PEM bytes, (chain, key);
    /// used instead of `client_cert`/`client_key` when set.
    pub client_cert_pem: Option<CertKeyPem>,
    /// The lowest TLS version accepted (None: 1.2).
    pub min_tls_version: Option<TlsVersion>,
    /// The ALPN protocols offered, in order (None: `http/1.1` alone; an
    /// empty list: no ALPN). The client speaks HTTP/1.1 only: a server
    /// that picks another protocol fails the fetch with a `protocol`
    /// error; one that picks none is spoken to in HTTP/1.1.
    pub alpn_protocols: Option<Arc<[Vec<u8>]>>,
    /// The name sent as SNI and checked against the certificate instead of
    /// the URL's host (Python's `server_hostname`; the Host header and the
    /// address connected to still come from the URL).
    pub tls_server_name: Option<Arc<str>>,
    pub allow_ipv6: bool,
    /// Local address to connect from.
    pub network_interface: Option<IpAddr>,
    pub if_modified_since: Option<SystemTime>,
    pub streaming_callback: Option<StreamingCallback>,
    pub header_callback: Option<HeaderCallback>,
    pub proxy_host: Option<String>,
    pub proxy_port: Option<u16>,
    pub proxy_username: Option<String>,
    pub proxy_password: Option<String>,
    pub allow_nonstandard_methods: bool,
    pub expect_100_continue: bool,
    /// Which HTTP versions this fetch may use; None: the client's default
    /// (`ClientOptions::http_version`, itself `Any` unless set).
    pub http_version: Option<super::HttpVersion>,
}

impl HTTPRequest {
    /// A GET of `url` with Tornado's defaults.
    pub fn new(url: impl Into<String>) -> HTTPRequest {
        HTTPRequest {
            url: url.into(),
            method: "GET".into(),
            headers: Headers::new(),
            body: None,
            body_producer: None,
            connect_timeout: Some(DEFAULT_TIMEOUT),
            request_timeout: Some(DEFAULT_TIMEOUT),
            follow_redirects: true,
            max_redirects: 5,
            user_agent: None,
            auth_username: None,
            auth_password: None,
            auth_mode: AuthMode::Basic,
            decompress_response: true,
            validate_cert: true,
            ca_certs: None,
            client_cert: None,
            client_key: None,
            ca_pem: None,
            client_cert_pem: None,
            min_tls_version: None,
            alpn_protocols: None,
            tls_server_name: None,
            allow_ipv6: true,
            network_interface: None,
            if_modified_since: None,
            streaming_callback: None,
            header_callback: None,
            proxy_host: None,
            proxy_port: None,
            proxy_username: None,
            proxy_password: None,
            allow_nonstandard_methods: false,
            expect_100_continue: false,
            http_version: None,
        }
    }
}

impl fmt::Debug for HTTPRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HTTPRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}
