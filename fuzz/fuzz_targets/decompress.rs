//! gzip/deflate bodies under a size cap: any input ends in output within the
//! cap or an error, never a panic or more memory than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tornado_rs::http::wire::Decompressor;

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, data)) = data.split_first() else { return };
    let coding = if kind % 2 == 0 { "gzip" } else { "deflate" };
    let mut decoder = Decompressor::new(coding, CAP).expect("a known coding");
    let mut out = Vec::new();
    for piece in data.chunks(usize::from(kind).max(1)) {
        if decoder.feed(piece, &mut out).is_err() {
            break;
        }
        assert!(out.len() as u64 <= CAP);
    }
    let _ = decoder.finish_into(&mut out);
    assert!(out.len() as u64 <= CAP);
});
