//! The loop's timeouts: a binary heap ordered by (deadline, scheduling order),
//! with callbacks in a generation-checked slot table so that cancelling is O(1).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::callback::Callback;

/// Identifies a scheduled timeout; never 0 (the C API's error value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutId(u64);

impl TimeoutId {
    /// The id as a number (never 0), as the C API hands it out.
    pub fn to_raw(self) -> u64 {
        self.0
    }

    /// The id of a number [`to_raw`](Self::to_raw) gave. Any number is
    /// accepted: one that names no pending timeout is `NOT_FOUND`
    /// when removed.
    pub fn from_raw(raw: u64) -> TimeoutId {
        TimeoutId(raw)
    }

    fn new(slot: u32, generation: u32) -> TimeoutId {
        TimeoutId(((generation as u64) << 32) | (slot as u64 + 1))
    }

    fn slot(self) -> Option<usize> {
        (self.0 as u32).checked_sub(1).map(|s| s as usize)
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// A heap entry; stale once its slot's generation moved on (fired or cancelled).
#[derive(Clone, Copy)]
struct Entry {
    when_ns: u64,
    seq: u64,
    slot: u32,
    generation: u32,
}

impl Ord for Entry {
    // Reversed, so the std max-heap pops the earliest deadline, then the
    // earliest scheduled among equal deadlines.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.when_ns, other.seq).cmp(&(self.when_ns, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

struct Slot {
    generation: u32,
    callback: Option<Callback>,
}

/// Below this many heap entries, cancelled ones are simply left to expire.
const COMPACT_MIN_ENTRIES: usize = 1024;

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    next_seq: u64,
    live: usize,
}

impl Timers {
    pub fn insert(&mut self, when_ns: u64, callback: Callback) -> TimeoutId {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 1,
                    callback: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry_slot = &mut self.slots[slot as usize];
        entry_slot.callback = Some(callback);
        let generation = entry_slot.generation;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            when_ns,
            seq,
            slot,
            generation,
        });
        self.live += 1;
        TimeoutId::new(slot, generation)
    }

    /// Cancels a pending timeout and hands back its callback (to be dropped
    /// by the caller outside the loop's borrow). None if unknown or gone.
    pub fn cancel(&mut self, id: TimeoutId) -> Option<Callback> {
        let slot = id.slot()?;
        let entry = self.slots.get_mut(slot)?;
        if entry.generation != id.generation() || entry.callback.is_none() {
            return None;
        }
        let callback = self.release_slot(slot);
        self.maybe_compact();
        callback
    }

    /// The sequence number the next timeout will get: timeouts scheduled from
    /// now on are not run by a `pop_due` bounded by it.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Pops the earliest live timeout due at `now_ns` and scheduled before
    /// `seq_limit`, skipping cancelled entries.
    pub fn pop_due(&mut self, now_ns: u64, seq_limit: u64) -> Option<Callback> {
        while let Some(top) = self.heap.peek().copied() {
            if !self.is_live(&top) {
                self.heap.pop();
                continue;
            }
            if top.when_ns > now_ns || top.seq >= seq_limit {
                return None;
            }
            self.heap.pop();
            return self.release_slot(top.slot as usize);
        }
        None
    }

    /// The earliest live deadline, dropping cancelled entries at the top.
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(top) = self.heap.peek().copied() {
            if self.is_live(&top) {
                return Some(top.when_ns);
            }
            self.heap.pop();
        }
        None
    }

    /// The earliest deadline without cleaning up: may be a cancelled one,
    /// which is earlier than or equal to the true one.
    pub fn earliest_hint(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.when_ns)
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Removes every pending callback (the loop is closing).
    pub fn take_all(&mut self) -> Vec<Callback> {
        self.heap.clear();
        self.free.clear();
        self.live = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|slot| slot.callback)
            .collect()
    }

    fn is_live(&self, entry: &Entry) -> bool {
        let slot = &self.slots[entry.slot as usize];
        slot.generation == entry.generation && slot.callback.is_some()
    }

    fn release_slot(&mut self, slot: usize) -> Option<Callback> {
        let entry = &mut self.slots[slot];
        let callback = entry.callback.take();
        entry.generation = entry.generation.wrapping_add(1).max(1);
        self.free.push(slot as u32);
        self.live -= 1;
        callback
    }

    /// Keeps memory bounded when many timeouts are cancelled long before
    /// their deadline: once half the heap is cancelled entries, rebuild it
    /// from the live ones (O(n), paid for by the cancellations).
    fn maybe_compact(&mut self) {
        let stale = self.heap.len() - self.live;
        if self.heap.len() >= COMPACT_MIN_ENTRIES && stale * 2 >= self.heap.len() {
            let slots = &self.slots;
            self.heap.retain(|e| {
                let slot = &slots[e.slot as usize];
                slot.generation == e.generation && slot.callback.is_some()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn recorder(log: &Rc<RefCell<Vec<u32>>>, n: u32) -> Callback {
        let log = log.clone();
        Callback::Boxed(Box::new(move || log.borrow_mut().push(n)))
    }

    fn run_all_due(t: &mut Timers, now: u64) {
        let limit = t.next_seq();
        while let Some(cb) = t.pop_due(now, limit) {
            match cb {
                Callback::Boxed(f) => f(),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn deadline_order_then_scheduling_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        t.insert(30, recorder(&log, 3));
        t.insert(10, recorder(&log, 1));
        t.insert(20, recorder(&log, 2));
        t.insert(20, recorder(&log, 22));
        t.insert(20, recorder(&log, 23));
        run_all_due(&mut t, 100);
        assert_eq!(*log.borrow(), vec![1, 2, 22, 23, 3]);
        assert!(t.is_empty());
    }

    #[test]
    fn cancelled_never_fires_and_ids_are_not_reused() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        let a = t.insert(10, recorder(&log, 1));
        assert!(t.cancel(a).is_some());
        assert!(t.cancel(a).is_none(), "second cancel finds nothing");
        let b = t.insert(10, recorder(&log, 2));
        assert_ne!(a, b, "a reused slot gets a new id");
        assert!(
            t.cancel(a).is_none(),
            "an old id does not cancel the new timer"
        );
        run_all_due(&mut t, 100);
        assert_eq!(*log.borrow(), vec![2]);
        assert!(t.cancel(b).is_none(), "a fired timer cannot be cancelled");
        assert!(t.cancel(TimeoutId::from_raw(0)).is_none());
        assert!(t.cancel(TimeoutId::from_raw(u64::MAX)).is_none());
    }

    #[test]
    fn not_due_and_seq_limit() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut t = Timers::default();
        t.insert(50, recorder(&log, 1));
        let limit = t.next_seq();
        t.insert(0, recorder(&log, 2));
        assert!(t.pop_due(10, limit).is_none(), "scheduled after the limit");
        assert_eq!(t.next_deadline(), Some(0));
        assert!(t.pop_due(10, u64::MAX).is_some());
        assert_eq!(t.next_deadline(), Some(50));
    }

    #[test]
    fn many_cancellations_keep_memory_bounded() {
        let mut t = Timers::default();
        for round in 0..100u64 {
            let ids: Vec<_> = (0..1000)
                .map(|i| {
                    t.insert(
                        1_000_000 + round * 1000 + i,
                        Callback::Boxed(Box::new(|| {})),
                    )
                })
                .collect();
            for id in ids {
                t.cancel(id);
            }
        }
        assert!(t.is_empty());
        assert!(
            t.heap.len() < 3 * COMPACT_MIN_ENTRIES,
            "heap holds {}",
            t.heap.len()
        );
        assert!(t.slots.len() <= 1000);
    }
}
