//! Small helpers: thread identity and the monotonic clock.

/// An id of the calling thread, unique among live threads.
///
/// `pthread_self` reads the thread pointer: cheaper than a Rust thread-local
/// in a shared library (a `__tls_get_addr` call) or `thread::current()` (an
/// `Arc` clone). An id may be reused once its thread has exited; the owner
/// checks stay sound, since a dead owner can no longer race.
#[inline]
pub fn current_thread_id() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as u64 }
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
