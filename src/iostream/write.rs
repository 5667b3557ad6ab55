//! Writes: one coalescing buffer, sent at once when the socket takes it,
//! the rest by a flusher task; each write's future is done when its bytes
//! have left the buffer.

use std::io::ErrorKind;

use super::buffer::ByteQueue;
use super::io::{stream_error, Io};
use super::session::TlsSession;
use super::IOStream;
use crate::error::Result;
use crate::future::Future;

pub(super) struct PendingWrite {
    /// Done once `written` reaches this total.
    pub(super) until: u64,
    pub(super) future: Future<()>,
}

#[derive(Default)]
pub(super) struct WriteState {
    pub(super) buffer: ByteQueue,
    pub(super) queued: u64,
    pub(super) written: u64,
    pub(super) pending: std::collections::VecDeque<PendingWrite>,
    pub(super) flushing: bool,
}

impl IOStream {
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
    pub(super) fn flush(&self) {
        let sent = {
            let io = self.inner.io.borrow();
            let Some(io) = io.as_ref() else { return };
            let mut state = self.inner.write.borrow_mut();
            match self.inner.tls.borrow_mut().as_mut() {
                Some(tls) => flush_tls(io, tls, &mut state),
                None => flush_plain(io, &mut state),
            }
            .and_then(|()| io.flush_pending())
        };
        match sent {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(registration) = self.registration() {
                    registration.clear_write_ready();
                }
            }
            Err(e) => {
                self.close(Some(stream_error(e, "write failed")));
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

    /// True while a TLS session (the stream's, or a proxy tunnel's under
    /// it) holds records not yet sent.
    pub(super) fn tls_wants_write(&self) -> bool {
        self.inner
            .tls
            .borrow()
            .as_ref()
            .is_some_and(|tls| tls.wants_write())
            || self.inner.io.borrow().as_ref().is_some_and(Io::wants_write)
    }

    /// Starts the task that waits for writability while data is queued.
    pub(super) fn ensure_flusher(&self) -> Result<()> {
        {
            let mut state = self.inner.write.borrow_mut();
            let idle = state.buffer.len() == 0 && !self.tls_wants_write();
            // During a handshake, the handshake sends its records and then
            // flushes what was written meanwhile (see `start_tls`).
            if state.flushing || idle || self.closed() || self.tls_handshaking() {
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
                if stream.closed() || !stream.writing() || stream.tls_handshaking() {
                    break;
                }
            }
            stream.inner.write.borrow_mut().flushing = false;
        })
    }

    /// True while written data waits to be sent.
    pub fn writing(&self) -> bool {
        self.inner.write.borrow().buffer.len() > 0 || self.tls_wants_write()
    }
}

/// Plain writes: sends the buffer until it is empty or the socket is full.
pub(super) fn flush_plain(io: &Io, state: &mut WriteState) -> std::io::Result<()> {
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

/// TLS writes: sends the session's records, then hands it more plaintext,
/// until the buffer is empty or the socket is full. Records go first: they
/// may hold the alert of a failure that the next `write_plaintext` reports.
/// Before the handshake is done the plaintext stays in the buffer (the
/// handshake flushes it when it ends).
pub(super) fn flush_tls(
    io: &Io,
    tls: &mut TlsSession,
    state: &mut WriteState,
) -> std::io::Result<()> {
    loop {
        while tls.wants_write() {
            match tls.write_tls(io) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if state.buffer.len() == 0 {
            return Ok(());
        }
        let n = tls.write_plaintext(state.buffer.bytes())?;
        if n == 0 {
            return Ok(()); // handshaking
        }
        state.buffer.consume(n);
        state.written += n as u64;
    }
}
