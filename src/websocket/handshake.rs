//! The opening handshake (RFC 6455 section 4.1): the request's headers and
//! the checks of the server's 101 response.

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

use super::deflate::{self, Agreed, CompressionOptions};
use crate::error::{Error, Result};
use crate::http::headers::Headers;
use crate::http::{fetch_error, FetchErrorKind};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Fills `bytes` from the system's secure random source.
pub(crate) fn random_bytes(rng: &SystemRandom, bytes: &mut [u8]) -> Result<()> {
    rng.fill(bytes)
        .map_err(|_| Error::new(crate::error::Code::IO, "the system's random source failed"))
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
pub(crate) fn new_key(rng: &SystemRandom) -> Result<String> {
    let mut nonce = [0u8; 16];
    random_bytes(rng, &mut nonce)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(nonce))
}

/// The `Sec-WebSocket-Accept` a server must answer `key` with.
pub fn accept_value(key: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key.as_bytes());
    context.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(context.finish())
}

/// A subprotocol name must be an HTTP token (RFC 6455 section 4.1).
pub(crate) fn check_subprotocol(name: &str) -> Result<()> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Error::invalid(format!(
            "subprotocol {name:?} is not an HTTP token"
        )));
    }
    Ok(())
}

/// Adds the handshake's headers to the caller's.
pub(crate) fn add_request_headers(
    headers: &mut Headers,
    key: &str,
    subprotocols: &[String],
    compression: Option<&CompressionOptions>,
) {
    for name in [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
    ] {
        headers.remove(name);
    }
    headers.add("Upgrade", "websocket");
    headers.add("Connection", "Upgrade");
    headers.add("Sec-WebSocket-Key", key);
    headers.add("Sec-WebSocket-Version", "13");
    if !subprotocols.is_empty() {
        headers.remove("Sec-WebSocket-Protocol");
        headers.add("Sec-WebSocket-Protocol", subprotocols.join(", "));
    }
    if let Some(options) = compression {
        headers.add("Sec-WebSocket-Extensions", deflate::offer(options));
    }
}

/// What the handshake settled.
#[derive(Clone, Debug, Default)]
pub struct Negotiated {
    /// The subprotocol the server chose (`Sec-WebSocket-Protocol`), one of
    /// those offered; None when it chose none.
    pub subprotocol: Option<String>,
    /// The permessage-deflate parameters agreed; None: messages go
    /// uncompressed.
    pub deflate: Option<Agreed>,
}

fn handshake_error(detail: impl std::fmt::Display) -> Error {
    fetch_error(
        FetchErrorKind::Protocol,
        format!("WebSocket handshake: {detail}"),
    )
}

/// Checks the server's 101 response headers (RFC 6455 section 4.1, the
/// client's steps 1-6).
pub(crate) fn check_response(
    headers: &Headers,
    key: &str,
    subprotocols: &[String],
    compression: Option<&CompressionOptions>,
) -> Result<Negotiated> {
    let upgrade = headers.get("Upgrade").unwrap_or("");
    if !upgrade.trim().eq_ignore_ascii_case("websocket") {
        return Err(handshake_error(format!(
            "the Upgrade header is {upgrade:?}, not \"websocket\""
        )));
    }
    let connection_upgrade = headers
        .get_all("Connection")
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return Err(handshake_error("the Connection header has no \"Upgrade\""));
    }
    let expected = accept_value(key);
    match headers.get("Sec-WebSocket-Accept") {
        Some(accept) if accept.trim() == expected => {}
        Some(accept) => {
            return Err(handshake_error(format!(
                "Sec-WebSocket-Accept is {accept:?}, expected {expected:?}"
            )))
        }
        None => return Err(handshake_error("no Sec-WebSocket-Accept header")),
    }
    let subprotocol = match headers.get("Sec-WebSocket-Protocol").map(str::trim) {
        None | Some("") => None,
        Some(chosen) if subprotocols.iter().any(|s| s == chosen) => Some(chosen.to_string()),
        Some(chosen) => {
            return Err(handshake_error(format!(
                "the server chose subprotocol {chosen:?}, which was not offered"
            )))
        }
    };
    let answer: Vec<&str> = headers.get_all("Sec-WebSocket-Extensions").collect();
    let answer = (!answer.is_empty()).then(|| answer.join(", "));
    let deflate = deflate::accept(answer.as_deref(), compression).map_err(handshake_error)?;
    Ok(Negotiated {
        subprotocol,
        deflate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_sample_accept() {
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn good(key: &str) -> Headers {
        let mut h = Headers::new();
        h.add("Upgrade", "WebSocket");
        h.add("Connection", "keep-alive, Upgrade");
        h.add("Sec-WebSocket-Accept", accept_value(key));
        h
    }

    #[test]
    fn response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        assert!(check_response(&good(key), key, &[], None).is_ok());
        let mut bad = good(key);
        bad.set("Sec-WebSocket-Accept", "AAAA");
        assert!(check_response(&bad, key, &[], None).is_err());
        let mut chosen = good(key);
        chosen.add("Sec-WebSocket-Protocol", "chat");
        assert!(check_response(&chosen, key, &[], None).is_err());
        let offered = vec!["x".to_string(), "chat".to_string()];
        let n = check_response(&chosen, key, &offered, None).unwrap();
        assert_eq!(n.subprotocol.as_deref(), Some("chat"));
        let mut ext = good(key);
        ext.add("Sec-WebSocket-Extensions", "permessage-deflate");
        assert!(check_response(&ext, key, &[], None).is_err(), "not offered");
        let options = CompressionOptions::default();
        let n = check_response(&ext, key, &[], Some(&options)).unwrap();
        assert_eq!(n.deflate.unwrap().server_max_window_bits, 15);
        let mut small = good(key);
        small.add(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits=10",
        );
        // Offered bare: the server may choose the client's window.
        let n = check_response(&small, key, &[], Some(&options)).unwrap();
        assert_eq!(n.deflate.unwrap().client_max_window_bits, 10);
        // Never more than the client offered.
        let limited = CompressionOptions {
            client_max_window_bits: Some(9),
            ..Default::default()
        };
        assert!(check_response(&small, key, &[], Some(&limited)).is_err());
    }
}
