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

use std::cell::{Cell, OnceCell, RefCell};
use std::fs::File;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::io::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::ioloop::{LoopRef, Registration};
use crate::tls::tls_error;

mod poll;

/// Default `max_buffer_size`: 100 MiB, as Tornado.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 100 * 1024 * 1024;
/// How much the first read syscall asks for; each read that fills its
/// space doubles the next, up to `MAX_READ`. Idle connections stay small
/// (10,000 of them must not hold 64 KiB each), bulk transfers get big reads.
const FIRST_READ: usize = 1024;
const MAX_READ: usize = 256 * 1024;
/// See `Io::after_read`.
const QUICK_ACK_AFTER: usize = 64 * 1024;

/// The fd under a stream. Sockets go through `send` with `MSG_NOSIGNAL`
/// (std does that), so a peer that went away is an error, not a SIGPIPE.
enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
    Fd(File),
}

impl Io {
    /// After a read(2) that took more than `QUICK_ACK_AFTER` bytes at once,
    /// asks the kernel (Linux `TCP_QUICKACK`) to send the ACK it is holding
    /// back. After such a read the kernel may leave the window update to
    /// the delayed-ACK timer, and a server that filled the window then waits
    /// 40 ms before it sends the rest (seen on loopback with 1 MiB bodies:
    /// one fetch in three stalled; none with this, nor with reads of 64 KiB).
    fn after_read(&self, got: usize) {
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

    fn raw_fd(&self) -> RawFd {
        match self {
            Io::Tcp(s) => s.as_raw_fd(),
            Io::Unix(s) => s.as_raw_fd(),
            Io::Fd(f) => f.as_raw_fd(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Tcp(s) => (&*s).read(buf),
            Io::Unix(s) => (&*s).read(buf),
            Io::Fd(f) => (&*f).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Tcp(s) => (&*s).write(buf),
            Io::Unix(s) => (&*s).write(buf),
            Io::Fd(f) => (&*f).write(buf),
        }
    }

    /// One gather write of all of `bufs`: sendmsg(2) with MSG_NOSIGNAL on
    /// a socket (std's writev would raise SIGPIPE in a C program when the
    /// peer has gone), writev(2) on any other fd.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        const NO_SIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        const NO_SIGNAL: libc::c_int = 0;
        match self {
            Io::Tcp(s) => socket2::SockRef::from(s).send_vectored_with_flags(bufs, NO_SIGNAL),
            Io::Unix(s) => socket2::SockRef::from(s).send_vectored_with_flags(bufs, NO_SIGNAL),
            Io::Fd(f) => (&*f).write_vectored(bufs),
        }
    }
}

/// `Read`/`Write` over a shared `Io`, for rustls' `read_tls`/`write_tls`.
struct IoRef<'a>(&'a Io);

impl Read for IoRef<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for IoRef<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    /// rustls' `write_tls` hands over every record it has ready as one
    /// slice each: they go out in one writev(2), so a handshake flight
    /// (TLS 1.2's ClientKeyExchange, ChangeCipherSpec and Finished) is one
    /// segment, not three small writes that Nagle's algorithm holds back
    /// until the peer's delayed ACK (40 ms).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A TLS protocol failure, carried through `std::io::Error` from the read
/// path and told apart from socket errors by its payload.
fn tls_io_error(error: rustls::Error) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, error)
}

fn is_tls_failure(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// A byte queue over one initialized buffer: bytes live in `start..end`.
/// Consuming is O(1); reading appends into `end..` without zero-filling
/// each time (the buffer is initialized once, as it grows), and the live
/// bytes move to the front only when the free tail is too short.
#[derive(Default)]
struct ByteQueue {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

/// An emptied buffer larger than this is released rather than kept.
const KEEP_BUFFER: usize = 1024 * 1024;

impl ByteQueue {
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > KEEP_BUFFER {
                self.data = Vec::new();
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let taken = self.bytes()[..n].to_vec();
        self.consume(n);
        taken
    }

    /// Room for `want` more bytes after the live ones; `commit` what was used.
    fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.data.len() - self.end < want && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < want {
            self.data.resize(self.end + want, 0);
        }
        &mut self.data[self.end..self.end + want]
    }

    fn commit(&mut self, n: usize) {
        self.end += n;
    }

    fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).copy_from_slice(bytes);
        self.commit(bytes.len());
    }
}

struct PendingWrite {
    /// Done once `written` reaches this total.
    until: u64,
    future: Future<()>,
}

#[derive(Default)]
struct WriteState {
    buffer: ByteQueue,
    queued: u64,
    written: u64,
    pending: std::collections::VecDeque<PendingWrite>,
    flushing: bool,
}

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
    tls: RefCell<Option<Box<Connection>>>,
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

/// Clears the one-pending-read flag when a read ends, however it ends.
struct ReadGuard<'a>(&'a Cell<bool>);

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
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
        match self.inner.io.borrow().as_ref() {
            Some(Io::Tcp(s)) => {
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
            None => return Err(stream_closed()),
        }
        .map_err(|e| Error::from_io("shutdown failed", e))
    }

    fn begin_read(&self) -> Result<ReadGuard<'_>> {
        if self.inner.reading.replace(true) {
            return Err(Error::new(
                Code::RUNNING,
                "a read is already pending on this stream",
            ));
        }
        Ok(ReadGuard(&self.inner.reading))
    }

    fn registration(&self) -> Option<Rc<Registration>> {
        self.inner.registration.borrow().clone()
    }

    /// The error a read gets once the stream is closed and its buffer cannot satisfy it.
    fn closed_error(&self) -> Error {
        self.error().unwrap_or_else(stream_closed)
    }

    /// Reads once more into the buffer: Ok(false) at end of stream.
    async fn fill_buffer(&self) -> Result<bool> {
        if self.inner.read_buffer.borrow().len() >= self.inner.max_buffer_size.get() {
            let error = Error::new(
                Code::TOO_LARGE,
                format!(
                    "reached the maximum read buffer size ({} bytes)",
                    self.inner.max_buffer_size.get()
                ),
            );
            self.close(Some(error.clone()));
            return Err(error);
        }
        Ok(self.read_with(|stream| stream.read_some()).await? > 0)
    }

    /// Runs `attempt` (one non-blocking read) until it reads something or
    /// the stream ends (0), waiting for readability in between; a read
    /// error closes the stream.
    async fn read_with(
        &self,
        mut attempt: impl FnMut(&Self) -> std::io::Result<usize>,
    ) -> Result<usize> {
        loop {
            let Some(registration) = self.registration() else {
                return Err(self.closed_error());
            };
            // A plain socket that a read found drained since its last edge
            // has nothing: wait for the next edge instead of a read that
            // would fail (TLS may hold decrypted bytes: always try it).
            if !registration.read_ready() && !self.is_tls() {
                registration.readable().await;
                continue;
            }
            let outcome = attempt(self);
            if self.tls_wants_write() {
                self.flush();
                let _ = self.ensure_flusher();
            }
            match outcome {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    registration.clear_read_ready();
                    registration.readable().await;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    let error = if is_tls_failure(&e) {
                        tls_error(e)
                    } else {
                        Error::from_io("read failed", e)
                    };
                    self.close(Some(error.clone()));
                    return Err(error);
                }
            }
        }
    }

    /// One read(2) from a plain stream straight into `dst`'s spare
    /// capacity (up to `max` bytes): no intermediate buffer, no zeroing.
    fn read_direct(&self, dst: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        let io = self.inner.io.borrow();
        let Some(io) = io.as_ref() else {
            return Ok(0);
        };
        dst.reserve(max);
        let spare = &mut dst.spare_capacity_mut()[..max];
        // SAFETY: read(2) writes at most `spare.len()` bytes into `spare`,
        // memory the Vec owns and has reserved; nothing reads it before.
        let got = unsafe { libc::read(io.raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if got < 0 {
            return Err(std::io::Error::last_os_error());
        }
        io.after_read(got as usize);
        self.note_read(got as usize, max);
        // The bulk now bypasses the buffer: the buffer's next read (say,
        // the next response head) starts small again, so that it does not
        // pull a large part of the following body through the buffer and
        // copy it a second time.
        self.inner.read_size.set(FIRST_READ);
        let filled = dst.len() + got as usize;
        // SAFETY: the first `got` bytes of the spare capacity were just
        // written by read(2), so `filled` bytes are initialised.
        unsafe { dst.set_len(filled) };
        Ok(got as usize)
    }

    fn read_some(&self) -> std::io::Result<usize> {
        let io = self.inner.io.borrow();
        let Some(io) = io.as_ref() else {
            return Ok(0);
        };
        let mut buffer = self.inner.read_buffer.borrow_mut();
        let room = self
            .inner
            .max_buffer_size
            .get()
            .saturating_sub(buffer.len());
        if room == 0 {
            return Err(std::io::Error::other(
                "reached the maximum read buffer size",
            ));
        }
        let want = room.min(self.inner.read_size.get());
        let spare = buffer.spare(want);
        let result = match self.inner.tls.borrow_mut().as_mut() {
            Some(tls) => tls_read(io, tls, spare),
            None => io.read(spare),
        };
        let got = *result.as_ref().unwrap_or(&0);
        io.after_read(got);
        buffer.commit(got);
        if got == want {
            self.inner
                .read_size
                .set((want * 2).clamp(FIRST_READ, MAX_READ));
        } else {
            self.note_read(got, want);
        }
        result
    }

    /// A short read (0 < got < want) from a plain stream means the kernel's
    /// buffer is now empty: forget the readiness edge, so `is_quiet` can
    /// answer without a syscall until the loop sees a new edge (data or
    /// FIN). Under TLS a short read says nothing about the socket.
    fn note_read(&self, got: usize, want: usize) {
        if got == 0 || got >= want || self.inner.tls.borrow().is_some() {
            return;
        }
        if let Some(registration) = self.registration() {
            registration.clear_read_ready();
        }
    }

    /// Reads up to and including `delimiter`. Fails (and closes the stream)
    /// if it is not found within `max_bytes`, or the stream closes first.
    pub async fn read_until(&self, delimiter: &[u8], max_bytes: Option<usize>) -> Result<Vec<u8>> {
        self.read_until_checked(delimiter, max_bytes, |_| Ok(()))
            .await
    }

    /// As [`read_until`](Self::read_until), showing `check` what is
    /// buffered each time more arrives before the delimiter: an error from
    /// it ends the read and closes the stream. A parser uses it to refuse a
    /// malformed start at once instead of waiting for the delimiter, the
    /// limit or the close.
    pub async fn read_until_checked(
        &self,
        delimiter: &[u8],
        max_bytes: Option<usize>,
        check: impl Fn(&[u8]) -> Result<()>,
    ) -> Result<Vec<u8>> {
        if delimiter.is_empty() {
            return Err(Error::invalid("the delimiter is empty"));
        }
        let mut scanned = 0;
        self.read_until_end(max_bytes, |buffered| {
            if let Some(pos) = find(&buffered[scanned..], delimiter) {
                return Ok(Some(scanned + pos + delimiter.len()));
            }
            check(buffered)?;
            // A delimiter may straddle what is here and what comes next.
            scanned = buffered.len().saturating_sub(delimiter.len() - 1);
            Ok(None)
        })
        .await
    }

    /// Reads one message whose end `find_end` recognises: it is shown
    /// everything buffered each time more arrives, and returns the
    /// message's length once the message is complete (`Ok(None)` until
    /// then). An error from it ends the read and closes the stream, as does
    /// a message longer than `max_bytes`. For ends that are not one fixed
    /// delimiter, such as an HTTP head's empty line (CRLF or bare LF).
    pub async fn read_until_end(
        &self,
        max_bytes: Option<usize>,
        mut find_end: impl FnMut(&[u8]) -> Result<Option<usize>>,
    ) -> Result<Vec<u8>> {
        let _guard = self.begin_read()?;
        loop {
            {
                let mut buffer = self.inner.read_buffer.borrow_mut();
                match find_end(buffer.bytes()) {
                    Ok(Some(end)) if max_bytes.is_some_and(|max| end > max) => {
                        drop(buffer);
                        return Err(self.unsatisfiable(max_bytes));
                    }
                    Ok(Some(end)) => return Ok(buffer.take(end)),
                    Ok(None) if max_bytes.is_some_and(|max| buffer.len() >= max) => {
                        drop(buffer);
                        return Err(self.unsatisfiable(max_bytes));
                    }
                    Ok(None) => {}
                    Err(refused) => {
                        drop(buffer);
                        self.close(Some(refused.clone()));
                        return Err(refused);
                    }
                }
            }
            if !self.fill_buffer().await? {
                return Err(self.closed_error());
            }
        }
    }

    fn unsatisfiable(&self, max_bytes: Option<usize>) -> Error {
        let error = Error::new(
            Code::TOO_LARGE,
            format!(
                "delimiter not found within {} bytes",
                max_bytes.unwrap_or(0)
            ),
        );
        self.close(Some(error.clone()));
        error
    }

    /// Reads exactly `n` bytes; with `partial`, returns as soon as any (at
    /// most `n`) are available.
    pub async fn read_bytes(&self, n: usize, partial: bool) -> Result<Vec<u8>> {
        let _guard = self.begin_read()?;
        if n > self.inner.max_buffer_size.get() {
            return Err(Error::invalid(
                "read_bytes asks for more than max_buffer_size",
            ));
        }
        loop {
            {
                let mut buffer = self.inner.read_buffer.borrow_mut();
                let have = buffer.len();
                if have >= n || (partial && have > 0) || n == 0 {
                    return Ok(buffer.take(have.min(n)));
                }
            }
            if !self.fill_buffer().await? {
                return Err(self.closed_error());
            }
        }
    }

    /// Waits for data, then lends `sink` up to `max` buffered bytes (no
    /// copy) and consumes them; returns how many. For consumers that move
    /// bytes straight on (an HTTP body). Fails once the stream ended with
    /// nothing buffered.
    pub async fn read_available<R>(
        &self,
        max: usize,
        sink: impl FnOnce(&[u8]) -> R,
    ) -> Result<(usize, R)> {
        let _guard = self.begin_read()?;
        loop {
            {
                let mut buffer = self.inner.read_buffer.borrow_mut();
                let n = buffer.len().min(max);
                if n > 0 || max == 0 {
                    let out = sink(&buffer.bytes()[..n]);
                    buffer.consume(n);
                    return Ok((n, out));
                }
            }
            if !self.fill_buffer().await? {
                return Err(self.closed_error());
            }
        }
    }

    /// Appends up to `max` bytes to `dst` (at least one; waits for them):
    /// what is buffered first, else a read from the socket straight into
    /// `dst` on a plain stream (a TLS stream decrypts through its buffer).
    /// For a consumer that keeps the bytes, such as an HTTP body of known
    /// length: they are copied once, by the kernel. Fails once the stream
    /// ended with nothing read.
    pub async fn read_append(&self, dst: &mut Vec<u8>, max: usize) -> Result<usize> {
        let _guard = self.begin_read()?;
        loop {
            {
                let mut buffer = self.inner.read_buffer.borrow_mut();
                let n = buffer.len().min(max);
                if n > 0 || max == 0 {
                    dst.extend_from_slice(&buffer.bytes()[..n]);
                    buffer.consume(n);
                    return Ok(n);
                }
            }
            if self.inner.tls.borrow().is_some() {
                // Decrypted into the buffer, then taken from it above.
                if !self.fill_buffer().await? {
                    return Err(self.closed_error());
                }
                continue;
            }
            return match self
                .read_with(|stream| stream.read_direct(dst, max))
                .await?
            {
                0 => Err(self.closed_error()),
                got => Ok(got),
            };
        }
    }

    /// Reads everything until the peer closes; the stream is closed after.
    pub async fn read_until_close(&self) -> Result<Vec<u8>> {
        let _guard = self.begin_read()?;
        loop {
            match self.fill_buffer().await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) if self.closed() && self.inner.error.borrow().is_none() => {
                    let _ = e;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let all = {
            let mut buffer = self.inner.read_buffer.borrow_mut();
            let n = buffer.len();
            buffer.take(n)
        };
        self.close(None);
        Ok(all)
    }

    /// Queues `data` and returns a future done when it has left the buffer.
    pub fn write(&self, data: &[u8]) -> Result<Future<()>> {
        if self.closed() {
            return Err(self.closed_error());
        }
        let rest = {
            let mut state = self.inner.write.borrow_mut();
            let sent = self.send_now(&state, data);
            state.queued += data.len() as u64;
            state.written += sent as u64;
            &data[sent..]
        };
        if rest.is_empty() {
            let lp = &self.inner.lp;
            return Ok(self
                .inner
                .sent
                .get_or_init(|| Future::ready(lp, ()))
                .clone());
        }
        let future = Future::new(&self.inner.lp);
        {
            let mut state = self.inner.write.borrow_mut();
            state.buffer.push(rest);
            let until = state.queued;
            state.pending.push_back(PendingWrite {
                until,
                future: future.clone(),
            });
        }
        self.flush();
        self.ensure_flusher()?;
        Ok(future)
    }

    /// With nothing queued on a plain stream, offers `data` to the socket
    /// at once (no copy into the write buffer); returns how much it took.
    /// A failure takes nothing here: the buffered path retries and reports.
    fn send_now(&self, state: &WriteState, data: &[u8]) -> usize {
        if state.buffer.len() > 0 || self.inner.tls.borrow().is_some() {
            return 0;
        }
        match self.inner.io.borrow().as_ref().map(|io| io.write(data)) {
            Some(Ok(n)) => n,
            _ => 0,
        }
    }

    /// Sends what the socket takes now; completes the writes that are out.
    fn flush(&self) {
        let sent = {
            let io = self.inner.io.borrow();
            let Some(io) = io.as_ref() else { return };
            let mut state = self.inner.write.borrow_mut();
            match self.inner.tls.borrow_mut().as_mut() {
                Some(tls) => flush_tls(io, tls, &mut state),
                None => flush_plain(io, &mut state),
            }
        };
        match sent {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(registration) = self.registration() {
                    registration.clear_write_ready();
                }
            }
            Err(e) => {
                self.close(Some(Error::from_io("write failed", e)));
                return;
            }
        }
        // Under TLS, bytes count as sent once the session's records are out.
        if self.tls_wants_write() {
            return;
        }
        // One at a time, without holding the borrow while completing.
        loop {
            let done = {
                let mut state = self.inner.write.borrow_mut();
                let written = state.written;
                match state.pending.front() {
                    Some(w) if w.until <= written => state.pending.pop_front(),
                    _ => None,
                }
            };
            match done {
                Some(write) => drop(write.future.set_result(())),
                None => break,
            }
        }
    }

    fn tls_wants_write(&self) -> bool {
        self.inner
            .tls
            .borrow()
            .as_ref()
            .is_some_and(|tls| tls.wants_write())
    }

    /// Starts the task that waits for writability while data is queued.
    fn ensure_flusher(&self) -> Result<()> {
        {
            let mut state = self.inner.write.borrow_mut();
            let idle = state.buffer.len() == 0 && !self.tls_wants_write();
            if state.flushing || idle || self.closed() {
                return Ok(());
            }
            state.flushing = true;
        }
        let stream = self.clone();
        self.inner.lp.spawn(async move {
            loop {
                let Some(registration) = stream.registration() else {
                    break;
                };
                registration.writable().await;
                stream.flush();
                if stream.closed() || !stream.writing() {
                    break;
                }
            }
            stream.inner.write.borrow_mut().flushing = false;
        })
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

    /// True while written data waits to be sent.
    pub fn writing(&self) -> bool {
        self.inner.write.borrow().buffer.len() > 0 || self.tls_wants_write()
    }

    /// Starts TLS as a client on this connected stream (Tornado's
    /// `start_tls(server_side=False)`) and completes the handshake. No read
    /// may be pending and no write queued. Fails, closing the stream, if the
    /// handshake fails (a bad certificate, a peer that is not TLS). Turns
    /// TCP_NODELAY on first, unless `set_nodelay` chose already.
    pub async fn start_tls_client(
        &self,
        config: std::sync::Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<()> {
        let session = ClientConnection::new(config, server_name).map_err(tls_error)?;
        if !self.inner.nodelay_chosen.get() {
            // As curl: TCP_NODELAY before the handshake (unless the caller
            // chose), so the first write after it does not wait behind
            // Nagle's algorithm for the ACK of the client's Finished, which
            // the server may hold back for its delayed-ACK timer (40 ms).
            if let Some(Io::Tcp(s)) = self.inner.io.borrow().as_ref() {
                // Its result is not needed: at worst writes wait, as before.
                let _ = s.set_nodelay(true);
            }
        }
        self.start_tls(Box::new(session.into())).await
    }

    /// Starts TLS as a server on this accepted stream and completes the handshake.
    pub async fn start_tls_server(&self, config: std::sync::Arc<ServerConfig>) -> Result<()> {
        let session = ServerConnection::new(config).map_err(tls_error)?;
        self.start_tls(Box::new(session.into())).await
    }

    /// True once TLS has started on this stream.
    pub fn is_tls(&self) -> bool {
        self.inner.tls.borrow().is_some()
    }

    /// The ALPN protocol agreed in the handshake, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        let tls = self.inner.tls.borrow();
        tls.as_ref()?.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The TLS version the handshake agreed ("TLSv1.2", "TLSv1.3"); None
    /// before the handshake is done or on a plain stream.
    pub fn tls_version(&self) -> Option<&'static str> {
        let tls = self.inner.tls.borrow();
        match tls.as_ref()?.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            other => other.as_str(),
        }
    }

    /// The cipher suite the handshake agreed, by its IANA name (e.g.
    /// "TLS13_AES_256_GCM_SHA384"); None before the handshake is done or
    /// on a plain stream.
    pub fn tls_cipher(&self) -> Option<&'static str> {
        let tls = self.inner.tls.borrow();
        tls.as_ref()?.negotiated_cipher_suite()?.suite().as_str()
    }

    /// Whether the handshake resumed an earlier session (Some(false): a
    /// full handshake); None before the handshake is done or on a plain stream.
    pub fn tls_resumed(&self) -> Option<bool> {
        let tls = self.inner.tls.borrow();
        let kind = tls.as_ref()?.handshake_kind()?;
        Some(kind == rustls::HandshakeKind::Resumed)
    }

    /// The session comes boxed: it is large, and it would otherwise sit in
    /// the state of every future that awaits a connect.
    async fn start_tls(&self, mut session: Box<Connection>) -> Result<()> {
        if self.closed() {
            return Err(self.closed_error());
        }
        if self.is_tls() {
            return Err(Error::invalid("TLS has already started on this stream"));
        }
        if self.writing() {
            return Err(Error::invalid("start_tls with writes still queued"));
        }
        let _guard = self.begin_read()?;
        // Bytes read before TLS started are the peer's first TLS records.
        let early = std::mem::take(&mut *self.inner.read_buffer.borrow_mut());
        if early.len() > 0 {
            let mut records = early.bytes();
            while !records.is_empty() {
                session.read_tls(&mut records).map_err(tls_error)?;
                session.process_new_packets().map_err(tls_error)?;
            }
        }
        *self.inner.tls.borrow_mut() = Some(session);
        let outcome = self.handshake().await;
        if let Err(e) = &outcome {
            self.close(Some(e.clone()));
        }
        outcome
    }

    /// Drives the handshake: sends what the session has to send, reads what
    /// it waits for, until it is done.
    async fn handshake(&self) -> Result<()> {
        loop {
            let Some(registration) = self.registration() else {
                return Err(self.closed_error());
            };
            if self.tls_wants_write() {
                match self.send_tls_records() {
                    Ok(()) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        registration.clear_write_ready();
                        registration.writable().await;
                        continue;
                    }
                    Err(e) => return Err(Error::from_io("tls handshake write failed", e)),
                }
            }
            if !self.handshaking() {
                return Ok(());
            }
            match self.receive_tls_records() {
                Ok(0) => {
                    return Err(tls_error(
                        "the peer closed the connection during the handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    registration.clear_read_ready();
                    registration.readable().await;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_tls_failure(&e) => {
                    // Best effort: tell the peer why (the alert rustls queued).
                    let _ = self.send_tls_records();
                    return Err(tls_error(e));
                }
                Err(e) => return Err(Error::from_io("tls handshake read failed", e)),
            }
        }
    }

    fn handshaking(&self) -> bool {
        self.inner
            .tls
            .borrow()
            .as_ref()
            .is_some_and(|tls| tls.is_handshaking())
    }

    /// Writes the session's pending records until done or the socket is full.
    fn send_tls_records(&self) -> std::io::Result<()> {
        let io = self.inner.io.borrow();
        let mut tls = self.inner.tls.borrow_mut();
        let (Some(io), Some(tls)) = (io.as_ref(), tls.as_mut()) else {
            return Ok(());
        };
        while tls.wants_write() {
            tls.write_tls(&mut IoRef(io))?;
        }
        Ok(())
    }

    /// Reads and processes one batch of records: Ok(0) at end of stream.
    fn receive_tls_records(&self) -> std::io::Result<usize> {
        let io = self.inner.io.borrow();
        let mut tls = self.inner.tls.borrow_mut();
        let (Some(io), Some(tls)) = (io.as_ref(), tls.as_mut()) else {
            return Ok(0);
        };
        let n = tls.read_tls(&mut IoRef(io))?;
        tls.process_new_packets().map_err(tls_io_error)?;
        Ok(n)
    }

    /// On a clean close, tells a TLS peer so (best effort, never blocks).
    fn send_close_notify(&self) {
        if let Some(tls) = self.inner.tls.borrow_mut().as_mut() {
            tls.send_close_notify();
        }
        let _ = self.send_tls_records();
    }
}

/// Plain writes: sends the buffer until it is empty or the socket is full.
fn flush_plain(io: &Io, state: &mut WriteState) -> std::io::Result<()> {
    while state.buffer.len() > 0 {
        match io.write(state.buffer.bytes()) {
            Ok(n) => {
                state.buffer.consume(n);
                state.written += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// TLS writes: hands the plaintext to the session, then sends its records.
fn flush_tls(io: &Io, tls: &mut Connection, state: &mut WriteState) -> std::io::Result<()> {
    loop {
        if state.buffer.len() > 0 {
            let n = tls.writer().write(state.buffer.bytes())?;
            state.buffer.consume(n);
            state.written += n as u64;
        }
        if !tls.wants_write() {
            return Ok(());
        }
        match tls.write_tls(&mut IoRef(io)) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads plaintext from a TLS session, pulling records from the socket as
/// needed. Ok(0) at the end of the stream (with or without close_notify:
/// peers that just close are common, and the framing above detects
/// truncation where it matters).
fn tls_read(io: &Io, tls: &mut Connection, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        let n = tls.read_tls(&mut IoRef(io))?;
        tls.process_new_packets().map_err(tls_io_error)?;
        if n == 0 {
            // The socket ended; whatever the session holds was read above.
            return match tls.reader().read(buf) {
                Ok(n) => Ok(n),
                Err(_) => Ok(0),
            };
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
    // SAFETY: fcntl on an fd the caller owns; failures come back as -1.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(Error::from_io(
            "cannot make the fd non-blocking",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
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
