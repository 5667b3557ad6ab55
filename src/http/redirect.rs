//! What follows a response: Tornado's redirect rules, and the retry that
//! answers a Digest challenge. Protocol-neutral.

use std::borrow::Cow;

use super::headers::Headers;
use super::request::{AuthMode, HTTPRequest};
use super::url::{parse_target, Target};
use super::{fetch_error, FetchErrorKind};
use crate::error::Result;

/// Whether a redirect with `code` turns a `method` request into a GET
/// without a body (Tornado's rules).
fn becomes_get(method: &str, code: u16) -> bool {
    (code == 303 && method != "HEAD") || (matches!(code, 301 | 302) && method == "POST")
}

/// Whether `req` can follow a `code` redirect: not when that would send a
/// streamed body again (a producer runs once; the redirect is then the
/// response, as for a request that cannot be replayed).
pub fn can_follow(req: &HTTPRequest, code: u16) -> bool {
    req.body_producer.is_none() || becomes_get(&req.method, code)
}

/// The request to send after a redirect response, by Tornado's rules, or
/// None when the response is not a redirect to follow (e.g. a 301 without
/// Location). The caller checks `max_redirects` first.
pub fn redirect_request(
    original: &HTTPRequest,
    current_url: &str,
    code: u16,
    headers: &Headers,
) -> Result<Option<HTTPRequest>> {
    if !matches!(code, 301 | 302 | 303 | 307 | 308) || !can_follow(original, code) {
        return Ok(None);
    }
    let Some(location) = headers.get("Location") else {
        return Ok(None);
    };
    let base =
        ::url::Url::parse(current_url).map_err(|e| fetch_error(FetchErrorKind::InvalidUrl, e))?;
    let next_url = base.join(location.trim()).map_err(|e| {
        fetch_error(
            FetchErrorKind::InvalidUrl,
            format!("bad Location {location:?}: {e}"),
        )
    })?;
    let next_target = parse_target(next_url.as_str())?;
    let current_target = parse_target(current_url)?;
    let mut next = original.clone();
    next.url = next_url.to_string();
    next.max_redirects = original.max_redirects.saturating_sub(1);
    next.headers.remove("Host");
    let becomes_get = becomes_get(&original.method, code);
    if becomes_get {
        next.method = "GET".into();
        next.body = None;
        next.body_producer = None;
        for name in [
            "Content-Length",
            "Content-Type",
            "Content-Encoding",
            "Transfer-Encoding",
        ] {
            next.headers.remove(name);
        }
    }
    if original.auth_mode == AuthMode::Digest {
        // A digest answer is for one URI: the next one is challenged anew.
        next.headers.remove("Authorization");
    }
    if next_target.origin() != current_target.origin() {
        // Credentials are for the origin they were given for.
        next.headers.remove("Authorization");
        next.headers.remove("Cookie");
        next.auth_username = None;
        next.auth_password = None;
    }
    Ok(Some(next))
}

// ---- digest authentication ----

/// Whether a response is a Digest challenge that `req` will answer (once:
/// a request that already carries `Authorization` is not retried).
pub fn answers_digest_challenge(req: &HTTPRequest, code: u16, headers: &Headers) -> bool {
    code == 401
        && req.auth_mode == AuthMode::Digest
        && req.auth_username.is_some()
        && req.body_producer.is_none()
        && !req.headers.contains("Authorization")
        && super::digest::challenge(headers).is_some()
}

/// The request again, with an `Authorization` answering the 401's Digest
/// challenge; None when it is not one `req` answers.
pub fn digest_retry(
    req: &HTTPRequest,
    target: &Target,
    code: u16,
    headers: &Headers,
) -> Option<HTTPRequest> {
    if !answers_digest_challenge(req, code, headers) {
        return None;
    }
    let challenge = super::digest::challenge(headers)?;
    // The request-target as sent (absolute through a plain-HTTP proxy).
    let via_proxy = super::proxy::forwards_plain_http(req, target);
    let uri = if via_proxy {
        Cow::Owned(target.absolute_uri())
    } else {
        Cow::Borrowed(target.path_and_query.as_str())
    };
    let answer = super::digest::authorization(
        &challenge,
        req.auth_username.as_deref()?,
        req.auth_password.as_deref().unwrap_or(""),
        &req.method,
        &uri,
        &super::digest::new_cnonce(),
    );
    let mut next = req.clone();
    next.headers.set("Authorization", answer);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;
    use crate::http::FetchErrorKind::*;

    fn kind(r: Result<impl std::fmt::Debug>) -> Option<FetchErrorKind> {
        kind_of(&r.expect_err("an error"))
    }

    fn redirect(method: &str, code: u16, location: &str) -> Option<HTTPRequest> {
        let mut r = HTTPRequest::new("http://a.test/start");
        r.method = method.into();
        if method == "POST" || method == "PUT" {
            r.body = Some(b"data".to_vec());
            r.headers.add("Content-Type", "text/plain");
        }
        r.headers.add("Authorization", "Bearer t");
        r.headers.add("Cookie", "c=1");
        r.auth_username = Some("u".into());
        let mut h = Headers::new();
        if !location.is_empty() {
            h.add("Location", location);
        }
        redirect_request(&r, &r.url, code, &h).unwrap()
    }

    #[test]
    fn redirect_rules() {
        let r = redirect("POST", 303, "/next").unwrap();
        assert_eq!(
            (r.method.as_str(), r.url.as_str()),
            ("GET", "http://a.test/next")
        );
        assert!(r.body.is_none() && !r.headers.contains("Content-Type"));
        assert_eq!(redirect("HEAD", 303, "/n").unwrap().method, "HEAD");
        assert_eq!(redirect("PUT", 303, "/n").unwrap().method, "GET");
        assert_eq!(redirect("POST", 301, "/n").unwrap().method, "GET");
        assert_eq!(redirect("POST", 302, "/n").unwrap().method, "GET");
        assert_eq!(redirect("PUT", 302, "/n").unwrap().method, "PUT");
        let r = redirect("POST", 307, "/n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.body.as_deref()),
            ("POST", Some(&b"data"[..]))
        );
        assert_eq!(redirect("POST", 308, "/n").unwrap().method, "POST");
        assert!(redirect("GET", 301, "").is_none(), "no Location");
        assert!(redirect("GET", 200, "/x").is_none());
        let same = redirect("GET", 302, "/n").unwrap();
        assert!(same.headers.contains("Authorization") && same.auth_username.is_some());
        assert_eq!(same.max_redirects, 4);
        let other = redirect("GET", 302, "http://b.test/n").unwrap();
        assert!(!other.headers.contains("Authorization"));
        assert!(!other.headers.contains("Cookie"));
        assert!(other.auth_username.is_none());
        let port = redirect("GET", 302, "http://a.test:81/n").unwrap();
        assert!(
            !port.headers.contains("Authorization"),
            "another port is another origin"
        );
        let r = HTTPRequest::new("http://a.test/");
        let mut h = Headers::new();
        h.add("Location", "ftp://a.test/file");
        assert_eq!(
            kind(redirect_request(&r, &r.url, 302, &h)),
            Some(InvalidUrl)
        );
    }
}
