//! Tornado's WebSocket client (`tornado.websocket.websocket_connect`):
//! RFC 6455 over the HTTP client's connections, with permessage-deflate
//! (RFC 7692), pings and Tornado's limits.
//!
//! - [`frame`]: the wire format without I/O (encoder, incremental parser);
//! - [`deflate`]: permessage-deflate negotiation and streams;
//! - [`handshake`]: the opening handshake's headers and checks;
//! - [`connection`]: an open [`WebSocket`] on the loop.
//!
//! The handshake is an ordinary fetch (so headers, auth, TLS options and
//! validation, proxies and CONNECT tunnels, connect and request timeouts
//! all apply) carrying an [`Upgrade`]: the
//! client hands the connection of the 101 response over instead of pooling
//! it. Redirects are not followed, as in Tornado.

pub mod connection;
pub mod deflate;
pub mod frame;
pub mod handshake;

use std::time::Duration;

use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::gen;
use crate::http::client::AsyncHTTPClient;
use crate::http::request::HTTPRequest;
use crate::http::upgrade::Upgrade;
use crate::http::{fetch_error, FetchErrorKind};

pub use connection::{ControlCallback, MessageCallback, WebSocket};
pub use deflate::CompressionOptions;

/// Tornado's default `max_message_size`: 10 MiB.
pub(crate) const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// A message received or to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (opcode 1): valid UTF-8.
    Text(String),
    /// A binary message (opcode 2): any bytes.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes (a text message's UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }

    /// Whether it is a binary message (Tornado's `binary=True`).
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }
}

/// `websocket_connect`'s options beyond the request (Tornado's arguments).
#[derive(Clone, Debug)]
pub struct WebSocketOptions {
    /// Offered in order in `Sec-WebSocket-Protocol`; the server may pick one.
    pub subprotocols: Vec<String>,
    /// The largest message accepted (after decompression); a larger one
    /// closes the connection with 1009. 10 MiB.
    pub max_message_size: usize,
    /// Offer permessage-deflate (None: no compression, Tornado's default).
    pub compression: Option<CompressionOptions>,
    /// Send a ping this often (None or zero: never).
    pub ping_interval: Option<Duration>,
    /// Close when no pong came this long after a ping (None: the interval;
    /// never longer than it, as Tornado).
    pub ping_timeout: Option<Duration>,
    /// Bytes written but not yet on the wire past which `write_*` fails
    /// with `TOO_LARGE` (one message is always accepted when nothing waits). 16 MiB.
    pub max_write_buffer: usize,
    /// How long `close` waits for the server's close frame (Tornado's 5 s).
    pub close_timeout: Duration,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        WebSocketOptions {
            subprotocols: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            compression: None,
            ping_interval: None,
            ping_timeout: None,
            max_write_buffer: 16 * 1024 * 1024,
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// A WebSocket error: its message starts with its kind ("protocol: ...").
pub(crate) fn ws_error(code: Code, kind: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(code, format!("{kind}: {detail}"))
}

/// The http(s) URL the handshake fetches for a ws(s) URL.
fn http_url(url: &str) -> Result<String> {
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" => "http",
        "wss" => "https",
        _ => {
            return Err(fetch_error(
                FetchErrorKind::InvalidUrl,
                format!("a WebSocket URL starts with ws:// or wss:// ({url:?})"),
            ))
        }
    };
    Ok(format!("{scheme}:{rest}"))
}

fn check_options(options: &WebSocketOptions) -> Result<()> {
    for name in &options.subprotocols {
        handshake::check_subprotocol(name)?;
    }
    if options.max_message_size == 0 || options.max_write_buffer == 0 {
        return Err(Error::invalid(
            "max_message_size and max_write_buffer must be positive",
        ));
    }
    if let Some(c) = &options.compression {
        if c.compression_level > 9 {
            return Err(Error::invalid("compression_level is 0-9"));
        }
        if c.server_max_window_bits
            .is_some_and(|b| !(8..=15).contains(&b))
        {
            return Err(Error::invalid("server_max_window_bits is 8-15"));
        }
        if c.client_max_window_bits
            .is_some_and(|b| !(8..=15).contains(&b))
        {
            return Err(Error::invalid("client_max_window_bits is 8-15"));
        }
    }
    Ok(())
}

/// Opens a WebSocket to `request.url` (ws:// or wss://) through `client`'s
/// connections, as Tornado's `websocket_connect(request, ...)`. The
/// request's headers, auth, TLS options, proxy and timeouts apply to the
/// handshake; its method, body and redirect settings are replaced (GET, no
/// body, redirects not followed). The future fails with the fetch's error,
/// or a `protocol` error when the server does not switch protocols (its
/// status is in the message) or answers the handshake wrongly.
pub fn websocket_connect(
    client: &AsyncHTTPClient,
    mut request: HTTPRequest,
    options: WebSocketOptions,
) -> Result<Future<WebSocket>> {
    let lp = client.loop_ref().clone();
    lp.check_thread()?;
    check_options(&options)?;
    request.url = http_url(&request.url)?;
    request.method = "GET".into();
    request.body = None;
    request.body_producer = None;
    request.follow_redirects = false;
    request.decompress_response = false;
    request.expect_100_continue = false;
    request.streaming_callback = None;
    // The upgrade is an HTTP/1.1 mechanism (RFC 8441's extended CONNECT
    // over HTTP/2 is not offered): ALPN offers http/1.1 alone.
    request.http_version = Some(crate::http::HttpVersion::Http1Only);
    let rng = ring::rand::SystemRandom::new();
    let key = handshake::new_key(&rng)?;
    handshake::add_request_headers(
        &mut request.headers,
        &key,
        &options.subprotocols,
        options.compression.as_ref(),
    );
    let upgrade = Upgrade::new();
    request.upgrade = Some(upgrade.clone());
    let fetched = client.fetch(request)?;
    let watched = fetched.clone();
    let result = gen::spawn(&lp, async move {
        let response = fetched.value().await?;
        if let Some(error) = response.error.filter(|_| response.code == 599) {
            return Err(error);
        }
        let Some(stream) = upgrade.take().filter(|_| response.code == 101) else {
            return Err(fetch_error(
                FetchErrorKind::Protocol,
                format!(
                    "the server refused the WebSocket handshake: HTTP {} {}",
                    response.code, response.reason
                ),
            ));
        };
        let negotiated = match handshake::check_response(
            &response.headers,
            &key,
            &options.subprotocols,
            options.compression.as_ref(),
        ) {
            Ok(negotiated) => negotiated,
            Err(e) => {
                stream.close(None);
                return Err(e);
            }
        };
        let extensions = negotiated
            .deflate
            .as_ref()
            .and(response.headers.get("Sec-WebSocket-Extensions"))
            .map(str::to_string);
        WebSocket::start(stream, &options, negotiated, extensions)
    })?;
    // Cancelling the connect cancels the handshake's fetch.
    result.add_done_callback(move |done| {
        if done.error().is_some_and(|e| e.code() == Code::CANCELLED) {
            let _ = watched.cancel();
        }
    })?;
    Ok(result)
}
