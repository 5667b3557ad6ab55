//! HTTP/1.1: what only this version of the protocol has. The request and
//! response heads, chunked bodies, and the exchange of one request and one
//! response over one stream. What every version shares (validation,
//! decompression, redirects) lives beside this module in `http`.

pub mod chunked;
pub(crate) mod connection;
pub mod request_head;
pub mod response_head;
