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
    /// Where reads stand in the server's frames.
    framing: Framing,
    /// Bytes read since the last `Pending` (see `READ_BUDGET`).
    read_since_yield: usize,
    /// The last write that did not leave the buffer at once: waited for
    /// once the backlog passes `WRITE_HIGH_WATER`, and by `poll_flush`.
    pending: Option<(Future<()>, WaitDone<()>)>,
}

impl StreamIo {
    pub(crate) fn new(stream: IOStream) -> StreamIo {
        StreamIo {
            stream,
            framing: Framing::default(),
            read_since_yield: 0,
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        if room == 0 {
            return Poll::Ready(Ok(()));
        }
        if self.read_since_yield >= READ_BUDGET {
            // Let the streams take what was read, and h2 send what they
            // queued, before reading on (see READ_BUDGET).
            self.read_since_yield = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Copied straight from the TLS session's plaintext (or the stream's
        // buffer) into the caller's uninitialised space: nothing is zeroed
        // first, and no copy is made on the way.
        let this = &mut *self;
        let framing = &mut this.framing;
        match this.stream.poll_read_piece(cx, |piece| {
            let n = framing.cut(piece, room);
            buf.put_slice(&piece[..n]);
            n
        }) {
            Poll::Pending => {
                this.read_since_yield = 0;
                Poll::Pending
            }
            Poll::Ready(Ok(n)) => {
                this.read_since_yield += n;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(to_io(error))),
        }
    }
}

/// Bytes read in one go before the connection task lets the loop run
/// the rest (`Pending`, woken again at once). `h2` sends what its streams
/// queued only once a read is `Pending`: without a budget, a connection
/// with many responses waiting read and parsed them all before the
/// requests that their completions started went out, and the server sat
/// idle meanwhile (W6: one write per ~70 responses).
const READ_BUDGET: usize = 16 * 1024;

/// A frame payload at least this long is handed to `h2` on its own (see
/// [`Framing`]).
const LARGE_PAYLOAD: usize = 1024;

/// Where the bytes from the server stand in HTTP/2's framing (RFC 9113
/// §4.1: a 9-byte header whose first 3 bytes give the payload's length,
/// then the payload), so that reads can end where `h2` copies least.
///
/// `h2` reads into one buffer and splits each frame off it; a DATA
/// frame's bytes stay there, shared, until the body has them. When a read
/// ends inside a frame, `h2` makes room for the rest of it by allocating
/// a new buffer and copying what it has of the frame into it: most DATA
/// frames were copied twice that way (seen with perf on W6b, 8 % of the
/// client's time). So a read ends right after the header of a frame with
/// a large payload: `h2` then makes room for exactly that payload in a
/// fresh buffer before any of it arrives, and the payload goes there with
/// no copy but ours. Small frames go on in the same read as before.
///
/// The peer cannot use this against us: it only counts bytes (`h2` checks
/// the frames and their sizes).
#[derive(Default)]
struct Framing {
    /// The header being read, and how much of it came.
    header: [u8; 9],
    header_seen: usize,
    /// What is still to come of the current frame's payload.
    payload_left: usize,
}

impl Framing {
    /// How many of `piece`'s bytes to hand on (at most `room`, at least one
    /// when both are non-zero), counting them as handed on.
    fn cut(&mut self, piece: &[u8], room: usize) -> usize {
        let limit = piece.len().min(room);
        let mut at = 0;
        while at < limit {
            if self.payload_left > 0 {
                let take = self.payload_left.min(limit - at);
                self.payload_left -= take;
                at += take;
                continue;
            }
            let take = (self.header.len() - self.header_seen).min(limit - at);
            self.header[self.header_seen..self.header_seen + take]
                .copy_from_slice(&piece[at..at + take]);
            self.header_seen += take;
            at += take;
            if self.header_seen == self.header.len() {
                self.header_seen = 0;
                let [a, b, c, ..] = self.header;
                self.payload_left = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                if self.payload_left >= LARGE_PAYLOAD {
                    break;
                }
            }
        }
        at
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

#[cfg(test)]
mod tests {
    use super::{Framing, LARGE_PAYLOAD};

    /// A frame header (RFC 9113 §4.1) for a DATA frame of `len` bytes.
    fn frame(len: usize) -> Vec<u8> {
        let mut bytes = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            0,
            0,
            0,
            0,
            0,
            1,
        ];
        bytes.resize(9 + len, b'x');
        bytes
    }

    /// Hands `input` on in pieces of `piece` bytes with `room` bytes of
    /// space a read: every byte once, in order; returns where reads ended.
    fn cuts(input: &[u8], piece: usize, room: usize) -> Vec<usize> {
        let mut framing = Framing::default();
        let (mut at, mut ends) = (0, Vec::new());
        while at < input.len() {
            let end = (at + piece).min(input.len());
            let n = framing.cut(&input[at..end], room);
            assert!(n >= 1 && n <= room && n <= end - at, "a read took {n}");
            at += n;
            ends.push(at);
        }
        ends
    }

    #[test]
    fn a_read_ends_after_a_large_frames_header() {
        let mut input = frame(10);
        input.extend(frame(LARGE_PAYLOAD));
        input.extend(frame(0));
        input.extend(frame(3));
        let large_header_end = 19 + 9;
        let ends = cuts(&input, 64 * 1024, 64 * 1024);
        // The small frame and the large header; the large payload and the
        // small frames after it.
        assert_eq!(ends, vec![large_header_end, input.len()]);
    }

    #[test]
    fn headers_split_across_pieces_are_followed() {
        let mut input = Vec::new();
        for len in [5000, 1, 16384, 0, 2000, 8192] {
            input.extend(frame(len));
        }
        for piece in [1, 2, 5, 9, 10, 100, 4096, 16384] {
            for room in [1, 7, 9, 8192, 1 << 20] {
                let ends = cuts(&input, piece, room);
                assert_eq!(ends.last(), Some(&input.len()));
                // Every large frame's header ends a read.
                let mut at = 0;
                for len in [5000, 1, 16384, 0, 2000, 8192] {
                    if len >= LARGE_PAYLOAD {
                        assert!(
                            ends.contains(&(at + 9)),
                            "piece {piece} room {room}: {ends:?}"
                        );
                    }
                    at += 9 + len;
                }
            }
        }
    }
}
