//! Content-Encoding decoding (gzip, deflate) under a decompressed-size
//! limit, with decoded bytes handed on in bounded pieces. Protocol-neutral:
//! every HTTP version decodes bodies the same way.

use std::io::Write;
use std::rc::Rc;

use super::zstd_writer::ZstdWriter;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

use super::request::ChunkCallback;
use super::{fetch_error, FetchErrorKind};
use crate::error::{Error, Result};
use crate::http::protocol;

/// The most decoded bytes handed to a streaming callback at once
/// (Tornado's chunk size): memory stays bounded whatever the ratio.
pub const MAX_STREAMED_CHUNK: usize = 64 * 1024;

/// Where decoded bytes go: kept for the caller, or straight on to a
/// streaming callback (one that never pauses) as the decoder produces them.
enum Output {
    Keep(Vec<u8>),
    Stream(Rc<ChunkCallback>),
}

/// A `Write` that takes what a decoder produces and refuses more than
/// `max` bytes in all: a gzip bomb stops here, not in memory.
struct CappedSink {
    out: Output,
    total: u64,
    max: u64,
}

impl Write for CappedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.total + buf.len() as u64 > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                "over the limit",
            ));
        }
        self.total += buf.len() as u64;
        match &mut self.out {
            Output::Keep(kept) => kept.extend_from_slice(buf),
            Output::Stream(callback) => buf.chunks(MAX_STREAMED_CHUNK).for_each(|c| callback(c)),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CappedSink {
    /// Moves what was kept to `out` (nothing when streaming).
    fn hand_over(&mut self, out: &mut Vec<u8>) {
        if let Output::Keep(kept) = &mut self.out {
            out.append(kept);
        }
    }
}

enum Decoder {
    /// Every member of the stream (RFC 1952 §2.2), as Python and curl.
    Gzip(MultiGzDecoder<CappedSink>),
    /// RFC 7932; its window is at most 16 MiB (large windows are off).
    Brotli(Box<brotli_decompressor::DecompressorWriter<CappedSink>>),
    /// RFC 8878, windows over 8 MiB refused (RFC 9659).
    Zstd(Box<ZstdWriter<CappedSink>>),
    Zlib(ZlibDecoder<CappedSink>),
    Raw(DeflateDecoder<CappedSink>),
    /// Deflate before its first bytes say whether it is zlib-wrapped.
    Undecided(CappedSink),
    /// Between the two: only while deciding.
    Taken,
}

/// The content codings decoded, as sent in `Accept-Encoding` when
/// decompression is on.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Decodes a gzip, deflate, brotli or zstd body incrementally, at most
/// `max_output` bytes.
/// Decoded bytes are handed on as soon as they can be decoded: a stream
/// whose server waits for the client's reaction to its first part works.
pub struct Decompressor {
    decoder: Decoder,
    max_output: u64,
    /// Whether any input came: a body-less response needs no decoding.
    fed: bool,
}

impl Decompressor {
    /// A decoder for `content_encoding` ("gzip", "x-gzip", "deflate",
    /// "br", "zstd"); None
    /// for anything else (the body is then passed through as it is). With
    /// `stream`, decoded bytes go to it in pieces of at most
    /// [`MAX_STREAMED_CHUNK`] instead of to `feed`'s `out`.
    pub fn new(
        content_encoding: &str,
        max_output: u64,
        stream: Option<Rc<ChunkCallback>>,
    ) -> Option<Decompressor> {
        let sink = CappedSink {
            out: stream.map_or(Output::Keep(Vec::new()), Output::Stream),
            total: 0,
            max: max_output,
        };
        let decoder = match content_encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Decoder::Gzip(MultiGzDecoder::new(sink)),
            "deflate" => Decoder::Undecided(sink),
            "br" => Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                sink, 4096,
            ))),
            "zstd" => Decoder::Zstd(Box::new(ZstdWriter::new(sink))),
            _ => return None,
        };
        Some(Decompressor {
            decoder,
            max_output,
            fed: false,
        })
    }

    /// How many compressed bytes to feed at once while a pausing streaming
    /// callback holds reading back: deflate expands at most ~1000-fold, so
    /// a whole read; zstd one small block's worth (an RLE block is 4 bytes
    /// for up to 128 KiB); brotli a byte (a few bits can copy megabytes).
    pub fn paused_step(&self) -> usize {
        match self.decoder {
            Decoder::Brotli(_) => 1,
            Decoder::Zstd(_) => 4,
            _ => usize::MAX,
        }
    }

    fn coding(&self) -> &'static str {
        match self.decoder {
            Decoder::Gzip(_) => "gzip",
            Decoder::Brotli(_) => "brotli",
            Decoder::Zstd(_) => "zstd",
            _ => "deflate",
        }
    }

    fn failure(&self, error: std::io::Error) -> Error {
        if error.kind() == std::io::ErrorKind::OutOfMemory {
            fetch_error(
                FetchErrorKind::BodyTooLarge,
                match self.decoder {
                    Decoder::Brotli(_) | Decoder::Zstd(_) => format!(
                        "decompressed body too large (over {} bytes) ({})",
                        self.max_output,
                        self.coding()
                    ),
                    _ => format!(
                        "decompressed body too large (over {} bytes)",
                        self.max_output
                    ),
                },
            )
        } else {
            {
                // Tornado's words ("invalid gzip data"), for deflate likewise.
                let coding = self.coding();
                protocol(format!("invalid {coding} data: {error}"))
            }
        }
    }

    /// Picks zlib or raw deflate from the first two bytes.
    fn decide(&mut self, input: &[u8]) {
        if !matches!(self.decoder, Decoder::Undecided(_)) {
            return;
        }
        let Decoder::Undecided(sink) = std::mem::replace(&mut self.decoder, Decoder::Taken) else {
            unreachable!("checked above");
        };
        // zlib: CMF says deflate (low nibble 8) and CMF*256+FLG is a multiple of 31.
        let zlib = input.len() >= 2
            && input[0] & 0x0f == 8
            && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
        self.decoder = if zlib {
            Decoder::Zlib(ZlibDecoder::new(sink))
        } else {
            Decoder::Raw(DeflateDecoder::new(sink))
        };
    }

    /// Decodes `input`, appending all that it decodes to (when not
    /// streaming) `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if input.is_empty() {
            return Ok(());
        }
        self.fed = true;
        self.decide(input);
        // The flush passes on what the decoder still holds of this input
        // (flate2 otherwise keeps it until the next write).
        let (written, sink) = match &mut self.decoder {
            Decoder::Gzip(d) => (d.write_all(input).and_then(|_| d.flush()), d.get_mut()),
            Decoder::Zlib(d) => (d.write_all(input).and_then(|_| d.flush()), d.get_mut()),
            Decoder::Raw(d) => (d.write_all(input).and_then(|_| d.flush()), d.get_mut()),
            Decoder::Brotli(d) => (d.write_all(input), d.get_mut()),
            Decoder::Zstd(d) => (d.write_all(input), d.get_mut()),
            Decoder::Undecided(_) | Decoder::Taken => return Ok(()),
        };
        sink.hand_over(out);
        written.map_err(|e| self.failure(e))
    }

    /// Ends the stream: flushes the rest into `out`; a truncated stream is
    /// a protocol error. A stream that got no input at all is an empty
    /// body (a HEAD, 204, 304 or empty response that names its coding).
    pub fn finish_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if !self.fed {
            return Ok(());
        }
        let (finished, sink, complete) = match &mut self.decoder {
            Decoder::Gzip(d) => (d.try_finish(), d.get_mut(), true),
            Decoder::Zlib(d) => {
                let r = d.try_finish();
                let complete = d.total_in() > 0;
                (r, d.get_mut(), complete)
            }
            Decoder::Raw(d) => (d.try_finish(), d.get_mut(), true),
            // A brotli stream that stops early, or with its last meta-block
            // missing, fails close().
            Decoder::Brotli(d) => (d.close(), d.get_mut(), true),
            Decoder::Zstd(d) => (d.try_finish(), d.get_mut(), true),
            Decoder::Undecided(_) | Decoder::Taken => return Ok(()),
        };
        sink.hand_over(out);
        finished.map_err(|e| self.failure(e))?;
        if !complete {
            return Err(protocol("truncated compressed body"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;
    use crate::http::FetchErrorKind::*;

    fn kind(r: Result<impl std::fmt::Debug>) -> Option<FetchErrorKind> {
        kind_of(&r.expect_err("an error"))
    }

    fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
        use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
        use flate2::Compression;
        let level = Compression::default();
        match kind {
            "gzip" => {
                let mut e = GzEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "zlib" => {
                let mut e = ZlibEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "br" => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
                    w.write_all(data).unwrap();
                }
                out
            }
            "zstd" => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
            _ => {
                let mut e = DeflateEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[test]
    fn brotli_and_zstd() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 7919).to_le_bytes())
            .collect();
        for coding in ["br", "zstd"] {
            let encoded = compress(coding, &data);
            for step in [1, 333, encoded.len()] {
                assert_eq!(
                    decompress(coding, &encoded, 1 << 22, step).unwrap(),
                    data,
                    "{coding} in pieces of {step}"
                );
            }
            assert_eq!(
                kind(decompress(
                    coding,
                    &encoded[..encoded.len() / 2],
                    1 << 22,
                    100
                )),
                Some(FetchErrorKind::Protocol),
                "{coding} truncated"
            );
            assert_eq!(
                kind(decompress(
                    coding,
                    b"this is not compressed at all",
                    1 << 22,
                    100
                )),
                Some(FetchErrorKind::Protocol),
                "{coding} garbage"
            );
            // Bombs stop at the cap, buffered and streamed.
            let bomb = compress(coding, &vec![0u8; 32 << 20]);
            assert_eq!(
                kind(decompress(coding, &bomb, 1 << 20, 4096)),
                Some(FetchErrorKind::BodyTooLarge),
                "{coding} bomb"
            );
            let sizes = Rc::new(std::cell::RefCell::new(Vec::new()));
            let s = sizes.clone();
            let stream: Rc<ChunkCallback> = Rc::new(move |c: &[u8]| s.borrow_mut().push(c.len()));
            let mut d = Decompressor::new(coding, 1 << 30, Some(stream)).unwrap();
            let mut out = Vec::new();
            d.feed(&bomb, &mut out).unwrap();
            d.finish_into(&mut out).unwrap();
            assert!(out.is_empty());
            assert_eq!(sizes.borrow().iter().sum::<usize>(), 32 << 20);
            assert!(sizes.borrow().iter().all(|&n| n <= MAX_STREAMED_CHUNK));
        }
        assert_eq!(ACCEPT_ENCODING, "gzip, deflate, br, zstd");
        // "hello" as brotli's uncompressed meta-block (python/tests uses it).
        assert_eq!(
            decompress(
                "br",
                &[0x0b, 0x02, 0x80, b'h', b'e', b'l', b'l', b'o', 0x03],
                100,
                1
            )
            .unwrap(),
            b"hello"
        );
    }

    fn decompress(coding: &str, input: &[u8], max: u64, step: usize) -> Result<Vec<u8>> {
        let mut d = Decompressor::new(coding, max, None).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            d.feed(piece, &mut out)?;
        }
        d.finish_into(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_and_deflate() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            decompress("gzip", &compress("gzip", &data), 1 << 20, 1000).unwrap(),
            data
        );
        assert_eq!(
            decompress("deflate", &compress("zlib", &data), 1 << 20, 1000).unwrap(),
            data
        );
        assert_eq!(
            decompress("deflate", &compress("raw", &data), 1 << 20, 7).unwrap(),
            data
        );
        assert!(Decompressor::new("identity", 10, None).is_none());
        assert_eq!(
            kind(decompress("gzip", b"this is not gzip at all", 1 << 20, 100)),
            Some(Protocol)
        );
        let gz = compress("gzip", &data);
        assert_eq!(
            kind(decompress("gzip", &gz[..gz.len() / 2], 1 << 20, 100)),
            Some(Protocol),
            "truncated"
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let bomb = compress("gzip", &vec![0u8; 20 << 20]);
        let mut d = Decompressor::new("gzip", 1 << 20, None).unwrap();
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in bomb.chunks(4096) {
            result = d.feed(piece, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(kind(result), Some(BodyTooLarge));
        assert!(out.len() <= 1 << 20);
    }

    #[test]
    fn every_gzip_member_is_decoded() {
        let mut two = compress("gzip", b"first member, ");
        two.extend(compress("gzip", b"second member"));
        for step in [1, 5, two.len()] {
            assert_eq!(
                decompress("gzip", &two, 1 << 20, step).unwrap(),
                b"first member, second member"
            );
        }
    }

    #[test]
    fn a_stream_that_got_no_bytes_is_an_empty_body() {
        for coding in ["gzip", "deflate"] {
            assert_eq!(decompress(coding, b"", 1 << 20, 1).unwrap(), b"");
        }
    }

    #[test]
    fn decoded_bytes_are_handed_on_with_their_input() {
        use flate2::write::GzEncoder;
        // The first part of a stream, flushed as a server does before it
        // waits: all of it decodes now, not at the next write.
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"part one").unwrap();
        e.flush().unwrap();
        let first = e.get_ref().clone();
        let mut d = Decompressor::new("gzip", 1 << 20, None).unwrap();
        let mut out = Vec::new();
        d.feed(&first, &mut out).unwrap();
        assert_eq!(out, b"part one");
    }

    #[test]
    fn streamed_decoded_chunks_are_bounded() {
        let bomb = compress("gzip", &vec![0u8; 8 << 20]);
        let sizes = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = sizes.clone();
        let stream: Rc<ChunkCallback> = Rc::new(move |c: &[u8]| seen.borrow_mut().push(c.len()));
        let mut d = Decompressor::new("gzip", 1 << 30, Some(stream)).unwrap();
        let mut out = Vec::new();
        d.feed(&bomb, &mut out).unwrap();
        d.finish_into(&mut out).unwrap();
        assert!(out.is_empty(), "streamed, not kept");
        let sizes = sizes.borrow();
        assert_eq!(sizes.iter().sum::<usize>(), 8 << 20);
        assert!(
            sizes.iter().all(|&n| n <= MAX_STREAMED_CHUNK),
            "max {:?}",
            sizes.iter().max()
        );
    }
}
