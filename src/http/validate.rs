//! Checks on a request before anything is sent: Tornado's rules plus no
//! CR, LF or NUL where they could inject a header. Protocol-neutral.

use super::request::HTTPRequest;
use crate::error::Result;
use crate::http::invalid_request;

/// Methods accepted without `allow_nonstandard_methods` (Tornado's list).
const STANDARD_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;
    use crate::http::FetchErrorKind;
    use crate::http::FetchErrorKind::*;

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
}
