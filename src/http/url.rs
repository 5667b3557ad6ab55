//! The parts of a URL a fetch needs, parsed with the `url` crate.

use ::url::Url;

use super::{fetch_error, FetchErrorKind};
use crate::error::Result;

/// The URL schemes a fetch speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://`: plain TCP, port 80 by default.
    Http,
    /// `https://`: TLS, port 443 by default.
    Https,
}

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Plain or TLS.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The URL's port, or the scheme's default (80, 443).
    pub port: u16,
    /// Path and query, "/" when empty; never the fragment.
    pub path_and_query: String,
    /// Credentials from the URL, percent-decoded.
    pub username: Option<String>,
    /// The password from the URL, percent-decoded (None when the URL has
    /// none; it is then sent as an empty password).
    pub password: Option<String>,
    /// The Host header: host[:port when not the default], IPv6 in brackets.
    pub host_header: String,
}

impl Target {
    /// scheme, host and port: what makes two URLs the same origin.
    pub fn origin(&self) -> (Scheme, &str, u16) {
        (self.scheme, &self.host, self.port)
    }

    /// The absolute URI without credentials, as sent to an HTTP proxy.
    pub fn absolute_uri(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}", self.host_header, self.path_and_query)
    }
}

/// Parses an http or https URL.
pub fn parse_target(url: &str) -> Result<Target> {
    if url.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
        return Err(fetch_error(
            FetchErrorKind::InvalidRequest,
            "the URL contains CR, LF or NUL",
        ));
    }
    let parsed = Url::parse(url)
        .map_err(|e| fetch_error(FetchErrorKind::InvalidUrl, format!("{url:?}: {e}")))?;
    let scheme = match parsed.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => {
            return Err(fetch_error(
                FetchErrorKind::InvalidUrl,
                format!("Unsupported url scheme: {url}"),
            ))
        }
    };
    let host = match parsed.host() {
        Some(::url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => {
            return Err(fetch_error(
                FetchErrorKind::InvalidUrl,
                format!("no host in {url:?}"),
            ))
        }
    };
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if scheme == Scheme::Https { 443 } else { 80 });
    let mut path_and_query = parsed.path().to_string();
    if path_and_query.is_empty() {
        path_and_query.push('/');
    }
    if let Some(query) = parsed.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let host_in_header = match parsed.host() {
        Some(::url::Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => host.clone(),
    };
    let host_header = match parsed.port() {
        Some(port) => format!("{host_in_header}:{port}"),
        None => host_in_header,
    };
    Ok(Target {
        scheme,
        host,
        port,
        path_and_query,
        username: decoded(parsed.username()),
        password: parsed.password().and_then(decoded),
        host_header,
    })
}

fn decoded(part: &str) -> Option<String> {
    if part.is_empty() {
        return None;
    }
    let bytes: Vec<u8> = percent_decode(part.as_bytes());
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;

    #[test]
    fn parts_of_a_url() {
        let t = parse_target("http://user:p%40ss@example.com:8080/a/b?c=d#frag").unwrap();
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path_and_query, "/a/b?c=d");
        assert_eq!(t.username.as_deref(), Some("user"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.host_header, "example.com:8080");
        assert_eq!(t.absolute_uri(), "http://example.com:8080/a/b?c=d");
    }

    #[test]
    fn defaults_and_ipv6() {
        let t = parse_target("https://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        assert_eq!(t.host_header, "[::1]");
        let t = parse_target("https://[::1]:8443").unwrap();
        assert_eq!(t.host_header, "[::1]:8443");
        assert_eq!(t.path_and_query, "/");
        let t = parse_target("http://example.com:80/x").unwrap();
        assert_eq!(t.host_header, "example.com", "default port left out");
    }

    #[test]
    fn bad_urls() {
        use crate::http::FetchErrorKind::*;
        let kind = |u: &str| kind_of(&parse_target(u).unwrap_err());
        assert_eq!(kind("ftp://example.com/"), Some(InvalidUrl));
        assert_eq!(kind("not a url"), Some(InvalidUrl));
        assert_eq!(kind("http://a/\r\nX: y"), Some(InvalidRequest));
    }
}
