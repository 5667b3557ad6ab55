//! Where an HTTP/2 response's DATA goes: decoded (gzip/deflate) when asked,
//! counted against max_body_size, then to the streaming callback or the
//! body. The same rules and words as the HTTP/1.1 exchange's sink.

use std::rc::Rc;

use crate::error::{Error, Result};
use crate::http::body::Body;
use crate::http::body_pool::BodyPool;
use crate::http::decompress::{Decompressor, MAX_STREAMED_CHUNK};
use crate::http::h1::connection::Limits;
use crate::http::h1::response_head::ResponseHead;
use crate::http::request::{HTTPRequest, StreamingCallback};
use crate::http::{fetch_error, FetchErrorKind};

pub(super) struct BodySink<'a> {
    req: &'a HTTPRequest,
    /// Boxed: a decoder's state is large and most responses have none.
    decoder: Option<Box<Decompressor>>,
    /// A response that will be followed (a redirect): its body is dropped.
    discard: bool,
    body: Body,
    received: u64,
    delivered: u64,
    max: u64,
    scratch: Vec<u8>,
    /// Bytes for a pausing streaming callback, handed on by
    /// `wait_for_consumer`.
    held: Vec<u8>,
}

impl<'a> BodySink<'a> {
    /// A sink for `head`'s body; a Content-Length over the limit is refused
    /// before any of the body is read.
    pub(super) fn new(
        req: &'a HTTPRequest,
        head: &ResponseHead,
        limits: Limits,
        discard: bool,
        pool: &BodyPool,
    ) -> Result<BodySink<'a>> {
        let bodyless = req.method == "HEAD"
            || matches!(head.code, 204 | 304)
            || (100..200).contains(&head.code);
        let decoder = if req.decompress_response && !bodyless && !discard {
            head.headers
                .get("content-encoding")
                .and_then(|coding| {
                    let stream = match &req.streaming_callback {
                        Some(StreamingCallback::Plain(f)) => Some(Rc::clone(f)),
                        _ => None,
                    };
                    Decompressor::new(coding, limits.max_body_size, stream)
                })
                .map(Box::new)
        } else {
            None
        };
        let mut sink = BodySink {
            req,
            decoder,
            discard,
            body: Body::default(),
            received: 0,
            delivered: 0,
            max: limits.max_body_size,
            scratch: Vec::new(),
            held: Vec::new(),
        };
        let length = head
            .headers
            .get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = length.filter(|_| !bodyless) {
            if length > sink.max {
                return Err(fetch_error(
                    FetchErrorKind::BodyTooLarge,
                    format!(
                        "Content-Length too long (over max_body_size, {} bytes)",
                        sink.max
                    ),
                ));
            }
            if req.streaming_callback.is_none() && sink.decoder.is_none() && !discard {
                // Sized once up front (at most 16 MiB: the length is the
                // server's claim).
                let up_front = length.min(16 * 1024 * 1024) as usize;
                let reused = pool.take(Body::capacity_for(up_front));
                sink.body = Body::aligned_in(reused.unwrap_or_default(), up_front);
            }
        }
        Ok(sink)
    }

    pub(super) fn into_body(self) -> Body {
        self.body
    }

    /// Whether bytes wait for a pausing callback.
    pub(super) fn must_wait(&self) -> bool {
        !self.held.is_empty()
    }

    /// Hands the held bytes to the pausing callback in pieces of at most
    /// 64 KiB, waiting for each future it returns before the next.
    pub(super) async fn wait_for_consumer(&mut self) -> Result<()> {
        let held = std::mem::take(&mut self.held);
        if let Some(callback) = &self.req.streaming_callback {
            for piece in held.chunks(MAX_STREAMED_CHUNK) {
                if let Some(pause) = callback.call(piece)? {
                    pause.value().await?;
                }
            }
        }
        self.held = held;
        self.held.clear();
        Ok(())
    }

    fn too_large(&self) -> Error {
        fetch_error(
            FetchErrorKind::BodyTooLarge,
            format!("Body too long (over max_body_size, {} bytes)", self.max),
        )
    }

    /// Takes one DATA frame's bytes.
    pub(super) fn accept(&mut self, data: &[u8]) -> Result<()> {
        self.received += data.len() as u64;
        if self.received > self.max {
            return Err(self.too_large());
        }
        if self.discard {
            return Ok(());
        }
        match self.decoder.as_mut() {
            Some(decoder) => {
                let mut decoded = std::mem::take(&mut self.scratch);
                decoded.clear();
                decoder.feed(data, &mut decoded)?;
                self.deliver(&decoded)?;
                self.scratch = decoded;
                Ok(())
            }
            None => self.deliver(data),
        }
    }

    fn deliver(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.delivered += data.len() as u64;
        if self.delivered > self.max {
            return Err(self.too_large());
        }
        match &self.req.streaming_callback {
            Some(StreamingCallback::Plain(callback)) => {
                data.chunks(MAX_STREAMED_CHUNK).for_each(|c| callback(c))
            }
            Some(StreamingCallback::Pausing(_)) => self.held.extend_from_slice(data),
            None => self.body.buffer_mut().extend_from_slice(data),
        }
        Ok(())
    }

    /// The end of the body: what the decoder still holds.
    pub(super) fn finish(&mut self) -> Result<()> {
        if self.discard {
            return Ok(());
        }
        if let Some(decoder) = self.decoder.as_mut() {
            let mut tail = Vec::new();
            decoder.finish_into(&mut tail)?;
            self.deliver(&tail)?;
        }
        Ok(())
    }
}
