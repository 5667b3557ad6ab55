//! Small helpers: thread identity and the monotonic clock.

/// An id of the calling thread, unique among live threads: the thread
/// pointer, which is what `pthread_self` returns on Linux.
///
/// Cheaper than a Rust thread-local in a shared library (a `__tls_get_addr`
/// call) or `thread::current()` (an `Arc` clone); on x86-64 it is one load,
/// not even a call. An id may be reused once its thread has exited; the
/// owner checks stay sound, since a dead owner can no longer race.
#[inline]
pub fn current_thread_id() -> u64 {
    thread_pointer()
}

/// x86-64 Linux: the TLS ABI keeps the thread pointer at `%fs:0` (the
/// thread control block points to itself), and glibc's and musl's
/// `pthread_self` return exactly that word.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
fn thread_pointer() -> u64 {
    let tp: u64;
    // SAFETY: reads one word through %fs, which every Linux thread sets up
    // before it runs any code; no memory is written, no flags are changed.
    unsafe {
        std::arch::asm!(
            "mov {}, qword ptr fs:[0]",
            out(reg) tp,
            options(nostack, readonly, preserves_flags, pure)
        )
    };
    tp
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[inline(always)]
fn thread_pointer() -> u64 {
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

/// An IP address as C callers write one: `127.0.0.1`, `::1` or `[::1]`.
pub fn parse_ip(text: &str) -> crate::error::Result<std::net::IpAddr> {
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| crate::error::Error::invalid(format!("{text:?} is not an IP address")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_id_is_pthread_self_and_differs_between_threads() {
        // SAFETY: pthread_self has no preconditions.
        let expected = unsafe { libc::pthread_self() } as u64;
        assert_eq!(super::current_thread_id(), expected);
        let here = super::current_thread_id();
        let there = std::thread::spawn(super::current_thread_id).join().unwrap();
        assert_ne!(here, there);
    }
}
