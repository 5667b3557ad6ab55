//! Closing the loop: everything registered is released, never called.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::{source, task, Callback, Handler, LoopRef, RemoteCallback};
use crate::error::{Code, Error, Result};

impl LoopRef {
    pub(super) fn close(&self) -> Result<()> {
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
