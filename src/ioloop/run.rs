//! Running the loop: `start`, `run_once`, `run_until` and the host-driven
//! calls, and one iteration (poll, fd handlers, due timers, a batch of
//! callbacks; see the module doc of `ioloop`).

use std::os::unix::io::RawFd;
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use super::owner_cell::OnOwner;
use super::{callback, handlers, source, Callback, Local, LoopRef};
use super::{BATCHES_PER_CLOCK_READ, CALLBACK_SLICE_NS, WAKER_TOKEN};
use super::{ERROR, HANDLER_TOKEN_BIT, PEER_CLOSED, READ, WRITE};
use crate::error::{Code, Error, Result};
use crate::util::monotonic_ns;

impl LoopRef {
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
            Callback::Raw(call) => call.call(),
            Callback::RawDrop(call) => call.call(),
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
