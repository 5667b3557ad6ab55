//! Tornado's `PeriodicCallback`: calls a function every interval, optionally
//! with jitter, skipping runs it missed instead of bunching them up.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::{Callback, LoopRef, TimeoutId};
use crate::error::{Error, Result};
use crate::util::monotonic_ns;

/// Calls a function every interval on its loop (Tornado's
/// `PeriodicCallback`). Runs that were missed (the loop was busy) are
/// skipped, not made up; a panic in the callback is logged and the
/// schedule goes on. Dropping it stops it.
pub struct PeriodicCallback {
    state: Rc<RefCell<State>>,
}

struct State {
    lp: LoopRef,
    interval_ns: u64,
    jitter: f64,
    callback: Rc<dyn Fn()>,
    running: bool,
    next_ns: u64,
    timeout: Option<TimeoutId>,
    rng: u64,
}

impl PeriodicCallback {
    /// A stopped periodic callback; `interval` must be positive.
    pub fn new(lp: &LoopRef, interval: Duration, callback: impl Fn() + 'static) -> Result<Self> {
        lp.check_thread()?;
        if interval.is_zero() {
            return Err(Error::invalid("the interval must be positive"));
        }
        Ok(PeriodicCallback {
            state: Rc::new(RefCell::new(State {
                lp: lp.clone(),
                interval_ns: interval.as_nanos().min(u64::MAX as u128 / 2) as u64,
                jitter: 0.0,
                callback: Rc::new(callback),
                running: false,
                next_ns: 0,
                timeout: None,
                rng: monotonic_ns() | 1,
            })),
        })
    }

    /// Each interval is multiplied by `1 + jitter * (random - 0.5)`; 0 <= jitter <= 1.
    pub fn set_jitter(&self, jitter: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&jitter) {
            return Err(Error::invalid("jitter must be between 0 and 1"));
        }
        self.state.borrow_mut().jitter = jitter;
        Ok(())
    }

    /// Starts the schedule: the first call is one interval from now (as
    /// Tornado's `start`). Starting a running one does nothing; on a closed
    /// loop it fails with `CLOSED`.
    pub fn start(&self) -> Result<()> {
        {
            let mut state = self.state.borrow_mut();
            if state.running {
                return Ok(());
            }
            if state.lp.is_closed() {
                return Err(Error::closed());
            }
            state.running = true;
            state.next_ns = monotonic_ns();
        }
        schedule_next(&self.state)
    }

    /// Stops the schedule (Tornado's `stop`); a later [`start`](Self::start)
    /// begins anew. Stopping a stopped one does nothing.
    pub fn stop(&self) {
        let (lp, timeout) = {
            let mut state = self.state.borrow_mut();
            state.running = false;
            (state.lp.clone(), state.timeout.take())
        };
        if let Some(id) = timeout {
            let _ = lp.remove_timeout(id);
        }
    }

    pub(crate) fn check_thread(&self) -> Result<()> {
        self.state.borrow().lp.check_thread()
    }

    /// Whether it is started and not stopped (Tornado's `is_running`).
    pub fn is_running(&self) -> bool {
        self.state.borrow().running
    }
}

impl Drop for PeriodicCallback {
    fn drop(&mut self) {
        self.stop();
    }
}

fn schedule_next(state_rc: &Rc<RefCell<State>>) -> Result<()> {
    let mut state = state_rc.borrow_mut();
    if !state.running {
        return Ok(());
    }
    let now = monotonic_ns();
    let interval = state.jittered_interval();
    if state.next_ns <= now {
        // Skip the runs that were missed: the next one is the first
        // multiple of the interval after now.
        let missed = (now - state.next_ns) / interval;
        state.next_ns += (missed + 1) * interval;
    } else {
        state.next_ns += interval;
    }
    let weak = Rc::downgrade(state_rc);
    let lp = state.lp.clone();
    let when = state.next_ns;
    drop(state);
    let id = lp
        .schedule_at_ns(when, Callback::Boxed(Box::new(move || run(weak))))
        .map_err(|(e, _)| e)?;
    state_rc.borrow_mut().timeout = Some(id);
    Ok(())
}

fn run(weak: Weak<RefCell<State>>) {
    let Some(state_rc) = weak.upgrade() else {
        return;
    };
    let callback = {
        let mut state = state_rc.borrow_mut();
        state.timeout = None;
        if !state.running {
            return;
        }
        state.callback.clone()
    };
    super::callback::run_contained(|| callback());
    if let Err(e) = schedule_next(&state_rc) {
        crate::log::warn(&format!("periodic callback stopped: {e}"));
    }
}

impl State {
    fn jittered_interval(&mut self) -> u64 {
        if self.jitter == 0.0 {
            return self.interval_ns;
        }
        // xorshift64: quality is irrelevant here, only spread.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter * (unit - 0.5);
        ((self.interval_ns as f64 * factor) as u64).max(1)
    }
}
