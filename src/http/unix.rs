//! Connecting to a Unix domain socket (curl's `--unix-socket`), without
//! blocking the loop: a listener whose backlog is full answers EAGAIN at
//! once (a blocking connect would wait for it), which fails the fetch.

use std::os::unix::net::UnixStream;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use super::{fetch_error, FetchErrorKind};
use crate::error::Result;
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;

/// A stream connected to the socket at `path`; a `connect` error naming
/// the path when there is none, it refuses, or it is not a socket.
pub fn connect_unix(lp: &LoopRef, path: &Path) -> Result<IOStream> {
    let fail = |e: std::io::Error| {
        fetch_error(
            FetchErrorKind::Connect,
            format!("cannot connect to the Unix socket {}: {e}", path.display()),
        )
        .with_os_error(e.raw_os_error())
    };
    let address = SockAddr::unix(path).map_err(fail)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    socket.connect(&address).map_err(fail)?;
    IOStream::from_unix(lp, UnixStream::from(std::os::fd::OwnedFd::from(socket)))
}
