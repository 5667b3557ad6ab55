//! RFC 6455 framing without I/O: frames encoded for sending (always
//! masked: this is a client), and a [`Receiver`] that takes the server's
//! bytes in pieces of any size and gives back whole messages and control
//! frames. Every rule a server can break ends in a [`ProtocolError`] that
//! carries the close code to send (Tornado's: 1002 for a broken frame,
//! 1007 for bad UTF-8, 1009 for a message over the limit).
//!
//! Hand-written, not a crate: tungstenite (the well-kept Rust codec) owns
//! its stream and has no permessage-deflate (its issue #2 is open), which
//! a client of Tornado servers needs; its frame layer alone would still
//! leave message assembly, UTF-8 and limits to this file. The parser is
//! fuzzed (fuzz/fuzz_targets/websocket_frames.rs).

use std::collections::VecDeque;

use super::deflate::Inflater;

/// The longest frame header a client sends: 2 bytes, 8 of extended
/// length, 4 of mask.
pub(crate) const MAX_FRAME_HEADER: usize = 14;

/// Opcodes (RFC 6455 section 5.2).
pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV_MASK: u8 = 0x70;

/// The close codes this client sends when the server breaks a rule.
pub(crate) const CLOSE_NORMAL: u16 = 1000;
pub(crate) const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub(crate) const CLOSE_INVALID_DATA: u16 = 1007;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// The largest payload of a control frame.
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// At most this much is reserved for a message before its bytes come.
const PRESIZE_LIMIT: u64 = 64 * 1024;

/// A frame ready for the wire: header, then `payload` masked with `mask`.
pub fn encode_frame(opcode: u8, rsv1: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_frame_into(&mut frame, opcode, rsv1, payload, mask);
    frame
}

/// `encode_frame` into `frame` (cleared first), so that a connection can
/// reuse one buffer for every frame it sends.
pub fn encode_frame_into(
    frame: &mut Vec<u8>,
    opcode: u8,
    rsv1: bool,
    payload: &[u8],
    mask: [u8; 4],
) {
    frame.clear();
    frame.reserve(payload.len() + MAX_FRAME_HEADER);
    frame.push(FIN | if rsv1 { RSV1 } else { 0 } | opcode);
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    let start = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[start..], mask, 0);
}

/// XORs `data` with `mask`, the first byte being at offset `phase` of the
/// payload (frames arrive in pieces).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], phase: usize) {
    // The key as it lines up with data[0], eight bytes at a time (a byte
    // at a time took a tenth of W7-stream's client CPU).
    let key: [u8; 4] = std::array::from_fn(|i| mask[(phase + i) & 3]);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // The rest starts at a multiple of 8: the key's phase is unchanged.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// Whether a close code may appear in a close frame (RFC 6455 section
/// 7.4: 1004-1006 and 1015 are never sent, 1016-2999 are reserved, 3000-4999
/// belong to libraries and applications).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A frame the server sent: what breaks the protocol, with the close code to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The close code to answer with (1002 protocol error, 1007 bad UTF-8,
    /// 1009 too big).
    pub close_code: u16,
    /// What the server did wrong, for the close reason and the error.
    pub message: String,
}

impl ProtocolError {
    fn new(close_code: u16, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            close_code,
            message: message.into(),
        }
    }

    fn protocol(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(CLOSE_PROTOCOL_ERROR, message)
    }
}

/// What the server sent, whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (fragments joined, inflated, valid UTF-8).
    Text(String),
    /// A whole binary message (fragments joined, inflated).
    Binary(Vec<u8>),
    /// A ping with its payload (a control frame: at most 125 bytes).
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// The server's close frame: its code (None when it sent none) and reason.
    Close(Option<u16>, String),
}

#[derive(Clone, Copy, Debug)]
struct FrameHeader {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    length: u64,
}

/// A data message being received (possibly over several frames).
struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
    /// Payload bytes as they came on the wire (compressed or not), counted
    /// against the limit before they are buffered, as Tornado does.
    wire_len: u64,
    /// How much of `data` is known to be valid UTF-8 (text only).
    valid_utf8: usize,
}

enum State {
    /// Collecting a frame header (2 to 14 bytes).
    Header { bytes: [u8; 14], have: usize },
    /// Receiving `remaining` payload bytes of `header`.
    Payload { header: FrameHeader, remaining: u64 },
}

/// The server's side of the connection, as bytes come in.
pub struct Receiver {
    state: State,
    max_message_size: usize,
    message: Option<Partial>,
    /// The payload of the control frame being received (at most 125 bytes).
    control: Vec<u8>,
    inflater: Option<Inflater>,
    /// Set once the server's close frame came: nothing may follow it.
    closed: bool,
}

impl Receiver {
    /// A receiver refusing messages over `max_message_size` bytes;
    /// `inflater` when permessage-deflate was agreed.
    pub fn new(max_message_size: usize, inflater: Option<Inflater>) -> Receiver {
        Receiver {
            state: State::Header {
                bytes: [0; 14],
                have: 0,
            },
            max_message_size,
            message: None,
            control: Vec::new(),
            inflater,
            closed: false,
        }
    }

    /// Takes every byte of `input`, pushing each whole message or control
    /// frame onto `events`. After an error the receiver is unusable (the
    /// connection must close).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        events: &mut VecDeque<Event>,
    ) -> Result<(), ProtocolError> {
        while !input.is_empty() {
            if self.closed {
                return Err(ProtocolError::protocol(
                    "the server sent data after its close frame",
                ));
            }
            match &mut self.state {
                State::Header { bytes, have } => {
                    let need = header_len(&bytes[..*have]);
                    let take = (need - *have).min(input.len());
                    bytes[*have..*have + take].copy_from_slice(&input[..take]);
                    *have += take;
                    input = &input[take..];
                    // The length's form is known after two bytes: read on if longer.
                    if *have < header_len(&bytes[..*have]) {
                        continue;
                    }
                    let header = parse_header(&bytes[..*have])?;
                    self.start_frame(header)?;
                    self.state = State::Payload {
                        header,
                        remaining: header.length,
                    };
                    if header.length == 0 {
                        self.end_frame(header, events)?;
                    }
                }
                State::Payload { header, remaining } => {
                    let header = *header;
                    let take = (*remaining).min(input.len() as u64) as usize;
                    let (chunk, rest) = input.split_at(take);
                    *remaining -= take as u64;
                    let done = *remaining == 0;
                    input = rest;
                    self.payload(header, chunk)?;
                    if done {
                        self.end_frame(header, events)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a new frame against the messages in progress and the limit.
    fn start_frame(&mut self, header: FrameHeader) -> Result<(), ProtocolError> {
        let control = header.opcode & 0x8 != 0;
        if control {
            if !header.fin {
                return Err(ProtocolError::protocol("a fragmented control frame"));
            }
            if header.length > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::protocol(
                    "a control frame longer than 125 bytes",
                ));
            }
            if header.rsv1 {
                return Err(ProtocolError::protocol("a control frame with RSV1 set"));
            }
            self.control.clear();
            return Ok(());
        }
        let continuation = header.opcode == OP_CONTINUATION;
        if continuation && header.rsv1 {
            return Err(ProtocolError::protocol(
                "a continuation frame with RSV1 set",
            ));
        }
        if header.rsv1 && self.inflater.is_none() {
            return Err(ProtocolError::protocol(
                "RSV1 set without a negotiated extension",
            ));
        }
        match (&mut self.message, continuation) {
            (None, true) => Err(ProtocolError::protocol(
                "a continuation frame with no message to continue",
            )),
            (Some(_), false) => Err(ProtocolError::protocol(
                "a new message before the previous one's last frame",
            )),
            (Some(partial), true) => {
                partial.wire_len = partial.wire_len.saturating_add(header.length);
                self.check_size(self.message.as_ref().map_or(0, |p| p.wire_len))
            }
            (None, false) => {
                self.check_size(header.length)?;
                // A whole message in one plain frame (the common case) is
                // buffered without growing: its length is known (and was
                // checked against the limit just now), and one byte more
                // lets the C API add its NUL without a copy. The reservation
                // is capped so that a length announced but never sent costs
                // little.
                let data = if header.fin && !header.rsv1 {
                    Vec::with_capacity(header.length.min(PRESIZE_LIMIT) as usize + 1)
                } else {
                    Vec::new()
                };
                self.message = Some(Partial {
                    text: header.opcode == OP_TEXT,
                    compressed: header.rsv1,
                    data,
                    wire_len: header.length,
                    valid_utf8: 0,
                });
                Ok(())
            }
        }
    }

    fn check_size(&self, size: u64) -> Result<(), ProtocolError> {
        if size > self.max_message_size as u64 {
            return Err(ProtocolError::new(
                CLOSE_TOO_BIG,
                format!(
                    "a message over max_message_size ({} bytes)",
                    self.max_message_size
                ),
            ));
        }
        Ok(())
    }

    fn payload(&mut self, header: FrameHeader, chunk: &[u8]) -> Result<(), ProtocolError> {
        if header.opcode & 0x8 != 0 {
            self.control.extend_from_slice(chunk);
            return Ok(());
        }
        let max = self.max_message_size;
        let partial = self.message.as_mut().expect("a data frame has its message");
        if partial.compressed {
            let inflater = self.inflater.as_mut().expect("RSV1 needs the extension");
            inflater
                .inflate(chunk, &mut partial.data, max)
                .map_err(|e| ProtocolError::new(e.close_code, e.message))?;
        } else {
            // The frame's length was checked against the limit at its start.
            partial.data.extend_from_slice(chunk);
        }
        check_utf8(partial, false)
    }

    fn end_frame(
        &mut self,
        header: FrameHeader,
        events: &mut VecDeque<Event>,
    ) -> Result<(), ProtocolError> {
        self.state = State::Header {
            bytes: [0; 14],
            have: 0,
        };
        match header.opcode {
            OP_PING => events.push_back(Event::Ping(std::mem::take(&mut self.control))),
            OP_PONG => events.push_back(Event::Pong(std::mem::take(&mut self.control))),
            OP_CLOSE => {
                let (code, reason) = parse_close(&self.control)?;
                self.closed = true;
                events.push_back(Event::Close(code, reason));
            }
            _ if header.fin => {
                let mut partial = self.message.take().expect("a data frame has its message");
                if partial.compressed {
                    let inflater = self.inflater.as_mut().expect("RSV1 needs the extension");
                    inflater
                        .finish_message(&mut partial.data, self.max_message_size)
                        .map_err(|e| ProtocolError::new(e.close_code, e.message))?;
                    check_utf8(&mut partial, false)?;
                }
                check_utf8(&mut partial, true)?;
                events.push_back(if partial.text {
                    // Validated whole just above: the conversion cannot fail.
                    Event::Text(String::from_utf8(partial.data).map_err(|_| invalid_utf8())?)
                } else {
                    Event::Binary(partial.data)
                });
            }
            _ => {}
        }
        Ok(())
    }
}

fn invalid_utf8() -> ProtocolError {
    ProtocolError::new(CLOSE_INVALID_DATA, "a text message that is not valid UTF-8")
}

/// Validates what arrived of a text message since the last call: invalid
/// bytes fail at once (not at the message's end); an incomplete character
/// at the end waits for the next piece, unless this is the end.
fn check_utf8(partial: &mut Partial, at_end: bool) -> Result<(), ProtocolError> {
    if !partial.text {
        return Ok(());
    }
    match std::str::from_utf8(&partial.data[partial.valid_utf8..]) {
        Ok(_) => {
            partial.valid_utf8 = partial.data.len();
            Ok(())
        }
        Err(e) if e.error_len().is_none() && !at_end => {
            partial.valid_utf8 += e.valid_up_to();
            Ok(())
        }
        Err(_) => Err(invalid_utf8()),
    }
}

/// How long the header starting with `bytes` is: 2 until the second byte
/// says more.
fn header_len(bytes: &[u8]) -> usize {
    if bytes.len() < 2 {
        return 2;
    }
    let masked = if bytes[1] & 0x80 != 0 { 4 } else { 0 };
    2 + masked
        + match bytes[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        }
}

fn parse_header(bytes: &[u8]) -> Result<FrameHeader, ProtocolError> {
    let (b0, b1) = (bytes[0], bytes[1]);
    if b1 & 0x80 != 0 {
        return Err(ProtocolError::protocol(
            "the server masked a frame (servers must not)",
        ));
    }
    if b0 & RSV_MASK & !RSV1 != 0 {
        return Err(ProtocolError::protocol("RSV2 or RSV3 set"));
    }
    let opcode = b0 & 0x0F;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(ProtocolError::protocol(format!(
            "reserved opcode {opcode:#x}"
        )));
    }
    let length = match b1 & 0x7F {
        126 => {
            let n = u16::from_be_bytes([bytes[2], bytes[3]]) as u64;
            if n < 126 {
                return Err(ProtocolError::protocol("a length not in its shortest form"));
            }
            n
        }
        127 => {
            let n = u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes"));
            if n >> 63 != 0 {
                return Err(ProtocolError::protocol(
                    "a 64-bit length with its top bit set",
                ));
            }
            if n <= 0xFFFF {
                return Err(ProtocolError::protocol("a length not in its shortest form"));
            }
            n
        }
        n => n as u64,
    };
    Ok(FrameHeader {
        fin: b0 & FIN != 0,
        rsv1: b0 & RSV1 != 0,
        opcode,
        length,
    })
}

/// A close frame's payload: nothing, or a valid code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, String), ProtocolError> {
    match payload.len() {
        0 => Ok((None, String::new())),
        1 => Err(ProtocolError::protocol("a close frame of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::protocol(format!(
                    "a close frame with the invalid code {code}"
                )));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| {
                ProtocolError::new(CLOSE_INVALID_DATA, "a close reason that is not UTF-8")
            })?;
            Ok((Some(code), reason.to_string()))
        }
    }
}

/// A close frame's payload: the code (when given) and the reason.
pub fn close_payload(code: Option<u16>, reason: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    if let Some(code) = code {
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame (unmasked).
    fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![b0];
        let len = payload.len();
        if len < 126 {
            frame.push(len as u8);
        } else if len <= 0xFFFF {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        frame.extend_from_slice(payload);
        frame
    }

    fn feed_all(bytes: &[u8], max: usize) -> Result<Vec<Event>, ProtocolError> {
        let mut receiver = Receiver::new(max, None);
        let mut events = VecDeque::new();
        receiver.feed(bytes, &mut events)?;
        Ok(events.into())
    }

    /// The same bytes one at a time give the same events.
    fn feed_bytewise(bytes: &[u8], max: usize) -> Result<Vec<Event>, ProtocolError> {
        let mut receiver = Receiver::new(max, None);
        let mut events = VecDeque::new();
        for b in bytes {
            receiver.feed(std::slice::from_ref(b), &mut events)?;
        }
        Ok(events.into())
    }

    #[test]
    fn encodes_masked_frames_of_each_length_form() {
        let mask = [1, 2, 3, 4];
        for len in [0usize, 5, 125, 126, 65535, 65536] {
            let payload = vec![b'x'; len];
            let frame = encode_frame(OP_BINARY, false, &payload, mask);
            assert_eq!(frame[0], 0x82);
            assert_eq!(frame[1] & 0x80, 0x80, "masked");
            let header = header_len(&frame[..2]);
            assert_eq!(frame.len(), header + len);
            assert_eq!(&frame[header - 4..header], &mask);
            let mut body = frame[header..].to_vec();
            apply_mask(&mut body, mask, 0);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn masking_matches_the_bytewise_rule_at_every_phase_and_length() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for phase in 0..8 {
            for len in 0..40 {
                let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
                let expected: Vec<u8> = data
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(phase + i) % 4])
                    .collect();
                let mut masked = data.clone();
                apply_mask(&mut masked, mask, phase);
                assert_eq!(masked, expected, "phase {phase}, length {len}");
            }
        }
    }

    #[test]
    fn reassembles_fragments_with_control_frames_between() {
        let mut bytes = server_frame(0x01, b"hel");
        bytes.extend(server_frame(0x89, b"p"));
        bytes.extend(server_frame(0x00, "lo \u{e9}".as_bytes()));
        bytes.extend(server_frame(0x8A, b""));
        bytes.extend(server_frame(0x80, b"!"));
        bytes.extend(server_frame(0x82, &[0, 255]));
        let expected = vec![
            Event::Ping(b"p".to_vec()),
            Event::Pong(vec![]),
            Event::Text("hello \u{e9}!".into()),
            Event::Binary(vec![0, 255]),
        ];
        assert_eq!(feed_all(&bytes, 1 << 20).unwrap(), expected);
        assert_eq!(feed_bytewise(&bytes, 1 << 20).unwrap(), expected);
    }

    #[test]
    fn long_lengths_and_close() {
        let big = vec![7u8; 70_000];
        let mut bytes = server_frame(0x82, &big);
        bytes.extend(server_frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e']));
        assert_eq!(
            feed_all(&bytes, 1 << 20).unwrap(),
            vec![Event::Binary(big), Event::Close(Some(1000), "bye".into())]
        );
        assert_eq!(
            feed_all(&server_frame(0x88, b""), 10).unwrap(),
            vec![Event::Close(None, String::new())]
        );
    }

    fn close_code_of(bytes: &[u8], max: usize) -> u16 {
        let a = feed_all(bytes, max).unwrap_err();
        let b = feed_bytewise(bytes, max).unwrap_err();
        assert_eq!(a, b);
        a.close_code
    }

    #[test]
    fn broken_rules_and_their_close_codes() {
        // Masked server frame.
        assert_eq!(close_code_of(&[0x81, 0x81, 1, 2, 3, 4, 5], 100), 1002);
        // Reserved opcodes, data and control.
        assert_eq!(close_code_of(&server_frame(0x83, b""), 100), 1002);
        assert_eq!(close_code_of(&server_frame(0x8B, b""), 100), 1002);
        // RSV bits without an extension.
        assert_eq!(close_code_of(&server_frame(0xC1, b"a"), 100), 1002);
        assert_eq!(close_code_of(&server_frame(0xA1, b"a"), 100), 1002);
        // Fragmented control frame, long control frame.
        assert_eq!(close_code_of(&server_frame(0x09, b""), 100), 1002);
        assert_eq!(close_code_of(&server_frame(0x89, &[0; 126]), 1000), 1002);
        // Continuation with nothing to continue; new message mid-message.
        assert_eq!(close_code_of(&server_frame(0x80, b"a"), 100), 1002);
        let mut two = server_frame(0x01, b"a");
        two.extend(server_frame(0x81, b"b"));
        assert_eq!(close_code_of(&two, 100), 1002);
        // Invalid UTF-8: at once, not at the message's end.
        assert_eq!(close_code_of(&server_frame(0x01, &[b'a', 0xFF]), 100), 1007);
        // A truncated character at the end of the message.
        assert_eq!(close_code_of(&server_frame(0x81, &[0xC3]), 100), 1007);
        // Over the limit, before the payload is buffered (none of it sent).
        assert_eq!(close_code_of(&[0x82, 126, 0x01, 0x00], 100), 1009);
        let mut frags = server_frame(0x02, &[0; 60]);
        frags.extend(server_frame(0x80, &[0; 60]));
        assert_eq!(close_code_of(&frags, 100), 1009);
        // Close codes and reasons.
        assert_eq!(close_code_of(&server_frame(0x88, &[0x03]), 100), 1002);
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            let bytes = server_frame(0x88, &code.to_be_bytes());
            assert_eq!(close_code_of(&bytes, 100), 1002, "code {code}");
        }
        assert_eq!(
            close_code_of(&server_frame(0x88, &[0x03, 0xE8, 0xFF]), 100),
            1007
        );
        // Non-minimal and top-bit lengths.
        assert_eq!(close_code_of(&[0x82, 126, 0, 5], 100), 1002);
        assert_eq!(
            close_code_of(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], 100),
            1002
        );
        // Anything after the close frame.
        let mut after = server_frame(0x88, b"");
        after.push(0x81);
        assert_eq!(close_code_of(&after, 100), 1002);
    }

    #[test]
    fn valid_utf8_split_anywhere() {
        let text = "a\u{e9}\u{20ac}\u{1f600}z";
        let bytes = server_frame(0x81, text.as_bytes());
        assert_eq!(
            feed_bytewise(&bytes, 100).unwrap(),
            vec![Event::Text(text.into())]
        );
    }
}
