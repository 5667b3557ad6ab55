//! The system calls the core makes itself (as mio's `sys`): each wrapped
//! once, with its safety argument, behind a safe function. Besides `ffi`
//! (the C boundary) and the loop's raw C callbacks (`ioloop::raw`), this is
//! the only place the core uses `unsafe`.

use std::io;
use std::os::unix::io::RawFd;

/// x86-64 Linux: the TLS ABI keeps the thread pointer at `%fs:0` (the
/// thread control block points to itself), and glibc's and musl's
/// `pthread_self` return exactly that word.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
pub(crate) fn thread_pointer() -> u64 {
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
pub(crate) fn thread_pointer() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as u64 }
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `epoll_ctl(2)`: adds, modifies or deletes `fd`'s registration on the
/// epoll instance `epfd`, with `events` and the 64-bit `data` the kernel
/// hands back with each event.
pub(crate) fn epoll_ctl(
    epfd: RawFd,
    op: libc::c_int,
    fd: RawFd,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: `event` is a valid epoll_event for the duration of the call; the
    // kernel validates both fds and reports bad ones through errno.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut event) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `O_NONBLOCK` on `fd`, keeping its other status flags.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with F_GETFL reads the flags of any fd; a bad fd is -1.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above, F_SETFL only changes status flags.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One `read(2)` of at most `max` bytes from `fd`, appended to `dst`
/// (straight into its spare capacity: no intermediate buffer, no zeroing).
/// Returns how many bytes were read (0 at the end of the stream).
pub(crate) fn read_appending(fd: RawFd, dst: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    dst.reserve(max);
    let spare = &mut dst.spare_capacity_mut()[..max];
    // SAFETY: read(2) writes at most `spare.len()` bytes into `spare`,
    // memory the Vec owns and has reserved; nothing reads it before.
    let got = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let filled = dst.len() + got as usize;
    // SAFETY: the first `got` bytes of the spare capacity were just written
    // by read(2), so `filled` bytes are initialised.
    unsafe { dst.set_len(filled) };
    Ok(got as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_id_is_pthread_self_and_differs_between_threads() {
        // SAFETY: pthread_self has no preconditions.
        let expected = unsafe { libc::pthread_self() } as u64;
        assert_eq!(crate::util::current_thread_id(), expected);
        let here = crate::util::current_thread_id();
        let there = std::thread::spawn(crate::util::current_thread_id)
            .join()
            .unwrap();
        assert_ne!(here, there);
    }
}
