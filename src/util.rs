//! Small helpers: thread identity and the monotonic clock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    // A const-initialised Cell has no destructor, so it stays readable while
    // the thread tears down its other thread-locals.
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
}

/// A process-unique id of the calling thread (never 0, never reused).
///
/// Cheaper than `std::thread::current().id()`, which clones an `Arc`.
#[inline]
pub fn current_thread_id() -> u64 {
    THREAD_ID.with(|id| {
        let value = id.get();
        if value != 0 {
            return value;
        }
        let fresh = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
        id.set(fresh);
        fresh
    })
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts a duration in seconds from a caller to nanoseconds, rejecting
/// NaN, infinities and negative values.
pub fn seconds_to_ns(seconds: f64) -> Option<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    // Saturates far beyond any practical delay (about 584 years).
    Some((seconds * 1e9).min(u64::MAX as f64 / 2.0) as u64)
}

pub fn ns_to_seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}
