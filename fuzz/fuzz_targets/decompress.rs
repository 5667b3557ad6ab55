//! gzip/deflate bodies under a size cap: any input ends in output within the
//! cap or an error, never a panic or more memory than the cap; streamed,
//! no piece is over MAX_STREAMED_CHUNK.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::Cell;
use std::rc::Rc;

use tornado_rs::http::decompress::{Decompressor, MAX_STREAMED_CHUNK};

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, data)) = data.split_first() else { return };
    let coding = if kind % 2 == 0 { "gzip" } else { "deflate" };
    let streamed = Rc::new(Cell::new(0u64));
    let stream = (kind & 0x80 != 0).then(|| {
        let streamed = streamed.clone();
        Rc::new(move |piece: &[u8]| {
            assert!(piece.len() <= MAX_STREAMED_CHUNK);
            streamed.set(streamed.get() + piece.len() as u64);
        }) as Rc<tornado_rs::http::request::ChunkCallback>
    });
    let mut decoder = Decompressor::new(coding, CAP, stream).expect("a known coding");
    let mut out = Vec::new();
    for piece in data.chunks(usize::from(kind).max(1)) {
        if decoder.feed(piece, &mut out).is_err() {
            break;
        }
        assert!(out.len() as u64 + streamed.get() <= CAP);
    }
    let _ = decoder.finish_into(&mut out);
    assert!(out.len() as u64 + streamed.get() <= CAP);
});
