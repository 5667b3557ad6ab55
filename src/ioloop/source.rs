//! mio sources (edge-triggered) for the loop's own async I/O: each
//! registration keeps readiness flags and the wakers of the task waiting to
//! read or write. This is what `IOStream` and the TCP server are built on.

use std::cell::RefCell;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::{LoopRef, ERROR, PEER_CLOSED, READ, WRITE};
use crate::error::{Error, Result};

/// Tokens with this bit (and not the handler bit) name a source slot.
pub(crate) const SOURCE_TOKEN_BIT: usize = 1 << 62;

#[derive(Default)]
pub(crate) struct Readiness {
    readable: bool,
    writable: bool,
    /// Error or hang-up: wakes both sides; the next syscall reports it.
    failed: bool,
    /// The peer sent its FIN: reads never block again (they end in 0), even
    /// after a short read found the buffer drained.
    peer_closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl Readiness {
    /// Records an event and returns the wakers to wake.
    fn fire(&mut self, events: u32) -> [Option<Waker>; 2] {
        if events & ERROR != 0 {
            self.failed = true;
        }
        if events & PEER_CLOSED != 0 {
            self.peer_closed = true;
        }
        if events & (READ | ERROR) != 0 {
            self.readable = true;
        }
        if events & (WRITE | ERROR) != 0 {
            self.writable = true;
        }
        let read = if self.readable || self.peer_closed {
            self.read_waker.take()
        } else {
            None
        };
        let write = if self.writable {
            self.write_waker.take()
        } else {
            None
        };
        [read, write]
    }
}

#[derive(Default)]
pub(crate) struct Sources {
    slots: Vec<Option<Rc<RefCell<Readiness>>>>,
    free: Vec<u32>,
}

impl Sources {
    fn insert(&mut self) -> (usize, Rc<RefCell<Readiness>>) {
        let readiness = Rc::new(RefCell::new(Readiness::default()));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(readiness.clone());
                slot as usize
            }
            None => {
                self.slots.push(Some(readiness.clone()));
                self.slots.len() - 1
            }
        };
        (slot, readiness)
    }

    fn remove(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot) {
            if entry.take().is_some() {
                self.free.push(slot as u32);
            }
        }
    }

    pub fn lookup(&self, token: usize) -> Option<Rc<RefCell<Readiness>>> {
        self.slots.get(token & !SOURCE_TOKEN_BIT)?.clone()
    }

    pub fn clear(&mut self) -> Vec<Rc<RefCell<Readiness>>> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Wakes the tasks waiting on a fired source.
pub(crate) fn fire(readiness: &Rc<RefCell<Readiness>>, events: u32) {
    let wakers = readiness.borrow_mut().fire(events);
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}

/// An fd registered with the loop's poller for both directions,
/// edge-triggered. Deregisters when dropped; the fd itself stays open.
pub struct Registration {
    lp: LoopRef,
    fd: RawFd,
    deregistered: std::cell::Cell<bool>,
    slot: usize,
    readiness: Rc<RefCell<Readiness>>,
}

impl LoopRef {
    /// Registers `fd` for readiness notifications (it must stay open until
    /// the registration is dropped).
    pub fn register_fd(&self, fd: RawFd) -> Result<Registration> {
        let mut local = self.open_local()?;
        let (slot, readiness) = local.sources.insert();
        let registered = {
            let poller = self.inner.poller.borrow_mut()?;
            let poller = poller.as_ref().ok_or_else(Error::closed)?;
            poller
                .poll
                .registry()
                .register(
                    &mut SourceFd(&fd),
                    Token(SOURCE_TOKEN_BIT | slot),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| Error::from_io(&format!("cannot watch fd {fd}"), e))
        };
        if let Err(e) = registered {
            local.sources.remove(slot);
            return Err(e);
        }
        Ok(Registration {
            lp: self.clone(),
            fd,
            deregistered: std::cell::Cell::new(false),
            slot,
            readiness,
        })
    }
}

impl Registration {
    /// The registered fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Ready to read (or failed); else remembers the task to wake.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut r = self.readiness.borrow_mut();
        if r.readable || r.failed || r.peer_closed {
            return Poll::Ready(());
        }
        r.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready to write (or failed); else remembers the task to wake.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut r = self.readiness.borrow_mut();
        if r.writable || r.failed {
            return Poll::Ready(());
        }
        r.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// A read may return something (data, the end, an error): no read has
    /// found the fd drained since its last readiness edge, or the peer
    /// closed its side.
    pub fn read_ready(&self) -> bool {
        let r = self.readiness.borrow();
        r.readable || r.failed || r.peer_closed
    }

    /// A read returned `WouldBlock` (or, on a stream socket, fewer bytes
    /// than asked: the kernel's buffer is empty): wait for the next edge.
    pub fn clear_read_ready(&self) {
        self.readiness.borrow_mut().readable = false;
    }

    /// A write returned `WouldBlock`: wait for the next writable edge.
    pub fn clear_write_ready(&self) {
        self.readiness.borrow_mut().writable = false;
    }

    /// Resolves when readable (or failed).
    pub async fn readable(&self) {
        std::future::poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Resolves when writable (or failed).
    pub async fn writable(&self) {
        std::future::poll_fn(|cx| self.poll_write_ready(cx)).await
    }
}

impl Registration {
    /// Stops watching the fd. Call it before closing the fd: once closed,
    /// its number may be reused by another registration.
    pub fn deregister(&self) {
        if self.deregistered.replace(true) {
            return;
        }
        if let Ok(poller) = self.lp.inner.poller.borrow_mut() {
            if let Some(poller) = poller.as_ref() {
                let _ = poller.poll.registry().deregister(&mut SourceFd(&self.fd));
            }
        }
        if let Ok(mut local) = self.lp.local() {
            local.sources.remove(self.slot);
        }
    }

    /// Wakes whoever waits on this fd as if it failed (the stream was closed).
    pub fn wake_all(&self) {
        fire(&self.readiness, ERROR);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.deregister();
    }
}
