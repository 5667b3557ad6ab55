//! The client side of a SOCKS handshake on a connected stream: SOCKS4
//! (and its 4a extension, where the proxy resolves the name) and SOCKS5
//! (RFC 1928) with username/password authentication (RFC 1929), as curl's
//! `socks4://`, `socks4a://`, `socks5://` and `socks5h://` proxies.
//!
//! After [`handshake`] the stream is a tunnel to the destination: the
//! caller speaks HTTP (or TLS, then HTTP) on it as on a direct connection.
//! Every reply is checked (version, status, address type and length): a
//! proxy that lies ends the handshake with a `protocol` error, one that
//! refuses with a `connect` error naming its reason; one that stalls is
//! stopped by the caller's connect timeout, which covers the handshake.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::http::{fetch_error, FetchErrorKind};
use crate::iostream::IOStream;

/// Which SOCKS, and who resolves the destination's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocksVersion {
    /// SOCKS4: the client resolves; IPv4 destinations only.
    V4,
    /// SOCKS4a: the proxy resolves.
    V4a,
    /// SOCKS5: the client resolves.
    V5,
    /// SOCKS5 with the name sent to the proxy (curl's `socks5h`).
    V5h,
}

impl SocksVersion {
    /// The URL scheme naming it (`socks4`, `socks4a`, `socks5`, `socks5h`).
    pub fn from_scheme(scheme: &str) -> Option<SocksVersion> {
        match scheme.to_ascii_lowercase().as_str() {
            "socks4" => Some(SocksVersion::V4),
            "socks4a" => Some(SocksVersion::V4a),
            "socks5" | "socks" => Some(SocksVersion::V5),
            "socks5h" => Some(SocksVersion::V5h),
            _ => None,
        }
    }

    /// The proxy URL scheme naming this version (`socks5h`, ...).
    pub fn scheme(self) -> &'static str {
        match self {
            SocksVersion::V4 => "socks4",
            SocksVersion::V4a => "socks4a",
            SocksVersion::V5 => "socks5",
            SocksVersion::V5h => "socks5h",
        }
    }

    /// Whether the proxy resolves the destination's name (4a, 5h).
    pub fn remote_resolution(self) -> bool {
        matches!(self, SocksVersion::V4a | SocksVersion::V5h)
    }
}

/// Where the tunnel goes: a name (for the proxy to resolve) or an address.
#[derive(Clone, Copy, Debug)]
pub enum Destination<'a> {
    /// A host name and port, resolved by the proxy.
    Name(&'a str, u16),
    /// An IP address and port.
    Addr(IpAddr, u16),
}

/// The credentials sent to the proxy: SOCKS5's username/password method,
/// or SOCKS4's user id (the username alone).
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// SOCKS5 user name, or SOCKS4 user id.
    pub username: Option<&'a str>,
    /// SOCKS5 password (unused by SOCKS4).
    pub password: Option<&'a str>,
}

fn refused(detail: impl std::fmt::Display) -> Error {
    fetch_error(FetchErrorKind::Connect, detail)
}

fn lying(detail: impl std::fmt::Display) -> Error {
    fetch_error(FetchErrorKind::Protocol, detail)
}

fn invalid(detail: impl std::fmt::Display) -> Error {
    fetch_error(FetchErrorKind::InvalidRequest, detail)
}

/// Checks what can be checked before a byte is sent (lengths, NULs), so a
/// bad setting fails the same way whatever the proxy is.
pub fn check(
    version: SocksVersion,
    destination: Destination<'_>,
    credentials: Credentials<'_>,
) -> Result<()> {
    let user = credentials.username.unwrap_or("");
    let pass = credentials.password.unwrap_or("");
    match version {
        SocksVersion::V4 | SocksVersion::V4a => {
            if user.contains('\0') {
                return Err(invalid("a SOCKS4 user id cannot contain NUL"));
            }
        }
        SocksVersion::V5 | SocksVersion::V5h => {
            if user.len() > 255 || pass.len() > 255 {
                return Err(invalid(
                    "SOCKS5 usernames and passwords are at most 255 bytes",
                ));
            }
        }
    }
    match destination {
        Destination::Name(name, _) => {
            if name.is_empty() || name.len() > 255 || name.contains('\0') {
                return Err(invalid(format!(
                    "{name:?} cannot be sent to a SOCKS proxy (1 to 255 bytes, no NUL)"
                )));
            }
        }
        Destination::Addr(IpAddr::V6(_), _) if version == SocksVersion::V4 => {
            return Err(invalid(
                "SOCKS4 reaches IPv4 addresses only (use socks4a or socks5)",
            ))
        }
        Destination::Addr(..) => {}
    }
    Ok(())
}

/// Runs the handshake for `version` on `stream` (connected to the proxy).
/// A name destination with a client-resolving version is a caller error:
/// resolve it first.
pub async fn handshake(
    stream: &IOStream,
    version: SocksVersion,
    destination: Destination<'_>,
    credentials: Credentials<'_>,
) -> Result<()> {
    check(version, destination, credentials)?;
    match version {
        SocksVersion::V4 | SocksVersion::V4a => socks4(stream, destination, credentials).await,
        SocksVersion::V5 | SocksVersion::V5h => socks5(stream, destination, credentials).await,
    }
}

async fn socks4(
    stream: &IOStream,
    destination: Destination<'_>,
    credentials: Credentials<'_>,
) -> Result<()> {
    let mut request = vec![4, 1];
    let name = match destination {
        Destination::Addr(IpAddr::V4(ip), port) => {
            request.extend(port.to_be_bytes());
            request.extend(ip.octets());
            None
        }
        Destination::Addr(IpAddr::V6(_), _) => unreachable!("refused by check"),
        // 4a: the address 0.0.0.1 says "the name follows the user id".
        Destination::Name(name, port) => {
            request.extend(port.to_be_bytes());
            request.extend([0, 0, 0, 1]);
            Some(name)
        }
    };
    request.extend(credentials.username.unwrap_or("").as_bytes());
    request.push(0);
    if let Some(name) = name {
        request.extend(name.as_bytes());
        request.push(0);
    }
    stream.write(&request)?;
    let reply = stream.read_bytes(8, false).await?;
    if reply[0] != 0 {
        return Err(lying(format!(
            "the SOCKS4 proxy's reply starts with {}, not 0",
            reply[0]
        )));
    }
    match reply[1] {
        90 => Ok(()),
        91 => Err(refused("the SOCKS4 proxy rejected the request (91)")),
        92 => Err(refused(
            "the SOCKS4 proxy rejected the request: it cannot reach the client's identd (92)",
        )),
        93 => Err(refused(
            "the SOCKS4 proxy rejected the request: the user id does not match identd (93)",
        )),
        other => Err(lying(format!(
            "the SOCKS4 proxy replied with unknown status {other}"
        ))),
    }
}

/// RFC 1928 §6's reply codes.
fn socks5_reason(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

async fn socks5(
    stream: &IOStream,
    destination: Destination<'_>,
    credentials: Credentials<'_>,
) -> Result<()> {
    // Greeting: the methods offered (no authentication; username/password
    // when there are credentials).
    let with_password = credentials.username.is_some();
    let greeting: &[u8] = if with_password {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write(greeting)?;
    let choice = stream.read_bytes(2, false).await?;
    if choice[0] != 5 {
        return Err(lying(format!(
            "the SOCKS5 proxy answered with version {}, not 5",
            choice[0]
        )));
    }
    match choice[1] {
        0 => {}
        2 if with_password => {
            let user = credentials.username.unwrap_or("").as_bytes();
            let pass = credentials.password.unwrap_or("").as_bytes();
            let mut auth = vec![1, user.len() as u8];
            auth.extend(user);
            auth.push(pass.len() as u8);
            auth.extend(pass);
            stream.write(&auth)?;
            let status = stream.read_bytes(2, false).await?;
            if status[0] != 1 {
                return Err(lying(format!(
                    "the SOCKS5 proxy's authentication reply has version {}, not 1",
                    status[0]
                )));
            }
            if status[1] != 0 {
                return Err(refused(
                    "the SOCKS5 proxy refused the username and password",
                ));
            }
        }
        0xFF if !with_password => {
            return Err(refused(
                "the SOCKS5 proxy requires authentication (give a proxy username and password)",
            ))
        }
        0xFF => {
            return Err(refused(
                "the SOCKS5 proxy accepts none of the offered authentication methods",
            ))
        }
        other => {
            return Err(lying(format!(
                "the SOCKS5 proxy chose authentication method {other}, which was not offered"
            )))
        }
    }
    // CONNECT.
    let mut request = vec![5, 1, 0];
    let port = match destination {
        Destination::Addr(IpAddr::V4(ip), port) => {
            request.push(1);
            request.extend(ip.octets());
            port
        }
        Destination::Addr(IpAddr::V6(ip), port) => {
            request.push(4);
            request.extend(ip.octets());
            port
        }
        Destination::Name(name, port) => {
            request.push(3);
            request.push(name.len() as u8);
            request.extend(name.as_bytes());
            port
        }
    };
    request.extend(port.to_be_bytes());
    stream.write(&request)?;
    let head = stream.read_bytes(4, false).await?;
    if head[0] != 5 {
        return Err(lying(format!(
            "the SOCKS5 proxy's reply has version {}, not 5",
            head[0]
        )));
    }
    if head[1] != 0 {
        return Err(refused(format!(
            "the SOCKS5 proxy could not connect: {} ({})",
            socks5_reason(head[1]),
            head[1]
        )));
    }
    // The bound address, read and dropped: its length depends on its type.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(stream.read_bytes(1, false).await?[0]) + 2,
        other => {
            return Err(lying(format!(
                "the SOCKS5 proxy's reply has address type {other}"
            )))
        }
    };
    stream.read_bytes(rest, false).await?;
    Ok(())
}
