//! zstd (RFC 8878) decoding as a `Write`, as flate2's and brotli's
//! decoders are: compressed bytes go in as they arrive, decoded bytes go on
//! to the inner writer as soon as a block is decoded.
//!
//! ruzstd decodes whole blocks, so this adapter cuts the input into frame
//! headers and blocks itself (their sizes are in their first bytes) and
//! holds at most one incomplete block (128 KiB and a few bytes). It hands
//! ruzstd one block at a time: one block decodes to at most 128 KiB, so a
//! run of tiny RLE blocks (a "zstd bomb") is stopped by the inner writer's
//! limit, one block at a time, never buffered whole. A frame whose window
//! is over [`MAX_WINDOW`] (RFC 9659's limit for the `zstd` content coding,
//! 8 MiB) is refused before anything is allocated for it. Skippable frames
//! are skipped; frames that need a dictionary fail (HTTP names none).

use std::io::{self, Write};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// The largest window a `zstd` content-coded response may use (RFC 9659
/// §3: decoders are required to support 8 MiB and may refuse more).
pub const MAX_WINDOW: u64 = 8 << 20;

/// The largest block (RFC 8878 §3.1.1.2.3: 128 KiB).
const MAX_BLOCK: usize = 128 << 10;
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// 0x184D2A50 ..= 0x184D2A5F.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// Where the decoder is in the stream of frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames (or before the first).
    Idle,
    /// Skipping the rest of a skippable frame: this many bytes.
    Skipping(u64),
    /// Inside a frame; `checksum` says whether it ends with 4 checksum bytes.
    Frame { checksum: bool },
}

/// A zstd decoder writing what it decodes to `inner`.
pub struct ZstdWriter<W: Write> {
    decoder: FrameDecoder,
    state: State,
    /// Input not yet decoded: less than one frame header or block.
    pending: Vec<u8>,
    inner: W,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The size of the frame header that starts `input` (magic included), from
/// its descriptor byte, or None when the descriptor has not arrived yet.
fn frame_header_len(input: &[u8]) -> Option<usize> {
    let descriptor = *input.get(4)?;
    let single_segment = descriptor & 0x20 != 0;
    let dictionary_id = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let content_size = match descriptor >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let window = if single_segment { 0 } else { 1 };
    Some(4 + 1 + window + dictionary_id + content_size)
}

impl<W: Write> ZstdWriter<W> {
    pub fn new(inner: W) -> ZstdWriter<W> {
        let mut decoder = FrameDecoder::new();
        decoder.set_max_window_size(MAX_WINDOW);
        ZstdWriter {
            decoder,
            state: State::Idle,
            pending: Vec::new(),
            inner,
        }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Ends the stream: an error if it stops inside a frame.
    pub fn try_finish(&mut self) -> io::Result<()> {
        self.decode()?;
        if self.state != State::Idle || !self.pending.is_empty() {
            return Err(invalid("truncated zstd stream"));
        }
        Ok(())
    }

    /// Decodes every complete header and block in `pending`.
    fn decode(&mut self) -> io::Result<()> {
        loop {
            let consumed = match self.state {
                State::Idle => match self.start_frame()? {
                    Some(n) => n,
                    None => return Ok(()),
                },
                State::Skipping(left) => {
                    let n = left.min(self.pending.len() as u64);
                    self.state = match left - n {
                        0 => State::Idle,
                        rest => State::Skipping(rest),
                    };
                    if n == 0 {
                        return Ok(());
                    }
                    n as usize
                }
                State::Frame { checksum } => match self.decode_block(checksum)? {
                    Some(n) => n,
                    None => return Ok(()),
                },
            };
            self.pending.drain(..consumed);
        }
    }

    /// Reads a frame header (or a skippable frame's) from `pending`: the
    /// bytes it took, or None while it is incomplete.
    fn start_frame(&mut self) -> io::Result<Option<usize>> {
        let Some(magic) = self.pending.get(..4) else {
            return Ok(None);
        };
        let magic = u32::from_le_bytes(magic.try_into().expect("four bytes"));
        if magic & 0xFFFF_FFF0 == SKIPPABLE_MAGIC {
            let Some(size) = self.pending.get(4..8) else {
                return Ok(None);
            };
            let size = u32::from_le_bytes(size.try_into().expect("four bytes"));
            self.state = State::Skipping(u64::from(size));
            return Ok(Some(8));
        }
        if magic != ZSTD_MAGIC {
            return Err(invalid(format!("not a zstd frame (magic {magic:#010x})")));
        }
        let Some(len) = frame_header_len(&self.pending) else {
            return Ok(None);
        };
        if self.pending.len() < len {
            return Ok(None);
        }
        let checksum = self.pending[4] & 0x04 != 0;
        self.decoder
            .reset(&self.pending[..len])
            .map_err(|e| invalid(e.to_string()))?;
        self.state = State::Frame { checksum };
        Ok(Some(len))
    }

    /// Decodes the next block when it is all in `pending` (with the
    /// frame's checksum after a last block) and writes out what may be
    /// written: the bytes it took, or None while it is incomplete.
    fn decode_block(&mut self, checksum: bool) -> io::Result<Option<usize>> {
        let Some(header) = self.pending.get(..3) else {
            return Ok(None);
        };
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        let last = header & 1 != 0;
        let size = (header >> 3) as usize;
        let content = match (header >> 1) & 3 {
            0 | 2 => size, // raw, compressed
            1 => 1,        // RLE: one byte, repeated `size` times
            _ => return Err(invalid("reserved zstd block type")),
        };
        if size > MAX_BLOCK {
            return Err(invalid(format!(
                "zstd block of {size} bytes (over 128 KiB)"
            )));
        }
        let len = 3 + content + if last && checksum { 4 } else { 0 };
        if self.pending.len() < len {
            return Ok(None);
        }
        let finished = self
            .decoder
            .decode_blocks(&self.pending[..len], BlockDecodingStrategy::UptoBlocks(1))
            .map_err(|e| invalid(e.to_string()))?;
        // Everything beyond the window (all of it at the frame's end).
        self.decoder.collect_to_writer(&mut self.inner)?;
        if finished {
            if checksum {
                let (Some(sent), Some(computed)) = (
                    self.decoder.get_checksum_from_data(),
                    self.decoder.get_calculated_checksum(),
                ) else {
                    return Err(invalid("zstd checksum missing"));
                };
                if sent != computed {
                    return Err(invalid("zstd checksum mismatch"));
                }
            }
            self.state = State::Idle;
        }
        Ok(Some(len))
    }
}

impl<W: Write> Write for ZstdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.decode()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn decode(input: &[u8], step: usize) -> io::Result<Vec<u8>> {
        let mut w = ZstdWriter::new(Vec::new());
        for piece in input.chunks(step.max(1)) {
            w.write_all(piece)?;
        }
        w.try_finish()?;
        Ok(std::mem::take(w.get_mut()))
    }

    #[test]
    fn decodes_in_any_pieces() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let z = compress(&data);
        for step in [1, 7, 4096, z.len()] {
            assert_eq!(decode(&z, step).unwrap(), data, "step {step}");
        }
    }

    #[test]
    fn frames_follow_each_other_and_skippable_ones_are_skipped() {
        let mut z = compress(b"first, ");
        z.extend([0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        z.extend(compress(b"second"));
        assert_eq!(decode(&z, 1).unwrap(), b"first, second");
    }

    #[test]
    fn truncated_or_garbage_fails() {
        let z = compress(&[7u8; 10_000]);
        let err = decode(&z[..z.len() - 1], 100).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(decode(b"this is not zstd", 100).is_err());
    }

    #[test]
    fn a_window_over_8_mib_is_refused() {
        // Frame header: magic, descriptor 0 (window byte follows, no
        // checksum), window descriptor exponent 14: 2^24 = 16 MiB.
        let mut z = ZSTD_MAGIC.to_le_bytes().to_vec();
        z.extend([0x00, 14 << 3]);
        let err = decode(&z, 100).unwrap_err();
        assert!(err.to_string().to_lowercase().contains("window"), "{err}");
        // A single-segment frame whose content size (its window) is 1 GiB.
        let mut z = ZSTD_MAGIC.to_le_bytes().to_vec();
        z.extend([0xA0]);
        z.extend((1u32 << 30).to_le_bytes());
        assert!(decode(&z, 100).is_err());
    }

    /// A writer that refuses more than `max` bytes, as the client's sink.
    struct Capped(usize, usize);
    impl Write for Capped {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            if self.0 > self.1 {
                return Err(io::Error::new(io::ErrorKind::OutOfMemory, "over"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rle_blocks_decode_one_at_a_time() {
        // A bomb by hand: a frame of 4,000 RLE blocks of 128 KiB each
        // (500 MiB from 16 KB), window 8 MiB.
        let mut z = ZSTD_MAGIC.to_le_bytes().to_vec();
        z.extend([0x00, 13 << 3]);
        for i in 0..4000 {
            let last = u32::from(i == 3999);
            let header = last | 1 << 1 | (MAX_BLOCK as u32) << 3;
            z.extend(&header.to_le_bytes()[..3]);
            z.push(b'x');
        }
        let mut w = ZstdWriter::new(Capped(0, 1 << 20));
        let err = w.write_all(&z).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
        // What was decoded but not yet written is at most the window and a block.
        assert!(w.pending.len() <= z.len());
    }
}
