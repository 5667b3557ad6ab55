//! HTTP/1.1 on the wire, without I/O: request heads, response heads (with
//! `httparse`), body framing, chunked and gzip/deflate decoding under size
//! limits, and Tornado's redirect rules. Everything here works on bytes, so
//! each rule has a unit test.

use std::borrow::Cow;
use std::io::Write;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use unicode_normalization::UnicodeNormalization as _;

use super::headers::Headers;
use super::request::{AuthMode, ChunkCallback, HTTPRequest};
use super::url::{parse_target, Target};
use super::{fetch_error, FetchErrorKind};
use crate::error::{Error, Result};

/// Methods accepted without `allow_nonstandard_methods` (Tornado's list).
const STANDARD_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"];
/// Most header fields a response may have.
const MAX_RESPONSE_HEADERS: usize = 256;
/// Longest chunk-size or trailer line.
const MAX_CHUNK_LINE: usize = 4096;

fn invalid_request(detail: impl std::fmt::Display) -> Error {
    fetch_error(FetchErrorKind::InvalidRequest, detail)
}

fn protocol(detail: impl std::fmt::Display) -> Error {
    fetch_error(FetchErrorKind::Protocol, detail)
}

// ---- requests ----

/// RFC 9110 token characters (methods, header names).
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A value that cannot break out of its header line.
fn is_safe_value(text: &str) -> bool {
    !text.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
}

/// Checks a request before anything is sent (Tornado's checks, plus no CR
/// or LF anywhere they could inject a header).
pub fn validate_request(req: &HTTPRequest) -> Result<()> {
    if !is_token(&req.method) {
        return Err(invalid_request(format!("bad method {:?}", req.method)));
    }
    let standard = STANDARD_METHODS.contains(&req.method.as_str());
    if !standard && !req.allow_nonstandard_methods {
        return Err(invalid_request(format!("unknown method {:?}", req.method)));
    }
    let body_expected = matches!(req.method.as_str(), "POST" | "PATCH" | "PUT");
    let body_present = req.body.is_some() || req.body_producer.is_some();
    if !req.allow_nonstandard_methods && body_expected != body_present {
        // Tornado's words, which its callers look for.
        return Err(invalid_request(if body_expected {
            format!(
                "Body must not be None for method {} (unless allow_nonstandard_methods is true)",
                req.method
            )
        } else {
            format!(
                "Body must be None for method {} (unless allow_nonstandard_methods is true)",
                req.method
            )
        }));
    }
    if req.body_producer.is_some() {
        declared_length(req)?;
    }
    for (name, value) in req.headers.iter() {
        if !is_token(name) {
            return Err(invalid_request(format!("bad header name {name:?}")));
        }
        if !is_safe_value(value) {
            return Err(invalid_request(format!("CR, LF or NUL in header {name}")));
        }
    }
    let fields = [
        &req.user_agent,
        &req.auth_username,
        &req.auth_password,
        &req.proxy_host,
        &req.proxy_username,
        &req.proxy_password,
    ];
    if fields
        .iter()
        .any(|f| f.as_deref().is_some_and(|v| !is_safe_value(v)))
    {
        return Err(invalid_request("CR, LF or NUL in a request field"));
    }
    Ok(())
}

/// `Basic` credentials. The pair is NFC-normalised before it is encoded
/// (RFC 7617 §2.1, Tornado's `encode_username_password`): a decomposed
/// "josé" is sent as the composed one.
/// The Content-Length the caller set for a streamed upload, if any: the
/// producer's bytes are then sent as they are, not chunk-framed, and must
/// add up to it.
pub fn declared_length(req: &HTTPRequest) -> Result<Option<u64>> {
    let mut values = req.headers.get_all("Content-Length");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let value = value.trim();
    let parsed = value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse::<u64>().ok())
        .flatten();
    match (parsed, values.next()) {
        (Some(length), None) => Ok(Some(length)),
        _ => Err(invalid_request(format!(
            "bad Content-Length {value:?} for a streamed body"
        ))),
    }
}

fn basic_auth(username: &str, password: &str) -> String {
    let pair: String = format!("{username}:{password}").nfc().collect();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The request's own credentials go as `Basic` on every send.
fn sends_basic_auth(req: &HTTPRequest) -> bool {
    req.auth_username.is_some() && req.auth_mode == AuthMode::Basic
}

/// The request line and headers, ending with the blank line.
pub fn request_head(req: &HTTPRequest, target: &Target, via_proxy: bool) -> Vec<u8> {
    let uri = if via_proxy {
        Cow::Owned(target.absolute_uri())
    } else {
        Cow::Borrowed(target.path_and_query.as_str())
    };
    // Sized once: the request line, Host, the caller's headers with their
    // separators, and room for the few headers added below. Bytes, not
    // text: a header value may be Latin-1, sent as its bytes.
    let mut head = Vec::with_capacity(
        req.method.len()
            + uri.len()
            + target.host_header.len()
            + req.headers.text_len()
            + 4 * req.headers.len()
            + 160,
    );
    head.extend_from_slice(req.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(uri.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &str, value: &[u8]| {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    if !req.headers.contains("Host") {
        line("Host", target.host_header.as_bytes());
    }
    for (name, value) in req.headers.iter_bytes() {
        // A fixed body's length is the body's (Tornado sets it so), whatever
        // the caller put in Content-Length.
        let replaced = (name.eq_ignore_ascii_case("User-Agent") && req.user_agent.is_some())
            || (name.eq_ignore_ascii_case("Authorization") && sends_basic_auth(req))
            || (name.eq_ignore_ascii_case("Content-Length") && req.body.is_some());
        if !replaced {
            line(name, &value);
        }
    }
    match &req.user_agent {
        Some(agent) => line("User-Agent", agent.as_bytes()),
        None if !req.headers.contains("User-Agent") => line(
            "User-Agent",
            concat!("tornado_rs/", env!("CARGO_PKG_VERSION")).as_bytes(),
        ),
        None => {}
    }
    if req.decompress_response && !req.headers.contains("Accept-Encoding") {
        line("Accept-Encoding", b"gzip");
    }
    match (&req.auth_username, req.auth_mode) {
        (Some(user), AuthMode::Basic) => line(
            "Authorization",
            basic_auth(user, req.auth_password.as_deref().unwrap_or("")).as_bytes(),
        ),
        // Digest credentials answer the server's challenge (a second send).
        (Some(_), AuthMode::Digest) => {}
        (None, _) => {
            if let (Some(user), false) = (&target.username, req.headers.contains("Authorization")) {
                line(
                    "Authorization",
                    basic_auth(user, target.password.as_deref().unwrap_or("")).as_bytes(),
                );
            }
        }
    }
    if let (true, Some(user)) = (via_proxy, &req.proxy_username) {
        line(
            "Proxy-Authorization",
            basic_auth(user, req.proxy_password.as_deref().unwrap_or("")).as_bytes(),
        );
    }
    if let Some(when) = req.if_modified_since {
        line("If-Modified-Since", http_date(when).as_bytes());
    }
    if req.body.is_some() || req.body_producer.is_some() {
        // As Tornado's clients and curl: a form unless the caller says.
        if req.method == "POST" && !req.headers.contains("Content-Type") {
            line("Content-Type", b"application/x-www-form-urlencoded");
        }
    }
    if let Some(body) = &req.body {
        line("Content-Length", body.len().to_string().as_bytes());
    } else if req.body_producer.is_some() && !req.headers.contains("Content-Length") {
        line("Transfer-Encoding", b"chunked");
    }
    if req.expect_100_continue && !req.headers.contains("Expect") {
        line("Expect", b"100-continue");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// `CONNECT host:port` for a tunnel through an HTTP proxy.
pub fn connect_tunnel_head(
    host: &str,
    port: u16,
    username: Option<&str>,
    password: Option<&str>,
) -> Vec<u8> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(user) = username {
        head.push_str(&format!(
            "Proxy-Authorization: {}\r\n",
            basic_auth(user, password.unwrap_or(""))
        ));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// An HTTP date (RFC 9110 IMF-fixdate), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
pub fn http_date(when: SystemTime) -> String {
    let secs = when.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---- responses ----

/// A parsed status line and header block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
}

/// Parses a response head from the start of `buf`: `Ok(None)` while
/// incomplete, else the head and the bytes it took. A head larger than
/// `max_header_size` is `header_too_large`; broken syntax is `protocol`.
pub fn parse_response_head(
    buf: &[u8],
    max_header_size: usize,
) -> Result<Option<(ResponseHead, usize)>> {
    let too_large = || {
        fetch_error(
            FetchErrorKind::HeaderTooLarge,
            format!("the response head exceeds {max_header_size} bytes"),
        )
    };
    // Uninitialized slots: zeroing 256 headers would cost more than parsing.
    let mut fields =
        [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    // Obsolete line folding is accepted and unfolded (RFC 9112 §5.2: a user
    // agent replaces each fold with a space), as curl does.
    let parsed = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response_with_uninit_headers(&mut response, buf, &mut fields);
    let consumed = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_header_size => return Err(too_large()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(fetch_error(
                FetchErrorKind::HeaderTooLarge,
                format!("more than {MAX_RESPONSE_HEADERS} response headers"),
            ))
        }
        Err(e) => return Err(protocol(format!("malformed response head: {e}"))),
    };
    if consumed > max_header_size {
        return Err(too_large());
    }
    let bytes = response
        .headers
        .iter()
        .map(|f| f.name.len() + f.value.len())
        .sum();
    let mut headers = Headers::with_capacity(response.headers.len(), bytes);
    // One UTF-8 check for the whole head, whose values are then slices of
    // it; in a head that is not UTF-8, each value is checked on its own.
    let head_text = std::str::from_utf8(&buf[..consumed]).ok();
    // Obsolete line folding (a line that starts with SP or HT) is rare:
    // one pass over the head's line ends, not a search in every value.
    let folded = memchr::memchr_iter(b'\n', &buf[..consumed])
        .any(|at| matches!(buf.get(at + 1), Some(b' ' | b'\t')));
    // Obsolete line folding (a line starting with SP or HT) is rare: look
    // for it once per head, not in every value.
    for field in response.headers.iter() {
        let value = match head_text {
            Some(text) => slice_of(text, buf, field.value),
            None => std::str::from_utf8(field.value).ok(),
        };
        match value {
            // A value holds a line break only where a line was folded.
            Some(value) if folded && value.contains('\n') => headers.add(field.name, unfold(value)),
            Some(value) => headers.add(field.name, value),
            None if folded && field.value.contains(&b'\n') => {
                let unfolded = unfold(&latin1_text(field.value));
                headers.add_latin1(
                    field.name,
                    &unfolded.chars().map(|c| c as u8).collect::<Vec<_>>(),
                )
            }
            None => headers.add_latin1(field.name, field.value),
        }
    }
    Ok(Some((
        ResponseHead {
            version: response.version.unwrap_or(1),
            code: response.code.unwrap_or(0),
            reason: response.reason.unwrap_or("").to_string(),
            headers,
        },
        consumed,
    )))
}

/// Bytes read as Latin-1 (each byte one char).
fn latin1_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// A folded header value with each line break and the whitespace around it
/// replaced by one space.
fn unfold(value: &str) -> String {
    let lines = value
        .split('\n')
        .map(|line| line.trim_matches([' ', '\t', '\r']));
    lines
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `part` (a slice of `buf`) as a slice of `text`, which is `buf` checked as UTF-8.
fn slice_of<'a>(text: &'a str, buf: &[u8], part: &[u8]) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    text.get(start..start.checked_add(part.len())?)
}

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The framing of the response to a `method` request (RFC 9112 §6.3).
pub fn body_framing(method: &str, head: &ResponseHead) -> Result<BodyFraming> {
    if method == "HEAD" || (100..200).contains(&head.code) || matches!(head.code, 204 | 304) {
        return Ok(BodyFraming::None);
    }
    let length = content_length(&head.headers)?;
    let codings: Vec<String> = head
        .headers
        .get_all("Transfer-Encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty() {
        if length.is_some() {
            return Err(protocol(
                "Message with both Transfer-Encoding and Content-Length",
            ));
        }
        if codings.last().map(String::as_str) != Some("chunked") {
            return Err(protocol(format!(
                "unsupported Transfer-Encoding {:?}",
                codings.join(", ")
            )));
        }
        return Ok(BodyFraming::Chunked);
    }
    Ok(match length {
        Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::UntilClose,
    })
}

/// The Content-Length, if any: repeats must agree; anything but digits is an error.
fn content_length(headers: &Headers) -> Result<Option<u64>> {
    let mut length = None;
    for value in headers.get_all("Content-Length").flat_map(|v| v.split(',')) {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(protocol(format!("bad Content-Length {value:?}")));
        }
        let n: u64 = value
            .parse()
            .map_err(|_| protocol(format!("Content-Length {value} overflows")))?;
        if let Some(earlier) = length.filter(|&earlier| earlier != n) {
            // Tornado's words.
            return Err(protocol(format!(
                "Multiple unequal Content-Lengths: {earlier} and {n}"
            )));
        }
        length = Some(n);
    }
    Ok(length)
}

/// Whether the connection may carry another request after this response.
pub fn keep_alive(_method: &str, head: &ResponseHead, framing: &BodyFraming) -> bool {
    if *framing == BodyFraming::UntilClose {
        return false;
    }
    let has_token = |token: &str| {
        head.headers
            .get_all("Connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if has_token("close") {
        return false;
    }
    head.version >= 1 || has_token("keep-alive")
}

/// False once `start` (the first bytes of a reply) can no longer become
/// an HTTP/1.x status line: anything but "HTTP/" after optional blank lines.
pub fn could_be_response_head(start: &[u8]) -> bool {
    let first = start
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(start.len());
    let start = &start[first..];
    let n = start.len().min(5);
    start[..n] == b"HTTP/"[..n]
}

/// Where a response head ends in `buf`: just past its empty line, which
/// may end in CRLF or a bare LF (`\r?\n\r?\n`, Tornado's rule; RFC 9112
/// §2.2 lets a recipient accept LF alone), skipping blank lines before the
/// status line as httparse does. `Err(resume)` while no end is buffered:
/// the next call may start scanning at `resume` (`from` must be 0 or a
/// `resume` of the same, grown buffer), so a head that trickles in is
/// scanned once, not once per read.
pub fn find_head_end(buf: &[u8], from: usize) -> std::result::Result<usize, usize> {
    let leading = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let start = from.max(leading);
    for lf in memchr::memchr_iter(b'\n', &buf[start..]) {
        let at = start + lf;
        match (buf.get(at + 1), buf.get(at + 2)) {
            (Some(b'\n'), _) => return Ok(at + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(at + 3),
            (None, _) | (Some(b'\r'), None) => return Err(at),
            _ => {}
        }
    }
    Err(buf.len())
}

// ---- chunked bodies ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Decodes a chunked body incrementally. Never allocates from a claimed
/// chunk size: data is copied as it arrives.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
    declared: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            line: Vec::new(),
            declared: 0,
        }
    }
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder::default()
    }

    /// True once the last chunk and the trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The sum of the chunk sizes announced so far (saturating): what the
    /// body will amount to if the server keeps its word.
    pub fn declared_size(&self) -> u64 {
        self.declared
    }

    /// Decodes what it can of `input` into `out`; returns the bytes consumed
    /// (all of them unless the body ended inside `input`).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let mut pos = 0;
        while pos < input.len() && !self.is_done() {
            pos += match self.state {
                ChunkState::Size | ChunkState::Trailer | ChunkState::DataEnd => {
                    self.take_line(&input[pos..])?
                }
                ChunkState::Data(left) => {
                    let n = (left.min((input.len() - pos) as u64)) as usize;
                    out.extend_from_slice(&input[pos..pos + n]);
                    self.state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                    n
                }
                ChunkState::Done => 0,
            };
        }
        Ok(pos)
    }

    /// Collects a line; when complete, acts on it. Returns bytes consumed.
    fn take_line(&mut self, input: &[u8]) -> Result<usize> {
        let (taken, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (input.len(), false),
        };
        self.line.extend_from_slice(&input[..taken]);
        if self.line.len() > MAX_CHUNK_LINE {
            return Err(protocol("a chunk-size or trailer line is too long"));
        }
        if complete {
            let line = std::mem::take(&mut self.line);
            // CRLF, or a bare LF as in a head (RFC 9112 §2.2).
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.on_line(line)?;
        }
        Ok(taken)
    }

    fn on_line(&mut self, line: &[u8]) -> Result<()> {
        self.state = match self.state {
            ChunkState::Size => match parse_chunk_size(line)? {
                0 => ChunkState::Trailer,
                n => {
                    self.declared = self.declared.saturating_add(n);
                    ChunkState::Data(n)
                }
            },
            ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
            ChunkState::DataEnd => return Err(protocol("chunk data is not followed by CRLF")),
            ChunkState::Trailer if line.is_empty() => ChunkState::Done,
            ChunkState::Trailer => ChunkState::Trailer,
            state => state,
        };
        Ok(())
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64> {
    let size = line.split(|&b| b == b';').next().unwrap_or(b"");
    let size = std::str::from_utf8(size)
        .map_err(|_| protocol("bad chunk size"))?
        .trim_matches([' ', '\t']);
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(protocol(format!("bad chunk size {size:?}")));
    }
    u64::from_str_radix(size, 16).map_err(|_| protocol("the chunk size overflows"))
}

// ---- compressed bodies ----

/// The most decoded bytes handed to a streaming callback at once
/// (Tornado's chunk size): memory stays bounded whatever the ratio.
pub const MAX_STREAMED_CHUNK: usize = 64 * 1024;

/// Where decoded bytes go: kept for the caller, or straight on to a
/// streaming callback (one that never pauses) as the decoder produces them.
enum Output {
    Keep(Vec<u8>),
    Stream(Rc<ChunkCallback>),
}

/// A `Write` that takes what a decoder produces and refuses more than
/// `max` bytes in all: a gzip bomb stops here, not in memory.
struct CappedSink {
    out: Output,
    total: u64,
    max: u64,
}

impl Write for CappedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.total + buf.len() as u64 > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                "over the limit",
            ));
        }
        self.total += buf.len() as u64;
        match &mut self.out {
            Output::Keep(kept) => kept.extend_from_slice(buf),
            Output::Stream(callback) => buf.chunks(MAX_STREAMED_CHUNK).for_each(|c| callback(c)),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CappedSink {
    /// Moves what was kept to `out` (nothing when streaming).
    fn hand_over(&mut self, out: &mut Vec<u8>) {
        if let Output::Keep(kept) = &mut self.out {
            out.append(kept);
        }
    }
}

enum Decoder {
    /// Every member of the stream (RFC 1952 §2.2), as Python and curl.
    Gzip(MultiGzDecoder<CappedSink>),
    Zlib(ZlibDecoder<CappedSink>),
    Raw(DeflateDecoder<CappedSink>),
    /// Deflate before its first bytes say whether it is zlib-wrapped.
    Undecided(CappedSink),
    /// Between the two: only while deciding.
    Taken,
}

/// Decodes a gzip or deflate body incrementally, at most `max_output` bytes.
/// Decoded bytes are handed on as soon as they can be decoded: a stream
/// whose server waits for the client's reaction to its first part works.
pub struct Decompressor {
    decoder: Decoder,
    max_output: u64,
    /// Whether any input came: a body-less response needs no decoding.
    fed: bool,
}

impl Decompressor {
    /// A decoder for `content_encoding` ("gzip", "x-gzip", "deflate"); None
    /// for anything else (the body is then passed through as it is). With
    /// `stream`, decoded bytes go to it in pieces of at most
    /// [`MAX_STREAMED_CHUNK`] instead of to `feed`'s `out`.
    pub fn new(
        content_encoding: &str,
        max_output: u64,
        stream: Option<Rc<ChunkCallback>>,
    ) -> Option<Decompressor> {
        let sink = CappedSink {
            out: stream.map_or(Output::Keep(Vec::new()), Output::Stream),
            total: 0,
            max: max_output,
        };
        let decoder = match content_encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Decoder::Gzip(MultiGzDecoder::new(sink)),
            "deflate" => Decoder::Undecided(sink),
            _ => return None,
        };
        Some(Decompressor {
            decoder,
            max_output,
            fed: false,
        })
    }

    fn failure(&self, error: std::io::Error) -> Error {
        if error.kind() == std::io::ErrorKind::OutOfMemory {
            fetch_error(
                FetchErrorKind::BodyTooLarge,
                format!(
                    "decompressed body too large (over {} bytes)",
                    self.max_output
                ),
            )
        } else {
            {
                // Tornado's words ("invalid gzip data"), for deflate likewise.
                let coding = match self.decoder {
                    Decoder::Gzip(_) => "gzip",
                    _ => "deflate",
                };
                protocol(format!("invalid {coding} data: {error}"))
            }
        }
    }

    /// Picks zlib or raw deflate from the first two bytes.
    fn decide(&mut self, input: &[u8]) {
        if !matches!(self.decoder, Decoder::Undecided(_)) {
            return;
        }
        let Decoder::Undecided(sink) = std::mem::replace(&mut self.decoder, Decoder::Taken) else {
            unreachable!("checked above");
        };
        // zlib: CMF says deflate (low nibble 8) and CMF*256+FLG is a multiple of 31.
        let zlib = input.len() >= 2
            && input[0] & 0x0f == 8
            && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
        self.decoder = if zlib {
            Decoder::Zlib(ZlibDecoder::new(sink))
        } else {
            Decoder::Raw(DeflateDecoder::new(sink))
        };
    }

    /// Decodes `input`, appending all that it decodes to (when not
    /// streaming) `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if input.is_empty() {
            return Ok(());
        }
        self.fed = true;
        self.decide(input);
        // The flush passes on what the decoder still holds of this input
        // (flate2 otherwise keeps it until the next write).
        let (written, sink) = match &mut self.decoder {
            Decoder::Gzip(d) => (d.write_all(input).and_then(|_| d.flush()), d.get_mut()),
            Decoder::Zlib(d) => (d.write_all(input).and_then(|_| d.flush()), d.get_mut()),
            Decoder::Raw(d) => (d.write_all(input).and_then(|_| d.flush()), d.get_mut()),
            Decoder::Undecided(_) | Decoder::Taken => return Ok(()),
        };
        sink.hand_over(out);
        written.map_err(|e| self.failure(e))
    }

    /// Ends the stream: flushes the rest into `out`; a truncated stream is
    /// a protocol error. A stream that got no input at all is an empty
    /// body (a HEAD, 204, 304 or empty response that names its coding).
    pub fn finish_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if !self.fed {
            return Ok(());
        }
        let (finished, sink, complete) = match &mut self.decoder {
            Decoder::Gzip(d) => (d.try_finish(), d.get_mut(), true),
            Decoder::Zlib(d) => {
                let r = d.try_finish();
                let complete = d.total_in() > 0;
                (r, d.get_mut(), complete)
            }
            Decoder::Raw(d) => (d.try_finish(), d.get_mut(), true),
            Decoder::Undecided(_) | Decoder::Taken => return Ok(()),
        };
        sink.hand_over(out);
        finished.map_err(|e| self.failure(e))?;
        if !complete {
            return Err(protocol("truncated compressed body"));
        }
        Ok(())
    }
}

// ---- redirects ----

/// Whether a redirect with `code` turns a `method` request into a GET
/// without a body (Tornado's rules).
fn becomes_get(method: &str, code: u16) -> bool {
    (code == 303 && method != "HEAD") || (matches!(code, 301 | 302) && method == "POST")
}

/// Whether `req` can follow a `code` redirect: not when that would send a
/// streamed body again (a producer runs once; the redirect is then the
/// response, as for a request that cannot be replayed).
pub fn can_follow(req: &HTTPRequest, code: u16) -> bool {
    req.body_producer.is_none() || becomes_get(&req.method, code)
}

/// The request to send after a redirect response, by Tornado's rules, or
/// None when the response is not a redirect to follow (e.g. a 301 without
/// Location). The caller checks `max_redirects` first.
pub fn redirect_request(
    original: &HTTPRequest,
    current_url: &str,
    code: u16,
    headers: &Headers,
) -> Result<Option<HTTPRequest>> {
    if !matches!(code, 301 | 302 | 303 | 307 | 308) || !can_follow(original, code) {
        return Ok(None);
    }
    let Some(location) = headers.get("Location") else {
        return Ok(None);
    };
    let base =
        ::url::Url::parse(current_url).map_err(|e| fetch_error(FetchErrorKind::InvalidUrl, e))?;
    let next_url = base.join(location.trim()).map_err(|e| {
        fetch_error(
            FetchErrorKind::InvalidUrl,
            format!("bad Location {location:?}: {e}"),
        )
    })?;
    let next_target = parse_target(next_url.as_str())?;
    let current_target = parse_target(current_url)?;
    let mut next = original.clone();
    next.url = next_url.to_string();
    next.max_redirects = original.max_redirects.saturating_sub(1);
    next.headers.remove("Host");
    let becomes_get = becomes_get(&original.method, code);
    if becomes_get {
        next.method = "GET".into();
        next.body = None;
        next.body_producer = None;
        for name in [
            "Content-Length",
            "Content-Type",
            "Content-Encoding",
            "Transfer-Encoding",
        ] {
            next.headers.remove(name);
        }
    }
    if original.auth_mode == AuthMode::Digest {
        // A digest answer is for one URI: the next one is challenged anew.
        next.headers.remove("Authorization");
    }
    if next_target.origin() != current_target.origin() {
        // Credentials are for the origin they were given for.
        next.headers.remove("Authorization");
        next.headers.remove("Cookie");
        next.auth_username = None;
        next.auth_password = None;
    }
    Ok(Some(next))
}

// ---- digest authentication ----

/// Whether a response is a Digest challenge that `req` will answer (once:
/// a request that already carries `Authorization` is not retried).
pub fn answers_digest_challenge(req: &HTTPRequest, code: u16, headers: &Headers) -> bool {
    code == 401
        && req.auth_mode == AuthMode::Digest
        && req.auth_username.is_some()
        && req.body_producer.is_none()
        && !req.headers.contains("Authorization")
        && super::digest::challenge(headers).is_some()
}

/// The request again, with an `Authorization` answering the 401's Digest
/// challenge; None when it is not one `req` answers.
pub fn digest_retry(
    req: &HTTPRequest,
    target: &Target,
    code: u16,
    headers: &Headers,
) -> Option<HTTPRequest> {
    if !answers_digest_challenge(req, code, headers) {
        return None;
    }
    let challenge = super::digest::challenge(headers)?;
    // The request-target as sent (absolute through a plain-HTTP proxy).
    let via_proxy = req.proxy_host.is_some() && target.scheme == super::url::Scheme::Http;
    let uri = if via_proxy {
        Cow::Owned(target.absolute_uri())
    } else {
        Cow::Borrowed(target.path_and_query.as_str())
    };
    let answer = super::digest::authorization(
        &challenge,
        req.auth_username.as_deref()?,
        req.auth_password.as_deref().unwrap_or(""),
        &req.method,
        &uri,
        &super::digest::new_cnonce(),
    );
    let mut next = req.clone();
    next.headers.set("Authorization", answer);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;
    use crate::http::FetchErrorKind::*;

    fn head(raw: &str) -> ResponseHead {
        parse_response_head(raw.as_bytes(), 65536)
            .unwrap()
            .unwrap()
            .0
    }

    fn kind(r: Result<impl std::fmt::Debug>) -> Option<FetchErrorKind> {
        kind_of(&r.expect_err("an error"))
    }

    #[test]
    fn request_validation() {
        let mut r = HTTPRequest::new("http://a/");
        assert!(validate_request(&r).is_ok());
        r.method = "POST".into();
        assert_eq!(
            kind(validate_request(&r)),
            Some(InvalidRequest),
            "POST needs a body"
        );
        r.body = Some(vec![]);
        assert!(validate_request(&r).is_ok());
        r.method = "GET".into();
        assert_eq!(
            kind(validate_request(&r)),
            Some(InvalidRequest),
            "GET with a body"
        );
        r.allow_nonstandard_methods = true;
        assert!(validate_request(&r).is_ok());
        let mut r = HTTPRequest::new("http://a/");
        r.method = "BREW".into();
        assert_eq!(kind(validate_request(&r)), Some(InvalidRequest));
        r.allow_nonstandard_methods = true;
        assert!(validate_request(&r).is_ok());
        r.method = "GET\r\nX".into();
        assert_eq!(kind(validate_request(&r)), Some(InvalidRequest));
        let mut r = HTTPRequest::new("http://a/");
        r.headers.add("X-A", "b\r\nInjected: 1");
        assert_eq!(kind(validate_request(&r)), Some(InvalidRequest));
        let mut r = HTTPRequest::new("http://a/");
        r.headers.add("Bad Name", "v");
        assert_eq!(kind(validate_request(&r)), Some(InvalidRequest));
        let mut r = HTTPRequest::new("http://a/");
        r.user_agent = Some("ua\nX: y".into());
        assert_eq!(kind(validate_request(&r)), Some(InvalidRequest));
    }

    #[test]
    fn request_heads() {
        let mut r = HTTPRequest::new("http://u:p@example.com:8080/x?y");
        r.method = "POST".into();
        r.body = Some(b"hello".to_vec());
        r.headers.add("X-One", "1");
        r.if_modified_since = Some(UNIX_EPOCH + std::time::Duration::from_secs(784_111_777));
        let target = parse_target(&r.url).unwrap();
        let text = String::from_utf8(request_head(&r, &target, false)).unwrap();
        assert!(text.starts_with("POST /x?y HTTP/1.1\r\nHost: example.com:8080\r\nX-One: 1\r\n"));
        assert!(text.contains("\r\nAuthorization: Basic dTpw\r\n"));
        assert!(text.contains("\r\nContent-Length: 5\r\n"));
        assert!(text.contains("\r\nAccept-Encoding: gzip\r\n"));
        assert!(text.contains("\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
        assert!(text.ends_with("\r\n\r\n"));

        let mut r = HTTPRequest::new("http://example.com/p");
        r.proxy_username = Some("pu".into());
        r.proxy_password = Some("pp".into());
        r.decompress_response = false;
        r.user_agent = Some("agent".into());
        let target = parse_target(&r.url).unwrap();
        let text = String::from_utf8(request_head(&r, &target, true)).unwrap();
        assert!(text.starts_with("GET http://example.com/p HTTP/1.1\r\n"));
        assert!(text.contains("Proxy-Authorization: Basic cHU6cHA=\r\n"));
        assert!(text.contains("User-Agent: agent\r\n"));
        assert!(!text.contains("Accept-Encoding"));
    }

    #[test]
    fn tunnel_head() {
        let text = String::from_utf8(connect_tunnel_head("::1", 443, None, None)).unwrap();
        assert_eq!(
            text,
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"
        );
    }

    #[test]
    fn response_heads() {
        let raw = b"HTTP/1.1 200 OK\r\nA: 1\r\nSet-Cookie: x\r\nset-cookie: y\r\n\r\nbody";
        let (h, n) = parse_response_head(raw, 1024).unwrap().unwrap();
        assert_eq!((h.version, h.code, h.reason.as_str()), (1, 200, "OK"));
        assert_eq!(n, raw.len() - 4);
        assert_eq!(
            h.headers.get_all("SET-COOKIE").collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nA: 1\r\n", 1024)
            .unwrap()
            .is_none());
        assert_eq!(
            kind(parse_response_head(b"garbage\r\n\r\n", 1024)),
            Some(Protocol)
        );
        let huge = format!("HTTP/1.1 200 {}", "x".repeat(1 << 20));
        assert_eq!(
            kind(parse_response_head(huge.as_bytes(), 65536)),
            Some(HeaderTooLarge)
        );
        let many: String = (0..300).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            kind(parse_response_head(many.as_bytes(), 1 << 20)),
            Some(HeaderTooLarge)
        );
        let folded = b"HTTP/1.1 200 OK\r\nX-XSS-Protection: 1;\r\n\tmode=block\r\nB: 2\r\n\r\n";
        let (h, _) = parse_response_head(folded, 1024).unwrap().unwrap();
        assert_eq!(h.headers.get("X-XSS-Protection"), Some("1; mode=block"));
        assert_eq!(h.headers.get("B"), Some("2"));
        let latin1 = b"HTTP/1.1 200 OK\r\nX: caf\xe9\r\n\r\n";
        let (h, _) = parse_response_head(latin1, 1024).unwrap().unwrap();
        assert_eq!(h.headers.get("X"), Some("caf\u{e9}"));
    }

    #[test]
    fn framing_rules() {
        let f = |method: &str, raw: &str| body_framing(method, &head(raw));
        assert_eq!(
            f("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap(),
            BodyFraming::Length(5)
        );
        assert_eq!(
            f("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap(),
            BodyFraming::None
        );
        assert_eq!(
            f(
                "GET",
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
            )
            .unwrap(),
            BodyFraming::None
        );
        assert_eq!(
            f(
                "GET",
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
            )
            .unwrap(),
            BodyFraming::None
        );
        assert_eq!(
            f(
                "GET",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            )
            .unwrap(),
            BodyFraming::Chunked
        );
        assert_eq!(
            f("GET", "HTTP/1.0 200 OK\r\n\r\n").unwrap(),
            BodyFraming::UntilClose
        );
        assert_eq!(
            f(
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
            )
            .unwrap(),
            BodyFraming::Length(5)
        );
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert_eq!(kind(f("GET", bad)), Some(Protocol), "{bad:?}");
        }
    }

    #[test]
    fn keep_alive_rules() {
        let k = |raw: &str| {
            let h = head(raw);
            keep_alive("GET", &h, &body_framing("GET", &h).unwrap())
        };
        assert!(k("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"));
        assert!(!k(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(!k("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"));
        assert!(k(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(!k("HTTP/1.1 200 OK\r\n\r\n"), "until close");
    }

    fn dechunk(input: &[u8], step: usize) -> Result<(Vec<u8>, bool)> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            let n = d.decode(piece, &mut out)?;
            assert!(n == piece.len() || d.is_done());
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn chunked_decoding() {
        let body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
        for step in [1, 2, 3, 7, body.len()] {
            assert_eq!(
                dechunk(body, step).unwrap(),
                (b"hello world".to_vec(), true)
            );
        }
        assert_eq!(dechunk(b"5\r\nhel", 100).unwrap(), (b"hel".to_vec(), false));
        assert_eq!(
            kind(dechunk(b"fffffffffffffffffffff\r\n", 100)),
            Some(Protocol)
        );
        assert_eq!(kind(dechunk(b"zz\r\n", 100)), Some(Protocol));
        assert_eq!(kind(dechunk(b"3\r\nabcX\r\n", 100)), Some(Protocol));
        assert_eq!(kind(dechunk(&[b'1'; 10_000], 100)), Some(Protocol));
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        // A huge claimed size allocates nothing up front.
        d.decode(b"ffffffff\r\nab", &mut out).unwrap();
        assert_eq!(out, b"ab");
        assert!(out.capacity() < 1024);
        // ... but the claim is known at once, for the caller's limit.
        assert_eq!(d.declared_size(), 0xffff_ffff);
        let mut d = ChunkedDecoder::new();
        d.decode(b"1\r\na\r\nffffffffffffffff\r\n", &mut out)
            .unwrap();
        assert_eq!(d.declared_size(), u64::MAX, "saturates");
        // Bytes after the end are left for the caller.
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"0\r\n\r\nextra", &mut out).unwrap(), 5);
    }

    #[test]
    fn replies_that_cannot_be_http_are_seen_early() {
        let cases: [(&[u8], bool); 11] = [
            (b"", true),
            (b"H", true),
            (b"HTT", true),
            (b"HTTP/", true),
            (b"HTTP/1.1 200", true),
            (b"\r\nHTTP/1.1", true),
            (b"<html>", false),
            (b"http/1.1", false),
            (b"X", false),
            (b"\r\nSSH-2.0", false),
            (b"\x16\x03\x01", false),
        ];
        for (start, could_be) in cases {
            assert_eq!(could_be_response_head(start), could_be, "{start:?}");
        }
    }

    fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
        use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
        use flate2::Compression;
        let level = Compression::default();
        match kind {
            "gzip" => {
                let mut e = GzEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "zlib" => {
                let mut e = ZlibEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = DeflateEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    fn decompress(coding: &str, input: &[u8], max: u64, step: usize) -> Result<Vec<u8>> {
        let mut d = Decompressor::new(coding, max, None).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            d.feed(piece, &mut out)?;
        }
        d.finish_into(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_and_deflate() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            decompress("gzip", &compress("gzip", &data), 1 << 20, 1000).unwrap(),
            data
        );
        assert_eq!(
            decompress("deflate", &compress("zlib", &data), 1 << 20, 1000).unwrap(),
            data
        );
        assert_eq!(
            decompress("deflate", &compress("raw", &data), 1 << 20, 7).unwrap(),
            data
        );
        assert!(Decompressor::new("br", 10, None).is_none());
        assert!(Decompressor::new("identity", 10, None).is_none());
        assert_eq!(
            kind(decompress("gzip", b"this is not gzip at all", 1 << 20, 100)),
            Some(Protocol)
        );
        let gz = compress("gzip", &data);
        assert_eq!(
            kind(decompress("gzip", &gz[..gz.len() / 2], 1 << 20, 100)),
            Some(Protocol),
            "truncated"
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let bomb = compress("gzip", &vec![0u8; 20 << 20]);
        let mut d = Decompressor::new("gzip", 1 << 20, None).unwrap();
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in bomb.chunks(4096) {
            result = d.feed(piece, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(kind(result), Some(BodyTooLarge));
        assert!(out.len() <= 1 << 20);
    }

    #[test]
    fn a_head_ends_at_its_empty_line_with_crlf_or_bare_lf() {
        let cases: [(&[u8], std::result::Result<usize, usize>); 9] = [
            (b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody", Ok(25)),
            (b"HTTP/1.1 200 OK\nA: 1\n\nbody", Ok(22)),
            (b"HTTP/1.1 200 OK\nA: 1\r\n\nbody", Ok(23)),
            (b"HTTP/1.1 200 OK\r\nA: 1\n\r\nbody", Ok(24)),
            (b"\r\n\r\nHTTP/1.1 204 No\n\n", Ok(21)),
            (b"HTTP/1.1 200 OK\r\nA: 1\r\n", Err(22)),
            (b"HTTP/1.1 200 OK\r\nA: 1\r\n\r", Err(22)),
            (b"HTTP/1.1 200 OK\r\nA: 1", Err(21)),
            (b"\r\n", Err(2)),
        ];
        for (buf, end) in cases {
            assert_eq!(
                find_head_end(buf, 0),
                end,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
        // Resuming where the last scan stopped finds the same end.
        let whole = b"HTTP/1.1 200 OK\nA: 1\n\n";
        let mut from = 0;
        for n in 1..whole.len() {
            from = find_head_end(&whole[..n], from).expect_err("incomplete");
        }
        assert_eq!(find_head_end(whole, from), Ok(whole.len()));
        let (h, n) = parse_response_head(b"HTTP/1.1 201 Made\nX: y\n\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!((h.code, h.headers.get("X"), n), (201, Some("y"), 24));
    }

    #[test]
    fn chunked_lines_may_end_in_a_bare_lf() {
        let body = b"5\nhello\n6;x=1\r\n world\n0\nT: t\n\n";
        for step in [1, 2, body.len()] {
            assert_eq!(
                dechunk(body, step).unwrap(),
                (b"hello world".to_vec(), true)
            );
        }
    }

    #[test]
    fn every_gzip_member_is_decoded() {
        let mut two = compress("gzip", b"first member, ");
        two.extend(compress("gzip", b"second member"));
        for step in [1, 5, two.len()] {
            assert_eq!(
                decompress("gzip", &two, 1 << 20, step).unwrap(),
                b"first member, second member"
            );
        }
    }

    #[test]
    fn a_stream_that_got_no_bytes_is_an_empty_body() {
        for coding in ["gzip", "deflate"] {
            assert_eq!(decompress(coding, b"", 1 << 20, 1).unwrap(), b"");
        }
    }

    #[test]
    fn decoded_bytes_are_handed_on_with_their_input() {
        use flate2::write::GzEncoder;
        // The first part of a stream, flushed as a server does before it
        // waits: all of it decodes now, not at the next write.
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"part one").unwrap();
        e.flush().unwrap();
        let first = e.get_ref().clone();
        let mut d = Decompressor::new("gzip", 1 << 20, None).unwrap();
        let mut out = Vec::new();
        d.feed(&first, &mut out).unwrap();
        assert_eq!(out, b"part one");
    }

    #[test]
    fn streamed_decoded_chunks_are_bounded() {
        let bomb = compress("gzip", &vec![0u8; 8 << 20]);
        let sizes = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = sizes.clone();
        let stream: Rc<ChunkCallback> = Rc::new(move |c: &[u8]| seen.borrow_mut().push(c.len()));
        let mut d = Decompressor::new("gzip", 1 << 30, Some(stream)).unwrap();
        let mut out = Vec::new();
        d.feed(&bomb, &mut out).unwrap();
        d.finish_into(&mut out).unwrap();
        assert!(out.is_empty(), "streamed, not kept");
        let sizes = sizes.borrow();
        assert_eq!(sizes.iter().sum::<usize>(), 8 << 20);
        assert!(
            sizes.iter().all(|&n| n <= MAX_STREAMED_CHUNK),
            "max {:?}",
            sizes.iter().max()
        );
    }

    #[test]
    fn request_heads_for_bodies_and_credentials() {
        let target = parse_target("http://127.0.0.1:1/p").unwrap();
        let text =
            |req: &HTTPRequest| String::from_utf8(request_head(req, &target, false)).unwrap();
        let mut post = HTTPRequest::new("http://127.0.0.1:1/p");
        post.method = "POST".into();
        post.body = Some(b"a=1".to_vec());
        post.headers.add("Content-Length", "99");
        let head = text(&post);
        assert!(
            head.contains("Content-Type: application/x-www-form-urlencoded\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Content-Length: 3\r\n") && !head.contains("99"),
            "{head}"
        );
        post.headers.add("Content-Type", "text/plain");
        assert!(!text(&post).contains("x-www-form-urlencoded"));
        let mut put = HTTPRequest::new("http://127.0.0.1:1/p");
        put.method = "PUT".into();
        put.body = Some(b"x".to_vec());
        assert!(
            !text(&put).contains("Content-Type"),
            "only POST gets a default type"
        );
        let mut streamed = put.clone();
        streamed.body = None;
        streamed.body_producer = Some(crate::http::upload::BodyProducer::pull(|| Ok(None)));
        streamed.headers.add("Content-Length", "5");
        let head = text(&streamed);
        assert!(
            head.contains("Content-Length: 5\r\n") && !head.contains("chunked"),
            "{head}"
        );
        assert_eq!(declared_length(&streamed).unwrap(), Some(5));
        streamed.headers.set("Content-Length", "5x");
        assert_eq!(kind(validate_request(&streamed)), Some(InvalidRequest));
        // NFC: "jose" + combining acute is sent as the composed "josé".
        let mut auth = HTTPRequest::new("http://127.0.0.1:1/p");
        auth.auth_username = Some("jose\u{301}".into());
        auth.auth_password = Some("pw".into());
        let composed = basic_auth("jos\u{e9}", "pw");
        assert!(text(&auth).contains(&format!("Authorization: {composed}\r\n")));
        assert_eq!(composed, "Basic am9zw6k6cHc=");
    }

    fn redirect(method: &str, code: u16, location: &str) -> Option<HTTPRequest> {
        let mut r = HTTPRequest::new("http://a.test/start");
        r.method = method.into();
        if method == "POST" || method == "PUT" {
            r.body = Some(b"data".to_vec());
            r.headers.add("Content-Type", "text/plain");
        }
        r.headers.add("Authorization", "Bearer t");
        r.headers.add("Cookie", "c=1");
        r.auth_username = Some("u".into());
        let mut h = Headers::new();
        if !location.is_empty() {
            h.add("Location", location);
        }
        redirect_request(&r, &r.url, code, &h).unwrap()
    }

    #[test]
    fn redirect_rules() {
        let r = redirect("POST", 303, "/next").unwrap();
        assert_eq!(
            (r.method.as_str(), r.url.as_str()),
            ("GET", "http://a.test/next")
        );
        assert!(r.body.is_none() && !r.headers.contains("Content-Type"));
        assert_eq!(redirect("HEAD", 303, "/n").unwrap().method, "HEAD");
        assert_eq!(redirect("PUT", 303, "/n").unwrap().method, "GET");
        assert_eq!(redirect("POST", 301, "/n").unwrap().method, "GET");
        assert_eq!(redirect("POST", 302, "/n").unwrap().method, "GET");
        assert_eq!(redirect("PUT", 302, "/n").unwrap().method, "PUT");
        let r = redirect("POST", 307, "/n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.body.as_deref()),
            ("POST", Some(&b"data"[..]))
        );
        assert_eq!(redirect("POST", 308, "/n").unwrap().method, "POST");
        assert!(redirect("GET", 301, "").is_none(), "no Location");
        assert!(redirect("GET", 200, "/x").is_none());
        let same = redirect("GET", 302, "/n").unwrap();
        assert!(same.headers.contains("Authorization") && same.auth_username.is_some());
        assert_eq!(same.max_redirects, 4);
        let other = redirect("GET", 302, "http://b.test/n").unwrap();
        assert!(!other.headers.contains("Authorization"));
        assert!(!other.headers.contains("Cookie"));
        assert!(other.auth_username.is_none());
        let port = redirect("GET", 302, "http://a.test:81/n").unwrap();
        assert!(
            !port.headers.contains("Authorization"),
            "another port is another origin"
        );
        let r = HTTPRequest::new("http://a.test/");
        let mut h = Headers::new();
        h.add("Location", "ftp://a.test/file");
        assert_eq!(
            kind(redirect_request(&r, &r.url, 302, &h)),
            Some(InvalidUrl)
        );
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(t), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
