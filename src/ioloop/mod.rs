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
mod handlers;
mod owner_cell;
mod periodic;
mod ready;
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
pub use source::Registration;
pub use timers::TimeoutId;

use crate::error::{Code, Error, Result};
use crate::ffi::types::CCall;
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

    /// A clonable reference for this thread (callbacks, futures, tasks keep one).
    pub fn handle(&self) -> LoopRef {
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
    pub fn thread_handle(&self) -> LoopHandle {
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
    pub(crate) fn try_queue_running(&self, call: CCall) -> bool {
        let Some(on) = self.try_owner_token() else {
            return false;
        };
        let Some(mut local) = self.inner.local.try_borrow_on(on) else {
            return false;
        };
        local.running && !local.closed && local.ready.try_push_with(|| Callback::C(call))
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
            Callback::C(_) | Callback::Task { .. } => return,
            Callback::CDrop(call) => Callback::Release(call.into_userdata()),
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
            Handler::C(call) => self.release_later(Callback::Release(call.into_userdata())),
            Handler::Rust(f) => drop(f),
        }
        Ok(())
    }

    // ---- running ----

    /// Marks the loop running; fails if it already is, is closed, or this is
    /// not the owner thread.
    /// Marks the loop running; fails if it is already running, is closed,
    /// or this is not the owner thread.
    fn enter_run(&self) -> Result<()> {
        let mut local = self.open_local()?;
        if local.running {
            return Err(Error::new(Code::RUNNING, "the loop is already running"));
        }
        local.running = true;
        self.inner.awake.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn exit_run(&self) {
        self.inner.awake.store(false, Ordering::SeqCst);
        if let Ok(mut local) = self.local() {
            local.running = false;
        }
    }

    /// Runs until `stop` is called. A `stop` made before `start` makes it run
    /// one non-blocking iteration and return.
    pub fn start(&self) -> Result<()> {
        let on = self.owner_token()?;
        self.enter_run()?;
        let result = loop {
            // While callbacks keep coming, run batches for a time slice
            // between polls; then a full iteration serves I/O and timers.
            if self.run_batches(on) {
                break Ok(());
            }
            if let Err(e) = self.iterate(on, None) {
                break Err(e);
            }
            if self.take_stop_request() {
                break Ok(());
            }
        };
        self.exit_run();
        result
    }

    /// Runs callback batches until none is ready or the time slice is over;
    /// true if a stop was requested meanwhile (and consumed). Each pop is
    /// one borrow of the loop's state, and a batch begins in the borrow of
    /// its first pop: a chain of one callback per batch pays nothing more.
    fn run_batches(&self, on: OnOwner) -> bool {
        let mut slice = Slice::default();
        let mut left_in_batch = 0;
        loop {
            let next = {
                let Some(mut local) = self.inner.local.try_borrow_on(on) else {
                    return false;
                };
                if left_in_batch == 0 {
                    match self.next_batch(&mut local, &mut slice) {
                        NextBatch::Run(len) => left_in_batch = len,
                        NextBatch::Stop => return true,
                        NextBatch::Poll => return false,
                    }
                }
                left_in_batch -= 1;
                local.ready.pop()
            };
            match next {
                Some(callback) => self.run_callback(on, callback),
                None => return false,
            }
        }
    }

    /// At a batch boundary of `run_batches`: leave for a stop request, or
    /// to poll (slice over, nothing ready), or begin the next batch.
    #[inline(always)]
    fn next_batch(&self, local: &mut Local, slice: &mut Slice) -> NextBatch {
        if slice.batches > 0 && self.take_stop_request() {
            return NextBatch::Stop;
        }
        if slice.over() {
            return NextBatch::Poll;
        }
        match self.begin_batch(local) {
            0 => NextBatch::Poll,
            len => NextBatch::Run(len),
        }
    }

    /// Consumes a pending stop request (a plain load in the common case).
    #[inline]
    fn take_stop_request(&self) -> bool {
        self.inner.stop_requested.load(Ordering::Relaxed)
            && self.inner.stop_requested.swap(false, Ordering::SeqCst)
    }

    /// Makes `start` return after the current iteration.
    pub fn stop(&self) {
        self.inner.request_stop();
    }

    /// Runs one iteration, waiting at most `max_wait` for I/O or a timer
    /// (None: until something happens). For hosts that drive the loop.
    pub fn run_once(&self, max_wait: Option<Duration>) -> Result<()> {
        let on = self.owner_token()?;
        self.enter_run()?;
        let wait_ns = max_wait.map(|d| d.as_nanos().min(u64::MAX as u128) as u64);
        let result = self.iterate(on, wait_ns);
        self.exit_run();
        result
    }

    /// Runs iterations until `done()` holds, `timeout` passes (`TIMEOUT`), or
    /// `stop` is called (`NOT_DONE`).
    pub fn run_until(&self, done: impl Fn() -> bool, timeout: Option<Duration>) -> Result<()> {
        let on = self.owner_token()?;
        if done() {
            return Ok(());
        }
        self.enter_run()?;
        let deadline = timeout
            .map(|t| monotonic_ns().saturating_add(t.as_nanos().min(u64::MAX as u128) as u64));
        let result = loop {
            if done() {
                break Ok(());
            }
            if self.take_stop_request() {
                break Err(Error::new(
                    Code::NOT_DONE,
                    "the loop was stopped before the future was done",
                ));
            }
            let wait = match deadline {
                Some(deadline) => {
                    let now = monotonic_ns();
                    if now >= deadline {
                        break Err(Error::new(Code::TIMEOUT, "run_sync timed out"));
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            if let Err(e) = self.iterate(on, wait) {
                break Err(e);
            }
        };
        self.exit_run();
        result
    }

    /// The epoll fd: readable when I/O or a wake-up is due.
    pub fn backend_fd(&self) -> RawFd {
        self.inner.epoll_fd
    }

    /// Seconds until the next timeout or callback is due: 0 if now, None if nothing is scheduled.
    pub fn backend_timeout(&self) -> Result<Option<f64>> {
        let mut local = self.open_local()?;
        if !local.ready.is_empty()
            || self.has_remote()
            || self.inner.stop_requested.load(Ordering::SeqCst)
        {
            return Ok(Some(0.0));
        }
        Ok(local
            .timers
            .next_deadline()
            .map(|when| crate::util::ns_to_seconds(when.saturating_sub(monotonic_ns()))))
    }

    /// One full iteration: poll, handlers, timers, callbacks.
    fn iterate(&self, on: OnOwner, max_wait_ns: Option<u64>) -> Result<()> {
        let timeout = self.poll_timeout(on, max_wait_ns)?;
        let fired = self.poll_io(on, timeout)?;
        self.dispatch_io(on, &fired);
        self.recycle_fired(on, fired);
        self.run_due_timers(on);
        self.run_ready_batch(on);
        Ok(())
    }

    fn poll_timeout(&self, on: OnOwner, max_wait_ns: Option<u64>) -> Result<Option<u64>> {
        let mut local = self.local_on(on)?;
        if local.closed {
            return Err(Error::closed());
        }
        if !local.ready.is_empty()
            || self.has_remote()
            || self.inner.stop_requested.load(Ordering::SeqCst)
        {
            return Ok(Some(0));
        }
        let until_timer = local
            .timers
            .next_deadline()
            .map(|when| when.saturating_sub(monotonic_ns()));
        Ok(match (until_timer, max_wait_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Polls and returns the (token, events) pairs that fired.
    fn poll_io(&self, on: OnOwner, timeout_ns: Option<u64>) -> Result<Vec<(usize, u32)>> {
        let mut poller_slot = self.inner.poller.borrow_on(on)?;
        let poller = poller_slot.as_mut().ok_or_else(Error::closed)?;
        let mut timeout = timeout_ns.map(Duration::from_nanos);
        let blocking = timeout != Some(Duration::ZERO);
        if blocking {
            self.inner.awake.store(false, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // Re-check after publishing `awake = false`: a callback queued from
            // another thread just before saw the loop awake and sent no wake-up.
            if self.has_remote() || self.inner.stop_requested.load(Ordering::SeqCst) {
                timeout = Some(Duration::ZERO);
            }
        }
        let polled = poller.poll.poll(&mut poller.events, timeout);
        if blocking {
            self.inner.awake.store(true, Ordering::SeqCst);
        }
        if self.inner.wake_sent.load(Ordering::Relaxed) {
            self.inner.wake_sent.store(false, Ordering::SeqCst);
        }
        if let Err(e) = polled {
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::from_io("poll failed", e));
            }
        }
        let mut fired = self.take_fired_buffer(on);
        for event in poller.events.iter() {
            if event.token() == WAKER_TOKEN {
                continue;
            }
            fired.push((event.token().0, event_flags(event)));
        }
        Ok(fired)
    }

    /// The reusable event buffer (no allocation per iteration).
    fn take_fired_buffer(&self, on: OnOwner) -> Vec<(usize, u32)> {
        self.local_on(on)
            .map(|mut local| std::mem::take(&mut local.fired_spare))
            .unwrap_or_default()
    }

    fn recycle_fired(&self, on: OnOwner, mut fired: Vec<(usize, u32)>) {
        fired.clear();
        if let Ok(mut local) = self.local_on(on) {
            local.fired_spare = fired;
        }
    }

    fn dispatch_io(&self, on: OnOwner, fired: &[(usize, u32)]) {
        for &(token, events) in fired {
            if token & HANDLER_TOKEN_BIT != 0 {
                let found = match self.local_on(on) {
                    Ok(local) => local.handlers.lookup(token),
                    Err(_) => None,
                };
                if let Some((fd, handler)) = found {
                    handler.call(fd, events & handlers::ALL_EVENTS);
                }
            } else if token & source::SOURCE_TOKEN_BIT != 0 {
                let found = match self.local_on(on) {
                    Ok(local) => local.sources.lookup(token),
                    Err(_) => None,
                };
                if let Some(readiness) = found {
                    source::fire(&readiness, events);
                }
            }
        }
    }

    fn run_due_timers(&self, on: OnOwner) {
        let (now, seq_limit) = match self.local_on(on) {
            Ok(local) if !local.timers.is_empty() => (monotonic_ns(), local.timers.next_seq()),
            _ => return,
        };
        loop {
            let due = match self.local_on(on) {
                Ok(mut local) => local.timers.pop_due(now, seq_limit),
                Err(_) => None,
            };
            match due {
                Some(callback) => self.run_callback(on, callback),
                None => break,
            }
        }
    }

    #[inline]
    fn has_remote(&self) -> bool {
        !self.inner.remote.is_empty()
    }

    /// Moves callbacks queued from other threads to the ready queue: as many
    /// as were there when it began, so busy producers cannot hold it here.
    fn drain_remote(&self, local: &mut Local) {
        for _ in 0..self.inner.remote.len() {
            match self.inner.remote.pop() {
                Some(callback) => local.ready.push(callback.into()),
                None => break,
            }
        }
    }

    /// Starts a batch: callbacks queued from other threads join the ready
    /// queue, and the batch is what the queue holds now (callbacks queued
    /// while it runs wait for the next batch). Returns its length.
    #[inline(always)]
    fn begin_batch(&self, local: &mut Local) -> usize {
        if self.inner.remote_pending.load(Ordering::Relaxed)
            && self.inner.remote_pending.swap(false, Ordering::AcqRel)
        {
            self.drain_remote(local);
        }
        local.ready.len()
    }

    /// Runs one batch (see `begin_batch`) in a full iteration.
    fn run_ready_batch(&self, on: OnOwner) {
        let count = match self.local_on(on) {
            Ok(mut local) => self.begin_batch(&mut local),
            Err(_) => return,
        };
        for _ in 0..count {
            let next = match self.local_on(on) {
                Ok(mut local) => local.ready.pop(),
                Err(_) => None,
            };
            match next {
                Some(callback) => self.run_callback(on, callback),
                None => break,
            }
        }
    }

    #[inline(always)]
    fn run_callback(&self, on: OnOwner, callback: Callback) {
        match callback {
            Callback::C(call) => call.call(),
            Callback::CDrop(call) => call.call(),
            Callback::Boxed(f) => {
                callback::run_contained(f);
            }
            Callback::Task { slot, generation } => self.poll_task(on, slot, generation),
            Callback::Release(data) => drop(data),
            Callback::Discard(f) => {
                // Its captures' destructors are the caller's code: contained
                // like a call.
                callback::run_contained(move || drop(f));
            }
        }
    }

    // ---- closing ----

    fn close(&self) -> Result<()> {
        {
            let mut local = self.local()?;
            if local.closed {
                return Ok(());
            }
            if local.running {
                return Err(Error::new(Code::RUNNING, "cannot close a running loop"));
            }
            local.closed = true;
        }
        self.inner.closed.store(true, Ordering::SeqCst);
        // Releasing registrations runs C drop functions and Rust destructors,
        // which may call back into the loop: never while it is borrowed.
        loop {
            let released = self.take_everything();
            if released.is_empty() {
                break;
            }
            drop(released);
        }
        let poller = self.inner.poller.borrow_mut()?.take();
        drop(poller);
        Ok(())
    }

    fn take_everything(&self) -> Released {
        let Ok(mut local) = self.local() else {
            return Released::default();
        };
        let remote = std::iter::from_fn(|| self.inner.remote.pop()).collect();
        Released {
            callbacks: local.ready.take_all(),
            timers: local.timers.take_all(),
            handlers: local.handlers.take_all(),
            tasks: local.tasks.take_all(),
            sources: local.sources.clear(),
            remote,
        }
    }
}

/// The time slice of back-to-back callback batches in `start`.
#[derive(Default)]
struct Slice {
    /// Batches begun since the clock was last read.
    batches: u32,
    /// When the slice ends; set at the first clock read, so an iteration
    /// with a few batches never reads the clock.
    end_ns: Option<u64>,
}

impl Slice {
    /// Counts a batch about to begin; true when the slice is over (the
    /// clock is read once per `BATCHES_PER_CLOCK_READ` batches).
    #[inline(always)]
    fn over(&mut self) -> bool {
        if self.batches == BATCHES_PER_CLOCK_READ {
            let now = monotonic_ns();
            if now >= *self.end_ns.get_or_insert(now + CALLBACK_SLICE_NS) {
                return true;
            }
            self.batches = 0;
        }
        self.batches += 1;
        false
    }
}

/// What `run_batches` does at a batch boundary.
enum NextBatch {
    Run(usize),
    Stop,
    Poll,
}

/// What closing takes out of the loop, dropped with the loop released.
#[derive(Default)]
struct Released {
    callbacks: Vec<Callback>,
    timers: Vec<Callback>,
    handlers: Vec<Handler>,
    tasks: Vec<task::TaskFuture>,
    sources: Vec<Rc<std::cell::RefCell<source::Readiness>>>,
    remote: Vec<RemoteCallback>,
}

impl Released {
    fn is_empty(&self) -> bool {
        self.callbacks.is_empty()
            && self.timers.is_empty()
            && self.handlers.is_empty()
            && self.tasks.is_empty()
            && self.sources.is_empty()
            && self.remote.is_empty()
    }
}

/// Maps a poller event to `READ | WRITE | ERROR` (hang-up counts as ERROR, as in Tornado).
fn event_flags(event: &mio::event::Event) -> u32 {
    let mut flags = 0;
    if event.is_readable() {
        flags |= READ;
    }
    if event.is_writable() {
        flags |= WRITE;
    }
    if event.is_error() || event.is_read_closed() && event.is_write_closed() {
        flags |= ERROR;
    }
    if event.is_read_closed() {
        flags |= PEER_CLOSED;
    }
    flags
}
