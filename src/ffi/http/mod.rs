//! `tornado_http_*`: the HTTP client, its requests and responses through
//! the C ABI (Tornado's `AsyncHTTPClient`, `HTTPRequest`, `HTTPResponse`).
//! A C function lives in the file its prefix names.

// The header lists these in this order (cbindgen follows the modules; the
// comments keep rustfmt from sorting them): options, client and fetches,
// request fields, request callbacks, responses.
mod options;
//
mod client;
//
mod request;
//
mod callbacks;
//
mod cookies;
mod response;

pub use callbacks::*;
pub use client::*;
pub use cookies::*;
pub use options::*;
pub use request::*;
pub use response::*;
