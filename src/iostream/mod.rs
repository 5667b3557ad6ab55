//! Tornado's `IOStream`: buffered, non-blocking reads and writes on a socket
//! or any fd, as `async` methods on the loop.
//!
//! - Reads: `read_until`, `read_bytes`, `read_until_close`. Only one read may
//!   be pending; data already buffered satisfies a read without waiting. The
//!   read buffer never grows past `max_buffer_size`: a read that would need
//!   more fails and closes the stream.
//! - Writes: `write` appends to one buffer (so writes coalesce), tries to send
//!   at once, and returns a future done when these bytes have left the buffer.
//! - `close` keeps its cause as the stream's error; pending reads and writes
//!   fail with it, and the close callback runs from the loop.
//! - TLS (Tornado's `SSLIOStream`): `start_tls_client` / `start_tls_server`
//!   turn a connected stream into a TLS one; reads and writes then go through
//!   the session (`tls`).

use std::cell::{Cell, OnceCell, RefCell};
use std::fs::File;
use std::io::ErrorKind;
use std::net::{Shutdown, TcpStream};
use std::os::unix::io::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::ioloop::{LoopRef, Registration};

mod buffer;
mod io;
mod poll;
mod read;
mod session;
mod tls;
mod write;

use buffer::ByteQueue;
use io::Io;
use session::TlsSession;
use write::WriteState;

/// Default `max_buffer_size`: 100 MiB, as Tornado.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 100 * 1024 * 1024;
/// How much the first read syscall asks for; each read that fills its
/// space doubles the next, up to `MAX_READ`. Idle connections stay small
/// (10,000 of them must not hold 64 KiB each), bulk transfers get big reads.
const FIRST_READ: usize = 1024;
const MAX_READ: usize = 256 * 1024;

/// A stream's shared state. Each concern has a file: the fd (`io`), the byte
/// queues (`buffer`), reads (`read`), writes (`write`), TLS (`tls`); this
/// file makes and closes streams.
struct Inner {
    lp: LoopRef,
    io: RefCell<Option<Io>>,
    registration: RefCell<Option<Rc<Registration>>>,
    read_buffer: RefCell<ByteQueue>,
    max_buffer_size: Cell<usize>,
    reading: Cell<bool>,
    /// The size of the next read (see `FIRST_READ`).
    read_size: Cell<usize>,
    write: RefCell<WriteState>,
    error: RefCell<Option<Error>>,
    closed: Cell<bool>,
    close_callback: RefCell<Option<Box<dyn FnOnce()>>>,
    /// The TLS session once `start_tls_*` began; reads and writes then go
    /// through it (the buffers above hold plaintext).
    /// Boxed: a session is large and most streams are plain.
    tls: RefCell<Option<Box<TlsSession>>>,
    /// The done future every write sent in full at once returns (shared:
    /// such writes allocate nothing).
    sent: OnceCell<Future<()>>,
    /// The caller set TCP_NODELAY one way or the other (`set_nodelay`):
    /// `start_tls_client` then leaves it as it is.
    nodelay_chosen: Cell<bool>,
}

/// A buffered non-blocking stream bound to a loop. Cheap to clone (shared).
#[derive(Clone)]
pub struct IOStream {
    inner: Rc<Inner>,
}

fn stream_closed() -> Error {
    Error::new(Code::CLOSED, "stream is closed")
}

impl IOStream {
    /// Wraps a connected TCP socket (made non-blocking here).
    pub fn from_tcp(lp: &LoopRef, socket: TcpStream) -> Result<IOStream> {
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::from_io("cannot make the socket non-blocking", e))?;
        IOStream::new(lp, Io::Tcp(socket))
    }

    /// Wraps a connected Unix-domain socket (made non-blocking here).
    pub fn from_unix(lp: &LoopRef, socket: UnixStream) -> Result<IOStream> {
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::from_io("cannot make the socket non-blocking", e))?;
        IOStream::new(lp, Io::Unix(socket))
    }

    /// Wraps any fd that epoll can watch (a pipe, a tty, a socket); the
    /// stream owns it from now on and closes it. Made non-blocking here.
    pub fn from_fd(lp: &LoopRef, fd: OwnedFd) -> Result<IOStream> {
        IOStream::try_from_fd(lp, fd).map_err(|(e, _fd)| e)
    }

    /// `from_fd` that gives the fd back when it cannot be used.
    pub fn try_from_fd(lp: &LoopRef, fd: OwnedFd) -> Result<IOStream, (Error, OwnedFd)> {
        if let Err(e) = set_nonblocking(fd.as_raw_fd()) {
            return Err((e, fd));
        }
        let registration = match lp.register_fd(fd.as_raw_fd()) {
            Ok(registration) => registration,
            Err(e) => return Err((e, fd)),
        };
        Ok(IOStream::with_registration(
            lp,
            Io::Fd(File::from(fd)),
            registration,
        ))
    }

    fn new(lp: &LoopRef, io: Io) -> Result<IOStream> {
        let registration = lp.register_fd(io.raw_fd())?;
        Ok(IOStream::with_registration(lp, io, registration))
    }

    fn with_registration(lp: &LoopRef, io: Io, registration: Registration) -> IOStream {
        IOStream {
            inner: Rc::new(Inner {
                lp: lp.clone(),
                io: RefCell::new(Some(io)),
                registration: RefCell::new(Some(Rc::new(registration))),
                read_buffer: RefCell::new(ByteQueue::default()),
                max_buffer_size: Cell::new(DEFAULT_MAX_BUFFER_SIZE),
                reading: Cell::new(false),
                read_size: Cell::new(FIRST_READ),
                write: RefCell::new(WriteState::default()),
                error: RefCell::new(None),
                closed: Cell::new(false),
                close_callback: RefCell::new(None),
                tls: RefCell::new(None),
                sent: OnceCell::new(),
                nodelay_chosen: Cell::new(false),
            }),
        }
    }

    /// The loop the stream belongs to.
    pub fn loop_ref(&self) -> &LoopRef {
        &self.inner.lp
    }

    /// The fd, or None once closed.
    pub fn fd(&self) -> Option<RawFd> {
        self.inner.io.borrow().as_ref().map(Io::raw_fd)
    }

    /// Whether the stream is closed, by [`close`](Self::close), by the peer or
    /// by an error ([`error`](Self::error) says which); Tornado's `closed()`.
    pub fn closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Why the stream closed (None if it closed cleanly or is open).
    pub fn error(&self) -> Option<Error> {
        self.inner.error.borrow().clone()
    }

    /// The most a read may buffer (default 100 MiB).
    pub fn set_max_buffer_size(&self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid("max_buffer_size must be positive"));
        }
        self.inner.max_buffer_size.set(bytes);
        Ok(())
    }

    /// Disables Nagle's algorithm on a TCP stream (or enables it again).
    /// Unless this was called, `start_tls_client` turns TCP_NODELAY on.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        match self.inner.io.borrow().as_ref().map(Io::tcp) {
            Some(Some(s)) => {
                s.set_nodelay(nodelay)
                    .map_err(|e| Error::from_io("set_nodelay failed", e))?;
                self.inner.nodelay_chosen.set(true);
                Ok(())
            }
            Some(_) => Err(Error::invalid("set_nodelay needs a TCP stream")),
            None => Err(stream_closed()),
        }
    }

    /// Runs `f` from the loop once the stream closes (at once, on the next
    /// iteration, if it already has). Replaces an earlier close callback.
    pub fn set_close_callback(&self, f: impl FnOnce() + 'static) {
        if self.closed() {
            let _ = self.inner.lp.add_callback(f);
        } else {
            *self.inner.close_callback.borrow_mut() = Some(Box::new(f));
        }
    }

    /// Closes the stream; `cause` becomes its error. Pending reads and writes
    /// fail; the fd is closed. Closing twice does nothing.
    pub fn close(&self, cause: Option<Error>) {
        let inner = &self.inner;
        if inner.closed.replace(true) {
            return;
        }
        *inner.error.borrow_mut() = cause.clone();
        if cause.is_none() {
            self.send_close_notify();
        }
        let registration = inner.registration.borrow_mut().take();
        if let Some(registration) = registration {
            // Deregister before the fd closes (its number may be reused), and
            // wake a pending read or flush so that it sees the close.
            registration.deregister();
            registration.wake_all();
        }
        drop(inner.io.borrow_mut().take());
        let failure = cause.unwrap_or_else(stream_closed);
        let pending = std::mem::take(&mut inner.write.borrow_mut().pending);
        for write in pending {
            let _ = write.future.set_error(failure.clone());
        }
        if let Some(callback) = inner.close_callback.borrow_mut().take() {
            let _ = inner.lp.add_callback(callback);
        }
    }

    /// Shuts down the write side of a socket (half-close) once queued data is sent.
    pub fn shutdown_write(&self) -> Result<()> {
        match self.inner.io.borrow().as_ref() {
            Some(Io::Tcp(s)) => s.shutdown(Shutdown::Write),
            Some(Io::Unix(s)) => s.shutdown(Shutdown::Write),
            Some(Io::Fd(_)) => return Err(Error::invalid("shutdown needs a socket")),
            Some(Io::Tunnel(_)) => {
                return Err(Error::invalid(
                    "shutdown is not possible inside a proxy's TLS tunnel",
                ))
            }
            None => return Err(stream_closed()),
        }
        .map_err(|e| Error::from_io("shutdown failed", e))
    }

    /// Waits until the socket is writable (a non-blocking connect finished).
    pub(crate) async fn writable_for_connect(&self) {
        if let Some(registration) = self.registration() {
            registration.writable().await;
        }
    }

    /// The socket's pending error (`SO_ERROR`), taken.
    pub(crate) fn take_socket_error(&self) -> std::io::Result<Option<std::io::Error>> {
        match self.inner.io.borrow().as_ref() {
            Some(Io::Tcp(s)) => s.take_error(),
            Some(Io::Unix(s)) => s.take_error(),
            Some(Io::Tunnel(t)) => t.io.tcp().map_or(Ok(None), TcpStream::take_error),
            _ => Ok(None),
        }
    }

    /// True when an idle stream has nothing to say: no buffered or newly
    /// arrived data and no end of stream. A keep-alive pool asks this before
    /// reusing a connection, since a server may close an idle one at any time.
    pub fn is_quiet(&self) -> bool {
        if self.closed() || self.inner.reading.get() || self.inner.read_buffer.borrow().len() > 0 {
            return false;
        }
        let plain = self.inner.tls.borrow().is_none();
        if plain && self.registration().is_some_and(|r| !r.read_ready()) {
            // Drained by the last read and no edge since: nothing arrived.
            return true;
        }
        match self.read_some() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(registration) = self.registration() {
                    registration.clear_read_ready();
                }
                true
            }
            _ => false,
        }
    }
}

/// The first position of `needle` in `haystack`: memchr (SIMD) finds each
/// place the needle's last byte occurs, then the bytes before it are
/// compared. For a short delimiter in a short head (CRLFCRLF after a few
/// lines) this beats building a substring searcher per call.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&last, _) = needle.split_last()?;
    let before = needle.len() - 1;
    // A hit at `i` in haystack[before..] is a candidate match starting at `i`.
    memchr::memchr_iter(last, haystack.get(before..)?)
        .find(|&start| haystack[start..start + before] == needle[..before])
}

fn set_nonblocking(fd: RawFd) -> Result<()> {
    crate::sys::set_nonblocking(fd)
        .map_err(|e| Error::from_io("cannot make the fd non-blocking", e))
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn find_returns_the_first_match() {
        let cases: &[(&[u8], &[u8], Option<usize>)] = &[
            (b"\r\n\r\n", b"\r\n\r\n", Some(0)),
            (
                b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody",
                b"\r\n\r\n",
                Some(21),
            ),
            (b"a\r\n\r\r\n\r\n", b"\r\n\r\n", Some(4)),
            (b"a\r\n\r\n\r\n", b"\r\n\r\n", Some(1)),
            (b"a\r\n\r", b"\r\n\r\n", None),
            (b"\n", b"\r\n\r\n", None),
            (b"", b"\r\n\r\n", None),
            (b"xyz", b"z", Some(2)),
            (b"xyz", b"", None),
        ];
        for &(haystack, needle, expected) in cases {
            assert_eq!(find(haystack, needle), expected, "{haystack:?} {needle:?}");
        }
    }
}
