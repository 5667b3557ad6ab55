//! Small helpers: thread identity, the monotonic clock, seconds and IP
//! addresses from callers.

/// An id of the calling thread, unique among live threads: the thread
/// pointer, which is what `pthread_self` returns on Linux.
///
/// Cheaper than a Rust thread-local in a shared library (a `__tls_get_addr`
/// call) or `thread::current()` (an `Arc` clone); on x86-64 it is one load,
/// not even a call. An id may be reused once its thread has exited; the
/// owner checks stay sound, since a dead owner can no longer race.
#[inline]
pub fn current_thread_id() -> u64 {
    crate::sys::thread_pointer()
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
#[inline]
pub fn monotonic_ns() -> u64 {
    crate::sys::monotonic_ns()
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

/// An IP address as C callers write one: `127.0.0.1`, `::1` or `[::1]`.
pub fn parse_ip(text: &str) -> crate::error::Result<std::net::IpAddr> {
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| crate::error::Error::invalid(format!("{text:?} is not an IP address")))
}

#[cfg(test)]
mod tests {}
