//! The event loop (Tornado's `IOLoop`): fd handlers, timeouts, callbacks and
//! the tasks that run Rust `async` code and C coroutines.
//!
//! One iteration: poll for I/O (timeout 0 when callbacks are pending, else
//! until the next deadline), call the handlers of ready fds, run the due
//! timeouts, then run the callbacks that were queued before the batch began;
//! callbacks queued meanwhile wait for the next iteration.
//!
//! While callbacks keep coming, `start` runs batches back to back for about
//! `CALLBACK_SLICE_NS` between polls: a long callback chain costs no syscall
//! per callback, and fd events and timers are still served every ~100 us
//! (the clock is read once per `BATCHES_PER_CLOCK_READ` batches).

mod callback;
mod close;
mod handlers;
mod owner_cell;
mod periodic;
pub(crate) mod raw;
mod ready;
mod run;
mod source;
mod task;
mod timers;

use std::marker::PhantomData;
use std::os::unix::io::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

pub(crate) use callback::{Callback, RemoteCallback};
pub(crate) use handlers::{Handler, HANDLER_TOKEN_BIT, PEER_CLOSED};
pub use handlers::{ERROR, READ, WRITE};
use owner_cell::{OnOwner, OwnerCell};
pub use periodic::PeriodicCallback;
use raw::RawCall;
pub use source::Registration;
pub use timers::TimeoutId;

use crate::error::{Code, Error, Result};
use crate::util::{current_thread_id, monotonic_ns};

/// How long `start` runs callback batches back to back before it polls for
/// I/O and timers again, while callbacks keep coming (see the module doc).
const CALLBACK_SLICE_NS: u64 = 100_000;
/// How many batches run between two reads of the clock during a slice.
const BATCHES_PER_CLOCK_READ: u32 = 64;
const WAKER_TOKEN: Token = Token(usize::MAX >> 1);
const EVENTS_CAPACITY: usize = 1024;

/// State only the owner thread touches.
struct Local {
    ready: ready::ReadyQueue,
    timers: timers::Timers,
    handlers: handlers::Handlers,
    tasks: task::Tasks,
    sources: source::Sources,
    /// Inside `start`, `run_once` or `run_sync`.
    running: bool,
    closed: bool,
    /// A spare buffer swapped with the remote queue, so neither side reallocates.
    /// The reusable buffer of fired (token, events) pairs.
    fired_spare: Vec<(usize, u32)>,
}

struct Poller {
    poll: Poll,
    events: Events,
}

pub(crate) struct Inner {
    local: OwnerCell<Local>,
    poller: OwnerCell<Option<Poller>>,
    epoll_fd: RawFd,
    /// Callbacks queued from other threads (lock-free: producers never
    /// block each other or the loop).
    remote: SegQueue<RemoteCallback>,
    /// Set after each push to `remote`: a one-load check for the loop's
    /// fast path (the sleeping path checks the queue itself).
    remote_pending: AtomicBool,
    /// The loop thread is running an iteration (not blocked in poll, not idle
    /// between `run_once` calls): a cross-thread registration need not wake it.
    awake: AtomicBool,
    /// A wake-up was written and not yet consumed by a poll: coalesces wake-ups.
    wake_sent: AtomicBool,
    stop_requested: AtomicBool,
    closed: AtomicBool,
    waker: Waker,
}

impl Inner {
    fn wake(&self) {
        if !self.wake_sent.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                crate::log::error(&format!("cannot wake the loop: {e}"));
            }
        }
    }

    /// Queues a callback from any thread. (A callback that races with the
    /// loop's closing is dropped, uncalled, when the loop's memory goes.)
    fn push_remote(&self, callback: RemoteCallback) -> Result<(), (Error, RemoteCallback)> {
        if self.closed.load(Ordering::SeqCst) {
            return Err((Error::closed(), callback));
        }
        self.remote.push(callback);
        self.remote_pending.store(true, Ordering::Release);
        // Pairs with the fence in `poll_io`: either the loop sees the
        // callback before it sleeps, or this thread sees it asleep.
        fence(Ordering::SeqCst);
        if !self.awake.load(Ordering::SeqCst) {
            self.wake();
        }
        Ok(())
    }

    fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::SeqCst);
        if !self.awake.load(Ordering::SeqCst) {
            self.wake();
        }
    }
}

/// The owner of a loop. Dropping it closes the loop.
pub struct IOLoop {
    lp: LoopRef,
}

/// A reference to a loop, for the loop's own thread (`!Send`); cheap to clone.
#[derive(Clone)]
pub struct LoopRef {
    inner: Arc<Inner>,
    _not_send: PhantomData<Rc<()>>,
}

/// A `Send + Sync` handle for other threads: queue callbacks, stop the loop.
#[derive(Clone)]
pub struct LoopHandle {
    inner: Arc<Inner>,
}

impl IOLoop {
    /// Creates a loop owned by the calling thread, which must be the one that runs it.
    pub fn new() -> Result<IOLoop> {
        let poll = Poll::new().map_err(|e| Error::from_io("cannot create the poller", e))?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)
            .map_err(|e| Error::from_io("cannot create the waker", e))?;
        let owner = current_thread_id();
        let inner = Inner {
            local: OwnerCell::new(
                owner,
                Local {
                    ready: ready::ReadyQueue::new(),
                    timers: Default::default(),
                    handlers: Default::default(),
                    tasks: Default::default(),
                    sources: Default::default(),
                    running: false,
                    closed: false,
                    fired_spare: Vec::new(),
                },
            ),
            epoll_fd: poll.as_raw_fd(),
            poller: OwnerCell::new(
                owner,
                Some(Poller {
                    poll,
                    events: Events::with_capacity(EVENTS_CAPACITY),
                }),
            ),
            remote: SegQueue::new(),
            remote_pending: AtomicBool::new(false),
            awake: AtomicBool::new(false),
            wake_sent: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waker,
        };
        Ok(IOLoop {
            lp: LoopRef {
                inner: Arc::new(inner),
                _not_send: PhantomData,
            },
        })
    }

    /// A new `LoopRef` to this loop, for this thread (callbacks, futures and
    /// tasks keep one; `IOLoop` also derefs to one).
    pub fn loop_ref(&self) -> LoopRef {
        self.lp.clone()
    }

    /// Closes the loop: every pending callback, timeout, handler and task is
    /// dropped without being called (C registrations' drop functions run);
    /// registered fds are not closed. Fails while the loop is running.
    pub fn close(&self) -> Result<()> {
        self.lp.close()
    }
}

impl std::ops::Deref for IOLoop {
    type Target = LoopRef;
    fn deref(&self) -> &LoopRef {
        &self.lp
    }
}

impl Drop for IOLoop {
    fn drop(&mut self) {
        if let Err(e) = self.lp.close() {
            crate::log::error(&format!("dropping a loop that cannot close: {e}"));
        }
    }
}

impl LoopHandle {
    /// Queues `f` to run on the loop thread on its next iteration; wakes the loop.
    pub fn add_callback(&self, f: impl FnOnce() + Send + 'static) -> Result<()> {
        self.inner
            .push_remote(RemoteCallback::Boxed(Box::new(f)))
            .map_err(|(e, _)| e)
    }

    /// Makes `start` return after the current iteration (from any thread).
    pub fn stop(&self) {
        self.inner.request_stop();
    }
}

/// The outcome of trying to queue a callback: the callback comes back on failure.
pub(crate) type Queued = Result<(), (Error, Callback)>;

impl LoopRef {
    fn local(&self) -> Result<std::cell::RefMut<'_, Local>> {
        self.inner.local.borrow_mut()
    }

    /// Checks the thread once; hot paths then borrow with `local_on`.
    #[inline]
    pub(crate) fn owner_token(&self) -> Result<OnOwner> {
        self.inner.local.token()
    }

    #[inline]
    fn local_on(&self, on: OnOwner) -> Result<std::cell::RefMut<'_, Local>> {
        self.inner.local.borrow_on(on)
    }

    fn open_local(&self) -> Result<std::cell::RefMut<'_, Local>> {
        let local = self.local()?;
        if local.closed {
            return Err(Error::closed());
        }
        Ok(local)
    }

    /// Whether `self` and `other` are handles of the same loop.
    pub fn same_loop(&self, other: &LoopRef) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A `Send` handle for other threads.
    pub fn loop_handle(&self) -> LoopHandle {
        LoopHandle {
            inner: self.inner.clone(),
        }
    }

    /// Queues a callback from any thread. Touches only the thread-safe part
    /// of the loop, so the C layer may call it through a pointer shared with
    /// other threads.
    pub(crate) fn thread_safe_push(
        &self,
        callback: RemoteCallback,
    ) -> Result<(), (Error, RemoteCallback)> {
        self.inner.push_remote(callback)
    }

    /// `stop` from any thread (see `thread_safe_push`).
    pub(crate) fn thread_safe_stop(&self) {
        self.inner.request_stop();
    }

    /// The owner token if this is the owner thread (no error built otherwise).
    #[inline]
    pub(crate) fn try_owner_token(&self) -> Option<OnOwner> {
        self.inner.local.try_token()
    }

    /// True on the thread that owns (runs) this loop.
    pub fn is_owner_thread(&self) -> bool {
        self.inner.local.is_owner()
    }

    pub(crate) fn check_thread(&self) -> Result<()> {
        if self.is_owner_thread() {
            Ok(())
        } else {
            Err(Error::wrong_thread())
        }
    }

    /// Whether the loop was closed (after which it runs nothing and
    /// registering anything fails with `CLOSED`). Any thread may ask.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Monotonic time in seconds, the clock of `call_at`.
    pub fn time(&self) -> f64 {
        crate::util::ns_to_seconds(monotonic_ns())
    }

    // ---- callbacks ----

    /// Queues a callback for the next iteration (owner thread).
    pub(crate) fn queue(&self, callback: Callback) -> Queued {
        match self.owner_token() {
            Ok(on) => self.queue_on(on, callback),
            Err(e) => Err((e, callback)),
        }
    }

    /// `queue` with the thread already checked.
    #[inline(always)]
    pub(crate) fn queue_on(&self, on: OnOwner, callback: Callback) -> Queued {
        let mut local = match self.local_on(on) {
            Ok(local) if !local.closed => local,
            Ok(_) => return Err((Error::closed(), callback)),
            Err(e) => return Err((e, callback)),
        };
        let was_idle = local.ready.is_empty();
        local.ready.push(callback);
        let wake_host = was_idle && !local.running;
        drop(local);
        if wake_host {
            // A host polling `backend_fd` must see that work became due now.
            self.inner.wake();
        }
        Ok(())
    }

    /// `queue` for the hot path of a callback chain: only on the owner
    /// thread of a running, open loop whose queue has room, so it needs no
    /// wake-up, allocates nothing and cannot fail or panic. False: use `queue`.
    #[inline(always)]
    pub(crate) fn try_queue_running(&self, call: RawCall) -> bool {
        let Some(on) = self.try_owner_token() else {
            return false;
        };
        let Some(mut local) = self.inner.local.try_borrow_on(on) else {
            return false;
        };
        local.running && !local.closed && local.ready.try_push_with(|| Callback::Raw(call))
    }

    /// Runs `f` on the next iteration.
    pub fn add_callback(&self, f: impl FnOnce() + 'static) -> Result<()> {
        self.queue(Callback::Boxed(Box::new(f))).map_err(|(e, _)| e)
    }

    // ---- timeouts ----

    pub(crate) fn schedule_at_ns(
        &self,
        when_ns: u64,
        callback: Callback,
    ) -> Result<TimeoutId, (Error, Callback)> {
        let mut local = match self.open_local() {
            Ok(local) => local,
            Err(e) => return Err((e, callback)),
        };
        let earlier = local.ready.is_empty()
            && local
                .timers
                .earliest_hint()
                .map_or(true, |first| when_ns < first);
        let id = local.timers.insert(when_ns, callback);
        let wake_host = earlier && !local.running;
        drop(local);
        if wake_host {
            self.inner.wake();
        }
        Ok(id)
    }

    /// Runs `f` after `delay`.
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> Result<TimeoutId> {
        let when = monotonic_ns().saturating_add(delay.as_nanos().min(u64::MAX as u128) as u64);
        self.schedule_at_ns(when, Callback::Boxed(Box::new(f)))
            .map_err(|(e, _)| e)
    }

    /// Cancels a timeout; its callback is dropped without being called.
    pub fn remove_timeout(&self, id: TimeoutId) -> Result<()> {
        let callback = self.open_local()?.timers.cancel(id).ok_or_else(|| {
            Error::new(Code::NOT_FOUND, "no such timeout (already run or removed)")
        })?;
        self.release_later(callback);
        Ok(())
    }

    /// Drops a removed registration's callback on a later iteration, so that
    /// a callback removing itself is not freed while it runs.
    fn release_later(&self, callback: Callback) {
        let deferred = match callback {
            Callback::Raw(_) | Callback::Task { .. } => return,
            Callback::RawDrop(call) => Callback::Release(call.into_userdata()),
            Callback::Release(data) if !data.has_drop() => return,
            Callback::Boxed(f) => Callback::Discard(f),
            deferred @ (Callback::Release(_) | Callback::Discard(_)) => deferred,
        };
        if let Err((_, deferred)) = self.queue(deferred) {
            drop(deferred);
        }
    }

    // ---- fd handlers ----

    pub(crate) fn add_handler_raw(
        &self,
        fd: RawFd,
        events: u32,
        handler: Handler,
    ) -> Result<(), (Error, Handler)> {
        let mut local = match self.open_local() {
            Ok(local) => local,
            Err(e) => return Err((e, handler)),
        };
        local.handlers.add(self.inner.epoll_fd, fd, events, handler)
    }

    /// Calls `f(fd, events)` whenever `fd` is ready for `events` (level-triggered;
    /// `ERROR` is always reported).
    pub fn add_handler(
        &self,
        fd: RawFd,
        events: u32,
        f: impl Fn(RawFd, u32) + 'static,
    ) -> Result<()> {
        self.add_handler_raw(fd, events, Handler::Rust(Rc::new(f)))
            .map_err(|(e, _)| e)
    }

    /// Changes the events `fd`'s handler waits for to `events` (`READ`,
    /// `WRITE`, `ERROR` bits; Tornado's `update_handler`). `NOT_FOUND` when
    /// `fd` has no handler, `INVALID` for unknown bits.
    pub fn update_handler(&self, fd: RawFd, events: u32) -> Result<()> {
        self.open_local()?
            .handlers
            .update(self.inner.epoll_fd, fd, events)
    }

    /// Unregisters `fd` (it is not closed); its handler is not called again.
    pub fn remove_handler(&self, fd: RawFd) -> Result<()> {
        let handler = self
            .open_local()?
            .handlers
            .remove(self.inner.epoll_fd, fd)?;
        match handler {
            Handler::Raw(call) => self.release_later(Callback::Release(call.into_userdata())),
            Handler::Rust(f) => drop(f),
        }
        Ok(())
    }
}
