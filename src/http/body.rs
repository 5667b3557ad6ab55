//! A response body: its bytes, laid out for the kernel's copy.
//!
//! A body of known length is read straight into its buffer by read(2), and
//! how fast the kernel copies depends on where the buffer starts: when the
//! destination lies a few bytes past the source modulo 4 KiB (for example a
//! page-aligned page-cache page that a server sendfile()s, into a buffer
//! from malloc, which starts 16 bytes into its page), the CPU sees loads
//! alias with the stores just made and the copy runs at less than half its
//! speed (measured: 1 MiB bodies over loopback, 0.75 s of CPU per GiB
//! instead of 0.31). So the body starts 64-byte aligned in its buffer,
//! after at most 63 bytes of padding, and the padding is hidden here.

use std::fmt;
use std::ops::Deref;

/// The alignment of a body read straight into its buffer.
const ALIGN: usize = 64;

/// The bytes of a response body; derefs to `[u8]`.
#[derive(Default)]
pub struct Body {
    buffer: Vec<u8>,
    /// Padding before the first byte of the body.
    start: usize,
}

impl Body {
    /// An empty body in `buffer` (emptied) with room for `capacity` bytes,
    /// whose first byte will be 64-byte aligned (an empty body needs no
    /// room and gets none).
    pub(crate) fn aligned_in(mut buffer: Vec<u8>, capacity: usize) -> Body {
        buffer.clear();
        if capacity == 0 {
            return Body::from(buffer);
        }
        buffer.reserve(capacity + ALIGN - 1);
        let misalignment = buffer.as_ptr() as usize % ALIGN;
        let start = (ALIGN - misalignment) % ALIGN;
        buffer.resize(start, 0);
        Body { buffer, start }
    }

    /// The buffer, for appending body bytes at its end (only appending:
    /// the padding before `start` must stay).
    pub(crate) fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// The buffer with its padding, for reuse by a later body.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// The room to ask of a reused buffer for a body of `len` bytes.
    pub(crate) fn capacity_for(len: usize) -> usize {
        len + ALIGN - 1
    }

    /// The body's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// The bytes as a `Vec`: moves them to the front of the buffer when
    /// it has padding (one copy of the body).
    pub fn into_vec(mut self) -> Vec<u8> {
        self.buffer.drain(..self.start);
        self.buffer
    }
}

/// A clone holds just the bytes, in a buffer of their size.
impl Clone for Body {
    fn clone(&self) -> Body {
        Body::from(self.as_slice().to_vec())
    }
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for Body {
    fn from(buffer: Vec<u8>) -> Body {
        Body { buffer, start: 0 }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Body {}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Body {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Body {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Body {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for Body {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aligned_body_starts_aligned_and_shows_only_its_bytes() {
        for reused in [Vec::new(), vec![7; 100], Vec::with_capacity(1 << 20)] {
            let mut body = Body::aligned_in(reused, 5000);
            assert!(body.is_empty());
            body.buffer_mut().extend_from_slice(b"hello");
            assert_eq!(body.as_ptr() as usize % ALIGN, 0);
            assert_eq!(body, b"hello");
            assert_eq!(format!("{body:?}"), format!("{:?}", b"hello".as_slice()));
            assert!(body.buffer_mut().capacity() >= body.start + 5000);
            assert_eq!(body.clone().into_vec(), b"hello".to_vec());
            let start = body.start;
            assert!(start < ALIGN);
            assert_eq!(
                body.into_buffer().len(),
                start + 5,
                "the padding goes back too"
            );
        }
    }

    #[test]
    fn an_empty_body_allocates_nothing() {
        let body = Body::aligned_in(Vec::new(), 0);
        assert!(body.is_empty() && body.into_buffer().capacity() == 0);
    }

    #[test]
    fn a_plain_body_is_its_vec() {
        let body = Body::from(b"abc".to_vec());
        assert_eq!(body, b"abc".to_vec());
        assert_eq!(body, Body::from(b"abc".to_vec()));
        assert_ne!(body, b"abd");
        assert_eq!(body.into_vec(), b"abc");
    }
}
