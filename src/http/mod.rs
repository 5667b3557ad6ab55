//! Tornado's HTTP client: `HTTPRequest`, `HTTPResponse`, `AsyncHTTPClient`.
//!
//! - [`validate`], [`decompress`], [`redirect`]: rules every HTTP version
//!   shares, without I/O, so each is unit-tested on bytes.
//! - [`h1`]: HTTP/1.1 only (heads, chunked bodies, one exchange on a stream).
//! - [`client`]: queueing, connecting, keep-alive, redirects and timeouts.

pub(crate) mod auth;
pub mod body;
pub mod body_pool;
pub mod client;
pub mod cookies;
pub mod decompress;
pub mod digest;
pub mod h1;
pub mod headers;
pub mod proxy;
pub mod redirect;
pub mod request;
pub mod response;
pub(crate) mod unix;
pub mod upload;
pub mod url;
pub mod validate;
pub(crate) mod zstd_writer;

use std::fmt;

use crate::error::{Code, Error};

pub use body::Body;
pub use client::{AsyncHTTPClient, ClientOptions};
pub use headers::Headers;
pub use request::HTTPRequest;
pub use response::{HTTPResponse, TimeInfo};

/// Why a fetch got no (usable) response: the kinds of `FETCH_CLI.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FetchErrorKind {
    Resolve,
    Connect,
    Timeout,
    Tls,
    Protocol,
    Closed,
    BodyTooLarge,
    HeaderTooLarge,
    TooManyRedirects,
    InvalidUrl,
    InvalidRequest,
    Cancelled,
}

const KINDS: [FetchErrorKind; 12] = [
    FetchErrorKind::Resolve,
    FetchErrorKind::Connect,
    FetchErrorKind::Timeout,
    FetchErrorKind::Tls,
    FetchErrorKind::Protocol,
    FetchErrorKind::Closed,
    FetchErrorKind::BodyTooLarge,
    FetchErrorKind::HeaderTooLarge,
    FetchErrorKind::TooManyRedirects,
    FetchErrorKind::InvalidUrl,
    FetchErrorKind::InvalidRequest,
    FetchErrorKind::Cancelled,
];

impl FetchErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchErrorKind::Resolve => "resolve",
            FetchErrorKind::Connect => "connect",
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::Tls => "tls",
            FetchErrorKind::Protocol => "protocol",
            FetchErrorKind::Closed => "closed",
            FetchErrorKind::BodyTooLarge => "body_too_large",
            FetchErrorKind::HeaderTooLarge => "header_too_large",
            FetchErrorKind::TooManyRedirects => "too_many_redirects",
            FetchErrorKind::InvalidUrl => "invalid_url",
            FetchErrorKind::InvalidRequest => "invalid_request",
            FetchErrorKind::Cancelled => "cancelled",
        }
    }

    /// The status code a C caller sees for this kind.
    pub fn code(self) -> Code {
        match self {
            FetchErrorKind::Resolve => Code::RESOLVE,
            FetchErrorKind::Connect => Code::CONNECT,
            FetchErrorKind::Timeout => Code::TIMEOUT,
            FetchErrorKind::Tls => Code::TLS,
            FetchErrorKind::Protocol => Code::PROTOCOL,
            FetchErrorKind::Closed => Code::CLOSED,
            FetchErrorKind::BodyTooLarge | FetchErrorKind::HeaderTooLarge => Code::TOO_LARGE,
            FetchErrorKind::TooManyRedirects => Code::TOO_MANY_REDIRECTS,
            FetchErrorKind::InvalidUrl => Code::INVALID_URL,
            FetchErrorKind::InvalidRequest => Code::INVALID,
            FetchErrorKind::Cancelled => Code::CANCELLED,
        }
    }
}

impl fmt::Display for FetchErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fetch error: its message starts with the kind ("timeout: ...").
pub fn fetch_error(kind: FetchErrorKind, detail: impl fmt::Display) -> Error {
    Error::new(kind.code(), format!("{kind}: {detail}"))
}

/// A request that cannot be sent as it is.
pub(crate) fn invalid_request(detail: impl fmt::Display) -> Error {
    fetch_error(FetchErrorKind::InvalidRequest, detail)
}

/// A peer that broke the protocol.
pub(crate) fn protocol(detail: impl fmt::Display) -> Error {
    fetch_error(FetchErrorKind::Protocol, detail)
}

/// The kind of a fetch error made by [`fetch_error`] (None for other errors).
pub fn kind_of(error: &Error) -> Option<FetchErrorKind> {
    let (prefix, _) = error.message().split_once(": ")?;
    KINDS.into_iter().find(|kind| kind.as_str() == prefix)
}
