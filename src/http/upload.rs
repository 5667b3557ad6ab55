//! Sending a request body: a fixed body, or a streamed one from a
//! [`BodyProducer`]: pulled chunk by chunk, or written by Tornado's
//! `body_producer(write)` through a [`BodyWriter`] whose writes complete
//! when their bytes reach the socket (flow control). A streamed body goes
//! chunk-framed, or unframed when the caller set a Content-Length, which it
//! must then match exactly.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::request::HTTPRequest;
use super::validate::declared_length;
use super::{fetch_error, FetchErrorKind};
use crate::error::{Error, Result};
use crate::future::Future;
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;

/// Pulls the next chunk: `Ok(None)` ends the body. Each chunk is pulled
/// once the one before has reached the socket.
pub type PullProducer = Rc<dyn Fn() -> Result<Option<Vec<u8>>>>;

/// Tornado's `body_producer(write)`: called once per send with a writer;
/// the body is complete when the returned future resolves (its error fails
/// the fetch). It may write at once or later, from any callback on the
/// loop; it can wait for each write's future before the next (flow
/// control), and is resumed by whatever it waits on.
pub type WriteProducer = Rc<dyn Fn(BodyWriter) -> Future<()>>;

/// Where a streamed body comes from.
#[derive(Clone)]
pub enum BodyProducer {
    /// Pulled chunk by chunk (see [`PullProducer`]; [`BodyProducer::pull`]).
    Pull(PullProducer),
    /// Writes through a [`BodyWriter`], as Tornado's `body_producer(write)`
    /// (see [`WriteProducer`]; [`BodyProducer::writer`]).
    Write(WriteProducer),
}

impl BodyProducer {
    /// A producer pulled chunk by chunk (`Ok(None)`: the end).
    pub fn pull(f: impl Fn() -> Result<Option<Vec<u8>>> + 'static) -> BodyProducer {
        BodyProducer::Pull(Rc::new(f))
    }

    /// A producer that writes (Tornado's `body_producer(write)`).
    pub fn writer(f: impl Fn(BodyWriter) -> Future<()> + 'static) -> BodyProducer {
        BodyProducer::Write(Rc::new(f))
    }
}

fn invalid_request(detail: String) -> Error {
    fetch_error(FetchErrorKind::InvalidRequest, detail)
}

/// How a streamed body is framed on the wire.
#[derive(Clone, Copy)]
enum Framing {
    Chunked,
    /// The caller's Content-Length: raw bytes, exactly this many.
    Length(u64),
}

/// Where a [`BodyWriter`]'s writes go: an HTTP/1.1 stream ([`Upload`],
/// framed), or an HTTP/2 stream (`h2::upload`, sent as its windows open).
pub(crate) trait BodyOutlet {
    /// Sends one chunk (not empty); the future is done once the chunk left,
    /// which is when a producer that respects flow control writes the next.
    fn write(&self, chunk: &[u8]) -> Result<Future<()>>;
}

/// Counts a streamed body against its framing and writes it.
struct Upload {
    stream: IOStream,
    framing: Framing,
    sent: Cell<u64>,
}

impl Upload {
    fn new(stream: &IOStream, req: &HTTPRequest) -> Result<Upload> {
        let framing = declared_length(req)?.map_or(Framing::Chunked, Framing::Length);
        Ok(Upload {
            stream: stream.clone(),
            framing,
            sent: Cell::new(0),
        })
    }

    /// Writes one chunk; its future is done when the bytes reached the socket.
    fn write(&self, chunk: &[u8]) -> Result<Future<()>> {
        let sent = self.sent.get() + chunk.len() as u64;
        match self.framing {
            Framing::Length(length) if sent > length => Err(over_length(length)),
            Framing::Length(_) => {
                self.sent.set(sent);
                self.stream.write(chunk)
            }
            Framing::Chunked => {
                self.sent.set(sent);
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(chunk);
                framed.extend_from_slice(b"\r\n");
                self.stream.write(&framed)
            }
        }
    }

    /// Ends the body: the last chunk, or the check that the length was met.
    async fn finish(&self) -> Result<()> {
        match self.framing {
            Framing::Length(length) if self.sent.get() < length => {
                Err(short_of_length(self.sent.get(), length))
            }
            Framing::Length(_) => Ok(()),
            Framing::Chunked => self.stream.write(b"0\r\n\r\n")?.value().await,
        }
    }
}

impl BodyOutlet for Upload {
    fn write(&self, chunk: &[u8]) -> Result<Future<()>> {
        Upload::write(self, chunk)
    }
}

/// The error for bytes past a declared Content-Length.
pub(crate) fn over_length(length: u64) -> Error {
    invalid_request(format!(
        "the body producer gave more than the {length} bytes of its Content-Length"
    ))
}

/// The error for a body that ended short of its declared Content-Length.
pub(crate) fn short_of_length(sent: u64, length: u64) -> Error {
    invalid_request(format!(
        "the body producer gave {sent} of the {length} bytes of its Content-Length"
    ))
}

/// Sends `req`'s body on `stream` (after its head).
pub(crate) async fn send_body(stream: &IOStream, req: &HTTPRequest) -> Result<()> {
    if let Some(body) = &req.body {
        if !body.is_empty() {
            stream.write(body)?.value().await?;
        }
        return Ok(());
    }
    let Some(producer) = &req.body_producer else {
        return Ok(());
    };
    let upload = Rc::new(Upload::new(stream, req)?);
    match producer {
        BodyProducer::Pull(pull) => {
            // Each chunk waits for the one before to leave, so a fast
            // producer cannot grow the write buffer without bound.
            while let Some(chunk) = pull()? {
                if !chunk.is_empty() {
                    upload.write(&chunk)?.value().await?;
                }
            }
        }
        BodyProducer::Write(write) => {
            // Closed however this ends (a timeout or cancel drops this
            // future): a producer holding the writer then writes nowhere.
            let outlet: Rc<dyn BodyOutlet> = upload.clone();
            let writer = CloseOnDrop(BodyWriter::new(stream.loop_ref(), outlet));
            let produced = write(writer.0.clone()).value().await;
            let refused = writer.0.close();
            produced?;
            if let Some(error) = refused {
                return Err(error);
            }
        }
    }
    upload.finish().await
}

/// What a [`WriteProducer`] writes with. Cheap to clone; once the producer's
/// future is done (or the fetch ended) every write fails.
#[derive(Clone)]
pub struct BodyWriter {
    state: Rc<WriterState>,
}

struct WriterState {
    lp: LoopRef,
    /// None once the upload is over.
    upload: RefCell<Option<Rc<dyn BodyOutlet>>>,
    /// The first write refused (past the Content-Length): the fetch's error.
    refused: RefCell<Option<Error>>,
}

impl BodyWriter {
    /// A writer whose writes go to `outlet` until it is closed.
    pub(crate) fn new(lp: &LoopRef, outlet: Rc<dyn BodyOutlet>) -> BodyWriter {
        BodyWriter {
            state: Rc::new(WriterState {
                lp: lp.clone(),
                upload: RefCell::new(Some(outlet)),
                refused: RefCell::new(None),
            }),
        }
    }

    /// Sends `data` (copied); the future is done once it reached the socket
    /// (over HTTP/2: once the stream's window let it go), which is when a
    /// producer that respects flow control writes the next part. It fails when the upload is over, when the connection failed,
    /// and for bytes past the caller's Content-Length (that error also
    /// fails the fetch).
    pub fn write(&self, data: &[u8]) -> Future<()> {
        let outcome = match &*self.state.upload.borrow() {
            None => Err(Error::new(
                crate::error::Code::CLOSED,
                "the upload is over: write after the producer finished or the fetch ended",
            )),
            Some(_) if data.is_empty() => Ok(Future::ready(&self.state.lp, ())),
            Some(upload) => upload.write(data),
        };
        outcome.unwrap_or_else(|error| {
            if error.code() != crate::error::Code::CLOSED {
                self.state.refused.borrow_mut().get_or_insert(error.clone());
            }
            let failed = Future::new(&self.state.lp);
            let _ = failed.set_error(error);
            failed
        })
    }

    /// The loop the upload runs on.
    pub fn loop_ref(&self) -> &LoopRef {
        &self.state.lp
    }

    /// Whether writes still go to the connection.
    pub fn is_open(&self) -> bool {
        self.state.upload.borrow().is_some()
    }

    /// Ends the upload for this writer; returns a write it refused.
    pub(crate) fn close(&self) -> Option<Error> {
        self.state.upload.borrow_mut().take();
        self.state.refused.borrow_mut().take()
    }
}

/// Closes a writer when the send it belongs to ends.
pub(crate) struct CloseOnDrop(pub(crate) BodyWriter);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}
