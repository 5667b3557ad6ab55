//! The proxy setting: Tornado's `proxy_host`/`proxy_port`, where the host
//! may also be a URL as curl's `--proxy` takes it: `socks5h://host:port`,
//! `socks4a://user@host`, `http://host:3128`, `https://host` (TLS to the
//! proxy, then as an HTTP proxy over it). A bare host is an HTTP proxy
//! (Tornado's meaning). A port in the URL wins over `proxy_port`; without
//! either, HTTP proxies default to 8080 (as before), https ones to 443 (as
//! curl) and SOCKS ones to 1080.
//! Credentials in a SOCKS URL (percent-decoded) are used when
//! `proxy_username` is not set; an HTTP proxy takes them from
//! `proxy_username`/`proxy_password` only (a URL with them is refused
//! rather than ignored). A request with a Unix socket uses no proxy.

use std::borrow::Cow;

use super::request::HTTPRequest;
use super::url::{Scheme, Target};
use super::{fetch_error, FetchErrorKind};
use crate::error::Result;
use crate::socks::SocksVersion;

/// What kind of proxy, and so how a connection goes through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// Absolute-form requests for http URLs, `CONNECT` for https.
    Http,
    /// As `Http`, over a TLS connection to the proxy (for https URLs, TLS
    /// to the target inside it).
    Https,
    /// A SOCKS tunnel for every URL.
    Socks(SocksVersion),
}

impl ProxyKind {
    /// An HTTP proxy (plain or over TLS): absolute-form and `CONNECT`.
    pub fn is_http(self) -> bool {
        matches!(self, ProxyKind::Http | ProxyKind::Https)
    }
}

/// A parsed proxy setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec<'a> {
    /// An HTTP proxy or which SOCKS version.
    pub kind: ProxyKind,
    /// The proxy's host name or IP address.
    pub host: Cow<'a, str>,
    /// The proxy's port.
    pub port: u16,
    /// User name for the proxy, from the URL or `proxy_username`.
    pub username: Option<Cow<'a, str>>,
    /// Password for the proxy, from the URL or `proxy_password`.
    pub password: Option<Cow<'a, str>>,
}

fn bad(detail: impl std::fmt::Display) -> crate::error::Error {
    fetch_error(FetchErrorKind::InvalidRequest, detail)
}

fn decode(part: &str) -> Result<Cow<'_, str>> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map_err(|_| bad("the proxy URL's credentials are not UTF-8"))
}

/// Parses `proxy_host` (a host or a proxy URL) with `proxy_port` and the
/// request's proxy credentials.
pub fn parse<'a>(
    proxy_host: &'a str,
    proxy_port: Option<u16>,
    username: Option<&'a str>,
    password: Option<&'a str>,
) -> Result<ProxySpec<'a>> {
    let Some((scheme, rest)) = proxy_host.split_once("://") else {
        return Ok(ProxySpec {
            kind: ProxyKind::Http,
            host: Cow::Borrowed(proxy_host),
            port: proxy_port.unwrap_or(8080),
            username: username.map(Cow::Borrowed),
            password: password.map(Cow::Borrowed),
        });
    };
    let (kind, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "http" => (ProxyKind::Http, 8080),
        "https" => (ProxyKind::Https, 443),
        other => match SocksVersion::from_scheme(other) {
            Some(version) => (ProxyKind::Socks(version), 1080),
            None => return Err(bad(format!("unknown proxy scheme {scheme:?}"))),
        },
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(format!("bad proxy address {hostport:?}")))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad(format!("the proxy URL {proxy_host:?} names no host")));
    }
    let port = match port {
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad(format!("bad proxy port {port:?}"))),
        },
        None => proxy_port.unwrap_or(default_port),
    };
    let (url_user, url_pass) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, pass)) => (Some(decode(user)?), Some(decode(pass)?)),
            None => (Some(decode(info)?), None),
        },
        None => (None, None),
    };
    if kind.is_http() && url_user.is_some() {
        return Err(bad(
            "credentials in an http(s):// proxy URL are not used: give them as the proxy username and password",
        ));
    }
    let (username, password) = match username {
        Some(user) => (Some(Cow::Borrowed(user)), password.map(Cow::Borrowed)),
        None => (url_user, url_pass),
    };
    Ok(ProxySpec {
        kind,
        host: Cow::Borrowed(host),
        port,
        username,
        password,
    })
}

/// The request's proxy, parsed: None without one, or with a Unix socket.
pub fn of(req: &HTTPRequest) -> Result<Option<ProxySpec<'_>>> {
    match (&req.proxy_host, &req.unix_socket) {
        (Some(host), None) => parse(
            host,
            req.proxy_port,
            req.proxy_username.as_deref(),
            req.proxy_password.as_deref(),
        )
        .map(Some),
        _ => Ok(None),
    }
}

/// Whether `req` to `target` is sent to an HTTP proxy as it is (an http
/// URL, absolute-form, with Proxy-Authorization): not through a tunnel.
pub fn forwards_plain_http(req: &HTTPRequest, target: &Target) -> bool {
    target.scheme == Scheme::Http
        && matches!(of(req), Ok(Some(ProxySpec { kind, .. })) if kind.is_http())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_urls() {
        let p = parse("127.0.0.1", Some(3128), None, None).unwrap();
        assert_eq!(
            (p.kind, &*p.host, p.port),
            (ProxyKind::Http, "127.0.0.1", 3128)
        );
        let p = parse("socks5h://u%40x:p%3A@127.0.0.1:9050", Some(1), None, None).unwrap();
        assert_eq!(p.kind, ProxyKind::Socks(SocksVersion::V5h));
        assert_eq!((&*p.host, p.port), ("127.0.0.1", 9050));
        assert_eq!(p.username.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_deref(), Some("p:"));
        let p = parse("SOCKS4A://[::1]", None, Some("me"), None).unwrap();
        assert_eq!(p.kind, ProxyKind::Socks(SocksVersion::V4a));
        assert_eq!(
            (&*p.host, p.port, p.username.as_deref()),
            ("::1", 1080, Some("me"))
        );
        let p = parse("http://127.0.0.1/", None, None, None).unwrap();
        assert_eq!((p.kind, p.port), (ProxyKind::Http, 8080));
        let p = parse("HTTPS://proxy.test", None, Some("u"), Some("p")).unwrap();
        assert_eq!(
            (p.kind, &*p.host, p.port),
            (ProxyKind::Https, "proxy.test", 443)
        );
        assert_eq!(p.username.as_deref(), Some("u"));
        let p = parse("https://[::1]:8443", Some(1), None, None).unwrap();
        assert_eq!((p.kind, &*p.host, p.port), (ProxyKind::Https, "::1", 8443));
        for bad in [
            "ftp://x",
            "socks5://",
            "socks5://h:0",
            "socks5://h:99999",
            "https://user:pass@h",
        ] {
            assert!(parse(bad, None, None, None).is_err(), "{bad}");
        }
    }
}
