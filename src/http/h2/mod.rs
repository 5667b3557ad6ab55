//! HTTP/2 for the client, with the `h2` crate (hyper's protocol crate):
//! one connection carries many fetches as streams.
//!
//! - [`io`]: tokio's I/O traits over an `IOStream` (no tokio runtime).
//! - [`H2Connection`]: the handshake, and the `h2` connection driven as a
//!   task on the library's loop; cheap to clone, one clone per fetch.
//! - [`upload`]: the request body with h2's flow control (a fixed body,
//!   a pulled producer, a writing producer paused while the window is shut).
//! - [`liveness`]: a PING before reusing a connection idle a while.
//! - [`exchange`]: one request/response as a stream on it. The request is
//!   the fields the HTTP/1.1 head would carry (every rule of
//!   `request_fields` applies: User-Agent, Accept-Encoding, auth,
//!   If-Modified-Since), as HTTP/2 fields: names lower-cased,
//!   connection-specific fields dropped (`h2_value`), Host as `:authority`.
//!
//! Flow control: windows as hyper's (5 MiB per connection, 2 MiB per
//! stream); a received DATA frame's capacity is released once its bytes
//! were handed on (to the body, or to a streaming callback; a pausing
//! callback releases it when it resumes), so a paused consumer stalls only
//! its own stream.

pub(crate) mod io;
mod liveness;
mod upload;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future as _};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use ::h2::client::{Builder, SendRequest};
use ::h2::{Reason, RecvStream};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};

use super::body_pool::BodyPool;
use super::h1::connection::{Exchanged, FollowCheck, Limits};
use super::h1::response_head::ResponseHead;
use super::request::HTTPRequest;
use super::request_fields::request_fields;
use super::url::{Scheme, Target};
use super::{fetch_error, kind_of, FetchErrorKind, Headers};
use crate::error::{Error, Result};
use crate::http::body_sink::BodySink;
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;
use crate::util::monotonic_ns;
use upload::{send_body, UploadError};

/// The stream window (what one stream may have in flight unread): hyper's.
pub(crate) const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// The connection window (all streams together): hyper's.
pub(crate) const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// Streams reset by the peer before we saw them end, tolerated per
/// connection before it is a protocol error (h2's guard against the
/// rapid-reset attack, at h2's default).
const MAX_CONCURRENT_RESET: usize = 10;
/// How far past max_header_size h2 decodes a header list (memory for one
/// list stays bounded by this multiple).
const HEADER_LIST_SLACK: usize = 4;
/// Fetches a new connection takes before the server's limit is known.
const ASSUMED_STREAMS: usize = 100;

/// Which HTTP versions a fetch may use (a request option, with a client
/// default). HTTPS offers what it allows by ALPN and uses what the server
/// picks; plain HTTP is HTTP/1.1 unless `Http2PriorKnowledge`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTPS: ALPN `h2` and `http/1.1`; plain HTTP: HTTP/1.1 (as curl).
    #[default]
    Any,
    /// HTTP/1.1 only (ALPN offers `http/1.1` alone).
    Http1Only,
    /// HTTP/2 over TLS by ALPN, falling back to HTTP/1.1 when the server
    /// does not pick `h2` (curl's `--http2`); plain HTTP stays HTTP/1.1.
    Http2,
    /// HTTP/2 without negotiation: the connection preface at once, over
    /// TLS (ALPN `h2` alone) or plain TCP (h2c).
    Http2PriorKnowledge,
}

impl HttpVersion {
    /// The ALPN protocols a TLS connection offers for this choice.
    pub(crate) fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            HttpVersion::Http1Only => vec![b"http/1.1".to_vec()],
            HttpVersion::Http2PriorKnowledge => vec![b"h2".to_vec()],
            HttpVersion::Any | HttpVersion::Http2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    /// Whether a plain-TCP connection speaks HTTP/2 from its first byte.
    pub(crate) fn h2c(self) -> bool {
        self == HttpVersion::Http2PriorKnowledge
    }
}

/// How the connection task ended (for the error of a stream that fails
/// because of it).
#[derive(Default)]
struct ConnectionState {
    ended: Cell<bool>,
    /// The server said GOAWAY (or refused a new stream): no new fetch
    /// should pick the connection, whose open streams may still finish.
    closing: Cell<bool>,
    /// Fetches using the connection now (their streams, or waiting to open one).
    active: Cell<usize>,
    /// A response arrived, so the server's SETTINGS did (they come first):
    /// its stream limit is known.
    responded: Cell<bool>,
    /// When the last fetch left it (monotonic ns): idle since then.
    idle_since_ns: Cell<u64>,
    failure: RefCell<Option<String>>,
}

/// One HTTP/2 connection. Clones share it; the connection ends (GOAWAY,
/// then the socket closes) once every clone and every stream is gone.
#[derive(Clone)]
pub(crate) struct H2Connection {
    send: SendRequest<Bytes>,
    state: Rc<ConnectionState>,
    lp: LoopRef,
    liveness: Rc<liveness::Liveness>,
}

impl H2Connection {
    /// Sends the connection preface and SETTINGS on `stream` and starts the
    /// task that drives the connection on the stream's loop.
    pub(crate) async fn handshake(stream: IOStream, limits: Limits) -> Result<H2Connection> {
        let lp = stream.loop_ref().clone();
        // h2 stops decoding a header list past this (a connection error,
        // `protocol`); one between max_header_size and it is decoded and
        // refused by `response_head` as `header_too_large`.
        let header_list = u32::try_from(limits.max_header_size.saturating_mul(HEADER_LIST_SLACK))
            .unwrap_or(u32::MAX);
        let (send, mut connection) = Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(header_list)
            .max_concurrent_reset_streams(MAX_CONCURRENT_RESET)
            // One stream until the server's SETTINGS say how many: a server
            // allowing fewer than h2's default would refuse the rest.
            .initial_max_send_streams(1)
            .enable_push(false)
            .handshake::<_, Bytes>(io::StreamIo::new(stream))
            .await
            .map_err(|e| h2_error(&e, None))?;
        let state = Rc::new(ConnectionState::default());
        state.idle_since_ns.set(monotonic_ns());
        let liveness = Rc::new(liveness::Liveness::new(connection.ping_pong()));
        let watched = Rc::clone(&state);
        lp.spawn(async move {
            let outcome = connection.await;
            if let Err(e) = outcome {
                *watched.failure.borrow_mut() = Some(e.to_string());
            }
            watched.ended.set(true);
        })?;
        Ok(H2Connection {
            send,
            state,
            lp,
            liveness,
        })
    }

    /// Whether new streams may still be opened here (the connection is up
    /// and the server has not sent GOAWAY).
    pub(crate) fn is_open(&self) -> bool {
        !self.state.ended.get() && !self.state.closing.get()
    }

    /// Streams open now (requests sent whose responses are not done).
    pub(crate) fn active_streams(&self) -> usize {
        self.state.active.get()
    }

    /// When the last fetch left the connection (monotonic ns).
    pub(crate) fn idle_since_ns(&self) -> u64 {
        self.state.idle_since_ns.get()
    }

    /// The GOAWAY the server sent, if it did (h2 keeps it as the
    /// connection's error, which it gives to new streams).
    fn goaway_received(&self) -> Option<Reason> {
        let mut probe = self.send.clone();
        let waker = std::task::Waker::from(std::sync::Arc::new(NoWake));
        match probe.poll_ready(&mut Context::from_waker(&waker)) {
            Poll::Ready(Err(e)) if e.is_go_away() && e.is_remote() => e.reason(),
            _ => None,
        }
    }

    /// A stream that broke with the connection (`closed`) after the server
    /// said GOAWAY: it was at or below the GOAWAY's last-stream-id, so the
    /// server took it and it is not sent again; the error says so.
    fn explain(&self, failure: H2Failure) -> H2Failure {
        if failure.retry || kind_of(&failure.error) != Some(FetchErrorKind::Closed) {
            return failure;
        }
        let Some(reason) = self.goaway_received() else {
            return failure;
        };
        let kind = if reason == Reason::NO_ERROR {
            FetchErrorKind::Closed
        } else {
            FetchErrorKind::Protocol
        };
        H2Failure {
            error: fetch_error(
                kind,
                format!(
                    "the server sent GOAWAY ({reason:?}) and closed the HTTP/2 connection \
                     before this stream, which it had taken, was complete (not retried)"
                ),
            ),
            retry: false,
        }
    }

    /// How many fetches the connection takes at once: the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS. Until its SETTINGS are known, 100
    /// fetches may join (h2 opens one stream and queues the rest until
    /// then, so a server that allows fewer never sees more).
    pub(crate) fn max_streams(&self) -> usize {
        let known = self.send.current_max_send_streams();
        if self.state.responded.get() {
            known
        } else {
            known.max(ASSUMED_STREAMS)
        }
    }
}

/// A waker that does nothing (for a poll that only asks for a state).
struct NoWake;

impl std::task::Wake for NoWake {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// A failed exchange on an HTTP/2 connection. `retry` says the server did
/// not process the request (RST_STREAM REFUSED_STREAM, or a GOAWAY (any code)
/// that left the stream out): it may be sent again (after a GOAWAY, on
/// another connection; after REFUSED_STREAM, where the pool picks).
pub(crate) struct H2Failure {
    pub error: Error,
    pub retry: bool,
}

impl From<Error> for H2Failure {
    fn from(error: Error) -> H2Failure {
        H2Failure {
            error,
            retry: false,
        }
    }
}

/// A fetch error for an `h2` error: the peer's resets and GOAWAYs name
/// their reason; a broken connection is `closed`, everything else a
/// `protocol` error.
fn h2_error(error: &::h2::Error, connection: Option<&ConnectionState>) -> Error {
    if error.is_io() {
        return fetch_error(
            FetchErrorKind::Closed,
            format!("the HTTP/2 connection failed: {error}"),
        );
    }
    let reason = error.reason();
    if error.is_reset() && error.is_remote() {
        return fetch_error(
            FetchErrorKind::Protocol,
            format!(
                "the server reset the HTTP/2 stream ({})",
                reason.map_or("no reason".into(), |r| format!("{r:?}"))
            ),
        );
    }
    if error.is_go_away() && error.is_remote() {
        let kind = if reason == Some(Reason::NO_ERROR) {
            FetchErrorKind::Closed
        } else {
            FetchErrorKind::Protocol
        };
        return fetch_error(
            kind,
            format!(
                "the server closed the HTTP/2 connection (GOAWAY {})",
                reason.map_or("no reason".into(), |r| format!("{r:?}"))
            ),
        );
    }
    let detail = connection
        .and_then(|c| c.failure.borrow().clone())
        .unwrap_or_else(|| error.to_string());
    fetch_error(FetchErrorKind::Protocol, format!("HTTP/2: {detail}"))
}

/// Whether the server left the stream unprocessed, so that it may be sent
/// again elsewhere (RFC 9113 §8.7): it refused it, or its GOAWAY's
/// last-stream-id left it out, whatever the GOAWAY's error code (§6.8). h2
/// (0.4) fails exactly the streams above last-stream-id with the remote
/// GOAWAY's error, at once; those at or below it carry on, and get an I/O
/// error if the socket then closes under them (see [`H2Connection::explain`]).
fn unprocessed(error: &::h2::Error) -> bool {
    let reason = error.reason();
    (error.is_reset() && error.is_remote() && reason == Some(Reason::REFUSED_STREAM))
        || (error.is_go_away() && error.is_remote())
}

/// A stream's failure; one the server left unprocessed may be retried when
/// the request can be sent again (a pulled body producer cannot).
fn stream_failure(
    error: ::h2::Error,
    connection: &ConnectionState,
    req: &HTTPRequest,
) -> H2Failure {
    if error.is_go_away() {
        connection.closing.set(true);
    }
    H2Failure {
        retry: req.body_producer.is_none() && unprocessed(&error),
        error: h2_error(&error, Some(connection)),
    }
}

/// Whether h2 refused what we asked of it (a malformed field, say),
/// rather than the connection or the peer failing: h2 has no accessor for
/// its "user" errors, which alone carry no reason and are neither I/O nor
/// a frame.
fn is_user_error(error: &::h2::Error) -> bool {
    !error.is_io() && !error.is_go_away() && !error.is_reset() && error.reason().is_none()
}

/// How an HTTP/1.1 header field goes into HTTP/2: None when it has no
/// place there, else the value to send.
/// - Connection-specific fields are dropped (RFC 9113 §8.2.2). `te` is
///   kept only as "trailers", sent in lower case: h2 takes it only so.
/// - `Expect: 100-continue` is dropped: h2 hides 1xx responses, so no
///   100 can be waited for; the body goes at once.
fn h2_value<'a>(name: &str, value: &'a [u8]) -> Option<&'a [u8]> {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if is("connection")
        || is("keep-alive")
        || is("proxy-connection")
        || is("transfer-encoding")
        || is("upgrade")
        || (is("expect") && value.eq_ignore_ascii_case(b"100-continue"))
    {
        return None;
    }
    if is("te") {
        return value
            .eq_ignore_ascii_case(b"trailers")
            .then_some(b"trailers");
    }
    Some(value)
}

/// The request as HTTP/2 sees it: the fields the HTTP/1.1 head would carry
/// (`request_fields`, one place for the header rules), names lower-cased,
/// each field as `h2_value` says, Host as `:authority`.
fn build_request(req: &HTTPRequest, target: &Target) -> Result<Request<()>> {
    let invalid = |what: &str| fetch_error(FetchErrorKind::InvalidRequest, what.to_string());
    let method = Method::from_bytes(req.method.as_bytes())
        .map_err(|_| invalid("the method is not a valid token"))?;
    let mut authority = None;
    let mut fields = http::HeaderMap::with_capacity(8 + req.headers.len());
    let mut failure = None;
    request_fields(req, target, false, &mut |name, value| {
        if failure.is_some() {
            return;
        }
        if name.eq_ignore_ascii_case("host") {
            authority = Some(String::from_utf8_lossy(value).into_owned());
            return;
        }
        let Some(value) = h2_value(name, value) else {
            return;
        };
        // from_bytes lower-cases the name.
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            (Ok(name), Ok(value)) => {
                fields.append(name, value);
            }
            (Err(_), _) => failure = Some("a header name is not valid in HTTP/2"),
            (_, Err(_)) => failure = Some("a header value is not valid in HTTP/2"),
        }
    });
    if let Some(what) = failure {
        return Err(invalid(what));
    }
    let scheme = match target.scheme {
        Scheme::Https => "https",
        Scheme::Http => "http",
    };
    let authority = authority.as_deref().unwrap_or(&target.host_header);
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(target.path_and_query.as_str())
        .build()
        .map_err(|_| invalid("the URL cannot be sent over HTTP/2"))?;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = fields;
    Ok(request)
}

/// Counts a fetch among the connection's active ones while it lives.
struct Active<'a>(&'a ConnectionState);

impl<'a> Active<'a> {
    fn enter(state: &'a ConnectionState) -> Active<'a> {
        state.active.set(state.active.get() + 1);
        Active(state)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
        if self.0.active.get() == 0 {
            self.0.idle_since_ns.set(monotonic_ns());
        }
    }
}

/// Sends `req` as a new stream on `connection` and reads its response.
pub(crate) async fn exchange(
    connection: &H2Connection,
    req: &HTTPRequest,
    target: &Target,
    limits: Limits,
    will_follow: FollowCheck<'_>,
    body_pool: &BodyPool,
) -> std::result::Result<Exchanged, H2Failure> {
    let state = &*connection.state;
    let _active = Active::enter(state);
    let request = build_request(req, target)?;
    let has_body = req.body.as_ref().is_some_and(|b| !b.is_empty()) || req.body_producer.is_some();
    let mut send = connection.send.clone();
    // Failing here, the request never left: another connection may take it.
    let unsent = |e: ::h2::Error| {
        if is_user_error(&e) {
            // The request itself is at fault (h2 refused a field): the
            // connection is fine, and another would refuse it too.
            return H2Failure::from(fetch_error(
                FetchErrorKind::InvalidRequest,
                format!("the request cannot be sent over HTTP/2: {e}"),
            ));
        }
        state.closing.set(true);
        H2Failure {
            error: h2_error(&e, Some(state)),
            retry: true,
        }
    };
    poll_fn(|cx| send.poll_ready(cx)).await.map_err(unsent)?;
    let (response, upload) = send.send_request(request, !has_body).map_err(unsent)?;
    // The body goes out while the response is awaited: a server may answer
    // (say, 413) before it took the whole body, and that answer counts.
    let mut response = pin!(response);
    let lp = &connection.lp;
    let mut sending = pin!(async move {
        let mut upload = upload;
        if has_body {
            send_body(&mut upload, req, state, lp).await?;
        }
        Ok::<_, UploadError>(upload)
    });
    // Moves the upload on; Some(error) when the body itself failed.
    let mut upload_over = false;
    let mut kept_upload = None;
    let mut drive_upload = |cx: &mut Context<'_>| -> Option<H2Failure> {
        if upload_over {
            return None;
        }
        let Poll::Ready(outcome) = sending.as_mut().poll(cx) else {
            return None;
        };
        upload_over = true;
        match outcome {
            Ok(upload) => kept_upload = Some(upload),
            // The body's own failure (a producer's error, a length it
            // broke) ends the fetch; the stream is reset.
            Err(UploadError::Producer(error)) => return Some(error.into()),
            // The server may have answered and stopped the upload
            // (RST_STREAM NO_ERROR, RFC 9113 8.1): its answer counts.
            Err(UploadError::Stream) => {}
        }
        None
    };
    let response = poll_fn(|cx| {
        if let Some(failure) = drive_upload(cx) {
            return Poll::Ready(Err(failure));
        }
        response
            .as_mut()
            .poll(cx)
            .map_err(|e| stream_failure(e, state, req))
    })
    .await
    .map_err(|f| connection.explain(f))?;
    state.responded.set(true);
    let first_byte = Some(Instant::now());
    let (parts, body) = response.into_parts();
    let head = response_head(&parts, limits)?;
    let following = will_follow(&head);
    if !following {
        if let Some(callback) = &req.header_callback {
            for line in header_lines(&head) {
                callback(&line);
            }
        }
    }
    let bodyless =
        req.method == "HEAD" || matches!(head.code, 204 | 304) || (100..200).contains(&head.code);
    let mut sink = BodySink::new(req, &head, !bodyless, limits, following, body_pool);
    let length = head
        .headers
        .get("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = length.filter(|_| !bodyless) {
        // Over the limit: refused before any of the body is read.
        sink.expect(length)?;
    }
    {
        // The upload goes on while the body arrives (a server may stream
        // its answer to a body it is still reading).
        let mut reading = pin!(read_body(body, &mut sink, state));
        poll_fn(|cx| {
            if let Some(failure) = drive_upload(cx) {
                return Poll::Ready(Err(failure));
            }
            reading.as_mut().poll(cx)
        })
        .await
        .map_err(|f| connection.explain(f))?;
    }
    sink.finish()?;
    if sink.must_wait() {
        sink.wait_for_consumer().await?;
    }
    drop(kept_upload);
    Ok(Exchanged {
        head,
        body: sink.body,
        reusable: true,
        // HTTP/2 has no 101: an upgrade asks for HTTP/1.1.
        upgraded: false,
        first_byte,
    })
}

/// The response's status and fields as a head the client knows; a field
/// list over `max_header_size` (names, values and 4 bytes a field, as
/// HTTP/1 lines) is `header_too_large`. One over `HEADER_LIST_SLACK` times
/// that (as RFC 9113 counts: 32 bytes a field) h2 refuses while decoding.
fn response_head(parts: &http::response::Parts, limits: Limits) -> Result<ResponseHead> {
    let text: usize = (parts.headers.iter())
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let size = text + 4 * parts.headers.len();
    if size > limits.max_header_size {
        return Err(fetch_error(
            FetchErrorKind::HeaderTooLarge,
            format!("the response head exceeds {} bytes", limits.max_header_size),
        ));
    }
    // As HTTP/1.1's heads: UTF-8 values as text, others kept as Latin-1.
    let mut headers = Headers::with_capacity(parts.headers.len(), text);
    for (name, value) in &parts.headers {
        match std::str::from_utf8(value.as_bytes()) {
            Ok(value) => headers.add(name.as_str(), value),
            Err(_) => headers.add_latin1(name.as_str(), value.as_bytes()),
        }
    }
    Ok(ResponseHead {
        version: 2,
        code: parts.status.as_u16(),
        reason: String::new(),
        headers,
    })
}

/// The head as lines in HTTP/1 form for a header callback: `HTTP/2 200`,
/// then `name: value` per field (names lower case, as received), then the
/// empty line, each ending in CRLF.
fn header_lines(head: &ResponseHead) -> Vec<Vec<u8>> {
    let mut lines = Vec::with_capacity(head.headers.len() + 2);
    lines.push(format!("HTTP/2 {}\r\n", head.code).into_bytes());
    for (name, value) in head.headers.iter_bytes() {
        let mut line = Vec::with_capacity(name.len() + value.len() + 4);
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(b": ");
        line.extend_from_slice(&value);
        line.extend_from_slice(b"\r\n");
        lines.push(line);
    }
    lines.push(b"\r\n".to_vec());
    lines
}

/// Reads the response's DATA into `sink`, releasing each frame's window
/// once its bytes were handed on.
async fn read_body(
    mut body: RecvStream,
    sink: &mut BodySink<'_>,
    state: &ConnectionState,
) -> std::result::Result<(), H2Failure> {
    while let Some(data) = poll_fn(|cx| body.poll_data(cx)).await {
        let data = data.map_err(|e| H2Failure::from(h2_error(&e, Some(state))))?;
        sink.accept(&data)?;
        if sink.must_wait() {
            sink.wait_for_consumer().await?;
        }
        // The window reopens only now: a paused consumer holds it back.
        let _ = body.flow_control().release_capacity(data.len());
    }
    Ok(())
}
