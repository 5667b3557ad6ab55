//! Where a response's body goes, whatever the HTTP version: decoded
//! (gzip, deflate, brotli, zstd) when asked, counted against max_body_size,
//! then to the streaming callback (a pausing one waited for between
//! pieces) or the body buffer. HTTP/1.1 reads into it from its framing,
//! HTTP/2 from DATA frames.

use std::rc::Rc;

use crate::error::{Error, Result};
use crate::http::body::Body;
use crate::http::body_pool::BodyPool;
use crate::http::decompress::{Decompressor, MAX_STREAMED_CHUNK};
use crate::http::h1::connection::Limits;
use crate::http::h1::response_head::ResponseHead;
use crate::http::request::{HTTPRequest, StreamingCallback};
use crate::http::{fetch_error, FetchErrorKind};

/// Where body bytes go: decoded (gzip/deflate) when asked, counted against
/// max_body_size, then to the streaming callback or the buffer.
pub(crate) struct BodySink<'a> {
    req: &'a HTTPRequest,
    pool: &'a BodyPool,
    /// Boxed: a decoder's state is large and most responses have none;
    /// inline, it would weigh on every exchange's future.
    decoder: Option<Box<Decompressor>>,
    discard: bool,
    pub(crate) body: Body,
    received: u64,
    delivered: u64,
    pub(crate) max: u64,
    scratch: Vec<u8>,
    /// Bytes for a pausing streaming callback, handed on by
    /// `wait_for_consumer` a piece at a time, waiting whenever it pauses.
    held: Vec<u8>,
    /// Compressed bytes read but not yet decoded, while a pausing callback
    /// has `held` bytes to take first.
    undecoded: Vec<u8>,
}

/// The compressed bytes read at once while a pausing streaming callback
/// holds reading back.
const PAUSED_DECODE_STEP: usize = 1024;
/// Decoded bytes held for a pausing callback before decoding stops until
/// it has taken them: brotli and zstd expand far more than deflate (a few
/// compressed bytes can stand for megabytes), so the compressed input is
/// fed a few bytes at a time ([`Decompressor::paused_step`]) and the rest
/// kept in `undecoded` once this much waits.
const PAUSED_HOLD: usize = 4 * MAX_STREAMED_CHUNK;

impl<'a> BodySink<'a> {
    pub(crate) fn new(
        req: &'a HTTPRequest,
        head: &ResponseHead,
        has_body: bool,
        limits: Limits,
        discard: bool,
        pool: &'a BodyPool,
    ) -> Self {
        // No body, no decoder: a HEAD, 204 or 304 that names its coding is
        // simply returned.
        let decoder = if req.decompress_response && has_body && !discard {
            head.headers
                .get("Content-Encoding")
                .and_then(|coding| {
                    // A pausing callback gets decoded bytes from the sink
                    // (which waits between pieces), a plain one straight
                    // from the decoder.
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
        BodySink {
            req,
            pool,
            decoder,
            discard,
            body: Body::default(),
            received: 0,
            delivered: 0,
            max: limits.max_body_size,
            scratch: Vec::new(),
            held: Vec::new(),
            undecoded: Vec::new(),
        }
    }

    pub(crate) fn pausing(&self) -> bool {
        matches!(
            self.req.streaming_callback,
            Some(StreamingCallback::Pausing(_))
        )
    }

    /// How much to read at once (at most `max`): little while a pausing
    /// callback gets decoded bytes, so that what one read decodes to (held
    /// until the callback takes it) stays small.
    pub(crate) fn read_size(&self, max: usize) -> usize {
        if self.pausing() && self.decoder.is_some() {
            max.min(PAUSED_DECODE_STEP)
        } else {
            max
        }
    }

    /// Whether bytes wait for a pausing callback.
    pub(crate) fn must_wait(&self) -> bool {
        !self.held.is_empty()
    }

    /// Hands the held bytes to the pausing callback in pieces of at most
    /// 64 KiB, waiting for each future it returns before the next piece;
    /// the first error fails the fetch. No callback runs while one waits.
    pub(crate) async fn wait_for_consumer(&mut self) -> Result<()> {
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
        // Then what was read but not decoded yet, a hold at a time.
        if !self.undecoded.is_empty() {
            self.decode_undecoded()?;
            if !self.held.is_empty() {
                return Box::pin(self.wait_for_consumer()).await;
            }
        }
        Ok(())
    }

    /// Decodes `undecoded` a step at a time until it is done or
    /// [`PAUSED_HOLD`] bytes wait for the pausing callback.
    pub(crate) fn decode_undecoded(&mut self) -> Result<()> {
        let Some(step) = self.decoder.as_ref().map(|d| d.paused_step()) else {
            return Ok(());
        };
        let input = std::mem::take(&mut self.undecoded);
        let mut decoded = std::mem::take(&mut self.scratch);
        let mut at = 0;
        let mut outcome = Ok(());
        while at < input.len() && self.held.len() < PAUSED_HOLD && outcome.is_ok() {
            let end = at.saturating_add(step).min(input.len());
            decoded.clear();
            outcome = match self.decoder.as_mut() {
                Some(decoder) => decoder.feed(&input[at..end], &mut decoded),
                None => Ok(()),
            }
            .and_then(|()| self.deliver(&decoded));
            at = end;
        }
        self.scratch = decoded;
        self.undecoded = input;
        self.undecoded.drain(..at);
        outcome
    }

    /// Sizes the buffer for a body of known length (within the limit, and
    /// never more than 16 MiB up front: the length is the server's claim).
    /// A length over the limit is refused before any of it is read.
    pub(crate) fn expect(&mut self, length: u64) -> Result<()> {
        if length > self.max {
            return Err(self.announced_too_large());
        }
        if self.keeps_bytes_unchanged() {
            let up_front = length.min(16 * 1024 * 1024) as usize;
            let reused = self.pool.take(Body::capacity_for(up_front));
            self.body = Body::aligned_in(reused.unwrap_or_default(), up_front);
        }
        Ok(())
    }

    /// The body buffer, when bytes go there unchanged (no decoding, no
    /// streaming callback, not discarded): a body of known length is then
    /// read straight into it. Its length was checked by `expect`.
    pub(crate) fn direct(&mut self) -> Option<&mut Vec<u8>> {
        self.keeps_bytes_unchanged()
            .then_some(self.body.buffer_mut())
    }

    /// Bytes go to the body buffer as they arrive.
    pub(crate) fn keeps_bytes_unchanged(&self) -> bool {
        self.req.streaming_callback.is_none() && self.decoder.is_none() && !self.discard
    }

    /// Accounts for `n` bytes read straight into the body.
    pub(crate) fn count_direct(&mut self, n: usize) {
        self.received += n as u64;
        self.delivered += n as u64;
    }

    /// The body grew past the limit (Tornado's words, then the limit).
    pub(crate) fn too_large(&self) -> Error {
        fetch_error(
            FetchErrorKind::BodyTooLarge,
            format!("Body too long (over max_body_size, {} bytes)", self.max),
        )
    }

    /// The server announced more than the limit (Tornado's words).
    pub(crate) fn announced_too_large(&self) -> Error {
        fetch_error(
            FetchErrorKind::BodyTooLarge,
            format!(
                "Content-Length too long (over max_body_size, {} bytes)",
                self.max
            ),
        )
    }

    pub(crate) fn accept(&mut self, data: &[u8]) -> Result<()> {
        self.received += data.len() as u64;
        if self.received > self.max {
            return Err(self.too_large());
        }
        if self.discard {
            return Ok(());
        }
        if self.pausing() && self.decoder.is_some() {
            self.undecoded.extend_from_slice(data);
            return self.decode_undecoded();
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

    pub(crate) fn deliver(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.delivered += data.len() as u64;
        if self.delivered > self.max {
            return Err(self.too_large());
        }
        match &self.req.streaming_callback {
            Some(StreamingCallback::Plain(callback)) => callback(data),
            Some(StreamingCallback::Pausing(_)) => self.held.extend_from_slice(data),
            None => self.body.buffer_mut().extend_from_slice(data),
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.discard {
            return Ok(());
        }
        if let Some(decoder) = self.decoder.as_mut() {
            let mut tail = Vec::new();
            // Normally empty: wait_for_consumer decodes all of it.
            let rest = std::mem::take(&mut self.undecoded);
            decoder.feed(&rest, &mut tail)?;
            decoder.finish_into(&mut tail)?;
            self.deliver(&tail)?;
        }
        Ok(())
    }
}
