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
    /// A [`Plain`](StreamingCallback::Plain) callback: `f` gets each chunk and
    /// the read goes on at once (Tornado's plain `streaming_callback`).
    pub fn new(f: impl Fn(&[u8]) + 'static) -> StreamingCallback {
        StreamingCallback::Plain(Rc::new(f))
    }

    /// A [`Pausing`](StreamingCallback::Pausing) callback: `f` may return a
    /// future, and no more of the body is read until it is done (Tornado's
    /// coroutine `streaming_callback`); an `Err`, or the future's error, fails
    /// the fetch.
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
    /// The URL to fetch (Tornado's `url`): `http` or `https`, any other scheme
    /// fails the fetch with `invalid_url`. The fragment is not sent.
    /// Credentials in it (`http://user:pass@host/`) are sent as Basic auth
    /// when `auth_username` is unset and no `Authorization` header is given.
    pub url: String,
    /// The HTTP method (Tornado's `method`), "GET" by default. It must be a
    /// token; one outside Tornado's list (GET, HEAD, POST, DELETE, PATCH, PUT,
    /// OPTIONS) fails with `invalid_request` unless
    /// `allow_nonstandard_methods` is set.
    pub method: String,
    /// Extra request headers (Tornado's `headers`), sent in order after `Host`
    /// (added from the URL unless given here). `user_agent`, Basic credentials
    /// and a fixed `body` replace any `User-Agent`, `Authorization` or
    /// `Content-Length` given here. A name that is not a token or a value with
    /// CR, LF or NUL fails the fetch with `invalid_request`.
    pub headers: Headers,
    /// A request body held in memory (Tornado's `body`), sent with a
    /// `Content-Length` of its length; a POST without `Content-Type` is sent
    /// as `application/x-www-form-urlencoded`. POST, PUT and PATCH need a body
    /// (this or `body_producer`) and other methods must have none, unless
    /// `allow_nonstandard_methods` is set (Tornado's rule). When both are set,
    /// this one is sent and the producer is never called.
    pub body: Option<Vec<u8>>,
    /// A body streamed as it is produced (Tornado's `body_producer`), sent
    /// chunk-framed, or as raw bytes when `headers` has a `Content-Length`
    /// (which the produced bytes must then match exactly). It runs once: a
    /// redirect that would send the body again is not followed (the 3xx is
    /// the response), nor is a Digest challenge answered.
    pub body_producer: Option<BodyProducer>,
    /// Resolve + connect + TLS handshake. None or zero: no limit (Tornado's 0).
    /// Running out is a `timeout` error that says which step ran out:
    /// `"Timeout while resolving <host>"`, `"Timeout while connecting"`, or
    /// `"Timeout during TLS handshake with <host>:<port>"` (Tornado's words).
    pub connect_timeout: Option<Duration>,
    /// The whole exchange, per hop. None or zero: no limit (Tornado's 0).
    pub request_timeout: Option<Duration>,
    /// Whether 301, 302, 303, 307 and 308 responses with a `Location` are
    /// followed (true by default, as Tornado's `follow_redirects`); when
    /// false, the 3xx is the response. Credentials and cookies are dropped
    /// when a redirect leaves the origin; 303 (and 301/302 after a POST)
    /// turn the request into a GET without a body.
    pub follow_redirects: bool,
    /// The most redirects followed for one fetch (Tornado's
    /// `max_redirects`, 5 by default). One more fails the fetch with
    /// `too_many_redirects`, the last 3xx being the response.
    pub max_redirects: u32,
    /// The `User-Agent` header (Tornado's `user_agent`); replaces one in
    /// `headers`. None: the one in `headers`, or else
    /// `tornado_rs/<crate version>`.
    pub user_agent: Option<String>,
    /// User name for HTTP authentication (Tornado's `auth_username`), sent as
    /// `auth_mode` says. Dropped when a redirect leaves the origin.
    pub auth_username: Option<String>,
    /// Password for HTTP authentication (Tornado's `auth_password`); None is
    /// an empty password. Used only with `auth_username`.
    pub auth_password: Option<String>,
    /// How the credentials are sent (Tornado's `auth_mode`): Basic by default.
    pub auth_mode: AuthMode,
    /// Whether to ask for a compressed body and decode it (Tornado's
    /// `decompress_response`, true by default): sends `Accept-Encoding: gzip`
    /// unless `headers` has one, and decodes a gzip or deflate body; the
    /// response's headers keep the `Content-Encoding` the server sent.
    pub decompress_response: bool,
    /// Whether an https server's certificate chain and name are checked
    /// (Tornado's `validate_cert`, true by default). False accepts any
    /// certificate: for tests only.
    pub validate_cert: bool,
    /// A PEM file of CA certificates to trust instead of the system's store
    /// (Tornado's `ca_certs`). None: the system's store.
    pub ca_certs: Option<PathBuf>,
    /// A PEM file with the client certificate chain presented to an https
    /// server (Tornado's `client_cert`); its key is read from `client_key`,
    /// or from this same file when `client_key` is None.
    pub client_cert: Option<PathBuf>,
    /// The PEM file of `client_cert`'s private key (Tornado's `client_key`);
    /// ignored without `client_cert`.
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
    /// Whether IPv6 addresses of the host are used (Tornado's `allow_ipv6`,
    /// true by default): false resolves IPv4 addresses only. Both families are
    /// tried as Happy Eyeballs (RFC 8305) when allowed.
    pub allow_ipv6: bool,
    /// Local address to connect from.
    pub network_interface: Option<IpAddr>,
    /// Sent as an `If-Modified-Since` header in HTTP-date form (Tornado's
    /// `if_modified_since`); a 304 response then has no body.
    pub if_modified_since: Option<SystemTime>,
    /// Gets the body as it arrives, instead of the response's `body`, which
    /// stays empty (Tornado's `streaming_callback`). Chunks are decoded
    /// (see `decompress_response`), at most 64 KiB each, and still count
    /// against the client's `max_body_size`. Responses that are followed
    /// (redirects, a Digest challenge) are not given to it.
    pub streaming_callback: Option<StreamingCallback>,
    /// Gets the final response's head line by line (Tornado's
    /// `header_callback`): the status line, each header line, then the empty
    /// line, each with its line end. 1xx responses and responses that are
    /// followed are not given to it. Unlike Tornado, the response's `headers`
    /// are still filled in.
    pub header_callback: Option<HeaderCallback>,
    /// Connect to this Unix domain socket instead of the URL's host and
    /// port (curl's `--unix-socket`: Docker's API and other local
    /// daemons). The URL still gives the Host header, the path and, for
    /// https, the TLS server name. Pooled like any origin, keyed on the
    /// path; no proxy is used. At most 107 bytes (the kernel's limit).
    pub unix_socket: Option<PathBuf>,
    /// An HTTP proxy's host, or a proxy URL as curl's `--proxy` takes it:
    /// `http://host:port`, `https://host:port` (TLS to the proxy itself,
    /// checked with `proxy_validate_cert` and `proxy_ca_certs`),
    /// `socks4://`, `socks4a://`, `socks5://` or
    /// `socks5h://` (the proxy resolves the name), credentials allowed in
    /// it (`socks5h://user:pass@host:port`); see [`super::proxy`].
    pub proxy_host: Option<String>,
    /// The proxy's port (Tornado's `proxy_port`); None: 8080.
    pub proxy_port: Option<u16>,
    /// User name for the proxy (Tornado's `proxy_username`); to an HTTP
    /// proxy it is sent as Basic `Proxy-Authorization` (on the `CONNECT`
    /// for https URLs).
    pub proxy_username: Option<String>,
    /// Password for the proxy (Tornado's `proxy_password`); None is an empty
    /// password. Used only with `proxy_username`.
    pub proxy_password: Option<String>,
    /// Whether an https:// proxy's certificate chain and name are checked
    /// (curl's `--proxy-insecure` turns it off); true by default. The
    /// target's own certificate is `validate_cert`'s business.
    pub proxy_validate_cert: bool,
    /// A PEM file of CA certificates to trust for an https:// proxy instead
    /// of the system's store (curl's `--proxy-cacert`). None: the system's.
    pub proxy_ca_certs: Option<PathBuf>,
    /// Allows a method outside Tornado's list and lifts the body rule (a body
    /// for POST, PUT and PATCH only); false by default, as Tornado's
    /// `allow_nonstandard_methods`.
    pub allow_nonstandard_methods: bool,
    /// Sends `Expect: 100-continue` and holds the body back until the server
    /// answers 100 Continue (Tornado's `expect_100_continue`, false by
    /// default). A final response instead of the 100 is the response, and the
    /// body is never sent. HTTP/1.1 only: over HTTP/2 (whose 1xx the `h2`
    /// crate does not show) the body goes at once, without the field.
    pub expect_100_continue: bool,
    /// Which HTTP versions this fetch may use; None: the client's default
    /// (`ClientOptions::http_version`, itself `Any` unless set).
    pub http_version: Option<super::HttpVersion>,
    /// Hand the connection over after a 101 (Switching Protocols) response
    /// instead of pooling or closing it (see [`super::upgrade`]); the
    /// WebSocket client's handshake sets it. None: a 101 is skipped as any
    /// other 1xx response.
    pub upgrade: Option<super::upgrade::Upgrade>,
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
            unix_socket: None,
            proxy_host: None,
            proxy_port: None,
            proxy_username: None,
            proxy_password: None,
            proxy_validate_cert: true,
            proxy_ca_certs: None,
            allow_nonstandard_methods: false,
            expect_100_continue: false,
            http_version: None,
            upgrade: None,
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
