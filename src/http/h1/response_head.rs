//! The HTTP/1.1 response head: finding its end, parsing it (with
//! `httparse`), and the body framing and keep-alive rules it implies.

use crate::error::Result;
use crate::http::headers::Headers;
use crate::http::protocol;
use crate::http::{fetch_error, FetchErrorKind};

/// Most header fields a response may have.
const MAX_RESPONSE_HEADERS: usize = 256;

/// A parsed status line and header block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1, 2 for HTTP/2.
    pub version: u8,
    /// The status code, e.g. 200.
    pub code: u16,
    /// The reason phrase as sent; empty when the server sent none or one that
    /// is not valid text.
    pub reason: String,
    /// The header fields in the order received (obsolete line folding
    /// unfolded; a value that is not UTF-8 kept as Latin-1).
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
    /// No body: a HEAD response, 1xx, 204, 304, or `Content-Length: 0`.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`: chunks until the zero-size one.
    Chunked,
    /// Neither header: the body runs until the server closes the connection
    /// (which then cannot be reused).
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
}
