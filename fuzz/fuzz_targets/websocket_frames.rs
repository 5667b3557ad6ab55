//! The WebSocket frame parser (src/websocket/frame.rs) on server bytes of
//! any shape, with and without permessage-deflate: it never panics, every
//! text message it yields is UTF-8 (a Rust String), no message is over the
//! limit (decompressed size included), and feeding the same bytes in other
//! pieces gives the same events and the same error.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use tornado_rs::websocket::deflate::{Agreed, Inflater};
use tornado_rs::websocket::frame::{Event, Receiver};

const MAX: usize = 64 * 1024;

fn run(data: &[u8], piece: usize, deflate: bool) -> (Vec<Event>, Option<u16>) {
    let inflater = deflate.then(|| {
        Inflater::new(&Agreed {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        })
    });
    let mut receiver = Receiver::new(MAX, inflater);
    let mut events = VecDeque::new();
    let mut error = None;
    for chunk in data.chunks(piece.max(1)) {
        if let Err(e) = receiver.feed(chunk, &mut events) {
            error = Some(e.close_code);
            break;
        }
    }
    for event in &events {
        match event {
            Event::Text(t) => assert!(t.len() <= MAX),
            Event::Binary(b) => assert!(b.len() <= MAX),
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Close(code, reason) => {
                assert!(code.is_none_or(|c| (1000..5000).contains(&c)));
                assert!(reason.len() <= 123);
            }
        }
    }
    (events.into(), error)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let deflate = mode & 0x80 != 0;
    let piece = usize::from(mode & 0x7F) + 1;
    let whole = run(data, data.len(), deflate);
    let split = run(data, piece, deflate);
    if deflate {
        assert_eq!(whole.0, split.0, "pieces of {piece} changed the events");
        assert_eq!(whole.1.is_some(), split.1.is_some(), "pieces of {piece}: {whole:?} / {split:?}");
    } else {
        assert_eq!(whole, split, "pieces of {piece} changed the outcome");
    }
});
