//! HTTP/1.1 chunked transfer coding, decoded incrementally with bounded
//! chunk-size and trailer lines.

use crate::error::Result;
use crate::http::protocol;

/// Longest chunk-size or trailer line.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Decodes a chunked body incrementally. Never allocates from a claimed
/// chunk size: data is copied as it arrives.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
    declared: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            line: Vec::new(),
            declared: 0,
        }
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder::default()
    }

    /// True once the last chunk and the trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The sum of the chunk sizes announced so far (saturating): what the
    /// body will amount to if the server keeps its word.
    pub fn declared_size(&self) -> u64 {
        self.declared
    }

    /// Decodes what it can of `input` into `out`; returns the bytes consumed
    /// (all of them unless the body ended inside `input`).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize> {
        let mut pos = 0;
        while pos < input.len() && !self.is_done() {
            pos += match self.state {
                ChunkState::Size | ChunkState::Trailer | ChunkState::DataEnd => {
                    self.take_line(&input[pos..])?
                }
                ChunkState::Data(left) => {
                    let n = (left.min((input.len() - pos) as u64)) as usize;
                    out.extend_from_slice(&input[pos..pos + n]);
                    self.state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                    n
                }
                ChunkState::Done => 0,
            };
        }
        Ok(pos)
    }

    /// Collects a line; when complete, acts on it. Returns bytes consumed.
    fn take_line(&mut self, input: &[u8]) -> Result<usize> {
        let (taken, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (input.len(), false),
        };
        self.line.extend_from_slice(&input[..taken]);
        if self.line.len() > MAX_CHUNK_LINE {
            return Err(protocol("a chunk-size or trailer line is too long"));
        }
        if complete {
            let line = std::mem::take(&mut self.line);
            // CRLF, or a bare LF as in a head (RFC 9112 §2.2).
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.on_line(line)?;
        }
        Ok(taken)
    }

    fn on_line(&mut self, line: &[u8]) -> Result<()> {
        self.state = match self.state {
            ChunkState::Size => match parse_chunk_size(line)? {
                0 => ChunkState::Trailer,
                n => {
                    self.declared = self.declared.saturating_add(n);
                    ChunkState::Data(n)
                }
            },
            ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
            ChunkState::DataEnd => return Err(protocol("chunk data is not followed by CRLF")),
            ChunkState::Trailer if line.is_empty() => ChunkState::Done,
            ChunkState::Trailer => ChunkState::Trailer,
            state => state,
        };
        Ok(())
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64> {
    let size = line.split(|&b| b == b';').next().unwrap_or(b"");
    let size = std::str::from_utf8(size)
        .map_err(|_| protocol("bad chunk size"))?
        .trim_matches([' ', '\t']);
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(protocol(format!("bad chunk size {size:?}")));
    }
    u64::from_str_radix(size, 16).map_err(|_| protocol("the chunk size overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::kind_of;
    use crate::http::FetchErrorKind;
    use crate::http::FetchErrorKind::*;

    fn kind(r: Result<impl std::fmt::Debug>) -> Option<FetchErrorKind> {
        kind_of(&r.expect_err("an error"))
    }

    fn dechunk(input: &[u8], step: usize) -> Result<(Vec<u8>, bool)> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            let n = d.decode(piece, &mut out)?;
            assert!(n == piece.len() || d.is_done());
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn chunked_decoding() {
        let body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
        for step in [1, 2, 3, 7, body.len()] {
            assert_eq!(
                dechunk(body, step).unwrap(),
                (b"hello world".to_vec(), true)
            );
        }
        assert_eq!(dechunk(b"5\r\nhel", 100).unwrap(), (b"hel".to_vec(), false));
        assert_eq!(
            kind(dechunk(b"fffffffffffffffffffff\r\n", 100)),
            Some(Protocol)
        );
        assert_eq!(kind(dechunk(b"zz\r\n", 100)), Some(Protocol));
        assert_eq!(kind(dechunk(b"3\r\nabcX\r\n", 100)), Some(Protocol));
        assert_eq!(kind(dechunk(&[b'1'; 10_000], 100)), Some(Protocol));
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        // A huge claimed size allocates nothing up front.
        d.decode(b"ffffffff\r\nab", &mut out).unwrap();
        assert_eq!(out, b"ab");
        assert!(out.capacity() < 1024);
        // ... but the claim is known at once, for the caller's limit.
        assert_eq!(d.declared_size(), 0xffff_ffff);
        let mut d = ChunkedDecoder::new();
        d.decode(b"1\r\na\r\nffffffffffffffff\r\n", &mut out)
            .unwrap();
        assert_eq!(d.declared_size(), u64::MAX, "saturates");
        // Bytes after the end are left for the caller.
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"0\r\n\r\nextra", &mut out).unwrap(), 5);
    }

    #[test]
    fn chunked_lines_may_end_in_a_bare_lf() {
        let body = b"5\nhello\n6;x=1\r\n world\n0\nT: t\n\n";
        for step in [1, 2, body.len()] {
            assert_eq!(
                dechunk(body, step).unwrap(),
                (b"hello world".to_vec(), true)
            );
        }
    }
}
