//! PING-based liveness for pooled HTTP/2 connections: before a fetch
//! reuses a connection that has been idle a while, the client sends a PING
//! (h2's `PingPong`) and waits a short time for its PONG. A peer that
//! stopped answering (a NAT that forgot the flow, a server gone without a
//! FIN) is then dropped before any request is lost on it, and the fetch
//! opens another connection.
//!
//! Fetches that pick the same connection while its check runs wait for
//! that one check (h2 allows one PING of ours in flight).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::time::Duration;

use ::h2::{Ping, PingPong};

use super::H2Connection;
use crate::future::Future;
use crate::gen::within;
use crate::util::monotonic_ns;

/// A connection's PING state (shared by its clones).
pub(crate) struct Liveness {
    /// Taken while a PING is out.
    pings: RefCell<Option<PingPong>>,
    /// The check in progress (its outcome: alive or not).
    check: RefCell<Option<Future<bool>>>,
    /// A PING of ours is out whose PONG nobody waited for to the end (its
    /// check was dropped with its fetch): h2 takes no second one until
    /// that PONG was polled, so the next check waits for it instead.
    outstanding: Cell<bool>,
}

impl Liveness {
    pub(crate) fn new(pings: Option<PingPong>) -> Liveness {
        Liveness {
            pings: RefCell::new(pings),
            check: RefCell::new(None),
            outstanding: Cell::new(false),
        }
    }
}

impl H2Connection {
    /// Whether this connection should answer a PING before reuse: no
    /// stream open, and idle at least `after`.
    pub(crate) fn needs_ping(&self, after: Duration) -> bool {
        let idle_ns = monotonic_ns().saturating_sub(self.idle_since_ns());
        self.active_streams() == 0 && u128::from(idle_ns) >= after.as_nanos()
    }

    /// Sends a PING and waits up to `timeout` for its PONG. Alive, the
    /// connection counts as fresh again; not, it is marked closing, so the
    /// pool no longer hands it out and drops it.
    pub(crate) async fn answers_ping(&self, timeout: Duration) -> bool {
        let running = self.liveness.check.borrow().clone();
        if let Some(check) = running {
            return check.value().await.unwrap_or(false);
        }
        let check = Future::new(&self.lp);
        *self.liveness.check.borrow_mut() = Some(check.clone());
        // Dropped before the answer (the fetch was cancelled), the check
        // tells its waiters "not known alive": each picks again.
        let _ending = EndCheck(&self.liveness);
        let alive = within(&self.lp, Some(timeout), self.ping_once())
            .await
            .unwrap_or(false);
        if alive {
            self.state.idle_since_ns.set(monotonic_ns());
        } else {
            self.state.closing.set(true);
        }
        self.liveness.check.borrow_mut().take();
        let _ = check.set_result(alive);
        alive
    }

    /// One PING and its PONG; false if h2 refused it or the connection
    /// failed meanwhile.
    async fn ping_once(&self) -> crate::error::Result<bool> {
        let mut lent = Lent {
            home: &self.liveness.pings,
            pings: self.liveness.pings.borrow_mut().take(),
        };
        let Some(pings) = lent.pings.as_mut() else {
            // No PingPong (h2 gives it once): nothing to ask with.
            return Ok(!self.state.ended.get());
        };
        let outstanding = &self.liveness.outstanding;
        if !outstanding.get() {
            if pings.send_ping(Ping::opaque()).is_err() {
                return Ok(false);
            }
            outstanding.set(true);
        }
        let answered = poll_fn(|cx| pings.poll_pong(cx)).await.is_ok();
        outstanding.set(false);
        Ok(answered)
    }
}

/// The PingPong, lent out while a PING is in flight and put back however
/// the wait ends.
struct Lent<'a> {
    home: &'a RefCell<Option<PingPong>>,
    pings: Option<PingPong>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(pings) = self.pings.take() {
            *self.home.borrow_mut() = Some(pings);
        }
    }
}

/// Resolves a check left unfinished (its fetch went away) for its waiters.
struct EndCheck<'a>(&'a Liveness);

impl Drop for EndCheck<'_> {
    fn drop(&mut self) {
        if let Some(check) = self.0.check.borrow_mut().take() {
            let _ = check.set_result(false);
        }
    }
}
