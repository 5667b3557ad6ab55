//! The byte queue a stream reads into and writes from.

/// A byte queue over one initialized buffer: bytes live in `start..end`.
/// Consuming is O(1); reading appends into `end..` without zero-filling
/// each time (the buffer is initialized once, as it grows), and the live
/// bytes move to the front only when the free tail is too short.
#[derive(Default)]
pub(super) struct ByteQueue {
    pub(super) data: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// An emptied buffer larger than this is released rather than kept.
pub(super) const KEEP_BUFFER: usize = 1024 * 1024;

impl ByteQueue {
    pub(super) fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The live bytes, to change in place (TLS records are decrypted where
    /// they were read).
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > KEEP_BUFFER {
                self.data = Vec::new();
            }
        }
    }

    pub(super) fn take(&mut self, n: usize) -> Vec<u8> {
        let taken = self.bytes()[..n].to_vec();
        self.consume(n);
        taken
    }

    /// Room for `want` more bytes after the live ones; `commit` what was used.
    pub(super) fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.data.len() - self.end < want && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < want {
            self.data.resize(self.end + want, 0);
        }
        &mut self.data[self.end..self.end + want]
    }

    pub(super) fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// Releases the buffer if it is empty and larger than `keep` bytes:
    /// true if it did.
    pub(super) fn release_if_empty(&mut self, keep: usize) -> bool {
        let release = self.len() == 0 && self.data.len() > keep;
        if release {
            self.data = Vec::new();
        }
        release
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).copy_from_slice(bytes);
        self.commit(bytes.len());
    }
}
