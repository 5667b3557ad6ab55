//! Tornado's HTTP client: `HTTPRequest`, `HTTPResponse`, `AsyncHTTPClient`.
//!
//! - [`validate`], [`decompress`], [`redirect`]: rules every HTTP version
//!   shares, without I/O, so each is unit-tested on bytes.
//! - [`h1`]: HTTP/1.1 only (heads, chunked bodies, one exchange on a stream).
//! - `h2` (crate-private): HTTP/2 (the `h2` crate): many fetches as streams
//!   of one connection; `conn` (crate-private): the connections the client
//!   holds (either kind).
//! - [`client`]: queueing, connecting, keep-alive, redirects and timeouts.

pub(crate) mod auth;
pub mod body;
pub mod body_pool;
pub(crate) mod body_sink;
pub mod client;
pub(crate) mod conn;
pub mod cookies;
pub mod decompress;
pub mod digest;
pub mod h1;
pub(crate) mod h2;
pub mod headers;
pub mod proxy;
pub mod redirect;
pub mod request;
pub(crate) mod request_fields;
pub mod response;
pub(crate) mod unix;
pub mod upgrade;
pub mod upload;
pub mod url;
pub mod validate;
pub(crate) mod zstd_writer;

use std::fmt;

use crate::error::Error;

pub use body::Body;
pub use client::{AsyncHTTPClient, ClientOptions};
pub use h2::HttpVersion;
pub use headers::Headers;
pub use request::HTTPRequest;
pub use response::{HTTPResponse, TimeInfo};

/// Why a fetch got no (usable) response: the kinds of `FETCH_CLI.md`.
pub use crate::error::ErrorKind as FetchErrorKind;

/// A fetch error: its message starts with the kind ("timeout: ...").
pub fn fetch_error(kind: FetchErrorKind, detail: impl fmt::Display) -> Error {
    Error::of_kind(kind, detail)
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
    error.kind()
}
