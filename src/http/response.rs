//! Tornado's `HTTPResponse`, with curl's timings.

use std::time::SystemTime;

use super::body::Body;
use super::h1::response_head::ResponseHead;
use super::headers::Headers;
use crate::error::Error;

/// Seconds from the start of a fetch to each stage (curl's `time_*`).
/// Each ends no earlier than the one before; on a reused connection
/// namelookup, connect (and appconnect for https) end with the queue, and
/// appconnect is 0 for plain http.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimeInfo {
    /// Waiting for a free slot under the client's `max_clients` (Tornado's
    /// `time_info["queue"]`).
    pub queue: f64,
    /// Name resolution done (curl's `time_namelookup`).
    pub namelookup: f64,
    /// TCP connection made, to the host or to the proxy (curl's
    /// `time_connect`).
    pub connect: f64,
    /// TLS handshake done (curl's `time_appconnect`); 0 for plain http.
    pub appconnect: f64,
    /// About to send the request of the last hop (curl's `time_pretransfer`).
    pub pretransfer: f64,
    /// The last hop's response head arrived (curl's `time_starttransfer`, the
    /// time to first byte); 0 when no response came.
    pub starttransfer: f64,
    /// The whole fetch, queue and redirects included (curl's `time_total`).
    pub total: f64,
}

/// The outcome of a fetch (Tornado's `HTTPResponse`). A fetch always ends
/// in one: when no response was received, `code` is 599 and `error` says
/// why. A 4xx or 5xx response is a response like any other: its `error`
/// is None (as Tornado's `fetch(raise_error=False)` returns it).
#[derive(Clone, Debug)]
pub struct HTTPResponse {
    /// The status; 599 when no response was received.
    pub code: u16,
    /// The reason phrase as the server sent it, or the standard phrase for
    /// `code` when it sent none (Tornado's `reason`; "Unknown" for a code
    /// without one).
    pub reason: String,
    /// The final response's headers, in the order received (Tornado's
    /// `headers`); a value that is not UTF-8 is kept as Latin-1.
    pub headers: Headers,
    /// The body (empty when a streaming callback took it).
    pub body: Body,
    /// The URL of this response, after redirects.
    pub effective_url: String,
    /// Why the fetch failed: with code 599 when no response was received;
    /// beside a real response when max_redirects ran out (this is then the
    /// last 3xx, with its code, headers, body and URL, as Tornado's simple
    /// client returns it, and the error is too_many_redirects).
    pub error: Option<Error>,
    /// Seconds, not counting time queued.
    /// From leaving the queue to the end of the fetch, redirects included
    /// (Tornado's `request_time` counts only the last hop).
    pub request_time: f64,
    /// Wall-clock time at which the fetch began, before any wait in the
    /// queue (Tornado's `start_time`).
    pub start_time: SystemTime,
    /// When each stage of the fetch ended (Tornado's `time_info`, with curl's
    /// names).
    pub time_info: TimeInfo,
    /// The HTTP version the response came over: 10 (HTTP/1.0), 11
    /// (HTTP/1.1) or 20 (HTTP/2); 0 when no response was received.
    pub version: u8,
}

impl HTTPResponse {
    /// A response that never came: code 599 with `error`.
    pub fn error_response(url: &str, error: Error) -> HTTPResponse {
        HTTPResponse {
            code: 599,
            reason: "Unknown".into(),
            headers: Headers::new(),
            body: Body::default(),
            effective_url: url.to_string(),
            error: Some(error),
            request_time: 0.0,
            start_time: SystemTime::now(),
            time_info: TimeInfo::default(),
            version: 0,
        }
    }

    /// What a response's owner leaves behind when it moves the response
    /// out of a shared place (a done future): empty, allocation-free.
    pub(crate) fn taken() -> HTTPResponse {
        HTTPResponse {
            code: 0,
            reason: String::new(),
            headers: Headers::new(),
            body: Body::default(),
            effective_url: String::new(),
            error: None,
            request_time: 0.0,
            start_time: SystemTime::UNIX_EPOCH,
            time_info: TimeInfo::default(),
            version: 0,
        }
    }

    pub(crate) fn from_head(head: ResponseHead, body: Body, url: String) -> HTTPResponse {
        let reason = if head.reason.is_empty() {
            reason_for(head.code).to_string()
        } else {
            head.reason
        };
        let version = match head.version {
            0 => 10,
            1 => 11,
            _ => 20,
        };
        HTTPResponse {
            version,
            code: head.code,
            reason,
            headers: head.headers,
            body,
            effective_url: url,
            error: None,
            request_time: 0.0,
            start_time: SystemTime::now(),
            time_info: TimeInfo::default(),
        }
    }
}

/// The standard reason phrase of a status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
