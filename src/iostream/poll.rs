//! Poll-style reads and writes on an [`IOStream`], for protocol crates that
//! drive I/O through `poll_*` functions (the HTTP/2 adapter in
//! `http::h2::io`): the same buffer, readiness flags and TLS session as the
//! `async` methods, woken by the loop's fd readiness.

use std::io::ErrorKind;
use std::task::{Context, Poll};

use super::{is_tls_failure, IOStream};
use crate::error::{Error, Result};
use crate::tls::tls_error;

impl IOStream {
    /// Lends `sink` up to `max` bytes that are buffered or can be read now
    /// (no copy here: the sink copies them where it wants, say into
    /// uninitialised memory) and consumes them; `Ready(Ok(0))` at the end
    /// of the stream (or once it was closed cleanly), without calling
    /// `sink`. Pending registers the task for the fd's next read edge. A
    /// read error closes the stream, as in the `async` reads.
    ///
    /// No `async` read may be pending at the same time (the caller owns
    /// the reading side, as the HTTP/2 connection task does).
    pub(crate) fn poll_read_available(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        sink: impl FnOnce(&[u8]),
    ) -> Poll<Result<usize>> {
        let mut sink = Some(sink);
        loop {
            {
                let mut buffer = self.inner.read_buffer.borrow_mut();
                let n = buffer.len().min(max);
                if n > 0 || max == 0 {
                    if let Some(sink) = sink.take() {
                        sink(&buffer.bytes()[..n]);
                    }
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
            if !registration.read_ready() && !self.is_tls() {
                if registration.poll_read_ready(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            let outcome = self.read_some();
            if self.tls_wants_write() {
                self.flush();
                let _ = self.ensure_flusher();
            }
            match outcome {
                Ok(0) => return Poll::Ready(Ok(0)),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    registration.clear_read_ready();
                    if registration.poll_read_ready(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    let error = if is_tls_failure(&e) {
                        tls_error(e)
                    } else {
                        Error::from_io("read failed", e)
                    };
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
