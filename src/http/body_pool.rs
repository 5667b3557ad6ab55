//! Body buffers handed back by finished responses and reused by later
//! bodies of known length. Their memory is already mapped, so a large body
//! costs no page faults and no heap growth; small buffers are not kept, and
//! the pool is bounded in bytes.

use std::cell::RefCell;

/// Buffers smaller than this are cheap to allocate afresh: not kept.
const MIN_KEPT: usize = 64 * 1024;
/// The most the pool holds at once, in bytes of capacity.
const MAX_KEPT_BYTES: usize = 32 * 1024 * 1024;

/// A client's spare body buffers (see the module's comment), shared by its
/// fetches on one loop thread.
#[derive(Default)]
pub struct BodyPool {
    spare: RefCell<Vec<Vec<u8>>>,
}

impl BodyPool {
    /// Keeps `body`'s memory for a later response, when it is large enough
    /// to be worth keeping and the pool has room; otherwise frees it.
    pub fn give_back(&self, mut body: Vec<u8>) {
        let capacity = body.capacity();
        if capacity < MIN_KEPT {
            return; // most responses: nothing to look at
        }
        let Ok(mut spare) = self.spare.try_borrow_mut() else {
            return;
        };
        let held: usize = spare.iter().map(Vec::capacity).sum();
        if held + capacity <= MAX_KEPT_BYTES {
            body.clear();
            spare.push(body);
        }
    }

    /// The smallest kept buffer with room for `len` bytes, emptied.
    pub fn take(&self, len: usize) -> Option<Vec<u8>> {
        if len < MIN_KEPT {
            return None;
        }
        let mut spare = self.spare.try_borrow_mut().ok()?;
        let (at, _) = spare
            .iter()
            .enumerate()
            .filter(|(_, buffer)| buffer.capacity() >= len)
            .min_by_key(|(_, buffer)| buffer.capacity())?;
        Some(spare.swap_remove(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_large_buffers_within_its_bound_and_hands_out_the_best_fit() {
        let pool = BodyPool::default();
        pool.give_back(vec![1; 100]); // too small to keep
        assert!(pool.take(MIN_KEPT).is_none());
        pool.give_back(Vec::with_capacity(4 * MIN_KEPT));
        pool.give_back(Vec::with_capacity(MIN_KEPT));
        let best = pool.take(MIN_KEPT).unwrap();
        assert!(best.is_empty() && best.capacity() < 4 * MIN_KEPT);
        assert!(pool.take(5 * MIN_KEPT).is_none(), "none large enough");
        assert!(pool.take(2 * MIN_KEPT).unwrap().capacity() >= 4 * MIN_KEPT);
        for _ in 0..100 {
            pool.give_back(Vec::with_capacity(MAX_KEPT_BYTES / 4));
        }
        let held: usize = pool.spare.borrow().iter().map(Vec::capacity).sum();
        assert!(held <= MAX_KEPT_BYTES, "holds {held} bytes");
    }
}
