//! HTTP Basic credentials: the `Authorization` value (NFC-normalised, as
//! Tornado and RFC 7617 want) and when a request sends it. Digest is in
//! `digest`.

use base64::Engine as _;
use unicode_normalization::UnicodeNormalization as _;

use super::request::{AuthMode, HTTPRequest};

/// `Basic base64(user:password)`, the pair in Unicode NFC.
pub(crate) fn basic_auth(username: &str, password: &str) -> String {
    let pair: String = format!("{username}:{password}").nfc().collect();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The request's own credentials go as `Basic` on every send.
pub(crate) fn sends_basic_auth(req: &HTTPRequest) -> bool {
    req.auth_username.is_some() && req.auth_mode == AuthMode::Basic
}
