//! Poll-style reads and writes on an [`IOStream`], for protocol crates that
//! drive I/O through `poll_*` functions (the HTTP/2 adapter in
//! `http::h2::io`): the same buffer, readiness flags and TLS session as the
//! `async` methods, woken by the loop's fd readiness.

use std::io::ErrorKind;
use std::task::{Context, Poll};

use super::io::stream_error;
use super::IOStream;
use crate::error::Result;

impl IOStream {
    /// Lends `sink` the bytes that are buffered or can be read now, in one
    /// contiguous piece (no copy here: the sink copies them where it wants,
    /// say into uninitialised memory), and consumes as many as the sink
    /// says it took (at most the piece's length; the rest stays for the
    /// next read). Under TLS, once the stream's buffer is empty, the piece
    /// is the session's own decrypted record: it is not copied into the
    /// stream's buffer first (one copy fewer for each byte an HTTP/2
    /// connection reads). `Ready(Ok(0))` at the end of the stream (or once
    /// it was closed cleanly), without calling `sink`. Pending registers
    /// the task for the fd's next read edge. A read error closes the
    /// stream, as in the `async` reads.
    ///
    /// No `async` read may be pending at the same time (the caller owns
    /// the reading side, as the HTTP/2 connection task does).
    pub(crate) fn poll_read_piece(
        &self,
        cx: &mut Context<'_>,
        sink: impl FnOnce(&[u8]) -> usize,
    ) -> Poll<Result<usize>> {
        let mut sink = Some(sink);
        loop {
            {
                let mut buffer = self.inner.read_buffer.borrow_mut();
                if buffer.len() > 0 {
                    let n = sink
                        .take()
                        .map_or(0, |sink| sink(buffer.bytes()).min(buffer.len()));
                    buffer.consume(n);
                    return Poll::Ready(Ok(n));
                }
            }
            let Some(registration) = self.registration() else {
                return Poll::Ready(match self.error() {
                    None => Ok(0),
                    Some(error) => Err(error),
                });
            };
            // As read_with: a drained plain socket waits for its next edge;
            // TLS may hold decrypted bytes, so it is always tried.
            let tls = self.is_tls();
            if !registration.read_ready() && !tls {
                if registration.poll_read_ready(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            let outcome = if tls {
                self.lend_plaintext(&mut sink)
            } else {
                self.read_some().map(|n| (n > 0).then_some(0))
            };
            if self.tls_wants_write() {
                self.flush();
                let _ = self.ensure_flusher();
            }
            match outcome {
                Ok(None) => return Poll::Ready(Ok(0)),
                // Lent straight from the TLS session.
                Ok(Some(n)) if sink.is_none() => return Poll::Ready(Ok(n)),
                // Read into the buffer: lent from there, next time round.
                Ok(Some(_)) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    registration.clear_read_ready();
                    if registration.poll_read_ready(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    let error = stream_error(e, "read failed");
                    self.close(Some(error.clone()));
                    return Poll::Ready(Err(error));
                }
            }
        }
    }

    /// Bytes written but not yet handed to the socket (plaintext waiting
    /// in the write buffer).
    pub(crate) fn write_backlog(&self) -> usize {
        self.inner.write.borrow().buffer.len()
    }
}
