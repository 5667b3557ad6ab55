//! What the loop queues: raw callbacks (no allocation), Rust closures and task wake-ups.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::raw::{RawCall, RawCallDrop, UserData};
use crate::log;

/// A unit of work for the loop's ready queue or a timer.
pub(crate) enum Callback {
    /// A raw function pointer and userdata (see `raw`).
    Raw(RawCall),
    /// The same, with a drop function for the userdata.
    RawDrop(Box<RawCallDrop>),
    /// A Rust closure.
    Boxed(Box<dyn FnOnce()>),
    /// Poll the task in this slot, if it is still the same task.
    Task { slot: u32, generation: u32 },
    /// Release a userdata (run its drop function) on a later callback, so a
    /// registration removed from inside its own callback is not freed under it.
    Release(UserData),
    /// Drop a removed Rust closure, unrun, on a later callback (as Release).
    Discard(Box<dyn FnOnce()>),
}

/// The cross-thread form of `Callback`: everything in it is `Send`.
pub(crate) enum RemoteCallback {
    Raw(RawCall),
    RawDrop(Box<RawCallDrop>),
    Boxed(Box<dyn FnOnce() + Send>),
    Task { slot: u32, generation: u32 },
}

// SAFETY: the raw variants' pointer is handed to the loop thread by contract
// (see `UserData`); the other variants are `Send` by construction.
unsafe impl Send for RemoteCallback {}

impl From<RemoteCallback> for Callback {
    fn from(remote: RemoteCallback) -> Callback {
        match remote {
            RemoteCallback::Raw(call) => Callback::Raw(call),
            RemoteCallback::RawDrop(call) => Callback::RawDrop(call),
            RemoteCallback::Boxed(f) => Callback::Boxed(f),
            RemoteCallback::Task { slot, generation } => Callback::Task { slot, generation },
        }
    }
}

impl Callback {
    /// The thread-safe form, for a raw callback queued from another thread.
    pub fn into_remote(self) -> Option<RemoteCallback> {
        match self {
            Callback::Raw(call) => Some(RemoteCallback::Raw(call)),
            Callback::RawDrop(call) => Some(RemoteCallback::RawDrop(call)),
            _ => None,
        }
    }
}

/// Runs a Rust closure, containing and logging a panic (Tornado's
/// `handle_callback_exception`): the loop goes on. False if it panicked.
pub(crate) fn run_contained(f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            log::error(&format!(
                "panic in a callback run by the loop: {}",
                log::panic_message(payload.as_ref())
            ));
            false
        }
    }
}

impl Callback {
    /// Drops this callback without running it, but gives a C userdata back
    /// to its owner without calling its drop function (a failed registration).
    pub fn disarm(self) {
        match self {
            Callback::RawDrop(call) => call.disarm(),
            Callback::Release(data) => data.disarm(),
            Callback::Raw(_)
            | Callback::Boxed(_)
            | Callback::Discard(_)
            | Callback::Task { .. } => {}
        }
    }
}
