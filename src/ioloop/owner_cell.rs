//! A `RefCell` that only the thread owning the loop may touch.

use std::cell::{RefCell, RefMut};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;

use crate::error::{Error, Result};
use crate::util::current_thread_id;

/// Loop-local state shared through the loop's `Arc`.
///
/// Wakers and cross-thread handles carry that `Arc` to other threads, so the
/// container must be `Sync`; every access checks the calling thread instead,
/// which makes a foreign-thread access an error rather than a data race.
pub(crate) struct OwnerCell<T> {
    owner: u64,
    cell: ManuallyDrop<RefCell<T>>,
}

// SAFETY: the contents are only reachable through `borrow_mut`, which refuses
// any thread but `owner`, so they are never touched by two threads. The loop
// empties the cell on its owner thread when it closes, so a last `Arc` dropped
// elsewhere drops only plain data.
unsafe impl<T> Sync for OwnerCell<T> {}
// SAFETY: as above; moving the cell between threads moves no access rights.
unsafe impl<T> Send for OwnerCell<T> {}

/// Proof that the current thread is a given owner: made by a checked call,
/// and `!Send`, so it never leaves the thread it was made on. Borrowing with
/// it costs a compare instead of a thread-local lookup (which is a function
/// call in a shared library).
#[derive(Clone, Copy)]
pub(crate) struct OnOwner {
    owner: u64,
    _not_send: PhantomData<*const ()>,
}

impl<T> OwnerCell<T> {
    /// Checks the calling thread once, for later `borrow_on` calls.
    #[inline]
    pub fn token(&self) -> Result<OnOwner> {
        self.try_token().ok_or_else(Error::wrong_thread)
    }

    /// `token` without building an error (for callers that have another path).
    #[inline]
    pub fn try_token(&self) -> Option<OnOwner> {
        self.is_owner().then_some(OnOwner {
            owner: self.owner,
            _not_send: PhantomData,
        })
    }

    /// Borrows with a token made on this thread for this owner.
    #[inline]
    pub fn borrow_on(&self, token: OnOwner) -> Result<RefMut<'_, T>> {
        if token.owner != self.owner {
            return Err(Error::wrong_thread());
        }
        self.cell
            .try_borrow_mut()
            .map_err(|_| Error::new(crate::error::Code::RUNNING, "loop state is busy"))
    }

    /// `borrow_on` for hot paths that have another way out: no error built.
    #[inline(always)]
    pub fn try_borrow_on(&self, token: OnOwner) -> Option<RefMut<'_, T>> {
        if token.owner != self.owner {
            return None;
        }
        self.cell.try_borrow_mut().ok()
    }

    pub fn new(owner: u64, value: T) -> Self {
        OwnerCell {
            owner,
            cell: ManuallyDrop::new(RefCell::new(value)),
        }
    }

    #[inline]
    pub fn is_owner(&self) -> bool {
        current_thread_id() == self.owner
    }

    /// Borrows the contents; fails on a foreign thread or a re-entrant borrow.
    #[inline]
    pub fn borrow_mut(&self) -> Result<RefMut<'_, T>> {
        if !self.is_owner() {
            return Err(Error::wrong_thread());
        }
        self.cell
            .try_borrow_mut()
            .map_err(|_| Error::new(crate::error::Code::RUNNING, "loop state is busy"))
    }
}

impl<T> Drop for OwnerCell<T> {
    fn drop(&mut self) {
        // Contents may hold `Rc`s: dropping them on a foreign thread would race
        // with the owner. That happens only for a loop that was never closed
        // (leaked), so leaking its remains is the safe choice.
        if self.is_owner() {
            // SAFETY: dropped exactly once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.cell) };
        }
    }
}
