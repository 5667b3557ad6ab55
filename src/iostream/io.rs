//! The fd under a stream: a TCP or Unix socket or any fd, and the socket
//! calls reads and writes make (with the quick-ACK rule for bulk reads); or
//! a TLS session's plaintext (a tunnel through an https:// proxy), which a
//! second TLS session then runs over (TLS in TLS).

use std::cell::RefCell;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use super::session::TlsSession;

/// See `Io::after_read`.
const QUICK_ACK_AFTER: usize = 64 * 1024;

/// The fd under a stream. Sockets go through `send` with `MSG_NOSIGNAL`
/// (std does that), so a peer that went away is an error, not a SIGPIPE.
pub(super) enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
    Fd(File),
    /// The plaintext of a TLS session over another `Io`: the stream's own
    /// TLS session then runs inside it (TLS to the target through the TLS
    /// connection to an https:// proxy). Boxed: rare, and a session is large.
    Tunnel(Box<TlsTunnel>),
}

/// A TLS session (to a proxy) used as the transport of the stream above.
pub(super) struct TlsTunnel {
    pub(super) io: Io,
    /// Its own cell: the stream's session (`Inner::tls`) is borrowed while
    /// it reads and writes through this one.
    pub(super) session: RefCell<Box<TlsSession>>,
}

impl TlsTunnel {
    /// Sends the records the session holds until none is left (Ok) or the
    /// socket is full (WouldBlock).
    fn send_records(&self, session: &mut TlsSession) -> std::io::Result<()> {
        while session.wants_write() {
            match session.write_tls(&self.io) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut session = self.session.borrow_mut();
        let result = session.read(&self.io, buf);
        if session.wants_write() {
            // A reply the records read asked for (a key update): sent now
            // if the socket takes it, else by the stream's flusher, which
            // asks `wants_write`.
            let _ = self.send_records(&mut session);
        }
        result
    }

    /// Takes plaintext only once the session's earlier records are out,
    /// so what it holds stays bounded by one write; never Ok(0) for bytes
    /// offered (a caller such as the inner session's `write_tls` would
    /// loop on it).
    fn write(&self, data: &[u8]) -> std::io::Result<usize> {
        let mut session = self.session.borrow_mut();
        self.send_records(&mut session)?;
        let n = session.write_plaintext(data)?;
        if n == 0 && !data.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        match self.send_records(&mut session) {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            // Records left over go out with the next write or flush.
            _ => Ok(n),
        }
    }
}

impl Io {
    /// After a read(2) that took more than `QUICK_ACK_AFTER` bytes at once,
    /// asks the kernel (Linux `TCP_QUICKACK`) to send the ACK it is holding
    /// back. After such a read the kernel may leave the window update to
    /// the delayed-ACK timer, and a server that filled the window then waits
    /// 40 ms before it sends the rest (seen on loopback with 1 MiB bodies:
    /// one fetch in three stalled; none with this, nor with reads of 64 KiB).
    pub(super) fn after_read(&self, got: usize) {
        #[cfg(target_os = "linux")]
        if got > QUICK_ACK_AFTER {
            if let Io::Tcp(s) = self {
                // Its result is not needed: at worst the ACK waits, as
                // without the call.
                let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = got;
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        match self {
            Io::Tcp(s) => s.as_raw_fd(),
            Io::Unix(s) => s.as_raw_fd(),
            Io::Fd(f) => f.as_raw_fd(),
            Io::Tunnel(t) => t.io.raw_fd(),
        }
    }

    /// The TCP socket at the bottom, if it is one (through tunnels).
    pub(super) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Io::Tcp(s) => Some(s),
            Io::Tunnel(t) => t.io.tcp(),
            _ => None,
        }
    }

    /// True while a tunnel's session holds records not yet sent: the
    /// stream is still writing.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Io::Tunnel(t) => t.session.borrow().wants_write() || t.io.wants_write(),
            _ => false,
        }
    }

    /// Sends what a tunnel's session holds (Ok when all is out,
    /// WouldBlock when the socket is full); nothing to do elsewhere.
    pub(super) fn flush_pending(&self) -> std::io::Result<()> {
        match self {
            Io::Tunnel(t) => t.send_records(&mut t.session.borrow_mut()),
            _ => Ok(()),
        }
    }

    pub(super) fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Tcp(s) => (&*s).read(buf),
            Io::Unix(s) => (&*s).read(buf),
            Io::Fd(f) => (&*f).read(buf),
            Io::Tunnel(t) => t.read(buf),
        }
    }

    pub(super) fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Tcp(s) => (&*s).write(buf),
            Io::Unix(s) => (&*s).write(buf),
            Io::Fd(f) => (&*f).write(buf),
            Io::Tunnel(t) => t.write(buf),
        }
    }
}

/// A TLS protocol failure, carried through `std::io::Error` from the read
/// path and told apart from socket errors by its payload.
pub(super) fn tls_io_error(error: rustls::Error) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, error)
}

pub(super) fn is_tls_failure(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// The error a failed read or write closes the stream with: a `tls` one
/// for a TLS protocol failure, else the socket's, as `what` failed.
pub(super) fn stream_error(error: std::io::Error, what: &'static str) -> crate::error::Error {
    if is_tls_failure(&error) {
        crate::tls::tls_error(error)
    } else {
        crate::error::Error::from_io(what, error)
    }
}
