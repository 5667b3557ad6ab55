//! fd handlers: level-triggered epoll registrations on the poller's epoll
//! instance, like Tornado's and libuv's, beside mio's edge-triggered sources.
//!
//! mio registers its own sources with EPOLLET. Caller fds are registered here
//! without it, directly with `epoll_ctl` on the same epoll fd, so a handler
//! that leaves data unread is reported again by the kernel on the next
//! iteration: level-triggered semantics with no extra syscall per event.

use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::rc::Rc;

use super::raw::{RawFdCall, RawFdCallRef};
use crate::error::{Code, Error, Result};

/// Readable (`EPOLLIN`).
pub const READ: u32 = 0x001;
/// Writable (`EPOLLOUT`).
pub const WRITE: u32 = 0x004;
/// Error or hang-up (`EPOLLERR`/`EPOLLHUP`); always reported.
pub const ERROR: u32 = 0x008;
/// Every flag a caller may pass.
pub const ALL_EVENTS: u32 = READ | WRITE | ERROR;
/// Internal, for streams only: the peer shut down its sending side
/// (`EPOLLRDHUP`), so a read will not block again. Never given to C handlers.
pub(crate) const PEER_CLOSED: u32 = 0x100;

/// Tokens with this bit name a handler slot; mio sources use the others.
pub(crate) const HANDLER_TOKEN_BIT: usize = 1 << 63;

/// A handler's callable part.
pub(crate) enum Handler {
    Raw(RawFdCall),
    Rust(Rc<dyn Fn(RawFd, u32)>),
}

/// A handler copied out of the table, called with the loop's state released.
pub(crate) enum HandlerRef {
    Raw(RawFdCallRef),
    Rust(Rc<dyn Fn(RawFd, u32)>),
}

impl HandlerRef {
    pub fn call(self, fd: RawFd, events: u32) {
        match self {
            HandlerRef::Raw(call) => call.call(fd, events),
            HandlerRef::Rust(f) => {
                super::callback::run_contained(|| f(fd, events));
            }
        }
    }
}

struct Slot {
    generation: u32,
    fd: RawFd,
    handler: Option<Handler>,
}

#[derive(Default)]
pub(crate) struct Handlers {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_fd: HashMap<RawFd, u32>,
}

fn token(slot: u32, generation: u32) -> usize {
    HANDLER_TOKEN_BIT | (((generation & 0x7fff_ffff) as usize) << 32) | slot as usize
}

fn epoll_mask(events: u32) -> u32 {
    // TORNADO_READ/WRITE are the epoll values; EPOLLERR and EPOLLHUP are
    // always reported by the kernel. No EPOLLET: level-triggered.
    events & (READ | WRITE)
}

pub(crate) fn validate_events(events: u32) -> Result<()> {
    if events & !ALL_EVENTS != 0 {
        return Err(Error::invalid(format!(
            "unknown event bits 0x{:x} (allowed: READ=1, WRITE=4, ERROR=8)",
            events & !ALL_EVENTS
        )));
    }
    Ok(())
}

fn epoll_ctl(epfd: RawFd, op: libc::c_int, fd: RawFd, events: u32, token: usize) -> Result<()> {
    crate::sys::epoll_ctl(epfd, op, fd, events, token as u64)
        .map_err(|e| Error::from_io(&format!("cannot watch fd {fd}"), e))
}

impl Handlers {
    pub fn add(
        &mut self,
        epfd: RawFd,
        fd: RawFd,
        events: u32,
        handler: Handler,
    ) -> Result<(), (Error, Handler)> {
        if fd < 0 {
            return Err((
                Error::new(Code::BAD_FD, format!("invalid fd {fd}")),
                handler,
            ));
        }
        if let Err(e) = validate_events(events) {
            return Err((e, handler));
        }
        if self.by_fd.contains_key(&fd) {
            return Err((
                Error::new(Code::EXISTS, format!("fd {fd} already has a handler")),
                handler,
            ));
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    generation: 1,
                    fd: -1,
                    handler: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[slot as usize].generation;
        if let Err(e) = epoll_ctl(
            epfd,
            libc::EPOLL_CTL_ADD,
            fd,
            epoll_mask(events),
            token(slot, generation),
        ) {
            self.free.push(slot);
            return Err((e, handler));
        }
        let entry = &mut self.slots[slot as usize];
        entry.fd = fd;
        entry.handler = Some(handler);
        self.by_fd.insert(fd, slot);
        Ok(())
    }

    pub fn update(&mut self, epfd: RawFd, fd: RawFd, events: u32) -> Result<()> {
        validate_events(events)?;
        let slot = *self.by_fd.get(&fd).ok_or_else(|| not_registered(fd))?;
        let generation = self.slots[slot as usize].generation;
        epoll_ctl(
            epfd,
            libc::EPOLL_CTL_MOD,
            fd,
            epoll_mask(events),
            token(slot, generation),
        )
    }

    /// Unregisters `fd`; the handler is handed back to be released later.
    pub fn remove(&mut self, epfd: RawFd, fd: RawFd) -> Result<Handler> {
        let slot = self.by_fd.remove(&fd).ok_or_else(|| not_registered(fd))?;
        // The caller may have closed the fd already (epoll then dropped it by
        // itself): the registration is gone either way, so ignore the result.
        let _ = epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
        let entry = &mut self.slots[slot as usize];
        let handler = entry.handler.take().expect("registered slot has a handler");
        entry.generation = entry.generation.wrapping_add(1).max(1);
        entry.fd = -1;
        self.free.push(slot);
        Ok(handler)
    }

    /// The handler a poller token names, if it is still registered: a handler
    /// removed earlier in the same iteration is not found.
    pub fn lookup(&self, token: usize) -> Option<(RawFd, HandlerRef)> {
        let slot = token & 0xffff_ffff;
        let generation = ((token >> 32) & 0x7fff_ffff) as u32;
        let entry = self.slots.get(slot)?;
        if entry.generation & 0x7fff_ffff != generation {
            return None;
        }
        let handler = match entry.handler.as_ref()? {
            Handler::Raw(call) => HandlerRef::Raw(call.by_ref()),
            Handler::Rust(f) => HandlerRef::Rust(f.clone()),
        };
        Some((entry.fd, handler))
    }

    /// Removes every handler (the loop is closing; the epoll fd goes with it).
    pub fn take_all(&mut self) -> Vec<Handler> {
        self.by_fd.clear();
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|s| s.handler)
            .collect()
    }
}

fn not_registered(fd: RawFd) -> Error {
    Error::new(Code::NOT_FOUND, format!("fd {fd} has no handler"))
}
