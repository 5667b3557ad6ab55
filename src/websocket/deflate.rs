//! permessage-deflate (RFC 7692): the offer this client makes, the
//! server's answer checked against it, and the raw-deflate streams of
//! both directions, as Tornado's `compression_options` negotiates them.
//!
//! Decompressed bytes count against `max_message_size` as they come out,
//! so a small compressed message that would expand without bound (a
//! deflate bomb) fails with 1009 after at most the limit is buffered.
//!
//! Window bits, both ways (RFC 7692 section 7.1.2): the client always
//! offers `client_max_window_bits`, as Tornado's does (bare, or with the
//! limit asked for in [`CompressionOptions::client_max_window_bits`]), and
//! compresses with the smaller of that and what the server answers; it may
//! ask the server for `server_max_window_bits` and inflates with the window
//! agreed (the memory it takes). zlib (flate2's zlib-rs backend) has no 256-byte window: a client
//! window of 8 bits is honoured with stored blocks (level 0, which never
//! refer back), and the server's 8 is read with zlib's smallest, 9.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG};

/// What the client asks for (Tornado's `compression_options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressionOptions {
    /// zlib level 0-9 for the messages sent (Tornado's default 6).
    pub compression_level: u32,
    /// Ask that the client start each message with an empty window
    /// (less memory, less compression).
    pub client_no_context_takeover: bool,
    /// Ask the server to start each message with an empty window.
    pub server_no_context_takeover: bool,
    /// Ask the server to compress with at most 2^bits bytes of window (8-15).
    pub server_max_window_bits: Option<u8>,
    /// Compress with at most 2^bits bytes of window (8-15), offered as
    /// `client_max_window_bits=bits`; None offers it bare (32 KiB unless
    /// the server asks for less). A server's smaller value is honoured.
    pub client_max_window_bits: Option<u8>,
}

impl Default for CompressionOptions {
    fn default() -> Self {
        CompressionOptions {
            compression_level: 6,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        }
    }
}

/// What both sides agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// The client starts each message it sends with an empty window.
    pub client_no_context_takeover: bool,
    /// The server starts each message it sends with an empty window.
    pub server_no_context_takeover: bool,
    /// The server compresses with at most 2^bits bytes of window (8-15;
    /// 15 when it set no limit).
    pub server_max_window_bits: u8,
    /// The client compresses with at most 2^bits bytes of window (8-15):
    /// the server's answer, else the client's own limit, else 15.
    pub client_max_window_bits: u8,
}

/// The `Sec-WebSocket-Extensions` value offered.
pub fn offer(options: &CompressionOptions) -> String {
    let mut offer = String::from("permessage-deflate");
    if options.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if options.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if let Some(bits) = options.server_max_window_bits {
        offer.push_str(&format!("; server_max_window_bits={bits}"));
    }
    match options.client_max_window_bits {
        Some(bits) => offer.push_str(&format!("; client_max_window_bits={bits}")),
        None => offer.push_str("; client_max_window_bits"),
    }
    offer
}

/// The server's `Sec-WebSocket-Extensions` answer, checked against the
/// offer: None when it accepted no extension. Any extension but
/// permessage-deflate, a parameter not offered, or a bad value is an error
/// (the handshake fails, as RFC 7692 section 5 says).
pub fn accept(
    answer: Option<&str>,
    offered: Option<&CompressionOptions>,
) -> Result<Option<Agreed>, String> {
    let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let Some(offered) = offered else {
        return Err(format!(
            "the server accepted extensions that were not offered: {answer:?}"
        ));
    };
    if answer.contains(',') {
        return Err(format!(
            "the server accepted more than one extension: {answer:?}"
        ));
    }
    let mut parts = answer.split(';').map(str::trim);
    let name = parts.next().unwrap_or("");
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!(
            "the server accepted an extension that was not offered: {name:?}"
        ));
    }
    let mut agreed = Agreed {
        client_no_context_takeover: false,
        server_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: offered.client_max_window_bits.unwrap_or(15),
    };
    let mut seen = Vec::new();
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            return Err(format!("permessage-deflate parameter {key} given twice"));
        }
        seen.push(key.clone());
        match (key.as_str(), value) {
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                let bits = window_bits(v)?;
                if offered.server_max_window_bits.is_some_and(|max| bits > max) {
                    return Err(format!(
                        "server_max_window_bits={bits} over the {} offered",
                        offered.server_max_window_bits.unwrap_or(15)
                    ));
                }
                agreed.server_max_window_bits = bits;
            }
            // The server may lower the client's window, never raise it
            // past the value offered (RFC 7692 section 7.1.2.2).
            ("client_max_window_bits", Some(v)) => {
                let bits = window_bits(v)?;
                if offered.client_max_window_bits.is_some_and(|max| bits > max) {
                    return Err(format!(
                        "client_max_window_bits={bits} over the {} offered",
                        offered.client_max_window_bits.unwrap_or(15)
                    ));
                }
                agreed.client_max_window_bits = bits;
            }
            _ => {
                return Err(format!(
                    "unsupported permessage-deflate parameter {param:?}"
                ))
            }
        }
    }
    // A server that leaves out server_no_context_takeover or
    // server_max_window_bits keeps its context or its full window (RFC 7692
    // section 7.1.1.1; Tornado's server drops valueless parameters): the
    // inflater follows whatever it does.
    // The client may always drop its own context.
    agreed.client_no_context_takeover |= offered.client_no_context_takeover;
    Ok(Some(agreed))
}

fn window_bits(value: &str) -> Result<u8, String> {
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(bits),
        _ => Err(format!("window bits {value:?} out of 8-15")),
    }
}

/// A decompression failure: the close code (1009 over the limit, 1002 a
/// corrupt stream) and what happened.
#[derive(Debug)]
pub struct InflateError {
    /// The close code to send: 1009 (too big) or 1002 (protocol error).
    pub close_code: u16,
    /// What happened, for the close reason and the error.
    pub message: String,
}

/// The server-to-client stream.
pub struct Inflater {
    stream: Decompress,
    /// Start each message afresh (server_no_context_takeover).
    reset_each: bool,
    /// The server ended the deflate stream within this message.
    ended: bool,
    /// Where each step inflates to before the limit check (kept, so no
    /// call zeroes a fresh one).
    step: Box<[u8]>,
}

/// Bytes inflated per step: the output grows at most this far past the limit check.
const STEP: usize = 16 * 1024;

impl Inflater {
    /// An inflater for the server's messages, as `agreed`.
    pub fn new(agreed: &Agreed) -> Inflater {
        Inflater {
            // zlib's smallest window is 2^9: it reads a 2^8 stream too.
            stream: Decompress::new_with_window_bits(false, agreed.server_max_window_bits.max(9)),
            reset_each: agreed.server_no_context_takeover,
            ended: false,
            step: vec![0; STEP].into_boxed_slice(),
        }
    }

    /// Inflates `input` onto `out`, failing once `out` would pass `max`
    /// (through a fixed step buffer: `out` never holds more than `max`).
    pub fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), InflateError> {
        let step = &mut self.step[..];
        loop {
            if self.ended {
                // After a final block the rest of the message is its tail.
                return Ok(());
            }
            let (before_in, before_out) = (self.stream.total_in(), self.stream.total_out());
            let status = self
                .stream
                .decompress(input, step, FlushDecompress::None)
                .map_err(|e| InflateError {
                    close_code: CLOSE_PROTOCOL_ERROR,
                    message: format!("a compressed message that does not inflate: {e}"),
                })?;
            let consumed = (self.stream.total_in() - before_in) as usize;
            let produced = (self.stream.total_out() - before_out) as usize;
            input = &input[consumed..];
            if out.len() + produced > max {
                return Err(too_big(max));
            }
            out.extend_from_slice(&step[..produced]);
            if status == Status::StreamEnd {
                self.ended = true;
                continue;
            }
            if produced < STEP && input.is_empty() {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(InflateError {
                    close_code: CLOSE_PROTOCOL_ERROR,
                    message: "a compressed message that does not inflate".into(),
                });
            }
        }
    }

    /// Ends a message: the 00 00 FF FF tail the sender removed (RFC 7692
    /// section 7.2.2), then a fresh stream when contexts are not kept.
    pub fn finish_message(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        self.inflate(&[0x00, 0x00, 0xFF, 0xFF], out, max)?;
        // A final block (BFINAL) ends the stream: the next message starts a new one.
        if self.reset_each || self.ended {
            self.stream.reset(false);
            self.ended = false;
        }
        Ok(())
    }
}

fn too_big(max: usize) -> InflateError {
    InflateError {
        close_code: CLOSE_TOO_BIG,
        message: format!("a message over max_message_size ({max} bytes) after decompression"),
    }
}

/// The client-to-server stream.
pub struct Deflater {
    stream: Compress,
    reset_each: bool,
}

impl Deflater {
    /// A deflater for the client's messages, as `agreed`, at zlib `level`
    /// (0-9; higher values are taken as 9).
    pub fn new(agreed: &Agreed, level: u32) -> Deflater {
        let bits = agreed.client_max_window_bits;
        // zlib has no 256-byte window; stored blocks (level 0) refer to
        // no earlier bytes at all, so they fit any window.
        let level = if bits < 9 { 0 } else { level.min(9) };
        Deflater {
            stream: Compress::new_with_window_bits(Compression::new(level), false, bits.max(9)),
            reset_each: agreed.client_no_context_takeover,
        }
    }

    /// One message compressed, without the 00 00 FF FF tail.
    pub fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        let mut input = message;
        loop {
            out.reserve(1024);
            let before = self.stream.total_in();
            self.stream
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflating memory does not fail");
            input = &input[(self.stream.total_in() - before) as usize..];
            // Done once all input is in and the flush fit in what was left.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&[0x00, 0x00, 0xFF, 0xFF]) {
            out.truncate(out.len() - 4);
        }
        if self.reset_each {
            self.stream.reset();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(client_reset: bool, server_reset: bool) -> Agreed {
        Agreed {
            client_no_context_takeover: client_reset,
            server_no_context_takeover: server_reset,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    /// What our deflater sends, our inflater reads (as the server's would),
    /// message after message, with and without context takeover.
    #[test]
    fn round_trips_with_and_without_context() {
        for reset in [false, true] {
            let mut deflater = Deflater::new(&agreed(reset, false), 6);
            let mut inflater = Inflater::new(&agreed(false, reset));
            let text = b"the same words again and again, ".repeat(50);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let compressed = deflater.compress(&text);
                assert!(!compressed.ends_with(&[0, 0, 0xFF, 0xFF]));
                sizes.push(compressed.len());
                let mut out = Vec::new();
                inflater.inflate(&compressed, &mut out, 1 << 20).unwrap();
                inflater.finish_message(&mut out, 1 << 20).unwrap();
                assert_eq!(out, text);
            }
            if reset {
                assert_eq!(sizes[0], sizes[2], "each message starts afresh");
            } else {
                assert!(sizes[2] < sizes[0], "the window carries over: {sizes:?}");
            }
        }
    }

    /// A message whose repeats are 1,000 bytes apart: a 2^9 window cannot
    /// reach them, a 2^15 one can.
    fn far_repeats() -> Vec<u8> {
        let block: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        block.repeat(20)
    }

    #[test]
    fn the_client_window_is_the_one_agreed() {
        let text = far_repeats();
        let mut sizes = Vec::new();
        for bits in [15u8, 9, 8] {
            let mut agreed = agreed(false, false);
            agreed.client_max_window_bits = bits;
            let mut deflater = Deflater::new(&agreed, 6);
            let compressed = deflater.compress(&text);
            sizes.push(compressed.len());
            // A peer with exactly that window reads it (zlib's smallest is 9).
            let mut peer = Decompress::new_with_window_bits(false, bits.max(9));
            let mut out = Vec::with_capacity(text.len() + 64);
            let mut input = compressed.clone();
            input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
            peer.decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .unwrap_or_else(|e| panic!("{bits} bits: {e}"));
            assert_eq!(out, text, "{bits} bits");
        }
        assert!(sizes[0] < text.len() / 5, "32 KiB reaches back: {sizes:?}");
        assert!(sizes[1] > text.len() / 2, "512 bytes do not: {sizes:?}");
        assert!(sizes[2] >= text.len(), "8 bits: stored blocks: {sizes:?}");
    }

    #[test]
    fn a_small_server_window_is_read_with_that_window() {
        let text = far_repeats();
        for bits in [9u8, 12] {
            let mut server = Compress::new_with_window_bits(Compression::new(6), false, bits);
            let mut inflater = Inflater::new(&Agreed {
                server_max_window_bits: bits,
                ..agreed(false, false)
            });
            for _ in 0..3 {
                let mut compressed = Vec::with_capacity(text.len() + 64);
                server
                    .compress_vec(&text, &mut compressed, FlushCompress::Sync)
                    .unwrap();
                compressed.truncate(compressed.len() - 4);
                let mut out = Vec::new();
                inflater.inflate(&compressed, &mut out, 1 << 20).unwrap();
                inflater.finish_message(&mut out, 1 << 20).unwrap();
                assert_eq!(out, text, "{bits} bits");
            }
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_fails() {
        let zeros = vec![0u8; 16 << 20];
        let mut deflater = Deflater::new(&agreed(false, false), 9);
        let bomb = deflater.compress(&zeros);
        assert!(bomb.len() < 100 << 10);
        let mut inflater = Inflater::new(&agreed(false, false));
        let mut out = Vec::new();
        let error = inflater.inflate(&bomb, &mut out, 1 << 20).unwrap_err();
        assert_eq!(error.close_code, 1009);
        assert!(
            out.len() <= 1 << 20 && out.capacity() <= 2 << 20,
            "{}",
            out.capacity()
        );
        let mut inflater = Inflater::new(&agreed(false, false));
        let error = inflater
            .inflate(&[0xFF; 64], &mut Vec::new(), 1 << 20)
            .unwrap_err();
        assert_eq!(error.close_code, 1002);
    }

    #[test]
    fn a_final_block_ends_the_stream_for_the_next_message() {
        // A server that ends each message with BFINAL (allowed, RFC 7692 7.2.3.3).
        let mut raw = flate2::Compress::new(Compression::new(6), false);
        let mut inflater = Inflater::new(&agreed(false, false));
        for word in [&b"first"[..], b"second"] {
            let mut out = Vec::with_capacity(256);
            raw.compress_vec(word, &mut out, FlushCompress::Finish)
                .unwrap();
            raw.reset();
            let mut got = Vec::new();
            inflater.inflate(&out, &mut got, 1000).unwrap();
            inflater.finish_message(&mut got, 1000).unwrap();
            assert_eq!(got, word);
        }
    }

    #[test]
    fn negotiation() {
        let offered = CompressionOptions {
            server_max_window_bits: Some(10),
            ..Default::default()
        };
        assert_eq!(
            offer(&offered),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
        );
        let limited = CompressionOptions {
            client_max_window_bits: Some(11),
            ..Default::default()
        };
        assert_eq!(
            offer(&limited),
            "permessage-deflate; client_max_window_bits=11"
        );
        let own = accept(Some("permessage-deflate"), Some(&limited))
            .unwrap()
            .unwrap();
        assert_eq!(own.client_max_window_bits, 11, "the client's own limit");
        let lowered = accept(
            Some("permessage-deflate; client_max_window_bits=9"),
            Some(&limited),
        )
        .unwrap()
        .unwrap();
        assert_eq!(lowered.client_max_window_bits, 9);
        assert!(accept(
            Some("permessage-deflate; client_max_window_bits=12"),
            Some(&limited)
        )
        .is_err());
        assert!(
            accept(
                Some("permessage-deflate; client_max_window_bits"),
                Some(&limited)
            )
            .is_err(),
            "a server's answer needs a value"
        );
        let a = accept(
            Some("permessage-deflate; server_max_window_bits=9"),
            Some(&offered),
        )
        .unwrap();
        assert_eq!(a.unwrap().server_max_window_bits, 9);
        assert!(accept(
            Some("permessage-deflate; server_max_window_bits=12"),
            Some(&offered)
        )
        .is_err());
        assert!(accept(
            Some("permessage-deflate; server_max_window_bits=7"),
            Some(&offered)
        )
        .is_err());
        assert!(accept(Some("permessage-deflate; x=1"), Some(&offered)).is_err());
        assert!(accept(Some("x-webkit-deflate-frame"), Some(&offered)).is_err());
        assert!(accept(
            Some("permessage-deflate, permessage-deflate"),
            Some(&offered)
        )
        .is_err());
        assert!(accept(
            Some("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            Some(&offered)
        )
        .is_err());
        assert_eq!(accept(None, Some(&offered)).unwrap(), None);
        assert_eq!(accept(Some(""), None).unwrap(), None);
    }
}
