//! Sending a request body on an HTTP/2 stream, with h2's flow control:
//! every piece waits for send capacity (the server's stream and connection
//! windows, and room in h2's send buffer) before it goes.
//!
//! - a fixed body, and a pulled producer (each chunk pulled once the one
//!   before was sent);
//! - a writing producer (Tornado's `body_producer(write)`): its writes go
//!   into an [`H2Outlet`] queue that the exchange drains as capacity comes;
//!   each write's future is done once its bytes were handed to h2, so a
//!   producer that waits for its writes is paused while the server's window
//!   is closed.
//!
//! Failures are told apart ([`UploadError`]): the producer's own (its
//! error, a Content-Length it broke) fail the fetch; the stream's (the
//! server reset it, perhaps after answering) leave the answer to count.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future as _};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use ::h2::SendStream;
use bytes::Bytes;

use super::{h2_error, ConnectionState};
use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::http::request::HTTPRequest;
use crate::http::upload::{
    over_length, short_of_length, BodyOutlet, BodyProducer, BodyWriter, CloseOnDrop, WriteProducer,
};
use crate::http::validate::declared_length;
use crate::http::{fetch_error, FetchErrorKind};
use crate::ioloop::LoopRef;

/// The most a writing producer may have queued and not yet sent (it wrote
/// without waiting for its writes): past it, writes fail. As the default
/// `max_buffer_size` bounds an HTTP/1.1 stream's write buffer.
const MAX_QUEUED: usize = 100 * 1024 * 1024;

/// Why an upload stopped.
pub(crate) enum UploadError {
    /// The body's own failure (a producer's error, a length it broke):
    /// it ends the fetch.
    Producer(Error),
    /// The stream's (reset, connection gone): the server's answer, if one
    /// comes, still counts, and the response's own error tells the rest.
    Stream,
}

/// Sends the request body on `upload` and ends the stream.
pub(crate) async fn send_body(
    upload: &mut SendStream<Bytes>,
    req: &HTTPRequest,
    state: &ConnectionState,
    lp: &LoopRef,
) -> std::result::Result<(), UploadError> {
    if let Some(body) = &req.body {
        send_data(upload, Bytes::copy_from_slice(body), state)
            .await
            .map_err(|_| UploadError::Stream)?;
        return finish_upload(upload);
    }
    match &req.body_producer {
        Some(BodyProducer::Pull(pull)) => {
            let declared = declared_length(req).map_err(UploadError::Producer)?;
            let mut sent = 0u64;
            while let Some(chunk) = pull().map_err(UploadError::Producer)? {
                sent += chunk.len() as u64;
                if let Some(length) = declared.filter(|&length| sent > length) {
                    return Err(UploadError::Producer(over_length(length)));
                }
                if !chunk.is_empty() {
                    send_data(upload, Bytes::from(chunk), state)
                        .await
                        .map_err(|_| UploadError::Stream)?;
                }
            }
            if let Some(length) = declared.filter(|&length| sent < length) {
                return Err(UploadError::Producer(short_of_length(sent, length)));
            }
            finish_upload(upload)
        }
        Some(BodyProducer::Write(produce)) => {
            send_written(upload, produce, req, state, lp).await?;
            finish_upload(upload)
        }
        None => finish_upload(upload),
    }
}

/// Runs a writing producer and sends what it writes, as capacity comes.
async fn send_written(
    upload: &mut SendStream<Bytes>,
    produce: &WriteProducer,
    req: &HTTPRequest,
    state: &ConnectionState,
    lp: &LoopRef,
) -> std::result::Result<(), UploadError> {
    let outlet = Rc::new(H2Outlet::new(
        lp,
        declared_length(req).map_err(UploadError::Producer)?,
    ));
    // Whatever way this ends, the writer is closed (later writes fail) and
    // writes still queued fail: a producer waiting on one is not left
    // hanging.
    let _ended = EndOutlet(Rc::clone(&outlet));
    let as_outlet: Rc<dyn BodyOutlet> = outlet.clone();
    let writer = CloseOnDrop(BodyWriter::new(lp, as_outlet));
    let produced = produce(writer.0.clone());
    let mut produced = pin!(produced.value());
    let mut outcome: Option<Result<()>> = None;
    loop {
        // Each stays queued until sent: if the upload ends meanwhile, its
        // write fails with the rest.
        while let Some((piece, written)) = outlet.front() {
            let mut sending = pin!(send_data(upload, piece, state));
            // The producer is watched meanwhile: its failure ends the
            // upload at once, not once the window opens.
            let sent = poll_fn(|cx| {
                if outcome.is_none() {
                    if let Poll::Ready(done) = produced.as_mut().poll(cx) {
                        if let Err(error) = done {
                            return Poll::Ready(Err(UploadError::Producer(error)));
                        }
                        outcome = Some(Ok(()));
                    }
                }
                sending.as_mut().poll(cx).map(|sent| match sent {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        let _ = written.set_error(error);
                        Err(UploadError::Stream)
                    }
                })
            })
            .await;
            sent?;
            outlet.next();
            let _ = written.set_result(());
        }
        if let Some(outcome) = outcome {
            // Everything written before the producer finished was sent.
            let refused = writer.0.close();
            outcome.map_err(UploadError::Producer)?;
            if let Some(error) = refused {
                return Err(UploadError::Producer(error));
            }
            break;
        }
        // Wait for a write, or for the producer to say the body is complete.
        poll_fn(|cx| {
            if outlet.has_queued() {
                return Poll::Ready(());
            }
            if let Poll::Ready(done) = produced.as_mut().poll(cx) {
                outcome = Some(done);
                return Poll::Ready(());
            }
            outlet.wake_me(cx.waker());
            Poll::Pending
        })
        .await;
    }
    if let Some(length) = outlet.declared.filter(|&l| outlet.written.get() < l) {
        return Err(UploadError::Producer(short_of_length(
            outlet.written.get(),
            length,
        )));
    }
    Ok(())
}

/// A writing producer's chunks waiting for send capacity.
struct H2Outlet {
    lp: LoopRef,
    /// The caller's Content-Length, which the writes must add up to.
    declared: Option<u64>,
    written: Cell<u64>,
    queued_bytes: Cell<usize>,
    /// Each chunk with the future its write returned.
    queue: RefCell<VecDeque<(Bytes, Future<()>)>>,
    /// The exchange waiting for a write.
    waker: RefCell<Option<Waker>>,
}

impl H2Outlet {
    fn new(lp: &LoopRef, declared: Option<u64>) -> H2Outlet {
        H2Outlet {
            lp: lp.clone(),
            declared,
            written: Cell::new(0),
            queued_bytes: Cell::new(0),
            queue: RefCell::new(VecDeque::new()),
            waker: RefCell::new(None),
        }
    }

    /// The next chunk to send (it stays queued).
    fn front(&self) -> Option<(Bytes, Future<()>)> {
        self.queue.borrow().front().cloned()
    }

    /// Takes the next chunk off the queue.
    fn next(&self) -> Option<(Bytes, Future<()>)> {
        let next = self.queue.borrow_mut().pop_front()?;
        self.queued_bytes
            .set(self.queued_bytes.get() - next.0.len());
        Some(next)
    }

    fn has_queued(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    fn wake_me(&self, waker: &Waker) {
        let mut kept = self.waker.borrow_mut();
        if !kept.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *kept = Some(waker.clone());
        }
    }
}

impl BodyOutlet for H2Outlet {
    fn write(&self, chunk: &[u8]) -> Result<Future<()>> {
        let written = self.written.get() + chunk.len() as u64;
        if let Some(length) = self.declared.filter(|&l| written > l) {
            return Err(over_length(length));
        }
        if self.queued_bytes.get() + chunk.len() > MAX_QUEUED {
            return Err(fetch_error(
                FetchErrorKind::InvalidRequest,
                format!(
                    "the body producer wrote more than {MAX_QUEUED} bytes ahead of the \
                     HTTP/2 stream's window (wait for each write's future)"
                ),
            ));
        }
        self.written.set(written);
        self.queued_bytes.set(self.queued_bytes.get() + chunk.len());
        let done = Future::new(&self.lp);
        self.queue
            .borrow_mut()
            .push_back((Bytes::copy_from_slice(chunk), done.clone()));
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
        Ok(done)
    }
}

/// Fails the writes still queued when the upload ends early.
struct EndOutlet(Rc<H2Outlet>);

impl Drop for EndOutlet {
    fn drop(&mut self) {
        while let Some((_, written)) = self.0.next() {
            let _ = written.set_error(Error::new(
                Code::CLOSED,
                "the upload is over: the HTTP/2 stream ended before this write was sent",
            ));
        }
    }
}

fn finish_upload(upload: &mut SendStream<Bytes>) -> std::result::Result<(), UploadError> {
    upload
        .send_data(Bytes::new(), true)
        .map_err(|_| UploadError::Stream)
}

/// Sends `data` as DATA frames as the server's window allows.
async fn send_data(
    upload: &mut SendStream<Bytes>,
    mut data: Bytes,
    state: &ConnectionState,
) -> Result<()> {
    while !data.is_empty() {
        upload.reserve_capacity(data.len());
        let granted = poll_fn(|cx| {
            let now = upload.capacity();
            if now > 0 {
                return Poll::Ready(Ok(now));
            }
            match upload.poll_capacity(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(n))) => Poll::Ready(Ok(n)),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Err(h2_error(&e, Some(state)))),
                Poll::Ready(None) => Poll::Ready(Err(fetch_error(
                    FetchErrorKind::Closed,
                    "the HTTP/2 stream closed while its body was being sent",
                ))),
            }
        })
        .await?;
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        upload
            .send_data(piece, false)
            .map_err(|e| h2_error(&e, Some(state)))?;
    }
    Ok(())
}
