//! The upgrade path: a request carrying an [`Upgrade`] that gets a 101
//! (Switching Protocols) response ends its exchange at the response head
//! and hands the connection over here, neither pooled nor closed, as
//! Tornado's `HTTP1Connection.detach`. Bytes the server sent after the head
//! stay in the stream's buffer for the new protocol to read.

use std::cell::RefCell;
use std::rc::Rc;

use crate::iostream::IOStream;

/// Where a 101 response's connection goes. Cloned into the request; the
/// caller keeps a clone and takes the stream once the fetch is done.
#[derive(Clone, Default)]
pub struct Upgrade {
    slot: Rc<RefCell<Option<IOStream>>>,
}

impl Upgrade {
    /// An empty slot, to put in a request and keep a clone of.
    pub fn new() -> Upgrade {
        Upgrade::default()
    }

    /// Called by the client with the connection of a 101 response.
    pub(crate) fn hand_over(&self, stream: IOStream) {
        if let Some(old) = self.slot.borrow_mut().replace(stream) {
            old.close(None);
        }
    }

    /// The upgraded connection, once (None before a 101 came, or after).
    pub fn take(&self) -> Option<IOStream> {
        self.slot.borrow_mut().take()
    }
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holding = self.slot.try_borrow().map(|s| s.is_some()).unwrap_or(false);
        write!(f, "Upgrade(holding: {holding})")
    }
}
