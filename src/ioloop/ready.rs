//! The loop's ready queue: a FIFO ring of callbacks.
//!
//! A callback chain pushes and pops one entry per callback, so both must be
//! a handful of instructions: a power-of-two ring indexed with a mask, whose
//! push can be tried without growing (`try_push`, the path that must not
//! allocate or panic) and whose growth is a separate, rare step.

use super::Callback;

/// The capacity of a new queue (grown by doubling as needed).
const INITIAL_CAPACITY: usize = 64;

pub(crate) struct ReadyQueue {
    /// Empty slots are `None`; `len` slots from `head` (wrapping) are `Some`.
    slots: Box<[Option<Callback>]>,
    head: usize,
    len: usize,
}

impl ReadyQueue {
    pub fn new() -> Self {
        ReadyQueue {
            slots: empty_slots(INITIAL_CAPACITY),
            head: 0,
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot index `offset` entries after `head` (capacity is a power of two).
    #[inline(always)]
    fn index(&self, offset: usize) -> usize {
        (self.head + offset) & (self.slots.len() - 1)
    }

    /// Appends `make()` without growing; false (and `make` not called) when
    /// the ring is full. Cannot allocate or panic.
    #[inline(always)]
    pub fn try_push_with(&mut self, make: impl FnOnce() -> Callback) -> bool {
        let index = self.index(self.len);
        match self.slots.get_mut(index) {
            Some(slot) if slot.is_none() => {
                *slot = Some(make());
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    /// Appends, growing the ring when it is full.
    #[inline]
    pub fn push(&mut self, callback: Callback) {
        if self.len == self.slots.len() {
            self.grow();
        }
        let index = self.index(self.len);
        self.slots[index] = Some(callback);
        self.len += 1;
    }

    #[inline(always)]
    pub fn pop(&mut self) -> Option<Callback> {
        if self.len == 0 {
            return None;
        }
        let index = self.head;
        let callback = self.slots.get_mut(index)?.take();
        self.head = self.index(1);
        self.len -= 1;
        callback
    }

    /// Doubles the capacity, keeping the order (the entries move to the front).
    #[cold]
    fn grow(&mut self) {
        let len = self.len;
        let mut slots = empty_slots(self.slots.len() * 2);
        for slot in slots.iter_mut().take(len) {
            *slot = self.pop();
        }
        self.slots = slots;
        self.head = 0;
        self.len = len;
    }

    /// Takes every entry out, in order (closing the loop).
    pub fn take_all(&mut self) -> Vec<Callback> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

fn empty_slots(capacity: usize) -> Box<[Option<Callback>]> {
    debug_assert!(capacity.is_power_of_two());
    std::iter::repeat_with(|| None).take(capacity).collect()
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

    fn run_all(queue: &mut ReadyQueue) {
        while let Some(Callback::Boxed(f)) = queue.pop() {
            f();
        }
    }

    #[test]
    fn fifo_across_wrap_around_and_growth() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut queue = ReadyQueue::new();
        // Move head off zero so growth happens with a wrapped ring.
        for n in 0..40 {
            queue.push(recorder(&log, n));
        }
        run_all(&mut queue);
        let mut expected: Vec<u32> = (0..40).collect();
        for n in 100..400 {
            queue.push(recorder(&log, n));
            if n % 3 == 0 {
                // interleave pops with pushes
                if let Some(Callback::Boxed(f)) = queue.pop() {
                    f();
                }
            }
        }
        run_all(&mut queue);
        expected.extend(100..400);
        assert_eq!(*log.borrow(), expected);
        assert!(queue.is_empty());
        assert_eq!(queue.slots.len(), 256);
    }

    #[test]
    fn try_push_with_refuses_a_full_ring_and_pop_on_empty_is_none() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut queue = ReadyQueue::new();
        assert!(queue.pop().is_none());
        for n in 0..INITIAL_CAPACITY as u32 {
            assert!(queue.try_push_with(|| recorder(&log, n)));
        }
        assert!(!queue.try_push_with(|| unreachable!("called although full")));
        assert_eq!(queue.len(), INITIAL_CAPACITY);
        assert_eq!(queue.take_all().len(), INITIAL_CAPACITY);
        assert!(queue.is_empty());
    }
}
