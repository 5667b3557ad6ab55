//! The header fields of a request, whatever HTTP version carries them:
//! Host, the caller's fields, and the ones the client adds (User-Agent,
//! Accept-Encoding, credentials, If-Modified-Since, the body's framing).
//! HTTP/1.1 writes them as the lines of its head (`h1::request_head`),
//! HTTP/2 as its header list (`h2`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::auth::{basic_auth, sends_basic_auth};
use crate::http::request::{AuthMode, HTTPRequest};
use crate::http::url::Target;

/// The request's header fields in the order they are sent, each given to
/// `line` as (name, value bytes): Host first (unless the caller set one),
/// the caller's fields, then the ones the client adds (User-Agent,
/// Accept-Encoding, credentials, If-Modified-Since, the body's framing).
/// One place for these rules: the HTTP/1.1 head writes the fields as lines,
/// HTTP/2 turns them into its header list.
pub(crate) fn request_fields(
    req: &HTTPRequest,
    target: &Target,
    via_proxy: bool,
    line: &mut dyn FnMut(&str, &[u8]),
) {
    if !req.headers.contains("Host") {
        line("Host", target.host_header.as_bytes());
    }
    for (name, value) in req.headers.iter_bytes() {
        // A fixed body's length is the body's (Tornado sets it so), whatever
        // the caller put in Content-Length.
        let replaced = (name.eq_ignore_ascii_case("User-Agent") && req.user_agent.is_some())
            || (name.eq_ignore_ascii_case("Authorization") && sends_basic_auth(req))
            || (name.eq_ignore_ascii_case("Content-Length") && req.body.is_some());
        if !replaced {
            line(name, &value);
        }
    }
    match &req.user_agent {
        Some(agent) => line("User-Agent", agent.as_bytes()),
        None if !req.headers.contains("User-Agent") => line(
            "User-Agent",
            concat!("tornado_rs/", env!("CARGO_PKG_VERSION")).as_bytes(),
        ),
        None => {}
    }
    if req.decompress_response && !req.headers.contains("Accept-Encoding") {
        line(
            "Accept-Encoding",
            crate::http::decompress::ACCEPT_ENCODING.as_bytes(),
        );
    }
    match (&req.auth_username, req.auth_mode) {
        (Some(user), AuthMode::Basic) => line(
            "Authorization",
            basic_auth(user, req.auth_password.as_deref().unwrap_or("")).as_bytes(),
        ),
        // Digest credentials answer the server's challenge (a second send).
        (Some(_), AuthMode::Digest) => {}
        (None, _) => {
            if let (Some(user), false) = (&target.username, req.headers.contains("Authorization")) {
                line(
                    "Authorization",
                    basic_auth(user, target.password.as_deref().unwrap_or("")).as_bytes(),
                );
            }
        }
    }
    if let (true, Some(user)) = (via_proxy, &req.proxy_username) {
        line(
            "Proxy-Authorization",
            basic_auth(user, req.proxy_password.as_deref().unwrap_or("")).as_bytes(),
        );
    }
    if let Some(when) = req.if_modified_since {
        line("If-Modified-Since", http_date(when).as_bytes());
    }
    if req.body.is_some() || req.body_producer.is_some() {
        // As Tornado's clients and curl: a form unless the caller says.
        if req.method == "POST" && !req.headers.contains("Content-Type") {
            line("Content-Type", b"application/x-www-form-urlencoded");
        }
    }
    if let Some(body) = &req.body {
        line("Content-Length", body.len().to_string().as_bytes());
    } else if req.body_producer.is_some() && !req.headers.contains("Content-Length") {
        line("Transfer-Encoding", b"chunked");
    }
    if req.expect_100_continue && !req.headers.contains("Expect") {
        line("Expect", b"100-continue");
    }
}

/// An HTTP date (RFC 9110 IMF-fixdate), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
pub(crate) fn http_date(when: SystemTime) -> String {
    let secs = when.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(t), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
