//! Reads (Tornado's `read_until`, `read_bytes`, `read_until_close`): one
//! pending at a time, satisfied from the buffer first, bounded by
//! `max_buffer_size`.

use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;

use super::io::stream_error;
use super::{find, stream_closed, IOStream, FIRST_READ, MAX_READ};
use crate::error::{Code, Error, Result};
use crate::ioloop::Registration;

/// Clears the one-pending-read flag when a read ends, however it ends.
pub(super) struct ReadGuard<'a>(&'a Cell<bool>);

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl IOStream {
    pub(super) fn begin_read(&self) -> Result<ReadGuard<'_>> {
        if self.inner.reading.replace(true) {
            return Err(Error::new(
                Code::RUNNING,
                "a read is already pending on this stream",
            ));
        }
        Ok(ReadGuard(&self.inner.reading))
    }

    pub(super) fn registration(&self) -> Option<Rc<Registration>> {
        self.inner.registration.borrow().clone()
    }

    /// The error a read gets once the stream is closed and its buffer cannot satisfy it.
    pub(super) fn closed_error(&self) -> Error {
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
                    let error = stream_error(e, "read failed");
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
        let got = crate::sys::read_appending(io.raw_fd(), dst, max)?;
        io.after_read(got);
        self.note_read(got, max);
        // The bulk now bypasses the buffer: the buffer's next read (say,
        // the next response head) starts small again, so that it does not
        // pull a large part of the following body through the buffer and
        // copy it a second time.
        self.inner.read_size.set(FIRST_READ);
        Ok(got)
    }

    pub(super) fn read_some(&self) -> std::io::Result<usize> {
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
            Some(tls) => tls.read(io, spare),
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
}
