//! tokio's `AsyncRead`/`AsyncWrite` over an [`IOStream`] (plain TCP or its
//! rustls session), for the `h2` crate. Only the traits come from tokio:
//! no tokio runtime, timer or reactor runs. Readiness comes from the
//! library's own loop (the stream's edge-triggered registration wakes the
//! connection task), so the `h2` connection is just another task there.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Error;
use crate::future::{Future, WaitDone};
use crate::iostream::IOStream;

/// While more than this waits in the stream's write buffer (the socket
/// took no more), writes are refused with `Pending` until it drains: the
/// `h2` connection then stops producing frames, and a body producer waiting
/// for send capacity waits with it (flow control down to the socket).
const WRITE_HIGH_WATER: usize = 256 * 1024;

/// An [`IOStream`] as tokio's I/O traits.
pub(crate) struct StreamIo {
    stream: IOStream,
    /// The last write that did not leave the buffer at once: waited for
    /// once the backlog passes `WRITE_HIGH_WATER`, and by `poll_flush`.
    pending: Option<(Future<()>, WaitDone<()>)>,
}

impl StreamIo {
    pub(crate) fn new(stream: IOStream) -> StreamIo {
        StreamIo {
            stream,
            pending: None,
        }
    }

    /// Waits for the last buffered write to leave the buffer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((future, wait)) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if Pin::new(wait).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let failed = future.error();
        self.pending = None;
        match failed {
            Some(error) => Poll::Ready(Err(to_io(error))),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A library error as an `io::Error` (the kind tells `h2` a closed stream
/// from other failures; the message is kept).
fn to_io(error: Error) -> io::Error {
    let kind = match error.code() {
        crate::error::Code::CLOSED => io::ErrorKind::BrokenPipe,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error.message().to_string())
}

impl AsyncRead for StreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Copied straight into the caller's (uninitialised) space: nothing
        // is zeroed first.
        let max = buf.remaining();
        match self
            .stream
            .poll_read_available(cx, max, |data| buf.put_slice(data))
        {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => Poll::Ready(Err(to_io(error))),
        }
    }
}

impl AsyncWrite for StreamIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stream.write_backlog() > WRITE_HIGH_WATER {
            // The last write covers everything buffered: once it is out,
            // the buffer is empty.
            std::task::ready!(self.poll_pending(cx))?;
        }
        let written = self.stream.write(data).map_err(to_io)?;
        if !written.done() {
            let wait = written.wait();
            self.pending = Some((written, wait));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_pending(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection task closes the stream once `h2` is done with it.
        self.poll_pending(cx)
    }
}

impl Drop for StreamIo {
    fn drop(&mut self) {
        // The `h2` connection is over (finished, failed or dropped): the
        // socket goes with it.
        self.stream.close(None);
    }
}
