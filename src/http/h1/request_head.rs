//! The HTTP/1.1 request head (request line and header block) and the
//! CONNECT head that opens a proxy tunnel.

use std::borrow::Cow;

use crate::http::auth::basic_auth;
use crate::http::request::HTTPRequest;
use crate::http::request_fields::request_fields;
use crate::http::url::Target;

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
    request_fields(req, target, via_proxy, &mut |name, value| {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;
    use crate::http::url::parse_target;
    use crate::http::validate::{declared_length, validate_request};
    use crate::http::FetchErrorKind::*;
    use std::time::UNIX_EPOCH;

    fn kind(r: crate::error::Result<impl std::fmt::Debug>) -> Option<crate::http::FetchErrorKind> {
        kind_of(&r.expect_err("an error"))
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
        assert!(text.contains("\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"));
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
}
