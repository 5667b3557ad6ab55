//! A response as a server might send it: head parsing, body framing, and
//! the chunked decoder over whatever follows, fed in fuzz-chosen pieces.
//! Nothing may panic, and the decoder never returns more than it was fed.
//! The head's end, found as the bytes trickle in, is where a scan of the
//! whole finds it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tornado_rs::http::h1::chunked::ChunkedDecoder;
use tornado_rs::http::h1::response_head::{
    body_framing, find_head_end, parse_response_head, BodyFraming,
};

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let whole = find_head_end(data, 0);
    let mut resume = 0;
    let mut trickled = Err(0);
    for end in (step..data.len()).step_by(step).chain([data.len()]) {
        trickled = find_head_end(&data[..end], resume);
        match trickled {
            Ok(_) => break,
            Err(at) => resume = at,
        }
    }
    assert_eq!(trickled, whole);
    let Ok(Some((head, consumed))) = parse_response_head(data, 16 * 1024) else {
        return;
    };
    assert!(consumed <= data.len());
    for method in ["GET", "HEAD"] {
        let Ok(framing) = body_framing(method, &head) else { continue };
        if framing == BodyFraming::Chunked {
            let mut decoder = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut offered = 0;
            for piece in data[consumed..].chunks(step) {
                offered += piece.len();
                match decoder.decode(piece, &mut out) {
                    Ok(n) => assert!(n <= piece.len()),
                    Err(_) => break,
                }
                if decoder.is_done() {
                    break;
                }
            }
            // Decoded data is never more than the bytes it came from.
            assert!(out.len() <= offered);
        }
    }
});
